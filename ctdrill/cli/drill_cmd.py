"""`ctdrill plan`, `ctdrill run` and `ctdrill revert`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from ctdrill.cli.common import console, err_console, handle_errors, print_json
from ctdrill.errors import ExitCode, InvalidInput

if TYPE_CHECKING:
    from ctdrill.engine.drill import DrillOutcome
    from ctdrill.engine.plan import HostPlan

# The engine, the spec models and the lab are imported inside the commands: `revert
# --help` (and every other command) must not pay for them (docs/BENCH-cli.md).

InventoryOpt = typer.Option(None, "-i", "--inventory", help="Ansible inventory.")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")


def _plan_table(plans: dict[str, HostPlan]) -> Table:
    table = Table(title="plan", title_justify="left")
    for col in ("host", "change", "before", "after"):
        table.add_column(col)
    for host, hp in plans.items():
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
    from ctdrill.engine.preview import preview
    from ctdrill.lab.manager import default_inventory
    from ctdrill.spec.loader import load_spec

    spec = load_spec(spec_file)
    inv_path = inventory or default_inventory()
    plans, pools = preview(spec, inv_path)
    refusals = [r for hp in plans.values() for r in hp.refusals]
    if json_out:
        print_json({"drill": spec.drill, "pools": pools,
                    "hosts": {h: hp.to_json() for h, hp in plans.items()},
                    "refused": refusals})
    else:
        console.print(f"drill [bold]{spec.drill}[/] on {', '.join(pools['targets'])}"
                      + (f" (canary: {', '.join(pools['canary'])})" if pools["control"] else ""))
        console.print(_plan_table(plans))
    if refusals:
        raise InvalidInput(refusals[0], "fix the drill spec; nothing was changed")


def _transitions_table(outcome: DrillOutcome) -> Table | None:
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


def _summary(outcome: DrillOutcome) -> None:
    transitions = _transitions_table(outcome)
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
    from ctdrill.engine.drill import default_runs_dir, run_drill
    from ctdrill.lab import manager
    from ctdrill.spec.loader import load_spec
    from ctdrill.system.preflight import require_root

    spec = load_spec(spec_file)
    ephemeral = None
    if inventory is None:
        require_root()
        ephemeral = f"r{os.getpid() % 10_000_000}"
        with console.status("building an ephemeral lab", spinner="dots"):
            inventory = manager.up(ephemeral, ssh=False).plan.inventory_path
    outcome: DrillOutcome | None = None
    try:
        with console.status(f"drill {spec.drill}", spinner="dots") as status:
            outcome = run_drill(spec, inventory, runs_dir=runs_dir or default_runs_dir(),
                                spec_path=str(spec_file), ephemeral_lab=ephemeral,
                                progress=lambda m: status.update(f"drill {spec.drill}: {m}"))
    finally:
        keep = outcome is not None and outcome.exit_code == ExitCode.REVERT_FAILED
        if ephemeral and not keep:
            manager.down(ephemeral)
    if json_out:
        print_json(outcome.to_json())
    else:
        _summary(outcome)
    if outcome.exit_code == ExitCode.REVERT_FAILED:
        err_console.print(f"[bold red]REVERT NOT VERIFIED[/]: run "
                          f"'ctdrill revert {outcome.journal}' now", soft_wrap=True)
    raise typer.Exit(int(outcome.exit_code))


@handle_errors
def revert(journal: Path = typer.Argument(..., help="journal.jsonl of the run."),
           force: bool = typer.Option(False, "--force",
                                      help="Revert even if the run's orchestrator lives."),
           json_out: bool = JsonOpt) -> None:
    """Revert a run's targets from its journal alone, verify, disarm. Safe to run twice."""
    from ctdrill.engine.recover import revert_from_journal

    reverts = revert_from_journal(journal, force=force)
    ok = all(r.verified for r in reverts.values())
    if json_out:
        print_json({"journal": str(journal), "verified": ok,
                    "hosts": {h: {"verified": r.verified, "restored": r.restored,
                                  "deleted": r.deleted, "problems": r.problems,
                                  "deadman": r.deadman} for h, r in reverts.items()}})
    else:
        table = Table(title=f"revert from {journal}", title_justify="left")
        for col in ("host", "verified", "restored", "dead-man", "problems"):
            table.add_column(col)
        for h, r in reverts.items():
            fired = "fired" if r.deadman.get("fired") else (
                "disarmed" if r.deadman.get("armed") else "not armed")
            table.add_row(h, "[green]yes[/]" if r.verified else "[red]NO[/]",
                          ", ".join(r.restored) or "-", fired, "; ".join(r.problems))
        console.print(table)
    if not ok:
        raise typer.Exit(int(ExitCode.REVERT_FAILED))
