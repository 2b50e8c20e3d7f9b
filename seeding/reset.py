"""Reset: delete exactly the rows the ledger records, or, on a local database, every app row.

A reset is planned before anything goes. :func:`plan_reset` reads which runs are selected, how
many rows of each table would be deleted, and the *blockers*: rows the reset would keep (rows
the tool did not write, or rows of runs not being reset) whose references point at rows it
would delete. :func:`execute` deletes a plan without blockers, children before parents, in the
caller's transaction. :func:`reset_database` is the whole of ``seed reset``: guard, lock, plan
and delete in one transaction, so that what was checked is what is deleted.

Choices made here, and nowhere else:

- The references checked are the foreign keys of ``seeding.schema``, the app's references
  that have no foreign key (:data:`UNDECLARED_REFERENCES`), and every one-column foreign key
  the live database has into an app table. The live app has more tables than the tool models,
  and a key ``ON DELETE CASCADE`` or ``SET NULL`` from one of them would otherwise change rows
  the tool did not write.
- A reference that matters (its target table has rows to delete) whose table or column the
  database lacks is a SchemaError: it cannot be checked, and "nothing points there" would be
  a guess.
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

import dataclasses
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence, Set
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePath
from typing import Final, Literal

import sqlalchemy as sa
from psycopg import sql
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from seeding import constraints, database, guard, ledger
from seeding.callbacks import Notify
from seeding.catalog import Catalog, read_catalog
from seeding.errors import ConfigurationError, DatabaseError, ResetBlockedError, SchemaError
from seeding.identifiers import execute as execute_composed
from seeding.identifiers import identifier, quote
from seeding.kinds import KINDS
from seeding.schema import APP_TABLES

#: How a reset ended: rows deleted, a dry run, declined at the confirmation, or nothing to do.
Outcome = Literal["deleted", "dry_run", "aborted", "nothing"]

#: The schema of the app's tables.
APP_SCHEMA: Final = "public"
#: Supabase's schema of auth users, whose rows a run on Supabase records.
AUTH_SCHEMA: Final = "auth"

#: The kinds of live relation that hold the app's rows (a view holds none).
_TABLE_KINDS: Final = ("table", "partitioned table")

#: How many runs an error message lists before "and N more".
_RUNS_LISTED: Final = 10

#: PostgreSQL's SQLSTATE for a lock that NOWAIT could not take.
_LOCK_NOT_AVAILABLE: Final = "55P03"


@dataclass(frozen=True)
class Reference:
    """A column whose values are the ids (or another key) of rows of an app table."""

    table: str
    column: str
    points_at_table: str
    points_at_column: str = "id"
    #: The referencing table's schema: live foreign keys may come from outside ``public``.
    schema: str = APP_SCHEMA
    #: The referencing table's one-column primary key; None when it has none (ctid is shown).
    primary_key: str | None = "id"

    @property
    def where(self) -> str:
        """Return the referencing table's name, with its schema when that is not ``public``."""
        return self.table if self.schema == APP_SCHEMA else f"{self.schema}.{self.table}"

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """Return what identifies the reference, whichever way it was found."""
        return (self.schema, self.table, self.column, self.points_at_table, self.points_at_column)


#: The app's references that have no foreign key into ``public``. Each column holds an auth
#: user's id, which is also that user's ``profiles.id`` (see ``seeding.schema``); a tester's
#: request for a seeded customer is such a reference.
UNDECLARED_REFERENCES: Final = tuple(
    Reference(kind.table, ref.column, ref.table, ref.target_column)
    for kind in KINDS.values()
    for ref in kind.undeclared_references
)


def references() -> tuple[Reference, ...]:
    """Return the references the tool knows: the schema's foreign keys, then the undeclared."""
    declared = tuple(
        Reference(table.name, key.parent.name, key.column.table.name, key.column.name)
        for table in APP_TABLES
        for key in sorted(table.foreign_keys, key=lambda key: key.parent.name)
    )
    return declared + UNDECLARED_REFERENCES


