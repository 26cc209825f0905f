"""The audit of an inventory's hosts: pick them, read each, find, generate, write (shell).

Hosts: the pattern given, else the `gateways` group, else every host of the
inventory. Each host is read through its own connector (collect.py, read-only); a
host that cannot be read is reported with its error and the others still are.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from ctdrill.audit.collect import collect
from ctdrill.audit.facts import timeouts
from ctdrill.audit.findings import findings
from ctdrill.audit.model import HostAudit
from ctdrill.audit.specs import HostContext, generate
from ctdrill.audit.topn import DEFAULT_CAP
from ctdrill.connect import connector_for
from ctdrill.errors import EnvironmentProblem, InvalidInput
from ctdrill.targets.inventory import Inventory
from ctdrill.targets.target import Target

DEFAULT_GROUP = "gateways"


def select_hosts(inv: Inventory, pattern: str | None) -> list[Target]:
    """The pattern's hosts; without one, `gateways`, or every host if there is none."""
    if pattern:
        return inv.select(pattern)
    every = inv.select("all")
    return [t for t in every if DEFAULT_GROUP in t.groups] or every


def _notes(a: HostAudit) -> tuple[str, ...]:
    notes = list(a.notes)
    if a.rules is not None and not a.rules.readable:
        notes.append(f"ruleset not read ({a.rules.error}): notrack candidates not assessed")
    elif a.rules is not None and (wide := a.rules.table_wide()) is not None:
        notes.append(f"every traffic class needs conntrack: a state-dependent rule "
                     f"matches all traffic ({wide.where}); no notrack candidates")
    if a.facts is not None and a.facts.slab.object_size is None:
        notes.append(f"conntrack slab not read ({a.facts.slab.error}): memory figures "
                     "are missing")
    if a.composition is not None and a.composition.top_error:
        notes.append(f"heavy-hitter counts may be low by up to "
                     f"{a.composition.top_error} entries (bounded counting)")
    return tuple(notes)


def audit_target(target: Target, cap: int = DEFAULT_CAP,
                 used: set[str] | None = None) -> HostAudit:
    """Read one host and make its findings and specs; an unreachable host is an error
    in the result, not an exception. `used`: drill names other hosts took."""
    conn = None
    try:
        conn = connector_for(target)
        got = collect(conn, cap)
    except EnvironmentProblem as exc:
        return HostAudit(target.name, target.describe(), error=exc.one_line())
    finally:
        if conn is not None:
            conn.close()
    comp = got.composition.result()
    found = findings(got.facts, comp, got.rules)
    ctx = HostContext(target.name, got.facts.owner, timeouts(got.facts), comp.total)
    audit = HostAudit(target.name, conn.where, got.facts, comp, got.rules, found,
                      generate(found, ctx, used), got.listing.seconds,
                      (*got.facts.notes, *got.listing.notes))
    return replace(audit, notes=_notes(audit))


def audit_hosts(inventory: Path, pattern: str | None, cap: int = DEFAULT_CAP,
                progress: Callable[[str], None] = lambda _m: None) -> tuple[HostAudit, ...]:
    out = []
    used: set[str] = set()
    for target in select_hosts(Inventory(inventory), pattern):
        progress(f"auditing {target.name}")
        out.append(audit_target(target, cap, used))
    return tuple(out)


def check_out(out: Path) -> None:
    """Refuse an --out that cannot be a directory before any host is read."""
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"--out {out} is not a directory", "pass a directory")


def write_outputs(audits: Sequence[HostAudit], out: Path) -> tuple[tuple[HostAudit, ...],
                                                                    dict[str, Path]]:
    """audit.json, audit.md and one YAML per generated spec in `out`."""
    from ctdrill.audit.markdown import render_markdown
    from ctdrill.report.files import write_atomic

    check_out(out)
    paths: dict[str, Path] = {}
    done = []
    try:
        for a in audits:
            written = {}
            for s in a.specs:
                if s.filename and s.text and s.drill:
                    path = out / s.filename
                    write_atomic(path, s.text)
                    written[s.drill] = str(path)
                    paths[f"spec:{s.drill}"] = path
            done.append(replace(a, spec_paths=written))
        paths["json"], paths["markdown"] = out / "audit.json", out / "audit.md"
        write_atomic(paths["json"], json.dumps({"hosts": [a.to_json() for a in done]},
                                               indent=2) + "\n")
        write_atomic(paths["markdown"], render_markdown(done))
    except OSError as exc:
        raise InvalidInput(f"cannot write the audit to {out}: {exc.strerror or exc}",
                           "pass a writable directory with --out") from None
    return tuple(done), paths
