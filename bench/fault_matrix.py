"""A fault matrix you can rerun: faults injected into real drills on a real lab.

It records what a user would find afterwards (docs/FAULTS.md, docs/faults.json).

Per phase (prepare, apply, observe, revert) and transport (netns, ssh): a Ctrl-C to the
process group, a double Ctrl-C, SIGTERM and SIGKILL to the orchestrator; plus a
management-link cut longer than the TTL, an unreachable host, a full journal
filesystem, a concurrent `ctdrill revert` of an older journal, and empty, binary and
truncated journals given to `ctdrill revert`. Per cell: exit codes, restored n/N (host
state read from the kernel == the state before), time to restore, leftovers after
settling (locks, dead-man switches, ctd_* tables, processes of the run) and whether the
next drill then runs unattended.

    sudo .venv/bin/python -m bench.fault_matrix [--trials 2] [--cells sigkill] \
        [--transport netns|ssh|both] [--ttl 20] [--no-docs]

Root, and the machine to itself: it changes kernel-wide knobs, cuts links and mounts
tmpfs. Not a timed test; the fast subset lives in tests/integration/test_trust.py.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.common import DOCS, write_page
from bench.fault_lab import (
    LAB,
    PAUSE,
    POLL_S,
    Bench,
    Watched,
    journals_in,
    last_line,
    reap,
    run_cli,
    run_ids_in,
    spawn,
    unreachable_inventory,
    wait_for_phase,
)
from bench.fault_results import (
    CellSummary,
    Trial,
    exit_label,
    render_findings,
    render_goal,
    render_table,
    restore_time,
    to_json,
)
from bench.fault_state import deadman_results, host_state
from ctdrill.journal import MIN_FREE_BYTES
from ctdrill.lab import manager

PHASES = ("prepare", "apply", "observe", "revert")
TRANSPORTS = ("netns", "ssh")
SETTLE_S = 60.0
"""How long after the TTL a dead-man may take to finish the job."""
LINK_EXTRA_S = 10.0
"""The management link stays down this much longer than the TTL."""
DOUBLE_CTRL_C_GAP_S = 0.5
PREFILLED_FS = 256 << 10
"""The journal filesystem that is too small from the start (refused before any change)."""
FULL_FS_MARGIN = 1 << 20
"""Free space beyond the journal's own minimum: it passes the check, then is filled."""
BAD_JOURNAL_SEED = 11

SIGNALS: dict[str, tuple[signal.Signals, bool, int]] = {
    # fault: (signal, to the whole process group, how many times)
    "ctrl-c": (signal.SIGINT, True, 1),
    "double-ctrl-c": (signal.SIGINT, True, 2),
    "sigterm": (signal.SIGTERM, False, 1),
    "sigkill": (signal.SIGKILL, False, 1),
}
DESCRIPTIONS = {
    "ctrl-c": "SIGINT to the process group during {phase}",
    "double-ctrl-c": f"SIGINT to the process group twice, {DOUBLE_CTRL_C_GAP_S:g} s apart, "
                     "during {phase}",
    "sigterm": "SIGTERM to the orchestrator during {phase}",
    "sigkill": "SIGKILL to the orchestrator (only) during {phase}",
    "link-cut": f"gw's management link down for TTL + {LINK_EXTRA_S:g} s, from {{phase}} on",
    "unreachable": "gw unreachable (ansible_port 1 in a copy of the ssh inventory)",
    "journal-full": "journal tmpfs filled during {phase}",
    "old-revert": "`ctdrill revert` of an older, finished journal while a drill observes",
    "journal-empty": "`ctdrill revert` of an empty journal",
    "journal-binary": "`ctdrill revert` of 4 KiB of random bytes",
    "journal-truncated": "`ctdrill revert` of a finished journal cut in half (mid-line)",
}


