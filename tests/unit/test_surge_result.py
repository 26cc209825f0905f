"""Workers' reports add up to one truthful result."""

from __future__ import annotations

from typing import Any

from ctdrill.surge.result import aggregate


def report(worker: int, flows: int, stopped: str = "completed", **phase: Any) -> dict[str, Any]:
    ph = {"name": "shape", "flows": flows, "completed": flows, "packets": flows,
          "requested": flows, "forgiven": 0, "wrapped": False, "distinct": flows,
          "started": 10.0 + worker * 0.01, "ended": 12.0, "teardown": 0, **phase}
    return {"type": "done", "worker": worker, "stopped": stopped, "error": "",
            "flows": flows, "completed": flows, "packets": flows, "errors": 0,
            "enobufs": 3, "phases": [ph]}


def test_sums_and_rate_over_the_common_span() -> None:
    r = aggregate([report(0, 1000), report(1, 1000)])
    assert (r["flows"], r["packets"], r["enobufs"], r["workers"]) == (2000, 2000, 6, 2)
    assert r["duration_s"] == 2.0
    assert r["rate"] == 1000.0
    assert r["stopped"] == "completed" and r["shortfall"] == 0


def test_the_strongest_stop_reason_wins() -> None:
    r = aggregate([report(0, 5, "max_duration"), report(1, 5, "SIGTERM")], stopped="SIGINT")
    assert r["stopped"] == "SIGINT"
    assert aggregate([report(0, 5, "max_packets"), report(1, 5)])["stopped"] == "max_packets"


def test_shortfall_and_empty() -> None:
    r = aggregate([report(0, 900, requested=1000.4)])
    assert r["requested"] == 1000 and r["shortfall"] == 100
    assert aggregate([])["flows"] == 0
