"""The public API: plan, run, revert, report, analyze, validate and audit from Python.

A small surface over a large engine (ansible-runner's `run()` is the model): each
function takes paths and plain options and returns one frozen result with `status`,
`rc` (the ExitCode the CLI exits with), the outcome's data, the `paths` it wrote and
`to_json()` (what `--json` prints). Anything the caller can fix raises a CtdrillError.
The CLI and game days use this module and nothing below it
(tests/unit/test_api_boundary.py). Importing it loads only the standard library: the
engine, Ansible, pandas and the renderers load inside the function that needs them,
so no command pays for another's (tests/unit/test_cli_startup.py).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from ctdrill.errors import ExitCode, InvalidInput

if TYPE_CHECKING:
    from ctdrill.analysis.config import Config as AnalysisConfig
    from ctdrill.analysis.data import OrderLog, Timeline
    from ctdrill.analysis.results import AnalysisResult as Analysis
    from ctdrill.audit.model import HostAudit
    from ctdrill.engine.hostops import HostRevert
    from ctdrill.engine.plan import HostPlan
    from ctdrill.journal import Record
    from ctdrill.lifecycle import DrillOutcome
    from ctdrill.report.model import Report
    from ctdrill.spec.loader import SpecProblem
    from ctdrill.spec.models import DrillSpec

Progress = Callable[[str], None]
Event: TypeAlias = "Record"
"""A typed journal record (ctdrill/journal/records.py): what `on_event` is handed."""
EventHandler = Callable[[Event], None]
"""Called with each record of a run's journal as it is written."""
REPORT_FORMATS = "html,md,junit,prom"
RUN_STATUS = {ExitCode.OK: "passed", ExitCode.EXPECTATIONS_FAILED: "failed",
              ExitCode.ABORTED: "aborted", ExitCode.REVERT_FAILED: "revert_failed"}
"""A finished run's status, named as in its report (ctdrill/report/model.py)."""


def _quiet(_msg: str) -> None:
    """The default progress callback: says nothing."""


def default_runs_dir() -> Path:
    """Where run journals go without --runs-dir: $CTDRILL_RUNS_DIR, else ./runs."""
    from ctdrill.lifecycle import default_runs_dir as lifecycle_default

    return lifecycle_default()


# ---------------------------------------------------------------- plan


@dataclass(frozen=True)
class PlanResult:
    """Per host, the exact before -> after of every change; nothing was changed."""

    drill: str
    pools: Mapping[str, list[str]]
    hosts: Mapping[str, HostPlan]
    refusals: tuple[str, ...]
    paths: Mapping[str, Path] = field(default_factory=dict)
    offline: bool = False
    """Planned without reading the hosts: no before values."""
    unchecked: tuple[str, ...] = ()
    """What only the hosts' snapshots could have checked (offline)."""
    waves: tuple[tuple[str, ...], ...] = ()
    """With a `rollout`: the changed hosts, wave by wave, in the order they are applied."""

    @property
    def status(self) -> str:
        return "refused" if self.refusals else "planned"

    @property
    def rc(self) -> ExitCode:
        return ExitCode.INVALID_INPUT if self.refusals else ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "drill": self.drill, "pools": dict(self.pools),
            "hosts": {h: hp.to_json() for h, hp in self.hosts.items()},
            "refused": list(self.refusals)}
        if self.waves:
            out["waves"] = [list(w) for w in self.waves]
        if self.offline:
            out.update(offline=True, unchecked=list(self.unchecked))
        return out


def plan(spec_path: Path | str, inventory: Path | str | None = None, *,
         offline: bool = False) -> PlanResult:
    """Read-only snapshots of the targets and the plan against them; without an
    inventory, the default lab's. `offline`: contact no host (a fleet plan: pools and
    changes from the spec and inventory alone). A refused plan is returned (status
    "refused")."""
    from ctdrill.engine.preview import UNCHECKED_OFFLINE, preview
    from ctdrill.lab.manager import default_inventory
    from ctdrill.spec.loader import load_spec

    spec = load_spec(Path(spec_path))
    seen = preview(spec, Path(inventory) if inventory else default_inventory(),
                   offline=offline)
    return PlanResult(spec.drill, seen.pools, seen.plans,
                      tuple(r for hp in seen.plans.values() for r in hp.refusals),
                      offline=offline, unchecked=UNCHECKED_OFFLINE if offline else (),
                      waves=seen.waves)


