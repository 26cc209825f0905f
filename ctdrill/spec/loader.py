"""Load a drill spec from YAML, reporting every problem as FILE:LINE:COL: path: message.

A drill that runs on a wrong spec can change kernels it should not touch, so a spec is
refused before anything happens; and a refusal only helps if it says exactly where the
mistake is. YAML is composed with positions kept (`marks`), validated by the pydantic
models (`models`), and each pydantic error is mapped back to the line and column of the
key or value it is about. Whatever the input, the only exception that leaves is SpecError.

The same reader serves game-day suites (`load_suite`); `load_document` tells the two
apart by the top-level key only suites have (`gameday`).
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ctdrill.errors import InvalidInput
from ctdrill.gameday.suite import SUITE_KEY, Suite
from ctdrill.spec.marks import Composed, DataPath, Location, Mark, RawProblem, YamlFailure, compose
from ctdrill.spec.models import DrillSpec
from ctdrill.spec.strict import RuleBroken, shown

M = TypeVar("M", bound=BaseModel)

MAX_SPEC_BYTES = 1 << 20
"""A spec is a few kilobytes; a bigger file is a wrong path, not a spec."""

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_QUOTED = re.compile(r"'([^']*)'")

_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "int_parsing_size": "an integer of sane size",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "string_type": "a string",
    "string_sub_type": "a string",
    "string_unicode": "a string of valid unicode",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "mapping_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "none_required": "null",
}
_BOUNDS = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="),
           "less_than": ("lt", "<"), "less_than_equal": ("le", "<="),
           "multiple_of": ("multiple_of", "a multiple of")}


@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong with a spec, at a 1-based line and column of `file`."""

    file: str
    line: int
    column: int
    path: str
    message: str
    rule: str = ""
    """The id of the model rule broken, if it is one JSON Schema cannot state."""

    def format(self) -> str:
        """`FILE:LINE:COL: path: message`, the form editors and terminals link to."""
        where = f"{self.file}:{self.line}:{self.column}: "
        return where + (f"{self.path}: " if self.path else "") + self.message

    def to_json(self) -> dict[str, Any]:
        out = {"line": self.line, "column": self.column, "path": self.path,
               "message": self.message}
        return {**out, "rule": self.rule} if self.rule else out


class SpecError(InvalidInput):
    """A spec that cannot be used, with every problem found (sorted by position).

    `kind` is the top-level key of the document refused: "drill", or "gameday" for a
    suite ("drill" too when the YAML could not be read far enough to tell).
    """

    def __init__(self, problems: list[SpecProblem], kind: str = "drill") -> None:
        if not problems:
            raise ValueError("SpecError needs at least one problem")
        self.problems = problems
        self.kind = kind
        super().__init__(self._summary())

    def _summary(self) -> str:
        more = len(self.problems) - 1
        tail = "" if more == 0 else f" (and {more} more problem{'s' if more > 1 else ''})"
        return self.problems[0].format() + tail

    def one_line(self) -> str:
        return self._summary()


def load_spec(path: Path) -> DrillSpec:
    """Read and validate the spec at `path`; the label in messages is `path` as given."""
    return load_spec_text(read_text(path), str(path))


def load_suite(path: Path) -> Suite:
    """Read and validate the game-day suite at `path`, with the same positioned errors."""
    text = read_text(path)
    return _guarded(str(path), lambda: _validate(_compose(text, str(path)), str(path), Suite))


def load_document(path: Path) -> DrillSpec | Suite:
    """A suite if the top level has the key `gameday`, else a drill spec."""
    text = read_text(path)
    return load_document_text(text, str(path))


def load_document_text(text: str, label: str) -> DrillSpec | Suite:
    """`load_document` for text; a refusal's `kind` says which of the two it was."""
    def load() -> DrillSpec | Suite:
        composed = _compose(text, label)
        if not (isinstance(composed.data, dict) and SUITE_KEY in composed.data):
            return _validate(composed, label, DrillSpec)
        try:
            return _validate(composed, label, Suite)
        except SpecError as exc:
            raise SpecError(exc.problems, SUITE_KEY) from None
    return _guarded(label, load)


