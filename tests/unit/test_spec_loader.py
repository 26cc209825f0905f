"""The spec loader: every bad spec is refused with FILE:LINE:COL, never a traceback.

The corpus in spec_corpus/ pins where each kind of mistake is reported (first line of
each file: `# expect: LINE:COL substring`); fuzzing checks that no input, however
broken, gets anything but a SpecError with a position out of the loader.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from ctdrill.cli.app import app
from ctdrill.errors import ExitCode, InvalidInput
from ctdrill.spec.loader import (
    SpecError,
    dotted,
    load_spec,
    load_spec_bytes,
    load_spec_text,
)
from ctdrill.spec.models import DrillSpec, UdpFlowsLoad

CORPUS = Path(__file__).parent / "spec_corpus"
CASES = sorted(CORPUS.glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (\d+):(\d+) (.+)$")
POSITIONED = re.compile(r"^.+:\d+:\d+: ")

MINIMAL = """\
drill: minimal
targets:
  hosts: gw
"""

FULL = """\
# A drill that uses every section of the spec.
drill: full-drill
description: Fill the gateway's table and check that orders still get through.
targets:
  hosts: gateways
  canary:
    percent: 50
changes:
  - hosts: gw
    sysctl:
      net.netfilter.nf_conntrack_max: 4096
      net.netfilter.nf_conntrack_tcp_loose: 0
    bypass:
      - name: orders
        protocol: tcp
        port: 9000
        network: 10.78.0.0/16
    timeouts:
      udp: 5
      tcp_established: 600
load:
  kind: udp-flows
  source: client
  destination: venue
  flows: 5000
  start_s: 0.5
observe:
  hosts: gw
  hz: 50
  window_s: 2
  duration_s: 20
expect:
  - name: table fills
    kind: metric
    host: gw
    metric: ctr
    stat: max
    op: ">="
    value: 0.9
  - kind: metric
    host: gw
    metric: nfd_per_s
    op: ">"
    value: 0
guards:
  max_duration_s: 120
  ceilings:
    - hosts: venue
      metric: ctr
      above: 0.5
revert:
  ttl_s: 60
"""

runner = CliRunner()


def _expectation(case: Path) -> tuple[int, int, str]:
    text = case.read_text(encoding="utf-8")
    match = EXPECT.match(text.splitlines()[0]) if text else None
    assert match, f"{case.name}: first line must be '# expect: LINE:COL message'"
    return int(match[1]), int(match[2]), match[3]


def _line_count(text: str) -> int:
    """Lines as YAML counts them (it also breaks on \\r, NEL, LS and PS)."""
    return len(re.split(r"\r\n|[\n\r\x85\u2028\u2029]", text))


def _check_refusal(exc: SpecError, text: str) -> None:
    """What every refusal must look like, whatever the input."""
    assert isinstance(exc, InvalidInput) and exc.exit_code == ExitCode.INVALID_INPUT
    assert POSITIONED.match(exc.one_line()), exc.one_line()
    assert "\n" not in exc.one_line()
    for problem in exc.problems:
        assert "internal error" not in problem.message, problem.format()
        assert 1 <= problem.line <= _line_count(text) + 1, problem.format()
        assert problem.column >= 1


# --- the corpus of malformed specs --------------------------------------------------


def test_corpus_covers_the_cases() -> None:
    assert len(CASES) >= 15


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_corpus_case(case: Path) -> None:
    line, column, expected = _expectation(case)
    with pytest.raises(SpecError) as info:
        load_spec(case)
    first = info.value.one_line()
    assert first.startswith(f"{case}:{line}:{column}: "), first
    assert expected in first, first
    assert info.value.problems[0].line == line and info.value.problems[0].column == column
    _check_refusal(info.value, case.read_text(encoding="utf-8"))


# --- valid specs ----------------------------------------------------------------------


def test_minimal_spec_gets_documented_defaults() -> None:
    spec = load_spec_text(MINIMAL, "minimal.yaml")
    assert spec.drill == "minimal" and spec.targets.hosts == "gw"
    assert spec.targets.canary is None
    assert spec.changes == [] and spec.expect == []
    assert spec.load.kind == "none"
    assert spec.observe.hz == 20.0 and spec.observe.duration_s == 10.0
    assert spec.guards.max_duration_s == 600.0 and spec.revert.ttl_s == 120.0


def test_full_spec_loads_every_value(tmp_path: Path) -> None:
    path = tmp_path / "full.yaml"
    path.write_text(FULL, encoding="utf-8")
    spec = load_spec(path)
    assert spec.drill == "full-drill"
    assert spec.targets.canary is not None and spec.targets.canary.size(3) == 2
    change = spec.changes[0]
    assert change.hosts == "gw"
    assert change.sysctl == {"net.netfilter.nf_conntrack_max": 4096,
                             "net.netfilter.nf_conntrack_tcp_loose": 0}
    assert change.bypass[0].network == "10.78.0.0/16" and change.bypass[0].port == 9000
    assert change.all_sysctls()["net.netfilter.nf_conntrack_udp_timeout"] == "5"
    assert isinstance(spec.load, UdpFlowsLoad)
    assert (spec.load.source, spec.load.flows, spec.load.start_s) == ("client", 5000, 0.5)
    assert spec.observe.hz == 50 and spec.observe.duration_s == 20
    assert [e.describe() for e in spec.expect] == ["table fills", "max(nfd_per_s) on gw > 0"]
    assert spec.guards.ceilings[0].above == 0.5
    assert spec.revert.ttl_s == 60
    # and agrees with plain yaml + pydantic on the same text
    assert spec == DrillSpec.model_validate(yaml.safe_load(FULL))


@pytest.mark.parametrize("text", [MINIMAL, FULL], ids=["minimal", "full"])
def test_round_trip_through_yaml(text: str) -> None:
    spec = load_spec_text(text, "spec.yaml")
    dumped = yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
    assert load_spec_text(dumped, "again.yaml") == spec


def test_anchors_aliases_and_merge_keys_are_fine() -> None:
    text = """\
