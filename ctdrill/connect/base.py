"""The connector interface: how ctdrill reaches a host (pyinfra's connector idea, kept small).

Every access to a host (telemetry agent, probe scripts, class counting, surge plumbing,
lab configuration inside a host's namespace) goes through one `Connector`: run an argv
and collect its output, spawn a long-running process whose stdout streams line by line
and that stops cleanly, put a file. One module per transport (`local`, `netns`, `ssh`);
`connect.factory.connector_for(target)` picks it from the Target's transport.

Commands are argv lists, never shell strings built from host or spec values. This
module also holds the transport-independent pure parts: line splitting, output tails,
the `env` prefix, a short display of an argv for error messages.
"""

from __future__ import annotations

import collections
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ctdrill.errors import EnvironmentProblem

DEFAULT_TIMEOUT_S = 60.0
STOP_GRACE_S = 2.0
"""How long a stopped process has between SIGTERM and SIGKILL."""
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SHOWN_ARG = 40
"""Longer arguments (a shipped script's source) are elided in messages."""


class CommandFailed(EnvironmentProblem):
    """A command exited non-zero (on any host; system/run.py re-exports it)."""


class CommandTimedOut(EnvironmentProblem):
    """A command ran past its timeout; it was killed."""


@dataclass(frozen=True)
class Completed:
    """A finished command: its exit code and decoded output."""

    argv: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


class Spawned(Protocol):
    """A long-running process on a host. Iterating gives its stdout lines (without line
    ends) as they arrive; one consumer only. `stop()` always leaves nothing running."""

    pid: int | None
    """The process id on its host (None when the transport cannot tell)."""

    def __iter__(self) -> Iterator[str]: ...

    def write(self, data: str | bytes) -> None:
        """Write to the process's stdin."""

    def close_stdin(self) -> None: ...

    def send_signal(self, sig: int) -> None: ...

    def poll(self) -> int | None:
        """The exit code, or None while it runs (negative: killed by a signal)."""

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the exit (and its stderr); None if still running at the timeout."""

    def stderr_tail(self) -> str:
        """The last non-empty stderr line seen (for one-line errors)."""

    def stop(self, grace: float = STOP_GRACE_S) -> int | None:
        """SIGTERM, then SIGKILL after `grace` s; reaped, pipes closed. Idempotent."""


class Connector(Protocol):
    """One host, reached over one transport."""

    where: str
    """How the host is reached, for messages ('netns ctd-x-gw', 'gw (root@h:22)')."""
    python: str
    """The interpreter that runs shipped stdlib scripts there (`python -u -c SOURCE`)."""

    def run(self, argv: Sequence[str], *, input: bytes | str | None = None,
            timeout: float = DEFAULT_TIMEOUT_S, check: bool = True) -> Completed:
        """Run argv to completion. check: a non-zero exit raises CommandFailed (one line);
        a missing binary raises EnvironmentProblem; a timeout raises CommandTimedOut."""

    def spawn(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
              tty: bool = False) -> Spawned:
        """Start argv (with `env` added to its environment) and return at once.
        tty: run under a pseudo-terminal where the transport has one (ssh), so a lost
        connection hangs the process up; stdout and stderr then arrive merged."""

    def put(self, data: bytes, path: str, mode: int = 0o644) -> None:
        """Write `data` to `path` on the host, with `mode`."""

    def close(self) -> None:
        """Release the connection (an SSH client); spawned processes must be stopped first."""


def split_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Lines of a byte stream that arrives in arbitrary chunks: split on LF, a CR before
    it dropped (a pty's CRLF), decoded as UTF-8 (bad bytes replaced). A last line
    without LF is still given at the end."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            yield raw.removesuffix(b"\r").decode(errors="replace")
    if pending:
        yield pending.removesuffix(b"\r").decode(errors="replace")


class Tail:
    """The last few lines of a stream read by a thread (stderr), for one-line errors."""

    def __init__(self, keep: int = 20) -> None:
        self._lines: collections.deque[str] = collections.deque(maxlen=keep)
        self._lock = threading.Lock()

    def feed(self, lines: Iterable[str]) -> None:
        for line in lines:
            with self._lock:
                self._lines.append(line)

    def last(self) -> str:
        with self._lock:
            filled = [ln.strip() for ln in self._lines if ln.strip()]
        return filled[-1] if filled else ""


def env_argv(env: Mapping[str, str] | None, argv: Sequence[str]) -> list[str]:
    """argv under `env NAME=VALUE ...`: extra variables for a transport that has no
    environment of its own to pass (ssh). Names are checked; values stay one argument."""
    if not env:
        return list(argv)
    bad = [k for k in env if not ENV_NAME.fullmatch(k)]
    if bad:
        raise ValueError(f"not an environment variable name: {bad[0]!r}")
    return ["env", *(f"{k}={v}" for k, v in env.items()), *argv]


def as_bytes(data: bytes | str | None) -> bytes | None:
    return data.encode() if isinstance(data, str) else data


def shown(argv: Sequence[str]) -> str:
    """argv for a message: long or multi-line arguments (script sources) elided."""
    return " ".join(_short(a) for a in argv)


def _short(arg: str) -> str:
    if len(arg) <= SHOWN_ARG and "\n" not in arg:
        return arg
    return arg.split("\n", 1)[0][:SHOWN_ARG] + "..."


def checked(done: Completed, where: str) -> Completed:
    """Raise CommandFailed (its last output line as hint) if the command failed."""
    if done.ok:
        return done
    detail = (done.stderr or done.stdout).strip().splitlines()
    raise CommandFailed(f"'{shown(done.argv)}' failed ({done.rc}) on {where}",
                        detail[-1] if detail else "no output")


TABLE_FULL_HINT = ("its conntrack table may be full: new connections to it are dropped "
                   "while it is (keep a path in: docs/REAL-HOSTS.md)")
"""Said whenever a new connection to a host times out: a full table drops the SYN of a
new SSH connection silently, exactly like a dead host or a firewall."""


def timed_out(message: str) -> bool:
    text = message.lower()
    return "timed out" in text or "timeout" in text


def not_installed(command: str, where: str) -> EnvironmentProblem:
    return EnvironmentProblem(f"required command '{command}' is not installed on {where}",
                              "install it there (scripts/setup.sh on this machine)")


def check_argv(argv: Sequence[str]) -> list[str]:
    """A non-empty list of strings (a shell string is refused: argv lists only)."""
    if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
        raise TypeError("argv must be a non-empty list of strings")
    return list(argv)
