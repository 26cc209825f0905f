"""`ctdrill watch`: standing telemetry + regime machine on every target, for production."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer

from ctdrill.cli.common import err_console, handle_errors
from ctdrill.errors import InvalidInput


def _listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidInput(f"--listen {value!r} is not HOST:PORT", "e.g. 127.0.0.1:9464")
    return host, int(port)


@handle_errors
def watch(
    inventory: Path | None = typer.Option(None, "-i", "--inventory",
                                          help="Ansible inventory (default: the default lab)."),
    hosts: str = typer.Option("all", "--hosts", help="Ansible host pattern to watch."),
    hz: float = typer.Option(10.0, "--hz", help="Samples per second per target."),
    window: float = typer.Option(1.0, "--window", help="Seconds over which rates are read."),
    listen: str = typer.Option("127.0.0.1:9464", "--listen",
                               help="HOST:PORT of the Prometheus /metrics endpoint."),
    transitions: Path | None = typer.Option(None, "--transitions",
                                            help="Append JSON lines here (default: stdout)."),
    regime_from: Path | None = typer.Option(None, "--regime-from",
                                            help="Take regime thresholds from a drill spec."),
    duration: float = typer.Option(0.0, "--duration", help="Seconds; 0 = until Ctrl-C."),
) -> None:
    """Sample every target, run the regime machine, serve /metrics, stream transitions.

    Targets that go away are marked down (ctdrill_target_up 0) and reconnected.
    """
    from ctdrill.lab.manager import default_inventory
    from ctdrill.regime.spec import RegimeSpec
    from ctdrill.spec.loader import load_spec
    from ctdrill.targets.inventory import Inventory
    from ctdrill.watch.service import WatchService  # prometheus_client, paramiko

    if not 0 < hz <= 100 or window <= 0 or duration < 0:
        raise InvalidInput("--hz must be in (0, 100], --window > 0, --duration >= 0",
                           "fix the option")
    addr = _listen(listen)
    cfg = (load_spec(regime_from).regime if regime_from else RegimeSpec()).to_config()
    targets = Inventory(inventory or default_inventory()).select(hosts)
    out = transitions.open("a") if transitions else sys.stdout
    service = WatchService(targets, hz=hz, window_s=window, cfg=cfg, out=out)
    try:
        port = service.serve(*addr)
    except OSError as exc:
        raise InvalidInput(f"cannot listen on {listen}: {exc.strerror}",
                           "pick a free port with --listen") from exc
    err_console.print(f"watching {', '.join(t.name for t in targets)}; "
                      f"metrics on http://{addr[0]}:{port}/metrics")
    service.start()
    started = time.monotonic()
    try:
        while duration <= 0 or time.monotonic() - started < duration:
            time.sleep(0.2)
    finally:
        service.close()
        if transitions:
            out.close()
