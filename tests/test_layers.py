"""The layers point one way, and no module imports itself back through others."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("seeding", "factories")

#: The layers, lowest first: a module imports only modules of its own layer or below.
#: Each entry is a module or a package (a package stands for everything under it).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("seeding.errors", "seeding.callbacks", "seeding._moved", "seeding.domain"),
    ("factories",),
    ("seeding.scenario",),
    ("seeding.db",),
    ("seeding.runner", "seeding.export", "seeding.doctor", "seeding.reset", "seeding.report"),
    ("seeding.testing", "seeding.cli", "seeding.pytest_plugin", "seeding"),
)

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


def _layer(module: str) -> int:
    """Return the layer of a module: the longest entry of LAYERS that holds it."""
    found = [(len(entry), index) for index, layer in enumerate(LAYERS) for entry in layer
             if module == entry or module.startswith(entry + ".")]
    assert found, f"{module} is in no layer of tests/test_layers.py: place it in LAYERS"
    return max(found)[1]


def test_every_module_imports_only_its_layer_or_below() -> None:
    for name, imports in _graph().items():
        if name == "seeding":  # the package's lazy entry points, at the top
            continue
        upward = sorted(m for m in imports if m != "seeding" and _layer(m) > _layer(name))
        assert not upward, f"{name} (layer {_layer(name)}) imports {upward}"


def test_the_layers_are_the_folders() -> None:
    """Every module of seeding sits in a layer, and the flat top holds only the commands."""
    top = sorted(p.stem for p in (ROOT / "seeding").glob("*.py") if p.stem != "__init__")
    assert top == ["_moved", "callbacks", "errors", "export", "pytest_plugin", "runner"]
    for name in _graph():
        _layer(name)
