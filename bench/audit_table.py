"""Benchmark: `ctdrill audit` against a real gateway table of up to a million entries.

bench/audit_fold.py times the fold alone on synthetic lines; this one runs the whole
audit on the lab gateway after a real UDP surge has filled its conntrack table: the
kernel's dump (`conntrack -L` in the gateway's namespace), the pipe, the parse and the
fold, and reports wall time, the orchestrator's CPU and peak RSS, and what the listing
saw against the kernel's count. The table is enlarged with `global_knobs` (recorded,
locked, restored exactly) and the gateway's UDP timeouts raised inside its own
namespace for the run (per-namespace, restored), so the entries outlive the audit.

    .venv/bin/python -m bench.audit_table --entries 1000000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.common import bench_lab, write_page
from ctdrill import api
from ctdrill.connect.factory import namespace_connector
from ctdrill.lab.manager import LabUp
from ctdrill.system.knobs import global_knobs

LAB = "abench"
MAX_KEY, BUCKETS_KEY = "net.netfilter.nf_conntrack_max", "net.netfilter.nf_conntrack_buckets"
UDP_TIMEOUTS = ("net.netfilter.nf_conntrack_udp_timeout",
                "net.netfilter.nf_conntrack_udp_timeout_stream")


@contextmanager
def long_udp_timeouts(netns: str, seconds: int) -> Iterator[None]:
    """The gateway's UDP timeouts raised (its namespace only), restored afterwards."""
    conn = namespace_connector(netns)
    before = {k: conn.run(["sysctl", "-n", k]).stdout.strip() for k in UDP_TIMEOUTS}
    try:
        for key in UDP_TIMEOUTS:
            conn.run(["sysctl", "-q", "-w", f"{key}={seconds}"])
        yield
    finally:
        for key, value in before.items():
            conn.run(["sysctl", "-q", "-w", f"{key}={value}"])


def fill(lab: LabUp, entries: int) -> dict[str, Any]:
    """A real surge of `entries` new UDP flows through the gateway (unpaced)."""
    out = subprocess.run(
        [sys.executable, "-m", "ctdrill", "surge", "-i", str(lab.plan.inventory_path),
         "--protocol", "udp", "--flows", str(entries), "--duration", "60", "--json"],
        capture_output=True, text=True, check=True).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def gw_count(lab: LabUp) -> int:
    conn = namespace_connector(lab.plan.host("gw").netns)
    return int(conn.run(["cat", "/proc/sys/net/netfilter/nf_conntrack_count"]).stdout)


def timed_audit(lab: LabUp) -> dict[str, Any]:
    before_count = gw_count(lab)
    t0, c0 = time.perf_counter(), time.process_time()
    result = api.audit(lab.plan.inventory_path, "gw")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    host = result.to_json()["hosts"][0]
    table = host.get("table") or {}
    return {"count_before": before_count, "count_after": gw_count(lab),
            "listed": table.get("listed"), "listing_s": table.get("listing_s"),
            "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "findings": [f["kind"] for f in host.get("findings", [])]}


def page(rows: list[dict[str, Any]], cmd: str) -> str:
    lines = ["Each row: a real UDP surge fills the lab gateway's table, then the whole audit "
             "runs on it in-process (`api.audit(inventory, 'gw')`): the kernel's dump in the "
             "gateway's namespace, the pipe, the parse and the fold. CPU and peak RSS are the "
             "orchestrator's; `conntrack` on the host runs niced meanwhile.", "",
             f"`{cmd}`", "",
             "| entries (kernel count before) | listed | listing s | audit wall s "
             "| orchestrator CPU s | peak RSS MB | findings |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['count_before']:,} | {r['listed']:,} | {r['listing_s']} | "
                     f"**{r['wall_s']}** | "
                     f"{r['cpu_s']} | {r['peak_rss_mb']} | {', '.join(r['findings']) or '-'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    table = 1 << (max(args.entries).bit_length() + 1)  # room for the surge and the rest
    rows = []
    with bench_lab(LAB) as lab, global_knobs({BUCKETS_KEY: table // 4, MAX_KEY: table}), \
            long_udp_timeouts(lab.plan.host("gw").netns, 600):
        for n in args.entries:
            namespace_connector(lab.plan.host("gw").netns).run(["conntrack", "-F"], check=False)
            fill(lab, n)
            rows.append(timed_audit(lab))
            print(json.dumps(rows[-1]), flush=True)
    cmd = "python -m bench.audit_table --entries " + " ".join(map(str, args.entries))
    print(write_page("BENCH-audit-table.md", "Benchmark: the audit on a real table",
                     page(rows, cmd)))


if __name__ == "__main__":
    main()