@dataclass(frozen=True)
class RunInfo:
    """One run the ledger records."""

    id: uuid.UUID
    scenario: str
    seed: int
    scale: float
    started_at: datetime
    #: How many rows the run wrote.
    rows: int
    #: ``K/N`` for one shard of a tiled scenario.
    shard: str | None = None

    def describe(self) -> str:
        """Return ``id (scenario, seed, when, rows)`` for a message."""
        scale = f", scale {self.scale:g}" if self.scale != 1 else ""
        scale += f", shard {self.shard}" if self.shard else ""
        return (
            f"{self.id} ({self.scenario}, seed {self.seed}{scale}, "
            f"{self.started_at.isoformat(timespec='seconds')}, {self.rows:,} rows)"
        )


@dataclass(frozen=True)
class Blocker:
    """A row the reset would keep that points at a row it would delete."""

    #: The kept row's table (with its schema when that is not ``public``).
    table: str
    #: The kept row's primary key as text (its ctid when the table has no one-column key).
    row_id: str
    column: str
    points_at_table: str
    #: The id of the row that would be deleted.
    points_at_id: uuid.UUID
    #: The run that wrote the kept row, when a run not being reset did; None for rows the
    #: tool did not write.
    run_id: uuid.UUID | None

    def describe(self) -> str:
        """Return ``table id: column → table id`` and whose row it is, for a listing."""
        owner = f" (written by run {self.run_id})" if self.run_id else ""
        return (
            f"{self.table} {self.row_id}: {self.column} → "
            f"{self.points_at_table} {self.points_at_id}{owner}"
        )


@dataclass(frozen=True)
class ResetPlan:
    """What a reset would delete, and what stands in its way."""

    #: Whether the database has a seeding ledger at all.
    has_ledger: bool
    #: Every row of every app table and the whole ledger, rather than the runs' rows.
    all_tables: bool
    #: The runs whose rows and ledger entries would go.
    runs: tuple[RunInfo, ...]
    #: Rows that would be deleted per app table, children first; tables with none left out.
    counts: Mapping[str, int]
    blockers: tuple[Blocker, ...] = ()
    #: App tables the database lacks (none of the runs' rows are in them).
    absent_tables: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        """Return how many rows would be deleted."""
        return sum(self.counts.values())

    @property
    def run_ids(self) -> tuple[uuid.UUID, ...]:
        """Return the ids of the runs that would go."""
        return tuple(run.id for run in self.runs)

    @property
    def is_empty(self) -> bool:
        """Return whether there is nothing to delete: no rows and no runs."""
        return not self.runs and not self.total


@dataclass(frozen=True)
class ResetResult:
    """How a reset ended, the plan it followed, and the rows it deleted per table."""

    plan: ResetPlan
    outcome: Outcome
    deleted: Mapping[str, int] = field(default_factory=dict)


def check_selection(
    *, run_id: str | uuid.UUID | None = None, scenario: str | None = None, all_tables: bool = False
) -> None:
    """Refuse selections that contradict each other, before anything connects.

    Raises:
        ConfigurationError: When more than one of run, scenario and all tables is given.

    """
    if run_id is not None and scenario is not None:
        raise ConfigurationError(
            "--run and --scenario both choose runs; give one of them (or neither for all runs)"
        )
    if all_tables and (run_id is not None or scenario is not None):
        raise ConfigurationError(
            "--all-tables empties every app table, so it takes no --run or --scenario; "
            "leave out --all-tables to reset chosen runs"
        )


