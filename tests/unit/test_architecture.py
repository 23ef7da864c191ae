"""The shape of the code: no import cycles between modules or packages, and each engine
imported only where it belongs. The graph (grimp) holds every import of every module,
those inside functions and under TYPE_CHECKING included: a cycle hidden in a function
is still a cycle."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grimp
import pytest

PACKAGE = "skewless"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, include_external_packages=True, cache_dir=None)


def _own(graph: grimp.ImportGraph) -> list[str]:
    return sorted(m for m in graph.modules if m == PACKAGE or m.startswith(PACKAGE + "."))


def _cycles(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
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
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_architecture_cycles_finds_a_cycle() -> None:
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    assert _cycles({"a": ["b"], "b": []}) == []


def test_architecture_no_import_cycle_between_modules(graph: grimp.ImportGraph) -> None:
    own = _own(graph)
    edges = {m: [i for i in graph.find_modules_directly_imported_by(m) if i in own] for m in own}
    assert _cycles(edges) == []


def _package(module: str) -> str:
    """skewless.serving.plan -> skewless.serving; skewless.feature_store stays."""
    return ".".join(module.split(".")[:2])


def test_architecture_no_import_cycle_between_packages(graph: grimp.ImportGraph) -> None:
    own = _own(graph)
    edges: dict[str, set[str]] = {}
    for m in own:
        for i in graph.find_modules_directly_imported_by(m):
            if i in own and _package(i) != _package(m):
                edges.setdefault(_package(m), set()).add(_package(i))
    assert _cycles(edges) == []


@pytest.mark.parametrize(
    ("engine", "allowed"),
    [
        ("pyspark", ("skewless.batch",)),
        ("delta", ("skewless.batch",)),
        ("grpc", ("skewless.grpc", "skewless.client", "skewless._proto", "skewless.cli")),
        ("redis", ("skewless.online",)),
        ("starlette", ("skewless.http",)),
        ("uvicorn", ("skewless.http",)),
    ],
)
def test_architecture_engines_are_imported_only_where_they_belong(
    engine: str, allowed: tuple[str, ...]
) -> None:
    # Imports under TYPE_CHECKING carry no code: a module may name an engine's types.
    graph = grimp.build_graph(
        PACKAGE, include_external_packages=True, exclude_type_checking_imports=True, cache_dir=None
    )
    importers = graph.find_modules_that_directly_import(engine)
    outside = sorted(m for m in importers if not m.startswith(allowed))
    assert outside == []


def test_architecture_rules_import_no_engine(graph: grimp.ImportGraph) -> None:
    """The rules both paths obey are written once, engine-free."""
    rules = [m for m in _own(graph) if m.startswith(f"{PACKAGE}.rules")]
    engines = {"pyspark", "delta", "grpc", "redis", "pandas", "pyarrow"}
    imported = {i.split(".")[0] for m in rules for i in graph.find_modules_directly_imported_by(m)}
    assert imported & engines == set()
