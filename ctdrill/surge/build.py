"""Plan -> worker configs: links, scapy templates, per-worker flow spaces and schedules.

Each worker gets a disjoint slice of every flow space (cut along its largest
dimension) and the schedule scaled to its share, so the workers' sum is the shape
and no two workers ever send the same 5-tuple.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctdrill.surge import pcap as pcap_mod
from ctdrill.surge import suppress
from ctdrill.surge.flowspace import FlowSpace
from ctdrill.surge.netinfo import link_towards
from ctdrill.surge.plan import SurgePlan
from ctdrill.surge.shapes import RateSchedule, Schedule, fill_schedule, shape_schedule
from ctdrill.surge.spec import ReplayShape
from ctdrill.surge.templates import Link, build_template

ASSURED_STAGES = (("client", "syn"), ("venue", "synack"), ("client", "ack"))
NEW_STAGE = {"udp": "udp", "tcp": "syn", "icmp": "icmp"}


@dataclass
class Built:
    configs: list[dict[str, Any]]
    silences: list[suppress.Silence]
    summary: dict[str, Any]


def _stages(assured: bool, protocol: str) -> tuple[tuple[str, str], ...]:
    return ASSURED_STAGES if assured else (("client", NEW_STAGE[protocol]),)


def _templates(stages: tuple[tuple[str, str], ...], links: dict[str, Link], plan: SurgePlan,
               space: FlowSpace) -> list[dict[str, Any]]:
    a0, p0, d0 = space.a.start, space.p.start, space.d.start
    return [{"socket": sock, "template": build_template(stage, links[sock], a0,
                                                        str(plan.destination), p0, d0).to_json()}
            for sock, stage in stages]


def _phase(name: str, plan: SurgePlan, links: dict[str, Link], space: FlowSpace,
           schedule: Schedule, assured: bool, limit: int | None, protocol: str,
           workers: int) -> list[dict[str, Any]]:
    """One phase's config for each worker."""
    parts = space.split(workers)
    out = []
    for w in range(workers):
        part = parts[w]  # _usable_workers made sure every worker gets a part
        share = 1.0 / workers
        sched = schedule.scaled(share) if isinstance(schedule, RateSchedule) else schedule
        ph: dict[str, Any] = {
            "name": name,
            "space": part.to_json(),
            "schedule": sched.to_json(),
            "stages": _templates(_stages(assured, protocol), links, plan, part),
            "limit": None if limit is None else limit // workers + (1 if w < limit % workers
                                                                    else 0),
        }
        if assured and plan.spec.teardown:
            rst = build_template("rst", links["client"], part.a.start, str(plan.destination),
                                 part.p.start, part.d.start)
            ph["teardown"] = {"socket": "client", "template": rst.to_json()}
        out.append(ph)
    return out


def _usable_workers(plan: SurgePlan) -> int:
    """No more workers than the smallest space can be cut into."""
    n = plan.workers
    for space in (plan.space(), plan.fill_space()):
        if space is not None:
            n = min(n, len(space.split(n)))
    return max(1, n)


