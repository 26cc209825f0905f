"""The injection corpus: every string field of every spec kind, given a template, a
shell substitution, backticks or a `;` that would create a sentinel file if anything
ever evaluated it. Shared by the unit test (validation) and the lab test (plan, run)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "drills").glob("*.yaml")) + sorted(
    (ROOT / "tests/unit/spec_corpus/valid").glob("*.yaml"))


def payloads(sentinel: Path) -> list[str]:
    """Each way text could turn into code: Jinja, shell substitution, backticks, `;`."""
    return [f"{{{{ lookup('pipe', 'touch {sentinel}') }}}}",
            f"{{% set x = lookup('pipe', 'touch {sentinel}') %}}x",
            f"$(touch {sentinel})", f"`touch {sentinel}`", f"x; touch {sentinel}"]


def string_paths(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a spec that holds a string (values and mapping keys' values)."""
    if isinstance(data, str):
        yield path
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from string_paths(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from string_paths(value, (*path, i))


def replaced(data: Any, path: tuple[Any, ...], value: str) -> Any:
    out = copy.deepcopy(data)
    node = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return out


def mutations(sentinel: Path) -> Iterator[tuple[str, str]]:
    """(label, YAML text) for every spec, string field and payload."""
    for spec in SPECS:
        data = yaml.safe_load(spec.read_text())
        for path in string_paths(data):
            for n, text in enumerate(payloads(sentinel)):
                label = f"{spec.name}:{'.'.join(map(str, path))}#{n}"
                yield label, yaml.safe_dump(replaced(data, path, text))
