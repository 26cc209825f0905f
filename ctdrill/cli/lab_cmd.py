"""`ctdrill lab up|status|down`."""

from __future__ import annotations

import typer
from rich.table import Table

from ctdrill.cli.common import console, handle_errors, print_json
from ctdrill.errors import ExitCode
from ctdrill.lab.topology import DEFAULT_LAB, validate_name
from ctdrill.system.preflight import require_root

app = typer.Typer(help="Build, inspect and remove the network-namespace lab.",
                  no_args_is_help=True)

NameOpt = typer.Option(DEFAULT_LAB, "--name", "-n", help="Lab name (1-8 of a-z0-9).")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")


@app.command()
@handle_errors
def up(name: str = NameOpt,
       ssh: bool = typer.Option(True, "--ssh/--no-ssh", help="Start an sshd in each host."),
       opaque: bool = typer.Option(False, "--opaque", help=(
           "Print only the opaque inventory: every host over SSH with no namespace or "
           "lab hints, as a remote fleet (implies --ssh).")),
       gateways: int = typer.Option(1, "--gateways", "-g", min=1, max=32, help=(
           "Gateways in the pool: N lanes client<i> -> gw<i> -> venue<i>, each gateway with "
           "its own conntrack table, all in group `gateways`.")),
       json_out: bool = JsonOpt) -> None:
    """Build client -> gw -> venue, or a pool of N such lanes (idempotent), and print the
    inventory path(s)."""
    from ctdrill.lab import manager

    with console.status(f"building lab '{name}'", spinner="dots"):
        result = manager.up(name, ssh=ssh or opaque, gateways=gateways)
    paths = ([result.plan.opaque_inventory_path] if opaque
             else list(result.inventories))
    if json_out:
        print_json({"lab": name, "created": result.created,
                    "gateways": result.plan.gateways,
                    "inventories": [str(p) for p in paths]})
        return
    if opaque:
        print(paths[0])  # alone on stdout: `-i "$(ctdrill lab up --opaque)"`
        return
    verb = "built" if result.created else "already up"
    size = f" ({result.plan.gateways} gateways)" if result.plan.is_pool else ""
    console.print(f"lab [bold]{name}[/]{size} {verb}")
    for path in result.inventories:
        console.print(str(path), soft_wrap=True)


@app.command()
@handle_errors
def status(name: str = NameOpt, json_out: bool = JsonOpt) -> None:
    """Say what exists and what is broken; exit 5 when the lab is missing or broken."""
    from ctdrill.lab import manager

    validate_name(name)
    require_root()
    plan = manager.require_lab(name)
    checks = manager.status(plan)
    healthy = all(c.ok for c in checks)
    if json_out:
        print_json({"lab": name, "healthy": healthy,
                    "checks": [{"component": c.component, "ok": c.ok, "detail": c.detail}
                               for c in checks]})
    else:
        table = Table(title=f"lab {name}", title_justify="left")
        table.add_column("component")
        table.add_column("state")
        table.add_column("detail")
        for c in checks:
            table.add_row(c.component, "[green]ok[/]" if c.ok else "[red]broken[/]", c.detail)
        console.print(table)
    if not healthy:
        raise typer.Exit(int(ExitCode.ENVIRONMENT))


@app.command()
@handle_errors
def down(name: str = NameOpt,
         all_labs: bool = typer.Option(False, "--all", help="Remove every ctdrill lab."),
         json_out: bool = JsonOpt) -> None:
    """Remove namespaces, links, sshd processes and files (also of a half-built lab)."""
    from ctdrill.lab import manager

    require_root()
    names = manager.list_labs() if all_labs else [name]
    removed = {n: manager.down(n) for n in names}
    if json_out:
        print_json({"removed": removed})
        return
    for n, items in removed.items():
        console.print(f"lab [bold]{n}[/]: removed {len(items)} item(s)")
