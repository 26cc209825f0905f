"""Helpers to run `ctdrill` as a real subprocess and to read host state from outside."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ctdrill.lab.manager import LabUp

NF = "/proc/sys/net/netfilter"


def host_state(lab: LabUp) -> dict[str, Any]:
    """Every netfilter sysctl (minus the live count) and the stateless ruleset, per host,
    read directly from the kernel, independent of ctdrill's own verification."""
    state: dict[str, Any] = {}
    for role, netns in [(h.role, h.netns) for h in lab.plan.hosts] + [("kernel", None)]:
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
    env = dict(os.environ, CTDRILL_RUNS_DIR=str(runs_dir))
    return subprocess.Popen([sys.executable, "-m", "ctdrill", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


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
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = journal_of(runs_dir)
        if path is not None and any(r["type"] == kind for r in records(path)):
            return path
        time.sleep(0.02)
    raise AssertionError(f"journal never reached a '{kind}' record")


def write_spec(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
