"""One run per host: the host mutex, the drill lock and the fence every change passes.

The mutex serialises host operations (apply, revert, a firing dead-man); the lock says
which run owns the host between its prepare and its verified revert; `fence` refuses a
change from any run but the owner, and from the owner once its dead-man has fired.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:  # mypy sees these files as top-level modules (see ctdrill_env)
    from ctdrill_env import Fenced, HostEnv, Json
    from ctdrill_proc import as_pid, pid_alive
    from ctdrill_state import deadman_dir, lock_path, mutex_path, read_result
else:  # the spelling Ansible's module_utils finder follows and ships
    from ansible.module_utils.ctdrill_env import Fenced, HostEnv, Json
    from ansible.module_utils.ctdrill_proc import as_pid, pid_alive
    from ansible.module_utils.ctdrill_state import (
        deadman_dir,
        lock_path,
        mutex_path,
        read_result,
    )


@contextlib.contextmanager
def host_mutex(env: HostEnv | None = None) -> Iterator[None]:
    """One host operation at a time: apply, revert and a firing dead-man never interleave
    (a dead-man and a late revert racing on `nft delete table`, a late apply slipping in
    between a dead-man's revert and its verification)."""
    path = mutex_path(env)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def lock_holder(env: HostEnv | None = None) -> Json | None:
    """Who holds this host's drill lock, or None. An unreadable lock still holds."""
    try:
        with open(lock_path(env)) as f:
            holder = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"run_id": "unknown"}
    return holder if isinstance(holder, dict) else {"run_id": "unknown"}


def lock_acquire(owner: Json, env: HostEnv | None = None) -> tuple[bool, Json]:
    """Take this target's drill lock. Returns (True, owner) or (False, holder).

    A holder is stale when its orchestrator ran on this host and its pid is gone; one
    whose pid is unknown is never called stale.
    """
    path = lock_path(env)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        try:
            with open(path) as f:
                holder = json.load(f)
        except (OSError, ValueError):
            holder = {"run_id": "unknown"}
        if holder.get("run_id") == owner.get("run_id"):
            return True, holder
        same_host = holder.get("orchestrator_host") == socket.gethostname()
        pid = as_pid(holder.get("orchestrator_pid"))
        holder["stale"] = bool(same_host and pid is not None and not pid_alive(pid))
        return False, holder
    with os.fdopen(fd, "w") as f:
        json.dump(owner, f)
    return True, owner


def lock_release(run_id: str, env: HostEnv | None = None) -> bool:
    """Remove the lock only if this run holds it."""
    path = lock_path(env)
    try:
        with open(path) as f:
            holder = json.load(f)
    except (OSError, ValueError):
        return False
    if holder.get("run_id") != run_id:
        return False
    os.unlink(path)
    return True


def fence(run_id: str, env: HostEnv | None = None) -> None:
    """Raise Fenced unless `run_id` holds this host's lock and its dead-man has not fired:
    a stale apply, an orphaned playbook or another run's journal then changes nothing."""
    holder = lock_holder(env)
    if holder is None or holder.get("run_id") != run_id:
        who = f"drill run {holder.get('run_id')}" if holder else "no run"
        raise Fenced(f"run {run_id} does not own this host ({who} holds its lock)",
                     holder)
    if read_result(run_id, env) is not None or os.path.exists(
            os.path.join(deadman_dir(run_id, env), "result.json")):
        raise Fenced(f"the dead-man of run {run_id} already fired here", holder)
