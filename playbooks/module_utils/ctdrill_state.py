"""Where ctdrill's host-side state lives under the run directory (/run/ctdrill by default).

    mutex/netns-INODE               the host mutex (flock)
    locks/netns-INODE.json          the drill lock: its holder
    deadman/RUN-INODE/              one armed dead-man switch (script, plan, deadline, ...)
    results/RUN-netns-INODE.json    what a fired, verified dead-man recorded

Everything is keyed by the network namespace's inode: one host per namespace.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # mypy sees these files as top-level modules (see ctdrill_env)
    from ctdrill_env import HostEnv, Json, netns_inode, resolve
else:  # the spelling Ansible's module_utils finder follows and ships
    from ansible.module_utils.ctdrill_env import HostEnv, Json, netns_inode, resolve


def mutex_path(env: HostEnv | None = None) -> str:
    return os.path.join(resolve(env).run_dir, "mutex", f"netns-{netns_inode()}")


def lock_path(env: HostEnv | None = None) -> str:
    return os.path.join(resolve(env).run_dir, "locks", f"netns-{netns_inode()}.json")


def deadman_dir(run_id: str, env: HostEnv | None = None) -> str:
    return os.path.join(resolve(env).run_dir, "deadman", f"{run_id}-{netns_inode()}")


def result_path(run_id: str, env: HostEnv | None = None) -> str:
    return os.path.join(resolve(env).run_dir, "results",
                        f"{run_id}-netns-{netns_inode()}.json")


def read_result(run_id: str, env: HostEnv | None = None) -> Json | None:
    """What the run's dead-man recorded here after firing, if it did."""
    try:
        with open(result_path(run_id, env)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json_atomic(path: str, data: Json) -> None:
    """Write, fsync, rename: a reader sees the old file or the whole new one."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)