def build(plan: SurgePlan, workdir: Path) -> Built:
    spec = plan.spec
    links = {"client": link_towards(plan.source_netns, str(plan.destination))}
    if plan.needs_venue:
        links["venue"] = link_towards(plan.destination_netns, str(plan.src_start))
    workers = _usable_workers(plan)
    per_worker: list[list[dict[str, Any]]] = [[] for _ in range(workers)]
    fill_space = plan.fill_space()
    if spec.fill is not None and fill_space is not None:
        sched = fill_schedule(spec.fill.flows, spec.fill.rate, spec.max_duration_s)
        for w, ph in enumerate(_phase("fill", plan, links, fill_space, sched, True,
                                      spec.fill.flows, "tcp", workers)):
            per_worker[w].append(ph)
    pcap_flows = 0
    if isinstance(spec.shape, ReplayShape) and plan.pcap is not None:
        flows = pcap_mod.rewrite(pcap_mod.new_flows(pcap_mod.read_packets(plan.pcap)),
                                 int(plan.src_start), spec.src_addrs, spec.shape.scale)
        pcap_flows = len(flows)
        path = workdir / "flows.bin"
        pcap_mod.write_flows(path, flows)
        stages = sorted({f.proto for f in flows})
        space = plan.space()
        protocols = {st: build_template(st, links["client"], space.a.start,
                                        str(plan.destination), 1024, 1024).to_json()
                     for st in stages}
        for w in range(workers):
            per_worker[w].append({"name": "shape", "explicit": str(path),
                                  "protocols": protocols,
                                  "stages": [{"socket": "client"}], "limit": None})
    else:
        schedule = shape_schedule(spec.shape, plan.profile)
        for w, ph in enumerate(_phase("shape", plan, links, plan.space(), schedule,
                                      spec.mode == "assured", None, spec.protocol, workers)):
            per_worker[w].append(ph)
    cpus = sorted(os.sched_getaffinity(0))
    sockets: dict[str, Any] = {"client": {"netns": plan.source_netns,
                                          "ifname": links["client"].ifname}}
    if "venue" in links:
        sockets["venue"] = {"netns": plan.destination_netns, "ifname": links["venue"].ifname}
    budget = spec.max_packets
    configs = [{"worker": w, "workers": workers, "cpu": cpus[w % len(cpus)],
                "sockets": sockets, "phases": per_worker[w],
                "max_packets": budget // workers + (1 if w < budget % workers else 0),
                "max_duration_s": spec.max_duration_s, "progress_s": 0.1}
               for w in range(workers)]
    summary = {"workers": workers, "links": {k: vars(v) for k, v in links.items()},
               "pcap_flows": pcap_flows}
    return Built(configs, silences(plan, links, pcap_flows_stages(workdir)), summary)


def pcap_flows_stages(workdir: Path) -> dict[str, tuple[int, int]]:
    """For a pcap replay: each stage's destination-port range (for the silence rules)."""
    path = workdir / "flows.bin"
    if not path.exists():
        return {}
    ranges: dict[str, tuple[int, int]] = {}
    for _t, _a, _p, d, code in pcap_mod.FLOW_RECORD.iter_unpack(path.read_bytes()):
        stage = {v: k for k, v in pcap_mod.PROTO_CODES.items()}[code]
        lo, hi = ranges.get(stage, (d, d))
        ranges[stage] = (min(lo, d), max(hi, d))
    return ranges


def silences(plan: SurgePlan, links: dict[str, Link],
             pcap_ranges: dict[str, tuple[int, int]]) -> list[suppress.Silence]:
    """Drop rules: the venue drops the surge's flows, the client the forged replies."""
    spec = plan.spec
    src = suppress.addr_match("saddr", str(plan.src_start), str(plan.src_last))
    dst = f"ip daddr {plan.destination}"
    venue_rules: list[str] = []
    if pcap_ranges:
        for stage, (lo, hi) in sorted(pcap_ranges.items()):
            if stage == "icmp":
                venue_rules.append(f"{src} {dst} icmp type echo-request")
            else:
                proto = "tcp" if stage == "syn" else "udp"
                venue_rules.append(f"{src} {dst} {suppress.port_match(proto, 'dport', lo, hi)}")
    elif spec.protocol == "icmp":
        venue_rules.append(f"{src} {dst} icmp type echo-request")
    else:
        venue_rules.append(f"{src} {dst} "
                           f"{suppress.port_match(spec.protocol, 'dport', *spec.dst_ports)}")
    client_rules: list[str] = []
    assured_ports = []
    if spec.mode == "assured":
        assured_ports.append(spec.dst_ports)
    if spec.fill is not None:
        venue_rules.append(f"{src} {dst} "
                           f"{suppress.port_match('tcp', 'dport', *spec.fill.dst_ports)}")
        assured_ports.append(spec.fill.dst_ports)
    back_dst = suppress.addr_match("daddr", str(plan.src_start), str(plan.src_last))
    for lo, hi in assured_ports:
        client_rules.append(f"ip saddr {plan.destination} {back_dst} "
                            f"{suppress.port_match('tcp', 'sport', lo, hi)} "
                            f"{suppress.port_match('tcp', 'dport', *spec.src_ports)}")
    out = []
    if plan.destination_netns is not None:
        venue_if = links["venue"].ifname if "venue" in links else None
        if venue_if is None:
            venue_if = link_towards(plan.destination_netns, str(plan.src_start)).ifname
        out.append(suppress.Silence(plan.destination_netns, venue_if, tuple(venue_rules)))
    if client_rules:
        out.append(suppress.Silence(plan.source_netns, links["client"].ifname,
                                    tuple(client_rules)))
    return out
