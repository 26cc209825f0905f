"""Which traffic classes the nftables ruleset needs conntrack for (pure, `nft -j` JSON).

A class (protocol + server port) can skip conntrack (notrack) only if no rule depends
on its state. A rule depends on state when it has a `ct` expression or statement (ct
state, ct status, ct mark, ct helper, ct count, ...), a NAT statement (snat, dnat,
masquerade, redirect), a flow offload, an opaque iptables-nft `xt` match, or sits in a
`type nat` chain. Its reach is read from its matches: L4 protocol (`tcp dport`,
`meta l4proto`, `ip protocol`, `ip6 nexthdr`) and ports (`dport`/`sport`, literal,
set or range). Whatever it cannot read (a named set, a negation, a vmap) widens the
reach, never narrows it: a rule with no protocol or port match reaches every class
("table-wide"). Jumps are not followed: a rule in a jumped-to chain counts as if it
saw all traffic, which again only widens.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

STATEFUL_KEYS = frozenset({"ct", "snat", "dnat", "masquerade", "redirect", "flow", "xt"})
"""Keys of an expression or statement that make a rule depend on conntrack (plus any
key starting with "ct ", the ct statements)."""
L4 = frozenset({"tcp", "udp", "udplite", "sctp", "dccp"})
PROTO_FIELDS = {("ip", "protocol"), ("ip6", "nexthdr")}
MAX_EXPR_DEPTH = 64


@dataclass(frozen=True)
class Reach:
    """One state-dependent rule: which classes it reaches (None: any) and where it is."""

    where: str
    protocols: frozenset[str] | None
    ports: tuple[tuple[int, int], ...] | None
    """Inclusive port ranges matched as dport or sport; None: any port."""

    def covers(self, protocol: str, port: int) -> bool:
        if self.protocols is not None and protocol not in self.protocols:
            return False
        return self.ports is None or any(lo <= port <= hi for lo, hi in self.ports)

    @property
    def table_wide(self) -> bool:
        return self.protocols is None and self.ports is None


@dataclass(frozen=True)
class StatefulRules:
    """The state-dependent rules of a ruleset; `error` says why it could not be read."""

    rules: tuple[Reach, ...] = ()
    error: str | None = None

    @property
    def readable(self) -> bool:
        return self.error is None

    def table_wide(self) -> Reach | None:
        return next((r for r in self.rules if r.table_wide), None)

    def needing(self, protocol: str, port: int) -> Reach | None:
        """The first rule that makes this class need conntrack, if any."""
        return next((r for r in self.rules if r.covers(protocol, port)), None)

    def to_json(self) -> dict[str, Any]:
        wide = self.table_wide()
        return {"readable": self.readable, "error": self.error,
                "stateful_rules": len(self.rules),
                "table_wide_rule": wide.where if wide else None}


def _walk(node: Any, depth: int = 0) -> Iterator[str]:
    """Every mapping key anywhere under node."""
    if depth > MAX_EXPR_DEPTH:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _walk(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value, depth + 1)


def _stateful(expr: list[Any]) -> bool:
    return any(k in STATEFUL_KEYS or k.startswith("ct ") for k in _walk(expr))


def _port_ranges(right: Any) -> list[tuple[int, int]] | None:
    """Ports a match's right side names; None when it cannot be read (named set, ...)."""
    if isinstance(right, bool):
        return None
    if isinstance(right, int):
        return [(right, right)]
    if isinstance(right, dict) and "range" in right:
        lo, hi = (right["range"] + [None, None])[:2]
        return [(lo, hi)] if isinstance(lo, int) and isinstance(hi, int) else None
    if isinstance(right, dict) and "set" in right and isinstance(right["set"], list):
        out: list[tuple[int, int]] = []
        for item in right["set"]:
            got = _port_ranges(item)
            if got is None:
                return None
            out += got
        return out
    return None


def _names(right: Any) -> set[str] | None:
    if isinstance(right, str) and not right.startswith("@"):
        return {right}
    if isinstance(right, dict) and isinstance(right.get("set"), list) and \
            all(isinstance(x, str) for x in right["set"]):
        return set(right["set"])
    return None


def _reach(expr: list[Any], where: str) -> Reach:
    protocols: set[str] | None = None
    ports: list[tuple[int, int]] | None = []
    for item in expr:
        match = item.get("match") if isinstance(item, dict) else None
        if not isinstance(match, dict) or match.get("op", "==") not in ("==", "in"):
            continue
        left, right = match.get("left"), match.get("right")
        payload = left.get("payload") if isinstance(left, dict) else None
        meta = left.get("meta") if isinstance(left, dict) else None
        if isinstance(payload, dict) and payload.get("field") in ("dport", "sport"):
            if payload.get("protocol") in L4:
                protocols = (protocols or set()) | {payload["protocol"]}
            got = _port_ranges(right)
            ports = None if got is None or ports is None else ports + got
        elif (isinstance(meta, dict) and meta.get("key") == "l4proto") or (
                isinstance(payload, dict)
                and (payload.get("protocol"), payload.get("field")) in PROTO_FIELDS):
            names = _names(right)
            if names is not None:
                protocols = (protocols or set()) | names
    return Reach(where, None if protocols is None else frozenset(protocols),
                 None if not ports else tuple(sorted(set(ports))))


def stateful_rules(text: str) -> StatefulRules:
    """`nft -j list ruleset` output -> the rules that need conntrack."""
    try:
        doc = json.loads(text)
        items = doc["nftables"]
        if not isinstance(items, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return StatefulRules(error="nft -j output is not a ruleset")
    nat_chains = set()
    for item in items:
        chain = item.get("chain") if isinstance(item, dict) else None
        if isinstance(chain, dict) and chain.get("type") == "nat":
            nat_chains.add((chain.get("family"), chain.get("table"), chain.get("name")))
    rules = []
    for item in items:
        rule = item.get("rule") if isinstance(item, dict) else None
        if not isinstance(rule, dict) or not isinstance(rule.get("expr"), list):
            continue
        key = (rule.get("family"), rule.get("table"), rule.get("chain"))
        if key in nat_chains or _stateful(rule["expr"]):
            where = f"table {key[0]} {key[1]} chain {key[2]} handle {rule.get('handle')}"
            rules.append(_reach(rule["expr"], where))
    return StatefulRules(tuple(rules))
