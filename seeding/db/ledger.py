"""The ledger: every row a run writes, recorded in the database's ``seeding`` schema.

``seeding.runs`` holds one row per run (id, scenario, seed, scale, when). The ids of the rows
a run wrote are kept in blocks: ``seeding.ledger_blocks`` holds (run, table, up to
:data:`BLOCK_IDS` primary keys in an array), and the view ``seeding.ledger`` shows them one
row per written row (run, table, primary key). For a million requests (1,984,000 rows) the
blocks take 37 MB where a row per id took 165 MB, and the bulk path writes them in about a
third of the time (no tuple and index entry per id). Reset removes exactly these rows; a new
run of a scenario replaces the rows of its earlier runs. Whatever writes or deletes rows the
ledger records holds the run lock (:func:`hold_run_lock`) for its transaction, so a run and a
reset never interleave; :func:`forget_runs` is the one place ledger rows are deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.engine import Connection

from seeding.db import constraints
from seeding.db.catalog import ForeignKey
from seeding.db.database import WORK_MEM, local_settings
from seeding.db.identifiers import identifier, quote, shown
from seeding.domain.schema import APP_TABLES
from seeding.errors import DatabaseError

SCHEMA = "seeding"
#: The schema of the app's tables.
APP_SCHEMA = "public"

#: The tables outside the app's schema whose rows a run records, children first: Supabase's
#: auth users and their identities. The ledger names a table of another schema
#: ``schema.table``, one of the app's schema by its name alone.
AUTH_TABLES = ("auth.identities", "auth.users")

#: The advisory-lock key every run and reset holds for its transaction (defined here, where
#: reset can import it without pulling in the factories).
RUN_LOCK_KEY = 0x5EED_0002
metadata = sa.MetaData(schema=SCHEMA)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("scenario", sa.Text, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("scale", sa.Float, nullable=False, server_default=sa.text("1")),
    sa.Column(
        "started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("rows", sa.Integer, nullable=False, server_default=sa.text("0")),
    # "K/N" for one shard of a tiled scenario; NULL for a whole run.
    sa.Column("shard", sa.Text),
    # The scenario and those in its `extends` chain (ancestors first); NULL before families.
    sa.Column("family", ARRAY(sa.Text)),
    # The run's clock: the instant its rows were built around (the report's now for them).
    sa.Column("clock", sa.DateTime(timezone=True)),
)

blocks = sa.Table(
    "ledger_blocks",
    metadata,
    sa.Column(
        "run_id",
        UUID(as_uuid=True),
        sa.ForeignKey(f"{SCHEMA}.runs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("table_name", sa.Text, nullable=False),
    # The primary keys of rows of one table the run wrote, at most BLOCK_IDS of them.
    sa.Column("row_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
    # On the run only: the lookups by row id are set-wise (hash joins over the view).
    sa.Index("ledger_blocks_run_idx", "run_id"),
)

#: The most ids one block holds (a tile's copy writes a block per table).
BLOCK_IDS = 1000
#: Where the blocks go (as text for ``to_regclass``), and their columns in the order of
#: :func:`block_rows`.
BLOCKS = shown(SCHEMA, "ledger_blocks")
BLOCK_COLUMNS = ("run_id", "table_name", "row_ids")


def block_rows(
    run_id: uuid.UUID, table: str, ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, str, list[uuid.UUID]]]:
    """Return the ledger's rows for ids of one table a run wrote: blocks of BLOCK_IDS at most."""
    return [
        (run_id, table, list(ids[start : start + BLOCK_IDS]))
        for start in range(0, len(ids), BLOCK_IDS)
    ]

#: One row per written row, as the ledger was before blocks; reads go through it.
#: The ids are unnested in the select list, not in a lateral join: a join with the view then
#: reads the blocks once, where a lateral unnest let the planner loop over the blocks and run
#: the rest of the query once per block (a dry run of reset on a million requests: 80 s
#: instead of 21 s).
VIEW = f"""CREATE VIEW {quote(SCHEMA, "ledger")} AS
    SELECT run_id, table_name, unnest(row_ids) AS row_id FROM {quote(SCHEMA, "ledger_blocks")}"""


def ensure(connection: Connection) -> None:
    """Create the ledger's schema, tables and view where missing; update an older ledger."""
    connection.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {quote(SCHEMA)}"))
    metadata.create_all(connection, checkfirst=True)
    # Ledgers made before shards, families and clocks existed.
    connection.execute(sa.text(
        f"ALTER TABLE {quote(SCHEMA, 'runs')} ADD COLUMN IF NOT EXISTS shard text, "
        "ADD COLUMN IF NOT EXISTS family text[], ADD COLUMN IF NOT EXISTS clock timestamptz"
    ))
    upgrade(connection)


