"""The SSH connector's process control against a fake paramiko transport: which commands
go over the wire (pid first, `kill -TERM` then `kill -KILL` on the same connection), and
that a lost connection never blocks a stop. The real sshd is in
tests/integration/test_connectors.py."""

from __future__ import annotations

import queue
import shlex
import threading
from collections.abc import Callable
from typing import Any

import pytest

from ctdrill.connect import ssh as ssh_mod
from ctdrill.connect.ssh import SshConnector, SshSpawned
from ctdrill.errors import EnvironmentProblem
from ctdrill.system.run import CommandFailed
from ctdrill.targets.target import Target

HANG_S = 30.0


class FakeChannel:
    """Just enough of paramiko.Channel: queued stdout/stderr, an exit status, close."""

    def __init__(self, on_exec: Callable[[FakeChannel, str], None]) -> None:
        self.on_exec = on_exec
        self.command = ""
        self.pty = False
        self.status_event = threading.Event()
        self.exit_status = -1
        self.closed = False
        self.eof_received = False
        self.sent = b""
        self._out: queue.Queue[bytes] = queue.Queue()
        self._err: queue.Queue[bytes] = queue.Queue()

    # the remote side
    def emit(self, out: bytes = b"", err: bytes = b"") -> None:
        if out:
            self._out.put(out)
        if err:
            self._err.put(err)

    def finish(self, rc: int = -1) -> None:
        self.exit_status = rc
        self.eof_received = True
        self._out.put(b"")
        self._err.put(b"")
        self.status_event.set()

    # paramiko's side
    def get_pty(self, width: int = 80) -> None:
        self.pty = True

    def exec_command(self, command: str) -> None:
        self.command = command
        self.on_exec(self, command)

    def recv(self, n: int) -> bytes:
        return b"" if self.closed and self._out.empty() else self._take(self._out)

    def recv_stderr(self, n: int) -> bytes:
        return b"" if self.closed and self._err.empty() else self._take(self._err)

    def _take(self, q: queue.Queue[bytes]) -> bytes:
        chunk = q.get(timeout=HANG_S)
        if chunk == b"":
            q.put(b"")  # EOF stays EOF
        return chunk

    def recv_ready(self) -> bool:
        return False  # everything is taken by the final drain (eof is already set)

    def recv_stderr_ready(self) -> bool:
        return False

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def shutdown_write(self) -> None:
        return None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._out.put(b"")
            self._err.put(b"")
            self.status_event.set()


class FakeTransport:
    """Sessions on one connection; `remote` decides what each command does."""

    def __init__(self, remote: Callable[[FakeChannel, str], None]) -> None:
        self.remote = remote
        self.active = True
        self.channels: list[FakeChannel] = []

    def open_session(self, timeout: float | None = None) -> FakeChannel:
        if not self.active:
            raise AssertionError("a session was opened on a dead connection")
        chan = FakeChannel(self.remote)
        self.channels.append(chan)
        return chan

    def is_active(self) -> bool:
        return self.active

    def commands(self) -> list[str]:
        return [c.command for c in self.channels]


def process(obeys: tuple[str, ...] = ("TERM", "KILL"), noise: bytes = b"") -> FakeTransport:
    """A remote sshd whose spawned process (pid 4242) prints `hello` and dies on the
    signals in `obeys`; `kill` itself always succeeds."""
    main: list[FakeChannel] = []

    def remote(chan: FakeChannel, command: str) -> None:
        if command.startswith("echo ctdrill-pid=$$; exec "):
            main.append(chan)
            chan.emit(noise + b"ctdrill-pid=4242\nhel", err=b"starting\n")
            chan.emit(b"lo\n")
        elif command.startswith("kill "):
            if command.split()[1].lstrip("-") in obeys:
                main[0].finish(-1)
            chan.finish(0)
        else:
            raise AssertionError(f"unexpected command {command!r}")

    return FakeTransport(remote)


def test_spawn_reads_the_pid_first_then_streams_lines() -> None:
    t = process(noise=b"motd from a noisy .bashrc\n")
    proc = SshSpawned(t, ["python3", "-u", "-c", "x = 'a b'"], "gw (root@h:22)")  # type: ignore[arg-type]
    assert proc.pid == 4242
    assert next(iter(proc)) == "hello"
    cmd = t.channels[0].command
    assert shlex.split(cmd.removeprefix("echo ctdrill-pid=$$; exec ")) == [
        "python3", "-u", "-c", "x = 'a b'"]
    assert proc.poll() is None
    proc.stop(grace=HANG_S)


