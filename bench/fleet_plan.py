"""Benchmark: `ctdrill plan --offline` over a 500-host inventory (hosts need not exist).

The inventory is generated, pure YAML, shaped like a desk's fleet: SITES sites, each
with an `edge` and a `core` group of gateways (`siteNN_edge`, `siteNN_core`), every
site a child of `gateways` and of its own `siteNN` group, every role group a child of
`edge` / `core`; host addresses and per-site SSH settings as group or host vars. The
spec drills all gateways with a seeded 5 % canary pool. Timed, each in a fresh
process (the CLI's real cost: imports included): loading the inventory (Ansible's
InventoryManager + every host's variables), `ctdrill plan --offline` and
`ctdrill plan --offline --json`. Prints a Markdown table (docs/FLEET.md, Measured).

    .venv/bin/python -m bench.fleet_plan [--hosts 500] [--sites 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import machine

SPEC: dict[str, Any] = {
    "drill": "fleet-bypass-canary",
    "description": "notrack the order port on a seeded 5 % of the fleet's gateways",
    "targets": {"hosts": "gateways", "canary": {"percent": 5, "seed": 7}},
    "changes": [{"bypass": [{"name": "orders_tcp", "protocol": "tcp", "port": 9001}],
                 "timeouts": {"udp": 10, "tcp_time_wait": 30}}],
    "observe": {"hosts": "gateways", "duration_s": 10},
    "revert": {"ttl_s": 120},
}

ROLES = ("edge", "core")


def site_name(i: int) -> str:
    return f"site{i + 1:02d}"


def fleet_inventory(hosts: int = 500, sites: int = 10) -> dict[str, Any]:
    """An Ansible YAML inventory of `hosts` gateways spread over `sites` x ROLES groups."""
    groups = [(site_name(s), role) for s in range(sites) for role in ROLES]
    members: dict[str, dict[str, Any]] = {f"{s}_{r}": {} for s, r in groups}
    for n in range(hosts):
        site, role = groups[n % len(groups)]
        name = f"gw-{site}-{role}-{n // len(groups) + 1:03d}"
        members[f"{site}_{role}"][name] = {
            "ansible_host": f"10.{100 + n // 250}.{n % 250 // 10}.{n % 10 + 10}"}
    children: dict[str, Any] = {
        f"{s}_{r}": {"hosts": members[f"{s}_{r}"]} for s, r in groups}
    for i in range(sites):
        site = site_name(i)
        children[site] = {"children": {f"{site}_{r}": None for r in ROLES},
                          "vars": {"ctdrill_role": "gateway",
                                   "ansible_ssh_common_args": f"-o ProxyJump=jump.{site}"}}
    for role in ROLES:
        children[role] = {"children": {f"{site_name(i)}_{role}": None for i in range(sites)}}
    children["gateways"] = {"children": {site_name(i): None for i in range(sites)}}
    return {"all": {"vars": {"ansible_user": "ctdrill",
                             "ansible_python_interpreter": "/usr/bin/python3"},
                    "children": children}}


def write_fleet(directory: Path, hosts: int = 500, sites: int = 10) -> tuple[Path, Path]:
    """The generated inventory and the drill spec, written into `directory`."""
    inventory = directory / "fleet.yml"
    inventory.write_text(yaml.safe_dump(fleet_inventory(hosts, sites), sort_keys=False))
    spec = directory / "fleet-drill.yaml"
    spec.write_text(yaml.safe_dump(SPEC, sort_keys=False))
    return inventory, spec


LOAD_ONLY = ("import sys; from ctdrill.targets.inventory import Inventory; "
             "inv = Inventory(__import__('pathlib').Path(sys.argv[1])); "
             "assert len(inv.select('gateways')) == int(sys.argv[2])")


def _timed(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - t


def measure(inventory: Path, spec: Path, hosts: int, repeat: int) -> dict[str, list[float]]:
    ctdrill = [sys.executable, "-m", "ctdrill"]
    cases = {
        "inventory load + select": [sys.executable, "-c", LOAD_ONLY, str(inventory),
                                    str(hosts)],
        "ctdrill plan --offline": [*ctdrill, "plan", str(spec), "-i", str(inventory),
                                   "--offline"],
        "ctdrill plan --offline --json": [*ctdrill, "plan", str(spec), "-i", str(inventory),
                                          "--offline", "--json"],
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, argv in cases.items():
            times[name].append(_timed(argv))
            print(name, round(times[name][-1], 2), flush=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        inventory, spec = write_fleet(Path(tmp), args.hosts, args.sites)
        times = measure(inventory, spec, args.hosts, args.repeat)
    lines = ["| what | median s | max s |", "|---|---|---|"]
    lines += [f"| {name} | {statistics.median(v):.2f} | {max(v):.2f} |"
              for name, v in times.items()]
    print(f"Machine: {machine()}\n")
    print(f"Command: `.venv/bin/python -m bench.fleet_plan --hosts {args.hosts} "
          f"--sites {args.sites} --repeat {args.repeat}`\n")
    print("\n".join(lines))

if __name__ == "__main__":
    main()
