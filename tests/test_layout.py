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
    """The tools that rewrite and check graphs live in graphs/; the rewrites the runtime
    applies as it loads a model (the saved optimised graph, its blocked layout) in models/."""
    rewrites = {p.stem for p in (PACKAGE / "graphs").glob("*.py")}
    assert {"dynamic_batch", "export", "fast", "quantize", "quantize_search"} <= rewrites
    models = {p.stem for p in (PACKAGE / "models").glob("*.py")}
    assert {"optimized", "blocked_layout"} <= models
    assert not models & {"dynamic_batch", "export", "quantize", "quantize_search", "loading"}


# The layers, lowest first. A module may import its own layer's modules and those of the
# layers below, never above (the layers contract of import-linter). Each name is a
# top-level module or package of alphacut.
LAYERS = [
    {"errors", "_system", "_extras", "_parallel", "options"},
    {"imagefile", "metrics"},
    {"storage", "models"},
    {"pipeline"},
    {"graphs"},
    {"pool"},
    {"batch", "video"},
    {"remover", "recipe"},
    {"engines", "evaluate", "api", "ray"},
    {"server", "cli", "bench", "__init__", "__main__"},
]


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Each import of a higher layer, and each circle between top-level parts."""
    rank = {name: index for index, layer in enumerate(LAYERS) for name in layer}
    found = []
    parts: dict[str, set[str]] = {}
    for module, targets in graph.items():
        for target in targets:
            source, goal = _part(module), _part(target)
            if source == goal:
                continue
            parts.setdefault(source, set()).add(goal)
            if rank[goal] > rank[source]:
                found.append(f"{module} imports {target}, a higher layer")
    found += [" -> ".join(cycle) for cycle in find_cycles(parts)]
    return found


def test_the_layers_are_kept() -> None:
    graph = import_graph()
    assert {_part(m) for m in graph} == set().union(*LAYERS)  # every part is placed
    assert layer_violations(graph) == []


def test_the_layer_check_finds_an_upward_import_and_a_circle() -> None:
    upward = {"alphacut.models.x": {"alphacut.remover"}, "alphacut.remover": set()}
    assert layer_violations(upward) == [
        "alphacut.models.x imports alphacut.remover, a higher layer"
    ]
    same_layer = {
        "alphacut.batch.a": {"alphacut.video.b"},
        "alphacut.video.b": {"alphacut.batch.c"},
    }
    assert layer_violations(same_layer) == ["batch -> video -> batch"]


#: Where the library may read the environment below its edges: each options type's
#: `from_env`, and two facts about this machine that others' variables decide (the cache
#: directory XDG names, and the CPU features oneDNN may use).
_ENV_READERS = {"from_env", "cache_home", "int8_dot_product", "default_model"}
_EDGES = {"cli", "server", "engines", "bench"}


def _env_reads(tree: ast.AST) -> list[tuple[str, int]]:
    """(innermost enclosing function or "<module>", line) of each os.environ or os.getenv."""

    def is_read(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv")

    enclosing: dict[int, str] = {}
    for function in ast.walk(tree):  # outer functions come first, so inner names win
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            enclosing.update({id(n): function.name for n in ast.walk(function) if is_read(n)})
    return [(enclosing.get(id(n), "<module>"), n.lineno) for n in ast.walk(tree) if is_read(n)]


def test_the_environment_is_read_only_in_from_env_below_the_edges() -> None:
    reads = []
    for module, path in _modules().items():
        if _part(module) in _EDGES:
            continue
        for function, line in _env_reads(ast.parse(path.read_text())):
            if function not in _ENV_READERS:
                reads.append(f"{module}:{line} in {function}()")
    assert reads == []
    sample = "import os\ndef choose():\n    return os.environ.get('X')\n"
    assert _env_reads(ast.parse(sample)) == [("choose", 3)]  # the scan sees a read
    assert _env_reads(ast.parse("import os\nX = os.getenv('X')\n")) == [("<module>", 2)]
