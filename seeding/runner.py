"""Running a scenario: load → plan → build → write, in one transaction, recorded in the ledger.

Everything that can be wrong with the scenario is found before the database is touched; the
write is one transaction (all or nothing) under an advisory lock, so two runs never interleave
and a run killed half-way leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from seeding import constraints, database, ledger, tiles, variants, writer
from seeding.build import Built, build
from seeding.errors import DatabaseError, ScenarioError
from seeding.plan import Plan, make_plan
from seeding.scenario_file import load
from seeding.schema import APP_TABLES, Base
from seeding.tiles import Shard

Notify = Callable[[str], None]
#: Called with how many more rows were written.
Progress = Callable[[int], None]


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


def prepare(
    name_or_path: str, *, seed: int | None = None, scale: float = 1.0
) -> tuple[Plan, Built]:
    """Load, check and build a scenario in memory, without a database.

    Raises:
        ScenarioError: When the scenario is malformed or names something unknown.

    """
    scenario, nodes = load(name_or_path)
    plan = make_plan(scenario, nodes, seed=seed, scale=scale)
    return plan, build(plan)


def is_tiled(name_or_path: str, shard: Shard | None = None) -> bool:
    """Return whether a run of this scenario takes the tiled path.

    It does when the scenario has ``tiles:``, or when a shard was asked for (which only a
    tiled scenario accepts).

    Raises:
        ScenarioError: When the scenario cannot be loaded.

    """
    return shard is not None or load(name_or_path)[0].tiles is not None


def _open_run(connection: sa.Connection, *, wait: bool, notify: Notify | None) -> None:
    """Take the run lock, then create the app's tables and the ledger where missing."""
    ledger.hold_run_lock(connection, wait=wait, notify=notify)
    Base.metadata.create_all(connection, checkfirst=True)
    ledger.ensure(connection)


def _refused(error: Exception) -> Exception:
    """Return the one-line error a failed write is reported with (or the error itself)."""
    if isinstance(error, sa_exc.IntegrityError):
        return DatabaseError(
            f"the database refused the run: {database.describe(error)}; if rows this tool did not "
            "write point at rows of an earlier run, see `seed reset --dry-run`"
        )
    if isinstance(error, sa_exc.DBAPIError):
        return DatabaseError(f"the run failed and wrote nothing: {database.describe(error)}")
    first = database.driver_message(error)  # raised by psycopg outside SQLAlchemy (COPY)
    if first is not None:
        return DatabaseError(f"the run failed and wrote nothing: {first}")
    return error


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
            _open_run(connection, wait=wait, notify=notify)
            replaced = ledger.delete_runs(
                connection, ledger.runs_to_replace(connection, plan.scenario, ids)
            )
            counts = writer.write(connection, built.rows)
            ledger.record(
                connection, run_id, plan.scenario, plan.seed, plan.scale,
                ((row.__table__.name, row.id) for row in built.rows),  # type: ignore[attr-defined]
            )
    except Exception as error:
        raise _refused(error) from None
    return RunResult(
        run_id=run_id, scenario=plan.scenario, seed=plan.seed, scale=plan.scale, now=plan.now,
        counts=counts, replaced=replaced, seconds=time.perf_counter() - started,
        refs=built.ref_ids(), expect=dict(plan.expect),
    )


@dataclass(frozen=True)
class TiledPlan:
    """A tiled scenario's run: the copies to write, and the tile's first variant, built."""

    plan: Plan
    path: str
    copies: int
    variants: int
    shard: Shard
    first: dict[str, list[tuple[object, ...]]]

    @property
    def chosen(self) -> range:
        """Return the copies this run writes."""
        return self.shard.copies(self.copies)

    def variant_of(self, copy: int) -> int:
        """Return the variant a copy is made from."""
        return tiles.variant_of(copy, self.copies, self.variants)

    @property
    def rows(self) -> int:
        """Return how many app rows this run writes (every variant has the same counts)."""
        return sum(map(len, self.first.values())) * len(self.chosen)


def prepare_tiled(
    name_or_path: str, *, seed: int | None = None, scale: float = 1.0, shard: Shard = tiles.WHOLE
) -> TiledPlan:
    """Load a tiled scenario and build its tile once (the first variant), without a database.

    Raises:
        ScenarioError: When the scenario is malformed, is not tiled, or its tile cannot be built.

    """
    scenario, nodes = load(name_or_path)
    if scenario.tiles is None:
        raise ScenarioError(
            f"{scenario.path.name}: only a scenario with `tiles:` can be written in shards; "
            "drop --shard, or add `tiles: N` to the scenario (see docs/scenarios.md)"
        )
    if not (scale > 0 and math.isfinite(scale)):
        raise ScenarioError(f"--scale must be a positive number, not {scale}")
    # The tile is the steps at their own counts; the scale multiplies the copies.
    plan = dataclasses.replace(make_plan(scenario, nodes, seed=seed, scale=1.0), scale=scale)
    copies = tiles.copy_count(scenario.tiles, scale)
    return TiledPlan(
        plan=plan, path=str(scenario.path), copies=copies, variants=min(tiles.VARIANTS, copies),
        shard=shard, first=tiles.tile_rows(build(plan)),
    )


