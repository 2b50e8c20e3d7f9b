"""Carrying out a reset: the locks, one transaction, and the delete of a plan without blockers.

Choices made here, and nowhere else:

- While it deletes, a reset holds the run lock (a run and a reset never interleave) and locks
  the app's tables against writes (SHARE ROW EXCLUSIVE; reads go on), so that no row starts to
  point at a seeded row between the check and the delete, which a reference without a foreign
  key would not catch.
- A dry run reads one snapshot (REPEATABLE READ, READ ONLY) and takes no lock, so it works on
  a database the write guard protects. With a confirmation, the plan shown is read the same
  way (nobody waits on a person); the delete plans again under the locks and deletes nothing
  if the plan changed in between.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final, Literal

import sqlalchemy as sa
from psycopg import sql
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from seeding.callbacks import Notify
from seeding.db import constraints, database, guard, ledger
from seeding.db.catalog import read_catalog
from seeding.db.identifiers import execute as execute_composed
from seeding.db.identifiers import identifier
from seeding.domain.schema import APP_TABLES
from seeding.errors import DatabaseError
from seeding.reset.blockers import blocked_error
from seeding.reset.plan import ResetPlan, check_selection, plan_reset
from seeding.reset.tables import APP_SCHEMA, app_table, live_columns

#: How a reset ended: rows deleted, a dry run, declined at the confirmation, or nothing to do.
Outcome = Literal["deleted", "dry_run", "aborted", "nothing"]

#: PostgreSQL's SQLSTATE for a lock that NOWAIT could not take.
_LOCK_NOT_AVAILABLE: Final = "55P03"


@dataclass(frozen=True)
class ResetResult:
    """How a reset ended, the plan it followed, and the rows it deleted per table."""

    plan: ResetPlan
    outcome: Outcome
    deleted: Mapping[str, int] = field(default_factory=dict)


def execute(connection: Connection, plan: ResetPlan) -> dict[str, int]:
    """Delete what a plan selects, children before parents, in the caller's transaction.

    Call it under the run lock, with the plan read in the same transaction (as
    :func:`reset_database` does). On an error the caller's transaction is to be rolled back.

    Returns:
        The rows deleted per table, children first; tables with none left out.

    Raises:
        ResetBlockedError: When the plan has blockers (nothing is deleted).
        DatabaseError: When the rows deleted are not the rows planned, or a delete fails.

    """
    if plan.blockers:
        raise blocked_error(plan.blockers)
    if plan.all_tables:
        deleted: dict[str, int] = {}
        # A row-by-row key check of a bulk delete scans the child table per row: set the
        # app's keys aside and add them back (each checks every row once).
        bulk = plan.total >= constraints.BULK_ROWS
        keys = constraints.drop_foreign_keys(connection) if bulk else []
        for table in reversed(APP_TABLES):
            if table.name in plan.absent_tables:
                continue
            result = connection.execute(sa.text(f"DELETE FROM {app_table(table.name)}"))
            if result.rowcount:
                deleted[table.name] = result.rowcount
        constraints.add_foreign_keys(connection, keys)
        if plan.has_ledger:
            ledger.forget_runs(connection, plan.run_ids)
    else:
        deleted = ledger.delete_runs(connection, plan.run_ids)
    if deleted != dict(plan.counts):
        raise DatabaseError(
            f"the reset would have deleted {_counts(deleted)} rather than the planned "
            f"{_counts(plan.counts)}; nothing was deleted; run it again"
        )
    return deleted


def reset_database(
    database_url: str | guard.Endpoint,
    *,
    run_id: str | uuid.UUID | None = None,
    scenario: str | None = None,
    all_tables: bool = False,
    dry_run: bool = False,
    wait: bool = True,
    notify: Notify | None = None,
    confirm: Callable[[ResetPlan], bool] | None = None,
    allow_remote: bool = False,
) -> ResetResult:
    """Reset a database: the library call behind ``seed reset``.

    Deletes the rows of the selected runs (all runs by default) and their ledger entries, in
    one transaction; or, with ``all_tables``, every row of every app table and the ledger.
    Rows the tool did not write are never touched: when one points at a row that would go,
    nothing is deleted.

    Args:
        database_url: The database (``postgres://`` or ``postgresql://``).
        run_id: Only this run.
        scenario: Only the runs of this scenario.
        all_tables: Empty every app table; refused unless the database is local.
        dry_run: Only plan (read only; the write guard does not apply).
        wait: When a run, a reset or the app's transactions hold the locks, wait for them
            (else fail at once).
        notify: Called with a line to show the user (e.g. that the reset is waiting).
        confirm: Asked with the plan before deleting; deletes only when it returns True.
        allow_remote: Delete even on a host that is neither local nor in ``SEED_ALLOW_HOSTS``
            (for a caller that created the database itself); ``all_tables`` stays local-only.

    Returns:
        The outcome, the plan and the rows deleted per table.

    Raises:
        ConfigurationError: When the selection is wrong, or the guard refuses the database
            (before connecting).
        ResetBlockedError: When kept rows point at rows that would be deleted (a dry run
            returns them in its plan instead).
        SchemaError: When a table or column the reset needs is missing.
        DatabaseError: When the database cannot be reached or a statement fails (nothing is
            then deleted).

    """
    check_selection(run_id=run_id, scenario=scenario, all_tables=all_tables)
    endpoint = database.endpoint_of(database_url)
    if all_tables:
        guard.ensure_local(
            endpoint,
            action="--all-tables",
            instead="to delete only the rows this tool wrote, run `seed reset` without it",
        )
    if not dry_run and not allow_remote:
        guard.ensure_writable(endpoint)
    engine = database.engine_for(endpoint)
    try:
        return _reset(
            engine, run_id=run_id, scenario=scenario, all_tables=all_tables, dry_run=dry_run,
            wait=wait, notify=notify, confirm=confirm,
            allow_remote=allow_remote and not all_tables,
        )
    finally:
        engine.dispose()


def _reset(
    engine: Engine,
    *,
    run_id: str | uuid.UUID | None,
    scenario: str | None,
    all_tables: bool,
    dry_run: bool,
    wait: bool,
    notify: Notify | None,
    confirm: Callable[[ResetPlan], bool] | None,
    allow_remote: bool,
) -> ResetResult:
    def plan_now(connection: Connection) -> ResetPlan:
        return plan_reset(connection, run_id=run_id, scenario=scenario, all_tables=all_tables)

    shown: ResetPlan | None = None
    if dry_run or confirm is not None:
        with _read_only(engine) as connection:
            shown = plan_now(connection)
        if dry_run:
            return ResetResult(shown, "dry_run")
        if shown.blockers:
            raise blocked_error(shown.blockers)
        if shown.is_empty:
            return ResetResult(shown, "nothing")
        assert confirm is not None
        if not confirm(shown):
            return ResetResult(shown, "aborted")
    with _writing(engine) as connection:
        guard.ensure_connection_writable(connection, allow_remote=allow_remote)
        ledger.hold_run_lock(connection, wait=wait, notify=notify)
        if ledger.exists(connection):
            ledger.ensure(connection)  # a ledger from an older version gets its blocks
        _lock_app_tables(connection, wait=wait, notify=notify)
        plan = plan_now(connection)
        if shown is not None and _selected(plan) != _selected(shown):
            raise DatabaseError(
                f"the database changed after the plan was shown (it would now delete "
                f"{_counts(plan.counts)}); nothing was deleted; run the reset again"
            )
        if plan.is_empty:
            return ResetResult(plan, "nothing")
        deleted = execute(connection, plan)
    return ResetResult(plan, "deleted", deleted)


@contextmanager
def _read_only(engine: Engine) -> Iterator[Connection]:
    """Yield a connection in a REPEATABLE READ, READ ONLY transaction (one snapshot)."""
    try:
        with engine.execution_options(isolation_level="REPEATABLE READ").begin() as connection:
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            yield connection
    except sa_exc.DBAPIError as error:
        raise DatabaseError(f"cannot plan the reset: {database.describe(error)}") from None


@contextmanager
def _writing(engine: Engine) -> Iterator[Connection]:
    """Yield a connection in one transaction; a failed statement rolls all of it back."""
    try:
        with engine.begin() as connection:
            yield connection
    except sa_exc.DBAPIError as error:
        raise DatabaseError(
            f"the database refused the reset, nothing was deleted: {database.describe(error)}"
        ) from None


def _lock_app_tables(connection: Connection, *, wait: bool, notify: Notify | None) -> None:
    """Lock the app's tables against writes until the transaction ends (reads go on).

    The plan reads the catalog again once they are locked: a transaction waited for may have
    changed them.
    """
    present = set(live_columns(read_catalog(connection, (APP_SCHEMA,))))
    names = [identifier(APP_SCHEMA, table.name) for table in APP_TABLES if table.name in present]
    if not names:
        return
    statement = sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(
        sql.SQL(", ").join(names)
    )
    try:
        with connection.begin_nested():
            execute_composed(connection, statement + sql.SQL(" NOWAIT"))
        return
    except sa_exc.OperationalError as error:
        if getattr(error.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
            raise
    busy = "another transaction is writing to the app's tables"
    if not wait:
        raise DatabaseError(f"{busy}; wait for it to end, or run again without --no-wait")
    if notify:
        notify(f"{busy}; waiting for it to end...")
    execute_composed(connection, statement)


def _selected(plan: ResetPlan) -> tuple[tuple[uuid.UUID, ...], dict[str, int]]:
    return plan.run_ids, dict(plan.counts)


def _counts(counts: Mapping[str, int]) -> str:
    if not counts:
        return "no rows"
    return ", ".join(f"{count} {table}" for table, count in counts.items())
