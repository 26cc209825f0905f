"""`ctdrill report`: writes the four files next to the journal (or --out), prints JSON
with --json, and turns every bad journal into one line and exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ctdrill.cli.report_cmd import report
from ctdrill.errors import ExitCode
from tests.unit.test_report_support import FIXTURES

runner = CliRunner()
cli = typer.Typer()
cli.command()(report)


@cli.callback()
def _root() -> None:
    """Keeps `report` a sub-command, as in the real app."""


def _journal(tmp_path: Path, name: str = "capacity-step") -> Path:
    run = tmp_path / "runs" / "RUN"
    run.mkdir(parents=True)
    return Path(shutil.copy(FIXTURES / f"{name}.jsonl", run / "journal.jsonl"))


def test_registered_in_the_app() -> None:
    from ctdrill.cli.app import app

    assert report in [c.callback for c in app.registered_commands]


def test_writes_all_four_next_to_the_journal(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    result = runner.invoke(cli, ["report", str(journal)])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in journal.parent.iterdir())
    assert files == ["ctdrill.prom", "journal.jsonl", "junit.xml", "report.html", "summary.md"]
    assert "FAILED capacity-step" in result.output
    assert (journal.parent / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert not list(journal.parent.glob(".*"))  # no temporary files left behind


def test_out_dir_formats_and_json(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    out = tmp_path / "out" / "deep"
    result = runner.invoke(cli, ["report", str(journal.parent), "--out", str(out),
                                 "--format", "md, junit", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data["files"]) == {"md", "junit"}
    assert sorted(p.name for p in out.iterdir()) == ["junit.xml", "summary.md"]
    assert data["status"] == "failed" and data["revert_verified"] is True
    assert [e["passed"] for e in data["expectations"]].count(False) == 1


def test_textfile_dir_keeps_one_file_per_drill(tmp_path: Path) -> None:
    textfiles = tmp_path / "textfile"
    for name in ("capacity-step", "table-pressure-replay"):
        journal = _journal(tmp_path / name, name)
        result = runner.invoke(cli, ["report", str(journal), "--format", "prom",
                                     "--textfile-dir", str(textfiles)])
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in textfiles.iterdir()) == [
        "ctdrill-capacity-step.prom", "ctdrill-table-pressure-replay.prom"]


def _one_line_exit_2(args: list[str], *needles: str) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    for needle in needles:
        assert needle in result.output


def test_missing_journal(tmp_path: Path) -> None:
    _one_line_exit_2(["report", str(tmp_path / "nope.jsonl")], "cannot read journal")


@pytest.mark.parametrize("content", [b"", b"hello\nworld\n", b"[1, 2]\n[3]\n",
                                     b'{"type": "samples"}\n', b"\xff\xfe\x00binary\n"])
def test_invalid_journal(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(content)
    _one_line_exit_2(["report", str(path)], "journal")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.jsonl"]


def test_unknown_format(tmp_path: Path) -> None:
    _one_line_exit_2(["report", str(_journal(tmp_path)), "--format", "html,pdf"],
                     "unknown report format 'pdf'")


def test_out_is_a_file(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    _one_line_exit_2(["report", str(journal), "--out", str(journal)], "not a directory")
