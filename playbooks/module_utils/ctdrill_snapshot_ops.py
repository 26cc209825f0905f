"""Snapshots of what a drill may touch on this host, and the differences that matter."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # mypy sees these files as top-level modules (see ctdrill_env)
    from ctdrill_env import HostEnv, Json, netns_inode, resolve
    from ctdrill_nft_ops import nft_ruleset, nft_tables
    from ctdrill_sysctl_ops import is_writable, netfilter_sysctls, read_sysctl
else:  # the spelling Ansible's module_utils finder follows and ships
    from ansible.module_utils.ctdrill_env import HostEnv, Json, netns_inode, resolve
    from ansible.module_utils.ctdrill_nft_ops import nft_ruleset, nft_tables
    from ansible.module_utils.ctdrill_sysctl_ops import (
        is_writable,
        netfilter_sysctls,
        read_sysctl,
    )

VOLATILE_KEYS = ("net.netfilter.nf_conntrack_count",)


def snapshot(keys: Sequence[str] = (), env: HostEnv | None = None) -> Json:
    """Everything a drill may touch here: all net.netfilter.*, the given keys, the ruleset."""
    env = resolve(env)
    values, writable = netfilter_sysctls(env)
    for key in keys:
        if key not in values:
            value = read_sysctl(key, env)
            if value is not None:
                values[key] = value
                if is_writable(key, env):
                    writable.append(key)
    return {
        "netns_inode": netns_inode(),
        "kernel_owner": is_writable("net.netfilter.nf_conntrack_max", env),
        "hostname": socket.gethostname(),
        "sysctl": values,
        "writable": sorted(set(writable)),
        "ruleset": nft_ruleset(env),
        "tables": nft_tables(env),
    }


def compare(expected: Json, actual: Json, touched: Sequence[str] = ()) -> list[str]:
    """Differences between two snapshots that matter: writable or touched sysctls, ruleset."""
    diffs = []
    keys = (set(expected.get("writable", [])) | set(touched)) - set(VOLATILE_KEYS)
    for key in sorted(keys):
        want = expected["sysctl"].get(key)
        got = actual["sysctl"].get(key)
        if want != got:
            diffs.append(f"sysctl {key}: expected {want}, found {got}")
    if expected.get("ruleset") != actual.get("ruleset"):
        diffs.append("nftables ruleset differs from the snapshot")
    return diffs


def verify_keys(plan: Json, expected: Json | None) -> list[str]:
    """Every key the snapshot holds (a drill may have read keys outside net.netfilter on
    this host because another host changes them) plus the plan's own."""
    return sorted(set(plan.get("sysctl", {})) | set((expected or {}).get("sysctl", {})))
