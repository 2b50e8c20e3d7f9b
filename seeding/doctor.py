"""The schema doctor: how a live database differs from the tables this tool writes and reads.

:func:`diagnose` compares the ``public`` schema of a live database with
:data:`seeding.schema.Base` and returns one :class:`Problem` per difference that would make
seeding fail or the app's queries come back empty. Any problem makes the schema incompatible;
each has a ``kind`` so that a caller can sort them, and a ``fix_sql`` where SQL can fix it
(for a person to review). :func:`apply_fixes` runs only the foreign-key fixes: type, CHECK,
enum and column changes are the app's migrations to make.

Choices made here, and nowhere else:

- Types are compared by their PostgreSQL names without modifiers (``numeric(3,2)`` is
  ``numeric``). A live type the tool's values fit without loss is accepted: ``character
  varying`` for ``text`` (the values the tool writes are short; a too-long one fails with
  PostgreSQL's own message naming the column), ``json`` for ``jsonb`` (``matching_score`` is
  json in the app's generated types; the tool writes a JSON number, valid in both), ``bigint``
  or ``numeric`` for ``integer``, ``numeric`` and ``double precision`` for each other.
- A column with a vocabulary (a CHECK ``IN (...)`` or an enum in ``seeding.schema``) may be
  ``text``, ``character varying`` or any enum live; what matters is that the live CHECK or
  enum allows every value of the vocabulary. An enum lacking labels is reported once per
  column of that type.
- The foreign keys checked are the ones ``seeding.schema`` declares plus
  ``session_requests.customer_id → profiles(id)``, which the schema leaves out on purpose (the
  app's column referenced ``auth.users``, never ``profiles``) but which PostgREST's embedded
  join ``profiles!session_requests_customer_id_fkey`` needs. A foreign key counts when its
  columns and target match, whatever its name; when the usual name is taken (on Supabase, by
  the key to ``auth.users``), the fix uses ``<table>_<column>_<target>_fkey`` and says so. The
  fix adds the key ``NOT VALID``: existing orphan rows do not block it, new rows are checked.
- Columns of the live table the tool does not know are a problem only when they are NOT NULL
  with no default, identity or generated value: every insert would fail on them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import sqlalchemy as sa
from psycopg import sql
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateColumn

from seeding import guard
from seeding.catalog import Check, Column, ForeignKey, Table, read_catalog
from seeding.catalog import allowed_values as listed_values
from seeding.database import describe
from seeding.errors import DatabaseError
from seeding.identifiers import execute, shown
from seeding.kinds import KINDS
from seeding.schema import Base

#: What is wrong, one word per kind of problem.
ProblemKind = Literal[
    "missing_table",
    "missing_column",
    "type_mismatch",
    "not_null_unfilled",
    "check_narrower",
    "missing_foreign_key",
]

#: The schema the app's tables live in.
SCHEMA: Final = "public"


@dataclass(frozen=True)
class Problem:
    """One difference between the live schema and what the tool writes and reads."""

    table: str
    #: The column concerned; None for a whole table.
    column: str | None
    kind: ProblemKind
    #: One line: where, what, the value found, and the fix.
    message: str
    #: SQL that fixes it, for a person to review; only foreign keys are applied by apply_fixes.
    fix_sql: str | None = None


@dataclass(frozen=True)
class ForeignKeyNeed:
    """A foreign key the app's PostgREST embedded joins rely on."""

    table: str
    column: str
    referred_table: str
    referred_column: str

    @property
    def name(self) -> str:
        """Return the name PostgreSQL (and the app's embed hints) give it."""
        return f"{self.table}_{self.column}_fkey"


#: Foreign keys the embedded joins need that ``seeding.schema`` leaves out on purpose.
UNDECLARED_FOREIGN_KEYS: Final = tuple(
    ForeignKeyNeed(kind.table, ref.column, ref.table, ref.target_column)
    for kind in KINDS.values()
    for ref in kind.undeclared_references
    if ref.embedded_join
)

#: Live types accepted for an expected one besides itself (see the module docstring).
COMPATIBLE_TYPES: Final[dict[str, frozenset[str]]] = {
    "text": frozenset({"character varying"}),
    "text[]": frozenset({"character varying[]"}),
    "jsonb": frozenset({"json"}),
    "integer": frozenset({"bigint", "numeric"}),
    "double precision": frozenset({"numeric"}),
    "numeric": frozenset({"double precision"}),
}

