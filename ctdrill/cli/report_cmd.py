"""`ctdrill report JOURNAL`: write a run's reports (ctdrill.api.report) and say where.

Reading, building and rendering load inside the call (prometheus_client, jinja2), so
only `report` pays for them (docs/BENCH-cli.md).
"""

from __future__ import annotations

from pathlib import Path

import typer

from ctdrill import api
from ctdrill.cli.common import console, handle_errors, print_json

STYLE = {"passed": "green", "failed": "red", "aborted": "yellow", "revert_failed": "bold red",
         "refused": "yellow", "incomplete": "yellow"}
LABEL = {"passed": "PASSED", "failed": "FAILED", "aborted": "ABORTED",
         "revert_failed": "REVERT NOT VERIFIED", "refused": "REFUSED",
         "incomplete": "INCOMPLETE"}


@handle_errors
def report(journal: Path = typer.Argument(..., help="journal.jsonl of a run (or its directory)."),
           out: Path | None = typer.Option(None, "--out", help="Directory to write to; "
                                           "default: next to the journal."),
           formats: str = typer.Option(api.REPORT_FORMATS, "--format",
                                       help="Comma-separated: html, md, junit, prom."),
           textfile_dir: Path | None = typer.Option(
               None, "--textfile-dir", help="Also write the Prometheus output as "
               "ctdrill-DRILL.prom here (node_exporter's textfile directory): one file per "
               "drill, so each keeps its last result."),
           json_out: bool = typer.Option(False, "--json",
                                         help="Print machine-readable JSON.")) -> None:
    """Write a run's reports: HTML (self-contained), Markdown summary, JUnit XML, and
    Prometheus textfile. Exit 0 when written, whatever the drill's verdict."""
    result = api.report(journal, out, formats, textfile_dir=textfile_dir)
    if json_out:
        print_json(result.to_json())
        return
    r = result.report
    c = r.counts()
    console.print(f"[{STYLE[r.status]}]{LABEL[r.status]}[/] {r.drill} run {r.run_id}: "
                  f"{c['passed']}/{len(r.expectations)} expectations passed, revert "
                  + {None: "not needed", True: "verified", False: "NOT verified"}[
                      r.revert_verified], highlight=False, soft_wrap=True)
    for name, where in result.paths.items():
        console.print(f"  {name:8} {where}", highlight=False, soft_wrap=True)
