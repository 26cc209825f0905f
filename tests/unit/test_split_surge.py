"""The split surge's pure parts: flow indexes, the two ends' counts, the BPF program,
the hosts' silence rules, the send guard, and what a shipped bundle carries."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctdrill.connect.payload import BOOT, bundle, shipped
from ctdrill.surge import capture, hostsilence, sendguard
from ctdrill.surge.flowspace import Dim, FlowSpace
from ctdrill.surge.frames import Template
from ctdrill.surge.handshake import count_ahead, count_behind, syn_matches, synack_matches

dims = st.builds(Dim, st.integers(0, 60000), st.integers(1, 40))


@given(st.builds(FlowSpace, dims, dims, dims), st.integers(0, 10 ** 6))
def test_index_inverts_flow(space: FlowSpace, i: int) -> None:
    a, p, d = space.flow(i)
    assert space.index(a, p, d) == i % space.size
    assert space.index(a + space.a.size, p, d) is None


@given(st.integers(2, 5000), st.integers(0, 10 ** 6), st.integers(0, 4998))
def test_the_two_ends_agree_on_the_count(size: int, handled: int, ahead: int) -> None:
    """The partner and the client reach the same count from the same last flow, as long
    as less than a whole space is outstanding."""
    ahead %= size - 1  # the sender never has a whole space outstanding
    sent = handled + ahead + 1  # the client sent up to here; flow sent-1 was answered
    last = (sent - 1) % size
    assert count_ahead(handled, last, size, window=size) == sent
    assert count_behind(sent, last, size) == sent


def test_an_overtaken_syn_moves_nothing() -> None:
    """Flow 99's SYN arriving after flow 100's was answered: without the window the
    partner would answer a whole space (size - 1 flows) at once."""
    assert count_ahead(101, 99, 10 ** 6, window=4096) == 101
    assert count_ahead(101, 150, 10 ** 6, window=4096) == 151
    assert count_behind(200, 99, 10 ** 6) == 100  # the client just keeps its max


def test_the_bpf_program_drops_by_jumping_to_its_last_instruction() -> None:
    prog = capture.program(syn_matches(FlowSpace(Dim(10, 2), Dim(1024, 100), Dim(9, 1)), 7))
    assert prog[-2] == (capture.RET, 0, 0, capture.SNAP) and prog[-1] == (capture.RET, 0, 0, 0)
    drop = len(prog) - 1
    for i, (op, jt, jf, _k) in enumerate(prog[:-2]):
        targets = {i + 1 + jt, i + 1 + jf} - {i + 1}
        assert targets <= {drop}, (i, op)
    fields = [capture.FIELDS[m.field] for m in synack_matches(
        FlowSpace(Dim(10, 1), Dim(1, 1), Dim(2, 1)), 7)]
    assert len(fields) == 5


def test_silence_rules_are_rendered_from_numbers_only() -> None:
    m = {"proto": "tcp", "saddr": [int(ipaddress.IPv4Address("10.77.0.2"))] * 2,
         "daddr": [int(ipaddress.IPv4Address("10.78.0.2"))] * 2, "dport": [9000, 9009]}
    text = hostsilence.render("ctd_surge_v", "eth0", [m], 42)
    assert "ip saddr 10.77.0.2 ip daddr 10.78.0.2 tcp dport 9000-9009 counter drop" in text
    assert 'comment "ctdrill surge pid=42"' in text
    for bad in ({**m, "proto": "tcp; flush ruleset"}, {**m, "dport": [1, 70000]}):
        with pytest.raises(ValueError):
            hostsilence.rule(bad)
    with pytest.raises(ValueError):
        hostsilence.render("ctd_surge_v; x", "eth0", [m], 1)


def test_the_send_guard_reads_destinations_from_the_frames() -> None:
    frame = bytearray(60)
    frame[30:34] = ipaddress.IPv4Address("192.0.2.1").packed
    t = Template("udp", bytes(frame), {"a": (26, 4), "p": (34, 2), "d": (36, 2)}, 24, 18,
                 40, 42, frozenset("a"), frozenset("apd"), {"a": 0, "p": 0, "d": 0})
    space = FlowSpace(Dim(int(ipaddress.IPv4Address("10.77.0.2")), 1), Dim(1, 1), Dim(9, 1))
    with pytest.raises(sendguard.OutsideNetworks, match=r"192\.0\.2\.1"):
        sendguard.check([t], space, ["10.78.0.0/16"])
    sendguard.check([t], space, ["192.0.2.0/24"])
    reply = Template("synack", bytes(frame), {"a": (30, 4)}, 24, 18, 40, 42, frozenset("a"),
                     frozenset("apd"), {"a": 0})
    assert sendguard.destinations(reply, space) == [space.a.start, space.a.start]
    with pytest.raises(sendguard.OutsideNetworks, match="no target networks"):
        sendguard.check([t], space, [])
    wide = FlowSpace(Dim(int(ipaddress.IPv4Address("10.0.0.5")), 2 * 256 + 1), Dim(1, 1),
                     Dim(9, 1))  # 10.0.0.5 .. 10.0.2.5: its ends in two /24s, not one
    with pytest.raises(sendguard.OutsideNetworks, match=r"10\.0\.0\.5-10\.0\.2\.5"):
        sendguard.check([reply], wide, ["10.0.0.0/24", "10.0.2.0/24"])
    sendguard.check([reply], wide, ["10.0.0.1/16"])  # host bits set, as an inventory may


def test_bundles_run_under_a_bare_python_with_no_ctdrill() -> None:
    assert "ctdrill.connect" not in shipped("ctdrill.surge.worker")
    for main in ("ctdrill.surge.worker", "ctdrill.surge.responder"):
        config = {"worker": 0, "workers": 1, "cpu": None, "phases": [], "max_packets": 1,
                  "max_duration_s": 1, "sockets": {"client": {"ifname": "ctdnosuch0"}},
                  "ifname": "ctdnosuch0", "peer": 1, "networks": ["10.0.0.0/8"]}
        done = subprocess.run([sys.executable, "-I", "-S", "-u", "-c", BOOT],
                              input=bundle(main) + "\n" + json.dumps(config) + "\n",
                              capture_output=True, text=True, cwd="/", timeout=60)
        first = json.loads(done.stdout.splitlines()[0])
        assert first["type"] == "failed" and done.returncode == 1, done.stdout + done.stderr