@dataclass(frozen=True)
class Cell:
    fault: str
    phase: str | None
    transport: str

    @property
    def name(self) -> str:
        where = f"@{self.phase}" if self.phase else ""
        return f"{self.fault}{where}/{self.transport}"

    @property
    def description(self) -> str:
        if self.fault == "journal-full" and self.phase == "start":
            return (f"journal on a {PREFILLED_FS >> 10} KiB tmpfs, pre-filled: refused "
                    "before any change")
        return DESCRIPTIONS[self.fault].format(phase=self.phase)


def all_cells() -> list[Cell]:
    cells = [Cell(f, p, t) for t in TRANSPORTS for f in SIGNALS for p in PHASES]
    cells += [Cell("link-cut", "observe", "ssh"), Cell("unreachable", "prepare", "ssh")]
    cells += [Cell("journal-full", p, "netns") for p in ("start", "apply", "observe")]
    cells += [Cell("old-revert", "observe", t) for t in TRANSPORTS]
    cells += [Cell(f"journal-{k}", None, "netns") for k in ("empty", "binary", "truncated")]
    return cells


def select_cells(cells: list[Cell], filters: list[str] | None, transport: str) -> list[Cell]:
    """Cells of `transport` ('both' for all) whose name contains any of `filters`."""
    return [c for c in cells if transport in ("both", c.transport)
            and (not filters or any(f in c.name for f in filters))]


def corrupt(kind: str, journal: bytes) -> bytes:
    """The bad journals `ctdrill revert` is given: empty, random bytes, cut mid-line."""
    if kind == "empty":
        return b""
    if kind == "binary":
        return random.Random(BAD_JOURNAL_SEED).randbytes(4096)
    cut = len(journal) // 2
    while 0 < cut < len(journal) and journal[cut - 1:cut] == b"\n":
        cut -= 1  # never on a line boundary: the last line must be torn
    return journal[:cut]


# ---------------------------------------------------------------- one trial

def finish(bench: Bench, cell: Cell, k: int, tdir: Path, exit_text: str, watched: Watched,
           notes: list[str], procs: list[subprocess.Popen[bytes]]) -> Trial:
    """Record the trial's facts, run the next drill unattended, then clean up."""
    for run_id in sorted(run_ids_in(tdir)):
        notes += deadman_results(bench.hosts, run_id)
    log = tdir / "logs" / "next"
    nxt = run_cli(["run", str(bench.specs["next"]), "-i", str(bench.inventory(cell.transport)),
                   "--json"], tdir / "next", log, timeout=300)
    if nxt != 0:
        notes.append(f"next drill: {last_line(log)}")
    trial = Trial(cell.name, k, exit_text, restored=bool(watched.samples and
                                                          watched.samples[-1][1]),
                  restore_s=restore_time(watched.samples), leftovers=watched.left.labels(),
                  next_exit=nxt, notes=[n for n in notes if n])
    trial.reset = cleanup(bench, tdir, procs)
    return trial


def cleanup(bench: Bench, tdir: Path, procs: list[subprocess.Popen[bytes]]) -> bool:
    """Leave the lab as it was before the trial; True when that took more than the
    trial's own runs did (a revert by hand, or a rebuilt lab)."""
    for proc in procs:
        reap(proc)
    ids = run_ids_in(tdir)
    bench.run_ids |= ids
    if bench.clean(ids):
        return False
    for journal in journals_in(tdir):
        run_cli(["revert", str(journal), "--force", "--json"], tdir / "cleanup",
                tdir / "logs" / f"cleanup-{journal.parent.name}", timeout=180)
    bench.kill_runs(ids)
    if not bench.clean(ids):
        print("  the lab stayed dirty after 'ctdrill revert': rebuilding it", flush=True)
        bench.rebuild()
    return True


def drill_args(bench: Bench, spec: str, inventory: Path) -> list[str]:
    return ["run", str(bench.specs[spec]), "-i", str(inventory), "--json"]


