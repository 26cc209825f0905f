"""ctdrill.api on the lab: plan, run (with its event stream), report and revert from
Python, as the CLI and game days use them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ctdrill import api
from ctdrill.errors import ExitCode
from ctdrill.journal import read_records
from ctdrill.lab.manager import LabUp

pytestmark = pytest.mark.root

DRILL = """drill: api-run
targets: {hosts: gw}
changes:
  - timeouts: {udp: 13}
observe: {duration_s: 1}
expect:
  - {kind: metric, host: gw, metric: max, stat: last, op: ">", value: 0}
"""


def test_run_hands_every_journal_record_to_on_event_as_written(lab: LabUp,
                                                               tmp_path: Path) -> None:
    spec = tmp_path / "d.yaml"
    spec.write_text(DRILL)
    inventory = lab.plan.inventory_path
    planned = api.plan(spec, inventory)
    assert planned.rc == ExitCode.OK and list(planned.hosts) == ["gw"]
    heard: list[Any] = []
    notes: list[str] = []
    result = api.run(spec, inventory, runs_dir=tmp_path / "runs", progress=notes.append,
                     on_event=heard.append)
    assert (result.status, result.rc) == ("passed", ExitCode.OK), result.to_json()
    written = read_records(result.journal)
    assert [r.kind for r in heard] == [r.kind for r in written]
    assert heard[0].kind == "start" and heard[-1].kind == "end"
    assert {"locking", "intent", "samples", "verdict", "revert"} <= {r.kind for r in heard}
    assert notes[0] == "drill api-run"
    assert all(r.verified for r in result.outcome.reverts.values())
    report = api.report(result.journal, tmp_path / "report", "junit")
    assert report.status == "passed" and report.paths["junit"].is_file()
    again = api.revert(result.journal)  # nothing left to revert: still verified
    assert again.rc == ExitCode.OK
