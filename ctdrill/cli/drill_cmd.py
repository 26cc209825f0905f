"""`ctdrill plan`, `ctdrill run` and `ctdrill revert`: parse, call ctdrill.api, render.

ctdrill.api loads the engine, the spec models and the lab inside each call, so `revert
--help` (and every other command) does not pay for them (docs/BENCH-cli.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from ctdrill import api
from ctdrill.cli.common import console, err_console, handle_errors, print_json
from ctdrill.cli.live import LiveStatus
from ctdrill.errors import ExitCode, InvalidInput

InventoryOpt = typer.Option(None, "-i", "--inventory", help="Ansible inventory.")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")


OFFLINE_BEFORE = "unknown (offline)"


def _pools_table(pools: Mapping[str, list[str]]) -> Table:
    """Every target host once, by pool: at fleet size the list a reviewer checks."""
    table = Table(title="pools", title_justify="left")
    for col in ("pool", "hosts", "names"):
        table.add_column(col)
    rows = ([("canary", pools["canary"]), ("control", pools["control"])]
            if pools["control"] else [("targets", pools["targets"])])
    for name, hosts in rows:
        table.add_row(name, str(len(hosts)), escape(", ".join(hosts)))
    return table


def _waves_table(waves: tuple[tuple[str, ...], ...]) -> Table:
    """The rollout's waves in order; guards are checked after each one."""
    table = Table(title="waves (guards checked after each)", title_justify="left")
    for col in ("wave", "hosts", "names"):
        table.add_column(col)
    for i, wave in enumerate(waves, 1):
        table.add_row(str(i), str(len(wave)), escape(", ".join(wave)))
    return table


def _plan_table(result: api.PlanResult) -> Table:
    table = Table(title="plan", title_justify="left")
    for col in ("host", "change", "before", "after"):
        table.add_column(col)
    for host, hp in result.hosts.items():
        for c in hp.sysctl:
            if result.offline:
                table.add_row(host, c.key, f"[dim]{OFFLINE_BEFORE}[/]", f"[bold]{c.after}[/]")
                continue
            style = "" if c.changes else "dim"
            table.add_row(host, c.key, str(c.before), f"[{style}]{c.after}[/]" if style
                          else f"[bold]{c.after}[/]")
        if hp.nft_body:
            table.add_row(host, "nft table inet ctd_drill", "absent", hp.nft_body)
        for r in hp.refusals:
            table.add_row(host, "[red]REFUSED[/]", "", r)
    return table


@handle_errors
def plan(spec_file: Path = typer.Argument(..., help="Drill spec (YAML)."),
         inventory: Path | None = InventoryOpt, json_out: bool = JsonOpt,
         offline: bool = typer.Option(
             False, "--offline", help="Contact no host: pools and changes from the spec and "
             "the inventory alone (before values unknown; hosts need not exist).")) -> None:
    """Show, per host, the exact before -> after of every change. Changes nothing."""
    result = api.plan(spec_file, inventory, offline=offline)
    pools = result.pools
    if json_out:
        print_json(result.to_json())
    else:
        console.print(f"drill [bold]{escape(result.drill)}[/] on {len(pools['targets'])} "
                      f"host(s)" + (f": canary {len(pools['canary'])}, control "
                                    f"{len(pools['control'])}" if pools["control"] else "")
                      + (" [dim](offline: no host contacted)[/]" if offline else ""))
        console.print(_pools_table(pools))
        if result.waves:
            console.print(_waves_table(result.waves))
        console.print(_plan_table(result))
        if result.unchecked:
            console.print("not checked offline (needs each host's snapshot): "
                          + "; ".join(result.unchecked))
    if result.refusals:
        raise InvalidInput(result.refusals[0], "fix the drill spec; nothing was changed")


def _transitions_table(result: api.RunResult) -> Table | None:
    outcome = result.outcome
    rows = [(h, tr) for h, trs in outcome.transitions.items() for tr in trs]
    if not rows:
        return None
    t0 = min(tr["t"] for _, tr in rows)
    table = Table(title="regime transitions", title_justify="left")
    for col in ("t+s", "host", "from", "to", "signal", "value / threshold"):
        table.add_column(col)
    for host, tr in sorted(rows, key=lambda r: r[1]["t"]):
        table.add_row(f"{tr['t'] - t0:6.2f}", host, tr["from_state"], tr["to_state"],
                      tr["signal"], f"{tr['value']:.4g} / {tr['threshold']:.4g}")
    return table


