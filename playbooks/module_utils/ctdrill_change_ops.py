"""A drill's two host steps that change this host, each one host task (one Ansible
module run) instead of one task per concern.

Every task of a play costs a Python start on the target and a worker turn on the
controller; on a pool of gateways those host-tasks are most of a drill's wall time
(docs/BENCH-fleet.md). So `prepare` takes the lock, arms the lock-only dead-man and
snapshots in one run, and `apply` arms, writes the sysctls, loads the table and reads
the host back in one run, keeping the same order and the same fence as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # mypy sees these files as top-level modules (see ctdrill_env)
    from ctdrill_deadman import LOCK_ONLY_PLAN, deadman_arm
    from ctdrill_env import HostEnv, HostError, Json, resolve
    from ctdrill_lock import fence, host_mutex, lock_acquire
    from ctdrill_nft_ops import check_own_table, nft_apply_table, nft_tables
    from ctdrill_snapshot_ops import snapshot
    from ctdrill_sysctl_ops import write_sysctl
else:  # the spelling Ansible's module_utils finder follows and ships
    from ansible.module_utils.ctdrill_deadman import LOCK_ONLY_PLAN, deadman_arm
    from ansible.module_utils.ctdrill_env import HostEnv, HostError, Json, resolve
    from ansible.module_utils.ctdrill_lock import fence, host_mutex, lock_acquire
    from ansible.module_utils.ctdrill_nft_ops import (
        check_own_table,
        nft_apply_table,
        nft_tables,
    )
    from ansible.module_utils.ctdrill_snapshot_ops import snapshot
    from ansible.module_utils.ctdrill_sysctl_ops import write_sysctl

ARM_TASK = "arm the dead-man switch"
SYSCTL_TASK = "set sysctl"
NFT_TASK = "load the bypass table"
"""The journal's `task` of each change (one outcome record per change, as when each
was a task of its own)."""


class Locked(HostError):
    """Another run holds this host's drill lock: nothing was changed."""

    def __init__(self, holder: Json) -> None:
        super().__init__(f"target is locked by drill run {holder.get('run_id')}")
        self.holder = holder


def prepare_host(part: Json, env: HostEnv | None = None) -> Json:
    """Take the drill lock, arm the lock-only dead-man (a lock never outlives its run:
    the switch frees it at the TTL if the run dies before applying), then snapshot."""
    env = resolve(env)
    run_id = part["run_id"]
    ok, holder = lock_acquire(dict(part.get("owner", {}), run_id=run_id), env)
    if not ok:
        raise Locked(holder)
    switch = deadman_arm(run_id, LOCK_ONLY_PLAN, float(part["ttl_s"]), env)
    keys = [str(k) for k in part.get("keys", [])]
    return {"holder": holder, "deadman": switch, "snapshot": snapshot(keys, env)}


def apply_host(part: Json, applied: list[Json], env: HostEnv | None = None) -> Json:
    """Arm (the first play only), write the sysctls, load the table: one mutex, one
    fence, nothing changed unless this run holds the host. Each change is appended to
    `applied` as it lands, so a failure still tells what was done. With `check_keys`,
    the host's snapshot after the change comes back too (the applied check)."""
    env = resolve(env)
    run_id, nft = part["run_id"], part.get("nft")
    if nft:
        check_own_table(nft["table"])  # before anything changes
    out: Json = {}
    with host_mutex(env):
        fence(run_id, env)
        if part.get("arm", True):
            out["deadman"] = deadman_arm(run_id, part["revert"], float(part["ttl_s"]), env,
                                         expected=part.get("expected"))
            applied.append({"task": ARM_TASK, "ok": True, "changed": True})
        _write_sysctls(part.get("sysctl", {}), applied, env)
        if nft:
            existed = [nft["family"], nft["table"]] in nft_tables(env)
            out["listing"] = nft_apply_table(nft["family"], nft["table"], nft["body"], env)
            applied.append({"task": NFT_TASK, "ok": True, "changed": True,
                            "existed": existed})
    if "check_keys" in part:
        out["snapshot"] = snapshot([str(k) for k in part["check_keys"]], env)
    return out


def _write_sysctls(values: Json, applied: list[Json], env: HostEnv) -> None:
    """Each sysctl written and read back, in the plan's order; the first failure stops."""
    for name, value in values.items():
        try:
            before, after = write_sysctl(name, value, env)
        except HostError as exc:
            applied.append({"task": SYSCTL_TASK, "name": name, "ok": False,
                            "changed": False, "message": str(exc)})
            raise
        applied.append({"task": SYSCTL_TASK, "name": name, "ok": True, "before": before,
                        "after": after, "changed": before != after})
