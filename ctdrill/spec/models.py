"""The drill spec: typed, strict (unknown keys are errors), with documented defaults.

A spec says what a drill targets, what it changes, what load it drives, what it
observes, what it expects afterwards, what aborts it while it runs, and how long the
targets wait before reverting themselves (the dead-man TTL).
"""

from __future__ import annotations

import ipaddress
import math
import re
import typing
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from ctdrill.probe.spec import ProbeSpec
from ctdrill.regime.spec import RegimeSpec
from ctdrill.spec.strict import HostName, HostPattern, Matching, Rule, Strict, anchored
from ctdrill.surge.spec import SurgeLoad

KERNEL_WIDE_SYSCTLS = frozenset({
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_buckets",
    "net.netfilter.nf_conntrack_expect_max",
})
SysctlKey = Annotated[str, Matching(r"net\.[a-z0-9_]+(\.[a-z0-9_\-]+)+",
                                    "{} is not a net.* sysctl key")]
TimeoutName = Literal[
    "generic", "icmp", "icmpv6", "udp", "udp_stream", "gre", "gre_stream",
    "tcp_syn_sent", "tcp_syn_recv", "tcp_established", "tcp_fin_wait", "tcp_close_wait",
    "tcp_last_ack", "tcp_time_wait", "tcp_close", "tcp_max_retrans", "tcp_unacknowledged",
    "sctp_closed", "sctp_cookie_wait", "sctp_cookie_echoed", "sctp_established",
    "sctp_shutdown_sent", "sctp_shutdown_recd", "sctp_shutdown_ack_sent",
    "sctp_heartbeat_sent", "sctp_heartbeat_acked",
    "dccp_request", "dccp_respond", "dccp_partopen", "dccp_open", "dccp_closereq",
    "dccp_closing", "dccp_timewait"]
"""The kernel's conntrack timeouts (net.netfilter.nf_conntrack_<proto>_timeout[_<state>]);
sctp_heartbeat_acked and dccp_* exist only on kernels that still have them."""
TIMEOUT_NAMES = frozenset(typing.get_args(TimeoutName))
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(\.{_OCTET}){{3}}(/(3[0-2]|[12]?[0-9]))?"
_H = r"[0-9a-fA-F]{1,4}"
_IPV6 = (rf"(({_H}:){{7}}{_H}|({_H}:){{1,7}}:|({_H}:){{1,6}}:{_H}|({_H}:){{1,5}}(:{_H}){{1,2}}"
         rf"|({_H}:){{1,4}}(:{_H}){{1,3}}|({_H}:){{1,3}}(:{_H}){{1,4}}"
         rf"|({_H}:){{1,2}}(:{_H}){{1,5}}|{_H}:(:{_H}){{1,6}}|:((:{_H}){{1,7}}|:))"
         r"(/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))?")
Network = Annotated[str, Matching(f"{_IPV4}|{_IPV6}",
                                  "{} does not appear to be an IPv4 or IPv6 network")]
"""CIDR (or a bare address): dotted-quad IPv4 or hex IPv6, optional /prefix."""
Metric = Literal["ctr", "hcp95", "nfd_per_s", "nfd_fraction", "new_flows_per_s",
                 "early_drop_per_s", "insert_failed_per_s", "chain_too_long_per_s", "count",
                 "max", "buckets", "drops", "table_full_events"]



class Canary(Strict):
    """Which share of the targets gets the changes; the rest is the control pool."""

    exactly_one = ("count", "percent")
    count: int | None = Field(None, ge=1, description="Number of canary hosts.")
    percent: float | None = Field(None, gt=0, le=100, description="Share of hosts, rounded up.")
    seed: int | None = Field(None, ge=0, description=(
        "Pick the canary pool by a seeded shuffle of the targets (the same seed, the same "
        "hosts); unset: the first hosts by name."))

    def size(self, n_hosts: int) -> int:
        if self.count is not None:
            return min(self.count, n_hosts)
        assert self.percent is not None
        return min(n_hosts, max(1, math.ceil(n_hosts * self.percent / 100)))


class Targets(Strict):
    hosts: HostPattern = Field(..., min_length=1, description="Ansible host pattern or group.")
    canary: Canary | None = None


