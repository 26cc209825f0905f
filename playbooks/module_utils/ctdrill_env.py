"""Where the host-side effects of ctdrill land: `HostEnv`, its real defaults, the errors.

The host-side code is split by concern into the `ctdrill_*` module_utils files next to
this one (env, payload, sysctl_ops, nft_ops, snapshot_ops, revert_ops, proc, state, lock,
deadman, fenced_revert, deadman_cli). All are standard library only and run on the
target's python3 (3.8 or later): annotations are never evaluated at run time.

They import each other as `ansible.module_utils.ctdrill_X`, the one spelling Ansible's
module_utils finder follows (it ships every file so imported with the module), under an
`if TYPE_CHECKING` whose other branch names the same file as a top-level module: mypy
checks these files as top-level modules (pyproject `files`), and ansible-core carries
no type information. Outside Ansible, `ctdrill_deadman_cli.provide_package` makes the
`ansible.module_utils` spelling resolve to a directory of these files (the dead-man
script does this; the unit tests extend the installed package instead).

Every effect goes through a `HostEnv` (the /proc/sys root, the state directory, the nft
runner, the timer, the clock, the kernel log). The default is the real host; unit tests
point each at a fake, so the lock, dead-man and revert logic is tested without root.
Everything acts on the network namespace the process runs in.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any, Callable, Dict, Optional, Sequence

PROC_SYS = "/proc/sys/"
DEFAULT_RUN_DIR = "/run/ctdrill"
RUN_DIR_VARIABLE = "CTDRILL_RUN_DIR"
RUN_ID_VARIABLE = "CTDRILL_RUN_ID"  # every process a run starts carries it (fencing)

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
        self.holder: Json = holder or {}


# ------------------------------------------------------------------ real effects

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


def run_nft(args: Sequence[str], stdin: str | None = None) -> str:
    """Run nft; any non-zero exit is a HostError carrying nft's own message."""
    proc = subprocess.run(["nft", *args], input=stdin, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise HostError(f"nft {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def netns_inode() -> int:
    """This process's network namespace: every lock and timer is keyed by it."""
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


# ------------------------------------------------------------------ the seam

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


def resolve(env: HostEnv | None) -> HostEnv:
    """The given environment, or the real host (read at call time: $CTDRILL_RUN_DIR)."""
    return env if env is not None else HostEnv()