def inject(fault: str, proc: subprocess.Popen[bytes]) -> None:
    sig, group, times = SIGNALS[fault]
    for i in range(times):
        if i:
            PAUSE.wait(DOUBLE_CTRL_C_GAP_S)
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(proc.pid, sig)
            else:
                os.kill(proc.pid, sig)


def faulted_run(bench: Bench, cell: Cell, tdir: Path, inventory: Path, runs: Path,
                fault: Callable[[subprocess.Popen[bytes]], None], hold_s: float = 0.0,
                after_hold: Callable[[], None] = lambda: None,
                ) -> tuple[subprocess.Popen[bytes], Watched, list[str]]:
    """Start the drill, wait for the cell's phase, inject, watch until settled. With
    `hold_s`, the watch does not settle before then, and `after_hold` ends the fault
    (a cut link stays cut that long, then comes back)."""
    proc = spawn(drill_args(bench, "drill", inventory), runs, tdir / "logs" / "drill")
    notes: list[str] = []
    try:
        journal = wait_for_phase(runs, cell.phase or "prepare", proc)
        if journal is None:
            notes.append(f"never reached {cell.phase}: the run ended "
                         f"{exit_label(proc.poll())} first")
        t_fault = time.monotonic()
        if journal is not None:
            fault(proc)
        watched = Watched()
        if hold_s:
            bench.watch(proc, t_fault, [runs], t_fault + hold_s, settle=False, into=watched)
            after_hold()
        bench.watch(proc, t_fault, [runs], t_fault + bench.ttl_s + SETTLE_S, into=watched)
    except BaseException:
        reap(proc)
        raise
    line = last_line(tdir / "logs" / "drill")
    if "TRACEBACK" in line:
        notes.append(line)
    return proc, watched, notes


def signal_trial(bench: Bench, cell: Cell, k: int, tdir: Path) -> Trial:
    proc, watched, notes = faulted_run(bench, cell, tdir, bench.inventory(cell.transport),
                                       tdir / "runs", lambda p: inject(cell.fault, p))
    return finish(bench, cell, k, tdir, exit_label(watched.exit_code), watched, notes, [proc])


def link_cut_trial(bench: Bench, cell: Cell, k: int, tdir: Path) -> Trial:
    link = bench.lab.plan.host("gw").mgmt_link
    try:
        proc, watched, notes = faulted_run(
            bench, cell, tdir, bench.inventory("ssh"), tdir / "runs",
            lambda _p: ip_link(link, "down"), hold_s=bench.ttl_s + LINK_EXTRA_S,
            after_hold=lambda: ip_link(link, "up"))
    finally:
        ip_link(link, "up")  # also when the trial failed or was interrupted
    return finish(bench, cell, k, tdir, exit_label(watched.exit_code), watched, notes, [proc])


def ip_link(link: str, state: str) -> None:
    subprocess.run(["ip", "link", "set", link, state], check=False, capture_output=True)
    if state == "up":  # the link was cut mid-drill: wait for it to carry traffic again
        PAUSE.wait(0.5)


def unreachable_trial(bench: Bench, cell: Cell, k: int, tdir: Path) -> Trial:
    inv = tdir / "unreachable.yml"
    inv.write_text(yaml.safe_dump(unreachable_inventory(
        yaml.safe_load(bench.inventory("ssh").read_text()))))
    runs = tdir / "runs"
    t0 = time.monotonic()
    proc = spawn(drill_args(bench, "drill", inv), runs, tdir / "logs" / "drill")
    try:
        watched = bench.watch(proc, t0, [runs], t0 + bench.ttl_s + SETTLE_S)
    except BaseException:
        reap(proc)
        raise
    notes = [last_line(tdir / "logs" / "drill")]
    return finish(bench, cell, k, tdir, exit_label(watched.exit_code), watched, notes, [proc])


