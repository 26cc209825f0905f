"""systemd timer + service for a game-day suite (pure rendering)."""

from __future__ import annotations

import shlex
from pathlib import Path


def unit_name(suite: str) -> str:
    return f"ctdrill-gameday-{suite}"


def render_units(suite_name: str, suite_path: Path, ctdrill_bin: Path, workdir: Path,
                 on_calendar: str, inventory: Path | None) -> dict[str, str]:
    """A oneshot service running the suite and a timer firing it; overlap is prevented by
    the game-day lock the run takes (a second start while one runs exits 5)."""
    args = [str(ctdrill_bin), "gameday", "run", str(suite_path)]
    if inventory is not None:
        args += ["-i", str(inventory)]
    name = unit_name(suite_name)
    service = f"""[Unit]
Description=ctdrill game day {suite_name}
After=network-online.target

[Service]
Type=oneshot
WorkingDirectory={workdir}
ExecStart={' '.join(shlex.quote(a) for a in args)}
# exit 5 (another run holds the lock, or a blackout window) is not a failure of the timer
SuccessExitStatus=5
"""
    timer = f"""[Unit]
Description=Schedule of ctdrill game day {suite_name}

[Timer]
OnCalendar={on_calendar}
Persistent=false
Unit={name}.service

[Install]
WantedBy=timers.target
"""
    return {f"{name}.service": service, f"{name}.timer": timer}
