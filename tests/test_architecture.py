"""Guards of the package's shape: layers, no import cycles, modules readable in one sitting.

The import graph is read with ``ast`` from every module of ``seeknal_spark``, lazy imports
(inside functions, under ``TYPE_CHECKING``) included. Layers follow the data's path; a
module imports only its own layer and the layers before it:

    base (errors, session, _timestamps, _progress, _requirements) -> definitions -> store
    -> offline -> online -> training -> monitoring -> app -> example -> interfaces

``online`` sits before ``training``: the export takes typed snapshots and knows nothing
of ``HistoricalFeatures``, whose ``serve`` is a thin call into it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "seeknal_spark"
LAYERS = [
    "base",
    "definitions",
    "store",
    "offline",
    "online",
    "training",
    "monitoring",
    "app",
    "example",
    "interfaces",
]
BASE = {"errors", "session", "_timestamps", "_progress", "_requirements", "_executors", "_version"}
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The package module ``name`` refers to (itself or its closest module parent)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            pytest.fail(f"{module}: relative import; use absolute seeknal_spark imports")
        for name in names:
            if name == "seeknal_spark" or name.startswith("seeknal_spark."):
                target = _resolve(name)
                if target is not None and target != module:
                    found.add(target)
    return found


GRAPH = {module: _imports(module) for module in MODULES}


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return len(LAYERS)  # the top package re-exports everything: above all
    head = parts[1]
    if head in BASE:
        return 0
    if head not in LAYERS:
        pytest.fail(f"{module}: not in any layer; place it in one of {LAYERS[1:]} or the base")
    return LAYERS.index(head)


def test_every_module_sits_in_a_layer_and_imports_only_its_own_or_earlier_layers() -> None:
    problems = []
    for module, targets in GRAPH.items():
        for target in targets:
            if target == "seeknal_spark" and (
                _layer(module) >= LAYERS.index("example")
                or module == "seeknal_spark._executors"
            ):
                continue  # the CLI and the example name the package (its version); the
                # executor preflight imports it on an executor, which is its purpose
            if _layer(target) > _layer(module):
                problems.append(f"{module} imports {target} (a later layer)")
    assert not problems, "\n".join(sorted(problems))


def test_no_import_cycles_lazy_imports_included() -> None:
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            if nxt == "seeknal_spark":
                continue
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(cycles)


def test_online_knows_nothing_of_training_the_app_or_interfaces() -> None:
    forbidden = ("training", "monitoring", "app", "interfaces", "example")
    bad = [
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if module.startswith(("seeknal_spark.online", "seeknal_spark.offline"))
        for target in targets
        if target.split(".")[1:2] and target.split(".")[1] in forbidden
    ]
    assert not bad, "\n".join(bad)


def test_modules_are_readable_in_one_sitting() -> None:
    long = {
        module: n
        for module, path in MODULES.items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_graph_sees_lazy_imports() -> None:
    """The guard itself: an import inside a function body is an edge of the graph."""
    assert "seeknal_spark.store.feature_store" in GRAPH["seeknal_spark.store.feature_group"]
