"""The package's shape: no module imports another that imports it back, at any depth.

Every `from . import` and `from .x import` counts, at module level, inside functions and
under TYPE_CHECKING alike: a circle hidden in a function is still a circle in the design.
"""

from __future__ import annotations

import ast
from pathlib import Path

import alphacut

PACKAGE = Path(alphacut.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom, known: set[str]) -> set[str]:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:
        base = base[: len(base) - node.level + 1]
        target = ".".join([*base, node.module] if node.module else base)
    else:
        target = node.module or ""
    if not target.startswith("alphacut"):
        return set()
    found = set()
    for alias in node.names:
        child = f"{target}.{alias.name}"
        found.add(child if child in known else target)
    return {t for t in found if t in known}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                edges |= _resolve(name, path.name == "__init__.py", node, known)
            elif isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in known}
        # A package's own __init__ re-exporting its children is not a circle.
        graph[name] = {e for e in edges if e != name and not name.startswith(e + ".")}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_no_import_circles() -> None:
    graph = import_graph()
    assert len(graph) > 50
    assert "alphacut.models.session" in graph["alphacut.models.sam"]  # the walk sees imports
    assert find_cycles(graph) == []


def test_the_checker_finds_a_circle() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_graph_rewriting_has_a_room_of_its_own() -> None:
    rewrites = {p.stem for p in (PACKAGE / "graphs").glob("*.py")}
    assert {"blocked_layout", "dynamic_batch", "export", "optimized", "quantize"} <= rewrites
    assert not {p.stem for p in (PACKAGE / "models").glob("*.py")} & {
        "blocked_layout",
        "dynamic_batch",
        "export",
        "optimized",
        "quantize",
        "quantize_search",
    }