#: Live types that can hold a vocabulary's values (enums are accepted too).
_VOCABULARY_TYPES: Final = frozenset({"text", "character varying"})

# SQLAlchemy leaves the dialect constructor unannotated.
_DIALECT: Final = PGDialect()  # type: ignore[no-untyped-call]
#: The kinds of live relation compared with the tool's tables (a view is not one).
_TABLE_KINDS: Final = ("table", "partitioned table")
#: The first name in a CHECK's text: the column a list of its values is about.
_FIRST_NAME: Final = re.compile(
    r'^\s*(?:CHECK\b)?[\s(]*(?:"((?:[^"]|"")*)"|([A-Za-z_][A-Za-z0-9_$]*))', re.IGNORECASE
)


def diagnose(connection: Connection) -> list[Problem]:
    """Return how the live ``public`` schema differs from what the tool writes and reads.

    Only reads the catalog. The problems come table by table in write order (missing table,
    then per column: missing, type, vocabulary; then unknown NOT NULL columns), then the
    missing foreign keys.

    Args:
        connection: A connection to the database to examine.

    Returns:
        The problems found; empty when the schema is compatible.

    Raises:
        DatabaseError: When the catalog cannot be read.

    """
    catalog = read_catalog(connection, (SCHEMA,))
    live_tables = {
        table.name: table
        for table in catalog.tables.values()
        if table.schema == SCHEMA and table.kind in _TABLE_KINDS
    }

    problems: list[Problem] = []
    for table in Base.metadata.sorted_tables:
        live = live_tables.get(table.name)
        if live is None:
            problems.append(
                Problem(
                    table.name,
                    None,
                    "missing_table",
                    f"{table.name}: table missing from schema {SCHEMA}; the tool writes it; "
                    "fix: run `seed db create`, which creates the missing tables and leaves "
                    "the others as they are",
                )
            )
            continue
        for column in table.columns:
            problems.extend(
                _column_problems(table, column, live.column(column.name), live.checks)
            )
        problems.extend(_unfilled_problems(table, live))
    problems.extend(_foreign_key_problems(live_tables))
    return problems


def apply_fixes(
    connection: Connection, problems: Iterable[Problem], *, allow_remote: bool = False
) -> list[str]:
    """Add the missing foreign keys among ``problems``, inside the caller's transaction.

    Nothing else is run: type, CHECK and column changes are the app's migrations to make.
    The write guard checks where the connection went first (call
    :func:`seeding.guard.ensure_writable` before connecting, too).

    Args:
        connection: A connection inside the transaction to run the statements in.
        problems: Problems as :func:`diagnose` returns them.
        allow_remote: Write even to a host that is neither local nor in ``SEED_ALLOW_HOSTS``.

    Returns:
        The statements run, in order.

    Raises:
        ConfigurationError: When the guard refuses the server (nothing is run).
        DatabaseError: When a statement fails; the caller's transaction is then to be
            rolled back.

    """
    guard.ensure_connection_writable(connection, allow_remote=allow_remote)
    run: list[str] = []
    for problem in problems:
        if problem.kind != "missing_foreign_key" or problem.fix_sql is None:
            continue
        try:
            execute(connection, sql.SQL(problem.fix_sql))
        except sa_exc.DBAPIError as error:
            raise DatabaseError(
                f"{problem.table}.{problem.column}: adding the foreign key failed: "
                f"{describe(error)}; statement: {problem.fix_sql}"
            ) from None
        run.append(problem.fix_sql)
    return run


def vocabulary(column: sa.Column[Any]) -> tuple[str, ...] | None:
    """Return the values the tool may write in a column of ``seeding.schema``, if it has a list.

    The list is the column's enum labels, or the literals of its ``IN (...)`` CHECK.
    """
    if isinstance(column.type, sa.Enum):
        return tuple(column.type.enums)
    table = column.table
    assert isinstance(table, sa.Table)
    for constraint in table.constraints:
        if not isinstance(constraint, sa.CheckConstraint):
            continue
        values = listed_values(str(constraint.sqltext), column.name)
        if values is not None:
            return values
    return None


