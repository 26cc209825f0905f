"""The four shipped drills over SSH (the opaque inventory) against the same drills over
the lab's netns inventory: pass counts and what each measured, side by side.

    .venv/bin/python -m bench.drills_ssh [--runs 3]

One lab with its sshds; for each round and drill, the netns run then the opaque run
(interleaved, so both see the same machine). Records each expectation's observed value
and the run's key metrics; docs/BENCH-drills-ssh.md gives medians per transport and the
ratio. Runs one drill at a time (they change kernel-wide knobs): nothing else may run a
lab or a test suite meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.common import bench_lab, write_page

DRILLS = Path(__file__).resolve().parent.parent / "drills"
SHIPPED = ["table-pressure-replay", "bypass-canary", "capacity-step", "rollback"]
METRICS = [("gw", "nfd_per_s_max"), ("gw", "ctr_max"), ("gw", "drops"),
           ("gw", "table_full_events"), ("probe", "dwell_ms_p99"), ("probe", "cdt_p95_bps")]
Values = dict[str, list[float]]


def run(drill: str, inventory: Path, runs_dir: Path) -> tuple[int, float, dict[str, Any]]:
    env = dict(os.environ, CTDRILL_RUNS_DIR=str(runs_dir))
    t = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "ctdrill", "run", str(DRILLS / f"{drill}.yaml"),
                           "-i", str(inventory), "--json"], capture_output=True, text=True,
                          env=env, timeout=600)
    took = time.monotonic() - t
    try:
        return done.returncode, took, json.loads(done.stdout)
    except ValueError:
        return done.returncode, took, {}


def collect(out: dict[str, Any], took: float, values: Values) -> None:
    values["wall s"].append(took)
    for e in out.get("expectations", []):
        if isinstance(e.get("observed"), (int, float)):
            values[e["name"]].append(float(e["observed"]))
    metrics = out.get("metrics", {})
    for host, key in METRICS:
        v = metrics.get(host, {}).get(key)
        if isinstance(v, (int, float)):
            values[f"{host} {key}"].append(float(v))


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs):,.3g}" if xs else "n/a"


def page(results: dict[str, dict[str, Values]], passes: dict[str, dict[str, list[int]]],
         runs: int) -> str:
    lines = [f"Command: `python -m bench.drills_ssh --runs {runs}`. Each drill {runs} times "
             "over each inventory, interleaved (netns run, then opaque run). 'opaque' = every "
             "host reached only over SSH (`ctdrill lab up --opaque`): probe, telemetry, "
             "class counting, the surge's senders and the venue's handshake partner all "
             "through paramiko; state changes through Ansible over SSH.", "",
             "| drill | passed netns | passed opaque |", "|---|---|---|"]
    for drill in results:
        p = passes[drill]
        lines.append(f"| {drill} | {sum(c == 0 for c in p['netns'])}/{len(p['netns'])} | "
                     f"{sum(c == 0 for c in p['opaque'])}/{len(p['opaque'])} |")
    for drill, by in results.items():
        lines += ["", f"### {drill}", "", "| measured | median netns | median opaque | "
                  "opaque / netns |", "|---|---|---|---|"]
        for key in by["netns"]:
            a, b = by["netns"][key], by["opaque"].get(key, [])
            ratio = (f"{statistics.median(b) / statistics.median(a):.2f}"
                     if a and b and statistics.median(a) else "")
            lines.append(f"| {key} | {med(a)} | {med(b)} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    results: dict[str, dict[str, Values]] = {}
    passes: dict[str, dict[str, list[int]]] = {}
    runs_dir = Path(tempfile.mkdtemp(prefix="ctd-bench-runs-"))
    with bench_lab("dssh", ssh=True) as lab:
        invs = {"netns": lab.plan.inventory_path, "opaque": lab.plan.opaque_inventory_path}
        for drill in SHIPPED:
            results[drill] = {k: defaultdict(list) for k in invs}
            passes[drill] = {k: [] for k in invs}
        for _ in range(args.runs):
            for drill in SHIPPED:
                for kind, inv in invs.items():
                    code, took, out = run(drill, inv, runs_dir)
                    passes[drill][kind].append(code)
                    collect(out, took, results[drill][kind])
                    print(f"{drill:24s} {kind:7s} exit {code} {took:5.1f} s", flush=True)
    write_page("BENCH-drills-ssh.md", "The shipped drills over SSH vs over netns",
               page(results, passes, args.runs))


if __name__ == "__main__":
    main()
