"""`ctdrill audit` end to end on stand-in hosts (tests/unit/audit_fakes.py): host
selection, only reads on the host, the rich table, `--json`, `--out` (audit.json,
audit.md read by markdown-it, specs read by `ctdrill validate`) and the exit codes."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ctdrill import api
from ctdrill.audit import run as audit_run
from ctdrill.audit.markdown import render_markdown
from ctdrill.audit.run import audit_target
from ctdrill.cli.app import app
from ctdrill.errors import ExitCode
from ctdrill.targets.target import Target
from tests.unit.audit_fakes import (
    DEFAULT_SYSCTL,
    LAB_RULESET,
    FakeHost,
    planted_table,
    reader_output,
)
from tests.unit.test_report_escaping import EVIL, HARMLESS, MD, hidden_characters, md_shape

READS = {("nft", "-j", "list", "ruleset")}


def inventory(tmp_path: Path, gateways: bool = True) -> Path:
    hosts = {"gw": {"ansible_connection": "local", "ctdrill_transport": "local"},
             "gw2": {"ansible_connection": "local", "ctdrill_transport": "local"}}
    children = {"gateways": {"hosts": hosts}} if gateways else {"others": {"hosts": hosts}}
    children["kernel_owner"] = {"hosts": {"kernel": {"ansible_connection": "local"}}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"children": children}}))
    return path


def hosts_by_name(monkeypatch: pytest.MonkeyPatch,
                  make: Callable[[str], FakeHost]) -> dict[str, FakeHost]:
    made: dict[str, FakeHost] = {}

    def connector_for(target: Target) -> FakeHost:
        made[target.name] = make(target.name)
        return made[target.name]

    monkeypatch.setattr(audit_run, "connector_for", connector_for)
    return made


def planted(_name: str) -> FakeHost:
    return FakeHost(table=planted_table(udp=1000, tcp=200))


def only_reads(host: FakeHost) -> None:
    """Every command the audit gave the host was one of its three reads."""
    for argv in host.calls:
        assert (argv in READS or argv[:2] == (host.python, "-c")
                or argv[:7] == ("nice", "-n", "19", "conntrack", "-L", "-o", "extended")), argv
    assert host.closed and all(p.stopped for p in host.spawned)


def test_json_and_out_write_the_audit_and_specs_that_validate(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    made = hosts_by_name(monkeypatch, planted)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["audit", "-i", str(inventory(tmp_path)), "--json",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["status"] == "findings" and [h["host"] for h in doc["hosts"]] == ["gw", "gw2"]
    assert set(made) == {"gw", "gw2"}  # the gateways group, not the kernel owner
    for host in made.values():
        only_reads(host)
    gw = doc["hosts"][0]
    assert [f["kind"] for f in gw["findings"]] == ["geometry", "noisy_destination",
                                                    "noisy_source", "timeout"]
    assert [f["rank"] for f in gw["findings"]] == [1, 2, 3, 4]
    assert gw["table"]["max"] == 65536 and gw["table"]["listed"] == 1200
    assert gw["composition"]["stale"]["udp_unreplied"]["count"] == 1000
    assert json.loads((out / "audit.json").read_text())["hosts"] == doc["hosts"]
    specs = sorted(out.glob("*.yaml"))
    assert len(specs) == 4  # geometry + udp timeout, per host
    assert {f["spec"]["path"] for f in gw["findings"]} <= {str(p) for p in specs}
    check = CliRunner().invoke(app, ["validate", *map(str, specs)])
    assert check.exit_code == 0, check.output
    assert MD.parse((out / "audit.md").read_text())


def test_without_gateways_every_host_is_audited_and_a_pattern_picks_some(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    made = hosts_by_name(monkeypatch, planted)
    inv = inventory(tmp_path, gateways=False)
    assert sorted(h.host for h in api.audit(inv).hosts) == ["gw", "gw2", "kernel"]
    made.clear()
    assert [h.host for h in api.audit(inv, "gw2").hosts] == ["gw2"] and list(made) == ["gw2"]


def test_an_unreadable_host_is_reported_and_the_others_still_are(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def make(name: str) -> FakeHost:
        return FakeHost(table=planted_table(), conntrack_rc=127 if name == "gw" else 0)

    hosts_by_name(monkeypatch, make)
    res = CliRunner().invoke(app, ["audit", "-i", str(inventory(tmp_path)), "--json"])
    assert res.exit_code == ExitCode.ENVIRONMENT, res.output
    doc = json.loads(res.output)
    assert doc["status"] == "incomplete"
    assert "'conntrack' is not installed on fake host" in doc["hosts"][0]["error"]
    assert doc["hosts"][1]["findings"]


def test_missing_nft_and_ipv6_are_notes_not_failures(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    hosts_by_name(monkeypatch, lambda _n: FakeHost(table=planted_table(), nft=None,
                                                   ipv6_rc=1))
    result = api.audit(inventory(tmp_path), "gw")
    assert result.rc == ExitCode.OK
    notes = " ".join(result.hosts[0].notes)
    assert "conntrack -L -f ipv6 exited 1" in notes
    assert "ruleset not read" in notes and "notrack candidates not assessed" in notes


def test_the_table_shows_ranked_findings_and_no_raw_host_text(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hosts_by_name(monkeypatch, lambda _n: FakeHost(table=planted_table(),
                                                   where="fake\x1b[31m [bold]host[/]"))
    res = CliRunner().invoke(app, ["audit", "-i", str(inventory(tmp_path)), "gw"])
    assert res.exit_code == 0, res.output
    words = set(res.output.replace("│", " ").split())
    assert {"geometry", "64,512", "noisy_source", "1,000", "timeout", "833"} <= words
    assert "\x1b[31m" not in res.output and "[bold]host[/]" in res.output


def evil_audit(monkeypatch: pytest.MonkeyPatch, text: str) -> str:
    """audit.md of a host whose every free-text field holds `text`."""
    ruleset = copy.deepcopy(LAB_RULESET)
    for item in ruleset["nftables"]:
        for obj in item.values():
            if "table" in obj:
                obj["table"] = text
    host = FakeHost(table=planted_table(), where=text, ipv6_rc=1, ipv6_stderr=text,
                    reader=reader_output(DEFAULT_SYSCTL, slab=None, slab_error=text),
                    nft=json.dumps(ruleset))
    monkeypatch.setattr(audit_run, "connector_for", lambda _t: host)
    # a space: no host name a spec could hold, for the harmless text too (same shape)
    return render_markdown([audit_target(Target(f"gw {text}", "local"))])


def test_markdown_structure_is_the_audits_own_whatever_the_hosts_say(
        monkeypatch: pytest.MonkeyPatch) -> None:
    md = evil_audit(monkeypatch, EVIL)
    harmless = evil_audit(monkeypatch, HARMLESS)
    shape = md_shape(md)
    assert shape == md_shape(harmless)
    assert not {"html_inline", "html_block", "link_open", "image", "em_open",
                "s_open"} & set(shape)
    assert not hidden_characters(md)
    assert "<script>alert(1)</script>" in MD.render(md).replace("&lt;", "<") \
        .replace("&gt;", ">")


def test_a_tool_that_would_load_a_kernel_module_is_not_run(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    missing = {"nf_conntrack_netlink": False, "nf_tables": False}
    made = hosts_by_name(monkeypatch, lambda _n: FakeHost(
        table=planted_table(), reader=reader_output(modules=missing)))
    [h] = api.audit(inventory(tmp_path), "gw").hosts
    assert made["gw"].spawned == [] and not any(a[0] == "nft" for a in made["gw"].calls)
    notes = " ".join(h.notes)
    assert "'conntrack -L' would load it" in notes and "'nft list ruleset' would" in notes
    assert [f.kind for f in h.findings] == ["geometry"]  # the sysctls still tell that


def test_a_host_without_conntrack_is_not_audited(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    hosts_by_name(monkeypatch, lambda _n: FakeHost(reader=reader_output({})))
    result = api.audit(inventory(tmp_path), "gw")
    assert result.rc == ExitCode.ENVIRONMENT and result.status == "incomplete"
    assert "no nf_conntrack on fake host" in (result.hosts[0].error or "")


def test_an_out_that_is_a_file_is_refused_before_any_host_is_read(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    made = hosts_by_name(monkeypatch, planted)
    (tmp_path / "file").write_text("")
    res = CliRunner().invoke(app, ["audit", "-i", str(inventory(tmp_path)), "--out",
                                   str(tmp_path / "file")])
    assert res.exit_code == ExitCode.INVALID_INPUT and made == {}
    assert "is not a directory" in res.output
