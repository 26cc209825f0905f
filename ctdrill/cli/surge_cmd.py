"""`ctdrill surge [SPEC] -i INVENTORY`: send a flow surge through the lab's gateway.

SPEC is a SurgeLoad mapping in YAML (`kind: surge` may be left out); the options cover
the common cases without a file. A progress bar shows sent flows, rate and errors;
`--json` prints only the result. Ctrl-C stops the workers within a second, resets
ASSURED flows, and still prints what was really sent (exit 3).
"""

from __future__ import annotations

import signal
import time
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ctdrill.cli.common import console, handle_errors, print_json
from ctdrill.errors import ExitCode, InvalidInput

if TYPE_CHECKING:
    from ctdrill.surge.plan import SurgePlan
    from ctdrill.surge.spec import SurgeLoad

# The surge models (pydantic), the inventory and the senders are imported where they are
# used, so that every other command starts without them (docs/BENCH-cli.md).

MAX_SPEC_BYTES = 1 << 20


def load_surge_spec(path: Path) -> SurgeLoad:
    """A SurgeLoad from YAML, errors as FILE:LINE:COL: path: message."""
    from pydantic import ValidationError

    from ctdrill.spec.loader import dotted
    from ctdrill.spec.marks import YamlFailure, compose
    from ctdrill.surge.spec import SurgeLoad

    try:
        text = path.read_bytes()[:MAX_SPEC_BYTES + 1].decode("utf-8-sig")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}",
                           "give a surge spec YAML file") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text", "give a surge spec YAML file") from None
    try:
        composed = compose(text)
    except YamlFailure as failure:
        m = failure.problem.mark
        raise InvalidInput(f"{path}:{m.line}:{m.column}: {failure.problem.message}",
                           "fix the YAML") from None
    data = composed.data
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: expected a mapping of surge fields",
                           "see 'ctdrill schema' (load, kind surge)")
    data = {"kind": "surge", **data}
    try:
        return SurgeLoad.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        err = errors[0]
        path_ = tuple(p for p in err["loc"] if isinstance(p, str | int))
        _, loc = composed.nearest(path_)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InvalidInput(f"{path}:{loc.value.line}:{loc.value.column}: "
                           f"{dotted(path_)}: {err['msg']}{more}",
                           "see 'ctdrill schema' for the surge fields") from None


def spec_from_options(source: str, destination: str, rate: float | None,
                      duration: float | None, mode: str | None, protocol: str | None,
                      flows: int | None, workers: int | None) -> SurgeLoad:
    """A SurgeLoad for the common cases: constant --rate, or unpaced for --duration."""
    from pydantic import ValidationError

    from ctdrill.spec.loader import dotted
    from ctdrill.surge.spec import SurgeLoad

    if rate is None and duration is None and flows is None:
        raise InvalidInput("nothing to send", "give a SPEC file, or --rate/--duration/--flows")
    mode = mode or "new"
    protocol = protocol or ("tcp" if mode == "assured" else "udp")
    if duration is None:
        duration = flows / rate if (flows and rate) else 10.0
    shape: dict[str, Any] = ({"kind": "constant", "rate": rate, "duration_s": duration}
                             if rate else {"kind": "max", "duration_s": duration})
    data: dict[str, Any] = {"kind": "surge", "source": source, "destination": destination,
                            "mode": mode, "protocol": protocol, "shape": shape,
                            "start_s": 0, "workers": workers}
    if flows is not None:
        data["max_packets"] = flows * (3 if mode == "assured" else 1)
    try:
        return SurgeLoad.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = dotted(tuple(p for p in err["loc"] if isinstance(p, str | int)))
        raise InvalidInput(f"invalid option ({where}): {err['msg']}", "fix the option") from None