def fill(directory: Path, limit: int | None = None) -> None:
    """Write zeros into `directory` until the filesystem is full (or `limit` bytes)."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    written = 0
    try:
        for size in (64 << 10, 4 << 10, 512, 1):
            while limit is None or written < limit:
                n = size if limit is None else min(size, limit - written)
                try:
                    written += os.write(fd, b"\0" * n)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)


def journal_full_trial(bench: Bench, cell: Cell, k: int, tdir: Path) -> Trial:
    mnt = tdir / "runs"
    mnt.mkdir(parents=True)
    size = PREFILLED_FS if cell.phase == "start" else MIN_FREE_BYTES + FULL_FS_MARGIN
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                   check=True, capture_output=True)
    proc = None
    try:
        if cell.phase == "start":
            fill(mnt, limit=PREFILLED_FS // 2)
            t0 = time.monotonic()
            proc = spawn(drill_args(bench, "drill", bench.inventory("netns")), mnt,
                         tdir / "logs" / "drill")
            watched = bench.watch(proc, t0, [mnt], t0 + bench.ttl_s + SETTLE_S)
            notes: list[str] = []
        else:
            proc, watched, notes = faulted_run(bench, cell, tdir, bench.inventory("netns"),
                                               mnt, lambda _p: fill(mnt))
        for journal in journals_in(mnt):  # kept for the cleanup, which runs unmounted
            dest = tdir / "copied" / journal.parent.name / journal.name
            dest.parent.mkdir(parents=True)
            shutil.copy(journal, dest)
    finally:
        if proc is not None and proc.poll() is None:
            reap(proc)
        if subprocess.run(["umount", str(mnt)], check=False, capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)
    notes.append(last_line(tdir / "logs" / "drill"))
    return finish(bench, cell, k, tdir, exit_label(watched.exit_code), watched, notes, [proc])


def finished_journal(bench: Bench, transport: str) -> Path | None:
    """A finished drill's journal on this lab (one per transport, run when first asked)."""
    if transport not in bench.finished:
        d = Path(tempfile.mkdtemp(prefix=f"finished-{transport}-", dir=bench.work))
        code = run_cli(drill_args(bench, "next", bench.inventory(transport)), d / "runs",
                       d / "logs" / "drill", timeout=300)
        found = journals_in(d / "runs")
        bench.run_ids |= run_ids_in(d / "runs")
        if code != 0 or not found:
            return None
        bench.finished[transport] = found[-1]
    return bench.finished[transport]


def old_revert_trial(bench: Bench, cell: Cell, k: int, tdir: Path) -> Trial:
    """A finished drill, then a live one; while it observes, revert the finished one's
    journal. Restored here also means the live drill's changes were left intact."""
    inv = bench.inventory(cell.transport)
    old = run_cli(drill_args(bench, "next", inv), tdir / "old", tdir / "logs" / "old", 300)
    old_journals = journals_in(tdir / "old")
    runs = tdir / "live"
    proc = spawn(drill_args(bench, "live", inv), runs, tdir / "logs" / "live")
    notes = [] if old == 0 else [f"the older drill exited {exit_label(old)}"]
    rv: int | None = None
    intact = False
    try:
        live = wait_for_phase(runs, "observe", proc)
        during = host_state(bench.hosts)
        t_fault = time.monotonic()
        if live is not None and old_journals:
            rv = run_cli(["revert", str(old_journals[-1]), "--json"], tdir / "old",
                         tdir / "logs" / "revert", timeout=180)
            intact = host_state(bench.hosts) == during
        watched = bench.watch(proc, t_fault, [runs, tdir / "old"],
                              t_fault + bench.ttl_s + 10 + SETTLE_S)
    except BaseException:
        reap(proc)
        raise
    if not intact:
        notes.append("the live drill's hosts were changed by the old journal's revert "
                     "(or it never got that far)")
    notes.append(f"old revert said: {last_line(tdir / 'logs' / 'revert')}")
    trial = finish(bench, cell, k, tdir, f"revert {exit_label(rv)}, live "
                   f"{exit_label(watched.exit_code)}", watched, notes, [proc])
    trial.restored = trial.restored and intact
    return trial


