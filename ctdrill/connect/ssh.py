"""An SSH host over paramiko, with host key checking on, one client per connector.

The host's key must already be in known_hosts (the target's `ctdrill_known_hosts`, else
~/.ssh/known_hosts): unknown or changed keys are refused (RejectPolicy), never learned.

SSH runs a command as one string, through the remote login shell. That string is always
built with `shlex.join` over an argv (plus two fixed words for `spawn`), never from host
or spec text pasted into a shell line: every argument reaches the program unchanged.

`spawn` runs `echo ctdrill-pid=$$; exec ARGV`: the first stdout line is the process's pid
(the shell is replaced, so the pid is the program's), which `send_signal` and `stop`
use (`kill -TERM PID` over a second channel of the same client, then `kill -KILL`). A
process whose connection is lost ends when it next writes (SIGPIPE); with tty=True
sshd hangs it up at once (SIGHUP).
"""

from __future__ import annotations

import contextlib
import re
import select
import shlex
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import paramiko

from ctdrill.connect.base import (
    DEFAULT_TIMEOUT_S,
    STOP_GRACE_S,
    TABLE_FULL_HINT,
    CommandTimedOut,
    Completed,
    Tail,
    as_bytes,
    check_argv,
    checked,
    env_argv,
    not_installed,
    shown,
    split_lines,
    timed_out,
)
from ctdrill.errors import CtdrillError, EnvironmentProblem
from ctdrill.targets.target import Target

PID_LINE = re.compile(r"ctdrill-pid=(\d+)")
PID_SEARCH_LINES = 50
"""Lines a noisy login shell (startup files) may print before the pid line."""
SIGNAL_TIMEOUT_S = 1.0
"""A kill that cannot be delivered within this (a cut link) is given up: the process
then ends at its next write, once the channel is closed."""
NOT_FOUND = ("not found", "No such file or directory")


def run_command(argv: Sequence[str]) -> str:
    """The one command string SSH needs, quoted argument by argument (shlex.join)."""
    return shlex.join(check_argv(argv))


