"""Processes on this host: pid checks, and stopping what a run left running here."""

from __future__ import annotations

import contextlib
import os
import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # mypy sees these files as top-level modules (see ctdrill_env)
    from ctdrill_env import RUN_ID_VARIABLE, HostEnv, netns_inode, resolve
else:  # the spelling Ansible's module_utils finder follows and ships
    from ansible.module_utils.ctdrill_env import RUN_ID_VARIABLE, HostEnv, netns_inode, resolve


def as_pid(value: object) -> int | None:
    """A single process id, or None: 0 and negatives name process groups, never one."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    try:
        pid = int(value)
    except ValueError:
        return None
    return pid if pid > 0 else None


def pid_alive(pid: int) -> bool:
    """Whether the process still runs; a zombie (exited, not yet reaped) does not."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def ancestors(proc: str = "/proc") -> set[int]:
    """This process and every process above it: the play that runs this very module
    carries the run's id too, and must not be stopped by it."""
    chain: set[int] = set()
    pid = os.getpid()
    while pid > 1 and pid not in chain:
        chain.add(pid)
        try:
            with open(os.path.join(proc, str(pid), "stat")) as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return chain


def run_processes(run_id: str, env: HostEnv | None = None) -> list[int]:
    """Processes of `run_id` in this network namespace (they carry CTDRILL_RUN_ID),
    other than this process and its ancestors."""
    env = resolve(env)
    mark = f"{RUN_ID_VARIABLE}={run_id}".encode()
    here = netns_inode()
    mine = ancestors(env.proc)
    found = []
    for name in os.listdir(env.proc):
        pid = as_pid(name) if name.isdigit() else None
        if pid is None or pid in mine:
            continue
        try:
            with open(os.path.join(env.proc, name, "environ"), "rb") as f:
                environ = f.read().split(b"\0")
            if mark in environ and os.stat(
                    os.path.join(env.proc, name, "ns", "net")).st_ino == here:
                found.append(pid)
        except OSError:
            continue
    return found


def stop_run_processes(run_id: str, env: HostEnv | None = None) -> list[int]:
    """SIGKILL every process of the run still here (an orphaned apply, an agent) and
    wait until they are gone, so nothing of the run acts after its revert."""
    env = resolve(env)
    pids = run_processes(run_id, env)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    for _ in range(250):
        if not any(pid_alive(pid) for pid in pids):
            break
        env.sleep(0.02)
    return pids
