"""The drill spec: typed, strict (unknown keys are errors), with documented defaults.

A spec says what a drill targets, what it changes, what load it drives, what it
observes, what it expects afterwards, what aborts it while it runs, and how long the
targets wait before reverting themselves (the dead-man TTL).
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

KERNEL_WIDE_SYSCTLS = frozenset({
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_buckets",
    "net.netfilter.nf_conntrack_expect_max",
})
SYSCTL_KEY = re.compile(r"^net\.[a-z0-9_]+(\.[a-z0-9_\-]+)+$")
TIMEOUT_NAME = re.compile(r"^(generic|icmp|icmpv6|udp|udp_stream|tcp_[a-z_]+|sctp_[a-z_]+)$")
Metric = Literal["ctr", "hcp95", "nfd_per_s", "nfd_fraction", "new_flows_per_s",
                 "early_drop_per_s", "insert_failed_per_s", "chain_too_long_per_s", "count",
                 "max", "buckets", "drops", "table_full_events"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Canary(Strict):
    """Which share of the targets gets the changes; the rest is the control pool."""

    count: int | None = Field(None, ge=1, description="Number of canary hosts.")
    percent: float | None = Field(None, gt=0, le=100, description="Share of hosts, rounded up.")

    @model_validator(mode="after")
    def one_of(self) -> Canary:
        if (self.count is None) == (self.percent is None):
            raise ValueError("give exactly one of 'count' or 'percent'")
        return self

    def size(self, n_hosts: int) -> int:
        if self.count is not None:
            return min(self.count, n_hosts)
        assert self.percent is not None
        return min(n_hosts, max(1, math.ceil(n_hosts * self.percent / 100)))


class Targets(Strict):
    hosts: str = Field(..., min_length=1, description="Ansible host pattern or group.")
    canary: Canary | None = None


class Bypass(Strict):
    """A traffic class that skips conntrack (nftables `notrack`) in both directions."""

    name: str = Field(..., pattern=r"^[a-z][a-z0-9_]{0,30}$")
    protocol: Literal["tcp", "udp"]
    port: int = Field(..., ge=1, le=65535, description="Server port of the class.")
    network: str | None = Field(None, description="Optional CIDR the server side lives in.")

    @field_validator("network")
    @classmethod
    def cidr(cls, v: str | None) -> str | None:
        if v is not None:
            ipaddress.ip_network(v, strict=False)
        return v


SysctlValue = Annotated[int | str, Field()]


class ChangeSet(Strict):
    """Changes for a set of hosts: sysctls, notrack bypass rules, conntrack timeouts."""

    hosts: str | None = Field(None, min_length=1,
                              description="Host pattern; default: the canary pool "
                                                "when a canary is set, else all targets.")
    sysctl: dict[str, SysctlValue] = Field(default_factory=dict)
    bypass: list[Bypass] = Field(default_factory=list)
    timeouts: dict[str, int] = Field(default_factory=dict,
                                     description="Conntrack timeouts in seconds, by name "
                                                 "(udp, udp_stream, tcp_established, ...).")

    @field_validator("sysctl")
    @classmethod
    def sysctl_keys(cls, v: dict[str, int | str]) -> dict[str, int | str]:
        for key in v:
            if not SYSCTL_KEY.match(key):
                raise ValueError(f"'{key}' is not a net.* sysctl key")
        return v

    @field_validator("timeouts")
    @classmethod
    def timeout_names(cls, v: dict[str, int]) -> dict[str, int]:
        for name, seconds in v.items():
            if not TIMEOUT_NAME.match(name):
                raise ValueError(f"'{name}' is not a conntrack timeout name")
            if seconds < 1:
                raise ValueError(f"timeout '{name}' must be >= 1 s")
        return v

    def all_sysctls(self) -> dict[str, str]:
        """sysctl keys and the timeout shorthand, merged, values as strings."""
        out = {k: str(v) for k, v in self.sysctl.items()}
        for name, seconds in self.timeouts.items():
            out[timeout_sysctl(name)] = str(seconds)
        return out


def timeout_sysctl(name: str) -> str:
    """'udp' -> nf_conntrack_udp_timeout, 'tcp_established' -> ..._tcp_timeout_established."""
    proto, _, state = name.partition("_")
    return f"net.netfilter.nf_conntrack_{proto}_timeout" + (f"_{state}" if state else "")


class NoLoad(Strict):
    kind: Literal["none"] = "none"


class UdpFlowsLoad(Strict):
    """Single-datagram UDP flows from one lab host to another (socket based)."""

    kind: Literal["udp-flows"]
    source: str = Field(..., description="Inventory host that sends (netns transport).")
    destination: str = Field(..., description="Inventory host or IP address to send to.")
    flows: int = Field(..., ge=1, le=60000)
    start_s: float = Field(1.0, ge=0, description="Seconds into the observation.")


Load = Annotated[NoLoad | UdpFlowsLoad, Field(discriminator="kind")]


class Observe(Strict):
    hosts: str | None = Field(None, min_length=1,
                              description="Host pattern to sample; default: targets.")
    hz: float = Field(20.0, gt=0, le=200)
    window_s: float = Field(1.0, gt=0, le=60)
    duration_s: float = Field(10.0, gt=0, le=3600)


class MetricExpectation(Strict):
    """After the run: a statistic of one metric on one host compared with a value."""

    name: str | None = None
    host: str = Field(..., min_length=1)
    metric: Metric
    stat: Literal["max", "min", "mean", "last", "p95"] = "max"
    op: Literal[">", ">=", "<", "<=", "=="]
    value: float

    def describe(self) -> str:
        return self.name or f"{self.stat}({self.metric}) on {self.host} {self.op} {self.value:g}"


class Ceiling(Strict):
    """Abort the drill when a metric on a protected host goes above a value."""

    hosts: str = Field(..., min_length=1)
    metric: Metric
    above: float


class Guards(Strict):
    max_duration_s: float = Field(600.0, gt=0, description="Wall-time budget of the whole run.")
    ceilings: list[Ceiling] = Field(default_factory=list)


class Revert(Strict):
    ttl_s: float = Field(120.0, ge=10, le=86400,
                         description="Dead-man TTL: targets revert themselves after this "
                                     "unless the orchestrator disarms them.")


class DrillSpec(Strict):
    """A drill, as written in drills/*.yaml."""

    drill: str = Field(..., pattern=r"^[a-z][a-z0-9\-]{0,62}$", description="Drill name.")
    description: str = ""
    targets: Targets
    changes: list[ChangeSet] = Field(default_factory=list)
    load: Load = Field(default_factory=NoLoad)
    observe: Observe = Field(default_factory=Observe)
    expect: list[MetricExpectation] = Field(default_factory=list)
    guards: Guards = Field(default_factory=Guards)
    revert: Revert = Field(default_factory=Revert)

    @model_validator(mode="after")
    def ttl_covers_the_run(self) -> DrillSpec:
        if self.revert.ttl_s < self.observe.duration_s + 10:
            raise ValueError(f"revert.ttl_s ({self.revert.ttl_s:g}) must exceed "
                             f"observe.duration_s ({self.observe.duration_s:g}) by >= 10 s, "
                             "or targets would revert themselves mid-drill")
        return self
