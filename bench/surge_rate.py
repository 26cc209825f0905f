"""Benchmark: new conntrack entries per second in the lab gateway, surge vs trafgen vs scapy.

All generators run in ONE run against the same lab, interleaved, and are measured the
same way: the gateway's nf_conntrack_count sampled at 50 Hz by the project's own agent
inside the gateway namespace. Unpaced rates are the 10-90 % slope (the time the count
takes from 10 % to 90 % of its rise), which leaves out process start-up for every tool.

- max: surge (1 and 2 workers) vs trafgen (1 and 2 CPUs, each CPU its own flows) vs
  scapy send(); repeated, medians reported, ratios against trafgen and scapy.
- paced: requested vs achieved from 1k to 150k flows/s (slope of the middle window).
- ASSURED: completed handshakes per second, checked with `conntrack -L` in the gw.

The gateway's table is enlarged for the run with global_knobs (recorded, locked,
restored exactly) and flushed between runs.

    .venv/bin/python -m bench.surge_rate [--seconds 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import bench_lab, write_page
from ctdrill.lab.manager import LabUp
from ctdrill.surge import suppress
from ctdrill.surge.netinfo import link_towards
from ctdrill.surge.plan import plan_surge
from ctdrill.surge.runner import SurgeRun
from ctdrill.surge.spec import SurgeLoad
from ctdrill.system.knobs import global_knobs, read_knob
from ctdrill.targets.inventory import Inventory
from ctdrill.telemetry.protocol import Sample
from ctdrill.telemetry.streams import open_stream

LAB = "sbench"
TABLE = 1 << 21
MAX_KEY, BUCKETS_KEY = "net.netfilter.nf_conntrack_max", "net.netfilter.nf_conntrack_buckets"
PACED_RATES = (1000, 5000, 20000, 50000, 100000, 150000)
BACKLOG_DROPS: list[int] = []


class GwCounter:
    """The gateway's count at 50 Hz, for as long as the benchmark runs."""

    def __init__(self, lab: LabUp) -> None:
        self.stream = open_stream(Inventory(lab.plan.inventory_path).target("gw"), 50)
        self.samples: list[Sample] = []
        self._t = threading.Thread(target=lambda: self.samples.extend(self.stream),
                                   daemon=True)
        self._t.start()

    def now(self) -> int:
        time.sleep(0.05)
        return self.samples[-1].count

    def window(self, t0: float, t1: float) -> list[Sample]:
        return [s for s in self.samples if t0 <= s.t <= t1]

    def close(self) -> None:
        self.stream.close()
        self._t.join(timeout=3)


def count_at(samples: list[Sample], t: float) -> float:
    for a, b in itertools.pairwise(samples):
        if a.t <= t <= b.t:
            return a.count + (b.count - a.count) * (t - a.t) / max(b.t - a.t, 1e-9)
    return float(samples[-1].count if t > samples[-1].t else samples[0].count)


def slope_10_90(samples: list[Sample]) -> tuple[float, int]:
    """(entries/s between 10 % and 90 % of the rise, total rise)."""
    c0, c1 = samples[0].count, samples[-1].count
    rise = c1 - c0
    if rise < 10:
        return 0.0, rise

    def crossing(level: float) -> float:
        for a, b in itertools.pairwise(samples):
            if a.count < level <= b.count:
                return a.t + (b.t - a.t) * (level - a.count) / (b.count - a.count)
        return samples[-1].t

    t10, t90 = crossing(c0 + 0.1 * rise), crossing(c0 + 0.9 * rise)
    return 0.8 * rise / max(t90 - t10, 1e-6), rise


def flush(lab: LabUp) -> None:
    subprocess.run(["ip", "netns", "exec", lab.plan.host("gw").netns, "conntrack", "-F"],
                   capture_output=True, check=False)


class TableChanged(RuntimeError):
    """Someone else changed the kernel-wide table size mid-benchmark: numbers are void."""


def check_table() -> None:
    got = (read_knob(MAX_KEY), read_knob(BUCKETS_KEY))
    if got != (str(TABLE), str(TABLE)):
        raise TableChanged(f"nf_conntrack_max/buckets are {got} while the benchmark set "
                           f"{TABLE}: another drill or test changed them; rerun when none "
                           "runs (nothing was written)")


def measured(lab: LabUp, counter: GwCounter, action: Callable[[], Any]) -> dict[str, Any]:
    """Run `action` between two quiet moments and read the gateway's rise."""
    flush(lab)
    time.sleep(0.3)
    check_table()
    t0 = time.time()
    extra = action()
    time.sleep(0.3)
    check_table()
    rate, rise = slope_10_90(counter.window(t0 - 0.1, time.time()))
    return {"rate": rate, "rise": rise, "extra": extra}


