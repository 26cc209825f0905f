"""Small helpers for integration tests: read the kernel directly, for comparison."""

from __future__ import annotations

import statistics
import subprocess


def ns_read(netns: str, path: str) -> str:
    return subprocess.run(["ip", "netns", "exec", netns, "cat", path], capture_output=True,
                          text=True, check=True).stdout.strip()


def ns_count(netns: str) -> int:
    return int(ns_read(netns, "/proc/sys/net/netfilter/nf_conntrack_count"))


def flush_conntrack(netns: str) -> None:
    subprocess.run(["ip", "netns", "exec", netns, "conntrack", "-F"], capture_output=True,
                   check=False)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]
