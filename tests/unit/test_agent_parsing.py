from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ctdrill.telemetry import agent
from ctdrill.telemetry.agent import parse_kmsg_record, parse_slabinfo, parse_stat_table
from ctdrill.telemetry.protocol import Hello, ProtocolError, Sample, SlabInfo, decode_line
from ctdrill.telemetry.streams import agent_argv

STAT = """entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart
00000064  00000000 00000000 00000000 00000000 00000000 00000000 00000002 00000000 00000000 000000c5 00000003 00000000  00000000 00000000 00000000 00000000
00000064  00000001 00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000 00000010 00000000 00000000  00000000 00000000 00000000 00000000
"""


def test_stat_table_is_parsed_by_header_and_summed_per_cpu() -> None:
    stat = parse_stat_table(STAT)
    assert stat["drop"] == 0xC5 + 0x10
    assert stat["early_drop"] == 3
    assert stat["chainlength"] == 3
    assert stat["clashres"] == 1
    # entries is the namespace total repeated on every row, not a per-CPU counter
    assert stat["entries"] == 100


def test_stat_table_columns_are_not_positional() -> None:
    text = "drop entries\n00000001 00000005\n00000002 00000005\n"
    assert parse_stat_table(text) == {"drop": 3, "entries": 5}
    assert parse_stat_table("") == {}


def test_kmsg_record_parsing() -> None:
    rec = "4,1234,113542775,-;nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet\n"
    assert parse_kmsg_record(rec) == (
        113542775, "nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet")
    assert parse_kmsg_record("garbage") is None
    assert parse_kmsg_record("4,x;msg") is None


def test_decode_hello_and_sample() -> None:
    hello = decode_line(json.dumps({"type": "hello", "agent": 1, "netns_inode": 7, "host": "h",
                                    "kmsg": True, "hz": 50, "conntrack": True}), 1.0)
    assert isinstance(hello, Hello) and hello.netns_inode == 7
    s = decode_line(json.dumps({"type": "sample", "seq": 3, "t": 2.5, "count": 10, "max": 20,
                                "buckets": 20, "stat": {"drop": 1},
                                "events": [{"kts_us": 5, "msg": "table full"}]}), 2.6)
    assert isinstance(s, Sample)
    assert (s.seq, s.count, s.received, s.events[0].kts_us) == (3, 10, 2.6, 5)
    assert s.to_json()["events"] == [{"kts_us": 5, "msg": "table full"}]


@pytest.mark.parametrize("line", ["", "{", '{"type": "sample"}', '{"type": "what"}', "[1]"])
def test_decode_rejects_malformed_lines(line: str) -> None:
    with pytest.raises(ProtocolError):
        decode_line(line, 0.0)


# --- the conntrack slab cache (/proc/slabinfo) ---

SLABINFO = Path(__file__).parent / "fixtures" / "slabinfo-6.18.txt"
"""/proc/slabinfo of the machine the tests were written on (Linux 6.18, SLUB), verbatim."""


def test_slabinfo_of_a_real_kernel_gives_the_nf_conntrack_line() -> None:
    slab = parse_slabinfo(SLABINFO.read_text())
    assert slab == {"active_objs": 178, "num_objs": 240, "objsize": 256, "objperslab": 16,
                    "pagesperslab": 1}
    # the line's own slabdata agrees: 15 slabs of 16 objects are the 240 allocated
    line = next(ln for ln in SLABINFO.read_text().splitlines()
                if ln.split()[:1] == ["nf_conntrack"])
    num_slabs = int(line.split(":")[2].split()[2])
    assert slab["num_objs"] == num_slabs * slab["objperslab"]


