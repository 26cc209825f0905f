"""`ctdrill observe`'s live table shows the conntrack slab cache (kernel-wide), and says
plainly when the agent could not read it, rather than showing a zero."""

from __future__ import annotations

from collections import deque

from rich.console import Console

from ctdrill.cli.observe_cmd import render
from ctdrill.metrics.conntrack import WindowMetrics
from ctdrill.telemetry.protocol import SlabInfo, TableFullEvent


def window() -> WindowMetrics:
    return WindowMetrics(t=1.0, window_s=1.0, count=900, max=1000, buckets=1024, ctr=0.9,
                         hcp95=5, chain_too_long_per_s=0, nfd_per_s=0, nfd_fraction=0,
                         new_flows_per_s=0, early_drop_per_s=0, insert_failed_per_s=0,
                         drops=0, table_full_events=0)


def text_of(slab: SlabInfo | None) -> str:
    console = Console(width=160, record=True, color_system=None)
    console.print(render("gw", window(), deque[TableFullEvent](), 20.0, slab))
    return console.export_text()


def test_the_slab_row_shows_objects_active_size_and_mib() -> None:
    out = text_of(SlabInfo(active_objs=1046573, num_objs=1048576, objsize=320,
                           objperslab=25, pagesperslab=2))
    row = next(ln for ln in out.splitlines() if "slab (kernel-wide)" in ln)
    assert "1,048,576 objects (1,046,573 active) x 320 B = 320.0 MiB" in row


def test_an_unreadable_slab_says_so() -> None:
    row = next(ln for ln in text_of(None).splitlines() if "slab (kernel-wide)" in ln)
    assert "unreadable" in row and "root" in row and "MiB" not in row
