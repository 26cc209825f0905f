"""The watch's /metrics page, checked by promtool and read back with prometheus_client's
parser; the HTTP endpoint and the counters of the service, without a lab."""

from __future__ import annotations

import io
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from ctdrill.metrics.conntrack import WindowMetrics
from ctdrill.regime.config import RegimeConfig
from ctdrill.regime.states import Regime
from ctdrill.targets.target import Target
from ctdrill.telemetry.protocol import Hello, Sample, SlabInfo, TableFullEvent
from ctdrill.watch import service as service_mod
from ctdrill.watch.exposition import TargetView, render
from ctdrill.watch.service import WatchService
from tests.consumers import assert_promtool_accepts, series


def metrics(count: int = 943718, maximum: int = 1048576) -> WindowMetrics:
    return WindowMetrics(t=1795683631.2067769, window_s=1, count=count, max=maximum,
                         buckets=262144, ctr=count / maximum, hcp95=17,
                         chain_too_long_per_s=0, nfd_per_s=4817.696762098028,
                         nfd_fraction=0.125, new_flows_per_s=30, early_drop_per_s=2.5,
                         insert_failed_per_s=0, drops=3, table_full_events=1)


SLAB = SlabInfo(active_objs=1046573, num_objs=1048576, objsize=320, objperslab=25,
                pagesperslab=2)
VIEWS = {
    "gw": TargetView('g"w\\1\n', True, Regime.PRESSURED, metrics(), 2, 1, 1048577, 608,
                     SLAB),
    "x": TargetView("x", False, Regime.HEALTHY, None, 0, 0),
}


@pytest.mark.parametrize("views", [VIEWS, {"gw": VIEWS["gw"]}, {"x": VIEWS["x"]}, {}],
                         ids=["two", "with-metrics", "no-metrics-yet", "no-targets"])
def test_promtool_accepts_the_page(views: dict[str, TargetView]) -> None:
    assert_promtool_accepts(render(views))


def test_names_follow_node_exporter_and_values_keep_their_precision() -> None:
    found = series(render(VIEWS))
    gw = {"host": 'g"w\\1\n'}
    assert found["ctdrill_conntrack_entries"] == [(gw, 943718)]
    assert found["ctdrill_conntrack_entries_limit"] == [(gw, 1048576)]
    assert found["ctdrill_conntrack_table_ratio"] == [(gw, 943718 / 1048576)]
    assert found["ctdrill_conntrack_new_flow_drops_per_second"] == [(gw, 4817.696762098028)]
    assert found["ctdrill_conntrack_new_flow_drop_ratio"] == [(gw, 0.125)]
    assert found["ctdrill_conntrack_hash_chain_length"] == [({**gw, "quantile": "0.95"}, 17)]
    assert found["ctdrill_telemetry_last_sample_timestamp_seconds"] == [(gw, 1795683631.2067769)]
    drops = dict((labels["host"], v) for labels, v in found["ctdrill_conntrack_new_flow_drops_total"])
    assert drops == {'g"w\\1\n': 1048577, "x": 0}
    assert ({**gw, "regime": "CT_PRESSURED"}, 1) in found["ctdrill_regime"]
    assert ({"host": "x"}, 0) in found["ctdrill_target_up"]
    assert not any(labels["host"] == "x" for labels, _ in found["ctdrill_conntrack_entries"])
    assert not [n for n in found if n.startswith(("ctdrill_ctr", "ctdrill_hcp", "ctdrill_nfd"))]


def test_slab_series_in_base_units_and_absent_where_unreadable() -> None:
    found = series(render(VIEWS))
    gw = {"host": 'g"w\\1\n'}
    assert found["ctdrill_conntrack_slab_objects"] == [(gw, 1048576)]
    assert found["ctdrill_conntrack_slab_active_objects"] == [(gw, 1046573)]
    assert found["ctdrill_conntrack_slab_object_size_bytes"] == [(gw, 320)]
    assert found["ctdrill_conntrack_slab_bytes"] == [(gw, 1048576 * 320)]  # 320 MiB exactly
    # a target whose agent cannot read /proc/slabinfo (or with none yet) has no slab series
    with_window_no_slab = {"gw": replace(VIEWS["gw"], slab=None)}
    page = render(with_window_no_slab)
    assert_promtool_accepts(page)
    assert not [n for n in series(page) if "_slab_" in n]
    assert "ctdrill_conntrack_entries" in series(page)


