"""The code's shape, checked on its syntax trees (ast, no import): no function over 80
lines, no import cycle, one way into a host, one quantile definition, one SVG module.

Cycles count every import a module makes: top level, inside functions and under
`if TYPE_CHECKING:`, relative ones resolved. `from pkg import name` is an edge to
`pkg.name` when that is a module, else to `pkg` (its __init__); importing a module also
imports the packages above it that do not enclose the importer. Ansible's module_utils
(`playbooks/module_utils/X.py`) are imported as `ansible.module_utils.X`, or as bare `X`
for mypy; both name the same file. Each failure lists every offender with file:line.
"""

from __future__ import annotations

import ast
import itertools
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 80
SCANNED = ("ctdrill", "playbooks")
HOST_ENTRY = ("ctdrill/connect/", "ctdrill/lab/")  # the only ones that may enter a netns
QUANTILE_HOME = "ctdrill/metrics/quantile.py"
SVG_HOME = "ctdrill/report/svg.py"
NETNS_EXEC = ("ip", "netns", "exec")
QUANTILE_CALLS = frozenset({"quantile", "quantiles", "nanquantile", "percentile",
                            "nanpercentile", "median", "nanmedian", "median_low",
                            "median_high", "median_grouped"})
MODULE_UTILS = "playbooks.module_utils"


@dataclass
class Module:
    name: str  # dotted: ctdrill.engine.judge, playbooks.module_utils.ctdrill_env
    path: str  # relative to the repository, for messages
    tree: ast.Module
    package: bool = False  # an __init__.py
    edges: dict[str, int] = field(default_factory=dict)  # imported module -> first line


def module_name(rel: Path) -> tuple[str, bool]:
    parts = list(rel.with_suffix("").parts)
    package = parts[-1] == "__init__"
    if package:
        parts.pop()
    return ".".join(parts), package


def parse(sources: dict[str, str]) -> dict[str, Module]:
    """Modules by dotted name from {relative path: source}."""
    mods = {}
    for path, text in sources.items():
        name, package = module_name(Path(path))
        mods[name] = Module(name, path, ast.parse(text, filename=path), package)
    return mods


def repository_sources() -> dict[str, str]:
    out = {}
    for top in SCANNED:
        for p in sorted((ROOT / top).rglob("*.py")):
            if "__pycache__" not in p.parts:
                out[p.relative_to(ROOT).as_posix()] = p.read_text(encoding="utf-8")
    return out


# -- imports -------------------------------------------------------------------------

def _absolute(mod: Module, node: ast.ImportFrom) -> str:
    """The module an ImportFrom names, relative levels resolved against `mod`."""
    if not node.level:
        return node.module or ""
    base = mod.name.split(".")
    if not mod.package:
        base = base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _known(name: str, mod: Module, mods: dict[str, Module]) -> str | None:
    """The scanned module `name` means inside `mod`, if any (module_utils aliases)."""
    candidates = [name]
    if name.startswith("ansible.module_utils."):
        candidates.append(MODULE_UTILS + name.removeprefix("ansible.module_utils"))
    elif mod.name.startswith("playbooks."):
        candidates.append(f"{MODULE_UTILS}.{name}")
    return next((c for c in candidates if c in mods), None)