def bad_journal_trial(bench: Bench, cell: Cell, k: int, tdir: Path) -> Trial:
    source = finished_journal(bench, cell.transport)
    if source is None:
        raise SystemExit("no finished drill to take a journal from: see the logs in "
                         f"{bench.work}")
    bad = tdir / f"bad-{cell.fault}.jsonl"
    bad.write_bytes(corrupt(cell.fault.removeprefix("journal-"), source.read_bytes()))
    t0 = time.monotonic()
    log = tdir / "logs" / "revert"
    code = run_cli(["revert", str(bad), "--json"], tdir / "runs", log, timeout=180)
    watched = bench.watch(None, t0, [], t0 + SETTLE_S, extra_ids=frozenset({source.parent.name}))
    return finish(bench, cell, k, tdir, exit_label(code), watched, [last_line(log)], [])


TRIALS: dict[str, Callable[[Bench, Cell, int, Path], Trial]] = {
    **{f: signal_trial for f in SIGNALS},
    "link-cut": link_cut_trial,
    "unreachable": unreachable_trial,
    "journal-full": journal_full_trial,
    "old-revert": old_revert_trial,
    **{f"journal-{k}": bad_journal_trial for k in ("empty", "binary", "truncated")},
}


# ---------------------------------------------------------------- the matrix

def run_cell(bench: Bench, cell: Cell, trials: int) -> CellSummary:
    out = []
    for k in range(1, trials + 1):
        tdir = Path(tempfile.mkdtemp(prefix=f"{cell.name.replace('/', '-')}-{k}-",
                                     dir=bench.work))
        try:
            trial = TRIALS[cell.fault](bench, cell, k, tdir)
        except Exception as exc:  # one broken trial must not cost the whole matrix
            trial = Trial(cell.name, k, "bench error", restored=bench.restored(),
                          restore_s=None, notes=[f"bench error: {exc!r}"])
            trial.reset = cleanup(bench, tdir, [])
        out.append(trial)
        restore = "-" if trial.restore_s is None else f"{trial.restore_s:.1f} s"
        print(f"  {cell.name} trial {k}: exit {trial.exit}, restored {trial.restored} "
              f"({restore}), left {', '.join(trial.leftovers) or 'nothing'}, next drill "
              f"exit {exit_label(trial.next_exit)}" + (", CLEANED UP" if trial.reset else ""),
              flush=True)
    return CellSummary(cell.name, cell.description, out)


METHOD = """\
Each trial starts the drill below with `python -m ctdrill run SPEC -i INVENTORY --json` in
a session of its own (as a shell starts a job), waits for the journal record that marks
the phase (prepare: `locking`; apply: the last `intent` before the apply play; observe:
`samples`; revert: `reverting`), injects the fault, then reads the hosts from outside
ctdrill about every {poll:g} s: every netfilter sysctl and the stateless ruleset of gw,
client, venue and the kernel owner, straight from the kernel. A trial has *settled* when
the orchestrator has exited and nothing of the run can still act (no process carrying
its `CTDRILL_RUN_ID` or in its session, no armed dead-man), or at TTL + {settle:g} s.

Transports: `netns` runs the host operations through `ip netns exec`, `ssh` over SSH to
an sshd in each lab namespace; the kernel owner is local on both. Ctrl-C goes to the
whole process group, as a terminal sends it; SIGTERM and SIGKILL go to the orchestrator
alone (`kill PID`), so whatever it started must stop with it.

- **restored**: the host state equals the state before the trial once settled. For
  `old-revert` it also requires the live drill's hosts to be unchanged by the old revert.
- **time to restore**: from the fault until the state equalled the snapshot for good
  (0 when it never differed after the fault).
- **leftovers after settling**: locks and dead-man switches on the lab's hosts, ctd_*
  tables other than the lab's own `ctd_lab`, processes of the run (ssh connection
  masters, which expire by themselves after ControlPersist, are not counted).
- **next drill unattended**: a short drill run right after, with no `ctdrill revert` or
  any other hand in between, exits 0.

After that the bench cleans up (`ctdrill revert --force`, and if the lab is still not
back, a rebuilt lab); a trial that needed it is listed under findings.
"""