# ---------------------------------------------------------------- run


@dataclass
class EphemeralLab:
    """A lab built for runs given no inventory. Removed afterwards unless `keep` is
    set (a revert was not verified: its hosts stay for `ctdrill revert`)."""

    name: str
    inventory: Path
    keep: bool = False


@contextmanager
def ephemeral_lab(prefix: str = "r", progress: Progress = _quiet) -> Iterator[EphemeralLab]:
    """Build a throw-away lab (root needed), yield it, remove it unless `keep`."""
    from ctdrill.lab import manager
    from ctdrill.system.preflight import require_root

    require_root()
    name = f"{prefix}{os.getpid() % 10_000_000}"
    progress("building an ephemeral lab")
    lab = EphemeralLab(name, manager.up(name, ssh=False).plan.inventory_path)
    try:
        yield lab
    finally:
        if not lab.keep:
            manager.down(name)


@dataclass(frozen=True)
class RunResult:
    """One finished drill: its exit code, journal and everything the run found."""

    drill: str
    outcome: DrillOutcome
    lab: str | None = None
    """The ephemeral lab the run used, if any."""

    @property
    def rc(self) -> ExitCode:
        return self.outcome.exit_code

    @property
    def status(self) -> str:
        return RUN_STATUS.get(self.rc, self.rc.name.lower())

    @property
    def run_id(self) -> str:
        return self.outcome.run_id

    @property
    def journal(self) -> Path:
        return self.outcome.journal

    @property
    def paths(self) -> Mapping[str, Path]:
        return {"journal": self.outcome.journal}

    def to_json(self) -> dict[str, Any]:
        return self.outcome.to_json()


def run(spec_path: Path | str, inventory: Path | str | None = None, *,
        runs_dir: Path | None = None, lab: EphemeralLab | None = None,
        progress: Progress | None = None, on_event: EventHandler | None = None) -> RunResult:
    """Run one drill: lock, snapshot, apply, observe, judge, always revert.

    On `inventory`; else on `lab` (an ephemeral lab shared by several runs); else on
    an ephemeral lab built for this run and removed after it (kept when the revert
    was not verified). `on_event(record)` hears each typed journal record as it is
    written (the live display); `progress(text)` hears what the run is doing. Refusals
    before any host is touched raise a CtdrillError."""
    from ctdrill.spec.loader import load_spec

    say = progress or _quiet
    spec = load_spec(Path(spec_path))
    where = Path(inventory) if inventory is not None else lab.inventory if lab else None
    if where is not None:
        outcome = _drill(spec, where, str(spec_path), lab.name if lab else None, runs_dir,
                         say, on_event)
        return RunResult(spec.drill, outcome, lab.name if lab else None)
    with ephemeral_lab("r", say) as own:
        outcome = _drill(spec, own.inventory, str(spec_path), own.name, runs_dir, say,
                         on_event)
        own.keep = outcome.exit_code == ExitCode.REVERT_FAILED
        return RunResult(spec.drill, outcome, own.name)


def _drill(spec: DrillSpec, inventory: Path, spec_path: str, lab: str | None,
           runs_dir: Path | None, progress: Progress,
           on_event: EventHandler | None) -> DrillOutcome:
    """`run_drill` with `on_event` subscribed to the run's journal from its first record."""
    from ctdrill.lifecycle import run_drill

    progress(f"drill {spec.drill}")
    return run_drill(spec, inventory, runs_dir=runs_dir, spec_path=spec_path,
                     ephemeral_lab=lab, progress=lambda m: progress(f"drill {spec.drill}: {m}"),
                     on_event=on_event)


# ---------------------------------------------------------------- revert


@dataclass(frozen=True)
class RevertResult:
    """A run's targets reverted from its journal alone, verified, disarmed."""

    journal: Path
    hosts: Mapping[str, HostRevert]

    @property
    def verified(self) -> bool:
        return all(r.verified for r in self.hosts.values())

    @property
    def status(self) -> str:
        return "verified" if self.verified else "revert_failed"

    @property
    def rc(self) -> ExitCode:
        return ExitCode.OK if self.verified else ExitCode.REVERT_FAILED

    @property
    def paths(self) -> Mapping[str, Path]:
        return {"journal": self.journal}

    def to_json(self) -> dict[str, Any]:
        return {"journal": str(self.journal), "verified": self.verified,
                "hosts": {h: {"verified": r.verified, "restored": r.restored,
                              "deleted": r.deleted, "problems": r.problems,
                              "deadman": r.deadman} for h, r in self.hosts.items()}}