def upgrade(connection: Connection) -> None:
    """Turn a ledger of one row per id (before blocks) into blocks, and create the view.

    The caller holds the run lock (:func:`hold_run_lock`) and has created ``ledger_blocks``.
    """
    kind = connection.execute(
        sa.text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:ledger)"),
        {"ledger": shown(SCHEMA, "ledger")},
    ).scalar()
    if kind == "r":
        connection.execute(sa.text(
            f"INSERT INTO {quote(SCHEMA, 'ledger_blocks')} (run_id, table_name, row_ids) "
            "SELECT run_id, table_name, array_agg(row_id ORDER BY row_id) FROM ("
            "  SELECT run_id, table_name, row_id, (row_number() OVER ("
            "    PARTITION BY run_id, table_name ORDER BY row_id) - 1) / :block AS block"
            f"  FROM {quote(SCHEMA, 'ledger')}) AS numbered "
            "GROUP BY run_id, table_name, block"
        ), {"block": BLOCK_IDS})
        connection.execute(sa.text(f"DROP TABLE {quote(SCHEMA, 'ledger')}"))
    if kind != "v":
        connection.execute(sa.text(VIEW))


@contextmanager
def hash_joins(connection: Connection) -> Iterator[None]:
    """Join with the ledger's view by hashing, not by sorting (as ``SET LOCAL``), then restore.

    The planner cannot see how many ids a block holds (it guesses 10 where a copy writes
    1,000), so it takes a table's ledger ids for a few thousand rows and sorts them for a merge
    join: a million, spilled to disk. With hash joins a dry run of reset beside a million
    requests measured 2.2 s instead of 6.9 s for a small run, 16.6 s instead of 21 s for the
    million's run. The hashes get :data:`~seeding.db.database.WORK_MEM`.
    """
    with local_settings(connection, {"enable_mergejoin": "off", "work_mem": WORK_MEM}):
        yield


def exists(connection: Connection) -> bool:
    """Return whether the database has a ledger (of blocks, or of one row per id as before)."""
    found = connection.execute(
        sa.text("SELECT to_regclass(:ledger) IS NOT NULL"), {"ledger": shown(SCHEMA, "ledger")}
    )
    return bool(found.scalar())


def runs_to_replace(
    connection: Connection, scenario: str, ids: Sequence[uuid.UUID],
    family: Sequence[str] = (),
) -> list[uuid.UUID]:
    """Return the earlier runs a new run replaces, whatever their seed.

    Those are the runs of its family: the scenarios joined to it by ``extends`` (its own, those
    it extends, those that extend it, and those that extend the same scenario: ``diverse``
    and the docs' example both extend ``baseline``, and both hold baseline's fixed values).
    ``family`` is the new run's chain, ancestors first (its scenario alone when empty); a run
    recorded before families counts as a family of its own scenario. Also replaced: any run
    that wrote a row with an id the new run writes.
    """
    chain = list(dict.fromkeys([*family, scenario]))
    same = connection.execute(
        sa.select(runs.c.id).where(
            runs.c.scenario.in_(chain) | runs.c.family.overlap(sa.cast(chain, ARRAY(sa.Text)))
        )
    ).scalars().all()
    overlapping = connection.execute(
        sa.text("SELECT DISTINCT run_id FROM seeding.ledger WHERE row_id = ANY(:ids)"),
        {"ids": list(ids)},
    ).scalars().all()
    return sorted(set(same) | set(overlapping))


@dataclass(frozen=True)
class RunRecord:
    """One run as the ledger holds it."""

    id: uuid.UUID
    scenario: str
    seed: int
    scale: float
    rows: int
    #: The instant its rows were built around; None for a run recorded before clocks.
    clock: datetime | None
    shard: str | None

    def describe(self) -> str:
        """Return ``run <id> of <scenario> (seed N, scale S)``."""
        shard = f", shard {self.shard}" if self.shard else ""
        return f"run {self.id} of {self.scenario} (seed {self.seed}, scale {self.scale:g}{shard})"


def find_run(connection: Connection, run_id: uuid.UUID) -> RunRecord | None:
    """Return the run with this id, or None (also when there is no ledger)."""
    if not exists(connection):
        return None
    found = connection.execute(_run_select(connection).where(runs.c.id == run_id)).first()
    return None if found is None else RunRecord(*found)


def latest_run(connection: Connection, scenario: str) -> RunRecord | None:
    """Return the newest run of a scenario (by name), or None (also when there is no ledger)."""
    if not exists(connection):
        return None
    found = connection.execute(
        _run_select(connection).where(runs.c.scenario == scenario)
        .order_by(runs.c.started_at.desc(), runs.c.id).limit(1)
    ).first()
    return None if found is None else RunRecord(*found)


