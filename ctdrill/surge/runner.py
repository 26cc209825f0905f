"""Run a planned surge: start the workers, start them together, watch, stop, report.

The controller never sends a packet itself. It builds the frames' recipe, starts one
worker process per core (each pinned, in its own session), installs the answer-
suppressing nft tables, says `go`, and relays a stop as one SIGTERM per worker. The
tables are removed and the workers reaped on every way out.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ctdrill.connect import Spawned
from ctdrill.connect.local import LocalSpawned
from ctdrill.errors import CtdrillError, EnvironmentProblem
from ctdrill.surge import suppress
from ctdrill.surge.build import build
from ctdrill.surge.plan import SurgePlan
from ctdrill.surge.result import aggregate
from ctdrill.system.children import spawn_child

SOFTNET = Path("/proc/net/softnet_stat")
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
"""A stopped worker still resets its ASSURED flows (teardown, capped at 10 s)."""


def backlog_drops() -> int:
    """Frames the kernel dropped at a full per-CPU backlog (all CPUs, all namespaces):
    they left the socket, so they count as sent, but never reached conntrack."""
    try:
        rows = SOFTNET.read_text().split("\n")
    except OSError:
        return 0
    return sum(int(r.split()[1], 16) for r in rows if len(r.split()) > 1)


class WorkerProc:
    """One payload process (a sender, or the venue's handshake partner) and its lines."""

    def __init__(self, proc: Spawned, on_phase_end: Callable[[], None] = lambda: None
                 ) -> None:
        self.proc = proc
        self.ready = threading.Event()
        self.finished = threading.Event()
        self.failed = ""
        self.progress: dict[str, Any] = {}
        self.done: dict[str, Any] | None = None
        self.signalled = False
        self.phases_ended = 0
        self._on_phase_end = on_phase_end
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True, name="ctd-surge-rd")
        self._thread.start()

    @classmethod
    def local(cls, config: dict[str, Any], on_phase_end: Callable[[], None]) -> WorkerProc:
        """A worker on this machine (it enters its namespaces itself). Own session;
        SIGTERM if the controller dies: the worker's own stop path, which still resets
        its ASSURED flows."""
        popen = spawn_child([sys.executable, "-m", "ctdrill.surge.worker"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, death_signal=signal.SIGTERM)
        proc = LocalSpawned(popen)
        proc.write(json.dumps(config) + "\n")
        return cls(proc, on_phase_end)

    def _read(self) -> None:
        for line in self.proc:
            try:
                msg = json.loads(line[line.find("{"):]) if "{" in line else None
            except ValueError:
                continue
            if isinstance(msg, dict):
                self._handle(msg)
        rc = self.proc.wait(STOP_TIMEOUT_S)
        if not self.failed and self.done is None:
            self.failed = self.proc.stderr_tail() or f"worker exited with {rc}"
        self.ready.set()
        self.finished.set()
        self._on_phase_end()  # a dead worker no longer holds the barrier

    def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "ready":
            self.ready.set()
        elif kind == "progress":
            self.progress = msg
        elif kind == "phase_end":
            self.progress = msg
            self.phases_ended += 1
            self._on_phase_end()
        elif kind == "done":
            self.done = msg
        elif kind == "failed":
            self.failed = str(msg.get("error", "failed"))
            self.ready.set()

    def send(self, line: str) -> None:
        """A control line (`go`, `next`); stdin stays open for the next one."""
        with self._lock, contextlib.suppress(OSError, ValueError, CtdrillError):
            self.proc.write(line + "\n")

    def cancel(self) -> None:
        """Close stdin: a worker waiting for `go` or `next` stops there."""
        with self._lock:
            self.proc.close_stdin()

    def running(self) -> bool:
        return self.proc.poll() is None and self.done is None

    def signal(self) -> None:
        """One SIGTERM; a second would skip the ASSURED teardown."""
        if not self.signalled and self.proc.poll() is None:
            self.signalled = True
            with contextlib.suppress(ProcessLookupError, CtdrillError):
                self.proc.send_signal(signal.SIGTERM)

    def reap(self, timeout: float) -> None:
        if not self.finished.wait(timeout):
            self.proc.stop()
            self.finished.wait(2)
        self.proc.stop()


class SurgeRun:
    """One surge: start() returns once packets flow; stop() returns the result."""

    def __init__(self, plan: SurgePlan) -> None:
        self.plan = plan
        self.workers: list[WorkerProc] = []
        self.summary: dict[str, Any] = {}
        self._stack = contextlib.ExitStack()
        self._workdir: Path | None = None
        self._stop_reason: str | None = None
        self._result: dict[str, Any] | None = None
        self._barrier_lock = threading.Lock()
        self._released = 0
        self._drops0 = 0
        self.started_at = 0.0

    def start(self) -> None:
        """prepare() then go(): returns once packets flow."""
        self.prepare()
        self.go()

    def go(self) -> None:
        """The common start: every ready process is told `go`."""
        self._drops0 = backlog_drops()
        self.started_at = time.time()
        for w in self.workers:
            w.send("go")

    def prepare(self) -> None:
        """Everything up to the first packet: frames built, workers ready, silences on."""
        self._workdir = Path(tempfile.mkdtemp(prefix="ctd-surge-"))
        try:
            built = build(self.plan, self._workdir)
            self.summary = built.summary
            self.workers = [WorkerProc.local(c, self._phase_barrier) for c in built.configs]
            deadline = time.monotonic() + READY_TIMEOUT_S
            for w in self.workers:
                w.ready.wait(max(0.0, deadline - time.monotonic()))
            failed = [w.failed for w in self.workers if w.failed or not w.ready.is_set()]
            if failed:
                raise EnvironmentProblem(f"surge worker failed to start: {failed[0] or 'timeout'}",
                                         "check the lab ('ctdrill lab status')")
            self._stack.enter_context(suppress.silenced(built.silences))
        except BaseException:
            self._shutdown()
            raise

    def _phase_barrier(self) -> None:
        """Release the next phase once every live worker has ended the current one."""
        with self._barrier_lock:
            live = [w for w in self.workers if not w.finished.is_set()]
            if not live:
                return
            level = min(w.phases_ended for w in live)
            if level > self._released and all(w.phases_ended == level for w in live):
                self._released = level
                self._release(live)

    def _release(self, live: list[WorkerProc]) -> None:
        for w in live:
            w.send("next")

    def totals(self) -> dict[str, Any]:
        """Live sums of the workers' latest progress."""
        keys = ("flows", "completed", "packets", "errors", "enobufs")
        out: dict[str, Any] = {k: 0 for k in keys}
        for w in self.workers:
            src = w.done or w.progress
            for k in keys:
                out[k] += int(src.get(k, 0))
        phases = [str((w.done or w.progress).get("phase", "")) for w in self.workers]
        out["phase"] = phases[0] if phases else ""
        return out

    def finished(self) -> bool:
        return all(w.finished.is_set() for w in self.workers)

    def wait(self, timeout: float | None = None) -> bool:
        end = None if timeout is None else time.monotonic() + timeout
        for w in self.workers:
            left = None if end is None else max(0.0, end - time.monotonic())
            if not w.finished.wait(left):
                return False
        return True

    def stop(self, reason: str | None = None) -> dict[str, Any]:
        """Stop (early if still running), reap, clean up; the result, truthful counts."""
        if self._result is not None:
            return self._result
        if reason and not self.finished():
            self._stop_reason = reason
        self._shutdown()
        reports = [w.done for w in self.workers if w.done is not None]
        result = aggregate(reports, stopped=self._stop_reason)
        result["backlog_drops"] = backlog_drops() - self._drops0 if self.started_at else 0
        failures = [w.failed for w in self.workers if w.failed]
        if failures and not result["error"]:
            result["error"] = failures[0]
        spec = self.plan.spec
        self._result = {"kind": "surge", "source": self.plan.source,
                        "destination": str(self.plan.destination),
                        "protocol": spec.protocol, "mode": spec.mode,
                        "shape": spec.shape.kind, **result}
        return self._result

    def _shutdown(self) -> None:
        try:
            for w in self.workers:
                if w.running():
                    if w.ready.is_set() and self.started_at:
                        w.signal()
                    w.cancel()
            for w in self.workers:
                w.reap(STOP_TIMEOUT_S)
        finally:
            self._stack.close()
            if self._workdir is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)
                self._workdir = None


class Surge(Protocol):
    """What the CLI, the engine and the bench drive: a local or a remote surge."""

    started_at: float

    def start(self) -> None: ...

    def prepare(self) -> None: ...

    def go(self) -> None: ...

    def finished(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...

    def totals(self) -> dict[str, Any]: ...

    def stop(self, reason: str | None = None) -> dict[str, Any]: ...
