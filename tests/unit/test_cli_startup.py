"""A fast CLI: heavy libraries load only in the commands that use them.

No timing here (that is bench/cli_startup.py and docs/BENCH-cli.md): the interpreter
itself reports what each start imported (`python -X importtime`), and the test names
the heavy module that leaked. Help must stay complete while commands load lazily.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What `analyze`, the engine, the transports and the renderers need, and nothing else.
HEAVY = frozenset({"pandas", "numpy", "scipy", "statsmodels", "pyarrow", "ansible",
                   "ansible_runner", "paramiko", "scapy", "prometheus_client", "jinja2"})
# Importing the command table also leaves the spec models (pydantic, yaml) to the
# commands; typer itself loads pydantic later, to convert parsed options.
MODELS = frozenset({"pydantic", "yaml"})


def imported(*args: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """Top-level packages a fresh interpreter imported running `args`, and the run."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    names = set()
    for line in proc.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if line.startswith("import time:") and len(fields) == 3 and fields[1].strip().isdigit():
            names.add(fields[2].strip().split(".")[0])
    assert "ctdrill" in names, proc.stderr[-2000:]  # the probe sees real imports
    return names, proc


def test_importing_the_cli_loads_no_heavy_library_and_no_spec_model() -> None:
    names, proc = imported("-c", "import ctdrill.cli.app")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "typer" in names
    assert not names & (HEAVY | MODELS), sorted(names & (HEAVY | MODELS))


@pytest.mark.parametrize("args", [["--version"], ["revert", "--help"],
                                  ["validate", "drills/rollback.yaml"]],
                         ids=["version", "revert-help", "validate"])
def test_the_everyday_and_emergency_commands_start_without_heavy_libraries(
        args: list[str]) -> None:
    names, proc = imported("-m", "ctdrill", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert not names & HEAVY, sorted(names & HEAVY)


def test_the_probe_sees_a_heavy_import() -> None:
    """The check above can fail: a command that does load pandas is seen doing so."""
    names, proc = imported("-c", "import ctdrill.cli.app, ctdrill.analysis.loaders")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {"pandas", "numpy"} <= names


HELP_SCRIPT = """
import sys
import typer
from typer.testing import CliRunner
from ctdrill.cli.app import app

def paths(cmd, prefix):
    yield prefix
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from paths(sub, [*prefix, name])

runner = CliRunner()
for path in paths(typer.main.get_command(app), []):
    result = runner.invoke(app, [*path, "--help"])
    out = result.output
    ok = result.exit_code == 0 and "Usage:" in out
    print(" ".join(path) or "(root)", "ok" if ok else "FAIL", len(out), flush=True)
    if path == []:
        print("ROOT", out.replace("\\n", " "))
print("MODULES", " ".join(sorted({m.split(".")[0] for m in sys.modules})))
"""


def test_help_for_every_command_is_complete_and_loads_no_heavy_library() -> None:
    proc = subprocess.run([sys.executable, "-c", HELP_SCRIPT], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    helps = [ln.split() for ln in lines if ln.split()[-2:-1] in (["ok"], ["FAIL"])]
    assert helps and all(h[-2] == "ok" for h in helps), helps
    commands = {h[0] for h in helps if len(h) == 3 and h[0] != "(root)"}
    assert {"observe", "watch", "demo", "plan", "run", "revert", "validate", "schema",
            "surge", "analyze", "report", "lab", "gameday"} <= commands
    root = next(ln for ln in lines if ln.startswith("ROOT "))
    assert all(name in root for name in commands)  # `ctdrill --help` lists them all
    modules = set(next(ln for ln in lines if ln.startswith("MODULES ")).split()[1:])
    assert not modules & HEAVY, sorted(modules & HEAVY)
