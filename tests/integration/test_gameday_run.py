"""A two-drill game day on the lab: both drills run, one combined report, a history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctdrill.lab.manager import LabUp
from tests.integration.drillrun import ctdrill

pytestmark = pytest.mark.root

DRILL = """drill: {name}
targets: {{hosts: gw}}
changes:
  - timeouts: {{udp: {udp}}}
observe: {{duration_s: 1}}
expect:
  - {{kind: metric, host: gw, metric: max, stat: last, op: ">", value: 0}}
"""


def test_two_drill_game_day_runs_with_history(lab: LabUp, tmp_path: Path) -> None:
    for name, udp in (("first", 11), ("second", 12)):
        (tmp_path / f"{name}.yaml").write_text(DRILL.format(name=name, udp=udp))
    suite = tmp_path / "gameday.yaml"
    suite.write_text("gameday: twodrill\ndrills: [{spec: first.yaml}, {spec: second.yaml}]\n"
                     "blackout: {timezone: Europe/London, windows: []}\n")
    history = tmp_path / "history"
    for _ in range(2):
        result = ctdrill("gameday", "run", str(suite), "-i", str(lab.plan.inventory_path),
                         "--history", str(history), "--json", runs_dir=tmp_path / "runs")
        assert result.returncode == 0, result.stdout + result.stderr
        out = json.loads(result.stdout)
        assert [d["drill"] for d in out["drills"]] == ["first", "second"]
        assert all(all(r["verified"] for r in d["revert"].values()) for d in out["drills"])
        summary = Path(out["dir"]) / "summary.md"
        assert "| first | 0 |" in summary.read_text()
        for d in out["drills"]:  # each drill's own reports, linked from the summary
            html = Path(d["reports"]["html"])
            assert html.exists() and "<svg" in html.read_text()
            assert str(html) in summary.read_text()
    index = json.loads((history / "twodrill" / "index.json").read_text())
    assert len(index) == 2 and all(e["exit_code"] == 0 for e in index)
