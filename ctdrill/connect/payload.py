"""Ship a ctdrill module and what it imports to a host's python3, in memory.

A target needs only python3 (what Ansible needs) and the system tools: ctdrill is not
installed there. `spawn_module(conn, "ctdrill.surge.worker")` starts `python3 -u -c
BOOT`, whose first stdin line is a bundle (JSON: module name -> source, the closure of
the module's ctdrill imports, found with ast); BOOT puts an importer for it in front
of sys.meta_path and runs the module's main(), which then reads its own protocol
from the following lines. Nothing is written to the target's disk. Every module in a
bundle must import only the standard library at module level (a test checks each
shipped entry point runs under a bare python3 -I).
"""

from __future__ import annotations

import ast
import json
import sys
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

from ctdrill.connect.base import Connector, Spawned

ROOT = Path(__file__).resolve().parents[1]
MIN_PYTHON = (3, 10)
BOOT = r"""
import importlib, importlib.abc, importlib.util, json, sys
if sys.version_info < (3, 10):
    sys.stdout.write(json.dumps({"type": "failed", "error": "python %s on this host; "
                     "ctdrill's payloads need 3.10 or newer" % sys.version.split()[0]}) + "\n")
    sys.exit(3)
BUNDLE = json.loads(sys.stdin.readline())
class Shipped(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name in BUNDLE["modules"]:
            return importlib.util.spec_from_loader(
                name, self, is_package=name in BUNDLE["packages"])
        return None
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        name = module.__name__
        if name in BUNDLE["packages"]:
            module.__path__ = []
        exec(compile(BUNDLE["modules"][name], "<ctdrill>/" + name, "exec"), module.__dict__)
sys.meta_path.insert(0, Shipped())
sys.exit(importlib.import_module(BUNDLE["main"]).main())
"""


def module_path(name: str) -> Path:
    rel = Path(*name.split(".")[1:])
    pkg = ROOT / rel / "__init__.py"
    return pkg if pkg.exists() else ROOT / rel.with_suffix(".py")


def _top_level_imports(name: str, source: str) -> set[str]:
    """ctdrill modules imported at module level (imports inside functions are lazy:
    the shipped code paths must not reach them)."""
    found: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("ctdrill"):
                subs = {f"{node.module}.{a.name}" for a in node.names  # `from pkg import mod`
                        if module_path(f"{node.module}.{a.name}").is_file()}
                found |= subs or {node.module}
            elif node.module.split(".")[0] not in sys.stdlib_module_names:
                raise ValueError(f"{name} imports {node.module}: not shippable")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top != "ctdrill" and top not in sys.stdlib_module_names:
                    raise ValueError(f"{name} imports {alias.name}: not shippable")
                if top == "ctdrill":
                    found.add(alias.name)
    return found


@cache
def bundle(main: str) -> str:
    """The JSON line shipped ahead of `main`'s own input (cached: sources do not move)."""
    modules: dict[str, str] = {}
    todo = [main]
    while todo:
        name = todo.pop()
        if name in modules:
            continue
        modules[name] = module_path(name).read_text()
        todo.extend(_top_level_imports(name, modules[name]))
    packages = {".".join(m.split(".")[:i]) for m in modules for i in range(1, m.count(".") + 1)}
    for pkg in packages - modules.keys():
        modules[pkg] = ""  # parent packages as empty stubs: their real __init__ imports more
    return json.dumps({"main": main, "modules": modules, "packages": sorted(packages)})


def spawn_module(conn: Connector, main: str, first_line: str,
                 env: Mapping[str, str] | None = None) -> Spawned:
    """Start `main` on the host and give it the bundle, then its first protocol line."""
    proc = conn.spawn([conn.python, "-u", "-c", BOOT], env=env)
    proc.write(bundle(main) + "\n" + first_line.rstrip("\n") + "\n")
    return proc


def shipped(main: str) -> Sequence[str]:
    """The modules a bundle carries (for tests and docs)."""
    return sorted(json.loads(bundle(main))["modules"])