def _summary(result: api.RunResult) -> None:
    outcome = result.outcome
    transitions = _transitions_table(result)
    if transitions is not None:
        console.print(transitions)
    if outcome.metrics:
        table = Table(title="key metrics", title_justify="left")
        table.add_column("where")
        table.add_column("metrics")
        for where, values in outcome.metrics.items():
            table.add_row(where, ", ".join(
                f"{k} {'n/a' if v is None else f'{v:.4g}'}" for k, v in values.items()))
        console.print(table)
    if outcome.final_regime:
        console.print("final regime: " + ", ".join(f"{h} {r}" for h, r in
                                                   outcome.final_regime.items()))
    if outcome.verdicts:
        table = Table(title="expectations", title_justify="left")
        for col in ("expectation", "verdict", "observed"):
            table.add_column(col)
        for v in outcome.verdicts:
            table.add_row(v.name, "[green]pass[/]" if v.passed else "[red]FAIL[/]", v.detail)
        console.print(table)
    if outcome.reverts:
        table = Table(title="revert", title_justify="left")
        for col in ("host", "verified", "restored", "problems"):
            table.add_column(col)
        for h, r in outcome.reverts.items():
            table.add_row(h, "[green]yes[/]" if r.verified else "[red]NO[/]",
                          ", ".join(r.restored) + (" " + ", ".join(r.deleted) if r.deleted
                                                   else ""),
                          "; ".join(r.problems))
        console.print(table)
    if outcome.reason:
        console.print(f"reason: {outcome.reason}")
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in outcome.timings.items())
    console.print(f"run {outcome.run_id}: exit {int(outcome.exit_code)} "
                  f"({outcome.exit_code.name.lower()}); {timing}")
    console.print(f"journal: {outcome.journal}", soft_wrap=True)
    console.print(f"report:  ctdrill report {outcome.journal}", soft_wrap=True)


@handle_errors
def run(spec_file: Path = typer.Argument(..., help="Drill spec (YAML)."),
        inventory: Path | None = InventoryOpt,
        runs_dir: Path | None = typer.Option(None, "--runs-dir",
                                             help="Where run journals go (default ./runs)."),
        json_out: bool = JsonOpt) -> None:
    """Run a drill; without -i, on an ephemeral lab that is built and removed."""
    with console.status("drill", spinner="dots") as status:
        live = LiveStatus(status.update)
        result = api.run(spec_file, inventory, runs_dir=runs_dir, progress=live.note,
                         on_event=live)
    if json_out:
        print_json(result.to_json())
    else:
        _summary(result)
    if result.rc == ExitCode.REVERT_FAILED:
        err_console.print(f"[bold red]REVERT NOT VERIFIED[/]: run "
                          f"'ctdrill revert {result.journal}' now", soft_wrap=True)
    raise typer.Exit(int(result.rc))


@handle_errors
def revert(journal: Path = typer.Argument(..., help="journal.jsonl of the run."),
           force: bool = typer.Option(False, "--force",
                                      help="Revert even if the run's orchestrator lives."),
           json_out: bool = JsonOpt) -> None:
    """Revert a run's targets from its journal alone, verify, disarm. Safe to run twice."""
    result = api.revert(journal, force=force)
    if json_out:
        print_json(result.to_json())
    else:
        table = Table(title=f"revert from {journal}", title_justify="left")
        for col in ("host", "verified", "restored", "dead-man", "problems"):
            table.add_column(col)
        for h, r in result.hosts.items():
            fired = "fired" if r.deadman.get("fired") else (
                "disarmed" if r.deadman.get("armed") else "not armed")
            table.add_row(h, "[green]yes[/]" if r.verified else "[red]NO[/]",
                          ", ".join(r.restored) or "-", fired, "; ".join(r.problems))
        console.print(table)
    if result.rc != ExitCode.OK:
        raise typer.Exit(int(result.rc))
