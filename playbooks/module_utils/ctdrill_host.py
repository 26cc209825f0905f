# -*- coding: utf-8 -*-
"""Host-side state operations of ctdrill: snapshot, sysctl, nftables, revert, dead-man, lock.

Standard library only. Ansible ships this file to the target with every ctdrill module
(module_utils), and the dead-man switch copies it to the target as a standalone script
(`python3 ctdrill_host.py deadman DIR`), so the target can revert itself with nothing
else installed. Everything here acts on the network namespace the process runs in.

Rules it keeps: sysctls are written through /proc/sys and read back (`sysctl -w` can
exit 0 on failure); nftables changes touch only tables named ctd_*; the ruleset is
compared in stateless form (`nft -s`), so counters do not count as drift.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

PROC_SYS = "/proc/sys/"
NETFILTER_DIR = "/proc/sys/net/netfilter"
OWN_TABLE_PREFIX = "ctd_"
RUN_DIR = os.environ.get("CTDRILL_RUN_DIR", "/run/ctdrill")
LOCK_DIR = os.path.join(RUN_DIR, "locks")
DEADMAN_DIR = os.path.join(RUN_DIR, "deadman")
VOLATILE_KEYS = ("net.netfilter.nf_conntrack_count",)


class HostError(Exception):
    """A host operation that could not be done or could not be verified."""


# ------------------------------------------------------------------ sysctl

def key_path(key):
    return PROC_SYS + key.replace(".", "/")


def normalise(value):
    """Multi-field sysctls print tab-separated; compare on whitespace-split fields."""
    return " ".join(str(value).split())


def read_sysctl(key):
    try:
        with open(key_path(key)) as f:
            return normalise(f.read())
    except OSError:
        return None


def is_writable(key):
    try:
        return bool(os.stat(key_path(key)).st_mode & 0o200)
    except OSError:
        return False


def write_sysctl(key, value):
    """Write and read back; return (before, after). Raises HostError on any mismatch."""
    before = read_sysctl(key)
    if before is None:
        raise HostError("sysctl %s does not exist here" % key)
    want = normalise(value)
    if before == want:
        return before, before
    if not is_writable(key):
        raise HostError("sysctl %s is read-only in this network namespace (kernel-wide keys "
                        "can only be set in the initial namespace)" % key)
    try:
        with open(key_path(key), "w") as f:
            f.write(want + "\n")
    except OSError as exc:
        raise HostError("writing %s=%s failed: %s" % (key, want, exc.strerror))
    after = read_sysctl(key)
    if after != want:
        raise HostError("%s reads %s after writing %s" % (key, after, want))
    return before, after


def netfilter_sysctls():
    """Every readable net.netfilter.* value and whether it is writable here."""
    values, writable = {}, []
    for root, _dirs, files in os.walk(NETFILTER_DIR):
        for name in files:
            path = os.path.join(root, name)
            key = path[len(PROC_SYS):].replace("/", ".")
            value = read_sysctl(key)
            if value is None:
                continue
            values[key] = value
            if is_writable(key):
                writable.append(key)
    return values, sorted(writable)


# ------------------------------------------------------------------ nftables

def nft(args, stdin=None):
    proc = subprocess.run(["nft"] + list(args), input=stdin, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise HostError("nft %s failed: %s" % (" ".join(args), proc.stderr.strip()))
    return proc.stdout


def nft_ruleset():
    """The whole ruleset, stateless (no counter values), as nft prints it."""
    return nft(["-s", "list", "ruleset"])


def nft_tables():
    out = nft(["list", "tables"])
    tables = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "table":
            tables.append([parts[1], parts[2]])
    return tables


def check_own_table(name):
    if not name.startswith(OWN_TABLE_PREFIX):
        raise HostError("refusing to touch nft table %r: ctdrill only manages tables named "
                        "%s*" % (name, OWN_TABLE_PREFIX))


def nft_apply_table(family, name, body):
    """Create or replace one of our tables atomically (add, delete, add in one batch)."""
    check_own_table(name)
    script = "table %s %s\ndelete table %s %s\ntable %s %s {\n%s\n}\n" % (
        family, name, family, name, family, name, body)
    nft(["-f", "-"], stdin=script)
    return nft(["-s", "list", "table", family, name])


def nft_delete_table(family, name):
    check_own_table(name)
    if [family, name] in nft_tables():
        nft(["delete", "table", family, name])
        return True
    return False


# ------------------------------------------------------------------ snapshot / verify

def netns_inode():
    return os.stat("/proc/self/ns/net").st_ino


def snapshot(keys=()):
    """Everything a drill may touch here: all net.netfilter.*, the given keys, the ruleset."""
    values, writable = netfilter_sysctls()
    for key in keys:
        if key not in values:
            value = read_sysctl(key)
            if value is not None:
                values[key] = value
                if is_writable(key):
                    writable.append(key)
    return {
        "netns_inode": netns_inode(),
        "kernel_owner": is_writable("net.netfilter.nf_conntrack_max"),
        "hostname": socket.gethostname(),
        "sysctl": values,
        "writable": sorted(set(writable)),
        "ruleset": nft_ruleset(),
        "tables": nft_tables(),
    }


def compare(expected, actual, touched=()):
    """Differences between two snapshots that matter: writable or touched sysctls, ruleset."""
    diffs = []
    keys = (set(expected.get("writable", [])) | set(touched)) - set(VOLATILE_KEYS)
    for key in sorted(keys):
        want = expected["sysctl"].get(key)
        got = actual["sysctl"].get(key)
        if want != got:
            diffs.append("sysctl %s: expected %s, found %s" % (key, want, got))
    if expected.get("ruleset") != actual.get("ruleset"):
        diffs.append("nftables ruleset differs from the snapshot")
    return diffs


# ------------------------------------------------------------------ revert

def revert(plan):
    """Put back every sysctl the plan names and delete our tables. Idempotent."""
    restored, deleted, errors = {}, [], []
    for family, name in plan.get("nft_tables", []):
        try:
            if nft_delete_table(family, name):
                deleted.append("%s %s" % (family, name))
        except HostError as exc:
            errors.append(str(exc))
    # buckets before max: shrinking back never leaves max above a just-shrunk table
    order = sorted(plan.get("sysctl", {}), key=lambda k: "buckets" not in k)
    for key in order:
        try:
            before, after = write_sysctl(key, plan["sysctl"][key])
            if before != after:
                restored[key] = [before, after]
        except HostError as exc:
            errors.append(str(exc))
    return {"restored": restored, "deleted": deleted, "errors": errors}


# ------------------------------------------------------------------ lock

def lock_path():
    return os.path.join(LOCK_DIR, "netns-%d.json" % netns_inode())


def pid_alive(pid):
    try:
        os.kill(int(pid), 0)
        return True
    except (OSError, ValueError):
        return False


def lock_acquire(owner):
    """Take this target's drill lock. Returns (True, owner) or (False, holder)."""
    os.makedirs(LOCK_DIR, exist_ok=True)
    path = lock_path()
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
        holder["stale"] = bool(same_host and not pid_alive(holder.get("orchestrator_pid", -1)))
        return False, holder
    with os.fdopen(fd, "w") as f:
        json.dump(owner, f)
    return True, owner


