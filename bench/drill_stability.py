"""Runs each shipped drill N times on the default (ephemeral) lab and records pass counts.

A drill that passes once and fails once is broken; this bench is how we know ours are
not. It also records every expectation's measured value per run, so the noise of trend
and comparison expectations is measured rather than guessed (the step-trend noise
floor in docs/DRILL-SPEC.md comes from here).

    .venv/bin/python -m bench.drill_stability [--runs 10] [--drill NAME ...]

Runs one drill at a time (they change kernel-wide knobs): nothing else may run a lab
or a test suite on the machine meanwhile. Results: docs/BENCH-drills.md and
docs/bench-drills.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import DOCS, write_page
from ctdrill.spec.loader import load_spec
from ctdrill.spec.models import StepTrendExpectation

DRILLS_DIR = Path(__file__).resolve().parent.parent / "drills"
SHIPPED = ["table-pressure-replay", "bypass-canary", "capacity-step", "rollback"]


@dataclass
class DrillRuns:
    """Outcomes of one drill's runs: exit codes, durations, each expectation's values."""

    name: str
    exit_codes: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    verdicts: dict[str, list[tuple[bool, str]]] = field(default_factory=lambda: defaultdict(list))
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(code == 0 for code in self.exit_codes)


def run_once(name: str, runs_dir: Path) -> tuple[int, float, dict[str, Any]]:
    """One `ctdrill run drills/NAME.yaml --json` on an ephemeral lab, as a user runs it."""
    env = dict(os.environ, CTDRILL_RUNS_DIR=str(runs_dir))
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "ctdrill", "run", str(DRILLS_DIR / f"{name}.yaml"),
                           "--json"], capture_output=True, text=True, env=env, timeout=600)
    took = time.monotonic() - started
    try:
        out: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        out = {"reason": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    return proc.returncode, took, out


def record(runs: DrillRuns, code: int, took: float, out: dict[str, Any]) -> None:
    runs.exit_codes.append(code)
    runs.seconds.append(took)
    for v in out.get("expectations", []):
        runs.verdicts[v["name"]].append((bool(v["passed"]), str(v.get("detail", ""))))
    if code != 0:
        failed = [v["name"] for v in out.get("expectations", []) if not v["passed"]]
        runs.failures.append(f"exit {code}: {out.get('reason') or ', '.join(failed)}")


def table(all_runs: list[DrillRuns], n: int) -> str:
    rows = ["| drill | passed | median s | failures |", "|---|---|---|---|"]
    for r in all_runs:
        med = sorted(r.seconds)[len(r.seconds) // 2] if r.seconds else float("nan")
        rows.append(f"| {r.name} | {r.passed}/{n} | {med:.1f} | "
                    f"{'; '.join(r.failures) or '-'} |")
    return "\n".join(rows)


def trend_names(drill: str) -> set[str]:
    """The names under which the drill's step-trend expectations are reported."""
    spec = load_spec(DRILLS_DIR / f"{drill}.yaml")
    return {e.describe() for e in spec.expect if isinstance(e, StepTrendExpectation)}


def trend_details(all_runs: list[DrillRuns]) -> str:
    """Every step-trend expectation's per-run detail line: the measured noise."""
    out = []
    for r in all_runs:
        trends = trend_names(r.name)
        for name, results in r.verdicts.items():
            if name in trends:
                out.append(f"- **{r.name}: {name}** " + f"({sum(ok for ok, _ in results)}/"
                           f"{len(results)})")
                out += [f"  - {'pass' if ok else 'FAIL'}: {detail}" for ok, detail in results]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--drill", action="append", choices=SHIPPED)
    args = ap.parse_args(argv)
    names = args.drill or SHIPPED
    all_runs = [DrillRuns(n) for n in names]
    with tempfile.TemporaryDirectory(prefix="ctd-stability-") as tmp:
        for i in range(args.runs):
            for runs in all_runs:  # interleaved: drift on a shared machine hits every drill
                code, took, out = run_once(runs.name, Path(tmp))
                record(runs, code, took, out)
                print(f"run {i + 1}/{args.runs} {runs.name}: exit {code} in {took:.1f} s",
                      flush=True)
    body = (f"Each shipped drill run {args.runs} times, interleaved, with `ctdrill run "
            f"drills/NAME.yaml` on an ephemeral lab (as the README's first command does).\n\n"
            f"{table(all_runs, args.runs)}\n\n## Trend and comparison expectations, per run\n\n"
            f"{trend_details(all_runs)}\n")
    write_page("BENCH-drills.md", "Shipped drill stability", body)
    (DOCS / "bench-drills.json").write_text(json.dumps(
        [{"drill": r.name, "runs": args.runs, "passed": r.passed, "exit_codes": r.exit_codes,
          "seconds": r.seconds, "verdicts": r.verdicts, "failures": r.failures}
         for r in all_runs], indent=1) + "\n")
    print(table(all_runs, args.runs))
    return 0 if all(r.passed == args.runs for r in all_runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
