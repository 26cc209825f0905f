"""A small interface over ansible-runner: run a play or a module, get per-host results.

Each run gets a fresh private_data_dir (runner caches `env/envvars` from the first run
and silently prefers it later), the venv's bin on PATH (ansible-runner execs
`ansible-playbook` by name), ctdrill's own modules on the library path, its own SSH
control-socket directory, and quiet output; results come from runner's events.

Nothing a play needs travels as an Ansible variable that Ansible would template: a play
gets exactly two extra vars, the host pattern (names checked against a safe grammar)
and one base64 JSON payload the modules decode. `ansible-playbook` is started through
a small wrapper that ties it to this process (parent-death signal): ansible-runner puts
it in a session of its own, and an orchestrator killed mid-apply must not leave a play
running that could change a host after its dead-man reverted it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctdrill.errors import EnvironmentProblem, InvalidInput
from ctdrill.system.pids import pid_alive

PLAYBOOKS = Path(__file__).resolve().parent.parent.parent / "playbooks"
HOST_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,252}")
"""Inventory host names a play may be pointed at: no pattern syntax, no template, no
shell. A name outside it is refused before anything is contacted."""

_PDEATHSIG_WRAPPER = """#!{python}
# ansible-playbook, tied to the ctdrill process that started it: if that process dies
# (even by SIGKILL) the kernel sends this play SIGKILL (prctl PR_SET_PDEATHSIG).
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
if os.getppid() != int(os.environ["CTDRILL_PARENT_PID"]):
    sys.exit("ctdrill: the orchestrator is gone; not starting the play")
os.execv({real!r}, [{real!r}] + sys.argv[1:])
"""


CHANGING_PLAYS = frozenset({"apply"})
"""Plays whose processes carry CTDRILL_RUN_ID: the ones a dead-man must stop if they are
still running when it fires. A revert play must not carry it: its workers for other
hosts would look like the run's leftovers to each other."""


def host_pattern(hosts: list[str]) -> str:
    """The play's `hosts:` value: explicit names joined by ':', each one checked."""
    if not hosts:
        raise InvalidInput("no hosts to run a play on", "check the spec's host patterns")
    for host in hosts:
        if not HOST_NAME.fullmatch(host):
            raise InvalidInput(f"inventory host name {host!r} is not usable by ctdrill",
                               "name hosts with letters, digits, '_', '.', '-' only")
    return ":".join(sorted(set(hosts)))


MIN_FORKS = 5
"""Ansible's own default: a small pool never gets fewer workers than it would anyway."""
MAX_FORKS = 64
"""The bound: each fork is an ansible-playbook worker process (tens of MB, an SSH
connection, an orchestrator core's share); a larger pool queues, at most MAX_FORKS hosts
in flight at once (docs/FLEET.md)."""
DEFAULT_FORKS = 16
"""For a module run on a pattern, whose host count is not known here."""


def forks_for(n_hosts: int) -> int:
    """Ansible forks for a play on `n_hosts` hosts: one worker per host, so every host of
    a pool (or a wave) is read or changed at once, within [MIN_FORKS, MAX_FORKS]."""
    return min(max(MIN_FORKS, n_hosts), MAX_FORKS)


def encode_payload(payload: dict[str, Any]) -> str:
    """The one extra var a play's modules read: base64 of JSON, inert to templating."""
    return base64.b64encode(json.dumps(payload, sort_keys=True).encode()).decode("ascii")


def per_host_payloads(payload: dict[str, Any], hosts: list[str],
                      run_id: str) -> dict[str, str]:
    """One base64 payload per host, holding the common part and that host's part only:
    each host receives its own data (linear in the pool, not quadratic), and a play's
    modules read `ctdrill_payload[inventory_hostname]`."""
    unknown = set(payload) - {"common", "hosts"}
    if unknown:  # a key here would silently never reach a host
        raise ValueError(f"play payload keys {sorted(unknown)} are not common/hosts")
    parts = payload.get("hosts", {})
    out = {}
    for host in sorted(set(hosts)):
        mine = {"common": payload.get("common", {}), "run_id": run_id}
        if host in parts:
            mine["hosts"] = {host: parts[host]}
        out[host] = encode_payload(mine)
    return out