def plan_reset(
    connection: Connection,
    *,
    run_id: str | uuid.UUID | None = None,
    scenario: str | None = None,
    all_tables: bool = False,
) -> ResetPlan:
    """Read what a reset would delete and which rows stand in its way; change nothing.

    Args:
        connection: A connection to the database (inside a transaction, for one snapshot).
        run_id: Only this run (its uuid, as text or not).
        scenario: Only the runs of this scenario (a name, or a scenario file's path).
        all_tables: Every row of every app table, and the whole ledger.

    Returns:
        The plan; ``has_ledger`` is false (and nothing selected) on a database the tool never
        wrote to.

    Raises:
        ConfigurationError: When the selection contradicts itself or names no recorded run.
        SchemaError: When the ledger lists rows of a table the database lacks, or a reference
            that must be checked has no table or column.
        DatabaseError: When a query fails.

    """
    check_selection(run_id=run_id, scenario=scenario, all_tables=all_tables)
    try:
        with ledger.hash_joins(connection):
            return _plan(connection, run_id=run_id, scenario=scenario, all_tables=all_tables)
    except sa_exc.DBAPIError as error:
        raise DatabaseError(f"cannot plan the reset: {database.describe(error)}") from None


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
        raise _blocked(plan.blockers)
    if plan.all_tables:
        deleted: dict[str, int] = {}
        # A row-by-row key check of a bulk delete scans the child table per row: set the
        # app's keys aside and add them back (each checks every row once).
        bulk = plan.total >= constraints.BULK_ROWS
        keys = constraints.drop_foreign_keys(connection) if bulk else []
        for table in reversed(APP_TABLES):
            if table.name in plan.absent_tables:
                continue
            result = connection.execute(sa.text(f"DELETE FROM {_app_table(table.name)}"))
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
            raise _blocked(shown.blockers)
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
    present = set(_live_columns(read_catalog(connection, (APP_SCHEMA,))))
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


def _plan(
    connection: Connection,
    *,
    run_id: str | uuid.UUID | None,
    scenario: str | None,
    all_tables: bool,
) -> ResetPlan:
    has_ledger = ledger.exists(connection)
    catalog = read_catalog(connection, (APP_SCHEMA, ledger.SCHEMA, AUTH_SCHEMA))
    every = _runs(connection, catalog) if has_ledger else ()
    live = _live_columns(catalog)
    absent = tuple(table.name for table in APP_TABLES if table.name not in live)
    if all_tables:
        counts = _count_all(connection, live)
        live_references = _live_references(connection, catalog)
        blockers = _blockers(connection, live_references, counts, live, run_ids=None)
        return ResetPlan(has_ledger, True, every, counts, blockers, absent)
    if not has_ledger:
        if run_id is not None or scenario is not None:
            chosen = f"run {run_id}" if run_id is not None else f"run of scenario {scenario!r}"
            raise ConfigurationError(f"no {chosen}: this database has no seeding ledger")
        return ResetPlan(False, False, (), {}, (), absent)
    runs = _select(every, run_id=run_id, scenario=scenario)
    run_ids = [run.id for run in runs]
    listed = _listed_tables(connection, run_ids)
    missing = [name for name in listed if name not in live]
    if missing:
        raise SchemaError(
            f"the ledger lists rows of {_names(missing)}, which the database lacks; nothing "
            "was deleted; fix: recreate the missing tables with `seed db create` (their rows "
            "went with them), then reset again"
        )
    counts, whole = _count_runs(connection, run_ids, listed)
    checked = _merge(_live_named(references(), live), _live_references(connection, catalog))
    blockers = _blockers(connection, checked, counts, live, run_ids=run_ids, whole=whole)
    return ResetPlan(True, False, runs, counts, blockers, absent)


def _runs(connection: Connection, catalog: Catalog) -> tuple[RunInfo, ...]:
    table = ledger.runs
    # A ledger written before shards existed has no shard column (a reset only reads it).
    live = catalog.table(table.name, ledger.SCHEMA)
    sharded = live is not None and live.column("shard") is not None
    shard = table.c.shard if sharded else sa.null().label("shard")
    rows = connection.execute(
        sa.select(
            table.c.id, table.c.scenario, table.c.seed, table.c.scale, table.c.started_at,
            table.c.rows, shard,
        ).order_by(table.c.started_at, table.c.id)
    ).all()
    return tuple(
        RunInfo(id=row.id, scenario=row.scenario, seed=row.seed, scale=row.scale,
                started_at=row.started_at, rows=row.rows, shard=row.shard)
        for row in rows
    )