class Bypass(Strict):
    """A traffic class that skips conntrack (nftables `notrack`) in both directions."""

    name: str = Field(..., pattern=anchored(r"[a-z][a-z0-9_]{0,30}"))
    protocol: Literal["tcp", "udp"]
    port: int = Field(..., ge=1, le=65535, description="Server port of the class.")
    network: Network | None = Field(None, description="Optional CIDR the server side "
                                    "lives in (IPv4 or IPv6).")

    @field_validator("network")
    @classmethod
    def cidr(cls, v: str | None) -> str | None:
        if v is not None:
            ipaddress.ip_network(v, strict=False)
        return v


SysctlText = Annotated[str, Matching(
    r"[0-9A-Za-z][0-9A-Za-z ._:,/+\-]{0,255}",
    "{} is not a plain sysctl value (letters, digits, spaces and ._:,/+-)")]
SysctlValue = int | SysctlText
"""A value is data: an integer or plain text, never a template or a shell word."""
INTEGER_SYSCTLS = r"net\.netfilter\.nf_conntrack_[a-z0-9_]+"
"""Every conntrack knob is an integer: a string there (even "42") is refused."""


class ChangeSet(Strict):
    """Changes for a set of hosts: sysctls, notrack bypass rules, conntrack timeouts."""

    hosts: HostPattern | None = Field(None, min_length=1,
                              description="Host pattern; default: the canary pool "
                                                "when a canary is set, else all targets.")
    sysctl: dict[SysctlKey, SysctlValue] = Field(default_factory=dict, json_schema_extra={
        "patternProperties": {anchored(INTEGER_SYSCTLS): {"type": "integer"}}})
    bypass: list[Bypass] = Field(default_factory=list)
    timeouts: dict[TimeoutName, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="Conntrack timeouts in seconds, by name "
                                          "(udp, udp_stream, tcp_established, ...).")

    @field_validator("sysctl")
    @classmethod
    def _conntrack_knobs_are_integers(cls, values: dict[str, int | str]) -> dict[str, int | str]:
        for key, value in values.items():
            if isinstance(value, str) and re.search(anchored(INTEGER_SYSCTLS), key):
                raise ValueError(f"{key} takes an integer, not the text {value!r}")
        return values

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
    """No load. `kind` is required as in every load: a union needs its tag."""

    kind: Literal["none"]


class UdpFlowsLoad(Strict):
    """Single-datagram UDP flows from one lab host to another (socket based)."""

    kind: Literal["udp-flows"]
    source: HostName = Field(..., description="Inventory host that sends (netns transport).")
    destination: HostName = Field(..., description="Inventory host or IP address to send to.")
    flows: int = Field(..., ge=1, le=60000)
    start_s: float = Field(1.0, ge=0, description="Seconds into the observation.")


Load = Annotated[NoLoad | UdpFlowsLoad | SurgeLoad, Field(discriminator="kind")]


class Observe(Strict):
    hosts: HostPattern | None = Field(None, min_length=1,
                              description="Host pattern to sample; default: targets.")
    hz: float = Field(20.0, gt=0, le=200)
    window_s: float = Field(1.0, gt=0, le=60)
    duration_s: float = Field(10.0, gt=0, le=3600)


Op = Literal[">", ">=", "<", "<=", "=="]
Pool = Literal["all", "canary", "control"]
RegimeName = Literal["CT_HEALTHY", "CT_TIGHTENING", "CT_PRESSURED", "CT_SAFE_CONTAIN"]


class MetricExpectation(Strict):
    """After the run: a statistic of one telemetry metric on one host against a value."""

    kind: Literal["metric"]
    name: str | None = None
    host: HostName = Field(..., min_length=1)
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
    host: HostName = Field(..., min_length=1)
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
    pool: Pool = Field("all", description="Only messages that crossed a gateway of this "
                       "pool (the client's ctdrill_via): canary, control or all.")
    op: Op
    value: float

    def describe(self) -> str:
        where = f" in step {self.step}" if self.step else ""
        where += f" on the {self.pool} pool" if self.pool != "all" else ""
        q = "" if self.metric in ("timeouts", "retried", "messages", "lost_reports") or \
            self.metric.startswith("cdt") else f"{self.quantile} "
        return self.name or (f"probe {self.proto} {q}{self.metric} ({self.pressure} pressure"
                             f"{where}) {self.op} {self.value:g}")


