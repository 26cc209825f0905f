"""The report as a Prometheus textfile for node_exporter's textfile collector (pure),
written through prometheus_client's collector API and text encoder.

Every value describes the drill's LAST run (the file is replaced each time), labelled
with `drill`, and `host` where it belongs to one host. No sample timestamps: the
textfile collector refuses them; `ctdrill_drill_last_run_timestamp_seconds` says when
the run was. Names follow the Prometheus conventions (base units, `_ratio`, quantiles as
summary quantiles) and the watch's names, with `peak_` for a run's maximum.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from ctdrill.metrics.conntrack import HCP_QUANTILE
from ctdrill.report.model import REGIMES, Report

# key in the key metrics -> (gauge name, help)
HOST_GAUGES: Mapping[str, tuple[str, str]] = {
    "ctr_max": ("ctdrill_drill_peak_conntrack_table_ratio", "Highest conntrack table ratio "
                "(entries / entries_limit) seen in the last run."),
    "nfd_per_s_max": ("ctdrill_drill_peak_conntrack_new_flow_drops_per_second", "Highest "
                      "kernel new-flow drop rate of a telemetry window in the last run."),
    "drops": ("ctdrill_drill_new_flow_drops", "New flows the kernel dropped during the last "
              "run (sum over telemetry windows)."),
    "table_full_events": ("ctdrill_drill_table_full_events", "Kernel 'table full' log "
                          "events seen in the last run."),
}
PROBE_GAUGES: Mapping[str, tuple[str, str]] = {
    "messages": ("ctdrill_drill_probe_messages", "Orders the probe sent in the last run."),
    "timeouts": ("ctdrill_drill_probe_timeouts", "Probe orders that timed out in the last "
                 "run."),
}
# summary name -> (help, scale to the base unit, ((key in the key metrics, quantile), ...))
SUMMARIES: Mapping[str, tuple[str, float, tuple[tuple[str, str], ...]]] = {
    "ctdrill_drill_peak_conntrack_hash_chain_length": (
        "Highest modelled hash-chain length of a conntrack bucket in the last run, at the "
        "given quantile.", 1.0, (("hcp95_max", str(HCP_QUANTILE)),)),
    "ctdrill_drill_probe_ack_dwell_seconds": (
        "Order ack dwell of the probe in the last run, at the given quantile.", 1e-3,
        (("dwell_ms_p50", "0.5"), ("dwell_ms_p99", "0.99"))),
    "ctdrill_drill_probe_order_state_skew_seconds": (
        "Order state skew of the probe in the last run, at the given quantile.", 1e-3,
        (("osd_ms_p99", "0.99"),)),
    "ctdrill_drill_probe_cdt_ratio": (
        "Conntrack-attributable slippage tail (CDT) of the last run as a fraction of the "
        "price (basis points / 10^4), at the given quantile.", 1e-4,
        (("cdt_p95_bps", "0.95"), ("cdt_p99_bps", "0.99"))),
}


def _gauge(name: str, help_text: str, labels: list[str],
           rows: list[tuple[list[str], float]]) -> GaugeMetricFamily:
    fam = GaugeMetricFamily(name, help_text, labels=labels)
    for values, value in rows:
        fam.add_metric(values, value)
    return fam


def _run_families(r: Report, last_success: float | None) -> Iterator[Metric]:
    """What the run was and how it ended: one series per drill (revert: per host)."""
    d = r.drill
    info = InfoMetricFamily("ctdrill_drill", "The last run of the drill: its run id and "
                            "status.", labels=["drill"])
    info.add_metric([d], {"run_id": r.run_id, "status": r.status})
    yield info
    yield _gauge("ctdrill_drill_passed", "1 if the last run passed: every expectation met "
                 "and every changed host verified reverted; else 0.", ["drill"],
                 [([d], 1 if r.passed else 0)])
    yield _gauge("ctdrill_drill_exit_code", "Exit code of the last run (-1: it did not "
                 "finish).", ["drill"], [([d], -1 if r.exit_code is None else r.exit_code)])
    yield _gauge("ctdrill_drill_last_run_timestamp_seconds", "When the last run ended (its "
                 "start if it did not end), Unix time.", ["drill"],
                 [([d], r.ended_at or r.started_at)])
    success = r.ended_at if r.passed and r.ended_at is not None else last_success
    if success is not None:
        yield _gauge("ctdrill_drill_last_success_timestamp_seconds", "When the drill last "
                     "ended passed, Unix time.", ["drill"], [([d], success)])
    yield _gauge("ctdrill_drill_duration_seconds", "Wall time of the last run.", ["drill"],
                 [([d], max(0.0, r.duration_s))])
    yield _gauge("ctdrill_drill_expectations", "Expectations of the last run by result.",
                 ["drill", "result"], [([d, k], n) for k, n in r.counts().items()])
    if r.revert_expected or r.reverts:
        yield _gauge("ctdrill_drill_revert_verified", "1 if the host was verified equal to "
                     "its snapshot after the last run; 0 if not, including a run that "
                     "stopped after changing it.", ["drill", "host"],
                     [([d, h], int(ok)) for h, ok in r.revert_by_host().items()])


def _metric_families(r: Report) -> Iterator[Metric]:
    """The run's key metrics per host (the probe's under its client host)."""
    d = r.drill
    gauges: dict[str, GaugeMetricFamily] = {}
    summaries: dict[str, Metric] = {}
    for host, metrics in r.key_metrics.items():
        probe = host == "probe"
        label = (r.probe_host or "probe") if probe else host
        for key, (name, help_text) in (PROBE_GAUGES if probe else HOST_GAUGES).items():
            value = metrics.get(key)
            if value is not None:
                gauges.setdefault(name, GaugeMetricFamily(name, help_text,
                                                          labels=["drill", "host"]))
                gauges[name].add_metric([d, label], value)
        for name, (help_text, scale, keys) in SUMMARIES.items():
            for key, q in keys:
                value = metrics.get(key)
                if value is not None:
                    fam = summaries.setdefault(name, Metric(name, help_text, "summary"))
                    fam.add_sample(name, {"drill": d, "host": label, "quantile": q},
                                   value * scale)
    yield from gauges.values()
    yield from summaries.values()


def _regime_families(r: Report) -> Iterator[Metric]:
    d = r.drill
    if not r.timelines:
        return
    yield _gauge("ctdrill_drill_regime_transitions", "Regime transitions in the last run.",
                 ["drill", "host"],
                 [([d, tl.host], sum(t.host == tl.host for t in r.transitions))
                  for tl in r.timelines])
    yield _gauge("ctdrill_drill_final_regime", "Regime at the end of the last run's "
                 "observation (1 for the state the host was in).", ["drill", "host", "regime"],
                 [([d, tl.host, regime], int(tl.final_regime == regime))
                  for tl in r.timelines for regime in REGIMES])


# SlabSummary attribute -> (gauge name, help): the kernel's conntrack slab cache
SLAB_GAUGES: Mapping[str, tuple[str, str]] = {
    "objects_max": ("ctdrill_drill_peak_conntrack_slab_objects", "Most objects the kernel's "
                    "nf_conntrack slab cache held (num_objs, kernel-wide) in the last run."),
    "bytes_max": ("ctdrill_drill_peak_conntrack_slab_bytes", "Most bytes the kernel's "
                  "nf_conntrack slab cache held (num_objs x objsize, kernel-wide) in the "
                  "last run."),
    "objects_last": ("ctdrill_drill_final_conntrack_slab_objects", "Objects the kernel's "
                     "nf_conntrack slab cache held at the last run's last sample."),
    "bytes_last": ("ctdrill_drill_final_conntrack_slab_bytes", "Bytes the kernel's "
                   "nf_conntrack slab cache held at the last run's last sample."),
}


def _slab_families(r: Report) -> Iterator[Metric]:
    """The conntrack slab cache per host; absent when no agent could read it."""
    by_host = r.slab_by_host()
    if not by_host:
        return
    for attr, (name, help_text) in SLAB_GAUGES.items():
        yield _gauge(name, help_text, ["drill", "host"],
                     [([r.drill, h], getattr(s, attr)) for h, s in by_host.items()])


class ReportCollector(Collector):
    """One report's metric families, for a registry of its own."""

    def __init__(self, r: Report, last_success: float | None = None) -> None:
        self.report, self.last_success = r, last_success

    def collect(self) -> Iterator[Metric]:
        yield from _run_families(self.report, self.last_success)
        yield from _metric_families(self.report)
        yield from _regime_families(self.report)
        yield from _slab_families(self.report)


def render_prom(r: Report, last_success: float | None = None) -> str:
    """The textfile. `last_success`: when the drill last passed, carried over from the
    previous textfile so a failing run does not forget it (files.write_textfile)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReportCollector(r, last_success))
    return generate_latest(registry).decode()
