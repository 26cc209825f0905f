"""`ctdrill plan --offline` at fleet size, and Ansible forks sized to the pool.

Offline planning reads the spec and the inventory and contacts nothing: the host
operations are replaced by ones that fail the test if called. The fleet is the
benchmark's own generated 500-gateway inventory (bench/fleet_plan.py), parsed by
Ansible's real InventoryManager.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml
from typer.testing import CliRunner

from bench.fleet_plan import SPEC, write_fleet
from ctdrill import api
from ctdrill.ansible import runner
from ctdrill.ansible.runner import MAX_FORKS, MIN_FORKS, TaskResult, forks_for
from ctdrill.cli.app import app
from ctdrill.engine import hostops, preview
from ctdrill.engine.plan import HostChanges
from ctdrill.errors import EnvironmentProblem, ExitCode, InvalidInput
from ctdrill.spec.models import Bypass, DrillSpec
from ctdrill.targets.inventory import Inventory


def _no_host_contact(*_args: Any, **_kwargs: Any) -> NoReturn:
    raise AssertionError("an offline plan contacted a host")


@pytest.fixture()
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setattr(hostops, "run_playbook", _no_host_contact)
    return write_fleet(tmp_path, hosts=500, sites=10)


def _spec(**changes: Any) -> DrillSpec:
    return DrillSpec.model_validate({**SPEC, **changes})


# ---------------------------------------------------------------- pure


def test_an_offline_host_plan_has_the_changes_and_no_facts() -> None:
    changes = HostChanges({"net.netfilter.nf_conntrack_udp_timeout": " 10 "},
                          [Bypass(name="orders", protocol="tcp", port=9001)])
    hp = preview.offline_plan("gw-1", changes)
    out = hp.to_json()
    assert out["sysctl"] == [{"key": "net.netfilter.nf_conntrack_udp_timeout",
                              "before": None, "after": "10", "changes": None}]
    assert out["kernel_owner"] is None and out["refusals"] == []
    assert out["nft_table"] == "inet ctd_drill" and "dport 9001 notrack" in out["nft_rules"]


# ---------------------------------------------------------------- offline preview


def test_offline_plan_of_500_hosts_has_pools_and_changes_and_contacts_nothing(
        fleet: tuple[Path, Path]) -> None:
    inventory, _ = fleet
    seen = preview.preview(_spec(), inventory, offline=True)
    plans, pools = seen.plans, seen.pools
    assert len(pools["targets"]) == 500
    assert (len(pools["canary"]), len(pools["control"])) == (25, 475)  # 5 %, rounded up
    assert sorted(plans) == pools["canary"]
    assert not set(pools["canary"]) & set(pools["control"])
    assert all(c.before is None for hp in plans.values() for c in hp.sysctl)
    assert all(hp.nft_body for hp in plans.values()) and seen.waves == ()


def test_the_seeded_canary_pool_is_the_same_offline_and_in_another_process_order(
        fleet: tuple[Path, Path], tmp_path: Path) -> None:
    inventory, _ = fleet
    first = preview.preview(_spec(), inventory, offline=True).pools
    data = yaml.safe_load(inventory.read_text())
    children = data["all"]["children"]
    data["all"]["children"] = dict(reversed(list(children.items())))
    shuffled = tmp_path / "reversed.yml"
    shuffled.write_text(yaml.safe_dump(data, sort_keys=False))
    second = preview.preview(_spec(), shuffled, offline=True).pools
    assert first == second


def test_offline_plan_has_the_rollouts_waves_over_the_changed_hosts(
        fleet: tuple[Path, Path]) -> None:
    inventory, _ = fleet
    seen = preview.preview(_spec(rollout={"serial": [1, "40%"]}), inventory, offline=True)
    assert [len(w) for w in seen.waves] == [1, 10, 10, 4]  # 40 % of 25 is 10
    assert sorted(h for w in seen.waves for h in w) == seen.pools["canary"]


def test_offline_still_refuses_what_needs_no_facts(fleet: tuple[Path, Path]) -> None:
    inventory, _ = fleet
    guarded = _spec(observe={"hosts": "site01", "duration_s": 10},
                    guards={"ceilings": [{"hosts": "site02", "metric": "ctr",
                                          "above": 0.9}]})
    with pytest.raises(InvalidInput, match="does not observe"):
        preview.preview(guarded, inventory, offline=True)
    with pytest.raises(InvalidInput, match=r"no host .* matches 'nowhere'"):
        preview.preview(_spec(targets={"hosts": "nowhere"}), inventory, offline=True)


def test_offline_refuses_a_host_name_no_play_could_target(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           ) -> None:
    monkeypatch.setattr(hostops, "run_playbook", _no_host_contact)
    inventory = tmp_path / "inv.yml"
    inventory.write_text("all:\n  children:\n    gateways:\n      hosts:\n"
                         "        'gw{{1}}': {}\n        gw2: {}\n")
    with pytest.raises(InvalidInput, match="not usable by ctdrill"):
        preview.preview(_spec(targets={"hosts": "gateways"}), inventory, offline=True)


def test_inventory_names_match_targets_and_targets_are_built_once(
        fleet: tuple[Path, Path]) -> None:
    inv = Inventory(fleet[0])
    names = inv.names("site03")
    targets = inv.select("site03")
    assert names == [t.name for t in targets] and len(names) == 50
    assert all(a is b for a, b in zip(targets, inv.select("site03"), strict=True))
    assert targets[0].role == "gateway" and targets[0].user == "ctdrill"


# ---------------------------------------------------------------- online, unreachable


def test_online_plan_with_unreachable_hosts_fails_naming_them_and_suggests_offline(
        fleet: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    inventory, _ = fleet
    asked: list[list[str]] = []

    def unreachable(_inv: Path, name: str, hosts: list[str], *_a: Any) -> runner.RunResult:
        asked.append(hosts)
        return runner.RunResult("failed", 4, {h: [TaskResult(
            h, "snapshot", False, False, {}, "ssh: connect to host: No route to host",
            unreachable=True)] for h in hosts})

    monkeypatch.setattr(hostops, "run_playbook", unreachable)
    with pytest.raises(EnvironmentProblem) as err:
        preview.preview(_spec(), inventory)
    assert err.value.exit_code == ExitCode.ENVIRONMENT
    assert asked == [sorted(asked[0])] and len(asked[0]) == 25  # only the hosts it changes
    assert "and 24 more" in err.value.message and "--offline" in err.value.hint


# ---------------------------------------------------------------- forks


@pytest.mark.parametrize(("hosts", "forks"), [(1, MIN_FORKS), (5, 5), (16, 16), (32, 32),
                                              (64, 64), (500, MAX_FORKS)])
def test_forks_follow_the_pool_within_bounds(hosts: int, forks: int) -> None:
    assert forks_for(hosts) == forks
    assert MIN_FORKS <= forks_for(hosts) <= MAX_FORKS


def test_a_play_runs_with_forks_sized_to_its_hosts(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    import ansible_runner

    seen: list[str] = []

    class Done:
        status, rc, events = "successful", 0, ()

    def fake_run(**kwargs: Any) -> Done:
        seen.append(kwargs["envvars"]["ANSIBLE_FORKS"])
        return Done()

    monkeypatch.setattr(ansible_runner, "run", fake_run)
    for n in (1, 16, 200):
        runner.run_playbook(tmp_path / "inv.yml", "snapshot",
                            [f"gw{i}" for i in range(n)] + ["gw0"], {}, "r1")
    assert seen == [str(MIN_FORKS), "16", str(MAX_FORKS)]


# ---------------------------------------------------------------- the CLI


def test_cli_plans_a_500_host_fleet_offline(fleet: tuple[Path, Path]) -> None:
    inventory, spec = fleet
    cli = CliRunner()
    shown = cli.invoke(app, ["plan", str(spec), "-i", str(inventory), "--offline"])
    assert shown.exit_code == 0, shown.output
    hosts = Inventory(inventory).names("gateways")
    assert len(hosts) == 500 and all(h in shown.output for h in hosts)
    assert "on 500 host(s): canary 25, control 475" in shown.output
    assert "unknown (offline)" in shown.output
    as_json = cli.invoke(app, ["plan", str(spec), "-i", str(inventory), "--offline",
                               "--json"])
    assert as_json.exit_code == 0, as_json.output
    out = json.loads(as_json.output)
    assert sorted(out["pools"]["targets"]) == sorted(hosts)
    assert (len(out["pools"]["canary"]), len(out["pools"]["control"])) == (25, 475)
    assert sorted(out["hosts"]) == out["pools"]["canary"] and out["refused"] == []
    assert out["offline"] is True and out["unchecked"] == list(preview.UNCHECKED_OFFLINE)


def test_cli_shows_the_waves_of_a_rollout(fleet: tuple[Path, Path], tmp_path: Path) -> None:
    inventory, _ = fleet
    spec = tmp_path / "waves.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "rollout": {"serial": "20%", "pause_s": 5}}))
    cli = CliRunner()
    shown = cli.invoke(app, ["plan", str(spec), "-i", str(inventory), "--offline"])
    assert shown.exit_code == 0, shown.output
    assert "waves (guards checked after each)" in shown.output
    out = json.loads(cli.invoke(app, ["plan", str(spec), "-i", str(inventory), "--offline",
                                      "--json"]).output)
    assert [len(w) for w in out["waves"]] == [5] * 5
    assert sorted(h for w in out["waves"] for h in w) == out["pools"]["canary"]


def test_api_plan_offline_result(fleet: tuple[Path, Path]) -> None:
    inventory, spec = fleet
    result = api.plan(spec, inventory, offline=True)
    assert (result.status, result.rc, result.offline) == ("planned", ExitCode.OK, True)
    assert len(result.hosts) == 25 and result.unchecked and result.waves == ()
    assert "waves" not in result.to_json()
