"""A host's conntrack settings as read by the audit, checked into typed values (pure).

`READER` is the stdlib script `collect` runs on the host (`python3 -c READER`): it
reads every /proc/sys/net/netfilter/nf_conntrack_* value, the nf_conntrack line of
/proc/slabinfo (or, when that is unreadable, SLUB's /sys/kernel/slab/nf_conntrack/
slab_size), the kernel release, MemTotal and whether the process sits in the initial
network namespace (the kernel owner), and prints one JSON object. It only reads.
It also says whether the kernel has nf_conntrack_netlink and nf_tables (loaded or
built in; a kernel without /proc/modules has everything built in): `conntrack -L` and
`nft list ruleset` would load a missing one, and the audit loads nothing.
`host_facts` turns that output, which is host text, into `HostFacts`: integers are
checked, anything else is dropped or reported as unreadable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ctdrill.errors import EnvironmentProblem
from ctdrill.telemetry.agent import parse_slabinfo

READER = r"""
import json, os
NF = "/proc/sys/net/netfilter"
out = {"sysctl": {}, "slab": None, "slab_size": None, "slab_error": None}
def read(path):
    with open(path) as f:
        return f.read().strip()
try:
    names = sorted(n for n in os.listdir(NF) if n.startswith("nf_conntrack_"))
except OSError as exc:
    names, out["sysctl_error"] = [], exc.strerror
for name in names:
    try:
        out["sysctl"][name] = read(os.path.join(NF, name))
    except OSError:
        pass
try:
    with open("/proc/slabinfo") as f:
        for line in f:
            if line.split(" ", 1)[0] == "nf_conntrack":
                out["slab"] = line.strip()
                break
        else:
            out["slab_error"] = "no nf_conntrack cache in /proc/slabinfo"
except OSError as exc:
    out["slab_error"] = "/proc/slabinfo: " + (exc.strerror or "unreadable")
    try:
        out["slab_size"] = read("/sys/kernel/slab/nf_conntrack/slab_size")
    except OSError:
        pass
try:
    out["osrelease"] = read("/proc/sys/kernel/osrelease")
except OSError:
    out["osrelease"] = None
try:
    out["owner"] = os.readlink("/proc/self/ns/net") == os.readlink("/proc/1/ns/net")
except OSError:
    out["owner"] = None
def loaded(name):
    try:
        with open("/proc/modules") as f:
            if any(line.split(" ", 1)[0] == name for line in f):
                return True
    except OSError:
        return True
    try:
        with open("/lib/modules/%s/modules.builtin" % os.uname().release) as f:
            return any(line.strip().endswith("/%s.ko" % name) for line in f)
    except OSError:
        return None
out["modules"] = {m: loaded(m) for m in ("nf_conntrack_netlink", "nf_tables")}
try:
    with open("/proc/meminfo") as f:
        out["memtotal_kb"] = next((l.split()[1] for l in f if l.startswith("MemTotal:")), None)
except OSError:
    out["memtotal_kb"] = None
print(json.dumps(out))
"""
TIMEOUT_PROTOS = frozenset({"generic", "icmp", "icmpv6", "udp", "gre", "tcp", "sctp", "dccp"})
"""Protocols whose nf_conntrack_<proto>_timeout[_<state>] keys are entry timeouts
(nf_conntrack_frag6_timeout is IPv6 reassembly, not an entry's)."""
MAX_TEXT = 200
"""Host text kept for messages is cut to this."""


@dataclass(frozen=True)
class Slab:
    """The nf_conntrack slab cache: bytes per object and objects in use."""

    object_size: int | None
    active_objs: int | None = None
    num_objs: int | None = None
    error: str | None = None
    """Why the slab could not be read (the memory figures are then missing)."""

    def to_json(self) -> dict[str, Any]:
        return {"object_size": self.object_size, "active_objs": self.active_objs,
                "num_objs": self.num_objs, "error": self.error}


@dataclass(frozen=True)
class HostFacts:
    """What the audit read from one host besides the table listing."""

    sysctl: dict[str, int]
    """Keys without the nf_conntrack_ prefix: max, buckets, count, udp_timeout, ..."""
    slab: Slab
    release: str | None = None
    owner: bool | None = None
    """In the initial network namespace: kernel-wide knobs are its to change."""
    memtotal_bytes: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    modules: dict[str, bool | None] = field(default_factory=dict)
    """Kernel module -> present (True), missing so a tool would load it (False), unknown."""

    def missing(self, module: str) -> bool:
        return self.modules.get(module) is False

    def get(self, key: str) -> int | None:
        return self.sysctl.get(key)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:MAX_TEXT]


def _digits(value: Any) -> int | None:
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isascii() and text.isdecimal() and len(text) < 20 else None


def parse_slab(line: str | None, slab_size: Any = None, error: str | None = None) -> Slab:
    """`nf_conntrack ACTIVE NUM OBJSIZE ...` -> Slab, by the telemetry agent's own
    slabinfo parser (one definition of the columns for watch, reports and the audit)."""
    if line:
        row = parse_slabinfo(line)
        if row is not None:
            return Slab(object_size=row["objsize"], active_objs=row["active_objs"],
                        num_objs=row["num_objs"])
        error = f"unreadable slabinfo line: {_text(line)}"
    size = _digits(slab_size)
    return Slab(object_size=size, error=_text(error) if size is None else None)


def host_facts(stdout: str, where: str) -> HostFacts:
    """The READER's output -> HostFacts; output that is not its JSON is one error."""
    try:
        raw = json.loads(stdout)
        if not isinstance(raw, dict) or not isinstance(raw.get("sysctl"), dict):
            raise ValueError("not the reader's object")
    except ValueError:
        raise EnvironmentProblem(f"the audit's reader gave unexpected output on {where}",
                                 f"got {_text(stdout.strip()) or 'nothing'!r}") from None
    sysctl = {}
    for key, value in raw["sysctl"].items():
        number = _digits(value)
        if isinstance(key, str) and key.startswith("nf_conntrack_") and number is not None:
            sysctl[key.removeprefix("nf_conntrack_")] = number
    notes = []
    if raw.get("sysctl_error"):
        notes.append(f"/proc/sys/net/netfilter unreadable: {_text(raw['sysctl_error'])}")
    mem_kb = _digits(raw.get("memtotal_kb"))
    owner = raw.get("owner")
    mods = raw.get("modules")
    modules = {str(k)[:MAX_TEXT]: v for k, v in (mods if isinstance(mods, dict) else {}).items()
               if v is None or isinstance(v, bool)}
    return HostFacts(sysctl=sysctl,
                     slab=parse_slab(_text(raw.get("slab")), raw.get("slab_size"),
                                     _text(raw.get("slab_error"))),
                     release=_text(raw.get("osrelease")),
                     owner=owner if isinstance(owner, bool) else None,
                     memtotal_bytes=None if mem_kb is None else mem_kb * 1024,
                     notes=tuple(notes), modules=modules)


def timeouts(facts: HostFacts) -> dict[str, int]:
    """Configured conntrack timeouts by spec name (udp, tcp_time_wait, ...)."""
    out = {}
    for key, value in facts.sysctl.items():
        proto, sep, state = key.partition("_timeout")
        if sep and proto in TIMEOUT_PROTOS:
            out[proto + state] = value
    return out
