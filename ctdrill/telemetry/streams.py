"""Sample streams over the two transports: a local agent process and one SSH exec channel.

Both run the same agent (telemetry/agent.py) and read the same line protocol; the
agent pushes samples, nothing polls per sample.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Protocol

import paramiko

from ctdrill.errors import EnvironmentProblem
from ctdrill.system.children import spawn_child
from ctdrill.targets.target import Target
from ctdrill.telemetry import agent as agent_module
from ctdrill.telemetry.protocol import Hello, ProtocolError, Sample, decode_line

AGENT_PATH = Path(agent_module.__file__)


class SampleStream(Protocol):
    hello: Hello

    def __iter__(self) -> Iterator[Sample]: ...

    def close(self) -> None: ...


def _read_hello(lines: Iterator[str], target: Target) -> Hello:
    for line in lines:
        msg = decode_line(line, time.time())
        if isinstance(msg, Hello):
            if not msg.conntrack:
                raise EnvironmentProblem(f"target '{target.name}' has no nf_conntrack",
                                         "load the nf_conntrack module on it")
            return msg
        raise ProtocolError("agent sent a sample before its hello")
    raise EnvironmentProblem(f"telemetry agent on '{target.name}' exited before it started",
                             "check that python3 exists on the target")


def _samples(lines: Iterator[str]) -> Iterator[Sample]:
    for line in lines:
        msg = decode_line(line, time.time())
        if isinstance(msg, Sample):
            yield msg


class LocalAgentStream:
    """The agent as a child process inside the target's namespace (or the initial one)."""

    def __init__(self, target: Target, hz: float, duration: float = 0.0) -> None:
        self.target = target
        argv = [sys.executable, "-u", str(AGENT_PATH), "--hz", str(hz),
                "--duration", str(duration)]
        if target.netns:
            argv = ["ip", "netns", "exec", target.netns, *argv]
        self._proc = spawn_child(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, bufsize=1)
        assert self._proc.stdout is not None
        self._lines: Iterator[str] = iter(self._proc.stdout)
        try:
            self.hello = _read_hello(self._lines, target)
        except BaseException:
            err = self._stderr_tail()
            self.close()
            if err:
                raise EnvironmentProblem(f"telemetry agent on '{target.name}' failed",
                                         err) from None
            raise

    def _stderr_tail(self) -> str:
        if self._proc.poll() is None or self._proc.stderr is None:
            return ""
        lines = self._proc.stderr.read().strip().splitlines()
        return lines[-1] if lines else ""

    def __iter__(self) -> Iterator[Sample]:
        return _samples(self._lines)

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for f in (self._proc.stdout, self._proc.stderr):
            if f is not None:
                f.close()


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
        raise EnvironmentProblem(f"cannot reach {where}: {exc}",
                                 "check the address and that sshd runs there") from exc
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(5)
    return client


class SshAgentStream:
    """The agent pushed over one SSH exec channel; the target needs only python3."""

    def __init__(self, target: Target, hz: float, duration: float = 0.0) -> None:
        self.target = target
        self._client = connect_ssh(target)
        source = AGENT_PATH.read_text()
        cmd = (f"{target.python} -u -c {shlex.quote(source)} --hz {hz} --duration {duration}")
        transport = self._client.get_transport()
        assert transport is not None
        self._channel = transport.open_session()
        self._channel.exec_command(cmd)
        self._file: IO[str] = self._channel.makefile("r")  # type: ignore[assignment]
        self._lines: Iterator[str] = iter(self._file)
        try:
            self.hello = _read_hello(self._lines, target)
        except BaseException:
            err = self._channel.makefile_stderr("r").read().decode(errors="replace").strip()
            self.close()
            if err:
                raise EnvironmentProblem(f"telemetry agent on '{target.name}' failed",
                                         err.splitlines()[-1]) from None
            raise

    def __iter__(self) -> Iterator[Sample]:
        return _samples(self._lines)

    def close(self) -> None:
        try:
            self._channel.close()
        finally:
            self._client.close()


def open_stream(target: Target, hz: float, duration: float = 0.0) -> SampleStream:
    """Start streaming samples from a target over its transport."""
    if target.transport == "ssh":
        return SshAgentStream(target, hz, duration)
    return LocalAgentStream(target, hz, duration)