def write_tiled(
    engine: sa.Engine,
    tiled: TiledPlan,
    *,
    wait: bool = True,
    notify: Notify | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Write a tiled run's copies in one transaction, replacing earlier runs of the scenario.

    The other shards of the same split are not replaced.

    The variants after the first are built in a child process (see seeding.variants) while
    the copies of the ones before are written.

    Raises:
        ScenarioError: When a variant of the tile cannot be built (nothing is then written).
        DatabaseError: When the database refuses the rows (nothing is then written).

    """
    started = time.perf_counter()
    run_id = uuid.uuid4()
    plan = tiled.plan
    shard = str(tiled.shard) if tiled.shard.count > 1 else None
    blocks: dict[int, list[int]] = {}
    for i in tiled.chosen:
        blocks.setdefault(tiled.variant_of(i), []).append(i)
    counts: dict[str, int] = {}
    try:
        with variants.Builds(tiled.path, plan.seed, [v for v in blocks if v != 0]) as pending:
            with engine.begin() as connection:
                # Shards of one split started together take turns, each in its own transaction.
                _open_run(connection, wait=wait, notify=notify)
                replace = (
                    ledger.shards_to_replace(
                        connection, plan.scenario, seed=plan.seed, scale=plan.scale, shard=shard
                    )
                    if shard else ledger.runs_to_replace(connection, plan.scenario, [])
                )
                keys = constraints.drop_foreign_keys(connection, (*constraints.APP, ledger.BLOCKS))
                replaced = ledger.delete_runs(connection, replace)
                ledger.start_run(connection, run_id, plan.scenario, plan.seed, plan.scale, shard)
                encoder = tiles.Encoder(connection)
                for v, copies in blocks.items():
                    rows = tiled.first if v == 0 else pending.result(v)
                    variant = tiles.encode_variant(encoder, rows, run_id)
                    for table, n in tiles.stream(
                        connection, variant, copies, seed=plan.seed, progress=progress
                    ).items():
                        counts[table] = counts.get(table, 0) + n
                constraints.add_foreign_keys(connection, keys)
                ledger.finish_run(connection, run_id, sum(counts.values()))
    except Exception as error:
        raise _refused(error) from None
    ordered = {t.name: counts[t.name] for t in APP_TABLES if t.name in counts}
    return RunResult(
        run_id=run_id, scenario=plan.scenario, seed=plan.seed, scale=plan.scale, now=plan.now,
        counts=ordered, replaced=replaced, seconds=time.perf_counter() - started,
        expect=dict(plan.expect),
    )


def run_scenario(
    name_or_path: str,
    *,
    database_url: str,
    seed: int | None = None,
    scale: float = 1.0,
    shard: Shard | str | None = None,
    wait: bool = True,
    notify: Notify | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Seed a database with a scenario: the library call behind ``seed scenario``.

    Args:
        name_or_path: A shipped scenario's name, or a path to a scenario file.
        database_url: The database (``postgres://`` or ``postgresql://``).
        seed: The run's seed (default: the scenario's).
        scale: Multiplies the step counts (a tiled scenario: its copies); quotas are kept.
        shard: ``K/N`` or a Shard: write only that slice of a tiled scenario.
        wait: When another run holds the lock, wait for it (else fail at once).
        notify: Called with a line to show the user (e.g. that the run is waiting).
        progress: Called with how many more rows a tiled run wrote.

    Raises:
        ScenarioError: When the scenario is wrong (nothing is written).
        DatabaseError: When the database cannot be reached or refuses the rows (nothing written).

    """
    started = time.perf_counter()
    if isinstance(shard, str):
        shard = Shard.parse(shard)
    engine = None
    try:
        if is_tiled(name_or_path, shard):
            tiled = prepare_tiled(name_or_path, seed=seed, scale=scale, shard=shard or tiles.WHOLE)
            engine = database.engine_for(database_url)
            result = write_tiled(engine, tiled, wait=wait, notify=notify, progress=progress)
        else:
            plan, built = prepare(name_or_path, seed=seed, scale=scale)
            engine = database.engine_for(database_url)
            result = write_built(engine, plan, built, wait=wait, notify=notify)
    finally:
        if engine is not None:
            engine.dispose()
    return dataclasses.replace(result, seconds=time.perf_counter() - started)
