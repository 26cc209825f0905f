"""Putting a host back from a revert plan, and checking it against its snapshot.

No lock, no fencing here: the callers (the fenced revert, the firing dead-man) hold the
host mutex and decide who may revert.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # mypy sees these files as top-level modules (see ctdrill_env)
    from ctdrill_env import HostEnv, HostError, Json
    from ctdrill_nft_ops import nft_delete_table
    from ctdrill_snapshot_ops import compare, snapshot, verify_keys
    from ctdrill_sysctl_ops import write_sysctl
else:  # the spelling Ansible's module_utils finder follows and ships
    from ansible.module_utils.ctdrill_env import HostEnv, HostError, Json
    from ansible.module_utils.ctdrill_nft_ops import nft_delete_table
    from ansible.module_utils.ctdrill_snapshot_ops import compare, snapshot, verify_keys
    from ansible.module_utils.ctdrill_sysctl_ops import write_sysctl


def revert_order(keys: Sequence[str]) -> list[str]:
    """Buckets before max: shrinking back never leaves max above a just-shrunk table."""
    return sorted(keys, key=lambda k: "buckets" not in k)


def revert(plan: Json, env: HostEnv | None = None) -> Json:
    """Put back every sysctl the plan names and delete our tables. Idempotent."""
    restored: Json = {}
    deleted: list[str] = []
    errors: list[str] = []
    for family, name in plan.get("nft_tables", []):
        try:
            if nft_delete_table(family, name, env):
                deleted.append(f"{family} {name}")
        except HostError as exc:
            errors.append(str(exc))
    for key in revert_order(list(plan.get("sysctl", {}))):
        try:
            before, after = write_sysctl(key, plan["sysctl"][key], env)
            if before != after:
                restored[key] = [before, after]
        except HostError as exc:
            errors.append(str(exc))
    return {"restored": restored, "deleted": deleted, "errors": errors}


def diffs_after_revert(plan: Json, expected: Json, env: HostEnv | None = None) -> list[str]:
    """What still differs from the snapshot: every key it holds, the plan's, the ruleset."""
    touched = list(plan.get("sysctl", {}))
    return compare(expected, snapshot(verify_keys(plan, expected), env), touched=touched)
