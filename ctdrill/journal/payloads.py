"""The typed values inside journal records (a window's metrics, a regime transition's
sample and advice, a plan's view, ...), each the JSON shape of the engine object that
writes it (`WindowMetrics.to_json`, `RegimeInput.to_json`, `HostPlan.to_json`, ...).

They tolerate unknown fields (a newer writer may add some) and keep them, so a value
read from a journal and written again is unchanged. Data that comes from a host and
goes back to it (snapshots, the dead-man's state, a load's result) is not modelled
here: it stays the host's JSON (`dict[str, Any]` in the records).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

Real = int | float
"""A number as the engine wrote it: an int stays an int, so a journal read and written
again is byte-for-byte the same."""


class Payload(BaseModel):
    """Base of the nested values: immutable, unknown fields kept."""

    model_config = ConfigDict(extra="allow", frozen=True)


P = TypeVar("P", bound=Payload)


class Pools(Payload):
    """The drill's targets split into canary and control (engine/plan.Pools)."""

    targets: list[str]
    canary: list[str]
    control: list[str]


class WindowJson(Payload):
    """One telemetry window's metrics (metrics/conntrack.WindowMetrics). A window without
    t, ctr or nfd_per_s is not one; the other fields default for trimmed journals."""

    t: float
    ctr: float
    nfd_per_s: float
    window_s: float = 0.0
    count: int = 0
    max: int = 0
    buckets: int = 0
    hcp95: int = 0
    chain_too_long_per_s: float = 0.0
    nfd_fraction: float = 0.0
    new_flows_per_s: float = 0.0
    early_drop_per_s: float = 0.0
    insert_failed_per_s: float = 0.0
    drops: int = 0
    table_full_events: int = 0


class SlabJson(Payload):
    """The kernel's conntrack slab cache at a sample (telemetry/protocol.SlabInfo.to_json):
    /proc/slabinfo's columns; `bytes` = num_objs x objsize, as the writer computed it."""

    active_objs: int
    num_objs: int
    objsize: int
    objperslab: int
    pagesperslab: int
    bytes: int | None = None


class SampleJson(Payload):
    """The agent's sample as decoded (telemetry/protocol.Sample.to_json), kept whole;
    typed only where a reader needs it. Samples written before the slab was sampled,
    or by an agent that could not read it (not root), have none."""

    t: Real | None = None
    slab: SlabJson | None = None


class SampleEntry(Payload):
    """One telemetry sample of a `samples` batch: the agent's sample as decoded
    (telemetry/protocol.Sample) and the window ending at it (none for a stream's first)."""

    sample: SampleJson
    metrics: WindowJson | None = None


class RegimeSample(Payload):
    """The inputs the regime machine read at a transition (regime/machine.RegimeInput)."""

    t: float
    ctr: float
    hcp95: int
    nfd_per_s: float
    osd_ms: float
    cdt_breach: bool


class Advice(Payload):
    """The control advice a regime carries (regime/states.ControlAdvice)."""

    regime: str
    summary: str
    pacing: bool
    retry: str
    burst_damping: bool
    preopen_flows: bool
    path_class: str
    freeze_nonessential_new_flows: bool
    actions: list[str]


class SysctlView(Payload):
    key: str
    before: str | None
    after: str
    changes: bool


class PlanView(Payload):
    """A host's plan as the operator reads it (engine/plan.HostPlan.to_json)."""

    host: str
    kernel_owner: bool
    sysctl: list[SysctlView]
    nft_table: str | None
    nft_rules: str | None
    refusals: list[str]


class RevertPlanBody(Payload):
    """What puts a host back (engine/plan.merged_revert_plan): sysctls to their original
    values, ctdrill's tables [family, name] deleted. `ctdrill revert` sends it as is."""

    sysctl: dict[str, str]
    nft_tables: list[list[str]]


class NftIntent(Payload):
    """The ruleset a change installs (engine/plan.HostPlan.apply_vars)."""

    family: str
    table: str
    body: str


# ------------------------------------------------------------ views of opaque results
# A load's or the probe's result, and the spec, are written as their producers' JSON
# (kept whole: other tools read them too). These typed views are what readers use.

class Quantiles(Payload):
    p50: Real | None = None
    p95: Real | None = None
    p99: Real | None = None
    max: Real | None = None


class ProbeWindowJson(Payload):
    """One probe window (probe/metrics.ProbeWindow.to_json)."""

    start: float
    width: float = 1.0
    messages: int = 0
    timeouts: int = 0
    dwell_ms: Quantiles = Quantiles()
    osd_ms: Quantiles = Quantiles()
    is_bps: Quantiles = Quantiles()


class ProbeResultJson(Payload):
    """The probe's result (probe/phase.ProbePhase.stop): totals and its windows."""

    windows: list[ProbeWindowJson] = []


class LoadPhaseJson(Payload):
    """One surge phase's totals (surge/result.aggregate)."""

    duration_s: Real = 0.0
    rate: Real = 0.0
    requested: Real | None = None
    flows: int = 0


class LoadResultJson(Payload):
    """A load's result; a surge's has its phases (fill, shape)."""

    phases: dict[str, LoadPhaseJson] = {}


class SnapshotJson(Payload):
    """What a reader needs of a host's snapshot (the host module's JSON)."""

    kernel_owner: bool = False
    sysctl: dict[str, str | None] = {}


class ShapeJson(Payload):
    kind: str = ""


class LoadSpecJson(Payload):
    kind: str = "none"
    shape: ShapeJson | None = None


class SpecSummaryJson(Payload):
    """What a reader needs of a spec it may not be able to validate (a newer one)."""

    description: str | None = None
    load: LoadSpecJson | None = None


def view(model: type[P], data: Any) -> P | None:
    """`data` as `model`, or None when it does not validate (an edited or newer value)."""
    try:
        return model.model_validate(data, strict=True)
    except ValidationError:
        return None