def test_families_have_the_types_their_names_promise() -> None:
    types = {f.name: f.type for f in text_string_to_metric_families(render(VIEWS))}
    assert types["ctdrill_conntrack_hash_chain_length"] == "summary"
    assert types["ctdrill_regime_transitions"] == "counter"
    assert types["ctdrill_conntrack_new_flow_drops"] == "counter"
    assert types["ctdrill_conntrack_entries"] == "gauge"
    assert types["ctdrill_conntrack_slab_bytes"] == "gauge"


# --- the service: HTTP endpoint and counters, with a fake stream (no lab, no sleeps) ---


class FakeStream:
    """A stream of given samples; when they run out the watch is asked to stop."""

    def __init__(self, samples: list[Sample], stop: threading.Event) -> None:
        self.hello = Hello(agent=1, netns_inode=1, host="gw", kmsg=True, conntrack=True, hz=20)
        self.samples, self.stop = samples, stop

    def __iter__(self) -> Iterator[Sample]:
        yield from self.samples
        self.stop.set()

    def close(self) -> None:
        return None


def sample(seq: int, drop: int, events: int = 0) -> Sample:
    return Sample(seq=seq, t=100 + seq * 0.05, received=0, count=900 + seq, max=1000,
                  buckets=1024, stat={"drop": drop},
                  events=tuple(TableFullEvent(seq, "table full") for _ in range(events)),
                  slab=SlabInfo(900 + seq, 1024 + 16 * seq, 256, 16, 1))


def test_counters_count_each_kernel_drop_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows overlap (20 Hz, 1 s): the counter follows the kernel counter, not the sum
    of windows. The drop counter goes 10 -> 70 (one reset to 5 counts as 0)."""
    drops = [10, 20, 30, 30, 5, 25, 55, 65]
    svc = WatchService([Target("gw", "local")], hz=20, window_s=1.0, cfg=RegimeConfig(),
                       out=io.StringIO())
    samples = [sample(i, d, events=i % 2) for i, d in enumerate(drops)]
    monkeypatch.setattr(service_mod, "open_stream",
                        lambda target, hz: FakeStream(samples, svc.stop))
    watch = svc.watches["gw"]
    watch.thread.start()
    watch.thread.join(timeout=30)
    assert not watch.thread.is_alive()
    view = watch.view()
    assert view.new_flow_drops == (30 - 10) + (65 - 5) and view.table_full_events == 4
    found = series(svc.metrics_text())
    assert found["ctdrill_conntrack_new_flow_drops_total"] == [({"host": "gw"}, 80)]
    assert found["ctdrill_conntrack_table_full_events_total"] == [({"host": "gw"}, 4)]
    # the slab cache is a level: the last sample's (seq 7), not a sum or a maximum
    assert found["ctdrill_conntrack_slab_objects"] == [({"host": "gw"}, 1024 + 16 * 7)]
    assert found["ctdrill_conntrack_slab_bytes"] == [({"host": "gw"}, (1024 + 16 * 7) * 256)]


def test_http_endpoint_serves_text_or_openmetrics_as_asked() -> None:
    svc = WatchService([Target("gw", "local")], hz=20, window_s=1.0, cfg=RegimeConfig(),
                       out=io.StringIO())
    watch = svc.watches["gw"]
    watch.metrics, watch.up = metrics(), True
    port = svc.serve("127.0.0.1", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as resp:
            text = resp.read().decode()
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert_promtool_accepts(text)
        assert series(text)["ctdrill_conntrack_entries_limit"] == [({"host": "gw"}, 1048576)]
        req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={
            "Accept": "application/openmetrics-text; version=1.0.0"})
        with urllib.request.urlopen(req) as resp:
            assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
            om = {f.name for f in openmetrics_families(resp.read().decode())}
        assert {"ctdrill_conntrack_entries", "ctdrill_regime_transitions"} <= om
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other")
        assert err.value.code == 404
    finally:
        svc.close()
