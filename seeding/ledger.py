"""The ledger: every row a run writes, recorded in the database's ``seeding`` schema.

``seeding.runs`` holds one row per run (id, scenario, seed, scale, when); ``seeding.ledger``
one row per written row (run, table, primary key). Reset removes exactly these rows; a new
run of a scenario replaces the rows of its earlier runs. Whatever writes or deletes rows the
ledger records holds the run lock (:func:`hold_run_lock`) for its transaction, so a run and a
reset never interleave; :func:`forget_runs` is the one place ledger rows are deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.engine import Connection

from seeding import constraints
from seeding.errors import DatabaseError
from seeding.schema import APP_TABLES

SCHEMA = "seeding"

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
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("rows", sa.Integer, nullable=False, server_default=sa.text("0")),
    # "K/N" for one shard of a tiled scenario; NULL for a whole run.
    sa.Column("shard", sa.Text),
)

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("run_id", UUID(as_uuid=True), sa.ForeignKey(f"{SCHEMA}.runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("table_name", sa.Text, nullable=False),
    sa.Column("row_id", UUID(as_uuid=True), nullable=False),
    # One index, on the run: a unique index on the row ids would cost a bulk run more than
    # the rows themselves; the lookups by row id are set-wise (hash joins).
    sa.Index("ledger_run_idx", "run_id"),
)


def ensure(connection: Connection) -> None:
    """Create the ledger's schema and tables when missing."""
    connection.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    metadata.create_all(connection, checkfirst=True)
    # Ledgers made before shards existed, and before the ledger dropped its primary key.
    connection.execute(sa.text(f"ALTER TABLE {SCHEMA}.ledger DROP CONSTRAINT IF EXISTS ledger_pkey"))
    connection.execute(sa.text(f"ALTER TABLE {SCHEMA}.runs ADD COLUMN IF NOT EXISTS shard text"))


def exists(connection: Connection) -> bool:
    """Return whether the database has a ledger."""
    return bool(sa.inspect(connection).has_table("ledger", schema=SCHEMA))


def runs_to_replace(connection: Connection, scenario: str, ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Return the earlier runs a new run replaces: those of the same scenario, and any that wrote
    a row with an id the new run writes (an ancestor scenario run with the same seed)."""
    same = connection.execute(sa.select(runs.c.id).where(runs.c.scenario == scenario)).scalars().all()
    overlapping = connection.execute(
        sa.text("SELECT DISTINCT run_id FROM seeding.ledger WHERE row_id = ANY(:ids)"), {"ids": list(ids)}
    ).scalars().all()
    return sorted(set(same) | set(overlapping))


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


def delete_runs(connection: Connection, run_ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """Delete the rows of these runs (children before parents) and their ledger; return counts.

    Only the tables the ledger lists rows of are touched, so a table that was dropped and
    holds none of these runs' rows does not stand in the way.
    """
    counts: dict[str, int] = {}
    if not run_ids:
        return counts
    listed = set(
        connection.execute(
            sa.text("SELECT DISTINCT table_name FROM seeding.ledger WHERE run_id = ANY(:runs)"),
            {"runs": list(run_ids)},
        ).scalars()
    )
    total = connection.execute(
        sa.text("SELECT count(*) FROM seeding.ledger WHERE run_id = ANY(:runs)"), {"runs": list(run_ids)}
    ).scalar_one()
    keys = constraints.drop_foreign_keys(connection) if total >= constraints.BULK_ROWS else []
    for table in reversed(APP_TABLES):
        if table.name not in listed:
            continue
        result = connection.execute(
            sa.text(
                f'DELETE FROM public."{table.name}" WHERE id IN (SELECT row_id FROM seeding.ledger '
                "WHERE run_id = ANY(:runs) AND table_name = :table)"
            ),
            {"runs": list(run_ids), "table": table.name},
        )
        if result.rowcount:
            counts[table.name] = result.rowcount
    constraints.add_foreign_keys(connection, keys)
    forget_runs(connection, run_ids)
    return counts


def forget_runs(connection: Connection, run_ids: Sequence[uuid.UUID]) -> None:
    """Delete these runs and their ledger rows (not the rows they wrote: see delete_runs)."""
    if run_ids:
        # Not left to the key's cascade: a bulk run sets that key aside while it writes.
        connection.execute(ledger.delete().where(ledger.c.run_id.in_(list(run_ids))))
        connection.execute(runs.delete().where(runs.c.id.in_(list(run_ids))))


def record(connection: Connection, run_id: uuid.UUID, scenario: str, seed: int, scale: float,
           rows: Iterable[tuple[str, uuid.UUID]]) -> int:
    """Record a run and the (table, id) of every row it wrote; return how many rows."""
    connection.execute(runs.insert().values(id=run_id, scenario=scenario, seed=seed, scale=scale))
    driver = connection.connection.driver_connection
    assert driver is not None
    count = 0
    with driver.cursor() as cursor:
        with cursor.copy("COPY seeding.ledger (run_id, table_name, row_id) FROM STDIN") as copy:
            for table, row_id in rows:
                copy.write_row((run_id, table, row_id))
                count += 1
    connection.execute(runs.update().where(runs.c.id == run_id).values(rows=count))
    return count


def shards_to_replace(connection: Connection, scenario: str, *, seed: int, scale: float, shard: str) -> list[uuid.UUID]:
    """Return the earlier runs a shard of a tiled scenario replaces: every run of the scenario
    except the other shards of the same split (same seed, scale and shard count)."""
    count = shard.split("/")[1]
    rows = connection.execute(
        sa.select(runs.c.id, runs.c.seed, runs.c.scale, runs.c.shard).where(runs.c.scenario == scenario)
    ).all()
    return sorted(
        run_id for run_id, run_seed, run_scale, run_shard in rows
        if not (run_seed == seed and run_scale == scale and run_shard is not None
                and run_shard != shard and run_shard.split("/")[1] == count)
    )


def start_run(connection: Connection, run_id: uuid.UUID, scenario: str, seed: int, scale: float,
              shard: str | None = None) -> None:
    """Record a run whose ledger rows the caller writes itself (see seeding.tiles)."""
    connection.execute(runs.insert().values(id=run_id, scenario=scenario, seed=seed, scale=scale, shard=shard))


def finish_run(connection: Connection, run_id: uuid.UUID, rows: int) -> None:
    """Record how many rows a run started with :func:`start_run` wrote."""
    connection.execute(runs.update().where(runs.c.id == run_id).values(rows=rows))
