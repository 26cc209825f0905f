"""Local child processes that die with ctdrill and never see the terminal's Ctrl-C.

Every long-lived local child (telemetry agents, probe venue and client, surge workers)
is started here, so that:

- it runs in its own session: a Ctrl-C (SIGINT to the terminal's foreground process
  group) reaches ctdrill alone, which stops the children in order and journals the
  operator's interrupt, instead of children dying first and the drill mistaking that
  for lost telemetry;
- it carries a parent-death signal (prctl PR_SET_PDEATHSIG), so a SIGKILLed
  orchestrator leaves nothing running. The kernel sends that signal when the *thread*
  that forked the child ends, so every child is forked by one spawner thread that
  lives as long as the process, never by a short-lived caller thread.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)
_PRCTL = _LIBC.prctl  # resolved here: the forked child only calls it
_PRCTL.restype = ctypes.c_int


def _child_setup(parent: int, death_signal: int) -> Callable[[], None]:
    """Runs in the forked child before exec: ask for `death_signal` when the parent
    dies, and take it at once if the parent is already gone (the fork raced its death)."""

    def setup() -> None:
        if _PRCTL(ctypes.c_int(PR_SET_PDEATHSIG), ctypes.c_ulong(death_signal),
                  ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:
            os.kill(os.getpid(), death_signal)

    return setup


Job = tuple[Callable[[], Any], "Future[Any]"]


class _Spawner:
    """One daemon thread that forks every child, restarted in a forked copy of ctdrill."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()

    def _serve(self, jobs: queue.SimpleQueue[Job]) -> None:
        while True:
            fn, fut = jobs.get()
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except BaseException as exc:  # handed to the caller, raised there
                    fut.set_exception(exc)

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        with self._lock:
            if self._pid != os.getpid():
                self._jobs = queue.SimpleQueue()
                threading.Thread(target=self._serve, args=(self._jobs,), daemon=True,
                                 name="ctd-spawner").start()
                self._pid = os.getpid()
            fut: Future[Any] = Future()
            self._jobs.put((fn, fut))
        return fut


_SPAWNER = _Spawner()


def _kill_unclaimed(fut: Future[Any]) -> None:
    """The caller stopped waiting (KeyboardInterrupt): nobody will stop this child."""
    if not fut.cancelled() and fut.exception() is None:
        proc: subprocess.Popen[Any] = fut.result()
        proc.kill()
        proc.wait()


def spawn_child(argv: Sequence[str], *, death_signal: int = signal.SIGKILL,
                **popen: Any) -> subprocess.Popen[Any]:
    """subprocess.Popen(argv, **popen) in its own session, with `death_signal` sent to
    it if ctdrill dies. stdin defaults to /dev/null (a child never reads the terminal).
    SIGTERM as death signal lets a child clean up (surge workers reset their flows)."""
    popen.setdefault("stdin", subprocess.DEVNULL)
    popen["start_new_session"] = True
    popen["preexec_fn"] = _child_setup(os.getpid(), int(death_signal))
    fut = _SPAWNER.submit(lambda: subprocess.Popen(list(argv), **popen))
    try:
        proc: subprocess.Popen[Any] = fut.result()
    except BaseException:
        fut.add_done_callback(_kill_unclaimed)
        raise
    return proc


def run_child(argv: Sequence[str], *, timeout: float = 60.0,
              input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    """subprocess.run's capture for a short command, started as spawn_child does: a
    Ctrl-C cannot kill it mid-output (a torn reading), and it dies with ctdrill."""
    proc = spawn_child(argv, stdin=subprocess.DEVNULL if input_text is None else subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(input_text, timeout=timeout)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)
