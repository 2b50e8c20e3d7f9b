"""Doctor's entry points: diagnose, apply the additive fixes, and both in one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from psycopg import sql
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from seeding.db import database, guard
from seeding.db.catalog import read_catalog
from seeding.db.database import describe
from seeding.db.identifiers import execute
from seeding.doctor.columns import column_findings, missing_table, unfilled_problems
from seeding.doctor.keys import foreign_key_findings
from seeding.doctor.live import auth_token_problems, trigger_notes
from seeding.doctor.problems import AUTH_SCHEMA, KIND_OF_TABLE, SCHEMA, BeforeStatement, Problem
from seeding.domain.schema import APP_TABLES
from seeding.errors import DatabaseError

#: The kinds of live relation compared with the tool's tables (a view is not one).
_TABLE_KINDS: Final = ("table", "partitioned table")


def diagnose(connection: Connection) -> list[Problem]:
    """Return what the live database lacks for the tool's rows, and notes (:mod:`seeding.doctor`).

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
        kind = KIND_OF_TABLE.get(table.name)
        live = live_tables.get(table.name)
        if live is None:
            found.append(missing_table(table.name, app_database))
            continue
        written: set[str] = set()
        for column in table.columns:
            found.extend(column_findings(table, kind, column, live, written))
        found.extend(unfilled_problems(table.name, live, written))
    found.extend(foreign_key_findings(live_tables, app_database))
    found.extend(auth_token_problems(connection, catalog))
    found.extend(trigger_notes(catalog, live_tables))
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
