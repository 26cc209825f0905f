"""A real OpenSSH server per lab namespace, with lab keys and pinned host keys."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

from ctdrill.errors import EnvironmentProblem
from ctdrill.lab.topology import HostPlan, LabPlan
from ctdrill.system.preflight import find_binary
from ctdrill.system.run import in_netns, run


def keys_dir(plan: LabPlan) -> Path:
    return plan.state_dir / "keys"


def client_key(plan: LabPlan) -> Path:
    return keys_dir(plan) / "id_ed25519"


def known_hosts(plan: LabPlan) -> Path:
    return plan.state_dir / "known_hosts"


def pid_file(plan: LabPlan, role: str) -> Path:
    return plan.state_dir / f"sshd-{role}.pid"


def config_file(plan: LabPlan, role: str) -> Path:
    return plan.state_dir / f"sshd-{role}.conf"


def _keygen(path: Path) -> None:
    if not path.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ctdrill-lab", "-f", str(path)])


KERNEL_ROLE = "kernel"
"""The opaque lab's kernel owner: an sshd in this machine's initial namespace."""


def render_config(plan: LabPlan, host: HostPlan | None) -> str:
    """sshd_config for a lab host, or (None) for the kernel owner on loopback.

    `SetEnv SHLVL=1`: sshd runs every command through root's login shell, and bash,
    seeing SSH_CLIENT at shell level 1, sources ~/.bashrc. Lab hosts share this
    machine's /root, whose interactive set-up is not theirs (on a developer machine,
    pyenv's init: ~150 ms of CPU per command, so per Ansible task, stream and `kill`);
    at shell level 2 bash leaves it alone (bash's SSH_SOURCE_BASHRC)."""
    kd = keys_dir(plan)
    role = host.name if host is not None else KERNEL_ROLE
    addr, port = ((host.mgmt_ns_addr, 22) if host is not None
                  else ("127.0.0.1", plan.kernel_ssh_port))
    return "\n".join([
        f"ListenAddress {addr}",
        f"Port {port}",
        f"HostKey {kd / ('host_' + role)}",
        f"PidFile {pid_file(plan, role)}",
        f"AuthorizedKeysFile {kd / 'authorized_keys'}",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "UseDNS no",
        "MaxSessions 32",
        "MaxStartups 64:30:128",
        "ClientAliveInterval 5",
        "ClientAliveCountMax 2",
        "Subsystem sftp internal-sftp",
        "SetEnv SHLVL=1",
        "",
    ])


def prepare_keys(plan: LabPlan) -> None:
    """Generate the lab's client key, one host key per host, and the pinned known_hosts."""
    kd = keys_dir(plan)
    kd.mkdir(parents=True, exist_ok=True, mode=0o700)
    _keygen(client_key(plan))
    (kd / "authorized_keys").write_text(Path(f"{client_key(plan)}.pub").read_text())
    lines = []
    where = [(h.name, h.mgmt_ns_addr) for h in plan.hosts]
    where.append((KERNEL_ROLE, f"[127.0.0.1]:{plan.kernel_ssh_port}"))
    for role, addr in where:
        _keygen(kd / f"host_{role}")
        kind, blob = Path(kd / f"host_{role}.pub").read_text().split()[:2]
        lines.append(f"{addr} {kind} {blob}\n")
    known_hosts(plan).write_text("".join(lines))


def start(plan: LabPlan, host: HostPlan | None) -> None:
    """A lab host's sshd in its namespace, or (None) the kernel owner's, in the initial
    namespace on loopback only."""
    sshd = find_binary("sshd")
    if sshd is None:
        raise EnvironmentProblem("sshd is not installed", "run scripts/setup.sh as root")
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege-separation dir sshd insists on
    role = host.name if host is not None else KERNEL_ROLE
    config_file(plan, role).write_text(render_config(plan, host))
    argv = [sshd, "-f", str(config_file(plan, role))]
    run(in_netns(host.netns, argv) if host is not None else argv)
    if host is not None:
        _wait_listening(host.mgmt_ns_addr, 22)
    else:
        _wait_listening("127.0.0.1", plan.kernel_ssh_port)


def _wait_listening(addr: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((addr, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise EnvironmentProblem(f"sshd on {addr}:{port} did not start listening",
                             "see 'ctdrill lab status' and the system log")


def read_pid(plan: LabPlan, role: str) -> int | None:
    try:
        return int(pid_file(plan, role).read_text().strip())
    except (OSError, ValueError):
        return None


def is_our_sshd(pid: int, plan: LabPlan) -> bool:
    """True when pid is alive and is an sshd started with this lab's config."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    # sshd rewrites its title ("sshd: /usr/sbin/sshd -f CONF [listener] ..."): match on text
    is_sshd = cmdline.startswith(b"sshd") or b"/sshd " in cmdline[:64]
    return is_sshd and str(plan.state_dir).encode() + b"/sshd-" in cmdline


def lab_sshd_pids(plan: LabPlan) -> list[int]:
    """Every live sshd (listener or session) whose command line names this lab's dir."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and is_our_sshd(int(entry.name), plan):
            pids.append(int(entry.name))
    return pids


def stop_all(plan: LabPlan) -> None:
    """Stop every sshd of this lab, found by pid file or by command line (after a crash)."""
    pids = set(lab_sshd_pids(plan))
    for role in [h.name for h in plan.hosts] + [KERNEL_ROLE]:
        pid = read_pid(plan, role)
        if pid and is_our_sshd(pid, plan):
            pids.add(pid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 3
    while any(Path(f"/proc/{p}").exists() for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    for pid in pids:
        if Path(f"/proc/{pid}").exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