def test_stop_sends_sigterm_over_the_same_connection_and_closes_the_channel() -> None:
    t = process()
    proc = SshSpawned(t, ["agent"], "gw")  # type: ignore[arg-type]
    list(zip(range(1), proc, strict=False))
    proc.stop(grace=HANG_S)
    assert t.commands()[1:] == ["kill -TERM 4242"]
    assert t.channels[0].closed
    assert proc.stderr_tail() == "starting"


def test_a_process_that_ignores_sigterm_gets_sigkill() -> None:
    t = process(obeys=("KILL",))
    proc = SshSpawned(t, ["stubborn"], "gw")  # type: ignore[arg-type]
    proc.stop(grace=0.05)
    assert t.commands()[1:] == ["kill -TERM 4242", "kill -KILL 4242"]
    assert proc.poll() is not None


def test_a_lost_connection_does_not_block_the_stop() -> None:
    t = process()
    proc = SshSpawned(t, ["agent"], "gw")  # type: ignore[arg-type]
    t.active = False
    proc.stop(grace=HANG_S)  # no kill is attempted (open_session would fail the test)
    assert t.channels[0].closed and len(t.channels) == 1
    proc._chan.status_event = threading.Event()  # as if it still ran
    with pytest.raises(EnvironmentProblem) as err:
        proc.send_signal(15)
    assert err.value.hint == "the SSH connection is gone"


def test_a_shell_that_prints_no_pid_is_one_clear_error() -> None:
    def remote(chan: FakeChannel, command: str) -> None:
        chan.emit(err=b"bash: /etc/profile: line 3: syntax error\n")
        chan.finish(2)

    with pytest.raises(EnvironmentProblem) as err:
        SshSpawned(FakeTransport(remote), ["agent"], "gw")  # type: ignore[arg-type]
    assert err.value.one_line() == \
        "cannot start 'agent' on gw: bash: /etc/profile: line 3: syntax error"


def test_tty_asks_for_a_pty() -> None:
    t = process()
    proc = SshSpawned(t, ["ctdrill", "surge"], "gw", tty=True)  # type: ignore[arg-type]
    assert t.channels[0].pty
    proc.stop(grace=HANG_S)


class FakeClient:
    def __init__(self, transport: FakeTransport) -> None:
        self.transport = transport
        self.closed = False

    def get_transport(self) -> FakeTransport:
        return self.transport

    def close(self) -> None:
        self.closed = True


def connector(monkeypatch: pytest.MonkeyPatch,
              remote: Callable[[FakeChannel, str], None]) -> tuple[SshConnector, list[Any]]:
    clients: list[FakeClient] = []

    def connect(target: Target, timeout: float = 5.0) -> FakeClient:
        clients.append(FakeClient(FakeTransport(remote)))
        return clients[-1]

    monkeypatch.setattr(ssh_mod, "connect_ssh", connect)
    return SshConnector(Target("gw", "ssh", host="h")), clients


def test_run_reuses_one_client_and_quotes_each_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    def remote(chan: FakeChannel, command: str) -> None:
        chan.emit(out=b"|".join(a.encode() for a in shlex.split(command)) + b"\n")
        chan.finish(0)

    conn, clients = connector(monkeypatch, remote)
    assert conn.run(["echo", "a b", "$HOME"]).stdout == "echo|a b|$HOME\n"
    assert conn.run(["true"], input="in").rc == 0
    assert len(clients) == 1 and len(clients[0].transport.channels) == 2
    assert clients[0].transport.channels[1].sent == b"in"
    conn.close()
    assert clients[0].closed


def test_run_failures_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def remote(chan: FakeChannel, command: str) -> None:
        if command.startswith("conntrack"):
            chan.emit(err=b"sh: 1: conntrack: not found\n")
            chan.finish(127)
        else:
            chan.emit(err=b"Error: no such table\n")
            chan.finish(1)

    conn, _ = connector(monkeypatch, remote)
    with pytest.raises(EnvironmentProblem, match="'conntrack' is not installed on gw"):
        conn.run(["conntrack", "-L"], check=False)
    assert conn.run(["nft", "list", "table", "netdev", "x"], check=False).rc == 1
    with pytest.raises(CommandFailed) as err:
        conn.run(["nft", "list", "table", "netdev", "x"])
    assert err.value.one_line() == ("'nft list table netdev x' failed (1) on gw (root@h:22): "
                                    "Error: no such table")
