"""ansible-runner's private dirs of a killed orchestrator are swept by the next one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ctdrill.ansible.runner import private_dir, sweep_stale_dirs


def test_dirs_of_dead_processes_go_and_live_ones_stay(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    gone = tmp_path / f"ctd-runner-{dead}-abc"
    mine = tmp_path / f"ctd-runner-{os.getpid()}-def"
    other = tmp_path / "ctd-runner-old-style"
    for d in (gone, mine, other):
        (d / "env").mkdir(parents=True)
    assert sweep_stale_dirs(tmp_path) == [gone]
    assert not gone.exists() and mine.exists() and other.exists()


def test_a_private_dir_names_its_owner() -> None:
    with private_dir() as pdd:
        assert Path(pdd).name.startswith(f"ctd-runner-{os.getpid()}-")