def allowed_values(definition: str) -> frozenset[str] | None:
    """Return the values a CHECK allows when it is a list of literals, else None.

    Reads ``col = ANY (ARRAY['a'::text, ...])`` (what ``pg_get_constraintdef`` makes of
    ``IN (...)``), ``col IN ('a', ...)`` and ``col = 'a' OR col = 'b'``; an ``IS NULL`` branch
    is allowed. A CHECK that negates, compares or pattern-matches is not a list, nor one
    that only allows NULL. The column is the first name in the CHECK, and every term must be
    about it (see :func:`seeding.catalog.allowed_values`, which reads it).

    Args:
        definition: The CHECK as ``pg_get_constraintdef`` returns it.

    """
    match = _FIRST_NAME.match(definition)
    if match is None:
        return None
    column = match[2] if match[1] is None else match[1].replace('""', '"')
    return _allowed(definition, column)


def _allowed(definition: str, column: str) -> frozenset[str] | None:
    """Return the values a CHECK about ``column`` allows when it lists some, else None."""
    values = listed_values(definition, column)
    # A CHECK that allows only NULL lists nothing the doctor can widen.
    return frozenset(values) if values else None


def _found_type(live: Column) -> str:
    """Return a live column's type as the doctor compares it: an enum by its unqualified name."""
    if live.is_enum and live.enum_name is not None:
        return live.enum_name
    return live.base_type


def _filled_by_database(live: Column) -> bool:
    """Return whether the database fills a column an insert leaves out."""
    return live.default is not None or live.identity is not None or live.generated


def _expected_type(column: sa.Column[Any]) -> str:
    """Return the PostgreSQL name of a model column's type, without modifiers."""
    if isinstance(column.type, sa.Enum) and column.type.name:
        return column.type.name
    compiled = column.type.compile(dialect=_DIALECT).lower()
    return re.sub(r"\(.*?\)", "", compiled).strip()


def _column_problems(
    table: sa.Table,
    column: sa.Column[Any],
    live: Column | None,
    checks: Sequence[Check],
) -> list[Problem]:
    where = f"{table.name}.{column.name}"
    if live is None:
        return [
            Problem(
                table.name,
                column.name,
                "missing_column",
                f"{where}: column missing; the tool writes it; fix: add it with the fix SQL",
                f"ALTER TABLE {_table(table.name)} ADD COLUMN IF NOT EXISTS "
                f"{_column_definition(column)};",
            )
        ]
    expected = _expected_type(column)
    values = vocabulary(column)
    if not _type_fits(expected, values is not None, live):
        found = _found_type(live)
        return [
            Problem(
                table.name,
                column.name,
                "type_mismatch",
                f"{where}: type {found}, but the tool writes {expected}; fix: change the "
                f"column if the app agrees (ALTER TABLE {_table(table.name)} ALTER COLUMN "
                f"{shown(column.name)} TYPE {expected} USING {shown(column.name)}::{expected})",
            )
        ]
    if values is None:
        return []
    return _vocabulary_problems(table.name, column.name, values, live, checks)


def _type_fits(expected: str, has_vocabulary: bool, live: Column) -> bool:
    """Return whether the tool's values for a column fit the live column's type."""
    if has_vocabulary and (live.is_enum or live.base_type in _VOCABULARY_TYPES):
        return True
    found = _found_type(live)
    return found == expected or found in COMPATIBLE_TYPES.get(expected, frozenset())


def _vocabulary_problems(
    table: str,
    column: str,
    values: tuple[str, ...],
    live: Column,
    checks: Sequence[Check],
) -> list[Problem]:
    where = f"{table}.{column}"
    problems: list[Problem] = []
    if live.is_enum and live.enum_schema is not None and live.enum_name is not None:
        lacking = [value for value in values if value not in live.enum_labels]
        if lacking:
            enum = shown(live.enum_schema, live.enum_name)
            problems.append(
                Problem(
                    table,
                    column,
                    "check_narrower",
                    f"{where}: enum {live.enum_name} lacks {_listing(lacking)}, which the "
                    "tool may write; fix: add the labels with the fix SQL",
                    "\n".join(
                        f"ALTER TYPE {enum} ADD VALUE IF NOT EXISTS {_string(value)};"
                        for value in lacking
                    ),
                )
            )
    for check in checks:
        if check.columns != (column,):
            continue
        allowed = _allowed(check.definition, column)
        if allowed is None:
            continue
        lacking = [value for value in values if value not in allowed]
        if not lacking:
            continue
        widened = sorted(allowed) + [value for value in values if value not in allowed]
        listed = ", ".join(_string(value) for value in widened)
        name = shown(check.name)
        problems.append(
            Problem(
                table,
                column,
                "check_narrower",
                f"{where}: CHECK {check.name} lacks {_listing(lacking)}, which the tool "
                "may write; fix: widen the CHECK with the fix SQL",
                f"ALTER TABLE {_table(table)} DROP CONSTRAINT {name}, "
                f"ADD CONSTRAINT {name} CHECK ({shown(column)} IN ({listed}));",
            )
        )
    return problems


