"""The dead-man switch: a timer on the target that reverts the host when nobody else does.

Arming leaves, in one directory per run and namespace (ctdrill_state.deadman_dir), a copy
of the dead-man script (ctdrill_deadman_cli explains why copies), the revert plan, the
snapshot to verify against and the deadline on the boot clock, then starts a timer
(HostEnv.timer: systemd-run, else a detached process). Firing is unattended and ends
with the host free for the next drill when the revert verifies.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import shutil
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # mypy sees these files as top-level modules (see ctdrill_env)
    from ctdrill_deadman_cli import BUNDLE, ENTRY, PACKAGE
    from ctdrill_env import HostEnv, HostError, Json, resolve
    from ctdrill_lock import host_mutex, lock_holder, lock_release
    from ctdrill_proc import as_pid, pid_alive, stop_run_processes
    from ctdrill_revert_ops import diffs_after_revert, revert
    from ctdrill_state import deadman_dir, result_path, write_json_atomic
else:  # the spelling Ansible's module_utils finder follows and ships
    from ansible.module_utils.ctdrill_deadman_cli import BUNDLE, ENTRY, PACKAGE
    from ansible.module_utils.ctdrill_env import HostEnv, HostError, Json, resolve
    from ansible.module_utils.ctdrill_lock import host_mutex, lock_holder, lock_release
    from ansible.module_utils.ctdrill_proc import as_pid, pid_alive, stop_run_processes
    from ansible.module_utils.ctdrill_revert_ops import diffs_after_revert, revert
    from ansible.module_utils.ctdrill_state import (
        deadman_dir,
        result_path,
        write_json_atomic,
    )

LOCK_ONLY_PLAN: Json = {"sysctl": {}, "nft_tables": []}
"""The plan of the switch armed with the lock: an orchestrator that dies after locking
and before applying leaves nothing to revert, only a lock to release at the TTL."""


def bundle_sources() -> dict[str, str]:
    """The text of every file of the dead-man script, read from wherever this process
    loaded it: the source tree, or the zip payload Ansible runs a module from."""
    sources = {}
    for name in BUNDLE:
        try:
            sources[name] = inspect.getsource(importlib.import_module(f"{PACKAGE}.{name}"))
        except (ImportError, OSError, TypeError):
            data = pkgutil.get_data(PACKAGE, f"{name}.py")
            if data is None:
                raise HostError(f"cannot read {name} for the dead-man script") from None
            sources[name] = data.decode()
    return sources


def deadman_arm(run_id: str, plan: Json, ttl_s: float, env: HostEnv | None = None,
                expected: Json | None = None) -> Json:
    """Leave the script, the plan, the snapshot to verify against and a timer that
    fires at now + ttl_s (boot clock) unless disarmed."""
    env = resolve(env)
    sources = bundle_sources()
    d = deadman_dir(run_id, env)
    if os.path.isdir(d):  # re-armed (lock-only switch -> the apply's): one timer only
        stop_timer(d, env)
    os.makedirs(d, exist_ok=True)
    for name, source in sources.items():
        with open(os.path.join(d, f"{name}.py"), "w") as f:
            f.write(source)
    with open(os.path.join(d, "plan.json"), "w") as f:
        json.dump(plan, f)
    with open(os.path.join(d, "run.json"), "w") as f:
        json.dump({"run_id": run_id, "expected": expected}, f)
    deadline = env.clock() + float(ttl_s)
    with open(os.path.join(d, "deadline"), "w") as f:
        f.write(f"{deadline:f}\n")
    argv = [sys.executable, os.path.join(d, f"{ENTRY}.py"), "deadman", d]
    started = env.timer(argv, f"ctdrill-deadman-{run_id}", float(ttl_s), d)
    return dict({"dir": d}, **started, deadline=deadline)


def stop_timer(d: str, env: HostEnv) -> None:
    """Stop whichever timer arm started (a systemd unit or a detached process)."""
    unit_file = os.path.join(d, "systemd-unit")
    if os.path.exists(unit_file):
        with open(unit_file) as f:
            unit = f.read().strip()
        subprocess.run(["systemctl", "stop", unit + ".timer"], capture_output=True, check=False)
    try:
        with open(os.path.join(d, "pid")) as f:
            pid = as_pid(f.read())
    except OSError:
        pid = None
    if pid is None or not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    for _ in range(100):
        if not pid_alive(pid):
            break
        env.sleep(0.02)


def _recorded_result(d: str) -> Json | None:
    """The result.json a fired switch left in its directory, if it fired."""
    result = os.path.join(d, "result.json")
    if not os.path.exists(result):
        return None
    with open(result) as f:
        fired: Json = json.load(f)
    return fired


def deadman_disarm(run_id: str, env: HostEnv | None = None) -> Json:
    """Stop the timer and remove its files. Returns what the timer had done, if anything."""
    env = resolve(env)
    d = deadman_dir(run_id, env)
    if not os.path.isdir(d):
        return {"armed": False}
    open(os.path.join(d, "disarmed"), "w").close()
    stop_timer(d, env)
    fired = _recorded_result(d)
    remove_dir(d)
    return {"armed": True, "fired": fired}


def deadman_status(run_id: str, env: HostEnv | None = None) -> Json:
    """Whether the run's switch is armed here, and what it recorded if it fired."""
    d = deadman_dir(run_id, env)
    if not os.path.isdir(d):
        return {"armed": False}
    out: Json = {"armed": True, "dir": d}
    fired = _recorded_result(d)
    if fired is not None:
        out["fired"] = fired
    return out


