"""One source of truth: `ctdrill validate` and the JSON Schema give every file the same verdict.

Every file of the spec corpus (tests/unit/spec_corpus: refused drills at the top, valid
drills and suites in valid/, refused suites in suites/) and every shipped drills/*.yaml
goes through the CLI (`ctdrill validate --json`) and through python-jsonschema's
Draft202012Validator with the schema the CLI prints (`ctdrill schema`, `ctdrill schema
--suite`; a file whose top level has the key `gameday` is a suite). Over 2000 one-change
variants of the valid files go through the same models and schemas without YAML. Two
differences are allowed, each checked precisely:

- text with no JSON instance (YAML syntax errors, two documents, duplicate or
  non-string keys, NaN, dates, cycles): no schema can judge it; validate must refuse it;
- a model rule that JSON Schema cannot state (listed in the schema under
  `x-ctdrill-rules`): the schema accepts, validate refuses, and every problem it reports
  names such a rule. Each listed rule has a corpus case.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError
from typer.testing import CliRunner

from ctdrill.cli.app import app
from ctdrill.gameday.suite import Suite
from ctdrill.spec.models import DrillSpec, Network
from ctdrill.spec.strict import RULES_KEY, RuleBroken

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).parent / "spec_corpus"
REFUSED = sorted(CORPUS.glob("*.yaml"))
VALID = sorted((CORPUS / "valid").glob("*.yaml"))
SUITES = sorted((CORPUS / "suites").glob("*.yaml"))
SHIPPED = sorted((ROOT / "drills").glob("*.yaml"))
EVERY_FILE = REFUSED + VALID + SUITES + SHIPPED
EXPECT = re.compile(r"^# expect: (\d+):(\d+) (.+)$")
MERGE_TAG = "tag:yaml.org,2002:merge"

runner = CliRunner()


# --- the two judges ---------------------------------------------------------------------


def _schema(*flags: str) -> dict[str, Any]:
    result = runner.invoke(app, ["schema", *flags])
    assert result.exit_code == 0, result.output
    schema: dict[str, Any] = json.loads(result.stdout)
    return schema


DRILL_SCHEMA = _schema()
SUITE_SCHEMA = _schema("--suite")
JUDGES = {"drill": Draft202012Validator(DRILL_SCHEMA),
          "gameday": Draft202012Validator(SUITE_SCHEMA)}


def validate_cli(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """`ctdrill validate --json` on all `paths` at once: each file's verdict by path."""
    result = runner.invoke(app, ["validate", "--json", *map(str, paths)])
    assert result.exit_code in (0, 2), result.output
    files = json.loads(result.stdout)["files"]
    assert result.exit_code == (2 if any(not f["valid"] for f in files) else 0)
    return {f["file"]: f for f in files}


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML as JSON sees it: a key appears once per mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class NoInstance(Exception):
    """The text is not one JSON value, so there is nothing for a JSON Schema to judge."""


def _check_json(value: Any, active: set[int]) -> None:
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NoInstance("NaN or infinity")
        return
    if not isinstance(value, dict | list):
        raise NoInstance(f"a {type(value).__name__}")
    if id(value) in active:
        raise NoInstance("a cycle")
    active.add(id(value))
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise NoInstance("a non-string key")
        for item in value.values():
            _check_json(item, active)
    else:
        for item in value:
            _check_json(item, active)
    active.discard(id(value))


def json_instance(text: str) -> Any:
    """The one JSON value the YAML text holds, or NoInstance."""
    try:
        documents = list(yaml.load_all(text, Loader=_UniqueKeyLoader))
    except (yaml.YAMLError, TypeError) as exc:
        raise NoInstance(str(exc)) from None
    if len(documents) != 1:
        raise NoInstance(f"{len(documents)} documents")
    _check_json(documents[0], set())
    return documents[0]


def schema_verdict(instance: Any) -> bool:
    """The JSON Schema's verdict: the suite schema for a mapping with `gameday`."""
    kind = "gameday" if isinstance(instance, dict) and "gameday" in instance else "drill"
    return JUDGES[kind].is_valid(instance)


def declared_rules(schema: Any) -> set[str]:
    """Every rule id listed under x-ctdrill-rules anywhere in `schema`."""
    found: set[str] = set()
    if isinstance(schema, dict):
        found.update(schema.get(RULES_KEY, {}))
        for key, value in schema.items():
            if key != RULES_KEY:
                found |= declared_rules(value)
    elif isinstance(schema, list):
        for value in schema:
            found |= declared_rules(value)
    return found


RULES = declared_rules(DRILL_SCHEMA) | declared_rules(SUITE_SCHEMA)


