"""Unique values a run needs that another holds: a run it does not replace, or another row.

Before a run writes (and after it deleted the runs it replaces, in the same transaction),
each unique key of each table it writes is checked against the run's values: a value
already held is one error naming the holder (an earlier run, from the ledger, with the
command that frees it; or a row the tool did not write) before anything is written. Keys
on an expression (``lower(email)``) are left to the database, whose refusal is then the
error; a partial key is checked against the rows its predicate holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from seeding.db import ledger
from seeding.db.catalog import Catalog, Table, Unique
from seeding.db.identifiers import quote
from seeding.errors import DatabaseError

#: The most of the run's values one lookup compares (a bigger run: its first ones; the
#: database's own refusal covers the rest).
MAX_VALUES = 100_000


def check_held(
    connection: Connection,
    catalog: Catalog,
    rows: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]],
) -> None:
    """Refuse a run whose unique values another row holds.

    Args:
        connection: The run's connection, the runs it replaces already deleted.
        catalog: The live schema.
        rows: The run's rows by (schema, table), each as {column: value}.

    Raises:
        DatabaseError: Naming the first value held, its holder and the fix.

    """
    for (schema, name), table_rows in rows.items():
        table = catalog.table(name, schema)
        if table is None or not table_rows:
            continue
        written = set(table_rows[0])
        for key in table.uniques:
            if key.expressions or not key.columns or not set(key.columns) <= written:
                continue
            found = _held(connection, table, key, table_rows)
            if found is not None:
                raise _holder_error(connection, schema, name, key, *found)


def _id_column(table: Table) -> str | None:
    primary = table.primary_key
    return primary.columns[0] if primary is not None and len(primary.columns) == 1 else None


def _holder_error(
    connection: Connection, schema: str, name: str, key: Unique, held: tuple[str, ...],
    row_id: Any,
) -> DatabaseError:
    """Return the one-line error naming who holds the value and how to free it."""
    shown = ledger.table_name(schema, name)
    what = f"{shown}." + (
        f"{key.columns[0]} = {held[0]!r}" if len(key.columns) == 1
        else f"({', '.join(key.columns)}) = ({', '.join(map(repr, held))})"
    )
    run = _writer(connection, shown, row_id)
    if run is not None:
        run_id, scenario, seed = run
        return DatabaseError(
            f"{what} is held by run {run_id} of {scenario} (seed {seed}), which this run does "
            f"not replace; free it with `seed reset --run {run_id}`, or change the value in "
            "the scenario (nothing was written)"
        )
    where = f" (its id {row_id})" if row_id is not None else ""
    return DatabaseError(
        f"{what} is held by a row this tool did not write{where}; change the value in the "
        "scenario, or delete that row (nothing was written)"
    )


#: Types whose values compare as the column's own (so the key's index is used): the text
#: of a Python value reads back as the same value.
_TYPED = frozenset({"uuid", "text", "character varying", "citext", "smallint", "integer",
                    "bigint"})


def _held(
    connection: Connection,
    table: Table,
    key: Unique,
    values: Iterable[Mapping[str, Any]],
) -> tuple[tuple[str, ...], Any] | None:
    """Return the first live row holding one of the run's key values: (its key, its id)."""
    wanted: dict[tuple[str, ...], None] = {}
    for values_of_row in values:
        if any(values_of_row.get(column) is None for column in key.columns):
            continue
        wanted[tuple(str(values_of_row[column]) for column in key.columns)] = None
        if len(wanted) >= MAX_VALUES:
            break
    if not wanted:
        return None
    names = [f"v{i}" for i in range(len(key.columns))]
    on = " AND ".join(
        _equal(table, column, name) for column, name in zip(key.columns, names, strict=True)
    )
    id_column = _id_column(table)
    arrays = ", ".join(f"CAST(:{name} AS text[])" for name in names)
    predicate = f" AND ({key.predicate})" if key.predicate else ""
    shown_id = f"t.{quote(id_column)}" if id_column else "NULL"
    keys = ", ".join(f"t.{quote(column)}::text" for column in key.columns)
    statement = (
        f"SELECT {shown_id}, {keys} FROM {quote(table.schema, table.name)} t "
        f"JOIN unnest({arrays}) AS v({', '.join(names)}) ON {on}{predicate} LIMIT 1"
    )
    params = {name: [item[i] for item in wanted] for i, name in enumerate(names)}
    found = connection.execute(sa.text(statement), params).first()
    if found is None:
        return None
    return tuple(found[1:]), found[0]


def _equal(table: Table, column: str, value: str) -> str:
    """Return ``t.column = v.value``, in the column's type where that is safe (its index)."""
    live = table.columns[column]
    if live.is_enum or live.base_type in _TYPED:
        # format_type's text, its names quoted by the server (as pg_get_constraintdef's).
        return f"t.{quote(column)} = CAST(v.{value} AS {live.type})"
    return f"t.{quote(column)}::text = v.{value}"


def _writer(connection: Connection, table: str, row_id: Any) -> tuple[uuid.UUID, str, int] | None:
    """Return (run id, scenario, seed) of the run that wrote the row, from the ledger."""
    if not isinstance(row_id, uuid.UUID) or not ledger.exists(connection):
        return None
    found = connection.execute(
        sa.text(
            f"SELECT r.id, r.scenario, r.seed FROM {quote(ledger.SCHEMA, 'ledger')} l "
            f"JOIN {quote(ledger.SCHEMA, 'runs')} r ON r.id = l.run_id "
            "WHERE l.table_name = :table AND l.row_id = :row_id LIMIT 1"
        ),
        {"table": table, "row_id": row_id},
    ).first()
    return None if found is None else (found[0], found[1], found[2])


def rows_of(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Return value tuples as {column: value} (for :func:`check_held`)."""
    return [dict(zip(columns, row, strict=True)) for row in rows]