def read_text(path: Path) -> str:
    """The file's text; every way of not getting it is a SpecError at 1:1."""
    label = str(path)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError:
        raise _single(label, "file not found; expected a path to a drill spec "
                             "(e.g. drills/NAME.yaml)") from None
    except IsADirectoryError:
        raise _single(label, "is a directory; expected a drill spec file") from None
    except OSError as exc:
        raise _single(label, f"cannot read the file ({exc.strerror or exc}); expected a "
                             "readable drill spec") from None
    if len(data) > MAX_SPEC_BYTES:
        raise _single(label, f"the file is larger than {MAX_SPEC_BYTES} bytes; expected "
                             "a drill spec of a few kilobytes")
    return decode(data, label)


def load_spec_bytes(data: bytes, label: str) -> DrillSpec:
    """Decode UTF-8 (a BOM is allowed), pointing at the first byte that is not."""
    return load_spec_text(decode(data, label), label)


def decode(data: bytes, label: str) -> str:
    """UTF-8 text (a BOM is allowed), or a SpecError at the first byte that is not."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1:].decode("utf-8", "replace")) + 1
        raise SpecError([SpecProblem(label, line, column, "",
                                     f"byte {data[exc.start]:#04x} is not valid UTF-8; "
                                     "expected UTF-8 text")]) from None
    return text


def load_spec_text(text: str, label: str) -> DrillSpec:
    """Validate spec text; `label` names it in messages (usually the file path)."""
    return _guarded(label, lambda: _validate(_compose(text, label), label, DrillSpec))


def _guarded(label: str, load: Callable[[], M]) -> M:
    """Run `load`; whatever goes wrong leaves as a SpecError."""
    try:
        return load()
    except SpecError:
        raise
    except Exception as exc:  # a bug here must still be one line, never a traceback
        raise _single(label, f"internal error while checking the spec ({type(exc).__name__}:"
                             f" {exc}); expected no such error: please report this "
                             "ctdrill bug") from exc


def _single(label: str, message: str) -> SpecError:
    return SpecError([SpecProblem(label, 1, 1, "", message)])


def _compose(text: str, label: str) -> Composed:
    try:
        return compose(text)
    except YamlFailure as failure:
        raise SpecError([_from_raw(label, failure.problem)]) from None


def _validate(composed: Composed, label: str, root: type[M]) -> M:
    problems = [_from_raw(label, p) for p in composed.problems]
    try:
        spec = root.model_validate(composed.data)
    except ValidationError as exc:
        problems.extend(_from_validation(exc, composed, label, root))
    else:
        if not problems:
            return spec
    unique = list(dict.fromkeys(problems))
    unique.sort(key=lambda p: (p.line, p.column))
    raise SpecError(unique)


def _from_raw(label: str, raw: RawProblem) -> SpecProblem:
    return SpecProblem(label, raw.mark.line, raw.mark.column, dotted(raw.path), raw.message)


def dotted(path: DataPath) -> str:
    """`changes[0].sysctl['net.core.somaxconn']`: readable and unambiguous."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


# --- mapping pydantic's error locations back to data paths -------------------------


@dataclass
class _Walk:
    """What following one pydantic `loc` through the model classes found.

    `path` is the data path (union tags dropped); `models` holds the model class in
    force at each data path along the way, so an unknown key can list what is allowed.
    `key_type` is the key type of the last mapping passed (for errors about a key).
    """

    path: DataPath = ()
    models: dict[DataPath, type[BaseModel]] = field(default_factory=dict)
    annotation: Any = None
    arms: list[type[BaseModel]] = field(default_factory=list)
    union_member: bool = False
    key_error: bool = False
    key_type: Any = None


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and a `| None`, which pydantic does not show in `loc`."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(arms) == 1:
            return _unwrap(arms[0])
    return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _tag_values(arm: type[BaseModel], discriminator: str) -> tuple[Any, ...]:
    info = arm.model_fields.get(discriminator)
    return typing.get_args(info.annotation) if info is not None else ()


def _annotated_discriminator(tp: Any) -> str | None:
    """The discriminator of `Annotated[A | B, Field(discriminator=...)]`, if any."""
    if typing.get_origin(tp) is not typing.Annotated:
        return None
    for meta in typing.get_args(tp)[1:]:
        disc = getattr(meta, "discriminator", None)
        if isinstance(disc, str):
            return disc
    return None


