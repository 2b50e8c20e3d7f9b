r"""Names in SQL: the one way a schema, table, column or constraint name reaches a statement.

A name read from the catalog is data, like a value: a foreign key named
``a"; COMMIT; CREATE TABLE x(); --`` must reach PostgreSQL as that name and nothing more.
Values go as bound parameters; names cannot, so every name goes through a library's quoting
(psycopg's ``sql.Identifier``, or SQLAlchemy's identifier preparer), whatever it holds:
quotes, semicolons, ``%``, ``:``, spaces, any letter. Nothing in the package writes a name
into SQL by hand.

Which one to use:

- :func:`identifier` (psycopg) in a statement composed with ``psycopg.sql``
  (``SQL(...).format(...)``): DDL, ``COPY``, ``LOCK``. Run one without parameters with
  :func:`execute`: its text goes to the server as it is, so no ``%`` or ``:`` in a name is
  read as a placeholder. ``pg_get_constraintdef`` text (SQL written by the server, its names
  quoted by it) joins such a statement as ``sql.SQL(definition)``.
- :func:`quote` in a statement that ``sa.text()`` runs with bound parameters. ``sa.text()``
  reads ``:word`` as a parameter anywhere in its text, quoted names included, so every ``:``
  of the quoted name is escaped as ``\:`` (which ``sa.text()`` turns back into ``:``);
  SQLAlchemy and psycopg double and undo its ``%`` themselves.
- :func:`shown` in SQL shown to a person (the doctor's fixes) or passed as a value to
  ``to_regclass``: quoted only where PostgreSQL needs it, so it reads as people write it.
  Run such text with :func:`execute` (``sql.SQL(text)``), never inside ``sa.text()``.
"""

from __future__ import annotations

from typing import Any, Final

import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects.postgresql.base import PGDialect

# Named parameters: the preparer then leaves a name's % as they are (with pyformat it doubles
# them for a driver that reads placeholders, which text run as is must not have).
_PREPARER: Final = PGDialect(paramstyle="named").identifier_preparer  # type: ignore[no-untyped-call]
# Words PostgreSQL reserves (pg_get_keywords, categories R and T, as of 15) that SQLAlchemy's
# list lacks: a name spelled like one must be quoted.
_PREPARER.reserved_words = _PREPARER.reserved_words | {
    "collation", "concurrently", "lateral", "tablesample",
}


def identifier(*names: str) -> sql.Identifier:
    """Return the names (``schema, table`` or one name) as a psycopg identifier."""
    return sql.Identifier(*names)


def quote(*names: str) -> str:
    """Return the names, each quoted (always), dot-joined, for a statement run by ``sa.text()``."""
    return sql.Identifier(*names).as_string(None).replace(":", "\\:")


def literal(value: str) -> str:
    """Return a text value as a quoted SQL literal, for a statement run by ``sa.text()``.

    For values that must be part of a query's text (a subquery a reader hands out); a value
    passed to one statement goes as a bound parameter instead.
    """
    return sql.Literal(value).as_string(None).replace(":", "\\:")


def shown(*names: str) -> str:
    """Return the names dot-joined, each quoted where PostgreSQL needs it (SQLAlchemy's rule)."""
    return ".".join(_PREPARER.quote(name) for name in names)


def execute(connection: sa.Connection, statement: sql.Composable) -> sa.CursorResult[Any]:
    """Run a statement composed with ``psycopg.sql``, without parameters; its text goes as is.

    It runs in the connection's transaction, through SQLAlchemy (its errors are SQLAlchemy's).
    """
    driver = connection.connection.driver_connection
    assert driver is not None
    return connection.exec_driver_sql(
        statement.as_string(driver), execution_options={"no_parameters": True}
    )
