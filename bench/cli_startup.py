"""Benchmark: how long the CLI takes to start, side by side with `ansible --version`.

Every command used to import pandas, scipy and statsmodels (for `analyze`) at start:
2.2 s for `ctdrill --version`, and for an emergency `ctdrill revert`. Now heavy
libraries load inside the commands that use them (tests/unit/test_cli_startup.py keeps
it so). Target: `--version`, `revert --help` and `validate` under 0.5 s median.

Each command runs N times in a fresh process, interleaved round-robin (a load spike
hits every command alike) after one unmeasured warm-up run; wall time and the child's
CPU time (user + sys, which other jobs on the machine barely move) are recorded.

    .venv/bin/python -m bench.cli_startup [--repeat 21] [--no-page]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import quantile, write_page

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TARGET_S = 0.5
TARGETED = ("ctdrill --version", "ctdrill revert --help",
            "ctdrill validate drills/rollback.yaml")


def commands() -> dict[str, list[str]]:
    """Label -> argv. The console scripts a user runs, from this virtualenv."""
    ctdrill = str(BIN / "ctdrill")
    ansible = str(BIN / "ansible") if (BIN / "ansible").exists() else shutil.which("ansible")
    if ansible is None:
        sys.exit("ansible is not installed: run scripts/setup.sh")
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "ansible --version": [ansible, "--version"],
        "ctdrill --version": [ctdrill, "--version"],
        "ctdrill revert --help": [ctdrill, "revert", "--help"],
        "ctdrill validate drills/rollback.yaml": [ctdrill, "validate", "drills/rollback.yaml"],
        "ctdrill --help": [ctdrill, "--help"],
    }


def run_once(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run in a fresh process; a failed run stops the bench."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(cmds: dict[str, list[str]], repeat: int) -> dict[str, tuple[list[float],
                                                                         list[float]]]:
    for argv in cmds.values():
        run_once(argv)  # warm the page cache and the bytecode caches
    walls: dict[str, list[float]] = {k: [] for k in cmds}
    cpus: dict[str, list[float]] = {k: [] for k in cmds}
    for i in range(repeat):
        for label, argv in cmds.items():
            wall, cpu = run_once(argv)
            walls[label].append(wall)
            cpus[label].append(cpu)
        print(f"round {i + 1}/{repeat}", flush=True)
    return {k: (walls[k], cpus[k]) for k in cmds}


def table(results: dict[str, tuple[list[float], list[float]]]) -> str:
    ansible = statistics.median(results["ansible --version"][0])
    lines = ["| command | median wall s | p90 wall s | min-max wall s | median CPU s "
             "| wall / ansible | target |",
             "|---|---|---|---|---|---|---|"]
    for label, (walls, cpus) in results.items():
        med = statistics.median(walls)
        target = ("-" if label not in TARGETED else
                  f"< {TARGET_S} s: {'met' if med < TARGET_S else 'MISSED'}")
        lines.append(f"| `{label}` | **{med:.3f}** | {quantile(walls, 0.9):.3f} | "
                     f"{min(walls):.3f}-{max(walls):.3f} | {statistics.median(cpus):.3f} "
                     f"| {med / ansible:.2f} | {target} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=21, help="runs per command")
    parser.add_argument("--no-page", action="store_true", help="print only")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    results = measure(commands(), args.repeat)
    missed = [k for k in TARGETED if statistics.median(results[k][0]) >= TARGET_S]
    verdict = ("all three under the target" if not missed
               else "MISSED by " + ", ".join(f"`{k}`" for k in missed))
    body = f"""`.venv/bin/python -m bench.cli_startup --repeat {args.repeat}`

Each command ran {args.repeat} times in a fresh process (console scripts from `.venv/bin`,
working directory the checkout), interleaved round-robin after one warm-up run each.
Wall time is what a user waits; CPU time (user + sys of the child) is the work itself,
which other jobs on the machine barely move. The 1-minute load average was
{load_before:.2f} before and {os.getloadavg()[0]:.2f} after.

{table(results)}

Target: `ctdrill --version`, `ctdrill revert --help` and `ctdrill validate` under
{TARGET_S} s median: {verdict}. Before this change every command took about 2.2 s
(median of 5, issue 10): `ctdrill/cli/app.py` imported pandas, scipy and statsmodels
for `analyze`, the drill engine (paramiko) for `run`, and the report renderers for
`report`.

Where the time goes now: the interpreter (`python -c pass`), typer and rich (every
command), pydantic (typer 0.29 converts every parsed option with it, its own `--help`
flag included, so every command but `--version` loads it), then typer's help renderer
(`--help` pages) or the spec models (`validate`). The rest is the command's own work.
Heavy libraries load inside the commands that use them: `analyze` (pandas, numpy,
scipy, statsmodels, pyarrow), `run`/`plan`/`revert`/`gameday` (the engine,
ansible-runner, paramiko), `observe`/`watch`/`demo` (paramiko, prometheus_client),
`report` (prometheus_client), `surge` (scapy). `tests/unit/test_cli_startup.py` checks
with `python -X importtime` that `import ctdrill.cli.app`, the three commands above and
every command's `--help` import none of them."""
    if args.no_page:
        print(body)
    else:
        print(write_page("BENCH-cli.md", "Benchmark: CLI start-up", body))


if __name__ == "__main__":
    main()