def _walk(loc: tuple[int | str, ...], root: type[BaseModel]) -> _Walk:
    """Follow `loc` through the root model's fields, dropping the union tags pydantic adds.

    An error about a mapping's key ends in "[key]" after the key itself.
    """
    w = _Walk(models={(): root}, key_error=loc[-1:] == ("[key]",))
    if w.key_error:
        loc = loc[:-1]
    tp: Any = root
    path: list[str | int] = []
    disc: str | None = None
    for item in loc:
        tp = _unwrap(tp)
        if disc is not None:  # `item` is the tag of a discriminated union: pick the arm
            arm = next((a for a in w.arms if item in _tag_values(a, disc)), None)
            disc, tp = None, arm
            if arm is not None:
                w.models[tuple(path)] = arm
            continue
        if _is_model(tp):
            w.models[tuple(path)] = tp
            info = tp.model_fields.get(item) if isinstance(item, str) else None
            path.append(item)
            if info is None:
                tp = None
            elif isinstance(info.discriminator, str):
                disc = info.discriminator
                w.arms = [a for a in typing.get_args(_unwrap(info.annotation)) if _is_model(a)]
                tp = None
            else:
                tp = info.annotation
            continue
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is list and args:
            path.append(item)
            tp = args[0]
            item_disc = _annotated_discriminator(tp)
            if item_disc is not None:  # list of a discriminated union: next loc is the tag
                disc = item_disc
                w.arms = [a for a in typing.get_args(_unwrap(tp)) if _is_model(a)]
                tp = None
        elif origin is dict and len(args) == 2:
            path.append(item)
            w.key_type = _unwrap(args[0])
            tp = args[1]
        elif origin in (typing.Union, types.UnionType):
            w.union_member = True  # `item` names the member type that failed
            tp = next((a for a in args if getattr(a, "__name__", None) == item), None)
        else:
            path.append(item)
            tp = None
    w.path = tuple(path)
    w.annotation = _unwrap(tp)
    return w


# --- turning pydantic errors into positioned sentences -----------------------------


def show(value: Any) -> str:
    """A value as the user wrote it in YAML, short enough for one line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    text = repr(value) if isinstance(value, str | float) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _kind_word(annotation: Any) -> str:
    if annotation is int:
        return "an integer"
    if annotation is float:
        return "a number"
    return "a value"


def _expected(err: ErrorDetails, annotation: Any) -> str | None:
    """What the schema wanted, in words; None when pydantic's message says it better."""
    typ = err["type"]
    ctx = err.get("ctx") or {}
    if typ in _EXPECTED:
        return _EXPECTED[typ]
    if typ in _BOUNDS:
        key, op = _BOUNDS[typ]
        return f"{_kind_word(annotation)} {op} {_number(ctx.get(key))}"
    if typ == "literal_error":
        if typing.get_origin(annotation) is Literal:
            options = [repr(a) for a in typing.get_args(annotation)]
            return " or ".join(options) if len(options) <= 2 else \
                "one of " + ", ".join(options)
        return str(ctx.get("expected", "one of the allowed values"))
    if typ == "string_too_short":
        n = ctx.get("min_length", 1)
        return "a non-empty string" if n == 1 else f"a string of at least {n} characters"
    if typ == "string_too_long":
        return f"a string of at most {ctx.get('max_length')} characters"
    if typ == "string_pattern_mismatch":
        return f"a string matching {shown(str(ctx.get('pattern')))}"
    if typ in ("too_short", "too_long"):
        n = ctx.get("min_length" if typ == "too_short" else "max_length")
        bound = "at least" if typ == "too_short" else "at most"
        return f"a list with {bound} {n} item{'' if n == 1 else 's'}"
    msg = err["msg"]
    if msg.startswith("Input should be "):
        return msg[len("Input should be "):].split(", ")[0]
    return None


@dataclass
class _Issue:
    path: DataPath
    mark: Mark
    message: str = ""
    expected: list[str] = field(default_factory=list)
    got: str = ""
    hint: str = ""
    rule: str = ""

    def text(self) -> str:
        if not self.expected:
            return self.message
        return f"expected {' or '.join(self.expected)}, got {self.got}{self.hint}"


def _quote_hint(location: Location | None, expected: str) -> str:
    """`on`, `yes`, `2024-01-01` are not text in YAML; say so when text was wanted."""
    if location is None or location.plain_text is None:
        return ""
    if "string" not in expected and "'" not in expected:
        return ""
    text = location.plain_text
    return f" (YAML reads {text} as {location.read_as}; quote it: \"{text}\")"