drill: aliased
targets: {hosts: gw}
x-common: &common
  hz: 40
observe:
  <<: *common
  duration_s: 5
"""
    with pytest.raises(SpecError, match="unknown key 'x-common'"):
        load_spec_text(text, "a.yaml")
    text = text.replace("x-common: &common\n  hz: 40\n", "").replace("<<: *common",
                                                                     "<<: {hz: 40}")
    spec = load_spec_text(text, "a.yaml")
    assert spec.observe.hz == 40 and spec.observe.duration_s == 5
    shared = "drill: aliased\ntargets: &t {hosts: gw}\nobserve: {hosts: *t}\n"
    with pytest.raises(SpecError, match=r"a\.yaml:3:18: observe\.hosts: expected a string"):
        load_spec_text(shared, "a.yaml")


# --- specific refusals ----------------------------------------------------------------


def test_all_problems_are_reported_in_file_order() -> None:
    text = "drill: Bad\ntargets:\n  hosts: gw\n  hzz: 1\nobserve: {hz: 0}\n"
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "many.yaml")
    positions = [(p.line, p.column) for p in info.value.problems]
    assert positions == sorted(positions) and len(positions) == 3
    assert info.value.one_line().endswith(" (and 2 more problems)")
    assert [p.path for p in info.value.problems] == ["drill", "targets.hzz", "observe.hz"]


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"absent\.yaml:1:1: file not found"):
        load_spec(tmp_path / "absent.yaml")
    with pytest.raises(SpecError, match=r":1:1: is a directory"):
        load_spec(tmp_path)


def test_invalid_utf8_points_at_the_byte() -> None:
    with pytest.raises(SpecError, match=r"^b\.yaml:2:9: byte 0xff is not valid UTF-8"):
        load_spec_bytes(b"drill: x\ntargets\xc3\xa9\xff: 1\n", "b.yaml")


def test_control_characters_are_refused_with_position() -> None:
    with pytest.raises(SpecError, match=r"^c\.yaml:2:4: character 0x07"):
        load_spec_text("drill: x\nab:\x07\n", "c.yaml")


def test_alias_bombs_and_deep_nesting_are_refused_quickly() -> None:
    bomb = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True))
    with pytest.raises(SpecError, match="expands to more than"):
        load_spec_text(bomb, "bomb.yaml")
    with pytest.raises(SpecError, match="nested"):
        load_spec_text("drill: " + "[" * 5000 + "]" * 5000, "deep.yaml")
    with pytest.raises(SpecError, match="nested"):
        load_spec_text("drill: " + "[" * 100 + "]" * 100, "deep.yaml")


def test_unreadable_tagged_value_is_reported_once() -> None:
    with pytest.raises(SpecError) as info:
        load_spec_text("drill: !!int abc\ntargets: {hosts: gw}\n", "t.yaml")
    assert len(info.value.problems) == 1
    assert info.value.one_line().startswith("t.yaml:1:8: drill: cannot read this value")


def test_dotted_paths() -> None:
    assert dotted(()) == ""
    assert dotted(("changes", 0, "sysctl", "net.core.somaxconn")) == \
        "changes[0].sysctl['net.core.somaxconn']"


# --- fuzzing ----------------------------------------------------------------------------

FULL_DATA: dict[str, Any] = yaml.safe_load(FULL)
FIELD_NAMES = ["drill", "targets", "hosts", "canary", "count", "percent", "changes", "sysctl",
               "bypass", "timeouts", "load", "kind", "flows", "observe", "hz", "duration_s",
               "expect", "metric", "guards", "ceilings", "revert", "ttl_s", "<<"]
SCALARS = (st.none() | st.booleans() | st.integers(-(10**20), 10**20)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
           | st.sampled_from(["udp-flows", "none", "gw", "net.a.b", "10.0.0.0/8", "ctr"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                      max_leaves=8)
KEYS = (st.sampled_from(FIELD_NAMES) | st.text(max_size=10) | st.integers(-5, 5)
        | st.booleans() | st.none())


def _containers(data: Any) -> list[Any]:
    """Every dict and list inside `data`, the root first."""
    found = [data]
    children = data.values() if isinstance(data, dict) else data
    for child in children:
        if isinstance(child, dict | list):
            found.extend(_containers(child))
    return found


@st.composite
def mutated_specs(draw: st.DrawFn) -> Any:
    """The full spec's data with keys dropped, keys added, values replaced at any depth."""
    data = copy.deepcopy(FULL_DATA)
    for _ in range(draw(st.integers(1, 4))):
        node = draw(st.sampled_from(_containers(data)))
        op = draw(st.sampled_from(["drop", "add", "replace"]))
        slots: list[Any] = list(node) if isinstance(node, dict) else list(range(len(node)))
        if op == "drop" and slots:
            del node[draw(st.sampled_from(slots))]
        elif op == "replace" and slots:
            node[draw(st.sampled_from(slots))] = draw(VALUES)
        elif isinstance(node, dict):
            node[draw(KEYS)] = draw(VALUES)
        else:
            node.append(draw(VALUES))
    return data


FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(mutated_specs())
def test_fuzz_mutated_specs_agree_with_pydantic(data: Any) -> None:
    text = yaml.safe_dump(data, sort_keys=False)
    try:
        load_spec_text(text, "fuzz.yaml")
        ours = True
    except SpecError as exc:
        _check_refusal(exc, text)
        ours = False
    try:
        DrillSpec.model_validate(yaml.safe_load(text))
        reference = True
    except ValidationError:
        reference = False
    assert ours == reference, text


def _attempt(text: str) -> None:
    try:
        assert isinstance(load_spec_text(text, "fuzz.yaml"), DrillSpec)
    except SpecError as exc:
        _check_refusal(exc, text)


@FUZZ
@given(st.text(max_size=200))
def test_fuzz_random_text(text: str) -> None:
    _attempt(text)


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(data: bytes) -> None:
    try:
        load_spec_bytes(data, "fuzz.yaml")
    except SpecError as exc:
        assert POSITIONED.match(exc.one_line()), exc.one_line()
        assert all("internal error" not in p.message for p in exc.problems)


@FUZZ
@given(st.integers(0, len(FULL)), st.integers(0, 8),
       st.text(alphabet=st.sampled_from(list(" \t\n:-[]{}&*!|>'\"#%@`,?x0")), max_size=6))
def test_fuzz_edited_valid_text(at: int, cut: int, insert: str) -> None:
    _attempt(FULL[:at] + insert + FULL[at + cut:])


# --- the commands ---------------------------------------------------------------------


def test_validate_ok(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(FULL, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(good)])
    assert result.exit_code == 0, result.output
    assert f"ok  {good}  (drill full-drill)" in result.stdout


def test_validate_bad_file_is_exit_2_with_position(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(MINIMAL, encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL + "  hzz: 1\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", str(good), str(bad)])
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert f"{bad}:4:3: targets.hzz: unknown key 'hzz'" in result.output
    assert "ok  " in result.output and "Traceback" not in result.output


def test_validate_json(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(MINIMAL, encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text("drill: x\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", "--json", str(good), str(bad)])
    assert result.exit_code == ExitCode.INVALID_INPUT
    doc = json.loads(result.stdout)
    assert doc == {"files": [
        {"file": str(good), "valid": True, "drill": "minimal", "problems": []},
        {"file": str(bad), "valid": False, "drill": None, "problems": [
            {"line": 1, "column": 1, "path": "", "message": "missing required key 'targets'"},
        ]},
    ]}


def test_schema_is_json_with_the_spec_properties(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"]
    assert set(DrillSpec.model_fields) <= set(schema["properties"])
    assert schema["required"] == ["drill", "targets"]
    out = tmp_path / "drill.schema.json"
    result = runner.invoke(app, ["schema", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text(encoding="utf-8")) == schema
