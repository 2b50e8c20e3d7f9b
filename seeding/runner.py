"""Running a scenario: load → plan → build → write, in one transaction, recorded in the ledger.

Everything that can be wrong with the scenario is found before the database is touched; the
write is one transaction (all or nothing) under an advisory lock, so two runs never interleave
and a run killed half-way leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from seeding import database, ledger, writer
from seeding.build import Built, build
from seeding.errors import DatabaseError
from seeding.plan import Plan, make_plan
from seeding.scenario_file import load
from seeding.schema import Base

#: The advisory-lock key every writing run holds for its transaction.
RUN_LOCK_KEY = 0x5EED_0002

Notify = Callable[[str], None]


@dataclass(frozen=True)
class RunResult:
    """What a run wrote: per table, in how long, and the ids of its named rows."""

    run_id: uuid.UUID
    scenario: str
    seed: int
    scale: float
    now: datetime
    counts: dict[str, int]
    replaced: dict[str, int]
    seconds: float
    refs: dict[str, uuid.UUID | list[uuid.UUID]] = field(default_factory=dict)
    expect: dict[str, str] = field(default_factory=dict)


def prepare(name_or_path: str, *, seed: int | None = None, scale: float = 1.0) -> tuple[Plan, Built]:
    """Load, check and build a scenario in memory, without a database.

    Raises:
        ScenarioError: When the scenario is malformed or names something unknown.
    """
    scenario, nodes = load(name_or_path)
    plan = make_plan(scenario, nodes, seed=seed, scale=scale)
    return plan, build(plan)


def _lock(connection: sa.Connection, *, wait: bool, notify: Notify | None) -> None:
    acquired = connection.execute(sa.select(sa.func.pg_try_advisory_xact_lock(RUN_LOCK_KEY))).scalar()
    if acquired:
        return
    if not wait:
        raise DatabaseError(
            "another seed run is writing to this database; wait for it, or run again without --no-wait"
        )
    if notify:
        notify("another seed run is writing to this database; waiting for it to finish...")
    connection.execute(sa.select(sa.func.pg_advisory_xact_lock(RUN_LOCK_KEY)))


def write_built(
    engine: sa.Engine,
    plan: Plan,
    built: Built,
    *,
    wait: bool = True,
    notify: Notify | None = None,
) -> RunResult:
    """Write a built scenario in one transaction, replacing earlier runs of it.

    Raises:
        DatabaseError: When the database refuses the rows (nothing is then written).
    """
    started = time.perf_counter()
    run_id = uuid.uuid4()
    ids = [row.id for row in built.rows]  # type: ignore[attr-defined]
    try:
        with engine.begin() as connection:
            _lock(connection, wait=wait, notify=notify)
            Base.metadata.create_all(connection, checkfirst=True)
            ledger.ensure(connection)
            replaced = ledger.delete_runs(connection, ledger.runs_to_replace(connection, plan.scenario, ids))
            counts = writer.write(connection, built.rows)
            ledger.record(
                connection, run_id, plan.scenario, plan.seed, plan.scale,
                ((row.__table__.name, row.id) for row in built.rows),  # type: ignore[attr-defined]
            )
    except sa_exc.IntegrityError as error:
        raise DatabaseError(
            f"the database refused the run: {database.describe(error)}; if rows this tool did not "
            "write point at rows of an earlier run, see `seed reset --dry-run`"
        ) from None
    except sa_exc.DBAPIError as error:
        raise DatabaseError(f"the run failed and wrote nothing: {database.describe(error)}") from None
    return RunResult(
        run_id=run_id, scenario=plan.scenario, seed=plan.seed, scale=plan.scale, now=plan.now,
        counts=counts, replaced=replaced, seconds=time.perf_counter() - started,
        refs=built.ref_ids(), expect=dict(plan.expect),
    )


def run_scenario(
    name_or_path: str,
    *,
    database_url: str,
    seed: int | None = None,
    scale: float = 1.0,
    wait: bool = True,
    notify: Notify | None = None,
) -> RunResult:
    """Seed a database with a scenario: the library call behind ``seed scenario``.

    Args:
        name_or_path: A shipped scenario's name, or a path to a scenario file.
        database_url: The database (``postgres://`` or ``postgresql://``).
        seed: The run's seed (default: the scenario's).
        scale: Multiplies the step counts; quotas are kept.
        wait: When another run holds the lock, wait for it (else fail at once).
        notify: Called with a line to show the user (e.g. that the run is waiting).

    Raises:
        ScenarioError: When the scenario is wrong (nothing is written).
        DatabaseError: When the database cannot be reached or refuses the rows (nothing written).
    """
    started = time.perf_counter()
    plan, built = prepare(name_or_path, seed=seed, scale=scale)
    engine = database.engine_for(database_url)
    try:
        result = write_built(engine, plan, built, wait=wait, notify=notify)
    finally:
        engine.dispose()
    return dataclasses.replace(result, seconds=time.perf_counter() - started)
