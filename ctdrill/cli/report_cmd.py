"""`ctdrill report JOURNAL`: read a run's journal, write its reports.

The shell part only: reading the journal (and the replay profile it names), writing
files atomically. Building and rendering are pure (ctdrill/report/).
"""

from __future__ import annotations

from pathlib import Path

import typer

from ctdrill.cli.common import console, handle_errors, print_json
from ctdrill.errors import InvalidInput

STYLE = {"passed": "green", "failed": "red", "aborted": "yellow", "revert_failed": "bold red",
         "refused": "yellow", "incomplete": "yellow"}
LABEL = {"passed": "PASSED", "failed": "FAILED", "aborted": "ABORTED",
         "revert_failed": "REVERT NOT VERIFIED", "refused": "REFUSED",
         "incomplete": "INCOMPLETE"}


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
    # here, not at the top: the renderers (prometheus_client, jinja2) load only for `report`
    from ctdrill.report import FORMATS, parse_formats
    from ctdrill.report.files import make_report, write_atomic, write_textfile

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
            written["textfile"] = str(write_textfile(textfile_dir, r))
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
