"""Is a process still there? One probe for the whole project (standard library only:
the surge's host-side modules ship it to remote hosts, connect/payload.py)."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (signal 0 probes without sending); a
    process we may not signal exists too."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