def revert(journal: Path | str, *, force: bool = False) -> RevertResult:
    """Revert what the journal's run may have changed; safe to run twice. `force`:
    even though the run's orchestrator still lives."""
    from ctdrill.engine.recover import revert_from_journal

    return RevertResult(Path(journal), revert_from_journal(Path(journal), force=force))


# ---------------------------------------------------------------- report


@dataclass(frozen=True)
class ReportResult:
    """A run's report files, written; `status` is the drill's, `rc` is 0 (written)."""

    report: Report
    paths: Mapping[str, Path]
    rc: ExitCode = ExitCode.OK

    @property
    def status(self) -> str:
        return self.report.status

    def to_json(self) -> dict[str, Any]:
        return {"journal": self.report.journal,
                "files": {k: str(v) for k, v in self.paths.items()},
                **self.report.summary_json()}


def report(journal: Path | str, out_dir: Path | str | None = None,
           formats: str | Sequence[str] = REPORT_FORMATS, *,
           textfile_dir: Path | str | None = None) -> ReportResult:
    """Write a run's reports (html, md, junit, prom) to `out_dir`, default next to the
    journal; with `textfile_dir`, also `ctdrill-DRILL.prom` there (node_exporter)."""
    from ctdrill.report import FORMATS, parse_formats
    from ctdrill.report.files import make_report, write_atomic, write_textfile

    names = parse_formats(formats if isinstance(formats, str) else ",".join(formats))
    journal = Path(journal)
    r = make_report(journal)
    target = _out_dir(journal, Path(out_dir) if out_dir is not None else None)
    written: dict[str, Path] = {}
    try:
        for name in names:
            filename, render = FORMATS[name]
            write_atomic(target / filename, render(r))
            written[name] = target / filename
        if textfile_dir is not None:
            written["textfile"] = write_textfile(Path(textfile_dir), r)
    except OSError as exc:
        raise InvalidInput(f"cannot write the report: {exc.strerror or exc}: "
                           f"{exc.filename or target}", "choose a writable --out") from None
    return ReportResult(r, written)


def _out_dir(journal: Path, out: Path | None) -> Path:
    if out is not None:
        if out.exists() and not out.is_dir():
            raise InvalidInput(f"--out {out} is not a directory", "pass a directory")
        return out
    return journal if journal.is_dir() else journal.parent


# ---------------------------------------------------------------- analyze


def finite(obj: Any) -> Any:
    """NaN/inf are not JSON: they become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


@dataclass(frozen=True)
class AnalysisResult:
    """Tail slippage attributed (or not) to conntrack pressure, and the reports written."""

    analysis: Analysis
    paths: Mapping[str, Path]
    rc: ExitCode = ExitCode.OK
    notes: tuple[str, ...] = ()
    """One-line findings about the inputs worth showing (e.g. gaps or counter resets in
    the series read from Prometheus); also in the report's inputs."""

    @property
    def status(self) -> str:
        return "attributable" if self.analysis.attributable else "not_attributable"

    def tables(self) -> list[tuple[str, list[str], list[list[str]]]]:
        """The report's tables as (title, header, rows), for a terminal."""
        from ctdrill.analysis.report import tables

        return tables(self.analysis)

    def to_json(self) -> dict[str, Any]:
        return dict(finite(self.analysis.to_json()))


