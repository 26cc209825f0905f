"""The watch state as Prometheus metrics, through prometheus_client's own collector API.

`WatchCollector` turns the current views into metric families on every scrape, so the
registry never holds stale series of a target. Names follow the Prometheus conventions
and node_exporter's conntrack metrics: `_entries` / `_entries_limit`, `_ratio` for
fractions, base units, `_total` for counters; the modelled p95 hash-chain length is a
summary quantile. Kept pure: the views come in, metric families go out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ctdrill.metrics.conntrack import HCP_QUANTILE, WindowMetrics
from ctdrill.regime.states import Regime
from ctdrill.telemetry.protocol import SlabInfo


@dataclass(frozen=True)
class TargetView:
    """What the watch knows about one target right now."""

    host: str
    up: bool
    regime: Regime
    metrics: WindowMetrics | None
    transitions: int
    reconnects: int
    new_flow_drops: int = 0
    """Kernel new-flow drops since the watch started (the drop counter's increases)."""
    table_full_events: int = 0
    """Kernel 'table full' log events seen since the watch started."""
    slab: SlabInfo | None = None
    """The conntrack slab cache at the last sample (None: unreadable, not root)."""


# (name, help, WindowMetrics attribute): levels and windowed rates of the last window
GAUGES: tuple[tuple[str, str, str], ...] = (
    ("ctdrill_conntrack_entries", "Conntrack entries in the target's namespace "
     "(nf_conntrack_count).", "count"),
    ("ctdrill_conntrack_entries_limit", "Maximum conntrack entries (nf_conntrack_max, "
     "kernel-wide).", "max"),
    ("ctdrill_conntrack_table_ratio", "Conntrack table ratio (CTR): entries / entries_limit.",
     "ctr"),
    ("ctdrill_conntrack_new_flow_drops_per_second", "Kernel new-flow drops per second over "
     "the last telemetry window.", "nfd_per_s"),
    ("ctdrill_conntrack_new_flow_drop_ratio", "New-flow drops / new-flow attempts over the "
     "last telemetry window (an upper bound).", "nfd_fraction"),
    ("ctdrill_conntrack_early_drops_per_second", "Kernel early drops per second over the "
     "last telemetry window.", "early_drop_per_s"),
)
# (name, help, SlabInfo attribute): the kernel's nf_conntrack slab cache at the last
# sample, named as node_exporter's slabinfo collector names its node_slabinfo_* series
SLAB_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("ctdrill_conntrack_slab_objects", "Objects allocated in the kernel's nf_conntrack slab "
     "cache, in use or not (num_objs; kernel-wide, shared by every network namespace).",
     "num_objs"),
    ("ctdrill_conntrack_slab_active_objects", "Objects of the kernel's nf_conntrack slab "
     "cache reported in use (active_objs; kernel-wide).", "active_objs"),
    ("ctdrill_conntrack_slab_object_size_bytes", "Size of one object of the kernel's "
     "nf_conntrack slab cache (objsize).", "objsize"),
    ("ctdrill_conntrack_slab_bytes", "Bytes the kernel's nf_conntrack slab cache holds for "
     "its objects: num_objs x objsize (kernel-wide).", "bytes"),
)
HOST = ["host"]


def _gauge(name: str, help_text: str, views: Mapping[str, TargetView],
           value: Callable[[TargetView], float | None], labels: list[str] | None = None,
           ) -> GaugeMetricFamily:
    fam = GaugeMetricFamily(name, help_text, labels=labels or HOST)
    for v in views.values():
        x = value(v)
        if x is not None:
            fam.add_metric([v.host], x)
    return fam


def _counter(name: str, help_text: str, views: Mapping[str, TargetView],
             value: Callable[[TargetView], int]) -> CounterMetricFamily:
    fam = CounterMetricFamily(name, help_text, labels=HOST)
    for v in views.values():
        fam.add_metric([v.host], value(v))
    return fam


def _window_value(attr: str) -> Callable[[TargetView], float | None]:
    def value(v: TargetView) -> float | None:
        return None if v.metrics is None else float(getattr(v.metrics, attr))
    return value


def _slab_value(attr: str) -> Callable[[TargetView], float | None]:
    def value(v: TargetView) -> float | None:
        return None if v.slab is None else float(getattr(v.slab, attr))
    return value


def _chain_length(views: Mapping[str, TargetView]) -> Metric:
    """HCP95 as a summary quantile: the model's p95 of a bucket's chain length."""
    name = "ctdrill_conntrack_hash_chain_length"
    fam = Metric(name, "Modelled hash-chain length of a conntrack bucket (Poisson model of "
                 "2 x entries in the hash buckets), at the given quantile.", "summary")
    for v in views.values():
        if v.metrics is not None:
            fam.add_sample(name, {"host": v.host, "quantile": str(HCP_QUANTILE)},
                           float(v.metrics.hcp95))
    return fam


def families(views: Mapping[str, TargetView]) -> Iterator[Metric]:
    """Every metric family of the /metrics page; a target without a window yet has no
    metric samples (absent, not zero), only its up, regime and counters; one whose agent
    cannot read /proc/slabinfo has no slab samples."""
    yield _gauge("ctdrill_target_up", "1 while telemetry from the target flows.", views,
                 lambda v: int(v.up))
    for name, help_text, attr in GAUGES:
        yield _gauge(name, help_text, views, _window_value(attr))
    yield _chain_length(views)
    for name, help_text, attr in SLAB_GAUGES:
        yield _gauge(name, help_text, views, _slab_value(attr))
    yield _gauge("ctdrill_telemetry_last_sample_timestamp_seconds", "When the target took "
                 "its last telemetry sample (target clock), Unix time.", views,
                 lambda v: None if v.metrics is None else v.metrics.t)
    yield _counter("ctdrill_conntrack_new_flow_drops_total", "Kernel new-flow drops seen "
                   "since the watch started.", views, lambda v: v.new_flow_drops)
    yield _counter("ctdrill_conntrack_table_full_events_total", "Kernel 'table full' log "
                   "events seen since the watch started.", views, lambda v: v.table_full_events)
    regime = GaugeMetricFamily("ctdrill_regime", "1 for the target's current conntrack "
                               "regime, 0 otherwise.", labels=["host", "regime"])
    for v in views.values():
        for r in Regime:
            regime.add_metric([v.host, r.value], int(v.regime is r))
    yield regime
    yield _counter("ctdrill_regime_transitions_total", "Regime transitions since the watch "
                   "started.", views, lambda v: v.transitions)
    yield _counter("ctdrill_telemetry_reconnects_total", "Times the telemetry stream was "
                   "reopened.", views, lambda v: v.reconnects)


class WatchCollector(Collector):
    """A prometheus_client collector over a live source of views (read at each scrape)."""

    def __init__(self, views: Callable[[], Mapping[str, TargetView]]) -> None:
        self._views = views

    def collect(self) -> Iterator[Metric]:
        return families(self._views())


def registry_for(views: Callable[[], Mapping[str, TargetView]]) -> CollectorRegistry:
    """A registry of its own (not the process-global one) holding only the watch."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WatchCollector(views))
    return registry


def render(views: Mapping[str, TargetView]) -> str:
    """The whole /metrics page in the text format, for these views."""
    return generate_latest(registry_for(lambda: views)).decode()
