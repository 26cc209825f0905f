"""The pure parts of bench/fault_matrix.py: parsing what a run left behind, judging a
trial, the cells, the drills it runs (checked by ctdrill's own spec model) and the page
(checked by a Markdown parser)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from bench.fault_lab import (
    drill_spec,
    journals_in,
    phase_reached,
    pick,
    records,
    run_ids_in,
    unreachable_inventory,
)
from bench.fault_matrix import TRIALS, all_cells, corrupt, fill, select_cells
from bench.fault_results import (
    CellSummary,
    Trial,
    exit_label,
    render_findings,
    render_goal,
    render_table,
    restore_time,
    to_json,
)
from bench.fault_state import (
    Leftovers,
    ctd_tables,
    deadman_key,
    environ_run_id,
    is_ssh_master,
    lock_inode,
    lock_run_id,
    stat_fields,
    sysctl_lines,
    sysctl_values,
)
from ctdrill.lab.inventory import render_inventory
from ctdrill.lab.topology import plan_for
from ctdrill.spec.models import DrillSpec

FIXTURES = Path(__file__).parent / "fixtures"
MD = MarkdownIt("commonmark").enable(["table"])


# ---------------------------------------------------------------- leftovers parsing

def test_sysctl_lines_drop_only_the_live_count_and_sort() -> None:
    out = ("/proc/sys/net/netfilter/nf_conntrack_max:65536\n"
           "/proc/sys/net/netfilter/nf_conntrack_count:12\n"
           "/proc/sys/net/netfilter/nf_conntrack_acct:0\n")
    lines = sysctl_lines(out)
    assert lines == ("/proc/sys/net/netfilter/nf_conntrack_acct:0\n"
                     "/proc/sys/net/netfilter/nf_conntrack_max:65536")
    assert sysctl_values(lines)["/proc/sys/net/netfilter/nf_conntrack_max"] == "65536"


def test_ctd_tables_are_found_by_prefix_with_their_family() -> None:
    listing = "table inet ctd_lab\ntable ip filter\ntable inet ctd_drill\ntable ip6 ctdx\n"
    assert ctd_tables(listing) == {"inet ctd_lab", "inet ctd_drill"}
    assert ctd_tables("") == set()


@pytest.mark.parametrize(("name", "inode"), [
    ("netns-4026531840.json", 4026531840), ("netns-12.json.tmp", None),
    ("netns-x.json", None), ("other-12.json", None)])
def test_lock_file_names_give_the_namespace_inode(name: str, inode: int | None) -> None:
    assert lock_inode(name) == inode


def test_lock_holder_is_read_leniently() -> None:
    assert lock_run_id('{"run_id": "20260101T000000-a-1"}') == "20260101T000000-a-1"
    assert lock_run_id("{}") == "unknown"
    assert lock_run_id("not json") == "unreadable"
    assert lock_run_id("[1]") == "unreadable"


def test_deadman_dir_names_split_at_the_last_dash() -> None:
    assert deadman_key("20260101T000000-fault-drill-ab12cd-4026532000") == \
        ("20260101T000000-fault-drill-ab12cd", 4026532000)
    assert deadman_key("nodash") is None
    assert deadman_key("run-notanumber") is None


def test_the_run_id_is_read_from_a_process_environment() -> None:
    env = b"PATH=/bin\0CTDRILL_RUN_ID=r-1\0HOME=/root\0"
    assert environ_run_id(env) == "r-1"
    assert environ_run_id(b"PATH=/bin\0XCTDRILL_RUN_ID=r-1\0") is None
    assert environ_run_id(b"") is None


def test_ssh_connection_masters_are_recognised_by_their_title() -> None:
    assert is_ssh_master(b"ssh: /tmp/x/cp/abc123 [mux]\0\0\0")
    assert not is_ssh_master(b"ssh\0-o\0ControlMaster=auto\0root@10.230.0.6\0")
    assert not is_ssh_master(b"python3\0-m\0ctdrill\0")


def test_stat_fields_survive_a_process_name_with_parentheses() -> None:
    stat = "4242 (evil) S 1 (x) S 1 4242 4242 0 -1 4194560 100 0 0 0"
    assert stat_fields(stat) == ("evil) S 1 (x", "S", 4242)


def test_leftovers_are_final_only_without_processes_or_armed_switches() -> None:
    assert Leftovers(locks=["lock on gw"]).final
    assert not Leftovers(armed=1, deadman=["dead-man on gw (armed)"]).final
    assert not Leftovers(processes=["process ansible-playbook"]).final
    assert Leftovers(locks=["lock on gw"], tables=["table inet ctd_drill on gw"],
                     processes=["process x"]).labels() == \
        ["lock on gw", "process x", "table inet ctd_drill on gw"]


# ---------------------------------------------------------------- judging a trial

@pytest.mark.parametrize(("samples", "expected"), [
    ([], None),
    ([(0.1, True), (0.4, True)], 0.0),
    ([(0.1, False), (0.5, False), (0.9, True), (1.3, True)], 0.9),
    ([(0.1, True), (0.5, False), (0.9, True)], 0.9),  # changed after the fault, then back
    ([(0.1, False), (0.5, True), (0.9, False)], None),
])
def test_restore_time_is_when_the_state_came_back_for_good(
        samples: list[tuple[float, bool]], expected: float | None) -> None:
    assert restore_time(samples) == expected


@pytest.mark.parametrize(("code", "label"), [(0, "0"), (4, "4"), (-9, "SIGKILL"),
                                             (-15, "SIGTERM"), (None, "hung"),
                                             (-200, "signal 200")])
def test_exit_labels(code: int | None, label: str) -> None:
    assert exit_label(code) == label


def trial(**kw: object) -> Trial:
    base: dict[str, object] = {"cell": "sigkill@apply/netns", "trial": 1, "exit": "SIGKILL",
                               "restored": True, "restore_s": 21.5, "next_exit": 0}
    return Trial(**(base | kw))  # type: ignore[arg-type]


def test_a_cell_is_complete_only_when_every_trial_met_the_goal() -> None:
    assert CellSummary("c", "d", [trial(), trial(trial=2)]).complete
    assert not CellSummary("c", "d", []).complete
    for bad in ({"restored": False}, {"next_exit": 5}, {"next_exit": None},
                {"leftovers": ["lock on kernel"]}, {"reset": True}):
        assert not CellSummary("c", "d", [trial(), trial(**bad)]).complete, bad


def table_rows(markdown: str) -> list[list[str]]:
    """The table as a Markdown parser sees it: the text each row's cells show."""
    rows: list[list[str]] = []
    row: list[str] | None = None
    tokens = MD.parse(markdown)
    for i, tok in enumerate(tokens):
        if tok.type == "tr_open":
            row = []
        elif tok.type in ("th_open", "td_open") and row is not None:
            row.append("".join(c.content for c in tokens[i + 1].children or []))
        elif tok.type == "tr_close" and row is not None:
            rows.append(row)
    return rows


