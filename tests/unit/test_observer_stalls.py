"""A stream that stalls or ends is lost at once; a guarded or last host lost aborts.

Fake streams (fed by the test) and a fake clock: nothing here waits on wall time. A
`poll` timeout only bounds a hang; the item it waits for is already on its way.
"""

from __future__ import annotations

import queue
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctdrill.engine.observer import Change, Observer, TargetLost, TargetResumed
from ctdrill.engine.signals import StopRequested, StopSignals
from ctdrill.errors import EnvironmentProblem
from ctdrill.journal import Journal, read_journal
from ctdrill.lifecycle.observe import react_to_changes
from ctdrill.targets.target import Target
from ctdrill.telemetry.protocol import Hello, Sample, TableFullEvent

HANG = 10.0  # bounds a hang only


@pytest.fixture(autouse=True)
def pinned_stall_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The arithmetic below is written for a 3-period, 0.5 s stall limit; the shipped
    (more tolerant) values are checked on their own."""
    import ctdrill.engine.coverage as cov

    monkeypatch.setattr(cov, "STALL_PERIODS", 3)
    monkeypatch.setattr(cov, "STALL_FLOOR_S", 0.5)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeStream:
    """Yields what the test feeds it; `end()` (or close) ends it like EOF."""

    hello = Hello(agent=1, netns_inode=1, host="fake", kmsg=False, conntrack=True, hz=20)

    def __init__(self) -> None:
        self._items: queue.Queue[Sample | None] = queue.Queue()
        self.seq = 0

    def feed(self, t: float) -> None:
        self._items.put(Sample(seq=self.seq, t=t, received=t, count=10, max=100, buckets=16))
        self.seq += 1

    def end(self) -> None:
        self._items.put(None)

    def __iter__(self) -> Iterator[Sample]:
        while (item := self._items.get()) is not None:
            yield item

    def close(self) -> None:
        self.end()


def brief(changes: list[Change]) -> list[tuple[object, ...]]:
    """Changes with their silence rounded (the fake clock adds floats)."""
    return [(type(c).__name__, c.host, getattr(c, "why", None),
             getattr(c, "last_sample_t", None), round(c.silent_s, 3)) for c in changes]


def observer_of(*hosts: str) -> tuple[Observer, dict[str, FakeStream], Clock]:
    streams = {h: FakeStream() for h in hosts}
    clock = Clock()
    obs = Observer([Target(h, "netns", netns=h) for h in hosts], hz=20, window_s=1,
                   clock=clock, opener=lambda t, _hz: streams[t.name])
    obs.start()
    return obs, streams, clock


def test_a_quiet_stream_is_lost_after_the_stall_limit_and_resumes() -> None:
    obs, streams, clock = observer_of("gw")
    try:
        streams["gw"].feed(t=5.0)
        assert [o.host for o in obs.poll(HANG)] == ["gw"]
        assert obs.changes() == []
        clock.now += 0.5  # exactly the limit (max(3/20 Hz, 0.5 s)): still live
        obs.poll(0)
        assert obs.changes() == [] and not obs.lost
        clock.now += 0.01
        obs.poll(0)
        assert brief(obs.changes()) == [("TargetLost", "gw", "stalled", 5.0, 0.51)]
        assert "gw" in obs.lost
        obs.poll(0)
        assert obs.changes() == []  # reported once
        streams["gw"].feed(t=6.0)
        assert len(obs.poll(HANG)) == 1
        assert brief(obs.changes()) == [("TargetResumed", "gw", None, None, 0.51)]
        assert not obs.lost
    finally:
        obs.close()


def test_a_target_that_never_sends_is_lost_with_no_last_sample() -> None:
    obs, streams, clock = observer_of("gw", "venue")
    try:
        streams["gw"].feed(t=1.0)
        obs.poll(HANG)
        clock.now += 0.6
        streams["gw"].feed(t=1.6)  # gw keeps sending, venue never did
        obs.poll(HANG)
        assert brief(obs.changes()) == [("TargetLost", "venue", "stalled", None, 0.6)]
    finally:
        obs.close()


def test_a_busy_main_loop_does_not_make_a_live_stream_look_stalled() -> None:
    """Arrival time is taken when the sample arrives, not when the loop gets to it."""
    obs, streams, clock = observer_of("gw")
    try:
        streams["gw"].feed(t=1.0)
        obs.poll(HANG)
        clock.now += 2.0  # the loop was away (a step's apply) ...
        streams["gw"].feed(t=3.0)  # ... while samples kept arriving
        assert len(obs.poll(HANG)) == 1
        assert obs.changes() == []
    finally:
        obs.close()


def test_an_ended_stream_is_lost_as_ended() -> None:
    obs, streams, clock = observer_of("gw")
    try:
        streams["gw"].feed(t=7.0)
        obs.poll(HANG)
        clock.now += 0.1
        streams["gw"].end()
        assert obs.poll(HANG) == []
        assert brief(obs.changes()) == [("TargetLost", "gw", "ended", 7.0, 0.1)]
        assert obs.ended == {"gw"}
        clock.now += 5
        obs.poll(0)
        assert obs.changes() == []  # an ended stream is not also reported stalled
    finally:
        obs.close()


def test_arrivals_are_kept_for_coverage() -> None:
    obs, streams, _ = observer_of("gw")
    try:
        for t in (1.0, 1.05, 1.1):
            streams["gw"].feed(t=t)
            obs.poll(HANG)
        assert obs.arrivals["gw"] == [1.0, 1.05, 1.1]
        assert len(obs.history["gw"]) == 2
    finally:
        obs.close()


def journal(tmp_path: Path) -> Journal:
    j = Journal(tmp_path / "journal.jsonl")
    j.write("start", run_id="r")
    return j


def kinds(j: Journal) -> list[str]:
    return [r["type"] for r in read_journal(j.path)][1:]


def lost(host: str, why: str = "stalled") -> TargetLost:
    return TargetLost(host, why, 12.5, 0.6)  # type: ignore[arg-type]


def test_an_unguarded_host_lost_is_journaled_and_the_run_goes_on(tmp_path: Path) -> None:
    j, seen = journal(tmp_path), list[str]()
    gone = lost("venue")
    recs = react_to_changes([gone], ["gw", "venue"], {"venue": gone}, {"gw"}, j,
                            StopSignals(), seen.append)
    assert [r["host"] for r in recs] == ["venue"]
    rec = read_journal(j.path)[-1]
    assert rec["type"] == "target_lost"
    assert {k: rec[k] for k in ("host", "why", "last_sample_t")} == {
        "host": "venue", "why": "stalled", "last_sample_t": 12.5}
    assert seen == ["venue: telemetry stalled (no sample for 0.6 s)"]


def test_a_guarded_host_lost_aborts(tmp_path: Path) -> None:
    j = journal(tmp_path)
    gone = lost("gw")
    with pytest.raises(StopRequested, match="guard: gw: telemetry stalled"):
        react_to_changes([gone], ["gw", "venue"], {"gw": gone}, {"gw"}, j, StopSignals(),
                         lambda _m: None)
    assert kinds(j) == ["target_lost"]


def test_every_observed_host_lost_aborts(tmp_path: Path) -> None:
    j = journal(tmp_path)
    gw, venue = lost("gw", "ended"), lost("venue")
    with pytest.raises(EnvironmentProblem, match="telemetry lost from every observed host"):
        react_to_changes([venue], ["gw", "venue"], {"gw": gw, "venue": venue}, set(), j,
                         StopSignals(), lambda _m: None)


def test_the_operators_interrupt_wins_over_lost_telemetry(tmp_path: Path) -> None:
    """A Ctrl-C to the process group also kills the local agents: the run must report
    the interrupt, and journal no lost target for it."""
    j, sig = journal(tmp_path), StopSignals()
    sig.handle(signal.SIGINT, None)
    gw = lost("gw", "ended")
    with pytest.raises(StopRequested) as exc:
        react_to_changes([gw], ["gw"], {"gw": gw}, {"gw"}, j, sig, lambda _m: None)
    assert sig.reason and str(exc.value) == sig.reason and "SIGINT" in sig.reason
    assert kinds(j) == []


def test_a_resumed_host_is_journaled(tmp_path: Path) -> None:
    j = journal(tmp_path)
    react_to_changes([TargetResumed("gw", 0.8)], ["gw"], {}, {"gw"}, j, StopSignals(),
                     lambda _m: None)
    assert kinds(j) == ["target_resumed"]


def test_totals_count_each_drop_once_although_windows_overlap() -> None:
    """20 Hz samples in 1 s windows: every drop lies in ~20 windows, but counts once."""
    obs, streams, _clock = observer_of("gw")
    event = TableFullEvent(kts_us=1, message="nf_conntrack: table full in netns 1")
    try:
        for i in range(60):  # 3 s, 7 drops per sample after the first, one event each 10th
            streams["gw"]._items.put(Sample(
                seq=i, t=5.0 + i / 20, received=5.0 + i / 20, count=10, max=100, buckets=16,
                stat={"drop": 1000 + 7 * i}, events=(event,) if i % 10 == 0 else ()))
        seen = 0
        while seen < 60:
            seen += len(obs.poll(HANG))
        assert obs.totals["gw"] == {"drops": 7 * 59, "table_full_events": 6}
        assert sum(w.drops for w in obs.history["gw"]) > 7 * 59  # what summing windows gave
    finally:
        obs.close()
