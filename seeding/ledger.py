"""The ledger: every row a run writes, recorded in the database's ``seeding`` schema.

``seeding.runs`` holds one row per run (id, scenario, seed, scale, when); ``seeding.ledger``
one row per written row (run, table, primary key). Reset removes exactly these rows; a new
run of a scenario replaces the rows of its earlier runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.engine import Connection

from seeding.schema import APP_TABLES

SCHEMA = "seeding"
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
)

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("run_id", UUID(as_uuid=True), sa.ForeignKey(f"{SCHEMA}.runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("table_name", sa.Text, nullable=False),
    sa.Column("row_id", UUID(as_uuid=True), nullable=False),
    sa.PrimaryKeyConstraint("table_name", "row_id", name="ledger_pkey"),
    sa.Index("ledger_run_idx", "run_id"),
)


def ensure(connection: Connection) -> None:
    """Create the ledger's schema and tables when missing."""
    connection.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    metadata.create_all(connection, checkfirst=True)


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


def delete_runs(connection: Connection, run_ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """Delete the rows of these runs (children before parents) and their ledger; return counts."""
    counts: dict[str, int] = {}
    if not run_ids:
        return counts
    for table in reversed(APP_TABLES):
        result = connection.execute(
            sa.text(
                f'DELETE FROM public."{table.name}" WHERE id IN (SELECT row_id FROM seeding.ledger '
                "WHERE run_id = ANY(:runs) AND table_name = :table)"
            ),
            {"runs": list(run_ids), "table": table.name},
        )
        if result.rowcount:
            counts[table.name] = result.rowcount
    connection.execute(runs.delete().where(runs.c.id.in_(list(run_ids))))
    return counts


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
