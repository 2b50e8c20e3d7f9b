"""Running a scenario: load → plan → build → write, in one transaction, recorded in the ledger.

Everything that can be wrong with the scenario is found before the database is touched; the
write is one transaction (all or nothing) under an advisory lock, so two runs never interleave
and a run killed half-way leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
import yaml
from sqlalchemy import exc as sa_exc

from seeding.callbacks import Notify, Progress, Status, in_phase, writing_rows
from seeding.db import (
    auth,
    constraints,
    database,
    fit,
    guard,
    holders,
    ledger,
    tiles,
    variants,
    writer,
)
from seeding.db.catalog import Catalog, ForeignKey, read_catalog
from seeding.db.identifiers import quote
from seeding.db.tiles import Shard
from seeding.domain.schema import APP_TABLES, Base
from seeding.errors import (
    DatabaseError,
    ScenarioError,
    SeedingError,
)
from seeding.scenario import timeshift
from seeding.scenario.builder import Built, build, check_unique_across_copies
from seeding.scenario.files import Scenario, _node_at, display, error_at, load, locate
from seeding.scenario.plan import Plan, bound_setting, make_plan, max_rows_setting

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
    #: The earlier runs it replaced, each as ``run <id> of <scenario> (seed N), R rows``.
    replaced_runs: tuple[str, ...] = ()
    refs: dict[str, uuid.UUID | list[uuid.UUID]] = field(default_factory=dict)
    expect: dict[str, str] = field(default_factory=dict)
    #: ``table.column`` the tool fills but the database lacks (not written).
    absent: tuple[str, ...] = ()
    #: Rows the app's triggers made because of the run's rows (recorded, reset with them).
    app_made: dict[str, int] = field(default_factory=dict)
    #: The slice written (``K/N``), when one was asked for.
    shard: str | None = None
    #: Whether the run took the tiled path (copies of one tile, streamed).
    tiled: bool = False
    #: Where the rows went (:func:`run_scenario` sets it).
    target: database.Target | None = None


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
    now: datetime | str | None = None,
) -> tuple[Plan, Built]:
    """Load, check and build a scenario in memory, without a database.

    Args:
        name_or_path: A shipped scenario's name, or a path to a scenario file.
        seed: The run's seed (default: the scenario's).
        scale: Multiplies the step counts; quotas are kept.
        max_rows: The most rows the run may build in memory; default ``$SEED_MAX_ROWS``, else
            5,000,000. A scenario over it is refused before anything is built.
        now: Move the whole scenario in time so that its clock is this instant (``"now"``,
            an ISO 8601 timestamp with offset, or an aware datetime); see
            :mod:`seeding.scenario.timeshift`. None: the scenario's own clock.

    Raises:
        ScenarioError: When the scenario is malformed, names something unknown, or is too big,
            or ``now`` is not a time with an offset.
        ConfigurationError: When ``max_rows`` (or SEED_MAX_ROWS) is not a positive number.

    """
    limit = max_rows_setting(max_rows)
    moment = clock_instant(now)
    with _scenario_errors(name_or_path):
        scenario, nodes = load(name_or_path)
        plan = make_plan(scenario, nodes, seed=seed, scale=scale, max_rows=limit)
        if moment is not None:
            plan = timeshift.shifted(plan, moment)
        return plan, build(plan)


def clock_instant(now: datetime | str | None) -> datetime | None:
    """Return the instant a run's ``now`` names (None: the scenario's own clock).

    Raises:
        ScenarioError: When it is not ``now``, a timestamp with an offset, or an aware datetime.

    """
    if now is None:
        return None
    if isinstance(now, str):
        return timeshift.parse_now(now)
    if now.tzinfo is None:
        raise ScenarioError(f"now={now.isoformat()} has no time zone; pass an aware datetime")
    return now


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
) -> Catalog:
    """Check where the connection went, take the run lock, read the live schema.

    A database of the tool's own (no Supabase ``auth`` schema) gets the app's tables it
    lacks; on the app's own database nothing is created: what it lacks is reported by the
    fit, before anything is written. Returns the live schema.
    """
    guard.ensure_connection_writable(connection, allow_remote=allow_remote)
    ledger.hold_run_lock(connection, wait=wait, notify=notify)
    catalog = read_catalog(connection, LIVE_SCHEMAS)
    if not catalog.has_schema("auth") and any(
        catalog.table(table.name) is None for table in APP_TABLES
    ):
        Base.metadata.create_all(connection, checkfirst=True)
        catalog = read_catalog(connection, LIVE_SCHEMAS)
    ledger.ensure(connection)
    return catalog


#: The schemas a run reads: the app's tables, and Supabase's auth users.
LIVE_SCHEMAS = ("public", "auth")


def _write_accounts(connection: sa.Connection, catalog: Catalog,
                    accounts: Mapping[tuple[str, str], Sequence[Mapping[str, object]]]
                    ) -> dict[str, list[uuid.UUID]]:
    """Write :func:`seeding.db.auth.seeded_accounts`; return their ids by table."""
    written: dict[str, list[uuid.UUID]] = {}
    for (schema, name), records in accounts.items():
        live = catalog.table(name, schema)
        assert live is not None
        writer.write_records(connection, live, records)
        written[ledger.table_name(schema, name)] = [
            record["id"] for record in records  # type: ignore[misc]
        ]
    return written


def _app_made(connection: sa.Connection, catalog: Catalog, ours: Mapping[str, set[uuid.UUID]]
              ) -> dict[str, list[uuid.UUID]]:
    """Return the rows the app's triggers made in this transaction beside the run's own.

    A trigger (the profile made for a new auth user, the analytics row of a completed session)
    writes rows that point at the run's rows. Written in this transaction, they carry its id
    as ``xmin``; recorded in the ledger, they are reset with the rows that made them.
    """
    written = set(ours)
    made: dict[str, list[uuid.UUID]] = {}
    for table in catalog.tables.values():
        if table.schema != "public" or table.kind != "table":
            continue
        primary = table.primary_key
        if primary is None or primary.columns != ("id",) or table.columns["id"].base_type != "uuid":
            continue
        targets = {ledger.table_name(k.target_schema, k.target_table)
                   for k in table.foreign_keys}
        if not targets & written:
            continue
        ids = connection.execute(
            sa.text(f"SELECT id FROM {quote(table.schema, table.name)} "
                    "WHERE xmin = pg_current_xact_id()::xid")
        ).scalars()
        extra = [row_id for row_id in ids if row_id not in ours.get(table.name, ())]
        if extra:
            made[table.name] = sorted(extra)
    return made


def _rows_by_table(
    fitted: fit.Fit, rows: Sequence[object]
) -> dict[tuple[str, str], list[dict[str, object]]]:
    """Return a run's rows by live (schema, table), as {column: value}, for the unique check.

    At most :data:`seeding.db.holders.MAX_VALUES` rows of a table: the check compares no more.
    """
    grouped: dict[str, list[object]] = {}
    for row in rows:
        grouped.setdefault(row.__table__.name, []).append(row)  # type: ignore[attr-defined]
    found: dict[tuple[str, str], list[dict[str, object]]] = {}
    for table, table_rows in grouped.items():
        table_fit = fitted.tables[table]
        found[(table_fit.schema, table_fit.name)] = holders.rows_of(
            table_fit.columns,
            (table_fit.values(r) for r in itertools.islice(table_rows, holders.MAX_VALUES)),
        )
    return found


def _refused(error: Exception) -> Exception:
    """Return the one-line error a failed write is reported with (or the error itself)."""
    if isinstance(error, SeedingError):
        return error
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
    user_password: str | None = None,
) -> RunResult:
    """Write a built scenario in one transaction, replacing earlier runs of it.

    The live schema is read first and the rows fitted to it (:mod:`seeding.db.fit`): what does
    not fit is one error before anything is written. On Supabase (an ``auth`` schema) every
    seeded person gets an auth user that can sign in with ``user_password``
    (:mod:`seeding.db.auth`), and rows the app's triggers make are recorded with the run's.

    The write guard checks where the engine's connection went before anything is written;
    ``allow_remote`` lifts it, for a caller that created the database itself.

    Raises:
        ConfigurationError: When the guard refuses the server (nothing is written).
        DatabaseError: When the database refuses the rows (nothing is then written).

    """
    started = time.perf_counter()
    run_id = uuid.uuid4()
    ids = [row.id for row in built.rows]  # type: ignore[attr-defined]
    password = auth.user_password(user_password)
    try:
        with engine.begin() as connection:
            catalog = _open_run(connection, wait=wait, notify=notify, allow_remote=allow_remote)
            fitted = fit.fit(catalog, built.rows)
            replacing = ledger.runs_to_replace(connection, plan.scenario, ids, plan.family)
            replaced_runs = ledger.describe_runs(connection, replacing)
            replaced = ledger.delete_runs(connection, replacing)
            accounts = (auth.seeded_accounts(catalog, built.rows, password, plan.seed)
                        if fitted.auth else {})
            holders.check_held(connection, catalog,
                               {**accounts, **_rows_by_table(fitted, built.rows)})
            people = _write_accounts(connection, catalog, accounts)
            counts = {table: len(ids) for table, ids in people.items()}
            counts |= writer.write(connection, built.rows, fitted)
            ours: dict[str, set[uuid.UUID]] = {t: set(i) for t, i in people.items()}
            for row in built.rows:
                ours.setdefault(row.__table__.name, set()).add(row.id)  # type: ignore[attr-defined]
            made = _app_made(connection, catalog, ours) if fitted.auth else {}
            entries = [(t, i) for t, ids_ in people.items() for i in ids_]
            entries += [(row.__table__.name, row.id) for row in built.rows]  # type: ignore[attr-defined]
            entries += [(t, i) for t, ids_ in made.items() for i in ids_]
            ledger.record(connection, run_id, plan.scenario, plan.seed, plan.scale, entries,
                          family=plan.family, clock=plan.now)
    except Exception as error:
        raise _refused(error) from None
    return RunResult(
        run_id=run_id, scenario=plan.scenario, seed=plan.seed, scale=plan.scale, now=plan.now,
        counts=counts, replaced=replaced, replaced_runs=replaced_runs,
        seconds=time.perf_counter() - started,
        refs=built.ref_ids(), expect=dict(plan.expect), absent=fitted.absent,
        app_made={table: len(ids_) for table, ids_ in made.items()},
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
    #: The instant ``--now`` moved the scenario to (every variant is moved alike); None: its
    #: own clock.
    moved_to: datetime | None = None

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
    now: datetime | str | None = None,
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
        now: Move the scenario in time (``--now``; :mod:`seeding.scenario.timeshift`); every
            variant of the tile is moved alike.

    Raises:
        ScenarioError: When the scenario is malformed, is not tiled, is over a bound, or its
            tile cannot be built.
        ConfigurationError: When a bound (argument or variable) is not a positive number.

    """
    limit = max_rows_setting(max_rows)
    total_limit = bound_setting(max_tiled_rows, MAX_TILED_ROWS_ENV, DEFAULT_MAX_TILED_ROWS)
    moment = clock_instant(now)
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
        if moment is not None:
            plan = timeshift.shifted(plan, moment)
        bounds = (copies, scale, total_limit)
        _check_total(scenario, nodes, plan.row_count, *bounds)  # the steps' rows, before building
        built = build(plan)
        _check_total(scenario, nodes, len(built.rows), *bounds)  # and every row built
        check_unique_across_copies(built, copies)
        first = tiles.tile_rows(built)
    return TiledPlan(
        plan=plan, path=str(scenario.path), copies=copies, variants=min(tiles.VARIANTS, copies),
        shard=shard, first=first, moved_to=moment,
    )


