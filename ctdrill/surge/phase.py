"""The surge as the drill engine's load phase (engine/load_context.py's LoadPhase).

Construction plans and checks (the engine builds every load once up front, so a bad
destination refuses the drill before any change); start() returns at once and brings
the workers up in a thread; stop() stops them and returns the result, never raising:
a failure is reported in the result's `error`, the engine still reverts.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

from ctdrill.engine.load_context import LoadContext
from ctdrill.errors import CtdrillError
from ctdrill.surge.plan import plan_surge
from ctdrill.surge.spec import SurgeLoad

if TYPE_CHECKING:
    from ctdrill.surge.runner import Surge


def _prewarm() -> None:
    """Import scapy early (~1 s) so the surge starts close to its start_s."""
    importlib.import_module("scapy.layers.inet")


class SurgePhase:
    def __init__(self, spec: SurgeLoad, ctx: LoadContext) -> None:
        self.start_s = spec.start_s
        self.spec = spec
        self.plan = plan_surge(spec, ctx.inventory, ctx.base_dir)
        self._run: Surge | None = None
        self._error = ""
        self._prepared = False
        self._thread: threading.Thread | None = None
        threading.Thread(target=_prewarm, daemon=True, name="ctd-scapy").start()

    def prepare(self) -> None:
        """Workers (and a remote handshake partner) started and ready before the
        observation: at start_s only `go` is left to say."""
        from ctdrill.surge.launch import open_surge

        if self._run is not None:
            return
        run = open_surge(self.plan)
        self._run = run
        try:
            run.prepare()
            self._prepared = True
        except CtdrillError as exc:  # reported in the result, not raised mid-drill
            self._error = exc.one_line()
        except Exception as exc:
            self._error = f"surge failed: {exc!r}"

    def _start(self) -> None:
        self.prepare()
        if self._run is not None and self._prepared:
            try:
                self._run.go()
            except Exception as exc:
                self._error = f"surge failed: {exc!r}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._start, daemon=True, name="ctd-surge")
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        if self._thread is not None:
            self._thread.join()
        if self._run is None:
            return {"kind": "surge", "flows": 0, "packets": 0, "error": self._error}
        result = self._run.stop("stopped")
        if self._error:
            result["error"] = self._error
        return result
