"""What a reset selects and would delete: the runs chosen, the rows per table, the blockers.

:func:`plan_reset` reads it and changes nothing; the plan is a plain value that
:mod:`seeding.reset.execution` deletes, and that ``seed reset --dry-run`` prints.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath
from typing import Final

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from seeding.db import database, ledger
from seeding.db.catalog import Catalog, read_catalog
from seeding.domain.schema import APP_TABLES
from seeding.errors import ConfigurationError, DatabaseError, SchemaError
from seeding.reset.blockers import (
    Blocker,
    find_blockers,
    live_named,
    live_references,
    merge_references,
    references,
)
from seeding.reset.tables import APP_SCHEMA, AUTH_SCHEMA, app_table, live_columns

#: How many runs an error message lists before "and N more".
_RUNS_LISTED: Final = 10


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
    live = live_columns(catalog)
    absent = tuple(table.name for table in APP_TABLES if table.name not in live)
    if all_tables:
        counts = _count_all(connection, live)
        foreign_keys = live_references(connection, catalog)
        blockers = find_blockers(connection, foreign_keys, counts, live, run_ids=None)
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
        recreate = (
            "restore them from the app's migrations (`supabase db reset` on a local stack)"
            if catalog.has_schema(AUTH_SCHEMA)
            else "recreate the missing tables with `seed db create`"
        )
        raise SchemaError(
            f"the ledger lists rows of {_names(missing)}, which the database lacks; nothing "
            f"was deleted; fix: {recreate} (their rows went with them), then reset again"
        )
    counts, whole = _count_runs(connection, run_ids, listed)
    checked = merge_references(live_named(references(), live), live_references(connection, catalog))
    blockers = find_blockers(connection, checked, counts, live, run_ids=run_ids, whole=whole)
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

    A path is told from a name as ``seeding.scenario.files.locate`` tells it (a ``.yaml`` or
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
                f"FROM {app_table(table)} AS x LEFT JOIN ("
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
            sa.text(f"SELECT count(*) FROM {app_table(table.name)}")
        ).scalar_one()
        if count:
            counts[table.name] = count
    return counts


def _names(tables: Sequence[str]) -> str:
    return ("table " if len(tables) == 1 else "tables ") + ", ".join(tables)