def write_tiled(
    engine: sa.Engine,
    tiled: TiledPlan,
    *,
    wait: bool = True,
    notify: Notify | None = None,
    progress: Progress | None = None,
    allow_remote: bool = False,
    user_password: str | None = None,
) -> RunResult:
    """Write a tiled run's copies in one transaction, replacing earlier runs of the scenario.

    The write guard checks where the engine's connection went before anything is written;
    ``allow_remote`` lifts it, for a caller that created the database itself.

    The other shards of the same split are not replaced.

    The variants after the first are built in a child process (see seeding.db.variants) while
    the copies of the ones before are written.

    On the app's own (Supabase) database each variant is fitted to the live schema, every
    seeded person gets an auth user that signs in with ``user_password`` and an identity,
    in every copy (:func:`seeding.db.tiles.encode_variant`), and the rows the app's triggers
    make are recorded with the run's (:func:`seeding.db.tiles.record_app_made`). The write
    leaves the keys pointing into ``auth`` in place there: dropping one would lock
    ``auth.users`` against every sign-in until the run commits (see :func:`_set_keys_aside`).
    Replacing an earlier run leaves them in place too (:func:`seeding.db.ledger.delete_runs`).

    Raises:
        ScenarioError: When a variant of the tile cannot be built (nothing is then written).
        SchemaMismatchError: When the rows do not fit the app's live schema (nothing written).
        DatabaseError: When the database refuses the rows (nothing is then written).

    """
    started = time.perf_counter()
    run_id = uuid.uuid4()
    plan = tiled.plan
    shard = str(tiled.shard) if tiled.shard.count > 1 else None
    blocks: dict[int, list[int]] = {}
    for i in tiled.chosen:
        blocks.setdefault(tiled.variant_of(i), []).append(i)
    password = auth.user_password(user_password)  # checked before anything connects
    counts: dict[str, int] = {}
    made: dict[str, int] = {}
    absent: tuple[str, ...] = ()
    try:
        with variants.Builds(tiled.path, plan.seed, [v for v in blocks if v != 0],
                             tiled.moved_to) as pending:
            with engine.begin() as connection:
                # Shards of one split started together take turns, each in its own transaction.
                catalog = _open_run(
                    connection, wait=wait, notify=notify, allow_remote=allow_remote
                )
                app = _app_database(catalog, password, plan.seed)
                replace = (
                    ledger.shards_to_replace(
                        connection, plan.scenario, seed=plan.seed, scale=plan.scale, shard=shard
                    )
                    if shard else ledger.runs_to_replace(connection, plan.scenario, [], plan.family)
                )
                app, keys = _set_keys_aside(connection, catalog, app)
                replaced_runs = ledger.describe_runs(connection, replace)
                replaced = ledger.delete_runs(connection, replace)
                ledger.start_run(connection, run_id, plan.scenario, plan.seed, plan.scale, shard,
                                 family=plan.family, clock=plan.now)
                encoder = tiles.Encoder(connection, catalog if app is not None else None)
                for v, copies in blocks.items():
                    rows = tiled.first if v == 0 else pending.result(v)
                    variant = tiles.encode_variant(encoder, rows, run_id, app, copies=len(copies))
                    absent = variant.absent
                    for table, n in tiles.stream(
                        connection, variant, copies, seed=plan.seed, progress=progress
                    ).items():
                        counts[table] = counts.get(table, 0) + n
                if app is not None:
                    tables = {ledger.split(t) for t in counts} & app.unchecked
                    constraints.check_written(connection, catalog, tables, skip=keys)
                    made = tiles.record_app_made(connection, catalog, run_id, counts)
                constraints.add_foreign_keys(connection, keys)
                ledger.finish_run(connection, run_id, sum(counts.values()) + sum(made.values()))
    except Exception as error:
        raise _refused(error) from None
    ordered = {t: counts[t] for t in reversed(ledger.AUTH_TABLES) if t in counts}
    ordered |= {t.name: counts[t.name] for t in APP_TABLES if t.name in counts}
    return RunResult(
        run_id=run_id, scenario=plan.scenario, seed=plan.seed, scale=plan.scale, now=plan.now,
        counts=ordered, replaced=replaced, replaced_runs=replaced_runs,
        seconds=time.perf_counter() - started,
        expect=dict(plan.expect), absent=absent, app_made=made,
    )


