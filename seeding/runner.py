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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
import yaml
from sqlalchemy import exc as sa_exc

from seeding import constraints, database, guard, ledger, tiles, variants, writer
from seeding.build import Built, build, check_unique_across_copies
from seeding.errors import DatabaseError, ScenarioError, SeedingError
from seeding.plan import Plan, bound_setting, make_plan, max_rows_setting
from seeding.scenario_file import Scenario, _node_at, display, error_at, load, locate
from seeding.schema import APP_TABLES, Base
from seeding.tiles import Shard

Notify = Callable[[str], None]
#: Called with how many more rows were written.
Progress = Callable[[int], None]

#: The most rows a tiled run writes, all its copies (and shards) together, unless
#: SEED_MAX_TILED_ROWS says otherwise. The tile itself is bounded by SEED_MAX_ROWS.
DEFAULT_MAX_TILED_ROWS = 1_000_000_000
MAX_TILED_ROWS_ENV = "SEED_MAX_TILED_ROWS"


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


@contextmanager
def _scenario_errors(name_or_path: str) -> Iterator[None]:
    """Report any failure while loading, checking or building a scenario as a ScenarioError.

    The checks give precise messages; an exception they did not foresee still names the file
    (and says it is a bug), rather than leaking a traceback.

    Raises:
        ScenarioError: When the scenario cannot be found.

    """
    label = display(locate(name_or_path))
    try:
        yield
    except ScenarioError:
        raise
    except SeedingError as error:  # e.g. a factory's rule, raised outside a step
        raise ScenarioError(f"{label}: {error}") from None
    except Exception as error:
        lines = str(error).strip().splitlines()
        detail = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
        raise ScenarioError(
            f"{label}: checking and building the scenario failed unexpectedly ({detail}); "
            "this is a bug in seeding, please report it with the scenario file"
        ) from error


def prepare(
    name_or_path: str,
    *,
    seed: int | None = None,
    scale: float = 1.0,
    max_rows: int | None = None,
) -> tuple[Plan, Built]:
    """Load, check and build a scenario in memory, without a database.

    Args:
        name_or_path: A shipped scenario's name, or a path to a scenario file.
        seed: The run's seed (default: the scenario's).
        scale: Multiplies the step counts; quotas are kept.
        max_rows: The most rows the run may build in memory; default ``$SEED_MAX_ROWS``, else
            5,000,000. A scenario over it is refused before anything is built.

    Raises:
        ScenarioError: When the scenario is malformed, names something unknown, or is too big.
        ConfigurationError: When ``max_rows`` (or SEED_MAX_ROWS) is not a positive number.

    """
    limit = max_rows_setting(max_rows)
    with _scenario_errors(name_or_path):
        scenario, nodes = load(name_or_path)
        plan = make_plan(scenario, nodes, seed=seed, scale=scale, max_rows=limit)
        return plan, build(plan)


def is_tiled(name_or_path: str, shard: Shard | None = None) -> bool:
    """Return whether a run of this scenario takes the tiled path.

    It does when the scenario has ``tiles:``, or when a shard was asked for (which only a
    tiled scenario accepts).

    Raises:
        ScenarioError: When the scenario cannot be loaded.

    """
    if shard is not None:
        return True
    with _scenario_errors(name_or_path):
        return load(name_or_path)[0].tiles is not None


def _open_run(
    connection: sa.Connection, *, wait: bool, notify: Notify | None, allow_remote: bool
) -> None:
    """Check where the connection went, take the run lock, create what is missing."""
    guard.ensure_connection_writable(connection, allow_remote=allow_remote)
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
    allow_remote: bool = False,
) -> RunResult:
    """Write a built scenario in one transaction, replacing earlier runs of it.

    The write guard checks where the engine's connection went before anything is written;
    ``allow_remote`` lifts it, for a caller that created the database itself.

    Raises:
        ConfigurationError: When the guard refuses the server (nothing is written).
        DatabaseError: When the database refuses the rows (nothing is then written).

    """
    started = time.perf_counter()
    run_id = uuid.uuid4()
    ids = [row.id for row in built.rows]  # type: ignore[attr-defined]
    try:
        with engine.begin() as connection:
            _open_run(connection, wait=wait, notify=notify, allow_remote=allow_remote)
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


