"""The spec's strict base and the types that both `ctdrill validate` and the JSON Schema enforce.

A spec is checked by `ctdrill validate` (these pydantic models) and by editors (the JSON
Schema generated from the same models). The two agree only when each rule is written
once, in a form that yields both the check and its schema:

- strict types: a number is never the string "40"; an integer may be written 40.0,
  which JSON cannot tell apart from 40 (`Strict.json_numbers`);
- patterns run by Python's `re` on both sides (pydantic's python-re engine here,
  python-jsonschema there), anchored so a trailing newline cannot slip past `$`
  (`anchored`, `Matching`);
- key groups of which exactly one must be given (`Strict.exactly_one` -> `oneOf`);
- rules between fields that JSON Schema cannot state (sums, references, orderings) are
  `Rule`s: a model lists them, the schema carries them as `x-ctdrill-rules`, and a broken
  one is reported with its id, so the only verdicts that may differ are named ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

RULES_KEY = "x-ctdrill-rules"
"""Where a schema lists the rules it cannot state (an annotation, ignored by validators)."""


@dataclass(frozen=True)
class Rule:
    """A rule between fields that JSON Schema cannot state; only `ctdrill validate` checks it."""

    id: str
    text: str

    def broken(self, message: str) -> RuleBroken:
        return RuleBroken(self, message)


class RuleBroken(ValueError):
    """Raised by a model validator for a `Rule`; the loader keeps the rule's id."""

    def __init__(self, rule: Rule, message: str) -> None:
        super().__init__(message)
        self.rule = rule


def anchored(body: str) -> str:
    """`^body$` that also refuses a trailing newline.

    Python's `$` (pydantic's python-re engine, python-jsonschema) also matches before a
    final "\\n"; ECMA-262's (editors) does not. The lookahead makes all three agree.
    """
    return f"^(?:{body})$(?!\\n)"


def shown(pattern: str) -> str:
    """An `anchored` pattern as a reader wants it in a message: `^body$`."""
    head, tail = "^(?:", ")$(?!\\n)"
    if pattern.startswith(head) and pattern.endswith(tail):
        return f"^{pattern[len(head):-len(tail)]}$"
    return pattern


def _schema_extra(schema: dict[str, Any], cls: type[Any]) -> None:
    """What a model's own declarations add to its generated schema."""
    names: tuple[str, ...] = getattr(cls, "exactly_one", ())
    if names:
        schema["oneOf"] = [{"required": [n], "properties": {n: {"not": {"type": "null"}}}}
                           for n in names]
    checks: tuple[dict[str, Any], ...] = getattr(cls, "schema_checks", ())
    if checks:
        schema["allOf"] = list(checks)
    rules: tuple[Rule, ...] = getattr(cls, "rules", ())
    if rules:
        schema[RULES_KEY] = {r.id: r.text for r in rules}


STRICT_CONFIG = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True,
                           regex_engine="python-re", json_schema_extra=_schema_extra)


class Strict(BaseModel):
    """Unknown keys are errors, nothing is coerced, and declared rules reach the schema.

    `exactly_one`: optional fields of which exactly one must be given (not null).
    `schema_checks`: JSON Schema fragments (`if`/`then`) stating what a validator checks.
    `rules`: what a validator checks that JSON Schema cannot state.
    """

    model_config = STRICT_CONFIG
    exactly_one: ClassVar[tuple[str, ...]] = ()
    schema_checks: ClassVar[tuple[dict[str, Any], ...]] = ()
    rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def json_numbers(cls, data: Any) -> Any:
        """JSON has one number type: 40.0 is the integer 40, as JSON Schema's `integer`
        says. Strict int fields would refuse 40.0, so integral floats become ints here
        (float fields take ints)."""
        return _integral(data) if isinstance(data, dict) else data

    @model_validator(mode="after")
    def exactly_one_given(self) -> Strict:
        names = type(self).exactly_one
        if names and sum(getattr(self, n) is not None for n in names) != 1:
            raise ValueError("give exactly one of " + " or ".join(f"'{n}'" for n in names))
        return self


def _integral(value: Any) -> Any:
    """`value` with every float that is a whole number turned into an int, at any depth."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


class StringCheck:
    """String metadata whose `check` is the validator and whose `schema_extra` is the
    same rule in the JSON Schema: one hook pair for every such constraint."""

    def check(self, value: str) -> str:
        raise NotImplementedError

    def schema_extra(self) -> dict[str, Any]:
        raise NotImplementedError

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {**handler(schema), **self.schema_extra()}


@dataclass(frozen=True)
class Matching(StringCheck):
    """String metadata: must match `body` (anchored); `message` has `{}` for the value.

    The same pattern is the check and the schema's `pattern`, run by the same engine.
    """

    body: str
    message: str

    @property
    def pattern(self) -> str:
        return anchored(self.body)

    def check(self, value: str) -> str:
        if not re.search(self.pattern, value):
            raise ValueError(self.message.format(repr(value)))
        return value

    def schema_extra(self) -> dict[str, Any]:
        return {"pattern": self.pattern}


@dataclass(frozen=True)
class Among(StringCheck):
    """String metadata: must be one of `choices()` (computed when first needed).

    For sets too large for a readable error (time zones): the message stays short, and
    the schema's `enum` is the same set.
    """

    choices: Callable[[], frozenset[str]]
    message: str

    def check(self, value: str) -> str:
        if value not in self.choices():
            raise ValueError(self.message.format(repr(value)))
        return value

    def schema_extra(self) -> dict[str, Any]:
        return {"enum": sorted(self.choices())}


HostName = Annotated[str, Matching(
    r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,252}",
    "{} is not an inventory host name (letters, digits, '_', '.', '-')")]
"""One inventory host (or an IPv4 address): never pattern syntax, a template or shell."""

HostPattern = Annotated[str, Matching(
    r"!?&?[A-Za-z0-9_.*\-]+(?:[:,]!?&?[A-Za-z0-9_.*\-]+)*",
    "{} is not a host pattern: names, groups and '*' joined by ':' or ',' (with '!' to "
    "exclude, '&' to intersect); no spaces, templates, regexes or shell")]
"""The safe subset of Ansible host patterns a spec may use (docs/DRILL-SPEC.md)."""

