"""The CLI's drill commands and game days use ctdrill.api and nothing below it.

Every import in these modules (at the top, inside functions, under TYPE_CHECKING) is
read from the source with `ast` and must name an allowed module: the public API,
errors, the CLI's own plumbing, the game-day modules (which sit above the API) and
the escaping helpers used to render a result. The engine, the lifecycle, the journal,
the report builder and the analysis internals are the API's to import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ON_THE_API = ["ctdrill/cli/drill_cmd.py", "ctdrill/cli/live.py", "ctdrill/cli/report_cmd.py",
              "ctdrill/cli/analyze_cmd.py", "ctdrill/cli/spec_cmd.py",
              "ctdrill/cli/gameday_cmd.py", "ctdrill/gameday/runner.py",
              "ctdrill/cli/audit_cmd.py"]
ALLOWED = ("ctdrill.api", "ctdrill.errors", "ctdrill.cli.common", "ctdrill.cli.live",
           "ctdrill.gameday.",
           "ctdrill.lab.topology", "ctdrill.report.safe", "ctdrill.report.markdown")


def ctdrill_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) of every ctdrill module the source imports, wherever it does;
    `from ctdrill import api` counts as ctdrill.api."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "ctdrill":
                found += [(node.lineno, f"ctdrill.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, node.module))
    return [(line, mod) for line, mod in found if mod.split(".")[0] == "ctdrill"]


def below_the_api(source: str) -> list[str]:
    """`line: module` for each import of a module the API is meant to hide."""
    return [f"{line}: {mod}" for line, mod in ctdrill_imports(source)
            if not any(mod == a or (a.endswith(".") and mod.startswith(a)) for a in ALLOWED)]


@pytest.mark.parametrize("path", ON_THE_API)
def test_commands_and_game_days_import_nothing_below_the_api(path: str) -> None:
    source = (ROOT / path).read_text()
    assert ctdrill_imports(source), "the probe sees this module's ctdrill imports"
    assert below_the_api(source) == [], path


def test_the_probe_sees_an_engine_import_anywhere() -> None:
    """The check above can fail: a lazy import, a TYPE_CHECKING import and a
    `from ctdrill import` of an internal package are each caught."""
    source = '''
from typing import TYPE_CHECKING
from ctdrill import api, lifecycle
from ctdrill.gameday.suite import Suite
if TYPE_CHECKING:
    from ctdrill.engine.plan import HostPlan

def run() -> None:
    from ctdrill.report.build import build_report
    import ctdrill.analysis.pipeline
'''
    assert below_the_api(source) == ["3: ctdrill.lifecycle", "6: ctdrill.engine.plan",
                                     "9: ctdrill.report.build",
                                     "10: ctdrill.analysis.pipeline"]