def _from_validation(exc: ValidationError, composed: Composed, label: str,
                     root: type[BaseModel]) -> list[SpecProblem]:
    issues: list[_Issue] = []
    unions: dict[DataPath, _Issue] = {}
    for err in exc.errors(include_url=False):
        w = _walk(err["loc"], root)
        if any(w.path[:n] in composed.unreadable for n in range(len(w.path) + 1)):
            continue
        issue = _issue(err, w, composed)
        if w.union_member and issue.expected:
            grouped = unions.get(w.path)
            if grouped is not None:  # `int | str`: one sentence for all member errors
                grouped.expected.extend(e for e in issue.expected
                                        if e not in grouped.expected)
                continue
            unions[w.path] = issue
        issues.append(issue)
    return [SpecProblem(label, i.mark.line, i.mark.column, dotted(i.path), i.text(), i.rule)
            for i in issues]


def _issue(err: ErrorDetails, w: _Walk, composed: Composed) -> _Issue:
    """One pydantic error as a message at the position the user should look at."""
    typ = err["type"]
    path = w.path
    ctx = err.get("ctx") or {}
    if typ == "extra_forbidden" and path:
        _, location = composed.nearest(path)
        model = w.models.get(path[:-1])
        allowed = ", ".join(model.model_fields) if model is not None else "?"
        return _Issue(path, location.key,
                      f"unknown key {show(path[-1])}; expected one of: {allowed}")
    if typ == "missing" and path:
        parent, location = composed.nearest(path[:-1])
        return _Issue(parent, location.value, f"missing required key {show(path[-1])}")
    if typ in ("union_tag_invalid", "union_tag_not_found"):
        disc = str(ctx.get("discriminator", "kind")).strip("'")
        tags = [str(t) for arm in w.arms for t in _tag_values(arm, disc)]
        expected = ", ".join(tags) or str(ctx.get("expected_tags", "")).replace("'", "")
        what = next((str(p) for p in reversed(path) if isinstance(p, str)), "union")
        tag_path = (*path, disc)
        if typ == "union_tag_invalid" and tag_path in composed.locations:
            value = _data_at(composed.data, tag_path)
            return _Issue(tag_path, composed.locations[tag_path].value,
                          f"unknown {what} {disc} {show(value)}; expected one of: {expected}")
        _, location = composed.nearest(path)
        return _Issue(path, location.value,
                      f"missing required key '{disc}'; expected one of: {expected}")
    if w.key_error:
        return _key_issue(err, w, composed)
    if typ in ("value_error", "assertion_error"):
        issue = _validator_issue(err, w, composed)
        broken = ctx.get("error")
        issue.rule = broken.rule.id if isinstance(broken, RuleBroken) else ""
        return issue
    found, location = composed.nearest(path)
    wanted = _expected(err, w.annotation)
    if wanted is None:
        return _Issue(found, location.value, f"{err['msg']}, got {show(err.get('input'))}")
    exact = composed.locations.get(path)
    return _Issue(found, location.value, expected=[wanted], got=show(err.get("input")),
                  hint=_quote_hint(exact, wanted))


def _key_issue(err: ErrorDetails, w: _Walk, composed: Composed) -> _Issue:
    """An error about a mapping key, placed on the key."""
    found, location = composed.nearest(w.path)
    ctx = err.get("ctx") or {}
    if err["type"] == "value_error":  # the key type's own sentence names the key
        return _Issue(found, location.key, str(ctx.get("error") or err["msg"]))
    if typing.get_origin(w.key_type) is Literal:
        options = ", ".join(str(a) for a in typing.get_args(w.key_type))
        return _Issue(found, location.key, f"unknown key {show(err.get('input'))}; "
                                           f"expected one of: {options}")
    wanted = _expected(err, w.key_type) or err["msg"]
    return _Issue(found, location.key, f"key {show(err.get('input'))} is not valid; "
                                       f"expected {wanted}")


def _validator_issue(err: ErrorDetails, w: _Walk, composed: Composed) -> _Issue:
    """A validator's own sentence, placed on its mapping, or on the key it names."""
    ctx = err.get("ctx") or {}
    message = str(ctx.get("error") or err["msg"])
    found, location = composed.nearest(w.path)
    if typing.get_origin(w.annotation) is dict and found == w.path:
        mapping = _data_at(composed.data, w.path)
        for name in _QUOTED.findall(message):
            key_path = (*w.path, name)
            if isinstance(mapping, dict) and name in mapping and key_path in composed.locations:
                return _Issue(key_path, composed.locations[key_path].key, message)
    return _Issue(found, location.value, message)


def _data_at(data: Any, path: DataPath) -> Any:
    for part in path:
        in_dict = isinstance(data, dict) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (in_dict or in_list):
            return None
        data = data[part]
    return data