def _select(
    every: tuple[RunInfo, ...], *, run_id: str | uuid.UUID | None, scenario: str | None
) -> tuple[RunInfo, ...]:
    """Return the runs chosen by id, by scenario, or all of them."""
    if run_id is not None:
        try:
            wanted = run_id if isinstance(run_id, uuid.UUID) else uuid.UUID(run_id.strip())
        except ValueError:
            raise ConfigurationError(
                f"--run {run_id!r} is not a run id (a uuid); {_run_listing(every)}"
            ) from None
        chosen = tuple(run for run in every if run.id == wanted)
        if not chosen:
            raise ConfigurationError(f"no run {wanted} in the ledger; {_run_listing(every)}")
        return chosen
    if scenario is not None:
        name = scenario_name(scenario)
        chosen = tuple(run for run in every if run.scenario == name)
        if not chosen:
            raise ConfigurationError(
                f"no run of scenario {name!r} in the ledger; {_run_listing(every)}"
            )
        return chosen
    return every


def scenario_name(name_or_path: str) -> str:
    """Return the name runs of a scenario are recorded under: a file's stem, or the name.

    A path is told from a name as ``seeding.scenario_file.locate`` tells it (a ``.yaml`` or
    ``.yml`` suffix, or a slash); a run records its scenario file's stem.
    """
    path = PurePath(name_or_path)
    if path.suffix in (".yaml", ".yml") or "/" in name_or_path:
        return path.stem
    return name_or_path


def _run_listing(every: Sequence[RunInfo]) -> str:
    if not every:
        return "the ledger records no runs"
    shown = "; ".join(run.describe() for run in every[:_RUNS_LISTED])
    more = f"; and {len(every) - _RUNS_LISTED} more" if len(every) > _RUNS_LISTED else ""
    return f"runs in the ledger: {shown}{more}"


def _live_columns(catalog: Catalog) -> dict[str, dict[str, str]]:
    """Return the app's and Supabase's auth tables as the ledger names them, with column types."""
    return {
        _ledger_name(table.schema, table.name): {
            column.name: column.base_type for column in table.columns.values()
        }
        for table in catalog.tables.values()
        if table.schema in (APP_SCHEMA, AUTH_SCHEMA) and table.kind in _TABLE_KINDS
    }


def _ledger_name(schema: str, table: str) -> str:
    """Return a table's name as the ledger writes it (``auth.users``; ``profiles``)."""
    return table if schema == APP_SCHEMA else f"{schema}.{table}"


def _live_references(connection: Connection, catalog: Catalog) -> tuple[Reference, ...]:
    """Return the live one-column foreign keys into the app's tables, from any schema.

    ``catalog`` holds the app's schema. A key's own table shows its primary key only when its
    schema was read: the schemas it lacks are read here, once for all of them.
    """
    targets = [(APP_SCHEMA, table.name) for table in APP_TABLES]
    targets += [ledger.split(name) for name in ledger.AUTH_TABLES]
    keys = sorted(
        (
            key
            for schema, name in targets
            if (live := catalog.table(name, schema)) is not None
            for key in live.referenced_by
            if len(key.columns) == 1 and key.schema != ledger.SCHEMA
        ),
        key=lambda key: (key.schema, key.table, key.columns, key.target_table, key.name),
    )
    unread = sorted({key.schema for key in keys} - set(catalog.schemas))
    sources = (catalog, read_catalog(connection, unread)) if unread else (catalog,)

    def primary_key(schema: str, table: str) -> str | None:
        found = next((t for c in sources if (t := c.table(table, schema)) is not None), None)
        key = found.primary_key if found is not None else None
        return key.columns[0] if key is not None and len(key.columns) == 1 else None

    return tuple(
        Reference(key.table, key.columns[0], _ledger_name(key.target_schema, key.target_table),
                  key.target_columns[0], schema=key.schema,
                  primary_key=primary_key(key.schema, key.table))
        for key in keys
    )


