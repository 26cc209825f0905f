"""Workers' final reports -> one surge result (pure), the same for CLI, engine and bench."""

from __future__ import annotations

from typing import Any

STOP_PRIORITY = ("SIGINT", "SIGTERM", "stopped", "error", "max_packets", "max_duration",
                 "completed", "not started")


def _phase_totals(name: str, phases: list[dict[str, Any]]) -> dict[str, Any]:
    started = min(p["started"] for p in phases)
    ended = max(p["ended"] for p in phases)
    duration = max(ended - started, 1e-9)
    flows = sum(p["flows"] for p in phases)
    requested = sum(p["requested"] for p in phases)
    return {
        "flows": flows,
        "completed": sum(p["completed"] for p in phases),
        "packets": sum(p["packets"] for p in phases),
        "requested": round(requested),
        "shortfall": max(0, round(requested) - flows),
        "duration_s": round(duration, 4),
        "rate": round(flows / duration, 1),
        "wrapped": any(p["wrapped"] for p in phases),
        "distinct": sum(p["distinct"] for p in phases),
        "teardown": sum(p["teardown"] for p in phases),
        "started": started,
        "ended": ended,
    }


def aggregate(reports: list[dict[str, Any]], *, stopped: str | None = None
              ) -> dict[str, Any]:
    """Sum the workers' `done` reports; the surge's rate is the shape phase's."""
    by_phase: dict[str, list[dict[str, Any]]] = {}
    for r in reports:
        for p in r.get("phases", []):
            by_phase.setdefault(p["name"], []).append(p)
    phases = {name: _phase_totals(name, ps) for name, ps in by_phase.items()}
    reasons = [r.get("stopped", "completed") for r in reports]
    if stopped:
        reasons.append(stopped)
    reason = min(reasons, key=lambda s: STOP_PRIORITY.index(s)
                 if s in STOP_PRIORITY else 0) if reasons else "not started"
    main = phases.get("shape") or next(iter(phases.values()), None)
    starts = [p["started"] for p in phases.values()]
    ends = [p["ended"] for p in phases.values()]
    errors = [r["error"] for r in reports if r.get("error")]
    return {
        "flows": sum(r.get("flows", 0) for r in reports),
        "completed": sum(r.get("completed", 0) for r in reports),
        "packets": sum(r.get("packets", 0) for r in reports),
        "errors": sum(r.get("errors", 0) for r in reports),
        "enobufs": sum(r.get("enobufs", 0) for r in reports),
        "duration_s": round(max(ends) - min(starts), 4) if starts else 0.0,
        "rate": main["rate"] if main else 0.0,
        "requested": main["requested"] if main else 0,
        "shortfall": main["shortfall"] if main else 0,
        "stopped": reason,
        "error": errors[0] if errors else "",
        "phases": {k: {kk: vv for kk, vv in v.items() if kk not in ("started", "ended")}
                   for k, v in phases.items()},
        "workers": len(reports),
    }