@dataclass(frozen=True)
class AnalysisOptions:
    """The analysis knobs (docs/ANALYSIS.md); checked by `analyze` before any I/O."""

    ctr_high: float = 0.9
    ctr_low: float = 0.7
    method: str = "nn"
    k: int = 3
    caliper: float = 1.0
    bins: int = 5
    tod_bins: int = 6
    reps: int = 200
    seed: int = 7
    block_s: float = 900.0
    qr_sample: int = 100_000
    canary: str | None = None
    change_at: str | None = None
    """When the canary change landed: ISO 8601 or epoch seconds."""
    episode_window_s: float = 60.0
    """Cancel/replace: the windows before and after a pressure episode."""
    engine: str = "auto"
    """Where the timeline files are held: auto, duckdb (columnar, out of core) or pandas
    (in memory); the same numbers (docs/ANALYSIS.md "Engines")."""

    def check(self) -> None:
        if self.engine not in ("auto", "duckdb", "pandas"):
            raise InvalidInput(f"engine {self.engine!r} is not an engine",
                               "use auto, duckdb or pandas")
        if (self.canary is None) != (self.change_at is None):
            raise InvalidInput("--canary and --change-at go together",
                               "pass both (canary validation) or neither")
        if self.method not in ("nn", "cem"):
            raise InvalidInput(f"--match {self.method!r} is not a method", "use nn or cem")
        if self.reps < 20 or self.k < 1 or self.bins < 1 or self.tod_bins < 1 \
                or self.block_s <= 0 or self.caliper <= 0 or self.qr_sample < 100 \
                or not 0 < self.episode_window_s < math.inf:
            raise InvalidInput("an option is out of range",
                               "--reps >= 20, --k/--bins/--tod-bins >= 1, --block, "
                               "--caliper and --episode-window > 0, --qr-sample >= 100")


@dataclass(frozen=True)
class PrometheusOptions:
    """Where `analyze` reads the pressure timeline instead of files (docs/ANALYSIS.md
    "Prometheus"): the server's base URL, PromQL label matchers narrowing the series
    (`instance=~"gw-.*"`), the grid step (None: half the shortest scrape interval),
    the metric family (auto, node, ctdrill) and the label naming the host (None: `host`,
    else `instance` without its port)."""

    url: str
    match: str | None = None
    step_s: float | None = None
    metrics: str = "auto"
    host_label: str | None = None
    timeout_s: float = 30.0

    def check(self) -> None:
        if self.step_s is not None and not 0 < self.step_s < math.inf:
            raise InvalidInput("--prometheus-step must be > 0 seconds",
                               "pass the scrape interval, e.g. 15")
        if not 0 < self.timeout_s < math.inf:
            raise InvalidInput("--prometheus-timeout must be > 0 seconds", "e.g. 30")
        if self.metrics not in ("auto", "node", "ctdrill"):
            raise InvalidInput(f"--prometheus-metrics {self.metrics!r} is not a family",
                               "use auto, node (node_exporter) or ctdrill (ctdrill watch)")


def analyze(log: Path | str, timelines: Sequence[Path | str], *, out_dir: Path | str = "analysis",
            options: AnalysisOptions | None = None,
            on_skipped: Callable[[Path, str], None] | None = None,
            features: Path | str | None = None,
            prometheus: PrometheusOptions | None = None) -> AnalysisResult:
    """Attribute tail slippage in an execution log to conntrack pressure; writes
    analysis.json, .md and .html to `out_dir`, and with `features` the pressure each
    order lived through (Parquet by a .parquet/.pq suffix, else CSV). A timeline may be
    a glob (`runs/*/journal.jsonl`); `on_skipped(path, why)` hears of timeline files
    left out (a journal without samples among several). With `prometheus` (and no
    timeline files) the timeline is read from that server over the log's span."""
    from dataclasses import asdict, replace

    from ctdrill.analysis.engine import open_timeline
    from ctdrill.analysis.export import features_format
    from ctdrill.analysis.features import check_keys
    from ctdrill.analysis.loaders import load_orders
    from ctdrill.analysis.pipeline import Config
    from ctdrill.analysis.pipeline import analyze as run_analysis
    from ctdrill.analysis.pressure import InMemory

    opts = options or AnalysisOptions()
    opts.check()
    if (prometheus is None) == (not timelines):
        raise InvalidInput("pass --timeline files or --prometheus URL" if not timelines
                           else "--timeline and --prometheus do not go together",
                           "the pressure timeline comes from files or from one server")
    if prometheus is not None:
        prometheus.check()
    knobs = {k: v for k, v in asdict(opts).items() if k not in ("change_at", "engine")}
    cfg = Config(**knobs, change_at=None if opts.change_at is None
                 else _epoch_seconds(opts.change_at))
    if features is not None:
        features_format(Path(features))  # refuse Parquet without pyarrow before the work
    orders = load_orders(Path(log))
    if features is not None:
        check_keys(orders)
    notes: tuple[str, ...] = ()
    if prometheus is None:
        with open_timeline(timeline_files(timelines), engine=opts.engine,
                           in_memory=features is not None, skipped=on_skipped,
                           episode_window_s=cfg.episode_window_s) as held:
            analysis = run_analysis(orders, held, cfg)
        timeline = held.timeline if isinstance(held, InMemory) else None
    else:
        timeline, found = _prometheus_timeline(orders, prometheus, cfg.episode_window_s)
        analysis = run_analysis(orders, timeline, cfg)
        analysis = replace(analysis, inputs={**analysis.inputs, "prometheus": found})
        notes = tuple(found["notes"])
    extra: dict[str, Path] = {}
    if features is not None and timeline is not None:
        analysis = replace(analysis, features=_write_pressure_features(
            orders, timeline, cfg, Path(features)))
        extra["features"] = Path(features)
    return AnalysisResult(analysis, {**write_analysis_reports(analysis, Path(out_dir)),
                                     **extra}, notes=notes)


