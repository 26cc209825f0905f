"""The telemetry agent: runs on the target (inside its network namespace) and pushes samples.

Self-contained on purpose: standard library only, so every connector (local, netns,
ssh) runs it the same way, its source shipped in the command (`python3 -u -c SOURCE`),
on a host where ctdrill is not installed. One JSON object per line: a `hello` line first,
then one `sample` line per tick, paced on an absolute schedule so jitter does not
accumulate. The agent exits when its reader goes away (broken pipe) or at --duration.

Each sample also carries the kernel's nf_conntrack slab cache (/proc/slabinfo), or null
where that file cannot be read (it is root-only): memory context is never a reason to
fail a sample.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import socket
import sys
import time

AGENT_VERSION = 1
NETFILTER = "/proc/sys/net/netfilter/"
STAT_TABLE = "/proc/net/stat/nf_conntrack"
KMSG = "/dev/kmsg"
TABLE_FULL = re.compile(r"table full in netns (\d+)")
GLOBAL_COLUMNS = ("entries",)  # the same value on every CPU row: not a per-CPU counter
SLABINFO = "/proc/slabinfo"
SLAB_CACHE = "nf_conntrack"  # one kernel-wide cache (old kernels: one per netns, unmatched)
SLAB_FIELDS = ("active_objs", "num_objs", "objsize", "objperslab", "pagesperslab")
SLAB_HEADER = re.compile(r"<(\w+)>")


def parse_stat_table(text: str) -> dict[str, int]:
    """Parse /proc/net/stat/nf_conntrack by header name, summing per-CPU hex rows.

    Column sets differ between kernels, so nothing is positional. `entries` is the
    namespace's total, repeated on each row, so it is taken once, not summed.
    """
    lines = [ln.split() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return {}
    header, rows = lines[0], lines[1:]
    totals = dict.fromkeys(header, 0)
    for row in rows:
        for name, cell in zip(header, row, strict=False):
            value = int(cell, 16)
            if name in GLOBAL_COLUMNS:
                totals[name] = value
            else:
                totals[name] += value
    return totals


def parse_slabinfo(text: str, cache: str = SLAB_CACHE) -> dict[str, int] | None:
    """The `cache` line of /proc/slabinfo as SLAB_FIELDS -> int; None without that line.

    Columns are named by the `# name <active_objs> ...` header where there is one (the
    2.x format's order otherwise); the `:`, `tunables` and `slabdata` separators are
    not columns. The name must match exactly: `nf_conntrack_expect` is another cache.
    """
    names = list(SLAB_FIELDS)
    for line in text.splitlines():
        if line.startswith("# name"):
            names = SLAB_HEADER.findall(line) or names
            continue
        cells = line.split()
        if not cells or cells[0] != cache:
            continue
        values = [int(c) for c in cells[1:] if c.isdigit()]
        row = dict(zip(names, values, strict=False))
        if not all(f in row for f in SLAB_FIELDS):
            return None
        return {f: row[f] for f in SLAB_FIELDS}
    return None


def read_slab() -> dict[str, int] | None:
    """The conntrack slab cache now, or None: unreadable (not root), or no such cache."""
    try:
        with open(SLABINFO) as f:
            return parse_slabinfo(f.read())
    except (OSError, ValueError):
        return None


def netns_inode() -> int:
    return os.stat("/proc/self/ns/net").st_ino


def parse_kmsg_record(record: str) -> tuple[int, str] | None:
    """Split a /dev/kmsg record 'pri,seq,ts_usec,flags;message' into (ts_usec, message)."""
    head, sep, message = record.partition(";")
    if not sep:
        return None
    fields = head.split(",")
    try:
        return int(fields[2]), message.split("\n", 1)[0]
    except (IndexError, ValueError):
        return None


class KernelLog:
    """Non-blocking reader of new /dev/kmsg records, filtered to table-full events of one netns."""

    def __init__(self, inode: int) -> None:
        self.inode = inode
        self.fd: int | None = None
        self.foreign = 0
        try:
            self.fd = os.open(KMSG, os.O_RDONLY | os.O_NONBLOCK)
            os.lseek(self.fd, 0, os.SEEK_END)
        except OSError:
            self.fd = None

    def drain(self) -> list[dict[str, object]]:
        events: list[dict[str, object]] = []
        if self.fd is None:
            return events
        while True:
            try:
                raw = os.read(self.fd, 8192)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # records overwritten before we read them
                    continue
                break
            parsed = parse_kmsg_record(raw.decode("utf-8", "replace"))
            if parsed is None:
                continue
            match = TABLE_FULL.search(parsed[1])
            if match is None:
                continue
            if int(match.group(1)) == self.inode:
                events.append({"kts_us": parsed[0], "msg": parsed[1]})
            else:
                self.foreign += 1
        return events


def read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def read_sample(klog: KernelLog, seq: int) -> dict[str, object]:
    try:
        with open(STAT_TABLE) as f:
            stat = parse_stat_table(f.read())
    except OSError:
        stat = {}
    return {
        "type": "sample",
        "seq": seq,
        "t": time.time(),
        "count": read_int(NETFILTER + "nf_conntrack_count"),
        "max": read_int(NETFILTER + "nf_conntrack_max"),
        "buckets": read_int(NETFILTER + "nf_conntrack_buckets"),
        "stat": stat,
        "slab": read_slab(),
        "events": klog.drain(),
    }


def emit(obj: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def run(hz: float, duration: float) -> int:
    inode = netns_inode()
    klog = KernelLog(inode)
    emit({"type": "hello", "agent": AGENT_VERSION, "netns_inode": inode,
          "host": socket.gethostname(), "kmsg": klog.fd is not None, "hz": hz,
          "conntrack": os.path.exists(NETFILTER + "nf_conntrack_count"),
          "slab": read_slab() is not None})
    period = 1.0 / hz
    start = time.monotonic()
    next_tick = start
    seq = 0
    while duration <= 0 or time.monotonic() - start < duration:
        emit(read_sample(klog, seq))
        seq += 1
        next_tick += period
        delay = next_tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -period:  # fell behind by more than a tick: skip, don't burst
            next_tick = time.monotonic()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ctdrill conntrack telemetry agent")
    parser.add_argument("--hz", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=0.0, help="seconds; 0 = until EOF")
    args = parser.parse_args(argv)
    try:
        return run(args.hz, args.duration)
    except (BrokenPipeError, KeyboardInterrupt):
        # the reader is gone: point stdout at /dev/null so the exit-time flush is silent
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
