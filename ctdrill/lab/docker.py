"""The lab on Docker: attach a compose project's containers as named network namespaces.

`docker/docker-compose.yml` starts three sleeping containers (client, gw, venue) on two
bridge networks with the lab's addresses. Nothing of ctdrill runs *in* the containers:
each container's network namespace is attached as `ctd-<lab>-<role>` (the same names the
namespace lab uses, from `topology.plan_for`), and from then on the existing `netns`
transport (python wrapper, telemetry agent, Ansible, drills) reaches it with the host's
binaries. The lab name is the compose project without its `ctd` prefix (`ctddocker` ->
`docker`), so the namespaces stay valid lab names and `ctdrill lab down` removes their
remains like any lab's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from ctdrill import PREFIX
from ctdrill.connect.netns import NetnsConnector
from ctdrill.errors import EnvironmentProblem
from ctdrill.lab import manager
from ctdrill.lab.inventory import python_wrapper_path, render_inventory, render_python_wrapper
from ctdrill.lab.manager import GATEWAY_RULESET, lab_python
from ctdrill.lab.topology import LabPlan, plan_for
from ctdrill.system.run import run

DEFAULT_PROJECT = f"{PREFIX}docker"
ENGINE_NETNS = f"{PREFIX}-dockerd"
ENGINE_SOCKET = Path("/run/ctdrill/docker/docker.sock")
COMPOSE_DIR = Path(__file__).resolve().parents[2] / "docker"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
BUSYBOX_CANDIDATES = (Path("/bin/busybox"), Path("/usr/bin/busybox"))


def docker_host() -> str:
    """The engine ctdrill talks to: $DOCKER_HOST, else the socket of scripts/docker-engine.sh."""
    return os.environ.get("DOCKER_HOST") or f"unix://{ENGINE_SOCKET}"


def engine_answers(host: str | None = None) -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        proc = run(["docker", "-H", host or docker_host(), "info", "--format", "{{.ID}}"],
                   check=False, timeout=10)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


def lab_name(project: str) -> str:
    """The lab (namespace) name of a compose project: `ctddocker` -> `docker`."""
    name = project[len(PREFIX):] if project.startswith(PREFIX) else project
    return plan_for(name, 0).name  # validates


def lab_plan(project: str) -> LabPlan:
    """Names and addresses of the Docker lab (management links are not used)."""
    return plan_for(lab_name(project), 0)


def prepare_build_context(compose_dir: Path = COMPOSE_DIR) -> Path:
    """Put busybox-static into the image's build context (no registry: FROM scratch)."""
    source = next((p for p in BUSYBOX_CANDIDATES if p.exists()), None)
    if source is None:
        raise EnvironmentProblem("busybox is not installed",
                                 "run 'bash scripts/docker-engine.sh start' as root")
    target = compose_dir / "image" / "busybox"
    if not target.exists() or target.stat().st_size != source.stat().st_size:
        shutil.copy2(source, target)
    return target


def container_pid(project: str, service: str, host: str | None = None) -> int:
    """PID (in the initial PID namespace) of a running service container of `project`."""
    h = host or docker_host()
    ids = run(["docker", "-H", h, "ps", "-q",
               "--filter", f"label=com.docker.compose.project={project}",
               "--filter", f"label=com.docker.compose.service={service}"]).stdout.split()
    if len(ids) != 1:
        raise EnvironmentProblem(
            f"compose project '{project}' has {len(ids)} running '{service}' containers",
            f"run 'docker-compose -p {project} -f {COMPOSE_FILE} up --build -d'")
    pid = run(["docker", "-H", h, "inspect", "-f", "{{.State.Pid}}", ids[0]]).stdout.strip()
    if not pid.isdigit() or int(pid) <= 0:
        raise EnvironmentProblem(f"container {ids[0]} ({service}) is not running",
                                 "look at 'docker-compose ps' and 'docker logs'")
    return int(pid)


@dataclass(frozen=True)
class DockerLab:
    project: str
    plan: LabPlan
    inventory: Path
    pids: dict[str, int]


def _check_address(netns: str, addr: str) -> None:
    out = NetnsConnector(netns).run(["ip", "-4", "-o", "addr", "show"]).stdout
    if f" {addr}/" not in out:
        raise EnvironmentProblem(f"{netns} does not have the lab address {addr}",
                                 f"docker/docker-compose.yml must match the lab plan ({addr})")


def _configure(plan: LabPlan) -> None:
    """Default routes via gw, and the gw's forward rule that loads conntrack there."""
    for host in plan.hosts:
        _check_address(host.netns, host.data_addr)
    _check_address(plan.host("gw").netns, plan.gw_venue_addr)
    for host in plan.hosts:
        if host.gateway is not None:
            NetnsConnector(host.netns).run(["ip", "route", "replace", "default", "via",
                                            host.gateway])
    gw = NetnsConnector(plan.host("gw").netns)
    forward = gw.run(["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.strip()
    if forward != "1":
        raise EnvironmentProblem(f"{gw.netns}: net.ipv4.ip_forward is {forward}, not 1",
                                 "the gw service needs 'sysctls: net.ipv4.ip_forward: 1'")
    gw.run(["nft", "-f", "-"], input=GATEWAY_RULESET)


def _write_inventory(plan: LabPlan, project: str) -> Path:
    python = lab_python()
    (plan.state_dir / "bin").mkdir(parents=True, exist_ok=True)
    for host in plan.hosts:
        wrapper = python_wrapper_path(plan, host.role)
        wrapper.write_text(render_python_wrapper(host.netns, python))
        wrapper.chmod(0o755)
    inventory = render_inventory(plan, "netns", python)
    inventory["all"]["vars"]["ctdrill_docker_project"] = project
    header = (f"# Written by ctdrill.lab.docker for compose project '{project}'; "
              "removed by its detach.\n")
    plan.inventory_path.write_text(header + yaml.safe_dump(inventory, sort_keys=False))
    return plan.inventory_path


def attach(project: str = DEFAULT_PROJECT, host: str | None = None) -> DockerLab:
    """Attach the running project's containers as `ctd-<lab>-<role>` namespaces, route
    client and venue via gw, load the gw's conntrack rule and write the netns inventory.
    All or nothing: a failure detaches what was attached."""
    plan = lab_plan(project)
    _forget_names(plan)  # remains of an earlier, killed run (names, stale locks, files)
    pids: dict[str, int] = {}
    try:
        plan.state_dir.mkdir(parents=True, exist_ok=True)
        for h in plan.hosts:
            pids[h.role] = container_pid(project, h.role, host)
            run(["ip", "netns", "attach", h.netns, str(pids[h.role])])
        _configure(plan)
        inventory = _write_inventory(plan, project)
    except BaseException:
        detach(project)
        raise
    return DockerLab(project=project, plan=plan, inventory=inventory, pids=pids)


def _forget_names(plan: LabPlan) -> None:
    """Drop earlier names of this lab without ending what runs inside: a name may point
    at a container that `docker-compose up` has just reused."""
    for ns in manager.existing_namespaces(plan.ns_prefix):
        manager._forget_drill_state(ns)
        run(["ip", "netns", "del", ns], check=False)
    manager.down(plan.name)


def detach(project: str = DEFAULT_PROJECT) -> list[str]:
    """Remove the namespace names, drill locks/timers and files of the project's lab.

    The same teardown as `ctdrill lab down`: processes inside the namespaces are ended
    too, i.e. the containers stop; `docker-compose down` removes them afterwards.
    """
    return manager.down(lab_name(project))
