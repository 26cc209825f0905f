"""Host-side state operations of ctdrill: snapshot, sysctl, nftables, revert, dead-man, lock.

Standard library only. Ansible ships this file to the target with every ctdrill module
(module_utils), and the dead-man switch copies it to the target as a standalone script
(`python3 ctdrill_host.py deadman DIR`), so the target can revert itself with nothing
else installed. Everything here acts on the network namespace the process runs in.

Rules it keeps: sysctls are written through /proc/sys and read back (`sysctl -w` can
exit 0 on failure); nftables changes touch only tables named ctd_*; the ruleset is
compared in stateless form (`nft -s`), so counters do not count as drift.

Every effect goes through a `HostEnv` (the /proc/sys root, the state directory, the nft
runner, the timer, the clock). The default is the real host; unit tests point each at
a fake, so the lock, dead-man and revert logic is tested without root. Runs on the
target's python3 (3.8 or later): annotations are never evaluated at run time.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Callable, Dict, Iterator, Optional, Sequence

PROC_SYS = "/proc/sys/"
OWN_TABLE_PREFIX = "ctd_"
DEFAULT_RUN_DIR = "/run/ctdrill"
RUN_DIR_VARIABLE = "CTDRILL_RUN_DIR"
RUN_ID_VARIABLE = "CTDRILL_RUN_ID"  # every process a run starts carries it (fencing)
VOLATILE_KEYS = ("net.netfilter.nf_conntrack_count",)

Json = Dict[str, Any]
NftRunner = Callable[[Sequence[str], Optional[str]], str]
TimerStarter = Callable[[Sequence[str], str, float, str], Json]


class HostError(Exception):
    """A host operation that could not be done or could not be verified."""


class Fenced(HostError):
    """The run no longer owns this host: another run holds its lock, nobody does, or the
    run's dead-man already fired. Nothing was changed."""

    def __init__(self, message: str, holder: Json | None = None) -> None:
        super().__init__(message)
        self.holder = holder or {}