def page(cells: list[CellSummary], bench: Bench, spec: str, command: str,
         minutes: float) -> str:
    return (f"Command: `{command}` (took {minutes:.0f} min)\n\n"
            + METHOD.format(poll=POLL_S, settle=SETTLE_S)
            + f"\nThe drill (TTL {bench.ttl_s:g} s; the next drill is the same with a 1 s "
              "observation, the live drill of `old-revert` observes 10 s):\n\n"
              f"```yaml\n{spec}```\n\n## Results\n\n{render_goal(cells)}\n\n"
              f"{render_table(cells)}\n\n## Findings\n\n{render_findings(cells)}\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--trials", type=int, default=2, help="trials per cell (default 2)")
    ap.add_argument("--cells", action="append", metavar="SUBSTRING",
                    help="only cells whose name contains this (repeatable); names look "
                         "like sigkill@apply/netns, link-cut@observe/ssh, journal-empty/netns")
    ap.add_argument("--transport", choices=["netns", "ssh", "both"], default="both")
    ap.add_argument("--ttl", type=float, default=20.0,
                    help="the drill's dead-man TTL in seconds (default 20)")
    ap.add_argument("--list", action="store_true", help="list the selected cells and exit")
    ap.add_argument("--keep-logs", action="store_true",
                    help="keep every trial's journals and command output (else removed)")
    ap.add_argument("--no-docs", action="store_true",
                    help="do not write docs/FAULTS.md and docs/faults.json")
    args = ap.parse_args(argv)
    if args.trials < 1 or args.ttl < 14:
        ap.error("--trials must be >= 1 and --ttl >= 14 (the drill observes 4 s)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cells = select_cells(all_cells(), args.cells, args.transport)
    if args.list or not cells:
        print("\n".join(f"{c.name}: {c.description}" for c in cells) or "no cell matches")
        return 0 if cells else 2
    if os.geteuid() != 0:
        print("the fault matrix needs root (namespaces, nft, tmpfs)", file=sys.stderr)
        return 5
    command = shlex.join(["python", "-m", "bench.fault_matrix", *(argv or sys.argv[1:])])
    work = Path(tempfile.mkdtemp(prefix="ctd-faults-"))
    started = time.monotonic()
    print(f"{len(cells)} cells x {args.trials} trials; logs in {work}", flush=True)
    summaries: list[CellSummary] = []
    try:
        bench = Bench.start(args.ttl, work)
        spec = bench.specs["drill"].read_text()  # the work dir goes before the page is written
        try:
            for i, cell in enumerate(cells, 1):
                print(f"[{i}/{len(cells)}] {cell.name}: {cell.description}", flush=True)
                summaries.append(run_cell(bench, cell, args.trials))
        finally:
            changed = bench.close()
            if changed:
                print(f"restored kernel knobs: {', '.join(changed)}", flush=True)
    finally:
        manager.down(LAB)
        if args.keep_logs or not all(c.complete for c in summaries):
            print(f"logs kept in {work} (a cell missed its goal, or --keep-logs)", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(render_table(summaries))
    print(render_goal(summaries))
    if not args.no_docs:
        print(write_page("FAULTS.md", "Fault matrix", page(
            summaries, bench, spec, command, (time.monotonic() - started) / 60)))
        (DOCS / "faults.json").write_text(json.dumps(
            {"command": command, "ttl_s": args.ttl, "cells": to_json(summaries)},
            indent=1) + "\n")
    return 0 if all(c.complete for c in summaries) else 1


if __name__ == "__main__":
    raise SystemExit(main())
