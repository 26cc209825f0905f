"""A sample stream: the agent (telemetry/agent.py) spawned on a target through its connector.

One stream class for every transport: the agent's source is shipped in the command
(`python3 -u -c SOURCE --hz N`), so a target needs only python3, not ctdrill, and the
connector (local, netns, ssh) decides where it runs. The agent pushes samples; nothing
polls per sample.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from ctdrill.connect import Connector, connector_for
from ctdrill.errors import EnvironmentProblem
from ctdrill.targets.target import Target
from ctdrill.telemetry import agent as agent_module
from ctdrill.telemetry.protocol import Hello, ProtocolError, Sample, decode_line

AGENT_PATH = Path(agent_module.__file__)


class SampleStream(Protocol):
    hello: Hello

    def __iter__(self) -> Iterator[Sample]: ...

    def close(self) -> None: ...


def agent_argv(python: str, hz: float, duration: float, source: str | None = None) -> list[str]:
    """The agent as one command: its source travels as an argument (`-c`)."""
    return [python, "-u", "-c", source if source is not None else AGENT_PATH.read_text(),
            "--hz", str(hz), "--duration", str(duration)]


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


class AgentStream:
    """The agent as one spawned process on the target; close() stops it and disconnects."""

    def __init__(self, target: Target, hz: float, duration: float = 0.0,
                 connector: Connector | None = None) -> None:
        self.target = target
        self._conn = connector if connector is not None else connector_for(target)
        try:
            self._proc = self._conn.spawn(agent_argv(self._conn.python, hz, duration))
        except BaseException:
            self._conn.close()
            raise
        self._lines: Iterator[str] = iter(self._proc)
        try:
            self.hello = _read_hello(self._lines, target)
        except BaseException:
            self.close()
            err = self._proc.stderr_tail()
            if err:
                raise EnvironmentProblem(f"telemetry agent on '{target.name}' failed",
                                         err) from None
            raise

    def __iter__(self) -> Iterator[Sample]:
        return _samples(self._lines)

    def close(self) -> None:
        try:
            self._proc.stop()
        finally:
            self._conn.close()


def open_stream(target: Target, hz: float, duration: float = 0.0,
                connector: Connector | None = None) -> SampleStream:
    """Start streaming samples from a target over its transport's connector (or the
    given one, already connected: the stream owns it from here)."""
    return AgentStream(target, hz, duration, connector)
