"""Helpers to run `ctdrill` as a real subprocess and to read host state from outside."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from ctdrill.lab.manager import LabUp
from tests.waiting import wait_until

NF = "/proc/sys/net/netfilter"


def host_state(lab: LabUp) -> dict[str, Any]:
    """Every netfilter sysctl (minus the live count) and the stateless ruleset, per host,
    read directly from the kernel, independent of ctdrill's own verification."""
    state: dict[str, Any] = {}
    for role, netns in [(h.name, h.netns) for h in lab.plan.hosts] + [("kernel", None)]:
        prefix = ["ip", "netns", "exec", netns] if netns else []
        ruleset = subprocess.run([*prefix, "nft", "-s", "list", "ruleset"], capture_output=True,
                                 text=True, check=True).stdout
        values = subprocess.run(
            [*prefix, "sh", "-c", f"grep -r . {NF} | grep -v nf_conntrack_count"],
            capture_output=True, text=True, check=True).stdout
        state[role] = {"ruleset": ruleset, "sysctl": values}
    return state


def ctdrill(*args: str, runs_dir: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CTDRILL_RUNS_DIR=str(runs_dir))
    return subprocess.run([sys.executable, "-m", "ctdrill", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def spawn(*args: str, runs_dir: Path) -> subprocess.Popen[str]:
    """`ctdrill ARGS` in its own process group, as a shell starts a job: `ctrl_c` then
    reaches it and every child that stayed in its group, as a real Ctrl-C does."""
    env = dict(os.environ, CTDRILL_RUNS_DIR=str(runs_dir))
    return subprocess.Popen([sys.executable, "-m", "ctdrill", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)


def reap_group(proc: subprocess.Popen[str]) -> None:
    """After a test: nothing of the spawned run's process group may outlive it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def journal_of(runs_dir: Path) -> Path | None:
    found = sorted(runs_dir.glob("*/journal.jsonl"))
    return found[-1] if found else None


def records(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):  # a line being written right now
            out.append(json.loads(line))
    return out


def wait_for_record(runs_dir: Path, kind: str, timeout: float = 60) -> Path:
    def journal_with_record() -> Path | None:
        path = journal_of(runs_dir)
        if path is not None and any(r["type"] == kind for r in records(path)):
            return path
        return None

    return wait_until(journal_with_record, f"a '{kind}' journal record", timeout)


def write_spec(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
