"""Telemetry against the real kernel, over both transports."""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ctdrill.errors import EnvironmentProblem, InvalidInput
from ctdrill.lab.flows import send_udp_flows
from ctdrill.lab.manager import LabUp
from ctdrill.metrics.conntrack import ctr, window_metrics
from ctdrill.system.knobs import global_knobs, read_knob
from ctdrill.targets.inventory import Inventory
from ctdrill.targets.target import Target
from ctdrill.telemetry.protocol import Sample
from ctdrill.telemetry.streams import open_stream
from tests.integration.helpers import flush_conntrack, ns_count
from tests.waiting import wait_until

pytestmark = pytest.mark.root

MAX_KEY = "net.netfilter.nf_conntrack_max"


def collect(target: Target, hz: float, samples_after: int,
            during: Callable[[], None] | None = None) -> list[Sample]:
    """Stream until `samples_after` samples have arrived after `during` (run once the
    first sample is in) returned; the stream's own rate is a benchmark, not a test."""
    stream = open_stream(target, hz)
    samples: list[Sample] = []
    thread = threading.Thread(target=lambda: samples.extend(stream), daemon=True)
    thread.start()
    try:
        wait_until(lambda: samples, "the first sample")
        if during is not None:
            during()
        mark = len(samples)
        wait_until(lambda: len(samples) >= mark + samples_after,
                   f"{samples_after} samples from {target.name}")
    finally:
        stream.close()
        thread.join(timeout=3)
    return samples


def test_flood_moves_count_and_ctr_exactly_as_proc_reads(lab: LabUp) -> None:
    inv = Inventory(lab.plan.inventory_path)
    gw = inv.target("gw")
    gw_ns = lab.plan.host("gw").netns
    flush_conntrack(gw_ns)
    flows = 3000

    def flood() -> None:
        sent, errors = send_udp_flows(lab.plan.host("client").netns,
                                      lab.plan.host("venue").data_addr, flows,
                                      lab.plan.target_networks, first_port=20000)
        assert (sent, errors) == (flows, 0)

    before = ns_count(gw_ns)
    samples = collect(gw, 50, 25, during=flood)
    proc_count = ns_count(gw_ns)
    proc_max = int(read_knob(MAX_KEY))
    last = samples[-1]
    assert proc_count - before == flows
    assert last.count == proc_count
    assert last.max == proc_max
    assert ctr(last.count, last.max) == pytest.approx(proc_count / proc_max)
    assert samples[0].count <= before + 1  # the first sample predates the flood
    m = window_metrics(samples[0], last)
    assert m.nfd_per_s == 0


def test_lowered_max_gives_nfd_and_table_full_events_attributed_to_gw(lab: LabUp) -> None:
    inv = Inventory(lab.plan.inventory_path)
    gw = inv.target("gw")
    gw_ns = lab.plan.host("gw").netns
    flush_conntrack(gw_ns)
    original = read_knob(MAX_KEY)
    with global_knobs({MAX_KEY: 1000}):
        stream = open_stream(gw, 50)
        samples: list[Sample] = []
        try:
            thread = threading.Thread(target=lambda: samples.extend(stream), daemon=True)
            thread.start()
            wait_until(lambda: samples, "the first sample")
            send_udp_flows(lab.plan.host("client").netns, lab.plan.host("venue").data_addr,
                           4000, lab.plan.target_networks, first_port=30000)
            wait_until(lambda: any(e for s in samples for e in s.events),
                       "a table-full event in the gateway's samples")
            mark = len(samples)
            wait_until(lambda: len(samples) > mark + 5, "samples after the drops")
        finally:
            stream.close()
            thread.join(timeout=3)
        flush_conntrack(gw_ns)
        hello_inode = stream.hello.netns_inode
    assert read_knob(MAX_KEY) == original
    gw_inode = int(subprocess.run(["ip", "netns", "exec", gw_ns, "stat", "-L", "-c", "%i",
                                   "/proc/self/ns/net"], capture_output=True, text=True,
                                  check=True).stdout)
    assert hello_inode == gw_inode
    m = window_metrics(samples[0], samples[-1])
    assert m.nfd_per_s > 0
    assert m.drops > 1000
    assert 0 < m.nfd_fraction <= 1
    events = [e for s in samples for e in s.events]
    assert events, "no table-full event reached the gateway's sampler"
    assert all(f"netns {gw_inode}," in e.message for e in events)


SLAB_COLUMNS = ("active_objs", "num_objs", "objsize", "objperslab", "pagesperslab")
Read = tuple[float, float, dict[str, int]]
"""One read of /proc/slabinfo by the test: (wall time before, wall time after, fields)."""


def proc_slab_now() -> Read:
    """The nf_conntrack line of /proc/slabinfo, read here (root) and split by position as
    the 2.1 format documents it: not through the agent's parser, which it checks."""
    before = time.time()
    text = Path("/proc/slabinfo").read_text()
    after = time.time()
    (cells,) = [ln.split() for ln in text.splitlines() if ln.split()[:1] == ["nf_conntrack"]]
    return before, after, dict(zip(SLAB_COLUMNS, map(int, cells[1:6]), strict=True))


