"""`ctdrill observe TARGET`: live conntrack telemetry and metrics for one target."""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.live import Live
from rich.table import Table

from ctdrill.cli.common import console, handle_errors, print_json
from ctdrill.errors import InvalidInput

if TYPE_CHECKING:
    from ctdrill.metrics.conntrack import WindowMetrics
    from ctdrill.telemetry.protocol import SlabInfo, TableFullEvent


def slab_text(slab: SlabInfo | None) -> str:
    """The conntrack slab cache as one cell; unreadable (not root) says so."""
    if slab is None:
        return "[dim]unreadable (/proc/slabinfo needs root)[/]"
    return (f"{slab.num_objs:,} objects ({slab.active_objs:,} active) x {slab.objsize} B"
            f" = {slab.bytes / 2**20:,.1f} MiB")


def render(target: str, m: WindowMetrics | None, events: deque[TableFullEvent],
           rate_hz: float, slab: SlabInfo | None = None) -> Table:
    table = Table(title=f"conntrack on {target}", title_justify="left", show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    if m is None:
        table.add_row("waiting", "for the first window")
        return table
    style = "red" if m.ctr >= 0.9 else "yellow" if m.ctr >= 0.7 else "green"
    table.add_row("CTR", f"[{style}]{m.ctr:.3f}[/]  ({m.count}/{m.max})")
    table.add_row("HCP95 (model)", f"{m.hcp95}  (buckets {m.buckets})")
    table.add_row("chain-too-long/s", f"{m.chain_too_long_per_s:.1f}")
    table.add_row("NFD drops/s", f"{m.nfd_per_s:.1f}")
    table.add_row("NFD fraction", f"{m.nfd_fraction:.3f}")
    table.add_row("new flows/s", f"{m.new_flows_per_s:.1f}")
    table.add_row("early_drop/s", f"{m.early_drop_per_s:.1f}")
    table.add_row("insert_failed/s", f"{m.insert_failed_per_s:.1f}")
    table.add_row("slab (kernel-wide)", slab_text(slab))
    table.add_row("sample rate", f"{rate_hz:.1f} Hz")
    for e in list(events)[-3:]:
        table.add_row("[red]table full[/]", e.message[-60:])
    return table


@handle_errors
def observe(
    target: str = typer.Argument(..., help="Inventory host name, e.g. gw."),
    inventory: Path | None = typer.Option(None, "-i", "--inventory",
                                          help="Ansible inventory (default: the default lab)."),
    hz: float = typer.Option(20.0, "--hz", help="Samples per second."),
    duration: float = typer.Option(0.0, "--duration", help="Seconds; 0 = until Ctrl-C."),
    window: float = typer.Option(1.0, "--window", help="Seconds over which rates are read."),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per sample."),
) -> None:
    """Stream CTR, HCP95, NFD, table-full events and the conntrack slab from one target."""
    from ctdrill.lab.manager import default_inventory
    from ctdrill.metrics.window import SlidingWindow
    from ctdrill.targets.inventory import Inventory
    from ctdrill.telemetry.streams import open_stream  # paramiko: only when used

    if not 0 < hz <= 200:
        raise InvalidInput(f"--hz {hz} is out of range", "use a rate in (0, 200]")
    if duration < 0 or window <= 0:
        raise InvalidInput("--duration must be >= 0 and --window > 0", "fix the option")
    inv = Inventory(inventory or default_inventory())
    tgt = inv.target(target)
    stream = open_stream(tgt, hz, duration)
    sliding = SlidingWindow(window)
    events: deque[TableFullEvent] = deque(maxlen=20)
    started = time.monotonic()
    n = 0
    try:
        if json_out:
            for sample in stream:
                m = sliding.push(sample)
                print_json({"target": tgt.name, "sample": sample.to_json(),
                            "metrics": m.to_json() if m else None})
            return
        with Live(render(tgt.name, None, events, 0.0), console=console,
                  refresh_per_second=4, transient=False) as live:
            for sample in stream:
                n += 1
                events.extend(sample.events)
                m = sliding.push(sample)
                rate = n / max(1e-9, time.monotonic() - started)
                live.update(render(tgt.name, m, events, rate, sample.slab))
    finally:
        stream.close()
