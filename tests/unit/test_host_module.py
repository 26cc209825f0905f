"""The host-side modules (playbooks/module_utils/ctdrill_*.py) without root.

Lock, dead-man and revert logic run against a temporary state directory, a /proc/sys
tree in tmp and an in-memory nft; nothing here touches /run, the real /proc/sys or nft.
The real processes are the dead-man script itself (fed an empty plan, or fenced off)
and Ansible's own module_utils finder, asked what it would ship with each module.
"""

from __future__ import annotations

import ast
import base64
import importlib
import inspect
import json
import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
MODULE_UTILS = PLAYBOOKS / "module_utils"
PACKAGE = "ansible.module_utils"


def _load(name: str) -> Any:
    """One host module, imported by the name the modules use for each other
    (ansible.module_utils.NAME): the installed package also searches the source tree."""
    package = importlib.import_module(PACKAGE)
    if str(MODULE_UTILS) not in package.__path__:
        package.__path__.append(str(MODULE_UTILS))
    return importlib.import_module(f"{PACKAGE}.{name}")


hostenv = _load("ctdrill_env")
payload = _load("ctdrill_payload")
sysctl_ops = _load("ctdrill_sysctl_ops")
nft_ops = _load("ctdrill_nft_ops")
snapshot_ops = _load("ctdrill_snapshot_ops")
revert_ops = _load("ctdrill_revert_ops")
proc = _load("ctdrill_proc")
state = _load("ctdrill_state")
lock = _load("ctdrill_lock")
deadman = _load("ctdrill_deadman")
fenced_revert = _load("ctdrill_fenced_revert")
cli = _load("ctdrill_deadman_cli")
NOT_A_PID = 2**22 + 1  # above PID_MAX_LIMIT: no process can have it
MAX = "net.netfilter.nf_conntrack_max"
BUCKETS = "net.netfilter.nf_conntrack_buckets"
UDP = "net.netfilter.nf_conntrack_udp_timeout"
COUNT = "net.netfilter.nf_conntrack_count"
TABLE = "table inet ctd_drill"


class FakeNft:
    """The nft command lines this module runs, over an in-memory set of tables."""

    def __init__(self, *tables: tuple[str, str]) -> None:
        self.tables: dict[tuple[str, str], str] = {t: "" for t in tables}

    def _render(self, key: tuple[str, str]) -> str:
        return f"table {key[0]} {key[1]} {{\n{self.tables[key]}\n}}\n"

    def __call__(self, args: Sequence[str], stdin: str | None = None) -> str:
        a = list(args)
        if a == ["list", "tables"]:
            return "".join(f"table {f} {n}\n" for f, n in sorted(self.tables))
        if a == ["-s", "list", "ruleset"]:
            return "".join(self._render(k) for k in sorted(self.tables))
        if a[:3] == ["-s", "list", "table"]:
            return self._render((a[3], a[4]))
        if a[:2] == ["delete", "table"]:
            if (a[2], a[3]) not in self.tables:
                raise hostenv.HostError(f"nft {' '.join(a)} failed: No such file or directory")
            del self.tables[(a[2], a[3])]
            return ""
        if a == ["-f", "-"] and stdin is not None:
            _, family, name = stdin.splitlines()[0].split()
            self.tables[(family, name)] = stdin.split("{\n", 1)[1].rsplit("\n}", 1)[0]
            return ""
        raise AssertionError(f"unexpected nft call: {a}")


class FakeTimer:
    """Records what the dead-man switch asked to be started."""

    def __init__(self) -> None:
        self.started: list[tuple[list[str], str, float, str]] = []

    def __call__(self, argv: Sequence[str], unit: str, ttl_s: float, d: str) -> dict[str, Any]:
        self.started.append((list(argv), unit, ttl_s, d))
        return {"mechanism": "fake", "unit": unit}


class KernelLog(list[str]):
    """Stands in for /dev/kmsg: the lines a dead-man would leave in the kernel log."""

    def __call__(self, line: str) -> None:
        self.append(line)


