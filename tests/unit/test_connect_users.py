"""The modules that reach hosts do it through a connector: telemetry, class counting, the
flow helper and the probe, each driven here by a fake connector (the argv it gets, the
lines it gives back). Real transports: tests/integration/test_connectors.py."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from ctdrill.engine import classcount
from ctdrill.errors import EnvironmentProblem, InvalidInput
from ctdrill.lab.flows import _SENDER, udp_flows
from ctdrill.probe import phase as probe_phase
from ctdrill.probe.spec import ProbeSpec
from ctdrill.targets.target import Target
from ctdrill.telemetry.streams import AGENT_PATH, AgentStream, agent_argv

HELLO = json.dumps({"type": "hello", "agent": 1, "netns_inode": 4026531840, "host": "gw",
                    "kmsg": True, "conntrack": True, "hz": 50.0})


def sample(seq: int) -> str:
    return json.dumps({"type": "sample", "seq": seq, "t": 100.0 + seq, "count": 7,
                       "max": 65536, "buckets": 1024, "stat": {"drop": 0}, "events": []})


class FakeSpawned:
    def __init__(self, lines: list[str], stderr: str = "") -> None:
        self.lines, self.stderr = lines, stderr
        self.pid = 99
        self.stopped = 0

    def __iter__(self) -> Iterator[str]:
        return iter(self.lines)

    def write(self, data: str | bytes) -> None:
        raise AssertionError("nothing writes to these processes")

    def close_stdin(self) -> None:
        return None

    def send_signal(self, sig: int) -> None:
        return None

    def poll(self) -> int | None:
        return 0 if self.stopped else None

    def wait(self, timeout: float | None = None) -> int | None:
        return 0

    def stderr_tail(self) -> str:
        return self.stderr

    def stop(self, grace: float = 2.0) -> int | None:
        self.stopped += 1
        return 0


class FakeConnector:
    def __init__(self, where: str = "gw", python: str = "/opt/py3", out: str = "",
                 spawned: list[FakeSpawned] | None = None) -> None:
        self.where, self.python, self.out = where, python, out
        self.spawned = spawned or []
        self.runs: list[list[str]] = []
        self.spawns: list[list[str]] = []
        self.closed = False

    def run(self, argv: Sequence[str], *, input: bytes | str | None = None,
            timeout: float = 60.0, check: bool = True) -> Any:
        from ctdrill.connect.base import Completed

        self.runs.append(list(argv))
        return Completed(tuple(argv), 0, self.out, "")

    def spawn(self, argv: Sequence[str], **kw: Any) -> FakeSpawned:
        self.spawns.append(list(argv))
        return self.spawned.pop(0)

    def put(self, data: bytes, path: str, mode: int = 0o644) -> None:
        raise AssertionError("not used")

    def close(self) -> None:
        self.closed = True


GW = Target("gw", "ssh", host="10.0.0.1")


def test_the_agent_is_shipped_as_source_and_its_samples_stream() -> None:
    proc = FakeSpawned([HELLO, sample(1), sample(2)])
    conn = FakeConnector(spawned=[proc])
    stream = AgentStream(GW, 50, connector=conn)  # type: ignore[arg-type]
    assert conn.spawns == [agent_argv("/opt/py3", 50, 0.0)]
    assert conn.spawns[0][:3] == ["/opt/py3", "-u", "-c"]
    assert conn.spawns[0][3] == AGENT_PATH.read_text()
    assert stream.hello.host == "gw"
    assert [s.seq for s in stream] == [1, 2]
    stream.close()
    assert proc.stopped and conn.closed


def test_an_agent_that_dies_at_start_is_one_line_with_its_stderr() -> None:
    conn = FakeConnector(spawned=[FakeSpawned([], stderr="sh: 1: exec: /opt/py3: not found")])
    with pytest.raises(EnvironmentProblem) as err:
        AgentStream(GW, 50, connector=conn)  # type: ignore[arg-type]
    assert err.value.one_line() == \
        "telemetry agent on 'gw' failed: sh: 1: exec: /opt/py3: not found"
    assert conn.closed


def test_a_target_without_conntrack_is_refused_and_its_agent_stopped() -> None:
    no_ct = json.dumps({**json.loads(HELLO), "conntrack": False})
    proc = FakeSpawned([no_ct])
    conn = FakeConnector(spawned=[proc])
    with pytest.raises(EnvironmentProblem, match="has no nf_conntrack"):
        AgentStream(GW, 50, connector=conn)  # type: ignore[arg-type]
    assert proc.stopped and conn.closed


def test_class_entries_are_counted_from_conntrack_output_on_any_transport() -> None:
    conn = FakeConnector(out="tcp 6 431999 ESTABLISHED ...\n\nudp 17 29 src=...\n")
    assert classcount.count_entries(conn, "tcp", 9001) == 2  # type: ignore[arg-type]
    assert conn.runs == [["conntrack", "-L", "-p", "tcp", "--dport", "9001"]]


def test_the_flow_helper_runs_its_sender_with_the_hosts_python() -> None:
    conn = FakeConnector(out="300 0\n")
    assert udp_flows(conn, "10.78.0.2", 300, ("10.78.0.0/16",), 2000) == (300, 0)  # type: ignore[arg-type]
    assert conn.runs == [["/opt/py3", "-c", _SENDER, "10.78.0.2", "2000", "300"]]
    with pytest.raises(InvalidInput, match="outside the target networks"):
        udp_flows(conn, "192.0.2.1", 1, ("10.78.0.0/16",))  # type: ignore[arg-type]
    assert len(conn.runs) == 1  # refused before anything ran


class FakeInventory:
    def __init__(self, *targets: Target) -> None:
        self.targets = {t.name: t for t in targets}

    def target(self, name: str) -> Target:
        return self.targets[name]


def test_the_probe_runs_on_hosts_of_any_transport_through_their_connectors(
        monkeypatch: pytest.MonkeyPatch) -> None:
    venue_t = Target("venue", "ssh", host="v", addr="10.78.0.2")
    client_t = Target("client", "local", addr="10.77.0.2")
    venue = FakeSpawned([json.dumps({"ev": "ready"})])
    client = FakeSpawned([])
    conns = {"venue": FakeConnector("venue", spawned=[venue]),
             "client": FakeConnector("client", python="python3", spawned=[client])}
    monkeypatch.setattr(probe_phase, "connector_for", lambda t: conns[t.name])
    spec = ProbeSpec.model_validate({"client": "client", "venue": "venue", "rate": 20})
    phase = probe_phase.ProbePhase(spec, FakeInventory(venue_t, client_t), 5.0)  # type: ignore[arg-type]
    phase.start()
    result = phase.stop()
    venue_argv, client_argv = conns["venue"].spawns[0], conns["client"].spawns[0]
    assert venue_argv[:4] == ["/opt/py3", "-u", "-c", probe_phase.VENUE_SOURCE.read_text()]
    assert client_argv[:4] == ["python3", "-u", "-c", probe_phase.CLIENT_SOURCE.read_text()]
    assert client_argv[client_argv.index("--venue") + 1] == "10.78.0.2"
    assert venue.stopped and client.stopped
    assert conns["venue"].closed and conns["client"].closed
    assert result["kind"] == "probe" and result["messages"] == 0
