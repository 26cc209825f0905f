"""Run local commands with errors that say which command failed and why."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from ctdrill.connect.base import CommandFailed
from ctdrill.connect.netns import netns_argv
from ctdrill.errors import EnvironmentProblem
from ctdrill.system.pids import pid_alive

__all__ = ["CommandFailed", "in_netns", "pid_alive", "run"]


def run(argv: Sequence[str], *, check: bool = True, input_text: str | None = None,
        timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run argv, capture output, and raise CommandFailed with stderr when check is set."""
    if shutil.which(argv[0]) is None and not argv[0].startswith("/"):
        raise EnvironmentProblem(
            f"required command '{argv[0]}' is not installed",
            "run scripts/setup.sh as root to install the system packages",
        )
    proc = subprocess.run(list(argv), capture_output=True, text=True, input=input_text,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise CommandFailed(f"'{' '.join(argv)}' failed ({proc.returncode})",
                            detail[-1] if detail else "no output")
    return proc


def in_netns(netns: str | None, argv: Sequence[str]) -> list[str]:
    """Prefix argv so it runs inside a named network namespace (None: the initial one).

    For the lab builder only (lab/manager.py, lab/sshd.py): everything else reaches a
    host, namespaces included, through ctdrill.connect (connect/netns.py)."""
    return netns_argv(netns, argv) if netns else list(argv)