def _copies(scenario: Scenario, nodes: dict[Path, yaml.Node], scale: float) -> int:
    """Return how many copies of the tile a run writes.

    Raises:
        ScenarioError: At ``tiles:``, when that is more than a run can write.

    """
    assert scenario.tiles is not None
    try:
        wanted = scenario.tiles * scale
    except OverflowError:
        wanted = math.inf
    count = math.floor(wanted + 0.5) if math.isfinite(wanted) else None
    if count is None or count > tiles.MAX_COPIES:
        digits = str(scenario.tiles)
        shown = digits if len(digits) <= 20 else f"{digits[:12]}... ({len(digits)} digits)"
        many = f"{count:,}" if count is not None and count < 10**12 else f"about {wanted:.2g}"
        raise error_at(
            scenario.path, _node_at(nodes[scenario.path], ["tiles"]), "tiles",
            f"{shown} × --scale {scale:g} is {many} copies of the tile; a run writes at most "
            f"{tiles.MAX_COPIES:,} (each copy's ids start with two bytes of its own); lower "
            "tiles or --scale",
        )
    return tiles.copy_count(scenario.tiles, scale)


def _check_total(
    scenario: Scenario,
    nodes: dict[Path, yaml.Node],
    tile_rows: int,
    copies: int,
    scale: float,
    limit: int,
) -> None:
    """Refuse a tiled run that would write more than ``limit`` rows in all.

    Raises:
        ScenarioError: At ``tiles:``.

    """
    if tile_rows * copies > limit:
        raise error_at(
            scenario.path, _node_at(nodes[scenario.path], ["tiles"]), "tiles",
            f"{copies:,} copies (tiles {scenario.tiles} × --scale {scale:g}) of a tile of "
            f"{tile_rows:,} rows would write {tile_rows * copies:,} rows, over the bound of "
            f"{limit:,}; lower tiles or --scale, or raise {MAX_TILED_ROWS_ENV}",
        )


def prepare_tiled(
    name_or_path: str,
    *,
    seed: int | None = None,
    scale: float = 1.0,
    shard: Shard = tiles.WHOLE,
    max_rows: int | None = None,
    max_tiled_rows: int | None = None,
) -> TiledPlan:
    """Load a tiled scenario and build its tile once (the first variant), without a database.

    Args:
        name_or_path: A shipped scenario's name, or a path to a scenario file.
        seed: The run's seed (default: the scenario's).
        scale: Multiplies the copies of the tile.
        shard: The copies this run writes.
        max_rows: The most rows the tile may have (it is built in memory); default
            ``$SEED_MAX_ROWS``, else 5,000,000.
        max_tiled_rows: The most rows all the copies may have together; default
            ``$SEED_MAX_TILED_ROWS``, else 1,000,000,000.

    Raises:
        ScenarioError: When the scenario is malformed, is not tiled, is over a bound, or its
            tile cannot be built.
        ConfigurationError: When a bound (argument or variable) is not a positive number.

    """
    limit = max_rows_setting(max_rows)
    total_limit = bound_setting(max_tiled_rows, MAX_TILED_ROWS_ENV, DEFAULT_MAX_TILED_ROWS)
    with _scenario_errors(name_or_path):
        scenario, nodes = load(name_or_path)
        if scenario.tiles is None:
            raise ScenarioError(
                f"{display(scenario.path)}: only a scenario with `tiles:` can be written in "
                "shards; drop --shard, or add `tiles: N` to the scenario (see docs/scenarios.md)"
            )
        if not (scale > 0 and math.isfinite(scale)):
            raise ScenarioError(f"--scale must be a positive number, not {scale}")
        copies = _copies(scenario, nodes, scale)
        # The tile is the steps at their own counts; the scale multiplies the copies.
        plan = make_plan(scenario, nodes, seed=seed, scale=1.0, max_rows=limit)
        plan = dataclasses.replace(plan, scale=scale)
        bounds = (copies, scale, total_limit)
        _check_total(scenario, nodes, plan.row_count, *bounds)  # the steps' rows, before building
        built = build(plan)
        _check_total(scenario, nodes, len(built.rows), *bounds)  # and every row built
        check_unique_across_copies(built, copies)
        first = tiles.tile_rows(built)
    return TiledPlan(
        plan=plan, path=str(scenario.path), copies=copies, variants=min(tiles.VARIANTS, copies),
        shard=shard, first=first,
    )


