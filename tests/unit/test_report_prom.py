"""The Prometheus textfile, checked by the real consumers: `promtool check metrics`
(parser and linter) on every kind of run, and prometheus_client's own parser to read
the values back. Then what an alert needs: revert_verified present (0) whenever hosts
were changed without a verified revert, and `passed` taken from the evidence."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ctdrill.errors import InvalidInput
from ctdrill.report import render_prom
from ctdrill.report.files import previous_last_success, write_textfile
from ctdrill.report.model import ExpectationRow, Report, RevertRow
from tests.consumers import Series, assert_promtool_accepts, promtool_check_metrics, series
from tests.unit.test_report_support import crashed_after_changes, output_cases, report

CASES = output_cases()


def one(found: Series, name: str) -> float:
    (only,) = found[name]
    return only[1]


def test_promtool_can_fail_on_what_the_issue_found() -> None:
    bad = ("# HELP ctdrill_conntrack_count x\n# TYPE ctdrill_conntrack_count gauge\n"
           'ctdrill_conntrack_count{host="gw"} 1.04858e+06\n')
    result = promtool_check_metrics(bad)
    assert result.returncode != 0 and "_count" in result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(CASES))
def test_promtool_accepts_the_textfile(name: str) -> None:
    text = render_prom(CASES[name])
    assert_promtool_accepts(text)
    parsed = [s for fam in text_string_to_metric_families(text) for s in fam.samples]
    assert parsed and all(s.timestamp is None for s in parsed)  # the collector refuses them
    found = series(text)
    assert all(labels["drill"] == CASES[name].drill for rows in found.values()
               for labels, _ in rows)


def test_crashed_after_changes_exports_revert_verified_zero_per_host() -> None:
    found = series(render_prom(crashed_after_changes()))
    by_host = {labels["host"]: v for labels, v in found["ctdrill_drill_revert_verified"]}
    assert by_host == {"gw": 0, "kernel": 0}
    assert one(found, "ctdrill_drill_passed") == 0
    assert one(found, "ctdrill_drill_exit_code") == -1
    assert "ctdrill_drill_last_success_timestamp_seconds" not in found


def test_revert_verified_per_host_and_absent_when_nothing_changed() -> None:
    found = series(render_prom(report("revert-failed-recovered")))
    by_host = {labels["host"]: v for labels, v in found["ctdrill_drill_revert_verified"]}
    assert by_host == {"gw": 0, "kernel": 1}  # kernel by the later `ctdrill revert`
    assert "ctdrill_drill_revert_verified" not in series(render_prom(report("refused-locked")))


def test_passed_comes_from_the_verdicts_and_the_revert_not_the_exit_code() -> None:
    good = report("table-pressure-replay")
    assert good.exit_code == 0 and good.passed
    found = series(render_prom(good))
    assert one(found, "ctdrill_drill_passed") == 1
    assert one(found, "ctdrill_drill_last_success_timestamp_seconds") == good.ended_at
    failed_verdict = replace(good, expectations=(
        *good.expectations[1:], ExpectationRow("x", False, 1.0, "no")))
    unjudged = replace(good, expectations=(
        *good.expectations[1:], ExpectationRow("x", None, None, "not judged")))
    unreverted = replace(good, reverts=(RevertRow("gw", False, (), (), ("p",), "run", "armed"),
                                        *good.reverts[1:]))
    for r in (failed_verdict, unjudged, unreverted):
        assert r.exit_code == 0 and r.status == "passed" and not r.passed
        found = series(render_prom(r))
        assert one(found, "ctdrill_drill_passed") == 0
        assert "ctdrill_drill_last_success_timestamp_seconds" not in found


def test_last_run_key_metrics_in_base_units_and_summary_quantiles() -> None:
    r = report("capacity-step")
    found = series(render_prom(r))
    assert one(found, "ctdrill_drill_passed") == 0 and one(found, "ctdrill_drill_exit_code") == 1
    assert one(found, "ctdrill_drill_last_run_timestamp_seconds") == r.ended_at
    (info,) = found["ctdrill_drill_info"]
    assert info == ({"drill": "capacity-step", "run_id": r.run_id, "status": "failed"}, 1)
    exp = {labels["result"]: v for labels, v in found["ctdrill_drill_expectations"]}
    assert exp == {"passed": 4, "failed": 1, "not_judged": 0}
    (ratio,) = found["ctdrill_drill_peak_conntrack_table_ratio"]
    assert ratio == ({"drill": "capacity-step", "host": "gw"}, r.key_metrics["gw"]["ctr_max"])
    (chain,) = found["ctdrill_drill_peak_conntrack_hash_chain_length"]
    assert chain[0]["quantile"] == "0.95" and chain[1] == r.key_metrics["gw"]["hcp95_max"]
    dwell = {labels["quantile"]: (labels["host"], v)
             for labels, v in found["ctdrill_drill_probe_ack_dwell_seconds"]}
    assert set(dwell) == {"0.5", "0.99"} and dwell["0.99"][0] == "client"
    assert 1 < dwell["0.99"][1] < 10  # seconds, not ms
    cdt = {labels["quantile"]: v for labels, v in found["ctdrill_drill_probe_cdt_ratio"]}
    assert cdt["0.95"] == pytest.approx((r.key_metrics["probe"]["cdt_p95_bps"] or 0) * 1e-4)
    final = {labels["regime"]: v for labels, v in found["ctdrill_drill_final_regime"]}
    assert final == {"CT_HEALTHY": 0, "CT_TIGHTENING": 1, "CT_PRESSURED": 0,
                     "CT_SAFE_CONTAIN": 0}
    assert not [n for n in found if n.endswith(("_max", "_basis_points", "_p99_seconds"))]


def test_values_keep_their_precision() -> None:
    r = report("capacity-step")
    gw = {**r.key_metrics["gw"], "drops": 1048576.0, "table_full_events": 123456789012.0}
    text = render_prom(replace(r, key_metrics={**r.key_metrics, "gw": gw}))
    assert_promtool_accepts(text)
    found = series(text)
    assert one(found, "ctdrill_drill_new_flow_drops") == 1048576
    assert one(found, "ctdrill_drill_table_full_events") == 123456789012
    assert "1.04858e+06" not in text
    assert one(found, "ctdrill_drill_last_run_timestamp_seconds") == r.ended_at  # all digits


def test_label_values_are_escaped_for_the_parser() -> None:
    host = 'we"ird\\host\nname'
    r = report("capacity-step")
    r = replace(r, revert_hosts=(host,),
                reverts=(RevertRow(host, True, (), (), (), "run", "disarmed"),))
    text = render_prom(r)
    assert_promtool_accepts(text)
    (row,) = series(text)["ctdrill_drill_revert_verified"]
    assert row == ({"drill": "capacity-step", "host": host}, 1)


def _prom_value(path: Path, name: str) -> float | None:
    rows = series(path.read_text()).get(name, [])
    return rows[0][1] if rows else None


def test_textfile_keeps_the_last_success_through_a_failing_run(tmp_path: Path) -> None:
    good, bad = report("table-pressure-replay"), crashed_after_changes()
    assert good.drill == bad.drill
    path = write_textfile(tmp_path, good)
    assert path == tmp_path / "ctdrill-table-pressure-replay.prom"
    assert previous_last_success(path, good.drill) == good.ended_at
    write_textfile(tmp_path, bad)
    assert_promtool_accepts(path.read_text())
    assert _prom_value(path, "ctdrill_drill_last_success_timestamp_seconds") == good.ended_at
    assert _prom_value(path, "ctdrill_drill_passed") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # nothing half-written


def test_textfile_ignores_an_unreadable_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "ctdrill-table-pressure-replay.prom"
    path.write_bytes(b"\xff not metrics {{{\n")
    write_textfile(tmp_path, crashed_after_changes())
    assert _prom_value(path, "ctdrill_drill_last_success_timestamp_seconds") is None


def test_textfile_refuses_a_drill_name_that_is_not_a_file_name(tmp_path: Path) -> None:
    r: Report = replace(report("capacity-step"), drill="../../etc/cron.d/x")
    with pytest.raises(InvalidInput, match="cannot name a textfile"):
        write_textfile(tmp_path / "textfile", r)
    assert not (tmp_path / "textfile").exists()