def test_the_table_keeps_its_columns_whatever_a_run_left_behind() -> None:
    evil = "process a|b `x` *y*\nz"
    cells = [CellSummary("sigkill@apply/netns", "SIGKILL to the orchestrator", [
                 trial(), trial(trial=2, exit="hung", restored=False, restore_s=None,
                                leftovers=[evil, "lock on kernel"], next_exit=5)]),
             CellSummary("journal-empty/netns", "`ctdrill revert` of an empty journal",
                         [trial(exit="2", restore_s=0.0)])]
    rows = table_rows(render_table(cells))
    assert len(rows) == 3 and all(len(r) == 8 for r in rows)
    first = rows[1]
    assert first[0] == "sigkill@apply/netns" and first[2] == "2"
    assert first[3] == "SIGKILL, hung" and first[4].startswith("1/2")
    assert first[5] == "21.5 / 21.5" and first[7].startswith("1/2")
    assert "a|b `x` *y* z" in first[6] and "lock on kernel" in first[6]
    assert rows[2][4] == "1/1" and rows[2][5] == "0.0 / 0.0" and rows[2][6] == "-"
    assert "Cells meeting it: 1/2" in render_goal(cells)
    findings = render_findings(cells)
    assert "NOT restored" in findings and "next drill exit 5" in findings
    assert "journal-empty" not in findings  # met the goal, no note
    json.dumps(to_json(cells))


# ---------------------------------------------------------------- the cells

