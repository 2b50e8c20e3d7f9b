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
from psycopg import sql

from seeding.catalog import read_catalog
from seeding.identifiers import execute, identifier
from seeding.schema import APP_TABLES

#: Bulk statements of at least this many rows set the foreign keys aside.
BULK_ROWS = 10_000

#: The app's tables, as (schema, table).
APP = tuple(("public", table.name) for table in APP_TABLES)


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key as the live database defines it."""

    #: The schema and name of the key's table, as the catalog has them (unquoted).
    schema: str
    table: str
    #: The key's name, as the catalog has it: any text, quoted wherever it goes into SQL.
    name: str
    #: ``pg_get_constraintdef``: SQL written by the server, its names quoted by it.
    definition: str


def drop_foreign_keys(
    connection: sa.Connection, tables: Sequence[tuple[str, str]] = APP
) -> list[ForeignKey]:
    """Drop the foreign keys of these tables (schema, table); return them to add back.

    The keys are read from the live catalog (:mod:`seeding.catalog`), in schema, table and
    name order.
    """
    wanted = set(tables)
    catalog = read_catalog(connection, sorted({schema for schema, _ in wanted}))
    keys = sorted(
        (
            ForeignKey(schema=key.schema, table=key.table, name=key.name,
                       definition=key.definition)
            for table in catalog.tables.values()
            if (table.schema, table.name) in wanted
            for key in table.foreign_keys
        ),
        key=lambda key: (key.schema, key.table, key.name),
    )
    for key in keys:
        execute(
            connection,
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                identifier(key.schema, key.table), identifier(key.name)
            ),
        )
    return keys


def add_foreign_keys(connection: sa.Connection, keys: Sequence[ForeignKey]) -> None:
    """Add back keys dropped by :func:`drop_foreign_keys`; each checks every row once."""
    for key in keys:
        execute(
            connection,
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                identifier(key.schema, key.table), identifier(key.name), sql.SQL(key.definition)
            ),
        )