def lock_release(run_id):
    path = lock_path()
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

def deadman_dir(run_id):
    return os.path.join(DEADMAN_DIR, "%s-%d" % (run_id, netns_inode()))


def own_source():
    """This file's text, also when Ansible runs it from a zip payload."""
    import inspect

    try:
        return inspect.getsource(sys.modules[__name__])
    except (OSError, TypeError):
        import pkgutil

        data = pkgutil.get_data("ansible.module_utils", "ctdrill_host.py")
        if data is None:
            raise HostError("cannot read ctdrill_host source for the dead-man script")
        return data.decode()


def systemd_usable():
    """systemd-run only helps when PID 1 is systemd and shares our network namespace."""
    try:
        return (os.path.isdir("/run/systemd/system")
                and os.stat("/proc/1/ns/net").st_ino == netns_inode())
    except OSError:
        return False


def deadman_arm(run_id, plan, ttl_s):
    """Leave a revert script and a timer that fires at now + ttl_s unless disarmed."""
    d = deadman_dir(run_id)
    os.makedirs(d, exist_ok=True)
    script = os.path.join(d, "ctdrill_host.py")
    with open(script, "w") as f:
        f.write(own_source())
    with open(os.path.join(d, "plan.json"), "w") as f:
        json.dump(plan, f)
    deadline = time.time() + float(ttl_s)
    with open(os.path.join(d, "deadline"), "w") as f:
        f.write("%f\n" % deadline)
    argv = [sys.executable, script, "deadman", d]
    if systemd_usable():
        unit = "ctdrill-deadman-%s" % run_id
        subprocess.run(["systemd-run", "--unit", unit, "--collect",
                        "--on-active=%ds" % int(ttl_s), "--timer-property=AccuracySec=1s"]
                       + argv + ["--now"], check=True, capture_output=True)
        with open(os.path.join(d, "systemd-unit"), "w") as f:
            f.write(unit)
        return {"dir": d, "mechanism": "systemd-run", "unit": unit, "deadline": deadline}
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True)
    with open(os.path.join(d, "pid"), "w") as f:
        f.write("%d\n" % proc.pid)
    return {"dir": d, "mechanism": "detached-process", "pid": proc.pid, "deadline": deadline}