def surge_spec(**fields: Any) -> SurgeLoad:
    return SurgeLoad.model_validate({"kind": "surge", "source": "client",
                                     "destination": "venue", **fields})


def run_surge(lab: LabUp, spec: SurgeLoad) -> dict[str, Any]:
    run = SurgeRun(plan_surge(spec, Inventory(lab.plan.inventory_path)))
    try:
        run.start()
        run.wait(120)
    finally:
        result = run.stop()
    result["_go"] = run.started_at
    BACKLOG_DROPS.append(int(result.get("backlog_drops", 0)))
    return result


# ---------------------------------------------------------------- trafgen

def ensure_trafgen() -> None:
    if shutil.which("trafgen"):
        return
    print("installing netsniff-ng (trafgen) for the comparison", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                    "netsniff-ng"], check=True, env={"DEBIAN_FRONTEND": "noninteractive",
                                                    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


def trafgen_config(lab: LabUp, cpu: int) -> str:
    link = link_towards(lab.plan.host("client").netns, lab.plan.host("venue").data_addr)
    lo = 10000 + 500 * cpu
    return (f"{{ eth(da={link.dst_mac}, sa={link.src_mac}), "
            f"ipv4(saddr={lab.plan.host('client').data_addr}, "
            f"daddr={lab.plan.host('venue').data_addr}, ttl=64), "
            f"udp(sport=dinc(1024, 65535), dport=dinc({lo}, {lo + 499})), \"ctds\" }}\n")


def venue_silence(lab: LabUp) -> contextlib.AbstractContextManager[None]:
    """The venue drops the benchmark's UDP at ingress for every generator alike (the
    surge installs this itself): the kernel work per flow is then the same for all,
    and the comparison measures the generators, not the venue's ICMP replies."""
    venue = lab.plan.host("venue")
    rule = (f"ip saddr {lab.plan.host('client').data_addr} ip daddr {venue.data_addr} "
            "udp dport 10000-10999")
    return suppress.silenced([suppress.Silence(venue.netns, "eth0", (rule,))])


def run_trafgen(lab: LabUp, cpus: int, seconds: float, workdir: Path) -> None:
    """One trafgen per CPU, each with its own destination ports (trafgen's own -P forks
    replay identical flows), each re-pinned to its CPU (trafgen pins its child to CPU 0)."""
    netns = lab.plan.host("client").netns
    with venue_silence(lab):
        _trafgen(netns, lab, cpus, seconds, workdir)


def _trafgen(netns: str, lab: LabUp, cpus: int, seconds: float, workdir: Path) -> None:
    procs = []
    for cpu in range(cpus):
        cfg = workdir / f"trafgen{cpu}.cfg"
        cfg.write_text(trafgen_config(lab, cpu))
        procs.append(subprocess.Popen(["ip", "netns", "exec", netns, "trafgen", "--dev", "eth0",
                                       "--conf", str(cfg), "-P", "1", "-C"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        time.sleep(0.2)
        for cpu, p in enumerate(procs):
            for child in _descendants(p.pid):
                subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(child)],
                               capture_output=True, check=False)
        time.sleep(seconds)
    finally:
        for p in procs:
            for child in [p.pid, *_descendants(p.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGINT)
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    kids = [int(x) for x in out.split()]
    return kids + [g for k in kids for g in _descendants(k)]


# ---------------------------------------------------------------- scapy

SCAPY_SEND = """
import sys, time
from scapy.all import IP, UDP, Raw, send, conf
conf.verb = 0
dst, n = sys.argv[1], int(sys.argv[2])
pkts = [IP(dst=dst) / UDP(sport=1024 + i, dport=10000) / Raw(b"ctds") for i in range(n)]
t = time.time()
send(pkts, verbose=False)
print(n / (time.time() - t))
"""


def run_scapy(lab: LabUp, packets: int) -> float:
    with venue_silence(lab):
        out = subprocess.run(["ip", "netns", "exec", lab.plan.host("client").netns, sys.executable,
                              "-c", SCAPY_SEND, lab.plan.host("venue").data_addr,
                              str(packets)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


# ---------------------------------------------------------------- the runs

def assured_count(lab: LabUp) -> tuple[int, int]:
    out = subprocess.run(["ip", "netns", "exec", lab.plan.host("gw").netns, "conntrack", "-L",
                          "-p", "tcp"], capture_output=True, text=True, check=True).stdout
    lines = [ln for ln in out.splitlines() if ln.startswith("tcp")]
    return len(lines), sum(1 for ln in lines if "ESTABLISHED" in ln and "[ASSURED]" in ln)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--paced-seconds", type=float, default=3.0)
    args = parser.parse_args()
    ensure_trafgen()
    secs = args.seconds
    rows: dict[str, list[float]] = {}
    paced: list[dict[str, float]] = []
    assured: list[dict[str, Any]] = []
    notes: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="ctd-bench-"))
    with bench_lab(LAB) as lab, global_knobs({BUCKETS_KEY: TABLE, MAX_KEY: TABLE}):
        counter = GwCounter(lab)
        try:
            def record(name: str, r: dict[str, Any]) -> None:
                rows.setdefault(name, []).append(r["rate"])
                print(f"{name:28s} {r['rate']:>10,.0f} entries/s (rise {r['rise']:,})",
                      flush=True)

            scapy_n = 3000
            r = measured(lab, counter, lambda: run_scapy(lab, scapy_n))
            record("scapy send()", r)
            notes.append(f"scapy send() of {scapy_n} prebuilt packets: its own timing "
                         f"{r['extra']:,.0f} packets/s")
            for _ in range(args.repeats):  # interleaved: each sees the same machine state
                for workers in (1, 2):
                    spec = surge_spec(workers=workers, shape={"kind": "max", "duration_s": secs})
                    record(f"surge max, {workers} worker{'s' * (workers > 1)}",
                           measured(lab, counter, lambda s=spec: run_surge(lab, s)))
                for cpus in (1, 2):
                    record(f"trafgen, {cpus} CPU{'s' * (cpus > 1)}",
                           measured(lab, counter,
                                    lambda c=cpus: run_trafgen(lab, c, secs, workdir)))
            for rate in PACED_RATES:
                spec = surge_spec(shape={"kind": "constant", "rate": rate,
                                         "duration_s": args.paced_seconds})
                flush(lab)
                time.sleep(0.3)
                check_table()
                res = run_surge(lab, spec)
                time.sleep(0.3)
                check_table()
                go = res["_go"]
                samples = counter.window(go - 0.2, go + args.paced_seconds + 0.5)
                a, b = go + 0.5, go + args.paced_seconds - 0.5
                mid = (count_at(samples, b) - count_at(samples, a)) / (b - a)
                whole = (samples[-1].count - samples[0].count) / args.paced_seconds
                paced.append({"requested": rate, "middle": mid, "whole": whole,
                              "sender": res["rate"], "shortfall": res["shortfall"]})
                print(f"paced {rate:>7,}/s: gw middle {mid:,.0f}/s whole {whole:,.0f}/s",
                      flush=True)
            for label, shape in (("max", {"kind": "max", "duration_s": 1.5}),
                                 ("paced 50k/s", {"kind": "constant", "rate": 50000,
                                                  "duration_s": 2})):
                spec = surge_spec(protocol="tcp", mode="assured", teardown=False, shape=shape)
                r = measured(lab, counter, lambda s=spec: run_surge(lab, s))
                total, ok = assured_count(lab)
                assured.append({"label": label, "rate": r["rate"], "rise": r["rise"],
                                "entries": total, "assured": ok,
                                "completed": r["extra"]["completed"]})
                print(f"assured {label}: {r['rate']:,.0f}/s, {ok:,} of {total:,} ASSURED",
                      flush=True)
            flush(lab)
            notes.append(f"kernel backlog drops (softnet_stat) during the {len(BACKLOG_DROPS)} "
                         f"surge runs: {sum(BACKLOG_DROPS)}")
        finally:
            counter.close()
            shutil.rmtree(workdir, ignore_errors=True)
    write_results(args, rows, paced, assured, notes)


def write_results(args: argparse.Namespace, rows: dict[str, list[float]],
                  paced: list[dict[str, float]], assured: list[dict[str, Any]],
                  notes: list[str]) -> None:
    med = {k: statistics.median(v) for k, v in rows.items()}
    surge2, trafgen2 = med["surge max, 2 workers"], med["trafgen, 2 CPUs"]
    surge1, trafgen1 = med["surge max, 1 worker"], med["trafgen, 1 CPU"]
    scapy = med["scapy send()"]
    table = ["| generator | median new entries/s | runs | vs scapy send() "
             "| vs trafgen (same CPUs) |", "|---|---|---|---|---|"]
    for name, values in rows.items():
        ref = trafgen2 if "2" in name else trafgen1
        vs_t = "" if name.startswith(("trafgen", "scapy")) else f"{med[name] / ref:.2f}x"
        table.append(f"| {name} | {med[name]:,.0f} | "
                     f"{', '.join(f'{v:,.0f}' for v in values)} | {med[name] / scapy:,.0f}x "
                     f"| {vs_t} |")
    ptable = ["| requested flows/s | gw achieved (middle) | error | gw achieved (whole run) "
              "| sender's own rate | shortfall |", "|---|---|---|---|---|---|"]
    worst = 0.0
    for p in paced:
        err = (p["middle"] - p["requested"]) / p["requested"] * 100
        worst = max(worst, abs(err))
        ptable.append(f"| {p['requested']:,.0f} | {p['middle']:,.0f} | {err:+.2f} % "
                      f"| {p['whole']:,.0f} | {p['sender']:,.0f} | {p['shortfall']:,} |")
    atable = ["| ASSURED run | ASSURED entries/s (gw) | handshakes completed | tcp entries "
              "| ESTABLISHED + [ASSURED] |", "|---|---|---|---|---|"]
    for a in assured:
        atable.append(f"| {a['label']} | {a['rate']:,.0f} | {a['completed']:,} "
                      f"| {a['entries']:,} | {a['assured']:,} |")
    a_max = assured[0]["rate"] if assured else 0.0
    checks = [
        ("max mode, 2 workers >= 250k entries/s", surge2 >= 250_000, f"{surge2:,.0f}/s"),
        ("max mode, 2 workers >= trafgen, 2 CPUs (same run)", surge2 >= trafgen2,
         f"{surge2 / trafgen2:.2f}x"),
        ("max mode >= 100x scapy send()", surge2 >= 100 * scapy, f"{surge2 / scapy:,.0f}x"),
        ("paced within 3 % from 1k to 150k flows/s", worst <= 3.0, f"worst {worst:.2f} %"),
        ("ASSURED >= 50k entries/s", a_max >= 50_000, f"{a_max:,.0f}/s"),
    ]
    ctable = ["| target | met | measured |", "|---|---|---|"]
    ctable += [f"| {name} | {'yes' if ok else '**no**'} | {value} |" for name, ok, value in checks]
    body = (
        f"Command: `.venv/bin/python -m bench.surge_rate --seconds {args.seconds:g} "
        f"--repeats {args.repeats}`\n\n"
        "New conntrack entries per second created in the lab gateway, all generators in one "
        "run, interleaved, measured the same way: the gateway's nf_conntrack_count sampled "
        "at 50 Hz inside its namespace, rate = the 10-90 % slope of the rise (no tool's "
        "start-up counts). Every flow is a new UDP 5-tuple from the client namespace to the "
        f"venue through the gateway; table enlarged to max = buckets = {TABLE:,} for the "
        "run with global_knobs and restored; flushed between runs. trafgen runs one "
        "process per CPU with its own ports (its `-P` forks replay identical flows) and "
        "each re-pinned to its CPU; scapy send() is L3 send() of prebuilt packets. For "
        "every generator the venue drops these flows at ingress (the surge's own `ctd_surge` "
        "table; installed the same way around trafgen and scapy), so all pay the same "
        "kernel work per flow.\n\n"
        "## Targets\n\n" + "\n".join(ctable) + "\n\n"
        "## Unpaced maximum (surge `max` vs trafgen vs scapy)\n\n" + "\n".join(table) + "\n\n"
        f"Ratios: surge 2 workers / trafgen 2 CPUs = {surge2 / trafgen2:.2f}; surge 1 worker / "
        f"trafgen 1 CPU = {surge1 / trafgen1:.2f}; surge 2 workers / scapy send() = "
        f"{surge2 / scapy:,.0f}.\n\n" + "\n".join(f"- {n}" for n in notes) + "\n\n"
        "## Paced (constant shape, 2 workers)\n\n"
        f"Each rate runs {args.paced_seconds:g} s; 'middle' is the gateway's rate over the "
        "run's middle (0.5 s in to 0.5 s before the end), 'whole' the total rise over the "
        "nominal duration.\n\n" + "\n".join(ptable) + "\n\n"
        "## ASSURED (forged three-way handshakes, 2 workers)\n\n"
        "SYN from the client side, SYN-ACK from the venue side, ACK from the client side, "
        "prebuilt, through the gateway; `conntrack -L -p tcp` in the gateway afterwards.\n\n"
        + "\n".join(atable) + "\n")
    print(write_page("BENCH-surge.md", "Flow surge: new conntrack entries per second", body))


if __name__ == "__main__":
    main()
