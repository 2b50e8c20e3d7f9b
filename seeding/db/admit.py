"""The statements that admit values a live enum or list CHECK lacks.

One place for what ``seed db doctor --apply`` runs and what a run's preflight prints as the
fix: an enum gets its missing labels, a one-column list CHECK is dropped and added back,
by its own name, listing what it allowed and what the tool writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from seeding.db.catalog import Check
from seeding.db.identifiers import shown


def literal(value: str) -> str:
    """Return a text value as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def enum_labels_added(schema: str, enum: str, values: Iterable[str]) -> tuple[str, ...]:
    """Return one ``ALTER TYPE ... ADD VALUE IF NOT EXISTS`` per value."""
    name = shown(schema, enum)
    return tuple(f"ALTER TYPE {name} ADD VALUE IF NOT EXISTS {literal(v)};" for v in values)


def check_widened(schema: str, table: str, check: Check, column: str,
                  allowed: Sequence[str], adding: Sequence[str]) -> str:
    """Return the statement replacing a list CHECK by one that also admits ``adding``.

    A CHECK that was ``NOT VALID`` stays so: widening keeps every row it admitted.
    """
    listed = ", ".join(literal(value) for value in (*allowed, *adding))
    name = shown(check.name)
    not_valid = "" if check.validated else " NOT VALID"
    return (
        f"ALTER TABLE {shown(schema, table)} DROP CONSTRAINT {name}, "
        f"ADD CONSTRAINT {name} CHECK ({shown(column)} IN ({listed})){not_valid};"
    )