def boot_clock() -> float:
    """Seconds since boot, suspend included: never jumps with the wall clock (NTP, an
    operator's `date -s`), so a dead-man deadline means what it says."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def kernel_log(line: str) -> None:
    """One line in the kernel log (dmesg, journald): what a dead-man did, for the
    operator who finds the host later. Best effort: no /dev/kmsg, no line."""
    try:
        with open("/dev/kmsg", "w") as f:
            f.write(f"<5>ctdrill: {line}\n")
    except OSError:
        pass


# ------------------------------------------------------------------ real effects

def run_nft(args: Sequence[str], stdin: str | None = None) -> str:
    """Run nft; any non-zero exit is a HostError carrying nft's own message."""
    proc = subprocess.run(["nft", *args], input=stdin, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise HostError(f"nft {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def netns_inode() -> int:
    return os.stat("/proc/self/ns/net").st_ino


def default_run_dir() -> str:
    """Where locks and dead-man timers live: tmpfs, so they vanish with the namespaces."""
    return os.environ.get(RUN_DIR_VARIABLE, DEFAULT_RUN_DIR)


def systemd_usable() -> bool:
    """systemd-run only helps when PID 1 is systemd and shares our network namespace."""
    try:
        return (os.path.isdir("/run/systemd/system")
                and os.stat("/proc/1/ns/net").st_ino == netns_inode())
    except OSError:
        return False


def start_systemd_timer(argv: Sequence[str], unit: str, ttl_s: float, d: str) -> Json:
    """A transient systemd timer: it survives the death of every ctdrill process."""
    subprocess.run(["systemd-run", "--unit", unit, "--collect", f"--on-active={int(ttl_s)}s",
                    "--timer-property=AccuracySec=1s", *argv, "--now"],
                   check=True, capture_output=True)
    with open(os.path.join(d, "systemd-unit"), "w") as f:
        f.write(unit)
    return {"mechanism": "systemd-run", "unit": unit}


def start_detached(argv: Sequence[str], unit: str, ttl_s: float, d: str) -> Json:
    """A process in its own session that sleeps to the deadline (no systemd here)."""
    # without the run's id: the dead-man is not a process of the run it stops
    env = {k: v for k, v in os.environ.items() if k != RUN_ID_VARIABLE}
    proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True,
                            env=env)
    with open(os.path.join(d, "pid"), "w") as f:
        f.write(f"{proc.pid}\n")
    return {"mechanism": "detached-process", "pid": proc.pid}


def start_timer(argv: Sequence[str], unit: str, ttl_s: float, d: str) -> Json:
    """systemd-run where it can reach this namespace, else a detached process."""
    if systemd_usable():
        return start_systemd_timer(argv, unit, ttl_s, d)
    return start_detached(argv, unit, ttl_s, d)


class HostEnv:
    """Where this module's effects land. The defaults are the real host."""

    def __init__(self, proc_sys: str = PROC_SYS, run_dir: str | None = None,
                 nft: NftRunner = run_nft, timer: TimerStarter = start_timer,
                 clock: Callable[[], float] = boot_clock,
                 sleep: Callable[[float], None] = time.sleep,
                 log: Callable[[str], None] = kernel_log,
                 proc: str = "/proc") -> None:
        self.proc_sys = proc_sys.rstrip("/") + "/"
        self.run_dir = run_dir if run_dir is not None else default_run_dir()
        self.nft = nft
        self.timer = timer
        self.clock = clock
        self.sleep = sleep
        self.log = log
        self.proc = proc


def _env(env: HostEnv | None) -> HostEnv:
    return env if env is not None else HostEnv()


# ------------------------------------------------------------------ sysctl

def key_path(key: str, env: HostEnv | None = None) -> str:
    # concatenation, not os.path.join: a key can never name a path outside the root
    return _env(env).proc_sys + key.replace(".", "/")


def normalise(value: object) -> str:
    """Multi-field sysctls print tab-separated; compare on whitespace-split fields."""
    return " ".join(str(value).split())


def read_sysctl(key: str, env: HostEnv | None = None) -> str | None:
    try:
        with open(key_path(key, env)) as f:
            return normalise(f.read())
    except OSError:
        return None


def is_writable(key: str, env: HostEnv | None = None) -> bool:
    try:
        return bool(os.stat(key_path(key, env)).st_mode & 0o200)
    except OSError:
        return False


def write_sysctl(key: str, value: object, env: HostEnv | None = None) -> tuple[str, str]:
    """Write and read back; return (before, after). Raises HostError on any mismatch."""
    before = read_sysctl(key, env)
    if before is None:
        raise HostError(f"sysctl {key} does not exist here")
    want = normalise(value)
    if before == want:
        return before, before
    if not is_writable(key, env):
        raise HostError(f"sysctl {key} is read-only in this network namespace (kernel-wide "
                        "keys can only be set in the initial namespace)")
    try:
        with open(key_path(key, env), "w") as f:
            f.write(want + "\n")
    except OSError as exc:
        raise HostError(f"writing {key}={want} failed: {exc.strerror}") from exc
    after = read_sysctl(key, env)
    if after != want:
        raise HostError(f"{key} reads {after} after writing {want}")
    return before, after


def netfilter_sysctls(env: HostEnv | None = None) -> tuple[dict[str, str], list[str]]:
    """Every readable net.netfilter.* value and whether it is writable here."""
    env = _env(env)
    values: dict[str, str] = {}
    writable: list[str] = []
    for root, _dirs, files in os.walk(env.proc_sys + "net/netfilter"):
        for name in files:
            key = os.path.join(root, name)[len(env.proc_sys):].replace("/", ".")
            value = read_sysctl(key, env)
            if value is None:
                continue
            values[key] = value
            if is_writable(key, env):
                writable.append(key)
    return values, sorted(writable)


# ------------------------------------------------------------------ nftables

def nft_ruleset(env: HostEnv | None = None) -> str:
    """The whole ruleset, stateless (no counter values), as nft prints it."""
    return _env(env).nft(["-s", "list", "ruleset"], None)


def nft_tables(env: HostEnv | None = None) -> list[list[str]]:
    out = _env(env).nft(["list", "tables"], None)
    tables = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "table":
            tables.append([parts[1], parts[2]])
    return tables


def check_own_table(name: str) -> None:
    if not name.startswith(OWN_TABLE_PREFIX):
        raise HostError(f"refusing to touch nft table {name!r}: ctdrill only manages tables "
                        f"named {OWN_TABLE_PREFIX}*")


def nft_apply_table(family: str, name: str, body: str, env: HostEnv | None = None) -> str:
    """Create or replace one of our tables atomically (add, delete, add in one batch)."""
    env = _env(env)
    check_own_table(name)
    script = (f"table {family} {name}\ndelete table {family} {name}\n"
              f"table {family} {name} {{\n{body}\n}}\n")
    env.nft(["-f", "-"], script)
    return env.nft(["-s", "list", "table", family, name], None)


def nft_delete_table(family: str, name: str, env: HostEnv | None = None) -> bool:
    env = _env(env)
    check_own_table(name)
    if [family, name] in nft_tables(env):
        env.nft(["delete", "table", family, name], None)
        return True
    return False


# ------------------------------------------------------------------ snapshot / verify

def snapshot(keys: Sequence[str] = (), env: HostEnv | None = None) -> Json:
    """Everything a drill may touch here: all net.netfilter.*, the given keys, the ruleset."""
    env = _env(env)
    values, writable = netfilter_sysctls(env)
    for key in keys:
        if key not in values:
            value = read_sysctl(key, env)
            if value is not None:
                values[key] = value
                if is_writable(key, env):
                    writable.append(key)
    return {
        "netns_inode": netns_inode(),
        "kernel_owner": is_writable("net.netfilter.nf_conntrack_max", env),
        "hostname": socket.gethostname(),
        "sysctl": values,
        "writable": sorted(set(writable)),
        "ruleset": nft_ruleset(env),
        "tables": nft_tables(env),
    }


def compare(expected: Json, actual: Json, touched: Sequence[str] = ()) -> list[str]:
    """Differences between two snapshots that matter: writable or touched sysctls, ruleset."""
    diffs = []
    keys = (set(expected.get("writable", [])) | set(touched)) - set(VOLATILE_KEYS)
    for key in sorted(keys):
        want = expected["sysctl"].get(key)
        got = actual["sysctl"].get(key)
        if want != got:
            diffs.append(f"sysctl {key}: expected {want}, found {got}")
    if expected.get("ruleset") != actual.get("ruleset"):
        diffs.append("nftables ruleset differs from the snapshot")
    return diffs


# ------------------------------------------------------------------ revert

def revert_order(keys: Sequence[str]) -> list[str]:
    """Buckets before max: shrinking back never leaves max above a just-shrunk table."""
    return sorted(keys, key=lambda k: "buckets" not in k)


def revert(plan: Json, env: HostEnv | None = None) -> Json:
    """Put back every sysctl the plan names and delete our tables. Idempotent."""
    restored: Json = {}
    deleted: list[str] = []
    errors: list[str] = []
    for family, name in plan.get("nft_tables", []):
        try:
            if nft_delete_table(family, name, env):
                deleted.append(f"{family} {name}")
        except HostError as exc:
            errors.append(str(exc))
    for key in revert_order(list(plan.get("sysctl", {}))):
        try:
            before, after = write_sysctl(key, plan["sysctl"][key], env)
            if before != after:
                restored[key] = [before, after]
        except HostError as exc:
            errors.append(str(exc))
    return {"restored": restored, "deleted": deleted, "errors": errors}


def verify_keys(plan: Json, expected: Json | None) -> list[str]:
    """Every key the snapshot holds (a drill may have read keys outside net.netfilter on
    this host because another host changes them) plus the plan's own."""
    return sorted(set(plan.get("sysctl", {})) | set((expected or {}).get("sysctl", {})))


def revert_verified(run_id: str, plan: Json, expected: Json,
                    env: HostEnv | None = None) -> tuple[bool, Json]:
    """Revert, verify against the snapshot, and only when verified disarm and unlock.

    One sequence on the host keeps the order: a host that is not provably back keeps
    its dead-man switch armed and its lock. Returns (verified, the module's result).
    """
    result = revert(plan, env)
    touched = list(plan.get("sysctl", {}))
    diffs = compare(expected, snapshot(verify_keys(plan, expected), env), touched=touched)
    out = dict(result, diffs=diffs, changed=bool(result["restored"] or result["deleted"]))
    if result["errors"] or diffs:
        return False, out
    out.update(verified=True, deadman=deadman_disarm(run_id, env),
               unlocked=lock_release(run_id, env))
    return True, out


def revert_fenced(run_id: str, plan: Json, expected: Json,
                  env: HostEnv | None = None) -> tuple[bool, Json]:
    """The revert a journal asks for, done only while `run_id` owns the host.

    Another run's lock: refuse (Fenced), that run's changes are not ours to undo. No
    lock at all: nothing of this run is left here (the lock is released only after a
    verified revert, by the orchestrator or by the dead-man), so report what the dead-man
    recorded, tidy its directory and count the host as back. Our lock: revert, verify,
    then disarm and unlock.
    """
    env = _env(env)
    with host_mutex(env):
        holder = lock_holder(env)
        if holder is not None and holder.get("run_id") != run_id:
            raise Fenced(f"this host is held by drill run {holder.get('run_id')}, not by "
                         f"{run_id}: nothing was changed", holder)
        if holder is None:
            recorded = read_result(run_id, env)
            with contextlib.suppress(OSError):  # reported now: the journal keeps it
                os.unlink(result_path(run_id, env))
            return True, {"restored": {}, "deleted": [], "errors": [], "diffs": [],
                          "changed": False, "verified": True, "not_held": True,
                          "deadman": dict(deadman_disarm(run_id, env), fired=recorded)}
        return revert_verified(run_id, plan, expected, env)


# ------------------------------------------------------------------ payload, fencing

def decode_payload(payload_b64: str, host: str) -> Json:
    """This host's part of a run's payload.

    The orchestrator sends everything a play needs as ONE base64 JSON string, never as
    Ansible variables: Ansible treats extra vars as templates, and a spec or a host
    must never be able to run code through one. Shape: {"run_id", "common": {...},
    "hosts": {HOST: {...}}}; the host's part wins over common.
    """
    try:
        data = json.loads(base64.b64decode(payload_b64.encode("ascii"), validate=True))
        part: Json = dict(data.get("common", {}))
        part.update(data.get("hosts", {}).get(host, {}))
        part["run_id"] = str(data["run_id"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise HostError(f"unreadable ctdrill payload ({exc})") from exc
    return part


def mutex_path(env: HostEnv | None = None) -> str:
    return os.path.join(_env(env).run_dir, "mutex", f"netns-{netns_inode()}")


@contextlib.contextmanager
def host_mutex(env: HostEnv | None = None) -> Iterator[None]:
    """One host operation at a time: apply, revert and a firing dead-man never interleave
    (a dead-man and a late revert racing on `nft delete table`, a late apply slipping in
    between a dead-man's revert and its verification)."""
    path = mutex_path(env)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def lock_holder(env: HostEnv | None = None) -> Json | None:
    """Who holds this host's drill lock, or None. An unreadable lock still holds."""
    try:
        with open(lock_path(env)) as f:
            holder = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"run_id": "unknown"}
    return holder if isinstance(holder, dict) else {"run_id": "unknown"}


def fence(run_id: str, env: HostEnv | None = None) -> None:
    """Raise Fenced unless `run_id` holds this host's lock and its dead-man has not fired:
    a stale apply, an orphaned playbook or another run's journal then changes nothing."""
    holder = lock_holder(env)
    if holder is None or holder.get("run_id") != run_id:
        who = f"drill run {holder.get('run_id')}" if holder else "no run"
        raise Fenced(f"run {run_id} does not own this host ({who} holds its lock)",
                     holder)
    if read_result(run_id, env) is not None or os.path.exists(
            os.path.join(deadman_dir(run_id, env), "result.json")):
        raise Fenced(f"the dead-man of run {run_id} already fired here", holder)


def ancestors(proc: str = "/proc") -> set[int]:
    """This process and every process above it: the play that runs this very module
    carries the run's id too, and must not be stopped by it."""
    chain, pid = set(), os.getpid()
    while pid > 1 and pid not in chain:
        chain.add(pid)
        try:
            with open(os.path.join(proc, str(pid), "stat")) as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return chain


def run_processes(run_id: str, env: HostEnv | None = None) -> list[int]:
    """Processes of `run_id` in this network namespace (they carry CTDRILL_RUN_ID),
    other than this process and its ancestors."""
    env = _env(env)
    mark = f"{RUN_ID_VARIABLE}={run_id}".encode()
    here = netns_inode()
    mine = ancestors(env.proc)
    found = []
    for name in os.listdir(env.proc):
        pid = as_pid(name) if name.isdigit() else None
        if pid is None or pid in mine:
            continue
        try:
            with open(os.path.join(env.proc, name, "environ"), "rb") as f:
                environ = f.read().split(b"\0")
            if mark in environ and os.stat(
                    os.path.join(env.proc, name, "ns", "net")).st_ino == here:
                found.append(pid)
        except OSError:
            continue
    return found


def stop_run_processes(run_id: str, env: HostEnv | None = None) -> list[int]:
    """SIGKILL every process of the run still here (an orphaned apply, an agent) and
    wait until they are gone, so nothing of the run acts after its revert."""
    env = _env(env)
    pids = run_processes(run_id, env)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    for _ in range(250):
        if not any(pid_alive(pid) for pid in pids):
            break
        env.sleep(0.02)
    return pids


def result_path(run_id: str, env: HostEnv | None = None) -> str:
    return os.path.join(_env(env).run_dir, "results", f"{run_id}-netns-{netns_inode()}.json")


def read_result(run_id: str, env: HostEnv | None = None) -> Json | None:
    """What the run's dead-man recorded here after firing, if it did."""
    try:
        with open(result_path(run_id, env)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json_atomic(path: str, data: Json) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


# ------------------------------------------------------------------ lock

def lock_path(env: HostEnv | None = None) -> str:
    return os.path.join(_env(env).run_dir, "locks", f"netns-{netns_inode()}.json")


def as_pid(value: object) -> int | None:
    """A single process id, or None: 0 and negatives name process groups, never one."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    try:
        pid = int(value)
    except ValueError:
        return None
    return pid if pid > 0 else None


def pid_alive(pid: int) -> bool:
    """Whether the process still runs; a zombie (exited, not yet reaped) does not."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


LOCK_ONLY_PLAN: Json = {"sysctl": {}, "nft_tables": []}
"""The plan of the switch armed with the lock: an orchestrator that dies after locking
and before applying leaves nothing to revert, only a lock to release at the TTL."""


def lock_acquire(owner: Json, env: HostEnv | None = None) -> tuple[bool, Json]:
    """Take this target's drill lock. Returns (True, owner) or (False, holder).

    A holder is stale when its orchestrator ran on this host and its pid is gone; one
    whose pid is unknown is never called stale.
    """
    path = lock_path(env)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        try:
            with open(path) as f:
                holder = json.load(f)
        except (OSError, ValueError):
            holder = {"run_id": "unknown"}
        if holder.get("run_id") == owner.get("run_id"):
            return True, holder
        same_host = holder.get("orchestrator_host") == socket.gethostname()
        pid = as_pid(holder.get("orchestrator_pid"))
        holder["stale"] = bool(same_host and pid is not None and not pid_alive(pid))
        return False, holder
    with os.fdopen(fd, "w") as f:
        json.dump(owner, f)
    return True, owner


def lock_release(run_id: str, env: HostEnv | None = None) -> bool:
    """Remove the lock only if this run holds it."""
    path = lock_path(env)
    try:
        with open(path) as f:
            holder = json.load(f)
    except (OSError, ValueError):
        return False
    if holder.get("run_id") != run_id:
        return False
    os.unlink(path)
    return True


# ------------------------------------------------------------------ dead-man switch

def deadman_dir(run_id: str, env: HostEnv | None = None) -> str:
    return os.path.join(_env(env).run_dir, "deadman", f"{run_id}-{netns_inode()}")


def own_source() -> str:
    """This file's text, also when Ansible runs it from a zip payload."""
    import inspect

    try:
        return inspect.getsource(sys.modules[__name__])
    except (OSError, TypeError):
        import pkgutil

        data = pkgutil.get_data("ansible.module_utils", "ctdrill_host.py")
        if data is None:
            raise HostError("cannot read ctdrill_host source for the dead-man script") from None
        return data.decode()


def deadman_arm(run_id: str, plan: Json, ttl_s: float, env: HostEnv | None = None,
                expected: Json | None = None) -> Json:
    """Leave a revert script, the plan, the snapshot to verify against and a timer that
    fires at now + ttl_s (boot clock) unless disarmed."""
    env = _env(env)
    d = deadman_dir(run_id, env)
    if os.path.isdir(d):  # re-armed (lock-only switch -> the apply's): one timer only
        stop_timer(d, env)
    os.makedirs(d, exist_ok=True)
    script = os.path.join(d, "ctdrill_host.py")
    with open(script, "w") as f:
        f.write(own_source())
    with open(os.path.join(d, "plan.json"), "w") as f:
        json.dump(plan, f)
    with open(os.path.join(d, "run.json"), "w") as f:
        json.dump({"run_id": run_id, "expected": expected}, f)
    deadline = env.clock() + float(ttl_s)
    with open(os.path.join(d, "deadline"), "w") as f:
        f.write(f"{deadline:f}\n")
    argv = [sys.executable, script, "deadman", d]
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


def deadman_disarm(run_id: str, env: HostEnv | None = None) -> Json:
    """Stop the timer and remove its files. Returns what the timer had done, if anything."""
    env = _env(env)
    d = deadman_dir(run_id, env)
    if not os.path.isdir(d):
        return {"armed": False}
    open(os.path.join(d, "disarmed"), "w").close()
    stop_timer(d, env)
    fired = None
    result = os.path.join(d, "result.json")
    if os.path.exists(result):
        with open(result) as f:
            fired = json.load(f)
    remove_dir(d)
    return {"armed": True, "fired": fired}


def deadman_status(run_id: str, env: HostEnv | None = None) -> Json:
    d = deadman_dir(run_id, env)
    if not os.path.isdir(d):
        return {"armed": False}
    out: Json = {"armed": True, "dir": d}
    result = os.path.join(d, "result.json")
    if os.path.exists(result):
        with open(result) as f:
            out["fired"] = json.load(f)
    return out


def deadman_wait(d: str, now: bool = False, env: HostEnv | None = None) -> int:
    """The timer itself: sleep to the deadline unless disarmed, then fire."""
    env = _env(env)
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
    touched = list(plan.get("sysctl", {}))
    diffs = (compare(expected, snapshot(verify_keys(plan, expected), env), touched=touched)
             if expected else ["no snapshot to verify against"])
    return dict(result, diffs=diffs, stopped=stopped,
                verified=not result["errors"] and not diffs)


def remove_dir(d: str) -> None:
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    os.rmdir(d)


def main(argv: Sequence[str]) -> int:
    """The standalone dead-man script: `python3 ctdrill_host.py deadman DIR [--now]`."""
    if len(argv) >= 2 and argv[0] == "deadman":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # disarm stops us quietly
        return deadman_wait(argv[1], now="--now" in argv)
    sys.stderr.write("usage: ctdrill_host.py deadman DIR [--now]\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
