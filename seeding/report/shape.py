"""How the report reads the app's tables on one database: the live shape, from its catalog.

The report's SQL (:mod:`seeding.report.build`, :mod:`seeding.domain.integrity`) is written against
this tool's own schema (:mod:`seeding.domain.schema`). The app's real database differs from it (see
the team's shared app-schema.md): a :class:`Shape`, made from the live catalog
(:func:`seeding.db.catalog.read_catalog`), says how to read each table there, so that the same
SQL runs on both. A table is read by its name when the database has it as the tool makes it;
otherwise by a subquery that gives it the tool's columns:

- a column the app keeps under another name is read from that one: ``vehicles.customer_id``
  from ``vehicles.user_id`` (the owner's auth user id, which is the customer's profile id);
- ``sessions.mechanic_id`` becomes a ``mechanics.id`` whatever it holds: when its foreign key
  points at ``auth.users`` (or at ``mechanics.user_id``) it holds the mechanic's auth user id,
  which is looked up in ``mechanics.user_id``; with no key at all, a value that is some
  mechanic's ``user_id`` is looked up so, any other value is taken as a ``mechanics.id``;
- an enum column whose labels lack a value the report compares it with (the migrations'
  ``session_requests.status`` {pending, accepted, cancelled} against 'completed'), or that is
  compared with a column of another type (an enum ``sessions.type`` against a text
  ``session_requests.session_type``), is read as text;
- a column the database lacks reads as a NULL of the tool's type, and :meth:`Shape.missing`
  names it: the report lists the metrics that need it as not available and skips the
  integrity rules that need it, so no placeholder is ever reported as a measure.

On the tool's own schema every table is read by its name: the SQL is the same, and as fast,
as before there was a shape. The subqueries are plain projections (and, for sessions, one
left join), which PostgreSQL folds into the query that reads them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects.postgresql.base import PGDialect

from seeding.db.catalog import Catalog, Column, Table
from seeding.db.identifiers import literal, quote
from seeding.domain.schema import APP_TABLES
from seeding.scenario.kinds import KINDS

#: What ``sessions.mechanic_id`` holds: a ``mechanics.id`` (its key points at mechanics), the
#: mechanic's auth user id (its key points at ``auth.users`` or ``mechanics.user_id``), or
#: either (no key says).
SessionMechanic = Literal["mechanics", "users", "either"]

#: The schema the report reads the app's tables in (unqualified names, as the app's are).
SCHEMA: Final = "public"

#: The tables the report reads where the database has them: a database without one (made
#: before the tool wrote it) reports the metrics that read it as not available, needing the
#: table, instead of failing.
OPTIONAL_TABLES: Final = ("session_assignments",)

#: The tables the report needs, in the order of :data:`seeding.domain.schema.APP_TABLES`.
CORE_TABLES: Final = tuple(
    table.name for table in APP_TABLES if table.name not in OPTIONAL_TABLES
)

_DIALECT: Final = PGDialect()  # type: ignore[no-untyped-call]

#: The tool's columns of each core table, each with the SQL type a missing one reads as.
TOOL_COLUMNS: Final[dict[str, dict[str, str]]] = {
    table.name: {
        column.name: (
            "text"
            if isinstance(column.type, SAEnum)
            else column.type.compile(dialect=_DIALECT).lower()
        )
        for column in table.columns
    }
    for table in APP_TABLES
}

#: A tool column the app keeps under another name, with the same meaning: (table, column) →
#: the app's column.
#: From the registry (:attr:`seeding.scenario.kinds.Kind.live_names`; ``vehicles.customer_id``
#: is the app's ``user_id``).
ALTERNATES: Final[dict[tuple[str, str], str]] = {
    (kind.model.__tablename__, column): names[0]
    for kind in KINDS.values()
    for column, names in kind.live_names.items()
    if names
}

#: The values the report compares a column with; an enum column that lacks one is read as
#: text (an enum column not listed here is always read as text).
VOCABULARIES: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    (kind.model.__tablename__, column): tuple(values)
    for kind in KINDS.values()
    for column, values in kind.vocabularies.items()
}  # from the registry: each kind's closed vocabularies (seeding.scenario.kinds)

#: Columns the report compares with each other: both are read as text unless they share a type.
PAIRS: Final = ((("sessions", "type"), ("session_requests", "session_type")),)


@dataclass(frozen=True)
class Shape:
    """How to read the app's tables on one database; the default is the tool's own schema.

    Attributes:
        relations: The tables read by a subquery, each with it (table, SQL); the others are
            read by their name.
        absent: Each tool column the database cannot give, as ``table.column``, with the live
            columns whose absence makes it so (``sessions.mechanic_id`` needs
            ``mechanics.user_id`` when it holds auth user ids). An optional table the
            database lacks (:data:`OPTIONAL_TABLES`) is listed too, by its name, and each of
            its columns needs the table.
        session_mechanic: What ``sessions.mechanic_id`` holds (:data:`SessionMechanic`).
        has_auth: Whether the database has Supabase's ``auth`` schema (the app's database,
            not one this tool created).
        run: The run whose rows alone are read (the ledger's ids of each table), or None for
            every row.

    """

    relations: tuple[tuple[str, str], ...] = ()
    absent: tuple[tuple[str, tuple[str, ...]], ...] = ()
    session_mechanic: SessionMechanic = "mechanics"
    has_auth: bool = False
    run: uuid.UUID | None = None

    def rel(self, table: str, alias: str | None = None) -> str:
        """Return the SQL that reads ``table`` in a FROM clause, with ``alias`` if given.

        The table's name when the database has it as the tool does; else a subquery, named
        ``alias`` or, without one, the table's name (so that ``table.column`` still reads).
        """
        subquery = dict(self.relations).get(table)
        if self.run is not None:
            source = subquery or table
            subquery = (
                f"(SELECT * FROM {source} {quote('whole')} WHERE id IN (SELECT row_id FROM "
                f"{quote('seeding', 'ledger')} WHERE run_id = {literal(str(self.run))}::uuid "
                f"AND table_name = {literal(table)}))"
            )
        if subquery is None:
            return table if alias is None else f"{table} {alias}"
        return f"{subquery} {alias or table}"

    def missing(self, columns: Iterable[str]) -> tuple[str, ...]:
        """Return the live columns absent among those ``columns`` (``table.column``) need.

        Empty when the database gives every one of them; each absent column once, in order.
        A name without a column (``session_assignments``) stands for the whole table: what
        an optional table the database lacks needs is the table.
        """
        absent = dict(self.absent)
        found: dict[str, None] = {}
        for column in columns:
            found.update(dict.fromkeys(absent.get(column, ())))
        return tuple(found)


#: The tool's own schema (seeding/domain/schema.py): every table read by its name.
TOOL_SHAPE: Final = Shape()


def shape_of(catalog: Catalog) -> Shape:
    """Return how to read the app's tables on the database ``catalog`` describes.

    A core table the catalog lacks reads as if it had none of its columns; callers check the
    tables first (:func:`seeding.report.build.check_schema`).
    """
    tables = {name: catalog.table(name, SCHEMA) for name in TOOL_COLUMNS}
    mechanics = tables["mechanics"]
    has_user_id = mechanics is not None and all(
        mechanics.column(name) is not None for name in ("id", "user_id")
    )
    link = _session_mechanic(tables["sessions"])
    text = _read_as_text(tables)
    relations: list[tuple[str, str]] = []
    absent: list[tuple[str, tuple[str, ...]]] = []
    for name, tool_columns in TOOL_COLUMNS.items():
        table = tables[name]
        if table is None and name in OPTIONAL_TABLES:
            # Never read: every metric of the table is not available, for want of it.
            absent += [(name, (name,))]
            absent += [(f"{name}.{column}", (name,)) for column in tool_columns]
            continue
        live = {} if table is None else dict(table.columns)
        exposed: list[str] = []
        joins = ""
        plain = True
        for column, sql_type in tool_columns.items():
            if column in live:
                expression = f"t.{column}"
                if (name, column) in text:
                    expression = f"t.{column}::text"
                if name == "sessions" and column == "mechanic_id" and link != "mechanics":
                    if has_user_id:
                        expression, joins = _mechanic_lookup(mechanics, expression)
                    elif link == "users":
                        absent.append((f"{name}.{column}", ("mechanics.user_id",)))
                        expression = f"NULL::{sql_type}"
            elif (alternate := ALTERNATES.get((name, column))) in live:
                expression = f"t.{alternate}"
            else:
                absent.append((f"{name}.{column}", (f"{name}.{column}",)))
                expression = f"NULL::{sql_type}"
            if expression != f"t.{column}":
                plain = False
                expression += f" AS {column}"
            exposed.append(expression)
        if not plain:
            relations.append(
                (name, f"(SELECT {', '.join(exposed)} FROM {SCHEMA}.{name} t{joins})")
            )
    return Shape(
        relations=tuple(relations),
        absent=tuple(absent),
        session_mechanic=link,
        has_auth=catalog.has_schema("auth"),
    )


def _session_mechanic(sessions: Table | None) -> SessionMechanic:
    """Return what ``sessions.mechanic_id`` holds, by the foreign key on it."""
    keys = () if sessions is None else sessions.foreign_keys_on("mechanic_id")
    for key in keys:
        if len(key.columns) != 1:
            continue
        target = (key.target_schema, key.target_table, key.target_columns[0])
        if target == (SCHEMA, "mechanics", "id"):
            return "mechanics"
        if target in (("auth", "users", "id"), (SCHEMA, "mechanics", "user_id")):
            return "users"
    return "either"


def _mechanic_lookup(mechanics: Table | None, held: str) -> tuple[str, str]:
    """Return the expression of the mechanics.id a session's mechanic_id names, and its join.

    The mechanic whose ``user_id`` is the value, else the value itself (a ``mechanics.id``,
    or an id no mechanic has: the session then has a mechanic the report cannot type). A
    left join when ``mechanics.user_id`` is unique (as in the app), else a lookup per row.
    """
    if mechanics is not None and mechanics.unique_on("user_id"):
        join = f" LEFT JOIN {SCHEMA}.mechanics mu ON mu.user_id = {held}"
        return f"coalesce(mu.id, {held})", join
    lookup = (
        f"(SELECT mu.id FROM {SCHEMA}.mechanics mu WHERE mu.user_id = {held} "
        "ORDER BY mu.id LIMIT 1)"
    )
    return f"coalesce({lookup}, {held})", ""


def _read_as_text(tables: dict[str, Table | None]) -> set[tuple[str, str]]:
    """Return the (table, column) pairs of enum columns that the report must read as text."""
    text: set[tuple[str, str]] = set()
    for name, table in tables.items():
        for column in () if table is None else table.columns.values():
            if not column.is_enum:
                continue
            vocabulary = VOCABULARIES.get((name, column.name))
            if vocabulary is None or not set(vocabulary) <= set(column.enum_labels):
                text.add((name, column.name))
    for first, second in PAIRS:
        one, other = _column(tables, *first), _column(tables, *second)
        if one is None or other is None:
            continue
        if _type_of(one, first in text) != _type_of(other, second in text):
            text.update(pair for pair, column in ((first, one), (second, other)) if column.is_enum)
    return text


def _column(tables: dict[str, Table | None], table: str, column: str) -> Column | None:
    found = tables.get(table)
    return None if found is None else found.column(column)


def _type_of(column: Column, as_text: bool) -> str:
    """Return the type a column is compared as: ``text`` for any string or a cast enum."""
    if as_text or column.base_type in ("text", "character varying"):
        return "text"
    return column.base_type
