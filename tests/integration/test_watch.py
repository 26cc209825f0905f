"""`ctdrill watch` on the real lab: /metrics and the transition stream during pressure,
and a target that goes away and comes back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ctdrill.lab.manager import LabUp
from ctdrill.regime.config import RegimeConfig
from ctdrill.system.knobs import global_knobs
from ctdrill.targets.inventory import Inventory
from ctdrill.watch.service import WatchService
from tests.consumers import assert_promtool_accepts
from tests.integration.helpers import flush_conntrack
from tests.waiting import wait_until

pytestmark = pytest.mark.root


def events(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    wait_until(predicate, "the watch to report it", timeout)


Page = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Page:
    """The live /metrics page, accepted by promtool, as (name, labels) -> value."""
    page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    assert_promtool_accepts(page)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(page) for s in fam.samples}


def on_gw(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"host": "gw", **labels}.items()))


def argv_of(pid: str) -> list[bytes]:
    """A process's argv ([] once it has gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return []


def _slab_series_agree_with_the_kernel(page: Page) -> None:
    """The conntrack slab cache on the page: its object size is /proc/slabinfo's (read
    here, by position), bytes are objects x size, and the kernel-wide cache holds at
    least the gateway's entries (allowing for entries that expired between the sample
    behind the window and the one behind the slab)."""
    (cells,) = [ln.split() for ln in Path("/proc/slabinfo").read_text().splitlines()
                if ln.split()[:1] == ["nf_conntrack"]]
    objects = page[("ctdrill_conntrack_slab_objects", on_gw())]
    active = page[("ctdrill_conntrack_slab_active_objects", on_gw())]
    size = page[("ctdrill_conntrack_slab_object_size_bytes", on_gw())]
    assert size == int(cells[3])
    assert page[("ctdrill_conntrack_slab_bytes", on_gw())] == objects * size
    assert objects >= active >= 0.9 * page[("ctdrill_conntrack_entries", on_gw())]


def test_watch_serves_metrics_streams_transitions_and_survives_a_lost_target(
        lab: LabUp, tmp_path: Path) -> None:
    gw = Inventory(lab.plan.inventory_path).target("gw")
    out_path = tmp_path / "transitions.jsonl"
    out = out_path.open("a")
    service = WatchService([gw], hz=20, window_s=0.5,
                           cfg=RegimeConfig(dwell_tightening_s=0.5, dwell_pressured_s=0.5),
                           out=out)
    port = service.serve("127.0.0.1", 0)
    service.start()
    gw_ns = lab.plan.host("gw").netns
    try:
        wait_for(lambda: any(e["event"] == "target_up" for e in events(out_path)))
        flush_conntrack(gw_ns)
        with global_knobs({"net.netfilter.nf_conntrack_max": 3000}):
            # a real surge (the batch sender) fills the gateway's table while watched
            surge = subprocess.Popen(
                [sys.executable, "-m", "ctdrill", "surge", "-i", str(lab.plan.inventory_path),
                 "--rate", "5000", "--duration", "3", "--json"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                wait_for(lambda: service.watches["gw"].view().regime.value == "CT_PRESSURED")
            finally:
                surge.communicate(timeout=30)
            page = scrape(port)
            assert page[("ctdrill_regime", on_gw(regime="CT_PRESSURED"))] == 1
            assert page[("ctdrill_target_up", on_gw())] == 1
            assert page[("ctdrill_conntrack_entries_limit", on_gw())] == 3000
            ctr = page[("ctdrill_conntrack_table_ratio", on_gw())]
            assert ctr > 0.9
            _slab_series_agree_with_the_kernel(page)
            flush_conntrack(gw_ns)
        seen = [e["to_state"] for e in events(out_path) if e["event"] == "transition"]
        assert seen[:2] == ["CT_TIGHTENING", "CT_PRESSURED"]
        # the target goes away (its agent dies) and comes back
        pids = subprocess.run(["ip", "netns", "pids", gw_ns], capture_output=True,
                              text=True).stdout.split()
        # the agent is shipped as `python3 -u -c SOURCE --hz N` (telemetry/streams.py)
        agents = [pid for pid in pids if b"--hz" in argv_of(pid)]
        assert agents, "the watched gateway's agent was not found"
        for pid in agents:
            os.kill(int(pid), signal.SIGKILL)
        wait_for(lambda: any(e["event"] == "target_down" for e in events(out_path)))
        wait_for(lambda: sum(e["event"] == "target_up" for e in events(out_path)) >= 2)
        page = scrape(port)
        assert page[("ctdrill_telemetry_reconnects_total", on_gw())] == 1
        assert page[("ctdrill_target_up", on_gw())] == 1
    finally:
        service.close()
        out.close()
        flush_conntrack(gw_ns)
