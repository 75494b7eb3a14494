"""The package's shape, as the issues measure it: no import circle among resdsl's modules (lazy
imports inside functions included), and no module over 800 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parent.parent / "resdsl"
MAX_LINES = 800


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> nx.DiGraph:
    """Each module's arrows to the modules it imports from the package, at any depth."""
    graph = nx.DiGraph()
    for path in PACKAGE.rglob("*.py"):
        module = _module(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        graph.add_node(module)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                for name in [target] if node.module else [f"{target}.{a.name}" for a in node.names]:
                    graph.add_edge(module, name)
            elif isinstance(node, ast.Import):
                graph.add_edges_from((module, a.name) for a in node.names if a.name == "resdsl")
    return graph


def test_the_import_graph_reads_its_own_package():
    graph = imports()
    assert ("resdsl.importer", "resdsl.structure") in graph.edges
    assert ("resdsl.sources", "resdsl.targets.tf") in graph.edges  # lazy: inside keras_child


def test_no_module_imports_itself_through_others():
    """No circle: an arrow back up (a target importing the importer, say) would make one."""
    graph = imports()
    graph.remove_nodes_from(["resdsl"])  # the package's own __init__ gathers the API
    circles = [c for c in nx.simple_cycles(graph) if len(c) > 1]
    assert circles == []


def test_no_module_is_over_800_lines():
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
