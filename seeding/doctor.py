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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateColumn

from seeding.database import describe
from seeding.errors import DatabaseError
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
UNDECLARED_FOREIGN_KEYS: Final = (
    ForeignKeyNeed("session_requests", "customer_id", "profiles", "id"),
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
_LITERAL: Final = re.compile(r"'((?:[^']|'')*)'")
_IS_NULL: Final = re.compile(r"\bIS\s+(?:NOT\s+)?NULL\b", re.IGNORECASE)
#: Anything that makes a CHECK more than "the column is one of these literals".
_NOT_A_LIST: Final = re.compile(
    r"<|>|!|~|\bNOT\b|\bALL\b|\bLIKE\b|\bSIMILAR\b|\bBETWEEN\b", re.IGNORECASE
)
_EQUALS: Final = re.compile(r"=|\bIN\b", re.IGNORECASE)
_IN_LIST: Final = re.compile(r"^\s*(\w+)\s+IN\s*\((.*)\)\s*$", re.IGNORECASE | re.DOTALL)

_COLUMNS_SQL: Final = sa.text("""
    SELECT c.relname AS table_name,
           a.attname AS column_name,
           CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, NULL)
                ELSE format_type(a.atttypid, NULL) END AS type_name,
           t.typtype = 'e' AS is_enum,
           t.typname::text AS enum_name,
           t.typnamespace::regnamespace::text AS enum_schema,
           CASE WHEN t.typtype = 'e' THEN ARRAY(
               SELECT e.enumlabel::text FROM pg_enum e
               WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) END AS enum_labels,
           a.attnotnull AS not_null,
           a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '' AS filled_by_database
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_type t ON t.oid = a.atttypid
    WHERE n.nspname = :schema AND c.relkind IN ('r', 'p')
      AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY c.relname, a.attnum
""")

_CONSTRAINTS_SQL: Final = sa.text("""
    SELECT c.relname AS table_name,
           con.conname::text AS name,
           con.contype::text AS kind,
           pg_get_constraintdef(con.oid) AS definition,
           ARRAY(SELECT a.attname::text
                 FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, position)
                 JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                 ORDER BY k.position) AS columns,
           rn.nspname::text AS referred_schema,
           rc.relname::text AS referred_table,
           ARRAY(SELECT a.attname::text
                 FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, position)
                 JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                 ORDER BY k.position) AS referred_columns
    FROM pg_constraint con
    JOIN pg_class c ON c.oid = con.conrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_class rc ON rc.oid = con.confrelid
    LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
    WHERE n.nspname = :schema
    ORDER BY c.relname, con.conname
""")


@dataclass(frozen=True)
class _LiveColumn:
    """A column of the live database, as the checks need it."""

    name: str
    type_name: str
    is_enum: bool
    enum_name: str
    enum_schema: str
    enum_labels: tuple[str, ...]
    not_null: bool
    filled_by_database: bool


@dataclass(frozen=True)
class _LiveConstraint:
    """A constraint of the live database: a CHECK, a foreign key, or another kind."""

    name: str
    kind: str
    definition: str
    columns: tuple[str, ...]
    referred_schema: str | None
    referred_table: str | None
    referred_columns: tuple[str, ...]


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
    try:
        columns_rows = connection.execute(_COLUMNS_SQL, {"schema": SCHEMA}).mappings().all()
        constraint_rows = connection.execute(_CONSTRAINTS_SQL, {"schema": SCHEMA}).mappings().all()
    except sa_exc.DBAPIError as error:
        raise DatabaseError(f"cannot read the database's catalog: {describe(error)}") from None
    live_columns: dict[str, dict[str, _LiveColumn]] = {}
    for row in columns_rows:
        live_columns.setdefault(row["table_name"], {})[row["column_name"]] = _live_column(row)
    live_constraints: dict[str, list[_LiveConstraint]] = {}
    for row in constraint_rows:
        live_constraints.setdefault(row["table_name"], []).append(_live_constraint(row))

    problems: list[Problem] = []
    for table in Base.metadata.sorted_tables:
        live = live_columns.get(table.name)
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
        constraints = live_constraints.get(table.name, [])
        for column in table.columns:
            problems.extend(_column_problems(table, column, live.get(column.name), constraints))
        problems.extend(_unfilled_problems(table, live))
    problems.extend(_foreign_key_problems(live_columns, live_constraints))
    return problems


def apply_fixes(connection: Connection, problems: Iterable[Problem]) -> list[str]:
    """Add the missing foreign keys among ``problems``, inside the caller's transaction.

    Nothing else is run: type, CHECK and column changes are the app's migrations to make.
    Call :func:`seeding.guard.ensure_writable` before connecting.

    Args:
        connection: A connection inside the transaction to run the statements in.
        problems: Problems as :func:`diagnose` returns them.

    Returns:
        The statements run, in order.

    Raises:
        DatabaseError: When a statement fails; the caller's transaction is then to be
            rolled back.

    """
    run: list[str] = []
    for problem in problems:
        if problem.kind != "missing_foreign_key" or problem.fix_sql is None:
            continue
        try:
            connection.exec_driver_sql(problem.fix_sql)
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
        match = _IN_LIST.match(str(constraint.sqltext))
        if match and match.group(1) == column.name:
            return tuple(_literals(match.group(2)))
    return None


def allowed_values(definition: str) -> frozenset[str] | None:
    """Return the values a CHECK allows when it is a list of literals, else None.

    Reads ``col = ANY (ARRAY['a'::text, ...])`` (what ``pg_get_constraintdef`` makes of
    ``IN (...)``), ``col IN ('a', ...)`` and ``col = 'a' OR col = 'b'``; an ``IS NULL`` branch
    is allowed. A CHECK that negates, compares or pattern-matches is not a list.

    Args:
        definition: The CHECK as ``pg_get_constraintdef`` returns it.

    """
    literals = _literals(definition)
    rest = _IS_NULL.sub("", _LITERAL.sub("''", definition))
    if not literals or not _EQUALS.search(rest) or _NOT_A_LIST.search(rest):
        return None
    return frozenset(literals)


def _literals(sql: str) -> list[str]:
    """Return the quoted string literals in SQL, unescaped."""
    return [literal.replace("''", "'") for literal in _LITERAL.findall(sql)]


def _live_column(row: sa.RowMapping) -> _LiveColumn:
    return _LiveColumn(
        name=row["column_name"],
        type_name=row["type_name"],
        is_enum=row["is_enum"],
        enum_name=row["enum_name"],
        enum_schema=row["enum_schema"],
        enum_labels=tuple(row["enum_labels"] or ()),
        not_null=row["not_null"],
        filled_by_database=row["filled_by_database"],
    )


def _live_constraint(row: sa.RowMapping) -> _LiveConstraint:
    return _LiveConstraint(
        name=row["name"],
        kind=row["kind"],
        definition=row["definition"],
        columns=tuple(row["columns"]),
        referred_schema=row["referred_schema"],
        referred_table=row["referred_table"],
        referred_columns=tuple(row["referred_columns"]),
    )


def _expected_type(column: sa.Column[Any]) -> str:
    """Return the PostgreSQL name of a model column's type, without modifiers."""
    if isinstance(column.type, sa.Enum) and column.type.name:
        return column.type.name
    compiled = column.type.compile(dialect=_DIALECT).lower()
    return re.sub(r"\(.*?\)", "", compiled).strip()


def _column_problems(
    table: sa.Table,
    column: sa.Column[Any],
    live: _LiveColumn | None,
    constraints: Sequence[_LiveConstraint],
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
        found = live.enum_name if live.is_enum else live.type_name
        return [
            Problem(
                table.name,
                column.name,
                "type_mismatch",
                f"{where}: type {found}, but the tool writes {expected}; fix: change the "
                f"column if the app agrees (ALTER TABLE {_table(table.name)} ALTER COLUMN "
                f"{_quote(column.name)} TYPE {expected} USING {_quote(column.name)}::{expected})",
            )
        ]
    if values is None:
        return []
    return _vocabulary_problems(table.name, column.name, values, live, constraints)


def _type_fits(expected: str, has_vocabulary: bool, live: _LiveColumn) -> bool:
    """Return whether the tool's values for a column fit the live column's type."""
    if has_vocabulary and (live.is_enum or live.type_name in _VOCABULARY_TYPES):
        return True
    found = live.enum_name if live.is_enum else live.type_name
    return found == expected or found in COMPATIBLE_TYPES.get(expected, frozenset())


def _vocabulary_problems(
    table: str,
    column: str,
    values: tuple[str, ...],
    live: _LiveColumn,
    constraints: Sequence[_LiveConstraint],
) -> list[Problem]:
    where = f"{table}.{column}"
    problems: list[Problem] = []
    if live.is_enum:
        lacking = [value for value in values if value not in live.enum_labels]
        if lacking:
            enum = f"{_quote(live.enum_schema)}.{_quote(live.enum_name)}"
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
    for constraint in constraints:
        if constraint.kind != "c" or constraint.columns != (column,):
            continue
        allowed = allowed_values(constraint.definition)
        if allowed is None:
            continue
        lacking = [value for value in values if value not in allowed]
        if not lacking:
            continue
        widened = sorted(allowed) + [value for value in values if value not in allowed]
        listed = ", ".join(_string(value) for value in widened)
        name = _quote(constraint.name)
        problems.append(
            Problem(
                table,
                column,
                "check_narrower",
                f"{where}: CHECK {constraint.name} lacks {_listing(lacking)}, which the tool "
                "may write; fix: widen the CHECK with the fix SQL",
                f"ALTER TABLE {_table(table)} DROP CONSTRAINT {name}, "
                f"ADD CONSTRAINT {name} CHECK ({_quote(column)} IN ({listed}));",
            )
        )
    return problems


def _unfilled_problems(table: sa.Table, live: dict[str, _LiveColumn]) -> list[Problem]:
    problems: list[Problem] = []
    for name, column in live.items():
        if name in table.columns or not column.not_null or column.filled_by_database:
            continue
        alter = f"ALTER TABLE {_table(table.name)} ALTER COLUMN {_quote(name)}"
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


def _foreign_key_problems(
    live_columns: dict[str, dict[str, _LiveColumn]],
    live_constraints: dict[str, list[_LiveConstraint]],
) -> list[Problem]:
    problems: list[Problem] = []
    for need in foreign_key_needs():
        # A missing table or column is reported already, and the fix could not run.
        if need.column not in live_columns.get(need.table, {}):
            continue
        if need.referred_column not in live_columns.get(need.referred_table, {}):
            continue
        constraints = live_constraints.get(need.table, [])
        if any(_satisfies(constraint, need) for constraint in constraints):
            continue
        name = need.name
        taken = next((c for c in constraints if c.name == name), None)
        note = ""
        if taken is not None:
            name = f"{need.table}_{need.column}_{need.referred_table}_fkey"
            note = (
                f" ({need.name} is taken by a constraint {taken.definition}; "
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
                f"ALTER TABLE {_table(need.table)} ADD CONSTRAINT {_quote(name)} "
                f"FOREIGN KEY ({_quote(need.column)}) REFERENCES "
                f"{_table(need.referred_table)}({_quote(need.referred_column)}) NOT VALID;",
            )
        )
    return problems


def _satisfies(constraint: _LiveConstraint, need: ForeignKeyNeed) -> bool:
    return (
        constraint.kind == "f"
        and constraint.columns == (need.column,)
        and constraint.referred_schema == SCHEMA
        and constraint.referred_table == need.referred_table
        and constraint.referred_columns == (need.referred_column,)
    )


def _column_definition(column: sa.Column[Any]) -> str:
    """Return a column's DDL for ADD COLUMN; NOT NULL only with a default to fill old rows."""
    definition = str(CreateColumn(column).compile(dialect=_DIALECT))
    if column.server_default is None:
        definition = definition.replace(" NOT NULL", "")
    return definition


def _quote(identifier: str) -> str:
    return str(_DIALECT.identifier_preparer.quote(identifier))


def _table(name: str) -> str:
    return f"{SCHEMA}.{_quote(name)}"


def _string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _listing(values: Iterable[str]) -> str:
    return ", ".join(_string(value) for value in values)