def spawn_command(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """Print the shell's pid, then replace the shell by argv (under `env` if given)."""
    return "echo ctdrill-pid=$$; exec " + run_command(env_argv(env, check_argv(argv)))


def parse_pid(line: str) -> int | None:
    m = PID_LINE.fullmatch(line.strip())
    return int(m.group(1)) if m else None


def signal_argv(sig: int, pid: int) -> list[str]:
    """`kill -TERM 123`: the signal by name, the portable form of every shell's kill."""
    return ["kill", f"-{signal.Signals(sig).name.removeprefix('SIG')}", str(pid)]


def missing_binary(rc: int, stderr: str) -> bool:
    return rc == 127 and any(s in stderr for s in NOT_FOUND)


def connect_ssh(target: Target, timeout: float = 5.0) -> paramiko.SSHClient:
    """Connect with host key checking ON: the host's key must already be in known_hosts."""
    client = paramiko.SSHClient()
    known = target.known_hosts or str(Path("~/.ssh/known_hosts").expanduser())
    try:
        client.load_host_keys(known)
    except OSError as exc:
        raise EnvironmentProblem(f"cannot read known_hosts file {known}",
                                 "point ctdrill_known_hosts at the pinned host keys") from exc
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    where = f"{target.name} ({target.user}@{target.host}:{target.port})"
    try:
        client.connect(target.host or target.name, port=target.port, username=target.user,
                       key_filename=target.key_file, timeout=timeout, banner_timeout=timeout,
                       auth_timeout=timeout, allow_agent=False,
                       look_for_keys=target.key_file is None)
    except paramiko.BadHostKeyException as exc:
        raise EnvironmentProblem(f"host key of {where} does not match {known}",
                                 "someone may be impersonating the host; re-pin only if "
                                 "you know why the key changed") from exc
    except paramiko.AuthenticationException as exc:
        raise EnvironmentProblem(f"SSH authentication to {where} failed",
                                 "check ansible_user and ansible_ssh_private_key_file") from exc
    except paramiko.SSHException as exc:
        if "not found in known_hosts" in str(exc):
            raise EnvironmentProblem(f"host key of {where} is unknown (not in {known})",
                                     "add the host's key to that known_hosts file") from exc
        raise EnvironmentProblem(f"SSH to {where} failed: {exc}",
                                 "check that sshd runs there") from exc
    except (TimeoutError, OSError) as exc:
        hint = (TABLE_FULL_HINT if timed_out(str(exc)) or isinstance(exc, TimeoutError)
                else "check the address and that sshd runs there")
        raise EnvironmentProblem(f"cannot reach {where}: {exc or 'timed out'}", hint) from exc
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(5)
    return client


class _Late(Exception):
    """The remote command outlived its timeout."""


def _collect(chan: paramiko.Channel, timeout: float) -> tuple[bytes, bytes]:
    """stdout and stderr until EOF and the exit status, both read as they come (one
    shared window: reading one while the other fills would stall the command)."""
    end = time.monotonic() + timeout
    out, err = bytearray(), bytearray()
    while True:
        while chan.recv_ready():
            out += chan.recv(65536)
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
        if chan.eof_received or chan.closed:
            break
        left = end - time.monotonic()
        if left <= 0:
            raise _Late
        select.select([chan], [], [], min(left, 0.1))
    out += b"".join(iter(lambda: chan.recv(65536), b""))
    err += b"".join(iter(lambda: chan.recv_stderr(65536), b""))
    if not chan.status_event.wait(max(0.0, end - time.monotonic())):
        raise _Late
    return bytes(out), bytes(err)


def exec_on(transport: paramiko.Transport, argv: Sequence[str], where: str, *,
            input: bytes | str | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> Completed:
    """One command on one exec channel of an open transport."""
    args = check_argv(argv)
    try:
        chan = transport.open_session(timeout=timeout)
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise EnvironmentProblem(f"SSH to {where} failed: {exc}",
                                 "check the connection and that sshd runs there") from exc
    try:
        chan.exec_command(run_command(args))
        data = as_bytes(input)
        if data:
            chan.sendall(data)
        chan.shutdown_write()
        out, err = _collect(chan, timeout)
    except _Late:
        raise CommandTimedOut(f"'{shown(args)}' did not finish within {timeout:g} s on {where}",
                              "its channel was closed; check the host") from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise EnvironmentProblem(f"SSH to {where} failed running '{shown(args)}': {exc}",
                                 "check the connection and that sshd runs there") from exc
    finally:
        chan.close()
    stderr = err.decode(errors="replace")
    if missing_binary(chan.exit_status, stderr):
        raise not_installed(args[0], where)
    return Completed(tuple(args), chan.exit_status, out.decode(errors="replace"), stderr)


class SshSpawned:
    """A remote process on one exec channel: stdout lines streamed, a clean stop."""

    def __init__(self, transport: paramiko.Transport, argv: Sequence[str], where: str, *,
                 env: Mapping[str, str] | None = None, tty: bool = False,
                 timeout: float = 10.0) -> None:
        self._transport, self.where = transport, where
        self.pid: int | None = None
        self._tail = Tail()
        self._eof = threading.Event()
        self._reading = False
        command = spawn_command(argv, env)
        try:
            self._chan = transport.open_session(timeout=timeout)
            if tty:
                self._chan.get_pty(width=200)
            self._chan.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise EnvironmentProblem(f"cannot start '{shown(argv)}' on {where}: {exc}",
                                     "check the connection and that sshd runs there") from exc
        self._err = threading.Thread(target=lambda: self._tail.feed(split_lines(self._stderr())),
                                     daemon=True, name="ctd-ssh-stderr")
        self._err.start()
        self._lines = split_lines(self._stdout())
        self.pid = self._read_pid()
        if self.pid is None:
            self.wait(timeout)
            self.stop()
            raise EnvironmentProblem(f"cannot start '{shown(argv)}' on {where}",
                                     self.stderr_tail() or "the remote shell printed no pid")

    def _stdout(self) -> Iterator[bytes]:
        try:
            with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
                yield from iter(lambda: self._chan.recv(65536), b"")
        finally:
            self._eof.set()

    def _stderr(self) -> Iterator[bytes]:
        with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
            yield from iter(lambda: self._chan.recv_stderr(65536), b"")

    def _read_pid(self) -> int | None:
        for _, line in zip(range(PID_SEARCH_LINES), self._lines, strict=False):
            pid = parse_pid(line)
            if pid is not None:
                return pid
        return None

    def __iter__(self) -> Iterator[str]:
        self._reading = True
        return self._lines

    def write(self, data: str | bytes) -> None:
        self._chan.sendall(as_bytes(data) or b"")

    def close_stdin(self) -> None:
        with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
            self._chan.shutdown_write()

    def send_signal(self, sig: int) -> None:
        """`kill` over a second channel of the same connection (never a new one: a lost
        connection is not re-opened to stop a process)."""
        if self.pid is None or self.poll() is not None:
            return
        if not self._transport.is_active():
            raise EnvironmentProblem(f"cannot signal pid {self.pid} on {self.where}",
                                     "the SSH connection is gone")
        exec_on(self._transport, signal_argv(sig, self.pid), self.where,
                timeout=SIGNAL_TIMEOUT_S)

    def poll(self) -> int | None:
        return int(self._chan.exit_status) if self._chan.status_event.is_set() else None

    def wait(self, timeout: float | None = None) -> int | None:
        if not self._chan.status_event.wait(timeout):
            return None
        self._err.join(1.0)
        return self.poll()

    def stderr_tail(self) -> str:
        return self._tail.last()

    def _wait_eof(self, timeout: float) -> None:
        """Until the server has sent all output (its EOF), which paramiko only flags."""
        end = time.monotonic() + timeout
        while not (self._chan.eof_received or self._chan.closed):
            left = end - time.monotonic()
            if left <= 0 or self._eof.wait(min(left, 0.01)):
                return

    def stop(self, grace: float = STOP_GRACE_S) -> int | None:
        """SIGTERM, then SIGKILL, each given `grace` s to end it; then the channel closes
        (the remote sshd reaps the process), once a reader has had the output that was
        still on its way (an exit status can overtake the last data)."""
        ended = self.poll() is not None
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if ended:
                break
            try:
                self.send_signal(sig)
            except CtdrillError:
                break  # unreachable: it ends at its next write (SIGPIPE)
            ended = self.wait(grace) is not None
        if ended and self._reading:
            self._wait_eof(grace)
        with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
            self._chan.close()
        self._err.join(1.0)
        return self.poll()


class SshConnector:
    """One target over SSH. One client, connected on first use (again if it died), and
    shared by every command, spawn and file of this connector."""

    def __init__(self, target: Target, *, connect_timeout: float = 5.0) -> None:
        self.target = target
        self.where = f"{target.name} ({target.user}@{target.host}:{target.port})"
        self.python = target.python
        self._timeout = connect_timeout
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()

    def transport(self) -> paramiko.Transport:
        with self._lock:
            live = self._client.get_transport() if self._client is not None else None
            if live is None or not live.is_active():
                if self._client is not None:
                    self._client.close()
                self._client = connect_ssh(self.target, self._timeout)
                live = self._client.get_transport()
                assert live is not None
            return live

    def run(self, argv: Sequence[str], *, input: bytes | str | None = None,
            timeout: float = DEFAULT_TIMEOUT_S, check: bool = True) -> Completed:
        done = exec_on(self.transport(), argv, self.where, input=input, timeout=timeout)
        return checked(done, self.where) if check else done

    def spawn(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
              tty: bool = False) -> SshSpawned:
        return SshSpawned(self.transport(), argv, self.where, env=env, tty=tty)

    def put(self, data: bytes, path: str, mode: int = 0o644) -> None:
        """Over SFTP; the mode is set before the data is written."""
        try:
            sftp = paramiko.SFTPClient.from_transport(self.transport())
            assert sftp is not None
            try:
                with sftp.open(path, "wb") as fh:
                    fh.chmod(mode)
                    fh.write(data)
            finally:
                sftp.close()
        except (paramiko.SSHException, OSError) as exc:
            raise EnvironmentProblem(f"cannot write {path} on {self.where}: {exc}",
                                     "check the directory and its permissions") from exc

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = None
