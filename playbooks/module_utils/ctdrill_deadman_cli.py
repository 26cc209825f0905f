"""The standalone dead-man script: `python3 ctdrill_deadman_cli.py deadman DIR [--now]`.

Why copies of these files, and why this entry file: the dead-man switch must revert its
host with nothing installed there and no orchestrator alive, long after the Ansible
module that armed it (and Ansible's temporary zip of module_utils) is gone. So arming
copies `BUNDLE` (ctdrill_deadman and every ctdrill_* file it imports, this one included)
into the switch's own directory, and the timer runs this file from there. The files
import each other as `ansible.module_utils.ctdrill_X`, the one spelling Ansible's
module_utils finder follows; `provide_package` makes that spelling resolve to this
file's directory through stand-in `ansible` and `ansible.module_utils` packages and never
imports an installed Ansible: what runs is exactly what the switch was armed with,
whatever is (or is no longer) installed on the target when it fires. No bytecode is
written, so the directory holds only what arming put there.

Standard library only, and no module-level import of the other ctdrill files: Ansible
ships this file with a module because ctdrill_deadman imports `BUNDLE` from it.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import signal
import sys
import types
from typing import Sequence

PACKAGE = "ansible.module_utils"
ENTRY = "ctdrill_deadman_cli"
BUNDLE = (ENTRY, "ctdrill_deadman", "ctdrill_env", "ctdrill_lock", "ctdrill_nft_ops",
          "ctdrill_proc", "ctdrill_revert_ops", "ctdrill_snapshot_ops", "ctdrill_state",
          "ctdrill_sysctl_ops")
"""The files the script needs next to it: this one, ctdrill_deadman and everything it
imports, directly or not (tests/unit/test_host_module.py checks the closure)."""


def provide_package(directory: str) -> None:
    """Make `ansible.module_utils.ctdrill_*` import from `directory`, in a process that has
    not imported Ansible: stand-in packages `ansible` and `ansible.module_utils` whose
    only contents are that directory's files."""
    root = _stand_in("ansible", [])
    package = _stand_in(PACKAGE, [directory])
    root.module_utils = package  # type: ignore[attr-defined]  # as `import` would set it
    sys.modules["ansible"] = root
    sys.modules[PACKAGE] = package


def _stand_in(name: str, path: list[str]) -> types.ModuleType:
    """An empty package (no loader, no code) that imports submodules from `path`."""
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = path
    return importlib.util.module_from_spec(spec)


def main(argv: Sequence[str]) -> int:
    """Wait for the deadline of the switch in DIR unless disarmed, then fire (`--now`:
    fire at once). Exit 0: nothing to do or reverted and verified; 1: not verified."""
    if len(argv) >= 2 and argv[0] == "deadman":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # disarm stops us quietly
        sys.dont_write_bytecode = True
        provide_package(os.path.dirname(os.path.abspath(__file__)))
        deadman = importlib.import_module(f"{PACKAGE}.ctdrill_deadman")
        return int(deadman.deadman_wait(argv[1], now="--now" in argv))
    sys.stderr.write(f"usage: {ENTRY}.py deadman DIR [--now]\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
