"""Benchmark: the drill engine's own overhead on the three-host lab (plan, apply, revert).

A typical drill (timeouts + a notrack bypass on gw and venue, a kernel-wide capacity
change on the kernel owner) with no load and a 0.5 s observation, run several times
per transport, side by side. The target: apply + revert + verify under 10 s.

    .venv/bin/python -m bench.engine_overhead [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import write_page
from ctdrill.engine.preview import preview
from ctdrill.lab import manager
from ctdrill.lifecycle import run_drill
from ctdrill.spec.models import DrillSpec

LAB = "benche"
TYPICAL = {
    "drill": "typical",
    "targets": {"hosts": "gw:venue"},
    "changes": [
        {"timeouts": {"udp": 10, "udp_stream": 60, "tcp_established": 600},
         "bypass": [{"name": "orders", "protocol": "tcp", "port": 9001}]},
        {"hosts": "kernel", "sysctl": {"net.netfilter.nf_conntrack_buckets": 262144,
                                       "net.netfilter.nf_conntrack_max": 300000}},
    ],
    "observe": {"hosts": "gw", "duration_s": 0.5},
    "revert": {"ttl_s": 60},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    spec = DrillSpec.model_validate(TYPICAL)
    lab = manager.up(LAB, ssh=True)
    rows: dict[str, dict[str, list[float]]] = {}
    try:
        with tempfile.TemporaryDirectory() as runs:
            for _ in range(args.repeat):
                for name, inv in (("netns", lab.plan.inventory_path),
                                  ("ssh", lab.plan.ssh_inventory_path)):
                    t = time.monotonic()
                    preview(spec, inv)
                    plan_s = time.monotonic() - t
                    out = run_drill(spec, inv, runs_dir=Path(runs))
                    assert out.exit_code == 0 and out.reverted_ok, out.to_json()
                    r = rows.setdefault(name, {})
                    for key, value in [("plan", plan_s), *out.timings.items()]:
                        r.setdefault(key, []).append(value)
                    r.setdefault("apply+revert+verify", []).append(
                        out.timings["apply"] + out.timings["revert_verify"])
                    print(name, {k: round(v[-1], 2) for k, v in r.items()}, flush=True)
    finally:
        manager.down(LAB)
    cols = ["plan", "prepare", "apply", "revert_verify", "apply+revert+verify", "total"]
    lines = ["| transport | " + " | ".join(f"{c} s (median)" for c in cols) + " |",
             "|---" * (len(cols) + 1) + "|"]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{statistics.median(r[c]):.2f}" for c in cols)
                     + " |")
    ratio = (statistics.median(rows["ssh"]["apply+revert+verify"])
             / statistics.median(rows["netns"]["apply+revert+verify"]))
    body = (f"Command: `.venv/bin/python -m bench.engine_overhead --repeat {args.repeat}`\n\n"
            "Typical drill: three conntrack timeouts and a notrack bypass on gw and venue, "
            "nf_conntrack_max/buckets on the kernel owner, no load, 0.5 s observation. Each "
            "phase is one ansible-runner playbook run; `prepare` = lock + snapshot, `apply` = "
            "arm dead-man + changes, `revert_verify` = revert + verify + disarm + unlock. "
            "`total` includes the observation and journal writes.\n\n"
            + "\n".join(lines)
            + f"\n\nssh / netns ratio for apply+revert+verify: {ratio:.2f}. Target: < 10 s.")
    print(write_page("BENCH-engine.md", "Drill engine overhead", body))


if __name__ == "__main__":
    main()
