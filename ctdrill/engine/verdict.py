"""A verdict on one expectation: a leaf type the judge produces and the lifecycle, the
journal and the reports carry, so none of them needs the judge to name it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Verdict:
    name: str
    passed: bool
    observed: float | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
