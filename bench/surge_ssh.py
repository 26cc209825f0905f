"""The surge over SSH (split: shipped senders + the venue's handshake partner) against
the same surge between lab namespaces, side by side in one run.

`python -m bench.surge_ssh [--seconds 1.5] [--repeats 3]` builds a lab with its sshds,
enlarges the table (global_knobs, restored), and for each repeat runs, interleaved:
new UDP flows at the maximum from the lab inventory (local) and from the opaque SSH
inventory (split), then ASSURED handshakes the same two ways. Rates are the gateway's
own count, sampled at 50 Hz, 10-90 % slope (bench/surge_rate.py's method); ASSURED
entries are read back with `conntrack -L`. Results go into docs/BENCH-surge.md, in the
section this script owns.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from bench.common import DOCS, bench_lab, machine
from bench.surge_rate import (
    BUCKETS_KEY,
    MAX_KEY,
    TABLE,
    GwCounter,
    assured_count,
    flush,
    measured,
)
from ctdrill.lab.manager import LabUp
from ctdrill.surge.launch import open_surge
from ctdrill.surge.plan import plan_surge
from ctdrill.surge.spec import SurgeLoad
from ctdrill.system.knobs import global_knobs
from ctdrill.targets.inventory import Inventory

LAB = "sshbench"
BEGIN, END = "<!-- surge-ssh:begin -->", "<!-- surge-ssh:end -->"


def run(inventory: Path, spec: SurgeLoad) -> dict[str, Any]:
    surge = open_surge(plan_surge(spec, Inventory(inventory)))
    try:
        surge.start()
        surge.wait(120)
    finally:
        result = surge.stop()
    return result


def spec_for(kind: str, seconds: float) -> SurgeLoad:
    fields: dict[str, Any] = {"kind": "surge", "source": "client", "destination": "venue",
                              "shape": {"kind": "max", "duration_s": seconds}}
    if kind == "assured":
        fields |= {"protocol": "tcp", "mode": "assured", "teardown": False}
    return SurgeLoad.model_validate(fields)


def one_round(lab: LabUp, counter: GwCounter, seconds: float,
              rows: dict[str, list[dict[str, Any]]]) -> None:
    inventories = {"local": lab.plan.inventory_path, "ssh": lab.plan.opaque_inventory_path}
    for kind in ("new", "assured"):
        for where, inv in inventories.items():
            spec = spec_for(kind, seconds)
            r = measured(lab, counter, lambda i=inv, s=spec: run(i, s))
            row = {"rate": r["rate"], "rise": r["rise"], "completed": r["extra"]["completed"],
                   "error": r["extra"].get("error", "")}
            if kind == "assured":
                row["entries"], row["assured"] = assured_count(lab)
            rows.setdefault(f"{kind}/{where}", []).append(row)
            print(f"{kind:8s} {where:6s} {row['rate']:>10,.0f}/s {row}", flush=True)
    flush(lab)


def section(rows: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> str:
    med = {k: statistics.median(r["rate"] for r in v) for k, v in rows.items()}
    new_ratio = med["new/ssh"] / med["new/local"]
    assured = med["assured/ssh"]
    lines = [BEGIN, "## Over SSH: the split surge vs the local one (same run)", "",
             f"Run on {machine()}: `python -m bench.surge_ssh --seconds {args.seconds} "
             f"--repeats {args.repeats}`, interleaved. 'local' is the lab inventory (one "
             "process forges both ends between namespaces); 'ssh' is the opaque inventory: "
             "senders shipped to the client host over paramiko, SYN-ACKs from ctdrill's "
             "handshake partner on the venue host, ACKs once each SYN-ACK has crossed the "
             "gateway. Rates: the gateway's count at 50 Hz, 10-90 % slope.", "",
             "| target | met | measured |", "|---|---|---|",
             f"| ASSURED over SSH >= 100k entries/s | {'yes' if assured >= 100000 else 'NO'} "
             f"| {assured:,.0f}/s |",
             f"| new flows over SSH >= 0.9x local | {'yes' if new_ratio >= 0.9 else 'NO'} "
             f"| {new_ratio:.2f}x ({med['new/ssh']:,.0f} vs {med['new/local']:,.0f}/s) |", "",
             "| run | median entries/s | runs | ASSURED read back (last run) |",
             "|---|---|---|---|"]
    for key, runs in rows.items():
        last = runs[-1]
        back = (f"{last['assured']:,} of {last['entries']:,} ({last['completed']:,} completed)"
                if "assured" in last else "")
        rates = ", ".join(f"{r['rate']:,.0f}" for r in runs)
        lines.append(f"| {key} | {med[key]:,.0f} | {rates} | {back} |")
    lines += ["", f"ASSURED over SSH / local: {med['assured/ssh'] / med['assured/local']:.2f}x.",
              END]
    return "\n".join(lines)


def write(text: str) -> None:
    page = DOCS / "BENCH-surge.md"
    old = page.read_text()
    if BEGIN in old:
        old = old[:old.index(BEGIN)] + old[old.index(END) + len(END):].lstrip("\n")
    page.write_text(old.rstrip("\n") + "\n\n" + text + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows: dict[str, list[dict[str, Any]]] = {}
    with bench_lab(LAB, ssh=True) as lab, global_knobs({BUCKETS_KEY: TABLE, MAX_KEY: TABLE}):
        counter = GwCounter(lab)
        try:
            for _ in range(args.repeats):
                one_round(lab, counter, args.seconds, rows)
        finally:
            counter.close()
    write(section(rows, args))


if __name__ == "__main__":
    main()
