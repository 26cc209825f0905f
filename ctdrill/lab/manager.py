"""Bring a lab up, report its status, and tear it down completely (also half-built ones)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ctdrill.errors import EnvironmentProblem, InvalidInput
from ctdrill.lab import sshd
from ctdrill.lab.inventory import (
    dump_inventory,
    python_wrapper_path,
    render_inventory,
    render_opaque_inventory,
    render_python_wrapper,
)
from ctdrill.lab.topology import (
    GATEWAY_TABLE,
    NAME_PATTERN,
    HostPlan,
    LabPlan,
    free_index,
    plan_for,
    run_dir,
    validate_name,
)
from ctdrill.system.preflight import require_lab_prerequisites
from ctdrill.system.run import in_netns, run

LAB_HOST = re.compile(r"^(client|gw|venue)(\d\d)?$|^mgmt$")
"""The last part of a lab namespace's name: a host (gw, or gw07 in a pool) or a pool's switch."""

GATEWAY_RULESET = f"""table inet {GATEWAY_TABLE} {{
    chain forward {{
        type filter hook forward priority filter; policy accept;
        ct state established,related counter accept
        ct state new counter accept
        ct state invalid counter drop
    }}
}}
"""


def _labs_dir() -> Path:
    return run_dir() / "labs"


def _state_file(name: str) -> Path:
    return _labs_dir() / name / "state.json"


def load_plan(name: str) -> LabPlan | None:
    """The plan of an existing lab, from its state file."""
    try:
        data = json.loads(_state_file(name).read_text())
        return plan_for(data["name"], int(data["index"]), int(data.get("gateways", 1)))
    except (OSError, ValueError, KeyError):
        return None


def _used_indexes(except_name: str) -> set[int]:
    used = set()
    if _labs_dir().is_dir():
        for d in _labs_dir().iterdir():
            if d.name != except_name and (p := load_plan(d.name)) is not None:
                used.add(p.index)
    return used


def lab_python() -> str:
    """The interpreter lab hosts run Ansible modules and agents with (stdlib only)."""
    return "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


def existing_namespaces(prefix: str) -> list[str]:
    out = run(["ip", "netns", "list"], check=False).stdout
    names = [ln.split()[0] for ln in out.splitlines() if ln.split()]
    return [n for n in names if n.startswith(prefix)]


def existing_links(prefix: str) -> list[str]:
    out = run(["ip", "-o", "link", "show"], check=False).stdout
    names = []
    for ln in out.splitlines():
        parts = ln.split(":")
        if len(parts) > 1:
            name = parts[1].strip().split("@")[0]
            if name.startswith(prefix):
                names.append(name)
    return names


# ---------------------------------------------------------------- up

def _build_mgmt_switch(plan: LabPlan) -> None:
    """A pool's management plane: a bridge in its own namespace, one uplink into the
    initial namespace (one interface name here, whatever the pool's size)."""
    ns = plan.mgmt_netns
    run(["ip", "netns", "add", ns])
    run(in_netns(ns, ["ip", "link", "set", "lo", "up"]))
    run(in_netns(ns, ["ip", "link", "add", "br0", "type", "bridge"]))
    run(in_netns(ns, ["ip", "link", "set", "br0", "up"]))
    run(["ip", "link", "add", plan.mgmt_uplink, "type", "veth", "peer", "name", "up0",
         "netns", ns])
    run(["ip", "addr", "add", f"{plan.mgmt_uplink_addr}/24", "dev", plan.mgmt_uplink])
    run(["ip", "link", "set", plan.mgmt_uplink, "up"])
    run(in_netns(ns, ["ip", "link", "set", "up0", "master", "br0", "up"]))


def _attach_to_switch(plan: LabPlan, host: HostPlan) -> None:
    port = f"p{plan.hosts.index(host)}"
    run(in_netns(plan.mgmt_netns, ["ip", "link", "add", port, "type", "veth", "peer", "name",
                                   "mgmt0", "netns", host.netns]))
    run(in_netns(plan.mgmt_netns, ["ip", "link", "set", port, "master", "br0", "up"]))
    run(in_netns(host.netns, ["ip", "addr", "add", f"{host.mgmt_ns_addr}/24", "dev", "mgmt0"]))
    run(in_netns(host.netns, ["ip", "link", "set", "mgmt0", "up"]))


def _build_host(plan: LabPlan, host: HostPlan) -> None:
    run(["ip", "netns", "add", host.netns])
    run(in_netns(host.netns, ["ip", "link", "set", "lo", "up"]))
    if plan.is_pool:
        _attach_to_switch(plan, host)
        return
    # management link: initial namespace <-> host, for sshd
    run(["ip", "link", "add", host.mgmt_link, "type", "veth", "peer", "name", "mgmt0",
         "netns", host.netns])
    run(["ip", "addr", "add", f"{host.mgmt_host_addr}/30", "dev", host.mgmt_link])
    run(["ip", "link", "set", host.mgmt_link, "up"])
    run(in_netns(host.netns, ["ip", "addr", "add", f"{host.mgmt_ns_addr}/30", "dev", "mgmt0"]))
    run(in_netns(host.netns, ["ip", "link", "set", "mgmt0", "up"]))


def _build_data_path(plan: LabPlan, client: HostPlan, gw: HostPlan, venue: HostPlan) -> None:
    """One lane: client -> gw -> venue, the gateway forwarding with conntrack on."""
    run(["ip", "link", "add", "eth0", "netns", client.netns, "type", "veth",
         "peer", "name", "eth0", "netns", gw.netns])
    run(["ip", "link", "add", "eth0", "netns", venue.netns, "type", "veth",
         "peer", "name", "eth1", "netns", gw.netns])
    addrs = [
        (client.netns, "eth0", client.data_addr),
        (gw.netns, "eth0", gw.data_addr),
        (gw.netns, "eth1", plan.gw_venue_addr),
        (venue.netns, "eth0", venue.data_addr),
    ]
    for ns, dev, addr in addrs:
        run(in_netns(ns, ["ip", "addr", "add", f"{addr}/16", "dev", dev]))
        run(in_netns(ns, ["ip", "link", "set", dev, "up"]))
    for host in (client, venue):
        assert host.gateway is not None
        run(in_netns(host.netns, ["ip", "route", "add", "default", "via", host.gateway]))
    _write_sysctl(gw.netns, "net/ipv4/ip_forward", "1")
    run(in_netns(gw.netns, ["nft", "-f", "-"]), input_text=GATEWAY_RULESET)


def _write_sysctl(netns: str, key_path: str, value: str) -> None:
    """Write a per-namespace sysctl through /proc/sys and read it back."""
    script = (f"p='/proc/sys/{key_path}'; open(p,'w').write('{value}');"
              f"v=open(p).read().strip(); assert v=='{value}', v")
    run(in_netns(netns, [sys.executable, "-c", script]))


def _write_files(plan: LabPlan, ssh: bool) -> list[Path]:
    python = lab_python()
    bindir = plan.state_dir / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for host in plan.hosts:
        wrapper = python_wrapper_path(plan, host.name)
        wrapper.write_text(render_python_wrapper(host.netns, python))
        wrapper.chmod(0o755)
    plan.inventory_path.write_text(dump_inventory(render_inventory(plan, "netns", python)))
    written = [plan.inventory_path]
    if ssh:
        inv = render_inventory(plan, "ssh", python, key_file=sshd.client_key(plan),
                               known_hosts=sshd.known_hosts(plan))
        plan.ssh_inventory_path.write_text(dump_inventory(inv))
        opaque = render_opaque_inventory(plan, sshd.client_key(plan), sshd.known_hosts(plan))
        plan.opaque_inventory_path.write_text(dump_inventory(opaque))
        written += [plan.ssh_inventory_path, plan.opaque_inventory_path]
    return written


@dataclass(frozen=True)
class LabUp:
    plan: LabPlan
    inventories: tuple[Path, ...]
    created: bool


def up(name: str, *, ssh: bool = True, gateways: int = 1) -> LabUp:
    """Build the lab, or leave a healthy one of the same size as it is. A failed build
    leaves nothing behind."""
    validate_name(name)
    plan_for(name, 0, gateways)  # refuse a bad size before touching anything
    require_lab_prerequisites()
    existing = load_plan(name)
    healthy = existing is not None and all(c.ok for c in status(existing))
    if existing is not None and healthy and existing.gateways != gateways:
        raise InvalidInput(f"lab '{name}' is up with {existing.gateways} gateway(s), not "
                           f"{gateways}; a drill may be using it",
                           f"run 'ctdrill lab down --name {name}' first, or use another "
                           "--name")
    if existing is not None and healthy and (
        not ssh or existing.ssh_inventory_path.exists()
    ):
        invs = [existing.inventory_path]
        invs += [p for p in (existing.ssh_inventory_path, existing.opaque_inventory_path)
                 if p.exists()]
        return LabUp(existing, tuple(invs), created=False)
    down(name)  # clear any half-built remains first
    plan = plan_for(name, free_index(_used_indexes(name)), gateways)
    plan.state_dir.mkdir(parents=True, exist_ok=True)
    _state_file(name).write_text(json.dumps({"name": name, "index": plan.index,
                                             "gateways": gateways, "ssh": ssh,
                                             "created": time.time()}))
    try:
        if plan.is_pool:
            _build_mgmt_switch(plan)
        for host in plan.hosts:
            _build_host(plan, host)
        for lane in plan.lanes():
            _build_data_path(plan, *lane)
        if ssh:
            sshd.prepare_keys(plan)
            for host in plan.hosts:
                sshd.start(plan, host)
            sshd.start(plan, None)  # the opaque inventory's kernel owner
        inventories = _write_files(plan, ssh)
    except BaseException:
        down(name)
        raise
    return LabUp(plan, tuple(inventories), created=True)


# ---------------------------------------------------------------- down

def _kill_namespace_processes(netns: str) -> None:
    out = run(["ip", "netns", "pids", netns], check=False).stdout
    pids = [int(p) for p in out.split() if p.isdigit()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _forget_drill_state(netns: str) -> list[str]:
    """Remove drill locks and dead-man timers of a namespace that is about to go.

    They are keyed by the namespace's inode, which the kernel reuses: a stale lock
    would otherwise block (or a stale timer revert) a future lab's host.
    """
    try:
        inode = os.stat(f"/run/netns/{netns}").st_ino
    except OSError:
        return []
    removed = []
    lock = run_dir() / "locks" / f"netns-{inode}.json"
    if lock.exists():
        lock.unlink()
        removed.append(f"lock {lock.name}")
    for d in (run_dir() / "deadman").glob(f"*-{inode}"):
        pid_file = d / "pid"
        if pid_file.exists():
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
        shutil.rmtree(d, ignore_errors=True)
        removed.append(f"dead-man {d.name}")
    for name in ("mutex", "results"):  # the host mutex, and what dead-men recorded
        for f in (run_dir() / name).glob(f"*netns-{inode}*"):
            f.unlink(missing_ok=True)
            removed.append(f"{name} {f.name}")
    return removed


def down(name: str) -> list[str]:
    """Remove everything of lab `name`, found by prefix as well as by state. Idempotent."""
    validate_name(name)
    plan = load_plan(name) or plan_for(name, 0)
    removed: list[str] = []
    sshd.stop_all(plan)
    for ns in existing_namespaces(plan.ns_prefix):
        removed += _forget_drill_state(ns)
        _kill_namespace_processes(ns)
        run(["ip", "netns", "del", ns], check=False)
        removed.append(f"netns {ns}")
    for link in existing_links(plan.mgmt_link_prefix):  # a pool's uplink goes with its netns
        run(["ip", "link", "del", link], check=False)
        removed.append(f"link {link}")
    if plan.state_dir.exists():
        shutil.rmtree(plan.state_dir, ignore_errors=True)
        removed.append(f"dir {plan.state_dir}")
    return removed


def list_labs() -> list[str]:
    """Names of labs with state or with namespaces of ours (crash leftovers included)."""
    names = set()
    if _labs_dir().is_dir():
        names |= {d.name for d in _labs_dir().iterdir() if d.is_dir()}
    for ns in existing_namespaces("ctd-"):
        parts = ns.split("-")
        if len(parts) == 3 and LAB_HOST.match(parts[2]):
            names.add(parts[1])
    return sorted(n for n in names if NAME_PATTERN.match(n))


# ---------------------------------------------------------------- status

@dataclass(frozen=True)
class Check:
    component: str
    ok: bool
    detail: str


def _host_checks(plan: LabPlan, namespaces: set[str], links: set[str]) -> list[Check]:
    checks = []
    if plan.is_pool:
        ok = plan.mgmt_netns in namespaces and plan.mgmt_uplink in links
        checks.append(Check(f"mgmt switch {plan.mgmt_netns}", ok, "present" if ok else "missing"))
    for host in plan.hosts:
        ok = host.netns in namespaces
        checks.append(Check(f"netns {host.netns}", ok, "present" if ok else "missing"))
        if not plan.is_pool:
            ok = host.mgmt_link in links
            checks.append(Check(f"link {host.mgmt_link}", ok, "present" if ok else "missing"))
    return checks


def _lane_checks(client: HostPlan, gw: HostPlan, venue: HostPlan) -> list[Check]:
    fwd = run(in_netns(gw.netns, ["cat", "/proc/sys/net/ipv4/ip_forward"]), check=False)
    tbl = run(in_netns(gw.netns, ["nft", "list", "table", "inet", GATEWAY_TABLE]), check=False)
    ping = run(in_netns(client.netns, ["ping", "-c1", "-W1", venue.data_addr]), check=False)
    return [Check(f"{gw.name} forwarding", fwd.stdout.strip() == "1", fwd.stdout.strip()),
            Check(f"{gw.name} nft table {GATEWAY_TABLE}", tbl.returncode == 0,
                  "loaded" if tbl.returncode == 0 else "missing"),
            Check(f"{client.name} -> {venue.name} via {gw.name}", ping.returncode == 0,
                  "reachable" if ping.returncode == 0 else "unreachable")]


def status(plan: LabPlan) -> list[Check]:
    """What exists and what is broken, component by component."""
    namespaces = set(existing_namespaces(plan.ns_prefix))
    links = set(existing_links(plan.mgmt_link_prefix))
    checks = _host_checks(plan, namespaces, links)
    for lane in plan.lanes():
        if all(h.netns in namespaces for h in lane):
            checks += _lane_checks(*lane)
    try:
        ssh = bool(json.loads(_state_file(plan.name).read_text()).get("ssh"))
    except (OSError, ValueError):
        ssh = False
    if ssh:
        for role in [h.name for h in plan.hosts] + [sshd.KERNEL_ROLE]:
            pid = sshd.read_pid(plan, role)
            ok = pid is not None and sshd.is_our_sshd(pid, plan)
            checks.append(Check(f"sshd {role}", ok, f"pid {pid}" if ok else "not running"))
    checks.append(Check("inventory", plan.inventory_path.exists(), str(plan.inventory_path)))
    return checks


def require_lab(name: str) -> LabPlan:
    plan = load_plan(name)
    if plan is None:
        raise EnvironmentProblem(f"lab '{name}' is not up", f"run 'ctdrill lab up --name {name}'")
    return plan


def default_inventory() -> Path:
    """The inventory of the default lab, for commands run without -i."""
    plan = load_plan("default")
    if plan is None or not plan.inventory_path.exists():
        raise EnvironmentProblem("no inventory given and the default lab is not up",
                                 "pass -i INVENTORY or run 'ctdrill lab up'")
    return plan.inventory_path
