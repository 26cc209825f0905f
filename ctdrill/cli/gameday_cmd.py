"""`ctdrill gameday run|plan|schedule`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from ctdrill import api
from ctdrill.cli.common import console, handle_errors, print_json
from ctdrill.cli.live import LiveStatus
from ctdrill.errors import EnvironmentProblem

# The suite runner and the models load inside each command (ctdrill.api loads the
# drill engine inside its calls), so that no other command pays for them
# (docs/BENCH-cli.md).

app = typer.Typer(help="Game days: suites of drills, blackout windows, schedules.",
                  no_args_is_help=True)
InventoryOpt = typer.Option(None, "-i", "--inventory", help="Ansible inventory "
                            "(default: an ephemeral lab for the whole suite).")


@app.command("run")
@handle_errors
def run_cmd(suite: Path = typer.Argument(..., help="Suite file, e.g. drills/gameday.yaml."),
            inventory: Path | None = InventoryOpt,
            force: bool = typer.Option(False, "--force", help="Run inside a blackout window."),
            history: Path | None = typer.Option(None, "--history",
                                                help="History root (default runs/gameday)."),
            json_out: bool = typer.Option(False, "--json")) -> None:
    """Run the suite's drills in order; one combined report; a history of past runs."""
    from ctdrill.gameday.runner import run_suite

    with console.status("game day", spinner="dots") as status:
        live = LiveStatus(lambda text: status.update(f"game day: {text}"))
        outcome = run_suite(suite, inventory, force=force, history_root=history,
                            progress=live.note, on_event=live)
    if json_out:
        print_json(outcome.to_json())
    else:
        table = Table(title=f"game day {outcome.suite}", title_justify="left")
        for col in ("drill", "exit", "expectations", "revert"):
            table.add_column(col)
        for d in outcome.drills:
            exps = d.get("expectations", [])
            table.add_row(d["drill"], str(d["exit_code"]),
                          f"{sum(e['passed'] for e in exps)}/{len(exps)}",
                          "verified" if all(r["verified"] for r in d.get("revert", {}).values())
                          else "NOT VERIFIED")
        console.print(table)
        console.print(f"report: {outcome.dir / 'summary.md'}", soft_wrap=True)
    raise typer.Exit(int(outcome.exit_code))


@app.command("plan")
@handle_errors
def plan_cmd(suite: Path = typer.Argument(...), inventory: Path | None = InventoryOpt,
             json_out: bool = typer.Option(False, "--json")) -> None:
    """Show the drills, the blackout windows, and whether a run would start now."""
    from ctdrill.gameday.blackout import active_window, describe
    from ctdrill.gameday.runner import is_lab, load_suite

    s = load_suite(suite)
    checked = api.validate([suite.parent / d.spec for d in s.drills], drills_only=True)
    checked.raise_first()
    drills = [str(f.name) for f in checked.files]
    window = active_window(s.blackout, datetime.now(UTC))
    lab = is_lab(inventory)
    verdict = ("would run (lab: blackout windows do not apply)" if lab else
               "would run" if window is None else
               f"REFUSED now: inside '{window.name or 'blackout'}' (a run is skipped, exit 6; "
               "use --force)")
    if json_out:
        print_json({"gameday": s.gameday, "drills": drills, "blackout": describe(s.blackout),
                    "now": verdict})
        return
    console.print(f"game day [bold]{s.gameday}[/]: {' -> '.join(drills)}")
    for line in describe(s.blackout) or ["no blackout windows"]:
        console.print(f"  {line}")
    console.print(f"now: {verdict}")


@app.command("schedule")
@handle_errors
def schedule_cmd(suite: Path = typer.Argument(..., help="Suite file, e.g. drills/gameday.yaml."),
                 inventory: Path | None = typer.Option(
                     None, "-i", "--inventory", help="Ansible inventory (must exist; default: "
                     "an ephemeral lab on every run)."),
                 on_calendar: str = typer.Option("Sat *-*-* 06:00:00", "--on-calendar",
                                                 help="systemd OnCalendar expression."),
                 workdir: Path | None = typer.Option(
                     None, "--workdir", help="WorkingDirectory of the service, where runs/ "
                     "goes (default: the ctdrill checkout)."),
                 output: Path = typer.Option(Path("/etc/systemd/system"), "--output",
                                             help="Where to write the unit files.")) -> None:
    """Write a systemd timer + service pair that runs the suite on a schedule.

    Everything is checked before a file is written: the calendar expression (by
    systemd-analyze when installed), the suite and its drills, the inventory."""
    from ctdrill.gameday.calendar import check_calendar
    from ctdrill.gameday.schedule import render_units
    from ctdrill.gameday.schedule_inputs import plan_schedule

    calendar = check_calendar(on_calendar)
    plan = plan_schedule(suite, inventory, workdir)
    units = render_units(plan.suite_name, plan.suite, plan.ctdrill_bin, plan.workdir,
                         calendar.expression, plan.inventory)
    try:
        output.mkdir(parents=True, exist_ok=True)
        for name, text in units.items():
            (output / name).write_text(text)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot write the units to {output}: {exc.strerror}",
                                 "run as root, or pass --output DIR") from None
    for name in units:
        console.print(f"wrote {output / name}", soft_wrap=True, markup=False)
    if calendar.next_elapse:
        console.print(f"next run: {calendar.next_elapse} ({calendar.normalized})",
                      soft_wrap=True, markup=False)
    timer = next(n for n in units if n.endswith(".timer"))
    console.print(f"enable with: systemctl daemon-reload && systemctl enable --now {timer}",
                  soft_wrap=True, markup=False)
