"""The import structure: imports go one way (cli -> jobs -> plug-ins -> engine -> data) and never in a
circle, and the data layer imports no deep-learning framework.

Built on grimp (the graph library under import-linter), with every import counted, also those inside
functions (lazy imports keep JAX out of light commands but still point one way) and excluding only
``if TYPE_CHECKING:`` imports, which never run.
"""

from __future__ import annotations

import grimp
import pytest

PACKAGES = ("nasx", "search_spaces", "solvers")
FRAMEWORKS = ("jax", "jaxlib", "flax", "optax", "orbax", "ray")

DATA = (
    "nasx.space",
    "nasx.costs",
    "nasx.budget",
    "nasx.pareto",
    "nasx.stats",
    "nasx.errors",
    "nasx.space_family",
    "nasx.version",
)
"""Data-layer modules of nasx; with them: every family's spec modules and all of ``solvers``."""
FAMILY_DATA = ("spec", "skeletons", "blocks")
"""Modules of a family package (search_spaces.<family>.<name>) that belong to the data layer."""

LAYERS = ("data", "engine", "plug-ins", "jobs", "cli")


def layer(module: str) -> str:
    """The layer of a first-party module."""
    parts = module.split(".")
    if parts[0] == "solvers" or module in DATA:
        return "data"
    if parts[0] == "search_spaces":
        return "data" if len(parts) == 3 and parts[2] in FAMILY_DATA else "plug-ins"
    if module == "nasx" or parts[1] == "jobs":
        return "jobs"  # the public API (nasx/__init__) re-exports the jobs
    if parts[1] == "cli":
        return "cli"
    return "engine"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(
        *PACKAGES, include_external_packages=True, exclude_type_checking_imports=True, cache_dir=None
    )


def _first_party(graph: grimp.ImportGraph) -> list[str]:
    return sorted(m for m in graph.modules if m.split(".")[0] in PACKAGES)


def upward_imports(graph: grimp.ImportGraph) -> list[str]:
    """Every import from a lower layer into a higher one, as ``"a (layer) -> b (layer), line N"``."""
    out = []
    for importer in _first_party(graph):
        for imported in graph.find_modules_directly_imported_by(importer):
            if imported.split(".")[0] not in PACKAGES:
                continue
            low, high = layer(importer), layer(imported)
            if LAYERS.index(high) > LAYERS.index(low):
                lines = graph.get_import_details(importer=importer, imported=imported)
                where = ", ".join(str(d["line_number"]) for d in lines)
                out.append(f"{importer} ({low}) -> {imported} ({high}), line {where}")
    return out


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    nodes = _first_party(graph)
    edges = {
        m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i.split(".")[0] in PACKAGES)
        for m in nodes
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if i < len(edges[node]):
                work.append((node, i + 1))
                nxt = edges[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    component.append(m)
                    if m == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def test_imports_go_one_way(graph: grimp.ImportGraph) -> None:
    assert upward_imports(graph) == []


def test_no_import_cycles(graph: grimp.ImportGraph) -> None:
    assert cycles(graph) == []


def test_data_layer_imports_no_framework(graph: grimp.ImportGraph) -> None:
    data = [m for m in _first_party(graph) if layer(m) == "data"]
    assert "nasx.space" in data and "solvers.mp.solver" in data and "search_spaces.resnet.spec" in data
    bad = [
        f"{m} -> {i}"
        for m in data
        for i in graph.find_modules_directly_imported_by(m)
        if i.split(".")[0] in FRAMEWORKS
    ]
    assert bad == []


def test_only_the_cli_package_knows_every_command(graph: grimp.ImportGraph) -> None:
    """Command modules import no other command module (shared helpers live in nasx.cli._args)."""
    commands = [
        m
        for m in _first_party(graph)
        if m.startswith("nasx.cli.") and m not in ("nasx.cli._args", "nasx.cli.__main__")
    ]
    crossing = [
        f"{m} -> {i}"
        for m in commands
        for i in graph.find_modules_directly_imported_by(m)
        if i == "nasx.cli" or (i.startswith("nasx.cli.") and i not in ("nasx.cli._args", m))
    ]
    assert crossing == []


def test_the_checks_catch_violations() -> None:
    """The checks above fail on a deliberate violation (an engine module importing the CLI, a cycle)."""
    graph = grimp.build_graph(
        *PACKAGES, include_external_packages=True, exclude_type_checking_imports=True, cache_dir=None
    )
    graph.add_import(importer="nasx.supernet", imported="nasx.cli.search")
    graph.add_import(importer="nasx.costs", imported="nasx.budget")  # budget imports costs: a cycle
    assert any(v.startswith("nasx.supernet (engine) -> nasx.cli.search (cli)") for v in upward_imports(graph))
    assert ["nasx.budget", "nasx.costs"] in [c for c in cycles(graph) if len(c) == 2] or any(
        {"nasx.budget", "nasx.costs"} <= set(c) for c in cycles(graph)
    )


def test_the_package_reexports_every_job() -> None:
    """``nasx.run_search`` etc.: every job and request of `nasx.jobs` is reachable from `nasx`."""
    import nasx
    import nasx.jobs

    assert "run_search" in nasx.jobs.__all__ and not hasattr(nasx, "run_folder_of_nothing")
    assert all(getattr(nasx, name) is getattr(nasx.jobs, name) for name in nasx.jobs.__all__)