def assert_agree(label: str, text: str, cli: dict[str, Any]) -> str:
    """The verdicts agree, or differ only as the module docstring allows; says which."""
    try:
        instance = json_instance(text)
    except NoInstance:
        assert not cli["valid"], f"{label}: validate accepts text with no JSON instance"
        return "no instance"
    return assert_agree_on_data(label, instance, cli)


def assert_agree_on_data(label: str, instance: Any, cli: dict[str, Any]) -> str:
    """`assert_agree` for a JSON instance."""
    ours = cli["valid"]
    theirs = schema_verdict(instance)
    if ours == theirs:
        return "agree"
    assert theirs and not ours, f"{label}: the schema refuses what validate accepts"
    broken = {p.get("rule", "") for p in cli["problems"]}
    assert broken and broken <= RULES, (
        f"{label}: validate refuses for a reason the schema should state: {cli['problems']}")
    return "rule"


# --- the schemas themselves ---------------------------------------------------------------

ANNOTATIONS = {"$schema", "$defs", "title", "description", "default", "examples",
               "discriminator"}


def _keywords(schema: Any) -> Iterator[str]:
    """The keywords used in `schema` (not property names, not rule ids)."""
    if isinstance(schema, list):
        for item in schema:
            yield from _keywords(item)
        return
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        yield key
        if key in ("properties", "patternProperties", "$defs"):
            for sub in value.values():
                yield from _keywords(sub)
        elif key not in ("discriminator", "default", "enum", "const", "required",
                         RULES_KEY, "examples"):
            yield from _keywords(value)


@pytest.mark.parametrize("schema", [DRILL_SCHEMA, SUITE_SCHEMA], ids=["drill", "suite"])
def test_schema_is_valid_draft_2020_12_with_known_keywords(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    known = set(Draft202012Validator.VALIDATORS) | ANNOTATIONS | {RULES_KEY, "then", "else"}
    unknown = set(_keywords(schema)) - known
    assert not unknown, f"not JSON Schema keywords (ignored by every validator): {unknown}"


def test_suite_schema_describes_suites() -> None:
    assert SUITE_SCHEMA["required"] == ["gameday", "drills"]
    assert "gameday" not in DRILL_SCHEMA["properties"]
    assert SUITE_SCHEMA["title"] != DRILL_SCHEMA["title"]


# --- the corpus ---------------------------------------------------------------------------


def test_corpus_has_every_kind_of_file() -> None:
    assert len(REFUSED) >= 40 and len(VALID) >= 6 and len(SUITES) >= 8
    assert ROOT / "drills" / "gameday.yaml" in SHIPPED


@pytest.mark.parametrize("path", EVERY_FILE, ids=lambda p: str(p.relative_to(ROOT)))
def test_validate_and_schema_agree_on_the_file(path: Path) -> None:
    cli = validate_cli([path])[str(path)]
    text = path.read_text(encoding="utf-8", errors="replace")
    outcome = assert_agree(path.name, text, cli)
    expected_valid = path in VALID or path in SHIPPED
    assert cli["valid"] == expected_valid, cli["problems"]
    if outcome == "rule":
        assert path.name.startswith("rule_") or path.name == "ttl_too_short.yaml"


def test_each_rule_the_schema_cannot_state_has_a_case_and_nothing_else_differs() -> None:
    verdicts = validate_cli(EVERY_FILE)
    alone: set[str] = set()
    outcomes = []
    for path in EVERY_FILE:
        cli = verdicts[str(path)]
        outcomes.append(assert_agree(path.name, path.read_text(errors="replace"), cli))
        rules = {p.get("rule", "") for p in cli["problems"]}
        if len(rules) == 1 and "" not in rules:
            alone |= rules
    assert alone == RULES, f"rules without a corpus case: {RULES - alone}"
    assert {"ttl-covers-run", "steps-fill-observation", "port-range-ordered"} <= RULES
    counts = {o: outcomes.count(o) for o in ("agree", "no instance", "rule")}
    assert counts["agree"] >= 60 and counts["no instance"] >= 5, counts
    assert counts["rule"] == len(RULES), counts  # one case per rule, nothing else


def test_suite_refusals_are_positioned_like_drills() -> None:
    for case in SUITES:
        match = EXPECT.match(case.read_text(encoding="utf-8").splitlines()[0])
        assert match, f"{case.name}: first line must be '# expect: LINE:COL message'"
        result = runner.invoke(app, ["validate", str(case)])
        assert result.exit_code == 2, result.output
        first = result.stdout.splitlines()[0]
        assert first.startswith(f"{case}:{match[1]}:{match[2]}: "), first
        assert match[3] in first, first


# --- the disagreements issue 10 found, at the root ------------------------------------------

BASE = {"drill": "base", "targets": {"hosts": "gw"}}


@pytest.mark.parametrize("extra", [
    {"changes": [{"sysctl": {"kernel.panic": 1}}]},
    {"changes": [{"timeouts": {"udp_forever": 30}}]},
    {"probe": {"rate": "40"}},
], ids=["kernel-sysctl", "unknown-timeout", "quoted-rate"])
def test_issue_10_disagreements_are_refused_by_both(tmp_path: Path, extra: dict[str, Any]) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**BASE, **extra}), encoding="utf-8")
    cli = validate_cli([path])[str(path)]
    assert not cli["valid"] and schema_verdict(json_instance(path.read_text())) is False
    assert not any(p.get("rule") for p in cli["problems"])


