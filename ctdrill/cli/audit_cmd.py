"""`ctdrill audit [HOSTS]`: a read-only conntrack hygiene audit (docs/AUDIT.md).

Calls ctdrill.api.audit and shows one table of ranked findings per host; `--json` prints
the whole audit, `--out DIR` writes audit.json, audit.md and the drill specs there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from ctdrill import api
from ctdrill.cli.common import console, err_console, handle_errors, print_json


def _text(value: Any) -> Text:
    """Host or inventory text as a rich Text: never markup, controls made visible."""
    from ctdrill.report.safe import visible

    return Text(visible(value))


def _host_table(h: Any) -> Table:
    t = h.table_json()
    title = (f"{h.host} ({h.where}): max {t.get('max')}, buckets {t.get('buckets')}, "
             f"count {t.get('count')}, listed {t.get('listed')} in {t.get('listing_s')} s")
    table = Table(title=_text(title), title_justify="left")
    for name, justify in (("#", "right"), ("kind", "left"), ("finding", "left"),
                          ("headroom", "right"), ("fix", "left"), ("drill", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for i, (f, s) in enumerate(zip(h.findings, h.specs, strict=True), 1):
        drill = h.spec_paths.get(s.drill or "") or s.filename or s.problem or ""
        table.add_row(str(i), f.kind, _text(f.title), f"{f.headroom:,}", _text(f.advice),
                      _text(drill))
    return table


def _show(result: api.AuditResult) -> None:
    for h in result.hosts:
        if h.error:
            err_console.print(_text(f"{h.host}: not audited: {h.error}"))
            continue
        if h.findings:
            console.print(_host_table(h))
        else:
            console.print(_text(f"{h.host} ({h.where}): no findings"))
        for note in h.notes:
            console.print(_text(f"note: {note}"), style="dim")
    if result.paths:
        console.print(_text("written: " + ", ".join(str(p) for p in result.paths.values())))


@handle_errors
def audit(
    hosts: str | None = typer.Argument(None, help="Ansible host pattern (default: the "
                                       "gateways group, else every host)."),
    inventory: Path | None = typer.Option(None, "-i", "--inventory",
                                          help="Ansible inventory (default: the default lab)."),
    json_out: bool = typer.Option(False, "--json", help="Print the whole audit as JSON."),
    out: Path | None = typer.Option(None, "--out", help="Write audit.json, audit.md and "
                                    "the generated drill specs to this directory."),
) -> None:
    """Read-only conntrack hygiene audit: findings ranked by headroom, each with a drill
    spec that proves its fix. Changes nothing on any host."""
    result = api.audit(inventory, hosts, out_dir=out,
                       progress=None if json_out else
                       lambda m: err_console.print(_text(m), style="dim"))
    if json_out:
        print_json(result.to_json())
    else:
        _show(result)
    if result.rc:
        raise typer.Exit(int(result.rc))