def bracket(reads: list[Read], sample: Sample) -> list[Read]:
    """The test's reads around the agent's: from the last one that ended before the agent
    began its sample (`t`) to the first that began after the sample arrived here
    (`received`): the kernel's values on both sides of the agent's read, and between."""
    before = [i for i, r in enumerate(reads) if r[1] <= sample.t]
    after = [i for i, r in enumerate(reads) if r[0] >= sample.received]
    if not before or not after:
        return []
    return reads[before[-1]:after[0] + 1]


def test_slab_figures_are_proc_slabinfos_at_the_same_moment(lab: LabUp) -> None:
    """Each sample's slab cache against /proc/slabinfo read back to back around it. No
    tolerance beyond what the kernel itself showed between the bracketing reads (often
    nothing), so a wrong column (active for num, objperslab for pagesperslab) fails, as
    does a value read once and repeated: the flood moves the cache during the stream."""
    gw = Inventory(lab.plan.inventory_path).target("gw")
    gw_ns = lab.plan.host("gw").netns
    flush_conntrack(gw_ns)
    flows = 3000
    reads: list[Read] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            reads.append(proc_slab_now())

    def flood() -> None:
        sent, errors = send_udp_flows(lab.plan.host("client").netns,
                                      lab.plan.host("venue").data_addr, flows,
                                      lab.plan.target_networks, first_port=40000)
        assert (sent, errors) == (flows, 0)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        samples = collect(gw, 20, 20, during=flood)
    finally:
        stop.set()
        poller.join(timeout=10)
        flush_conntrack(gw_ns)
    checked = 0
    for s in samples:
        assert s.slab is not None, "root reads /proc/slabinfo: the agent must have"
        assert s.slab.bytes == s.slab.num_objs * s.slab.objsize
        around = bracket(reads, s)
        if not around:  # the stream's first or last, outside the test's reads
            continue
        for name in SLAB_COLUMNS:
            seen = [r[2][name] for r in around]
            assert min(seen) <= getattr(s.slab, name) <= max(seen), (name, s.slab, seen)
        checked += 1
    assert checked >= 15
    first, last = samples[0].slab, samples[-1].slab
    assert first is not None and last is not None
    # the gateway's new entries live in the kernel-wide cache: it grew by about that many
    assert last.active_objs - first.active_objs >= flows // 2


def _an_ordered_stream(samples: list[Sample]) -> None:
    """Every sample once, in order, each timestamped after the one before. Rate and
    jitter are benchmarks (bench/telemetry_rate.py, docs/BENCH-telemetry.md)."""
    assert [s.seq for s in samples] == list(range(samples[0].seq, samples[0].seq + len(samples)))
    assert all(b.t > a.t for a, b in itertools.pairwise(samples))


def test_ssh_transport_streams_with_host_key_checking(lab: LabUp) -> None:
    inv = Inventory(lab.plan.ssh_inventory_path)
    gw = inv.target("gw")
    assert gw.transport == "ssh" and gw.known_hosts
    samples = collect(gw, 50, 100)
    _an_ordered_stream(samples)
    assert all(s.received >= s.t - 0.05 for s in samples)  # pushed, not invented later


def test_netns_transport_streams_50hz(lab: LabUp) -> None:
    gw = Inventory(lab.plan.inventory_path).target("gw")
    _an_ordered_stream(collect(gw, 50, 75))


def test_unknown_host_key_is_refused(lab: LabUp, tmp_path: Path) -> None:
    gw = Inventory(lab.plan.ssh_inventory_path).target("gw")
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    from dataclasses import replace

    with pytest.raises(EnvironmentProblem, match="is unknown"):
        open_stream(replace(gw, known_hosts=str(empty)), 10)
    wrong = tmp_path / "wrong"
    other = Path(lab.plan.state_dir / "keys" / "host_venue.pub").read_text().split()[:2]
    wrong.write_text(f"{gw.host} {other[0]} {other[1]}\n")
    with pytest.raises(EnvironmentProblem, match="does not match"):
        open_stream(replace(gw, known_hosts=str(wrong)), 10)


def test_unreachable_ssh_host_is_one_clear_error(lab: LabUp) -> None:
    gw = Inventory(lab.plan.ssh_inventory_path).target("gw")
    from dataclasses import replace

    # the gw's own management address on a closed port: inside our namespace, refused
    with pytest.raises(EnvironmentProblem, match="cannot reach"):
        open_stream(replace(gw, port=2), 10)


def test_flow_helper_refuses_destinations_outside_the_lab(lab: LabUp) -> None:
    with pytest.raises(InvalidInput, match="outside the target networks"):
        send_udp_flows(lab.plan.host("client").netns, "192.0.2.1", 1, lab.plan.target_networks)
