"""Checks that fail early, with one line each, before ctdrill touches anything."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ctdrill.errors import EnvironmentProblem

LAB_BINARIES = ("ip", "nft", "conntrack", "sshd", "ssh-keygen")
_SBIN = ("/usr/sbin", "/sbin")


def find_binary(name: str) -> str | None:
    """Locate a binary on PATH or in sbin dirs (root's PATH may lack them under sudo)."""
    found = shutil.which(name)
    if found:
        return found
    for d in _SBIN:
        candidate = Path(d) / name
        if candidate.exists():
            return str(candidate)
    return None


def require_root() -> None:
    if os.geteuid() != 0:
        raise EnvironmentProblem("ctdrill needs root for namespaces and netfilter",
                                 "run it as root (e.g. with sudo)")


def require_binaries(names: tuple[str, ...] = LAB_BINARIES) -> dict[str, str]:
    paths: dict[str, str] = {}
    missing = []
    for name in names:
        path = find_binary(name)
        if path is None:
            missing.append(name)
        else:
            paths[name] = path
    if missing:
        raise EnvironmentProblem(f"missing system command(s): {', '.join(missing)}",
                                 "run scripts/setup.sh as root to install them")
    return paths


def require_conntrack(proc_root: Path = Path("/proc")) -> None:
    if not (proc_root / "sys/net/netfilter/nf_conntrack_max").exists():
        raise EnvironmentProblem("this kernel has no nf_conntrack",
                                 "load it with 'modprobe nf_conntrack' or use a kernel with it")


def require_lab_prerequisites() -> dict[str, str]:
    """Everything `lab up` needs, checked before anything is created."""
    require_root()
    paths = require_binaries()
    require_conntrack()
    return paths
