"""Journal -> report model, on trimmed real journals: what the report says must be what
the run recorded (verdicts, transitions, steps, reverts), and a broken or half-written
journal still gives a report instead of a crash."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ctdrill.report import build_report, render_html, render_junit, render_markdown, render_prom
from ctdrill.report.model import REGIMES
from tests.unit.test_report_support import records, report


def test_passed_run_has_its_verdicts_transitions_and_revert() -> None:
    r = report("table-pressure-replay")
    assert r.status == "passed" and r.exit_code == 0 and r.passed
    assert r.drill == "table-pressure-replay"
    assert len(r.expectations) == 10 and all(e.passed for e in r.expectations)
    path = [t.to_state for t in r.transitions]
    assert path == ["CT_TIGHTENING", "CT_PRESSURED", "CT_TIGHTENING", "CT_HEALTHY"]
    assert r.revert_verified is True
    assert {x.host for x in r.reverts} == {"gw", "kernel"}
    assert r.key_metrics["gw"]["nfd_per_s_max"] == pytest.approx(4817.7, rel=1e-3)
    assert r.probe_host == "client"


def test_regime_bands_follow_the_transitions_and_tile_the_observation() -> None:
    r = report("table-pressure-replay")
    (tl,) = r.timelines
    assert tl.host == "gw" and tl.final_regime == "CT_HEALTHY"
    assert [b.regime for b in tl.bands] == ["CT_HEALTHY", "CT_TIGHTENING", "CT_PRESSURED",
                                             "CT_TIGHTENING", "CT_HEALTHY"]
    for a, b in zip(tl.bands, tl.bands[1:], strict=False):
        assert a.end == b.start
    assert tl.bands[0].start >= 0 and tl.bands[-1].end == pytest.approx(r.observed_s)
    starts = [t.t for t in r.transitions]
    assert [b.start for b in tl.bands[1:]] == starts
    assert 40 < r.observed_s < 50  # observe.duration_s is 45


def test_surge_profile_requested_from_the_replay_and_achieved_from_the_result() -> None:
    r = report("table-pressure-replay")
    assert r.surge is not None and r.surge.shape == "replay"
    assert max(rate for _, rate in r.surge.requested) == 12000  # the profile's peak
    fill, shape = r.surge.achieved
    assert (fill.name, shape.name) == ("fill", "shape")
    assert fill.rate == pytest.approx(3999.7) and shape.rate == pytest.approx(4749.9)
    assert shape.start == pytest.approx(fill.end)
    # the load started 2 s into the observation (load.start_s)
    assert fill.start == pytest.approx(2.0, abs=0.05)
    assert not r.problems


def test_replay_without_its_profile_says_so() -> None:
    r = report("table-pressure-replay", profile=False)
    assert r.surge is not None and r.surge.achieved
    assert any("profile" in p and "not found" in p for p in r.problems)


def test_probe_quantiles_per_regime_show_the_tail_under_pressure() -> None:
    by = {g.regime: g for g in report("table-pressure-replay").probe_by_regime}
    assert set(by) == {"CT_HEALTHY", "CT_TIGHTENING", "CT_PRESSURED"}
    assert by["CT_PRESSURED"].dwell_worst_p99_ms is not None
    assert by["CT_PRESSURED"].dwell_worst_p99_ms > 500  # the run's own verdict: > 500
    assert by["CT_HEALTHY"].dwell_p99_ms is not None and by["CT_HEALTHY"].dwell_p99_ms < 100
    assert sum(g.messages for g in by.values()) <= 2517


def test_capacity_steps_response_matches_the_judged_trend() -> None:
    r = report("capacity-step")
    assert r.status == "failed" and r.exit_code == 1
    failed = [e.name for e in r.expectations if e.passed is False]
    assert failed == ["NFD falls as capacity rises"]
    assert [s.name for s in r.steps] == ["max-4k", "max-8k", "max-32k", "max-only-64k"]
    gw = {s.name: s.hosts[0] for s in r.steps}
    # the verdict detail: max-4k=2282, max-8k=0, max-32k=0 (the fixture keeps 1 in 5)
    assert gw["max-4k"].nfd_mean == pytest.approx(2282, rel=0.1)
    assert gw["max-8k"].nfd_mean == 0 and gw["max-32k"].nfd_mean == 0
    assert (gw["max-only-64k"].hcp95_max or 0) > (gw["max-32k"].hcp95_max or 0)  # chains grow
    assert (r.steps[0].probe_cost_p95_bps or 0) > 10 > (r.steps[2].probe_cost_p95_bps or 99)
    settings = {s.name: dict((k.rsplit(".", 1)[1], v) for _, k, v in s.settings)
                for s in r.steps}
    assert settings["max-only-64k"] == {"nf_conntrack_buckets": "4096",
                                        "nf_conntrack_max": "65536"}
    for a, b in zip(r.steps, r.steps[1:], strict=False):
        assert a.end == b.start


def test_changes_are_the_plan_and_each_step_starts_from_the_previous_one() -> None:
    r = report("capacity-step")
    base = [c for c in r.changes if c.step is None]
    assert {c.host for c in base} == {"gw"}
    kernel = [(c.step, s.key.rsplit(".", 1)[1], s.before, s.after) for c in r.changes
              if c.host == "kernel" for s in c.sysctl if s.key.endswith("_max")]
    assert kernel == [("max-4k", "nf_conntrack_max", "262144", "4096"),
                      ("max-8k", "nf_conntrack_max", "4096", "8192"),
                      ("max-32k", "nf_conntrack_max", "8192", "32768"),
                      ("max-only-64k", "nf_conntrack_max", "32768", "65536")]


def test_revert_failure_then_recovery_uses_the_latest_revert_per_host() -> None:
    r = report("revert-failed-recovered")
    assert r.status == "revert_failed" and r.exit_code == 4
    by = {x.host: x for x in r.reverts}
    assert by["kernel"].verified and by["kernel"].source == "ctdrill revert"
    assert not by["gw"].verified and "not found" in by["gw"].problems[0]
    assert r.revert_verified is False and not r.recovered
    assert r.counts() == {"passed": 0, "failed": 0, "not_judged": 9}
    assert "telemetry" in (r.reason or "")


def test_refused_run_changed_nothing() -> None:
    r = report("refused-locked")
    assert r.status == "refused" and r.exit_code is None
    assert r.revert_verified is None and not r.changes
    assert "locked" in (r.reason or "")
    assert r.duration_s > 0


def test_half_written_journal_is_incomplete_not_an_error() -> None:
    recs = records("table-pressure-replay")
    cut = next(i for i, rec in enumerate(recs) if rec["type"] == "transition") + 3
    r = build_report(recs[:cut])
    assert r.status == "incomplete" and r.exit_code is None
    assert any("no end record" in p for p in r.problems)
    assert r.counts()["not_judged"] == 9
    assert r.timelines and r.transitions
    assert r.revert_verified is False  # a plan exists, no revert recorded yet


def test_journal_of_an_unknown_spec_version_still_reports() -> None:
    recs = records("capacity-step")
    start = dict(recs[0])
    start["spec"] = {**start["spec"], "a_field_from_the_future": 1}
    r = build_report([start, *recs[1:]])
    assert [s.name for s in r.steps] and r.expectations
    assert r.thresholds == {}  # the regime config came from the spec it cannot read


def _mutations(recs: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Every field of every record (a few telemetry batches) replaced by a value of the
    wrong type, cycling through null, text, array and object to keep the test fast."""
    wrong: list[Any] = [None, "x", [1], {"k": "v"}]
    out = []
    for i, rec in enumerate(recs):
        if rec["type"] == "samples" and i % 7:
            continue
        for j, key in enumerate(k for k in rec if k != "type"):
            changed = list(recs)
            changed[i] = {**rec, key: wrong[(i + j) % len(wrong)]}
            out.append(changed)
    return out


@pytest.mark.parametrize("name", ["capacity-step"])
def test_any_malformed_field_gives_a_report_not_a_traceback(name: str) -> None:
    recs = records(name)
    for variant in _mutations(recs):
        r = build_report(variant)
        for render in (render_html, render_junit, render_markdown, render_prom):
            assert render(r)


def test_records_round_trip_through_json() -> None:
    """The builder reads plain JSON values only (what read_journal returns)."""
    recs = json.loads(json.dumps(records("table-pressure-replay")))
    assert build_report(recs).status == "passed"
    assert set(REGIMES) >= {b.regime for tl in build_report(recs).timelines for b in tl.bands}
