"""The surge load as a drill spec declares it (also the `ctdrill surge SPEC.yaml` format).

A surge sends new flows from one inventory host to another through the gateway under
test, following a rate shape. Field names are short because they are typed in YAML;
each carries a description because `ctdrill schema` shows it.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic.json_schema import WithJsonSchema

from ctdrill.spec.strict import RULES_KEY, HostName, Rule, Strict

MAX_RATE = 10_000_000.0
"""Far above what any sender reaches; a bigger number is a typo, not a plan."""
PORT_MIN, PORT_MAX = 1, 65535
ORDERED_PORTS = Rule("port-range-ordered", "a port range [lo, hi] has lo <= hi")
FILL_APART = Rule("fill-ports-apart", "with protocol tcp, fill.dst_ports does not overlap "
                                      "dst_ports")


def _pair(v: Any) -> Any:
    """A YAML/JSON list of two is the range's tuple (strict mode takes only tuples)."""
    return tuple(v) if isinstance(v, list) else v


def _check_ports(v: tuple[int, int]) -> tuple[int, int]:
    lo, hi = v
    message = (f"port range [{lo}, {hi}] must satisfy {PORT_MIN} <= lo <= hi <= "
               f"{PORT_MAX}")
    if not (PORT_MIN <= lo <= PORT_MAX and PORT_MIN <= hi <= PORT_MAX):
        raise ValueError(message)
    if lo > hi:
        raise ORDERED_PORTS.broken(message)
    return v


_PORT = {"type": "integer", "minimum": PORT_MIN, "maximum": PORT_MAX}
PortRange = Annotated[tuple[int, int], BeforeValidator(_pair), AfterValidator(_check_ports),
                      WithJsonSchema({"type": "array", "prefixItems": [_PORT, _PORT],
                                      "minItems": 2, "maxItems": 2,
                                      RULES_KEY: {ORDERED_PORTS.id: ORDERED_PORTS.text}})]
"""[lo, hi]: the bounds are in the schema, the order is a rule it cannot state."""


class ConstantShape(Strict):
    """One rate for a while."""

    kind: Literal["constant"]
    rate: float = Field(..., gt=0, le=MAX_RATE, description="New flows per second.")
    duration_s: float = Field(..., gt=0, le=86400, description="Seconds.")


class RateStep(Strict):
    rate: float = Field(..., ge=0, le=MAX_RATE, description="New flows per second.")
    duration_s: float = Field(..., gt=0, le=86400, description="Seconds at this rate.")


class StepShape(Strict):
    """Rates held one after another (0 is a pause)."""

    kind: Literal["step"]
    steps: list[RateStep] = Field(..., min_length=1, max_length=10000)


class RampShape(Strict):
    """A rate that changes linearly from `from_rate` to `to_rate`."""

    kind: Literal["ramp"]
    from_rate: float = Field(..., ge=0, le=MAX_RATE, description="Flows/s at the start.")
    to_rate: float = Field(..., ge=0, le=MAX_RATE, description="Flows/s at the end.")
    duration_s: float = Field(..., gt=0, le=86400, description="Seconds.")


class BurstShape(Strict):
    """A burst train: `count` times `rate` for `on_s`, then silence for `off_s`."""

    kind: Literal["burst"]
    rate: float = Field(..., gt=0, le=MAX_RATE, description="Flows/s while on.")
    on_s: float = Field(..., gt=0, le=3600, description="Seconds on per burst.")
    off_s: float = Field(..., ge=0, le=3600, description="Seconds off between bursts.")
    count: int = Field(..., ge=1, le=100000, description="Number of bursts.")


class ReplayShape(Strict):
    """Replay a recorded pressure episode: a rate profile, or the new flows of a pcap."""

    exactly_one = ("profile", "pcap")
    kind: Literal["replay"]
    profile: str | None = Field(None, min_length=1,
                                description="CSV (t,flows_per_s rows) or JSON ([[t, rate], "
                                            "...] or [{t, rate}, ...]) file; each rate holds "
                                            "until the next t.")
    pcap: str | None = Field(None, min_length=1,
                             description="pcap file: each flow's first packet (TCP SYN, UDP, "
                                         "ICMP echo) is replayed at its time, addresses "
                                         "rewritten into the lab's plan, ports kept.")
    scale: float = Field(1.0, gt=0, le=10000, description="Profile: rate multiplier. "
                                                          "pcap: speed-up (times / scale).")


