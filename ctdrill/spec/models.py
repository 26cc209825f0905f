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

from ctdrill.probe.spec import ProbeSpec
from ctdrill.regime.spec import RegimeSpec

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


# after Strict, which the surge spec builds on (ctdrill/surge/__init__.py explains)
from ctdrill.surge.spec import SurgeLoad  # noqa: E402


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


Load = Annotated[NoLoad | UdpFlowsLoad | SurgeLoad, Field(discriminator="kind")]


class Observe(Strict):
    hosts: str | None = Field(None, min_length=1,
                              description="Host pattern to sample; default: targets.")
    hz: float = Field(20.0, gt=0, le=200)
    window_s: float = Field(1.0, gt=0, le=60)
    duration_s: float = Field(10.0, gt=0, le=3600)


Op = Literal[">", ">=", "<", "<=", "=="]
RegimeName = Literal["CT_HEALTHY", "CT_TIGHTENING", "CT_PRESSURED", "CT_SAFE_CONTAIN"]


class MetricExpectation(Strict):
    """After the run: a statistic of one telemetry metric on one host against a value."""

    kind: Literal["metric"]
    name: str | None = None
    host: str = Field(..., min_length=1)
    metric: Metric
    stat: Literal["max", "min", "mean", "last", "p95", "sum"] = "max"
    step: str | None = Field(None, description="Only windows inside this step.")
    op: Op
    value: float

    def describe(self) -> str:
        where = f" in step {self.step}" if self.step else ""
        return self.name or (f"{self.stat}({self.metric}) on {self.host}{where} "
                             f"{self.op} {self.value:g}")


class RegimeExpectation(Strict):
    """The regime machine's record on one host: states reached, order, end, flapping."""

    kind: Literal["regime"]
    name: str | None = None
    host: str = Field(..., min_length=1)
    sequence: list[RegimeName] = Field(default_factory=list,
                                       description="States entered in this order.")
    reaches: RegimeName | None = Field(None, description="A state that must be entered ...")
    within_s: float | None = Field(None, gt=0, description="... within this many seconds "
                                   "after the load starts.")
    ends_in: RegimeName | None = Field(None, description="State at the end of observation.")
    max_transitions: int | None = Field(None, ge=0, description="No flapping: at most this "
                                        "many transitions in the run.")

    def describe(self) -> str:
        if self.name:
            return self.name
        parts = []
        if self.sequence:
            parts.append(" -> ".join(self.sequence))
        if self.reaches:
            parts.append(f"reaches {self.reaches}" + (f" within {self.within_s:g}s"
                                                      if self.within_s else ""))
        if self.ends_in:
            parts.append(f"ends in {self.ends_in}")
        if self.max_transitions is not None:
            parts.append(f"<= {self.max_transitions} transitions")
        return f"regime on {self.host}: " + ", ".join(parts)


ProbeMetric = Literal["dwell_ms", "osd_ms", "is_bps", "ack_gap_ms", "timeouts", "retried",
                      "messages", "lost_reports", "cdt_p95_bps", "cdt_p99_bps"]


class ProbeExpectation(Strict):
    """The order-flow probe's view: a quantile over one traffic class's messages."""

    kind: Literal["probe"]
    name: str | None = None
    proto: Literal["tcp", "udp", "any"] = "any"
    metric: ProbeMetric
    quantile: Literal["p50", "p95", "p99", "max"] = "p99"
    pressure: Literal["all", "high", "low"] = Field("all", description="Only messages sent "
                                                    "in high / low pressure windows.")
    step: str | None = None
    op: Op
    value: float

    def describe(self) -> str:
        where = f" in step {self.step}" if self.step else ""
        q = "" if self.metric in ("timeouts", "retried", "messages", "lost_reports") or \
            self.metric.startswith("cdt") else f"{self.quantile} "
        return self.name or (f"probe {self.proto} {q}{self.metric} ({self.pressure} pressure"
                             f"{where}) {self.op} {self.value:g}")


