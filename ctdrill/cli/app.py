"""The `ctdrill` command: sub-commands are registered here and live in their own modules."""

from __future__ import annotations

import os

import typer

from ctdrill import __version__
from ctdrill.cli import gameday_cmd, lab_cmd
from ctdrill.cli.analyze_cmd import analyze
from ctdrill.cli.audit_cmd import audit
from ctdrill.cli.demo_cmd import demo
from ctdrill.cli.drill_cmd import plan, revert, run
from ctdrill.cli.observe_cmd import observe
from ctdrill.cli.report_cmd import report
from ctdrill.cli.spec_cmd import schema, validate
from ctdrill.cli.surge_cmd import surge
from ctdrill.cli.watch_cmd import watch

app = typer.Typer(
    name="ctdrill",
    help="Safe failure drills against the Linux connection-tracking table (nf_conntrack).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(lab_cmd.app, name="lab")
app.add_typer(gameday_cmd.app, name="gameday")
app.command()(observe)
app.command()(watch)
app.command()(demo)
app.command()(plan)
app.command()(run)
app.command()(revert)
app.command()(validate)
app.command()(schema)
app.command()(surge)
app.command()(analyze)
app.command()(audit)
app.command()(report)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ctdrill {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the version and exit.")) -> None:
    """Safe failure drills against the Linux connection-tracking table (nf_conntrack)."""


def _with_sbin() -> None:
    """nft, conntrack, sshd and ip live in sbin, which some root environments (cron,
    CI runners) leave off PATH; subprocesses and Ansible modules inherit the fix."""
    path = os.environ.get("PATH", "").split(":")
    missing = [d for d in ("/usr/sbin", "/sbin") if d not in path]
    if missing:
        os.environ["PATH"] = ":".join([*[p for p in path if p], *missing])


def main() -> None:
    _with_sbin()
    app()
