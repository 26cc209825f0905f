"""Sysctls through /proc/sys, every write read back (`sysctl -w` can exit 0 on failure)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # mypy sees these files as top-level modules (see ctdrill_env)
    from ctdrill_env import HostEnv, HostError, resolve
else:  # the spelling Ansible's module_utils finder follows and ships
    from ansible.module_utils.ctdrill_env import HostEnv, HostError, resolve


def key_path(key: str, env: HostEnv | None = None) -> str:
    """The key's file under the /proc/sys root."""
    # concatenation, not os.path.join: a key can never name a path outside the root
    return resolve(env).proc_sys + key.replace(".", "/")


def normalise(value: object) -> str:
    """Multi-field sysctls print tab-separated; compare on whitespace-split fields."""
    return " ".join(str(value).split())


def read_sysctl(key: str, env: HostEnv | None = None) -> str | None:
    """The key's normalised value, or None when it does not exist (or cannot be read)."""
    try:
        with open(key_path(key, env)) as f:
            return normalise(f.read())
    except OSError:
        return None


def is_writable(key: str, env: HostEnv | None = None) -> bool:
    """Whether this namespace may write the key (kernel-wide keys: the initial one only)."""
    try:
        return bool(os.stat(key_path(key, env)).st_mode & 0o200)
    except OSError:
        return False


def write_sysctl(key: str, value: object, env: HostEnv | None = None) -> tuple[str, str]:
    """Write and read back; return (before, after). Raises HostError on any mismatch."""
    before = read_sysctl(key, env)
    if before is None:
        raise HostError(f"sysctl {key} does not exist here")
    want = normalise(value)
    if before == want:
        return before, before
    if not is_writable(key, env):
        raise HostError(f"sysctl {key} is read-only in this network namespace (kernel-wide "
                        "keys can only be set in the initial namespace)")
    try:
        with open(key_path(key, env), "w") as f:
            f.write(want + "\n")
    except OSError as exc:
        raise HostError(f"writing {key}={want} failed: {exc.strerror}") from exc
    after = read_sysctl(key, env)
    if after != want:
        raise HostError(f"{key} reads {after} after writing {want}")
    return before, after


def netfilter_sysctls(env: HostEnv | None = None) -> tuple[dict[str, str], list[str]]:
    """Every readable net.netfilter.* value and whether it is writable here."""
    env = resolve(env)
    values: dict[str, str] = {}
    writable: list[str] = []
    for root, _dirs, files in os.walk(env.proc_sys + "net/netfilter"):
        for name in files:
            key = os.path.join(root, name)[len(env.proc_sys):].replace("/", ".")
            value = read_sysctl(key, env)
            if value is None:
                continue
            values[key] = value
            if is_writable(key, env):
                writable.append(key)
    return values, sorted(writable)
