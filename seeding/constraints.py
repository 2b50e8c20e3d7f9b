"""Foreign keys set aside during a bulk write or delete, and put back in the same transaction.

PostgreSQL checks a foreign key row by row: each row written looks up its parent, and each
row deleted scans its children's table (the app has no index on most referencing columns, so
deleting a million rows would take hours). Dropped before the bulk statement and added back
after it, a key checks every row in one pass. Both happen inside the caller's transaction:
the keys are never missing for anyone else, and a failed run restores them with the rest.
The price is a lock on the tables for the transaction, which a bulk run holds anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from seeding.schema import APP_TABLES

#: Bulk statements of at least this many rows set the foreign keys aside.
BULK_ROWS = 10_000

#: The app's tables, schema-qualified.
APP = tuple(f"public.{table.name}" for table in APP_TABLES)


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key as the live database defines it."""

    table: str
    name: str
    definition: str


def drop_foreign_keys(connection: sa.Connection, tables: Sequence[str] = APP) -> list[ForeignKey]:
    """Drop the foreign keys of these tables (``schema.name``); return them to add back."""
    keys = [
        ForeignKey(table=table, name=name, definition=definition)
        for table, name, definition in connection.execute(
            sa.text(
                "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) "
                "FROM pg_constraint c WHERE c.contype = 'f' AND c.conrelid = ANY("
                "SELECT to_regclass(n) FROM unnest(CAST(:tables AS text[])) n) ORDER BY 1, 2"
            ),
            {"tables": list(tables)},
        ).all()
    ]
    for key in keys:
        connection.execute(sa.text(f'ALTER TABLE {key.table} DROP CONSTRAINT "{key.name}"'))
    return keys


def add_foreign_keys(connection: sa.Connection, keys: Sequence[ForeignKey]) -> None:
    """Add back keys dropped by :func:`drop_foreign_keys`; each checks every row once."""
    for key in keys:
        connection.execute(
            sa.text(f'ALTER TABLE {key.table} ADD CONSTRAINT "{key.name}" {key.definition}')
        )