class Clock:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def proc_tree(root: Path, values: dict[str, str], read_only: Sequence[str] = ()) -> None:
    for key, value in values.items():
        path = root / key.replace(".", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
        path.chmod(0o444 if key in read_only else 0o644)


def make_env(tmp_path: Path, values: dict[str, str] | None = None, read_only: Sequence[str] = (),
             nft: FakeNft | None = None, **kw: Any) -> Any:
    proc_sys = tmp_path / "proc" / "sys"
    proc_sys.mkdir(parents=True, exist_ok=True)
    proc_tree(proc_sys, values if values is not None else {MAX: "262144", BUCKETS: "65536",
                                                       UDP: "30", COUNT: "7"},
              read_only=read_only or (COUNT,))
    kw.setdefault("timer", FakeTimer())
    kw.setdefault("log", KernelLog())
    return hostenv.HostEnv(proc_sys=str(proc_sys), run_dir=str(tmp_path / "run"),
                        nft=nft if nft is not None else FakeNft(), **kw)


def owner(run_id: str, **kw: Any) -> dict[str, Any]:
    base = {"run_id": run_id, "orchestrator_host": socket.gethostname(),
            "orchestrator_pid": os.getpid(), "journal": "/tmp/j.jsonl"}
    base.update(kw)
    return base


# ------------------------------------------------------------------ sysctl


def test_sysctl_write_reads_back_and_reports_before_and_after(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    assert sysctl_ops.write_sysctl(UDP, 10, env) == ("30", "10")
    assert sysctl_ops.read_sysctl(UDP, env) == "10"
    assert sysctl_ops.write_sysctl(UDP, "10", env) == ("10", "10")
    assert sysctl_ops.read_sysctl("net.netfilter.nope", env) is None


def test_sysctl_refuses_missing_and_read_only_keys_and_changes_nothing(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    with pytest.raises(hostenv.HostError, match="does not exist"):
        sysctl_ops.write_sysctl("net.netfilter.nope", "1", env)
    with pytest.raises(hostenv.HostError, match="read-only in this network namespace"):
        sysctl_ops.write_sysctl(COUNT, "9", env)
    assert sysctl_ops.read_sysctl(COUNT, env) == "7"
    assert sysctl_ops.write_sysctl(COUNT, " 7\n", env) == ("7", "7")  # already so: no write needed


def test_a_sysctl_key_never_names_a_path_outside_the_root(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    assert sysctl_ops.key_path("/etc/shadow", env).startswith(env.proc_sys)
    assert ".." not in sysctl_ops.key_path("a..etc", env)


# ------------------------------------------------------------------ snapshot / revert


def test_snapshot_reads_netfilter_keys_extra_keys_writability_and_ruleset(tmp_path: Path) -> None:
    env = make_env(tmp_path, nft=FakeNft(("inet", "filter")))
    proc_tree(Path(env.proc_sys), {"net.ipv4.ip_local_port_range": "32768\t60999"})
    snap = snapshot_ops.snapshot(["net.ipv4.ip_local_port_range", "net.core.absent"], env)
    assert snap["sysctl"] == {MAX: "262144", BUCKETS: "65536", UDP: "30", COUNT: "7",
                              "net.ipv4.ip_local_port_range": "32768 60999"}
    assert snap["writable"] == sorted([MAX, BUCKETS, UDP, "net.ipv4.ip_local_port_range"])
    assert snap["kernel_owner"] is True
    assert snap["ruleset"] == "table inet filter {\n\n}\n"
    assert snap["tables"] == [["inet", "filter"]]


def test_revert_restores_sysctls_deletes_own_tables_and_is_idempotent(tmp_path: Path) -> None:
    nft = FakeNft(("inet", "filter"))
    env = make_env(tmp_path, nft=nft)
    sysctl_ops.write_sysctl(MAX, "4096", env)
    nft_ops.nft_apply_table("inet", "ctd_drill", "chain c { }", env)
    plan = {"sysctl": {MAX: "262144", UDP: "30"}, "nft_tables": [["inet", "ctd_drill"]]}
    assert revert_ops.revert(plan, env) == {"restored": {MAX: ["4096", "262144"]},
                                      "deleted": ["inet ctd_drill"], "errors": []}
    assert set(nft.tables) == {("inet", "filter")}
    assert revert_ops.revert(plan, env) == {"restored": {}, "deleted": [], "errors": []}


def test_revert_reports_what_it_cannot_do_and_still_does_the_rest(tmp_path: Path) -> None:
    nft = FakeNft(("inet", "filter"))
    env = make_env(tmp_path, nft=nft)
    sysctl_ops.write_sysctl(UDP, "5", env)
    plan = {"sysctl": {"net.netfilter.gone": "1", UDP: "30"}, "nft_tables": [["inet", "filter"]]}
    result = revert_ops.revert(plan, env)
    assert result["restored"] == {UDP: ["5", "30"]}
    assert len(result["errors"]) == 2
    assert "refusing to touch nft table 'filter'" in result["errors"][0]
    assert ("inet", "filter") in nft.tables


def test_revert_order_puts_buckets_first_and_keeps_the_plan_order_otherwise() -> None:
    acct = "net.netfilter.nf_conntrack_acct"
    assert revert_ops.revert_order([MAX, acct, BUCKETS]) == [BUCKETS, MAX, acct]


FAILURE_KEYS = {"restored", "deleted", "errors", "diffs", "changed"}


def armed_drill(env: Any, run_id: str = "r1") -> dict[str, Any]:
    """Lock, snapshot, arm and change this host the way prepare.yml and apply.yml do."""
    assert lock.lock_acquire(owner(run_id), env)[0]
    before = snapshot_ops.snapshot([UDP], env)
    plan = {"sysctl": {UDP: "30", MAX: "262144"}, "nft_tables": [["inet", "ctd_drill"]]}
    deadman.deadman_arm(run_id, plan, 60, env, expected=before)
    sysctl_ops.write_sysctl(UDP, "10", env)
    sysctl_ops.write_sysctl(MAX, "4096", env)
    nft_ops.nft_apply_table("inet", "ctd_drill", "chain c { }", env)
    return {"plan": plan, "expected": before}


def test_a_verified_revert_disarms_and_unlocks(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    drill = armed_drill(env)
    verified, out = fenced_revert.revert_verified("r1", drill["plan"], drill["expected"], env)
    assert verified
    assert set(out) == FAILURE_KEYS | {"verified", "deadman", "unlocked"}
    assert out["changed"] and out["diffs"] == [] and out["unlocked"] is True
    assert out["deadman"] == {"armed": True, "fired": None}
    assert not os.path.exists(state.lock_path(env))
    assert not os.path.exists(state.deadman_dir("r1", env))
    assert snapshot_ops.snapshot([UDP], env)["sysctl"] == drill["expected"]["sysctl"]


def _key_turns_read_only(env: Any) -> None:
    Path(sysctl_ops.key_path(MAX, env)).chmod(0o444)


def _foreign_table_appears(env: Any) -> None:
    env.nft(["-f", "-"], "table ip other\ndelete table ip other\ntable ip other {\n\n}\n")


@pytest.mark.parametrize("drift", [_key_turns_read_only, _foreign_table_appears])
def test_an_unverified_revert_keeps_the_lock_and_the_deadman_armed(
        tmp_path: Path, drift: Callable[[Any], None]) -> None:
    env = make_env(tmp_path)
    drill = armed_drill(env)
    drift(env)
    verified, out = fenced_revert.revert_verified("r1", drill["plan"], drill["expected"], env)
    assert not verified
    assert set(out) == FAILURE_KEYS
    assert out["errors"] or out["diffs"]
    assert json.loads(Path(state.lock_path(env)).read_text())["run_id"] == "r1"
    assert deadman.deadman_status("r1", env)["armed"] is True


# ------------------------------------------------------------------ lock


def test_the_lock_is_exclusive_and_reentrant_for_its_own_run(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    assert lock.lock_acquire(owner("r1"), env) == (True, owner("r1"))
    assert state.lock_path(env).startswith(str(tmp_path / "run" / "locks" / "netns-"))
    assert lock.lock_acquire(owner("r1", journal="/other"), env) == (True, owner("r1"))
    ok, holder = lock.lock_acquire(owner("r2"), env)
    assert not ok
    assert holder == dict(owner("r1"), stale=False)


@pytest.mark.parametrize(("orchestrator", "stale"), [
    ({"orchestrator_pid": NOT_A_PID}, True),
    ({"orchestrator_pid": str(NOT_A_PID)}, True),
    ({"orchestrator_pid": NOT_A_PID, "orchestrator_host": "elsewhere"}, False),
    ({"orchestrator_pid": os.getpid()}, False),
    ({"orchestrator_pid": None}, False),
    ({"orchestrator_pid": -1}, False),
])
def test_a_holder_is_stale_only_when_its_orchestrator_here_is_gone(
        tmp_path: Path, orchestrator: dict[str, Any], stale: bool) -> None:
    env = make_env(tmp_path)
    assert lock.lock_acquire(owner("r1", **orchestrator), env)[0]
    ok, holder = lock.lock_acquire(owner("r2"), env)
    assert not ok and holder["run_id"] == "r1" and holder["stale"] is stale


def test_an_unreadable_lock_still_refuses(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    path = Path(state.lock_path(env))
    path.parent.mkdir(parents=True)
    path.write_text("{torn")
    assert lock.lock_acquire(owner("r2"), env) == (False, {"run_id": "unknown", "stale": False})
    assert lock.lock_release("unknown", env) is False
    assert path.read_text() == "{torn"


def test_only_the_holder_releases_the_lock(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    assert lock.lock_release("r1", env) is False
    lock.lock_acquire(owner("r1"), env)
    assert lock.lock_release("r2", env) is False
    assert os.path.exists(state.lock_path(env))
    assert lock.lock_release("r1", env) is True
    assert lock.lock_acquire(owner("r2"), env)[0]


def test_the_state_directory_defaults_to_run_ctdrill_and_follows_the_environment(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CTDRILL_RUN_DIR", raising=False)
    assert hostenv.HostEnv().run_dir == "/run/ctdrill"
    assert hostenv.HostEnv().proc_sys == "/proc/sys/"
    monkeypatch.setenv("CTDRILL_RUN_DIR", str(tmp_path))
    assert state.lock_path().startswith(f"{tmp_path}/locks/netns-")
    assert state.deadman_dir("r1").startswith(f"{tmp_path}/deadman/r1-")


# ------------------------------------------------------------------ dead-man switch


def test_arming_leaves_the_script_the_plan_and_the_deadline_and_starts_a_timer(
        tmp_path: Path) -> None:
    clock, timer = Clock(1000.0), FakeTimer()
    env = make_env(tmp_path, clock=clock, timer=timer)
    plan = {"sysctl": {UDP: "30"}, "nft_tables": []}
    armed = deadman.deadman_arm("r1", plan, 60, env)
    d = Path(state.deadman_dir("r1", env))
    script = d / "ctdrill_deadman_cli.py"
    assert armed == {"dir": str(d), "mechanism": "fake", "unit": "ctdrill-deadman-r1",
                     "deadline": 1060.0}
    assert timer.started == [([sys.executable, str(script), "deadman", str(d)],
                              "ctdrill-deadman-r1", 60.0, str(d))]
    copies = [f"{name}.py" for name in cli.BUNDLE]
    for name in copies:  # the script and everything it imports, as they are here
        assert (d / name).read_text() == (MODULE_UTILS / name).read_text()
    assert sorted(p.name for p in d.iterdir()) == sorted([*copies, "deadline", "plan.json",
                                                          "run.json"])
    assert json.loads((d / "plan.json").read_text()) == plan
    assert float((d / "deadline").read_text()) == 1060.0
    assert deadman.deadman_status("r1", env) == {"armed": True, "dir": str(d)}


def test_the_deadman_sleeps_to_its_deadline_reverts_verifies_and_frees_the_host(
        tmp_path: Path) -> None:
    """Unattended: the next drill can lock the host without anybody running a revert."""
    clock = Clock(1000.0)
    env = make_env(tmp_path, clock=clock, sleep=clock.sleep)
    drill = armed_drill(env)
    d = state.deadman_dir("r1", env)
    assert deadman.deadman_wait(d, env=env) == 0
    assert clock.now >= 1060.0 and max(clock.slept) <= 0.5
    assert snapshot_ops.snapshot([UDP], env)["sysctl"] == drill["expected"]["sysctl"]
    fired = state.read_result("r1", env)
    assert fired is not None and fired["verified"] and fired["fired_boot_s"] == clock.now
    assert fired["restored"] and fired["deleted"] == ["inet ctd_drill"]
    assert not os.path.exists(d) and lock.lock_holder(env) is None
    assert lock.lock_acquire(owner("r2"), env)[0]  # the next drill
    assert env.log == ["dead-man of drill run r1 fired: reverted and verified"]


def test_a_deadman_that_cannot_verify_keeps_the_lock_and_says_why(tmp_path: Path) -> None:
    clock = Clock(1000.0)
    env = make_env(tmp_path, clock=clock, sleep=clock.sleep)
    armed_drill(env)
    Path(sysctl_ops.key_path(UDP, env)).chmod(0o444)  # cannot be put back
    d = state.deadman_dir("r1", env)
    assert deadman.deadman_wait(d, env=env) == 1
    fired = deadman.deadman_status("r1", env)["fired"]
    assert fired["verified"] is False and fired["errors"]
    assert lock.lock_holder(env)["run_id"] == "r1"  # type: ignore[index]
    assert state.read_result("r1", env) is None
    assert "NOT verified" in env.log[0] and "the drill lock stays" in env.log[0]
    with pytest.raises(hostenv.Fenced, match="already fired"):
        lock.fence("r1", env)  # a late apply of the same run changes nothing


def test_a_deadman_never_reverts_a_host_another_run_holds(tmp_path: Path) -> None:
    clock = Clock(1000.0)
    env = make_env(tmp_path, clock=clock, sleep=clock.sleep)
    deadman.deadman_arm("r1", {"sysctl": {UDP: "30"}, "nft_tables": []}, 1, env,
                     expected=snapshot_ops.snapshot([UDP], env))
    assert lock.lock_acquire(owner("r2"), env)[0]
    sysctl_ops.write_sysctl(UDP, "10", env)  # r2's change
    assert deadman.deadman_wait(state.deadman_dir("r1", env), env=env) == 1
    assert sysctl_ops.read_sysctl(UDP, env) == "10"
    assert deadman.deadman_status("r1", env)["fired"]["fenced"] is True


def test_a_deadman_disarmed_before_its_deadline_reverts_nothing(tmp_path: Path) -> None:
    clock = Clock(1000.0)
    env = make_env(tmp_path, clock=clock)
    deadman.deadman_arm("r1", {"sysctl": {UDP: "30"}, "nft_tables": []}, 60, env)
    d = state.deadman_dir("r1", env)
    sysctl_ops.write_sysctl(UDP, "10", env)

    def disarm_while_asleep(seconds: float) -> None:
        Path(d, "disarmed").touch()
        clock.sleep(seconds)

    env.sleep = disarm_while_asleep
    assert deadman.deadman_wait(d, env=env) == 0
    assert clock.now < 1060.0
    assert sysctl_ops.read_sysctl(UDP, env) == "10"
    assert not os.path.exists(os.path.join(d, "result.json"))
    assert deadman.deadman_disarm("r1", env) == {"armed": True, "fired": None}
    assert deadman.deadman_disarm("r1", env) == {"armed": False}


def test_the_copied_script_runs_standalone_and_fires_after_its_deadline(tmp_path: Path) -> None:
    env = make_env(tmp_path, clock=lambda: 0.0)  # deadline = 60 s after boot: long past
    deadman.deadman_arm("r1", {"sysctl": {}, "nft_tables": []}, 60, env)  # no snapshot given
    d = state.deadman_dir("r1", env)
    # this python has Ansible installed: the script must use its copies, not that package
    run = run_copied_script(d, tmp_path)
    # a lock-only switch (nothing planned, nothing to verify): it fires and frees the host
    assert run.returncode == 0, run.stderr
    fired = state.read_result("r1", env)
    assert fired is not None and fired["lock_only"] and fired["verified"]
    assert fired["errors"] == [] and fired["restored"] == {} and fired["fired_boot_s"] > 60
    assert not os.path.exists(d)
    usage = subprocess.run([sys.executable, str(MODULE_UTILS / "ctdrill_deadman_cli.py")],
                           capture_output=True, text=True, timeout=60, check=False)
    assert usage.returncode == 2 and usage.stderr.startswith("usage:")


def run_copied_script(d: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The dead-man script as its timer starts it, from its own directory (and in an
    environment that may well let python write bytecode next to what it imports)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return subprocess.run([sys.executable, os.path.join(d, "ctdrill_deadman_cli.py"),
                           "deadman", d], capture_output=True, text=True, timeout=60,
                          check=False, cwd=tmp_path,
                          env=dict(env, CTDRILL_RUN_DIR=str(tmp_path / "run")))


def test_a_copied_script_that_is_fenced_off_changes_nothing_and_adds_only_its_result(
        tmp_path: Path) -> None:
    """Another run holds the host: the switch stays, its result says why, and the
    directory holds nothing arming did not put there but that result (no bytecode)."""
    env = make_env(tmp_path, clock=lambda: 0.0)
    deadman.deadman_arm("r1", {"sysctl": {}, "nft_tables": []}, 60, env)
    assert lock.lock_acquire(owner("r2"), env)[0]
    d = state.deadman_dir("r1", env)
    armed = set(os.listdir(d))
    run = run_copied_script(d, tmp_path)
    assert run.returncode == 1, run.stderr
    assert set(os.listdir(d)) == armed | {"result.json"}
    fired = deadman.deadman_status("r1", env)["fired"]
    assert fired["fenced"] is True and fired["holder"]["run_id"] == "r2"
    assert lock.lock_holder(env)["run_id"] == "r2"


def test_disarming_ends_a_running_detached_timer_without_a_revert(tmp_path: Path) -> None:
    """The real detached timer (the copied script, far from its deadline) ends on disarm
    (its SIGTERM, or the disarmed file it polls). Here the timer is this process's child,
    so the test's 'sleep' reaps it."""
    ended: list[int] = []
    pid: list[int] = []

    def reap(_seconds: float) -> None:
        """Wait (bounded) for the timer to end, then reap it."""
        fd = os.pidfd_open(pid[0])
        try:
            assert select.select([fd], [], [], 30)[0], "the timer outlived its SIGTERM"
        finally:
            os.close(fd)
        _, status = os.waitpid(pid[0], 0)
        ended.append(status)

    env = make_env(tmp_path, timer=hostenv.start_detached, sleep=reap)
    armed = deadman.deadman_arm("r1", {"sysctl": {}, "nft_tables": []}, 3600, env)
    assert armed["mechanism"] == "detached-process"
    pid.append(armed["pid"])
    assert Path(armed["dir"], "pid").read_text() == f"{armed['pid']}\n"
    assert deadman.deadman_disarm("r1", env) == {"armed": True, "fired": None}
    if not ended:  # it died before disarm first looked (a zombie counts as ended): reap it
        reap(0.0)  # here, still bounded: a timer that outlived its SIGTERM fails the test
    assert len(ended) == 1
    status = ended[0]
    assert (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0) or (
        os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM)
    assert not os.path.exists(armed["dir"])


# ------------------------------------------------------------------ imports and shipping


def ctdrill_imports(path: Path) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(file, name) pairs a file imports from the host modules: as mypy reads them
    (`from ctdrill_X import`, under TYPE_CHECKING) and as they run and are shipped
    (`from ansible.module_utils.ctdrill_X import`)."""
    typed: set[tuple[str, str]] = set()
    shipped: set[tuple[str, str]] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            pairs = {(node.module.rpartition(".")[2], a.name) for a in node.names}
            if node.module.startswith(f"{PACKAGE}.ctdrill_"):
                shipped |= pairs
            elif node.module.startswith("ctdrill_"):
                typed |= pairs
    return typed, shipped


def closure(names: set[str]) -> set[str]:
    """Host module files and every host module file they import, directly or not."""
    seen: set[str] = set()
    todo = sorted(names)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += [m for m, _ in ctdrill_imports(MODULE_UTILS / f"{name}.py")[1]]
    return seen


ANSIBLE_MODULES = sorted((PLAYBOOKS / "library").glob("ctdrill_*.py"))
HOST_FILES = sorted(MODULE_UTILS.glob("ctdrill_*.py")) + ANSIBLE_MODULES


@pytest.mark.parametrize("path", HOST_FILES, ids=lambda p: p.name)
def test_what_mypy_checks_is_what_runs(path: Path) -> None:
    """Each file names its host-module imports twice (for mypy, for Ansible and the
    dead-man script): the same names from the same files, each of which exists."""
    typed, shipped = ctdrill_imports(path)
    assert typed == shipped
    for module, name in shipped:
        assert hasattr(_load(module), name), f"{path.name}: {module} has no {name}"


def test_the_deadman_script_carries_everything_it_imports() -> None:
    assert closure({"ctdrill_deadman"}) == set(cli.BUNDLE)
    assert ctdrill_imports(MODULE_UTILS / f"{cli.ENTRY}.py") == (set(), set())  # stdlib only
    assert ctdrill_imports(MODULE_UTILS / "ctdrill_env.py") == (set(), set())  # the leaf


# ansible-core's own builder of a module's zip payload (private API: pinned to 2.19)
FINDER = """
import datetime, io, json, sys, zipfile
from ansible._internal._ansiballz._builder import ExtensionManager
from ansible.executor.module_common import recursive_finder
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader()
shipped = {}
for path in sys.argv[1:]:
    name = path.rsplit("/", 1)[1][:-3]
    with open(path, "rb") as f, zipfile.ZipFile(io.BytesIO(), "w") as zf:
        recursive_finder(name, "ansible.legacy." + name, f.read(), zf,
                         datetime.datetime(2020, 1, 1), ExtensionManager())
        shipped[name] = sorted(n for n in zf.namelist() if "/ctdrill_" in n)
print(json.dumps(shipped))
"""


def test_ansible_ships_each_module_with_every_host_file_it_imports(tmp_path: Path) -> None:
    """Ansible's module_utils finder follows the imports between the host modules: each
    Ansible module travels with its whole closure, and the two that arm the dead-man
    (copying the script's files from that payload) with the script's bundle."""
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    run = subprocess.run([sys.executable, "-c", FINDER, *map(str, ANSIBLE_MODULES)],
                         capture_output=True, text=True, timeout=120, check=False,
                         cwd=tmp_path, env=dict(os.environ, ANSIBLE_HOME=str(tmp_path),
                                                ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg"),
                                                ANSIBLE_MODULE_UTILS=str(MODULE_UTILS)))
    assert run.returncode == 0, run.stderr
    shipped = json.loads(run.stdout)
    for path in ANSIBLE_MODULES:
        wanted = closure({module for module, _ in ctdrill_imports(path)[1]})
        assert shipped[path.stem] == sorted(f"ansible/module_utils/{m}.py" for m in wanted)
    for arming in ("ctdrill_prepare", "ctdrill_apply"):
        assert {f"ansible/module_utils/{m}.py" for m in cli.BUNDLE} <= set(shipped[arming])


def _host_calls(path: Path) -> list[tuple[ast.Call, Any]]:
    """Every call of a host-module function in an Ansible module, with that function."""
    imported = {name: getattr(_load(module), name) for module, name in ctdrill_imports(path)[1]}
    return [(node, imported[node.func.id]) for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in imported]


@pytest.mark.parametrize("path", ANSIBLE_MODULES, ids=lambda p: p.name)
def test_each_ansible_module_calls_the_host_modules_as_they_are_defined(path: Path) -> None:
    """Bind every call to the real signature (mypy checks the same through the
    TYPE_CHECKING imports; this holds even if those drift)."""
    calls = _host_calls(path)
    assert calls
    for call, function in calls:
        assert isinstance(call.func, ast.Name)
        args = [None] * len(call.args)
        kwargs = {k.arg: None for k in call.keywords if k.arg is not None}
        try:
            inspect.signature(function).bind(*args, **kwargs)
        except TypeError as exc:
            pytest.fail(f"{path.name}:{call.lineno}: {call.func.id}(...): {exc}")


# ------------------------------------------------------------------ payload and fencing


def encode(data: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(data).encode()).decode()


def test_the_payload_is_data_the_host_part_wins_and_templates_stay_text() -> None:
    evil = "{{ lookup('pipe', 'id > /tmp/x') }}30"
    encoded = encode({"run_id": "r1", "common": {"ttl_s": 60, "x": 1},
                      "hosts": {"gw": {"x": 2, "sysctl": {UDP: evil}}}})
    assert payload.decode_payload(encoded, "gw") == {"run_id": "r1", "ttl_s": 60, "x": 2,
                                                  "sysctl": {UDP: evil}}
    assert payload.decode_payload(encoded, "venue") == {"run_id": "r1", "ttl_s": 60, "x": 1}
    for bad in ("not base64!", encode({"common": {}}), base64.b64encode(b"\xff").decode()):
        with pytest.raises(hostenv.HostError, match="unreadable ctdrill payload"):
            payload.decode_payload(bad, "gw")


def test_only_the_lock_holder_passes_the_fence(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    with pytest.raises(hostenv.Fenced, match="no run holds its lock"):
        lock.fence("r1", env)
    assert lock.lock_acquire(owner("r2"), env)[0]
    with pytest.raises(hostenv.Fenced, match="drill run r2 holds its lock") as caught:
        lock.fence("r1", env)
    assert caught.value.holder["run_id"] == "r2"
    lock.fence("r2", env)


def test_a_revert_of_another_runs_journal_changes_nothing(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    old = armed_drill(env, "old")
    fenced_revert.revert_verified("old", old["plan"], old["expected"], env)
    live = armed_drill(env, "live")
    state = snapshot_ops.snapshot([UDP], env)
    with pytest.raises(hostenv.Fenced, match="held by drill run live"):
        fenced_revert.revert_fenced("old", old["plan"], old["expected"], env)
    assert snapshot_ops.snapshot([UDP], env) == state
    assert lock.lock_holder(env)["run_id"] == "live"  # type: ignore[index]
    assert fenced_revert.revert_fenced("live", live["plan"], live["expected"], env)[0]


def test_a_revert_after_the_deadman_reports_what_it_did(tmp_path: Path) -> None:
    clock = Clock(1000.0)
    env = make_env(tmp_path, clock=clock, sleep=clock.sleep)
    drill = armed_drill(env)
    deadman.deadman_wait(state.deadman_dir("r1", env), env=env)
    verified, out = fenced_revert.revert_fenced("r1", drill["plan"], drill["expected"], env)
    assert verified and out["not_held"] and not out["changed"]
    assert out["deadman"]["fired"]["verified"] is True


def test_the_runs_own_processes_here_are_stopped(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    mine = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"],
                            env=dict(os.environ, CTDRILL_RUN_ID="r-stop"))
    other = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"],
                             env=dict(os.environ, CTDRILL_RUN_ID="r-other"))
    try:
        assert proc.stop_run_processes("r-stop", env) == [mine.pid]
        assert mine.wait(timeout=30) == -signal.SIGKILL
        assert other.poll() is None
    finally:
        for p in (mine, other):
            p.kill()
            p.wait()


def test_the_play_running_the_revert_is_not_stopped_by_it(tmp_path: Path) -> None:
    """The module's own ancestors carry the run id (Ansible passes it down): a revert
    that killed them would never report back."""
    env = make_env(tmp_path)
    script = ("import sys; sys.path.insert(0, sys.argv[1]); import ctdrill_deadman_cli as c; "
              "c.provide_package(sys.argv[1]); from ansible.module_utils import ctdrill_proc as p; "
              "print(p.run_processes('r-self'))")
    # a shell that stays the python's parent (the `; true` keeps it from exec'ing)
    out = subprocess.run(["sh", "-c", '"$0" -c "$1" "$2"; true', sys.executable, script,
                          str(MODULE_UTILS)], capture_output=True, text=True,
                         check=True, env=dict(os.environ, CTDRILL_RUN_ID="r-self"))
    assert out.stdout.strip() == "[]", out.stderr
    assert os.getpid() in proc.ancestors(env.proc)


def test_a_key_read_for_another_host_is_verified_not_reported_missing(tmp_path: Path) -> None:
    """prepare reads every key the drill touches anywhere; a host whose plan leaves one of
    them alone must still verify (it was read, so it is read again)."""
    other = "net.ipv4.tcp_syn_retries"
    env = make_env(tmp_path, values={UDP: "30", MAX: "262144", COUNT: "1", other: "6"})
    assert lock.lock_acquire(owner("r1"), env)[0]
    before = snapshot_ops.snapshot([UDP, other], env)
    sysctl_ops.write_sysctl(UDP, "10", env)
    verified, out = fenced_revert.revert_verified("r1", {"sysctl": {UDP: "30"}, "nft_tables": []},
                                         before, env)
    assert verified, out["diffs"]


def test_a_run_that_dies_between_lock_and_apply_leaves_no_lock(tmp_path: Path) -> None:
    """The switch armed with the lock frees the host at the TTL; apply re-arms it with the
    real plan (one timer, the new plan)."""
    clock = Clock(1000.0)
    env = make_env(tmp_path, clock=clock, sleep=clock.sleep)
    assert lock.lock_acquire(owner("r1"), env)[0]
    deadman.deadman_arm("r1", deadman.LOCK_ONLY_PLAN, 30, env)
    assert deadman.deadman_wait(state.deadman_dir("r1", env), env=env) == 0
    assert lock.lock_holder(env) is None and lock.lock_acquire(owner("r2"), env)[0]


def test_a_plan_without_a_snapshot_is_not_called_verified(tmp_path: Path) -> None:
    clock = Clock(1000.0)
    env = make_env(tmp_path, clock=clock, sleep=clock.sleep)
    assert lock.lock_acquire(owner("r1"), env)[0]
    deadman.deadman_arm("r1", {"sysctl": {UDP: "30"}, "nft_tables": []}, 1, env)
    assert deadman.deadman_wait(state.deadman_dir("r1", env), env=env) == 1
    assert deadman.deadman_status("r1", env)["fired"]["diffs"] == ["no snapshot to verify against"]
    assert lock.lock_holder(env)["run_id"] == "r1"  # type: ignore[index]
