"""The house's rules, checked on the source tree: no import cycle between modules of
``src/hypnoscope`` (imports inside functions count), no function longer than 120 lines,
few modules beside the subpackages. The layer contract itself is ``.importlinter``
(``make lint``)."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

SRC = Path(__file__).resolve().parents[1] / "src" / "hypnoscope"
MAX_FUNCTION_LINES = 120
MAX_TOP_LEVEL_MODULES = 12


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = len(index)
                stack.append(v)
                on_stack.add(v)
            for k in range(i, len(edges[v])):
                w = edges[v][k]
                if w not in index:
                    work.append((v, k + 1))
                    work.append((w, 0))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[v])
    return found


def _package_inits_dropped(graph) -> grimp.ImportGraph:
    """The graph without the edges into package ``__init__`` modules (a package's public
    face re-exports from below; importing it is importing those modules)."""
    packages = {m for m in graph.modules
                if (SRC.parent / m.replace(".", "/") / "__init__.py").is_file()}
    for pkg in packages:
        for importer in list(graph.find_modules_that_directly_import(pkg)):
            graph.remove_import(importer=importer, imported=pkg)
    return graph


def test_no_import_cycles():
    graph = _package_inits_dropped(grimp.build_graph("hypnoscope",
                                                     exclude_type_checking_imports=True))
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for m in ("p.a", "p.b", "p.c"):
        graph.add_module(m)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.a")
    graph.add_import(importer="p.b", imported="p.c")
    assert _cycles(graph) == [["p.a", "p.b"]]


def test_no_function_longer_than_the_cap():
    long = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({n} lines)")
    assert long == []


def test_few_modules_beside_the_subpackages():
    modules = sorted(p.name for p in SRC.glob("*.py"))
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, modules
    assert {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()} >= {
        "cli", "io", "signal", "staging", "models", "training", "evaluation", "simulate",
        "live", "viz"}
