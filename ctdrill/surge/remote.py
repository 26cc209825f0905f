"""A surge whose source is an SSH host: `ctdrill surge --json` runs there, via its connector.

The orchestrator checks the plan first (the destination guard included); the remote
side gets a one-host inventory that says the same (its own address, the same target
networks), so it checks again before it sends. The command is spawned under a pty (a
lost connection hangs it up); a stop is a SIGINT, as a Ctrl-C would be: the remote
surge stops within a second and still prints its truthful JSON result. The remote host
needs ctdrill installed for the interpreter named by `ansible_python_interpreter`
(default python3).
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from typing import Any

import yaml

from ctdrill.connect import Connector, Spawned, connector_for
from ctdrill.errors import CtdrillError
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
        self._conn: Connector | None = None
        self._proc: Spawned | None = None
        self._out: list[str] = []
        self._reader: threading.Thread | None = None
        self._workdir = ""
        self._result: dict[str, Any] | None = None
        self._stop_reason: str | None = None

    def start(self) -> None:
        conn = self._conn = connector_for(self.target)
        try:
            self._workdir = conn.run(["mktemp", "-d", "/tmp/ctd-surge-XXXXXX"],
                                     timeout=30).stdout.strip()
            for name, text in remote_files(self.plan, self._workdir).items():
                conn.put(text.encode(), f"{self._workdir}/{name}", 0o600)
            self._proc = conn.spawn([self.target.python, "-m", "ctdrill", "surge",
                                     f"{self._workdir}/spec.yaml",
                                     "-i", f"{self._workdir}/inventory.yml", "--json"], tty=True)
            self.started_at = time.time()
            self._reader = threading.Thread(target=self._read, daemon=True,
                                            name="ctd-surge-ssh")
            self._reader.start()
        except BaseException:
            self._close()
            raise

    def _read(self) -> None:
        assert self._proc is not None
        for line in self._proc:
            self._out.append(line)

    def finished(self) -> bool:
        return self._proc is None or self._proc.poll() is not None

    def wait(self, timeout: float | None = None) -> bool:
        return self._proc is None or self._proc.wait(timeout) is not None

    def totals(self) -> dict[str, Any]:
        """No live counts over SSH (the remote prints only its result)."""
        return {"flows": 0, "completed": 0, "packets": 0, "errors": 0, "enobufs": 0,
                "phase": "remote"}

    def stop(self, reason: str | None = None) -> dict[str, Any]:
        if self._result is not None:
            return self._result
        if self._proc is not None and not self.finished():
            self._stop_reason = reason
            with contextlib.suppress(CtdrillError):
                self._proc.send_signal(signal.SIGINT)  # what a Ctrl-C on its pty would send
            self.wait(STOP_TIMEOUT_S)
        if self._reader is not None:
            self._reader.join(timeout=2)  # ends at the channel's EOF, after the last line
        if self._proc is not None:
            self._proc.stop()  # still running after the SIGINT: TERM, then KILL
        result = last_json("\n".join(self._out)) or {}
        if not result:
            tail = [ln for ln in self._out if ln.strip()]
            result = {"flows": 0, "packets": 0, "error": tail[-1] if tail else
                      f"no result from {self.target.name}"}
        result.update(kind="surge", source=self.plan.source, remote=self.target.name)
        if self._stop_reason and result.get("stopped") == "SIGINT":
            result["stopped"] = self._stop_reason
        self._close()
        self._result = result
        return result

    def _close(self) -> None:
        if self._proc is not None:
            self._proc.stop()
        if self._conn is not None:
            if self._workdir.startswith("/tmp/ctd-surge-"):
                with contextlib.suppress(CtdrillError):
                    self._conn.run(["rm", "-rf", "--", self._workdir], check=False, timeout=30)
            self._conn.close()
        self._conn = None
