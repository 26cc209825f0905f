"""Every drill shipped in drills/ is a valid spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctdrill.spec.loader import load_spec

ROOT = Path(__file__).resolve().parents[2] / "drills"
DRILLS = sorted(p for p in ROOT.glob("*.yaml") if p.name != "gameday.yaml")


def test_there_are_drills() -> None:
    assert DRILLS


@pytest.mark.parametrize("path", DRILLS, ids=[p.stem for p in DRILLS])
def test_shipped_drill_is_valid(path: Path) -> None:
    assert load_spec(path).drill == path.stem


def test_shipped_gameday_suite_is_valid_and_names_shipped_drills() -> None:
    from ctdrill.gameday.runner import load_suite

    suite = load_suite(ROOT / "gameday.yaml")
    assert {d.spec for d in suite.drills} <= {p.name for p in DRILLS}
