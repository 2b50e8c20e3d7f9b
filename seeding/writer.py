"""The bulk writer: persists built rows with PostgreSQL's COPY, parents before children.

Factories build ORM objects without a database; this module turns them into rows and streams
each table's rows through one ``COPY ... FROM STDIN``, inside the caller's transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from seeding.database import describe, driver_message
from seeding.errors import DatabaseError
from seeding.identifiers import identifier
from seeding.schema import APP_TABLES, Base


def _columns(table: sa.Table) -> list[tuple[str, str, bool]]:
    """Return (column name, attribute key, is jsonb) for each column of a mapped table."""
    mapper = next(m for m in Base.registry.mappers if m.local_table is table)
    return [
        (column.name, mapper.get_property_by_column(column).key, isinstance(column.type, JSONB))
        for column in table.columns
    ]


COLUMNS = {table.name: _columns(table) for table in APP_TABLES}


def row_values(row: Base) -> tuple[Any, ...]:
    """Return a row's values in its table's column order."""
    return tuple(getattr(row, key) for _, key, _ in COLUMNS[row.__table__.name])  # type: ignore[attr-defined]


def group_by_table(rows: Iterable[object]) -> dict[str, list[Base]]:
    """Return the rows grouped by table name, tables in write order (parents first)."""
    grouped: dict[str, list[Base]] = defaultdict(list)
    for row in rows:
        if not isinstance(row, Base):
            raise TypeError(f"not a row of the app's tables: {row!r}")
        grouped[row.__table__.name].append(row)  # type: ignore[attr-defined]
    return {table.name: grouped[table.name] for table in APP_TABLES if grouped.get(table.name)}


def copy_rows(connection: Connection, table: str, rows: Iterable[tuple[Any, ...]]) -> int:
    """COPY value tuples into one table (all its columns, in order); return how many.

    Raises:
        DatabaseError: When the database refuses the rows; the caller's transaction is then
            to be rolled back.

    """
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        identifier(table), sql.SQL(", ").join(identifier(name) for name, _, _ in COLUMNS[table])
    )
    json_at = [i for i, (_, _, is_json) in enumerate(COLUMNS[table]) if is_json]
    driver = connection.connection.driver_connection
    assert driver is not None
    count = 0
    try:
        with driver.cursor() as cursor:
            with cursor.copy(statement) as copy:
                for values in rows:
                    if json_at:
                        values = tuple(
                            Jsonb(v) if i in json_at and v is not None else v
                            for i, v in enumerate(values)
                        )
                    copy.write_row(values)
                    count += 1
    except sa.exc.DBAPIError as error:
        raise DatabaseError(f"writing {table} failed: {describe(error)}") from None
    except Exception as error:  # psycopg's own errors, raised outside SQLAlchemy
        first = driver_message(error)
        if first is None:
            raise
        raise DatabaseError(f"writing {table} failed: {first}") from None
    return count


def write(connection: Connection, rows: Iterable[object]) -> dict[str, int]:
    """Write built rows, table by table in dependency order; return the count per table."""
    counts: dict[str, int] = {}
    for table, table_rows in group_by_table(rows).items():
        counts[table] = copy_rows(connection, table, (row_values(row) for row in table_rows))
    return counts