def write_tiled(
    engine: sa.Engine,
    tiled: TiledPlan,
    *,
    wait: bool = True,
    notify: Notify | None = None,
    progress: Progress | None = None,
    allow_remote: bool = False,
) -> RunResult:
    """Write a tiled run's copies in one transaction, replacing earlier runs of the scenario.

    The write guard checks where the engine's connection went before anything is written;
    ``allow_remote`` lifts it, for a caller that created the database itself.

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
                _open_run(connection, wait=wait, notify=notify, allow_remote=allow_remote)
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
    database_url: str | guard.Endpoint,
    seed: int | None = None,
    scale: float = 1.0,
    shard: Shard | str | None = None,
    wait: bool = True,
    notify: Notify | None = None,
    progress: Progress | None = None,
    allow_remote: bool = False,
    max_rows: int | None = None,
) -> RunResult:
    """Seed a database with a scenario: the library call behind ``seed scenario``.

    Args:
        name_or_path: A shipped scenario's name, or a path to a scenario file.
        database_url: The database (``postgres://`` or ``postgresql://``), or its endpoint.
        seed: The run's seed (default: the scenario's).
        scale: Multiplies the step counts (a tiled scenario: its copies); quotas are kept.
        shard: ``K/N`` or a Shard: write only that slice of a tiled scenario.
        wait: When another run holds the lock, wait for it (else fail at once).
        notify: Called with a line to show the user (e.g. that the run is waiting).
        progress: Called with how many more rows a tiled run wrote.
        allow_remote: Write even to a host that is neither local nor in ``SEED_ALLOW_HOSTS``
            (for a caller that created the database itself, as the pytest plugin does).
        max_rows: The most rows built in memory (a tiled scenario: its tile); default
            ``$SEED_MAX_ROWS``, else 5,000,000.

    Raises:
        ScenarioError: When the scenario is wrong (nothing is written).
        ConfigurationError: When the URL cannot be read, or the write guard refuses the
            database (before connecting).
        DatabaseError: When the database cannot be reached or refuses the rows (nothing written).

    """
    started = time.perf_counter()
    endpoint = database.endpoint_of(database_url)
    if not allow_remote:
        guard.ensure_writable(endpoint)
    if isinstance(shard, str):
        shard = Shard.parse(shard)
    engine = None
    try:
        if is_tiled(name_or_path, shard):
            tiled = prepare_tiled(
                name_or_path, seed=seed, scale=scale, shard=shard or tiles.WHOLE,
                max_rows=max_rows,
            )
            engine = database.engine_for(endpoint)
            result = write_tiled(engine, tiled, wait=wait, notify=notify, progress=progress,
                                 allow_remote=allow_remote)
        else:
            plan, built = prepare(name_or_path, seed=seed, scale=scale, max_rows=max_rows)
            engine = database.engine_for(endpoint)
            result = write_built(engine, plan, built, wait=wait, notify=notify,
                                 allow_remote=allow_remote)
    finally:
        if engine is not None:
            engine.dispose()
    return dataclasses.replace(result, seconds=time.perf_counter() - started)
