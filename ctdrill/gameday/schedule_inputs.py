"""What a schedule's units need, checked now rather than at 06:00 on a Saturday: the
suite, its drills and inventories exist and load, every path is absolute, and the
ctdrill executable and the working directory (where runs/ goes) are known."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import ctdrill
from ctdrill.errors import EnvironmentProblem, InvalidInput
from ctdrill.gameday.runner import load_suite
from ctdrill.spec.loader import load_spec
from ctdrill.targets.inventory import Inventory


@dataclass(frozen=True)
class ScheduleInputs:
    suite_name: str
    suite: Path
    inventory: Path | None
    workdir: Path
    ctdrill_bin: Path


def project_root() -> Path | None:
    """The ctdrill checkout: the package's parent when it holds pyproject.toml (an
    editable install), else the parent of the virtualenv ctdrill runs in."""
    root = Path(ctdrill.__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file():
        return root
    venv = Path(sys.prefix)
    if sys.prefix != sys.base_prefix and (venv.parent / "pyproject.toml").is_file():
        return venv.parent
    return None


def ctdrill_executable() -> Path:
    """The ctdrill script of the environment this process runs in, else the one on PATH."""
    for found in (Path(sys.executable).parent / "ctdrill", shutil.which("ctdrill")):
        if found and Path(found).is_file() and os.access(found, os.X_OK):
            return Path(found).absolute()
    raise EnvironmentProblem("cannot find the ctdrill executable to schedule",
                             "install ctdrill (bash scripts/setup.sh) and run it from there")


def plan_schedule(suite: Path, inventory: Path | None,
                  workdir: Path | None = None) -> ScheduleInputs:
    """Check everything a scheduled run will read; InvalidInput on the first problem."""
    parsed = load_suite(suite)  # InvalidInput when missing or malformed
    for entry in parsed.drills:
        load_spec(suite.parent / entry.spec)
        if entry.inventory and not (suite.parent / entry.inventory).exists():
            raise InvalidInput(f"{suite}: drill {entry.spec}: inventory "
                               f"{suite.parent / entry.inventory} does not exist",
                               "fix the suite's inventory path")
    if inventory is not None:
        Inventory(inventory)  # exists, parses, has hosts
    root = workdir if workdir is not None else project_root()
    if root is None:
        raise InvalidInput("cannot tell where the ctdrill checkout is (runs/ goes there)",
                           "pass --workdir DIR")
    if not root.is_dir():
        raise InvalidInput(f"working directory {root} is not a directory",
                           "pass an existing --workdir")
    return ScheduleInputs(parsed.gameday, suite.resolve(),
                          inventory.resolve() if inventory is not None else None,
                          root.resolve(), ctdrill_executable())
