"""The import graph of ``src/movierec`` has no cycle and no upward import.

The graph is read from the source with :mod:`ast` (nothing is imported, so lazy
imports inside functions count as much as those at the top; imports under
``if TYPE_CHECKING:`` name types for annotations only and are left out). The layers are the
table under "## Layers" in ``docs/architecture.md``, top layer first: that table is
the one place they are written, and this test holds the code to it.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "movierec"
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` outside ``if TYPE_CHECKING:`` blocks."""
    nodes, todo = [], [tree]
    while todo:
        node = todo.pop()
        nodes.append(node)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return nodes


def import_graph() -> dict[str, set[str]]:
    """For each module, the package modules it imports anywhere in its source."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.split(".")[0] == "movierec")
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: package.count(".") + 2 - node.level]
                    source = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    source = node.module or ""
                if source.split(".")[0] != "movierec":
                    continue
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    targets.add(submodule if submodule in known else source)
        unknown = targets - set(known)
        assert not unknown, f"{name} imports {sorted(unknown)}, which do not exist"
        graph[name] = targets - {name}
    return graph


def layers() -> list[list[str]]:
    """The layers of docs/architecture.md, top first: each the units named in backticks
    in the second column of its row (a unit is ``movierec`` itself or a name below it)."""
    text = ARCHITECTURE.read_text()
    section = text.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    assert rows, "no layer table under ## Layers in docs/architecture.md"
    return [re.findall(r"`([\w.]+)`", row.split("|")[2]) for row in rows]


def unit(module: str) -> str:
    """The layer unit a module belongs to: ``movierec.data.splits`` -> ``data``."""
    parts = module.split(".")
    return "movierec" if len(parts) == 1 else parts[1]


def test_every_unit_is_in_exactly_one_layer():
    listed = [u for layer in layers() for u in layer]
    assert len(listed) == len(set(listed)), "a unit is in two layers"
    assert {unit(m) for m in modules()} == set(listed)


def against_layers(graph: dict[str, set[str]], order: list[list[str]]) -> list[str]:
    """Each import of a higher layer or of another unit of the same layer, as
    "module -> target"."""
    rank = {u: i for i, layer in enumerate(order) for u in layer}
    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if unit(module) != unit(target) and rank[unit(target)] <= rank[unit(module)]
    )


def test_no_import_goes_up_or_sideways_across_layers():
    """A module imports its own unit and lower layers only: nothing in a higher layer,
    nor another unit of its own layer (retrieval and ranking never import each other)."""
    wrong = against_layers(import_graph(), layers())
    assert not wrong, "imports against the layers of docs/architecture.md:\n" + "\n".join(wrong)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_cycle():
    assert cycles(import_graph()) == []


def test_the_checks_see_cycles_wrong_imports_and_lazy_imports():
    """The checks can fail: a planted cycle and planted wrong imports are found, and an
    import inside a function is an edge."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    order = [["cli"], ["retrieval", "ranking"], ["data"]]
    graph = {
        "movierec.data.x": {"movierec.cli.main"},  # up
        "movierec.ranking.y": {"movierec.retrieval.z", "movierec.data.x"},  # sideways; down
        "movierec.cli.main": {"movierec.ranking.y"},  # down
    }
    assert against_layers(graph, order) == [
        "movierec.data.x -> movierec.cli.main",
        "movierec.ranking.y -> movierec.retrieval.z",
    ]
    assert "movierec.atomic" in import_graph()["movierec.models.catalogue"]
    assert "movierec.api" in import_graph()["movierec"]  # imported inside __getattr__


def test_importing_movierec_loads_neither_testing_nor_pytest():
    code = "import movierec, sys; print(sorted({'pytest', 'movierec.testing'} & set(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)},
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("module", ["movierec.testing", "movierec.testing.contract"])
def test_testing_needs_no_pytest(module):
    """movierec.testing runs without pytest (a model kept elsewhere may use another runner)."""
    code = f"import sys; sys.modules['pytest'] = None; import {module}"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
