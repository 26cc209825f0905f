"""Every drill shipped in drills/ is a valid spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctdrill.spec.loader import load_spec

DRILLS = sorted((Path(__file__).resolve().parents[2] / "drills").glob("*.yaml"))


def test_there_are_drills() -> None:
    assert DRILLS


@pytest.mark.parametrize("path", DRILLS, ids=[p.stem for p in DRILLS])
def test_shipped_drill_is_valid(path: Path) -> None:
    spec = load_spec(path)
    if spec.drill != "gameday":
        assert spec.drill == path.stem
