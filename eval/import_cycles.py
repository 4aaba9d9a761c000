"""Import cycles between ``svac``'s modules, including the imports written inside functions.

Every ``import`` statement of every ``.py`` file under ``svac/`` is read with Python's own parser
(``ast``), wherever it stands: at module level, inside a function or method (run when called),
or under ``if TYPE_CHECKING:`` (never run). Each gives an edge ``importer -> imported module``
(``from svac.a import b`` points at ``svac.a.b`` when that is a module, else at ``svac.a``;
relative imports are resolved). A parent package that Python runs on the way is not an edge of
its own: only the module named counts, as in import-linter / grimp.

A cycle is counted two ways: the strongly connected groups of modules that import each other
(``groups``, the tangles to cut), and the elementary cycles inside them (``cycles``, every
distinct loop, capped at ``--limit``). The run-time graph (module level + function level) is the
one the issue counts; the type-only imports are reported apart.

Run::

    python eval/import_cycles.py              # counts and the groups of this checkout
    python eval/import_cycles.py --cycles     # and every elementary cycle (run-time graph)
    python eval/import_cycles.py --package /path/to/other/checkout/svac
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import networkx as nx

#: The library folder, beside this script's folder.
PACKAGE = Path(__file__).resolve().parents[1] / "svac"
#: Most elementary cycles enumerated per graph (the count is reported as ``>= limit`` beyond it).
DEFAULT_LIMIT = 100_000
#: Edge kinds: where the import statement stands.
KINDS = ("module", "function", "type_checking")


def module_names(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under ``package`` (packages by ``__init__``)."""
    root = package.parent
    names: dict[str, Path] = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module) -> list[tuple[ast.stmt, str]]:
    """Every import statement with its kind (see :data:`KINDS`)."""
    found: list[tuple[ast.stmt, str]] = []

    def visit(node: ast.AST, kind: str) -> None:
        for child in ast.iter_child_nodes(node):
            child_kind = kind
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and kind == "module":
                child_kind = "function"
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit_stmt(stmt, "type_checking")
                for stmt in child.orelse:
                    visit_stmt(stmt, kind)
                continue
            visit_stmt(child, child_kind)

    def visit_stmt(node: ast.AST, kind: str) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append((node, kind))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and kind == "module":
            visit(node, "function")
        else:
            visit(node, kind)

    visit(tree, "module")
    return found


def _targets(node: ast.stmt, importer: str, is_package: bool, known: dict[str, Path]) -> list[str]:
    """The svac modules one import statement names."""
    if isinstance(node, ast.Import):
        bases = [alias.name for alias in node.names]
        return [_known_prefix(b, known) for b in bases if _known_prefix(b, known)]
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        anchor = importer.split(".") if is_package else importer.split(".")[:-1]
        anchor = anchor[:len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    out = []
    for alias in node.names:
        full = f"{base}.{alias.name}"
        if full in known:
            out.append(full)
        elif _known_prefix(base, known):
            out.append(_known_prefix(base, known))
    return out


def _known_prefix(name: str, known: dict[str, Path]) -> str | None:
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            return candidate
        parts.pop()
    return None


def import_graph(package: Path = PACKAGE) -> dict[str, nx.DiGraph]:
    """The import graphs of ``package``: ``{"runtime": module + function level, "all": with type-only}``.

    Each edge carries ``kinds``, the set of :data:`KINDS` of the statements behind it, and
    ``lines``, their line numbers in the importer.
    """
    known = module_names(package)
    runtime, full = nx.DiGraph(), nx.DiGraph()
    for name in known:
        runtime.add_node(name)
        full.add_node(name)
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, kind in _imports(tree):
            for target in _targets(node, name, path.name == "__init__.py", known):
                if target == name:
                    continue
                graphs = (full,) if kind == "type_checking" else (runtime, full)
                for graph in graphs:
                    data = graph.get_edge_data(name, target) or {"kinds": set(), "lines": []}
                    data["kinds"].add(kind)
                    data["lines"].append(node.lineno)
                    graph.add_edge(name, target, **data)
    return {"runtime": runtime, "all": full}


def cycle_groups(graph: nx.DiGraph) -> list[list[str]]:
    """The strongly connected groups of more than one module, largest first (each sorted)."""
    groups = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    return sorted(groups, key=lambda g: (-len(g), g))


def count_cycles(graph: nx.DiGraph, limit: int = DEFAULT_LIMIT) -> tuple[int, list[list[str]]]:
    """``(number of elementary cycles, up to 50 of them)``; the number stops at ``limit``."""
    count, shown = 0, []
    for cycle in nx.simple_cycles(graph):
        count += 1
        if len(shown) < 50:
            shown.append(cycle)
        if count >= limit:
            break
    return count, shown


def main(argv: list[str] | None = None) -> int:
    """Print the counts (and with ``--cycles`` the cycles); exit code 1 when the run-time graph has a cycle."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", type=Path, default=PACKAGE, help="the svac folder to measure")
    parser.add_argument("--cycles", action="store_true", help="print the elementary cycles (up to 50)")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="stop counting cycles here")
    args = parser.parse_args(argv)
    graphs = import_graph(args.package.resolve())
    runtime = graphs["runtime"]
    print(f"{args.package.resolve()}: {runtime.number_of_nodes()} modules, {runtime.number_of_edges()} run-time "
          f"import edges ({sum('function' in d['kinds'] for *_, d in runtime.edges(data=True))} with a "
          f"function-level import)")
    status = 0
    for label, graph in (("run-time (module + function level)", runtime),
                         ("with type-only (TYPE_CHECKING) imports", graphs["all"])):
        groups = cycle_groups(graph)
        count, shown = count_cycles(graph, args.limit)
        more = "+" if count >= args.limit else ""
        print(f"{label}: {count}{more} cycles in {len(groups)} groups")
        for group in groups:
            print(f"  group of {len(group)}: {' '.join(group)}")
        if args.cycles:
            for cycle in shown:
                edges = zip(cycle, cycle[1:] + cycle[:1])
                print("    " + " -> ".join(f"{a}[{','.join(sorted(graph.edges[a, b]['kinds']))}]"
                                           for a, b in edges) + f" -> {cycle[0]}")
        if label.startswith("run-time") and count:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
