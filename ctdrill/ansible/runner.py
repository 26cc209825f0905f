"""A small interface over ansible-runner: run a play or a module, get per-host results.

Each run gets a fresh private_data_dir (runner caches `env/envvars` from the first run
and silently prefers it later), the venv's bin on PATH (ansible-runner execs
`ansible-playbook` by name), ctdrill's own modules on the library path, its own SSH
control-socket directory, and quiet output; results come from runner's events.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctdrill.errors import EnvironmentProblem

PLAYBOOKS = Path(__file__).resolve().parent.parent.parent / "playbooks"


@dataclass(frozen=True)
class TaskResult:
    """One task's outcome on one host (one per loop item for looped tasks)."""

    host: str
    task: str
    ok: bool
    changed: bool
    result: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    unreachable: bool = False


@dataclass(frozen=True)
class RunResult:
    status: str
    rc: int
    hosts: dict[str, list[TaskResult]]

    @property
    def ok(self) -> bool:
        return self.rc == 0 and all(r.ok for rs in self.hosts.values() for r in rs)

    def failures(self) -> list[TaskResult]:
        return [r for rs in self.hosts.values() for r in rs if not r.ok]

    def task(self, host: str, task: str) -> list[TaskResult]:
        return [r for r in self.hosts.get(host, []) if r.task == task]


def _env(private_dir: str) -> dict[str, str]:
    """Environment for one run. SSH control sockets live in the run's own directory, so
    a later run never rides an earlier connection past host key verification, and
    masters linger only briefly after the run."""
    bindir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    return {
        "PATH": f"{bindir}:{path}" if bindir not in path.split(":") else path,
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_LIBRARY": str(PLAYBOOKS / "library"),
        "ANSIBLE_MODULE_UTILS": str(PLAYBOOKS / "module_utils"),
        "ANSIBLE_SSH_ARGS": "-C -o ControlMaster=auto -o ControlPersist=10s",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(Path(private_dir) / "cp"),
        "ANSIBLE_FORKS": "16",
    }


_OUTCOMES = {
    "runner_on_ok": (True, False),
    "runner_on_failed": (False, False),
    "runner_on_unreachable": (False, True),
    "runner_item_on_ok": (True, False),
    "runner_item_on_failed": (False, False),
}


def _collect(events: Any) -> dict[str, list[TaskResult]]:
    hosts: dict[str, list[TaskResult]] = {}
    for ev in events:
        kind = ev.get("event", "")
        if kind not in _OUTCOMES:
            continue
        data = ev.get("event_data", {})
        res = data.get("res", {}) or {}
        if kind in ("runner_on_ok", "runner_on_failed") and "results" in res:
            continue  # a loop's summary: its items were recorded one by one
        ok, unreachable = _OUTCOMES[kind]
        ok = ok or bool(data.get("ignore_errors"))
        host = str(data.get("host", "?"))
        hosts.setdefault(host, []).append(TaskResult(
            host=host, task=str(data.get("task", "")), ok=ok, changed=bool(res.get("changed")),
            result=res, message="" if ok else str(res.get("msg", "")), unreachable=unreachable,
        ))
    return hosts


def _never() -> bool:
    """Runner's cancel hook. Passing one also stops ansible-runner from installing its own
    SIGINT/SIGTERM handlers, which would silently replace the drill's: a signal must let
    the running play finish and then lead to the revert, never cut a change in half."""
    return False


def run_module(inventory: Path, pattern: str, module: str, args: str = "",
               timeout: int = 120) -> RunResult:
    """Run one module ad hoc on the hosts matching `pattern`."""
    import ansible_runner

    with tempfile.TemporaryDirectory(prefix="ctd-runner-") as pdd:
        runner = ansible_runner.run(
            private_data_dir=pdd, inventory=str(inventory.resolve()), host_pattern=pattern,
            module=module, module_args=args, quiet=True, envvars=_env(pdd), timeout=timeout,
            suppress_env_files=True, cancel_callback=_never,
        )
        return RunResult(status=runner.status, rc=runner.rc, hosts=_collect(runner.events))


def run_playbook(inventory: Path, name: str, extravars: dict[str, Any],
                 timeout: int = 300) -> RunResult:
    """Run playbooks/NAME.yml against the inventory with the given extra vars."""
    import ansible_runner

    playbook = PLAYBOOKS / f"{name}.yml"
    if not playbook.exists():
        raise EnvironmentProblem(f"playbook {playbook} is missing", "reinstall ctdrill")
    with tempfile.TemporaryDirectory(prefix="ctd-runner-") as pdd:
        runner = ansible_runner.run(
            private_data_dir=pdd, inventory=str(inventory.resolve()),
            playbook=str(playbook), extravars=extravars, quiet=True, envvars=_env(pdd),
            timeout=timeout, suppress_env_files=True, cancel_callback=_never,
        )
        return RunResult(status=runner.status, rc=runner.rc, hosts=_collect(runner.events))
