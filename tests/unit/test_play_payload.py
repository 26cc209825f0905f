"""A play's payload: one per host with only that host's part, handed over as a file
(`-e @FILE`) so a pool's payloads never hit the kernel's one-argument limit."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from ctdrill.ansible import runner


def decoded(b64: str) -> dict[str, Any]:
    return json.loads(base64.b64decode(b64))  # type: ignore[no-any-return]


def test_each_host_gets_the_common_part_and_only_its_own() -> None:
    payload = {"common": {"ttl_s": 60}, "hosts": {"gw01": {"sysctl": {"a": "1"}},
                                                  "gw02": {"sysctl": {"b": "2"}}}}
    out = runner.per_host_payloads(payload, ["gw02", "gw01", "gw03"], "run-1")
    assert sorted(out) == ["gw01", "gw02", "gw03"]
    assert decoded(out["gw01"]) == {"common": {"ttl_s": 60}, "run_id": "run-1",
                                    "hosts": {"gw01": {"sysctl": {"a": "1"}}}}
    assert "hosts" not in decoded(out["gw03"])


def test_a_32_host_play_passes_its_payload_as_a_private_file(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import ansible_runner

    seen: dict[str, Any] = {}

    class Done:
        status, rc, events = "successful", 0, ()

    def fake_run(**kwargs: Any) -> Done:
        path = Path(kwargs["extravars"])
        seen["mode"] = stat.S_IMODE(os.stat(path).st_mode)
        seen["vars"] = json.loads(path.read_text())
        return Done()

    monkeypatch.setattr(ansible_runner, "run", fake_run)
    hosts = [f"gw{i:02d}" for i in range(1, 33)]
    big = {"hosts": {h: {"snapshot": "x" * 20000} for h in hosts}}
    runner.run_playbook(tmp_path / "inv.yml", "revert", hosts, big, "run-2")
    assert seen["mode"] == 0o600
    assert seen["vars"]["ctdrill_hosts"] == ":".join(hosts)
    per_host = seen["vars"]["ctdrill_payload"]
    assert sum(len(v) for v in per_host.values()) > 128 * 1024  # over one argument's limit
    assert decoded(per_host["gw07"])["hosts"] == {"gw07": {"snapshot": "x" * 20000}}
