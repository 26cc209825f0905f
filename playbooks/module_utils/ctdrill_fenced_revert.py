"""The revert the orchestrator (or `ctdrill revert JOURNAL`) asks a host for.

One sequence on the host keeps the order: revert, verify against the snapshot, and only
when verified disarm the dead-man and release the lock, all under the host mutex and
only while the asking run owns the host.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # mypy sees these files as top-level modules (see ctdrill_env)
    from ctdrill_deadman import deadman_disarm
    from ctdrill_env import Fenced, HostEnv, Json, resolve
    from ctdrill_lock import host_mutex, lock_holder, lock_release
    from ctdrill_revert_ops import diffs_after_revert, revert
    from ctdrill_state import read_result, result_path
else:  # the spelling Ansible's module_utils finder follows and ships
    from ansible.module_utils.ctdrill_deadman import deadman_disarm
    from ansible.module_utils.ctdrill_env import Fenced, HostEnv, Json, resolve
    from ansible.module_utils.ctdrill_lock import host_mutex, lock_holder, lock_release
    from ansible.module_utils.ctdrill_revert_ops import diffs_after_revert, revert
    from ansible.module_utils.ctdrill_state import read_result, result_path


def revert_verified(run_id: str, plan: Json, expected: Json,
                    env: HostEnv | None = None) -> tuple[bool, Json]:
    """Revert, verify against the snapshot, and only when verified disarm and unlock.

    A host that is not provably back keeps its dead-man switch armed and its lock.
    Returns (verified, the module's result).
    """
    result = revert(plan, env)
    diffs = diffs_after_revert(plan, expected, env)
    out = dict(result, diffs=diffs, changed=bool(result["restored"] or result["deleted"]))
    if result["errors"] or diffs:
        return False, out
    out.update(verified=True, deadman=deadman_disarm(run_id, env),
               unlocked=lock_release(run_id, env))
    return True, out


def revert_fenced(run_id: str, plan: Json, expected: Json,
                  env: HostEnv | None = None) -> tuple[bool, Json]:
    """The revert a journal asks for, done only while `run_id` owns the host.

    Another run's lock: refuse (Fenced), that run's changes are not ours to undo. No
    lock at all: nothing of this run is left here (the lock is released only after a
    verified revert, by the orchestrator or by the dead-man), so report what the dead-man
    recorded, tidy its directory and count the host as back. Our lock: revert, verify,
    then disarm and unlock.
    """
    env = resolve(env)
    with host_mutex(env):
        holder = lock_holder(env)
        if holder is not None and holder.get("run_id") != run_id:
            raise Fenced(f"this host is held by drill run {holder.get('run_id')}, not by "
                         f"{run_id}: nothing was changed", holder)
        if holder is None:
            recorded = read_result(run_id, env)
            with contextlib.suppress(OSError):  # reported now: the journal keeps it
                os.unlink(result_path(run_id, env))
            return True, {"restored": {}, "deleted": [], "errors": [], "diffs": [],
                          "changed": False, "verified": True, "not_held": True,
                          "deadman": dict(deadman_disarm(run_id, env), fired=recorded)}
        return revert_verified(run_id, plan, expected, env)