def _targets(mod: Module, node: ast.Import | ast.ImportFrom,
             mods: dict[str, Module]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            parts = alias.name.split(".")
            # `import a.b.c` binds a.b.c; fall back to the longest scanned prefix
            for i in range(len(parts), 0, -1):
                if (hit := _known(".".join(parts[:i]), mod, mods)) is not None:
                    yield hit
                    break
        return
    base = _absolute(mod, node)
    for alias in node.names:
        sub = _known(f"{base}.{alias.name}", mod, mods) if alias.name != "*" else None
        hit = sub if sub is not None else _known(base, mod, mods)
        if hit is not None:
            yield hit


def _packages(name: str) -> list[str]:
    """a.b.c -> [a, a.b]: the packages Python initialises before importing a.b.c."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(mods: dict[str, Module]) -> dict[str, dict[str, int]]:
    """module -> {imported module: line of the first import}, every import counted.

    Importing a.b.c first runs a/b/__init__.py, so that package is imported too, unless
    it encloses the importer (a package's own modules importing each other is normal):
    a leaf that imports `report.safe` while `report/__init__` imports the leaf's user is
    a cycle Python trips on."""
    for mod in mods.values():
        own = {*_packages(mod.name), mod.name}
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _targets(mod, node, mods):
                    for hit in (*_packages(target), target):
                        if hit in mods and hit not in own:
                            mod.edges.setdefault(hit, node.lineno)
    return {m.name: m.edges for m in mods.values()}


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's components with more than one module, or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                if len(comp) > 1 or node in graph.get(node, {}):
                    found.append(sorted(comp))
    return sorted(found)


def shortest_cycle(start: str, comp: list[str], graph: dict[str, dict[str, int]]) -> list[str]:
    """start -> ... -> start inside one component (breadth first: the shortest)."""
    members = set(comp)
    prev: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node]):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return [*reversed(path), start]
            if child in members and child not in prev:
                prev[child] = node
                queue.append(child)
    return [start]


def cycle_report(mods: dict[str, Module]) -> list[str]:
    graph = import_graph(mods)
    out = []
    for comp in strongly_connected(graph):
        path = shortest_cycle(comp[0], comp, graph)
        steps = " -> ".join(f"{a} ({mods[a].path}:{graph[a][b]})"
                            for a, b in itertools.pairwise(path))
        out.append(f"cycle: {steps} -> {path[-1]}"
                   + (f"  [{len(comp)} modules tied: {', '.join(comp)}]"
                      if len(comp) > len(path) - 1 else ""))
    return out


# -- other shape rules ---------------------------------------------------------------

def long_functions(mods: dict[str, Module]) -> list[str]:
    out = []
    for mod in mods.values():
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_LINES:
                    out.append(f"{mod.path}:{node.lineno} {node.name}: {n} lines")
    return sorted(out)


def _docstrings(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _strings(tree: ast.Module) -> Iterator[ast.Constant]:
    """String constants that are code, not documentation."""
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in skip:
            yield node


def _contains(seq: list[str | None], sub: tuple[str, ...]) -> bool:
    return any(tuple(seq[i:i + len(sub)]) == sub for i in range(len(seq) - len(sub) + 1))


def _called(node: ast.Call) -> str | None:
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None


def netns_entries(mods: dict[str, Module]) -> list[str]:
    """`ip netns exec` argv (a list/tuple literal or a command string) and setns calls
    outside the connector layer and the lab builder."""
    out = []
    for mod in mods.values():
        if mod.path.startswith(HOST_ENTRY):
            continue
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.List | ast.Tuple):
                seq = [e.value if isinstance(e, ast.Constant) and isinstance(e.value, str)
                       else None for e in node.elts]
                if _contains(seq, NETNS_EXEC):
                    out.append(f"{mod.path}:{node.lineno} argv ip netns exec")
            elif isinstance(node, ast.Call) and _called(node) == "setns":
                out.append(f"{mod.path}:{node.lineno} setns() call")
        for s in _strings(mod.tree):
            words = s.value.split()
            if _contains(list(words), NETNS_EXEC) or s.value == "setns":
                out.append(f"{mod.path}:{s.lineno} {s.value[:40]!r}")
    return sorted(set(out))


def quantile_calls(mods: dict[str, Module]) -> list[str]:
    """numpy/statistics/pandas quantiles and medians computed outside the one definition."""
    out = []
    for mod in mods.values():
        if mod.path == QUANTILE_HOME:
            continue
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.Call) and _called(node) in QUANTILE_CALLS:
                out.append(f"{mod.path}:{node.lineno} {ast.unparse(node.func)}(...)")
    return sorted(set(out))


def svg_writers(mods: dict[str, Module]) -> list[str]:
    return sorted(f"{m.path}:{s.lineno}" for m in mods.values() if m.path != SVG_HOME
                  for s in _strings(m.tree) if "<svg" in s.value)


# -- the repository ------------------------------------------------------------------

@pytest.fixture(scope="module")
def repo() -> dict[str, Module]:
    return parse(repository_sources())


def _fail(what: str, found: Iterable[str]) -> None:
    lines = list(found)
    assert not lines, f"{len(lines)} {what}:\n  " + "\n  ".join(lines)


def test_every_scanned_module_was_parsed(repo: dict[str, Module]) -> None:
    assert "ctdrill.engine.judge" in repo and "ctdrill.metrics.quantile" in repo
    assert any(name.startswith(MODULE_UTILS) for name in repo)


def test_no_function_over_80_lines(repo: dict[str, Module]) -> None:
    _fail(f"functions over {MAX_LINES} lines (split them into named steps)",
          long_functions(repo))


def test_no_import_cycle(repo: dict[str, Module]) -> None:
    _fail("import cycles (TYPE_CHECKING and function-level imports included; move the "
          "shared types to a leaf module)", cycle_report(repo))


def test_hosts_are_entered_only_through_the_connector_layer(repo: dict[str, Module]) -> None:
    _fail("ways into a network namespace outside ctdrill/connect/ and ctdrill/lab/ "
          "(use ctdrill.connect's connector)", netns_entries(repo))


def test_one_quantile_definition(repo: dict[str, Module]) -> None:
    _fail(f"quantiles or medians computed outside {QUANTILE_HOME} (use nearest_rank or "
          "weighted_nearest_rank, docs/METRICS.md)", quantile_calls(repo))


def test_one_svg_module(repo: dict[str, Module]) -> None:
    _fail(f"SVG written outside {SVG_HOME}", svg_writers(repo))


# -- the checks can fail -------------------------------------------------------------

def test_cycles_through_type_checking_relative_and_package_imports_are_found() -> None:
    mods = parse({
        "ctdrill/a/__init__.py": "from ctdrill.a.x import X\n",
        "ctdrill/a/x.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                          "    from ..b import y\nX = 1\n",
        "ctdrill/b/__init__.py": "",
        "ctdrill/b/y.py": "def f():\n    from ctdrill import a\n    return a\n",
        "ctdrill/c.py": "from ctdrill.a import x\nimport ctdrill.b.y\n",
    })
    graph = import_graph(mods)
    # relative, under TYPE_CHECKING; ctdrill.b's __init__ runs first
    assert graph["ctdrill.a.x"] == {"ctdrill.b": 3, "ctdrill.b.y": 3}
    assert graph["ctdrill.b.y"] == {"ctdrill.a": 2}  # `from ctdrill import a`: package
    assert graph["ctdrill.c"] == {"ctdrill.a": 1, "ctdrill.a.x": 1, "ctdrill.b": 2,
                                  "ctdrill.b.y": 2}  # `from ctdrill.a import x`: module
    (report,) = cycle_report(mods)
    assert report.startswith("cycle: ctdrill.a (ctdrill/a/__init__.py:1) -> ctdrill.a.x "
                             "(ctdrill/a/x.py:3) -> ctdrill.b.y (ctdrill/b/y.py:2) -> ctdrill.a")


def test_a_cycle_through_a_package_init_is_found() -> None:
    """plot.svg imports report.safe, which runs report/__init__, which imports
    report.html, which imports plot.svg: importing plot.svg first fails."""
    mods = parse({
        "ctdrill/report/__init__.py": "from ctdrill.report.html import render\n",
        "ctdrill/report/html.py": "from ctdrill.plot.svg import chart\n"
                                  "from ctdrill.report.safe import text\n",
        "ctdrill/report/safe.py": "def text(v):\n    return v\n",
        "ctdrill/plot/__init__.py": "",
        "ctdrill/plot/svg.py": "from ctdrill.report.safe import text\n",
    })
    assert "ctdrill.report" not in import_graph(mods)["ctdrill.report.html"]  # own package
    (report,) = cycle_report(mods)
    assert "ctdrill.plot.svg (ctdrill/plot/svg.py:1) -> ctdrill.report (" in report


def test_module_utils_aliases_name_one_file() -> None:
    mods = parse({
        "playbooks/module_utils/u1.py": "from ansible.module_utils.u2 import f\n",
        "playbooks/module_utils/u2.py": "from typing import TYPE_CHECKING\n"
                                        "if TYPE_CHECKING:\n    from u1 import g\n",
        "playbooks/library/m.py": "from ansible.module_utils.basic import AnsibleModule\n",
    })
    assert import_graph(mods)["playbooks.library.m"] == {}  # ansible's own: not scanned
    assert cycle_report(mods)[0].startswith("cycle: playbooks.module_utils.u1")


def test_long_functions_netns_entries_quantiles_and_svg_are_found() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES))
    mods = parse({
        "ctdrill/probe/p.py": f"def long():\n{body}\n"
                              "def ok():\n    return ['ip', 'netns', 'exec', ns, *argv]\n"
                              "def shell():\n    return 'sudo ip netns exec gw conntrack -L'\n"
                              "def enter(fd):\n    libc.setns(fd, 0)\n"
                              "def q(v):\n    return np.quantile(v, 0.95), statistics.median(v)\n"
                              "SVG = '<svg xmlns=\"x\"/>'\n",
        "ctdrill/connect/netns.py": "def wrap(a):\n    '''ip netns exec NS argv'''\n"
                                    "    return ('ip', 'netns', 'exec', *a)\n",
        "ctdrill/lab/doc.py": '"""Uses ip netns exec."""\n',
        "ctdrill/other.py": '"""Docs may say ip netns exec; code may not."""\n',
    })
    assert long_functions(mods) == [f"ctdrill/probe/p.py:1 long: {MAX_LINES + 1} lines"]
    assert netns_entries(mods) == [
        f"ctdrill/probe/p.py:{MAX_LINES + 4} argv ip netns exec",
        f"ctdrill/probe/p.py:{MAX_LINES + 6} 'sudo ip netns exec gw conntrack -L'",
        f"ctdrill/probe/p.py:{MAX_LINES + 8} setns() call"]
    assert quantile_calls(mods) == [f"ctdrill/probe/p.py:{MAX_LINES + 10} np.quantile(...)",
                                    f"ctdrill/probe/p.py:{MAX_LINES + 10} "
                                    "statistics.median(...)"]
    assert svg_writers(mods) == [f"ctdrill/probe/p.py:{MAX_LINES + 11}"]
