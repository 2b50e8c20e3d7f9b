"""The ledger keeps ids in blocks, shows them one per row, and takes over older ledgers."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from seeding import reset, runner
from seeding.db import database, ledger

#: A ledger as versions before blocks kept it: one row per written row.
TO_ROW_PER_ID = """
    DROP VIEW seeding.ledger;
    CREATE TABLE seeding.ledger (
        run_id uuid NOT NULL REFERENCES seeding.runs (id) ON DELETE CASCADE,
        table_name text NOT NULL,
        row_id uuid NOT NULL);
    CREATE INDEX ledger_run_idx ON seeding.ledger (run_id);
    INSERT INTO seeding.ledger
        SELECT run_id, table_name, unnest(row_ids) FROM seeding.ledger_blocks;
    DROP TABLE seeding.ledger_blocks;
"""


def one(url: str, sql: str) -> Any:
    with psycopg.connect(url) as c:
        row = c.execute(sql).fetchone()
    assert row is not None
    return row[0]


def test_blocks_hold_every_written_id_once(pg_url: str) -> None:
    result = runner.run_scenario("diverse", database_url=pg_url)
    total = sum(result.counts.values())
    assert one(pg_url, "SELECT count(*) FROM seeding.ledger") == total
    assert one(pg_url, "SELECT count(DISTINCT row_id) FROM seeding.ledger") == total
    assert one(pg_url, "SELECT max(cardinality(row_ids)) FROM seeding.ledger_blocks") <= (
        ledger.BLOCK_IDS
    )
    # Every id in the ledger is a row of the table it names, and the other way round.
    for table, count in result.counts.items():
        assert one(
            pg_url,
            f"SELECT count(*) FROM {table} x JOIN seeding.ledger l "
            f"ON l.row_id = x.id AND l.table_name = '{table}'",
        ) == count


def test_a_tiled_run_records_one_block_per_table_and_copy(pg_url: str) -> None:
    result = runner.run_scenario("load", database_url=pg_url, scale=0.02)
    copies = 2
    assert one(pg_url, "SELECT count(*) FROM seeding.ledger_blocks") == copies * len(result.counts)
    assert one(pg_url, "SELECT count(DISTINCT row_id) FROM seeding.ledger") == sum(
        result.counts.values()
    )


@pytest.mark.parametrize("then", ["run", "reset"])
def test_a_ledger_of_one_row_per_id_is_taken_over(pg_url: str, then: str) -> None:
    baseline = runner.run_scenario("baseline", database_url=pg_url)
    with psycopg.connect(pg_url) as c:
        c.execute(TO_ROW_PER_ID)
    # Read as it is...
    dry = reset.reset_database(pg_url, dry_run=True)
    assert dry.plan.total == sum(baseline.counts.values())
    # ...turned into blocks by the next run or reset, which keeps every id.
    if then == "run":
        other = runner.run_scenario("load", database_url=pg_url, scale=0.01)
        kind = "SELECT relkind::text FROM pg_class WHERE oid = 'seeding.ledger'::regclass"
        assert one(pg_url, kind) == "v"
        done = reset.reset_database(pg_url, run_id=baseline.run_id)
        assert done.deleted == baseline.counts
        left = one(pg_url, "SELECT count(*) FROM seeding.ledger")
        assert left == sum(other.counts.values())
    else:
        done = reset.reset_database(pg_url, run_id=baseline.run_id)
        assert done.deleted == baseline.counts
        assert one(pg_url, "SELECT count(*) FROM session_requests") == 0
        assert one(pg_url, "SELECT count(*) FROM seeding.ledger_blocks") == 0


@pytest.mark.parametrize("before", ["on", "off"])
def test_planning_a_reset_leaves_the_planner_as_it_found_it(pg_url: str, before: str) -> None:
    runner.run_scenario("baseline", database_url=pg_url)
    engine = database.engine_for(pg_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f"SET LOCAL enable_mergejoin = {before}"))
            plan = reset.plan_reset(connection)
            setting = connection.execute(sa.text("SHOW enable_mergejoin")).scalar_one()
    finally:
        engine.dispose()
    assert plan.total == 73
    assert setting == before
