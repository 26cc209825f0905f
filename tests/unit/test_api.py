"""ctdrill.api: each call returns one frozen result (status, rc, data, paths, to_json)
and refuses bad input with a CtdrillError; importing it costs only the standard library.

The drill engine itself is exercised for real by the integration tests (root); here
`run` gets a stand-in `run_drill`, so what is tested is the API's own policy: which
inventory or lab a run gets, when an ephemeral lab is kept, what the result says.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from ctdrill import api
from ctdrill.engine.hostops import HostRevert
from ctdrill.errors import ExitCode, InvalidInput
from ctdrill.spec.loader import SpecError, load_spec
from tests.unit.api_fakes import FakeEngine
from tests.unit.test_cli_startup import HEAVY, MODELS, imported
from tests.unit.test_report_support import FIXTURES

SPEC = "drill: d\ntargets: {hosts: gw}\n"
INVENTORY = "all:\n  hosts:\n    gw:\n      ansible_host: 192.0.2.10\n"


def test_importing_the_api_loads_no_heavy_library_and_no_spec_model() -> None:
    names, proc = imported("-c", "import ctdrill.api")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not names & (HEAVY | MODELS), sorted(names & (HEAVY | MODELS))


# ---------------------------------------------------------------- validate


def test_validate_names_drills_and_suites_and_locates_problems(tmp_path: Path) -> None:
    good, suite, bad = tmp_path / "d.yaml", tmp_path / "s.yaml", tmp_path / "bad.yaml"
    good.write_text(SPEC)
    suite.write_text("gameday: g\ndrills: [{spec: d.yaml}]\n")
    bad.write_text("drill: x\ntargets: {hosts: gw}\nobserve: {duration_s: -1}\n")
    result = api.validate([good, suite])
    assert (result.status, result.rc) == ("valid", ExitCode.OK)
    assert [(f.kind, f.name) for f in result.files] == [("drill", "d"), ("gameday", "g")]
    result = api.validate([good, bad])
    assert (result.status, result.rc) == ("invalid", ExitCode.INVALID_INPUT)
    doc = json.loads(json.dumps(result.to_json()))
    assert [f["valid"] for f in doc["files"]] == [True, False]
    assert doc["files"][1]["problems"][0]["line"] == 3
    with pytest.raises(SpecError) as raised:
        result.raise_first()
    with pytest.raises(SpecError) as direct:
        load_spec(bad)
    assert raised.value.one_line() == direct.value.one_line()


def test_validate_drills_only_refuses_a_suite_where_a_drill_belongs(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text("gameday: g\ndrills: [{spec: d.yaml}]\n")
    assert api.validate([suite]).rc == ExitCode.OK
    result = api.validate([suite], drills_only=True)
    assert result.rc == ExitCode.INVALID_INPUT and result.files[0].kind == "drill"


def test_results_are_frozen(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text(SPEC)
    result = api.validate([tmp_path / "d.yaml"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.files = ()  # type: ignore[misc]


def test_schema_is_the_drill_or_the_suite_schema() -> None:
    assert "drill" in api.schema()["properties"]
    assert "gameday" in api.schema(suite=True)["properties"]


# ---------------------------------------------------------------- plan, revert


def test_plan_result_is_refused_with_exit_2_when_any_host_refuses() -> None:
    pools = {"targets": ["gw"], "canary": ["gw"], "control": []}
    assert api.PlanResult("d", pools, {}, ()).rc == ExitCode.OK
    refused = api.PlanResult("d", pools, {}, ("gw: too small",))
    assert (refused.status, refused.rc) == ("refused", ExitCode.INVALID_INPUT)
    assert refused.to_json() == {"drill": "d", "pools": pools, "hosts": {},
                                 "refused": ["gw: too small"]}


def test_plan_refuses_an_unknown_target_before_contacting_anything(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text("drill: d\ntargets: {hosts: nope}\n")
    (tmp_path / "inv.yml").write_text(INVENTORY)
    with pytest.raises(InvalidInput, match="nope"):
        api.plan(tmp_path / "d.yaml", tmp_path / "inv.yml")


def _revert(host: str, verified: bool) -> HostRevert:
    return HostRevert(host, verified, {"net.netfilter.nf_conntrack_max": "65536"}, [],
                      [] if verified else ["nf_conntrack_max differs"], {"armed": True})


def test_revert_result_fails_with_exit_4_when_any_host_is_not_back() -> None:
    ok = api.RevertResult(Path("j.jsonl"), {"gw": _revert("gw", True)})
    assert (ok.status, ok.rc, ok.paths) == ("verified", ExitCode.OK,
                                            {"journal": Path("j.jsonl")})
    bad = api.RevertResult(Path("j.jsonl"), {"gw": _revert("gw", True),
                                             "gw2": _revert("gw2", False)})
    assert (bad.status, bad.rc) == ("revert_failed", ExitCode.REVERT_FAILED)
    assert bad.to_json()["verified"] is False
    assert bad.to_json()["hosts"]["gw2"]["problems"] == ["nf_conntrack_max differs"]


def test_revert_of_a_journal_that_is_not_there_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="journal"):
        api.revert(tmp_path / "absent.jsonl")


# ---------------------------------------------------------------- report


def test_report_writes_the_formats_asked_and_reports_the_drills_status(
        tmp_path: Path) -> None:
    journal = Path(shutil.copy(FIXTURES / "capacity-step.jsonl", tmp_path / "journal.jsonl"))
    result = api.report(journal, tmp_path / "out", ["md", "junit"],
                        textfile_dir=tmp_path / "tf")
    assert (result.status, result.rc) == ("failed", ExitCode.OK)  # written: exit 0
    assert set(result.paths) == {"md", "junit", "textfile"}
    assert all(p.is_file() for p in result.paths.values())
    doc = result.to_json()
    assert doc["files"]["md"] == str(tmp_path / "out" / "summary.md")
    assert doc["status"] == "failed" and doc["run_id"] == result.report.run_id


def test_report_refuses_an_unknown_format_before_reading_the_journal(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="unknown report format 'pdf'"):
        api.report(tmp_path / "absent.jsonl", formats="html,pdf")


# ---------------------------------------------------------------- run


@pytest.fixture()
def spec(tmp_path: Path) -> Path:
    (tmp_path / "d.yaml").write_text(SPEC)
    return tmp_path / "d.yaml"


def test_run_on_an_inventory_returns_the_outcome(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, spec: Path) -> None:
    engine = FakeEngine(monkeypatch, tmp_path, ExitCode.EXPECTATIONS_FAILED)
    said: list[str] = []
    result = api.run(spec, tmp_path / "inv.yml", runs_dir=tmp_path / "runs",
                     progress=said.append)
    assert (result.status, result.rc, result.drill) == ("failed", ExitCode.EXPECTATIONS_FAILED,
                                                        "d")
    assert result.paths == {"journal": tmp_path / "runs" / "RUN1" / "journal.jsonl"}
    assert result.paths["journal"].is_file() and result.run_id == "RUN1"
    assert result.to_json() == result.outcome.to_json()
    call = engine.calls[0]
    assert (call["inventory"], call["runs_dir"], call["spec_path"], call["ephemeral_lab"]) \
        == (tmp_path / "inv.yml", tmp_path / "runs", str(spec), None)
    assert said == ["drill d", "drill d: locking"] and engine.labs == []


@pytest.mark.parametrize(("code", "removed"), [(ExitCode.OK, True),
                                               (ExitCode.ABORTED, True),
                                               (ExitCode.REVERT_FAILED, False)])
def test_run_without_inventory_builds_a_lab_and_keeps_it_only_when_not_reverted(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, spec: Path, code: ExitCode,
        removed: bool) -> None:
    engine = FakeEngine(monkeypatch, tmp_path, code)
    result = api.run(spec)
    (lab,) = engine.labs
    assert engine.calls[0]["inventory"] == tmp_path / f"{lab}.yml"
    assert engine.calls[0]["ephemeral_lab"] == lab == result.lab
    assert engine.downs == ([lab] if removed else [])


def test_a_run_that_raises_still_removes_its_lab(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, spec: Path) -> None:
    engine = FakeEngine(monkeypatch, tmp_path)

    def refused(*_a: Any, **_kw: Any) -> Any:
        raise InvalidInput("unknown target 'gw'")

    from ctdrill.lifecycle import run
    monkeypatch.setattr(run, "open_run", refused)
    with pytest.raises(InvalidInput):
        api.run(spec)
    assert engine.downs == engine.labs and len(engine.labs) == 1


def test_on_event_hears_every_record_typed_from_start_on(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, spec: Path) -> None:
    from ctdrill.journal import read_records

    FakeEngine(monkeypatch, tmp_path, live=(("reverting", {"hosts": ["gw"]}),))
    heard: list[Any] = []
    result = api.run(spec, tmp_path / "inv.yml", runs_dir=tmp_path / "runs",
                     on_event=heard.append)
    written = read_records(result.journal)
    assert [r.kind for r in heard] == [r.kind for r in written]
    assert heard[0].kind == "start" and heard[-1].kind == "reverting"
    assert heard[-1].hosts == ["gw"] and heard[-1].v == 2


def test_a_failing_event_handler_is_dropped_and_the_run_goes_on(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, spec: Path) -> None:
    FakeEngine(monkeypatch, tmp_path, ExitCode.EXPECTATIONS_FAILED,
               live=(("reverting", {"hosts": ["gw"]}),))
    calls: list[str] = []

    def broken(record: Any) -> None:
        calls.append(record.kind)
        raise RuntimeError("display bug")

    result = api.run(spec, tmp_path / "inv.yml", runs_dir=tmp_path / "runs", on_event=broken)
    assert result.rc == ExitCode.EXPECTATIONS_FAILED and calls == ["start"]


def test_a_shared_lab_is_used_and_left_to_its_owner(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, spec: Path) -> None:
    engine = FakeEngine(monkeypatch, tmp_path)
    with api.ephemeral_lab("g") as lab:
        api.run(spec, lab=lab)
        api.run(spec, tmp_path / "own.yml", lab=lab)  # a drill with its own inventory
        assert engine.downs == []
    assert [c["inventory"] for c in engine.calls] == [lab.inventory, tmp_path / "own.yml"]
    assert {c["ephemeral_lab"] for c in engine.calls} == {lab.name}
    assert engine.downs == [lab.name]


def test_an_invalid_spec_is_refused_before_any_lab_is_built(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    engine = FakeEngine(monkeypatch, tmp_path)
    (tmp_path / "bad.yaml").write_text("drill: x\n")
    with pytest.raises(SpecError):
        api.run(tmp_path / "bad.yaml")
    assert engine.labs == [] and engine.calls == []


# ---------------------------------------------------------------- analyze


@pytest.mark.parametrize(("options", "needle"), [
    (api.AnalysisOptions(canary="gw-1"), "go together"),
    (api.AnalysisOptions(method="ols"), "not a method"),
    (api.AnalysisOptions(reps=5), "out of range"),
])
def test_analysis_options_are_checked_before_any_file_is_read(
        tmp_path: Path, options: api.AnalysisOptions, needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle):
        api.analyze(tmp_path / "absent.csv", [tmp_path / "absent.csv"], options=options)


def test_analyze_writes_three_reports_and_returns_finite_json(tmp_path: Path) -> None:
    from ctdrill.analysis.synth import SynthSpec, generate

    data = generate(SynthSpec(orders=4_000, hosts=3, span_s=4 * 3600, seed=3))
    data.orders.to_csv(tmp_path / "log.csv", index=False)
    data.timeline.to_csv(tmp_path / "tl.csv", index=False)
    result = api.analyze(tmp_path / "log.csv", [tmp_path / "t*.csv"], out_dir=tmp_path / "o",
                         options=api.AnalysisOptions(reps=20))
    assert set(result.paths) == {"json", "markdown", "html"}
    assert all(p.is_file() for p in result.paths.values())
    doc = json.loads(json.dumps(result.to_json(), allow_nan=False))  # NaN would raise
    assert doc["inputs"] == result.analysis.inputs and result.rc == ExitCode.OK
    assert result.status == ("attributable" if doc["attributable"] else "not_attributable")
    assert result.tables()[0][0] == "Inputs"
