"""A small interface over ansible-runner: run a play or a module, get per-host results.

Each run gets a fresh private_data_dir (runner caches `env/envvars` from the first run
and silently prefers it later), the venv's bin on PATH (ansible-runner execs
`ansible-playbook` by name), and quiet output; results come from runner's events.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctdrill.errors import EnvironmentProblem


@dataclass(frozen=True)
class HostResult:
    host: str
    ok: bool
    changed: bool
    result: dict[str, Any] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True)
class RunResult:
    status: str
    rc: int
    hosts: dict[str, list[HostResult]]

    @property
    def ok(self) -> bool:
        return self.rc == 0 and all(r.ok for rs in self.hosts.values() for r in rs)


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
        "ANSIBLE_SSH_ARGS": "-C -o ControlMaster=auto -o ControlPersist=10s",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(Path(private_dir) / "cp"),
    }


def _collect(runner: Any) -> dict[str, list[HostResult]]:
    hosts: dict[str, list[HostResult]] = {}
    for ev in runner.events:
        kind = ev.get("event", "")
        if kind not in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable"):
            continue
        data = ev.get("event_data", {})
        res = data.get("res", {}) or {}
        ok = kind == "runner_on_ok" or bool(data.get("ignore_errors"))
        hosts.setdefault(data.get("host", "?"), []).append(HostResult(
            host=data.get("host", "?"), ok=ok, changed=bool(res.get("changed")), result=res,
            message=str(res.get("msg", "")) if not ok else "",
        ))
    return hosts


def run_module(inventory: Path, pattern: str, module: str, args: str = "",
               timeout: int = 120) -> RunResult:
    """Run one module ad hoc on the hosts matching `pattern`."""
    import ansible_runner

    with tempfile.TemporaryDirectory(prefix="ctd-runner-") as pdd:
        runner = ansible_runner.run(
            private_data_dir=pdd, inventory=str(inventory.resolve()), host_pattern=pattern,
            module=module, module_args=args, quiet=True, envvars=_env(pdd), timeout=timeout,
            suppress_env_files=True,
        )
        return RunResult(status=runner.status, rc=runner.rc, hosts=_collect(runner))


def run_playbook(inventory: Path, playbook: Path, extravars: dict[str, Any] | None = None,
                 limit: str | None = None, timeout: int = 300) -> RunResult:
    """Run a playbook from playbooks/ (its library/ alongside) against the inventory."""
    import ansible_runner

    if not playbook.exists():
        raise EnvironmentProblem(f"playbook {playbook} is missing", "reinstall ctdrill")
    with tempfile.TemporaryDirectory(prefix="ctd-runner-") as pdd:
        env = _env(pdd) | {"ANSIBLE_LIBRARY": str(playbook.parent / "library")}
        runner = ansible_runner.run(
            private_data_dir=pdd, inventory=str(inventory.resolve()),
            playbook=str(playbook.resolve()), extravars=extravars or {}, limit=limit,
            quiet=True, envvars=env, timeout=timeout, suppress_env_files=True,
        )
        return RunResult(status=runner.status, rc=runner.rc, hosts=_collect(runner))
