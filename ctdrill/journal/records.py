"""One pydantic model per journal record kind: what the engine writes, and what
`ctdrill revert`, the report and the analysis read back.

On disk a record is one JSON object: `type` (the kind), `v` (the schema version), `t`
(epoch seconds, stamped by the journal when written) and the kind's fields. Version 1
is every journal written before records were typed: no `v` field, the same fields.
Reading is forward compatible (a newer writer's extra fields are kept, a kind this
version does not know is an `UnknownRecord`); the writer refuses undeclared fields.
Fields that older journals or minimal writers may lack have defaults.
"""

from __future__ import annotations

import math
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ctdrill.journal.payloads import (
    Advice,
    LoadResultJson,
    NftIntent,
    PlanView,
    Pools,
    ProbeResultJson,
    Real,
    RegimeSample,
    SampleEntry,
    SnapshotJson,
    SpecSummaryJson,
    view,
)

SCHEMA_VERSION = 2
"""1: untyped records (no `v`); 2: typed records, each carrying `v`."""


class RecordModel(BaseModel):
    """Base of every record: immutable (subscribers share one object), extra fields
    kept when reading. `t` is None until the journal stamps it, unless the record
    carries its own time (a transition's is its sample's)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    v: int = SCHEMA_VERSION
    t: float | None = None


class StartRecord(RecordModel):
    """The run begins: the spec as validated, the inventory (kept whole, so a revert
    works without the file) and the orchestrator (to tell a live run from a dead one)."""

    kind: Literal["start"] = Field("start", alias="type")
    run_id: str
    drill: str = ""
    spec_path: str = ""
    spec: dict[str, Any] = Field(default_factory=dict)
    inventory: str = ""
    inventory_text: str = ""
    ephemeral_lab: str | None = None
    pools: Pools | None = None
    orchestrator_host: str = ""
    orchestrator_pid: int = -1

    def spec_summary(self) -> SpecSummaryJson:
        """The spec's description and load kind, also from a spec this version cannot
        validate (defaults where it does not say)."""
        return view(SpecSummaryJson, self.spec) or SpecSummaryJson()


class WaitingRecord(RecordModel):
    """Waiting for a local lock (the kernel-wide knobs) before anything is locked."""

    kind: Literal["waiting"] = Field("waiting", alias="type")
    lock: str
    why: str


class LockingRecord(RecordModel):
    """Intent: these hosts are about to be locked (a revert unlocks all of them)."""

    kind: Literal["locking"] = Field("locking", alias="type")
    hosts: list[str]


class LockedRecord(RecordModel):
    kind: Literal["locked"] = Field("locked", alias="type")
    hosts: list[str]


class SnapshotRecord(RecordModel):
    """A host's state before any change: the host module's JSON, which the revert
    verifies against (sent back to the host as is)."""

    kind: Literal["snapshot"] = Field("snapshot", alias="type")
    host: str
    snapshot: dict[str, Any]

    def state(self) -> SnapshotJson:
        """The snapshot's typed view (empty when it does not validate)."""
        return view(SnapshotJson, self.snapshot) or SnapshotJson()


class RevertPlanRecord(RecordModel):
    """What puts a host back (the host module's revert plan, sent as is) and the plan's
    before -> after view (None for a host changed only by steps)."""

    kind: Literal["revert_plan"] = Field("revert_plan", alias="type")
    host: str
    plan: dict[str, Any]
    view: PlanView | None = None


class IntentRecord(RecordModel):
    """Intent: the change about to be applied on a host; base changes carry the
    dead-man TTL, a step's changes its step name, a rollout's its wave index."""

    kind: Literal["intent"] = Field("intent", alias="type")
    host: str
    sysctl: dict[str, str]
    nft: NftIntent | None
    ttl_s: float | None = None
    step: str | None = None
    wave: int | None = None


class BudgetRecord(RecordModel):
    """The time kept in hand to revert before any dead-man timer can fire."""

    kind: Literal["budget"] = Field("budget", alias="type")
    revert_budget_s: float
    ansible_timeout_s: int


class OutcomeRecord(RecordModel):
    """One applied change (a sysctl task reports each key it wrote)."""

    kind: Literal["outcome"] = Field("outcome", alias="type")
    host: str
    task: str
    ok: bool
    changed: bool
    message: str = ""
    name: str | None = None
    before: Any = None
    after: Any = None
    step: str | None = None
    wave: int | None = None


