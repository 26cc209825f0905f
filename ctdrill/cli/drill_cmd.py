"""`ctdrill plan`, `ctdrill run` and `ctdrill revert`: parse, call ctdrill.api, render.

ctdrill.api loads the engine, the spec models and the lab inside each call, so `revert
--help` (and every other command) does not pay for them (docs/BENCH-cli.md).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ctdrill import api
from ctdrill.cli.common import console, err_console, handle_errors, print_json
from ctdrill.cli.live import LiveStatus
from ctdrill.errors import ExitCode, InvalidInput

InventoryOpt = typer.Option(None, "-i", "--inventory", help="Ansible inventory.")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _plan_table(result: api.PlanResult) -> Table:
    table = Table(title="plan", title_justify="left")
    for col in ("host", "change", "before", "after"):
        table.add_column(col)
    for host, hp in result.hosts.items():
        for c in hp.sysctl:
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
         inventory: Path | None = InventoryOpt, json_out: bool = JsonOpt) -> None:
    """Show, per host, the exact before -> after of every change. Changes nothing."""
    result = api.plan(spec_file, inventory)
    pools = result.pools
    if json_out:
        print_json(result.to_json())
    else:
        console.print(f"drill [bold]{result.drill}[/] on {', '.join(pools['targets'])}"
                      + (f" (canary: {', '.join(pools['canary'])})" if pools["control"] else ""))
        console.print(_plan_table(result))
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