def write_extravars(private_dir: str, extravars: dict[str, Any]) -> str:
    """The play's extra vars as a file (`-e @FILE`), never one command-line argument: a
    pool's payloads outgrow the kernel's limit on one argument (128 KiB) near 32 hosts.
    The file sits in the run's private dir (mode 0600) and goes with it."""
    path = Path(private_dir) / "ctdrill-extravars.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(extravars, f)
    return str(path)


def _tied_bin(private_dir: str) -> str:
    """A bin directory whose `ansible-playbook` dies with this process."""
    real = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) \
        or shutil.which("ansible-playbook")
    if real is None:
        raise EnvironmentProblem("ansible-playbook is not installed",
                                 "run scripts/setup.sh (it installs ansible-core)")
    bindir = Path(private_dir) / "bin"
    bindir.mkdir()
    wrapper = bindir / "ansible-playbook"
    wrapper.write_text(_PDEATHSIG_WRAPPER.format(python=sys.executable, real=real))
    wrapper.chmod(0o700)
    return str(bindir)


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


def _env(private_dir: str, run_id: str = "", forks: int = DEFAULT_FORKS) -> dict[str, str]:
    """Environment for one play. SSH control sockets live in the play's own directory,
    so a later play never rides an earlier connection past host key verification, and
    masters linger only briefly after it. CTDRILL_RUN_ID marks every process of the
    play, so a dead-man can find and stop what its run left running."""
    bindir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    path = f"{bindir}:{path}" if bindir not in path.split(":") else path
    return {
        "PATH": f"{_tied_bin(private_dir)}:{path}",
        "CTDRILL_PARENT_PID": str(os.getpid()),
        "CTDRILL_RUN_ID": run_id,
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
        "ANSIBLE_FORKS": str(forks),
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


def private_dir() -> tempfile.TemporaryDirectory[str]:
    """ansible-runner's private data dir, named after this process: a SIGKILLed
    orchestrator cannot remove its own, so the next one sweeps those whose pid is gone."""
    sweep_stale_dirs(Path(tempfile.gettempdir()))
    return tempfile.TemporaryDirectory(prefix=f"ctd-runner-{os.getpid()}-")


def sweep_stale_dirs(tmp: Path) -> list[Path]:
    """Remove ctd-runner-PID-* dirs whose PID no longer runs; returns what was removed."""
    removed = []
    for entry in tmp.glob("ctd-runner-*"):
        m = re.match(r"ctd-runner-(\d+)-", entry.name)
        if m is None or not entry.is_dir() or pid_alive(int(m.group(1))):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def run_module(inventory: Path, pattern: str, module: str, args: str = "",
               timeout: int = 120) -> RunResult:
    """Run one module ad hoc on the hosts matching `pattern`."""
    import ansible_runner

    with private_dir() as pdd:
        runner = ansible_runner.run(
            private_data_dir=pdd, inventory=str(inventory.resolve()), host_pattern=pattern,
            module=module, module_args=args, quiet=True, envvars=_env(pdd), timeout=timeout,
            suppress_env_files=True, cancel_callback=_never,
        )
        return RunResult(status=runner.status, rc=runner.rc, hosts=_collect(runner.events))


def run_playbook(inventory: Path, name: str, hosts: list[str], payload: dict[str, Any],
                 run_id: str, timeout: int = 300) -> RunResult:
    """Run playbooks/NAME.yml on `hosts`; its modules read `payload` (plus the run id)."""
    import ansible_runner

    playbook = PLAYBOOKS / f"{name}.yml"
    if not playbook.exists():
        raise EnvironmentProblem(f"playbook {playbook} is missing", "reinstall ctdrill")
    changing = name in CHANGING_PLAYS
    extravars = {"ctdrill_hosts": host_pattern(hosts),
                 "ctdrill_payload": per_host_payloads(payload, hosts, run_id)}
    with private_dir() as pdd:
        runner = ansible_runner.run(
            private_data_dir=pdd, inventory=str(inventory.resolve()),
            playbook=str(playbook), extravars=write_extravars(pdd, extravars), quiet=True,
            envvars=_env(pdd, run_id if changing else "", forks_for(len(set(hosts)))),
            timeout=timeout, suppress_env_files=True,
            cancel_callback=_never,
        )
        return RunResult(status=runner.status, rc=runner.rc, hosts=_collect(runner.events))