def test_shipped_drills_and_the_suite_validate_together() -> None:
    result = runner.invoke(app, ["validate", *map(str, SHIPPED)])
    assert result.exit_code == 0, result.output
    assert f"ok  {ROOT / 'drills' / 'gameday.yaml'}  (game day weekly)" in result.stdout
    files = validate_cli(SHIPPED)
    assert files[str(ROOT / "drills" / "gameday.yaml")]["gameday"] == "weekly"
    assert files[str(ROOT / "drills" / "rollback.yaml")]["drill"] == "rollback"


# --- variants of the valid files ------------------------------------------------------------

DataPath = tuple[str | int, ...]


def _leaves(data: Any, path: DataPath = ()) -> Iterator[tuple[DataPath, Any]]:
    """Every value in `data` (containers too) with its path, the root excluded."""
    items = data.items() if isinstance(data, dict) else (
        enumerate(data) if isinstance(data, list) else ())
    for key, value in items:
        yield (*path, key), value
        yield from _leaves(value, (*path, key))


def _with(data: Any, path: DataPath, change: Callable[[Any, str | int], None]) -> Any:
    out = copy.deepcopy(data)
    parent = out
    for part in path[:-1]:
        parent = parent[part]
    change(parent, path[-1])
    return out


def _replace(value: Any) -> Callable[[Any, str | int], None]:
    def put(parent: Any, key: str | int) -> None:
        parent[key] = value
    return put


def _drop(parent: Any, key: str | int) -> None:
    del parent[key]


def _variants(data: Any) -> Iterator[Any]:
    """One change at a time: numbers and booleans as text, text with a trailing newline,
    null for any value, any key or item left out, and whole-number floats."""
    for path, value in _leaves(data):
        if isinstance(value, bool):
            yield _with(data, path, _replace(str(value).lower()))
        elif isinstance(value, int | float):
            yield _with(data, path, _replace(str(value)))
            if isinstance(value, int):
                yield _with(data, path, _replace(float(value)))
        elif isinstance(value, str):
            yield _with(data, path, _replace(value + "\n"))
        yield _with(data, path, _replace(None))
        yield _with(data, path, _drop)


def _model_verdict(data: Any) -> dict[str, Any]:
    """What `ctdrill validate --json` says about `data`, from the models it runs (the
    loader agrees with them on every input: test_spec_loader's fuzz tests)."""
    is_suite = isinstance(data, dict) and "gameday" in data
    model: type[BaseModel] = Suite if is_suite else DrillSpec
    try:
        model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        rules = [e.get("ctx", {}).get("error") for e in errors]
        return {"valid": False, "problems": [
            {"rule": r.rule.id} if isinstance(r, RuleBroken) else {} for r in rules]}
    return {"valid": True, "problems": []}


def test_variants_of_every_valid_file_agree() -> None:
    """YAML-free (the per-file test above covers the CLI and the YAML reader)."""
    outcomes = []
    valid = 0
    for source in VALID + SHIPPED:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
        for n, variant in enumerate(_variants(data)):
            verdict = _model_verdict(variant)
            valid += verdict["valid"]
            outcomes.append(assert_agree_on_data(f"{source.name} variant {n}", variant,
                                                 verdict))
    assert len(outcomes) > 1000 and 100 < valid < len(outcomes) - 100, (len(outcomes), valid)
    assert outcomes.count("agree") > len(outcomes) * 0.95


# --- the network type: its pattern is the whole check ---------------------------------------

NETWORK = re.compile(Network.__metadata__[0].pattern)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.from_regex(NETWORK))
def test_whatever_the_network_pattern_accepts_ipaddress_accepts(text: str) -> None:
    ipaddress.ip_network(text, strict=False)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.ip_addresses(), st.integers(0, 128), st.booleans())
def test_the_network_pattern_accepts_every_address_and_prefix(
        address: ipaddress.IPv4Address | ipaddress.IPv6Address, prefix: int,
        with_prefix: bool) -> None:
    text = str(address) + (f"/{prefix % (address.max_prefixlen + 1)}" if with_prefix else "")
    assert NETWORK.search(text), text
