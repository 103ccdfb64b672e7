"""Import cycles between the project's units, counting imports inside functions.

A unit is a subpackage or top-level module of ``lt_faceparse`` (``lt_faceparse.engine``,
``lt_faceparse.records``), or the top-level packages ``segface`` and ``baselines``. Every
``import``/``from ... import`` statement between two units is an edge, wherever it sits in the file.
Prints the import counts (total, inside functions) and each cycle (strongly connected component of
more than one unit) with the edges that close it. Exit status 1 when a cycle exists.

Usage: python scripts/import_cycles.py [repository root]
"""
from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOTS = ("lt_faceparse", "segface", "baselines")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def unit_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] not in ROOTS:
        return None
    if parts[0] != "lt_faceparse" or len(parts) == 1:
        return parts[0]
    return ".".join(parts[:2])


def imported_modules(node: ast.AST, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    return [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]


def collect(root: Path) -> tuple[dict[tuple[str, str], list[str]], int, int]:
    """(unit edges -> 'file:line' places, project imports, project imports inside functions)."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    total = inside = 0
    for package in ROOTS:
        for path in sorted((root / package).rglob("*.py")):
            module = module_name(path, root)
            source_unit = unit_of(module)
            tree = ast.parse(path.read_text(), str(path))
            function_nodes: set[int] = set()
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    function_nodes.update(id(inner) for inner in ast.walk(node) if inner is not node)
            for node in ast.walk(tree):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                targets = {unit_of(name) for name in imported_modules(node, module, path.name == "__init__.py")}
                targets.discard(None)
                if not targets:
                    continue
                total += 1
                inside += id(node) in function_nodes
                # "from lt_faceparse import records" names the unit lt_faceparse.records, not the package
                if len(targets) > 1:
                    targets.discard("lt_faceparse")
                for target in targets:
                    if target != source_unit:
                        edges[(source_unit, target)].append(f"{path.relative_to(root)}:{node.lineno}")
    return edges, total, inside


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [component for component in components if len(component) > 1]


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    edges, total, inside = collect(root)
    graph: dict[str, set[str]] = defaultdict(set)
    for source, target in edges:
        graph[source].add(target)
        graph.setdefault(target, set())
    cycles = strongly_connected(graph)
    print(f"{total} import statements between units' modules ({inside} inside functions)")
    print(f"{len(cycles)} import cycle(s) between units (counting imports inside functions)")
    for component in cycles:
        print(f"cycle of {len(component)} units: {', '.join(component)}")
        members = set(component)
        for (source, target), places in sorted(edges.items()):
            if source in members and target in members:
                print(f"  {source} -> {target}: {', '.join(places)}")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
