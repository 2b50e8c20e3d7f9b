"""The module paths of before the folders, kept working: ``seeding.database`` and the rest.

Until the package was split into folders (``domain/``, ``scenario/``, ``db/``, ``testing/``),
its modules sat side by side: ``seeding.database``, ``seeding.plan``, ``seeding.testserver``.
Code that imports one of those paths gets the module that now holds it, the same module
object (``seeding.database is seeding.db.database``), so private names and monkeypatching
keep working too. New code imports the new paths; type checkers know only those.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Final

#: An old module path → the module that holds it now.
MOVED: Final[dict[str, str]] = {
    **{f"seeding.{name}": f"seeding.domain.{name}" for name in (
        "vocabularies", "plans", "lifecycle", "mechanic_types", "geography", "contacts",
        "quotas", "rhythm", "schema", "integrity")},
    **{f"seeding.{name}": f"seeding.scenario.{name}" for name in (
        "kinds", "reference", "targets", "plan", "timeshift")},
    "seeding.scenario_file": "seeding.scenario.files",
    "seeding.build": "seeding.scenario.builder",
    **{f"seeding.{name}": f"seeding.db.{name}" for name in (
        "guard", "embedded", "database", "identifiers", "catalog", "admit", "constraints", "fit",
        "writer", "holders", "auth", "ledger", "tiles", "variants")},
    "seeding.measure": "seeding.report.measure",
    "seeding.testserver": "seeding.testing.server",
    "seeding.personas": "seeding.testing.personas",
}


class _Alias(importlib.abc.Loader):
    """Load an old path as the module that holds it now."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.own: tuple[object, object] = (None, None)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self.own = (module.__spec__, module.__loader__)
        return module

    def exec_module(self, module: ModuleType) -> None:
        # Between the two calls the import system set the module's __spec__ and __loader__ to
        # the old path's: give it back its own, so that it stays one module under two names.
        module.__spec__, module.__loader__ = self.own  # type: ignore[assignment]


class MovedFinder(importlib.abc.MetaPathFinder):
    """Find an old module path (:data:`MOVED`) and alias it to its new module."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        moved = MOVED.get(fullname)
        if moved is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(moved))


def install() -> None:
    """Put the finder on ``sys.meta_path`` once."""
    if not any(isinstance(finder, MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedFinder())
