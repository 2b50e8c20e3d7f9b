"""The schema doctor: what a live database lacks for the rows this tool writes, and notes.

:func:`diagnose` reads the live catalog (``public`` and Supabase's ``auth``) and checks, at the
schema level, what a run's preflight (:mod:`seeding.db.fit`) checks on a run's rows: for each
kind's table (:data:`seeding.scenario.kinds.KINDS`) and each column the tool writes, under its
own name or one of the registry's ``live_names``. Every finding is a :class:`Problem` with a
``severity``: a **problem** makes the schema incompatible (``seed db doctor`` exits 1); a
**note** is a deliberate or harmless difference, shown and exit 0.

Problems:

- a table the tool writes is missing (``seed db create`` on a database the tool owns; the
  app's migrations on the app's own);
- a live type the tool's values cannot be written as (see *Types* below);
- a value the tool may write that the live enum or a one-column list CHECK refuses; the
  values the tool may write in a column are the model's vocabulary (:func:`vocabulary`: its
  enum, or its ``IN (...)`` CHECK), else the registry's vocabulary for that field
  (``Kind.vocabularies``). The model's list bounds the registry's: a value outside it is
  never stored (``routing_type='priority_broadcast'`` is stored as ``'broadcast'``);
- a NOT NULL live column without a default, identity or generated value that the tool does
  not write: every insert would fail;
- a foreign key the tool's schema declares, or an embedded join needs, on a column that has
  none at all (see *Foreign keys*), or a key that points where the tool's values cannot go;
- auth users with NULL in a token column (:data:`seeding.db.auth.TOKEN_COLUMNS`): the sign-in
  server fails every sign-in while one exists. Its ``UPDATE`` is printed, never run: doctor
  never writes to ``auth``.

Notes: a column the database lacks (not written, as a run leaves it out); a column the
database generates; a key that points at ``auth.users`` where the tool's schema points at a
person's table (a run writes the person's auth id there, as :mod:`seeding.db.fit` does); the
embedded-join key the tool's own schema leaves out on purpose; each trigger on the seeded
tables and on ``auth.users``, with what the tool does about it.

Foreign keys (the rule): a key is needed where :mod:`seeding.domain.schema` declares one, and on the
columns the registry marks ``embedded_join`` (``session_requests.customer_id → profiles(id)``,
which PostgREST's ``profiles!session_requests_customer_id_fkey`` needs). A need is met by a
key with that column and target, whatever its name. A column that already has a key, to
any table, never gets another: the app's ``sessions.mechanic_id → auth.users`` and
``session_requests.customer_id → auth.users`` are kept as they are (a second key to
``mechanics`` would refuse every assignment), and are notes. A column with no key at all
gets one (``NOT VALID``: existing orphan rows do not block it, new rows are checked), except
the embedded-join key on the tool's own schema (a database without an ``auth`` schema, as
``seed db create`` makes it): there the difference is deliberate, a note, and ``--apply``
leaves it. When the usual name is taken the fix uses ``<table>_<column>_<target>_fkey``.

``--apply`` (:func:`apply_fixes`) makes only additive changes the app's rows and code cannot
notice: it adds enum labels (``ALTER TYPE ... ADD VALUE IF NOT EXISTS``), widens a list CHECK
to the union of what it allows and what the tool writes (dropped and re-added by its exact
name in one ``ALTER TABLE``; ``NOT VALID`` only if it was), and adds a missing foreign key on
a column that has none. Nothing in ``auth`` is touched; types, columns and NOT NULL are the
app's migrations to change. :func:`check_database` runs the fixes in one transaction and
commits before returning, so a run that follows may use the new labels (PostgreSQL 12+
allows ``ADD VALUE`` in a transaction, but not the new label in that same transaction; the
catalog reader needs 12+ anyway).

Types are compared by their PostgreSQL names without modifiers. A text live column
(``text``, ``character varying``, ``character``) takes any of the tool's values (a run writes
their text, as :mod:`seeding.db.fit` does: ``vehicles.year`` is text in the app); a column with
a vocabulary may be any enum; otherwise the types must match or be one of
:data:`COMPATIBLE_TYPES`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import sqlalchemy as sa
from psycopg import sql
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.engine import Connection

from seeding.db import admit, database, guard
from seeding.db.auth import TOKEN_COLUMNS
from seeding.db.catalog import Catalog, Check, Column, ForeignKey, Table, Trigger, read_catalog
from seeding.db.catalog import allowed_values as listed_values
from seeding.db.database import describe
from seeding.db.identifiers import execute, quote, shown
from seeding.domain.schema import APP_TABLES, Base
from seeding.errors import DatabaseError
from seeding.scenario.kinds import KINDS, Kind

#: What is found, one word per kind.
ProblemKind = Literal[
    "missing_table",
    "missing_column",
    "generated_column",
    "type_mismatch",
    "not_null_unfilled",
    "check_narrower",
    "missing_foreign_key",
    "foreign_key_elsewhere",
    "auth_null_tokens",
    "trigger",
]

#: A problem makes the schema incompatible (exit 1); a note is shown only (exit 0).
Severity = Literal["problem", "note"]

#: The schema the app's tables live in.
SCHEMA: Final = "public"
#: Supabase's auth schema: read, never written.
AUTH_SCHEMA: Final = "auth"

#: Called with each statement just before :func:`apply_fixes` runs it.
BeforeStatement = Callable[[str], None]


@dataclass(frozen=True)
class Problem:
    """One finding: a difference between the live schema and what the tool writes, or a note."""

    #: The table (``auth.users`` for Supabase's users table).
    table: str
    #: The column concerned (its live name); None for a whole table.
    column: str | None
    kind: ProblemKind
    #: One line: where, what, the value found, and the fix.
    message: str
    #: SQL that fixes it, shown to a person (several statements on several lines).
    fix_sql: str | None = None
    #: ``problem`` (the schema is incompatible) or ``note`` (shown only).
    severity: Severity = "problem"
    #: The statements ``--apply`` runs for it, in order; empty when it runs none.
    apply_sql: tuple[str, ...] = ()

    @property
    def is_problem(self) -> bool:
        """Return whether it makes the schema incompatible (``severity == 'problem'``)."""
        return self.severity == "problem"


@dataclass(frozen=True)
class ForeignKeyNeed:
    """A foreign key the tool's schema declares, or one the app's embedded joins rely on."""

    table: str
    column: str
    referred_table: str
    referred_column: str
    #: Whether ``seeding.domain.schema`` leaves it out on purpose (an embedded join's key).
    embedded_join: bool = False

    @property
    def name(self) -> str:
        """Return the name PostgreSQL (and the app's embed hints) give it."""
        return f"{self.table}_{self.column}_fkey"


#: Foreign keys the embedded joins need that ``seeding.domain.schema`` leaves out on purpose.
UNDECLARED_FOREIGN_KEYS: Final = tuple(
    ForeignKeyNeed(kind.table, ref.column, ref.table, ref.target_column, embedded_join=True)
    for kind in KINDS.values()
    for ref in kind.undeclared_references
    if ref.embedded_join
)

#: Live types accepted for an expected one besides itself (see the module docstring).
COMPATIBLE_TYPES: Final[dict[str, frozenset[str]]] = {
    "text[]": frozenset({"character varying[]"}),
    "jsonb": frozenset({"json"}),
    "integer": frozenset({"bigint", "numeric"}),
    "double precision": frozenset({"numeric"}),
    "numeric": frozenset({"double precision"}),
}

#: Live types any of the tool's values is written as (its text), as seeding.db.fit does.
_TEXT_TYPES: Final = frozenset({"text", "character varying", "character"})

# SQLAlchemy leaves the dialect constructor unannotated.
_DIALECT: Final = PGDialect()  # type: ignore[no-untyped-call]
#: The kinds of live relation compared with the tool's tables (a view is not one).
_TABLE_KINDS: Final = ("table", "partitioned table")
#: The first name in a CHECK's text: the column a list of its values is about.
_FIRST_NAME: Final = re.compile(
    r'^\s*(?:CHECK\b)?[\s(]*(?:"((?:[^"]|"")*)"|([A-Za-z_][A-Za-z0-9_$]*))', re.IGNORECASE
)
#: Each kind by its table's name.
_KIND_OF_TABLE: Final[Mapping[str, Kind]] = {kind.table: kind for kind in KINDS.values()}


def diagnose(connection: Connection) -> list[Problem]:
    """Return what the live database lacks for the tool's rows, and the notes (see module).

    Reads the catalog of ``public`` and ``auth``, and counts the auth users with NULL token
    columns; writes nothing. Findings come table by table in write order (missing table, then
    per column: missing, type, vocabulary; then unfilled NOT NULL columns), then the foreign
    keys, the auth users, and the triggers.

    Args:
        connection: A connection to the database to examine.

    Returns:
        The problems and notes found (:attr:`Problem.severity`); no problem when the schema
        is compatible.

    Raises:
        DatabaseError: When the catalog cannot be read.

    """
    catalog = read_catalog(connection, (SCHEMA, AUTH_SCHEMA))
    app_database = catalog.has_schema(AUTH_SCHEMA)
    live_tables = {
        table.name: table
        for table in catalog.tables.values()
        if table.schema == SCHEMA and table.kind in _TABLE_KINDS
    }

    found: list[Problem] = []
    for table in APP_TABLES:
        kind = _KIND_OF_TABLE.get(table.name)
        live = live_tables.get(table.name)
        if live is None:
            found.append(_missing_table(table.name, app_database))
            continue
        written: set[str] = set()
        for column in table.columns:
            found.extend(_column_findings(table, kind, column, live, written))
        found.extend(_unfilled_problems(table.name, live, written))
    found.extend(_foreign_key_findings(live_tables, app_database))
    found.extend(_auth_token_problems(connection, catalog))
    found.extend(_trigger_notes(catalog, live_tables))
    return found


def problems_in(found: Iterable[Problem]) -> list[Problem]:
    """Return the problems among findings (not the notes)."""
    return [problem for problem in found if problem.is_problem]


def notes_in(found: Iterable[Problem]) -> list[Problem]:
    """Return the notes among findings."""
    return [problem for problem in found if not problem.is_problem]


def apply_fixes(
    connection: Connection,
    problems: Iterable[Problem],
    *,
    allow_remote: bool = False,
    before: BeforeStatement | None = None,
) -> list[str]:
    """Run the additive fixes of ``problems`` (``apply_sql``) in the caller's transaction.

    Only problems (not notes) are fixed, and only by what their ``apply_sql`` holds: enum
    labels added, list CHECKs widened, missing foreign keys added on columns that have none.
    Nothing in ``auth`` is touched. The write guard checks where the connection went first
    (call :func:`seeding.db.guard.ensure_writable` before connecting, too).

    Args:
        connection: A connection inside the transaction to run the statements in.
        problems: Findings as :func:`diagnose` returns them.
        allow_remote: Write even to a host that is neither local nor in ``SEED_ALLOW_HOSTS``.
        before: Called with each statement just before it runs (the CLI prints it).

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
        if not problem.is_problem:
            continue
        for statement in problem.apply_sql:
            if before is not None:
                before(statement)
            try:
                execute(connection, sql.SQL(statement))
            except sa_exc.DBAPIError as error:
                where = f"{problem.table}.{problem.column}" if problem.column else problem.table
                raise DatabaseError(
                    f"{where}: the fix failed, nothing was applied: {describe(error)}; "
                    f"statement: {statement}"
                ) from None
            run.append(statement)
    return run


@dataclass(frozen=True)
class Diagnosis:
    """What ``seed db doctor`` found: the fixes it applied, then the problems and notes left."""

    #: The statements run (``--apply``), in order.
    applied: tuple[str, ...]
    #: The problems found after them; empty when the schema is compatible.
    problems: tuple[Problem, ...]
    #: The notes: deliberate or harmless differences, shown only.
    notes: tuple[Problem, ...] = ()


def check_database(
    database_url: str | guard.Endpoint | database.Target,
    *,
    apply: bool = False,
    allow_remote: bool = False,
    before: BeforeStatement | None = None,
) -> Diagnosis:
    """Diagnose a database and, with ``apply``, run the additive fixes: ``seed db doctor``.

    One transaction: the findings, the fixes and the findings left are read on one snapshot,
    a failed fix leaves nothing applied, and the fixes are committed before this returns (a
    run that follows may use an added enum label). Without ``apply`` nothing is written.

    Args:
        database_url: The database (``postgres://`` or ``postgresql://``), its endpoint or
            its target.
        apply: Run the fixes (:func:`apply_fixes`); the write guard decides before connecting.
        allow_remote: Apply even on a host that is neither local nor in ``SEED_ALLOW_HOSTS``.
        before: Called with each statement just before it runs.

    Raises:
        ConfigurationError: When the URL cannot be read, or the guard refuses the server.
        DatabaseError: When the database cannot be reached, the catalog cannot be read, or a
            fix fails (nothing is then applied).

    """
    endpoint = database.endpoint_of(database_url)
    if apply and not allow_remote:
        guard.ensure_writable(endpoint)
    engine = database.engine_for(endpoint)
    try:
        with database.transaction(engine) as connection:
            found = diagnose(connection)
            applied = (
                apply_fixes(connection, found, allow_remote=allow_remote, before=before)
                if apply else []
            )
            if applied:
                found = diagnose(connection)
    finally:
        engine.dispose()
    return Diagnosis(tuple(applied), tuple(problems_in(found)), tuple(notes_in(found)))


def vocabulary(column: sa.Column[Any]) -> tuple[str, ...] | None:
    """Return the values the model allows in a column of the tool's schema, if it lists some.

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


def written_values(kind: Kind | None, column: sa.Column[Any]) -> tuple[str, ...] | None:
    """Return the values the tool may write in a model column, if it has a closed list.

    The model's vocabulary (:func:`vocabulary`) where it has one: no value outside it is
    stored, whatever a scenario names. Else the registry's vocabulary of that field
    (``Kind.vocabularies``), if any.
    """
    model = vocabulary(column)
    if model is not None or kind is None:
        return model
    key = kind.model.__mapper__.get_property_by_column(column).key
    listed = kind.vocabularies.get(key)
    return None if listed is None else tuple(str(value) for value in listed)


def allowed_values(definition: str) -> frozenset[str] | None:
    """Return the values a CHECK allows when it is a list of literals, else None.

    Reads ``col = ANY (ARRAY['a'::text, ...])`` (what ``pg_get_constraintdef`` makes of
    ``IN (...)``), ``col IN ('a', ...)`` and ``col = 'a' OR col = 'b'``; an ``IS NULL`` branch
    is allowed. A CHECK that negates, compares or pattern-matches is not a list, nor one
    that only allows NULL. The column is the first name in the CHECK, and every term must be
    about it (see :func:`seeding.db.catalog.allowed_values`, which reads it).

    Args:
        definition: The CHECK as ``pg_get_constraintdef`` returns it.

    """
    match = _FIRST_NAME.match(definition)
    if match is None:
        return None
    column = match[2] if match[1] is None else match[1].replace('""', '"')
    values = _listed(definition, column)
    return None if values is None else frozenset(values)


def _listed(definition: str, column: str) -> tuple[str, ...] | None:
    """Return the values a CHECK about ``column`` allows when it lists some, else None."""
    values = listed_values(definition, column)
    # A CHECK that allows only NULL lists nothing the doctor can widen.
    return values if values else None


def _missing_table(name: str, app_database: bool) -> Problem:
    fix = (
        "create it with the app's migrations"
        if app_database
        else "run `seed db create`, which creates the missing tables and leaves the others "
        "as they are"
    )
    return Problem(
        name,
        None,
        "missing_table",
        f"{name}: table missing from schema {SCHEMA}; the tool writes it; fix: {fix}",
    )


def _found_type(live: Column) -> str:
    """Return a live column's type as the doctor compares it: an enum by its unqualified name."""
    if live.is_enum and live.enum_name is not None:
        return live.enum_name
    return live.base_type


def _expected_type(column: sa.Column[Any]) -> str:
    """Return the PostgreSQL name of a model column's type, without modifiers."""
    if isinstance(column.type, sa.Enum) and column.type.name:
        return column.type.name
    compiled = column.type.compile(dialect=_DIALECT).lower()
    return re.sub(r"\(.*?\)", "", compiled).strip()


def _live_column(kind: Kind | None, name: str, live: Table) -> Column | None:
    """Return the live column a model column is written to: its own name, or a live name."""
    names = (name, *(kind.live_names.get(name, ()) if kind is not None else ()))
    return next((live.columns[n] for n in names if n in live.columns), None)


def _column_findings(
    table: sa.Table, kind: Kind | None, column: sa.Column[Any], live_table: Table,
    written: set[str],
) -> list[Problem]:
    live = _live_column(kind, column.name, live_table)
    if live is None:
        other = kind.live_names.get(column.name, ()) if kind is not None else ()
        also = f" (nor {', '.join(other)})" if other else ""
        return [
            Problem(
                table.name,
                column.name,
                "missing_column",
                f"{table.name}.{column.name}: the database has no such column{also}; "
                "the tool's values for it are not written (a run leaves it out)",
                severity="note",
            )
        ]
    where = f"{table.name}.{live.name}"
    if live.generated or live.identity == "a":
        how = "a generated column" if live.generated else "an identity column (ALWAYS)"
        return [
            Problem(
                table.name,
                live.name,
                "generated_column",
                f"{where}: {how}; the database fills it, the tool's values for it are not "
                "written",
                severity="note",
            )
        ]
    if live.name in written:
        return []
    written.add(live.name)
    expected = _expected_type(column)
    values = written_values(kind, column)
    if not _type_fits(expected, values is not None, live):
        found = _found_type(live)
        name = shown(live.name)
        return [
            Problem(
                table.name,
                live.name,
                "type_mismatch",
                f"{where}: type {found}, but the tool writes {expected}; fix: change the "
                f"column if the app agrees (ALTER TABLE {_table(table.name)} ALTER COLUMN "
                f"{name} TYPE {expected} USING {name}::{expected})",
            )
        ]
    if values is None:
        return []
    return _vocabulary_problems(table.name, live, values, live_table.checks)


def _type_fits(expected: str, has_vocabulary: bool, live: Column) -> bool:
    """Return whether the tool's values for a column can be written in the live column."""
    if live.base_type in _TEXT_TYPES:
        return True
    if has_vocabulary and live.is_enum:
        return True
    found = _found_type(live)
    return found == expected or found in COMPATIBLE_TYPES.get(expected, frozenset())


def _vocabulary_problems(
    table: str, live: Column, values: tuple[str, ...], checks: Sequence[Check]
) -> list[Problem]:
    column = live.name
    where = f"{table}.{column}"
    problems: list[Problem] = []
    if live.is_enum and live.enum_schema is not None and live.enum_name is not None:
        lacking = [value for value in values if value not in live.enum_labels]
        if lacking:
            statements = admit.enum_labels_added(live.enum_schema, live.enum_name, lacking)
            in_auth = live.enum_schema == AUTH_SCHEMA
            how = (
                "add the labels yourself (doctor never changes schema auth)"
                if in_auth else "`seed db doctor --apply` adds the labels"
            )
            problems.append(
                Problem(
                    table,
                    column,
                    "check_narrower",
                    f"{where}: enum {live.enum_name} lacks {_listing(lacking)}, which the "
                    f"tool may write; fix: {how}",
                    "\n".join(statements),
                    apply_sql=() if in_auth else statements,
                )
            )
    for check in checks:
        if check.columns != (column,) or not check.enforced:
            continue
        allowed = _listed(check.definition, column)
        if allowed is None:
            continue
        lacking = [value for value in values if value not in allowed]
        if not lacking:
            continue
        statement = admit.check_widened(SCHEMA, table, check, column, allowed, lacking)
        problems.append(
            Problem(
                table,
                column,
                "check_narrower",
                f"{where}: CHECK {check.name} lacks {_listing(lacking)}, which the tool "
                "may write; fix: `seed db doctor --apply` widens it to what it allows and "
                "what the tool writes",
                statement,
                apply_sql=(statement,),
            )
        )
    return problems


def _unfilled_problems(table: str, live: Table, written: set[str]) -> list[Problem]:
    problems: list[Problem] = []
    for column in live.required_columns():
        if column.name in written:
            continue
        alter = f"ALTER TABLE {_table(table)} ALTER COLUMN {shown(column.name)}"
        problems.append(
            Problem(
                table,
                column.name,
                "not_null_unfilled",
                f"{table}.{column.name}: NOT NULL without a default, and the tool does not write "
                f"it, so every row the tool inserts into {table} would fail; fix: give it "
                f"a default ({alter} SET DEFAULT ...) or drop NOT NULL ({alter} DROP NOT NULL)",
            )
        )
    return problems


def foreign_key_needs() -> list[ForeignKeyNeed]:
    """Return the foreign keys to check: the tool schema's and the undeclared ones."""
    declared = [
        ForeignKeyNeed(table.name, key.parent.name, key.column.table.name, key.column.name)
        for table in Base.metadata.sorted_tables
        for key in sorted(table.foreign_keys, key=lambda key: key.parent.name)
    ]
    return declared + list(UNDECLARED_FOREIGN_KEYS)


def _foreign_key_findings(
    live_tables: Mapping[str, Table], app_database: bool
) -> list[Problem]:
    found: list[Problem] = []
    for need in foreign_key_needs():
        live = live_tables.get(need.table)
        referred = live_tables.get(need.referred_table)
        # A missing table or column is reported already, and the fix could not run.
        if live is None or referred is None or referred.column(need.referred_column) is None:
            continue
        column = _live_column(_KIND_OF_TABLE.get(need.table), need.column, live)
        if column is None:
            continue
        keys = live.foreign_keys_on(column.name)
        if any(_satisfies(key, column.name, need) for key in keys):
            continue
        if keys:
            found.append(_key_elsewhere(need, column.name, keys[0]))
        else:
            found.append(_missing_key(need, column.name, live, app_database))
    return found


def _satisfies(key: ForeignKey, column: str, need: ForeignKeyNeed) -> bool:
    return (
        key.columns == (column,)
        and key.target_schema == SCHEMA
        and key.target_table == need.referred_table
        and key.target_columns == (need.referred_column,)
    )


def _key_elsewhere(need: ForeignKeyNeed, column: str, key: ForeignKey) -> Problem:
    """Return the finding for a column whose key points elsewhere (never given a second)."""
    where = f"{need.table}.{column}"
    target = f"{need.referred_table}({need.referred_column})"
    names = (key.target_table,) if key.target_schema == SCHEMA else (
        key.target_schema, key.target_table
    )
    found = shown(*names) + f"({', '.join(shown(c) for c in key.target_columns)})"
    referred = _KIND_OF_TABLE.get(need.referred_table)
    to_auth = (key.target_schema, key.target_table) == (AUTH_SCHEMA, "users")
    if to_auth and referred is not None and referred.auth_user is not None:
        person = (
            f"each {referred.name}'s auth user id ({need.referred_table}.{referred.auth_user})"
        )
        embed = (
            f"; PostgREST cannot embed {need.referred_table} through it (PGRST200)"
            if need.embedded_join else ""
        )
        why = (
            f" (one to {target} beside it would refuse every value this one accepts)"
            if referred.auth_user != need.referred_column else ""
        )
        return Problem(
            need.table,
            column,
            "foreign_key_elsewhere",
            f"{where}: its foreign key {key.name} points at {found}, not {target}: a run "
            f"writes {person} there, as the key wants{embed}; doctor never adds a second "
            f"key on a column that has one{why}",
            severity="note",
        )
    return Problem(
        need.table,
        column,
        "foreign_key_elsewhere",
        f"{where}: its foreign key {key.name} points at {found}, but the tool writes "
        f"{target} ids there, which the key refuses; fix: the app's migrations decide "
        f"(doctor adds no second key on a column that has one)",
    )


def _missing_key(
    need: ForeignKeyNeed, column: str, live: Table, app_database: bool
) -> Problem:
    """Return the finding for a column without any key: a problem, or a note (own schema)."""
    name = need.name
    taken = _constraint_named(live, name)
    renamed = ""
    if taken is not None:
        name = f"{need.table}_{need.column}_{need.referred_table}_fkey"
        renamed = f" ({need.name} is taken by a constraint {taken}; the fix names it {name})"
    target = f"{need.referred_table}({need.referred_column})"
    statement = (
        f"ALTER TABLE {_table(need.table)} ADD CONSTRAINT {shown(name)} "
        f"FOREIGN KEY ({shown(column)}) REFERENCES "
        f"{_table(need.referred_table)}({shown(need.referred_column)}) NOT VALID;"
    )
    where = f"{need.table}.{column}"
    joins = f"PostgREST embedded joins ({need.referred_table}!{name}) fail with PGRST200"
    if need.embedded_join and not app_database:
        return Problem(
            need.table,
            column,
            "missing_foreign_key",
            f"{where}: no foreign key to {target}, on purpose: the app's migrations point it "
            "at auth.users, which the tool's own schema (`seed db create`, no auth schema) "
            f"lacks, so it has none; {joins}; `--apply` leaves it: add it yourself if you "
            f"embed here{renamed}",
            statement,
            severity="note",
        )
    return Problem(
        need.table,
        column,
        "missing_foreign_key",
        f"{where}: no foreign key at all, where the tool's schema has one to {target}, so "
        f"{joins}{renamed}; fix: `seed db doctor --apply` adds it NOT VALID (existing orphan "
        "rows do not block it, new rows are checked)",
        statement,
        apply_sql=(statement,),
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


def _auth_token_problems(connection: Connection, catalog: Catalog) -> list[Problem]:
    """Count the auth users with NULL in a token column: each breaks every sign-in."""
    users = catalog.table("users", AUTH_SCHEMA)
    if users is None:
        return []
    columns = [name for name in TOKEN_COLUMNS if name in users.columns]
    if not columns:
        return []
    where = " OR ".join(f"{quote(name)} IS NULL" for name in columns)
    try:
        with connection.begin_nested():
            count = connection.execute(
                sa.text(f"SELECT count(*) FROM {quote(AUTH_SCHEMA, 'users')} WHERE {where}")
            ).scalar_one()
    except sa_exc.DBAPIError as error:
        return [
            Problem(
                "auth.users",
                None,
                "auth_null_tokens",
                f"auth.users: could not count the users with NULL token columns "
                f"({describe(error)}); a NULL there fails every sign-in",
                severity="note",
            )
        ]
    if not count:
        return []
    shown_where = " OR ".join(f"{shown(name)} IS NULL" for name in columns)
    sets = ", ".join(f"{shown(name)} = coalesce({shown(name)}, '')" for name in columns)
    statement = f"UPDATE {shown(AUTH_SCHEMA, 'users')} SET {sets} WHERE {shown_where};"
    users_text = "user has" if count == 1 else "users have"
    return [
        Problem(
            "auth.users",
            None,
            "auth_null_tokens",
            f"auth.users: {count} {users_text} NULL in a token column ({', '.join(columns)}); "
            "the sign-in server fails every sign-in while one does ('Database error querying "
            "schema'); fix: run the UPDATE yourself (doctor never writes to auth)",
            statement,
        )
    ]


def _trigger_notes(catalog: Catalog, live_tables: Mapping[str, Table]) -> list[Problem]:
    """Note each trigger on the seeded tables and on auth.users, and what the tool does."""
    users = catalog.table("users", AUTH_SCHEMA)
    upserted = {
        kind.table for kind in KINDS.values() if kind.auth_user == "id" and users is not None
    }
    tables: list[Table] = [live_tables[t.name] for t in APP_TABLES if t.name in live_tables]
    if users is not None:
        tables.append(users)
    notes: list[Problem] = []
    for table in tables:
        name = table.name if table.schema == SCHEMA else table.qualified_name
        for trigger in table.triggers:
            what = _trigger_effect(table, trigger, upserted, recorded=users is not None)
            notes.append(
                Problem(
                    name,
                    None,
                    "trigger",
                    f"{name}: trigger {trigger.name} ({_trigger_timing(trigger)}, "
                    f"{trigger.function}): {what}",
                    severity="note",
                )
            )
    return notes


def _trigger_timing(trigger: Trigger) -> str:
    events = " OR ".join(
        f"UPDATE OF {', '.join(trigger.update_columns)}"
        if event == "UPDATE" and trigger.update_columns else event
        for event in trigger.events
    )
    row = "FOR EACH ROW" if trigger.for_each_row else "FOR EACH STATEMENT"
    disabled = "" if trigger.enabled else ", disabled"
    return f"{trigger.timing} {events} {row}{disabled}"


def _trigger_effect(
    table: Table, trigger: Trigger, upserted: set[str], *, recorded: bool
) -> str:
    """Say what a run and a reset do about a trigger (``recorded``: its rows go to the ledger).

    On Supabase (an ``auth`` schema) a run records the rows the app's triggers make that
    point at its rows by a foreign key (:func:`seeding.runner._app_made`); elsewhere it does not.
    """
    made = (
        "rows it makes that point at the run's rows by a foreign key are recorded in the "
        "run's ledger and reset with it"
        if recorded else "rows it makes are not the run's: `seed reset` leaves them"
    )
    if not trigger.enabled:
        return "disabled: it fires neither on a run nor on a reset"
    auth = table.schema == AUTH_SCHEMA
    each = "for each row" if trigger.for_each_row else "once for each table"
    parts: list[str] = []
    if "INSERT" in trigger.events:
        if auth:
            parts.append(
                f"fires for each seeded person's auth user; {made}"
                + (
                    f"; where it makes the person's {', '.join(sorted(upserted))} row, the run "
                    "writes its full row over it (INSERT ... ON CONFLICT (id) DO UPDATE)"
                    if upserted else ""
                )
            )
        elif trigger.timing == "BEFORE":
            parts.append(
                f"fires {each} the run writes and may change or refuse its values: "
                "what it stores wins over the scenario's"
            )
        else:
            parts.append(
                f"fires {each} the run writes; {made}"
            )
    if "UPDATE" in trigger.events:
        if table.schema == SCHEMA and table.name in upserted:
            parts.append(
                "fires when the run writes a row over the one the auth trigger made"
            )
        elif "INSERT" not in trigger.events:
            parts.append(
                "the run only inserts: it fires when the app updates the rows later"
                if not auth else "the run never updates auth users: it does not fire"
            )
    if "DELETE" in trigger.events:
        parts.append("fires when `seed reset` deletes the run's rows")
    if trigger.events == ("TRUNCATE",):
        parts.append("the tool never truncates: it does not fire")
    return "; ".join(parts)


def _table(name: str) -> str:
    return shown(SCHEMA, name)


def _listing(values: Iterable[str]) -> str:
    return ", ".join(admit.literal(value) for value in values)
