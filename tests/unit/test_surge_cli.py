"""`ctdrill surge` refuses bad input with one line and exit 2, before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ctdrill.cli.app import app
from ctdrill.cli.surge_cmd import load_surge_spec, spec_from_options
from ctdrill.errors import ExitCode, InvalidInput
from ctdrill.surge.plan import plan_surge
from ctdrill.surge.spec import SurgeLoad
from ctdrill.targets.inventory import Inventory

runner = CliRunner()

INVENTORY = """all:
  vars:
    ctdrill_target_networks: [10.77.0.0/16, 10.78.0.0/16]
  hosts:
    client:
      ansible_connection: local
      ctdrill_netns: ctd-none-client
      ctdrill_addr: 10.77.0.2
    venue:
      ansible_connection: local
      ctdrill_netns: ctd-none-venue
      ctdrill_addr: 10.78.0.2
    outside:
      ansible_connection: local
      ctdrill_netns: ctd-none-out
      ctdrill_addr: 192.0.2.7
    remote:
      ansible_host: 198.51.100.3
      ctdrill_addr: 10.77.9.9
"""


@pytest.fixture()
def inv(tmp_path: Path) -> Path:
    path = tmp_path / "inv.yml"
    path.write_text(INVENTORY)
    return path


def one_line_exit_2(args: list[str], match: str) -> None:
    result = runner.invoke(app, ["surge", *args])
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert match in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_destination_outside_the_networks_is_refused(inv: Path) -> None:
    one_line_exit_2(["-i", str(inv), "--rate", "10", "--destination", "192.0.2.1"],
                    "outside the target networks")
    one_line_exit_2(["-i", str(inv), "--rate", "10", "--destination", "outside"],
                    "outside the target networks")


def test_assured_needs_a_handshake_partner_host(inv: Path) -> None:
    one_line_exit_2(["-i", str(inv), "--rate", "10", "--source", "remote", "--mode",
                     "assured", "--destination", "10.78.0.9"], "handshake partner")


def test_an_ssh_source_gets_a_split_plan(inv: Path, tmp_path: Path) -> None:
    """A source that is no namespace here: the surge is split (senders shipped to it,
    the handshake partner to the venue); nothing local is entered."""
    (tmp_path / "p.csv").write_text("0,100\n1,200\n")
    spec = SurgeLoad.model_validate({"kind": "surge", "source": "remote", "destination": "venue",
                                     "protocol": "tcp", "mode": "assured",
                                     "shape": {"kind": "replay", "profile": "p.csv"}})
    plan = plan_surge(spec, Inventory(inv), base_dir=tmp_path)
    assert plan.remote is not None and plan.remote.name == "remote"
    assert plan.venue is not None and plan.venue.name == "venue"
    assert plan.destination_netns is None and plan.source_netns is None
    assert plan.profile == [(0.0, 100.0), (1.0, 200.0)]


def test_nothing_to_send_and_mixed_input(inv: Path, tmp_path: Path) -> None:
    one_line_exit_2(["-i", str(inv)], "nothing to send")
    spec = tmp_path / "s.yaml"
    spec.write_text("source: client\ndestination: venue\nshape: {kind: max, duration_s: 1}\n")
    one_line_exit_2([str(spec), "-i", str(inv), "--rate", "5"], "either a SPEC file")
    one_line_exit_2(["-i", str(inv), "--mode", "assured", "--protocol", "udp", "--rate", "1"],
                    "needs protocol 'tcp'")


def test_spec_file_errors_point_at_the_line(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("source: client\ndestination: venue\n"
                    "shape: {kind: constant, rate: -1, duration_s: 1}\n")
    with pytest.raises(InvalidInput, match=r"s.yaml:3:\d+: shape.constant.rate"):
        load_surge_spec(spec)
    spec.write_text("source: [unclosed\n")
    with pytest.raises(InvalidInput, match=r"s.yaml:\d+:\d+"):
        load_surge_spec(spec)
    spec.write_text("- a list\n")
    with pytest.raises(InvalidInput, match="expected a mapping"):
        load_surge_spec(spec)
    with pytest.raises(InvalidInput, match="cannot read"):
        load_surge_spec(tmp_path / "absent.yaml")


def test_profile_errors_are_exit_2_before_anything_runs(inv: Path, tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("t,rate\n0,10\n0,20\n")
    spec = tmp_path / "s.yaml"
    spec.write_text("source: client\ndestination: venue\n"
                    "shape: {kind: replay, profile: p.csv}\n")
    one_line_exit_2([str(spec), "-i", str(inv)], "p.csv:3: time 0 is not after")


def test_options_build_the_common_specs() -> None:
    s = spec_from_options("client", "venue", 5000, None, None, None, 10000, 2)
    assert s.shape.kind == "constant" and s.shape.duration_s == 2  # type: ignore[union-attr]
    assert (s.max_packets, s.workers, s.start_s) == (10000, 2, 0)
    s = spec_from_options("client", "venue", None, 3, "assured", None, 100, None)
    assert (s.shape.kind, s.protocol, s.max_packets) == ("max", "tcp", 300)


def test_plan_uses_the_inventory_addresses(inv: Path) -> None:
    spec = SurgeLoad.model_validate({"kind": "surge", "source": "client",
                                     "destination": "10.78.0.2", "src_addrs": 4,
                                     "shape": {"kind": "max", "duration_s": 1}})
    plan = plan_surge(spec, Inventory(inv))
    assert (str(plan.destination), plan.destination_name) == ("10.78.0.2", "venue")
    assert (plan.source_netns, plan.destination_netns) == ("ctd-none-client", "ctd-none-venue")
    assert str(plan.src_last) == "10.77.0.5"
    assert plan.space().size == 4 * 64512 * 1000
