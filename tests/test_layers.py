"""The layers point one way, and no module imports itself back through others."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("seeding", "factories")

#: What the factories may import of seeding: the domain facts and the models.
DOMAIN = {
    "seeding", "seeding.errors", "seeding.geography", "seeding.contacts", "seeding.schema",
    "seeding.vocabularies", "seeding.lifecycle", "seeding.plans", "seeding.mechanic_types",
    "seeding.rhythm",
}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):  # type-only imports included
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                    + ([base] if base else []))
                # A submodule imported by name is an edge to it; any other name, to its module.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def test_no_import_cycle() -> None:
    graph = _graph()
    seen: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(name: str, path: list[str]) -> None:
        seen[name] = 1
        for other in sorted(graph[name]):
            if other == "seeding":  # the package's lazy __init__ imports errors only
                continue
            assert seen.get(other) != 1, " -> ".join([*path, name, other])
            if other not in seen:
                visit(other, [*path, name])
        seen[name] = 2

    for name in sorted(graph):
        if name not in seen:
            visit(name, [])


def test_the_factories_import_only_domain_facts_of_seeding() -> None:
    graph = _graph()
    for name, imports in graph.items():
        if name.startswith("factories"):
            outside = {m for m in imports if m.startswith("seeding")} - DOMAIN
            assert not outside, f"{name} imports {sorted(outside)}"
