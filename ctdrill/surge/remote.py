"""A surge whose source is an SSH host: `ctdrill surge --json` runs there, over paramiko.

The orchestrator checks the plan first (the destination guard included); the remote
side gets a one-host inventory that says the same (its own address, the same target
networks), so it checks again before it sends. The command runs under a pty, so a
Ctrl-C (0x03) on the channel is the remote surge's SIGINT: it stops within a second
and still prints its truthful JSON result. The remote host needs ctdrill installed for
the interpreter named by `ansible_python_interpreter` (default python3).
"""

from __future__ import annotations

import contextlib
import json
import shlex
import threading
import time
from typing import Any

import paramiko
import yaml

from ctdrill.errors import EnvironmentProblem
from ctdrill.surge.plan import SurgePlan
from ctdrill.surge.spec import ReplayShape

STOP_TIMEOUT_S = 20.0


def remote_files(plan: SurgePlan, workdir: str) -> dict[str, str]:
    """The spec, inventory (and profile) the remote `ctdrill surge` reads (pure)."""
    assert plan.remote is not None
    spec = plan.spec.model_dump(mode="json")
    spec.update(source="self", destination=str(plan.destination), start_s=0)
    files: dict[str, str] = {}
    if isinstance(plan.spec.shape, ReplayShape) and plan.profile is not None:
        files["profile.csv"] = "t,rate\n" + "".join(f"{t!r},{r!r}\n" for t, r in plan.profile)
        spec["shape"]["profile"] = f"{workdir}/profile.csv"
    inventory = {"all": {"hosts": {"self": {
        "ansible_connection": "local", "ctdrill_transport": "local",
        "ctdrill_addr": str(plan.src_start),
        "ctdrill_target_networks": list(plan.networks)}}}}
    files["spec.yaml"] = yaml.safe_dump(spec, sort_keys=False)
    files["inventory.yml"] = yaml.safe_dump(inventory, sort_keys=False)
    return files


def last_json(text: str) -> dict[str, Any] | None:
    """The last JSON object printed (the pty may echo `^C` in front of it)."""
    for line in reversed(text.replace("\r", "").splitlines()):
        start = line.find("{")
        if start >= 0:
            with contextlib.suppress(ValueError):
                obj = json.loads(line[start:])
                if isinstance(obj, dict):
                    return obj
    return None


class RemoteSurge:
    """Same interface as SurgeRun: start(), finished(), wait(), totals(), stop()."""

    def __init__(self, plan: SurgePlan) -> None:
        assert plan.remote is not None
        self.plan = plan
        self.target = plan.remote
        self.started_at = 0.0
        self._client: paramiko.SSHClient | None = None
        self._chan: paramiko.Channel | None = None
        self._out: list[str] = []
        self._reader: threading.Thread | None = None
        self._workdir = ""
        self._result: dict[str, Any] | None = None
        self._stop_reason: str | None = None

    def _run(self, command: str) -> str:
        assert self._client is not None
        _, out, err = self._client.exec_command(command, timeout=30)
        text = out.read().decode(errors="replace")
        if out.channel.recv_exit_status() != 0:
            detail = err.read().decode(errors="replace").strip().splitlines()
            raise EnvironmentProblem(f"'{command}' failed on {self.target.name}",
                                     detail[-1] if detail else "check the host")
        return text

    def start(self) -> None:
        from ctdrill.telemetry.streams import connect_ssh

        self._client = connect_ssh(self.target)
        try:
            self._workdir = self._run("mktemp -d /tmp/ctd-surge-XXXXXX").strip()
            sftp = self._client.open_sftp()
            try:
                for name, text in remote_files(self.plan, self._workdir).items():
                    with sftp.open(f"{self._workdir}/{name}", "w") as fh:
                        fh.write(text)
            finally:
                sftp.close()
            transport = self._client.get_transport()
            assert transport is not None
            chan = transport.open_session()
            chan.get_pty(width=200)
            q = shlex.quote
            chan.exec_command(f"exec {q(self.target.python)} -m ctdrill surge "
                              f"{q(self._workdir + '/spec.yaml')} -i "
                              f"{q(self._workdir + '/inventory.yml')} --json")
            self._chan = chan
            self.started_at = time.time()
            self._reader = threading.Thread(target=self._read, daemon=True,
                                            name="ctd-surge-ssh")
            self._reader.start()
        except BaseException:
            self._close()
            raise

    def _read(self) -> None:
        assert self._chan is not None
        while True:
            data = self._chan.recv(65536)
            if not data:
                break
            self._out.append(data.decode(errors="replace"))

    def finished(self) -> bool:
        return self._chan is None or self._chan.exit_status_ready()

    def wait(self, timeout: float | None = None) -> bool:
        end = None if timeout is None else time.monotonic() + timeout
        while not self.finished():
            if end is not None and time.monotonic() >= end:
                return False
            time.sleep(0.05)
        return True

    def totals(self) -> dict[str, Any]:
        """No live counts over SSH (the remote prints only its result)."""
        return {"flows": 0, "completed": 0, "packets": 0, "errors": 0, "enobufs": 0,
                "phase": "remote"}

    def stop(self, reason: str | None = None) -> dict[str, Any]:
        if self._result is not None:
            return self._result
        if self._chan is not None and not self.finished():
            self._stop_reason = reason
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                self._chan.send(b"\x03")  # the pty turns it into SIGINT for the remote surge
            self.wait(STOP_TIMEOUT_S)
        if self._reader is not None:
            self._reader.join(timeout=2)
        text = "".join(self._out)
        result = last_json(text) or {}
        if not result:
            tail = [ln for ln in text.replace("\r", "").splitlines() if ln.strip()]
            result = {"flows": 0, "packets": 0, "error": tail[-1] if tail else
                      f"no result from {self.target.name}"}
        result.update(kind="surge", source=self.plan.source, remote=self.target.name)
        if self._stop_reason and result.get("stopped") == "SIGINT":
            result["stopped"] = self._stop_reason
        self._close()
        self._result = result
        return result

    def _close(self) -> None:
        if self._client is not None:
            if self._workdir.startswith("/tmp/ctd-surge-"):
                with contextlib.suppress(Exception):
                    self._run(f"rm -rf {shlex.quote(self._workdir)}")
            with contextlib.suppress(Exception):
                self._client.close()
        self._client = None