def _set_keys_aside(
    connection: sa.Connection, catalog: Catalog, app: tiles.AppDatabase | None
) -> tuple[tiles.AppDatabase | None, list[ForeignKey]]:
    """Set the foreign keys of a tiled run's tables aside; return them to add back.

    On a database of the tool's own every key of the app's tables goes. On the app's own
    (``app``), keys pointing into ``auth`` stay (see :mod:`seeding.db.constraints`); a table
    whose inserts fire nothing but its keys' checks keeps all its keys and is written with
    their row checks off where the connection may (its rows are checked after, by
    :func:`seeding.db.constraints.check_written`); the other tables' keys among the app's
    tables go and come back, as on the tool's own database. The ledger's key always goes.
    """
    ledger_blocks = (ledger.SCHEMA, ledger.blocks.name)
    if app is None:
        return None, constraints.drop_foreign_keys(connection, (*constraints.APP, ledger_blocks))
    tables = [*constraints.APP, *(ledger.split(t) for t in ledger.AUTH_TABLES)]
    unchecked = (constraints.quiet_tables(connection, catalog, tables)
                 if constraints.unchecked_writes(connection) else set())
    aside = [table for table in constraints.APP if table not in unchecked]
    keys = constraints.drop_foreign_keys(connection, (*aside, ledger_blocks), sparing=("auth",))
    return dataclasses.replace(app, unchecked=frozenset(unchecked)), keys