def _live_named(refs: Sequence[Reference], live: Mapping[str, Mapping[str, str]]
                ) -> tuple[Reference, ...]:
    """Return the references under the names the live tables give their columns.

    The app names some columns otherwise (``vehicles.customer_id`` is its ``user_id``: the
    registry's ``live_names``); a reference is checked under the name the database has.
    """
    names = {kind.table: kind.live_names for kind in KINDS.values()}
    found = []
    for ref in refs:
        columns = live.get(ref.table, {})
        if ref.schema == APP_SCHEMA and ref.column not in columns:
            other = next((n for n in names.get(ref.table, {}).get(ref.column, ())
                          if n in columns), None)
            if other is not None:
                ref = dataclasses.replace(ref, column=other)
        found.append(ref)
    return tuple(found)


def _merge(*groups: Sequence[Reference]) -> tuple[Reference, ...]:
    """Return the references of every group, each once (the first met wins)."""
    merged: dict[tuple[str, str, str, str, str], Reference] = {}
    for group in groups:
        for reference in group:
            merged.setdefault(reference.key, reference)
    return tuple(merged.values())


def _listed_tables(connection: Connection, run_ids: Sequence[uuid.UUID]) -> list[str]:
    return list(
        connection.execute(
            sa.text("SELECT DISTINCT table_name FROM seeding.ledger WHERE run_id = ANY(:runs) "
                    "ORDER BY 1"),
            {"runs": list(run_ids)},
        ).scalars()
    )


def _count_runs(
    connection: Connection, run_ids: Sequence[uuid.UUID], listed: Sequence[str]
) -> tuple[dict[str, int], set[str]]:
    """Return how many rows of these runs each table holds, and the tables with no other row.

    The counts go children first. A table all of whose rows go has no kept row to point at
    anything, so the reset need not check its references (seven for ``session_requests``).
    One scan per table gives both figures.
    """
    counts: dict[str, int] = {}
    whole: set[str] = set()
    for table in ledger.deletion_order(listed):
        count, kept = connection.execute(
            sa.text(
                f"SELECT count(l.row_id), count(*) - count(l.row_id) "
                f"FROM {_app_table(table)} AS x LEFT JOIN ("
                "  SELECT row_id FROM seeding.ledger"
                "  WHERE table_name = :table AND run_id = ANY(:runs)) AS l ON l.row_id = x.id"
            ),
            {"table": table, "runs": list(run_ids)},
        ).one()
        if count:
            counts[table] = count
        if not kept:
            whole.add(table)
    return counts, whole


