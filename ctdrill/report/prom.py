"""Prometheus text exposition (pure) for node_exporter's textfile collector.

Every metric is a gauge describing the drill's LAST run (the file is replaced each
time), labelled with `drill`, and `host` where the value belongs to one host. No
timestamps: the textfile collector refuses them; `ctdrill_drill_last_run_timestamp_seconds`
says when the run was.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from ctdrill.report.model import REGIMES, Report

Labels = tuple[tuple[str, str], ...]


def escape_label(value: str) -> str:
    """Label value escaping of the exposition format: backslash, quote, newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """HELP text escaping: backslash and newline (quotes stay as they are)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """Integers without a fraction, other floats round-trip exact; NaN and infinities
    spelled as the format wants them."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


@dataclass
class Family:
    name: str
    help: str
    samples: list[tuple[Labels, float]] = field(default_factory=list)

    def add(self, value: float | None, **labels: str) -> None:
        if value is not None:
            self.samples.append((tuple(labels.items()), float(value)))

    def render(self) -> str:
        out = [f"# HELP {self.name} {escape_help(self.help)}", f"# TYPE {self.name} gauge"]
        for labels, value in self.samples:
            body = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels)
            out.append(f"{self.name}{{{body}}} {format_value(value)}")
        return "\n".join(out)


HOST_METRICS: Mapping[str, tuple[str, str, float]] = {
    # key in the key metrics -> (metric name, help, scale)
    "ctr_max": ("ctdrill_drill_ctr_max", "Highest conntrack table ratio (count / max) seen "
                "in the last run.", 1.0),
    "hcp95_max": ("ctdrill_drill_hcp95_max", "Highest modelled p95 hash-chain length seen in "
                  "the last run.", 1.0),
    "nfd_per_s_max": ("ctdrill_drill_nfd_per_second_max", "Highest kernel new-flow drop rate "
                      "(drops per second) in the last run.", 1.0),
    "drops": ("ctdrill_drill_new_flow_drops", "New flows the kernel dropped during the last "
              "run (sum over telemetry windows).", 1.0),
    "table_full_events": ("ctdrill_drill_table_full_events", "Kernel 'table full' log events "
                          "seen in the last run.", 1.0),
}
PROBE_METRICS: Mapping[str, tuple[str, str, float]] = {
    "messages": ("ctdrill_drill_probe_messages", "Orders the probe sent in the last run.", 1.0),
    "timeouts": ("ctdrill_drill_probe_timeouts", "Probe orders that timed out in the last run.",
                 1.0),
    "dwell_ms_p50": ("ctdrill_drill_probe_ack_dwell_p50_seconds", "Median order ack dwell in "
                     "the last run.", 1e-3),
    "dwell_ms_p99": ("ctdrill_drill_probe_ack_dwell_p99_seconds", "p99 order ack dwell in the "
                     "last run.", 1e-3),
    "osd_ms_p99": ("ctdrill_drill_probe_order_state_skew_p99_seconds", "p99 order state skew "
                   "in the last run.", 1e-3),
    "cdt_p95_bps": ("ctdrill_drill_probe_cdt_p95_basis_points", "Conntrack-attributable "
                    "slippage tail (CDT) at p95 in the last run.", 1.0),
    "cdt_p99_bps": ("ctdrill_drill_probe_cdt_p99_basis_points", "Conntrack-attributable "
                    "slippage tail (CDT) at p99 in the last run.", 1.0),
}


def render_prom(r: Report) -> str:
    """The textfile: HELP and TYPE once per family, samples grouped under it."""
    d = r.drill
    fams: dict[str, Family] = {}

    def fam(name: str, help_: str) -> Family:
        return fams.setdefault(name, Family(name, help_))

    fam("ctdrill_drill_info", "The last run of the drill: its run id and status.").add(
        1, drill=d, run_id=r.run_id, status=r.status)
    fam("ctdrill_drill_passed", "1 if the last run passed (expectations met, revert "
        "verified), else 0.").add(1 if r.passed else 0, drill=d)
    fam("ctdrill_drill_exit_code", "Exit code of the last run (-1: it did not finish).").add(
        -1 if r.exit_code is None else r.exit_code, drill=d)
    fam("ctdrill_drill_last_run_timestamp_seconds", "When the last run ended (its start if it "
        "did not end), Unix time.").add(r.ended_at or r.started_at, drill=d)
    fam("ctdrill_drill_duration_seconds", "Wall time of the last run.").add(r.duration_s,
                                                                          drill=d)
    exp = fam("ctdrill_drill_expectations", "Expectations of the last run by result.")
    for result, n in r.counts().items():
        exp.add(n, drill=d, result=result)
    rv = fam("ctdrill_drill_revert_verified", "1 if the host was verified equal to its "
             "snapshot after the last run, else 0.")
    for x in r.reverts:
        rv.add(1 if x.verified else 0, drill=d, host=x.host)
    for host, metrics in r.key_metrics.items():
        table = PROBE_METRICS if host == "probe" else HOST_METRICS
        label = (r.probe_host or "probe") if host == "probe" else host
        for key, (name, help_, scale) in table.items():
            value = metrics.get(key)
            fam(name, help_).add(None if value is None else value * scale, drill=d, host=label)
    trans = fam("ctdrill_drill_regime_transitions", "Regime transitions in the last run.")
    final = fam("ctdrill_drill_final_regime", "Regime at the end of the last run's "
                "observation (1 for the state the host was in).")
    for tl in r.timelines:
        trans.add(sum(t.host == tl.host for t in r.transitions), drill=d, host=tl.host)
        for regime in REGIMES:
            final.add(1 if tl.final_regime == regime else 0, drill=d, host=tl.host,
                      regime=regime)
    return "\n".join(f.render() for f in fams.values() if f.samples) + "\n"
