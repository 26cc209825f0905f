"""This machine's initial namespace: commands and processes run here, as ctdrill's children.

Every process starts through system/children.spawn_child: in its own session (a
terminal's Ctrl-C reaches ctdrill alone, which stops children in order) and with a
parent-death signal (nothing outlives a killed ctdrill). `NetnsConnector` is this
connector with an `ip netns exec` prefix.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any, cast

from ctdrill.connect.base import (
    DEFAULT_TIMEOUT_S,
    STOP_GRACE_S,
    CommandTimedOut,
    Completed,
    Tail,
    as_bytes,
    check_argv,
    checked,
    not_installed,
    shown,
    split_lines,
)
from ctdrill.errors import EnvironmentProblem
from ctdrill.system.children import spawn_child


def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    """What a pipe delivers, as it arrives; the file is closed at its end."""
    reader = cast(io.BufferedReader, stream)
    try:
        while True:
            try:
                chunk = reader.read1(65536)
            except (OSError, ValueError):  # closed under us by stop()
                return
            if not chunk:
                return
            yield chunk
    finally:
        with contextlib.suppress(OSError, ValueError):
            reader.close()


class LocalSpawned:
    """A child process: stdout lines by iteration, stderr's tail kept by a thread."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        self.proc = proc
        self.pid: int | None = proc.pid
        self._tail = Tail()
        self._write_lock = threading.Lock()
        self._iterated = False
        self._lines = split_lines(_chunks(proc.stdout))
        stderr = proc.stderr
        self._err = threading.Thread(target=lambda: self._tail.feed(split_lines(_chunks(stderr))),
                                     daemon=True, name="ctd-stderr")
        self._err.start()

    def __iter__(self) -> Iterator[str]:
        self._iterated = True
        return self._lines

    def write(self, data: str | bytes) -> None:
        with self._write_lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(as_bytes(data) or b"")
            self.proc.stdin.flush()

    def close_stdin(self) -> None:
        with self._write_lock, contextlib.suppress(OSError, ValueError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)  # a no-op once the child is reaped

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._err.join(1.0)
        return rc

    def stderr_tail(self) -> str:
        return self._tail.last()

    def stop(self, grace: float = STOP_GRACE_S) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            if self.wait(grace) is None:
                self.proc.kill()
                self.proc.wait()
        self.close_stdin()
        self._err.join(1.0)
        if not self._iterated:  # a reader closes stdout itself at its end
            with contextlib.suppress(OSError, ValueError):
                assert self.proc.stdout is not None
                self.proc.stdout.close()
        return self.proc.returncode


class LocalConnector:
    """Commands here. Subclasses change only `wrap` (the argv actually started)."""

    where = "this host"
    python = sys.executable

    def wrap(self, argv: list[str]) -> list[str]:
        return argv

    def require(self, command: str) -> None:
        """A missing binary is one clear error before anything starts."""
        found = (os.access(command, os.X_OK) if "/" in command
                 else shutil.which(command) is not None)
        if not found:
            raise not_installed(command, self.where)

    def _start(self, argv: list[str], **popen: Any) -> subprocess.Popen[bytes]:
        self.require(argv[0])
        try:
            proc: subprocess.Popen[bytes] = spawn_child(self.wrap(argv), **popen)
        except FileNotFoundError as exc:
            raise not_installed(argv[0], self.where) from exc
        return proc

    def run(self, argv: Sequence[str], *, input: bytes | str | None = None,
            timeout: float = DEFAULT_TIMEOUT_S, check: bool = True) -> Completed:
        args = check_argv(argv)
        proc = self._start(args, stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(as_bytes(input), timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise CommandTimedOut(f"'{shown(args)}' did not finish within {timeout:g} s "
                                  f"on {self.where}", "it was killed; check the host") from None
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        done = Completed(tuple(args), proc.returncode, out.decode(errors="replace"),
                         err.decode(errors="replace"))
        return checked(done, self.where) if check else done

    def spawn(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
              tty: bool = False) -> LocalSpawned:
        """tty is not needed here: a local child dies with ctdrill anyway."""
        extra = {"env": {**os.environ, **env}} if env else {}
        proc = self._start(check_argv(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, **extra)
        return LocalSpawned(proc)

    def put(self, data: bytes, path: str, mode: int = 0o644) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
            try:
                os.fchmod(fd, mode)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
        except OSError as exc:
            raise EnvironmentProblem(f"cannot write {path} on {self.where}: {exc.strerror}",
                                     "check the directory and its permissions") from exc

    def close(self) -> None:
        return None