class AppliedCheckRecord(RecordModel):
    """After apply, per host: how its state differs from the plan (empty: exactly it)."""

    kind: Literal["applied_check"] = Field("applied_check", alias="type")
    diffs: dict[str, list[str]]


class RolloutRecord(RecordModel):
    """A rollout's plan, before its first wave: the hosts of each wave in order, the
    pause after each, and the hosts whose telemetry the checks between waves read."""

    kind: Literal["rollout"] = Field("rollout", alias="type")
    waves: list[list[str]]
    pause_s: float
    watched: list[str]
    halt_regime: str | None = None


class WaveStartRecord(RecordModel):
    """A wave begins (`index` from 0): its changes are about to be applied."""

    kind: Literal["wave_start"] = Field("wave_start", alias="type")
    index: int
    hosts: list[str]


class WaveAppliedRecord(RecordModel):
    """A wave's changes are in place on every host of it."""

    kind: Literal["wave_applied"] = Field("wave_applied", alias="type")
    index: int
    hosts: list[str]
    apply_s: float


class WaveCheckRecord(RecordModel):
    """The guards checked after a wave on the hosts changed so far (`hosts`, those with
    telemetry): windows seen and each guarded metric's peak per host, regimes; when a
    guard tripped, which one, on which host, and why (the rollout stops there)."""

    kind: Literal["wave_check"] = Field("wave_check", alias="type")
    index: int
    hosts: list[str]
    passed: bool
    settle_s: float
    windows: dict[str, int] = Field(default_factory=dict)
    peaks: dict[str, dict[str, Real]] = Field(default_factory=dict)
    regimes: dict[str, str] = Field(default_factory=dict)
    guard: str | None = None
    host: str | None = None
    reason: str | None = None


class StepStartRecord(RecordModel):
    kind: Literal["step_start"] = Field("step_start", alias="type")
    step: str
    index: int


class LoadStartRecord(RecordModel):
    """The load started, `offset_s` into the observation."""

    kind: Literal["load_start"] = Field("load_start", alias="type")
    offset_s: float


class ProbeStartRecord(RecordModel):
    kind: Literal["probe_start"] = Field("probe_start", alias="type")
    offset_s: float


class LoadEndRecord(RecordModel):
    """The load's own result (surge/replay/none: each kind's JSON)."""

    kind: Literal["load_end"] = Field("load_end", alias="type")
    result: dict[str, Any]

    def load(self) -> LoadResultJson | None:
        """The result's typed view (None when it does not validate)."""
        return view(LoadResultJson, self.result)


class ProbeEndRecord(RecordModel):
    """The probe's result: totals and per-window quantiles (probe/phase.py)."""

    kind: Literal["probe_end"] = Field("probe_end", alias="type")
    result: dict[str, Any]

    def probe(self) -> ProbeResultJson | None:
        """The result's typed view (None when it does not validate)."""
        return view(ProbeResultJson, self.result)


class SamplesRecord(RecordModel):
    """A batch of one host's telemetry, flushed about once a second."""

    kind: Literal["samples"] = Field("samples", alias="type")
    host: str
    samples: list[SampleEntry]


class TransitionRecord(RecordModel):
    """A regime change with its cause (regime/machine.Transition); `t` is the sample's."""

    kind: Literal["transition"] = Field("transition", alias="type")
    host: str
    from_state: str
    to_state: str
    signal: str
    threshold: Real
    value: Real
    detail: str = ""
    sample: RegimeSample
    advice: Advice


class TargetLostRecord(RecordModel):
    """A host's telemetry stalled or ended (engine/observer.TargetLost)."""

    kind: Literal["target_lost"] = Field("target_lost", alias="type")
    host: str
    why: str
    last_sample_t: float | None
    silent_s: float


class TargetResumedRecord(RecordModel):
    kind: Literal["target_resumed"] = Field("target_resumed", alias="type")
    host: str
    silent_s: float


class MetricsRecord(RecordModel):
    """The run's key metrics, per observed host and for the probe."""

    kind: Literal["metrics"] = Field("metrics", alias="type")
    metrics: dict[str, dict[str, Real | None]]


class VerdictRecord(RecordModel):
    kind: Literal["verdict"] = Field("verdict", alias="type")
    name: str
    passed: bool
    observed: Real | None
    detail: str = ""


