"""Run a game-day suite: blackout check, one run at a time, drills in order, history.

Drills run, report and share an ephemeral lab through ctdrill.api only.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ctdrill import api
from ctdrill.errors import CtdrillError, EnvironmentProblem, ExitCode, InvalidInput
from ctdrill.gameday.blackout import active_window
from ctdrill.gameday.suite import Suite
from ctdrill.lab.topology import run_dir
from ctdrill.report.markdown import cell
from ctdrill.report.safe import md_code

SEVERITY = [ExitCode.OK, ExitCode.EXPECTATIONS_FAILED, ExitCode.ABORTED,
            ExitCode.REVERT_FAILED]


class SuiteSkipped(CtdrillError):
    """The run was correctly not started: inside a blackout window, or a live run holds
    the suite's lock. Nothing was contacted or changed; a timer counts it as success."""

    exit_code = ExitCode.SKIPPED


def load_suite(path: Path) -> Suite:
    try:
        data = yaml.safe_load(path.read_text())
        return Suite.model_validate(data)
    except OSError as exc:
        raise InvalidInput(f"cannot read suite {path}: {exc.strerror}", "check the path") from exc
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: not valid YAML: {exc}", "fix the file") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidInput(f"{path}: {where}: {err['msg']}",
                           "see drills/gameday.yaml for the format") from exc


def is_lab(inventory: Path | None) -> bool:
    """Labs may be drilled any time; only real inventories honour blackout windows."""
    return api.is_lab(inventory)


@contextmanager
def suite_lock(name: str) -> Iterator[None]:
    """One run of a suite at a time (a run overlapping another is skipped, exit 6)."""
    path = run_dir() / f"gameday-{name}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot open the game-day lock {path}: {exc.strerror}",
                                 "run as root, or set CTDRILL_RUN_DIR to a writable "
                                 "directory") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # flock dies with its holder, so a held lock always means a live run
            raise SuiteSkipped(f"game day '{name}' skipped: another run of it is in progress",
                               "wait for it to finish") from None
        yield
    finally:
        os.close(fd)


@dataclass
class SuiteOutcome:
    suite: str
    dir: Path
    exit_code: ExitCode
    drills: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"gameday": self.suite, "dir": str(self.dir), "exit_code": int(self.exit_code),
                "drills": self.drills}


def _markdown(outcome: SuiteOutcome) -> str:
    lines = [f"# Game day {outcome.suite}: exit {int(outcome.exit_code)} "
             f"({outcome.exit_code.name.lower()})", "",
             "| drill | exit | expectations | revert verified | report |",
             "|---|---|---|---|---|"]
    for d in outcome.drills:
        exps = d.get("expectations", [])
        passed = sum(1 for e in exps if e["passed"])
        reverted = all(r["verified"] for r in d.get("revert", {}).values())
        link = d.get("reports", {}).get("html", d.get("journal", ""))
        lines.append(f"| {cell(d['drill'])} | {d['exit_code']} | {passed}/{len(exps)} | "
                     f"{'yes' if reverted else 'NO'} | {md_code(link, in_table=True)} |")
    return "\n".join(lines) + "\n"


def _update_index(history: Path, outcome: SuiteOutcome) -> None:
    index_path = history / "index.json"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = []
    index.append({"run": outcome.dir.name, "exit_code": int(outcome.exit_code),
                  "drills": [d["drill"] for d in outcome.drills], "at": time.time()})
    index_path.write_text(json.dumps(index, indent=1))
    rows = [f"| {cell(e['run'])} | {cell(e['exit_code'])} | {cell(', '.join(e['drills']))} |"
            for e in reversed(index)]
    (history / "index.md").write_text(
        f"# Game day history: {outcome.suite}\n\n| run | exit | drills |\n|---|---|---|\n"
        + "\n".join(rows) + "\n")


def run_suite(path: Path, inventory: Path | None, *, force: bool = False,
              history_root: Path | None = None, now: datetime | None = None,
              progress: Callable[[str], None] = lambda _m: None,
              on_event: api.EventHandler | None = None) -> SuiteOutcome:
    """Run the suite's drills in order (one ephemeral lab for all without an
    inventory); `progress` and `on_event` are each run's (ctdrill.api.run)."""
    suite = load_suite(path)
    specs = [(path.parent / d.spec, d) for d in suite.drills]
    api.validate([spec for spec, _ in specs], drills_only=True).raise_first()  # all valid first
    window = active_window(suite.blackout, now or datetime.now(UTC))
    if window is not None and not force and not is_lab(inventory):
        raise SuiteSkipped(
            f"game day '{suite.gameday}' skipped: inside blackout window "
            f"'{window.name or 'blackout'}' ({','.join(window.days)} {window.start}-"
            f"{window.end} {suite.blackout.timezone})",
            "run it outside the window, or pass --force if you must")
    history = (history_root or api.default_runs_dir() / "gameday") / suite.gameday
    stamp = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}"
    outdir = history / stamp
    outcome = SuiteOutcome(suite.gameday, outdir, ExitCode.OK)
    with suite_lock(suite.gameday):  # a skipped run leaves no history directory behind
        try:
            outdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EnvironmentProblem(f"cannot create {outdir}: {exc.strerror}",
                                     "pass a writable --history directory") from None
        with ExitStack() as stack:
            lab = None if inventory is not None else stack.enter_context(
                api.ephemeral_lab("g", progress))
            for spec_path, entry in specs:
                inv = path.parent / entry.inventory if entry.inventory else inventory
                result = api.run(spec_path, inv, runs_dir=outdir / "runs", lab=lab,
                                 progress=progress, on_event=on_event)
                written = api.report(result.journal, result.journal.parent,
                                     ["html", "md", "junit"]).paths
                reports = {name: str(where) for name, where in written.items()}
                outcome.drills.append({"drill": result.drill, **result.to_json(),
                                       "reports": reports})
                outcome.exit_code = max(outcome.exit_code, result.rc, key=SEVERITY.index)
                if lab is not None:  # a host not provably back keeps its lab
                    lab.keep = outcome.exit_code == ExitCode.REVERT_FAILED
                if result.rc != ExitCode.OK and suite.stop_on_failure:
                    break
    (outdir / "summary.json").write_text(json.dumps(outcome.to_json(), indent=1, default=str))
    (outdir / "summary.md").write_text(_markdown(outcome))
    _update_index(history, outcome)
    return outcome