def deadman_wait(d: str, now: bool = False, env: HostEnv | None = None) -> int:
    """The timer itself: sleep to the deadline unless disarmed, then fire."""
    env = resolve(env)
    disarmed = os.path.join(d, "disarmed")
    if not now:
        with open(os.path.join(d, "deadline")) as f:
            deadline = float(f.read())
        while env.clock() < deadline:
            if os.path.exists(disarmed):
                return 0
            env.sleep(min(0.5, max(0.0, deadline - env.clock())))
    return deadman_fire(d, env)


def deadman_fire(d: str, env: HostEnv) -> int:
    """Finish the job unattended: stop the run's processes, revert, verify against the
    snapshot, record the outcome (a result file and a kernel-log line) and, when
    verified, release the run's lock and remove the switch, so the next drill runs
    with no human in between. Unverified: the lock stays and the result says why."""
    with host_mutex(env):
        if os.path.exists(os.path.join(d, "disarmed")):
            return 0
        with open(os.path.join(d, "plan.json")) as f:
            plan = json.load(f)
        meta = _deadman_meta(d)
        run_id = str(meta.get("run_id", os.path.basename(d).rsplit("-", 1)[0]))
        holder = lock_holder(env)
        if holder is not None and holder.get("run_id") != run_id:
            result: Json = {"verified": False, "fenced": True, "holder": holder,
                            "errors": [f"the host is held by run {holder.get('run_id')}"]}
        else:
            result = _revert_and_verify(run_id, plan, meta.get("expected"), env)
        result.update(run_id=run_id, fired_at=time.time(), fired_boot_s=env.clock())
        write_json_atomic(os.path.join(d, "result.json"), result)
        if result["verified"]:
            write_json_atomic(result_path(run_id, env), result)
            lock_release(run_id, env)
            remove_dir(d)
        problems = "; ".join(result.get("errors", []) + result.get("diffs", []))
        env.log(f"dead-man of drill run {run_id} fired: reverted and verified" if
                result["verified"] else f"dead-man of drill run {run_id} fired: NOT "
                f"verified ({problems}); the drill lock stays")
        return 0 if result["verified"] else 1


def _deadman_meta(d: str) -> Json:
    try:
        with open(os.path.join(d, "run.json")) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _revert_and_verify(run_id: str, plan: Json, expected: Json | None,
                       env: HostEnv) -> Json:
    stopped = stop_run_processes(run_id, env)
    if expected is None and not plan.get("sysctl") and not plan.get("nft_tables"):
        # the lock-only switch: the run died between lock and apply, nothing was changed
        return {"restored": {}, "deleted": [], "errors": [], "diffs": [], "stopped": stopped,
                "verified": True, "lock_only": True}
    result = revert(plan, env)
    diffs = (diffs_after_revert(plan, expected, env) if expected
             else ["no snapshot to verify against"])
    return dict(result, diffs=diffs, stopped=stopped,
                verified=not result["errors"] and not diffs)


def remove_dir(d: str) -> None:
    """Remove a switch's directory and everything in it."""
    shutil.rmtree(d)