def _app_database(catalog: Catalog, password: str, seed: int) -> tiles.AppDatabase | None:
    """Return what a tiled run writes to the app's own (Supabase) database with, else None.

    The seeded users' password is hashed here, once per run.
    """
    if catalog.table("users", "auth") is None:
        return None
    password_hash = auth.hash_password(password, seed)
    return tiles.AppDatabase(catalog=catalog, password_hash=password_hash)


def run_scenario(
    name_or_path: str,
    *,
    database_url: str | guard.Endpoint | database.Target | None = None,
    seed: int | None = None,
    scale: float = 1.0,
    shard: Shard | str | None = None,
    wait: bool = True,
    notify: Notify | None = None,
    progress: Progress | None = None,
    status: Status | None = None,
    allow_remote: bool = False,
    user_password: str | None = None,
    max_rows: int | None = None,
    now: datetime | str | None = None,
) -> RunResult:
    """Seed a database with a scenario: the library call behind ``seed scenario``.

    The scenario is loaded, checked and built before anything connects; a wrong one is an
    error with nothing written, and, with no database named, no server started.

    Args:
        name_or_path: A shipped scenario's name, or a path to a scenario file.
        database_url: The database (``postgres://`` or ``postgresql://``), its endpoint, or a
            :class:`~seeding.db.database.Target`. None: as ``seed`` chooses
            (``SEED_DATABASE_URL``, else the embedded server), once the scenario is built.
        seed: The run's seed (default: the scenario's).
        scale: Multiplies the step counts (a tiled scenario: its copies); quotas are kept.
        shard: ``K/N`` or a Shard: write only that slice of a tiled scenario.
        wait: When another run holds the lock, wait for it (else fail at once).
        notify: Called with a line to show the user (e.g. that the run is waiting).
        progress: Called with how many more rows a tiled run wrote.
        status: Shown each phase ("checking and building the scenario", "writing N rows")
            while it runs, and a tiled run's rows as they are written.
        allow_remote: Write even to a host that is neither local nor in ``SEED_ALLOW_HOSTS``
            (for a caller that created the database itself, as the pytest plugin does).
        user_password: The password of the seeded Supabase users (default:
            ``SEED_USER_PASSWORD``, else :data:`seeding.db.auth.DEFAULT_PASSWORD`).
        max_rows: The most rows built in memory (a tiled scenario: its tile); default
            ``$SEED_MAX_ROWS``, else 5,000,000.
        now: Move the scenario in time: its clock becomes this instant (``"now"``, an ISO
            8601 timestamp with offset, or an aware datetime), every time in it moves by the
            same amount (:mod:`seeding.scenario.timeshift`). None: the scenario's own clock.

    Returns:
        What was written, where (``target``), and the scenario's ``expect`` targets, which
        :func:`seeding.report.measure.measure_targets` checks.

    Raises:
        ScenarioError: When the scenario is wrong (nothing is written).
        ConfigurationError: When the URL cannot be read, or the write guard refuses the
            database (before connecting).
        DatabaseError: When the database cannot be reached or refuses the rows (nothing written).

    """
    started = time.perf_counter()
    if isinstance(shard, str):
        shard = Shard.parse(shard)
    given = None if database_url is None else database.target_of(database_url)
    if given is not None and not allow_remote:
        guard.ensure_writable(given.endpoint)
    with in_phase(status, "checking and building the scenario"):
        tiled = None
        if is_tiled(name_or_path, shard):
            tiled = prepare_tiled(
                name_or_path, seed=seed, scale=scale, shard=shard or tiles.WHOLE,
                max_rows=max_rows, now=now,
            )
        else:
            plan, built = prepare(name_or_path, seed=seed, scale=scale, max_rows=max_rows,
                                  now=now)
    target = given or database.resolve()
    if given is None and not allow_remote:
        guard.ensure_writable(target.endpoint)
    engine = database.engine_for(target.endpoint)
    try:
        if tiled is not None:
            with writing_rows(status, tiled.rows, progress) as advance:
                result = write_tiled(engine, tiled, wait=wait, notify=notify, progress=advance,
                                     allow_remote=allow_remote, user_password=user_password)
        else:
            with in_phase(status, f"writing {len(built.rows):,} rows"):
                result = write_built(engine, plan, built, wait=wait, notify=notify,
                                     allow_remote=allow_remote, user_password=user_password)
    finally:
        engine.dispose()
    return dataclasses.replace(
        result, seconds=time.perf_counter() - started, target=target, tiled=tiled is not None,
        shard=None if shard is None else str(shard),
    )