def _prometheus_timeline(orders: OrderLog, opts: PrometheusOptions,
                         margin_s: float) -> tuple[Timeline, dict[str, Any]]:
    """The timeline over the log's span from Prometheus, and what reading it found; a
    log whose hosts are all missing there is refused with the mapping rule."""
    from ctdrill.analysis.prometheus import PromSource, load_prometheus

    src = PromSource(opts.url, opts.match, opts.step_s, opts.metrics, opts.host_label,
                     opts.timeout_s)
    read = load_prometheus(src, float(orders.start.min()), float(orders.end.max()), margin_s)
    if not set(orders.hosts) & set(read.timeline.hosts):
        raise InvalidInput(
            f"no host of {orders.source} appears at {read.report['url']} (log: "
            f"{', '.join(orders.hosts[:5])}; Prometheus: {', '.join(read.timeline.hosts[:5])})",
            "hosts are named by the series' `host` label, else `instance` without its "
            "port; name another label with --prometheus-host-label")
    return read.timeline, read.report


def _write_pressure_features(orders: OrderLog, timeline: Timeline, cfg: AnalysisConfig,
                             path: Path) -> dict[str, Any]:
    """The per-order pressure features written to `path`; returns what the report says
    of them (path, format, rows, columns, where the regimes come from)."""
    from ctdrill.analysis.export import write_features
    from ctdrill.analysis.features import REGIME_SOURCE, pressure_features

    frame = pressure_features(orders, timeline, cfg)
    fmt = write_features(frame, path)
    return {"path": str(path), "format": fmt, "rows": len(frame),
            "columns": [str(c) for c in frame.columns], "regimes": REGIME_SOURCE}


def timeline_files(values: Sequence[Path | str]) -> list[Path]:
    """The -t values with a quoted glob expanded in sorted order (`-t 'runs/*/journal.jsonl'`):
    unquoted, the shell would spread the matches as extra positional arguments."""
    files: list[Path] = []
    for value in map(Path, values):
        text = str(value)
        if value.exists() or not any(c in text for c in "*?["):
            files.append(value)
            continue
        matches = sorted(glob(text))
        if not matches:
            raise InvalidInput(f"--timeline {text} matches no file",
                               "check the pattern (quoted, ctdrill expands it)")
        files.extend(Path(m) for m in matches)
    return files


def _epoch_seconds(text: str) -> float:
    import pandas as pd

    from ctdrill.analysis.timeparse import to_epoch_seconds

    return float(to_epoch_seconds(pd.Series([text]), "--change-at", "value")[0])


def write_analysis_reports(analysis: Analysis, out: Path) -> dict[str, Path]:
    """analysis.json, analysis.md and analysis.html in `out`."""
    import json

    from ctdrill.analysis.report import render_html, render_markdown

    paths = {"json": out / "analysis.json", "markdown": out / "analysis.md",
             "html": out / "analysis.html"}
    try:
        out.mkdir(parents=True, exist_ok=True)
        paths["json"].write_text(json.dumps(finite(analysis.to_json()), indent=2) + "\n")
        paths["markdown"].write_text(render_markdown(analysis))
        paths["html"].write_text(render_html(analysis))
    except OSError as exc:
        raise InvalidInput(f"cannot write reports to {out}: {exc.strerror}",
                           "pass a writable directory with --out") from exc
    return paths


# ---------------------------------------------------------------- audit