def test_every_cell_has_a_runner_and_a_unique_name() -> None:
    cells = all_cells()
    names = [c.name for c in cells]
    assert len(names) == len(set(names)) == 42
    assert all(c.fault in TRIALS for c in cells)
    assert all(c.description and "{" not in c.description for c in cells)
    for phase in ("prepare", "apply", "observe", "revert"):
        for transport in ("netns", "ssh"):
            for fault in ("ctrl-c", "double-ctrl-c", "sigterm", "sigkill"):
                assert f"{fault}@{phase}/{transport}" in names


def test_cells_are_selected_by_substring_and_transport() -> None:
    cells = all_cells()
    kill = select_cells(cells, ["sigkill"], "both")
    assert len(kill) == 8 and all(c.fault == "sigkill" for c in kill)
    ssh = select_cells(cells, None, "ssh")
    assert {c.transport for c in ssh} == {"ssh"}
    assert "link-cut@observe/ssh" in [c.name for c in ssh]
    assert [c.name for c in select_cells(cells, ["journal-empty", "unreachable"], "netns")] \
        == ["journal-empty/netns"]
    assert select_cells(cells, ["no-such-cell"], "both") == []


# ---------------------------------------------------------------- the drills

@pytest.mark.parametrize(("duration", "ttl"), [(4.0, 20.0), (1.0, 20.0), (10.0, 30.0),
                                               (4.0, 14.0)])
def test_the_matrix_drills_are_valid_specs(duration: float, ttl: float) -> None:
    spec = DrillSpec.model_validate(drill_spec("fault-drill", 13, 131072, duration, ttl))
    assert spec.revert.ttl_s == ttl and spec.observe.duration_s == duration


def test_values_always_differ_from_the_host() -> None:
    assert pick("30", 13, 17) == 13
    assert pick("13\n", 13, 17) == 17
    assert pick(None, 13, 17) == 13


def test_the_unreachable_inventory_closes_only_the_gateway_port() -> None:
    plan = plan_for("faults", 3)
    inv = render_inventory(plan, "ssh", "/usr/bin/python3", key_file=Path("/k"),
                           known_hosts=Path("/kh"))
    out = unreachable_inventory(inv)
    hosts = out["all"]["children"]["lab"]["children"]
    assert hosts["gateways"]["hosts"]["gw"]["ansible_port"] == 1
    assert hosts["venues"]["hosts"]["venue"]["ansible_port"] == 22
    assert inv["all"]["children"]["lab"]["children"]["gateways"]["hosts"]["gw"][
        "ansible_port"] == 22  # the lab's own inventory is untouched


def test_phases_are_recognised_in_a_real_journal() -> None:
    recs = records(FIXTURES / "capacity-step.jsonl")
    kinds = [r["type"] for r in recs]

    def first(phase: str) -> int | None:
        return next((i for i in range(len(recs) + 1) if phase_reached(phase, recs[:i])), None)

    intents = [i for i, r in enumerate(recs) if r["type"] == "intent" and not r.get("step")]
    assert first("apply") == intents[-1] + 1  # the last intent before the apply play
    assert first("observe") == kinds.index("samples") + 1
    assert first("prepare") is None and first("revert") is None
    with_locking = [recs[0], {"type": "locking", "hosts": ["gw"]}, *recs[1:]]
    assert first("prepare") is None and phase_reached("prepare", with_locking[:2])


def test_records_skip_a_torn_line_and_binary(tmp_path: Path) -> None:
    path = tmp_path / "r" / "journal.jsonl"
    path.parent.mkdir()
    path.write_bytes(b'{"type": "start", "run_id": "r"}\n\xff\xfe\n{"type": "lock')
    assert records(path) == [{"type": "start", "run_id": "r"}]
    assert journals_in(tmp_path) == [path] and run_ids_in(tmp_path) == {"r"}
    assert records(tmp_path / "missing.jsonl") == []


def test_bad_journals_are_what_their_names_say() -> None:
    journal = (FIXTURES / "refused-locked.jsonl").read_bytes()
    assert corrupt("empty", journal) == b""
    binary = corrupt("binary", journal)
    assert binary == corrupt("binary", journal) and len(binary) == 4096
    with pytest.raises(UnicodeDecodeError):
        binary.decode("utf-8")
    cut = corrupt("truncated", journal)
    assert 0 < len(cut) < len(journal) and journal.startswith(cut)
    assert not cut.endswith(b"\n")


def test_fill_stops_at_its_limit(tmp_path: Path) -> None:
    fill(tmp_path, limit=100_000)
    assert (tmp_path / "filler").stat().st_size == 100_000
