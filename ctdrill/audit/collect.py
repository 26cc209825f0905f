"""Read one host for the audit, over its connector, changing nothing (effect).

Three reads, each a plain read on the host: the stdlib reader script (facts.READER:
sysctls, slab, release, namespace, memory, kernel modules), `nft -j list ruleset`, and
the table listing; a tool whose kernel module is missing is not run (it would load it).
The listing is streamed: `conntrack -L -o extended` is spawned (once per family, IPv4
then IPv6: conntrack lists IPv4 only by default) under `nice -n 19`, and each line is
parsed and folded into `composition.Composition` as it arrives, then dropped.
Nothing holds the listing: memory is the fold's bounded state (O(cap) keys
per heavy-hitter counter, docs/AUDIT.md), whatever the table size.

At 1M entries ctdrill parses and folds the listing in about 6 s of one core (about
160k lines a second, peak RSS the same as at 100k: docs/BENCH-audit.md);
conntrack blocks on the pipe when ctdrill falls behind, so the host pays one niced
process and the kernel's netlink dump for those seconds, nothing more. The kernel
serves the dump bucket by bucket, so entries created or expired meanwhile may be
missed or seen: the listing is a sample of a moving table, reported beside the
kernel's own count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ctdrill.audit.composition import Composition
from ctdrill.audit.facts import READER, HostFacts, host_facts
from ctdrill.audit.ruleset import StatefulRules, stateful_rules
from ctdrill.audit.topn import DEFAULT_CAP
from ctdrill.connect import Connector
from ctdrill.errors import EnvironmentProblem

LIST_ARGV = ("nice", "-n", "19", "conntrack", "-L", "-o", "extended", "-f")
FAMILIES = ("ipv4", "ipv6")
NFT_ARGV = ("nft", "-j", "list", "ruleset")
READ_TIMEOUT_S = 60.0
END_WAIT_S = 10.0
NOT_FOUND_RC = (126, 127)


@dataclass(frozen=True)
class Listing:
    """How the table listing went."""

    lines: int
    seconds: float
    notes: tuple[str, ...] = ()

    @property
    def lines_per_s(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0


def read_facts(conn: Connector) -> HostFacts:
    done = conn.run([conn.python, "-c", READER], timeout=READ_TIMEOUT_S)
    return host_facts(done.stdout, conn.where)


def read_ruleset(conn: Connector, facts: HostFacts) -> StatefulRules:
    """The ruleset's state-dependent rules; an unreadable ruleset is said, not fatal."""
    if facts.missing("nf_tables"):
        return StatefulRules(error="nf_tables is not loaded and 'nft list ruleset' would "
                                   "load it")
    try:
        done = conn.run(list(NFT_ARGV), timeout=READ_TIMEOUT_S, check=False)
    except EnvironmentProblem as exc:
        return StatefulRules(error=exc.one_line()[:200])
    if not done.ok:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return StatefulRules(error=f"nft -j list ruleset failed ({done.rc}): {tail}")
    return stateful_rules(done.stdout)


def _fold_family(conn: Connector, family: str, comp: Composition) -> tuple[int, str | None]:
    """Stream one family's listing into comp; (lines, a problem or None)."""
    proc = conn.spawn([*LIST_ARGV, family])
    lines = 0
    try:
        for line in proc:
            lines += comp.fold_line(line)
        rc = proc.wait(END_WAIT_S)
    finally:
        proc.stop()
    if rc in NOT_FOUND_RC:
        raise EnvironmentProblem(f"required command 'conntrack' is not installed on "
                                 f"{conn.where}", "install conntrack (conntrack-tools) there")
    if rc != 0:
        return lines, f"conntrack -L -f {family} exited {rc}: {proc.stderr_tail()[:200]}"
    return lines, None


def fold_table(conn: Connector, comp: Composition,
               clock: Callable[[], float] = time.monotonic) -> Listing:
    """Both families folded into comp. IPv4 failing is an error; IPv6 failing (no IPv6
    conntrack on the host) is a note."""
    start = clock()
    total = 0
    notes = []
    for family in FAMILIES:
        lines, problem = _fold_family(conn, family, comp)
        total += lines
        if problem and family == "ipv4":
            raise EnvironmentProblem(f"cannot list the conntrack table on {conn.where}",
                                     problem)
        if problem:
            notes.append(problem)
    return Listing(total, clock() - start, tuple(notes))


@dataclass(frozen=True)
class Collected:
    facts: HostFacts
    rules: StatefulRules
    composition: Composition
    listing: Listing


def collect(conn: Connector, cap: int = DEFAULT_CAP) -> Collected:
    """Everything the audit reads from one host (read-only: a tool that would load a
    kernel module is not run, and the result says so)."""
    facts = read_facts(conn)
    if facts.get("max") is None:
        raise EnvironmentProblem(f"no nf_conntrack on {conn.where} (no "
                                 "net.netfilter.nf_conntrack_max): nothing to audit",
                                 "audit hosts that track connections")
    rules = read_ruleset(conn, facts)
    comp = Composition(cap)
    if facts.missing("nf_conntrack_netlink"):
        listing = Listing(0, 0.0, ("nf_conntrack_netlink is not loaded and 'conntrack -L' "
                                   "would load it: the table's composition was not read",))
    else:
        listing = fold_table(conn, comp)
    return Collected(facts, rules, comp, listing)