def _unfilled_problems(table: sa.Table, live: Table) -> list[Problem]:
    problems: list[Problem] = []
    for name, column in live.columns.items():
        if name in table.columns or not column.not_null or _filled_by_database(column):
            continue
        alter = f"ALTER TABLE {_table(table.name)} ALTER COLUMN {shown(name)}"
        problems.append(
            Problem(
                table.name,
                name,
                "not_null_unfilled",
                f"{table.name}.{name}: NOT NULL without a default, and the tool does not write "
                f"it, so every row the tool inserts into {table.name} would fail; fix: give it "
                f"a default ({alter} SET DEFAULT ...) or drop NOT NULL ({alter} DROP NOT NULL)",
            )
        )
    return problems


def foreign_key_needs() -> list[ForeignKeyNeed]:
    """Return the foreign keys to check: those of ``seeding.schema`` and the undeclared ones."""
    declared = [
        ForeignKeyNeed(table.name, key.parent.name, key.column.table.name, key.column.name)
        for table in Base.metadata.sorted_tables
        for key in sorted(table.foreign_keys, key=lambda key: key.parent.name)
    ]
    return declared + list(UNDECLARED_FOREIGN_KEYS)


def _foreign_key_problems(live_tables: Mapping[str, Table]) -> list[Problem]:
    problems: list[Problem] = []
    for need in foreign_key_needs():
        live = live_tables.get(need.table)
        referred = live_tables.get(need.referred_table)
        # A missing table or column is reported already, and the fix could not run.
        if live is None or live.column(need.column) is None:
            continue
        if referred is None or referred.column(need.referred_column) is None:
            continue
        if any(_satisfies(key, need) for key in live.foreign_keys):
            continue
        name = need.name
        taken = _constraint_named(live, name)
        note = ""
        if taken is not None:
            name = f"{need.table}_{need.column}_{need.referred_table}_fkey"
            note = (
                f" ({need.name} is taken by a constraint {taken}; "
                f"the fix names it {name})"
            )
        target = f"{need.referred_table}({need.referred_column})"
        problems.append(
            Problem(
                need.table,
                need.column,
                "missing_foreign_key",
                f"{need.table}.{need.column}: no foreign key to {target}, so PostgREST "
                f"embedded joins ({need.referred_table}!{name}) fail with PGRST200{note}; "
                "fix: add it NOT VALID with the fix SQL (existing orphan rows do not block it)",
                f"ALTER TABLE {_table(need.table)} ADD CONSTRAINT {shown(name)} "
                f"FOREIGN KEY ({shown(need.column)}) REFERENCES "
                f"{_table(need.referred_table)}({shown(need.referred_column)}) NOT VALID;",
            )
        )
    return problems


def _satisfies(key: ForeignKey, need: ForeignKeyNeed) -> bool:
    return (
        key.columns == (need.column,)
        and key.target_schema == SCHEMA
        and key.target_table == need.referred_table
        and key.target_columns == (need.referred_column,)
    )


def _constraint_named(table: Table, name: str) -> str | None:
    """Return the definition of the table's constraint called ``name``, if it has one.

    A CHECK or foreign key as ``pg_get_constraintdef`` gives it; a primary key or UNIQUE
    constraint spelt from its columns (the catalog keeps no definition of it).
    """
    for check in table.checks:
        if check.name == name:
            return check.definition
    for key in table.foreign_keys:
        if key.name == name:
            return key.definition
    for unique in table.uniques:
        if unique.constraint and unique.name == name:
            kind = "PRIMARY KEY" if unique.primary else "UNIQUE"
            nulls = "" if unique.nulls_distinct else " NULLS NOT DISTINCT"
            return f"{kind}{nulls} ({', '.join(shown(c) for c in unique.columns)})"
    return None


def _column_definition(column: sa.Column[Any]) -> str:
    """Return a column's DDL for ADD COLUMN; NOT NULL only with a default to fill old rows."""
    definition = str(CreateColumn(column).compile(dialect=_DIALECT))
    if column.server_default is None:
        definition = definition.replace(" NOT NULL", "")
    return definition


def _table(name: str) -> str:
    return shown(SCHEMA, name)


def _string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _listing(values: Iterable[str]) -> str:
    return ", ".join(_string(value) for value in values)
