"""`ctdrill validate FILE...` and `ctdrill schema`: check specs before anything runs.

Validation is the cheap moment to find a mistake: nothing is contacted or changed, and
each problem is printed as FILE:LINE:COL so editors and terminals jump to it. The JSON
Schema lets editors complete and check specs while they are written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from ctdrill.cli.common import console, handle_errors, print_json
from ctdrill.errors import ExitCode, InvalidInput
from ctdrill.spec.loader import SpecError, SpecProblem, load_spec
from ctdrill.spec.models import DrillSpec

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _check(path: Path) -> tuple[str | None, list[SpecProblem]]:
    """The drill name if the spec is valid, else every problem found in it."""
    try:
        return load_spec(path).drill, []
    except SpecError as exc:
        return None, exc.problems


@handle_errors
def validate(
    files: list[Path] = typer.Argument(..., help="Drill spec files, e.g. drills/*.yaml."),
    json_out: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Check drill specs without touching any host; exit 2 if any is invalid."""
    results = [(path, *_check(path)) for path in files]
    if json_out:
        print_json({"files": [{"file": str(path), "valid": not problems, "drill": drill,
                               "problems": [p.to_json() for p in problems]}
                              for path, drill, problems in results]})
    else:
        for path, drill, problems in results:
            if not problems:
                console.print(f"[green]ok[/]  {escape(str(path))}  (drill {escape(str(drill))})",
                              highlight=False, soft_wrap=True)
            for problem in problems:
                console.print(escape(problem.format()), highlight=False, soft_wrap=True)
    if any(problems for _, _, problems in results):
        raise typer.Exit(int(ExitCode.INVALID_INPUT))


def drill_schema() -> dict[str, Any]:
    """DrillSpec's JSON Schema, marked as draft 2020-12 (what pydantic emits)."""
    body = DrillSpec.model_json_schema()
    body.pop("title", None)
    return {"$schema": SCHEMA_DIALECT, "title": "ctdrill drill spec", **body}


@handle_errors
def schema(
    output: Path | None = typer.Option(None, "--output", "-o",
                                       help="Write the schema to this file, not stdout."),
) -> None:
    """Print the JSON Schema of drill specs, for editor completion and checking."""
    text = json.dumps(drill_schema(), indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {output} ({exc.strerror or exc})",
                           "choose a writable path for --output") from None
    console.print(f"wrote {escape(str(output))}", highlight=False, soft_wrap=True)
