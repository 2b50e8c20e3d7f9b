"""The bulk writer: persists built rows with PostgreSQL's COPY, parents before children.

Factories build ORM objects without a database; this module turns them into rows and streams
each table's rows through one ``COPY ... FROM STDIN``, inside the caller's transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from seeding.db.catalog import Table
from seeding.db.database import describe, driver_message
from seeding.db.fit import Fit, TableFit
from seeding.db.identifiers import execute, identifier
from seeding.domain.schema import APP_TABLES, Base
from seeding.errors import DatabaseError


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
    """COPY value tuples into one table of the tool's schema (all its columns, in order).

    Raises:
        DatabaseError: When the database refuses the rows; the caller's transaction is then
            to be rolled back.

    """
    columns = [name for name, _, _ in COLUMNS[table]]
    json_at = frozenset(i for i, (_, _, is_json) in enumerate(COLUMNS[table]) if is_json)
    return copy_values(connection, ("public", table), columns, rows, json_at=json_at)


def copy_values(
    connection: Connection, table: tuple[str, str], columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]], *, json_at: frozenset[int] = frozenset(),
) -> int:
    """COPY value tuples into (schema, table)'s columns; return how many rows.

    Raises:
        DatabaseError: When the database refuses the rows; the caller's transaction is then
            to be rolled back.

    """
    shown_name = table[1] if table[0] == "public" else ".".join(table)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        identifier(*table), sql.SQL(", ").join(identifier(name) for name in columns)
    )
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
        raise DatabaseError(f"writing {shown_name} failed: {describe(error)}") from None
    except Exception as error:  # psycopg's own errors, raised outside SQLAlchemy
        first = driver_message(error)
        if first is None:
            raise
        raise DatabaseError(f"writing {shown_name} failed: {first}") from None
    return count


def write(connection: Connection, rows: Iterable[object], fit: Fit | None = None
          ) -> dict[str, int]:
    """Write built rows, table by table in dependency order; return the count per table.

    Without a fit, every column of the tool's schema is written. With one, each table gets
    the columns and values the fit says; a table whose rows the app makes first (a profile
    its auth trigger made) is written over.
    """
    counts: dict[str, int] = {}
    for table, table_rows in group_by_table(rows).items():
        if fit is None:
            counts[table] = copy_rows(connection, table, (row_values(r) for r in table_rows))
            continue
        fitted = fit.tables[table]
        values = (fitted.values(row) for row in table_rows)
        if fitted.upsert_on is not None:
            counts[table] = upsert_values(connection, fitted, values)
        else:
            counts[table] = copy_values(
                connection, (fitted.schema, fitted.name), fitted.columns, values,
                json_at=_json_at(fitted.types),
            )
    return counts


def record_columns(live_table: Table, record: Mapping[str, Any]) -> list[str]:
    """Return the columns of a record (values by column) that a live table has and takes.

    Generated and always-identity columns are left to the database.
    """
    return [
        name for name in record
        if (column := live_table.columns.get(name)) is not None
        and not column.generated and column.identity != "a"
    ]


def write_records(connection: Connection, live_table: Table,
                  records: Sequence[Mapping[str, Any]]) -> int:
    """COPY records (values by column) into a live table, writing the columns it has."""
    if not records:
        return 0
    columns = record_columns(live_table, records[0])
    types = [live_table.columns[name].base_type for name in columns]
    return copy_values(
        connection, (live_table.schema, live_table.name), columns,
        (tuple(r[c] for c in columns) for r in records),
        json_at=_json_at(types),
    )


def upsert_values(connection: Connection, fitted: TableFit, rows: Iterable[tuple[Any, ...]]
                  ) -> int:
    """Write rows over those the app made first (same key), inserting the others.

    The rows go through a temporary table by COPY, then one ``INSERT ... ON CONFLICT DO
    UPDATE`` sets every column the run writes.
    """
    assert fitted.upsert_on is not None
    stage = "seeding_upsert"
    columns = sql.SQL(", ").join(identifier(c) for c in fitted.columns)
    target = identifier(fitted.schema, fitted.name)
    execute(connection, sql.SQL(
        "CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
    ).format(identifier(stage), columns, target))
    try:
        copy_values(connection, ("pg_temp", stage), fitted.columns, rows,
                    json_at=_json_at(fitted.types))
        updates = sql.SQL(", ").join(
            sql.SQL("{} = EXCLUDED.{}").format(identifier(c), identifier(c))
            for c in fitted.columns if c != fitted.upsert_on
        )
        result = execute(connection, sql.SQL(
            "INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO UPDATE SET {}"
        ).format(target, columns, columns, identifier(stage), identifier(fitted.upsert_on),
                 updates))
    except sa.exc.DBAPIError as error:
        raise DatabaseError(f"writing {fitted.table} failed: {describe(error)}") from None
    execute(connection, sql.SQL("DROP TABLE {}").format(identifier(stage)))
    return int(result.rowcount)


def _json_at(types: Sequence[str]) -> frozenset[int]:
    return frozenset(i for i, t in enumerate(types) if t in ("json", "jsonb"))