class AbortRecord(RecordModel):
    """The run stopped early (guard, signal, failed apply, bug: then a traceback)."""

    kind: Literal["abort"] = Field("abort", alias="type")
    reason: str
    traceback: str | None = None


class RefusedRecord(RecordModel):
    """Refused before any change (nothing to revert)."""

    kind: Literal["refused"] = Field("refused", alias="type")
    reason: str


class RevertingRecord(RecordModel):
    kind: Literal["reverting"] = Field("reverting", alias="type")
    hosts: list[str]


class RevertRecord(RecordModel):
    """One host's revert: verified, what was restored ({key: [found, restored]}) and
    deleted, problems, the dead-man's state; `source` is set by `ctdrill revert`."""

    kind: Literal["revert"] = Field("revert", alias="type")
    host: str
    verified: bool
    restored: dict[str, list[str]] = Field(default_factory=dict)
    deleted: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
    deadman: dict[str, Any] = Field(default_factory=dict)
    source: str | None = None


class UnlockedRecord(RecordModel):
    """Locks released without a revert (nothing was changed there); `unconfirmed`
    names the hosts whose release could not be confirmed."""

    kind: Literal["unlocked"] = Field("unlocked", alias="type")
    hosts: list[str]
    why: str = ""
    unconfirmed: list[str] = Field(default_factory=list)


class EndRecord(RecordModel):
    kind: Literal["end"] = Field("end", alias="type")
    exit_code: int
    reason: str | None = None
    timings: dict[str, float] = Field(default_factory=dict)


class RecoveryStartRecord(RecordModel):
    """`ctdrill revert JOURNAL` begins (appended to the run's journal)."""

    kind: Literal["recovery_start"] = Field("recovery_start", alias="type")
    pid: int
    hosts: list[str]


class RecoveryEndRecord(RecordModel):
    kind: Literal["recovery_end"] = Field("recovery_end", alias="type")
    verified: bool


class ReopenedRecord(RecordModel):
    """Written when a journal whose last line is torn is opened again: the torn line
    was a crashed writer's, so readers skip it instead of calling the file corrupt."""

    kind: Literal["reopened"] = Field("reopened", alias="type")
    torn_bytes: int


class UnknownRecord(RecordModel):
    """A record of a kind this version does not know (a newer writer's), kept whole."""

    kind: str = Field(alias="type")


class InvalidRecord(UnknownRecord):
    """A record of a known kind whose fields do not validate (an edited journal, or a
    bug): the report skips it, a revert that needs it refuses. `problem` says why."""

    problem: str = ""


KnownRecord = (
    StartRecord | WaitingRecord | LockingRecord | LockedRecord | SnapshotRecord
    | RevertPlanRecord | IntentRecord | BudgetRecord | OutcomeRecord | AppliedCheckRecord
    | StepStartRecord | LoadStartRecord | ProbeStartRecord | LoadEndRecord | ProbeEndRecord
    | SamplesRecord | TransitionRecord | TargetLostRecord | TargetResumedRecord
    | MetricsRecord | VerdictRecord | AbortRecord | RefusedRecord | RevertingRecord
    | RevertRecord | UnlockedRecord | EndRecord | RecoveryStartRecord | RecoveryEndRecord
    | ReopenedRecord | RolloutRecord | WaveStartRecord | WaveAppliedRecord | WaveCheckRecord
)
Record = KnownRecord | UnknownRecord
"""Any record read from a journal (`InvalidRecord` is an `UnknownRecord`)."""

RECORD_TYPES: dict[str, type[RecordModel]] = {
    cls.model_fields["kind"].default: cls for cls in (
        StartRecord, WaitingRecord, LockingRecord, LockedRecord, SnapshotRecord,
        RevertPlanRecord, IntentRecord, BudgetRecord, OutcomeRecord, AppliedCheckRecord,
        StepStartRecord, LoadStartRecord, ProbeStartRecord, LoadEndRecord, ProbeEndRecord,
        SamplesRecord, TransitionRecord, TargetLostRecord, TargetResumedRecord,
        MetricsRecord, VerdictRecord, AbortRecord, RefusedRecord, RevertingRecord,
        RevertRecord, UnlockedRecord, EndRecord, RecoveryStartRecord, RecoveryEndRecord,
        ReopenedRecord, RolloutRecord, WaveStartRecord, WaveAppliedRecord, WaveCheckRecord)}
