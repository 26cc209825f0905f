"""Benchmark: sampler rate and sample latency per transport, side by side in one run.

For each transport (local agent in the namespace, paramiko over SSH) and each
requested rate, stream from the lab gateway for a few seconds and report the
achieved rate, inter-sample interval quantiles and delivery delay (receive time on
the orchestrator minus sample time on the target; same clock, one machine).

    .venv/bin/python -m bench.telemetry_rate [--seconds 5]
"""

from __future__ import annotations

import argparse
import itertools
import threading
import time

from bench.common import quantile, write_page
from ctdrill.lab import manager
from ctdrill.targets.inventory import Inventory
from ctdrill.telemetry.protocol import Sample
from ctdrill.telemetry.streams import open_stream

LAB = "bench"


def measure(inv: Inventory, hz: float, seconds: float) -> dict[str, float]:
    target = inv.target("gw")
    stream = open_stream(target, hz)
    samples: list[Sample] = []
    reader = threading.Thread(target=lambda: samples.extend(stream), daemon=True)
    reader.start()
    time.sleep(seconds + 0.5)
    stream.close()
    reader.join(timeout=3)
    window = [s for s in samples[5:] if s.t - samples[5].t <= seconds]  # skip start-up
    span = window[-1].t - window[0].t
    intervals = [(b.t - a.t) * 1000 for a, b in itertools.pairwise(window)]
    delays = [(s.received - s.t) * 1000 for s in window]
    return {
        "achieved_hz": (len(window) - 1) / span,
        "interval_p50_ms": quantile(intervals, 0.5),
        "interval_p99_ms": quantile(intervals, 0.99),
        "delay_p50_ms": quantile(delays, 0.5),
        "delay_p99_ms": quantile(delays, 0.99),
        "delay_max_ms": max(delays),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rates", default="20,50,100,200")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    lab = manager.up(LAB, ssh=True)
    rows = []
    try:
        invs = {"netns": Inventory(lab.plan.inventory_path),
                "ssh": Inventory(lab.plan.ssh_inventory_path)}
        for hz in rates:
            for name, inv in invs.items():  # interleaved: both transports see the same load
                r = measure(inv, hz, args.seconds)
                rows.append((name, hz, r))
                print(name, hz, {k: round(v, 2) for k, v in r.items()}, flush=True)
    finally:
        manager.down(LAB)
    table = ["| transport | requested Hz | achieved Hz | interval p50 ms | interval p99 ms "
             "| delay p50 ms | delay p99 ms | delay max ms |", "|---|---|---|---|---|---|---|---|"]
    for name, hz, r in rows:
        table.append(f"| {name} | {hz:.0f} | {r['achieved_hz']:.1f} | {r['interval_p50_ms']:.1f} "
                     f"| {r['interval_p99_ms']:.1f} | {r['delay_p50_ms']:.2f} "
                     f"| {r['delay_p99_ms']:.2f} | {r['delay_max_ms']:.1f} |")
    by_key = {(name, hz): r for name, hz, r in rows}
    ratio = [f"- {hz:.0f} Hz: ssh/netns delivery delay p99 ratio "
             f"{by_key[('ssh', hz)]['delay_p99_ms'] / by_key[('netns', hz)]['delay_p99_ms']:.2f}"
             for hz in rates]
    body = (f"Command: `.venv/bin/python -m bench.telemetry_rate --seconds {args.seconds:g}`\n\n"
            "Each row streams from the lab gateway for the stated time; transports are "
            "interleaved per rate so both see the same machine load. Delay is receive time "
            "on the orchestrator minus the agent's sample timestamp.\n\n"
            + "\n".join(table) + "\n\n" + "\n".join(ratio))
    print(write_page("BENCH-telemetry.md", "Telemetry sampler rate and latency", body))


if __name__ == "__main__":
    main()
