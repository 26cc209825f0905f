"""One behaviour, three transports: the connectors against the real thing.

local is this machine's initial namespace; netns is a lab host's namespace; ssh is the
lab's sshd in that namespace, reached over the management veth with the pinned host
keys. Every process ends up on this machine (one pid namespace), so `/proc` says whether
a stopped process is really gone. Waits are on conditions; timeouts only bound a hang.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctdrill.connect import Connector, connector_for
from ctdrill.engine.classcount import count_entries
from ctdrill.errors import EnvironmentProblem
from ctdrill.lab.flows import send_udp_flows
from ctdrill.lab.manager import LabUp
from ctdrill.probe.phase import ProbePhase
from ctdrill.probe.spec import ProbeSpec
from ctdrill.targets.inventory import Inventory
from ctdrill.targets.target import Target
from tests.integration.helpers import flush_conntrack
from tests.waiting import wait_until

pytestmark = pytest.mark.root

NASTY = ["a b", "it's", '"q"', "$(echo injected)", "x;y", "back\\slash", "*", "", "-n",
         "line\nbreak", "ünï"]
PRINT_ARGV = "import json, sys; print(json.dumps(sys.argv[1:]))"
SLEEPER = ("import os, signal, sys\n"
           "if sys.argv[1] == 'stubborn': signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
           "print(os.getpid(), flush=True)\nprint('tick', flush=True)\n"
           "while True: signal.pause()\n")
TRANSPORTS = ["local", "netns", "ssh"]


def target_of(lab: LabUp, transport: str, role: str = "client") -> Target:
    if transport == "local":
        return Target("kernel", "local")
    path = lab.plan.inventory_path if transport == "netns" else lab.plan.ssh_inventory_path
    target = Inventory(path).target(role)
    assert target.transport == transport
    return target


def netns_inode(target: Target) -> int:
    """The network namespace a process of this target must be in."""
    if target.transport == "local":
        return os.stat("/proc/self/ns/net").st_ino
    assert target.netns is not None
    return os.stat(f"/run/netns/{target.netns}").st_ino


@pytest.fixture(params=TRANSPORTS)
def conn_and_target(request: pytest.FixtureRequest,
                    lab: LabUp) -> Iterator[tuple[Connector, Target]]:
    target = target_of(lab, request.param)
    conn = connector_for(target)
    try:
        yield conn, target
    finally:
        conn.close()


def gone(pid: int) -> bool:
    """No such process, and no zombie of it either (it was reaped)."""
    return not Path(f"/proc/{pid}").exists()


def test_run_passes_every_argument_unchanged_in_the_right_namespace(
        conn_and_target: tuple[Connector, Target]) -> None:
    conn, target = conn_and_target
    done = conn.run([conn.python, "-c", PRINT_ARGV, *NASTY])
    assert json.loads(done.stdout) == NASTY
    ns = conn.run([conn.python, "-c", "import os; print(os.stat('/proc/self/ns/net').st_ino)"])
    assert int(ns.stdout) == netns_inode(target)
    fed = conn.run([conn.python, "-c", "import sys; print(sys.stdin.read()[::-1])"],
                   input="abc")
    assert fed.stdout == "cba\n"


def test_failures_are_one_line_errors(conn_and_target: tuple[Connector, Target]) -> None:
    conn, _ = conn_and_target
    with pytest.raises(EnvironmentProblem, match="'ctd-no-such-tool' is not installed"):
        conn.run(["ctd-no-such-tool", "-x"], check=False)
    argv = [conn.python, "-c", "import sys; sys.exit('broken here')"]
    assert conn.run(argv, check=False).rc == 1
    with pytest.raises(EnvironmentProblem) as err:
        conn.run(argv)
    assert err.value.one_line().endswith(f"failed (1) on {conn.where}: broken here")


def test_spawn_streams_lines_and_stop_leaves_no_process(
        conn_and_target: tuple[Connector, Target]) -> None:
    conn, target = conn_and_target
    proc = conn.spawn([conn.python, "-u", "-c", SLEEPER, "polite"],
                      env={"CTDRILL_RUN_ID": "connector-test"})
    try:
        lines = iter(proc)
        pid = int(next(lines))
        assert next(lines) == "tick"
        assert proc.pid == pid  # ip netns exec and the ssh wrapper exec in place
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert b"CTDRILL_RUN_ID=connector-test" in environ
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == netns_inode(target)
        assert proc.poll() is None
    finally:
        proc.stop()
    wait_until(lambda: gone(pid), f"pid {pid} to be gone after stop() over {target.transport}")
    assert proc.poll() is not None


def test_put_then_read_back(conn_and_target: tuple[Connector, Target], tmp_path: Path) -> None:
    conn, _ = conn_and_target
    path = tmp_path / "put.bin"
    data = b"\x00binary\xff\nline two\n"
    conn.put(data, str(path), 0o640)
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    back = conn.run(["od", "-An", "-c", str(path)]).stdout.split()
    assert back[:3] == ["\\0", "b", "i"]
    conn.put(b"short", str(path), 0o600)  # replaced, not appended
    assert conn.run(["cat", str(path)]).stdout == "short"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_stop_over_ssh_kills_a_remote_process_that_ignores_sigterm(lab: LabUp) -> None:
    conn = connector_for(target_of(lab, "ssh", "venue"))
    try:
        proc = conn.spawn([conn.python, "-u", "-c", SLEEPER, "stubborn"])
        lines = iter(proc)
        pid = int(next(lines))
        assert next(lines) == "tick"  # its SIGTERM handler is in place
        proc.stop(grace=1.0)
        wait_until(lambda: gone(pid), f"remote pid {pid} to be killed")
        assert conn.run(["kill", "-0", str(pid)], check=False).rc != 0  # seen from there too
        # the connection stays usable after the stop: one client per connector
        assert conn.run(["true"]).ok
    finally:
        conn.close()


def test_the_class_count_is_the_same_over_netns_and_ssh(lab: LabUp) -> None:
    gw_ns = lab.plan.host("gw").netns
    flush_conntrack(gw_ns)
    sent, errors = send_udp_flows(lab.plan.host("client").netns,
                                  lab.plan.host("venue").data_addr, 3,
                                  lab.plan.target_networks, first_port=31000)
    assert (sent, errors) == (3, 0)
    counts = {}
    for transport in ("netns", "ssh"):
        conn = connector_for(target_of(lab, transport, "gw"))
        try:
            counts[transport] = count_entries(conn, "udp", 31001)
        finally:
            conn.close()
    assert counts == {"netns": 1, "ssh": 1}


def test_the_probe_runs_over_ssh(lab: LabUp) -> None:
    """Venue and client spawned over SSH: the probe no longer needs namespace hosts."""
    inv = Inventory(lab.plan.ssh_inventory_path)
    spec = ProbeSpec.model_validate({"client": "client", "venue": "venue", "rate": 20,
                                     "duration_s": 1.0, "tcp_port": 19001,
                                     "udp_port": 19002, "report_port": 19003})
    phase = ProbePhase(spec, inv, observe_s=1.0)
    phase.start()
    result = phase.stop()  # waits for the client's end
    assert result["messages"] > 0
    assert result["timeouts"] == 0