def deadman_disarm(run_id):
    """Stop the timer and remove its files. Returns what the timer had done, if anything."""
    d = deadman_dir(run_id)
    if not os.path.isdir(d):
        return {"armed": False}
    open(os.path.join(d, "disarmed"), "w").close()
    fired = None
    result = os.path.join(d, "result.json")
    unit_file = os.path.join(d, "systemd-unit")
    if os.path.exists(unit_file):
        with open(unit_file) as f:
            unit = f.read().strip()
        subprocess.run(["systemctl", "stop", unit + ".timer"], capture_output=True, check=False)
    try:
        with open(os.path.join(d, "pid")) as f:
            pid = int(f.read())
        if pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not pid_alive(pid):
                    break
                time.sleep(0.02)
    except (OSError, ValueError):
        pass
    if os.path.exists(result):
        with open(result) as f:
            fired = json.load(f)
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    os.rmdir(d)
    return {"armed": True, "fired": fired}


def deadman_status(run_id):
    d = deadman_dir(run_id)
    if not os.path.isdir(d):
        return {"armed": False}
    out = {"armed": True, "dir": d}
    result = os.path.join(d, "result.json")
    if os.path.exists(result):
        with open(result) as f:
            out["fired"] = json.load(f)
    return out


def deadman_wait(d, now=False):
    """The timer itself: sleep to the deadline unless disarmed, then revert and record."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if not now:
        with open(os.path.join(d, "deadline")) as f:
            deadline = float(f.read())
        while time.time() < deadline:
            if os.path.exists(os.path.join(d, "disarmed")):
                return 0
            time.sleep(min(0.5, max(0.0, deadline - time.time())))
    if os.path.exists(os.path.join(d, "disarmed")):
        return 0
    with open(os.path.join(d, "plan.json")) as f:
        plan = json.load(f)
    result = revert(plan)
    result["fired_at"] = time.time()
    tmp = os.path.join(d, "result.json.tmp")
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.rename(tmp, os.path.join(d, "result.json"))
    return 0 if not result["errors"] else 1


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "deadman":
        sys.exit(deadman_wait(sys.argv[2], now="--now" in sys.argv))
    sys.stderr.write("usage: ctdrill_host.py deadman DIR [--now]\n")
    sys.exit(2)