class ClassEntriesExpectation(Strict):
    """Conntrack entries of one traffic class on a host, counted once a second. With a
    group or a pool, the statistic must hold on every one of its hosts."""

    exactly_one = ("host", "pool")
    kind: Literal["class_entries"]
    name: str | None = None
    host: HostName | None = Field(None, min_length=1, description="A host or a group.")
    pool: Literal["canary", "control"] | None = Field(None, description="Every host of "
                                                      "the canary or the control pool.")
    protocol: Literal["tcp", "udp"]
    port: int = Field(..., ge=1, le=65535)
    stat: Literal["max", "min", "mean", "last"] = "max"
    op: Op
    value: float

    def describe(self) -> str:
        where = self.host or f"every {self.pool} host"
        return self.name or (f"{self.stat} conntrack entries of {self.protocol}/{self.port} "
                             f"on {where} {self.op} {self.value:g}")


class CanaryVsControlExpectation(Strict):
    """The canary pool against the control pool under the same load: a probe statistic
    over the messages that crossed canary gateways, compared with `ratio` times the same
    statistic over the control pool's. Judges the difference, not one host."""

    kind: Literal["canary_vs_control"]
    name: str | None = None
    proto: Literal["tcp", "udp", "any"] = "any"
    metric: ProbeMetric
    quantile: Literal["p50", "p95", "p99", "max"] = "p99"
    pressure: Literal["all", "high", "low"] = "all"
    op: Op
    ratio: float = Field(1.0, gt=0, description="canary OP ratio x control.")

    def describe(self) -> str:
        scale = f"{self.ratio:g} x " if self.ratio != 1 else ""
        return self.name or (f"canary {self.proto} {self.quantile} {self.metric} {self.op} "
                             f"{scale}control's")


class StepTrendExpectation(Strict):
    """Across steps: a per-step statistic must fall (or rise) from step to step."""

    kind: Literal["step_trend"]
    name: str | None = None
    source: Literal["metric", "probe"] = "metric"
    host: HostName | None = Field(None, description="For metric trends.")
    metric: str = Field(..., pattern=anchored(r"[a-z][a-z0-9_]{0,63}"),
                        description="A telemetry metric, or a probe metric.")
    stat: Literal["max", "min", "mean", "last", "p95", "sum", "p50", "p99"] = "mean"
    steps: list[str] = Field(..., min_length=2)
    direction: Literal["decreasing", "increasing"]
    strict: bool = Field(False, description="Each step must beat the one before by more than "
                         "the noise floor, instead of merely not being worse than it.")
    tolerance: float = Field(0.25, ge=0, le=1, description=(
        "Noise floor, relative to the larger of two neighbouring values: neighbours within "
        "it count as equal (docs/DRILL-SPEC.md; default from bench/drill_stability.py)."))
    abs_tolerance: float = Field(0.0, ge=0, description=(
        "Noise floor in the metric's own unit, for values near zero; the larger floor wins."))

    def describe(self) -> str:
        return self.name or (f"{self.stat}({self.metric}) {self.direction} over steps "
                             f"{', '.join(self.steps)}")


Expectation = Annotated[MetricExpectation | RegimeExpectation | ProbeExpectation
                        | ClassEntriesExpectation | StepTrendExpectation
                        | CanaryVsControlExpectation,
                        Field(discriminator="kind")]


class Ceiling(Strict):
    """Abort the drill when a metric on a protected host goes above a value."""

    hosts: HostPattern = Field(..., min_length=1)
    metric: Metric
    above: float


class Guards(Strict):
    max_duration_s: float = Field(600.0, gt=0, description="Wall-time budget of the whole run.")
    ceilings: list[Ceiling] = Field(default_factory=list)


Share = Annotated[str, Matching(r"([1-9][0-9]?|100)%",
                                "{} is not a share of the hosts: '1%' to '100%'")]
WaveSize = Annotated[int, Field(ge=1)] | Share
"""Hosts in one wave: a count, or a percent of the rollout's hosts (rounded up)."""
HaltRegime = Literal["CT_TIGHTENING", "CT_PRESSURED", "CT_SAFE_CONTAIN"]


