"""`ctdrill demo`: the embedded default job, end to end on a throwaway lab."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from ctdrill.cli.common import console, handle_errors, print_json

if TYPE_CHECKING:
    from ctdrill.metrics.conntrack import WindowMetrics
    from ctdrill.telemetry.protocol import Sample

DEMO_LAB = "demo"


@handle_errors
def demo(
    flows: int = typer.Option(5000, "--flows", help="New UDP flows to send through gw."),
    keep: bool = typer.Option(False, "--keep", help="Leave the lab up afterwards."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Build a lab, push new flows through its gateway while sampling it, and report."""
    from ctdrill.lab import manager
    from ctdrill.lab.flows import send_udp_flows
    from ctdrill.metrics.conntrack import window_metrics
    from ctdrill.targets.inventory import Inventory
    from ctdrill.telemetry.streams import open_stream  # paramiko: only when used

    with console.status("building the namespace lab", spinner="dots"):
        lab = manager.up(DEMO_LAB, ssh=True)
    try:
        inv = Inventory(lab.plan.inventory_path)
        gw = inv.target("gw")
        samples: list[Sample] = []
        stream = open_stream(gw, hz=50)

        def collect() -> None:
            for s in stream:
                samples.append(s)

        reader = threading.Thread(target=collect, daemon=True)
        reader.start()
        time.sleep(0.3)
        client_ns = lab.plan.host("client").netns
        with console.status(f"sending {flows} new UDP flows client -> venue", spinner="dots"):
            sent, errors = send_udp_flows(client_ns, lab.plan.host("venue").data_addr, flows,
                                          lab.plan.target_networks)
            time.sleep(0.5)
        stream.close()
        reader.join(timeout=2)
        if len(samples) < 2:
            raise RuntimeError("telemetry produced fewer than two samples")
        m = window_metrics(samples[0], samples[-1])
        _report(sent, errors, m, len(samples), json_out)
    finally:
        if not keep:
            with console.status("removing the lab", spinner="dots"):
                manager.down(DEMO_LAB)


def _report(sent: int, errors: int, m: WindowMetrics, n: int, json_out: bool) -> None:
    if json_out:
        print_json({"sent": sent, "errors": errors, "samples": n, "metrics": m.to_json()})
        return
    table = Table(title="gateway conntrack during the demo", title_justify="left")
    for col in ("flows sent", "samples", "count", "CTR", "HCP95", "NFD/s", "new flows/s"):
        table.add_column(col, justify="right")
    table.add_row(str(sent), str(n), str(m.count), f"{m.ctr:.4f}", str(m.hcp95),
                  f"{m.nfd_per_s:.1f}", f"{m.new_flows_per_s:.0f}")
    console.print(table)
    console.print("next: 'ctdrill lab up' then 'ctdrill observe gw' for a live view")
