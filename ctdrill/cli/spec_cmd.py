"""`ctdrill validate FILE...` and `ctdrill schema`: check specs before anything runs.

Validation is the cheap moment to find a mistake: nothing is contacted or changed, and
each problem is printed as FILE:LINE:COL so editors and terminals jump to it. The JSON
Schema lets editors complete and check specs while they are written. Game-day suites
(files with the top-level key `gameday`) are validated alongside drills and have their
own schema (`ctdrill schema --suite`).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from ctdrill import api
from ctdrill.cli.common import console, handle_errors, print_json
from ctdrill.errors import ExitCode, InvalidInput

# The spec models (pydantic) load inside ctdrill.api's calls, so that other commands
# start without them (docs/BENCH-cli.md).


@handle_errors
def validate(
    files: list[Path] = typer.Argument(..., help="Drill specs and game-day suites, e.g. "
                                                 "drills/*.yaml."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Check drill specs and suites without touching any host; exit 2 if any is invalid."""
    result = api.validate(files)
    if json_out:
        print_json(result.to_json())
    else:
        for r in result.files:
            if not r.problems:
                what = "drill" if r.kind == "drill" else "game day"
                console.print(f"[green]ok[/]  {escape(str(r.path))}  "
                              f"({what} {escape(str(r.name))})", highlight=False,
                              soft_wrap=True)
            for problem in r.problems:
                console.print(escape(problem.format()), highlight=False, soft_wrap=True)
    if result.rc != ExitCode.OK:
        raise typer.Exit(int(result.rc))


@handle_errors
def schema(
    output: Path | None = typer.Option(None, "--output", "-o",
                                       help="Write the schema to this file, not stdout."),
    suite: bool = typer.Option(False, "--suite", help="The schema of game-day suites "
                               "(files with the top-level key 'gameday') instead of drills."),
) -> None:
    """Print the JSON Schema of drill specs (or suites), for editor completion and checking."""
    text = json.dumps(api.schema(suite=suite), indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {output} ({exc.strerror or exc})",
                           "choose a writable path for --output") from None
    console.print(f"wrote {escape(str(output))}", highlight=False, soft_wrap=True)
