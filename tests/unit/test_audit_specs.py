"""Generated drill specs: each one is a spec `ctdrill validate` accepts (checked with the
real loader and the real validate), safe by default, and host text stays data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ctdrill import api
from ctdrill.audit.findings import Finding
from ctdrill.audit.specs import (
    GUARD_CTR,
    MAX_STEP_S,
    OWNER_GROUP,
    GeneratedSpec,
    HostContext,
    drill_name,
    generate,
)
from ctdrill.spec.loader import load_spec_text
from ctdrill.spec.models import ClassEntriesExpectation, DrillSpec, StepTrendExpectation

TIMEOUTS = {"udp": 180, "udp_stream": 120, "tcp_time_wait": 120, "tcp_close": 10,
            "tcp_syn_sent": 120}
GEOMETRY = Finding("geometry", "table", "max 65536 vs buckets 1024", 64512,
                   {"entries": 0}, "set buckets",
                   {"sysctl": {"net.netfilter.nf_conntrack_buckets": 65536}})
CAPACITY = Finding("capacity", "table", "full", 65536, {}, "raise",
                   {"sysctl": {"net.netfilter.nf_conntrack_buckets": 131072,
                               "net.netfilter.nf_conntrack_max": 131072}})
TIMEOUT = Finding("timeout", "udp", "UNREPLIED UDP held 180 s", 833,
                  {"entries": 1000, "share": 0.83, "freed": 833}, "lower",
                  {"timeouts": {"udp": 30}})
NOISY = Finding("noisy_source", "10.77.0.0/24", "source range 10.77.0.0/24", 1000,
                {"entries": 1000, "timeout_change_frees": 833}, "isolate",
                {"timeouts": {"udp": 30}})
UDP_BYPASS = Finding("notrack", "udp/53", "udp/53 holds 400", 400, {"entries": 400},
                     "notrack", {"bypass": {"name": "udp_53", "protocol": "udp",
                                            "port": 53}}, "caveat")
TCP_BYPASS = Finding("notrack", "tcp/9001", "tcp/9001 holds 300", 300, {"entries": 300},
                     "notrack", {"bypass": {"name": "tcp_9001", "protocol": "tcp",
                                            "port": 9001}}, "caveat")
ALL = (GEOMETRY, CAPACITY, TIMEOUT, NOISY, UDP_BYPASS, TCP_BYPASS)


def ctx(host: str = "gw", owner: bool | None = False) -> HostContext:
    return HostContext(host, owner, dict(TIMEOUTS), 1200)


def loaded(spec: GeneratedSpec) -> DrillSpec:
    assert spec.text is not None and spec.filename is not None, spec.problem
    return load_spec_text(spec.text, spec.filename)


def test_every_generated_spec_validates_with_the_real_loader_and_validate(
        tmp_path: Path) -> None:
    specs = generate(ALL, ctx())
    files = []
    for s in {s.filename: s for s in specs}.values():
        assert s.filename and s.text and s.problem is None
        (tmp_path / s.filename).write_text(s.text)
        files.append(tmp_path / s.filename)
    result = api.validate(files, drills_only=True)
    assert result.status == "valid", result.to_json()
    assert len(files) == 5  # the noisy range's fix is the timeout drill


def test_findings_with_the_same_change_share_one_drill() -> None:
    specs = generate((TIMEOUT, NOISY), ctx())
    assert specs[0] is specs[1]


@pytest.mark.parametrize("finding", ALL, ids=lambda f: f"{f.kind}-{f.subject}")
def test_generated_specs_are_safe_by_default(finding: Finding) -> None:
    [spec] = generate((finding,), ctx())
    d = loaded(spec)
    assert d.load.kind == "none" and d.probe is None  # the host's own traffic only
    assert d.revert.ttl_s <= d.observe.duration_s + 30
    assert d.guards.max_duration_s <= d.observe.duration_s + 120
    assert [(c.hosts, c.metric, c.above) for c in d.guards.ceilings] == [("gw", "ctr",
                                                                          GUARD_CTR)]
    assert d.observe.hosts == "gw" and d.expect
    if finding.kind in ("geometry", "capacity"):
        assert d.targets.hosts == OWNER_GROUP  # kernel-wide: only the owner changes it
        assert [cs.hosts for st in d.steps for cs in st.changes] == [OWNER_GROUP]
    else:
        assert d.targets.hosts == "gw" and d.targets.canary is not None
        assert d.targets.canary.count == 1
    assert d.observe.duration_s <= MAX_STEP_S + 10


def test_a_host_that_owns_its_kernel_changes_its_own_geometry() -> None:
    d = loaded(generate((GEOMETRY,), ctx(owner=True))[0])
    assert d.targets.hosts == "gw"
    assert d.steps[1].changes[0].sysctl == {"net.netfilter.nf_conntrack_buckets": 65536}


def test_the_timeout_drill_lasts_the_old_timeout_and_needs_a_real_fall() -> None:
    d = loaded(generate((TIMEOUT,), ctx())[0])
    assert [s.name for s in d.steps] == ["baseline", "shorter-timeout"]
    assert d.steps[1].duration_s == 180 + 10
    assert d.steps[1].changes[0].timeouts == {"udp": 30}
    [trend] = d.expect
    assert isinstance(trend, StepTrendExpectation)
    assert trend.metric == "count" and trend.strict
    long_wait = HostContext("gw", False, {"tcp_time_wait": 432000}, 1200)
    tw = Finding("timeout", "tcp_time_wait", "t", 10, {"freed": 10}, "a",
                 {"timeouts": {"tcp_time_wait": 120}})
    d = loaded(generate((tw,), long_wait)[0])
    assert d.steps[1].duration_s == MAX_STEP_S
    [trend] = d.expect
    assert isinstance(trend, StepTrendExpectation)
    assert not trend.strict  # 10 of 1200 entries: no real fall to demand


def test_the_bypass_drill_waits_out_the_class_entries() -> None:
    udp = loaded(generate((UDP_BYPASS,), ctx())[0])
    [exp] = udp.expect
    assert isinstance(exp, ClassEntriesExpectation)
    assert (exp.kind, exp.protocol, exp.port, exp.stat, exp.op, exp.value) == (
        "class_entries", "udp", 53, "last", "==", 0)
    assert udp.observe.duration_s >= TIMEOUTS["udp_stream"]
    assert udp.changes[0].bypass[0].name == "udp_53"
    [exp] = loaded(generate((TCP_BYPASS,), ctx())[0]).expect
    assert isinstance(exp, ClassEntriesExpectation)
    assert (exp.stat, exp.op, exp.value) == ("max", "<=", 300)


@pytest.mark.parametrize("host", ["gw {{ lookup('pipe', 'id') }}", "gw;id", "$(id)", "-gw"])
def test_a_host_name_a_spec_cannot_hold_gets_no_spec_only_a_reason(host: str) -> None:
    [spec] = generate((TIMEOUT,), ctx(host=host))
    assert spec.text is None and spec.filename is None
    assert spec.problem and "host" in spec.problem


def test_host_text_in_a_finding_stays_data() -> None:
    evil = "x'\"\n: {a: b}\n- [c]\n# d\x1b[31m {{ e }} $(f) `g`; h\u202e"
    f = Finding("timeout", "udp", evil, 1, {"freed": 1}, "a", {"timeouts": {"udp": 30}})
    [spec] = generate((f,), ctx())
    assert spec.text is not None
    assert yaml.safe_load(spec.text)["description"] == f"ctdrill audit: {evil}"
    assert loaded(spec).description == f"ctdrill audit: {evil}"
    assert "{{" not in spec.text.split("description:", 1)[0]


@pytest.mark.parametrize("parts", [("geometry", "table", "GW.Example_1"),
                                   ("noisy_source", "2001:db8::/64", "gw"),
                                   ("x" * 90, "y", "z"), ("---", "", "")])
def test_drill_names_are_valid_for_any_input(parts: tuple[str, str, str]) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9\-]{0,62}", drill_name(*parts))


def test_names_stay_unique_across_hosts() -> None:
    used: set[str] = set()
    a = generate((TIMEOUT,), ctx("gw-" + "a" * 60), used)
    b = generate((TIMEOUT,), ctx("gw-" + "a" * 61), used)
    assert a[0].drill != b[0].drill and len(used) == 2