def _render(result: dict[str, Any]) -> Table:
    table = Table(title="surge result", title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    requested = f" of {result['requested']:,} due" if result["requested"] else ""
    table.add_row("flows", f"{result['flows']:,}{requested} ({result['completed']:,} completed)")
    table.add_row("packets", f"{result['packets']:,}")
    table.add_row("rate", f"{result['rate']:,.0f} flows/s")
    table.add_row("duration", f"{result['duration_s']:.2f} s")
    table.add_row("errors / ENOBUFS", f"{result['errors']} / {result['enobufs']}")
    table.add_row("stopped", str(result["stopped"]))
    for name, ph in result.get("phases", {}).items():
        table.add_row(f"phase {name}", f"{ph['flows']:,} flows at {ph['rate']:,.0f}/s"
                      + (f", {ph['teardown']:,} reset" if ph.get("teardown") else ""))
    if result.get("error"):
        table.add_row("[red]error[/]", str(result["error"]))
    return table


@handle_errors
def surge(
    spec_file: Path | None = typer.Argument(None, help="Surge spec YAML (a SurgeLoad "
                                                       "mapping); or use the options."),
    inventory: Path | None = typer.Option(None, "-i", "--inventory",
                                          help="Ansible inventory (default: the default lab)."),
    source: str = typer.Option("client", "--source", help="Host that sends."),
    destination: str = typer.Option("venue", "--destination", help="Host or IP to send to."),
    rate: float | None = typer.Option(None, "--rate", help="Constant flows/s (else unpaced)."),
    duration: float | None = typer.Option(None, "--duration", help="Seconds (default 10)."),
    mode: str | None = typer.Option(None, "--mode", help="new | assured."),
    protocol: str | None = typer.Option(None, "--protocol", help="udp | tcp | icmp."),
    flows: int | None = typer.Option(None, "--flows", help="Stop after this many flows."),
    workers: int | None = typer.Option(None, "--workers", help="Sender processes "
                                                              "(default: one per core)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON only."),
) -> None:
    """Send a flow surge (new or ASSURED flows) and report what really left."""
    from ctdrill.lab.manager import default_inventory
    from ctdrill.surge.plan import plan_surge
    from ctdrill.targets.inventory import Inventory

    if spec_file is not None:
        if any(v is not None for v in (rate, duration, mode, protocol, flows)):
            raise InvalidInput("give either a SPEC file or --rate/--duration/--mode/"
                               "--protocol/--flows", "put those fields in the SPEC file")
        spec = load_surge_spec(spec_file)
        if workers is not None:
            spec = spec.model_copy(update={"workers": workers})
        base = spec_file.resolve().parent
    else:
        spec = spec_from_options(source, destination, rate, duration, mode, protocol, flows,
                                 workers)
        base = Path.cwd()
    inv = Inventory(inventory or default_inventory())
    plan = plan_surge(spec, inv, base_dir=base)
    from ctdrill.surge.launch import open_surge

    caught: list[str] = []

    def on_signal(signum: int, _frame: types.FrameType | None) -> None:
        caught.append(signal.Signals(signum).name)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    run = open_surge(plan)
    try:
        run.start()
        _watch(run, json_out, caught, expected_seconds(plan))
        result = run.stop(caught[0] if caught else None)
    finally:
        run.stop(caught[0] if caught else None)
        for s, handler in previous.items():
            signal.signal(s, handler)
    if json_out:
        print_json(result)
    else:
        console.print(_render(result))
    if caught:
        raise typer.Exit(int(ExitCode.ABORTED))
    if result.get("stopped") == "error":
        raise typer.Exit(int(ExitCode.ENVIRONMENT))


def expected_seconds(plan: SurgePlan) -> float | None:
    """How long the surge should take (for the bar); None when only the run can tell."""
    from ctdrill.surge.shapes import shape_schedule

    spec = plan.spec
    if plan.pcap is not None:
        return None
    total = shape_schedule(spec.shape, plan.profile).duration
    if spec.fill is not None:
        if spec.fill.rate is None:
            return None
        total += spec.fill.flows / spec.fill.rate
    return min(total, spec.max_duration_s)


def _watch(run: Any, quiet: bool, caught: list[str], expected: float | None) -> None:
    """Wait for the surge to end or a signal; draw the progress bar unless --json."""
    if quiet:
        while not caught and not run.finished():
            time.sleep(0.05)
        return
    columns = (TextColumn("[bold]{task.fields[phase]:>5}"), BarColumn(),
               TextColumn("{task.fields[flows]:>12,} flows"),
               TextColumn("{task.fields[rate]:>10,.0f}/s"),
               TextColumn("errors {task.fields[errors]}  ENOBUFS {task.fields[enobufs]}"),
               TimeElapsedColumn())
    started = time.monotonic()
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("surge", total=expected, phase="start", flows=0, rate=0.0,
                                 errors=0, enobufs=0)
        window: list[tuple[float, int]] = [(started, 0)]
        while not caught and not run.finished():
            time.sleep(0.2)
            t = run.totals()
            now = time.monotonic()
            window = [w for w in window if now - w[0] <= 1.0] + [(now, t["flows"])]
            rate = (window[-1][1] - window[0][1]) / max(window[-1][0] - window[0][0], 1e-6)
            progress.update(task, completed=now - started, phase=t["phase"] or "start",
                            flows=t["flows"], rate=rate, errors=t["errors"],
                            enobufs=t["enobufs"])
        if expected is not None and not caught:
            progress.update(task, completed=expected)
