"""Local children die with ctdrill and are out of reach of the terminal's Ctrl-C.

Every wait here is on a condition (a pidfd turning readable, a line echoed back); the
timeouts only bound a hang.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import threading
from pathlib import Path

from ctdrill.system.children import run_child, spawn_child
from tests.waiting import wait_until

HANG_S = 30.0
SLEEPER = [sys.executable, "-c", "import signal\nwhile True: signal.pause()"]
ECHO = [sys.executable, "-u", "-c", "import sys\nfor line in sys.stdin: print(line, end='')"]
PARENT = f"""
import sys
from ctdrill.system.children import spawn_child
child = spawn_child({SLEEPER!r})
print(child.pid, flush=True)
sys.stdin.read()
"""


def exited(pid_fd: int, timeout: float) -> bool:
    """True once the process behind the pidfd has exited (a zombie counts)."""
    return bool(select.select([pid_fd], [], [], timeout)[0])


def test_child_dies_when_its_parent_is_sigkilled() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    child_pid = 0
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        pid_fd = os.pidfd_open(child_pid)
        try:
            # its own session: a terminal's Ctrl-C to ctdrill's process group misses it
            assert os.getsid(child_pid) == child_pid != os.getsid(parent.pid)
            assert not exited(pid_fd, 0), "the child died before its parent"
            parent.kill()
            parent.wait()
            assert exited(pid_fd, HANG_S), "the child outlived its SIGKILLed parent"
        finally:
            os.close(pid_fd)
    finally:
        parent.kill()
        parent.wait()
        if child_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child_pid, 9)


def test_a_child_spawned_by_a_short_lived_thread_outlives_that_thread() -> None:
    """The parent-death signal follows the forking *thread*: the helper forks from one
    long-lived thread, so a caller thread that ends (the surge starts in one) does not
    take its children with it."""
    tids: list[int] = []
    procs: list[subprocess.Popen[str]] = []

    def start() -> None:
        tids.append(threading.get_native_id())
        procs.append(spawn_child(ECHO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True))

    thread = threading.Thread(target=start)
    thread.start()
    thread.join()
    proc = procs[0]
    try:
        # once the thread is gone from /proc, a death signal it caused has been sent;
        # a SIGKILLed child could not echo a line written after that
        wait_until(lambda: not Path(f"/proc/self/task/{tids[0]}").exists(),
                   "the caller thread to end", HANG_S)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("ping\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "ping\n"
    finally:
        proc.kill()
        proc.wait()


def test_run_child_captures_output_and_exit_status() -> None:
    done = run_child([sys.executable, "-c", "import sys; print('out'); "
                      "print('err', file=sys.stderr); sys.exit(3)"])
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
    fed = run_child([sys.executable, "-c", "import sys; print(sys.stdin.read().upper())"],
                    input_text="abc")
    assert fed.stdout == "ABC\n"


def test_a_child_never_reads_the_terminal_by_default() -> None:
    proc = spawn_child([sys.executable, "-c", "import sys; print(repr(sys.stdin.read()))"],
                       stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=HANG_S)
    assert out == "''\n"
