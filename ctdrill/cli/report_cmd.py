"""`ctdrill report JOURNAL`: read a run's journal, write its reports.

The shell part only: reading the journal (and the replay profile it names), writing
files atomically. Building and rendering are pure (ctdrill/report/).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import typer

from ctdrill.cli.common import console, handle_errors, print_json
from ctdrill.engine.journal import read_journal
from ctdrill.errors import CtdrillError, InvalidInput
from ctdrill.report import FORMATS, build_report, parse_formats
from ctdrill.report.model import Report

STYLE = {"passed": "green", "failed": "red", "aborted": "yellow", "revert_failed": "bold red",
         "refused": "yellow", "incomplete": "yellow"}
LABEL = {"passed": "PASSED", "failed": "FAILED", "aborted": "ABORTED",
         "revert_failed": "REVERT NOT VERIFIED", "refused": "REFUSED",
         "incomplete": "INCOMPLETE"}


def load_records(path: Path) -> list[dict[str, Any]]:
    """The journal's records; a run directory stands for its journal.jsonl. Anything
    that is not a ctdrill journal is one line of invalid input, never a traceback."""
    if path.is_dir():
        path = path / "journal.jsonl"
    try:
        records = read_journal(path)
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not a ctdrill journal (not UTF-8 text)",
                           "pass a run's journal.jsonl") from None
    except AttributeError:  # a JSON line that is not an object
        raise InvalidInput(f"{path} is not a ctdrill journal",
                           "pass a run's journal.jsonl") from None
    return [r for r in records if isinstance(r, dict)]


def _replay_profile(records: list[dict[str, Any]], journal: Path
                    ) -> list[tuple[float, float]] | None:
    """The replayed (t, rate) profile, when the spec replays one and the file is still
    where the spec said (relative to the spec file, as the drill resolved it)."""
    from ctdrill.surge.profile import load_profile

    start = records[0]
    spec = start.get("spec") if isinstance(start.get("spec"), dict) else {}
    shape = ((spec or {}).get("load") or {}).get("shape") or {}
    name = shape.get("profile") if isinstance(shape, dict) else None
    if not isinstance(name, str) or not name:
        return None
    spec_dir = Path(str(start.get("spec_path") or "")).parent
    for candidate in (Path(name), spec_dir / name, journal.parent / Path(name).name):
        if candidate.is_file():
            try:
                return load_profile(candidate)
            except CtdrillError:
                return None
    return None


def write_atomic(path: Path, text: str) -> None:
    """Write then rename: node_exporter (or a browser) never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_report(journal: Path) -> Report:
    """Journal file -> report model (reads files; the building itself is pure)."""
    records = load_records(journal)
    path = journal / "journal.jsonl" if journal.is_dir() else journal
    try:
        return build_report(records, journal=str(path.resolve()),
                            profile=_replay_profile(records, path))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise InvalidInput(f"journal {path} has a malformed record ({exc!r})",
                           "the journal must be the unedited file ctdrill wrote") from None


def _out_dir(journal: Path, out: Path | None) -> Path:
    if out is not None:
        if out.exists() and not out.is_dir():
            raise InvalidInput(f"--out {out} is not a directory", "pass a directory")
        return out
    return journal if journal.is_dir() else journal.parent


@handle_errors
def report(journal: Path = typer.Argument(..., help="journal.jsonl of a run (or its directory)."),
           out: Path | None = typer.Option(None, "--out", help="Directory to write to; "
                                           "default: next to the journal."),
           formats: str = typer.Option("html,md,junit,prom", "--format",
                                       help="Comma-separated: html, md, junit, prom."),
           textfile_dir: Path | None = typer.Option(
               None, "--textfile-dir", help="Also write the Prometheus output as "
               "ctdrill-DRILL.prom here (node_exporter's textfile directory): one file per "
               "drill, so each keeps its last result."),
           json_out: bool = typer.Option(False, "--json",
                                         help="Print machine-readable JSON.")) -> None:
    """Write a run's reports: HTML (self-contained), Markdown summary, JUnit XML, and
    Prometheus textfile. Exit 0 when written, whatever the drill's verdict."""
    names = parse_formats(formats)
    r = make_report(journal)
    target = _out_dir(journal, out)
    written: dict[str, str] = {}
    try:
        for name in names:
            filename, render = FORMATS[name]
            path = target / filename
            write_atomic(path, render(r))
            written[name] = str(path)
        if textfile_dir is not None:
            path = textfile_dir / f"ctdrill-{r.drill}.prom"
            write_atomic(path, FORMATS["prom"][1](r))
            written["textfile"] = str(path)
    except OSError as exc:
        raise InvalidInput(f"cannot write the report: {exc.strerror or exc}: "
                           f"{exc.filename or target}", "choose a writable --out") from None
    if json_out:
        print_json({"journal": r.journal, "files": written, **r.summary_json()})
        return
    c = r.counts()
    console.print(f"[{STYLE[r.status]}]{LABEL[r.status]}[/] {r.drill} run {r.run_id}: "
                  f"{c['passed']}/{len(r.expectations)} expectations passed, revert "
                  + {None: "not needed", True: "verified", False: "NOT verified"}[
                      r.revert_verified], highlight=False, soft_wrap=True)
    for name, where in written.items():
        console.print(f"  {name:8} {where}", highlight=False, soft_wrap=True)
