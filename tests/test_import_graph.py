"""lmread's import graph: no cycles, and nothing below imports what stands above it.

Every module under lmread/ is parsed with ``ast`` (nothing is imported).  An edge is an
``import lmread.x`` / ``from lmread.x import y`` anywhere in the file (module level or inside a
function), or a string constant naming an lmread module (the lazy registries: commands,
backends, benchmarks are imported by name; a module run as a child, ``["-m", NAME]``, is not
imported).  Imports under ``if TYPE_CHECKING:`` never run, but a circle of them still means two
modules that each need the other to be understood, so they count for the cycle check as well as
for the layering rules.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import lmread

PACKAGE_DIR = Path(lmread.__file__).resolve().parent
MODULE_NAME_RE = re.compile(r"^lmread(\.[A-Za-z_][A-Za-z0-9_]*)+$")


@dataclass(frozen=True)
class Edge:
    """One import of ``target`` by ``source`` (line ``line``)."""

    source: str
    target: str
    line: int
    lazy: bool  # inside a function
    type_only: bool  # under ``if TYPE_CHECKING:``


def module_names(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    out: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` starts with (``lmread.a.b.attr`` -> ``lmread.a.b``)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def edges_of(source: str, tree: ast.AST, modules: dict[str, Path], is_package: bool) -> list[Edge]:
    """The lmread imports of one parsed module."""
    found: list[Edge] = []
    run_as_child = {id(seq.elts[i + 1]) for seq in ast.walk(tree) if isinstance(seq, (ast.List, ast.Tuple))
                    for i, elt in enumerate(seq.elts[:-1]) if isinstance(elt, ast.Constant) and elt.value == "-m"}

    def add(target: str | None, node: ast.AST, lazy: bool, type_only: bool) -> None:
        if target is not None and target != source:
            found.append(Edge(source, target, getattr(node, "lineno", 0), lazy, type_only))

    def visit(node: ast.AST, lazy: bool, type_only: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "lmread" or alias.name.startswith("lmread."):
                    add(_resolve(alias.name, modules), node, lazy, type_only)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = source.split(".") if is_package else source.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module == "lmread" or module.startswith("lmread."):
                for alias in node.names:
                    add(_resolve(f"{module}.{alias.name}", modules), node, lazy, type_only)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_NAME_RE.match(node.value):
            if node.value in modules and id(node) not in run_as_child:
                add(node.value, node, True, type_only)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, lazy, True)
            for child in node.orelse:
                visit(child, lazy, type_only)
            return
        inner = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner, type_only)

    visit(tree, False, False)
    return found


def import_graph(package_dir: Path = PACKAGE_DIR) -> list[Edge]:
    """Every lmread import edge of every module under ``package_dir``."""
    modules = module_names(package_dir)
    out: list[Edge] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        out += edges_of(name, tree, modules, path.name == "__init__.py")
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None when it has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state:
                cycle = dfs(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = dfs(start)
            if cycle:
                return cycle
    return None


def _under(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


# --------------------------------------------------------------------------------------------
# The checker itself can fail


def test_edges_cover_every_kind_of_import() -> None:
    modules = {m: Path() for m in ("lmread", "lmread.a", "lmread.a.b", "lmread.c", "lmread.d", "lmread.e", "lmread.f", "lmread.g")}
    code = (
        "from typing import TYPE_CHECKING\n"
        "import lmread.c\n"
        "from lmread.a import b\n"
        "from . import d\n"
        "REGISTRY = {'x': 'lmread.e'}\n"
        "CHILD = [sys.executable, '-m', 'lmread.g']\n"
        "if TYPE_CHECKING:\n"
        "    from lmread.f import Thing\n"
        "def later():\n"
        "    from lmread.a import helper\n"
    )
    edges = edges_of("lmread.z", ast.parse(code), modules, is_package=False)
    got = {(e.target, e.lazy, e.type_only) for e in edges}
    assert got == {("lmread.c", False, False), ("lmread.a.b", False, False), ("lmread.d", False, False),
                   ("lmread.e", True, False), ("lmread.f", False, True), ("lmread.a", True, False)}


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]


# --------------------------------------------------------------------------------------------
# lmread's own graph


def test_the_walk_sees_the_package() -> None:
    edges = import_graph()
    sources = {e.source for e in edges}
    assert {"lmread.cli", "lmread.study.folder", "lmread.catalog.card", "lmread.analysis.report"} <= sources
    assert any(e.source == "lmread.cli" and e.target == "lmread.cli.read" for e in edges)  # the lazy registry


#: edges left out of the cycle check until their module moves (none left)
PENDING_EDGES: set[tuple[str, str]] = set()


def _graph(type_only: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for e in import_graph():
        if (type_only or not e.type_only) and (e.source, e.target) not in PENDING_EDGES:
            graph.setdefault(e.source, set()).add(e.target)
    return graph


def test_no_import_cycles() -> None:
    cycle = find_cycle(_graph(type_only=False))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_import_cycles_through_type_only_imports() -> None:
    cycle = find_cycle(_graph(type_only=True))
    assert cycle is None, "import cycle (through imports under TYPE_CHECKING): " + " -> ".join(cycle or [])


def test_pending_edges_still_exist() -> None:
    # an edge left out of the check that is gone must leave the list too, so the list stays honest
    edges = {(e.source, e.target) for e in import_graph()}
    assert PENDING_EDGES <= edges, f"no longer pending: {sorted(PENDING_EDGES - edges)}"


def test_type_only_circles_are_found() -> None:
    modules = {m: Path() for m in ("lmread.p", "lmread.q")}
    code_p = "from lmread.q import Q\n"
    code_q = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lmread.p import P\n"
    edges = edges_of("lmread.p", ast.parse(code_p), modules, False) + edges_of("lmread.q", ast.parse(code_q), modules,
                                                                               False)
    runtime = {e.source: {e.target} for e in edges if not e.type_only}
    every = {e.source: {e.target} for e in edges}
    assert find_cycle(runtime) is None
    assert find_cycle(every) == ["lmread.p", "lmread.q", "lmread.p"]


#: the headless core and what each module of it may import (nothing above it)
CORE_ALLOWED: dict[str, set[str]] = {
    "lmread.errors": set(),
    "lmread.units": set(),
    "lmread.config": {"lmread.errors"},
    "lmread.storage": {"lmread.errors"},
    "lmread.records": {"lmread.errors"},
    "lmread.tokenizers": {"lmread.errors"},
}

#: package -> packages it must not import (they stand above it)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "lmread.study": ("lmread.catalog", "lmread.backends", "lmread.generate", "lmread.analysis", "lmread.cli",
                     "lmread.tui", "lmread.bench"),
    "lmread.catalog": ("lmread.backends", "lmread.generate", "lmread.study", "lmread.analysis", "lmread.cli",
                       "lmread.tui", "lmread.bench"),
    "lmread.backends": ("lmread.study", "lmread.analysis", "lmread.cli", "lmread.generate", "lmread.tui",
                        "lmread.bench"),
    "lmread.analysis": ("lmread.cli", "lmread.tui", "lmread.bench", "lmread.backends", "lmread.generate"),
    "lmread.tui": ("lmread.cli", "lmread.bench"),
}


def test_layers() -> None:
    bad: list[str] = []
    for e in import_graph():
        where = f"{e.source} imports {e.target} (line {e.line})"
        core = next((c for c in CORE_ALLOWED if _under(e.source, c)), None)  # a core package counts as one module
        if core is not None and e.target != "lmread" and not _under(e.target, core) and e.target not in CORE_ALLOWED[core]:
            bad.append(f"{where}: the core module may import only {sorted(CORE_ALLOWED[core]) or 'nothing'}")
        for package, above in FORBIDDEN.items():
            if _under(e.source, package) and _under(e.target, *above):
                bad.append(f"{where}: {package} stands below {e.target}")
        if _under(e.target, "lmread.tui") and not _under(e.source, "lmread.tui"):
            allowed = e.source == "lmread.cli.read" or _under(e.source, "lmread.bench")
            if not (allowed and e.lazy):
                bad.append(f"{where}: only lmread.cli.read and lmread.bench may import the TUI, inside a function")
    assert bad == [], "\n".join(bad)