def _run_select(connection: Connection) -> sa.Select[Any]:
    """Select a RunRecord's columns (a ledger made before clocks has none: NULL)."""
    has_clock = connection.execute(sa.text(
        "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass(:runs) "
        "AND attname = 'clock' AND NOT attisdropped)"
    ), {"runs": shown(SCHEMA, "runs")}).scalar_one()
    clock = runs.c.clock if has_clock else sa.null().label("clock")
    return sa.select(runs.c.id, runs.c.scenario, runs.c.seed, runs.c.scale, runs.c.rows,
                     clock, runs.c.shard)


def describe_runs(connection: Connection, run_ids: Sequence[uuid.UUID]) -> tuple[str, ...]:
    """Return ``run <id> of <scenario> (seed N), R rows`` for each run, for the output."""
    if not run_ids:
        return ()
    rows = connection.execute(
        sa.select(runs.c.id, runs.c.scenario, runs.c.seed, runs.c.rows)
        .where(runs.c.id.in_(list(run_ids)))
        .order_by(runs.c.started_at, runs.c.id)
    ).all()
    return tuple(
        f"run {run_id} of {scenario} (seed {seed}), {count:,} row{'' if count == 1 else 's'}"
        for run_id, scenario, seed, count in rows
    )


def hold_run_lock(
    connection: Connection, *, wait: bool = True, notify: Callable[[str], None] | None = None
) -> None:
    """Take the run lock for the connection's transaction (released when it ends).

    Args:
        connection: A connection inside the transaction that writes or deletes.
        wait: When another run or reset holds the lock, wait for it (else fail at once).
        notify: Called with a line to show the user when waiting.

    Raises:
        DatabaseError: When ``wait`` is false and another run or reset holds the lock.

    """
    try_lock = sa.select(sa.func.pg_try_advisory_xact_lock(RUN_LOCK_KEY))
    if connection.execute(try_lock).scalar():
        return
    if not wait:
        raise DatabaseError(
            "another seed run is writing to this database; "
            "wait for it, or run again without --no-wait"
        )
    if notify:
        notify("another seed run is writing to this database; waiting for it to finish...")
    connection.execute(sa.select(sa.func.pg_advisory_xact_lock(RUN_LOCK_KEY)))


def table_name(schema: str, table: str) -> str:
    """Return a table's name as the ledger writes it (``auth.users``; ``profiles``)."""
    return table if schema == APP_SCHEMA else f"{schema}.{table}"


def split(name: str) -> tuple[str, str]:
    """Return (schema, table) of a table as the ledger names it."""
    schema, dot, table = name.partition(".")
    return (schema, table) if dot else (APP_SCHEMA, name)


def relation(name: str) -> str:
    """Return a table the ledger names, quoted for SQL text."""
    return quote(*split(name))


def deletion_order(names: Iterable[str]) -> list[str]:
    """Return tables the ledger names, children before parents.

    First the app's tables the tool does not model (rows its triggers made, such as
    ``session_analytics``, which point at the run's rows), then the app's own tables
    children first, then the auth tables (every app row points at an auth user).
    """
    names = set(names)
    app = [table.name for table in reversed(APP_TABLES)]
    made = sorted(n for n in names if "." not in n and n not in app)
    auth = [n for n in AUTH_TABLES if n in names]
    others = sorted(n for n in names if "." in n and n not in AUTH_TABLES)
    return made + [n for n in app if n in names] + others + auth