class ClassEntriesExpectation(Strict):
    """Conntrack entries of one traffic class on a host, counted once a second."""

    kind: Literal["class_entries"]
    name: str | None = None
    host: str = Field(..., min_length=1)
    protocol: Literal["tcp", "udp"]
    port: int = Field(..., ge=1, le=65535)
    stat: Literal["max", "min", "mean", "last"] = "max"
    op: Op
    value: float

    def describe(self) -> str:
        return self.name or (f"{self.stat} conntrack entries of {self.protocol}/{self.port} "
                             f"on {self.host} {self.op} {self.value:g}")


class StepTrendExpectation(Strict):
    """Across steps: a per-step statistic must fall (or rise) from step to step."""

    kind: Literal["step_trend"]
    name: str | None = None
    source: Literal["metric", "probe"] = "metric"
    host: str | None = Field(None, description="For metric trends.")
    metric: str = Field(..., description="A telemetry metric, or a probe metric.")
    stat: Literal["max", "min", "mean", "last", "p95", "sum", "p50", "p99"] = "mean"
    steps: list[str] = Field(..., min_length=2)
    direction: Literal["decreasing", "increasing"]
    strict: bool = Field(False, description="Strictly monotone instead of non-strictly.")

    def describe(self) -> str:
        return self.name or (f"{self.stat}({self.metric}) {self.direction} over steps "
                             f"{', '.join(self.steps)}")


Expectation = Annotated[MetricExpectation | RegimeExpectation | ProbeExpectation
                        | ClassEntriesExpectation | StepTrendExpectation,
                        Field(discriminator="kind")]


class Ceiling(Strict):
    """Abort the drill when a metric on a protected host goes above a value."""

    hosts: str = Field(..., min_length=1)
    metric: Metric
    above: float


class Guards(Strict):
    max_duration_s: float = Field(600.0, gt=0, description="Wall-time budget of the whole run.")
    ceilings: list[Ceiling] = Field(default_factory=list)


class Step(Strict):
    """One step of a stepped drill (e.g. capacity steps): its own changes and duration."""

    name: str = Field(..., pattern=r"^[a-z0-9][a-z0-9\-_]{0,40}$")
    duration_s: float = Field(..., gt=0)
    changes: list[ChangeSet] = Field(default_factory=list)


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
    probe: ProbeSpec | None = Field(None, description="Order-flow probe run beside the load.")
    observe: Observe = Field(default_factory=Observe)
    steps: list[Step] = Field(default_factory=list, description="Change sets applied one "
                              "after another under the same load; observe.duration_s must "
                              "equal the sum of their durations.")
    expect: list[Expectation] = Field(default_factory=list)
    guards: Guards = Field(default_factory=Guards)
    revert: Revert = Field(default_factory=Revert)
    regime: RegimeSpec = Field(default_factory=RegimeSpec)

    @model_validator(mode="after")
    def steps_fill_the_observation(self) -> DrillSpec:
        if self.steps:
            total = sum(st.duration_s for st in self.steps)
            if abs(total - self.observe.duration_s) > 1e-6:
                raise ValueError(f"the steps last {total:g} s but observe.duration_s is "
                                 f"{self.observe.duration_s:g} s; make them equal")
            names = [st.name for st in self.steps]
            if len(set(names)) != len(names):
                raise ValueError("step names must be unique")
        known = {st.name for st in self.steps}
        for e in self.expect:
            refs = e.steps if isinstance(e, StepTrendExpectation) else (
                [e.step] if isinstance(e, MetricExpectation | ProbeExpectation) and e.step
                else [])
            for ref in refs:
                if ref not in known:
                    raise ValueError(f"expectation refers to unknown step '{ref}'")
        return self

    @model_validator(mode="after")
    def ttl_covers_the_run(self) -> DrillSpec:
        if self.revert.ttl_s < self.observe.duration_s + 10:
            raise ValueError(f"revert.ttl_s ({self.revert.ttl_s:g}) must exceed "
                             f"observe.duration_s ({self.observe.duration_s:g}) by >= 10 s, "
                             "or targets would revert themselves mid-drill")
        return self