def test_slabinfo_columns_are_read_by_header_and_the_name_must_match_exactly() -> None:
    text = ("slabinfo - version: 2.1\n"
            "# name <num_objs> <active_objs> <objperslab> <objsize> <pagesperslab> : x\n"
            "nf_conntrack_expect 9 9 9 9 9 : tunables 0 0 0 : slabdata 1 1 0\n"
            "nf_conntrack_ffff8880 8 8 8 8 8 : tunables 0 0 0 : slabdata 1 1 0\n"
            "nf_conntrack 640 600 32 320 2 : tunables 0 0 0 : slabdata 20 20 0\n")
    assert parse_slabinfo(text) == {"active_objs": 600, "num_objs": 640, "objsize": 320,
                                    "objperslab": 32, "pagesperslab": 2}


@pytest.mark.parametrize("text", [
    "",
    "slabinfo - version: 2.1\nkmalloc-256 10 16 256 16 1 : tunables 0 0 0 : slabdata 1 1 0\n",
    "nf_conntrack 10 16\n",  # cut short: not enough columns
], ids=["empty", "no-conntrack-cache", "truncated"])
def test_slabinfo_without_a_whole_conntrack_line_is_none(text: str) -> None:
    assert parse_slabinfo(text) is None


def test_unreadable_slabinfo_is_none_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(path: str, *args: object) -> object:
        raise PermissionError(errno.EACCES, "Permission denied", path)
    monkeypatch.setattr(agent, "open", denied, raising=False)
    assert agent.read_slab() is None
    monkeypatch.undo()
    monkeypatch.setattr(agent, "SLABINFO", str(SLABINFO.parent / "no-such-file"))
    assert agent.read_slab() is None


def _as_unprivileged(argv: list[str]) -> list[str]:
    """argv run as nobody when we are root (root reads /proc/slabinfo, mode 0400)."""
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *argv]


def test_the_real_agent_without_root_sends_samples_with_a_null_slab() -> None:
    """The agent itself, not a parser: /proc/slabinfo denied by the kernel (mode 0400)."""
    argv = _as_unprivileged(agent_argv(sys.executable, 50, 0.05))
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd="/",
                         check=False)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    hello, samples = decode_line(lines[0], 0.0), [decode_line(ln, 0.0) for ln in lines[1:]]
    assert isinstance(hello, Hello) and hello.slab is False
    assert samples and all(isinstance(s, Sample) and s.slab is None for s in samples)
    assert all('"slab":null' in ln for ln in lines[1:])


def test_decode_sample_with_slab_and_without() -> None:
    base = {"type": "sample", "seq": 1, "t": 2.0, "count": 1, "max": 2, "buckets": 2,
            "stat": {}, "events": []}
    slab = {"active_objs": 178, "num_objs": 240, "objsize": 256, "objperslab": 16,
            "pagesperslab": 1}
    s = decode_line(json.dumps({**base, "slab": slab}), 0.0)
    assert isinstance(s, Sample) and s.slab == SlabInfo(178, 240, 256, 16, 1)
    assert s.slab.bytes == 240 * 256
    assert s.to_json()["slab"] == {**slab, "bytes": 61440}
    for old in (base, {**base, "slab": None}):  # an older agent; an unreadable slabinfo
        s = decode_line(json.dumps(old), 0.0)
        assert isinstance(s, Sample) and s.slab is None and s.to_json()["slab"] is None
    hello = decode_line(json.dumps({"type": "hello", "agent": 1, "netns_inode": 7,
                                    "host": "h", "kmsg": True, "hz": 50}), 1.0)
    assert isinstance(hello, Hello) and hello.slab is False


@pytest.mark.parametrize("slab", [{"active_objs": 1}, "240", [1, 2, 3, 4, 5],
                                  {"active_objs": 1, "num_objs": "x", "objsize": 1,
                                   "objperslab": 1, "pagesperslab": 1}],
                         ids=["missing-fields", "text", "list", "not-a-number"])
def test_decode_rejects_a_malformed_slab(slab: object) -> None:
    line = json.dumps({"type": "sample", "seq": 1, "t": 2.0, "count": 1, "max": 2,
                       "buckets": 2, "stat": {}, "events": [], "slab": slab})
    with pytest.raises(ProtocolError):
        decode_line(line, 0.0)