@dataclass(frozen=True)
class AuditResult:
    """Each host's conntrack hygiene, read without changing anything: findings ranked by
    the headroom they would win, each with a drill spec that proves its fix."""

    hosts: tuple[HostAudit, ...]
    paths: Mapping[str, Path] = field(default_factory=dict)

    @property
    def unreachable(self) -> tuple[str, ...]:
        """Hosts that could not be read (their error is in `hosts`)."""
        return tuple(h.host for h in self.hosts if h.error)

    @property
    def status(self) -> str:
        if self.unreachable:
            return "incomplete"
        return "findings" if any(h.findings for h in self.hosts) else "clean"

    @property
    def rc(self) -> ExitCode:
        return ExitCode.ENVIRONMENT if self.unreachable else ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "hosts": [h.to_json() for h in self.hosts],
                "files": {k: str(v) for k, v in self.paths.items()}}


def audit(inventory: Path | str | None = None, hosts: str | None = None, *,
          out_dir: Path | str | None = None, progress: Progress | None = None) -> AuditResult:
    """Audit each host's conntrack table read-only over its connector (default hosts: the
    `gateways` group, else all; default inventory: the default lab's). With `out_dir`,
    writes audit.json, audit.md and the generated drill specs there. A host that cannot
    be read is reported in the result (status "incomplete", rc 5), the others still are."""
    from ctdrill.audit.run import audit_hosts, check_out, write_outputs
    from ctdrill.lab.manager import default_inventory

    if out_dir is not None:
        check_out(Path(out_dir))
    where = Path(inventory) if inventory is not None else default_inventory()
    audits = audit_hosts(where, hosts, progress=progress or _quiet)
    if out_dir is None:
        return AuditResult(audits)
    written, paths = write_outputs(audits, Path(out_dir))
    return AuditResult(written, paths)


# ---------------------------------------------------------------- validate


@dataclass(frozen=True)
class CheckedFile:
    """One file's verdict: its kind (the YAML key that names it) and name, or problems."""

    path: Path
    kind: str
    name: str | None
    problems: tuple[SpecProblem, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"file": str(self.path), "valid": not self.problems, self.kind: self.name,
                "problems": [p.to_json() for p in self.problems]}


@dataclass(frozen=True)
class ValidateResult:
    """Drill specs and suites checked without touching any host."""

    files: tuple[CheckedFile, ...]
    paths: Mapping[str, Path] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "invalid" if any(f.problems for f in self.files) else "valid"

    @property
    def rc(self) -> ExitCode:
        return ExitCode.INVALID_INPUT if self.status == "invalid" else ExitCode.OK

    def raise_first(self) -> None:
        """Raise the first invalid file's problems as one SpecError (exit 2)."""
        from ctdrill.spec.loader import SpecError

        for f in self.files:
            if f.problems:
                raise SpecError(list(f.problems), f.kind)

    def to_json(self) -> dict[str, Any]:
        return {"files": [f.to_json() for f in self.files]}


def validate(paths: Sequence[Path | str], *, drills_only: bool = False) -> ValidateResult:
    """Check each file as a drill spec or (top-level key `gameday`) a game-day suite;
    with `drills_only`, every file must be a drill spec."""
    from ctdrill.spec.loader import SpecError, load_document, load_spec
    from ctdrill.spec.models import DrillSpec

    checked = []
    for p in map(Path, paths):
        try:
            doc = load_spec(p) if drills_only else load_document(p)
        except SpecError as exc:
            checked.append(CheckedFile(p, exc.kind, None, tuple(exc.problems)))
            continue
        if isinstance(doc, DrillSpec):
            checked.append(CheckedFile(p, "drill", doc.drill))
        else:
            checked.append(CheckedFile(p, "gameday", doc.gameday))
    return ValidateResult(tuple(checked))


def schema(*, suite: bool = False) -> dict[str, Any]:
    """The JSON Schema of drill specs (or of game-day suites), for editors."""
    from ctdrill.spec.schema import drill_schema, suite_schema

    return suite_schema() if suite else drill_schema()


def is_lab(inventory: Path | str | None) -> bool:
    """Whether every host of the inventory is a lab host (a namespace, or the local
    kernel owner); no inventory means an ephemeral lab."""
    if inventory is None:
        return True
    from ctdrill.targets.inventory import Inventory

    return all(t.netns is not None or (t.kernel_owner and t.transport == "local")
               for t in Inventory(Path(inventory)).select("all"))