class Rollout(Strict):
    """Apply the changes in waves, like Ansible's `serial`: after each wave the guards
    are checked on the hosts changed so far, and a tripped guard stops the rollout."""

    serial: WaveSize | Annotated[list[WaveSize], Field(min_length=1)] = Field(..., description=(
        "Hosts per wave: a count, a percent of the changed hosts (rounded up), or a list "
        "of them, one per wave, the last repeated (Ansible's serial)."))
    pause_s: float = Field(0.0, ge=0, le=3600, description=(
        "Settle window after each wave: telemetry of the hosts changed so far, guards "
        "checked; it also lasts until each of them has sent a window after the wave."))
    halt_regime: HaltRegime | None = Field(None, description=(
        "Also stop when a changed host's regime reaches this one or a worse one."))


class Step(Strict):
    """One step of a stepped drill (e.g. capacity steps): its own changes and duration."""

    name: str = Field(..., pattern=anchored(r"[a-z0-9][a-z0-9\-_]{0,40}"))
    duration_s: float = Field(..., gt=0)
    changes: list[ChangeSet] = Field(default_factory=list)


class Revert(Strict):
    ttl_s: float = Field(120.0, ge=10, le=86400,
                         description="Dead-man TTL: targets revert themselves after this "
                                     "unless the orchestrator disarms them.")


STEPS_FILL = Rule("steps-fill-observation",
                  "the steps' duration_s add up to observe.duration_s")
UNIQUE_STEPS = Rule("unique-step-names", "step names are unique")
KNOWN_STEPS = Rule("known-steps", "every step an expectation names is one of the steps")
TTL_COVERS = Rule("ttl-covers-run", "revert.ttl_s >= observe.duration_s + 10")


class DrillSpec(Strict):
    """A drill, as written in drills/*.yaml."""

    rules: ClassVar[tuple[Rule, ...]] = (STEPS_FILL, UNIQUE_STEPS, KNOWN_STEPS, TTL_COVERS)
    drill: str = Field(..., pattern=anchored(r"[a-z][a-z0-9\-]{0,62}"), description="Drill name.")
    description: str = ""
    targets: Targets
    changes: list[ChangeSet] = Field(default_factory=list)
    load: Load = Field(default_factory=lambda: NoLoad(kind="none"))
    probe: ProbeSpec | None = Field(None, description="Order-flow probe run beside the load.")
    observe: Observe = Field(default_factory=Observe)
    steps: list[Step] = Field(default_factory=list, description="Change sets applied one "
                              "after another under the same load; observe.duration_s must "
                              "equal the sum of their durations.")
    expect: list[Expectation] = Field(default_factory=list)
    guards: Guards = Field(default_factory=Guards)
    rollout: Rollout | None = Field(None, description="Apply the changes in waves, the "
                                    "guards checked between them (docs/DRILL-SPEC.md).")
    revert: Revert = Field(default_factory=Revert)
    regime: RegimeSpec = Field(default_factory=RegimeSpec)

    @model_validator(mode="after")
    def steps_fill_the_observation(self) -> DrillSpec:
        if self.steps:
            total = sum(st.duration_s for st in self.steps)
            if abs(total - self.observe.duration_s) > 1e-6:
                raise STEPS_FILL.broken(f"the steps last {total:g} s but observe.duration_s "
                                        f"is {self.observe.duration_s:g} s; make them equal")
            names = [st.name for st in self.steps]
            if len(set(names)) != len(names):
                raise UNIQUE_STEPS.broken("step names must be unique")
        known = {st.name for st in self.steps}
        for e in self.expect:
            refs = e.steps if isinstance(e, StepTrendExpectation) else (
                [e.step] if isinstance(e, MetricExpectation | ProbeExpectation) and e.step
                else [])
            for ref in refs:
                if ref not in known:
                    raise KNOWN_STEPS.broken(f"expectation refers to unknown step '{ref}'")
        return self

    @model_validator(mode="after")
    def ttl_covers_the_run(self) -> DrillSpec:
        if self.revert.ttl_s < self.observe.duration_s + 10:
            raise TTL_COVERS.broken(f"revert.ttl_s ({self.revert.ttl_s:g}) must exceed "
                                    f"observe.duration_s ({self.observe.duration_s:g}) by "
                                    ">= 10 s, or targets would revert themselves mid-drill")
        return self
