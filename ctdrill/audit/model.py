"""One host's audit, as reports and `--json` see it (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ctdrill.audit.composition import CompositionResult
from ctdrill.audit.facts import HostFacts, timeouts
from ctdrill.audit.findings import Finding, geometry_numbers
from ctdrill.audit.ruleset import StatefulRules
from ctdrill.audit.specs import GeneratedSpec


@dataclass(frozen=True)
class HostAudit:
    """Everything the audit found on one host; `error` set when it could not be read."""

    host: str
    where: str
    facts: HostFacts | None = None
    composition: CompositionResult | None = None
    rules: StatefulRules | None = None
    findings: tuple[Finding, ...] = ()
    specs: tuple[GeneratedSpec, ...] = ()
    listing_s: float = 0.0
    notes: tuple[str, ...] = ()
    error: str | None = None
    spec_paths: dict[str, str] = field(default_factory=dict)
    """drill name -> the file it was written to (with --out)."""

    def table_json(self) -> dict[str, Any]:
        if self.facts is None or self.composition is None:
            return {}
        c = self.composition
        return {**geometry_numbers(self.facts), "listed": c.total,
                "unparsed_lines": c.unparsed, "listing_s": round(self.listing_s, 3),
                "lines_per_s": round(c.total / self.listing_s) if self.listing_s > 0 else None}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"host": self.host, "where": self.where, "error": self.error,
                               "notes": list(self.notes)}
        if self.facts is None or self.composition is None:
            return out
        specs = [s.to_json() | {"path": self.spec_paths.get(s.drill or "")}
                 for s in self.specs]
        return out | {
            "kernel": {"release": self.facts.release, "owner": self.facts.owner,
                       "memtotal_bytes": self.facts.memtotal_bytes},
            "table": self.table_json(),
            "slab": self.facts.slab.to_json(),
            "timeouts": timeouts(self.facts),
            "composition": self.composition.to_json(),
            "ruleset": self.rules.to_json() if self.rules else None,
            "findings": [f.to_json() | {"rank": i + 1, "spec": s}
                         for i, (f, s) in enumerate(zip(self.findings, specs, strict=True))],
        }
