"""`ctdrill validate FILE...` and `ctdrill schema`: check specs before anything runs.

Validation is the cheap moment to find a mistake: nothing is contacted or changed, and
each problem is printed as FILE:LINE:COL so editors and terminals jump to it. The JSON
Schema lets editors complete and check specs while they are written. Game-day suites
(files with the top-level key `gameday`) are validated alongside drills and have their
own schema (`ctdrill schema --suite`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from ctdrill.cli.common import console, handle_errors, print_json
from ctdrill.errors import ExitCode, InvalidInput

if TYPE_CHECKING:
    from ctdrill.spec.loader import SpecProblem

# The spec models (pydantic) load inside the functions that use them, so that other
# commands start without them (docs/BENCH-cli.md).


@dataclass(frozen=True)
class _Checked:
    """One file's verdict: its kind (the YAML key that names it) and name, or problems."""

    path: Path
    kind: str
    name: str | None
    problems: list[SpecProblem]

    def to_json(self) -> dict[str, Any]:
        return {"file": str(self.path), "valid": not self.problems, self.kind: self.name,
                "problems": [p.to_json() for p in self.problems]}


def _check(path: Path) -> _Checked:
    """The drill's or suite's name if the file is valid, else every problem found in it."""
    from ctdrill.spec.loader import SpecError, load_document
    from ctdrill.spec.models import DrillSpec

    try:
        doc = load_document(path)
    except SpecError as exc:
        return _Checked(path, exc.kind, None, exc.problems)
    if isinstance(doc, DrillSpec):
        return _Checked(path, "drill", doc.drill, [])
    return _Checked(path, "gameday", doc.gameday, [])


@handle_errors
def validate(
    files: list[Path] = typer.Argument(..., help="Drill specs and game-day suites, e.g. "
                                                 "drills/*.yaml."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Check drill specs and suites without touching any host; exit 2 if any is invalid."""
    results = [_check(path) for path in files]
    if json_out:
        print_json({"files": [r.to_json() for r in results]})
    else:
        for r in results:
            if not r.problems:
                what = "drill" if r.kind == "drill" else "game day"
                console.print(f"[green]ok[/]  {escape(str(r.path))}  "
                              f"({what} {escape(str(r.name))})", highlight=False,
                              soft_wrap=True)
            for problem in r.problems:
                console.print(escape(problem.format()), highlight=False, soft_wrap=True)
    if any(r.problems for r in results):
        raise typer.Exit(int(ExitCode.INVALID_INPUT))


@handle_errors
def schema(
    output: Path | None = typer.Option(None, "--output", "-o",
                                       help="Write the schema to this file, not stdout."),
    suite: bool = typer.Option(False, "--suite", help="The schema of game-day suites "
                               "(files with the top-level key 'gameday') instead of drills."),
) -> None:
    """Print the JSON Schema of drill specs (or suites), for editor completion and checking."""
    from ctdrill.spec.schema import drill_schema, suite_schema

    text = json.dumps(suite_schema() if suite else drill_schema(), indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {output} ({exc.strerror or exc})",
                           "choose a writable path for --output") from None
    console.print(f"wrote {escape(str(output))}", highlight=False, soft_wrap=True)