def _count_all(connection: Connection, live: Mapping[str, object]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in reversed(APP_TABLES):
        if table.name not in live:
            continue
        count = connection.execute(
            sa.text(f"SELECT count(*) FROM {_app_table(table.name)}")
        ).scalar_one()
        if count:
            counts[table.name] = count
    return counts


def _blockers(
    connection: Connection,
    checked: Sequence[Reference],
    counts: Mapping[str, int],
    live: Mapping[str, Mapping[str, str]],
    *,
    run_ids: Sequence[uuid.UUID] | None,
    whole: Set[str] = frozenset(),
) -> tuple[Blocker, ...]:
    """Return the kept rows that point at rows to delete.

    ``run_ids`` None means every row of every app table goes: only rows outside the app's
    tables are kept then. Every row of the app's tables in ``whole`` goes too.
    """
    app_tables = {table.name for table in APP_TABLES}
    relevant = [ref for ref in checked if counts.get(ref.points_at_table)]
    unchecked = [
        f"{ref.where}.{ref.column} (→ {ref.points_at_table})"
        if ref.table in live else f"table {ref.where} (its {ref.column} → {ref.points_at_table})"
        for ref in relevant
        if ref.schema == APP_SCHEMA
        and (ref.column not in live.get(ref.table, {})
             or ref.points_at_column not in live.get(ref.points_at_table, {}))
    ]
    if unchecked:
        raise SchemaError(
            f"cannot check which rows point at the rows the reset would delete: the database "
            f"lacks {', '.join(unchecked)}; nothing was deleted; fix: `seed db doctor` shows "
            "how the schema differs, `seed db create` adds missing tables"
        )
    found: list[Blocker] = []
    # The app's tables' references are checked per table, from its kept rows (see below).
    kept_by_table: dict[str, list[Reference]] = {}
    for ref in relevant:
        in_app = ref.schema == APP_SCHEMA and ref.table in app_tables
        if in_app and (run_ids is None or ref.table in whole):
            continue
        if in_app and run_ids is not None:
            kept_by_table.setdefault(ref.table, []).append(ref)
            continue
        on = _join_condition(
            ref, live, f"s.{quote(ref.column)}", f"d.{quote(ref.points_at_column)}"
        )
        row_id = f"s.{quote(ref.primary_key)}::text" if ref.primary_key else "s.ctid::text"
        query = (
            f"SELECT {row_id} AS row_id, d.id AS points_at_id "
            f"FROM {quote(ref.schema, ref.table)} AS s "
            f"JOIN {_app_table(ref.points_at_table)} AS d ON {on}"
        )
        if run_ids is not None:
            query += (
                " JOIN seeding.ledger AS dl ON dl.table_name = :target AND dl.row_id = d.id"
                " AND dl.run_id = ANY(:runs)"
            )
            if ref.primary_key is not None:
                # Rows the runs recorded there too (made by the app's triggers) go with them.
                query += (
                    " WHERE NOT EXISTS (SELECT FROM seeding.ledger AS sl WHERE sl.table_name "
                    f"= :source AND sl.row_id::text = s.{quote(ref.primary_key)}::text "
                    "AND sl.run_id = ANY(:runs))"
                )
        parameters = {"target": ref.points_at_table, "runs": list(run_ids or []),
                      "source": _ledger_name(ref.schema, ref.table)}
        for row in connection.execute(sa.text(query + " ORDER BY 1, 2"), parameters):
            found.append(
                Blocker(ref.where, row.row_id, ref.column, ref.points_at_table,
                        row.points_at_id, None)
            )
    for table, refs in kept_by_table.items():
        found += _kept_rows_in_the_way(connection, table, refs, live, list(run_ids or []))
    return tuple(sorted(found, key=lambda b: (b.table, b.row_id, b.column)))


def _join_condition(
    ref: Reference, live: Mapping[str, Mapping[str, str]], source: str, target: str
) -> str:
    """Return ``source = target`` for ``ref`` (two column expressions), as text if types differ."""
    source_type = live.get(ref.table, {}).get(ref.column) if ref.schema == APP_SCHEMA else None
    target_type = live[ref.points_at_table].get(ref.points_at_column)
    if source_type is not None and source_type != target_type:
        # A reference without a foreign key may be of another type (text for uuid).
        return f"{source}::text = {target}::text"
    return f"{source} = {target}"


def _kept_rows_in_the_way(
    connection: Connection,
    table: str,
    refs: Sequence[Reference],
    live: Mapping[str, Mapping[str, str]],
    run_ids: list[uuid.UUID],
) -> list[Blocker]:
    """Return the rows of an app table that the reset keeps and that point at rows it deletes.

    One query for all of the table's references: the kept rows (those of no run being reset)
    are found once, then each reference matches only them against the ids of its target's
    rows in the runs, and only those matches against the target table. Replacing a million
    requests beside a small run, the references of ``session_requests`` took 0.8 s each
    as plain joins of the whole table; most rows go, and what is kept is small.
    """
    columns = ", ".join(f"s.{quote(name)}" for name in sorted({ref.column for ref in refs}))
    parameters: dict[str, object] = {"source": table, "runs": run_ids}
    parts = []
    for index, ref in enumerate(refs):
        source = f"s.{quote(ref.column)}"
        if ref.points_at_column != "id":
            # The ledger holds ids: match the target's rows first, then their ids.
            on = _join_condition(ref, live, source, f"d.{quote(ref.points_at_column)}")
            parts.append(
                f"SELECT {index} AS ref, s.id::text AS row_id, d.id AS points_at_id "
                f"FROM kept AS s JOIN {_app_table(ref.points_at_table)} AS d ON {on} "
                f"JOIN seeding.ledger AS dl ON dl.table_name = :t{index} "
                "AND dl.row_id = d.id AND dl.run_id = ANY(:runs)"
            )
        else:
            # OFFSET 0 keeps the few matches apart, so that only they are looked up in the
            # target table (the planner takes a run's ids for ten rows and would otherwise
            # look up every one of them).
            on = _join_condition(ref, live, source, "dl.row_id")
            parts.append(
                f"SELECT {index} AS ref, m.id::text AS row_id, d.id AS points_at_id FROM ("
                f"  SELECT s.id, dl.row_id AS target FROM kept AS s JOIN ("
                f"    SELECT row_id FROM seeding.ledger WHERE table_name = :t{index}"
                f"    AND run_id = ANY(:runs)) AS dl ON {on} OFFSET 0) AS m "
                f"JOIN {_app_table(ref.points_at_table)} AS d ON d.id = m.target"
            )
        parameters[f"t{index}"] = ref.points_at_table
    query = (
        f"WITH kept AS MATERIALIZED (SELECT s.id, {columns} FROM {_app_table(table)} AS s "
        "WHERE NOT EXISTS (SELECT FROM seeding.ledger AS sl WHERE sl.table_name = :source "
        "AND sl.row_id = s.id AND sl.run_id = ANY(:runs))) "
        + " UNION ALL ".join(parts)
        + " ORDER BY 2, 3"
    )
    rows = connection.execute(sa.text(query), parameters).all()
    if not rows:
        return []
    # Whose rows they are: a run not being reset, or none (rows the tool did not write).
    owners: dict[str, uuid.UUID] = {
        str(row_id): run_id
        for row_id, run_id in connection.execute(
            sa.text(
                "SELECT row_id, run_id FROM seeding.ledger "
                "WHERE table_name = :source AND row_id::text = ANY(CAST(:ids AS text[]))"
            ),
            {"source": table, "ids": sorted({row.row_id for row in rows})},
        )
    }
    return [
        Blocker(table, row.row_id, refs[row.ref].column, refs[row.ref].points_at_table,
                row.points_at_id, owners.get(row.row_id))
        for row in rows
    ]


def _blocked(blockers: Sequence[Blocker]) -> ResetBlockedError:
    rows = len({(blocker.table, blocker.row_id) for blocker in blockers})
    foreign = len({(b.table, b.row_id) for b in blockers if b.run_id is None})
    whose = (
        "not written by this tool" if foreign == rows
        else "written by runs not being reset" if foreign == 0
        else f"{foreign} not written by this tool, {rows - foreign} of runs not being reset"
    )
    references_note = f" ({len(blockers)} references)" if len(blockers) != rows else ""
    return ResetBlockedError(
        f"reset refused, nothing was deleted: {rows} {'row' if rows == 1 else 'rows'} "
        f"({whose}) point at rows it would delete{references_note}; first: "
        f"{blockers[0].describe()}; fix: delete those rows or point them elsewhere, or reset "
        "the runs they belong to as well",
        blockers,
    )


def _counts(counts: Mapping[str, int]) -> str:
    if not counts:
        return "no rows"
    return ", ".join(f"{count} {table}" for table, count in counts.items())


def _names(tables: Sequence[str]) -> str:
    return ("table " if len(tables) == 1 else "tables ") + ", ".join(tables)


def _app_table(name: str) -> str:
    """Return a table the ledger names (``profiles``, ``auth.users``), quoted for SQL text."""
    return ledger.relation(name)
