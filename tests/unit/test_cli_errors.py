"""Bad input gives one line and a documented exit code, before anything is touched."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ctdrill.cli.app import app
from ctdrill.errors import EnvironmentProblem, ExitCode
from ctdrill.system import preflight

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and "ctdrill" in result.stdout


def test_unknown_target_is_one_line_exit_2(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts:\n    gw:\n      ansible_connection: local\n"
                   "      ctdrill_netns: ctd-none-gw\n")
    result = runner.invoke(app, ["observe", "nope", "-i", str(inv)])
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert "unknown target 'nope'" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_missing_inventory_is_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["observe", "gw", "-i", str(tmp_path / "absent.yml")])
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert "does not exist" in result.output


def test_bad_lab_name_is_exit_2() -> None:
    result = runner.invoke(app, ["lab", "up", "--name", "Bad-Name"])
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert "invalid lab name" in result.output


def test_observe_rejects_absurd_rates(tmp_path: Path) -> None:
    result = runner.invoke(app, ["observe", "gw", "--hz", "0"])
    assert result.exit_code == ExitCode.INVALID_INPUT


def test_not_root_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight.os, "geteuid", lambda: 1000)
    with pytest.raises(EnvironmentProblem, match="needs root"):
        preflight.require_root()
    result = runner.invoke(app, ["lab", "up", "--name", "zz"])
    assert result.exit_code == ExitCode.ENVIRONMENT
    assert "needs root" in result.output


def test_missing_binary_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "find_binary", lambda name: None)
    with pytest.raises(EnvironmentProblem, match="missing system command"):
        preflight.require_binaries(("nft",))


def test_kernel_without_conntrack_is_reported(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="no nf_conntrack"):
        preflight.require_conntrack(tmp_path)


def test_global_knobs_wait_for_a_drill_holding_the_kernel_owner(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A killed drill's kernel-wide values stay until its dead-man fires: nobody may
    record them as 'originals' meanwhile."""
    from ctdrill.system import knobs

    monkeypatch.setenv("CTDRILL_RUN_DIR", str(tmp_path))
    lock = knobs.kernel_owner_drill_lock()
    lock.parent.mkdir(parents=True)
    lock.write_text('{"run_id": "r1"}')
    with pytest.raises(EnvironmentProblem, match="held by a drill"):
        knobs.wait_for_kernel_owner(timeout_s=0.3)
    lock.unlink()
    knobs.wait_for_kernel_owner(timeout_s=0.3)


def test_observe_without_inventory_and_no_default_lab_is_exit_5(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CTDRILL_RUN_DIR", str(tmp_path))
    result = runner.invoke(app, ["observe", "gw"])
    assert result.exit_code == ExitCode.ENVIRONMENT
    assert "default lab is not up" in result.output