class MaxShape(Strict):
    """Unpaced: as fast as the workers can send, for a while."""

    kind: Literal["max"]
    duration_s: float = Field(..., gt=0, le=86400, description="Seconds.")


Shape = Annotated[ConstantShape | StepShape | RampShape | BurstShape | ReplayShape | MaxShape,
                  Field(discriminator="kind")]


class Fill(Strict):
    """An ASSURED pre-fill (completed TCP handshakes) sent before the shape.

    ASSURED entries are the ones early_drop cannot evict, so a table full of them makes
    the kernel drop new flows: the failure a table-pressure drill must reproduce.
    """

    flows: int = Field(..., ge=1, le=50_000_000, description="ASSURED entries to create.")
    rate: float | None = Field(None, gt=0, le=MAX_RATE,
                               description="Flows/s; null = as fast as possible.")
    dst_ports: PortRange = Field((40000, 40999),
                                 description="Destination port range [lo, hi] of the fill; "
                                             "must not overlap the surge's own ports.")


def _given(name: str, value: str) -> dict[str, Any]:
    """Schema: `name` is written and equals `value`."""
    return {"required": [name], "properties": {name: {"const": value}}}


class SurgeLoad(Strict):
    """Synthetic new flows from one host to another, paced by a shape (batch sender)."""

    schema_checks: ClassVar[tuple[dict[str, Any], ...]] = (
        {"if": _given("mode", "assured"), "then": _given("protocol", "tcp")},
        {"if": _given("protocol", "icmp"), "then": {"not": {"required": ["dst_ports"]}}},
        {"if": {"required": ["shape"],
                "properties": {"shape": {"required": ["pcap"],
                                         "properties": {"pcap": {"type": "string"}}}}},
         "then": {"properties": {"mode": {"const": "new"}}}},
    )
    """The first three checks of `consistent`, stated for the schema."""
    rules: ClassVar[tuple[Rule, ...]] = (FILL_APART,)

    kind: Literal["surge"]
    source: HostName = Field(..., min_length=1,
                        description="Inventory host that sends (e.g. client).")
    destination: HostName = Field(..., min_length=1,
                             description="Inventory host (its ctdrill_addr) or IPv4 address.")
    protocol: Literal["udp", "tcp", "icmp"] = Field(
        "udp", description="udp datagrams, tcp SYNs, or icmp echo requests.")
    mode: Literal["new", "assured"] = Field(
        "new", description="new: unanswered flows (early_drop can evict them); assured: "
                           "completed TCP handshakes the gateway marks ASSURED.")
    src_addrs: int = Field(1, ge=1, le=65536,
                           description="Source addresses, counted up from the source's "
                                       "ctdrill_addr; all must be in the target networks.")
    src_ports: PortRange = Field((1024, 65535),
                                 description="Source port range [lo, hi] (icmp: echo ids).")
    dst_ports: PortRange = Field((10000, 10999),
                                 description="Destination port range [lo, hi] (not icmp).")
    shape: Shape = Field(..., description="Rate over time.")
    fill: Fill | None = Field(None, description="ASSURED pre-fill before the shape.")
    workers: int | None = Field(None, ge=1, le=64,
                                description="Sender processes; default: one per core.")
    max_packets: int = Field(100_000_000, ge=1,
                             description="Hard cap on packets sent, all workers together.")
    max_duration_s: float = Field(600.0, gt=0, le=86400,
                                  description="Hard cap on the surge's wall time.")
    start_s: float = Field(1.0, ge=0, description="Seconds into the drill's observation.")
    teardown: bool = Field(True, description="Reset ASSURED flows (TCP RST) when the surge "
                                             "ends, so they do not hold the table for days.")

    @model_validator(mode="after")
    def consistent(self) -> SurgeLoad:
        if self.mode == "assured" and self.protocol != "tcp":
            raise ValueError("mode 'assured' needs protocol 'tcp' (completed handshakes)")
        if self.protocol == "icmp" and "dst_ports" in self.model_fields_set:
            raise ValueError("icmp has no destination ports: leave 'dst_ports' out")
        if isinstance(self.shape, ReplayShape) and self.shape.pcap is not None \
                and self.mode != "new":
            raise ValueError("a pcap replay sends the recorded flows' first packets: "
                             "use mode 'new'")
        if self.fill is not None and self.protocol == "tcp":
            lo, hi = self.fill.dst_ports
            if lo <= self.dst_ports[1] and self.dst_ports[0] <= hi:
                raise FILL_APART.broken("fill.dst_ports overlaps dst_ports: the fill's "
                                        "flows would collide with the surge's")
        return self
