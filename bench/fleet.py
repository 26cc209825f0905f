"""Fleet scale: what a drill, the orchestrator's sampling and `watch` cost as the
gateway pool grows (issue 14, item 4); results go into docs/BENCH-fleet.md below its
marker (the page's method section above it is kept).

    .venv/bin/python -m bench.fleet [--rounds 2] [--sizes 1,4,16,32] [--seconds 20]
    .venv/bin/python -m bench.fleet --quick      # sizes 1,4 and one round: a smoke test

For each round and pool size N (interleaved: every size once per round, the order
reversed every other round so a drift over the run falls on all sizes alike) it builds
a lab of N gateways with its sshds (`ctdrill lab up --gateways N`) and, over the opaque
inventory (every host only over SSH), measures one after the other:

a) `ctdrill run bench/specs/fleet-drill.yaml --json`: the engine's phase timings, the
   observe phase from the journal, the command's wall and CPU time (its Ansible
   workers included), samples journaled per gateway;
b) one orchestrator process sampling every gateway at 20 Hz through the drill's own
   Observer (and a regime machine per host, and the journal's batch encoding): CPU
   seconds over wall seconds in a steady window that starts once every stream has
   delivered, and per host-sample, the samples counted as they arrive;
c) `ctdrill watch --hosts gateways --hz 20`: the process's CPU (/proc) in the same kind
   of window, /metrics scraped twice a second (latency; prometheus_client's own parser
   reads `ctdrill_target_up` of every target and each one's last sample time).

The lab is removed however the run ends; a drill is stopped with SIGINT (it reverts)
before anything is killed. Builds labs and runs drills: run it alone, as root.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import DOCS, machine, quantile

if TYPE_CHECKING:
    from ctdrill.engine.observer import Observer
    from ctdrill.regime.machine import RegimeMachine

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "bench" / "specs" / "fleet-drill.yaml"
PAGE = DOCS / "BENCH-fleet.md"
MARKER = "<!-- fleet-results: everything below is written by bench/fleet.py -->"
SIZES = (1, 4, 16, 32)
QUICK_SIZES = (1, 4)
HOSTS = "gateways"
HZ = 20.0
DRILL_TIMEOUT_S = 900.0
STOP_GRACE_S = 120.0
"""How long a child told to stop (SIGINT) may take: a drill reverts before it exits."""
ALL_UP_TIMEOUT_S = 90.0
SCRAPE_EVERY_S = 0.5
TICK = os.sysconf("SC_CLK_TCK")
Row = dict[str, float]
Results = dict[int, dict[str, list[Row]]]
"""Per pool size, per part (lab, drill, sample, watch), one row per round."""


# ---------------------------------------------------------------- processes and CPU

def stop_child(proc: subprocess.Popen[str]) -> None:
    """SIGINT first (a drill reverts on it, watch closes its streams); kill only after
    STOP_GRACE_S."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def finish(proc: subprocess.Popen[str], timeout: float) -> str:
    """The child's stdout once it exits; stopped gracefully on a timeout or if the bench
    itself is interrupted."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except BaseException:
        stop_child(proc)
        raise
    return out


def children_cpu() -> float:
    """CPU seconds of every reaped child (and what they reaped): a child's whole tree."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def tree_cpu(root: int) -> float:
    """CPU seconds of a live process, its threads and descendants, from /proc."""
    procs: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        fields = text[text.rindex(")") + 2:].split()  # fields[k - 3] is stat field k
        procs[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += procs.get(pid, (0, 0.0))[1]
        todo += [p for p, (ppid, _) in procs.items() if ppid == pid]
    return total


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of every CPU: the targets' agents and sshds share them."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def busy_cores(before: tuple[int, int], after: tuple[int, int]) -> float:
    busy, total = after[0] - before[0], after[1] - before[1]
    return (os.cpu_count() or 1) * busy / total if total else float("nan")


def python_child(args: list[str], **kw: Any) -> subprocess.Popen[str]:
    """`python -m ARGS` from the repository (bench.fleet's own sampler included)."""
    return subprocess.Popen([sys.executable, "-m", *args], text=True, cwd=ROOT, **kw)


# ---------------------------------------------------------------- a) the drill

def journal_figures(path: Path) -> Row:
    """The observe phase (applied check -> reverting: streams opened, the window, streams
    closed) and the samples each gateway got into the journal."""
    from ctdrill.journal import read_journal

    records = read_journal(path)
    applied = [r["t"] for r in records if r.get("type") == "applied_check"]
    reverting = [r["t"] for r in records if r.get("type") == "reverting"]
    samples: dict[str, int] = defaultdict(int)
    for r in records:
        if r.get("type") == "samples":
            samples[r["host"]] += len(r["samples"])
    row = {"observed hosts": float(len(samples)),
           "samples/host min": float(min(samples.values(), default=0))}
    if applied and reverting:
        row["observe"] = reverting[0] - applied[-1]
    return row


def drill(inventory: Path, runs_dir: Path) -> Row:
    before, t = children_cpu(), time.monotonic()
    proc = python_child(["ctdrill", "run", str(SPEC), "-i", str(inventory), "--json",
                         "--runs-dir", str(runs_dir)],
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = finish(proc, DRILL_TIMEOUT_S)
    row = {"exit": float(proc.returncode), "wall": time.monotonic() - t,
           "cpu": children_cpu() - before}
    try:
        result = json.loads(out)
    except ValueError:
        return row
    for key, seconds in result.get("timings_s", {}).items():
        row[key] = float(seconds)
    if result.get("journal"):
        row |= journal_figures(Path(result["journal"]))
    if proc.returncode:
        print(f"  drill exit {proc.returncode}: {result.get('reason')}", flush=True)
    return row


# ---------------------------------------------------------------- b) one process sampling

@dataclass
class Feed:
    """What the drill's observe loop does per sample, short of writing the journal."""

    observer: Observer
    machines: dict[str, RegimeMachine]
    batches: dict[str, list[dict[str, Any]]]

    def take(self) -> None:
        from ctdrill.regime.machine import RegimeInput

        for obs in self.observer.poll(0.1):
            entry: dict[str, Any] = {"sample": obs.sample.to_json()}
            if obs.metrics is not None:
                entry["metrics"] = obs.metrics.to_json()
                self.machines[obs.host].feed(RegimeInput.from_window(obs.metrics))
            self.batches[obs.host].append(entry)

    def flush(self) -> None:
        for batch in self.batches.values():
            json.dumps(batch)  # a journal batch's encoding
            batch.clear()

    def counts(self) -> dict[str, int]:
        return {h: len(a) for h, a in self.observer.arrivals.items()}


def steady(feed: Feed, seconds: float) -> dict[str, float]:
    """Sample for `seconds` once every stream has delivered: own CPU over wall time."""
    until = time.monotonic() + ALL_UP_TIMEOUT_S
    while min(feed.counts().values()) == 0 and time.monotonic() < until:
        feed.take()
    n0, r0, j0 = feed.counts(), resource.getrusage(resource.RUSAGE_SELF), machine_jiffies()
    t0 = last_flush = time.monotonic()
    while (now := time.monotonic()) - t0 < seconds:
        feed.take()
        if now - last_flush >= 1.0:
            feed.flush()
            last_flush = now
    wall, r1, n1 = time.monotonic() - t0, resource.getrusage(resource.RUSAGE_SELF), feed.counts()
    got = {h: n1[h] - n0[h] for h in n1}
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    return {"wall": wall, "cpu": cpu, "cores": cpu / wall, "samples": float(sum(got.values())),
            "us/host-sample": 1e6 * cpu / max(1, sum(got.values())),
            "host Hz min": min(got.values()) / wall,
            "sampled hosts": float(sum(1 for c in n0.values() if c)),
            "lost hosts": float(len(feed.observer.lost)),
            "machine busy cores": busy_cores(j0, machine_jiffies())}


def sample_pool(inventory: Path, seconds: float) -> dict[str, float]:
    """The sampler child's work: the drill's Observer on every gateway at HZ."""
    from ctdrill.engine.observer import Observer
    from ctdrill.regime.machine import RegimeMachine
    from ctdrill.regime.spec import RegimeSpec
    from ctdrill.targets.inventory import Inventory

    targets = Inventory(inventory).select(HOSTS)
    cfg = RegimeSpec().to_config()
    observer = Observer(targets, HZ, 1.0)
    feed = Feed(observer, {t.name: RegimeMachine(cfg) for t in targets},
                {t.name: [] for t in targets})
    t = time.monotonic()
    observer.start()
    try:
        opened = time.monotonic() - t
        return {"hosts": float(len(targets)), "streams open": opened} | steady(feed, seconds)
    finally:
        observer.close()


def sampler(inventory: Path, seconds: float) -> Row:
    proc = python_child(["bench.fleet", "--sampler", str(inventory), "--seconds",
                         str(seconds)], stdout=subprocess.PIPE)
    out = finish(proc, seconds + 2 * ALL_UP_TIMEOUT_S)
    lines = out.strip().splitlines()
    if proc.returncode or not lines:
        raise RuntimeError(f"the sampler exited {proc.returncode} (its stderr is above)")
    row: Row = json.loads(lines[-1])
    return row


# ---------------------------------------------------------------- c) watch

@dataclass(frozen=True)
class Scrape:
    latency: float
    up: int
    max_age: float
    size: int


def scrape(url: str) -> Scrape:
    """One /metrics read, parsed by prometheus_client (the consumer's own parser)."""
    from prometheus_client.parser import text_string_to_metric_families

    t = time.monotonic()
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read().decode()
    latency, now = time.monotonic() - t, time.time()
    up, ages = 0, [0.0]
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            if s.name == "ctdrill_target_up":
                up += int(s.value == 1)
            elif s.name == "ctdrill_telemetry_last_sample_timestamp_seconds":
                ages.append(now - s.value)
    return Scrape(latency, up, max(ages), len(body))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def all_up(url: str, n: int, proc: subprocess.Popen[str]) -> float:
    """Seconds until every target is up on /metrics (NaN if not within the timeout)."""
    t = time.monotonic()
    while time.monotonic() - t < ALL_UP_TIMEOUT_S and proc.poll() is None:
        try:
            if scrape(url).up == n:
                return time.monotonic() - t
        except OSError:  # not listening yet
            pass
        time.sleep(SCRAPE_EVERY_S)
    return float("nan")


def watch_window(url: str, proc: subprocess.Popen[str], seconds: float) -> Row:
    """The watch's CPU over wall time and its scrapes, in a steady window."""
    c0, j0, t0 = tree_cpu(proc.pid), machine_jiffies(), time.monotonic()
    scrapes = []
    while time.monotonic() - t0 < seconds and proc.poll() is None:
        scrapes.append(scrape(url))
        time.sleep(SCRAPE_EVERY_S)
    wall, cpu = time.monotonic() - t0, tree_cpu(proc.pid) - c0
    latencies = [1000 * s.latency for s in scrapes]
    return {"wall": wall, "cpu": cpu, "cores": cpu / wall,
            "scrapes": float(len(scrapes)),
            "targets up min": float(min((s.up for s in scrapes), default=0)),
            "max sample age s": max((s.max_age for s in scrapes), default=float("nan")),
            "scrape ms p50": quantile(latencies, 0.5),
            "scrape ms p95": quantile(latencies, 0.95),
            "metrics kB": max((s.size for s in scrapes), default=0) / 1000,
            "machine busy cores": busy_cores(j0, machine_jiffies())}


def watch(inventory: Path, n: int, seconds: float, workdir: Path) -> Row:
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    with (workdir / f"watch-{n}.err").open("w") as err:
        proc = python_child(["ctdrill", "watch", "-i", str(inventory), "--hosts", HOSTS,
                             "--hz", f"{HZ:g}", "--listen", f"127.0.0.1:{port}",
                             "--transitions", str(workdir / f"transitions-{n}.jsonl")],
                            stdout=subprocess.DEVNULL, stderr=err)
        try:
            row = {"hosts": float(n), "all up after": all_up(url, n, proc)}
            if row["all up after"] == row["all up after"]:  # not NaN
                row |= watch_window(url, proc, seconds)
        finally:
            stop_child(proc)
    return row


# ---------------------------------------------------------------- rounds

@contextmanager
def fleet_lab(n: int) -> Iterator[tuple[Path, float]]:
    """A lab of n gateways with its sshds; yields the opaque inventory and the build
    time. Removed however the block ends."""
    from ctdrill.lab import manager

    name = f"fleet{n}"
    try:
        t = time.monotonic()
        lab = manager.up(name, ssh=True, gateways=n)
        yield lab.plan.opaque_inventory_path, time.monotonic() - t
    finally:
        manager.down(name)


def measured(part: str, n: int, what: Callable[[], Row], into: list[Row]) -> None:
    """One measurement; a failure is printed and leaves no row (the round goes on)."""
    try:
        row = what()
    except Exception as exc:  # one broken measurement must not strand the lab
        print(f"N={n:2d} {part:7s} FAILED: {exc!r}", flush=True)
        return
    into.append(row)
    shown = {k: round(v, 3) for k, v in row.items()}
    print(f"N={n:2d} {part:7s} {shown}", flush=True)


def one_size(n: int, args: argparse.Namespace, workdir: Path, results: Results) -> None:
    by = results[n]
    with fleet_lab(n) as (inventory, built):
        by["lab"].append({"up": built})
        measured("drill", n, lambda: drill(inventory, workdir / "runs"), by["drill"])
        measured("sample", n, lambda: sampler(inventory, args.seconds), by["sample"])
        measured("watch", n, lambda: watch(inventory, n, args.seconds, workdir), by["watch"])


# ---------------------------------------------------------------- the page

def med(rows: list[Row], key: str) -> float:
    values = [r[key] for r in rows if key in r and r[key] == r[key]]
    return statistics.median(values) if values else float("nan")


def cell(value: float, base: float, fmt: str) -> str:
    if value != value:
        return "n/a"
    ratio = f" ({value / base:.2f}x)" if base == base and base and value != base else ""
    return f"{value:{fmt}}{ratio}"


DRILL_ROWS = [("prepare", "prepare s", ".2f"), ("apply", "apply s", ".2f"),
              ("observe", "observe s (5 s window + streams)", ".2f"),
              ("revert_verify", "revert + verify s", ".2f"), ("total", "drill total s", ".2f"),
              ("wall", "`ctdrill run` wall s", ".2f"), ("cpu", "`ctdrill run` CPU s", ".2f"),
              ("samples/host min", "samples journaled, fewest per gateway", ".0f")]
SAMPLE_ROWS = [("streams open", "streams opened s", ".2f"), ("cores", "CPU cores", ".3f"),
               ("us/host-sample", "CPU us per host-sample", ".0f"),
               ("host Hz min", "delivered Hz, slowest gateway", ".1f"),
               ("lost hosts", "hosts lost", ".0f"),
               ("machine busy cores", "whole machine busy cores", ".2f")]
WATCH_ROWS = [("all up after", "every target up after s", ".2f"), ("cores", "CPU cores", ".3f"),
              ("cpu_per_sample", "CPU us per nominal host-sample", ".0f"),
              ("up share", "share of targets up, worst scrape", ".2f"),
              ("max sample age s", "oldest last sample at a scrape s", ".2f"),
              ("scrape ms p50", "/metrics scrape ms p50", ".1f"),
              ("scrape ms p95", "/metrics scrape ms p95", ".1f"),
              ("metrics kB", "/metrics size kB", ".1f"),
              ("machine busy cores", "whole machine busy cores", ".2f")]


def table(results: Results, part: str, spec: list[tuple[str, str, str]]) -> list[str]:
    sizes = sorted(results)
    lines = ["| measured (median) | " + " | ".join(f"N={n}" for n in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for key, label, fmt in spec:
        base = med(results[sizes[0]][part], key)
        cells = [cell(med(results[n][part], key), base, fmt) for n in sizes]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def goals(results: Results) -> list[str]:
    def ratio(n: int) -> float:
        return med(results[n]["drill"], "total") / med(results[1]["drill"], "total")

    drill_goal = (f"{ratio(16):.2f}x" if 1 in results and 16 in results else "not run")
    cores = med(results[32]["sample"], "cores") if 32 in results else float("nan")
    served = all(r.get("targets up min") == n and r.get("scrapes", 0) > 0
                 for n, by in results.items() for r in by["watch"])
    served = served and all(len(by["watch"]) == len(by["lab"]) for by in results.values())
    return ["| goal | met | measured |", "|---|---|---|",
            f"| a 16-gateway drill <= 2.5x the 1-gateway drill (drill total) | "
            f"{'yes' if drill_goal != 'not run' and ratio(16) <= 2.5 else 'NO'} | {drill_goal} |",
            f"| 32 hosts at 20 Hz cost the orchestrator < 1 core | "
            f"{'yes' if cores < 1.0 else 'NO'} | "
            f"{'not run' if cores != cores else f'{cores:.3f} cores'} |",
            f"| `watch` serves every target (every scrape, every size, every round) | "
            f"{'yes' if served else 'NO'} | see the watch table |"]


def section(results: Results, args: argparse.Namespace, load: tuple[float, float]) -> str:
    for by in results.values():
        for r in by["watch"]:
            if "cpu" in r:
                r["cpu_per_sample"] = 1e6 * r["cpu"] / (r["hosts"] * HZ * r["wall"])
                r["up share"] = r["targets up min"] / r["hosts"]
    passed = ", ".join(f"N={n}: {sum(r.get('exit') == 0 for r in by['drill'])}/"
                      f"{len(by['lab'])}" for n, by in sorted(results.items()))
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [f"Last run: {stamp} on {machine()}: `{args.command}`; load average "
             f"(1 min) {load[0]:.2f} before, {load[1]:.2f} after. Ratios are to N=1.", "",
             *goals(results), "", f"Drills that exited 0 (changed exactly as planned, "
             f"reverted, verified): {passed}.", "", "### a) the drill's phases", "",
             *table(results, "drill", DRILL_ROWS), "",
             "### b) one orchestrator process sampling every gateway at 20 Hz", "",
             *table(results, "sample", SAMPLE_ROWS), "",
             "### c) `ctdrill watch --hosts gateways --hz 20`", "",
             *table(results, "watch", WATCH_ROWS), "",
             "Lab build (`lab up`, s, median): " + ", ".join(
                 f"N={n}: {med(by['lab'], 'up'):.1f}" for n, by in sorted(results.items()))]
    return "\n".join(lines)


def write(text: str) -> None:
    old = PAGE.read_text() if PAGE.exists() else "# Fleet scale\n\n"
    head = old[:old.index(MARKER)] if MARKER in old else old.rstrip("\n") + "\n\n"
    PAGE.write_text(f"{head}{MARKER}\n\n{text}\n")


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--seconds", type=float, default=20.0,
                    help="steady window of the sampler and of watch")
    ap.add_argument("--quick", action="store_true", help="sizes 1,4; one round")
    ap.add_argument("--sampler", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.rounds = ",".join(map(str, QUICK_SIZES)), 1
    args.command = "python -m bench.fleet " + " ".join(sys.argv[1:])
    return args


def main() -> None:
    args = parse()
    if args.sampler is not None:  # the child of b): one JSON line
        print(json.dumps(sample_pool(args.sampler, args.seconds)), flush=True)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    results: Results = {n: defaultdict(list) for n in sizes}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ctd-bench-fleet-") as tmp:
        for r in range(args.rounds):
            for n in (sizes if r % 2 == 0 else sizes[::-1]):
                one_size(n, args, Path(tmp), results)
    write(section(results, args, (load, os.getloadavg()[0])))
    print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
