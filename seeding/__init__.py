"""seeding: coherent test data for the mechanic marketplace's PostgreSQL (Supabase) database.

The library's entry points are the calls the ``seed`` command and the pytest plugin make:
:func:`run_scenario` (``seed scenario``), :func:`export_scenario` (``seed export``),
:func:`reset_database` (``seed reset``),
:func:`build_report` (``seed report``; ``seeding.report.measure.measure`` opens the database),
:func:`diagnose` and :func:`apply_fixes`
(``seed db doctor``), :func:`create_schema` (``seed db create``). Every error they raise on
purpose is a :class:`SeedingError`.

Only the errors load with the package: ``import factories`` (which needs them) loads no
database, server or CLI code. The rest loads on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from seeding import _moved
from seeding.errors import (
    ConfigurationError,
    DatabaseError,
    FactoryRuleError,
    ResetBlockedError,
    ScenarioError,
    SchemaError,
    SchemaMismatchError,
    SeedingError,
)

_moved.install()  # the module paths of before the folders (seeding.database, ...) keep working

if TYPE_CHECKING:
    from seeding.db.database import Target, create_schema, engine_for, normalize_url, resolve
    from seeding.db.guard import Endpoint, ensure_writable
    from seeding.doctor import apply_fixes, diagnose
    from seeding.export import export_scenario
    from seeding.report import build_report
    from seeding.reset import reset_database
    from seeding.runner import run_scenario

#: Where each lazily loaded name lives.
_LAZY = {
    "Endpoint": "seeding.db.guard",
    "ensure_writable": "seeding.db.guard",
    "Target": "seeding.db.database",
    "create_schema": "seeding.db.database",
    "engine_for": "seeding.db.database",
    "normalize_url": "seeding.db.database",
    "resolve": "seeding.db.database",
    "run_scenario": "seeding.runner",
    "export_scenario": "seeding.export",
    "reset_database": "seeding.reset",
    "build_report": "seeding.report",
    "diagnose": "seeding.doctor",
    "apply_fixes": "seeding.doctor",
}

__all__ = [
    "ConfigurationError",
    "DatabaseError",
    "Endpoint",
    "FactoryRuleError",
    "ResetBlockedError",
    "ScenarioError",
    "SchemaError",
    "SchemaMismatchError",
    "SeedingError",
    "Target",
    "apply_fixes",
    "build_report",
    "create_schema",
    "diagnose",
    "engine_for",
    "ensure_writable",
    "export_scenario",
    "normalize_url",
    "reset_database",
    "resolve",
    "run_scenario",
]


def __getattr__(name: str) -> Any:
    """Load an entry point on first use (PEP 562)."""
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'seeding' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