"""Every kind the engine writes -> its model."""

NOT_IN_VERSION_1 = frozenset({"rollout", "wave_start", "wave_applied", "wave_check"})
"""Kinds added after records were typed: no version-1 journal can hold them, so the
version-1 fixtures do not; tests/unit/test_waves_records.py writes and reads them."""


class RecordInvalid(ValueError):
    """A record that does not validate: written, a bug in the writer; read, an edited
    or foreign journal. The message is one line."""


def _one_line(kind: str, exc: ValidationError) -> str:
    errs = exc.errors()
    first = errs[0] if errs else {"loc": (), "msg": str(exc)}
    where = ".".join(str(p) for p in first["loc"]) or "record"
    more = f" (+{len(errs) - 1} more)" if len(errs) > 1 else ""
    return f"'{kind}' record: {where}: {first['msg']}{more}"


_RESERVED = frozenset({"type", "v", "t", "kind", "problem", "_fields_set"})
"""Keys an opaque record cannot keep as extra fields (they name its own)."""


def _opaque(data: dict[str, Any], kind: str, problem: str | None) -> Record:
    """Keep a record whose fields this version cannot trust; a `t` or `v` of the wrong
    type is dropped rather than believed."""
    fields = {k: val for k, val in data.items() if k not in _RESERVED}
    t, v = data.get("t"), data.get("v", 1)
    stamp: dict[str, Any] = {
        "t": float(t) if isinstance(t, int | float) and not isinstance(t, bool)
        and math.isfinite(t) else None,
        "v": v if isinstance(v, int) and not isinstance(v, bool) else 1}
    if problem is None:
        return UnknownRecord.model_construct(None, kind=kind, **stamp, **fields)
    return InvalidRecord.model_construct(None, kind=kind, problem=problem, **stamp, **fields)


def parse_record(data: Any, *, lenient: bool = False) -> Record:
    """One journal object -> its typed record, validated strictly (JSON types, no
    coercion); a record without `v` is version 1. An unknown kind is an UnknownRecord.
    A record that does not validate raises RecordInvalid, or, `lenient`, is an
    InvalidRecord (readers that show what they can, like the report)."""
    kind = data.get("type") if isinstance(data, dict) else None
    if not isinstance(kind, str):
        if not lenient:
            raise RecordInvalid("not a journal record (a JSON object with a string 'type')")
        return _opaque(data if isinstance(data, dict) else {}, str(kind), "not a record")
    cls = RECORD_TYPES.get(kind)
    if cls is None:
        try:
            return UnknownRecord.model_validate({"v": 1, **data}, strict=True)
        except ValidationError:
            return _opaque(data, kind, None)
    try:
        record = cls.model_validate({"v": 1, **data}, strict=True)
    except ValidationError as exc:
        if not lenient:
            raise RecordInvalid(_one_line(kind, exc)) from None
        return _opaque(data, kind, _one_line(kind, exc))
    return cast(KnownRecord, record)


def build_record(kind: str, fields: dict[str, Any]) -> KnownRecord:
    """The writer's record of `kind` from keyword fields (Python values, as the engine
    passes them): an unknown kind or an undeclared field is RecordInvalid (a bug)."""
    cls = RECORD_TYPES.get(kind)
    if cls is None:
        raise RecordInvalid(f"no record kind '{kind}' (ctdrill/journal/records.py)")
    try:
        record = cls.model_validate(fields)
    except ValidationError as exc:
        raise RecordInvalid(_one_line(kind, exc)) from None
    check_declared(record)
    return cast(KnownRecord, record)


def check_declared(record: RecordModel) -> None:
    """The writer writes declared fields only: an extra one is a bug (RecordInvalid)."""
    if record.model_extra and not isinstance(record, UnknownRecord):
        kind = getattr(record, "kind", type(record).__name__)
        raise RecordInvalid(f"'{kind}' record: undeclared field(s) "
                            f"{', '.join(sorted(record.model_extra))}")


def record_json(record: RecordModel) -> dict[str, Any]:
    """The record as written: type, v, t, then the fields the writer set (a field left
    at its default is not written, as before records were typed)."""
    body = record.model_dump(by_alias=True, exclude_unset=True, exclude={"kind", "v", "t"})
    return {"type": getattr(record, "kind", ""), "v": record.v, "t": record.t, **body}