def delete_runs(connection: Connection, run_ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """Delete the rows of these runs (children before parents) and their ledger; return counts.

    Only the tables the ledger lists rows of are touched, so a table that was dropped and
    holds none of these runs' rows does not stand in the way.
    """
    counts: dict[str, int] = {}
    if not run_ids:
        return counts
    # How many ids the runs list per table.
    listed: dict[str, int] = {
        table: int(ids)
        for table, ids in connection.execute(
            sa.text(
                "SELECT table_name, sum(cardinality(row_ids)) FROM seeding.ledger_blocks "
                "WHERE run_id = ANY(:runs) GROUP BY table_name"
            ),
            {"runs": list(run_ids)},
        )
    }
    bulk = sum(listed.values()) >= constraints.BULK_ROWS
    keys: list[ForeignKey] = []
    indexes: list[tuple[str, str]] = []
    if bulk:  # the keys of the tables pointing at deleted rows too (see constraints.referencing)
        deleted = [split(table) for table in listed]
        aside = constraints.referencing(connection, deleted)
        # Keys into auth stay: dropping one locks auth.users, and every sign-in, until commit.
        keys = constraints.drop_foreign_keys(
            connection, (*constraints.APP, *aside), sparing=("auth",)
        )
        indexes = constraints.index_kept_keys(connection, deleted, into=("auth",))
    for table in deletion_order(listed):
        settings = _delete_settings(connection, table, listed[table])
        with local_settings(connection, settings):
            result = connection.execute(
                sa.text(
                    f"DELETE FROM {relation(table)} WHERE id IN ("
                    f"SELECT unnest(row_ids) FROM {quote(SCHEMA, 'ledger_blocks')} "
                    "WHERE run_id = ANY(:runs) AND table_name = :table)"
                ),
                {"runs": list(run_ids), "table": table},
            )
        if result.rowcount:
            counts[table] = result.rowcount
    constraints.drop_indexes(connection, indexes)
    constraints.add_foreign_keys(connection, keys)
    forget_runs(connection, run_ids)
    return counts


def _delete_settings(connection: Connection, table: str, ids: int) -> dict[str, str]:
    """Return the settings a delete of ``ids`` rows of ``table`` needs (none, or hashing).

    The planner takes a run's ids for a few (it cannot see into the blocks) and looks each
    up by index. With more ids than the table has pages, one scan of the table with the ids
    hashed in memory is cheaper: a million requests took 8.5 s looked up (their hash spilled
    at the default work_mem) and 1.7 s hashed; 20,000 of them 0.06 s looked up, 0.35 s hashed.
    """
    pages = connection.execute(
        sa.text(
            "SELECT pg_relation_size(CAST(:qualified AS regclass)) "
            "/ current_setting('block_size')::bigint"
        ),
        {"qualified": shown(*split(table))},
    ).scalar_one()
    return {"enable_nestloop": "off", "work_mem": WORK_MEM} if ids > pages else {}


def forget_runs(connection: Connection, run_ids: Sequence[uuid.UUID]) -> None:
    """Delete these runs and their ledger rows (not the rows they wrote: see delete_runs)."""
    if run_ids:
        # Not left to the key's cascade: a bulk run sets that key aside while it writes.
        connection.execute(blocks.delete().where(blocks.c.run_id.in_(list(run_ids))))
        connection.execute(runs.delete().where(runs.c.id.in_(list(run_ids))))


def copy_statement(schema: str, table: str, columns: Sequence[str]) -> sql.Composed:
    """Return ``COPY schema.table (columns) FROM STDIN (FORMAT BINARY)``, every name quoted."""
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        identifier(schema, table), sql.SQL(", ").join(identifier(c) for c in columns)
    )


def record(connection: Connection, run_id: uuid.UUID, scenario: str, seed: int, scale: float,
           rows: Iterable[tuple[str, uuid.UUID]], *, family: Sequence[str] = (),
           clock: datetime | None = None) -> int:
    """Record a run and the (table, id) of every row it wrote; return how many rows.

    ``family`` is the scenario's ``extends`` chain (see :func:`runs_to_replace`), ``clock``
    the instant its rows were built around.
    """
    connection.execute(runs.insert().values(
        id=run_id, scenario=scenario, seed=seed, scale=scale,
        family=list(family) or [scenario], clock=clock,
    ))
    by_table: dict[str, list[uuid.UUID]] = {}
    for table, row_id in rows:
        by_table.setdefault(table, []).append(row_id)
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        with cursor.copy(copy_statement(SCHEMA, blocks.name, BLOCK_COLUMNS)) as copy:
            copy.set_types(["uuid", "text", "uuid[]"])
            for table, ids in by_table.items():
                for row in block_rows(run_id, table, ids):
                    copy.write_row(row)
    count = sum(map(len, by_table.values()))
    connection.execute(runs.update().where(runs.c.id == run_id).values(rows=count))
    return count


def shards_to_replace(
    connection: Connection, scenario: str, *, seed: int, scale: float, shard: str
) -> list[uuid.UUID]:
    """Return the earlier runs a shard of a tiled scenario replaces.

    That is every run of the scenario except the other shards of the same split (same seed,
    scale and shard count).
    """
    count = shard.split("/")[1]
    rows = connection.execute(
        sa.select(runs.c.id, runs.c.seed, runs.c.scale, runs.c.shard)
        .where(runs.c.scenario == scenario)
    ).all()
    return sorted(
        run_id for run_id, run_seed, run_scale, run_shard in rows
        if not (run_seed == seed and run_scale == scale and run_shard is not None
                and run_shard != shard and run_shard.split("/")[1] == count)
    )


def start_run(connection: Connection, run_id: uuid.UUID, scenario: str, seed: int, scale: float,
              shard: str | None = None, *, family: Sequence[str] = (),
              clock: datetime | None = None) -> None:
    """Record a run whose ledger rows the caller writes itself (see seeding.db.tiles)."""
    connection.execute(runs.insert().values(
        id=run_id, scenario=scenario, seed=seed, scale=scale, shard=shard,
        family=list(family) or [scenario], clock=clock,
    ))


def finish_run(connection: Connection, run_id: uuid.UUID, rows: int) -> None:
    """Record how many rows a run started with :func:`start_run` wrote."""
    connection.execute(runs.update().where(runs.c.id == run_id).values(rows=rows))
