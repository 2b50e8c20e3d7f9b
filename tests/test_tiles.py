"""Tiled scenarios: copies of factory-built tiles keep every rule, shards add up to the whole."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from seeding import runner
from seeding.db import constraints, database, ledger, tiles
from seeding.domain import integrity
from seeding.domain.schema import APP_TABLES
from seeding.errors import DatabaseError, ScenarioError


def _dump(url: str) -> dict[str, list[tuple[object, ...]]]:
    engine = database.engine_for(url)
    try:
        with engine.connect() as connection:
            return {
                table.name: sorted(
                    (
                        tuple(row)
                        for row in connection.execute(sa.text(f'SELECT * FROM "{table.name}"'))
                    ),
                    key=repr,
                )
                for table in APP_TABLES
            }
    finally:
        engine.dispose()


def _foreign_keys(url: str) -> list[tuple[str, str, str]]:
    engine = database.engine_for(url)
    try:
        with engine.connect() as connection:
            return sorted(
                (str(a), str(b), str(c))
                for a, b, c in connection.execute(
                    sa.text(
                        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                        "FROM pg_constraint WHERE contype = 'f'"
                    )
                )
            )
    finally:
        engine.dispose()


def test_copies_keep_every_rule_and_have_ids_of_their_own(pg_url: str, tile_file: str) -> None:
    result = runner.run_scenario(tile_file, database_url=pg_url, scale=0.6)  # 6 copies, 4 variants
    tile = runner.prepare_tiled(tile_file).first
    assert result.counts == {name: 6 * len(rows) for name, rows in tile.items()}

    engine = database.engine_for(pg_url)
    try:
        with engine.connect() as connection:
            broken = {v.rule: v.count for v in integrity.check(connection, result.now) if v.count}
            assert broken == {}
            ids = connection.execute(
                sa.text(
                    "SELECT count(*), count(DISTINCT id) FROM ("
                    + " UNION ALL ".join(f'SELECT id FROM "{t.name}"' for t in APP_TABLES)
                    + ") x"
                )
            ).one()
            assert ids[0] == sum(result.counts.values()) == ids[1]
            # Emails carry the row's own id, so they differ from copy to copy.
            emails = connection.execute(
                sa.text("SELECT count(*), count(DISTINCT email) FROM profiles")
            ).one()
            assert emails[0] == emails[1] == 30
            # Four variants: more than one distinct customer name per tile position.
            names = connection.execute(
                sa.text("SELECT count(DISTINCT full_name) FROM profiles")
            ).scalar_one()
            assert names > 5
            recorded = connection.execute(
                sa.text("SELECT count(*) FROM seeding.ledger WHERE run_id = :run"),
                {"run": result.run_id},
            ).scalar_one()
            assert recorded == sum(result.counts.values())
    finally:
        engine.dispose()


def test_all_shards_in_any_order_equal_the_unsharded_run(
    make_database: Callable[[], str], tile_file: str
) -> None:
    whole, sharded = make_database(), make_database()
    keys_before = _foreign_keys(whole)
    runner.run_scenario(tile_file, database_url=whole, scale=0.7)
    for shard in ("3/3", "1/3", "2/3"):
        runner.run_scenario(tile_file, database_url=sharded, scale=0.7, shard=shard)
    assert _dump(sharded) == _dump(whole)
    assert sum(map(len, _dump(whole).values())) > 0
    assert _foreign_keys(whole) == _foreign_keys(sharded) != keys_before == []

    # Running one shard again replaces that shard only.
    runner.run_scenario(tile_file, database_url=sharded, scale=0.7, shard="2/3")
    assert _dump(sharded) == _dump(whole)
    engine = database.engine_for(sharded)
    try:
        with engine.connect() as connection:
            shards = (
                connection.execute(sa.text("SELECT shard FROM seeding.runs ORDER BY shard"))
                .scalars()
                .all()
            )
    finally:
        engine.dispose()
    assert shards == ["1/3", "2/3", "3/3"]


def test_an_unsharded_rerun_replaces_the_shards(pg_url: str, tile_file: str) -> None:
    runner.run_scenario(tile_file, database_url=pg_url, scale=0.3, shard="1/2")
    runner.run_scenario(tile_file, database_url=pg_url, scale=0.3, shard="2/2")
    result = runner.run_scenario(tile_file, database_url=pg_url, scale=0.3)
    assert sum(result.replaced.values()) == sum(result.counts.values())
    engine = database.engine_for(pg_url)
    try:
        with engine.connect() as connection:
            assert (
                connection.execute(sa.text("SELECT count(*) FROM seeding.runs")).scalar_one() == 1
            )
    finally:
        engine.dispose()


def test_a_failed_bulk_run_writes_nothing_and_keeps_the_foreign_keys(
    pg_url: str, tile_file: str
) -> None:
    engine = database.engine_for(pg_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("ALTER TABLE session_requests ADD COLUMN app_only text NOT NULL")
        )
    engine.dispose()
    keys = _foreign_keys(pg_url)
    with pytest.raises(DatabaseError, match="wrote nothing.*app_only"):
        runner.run_scenario(tile_file, database_url=pg_url, scale=0.2)
    assert _foreign_keys(pg_url) == keys
    assert all(rows == [] for rows in _dump(pg_url).values())


def test_bulk_deletes_set_the_keys_aside_and_put_them_back(pg_url: str, tile_file: str) -> None:
    result = runner.run_scenario(tile_file, database_url=pg_url, scale=1)
    keys = _foreign_keys(pg_url)
    engine = database.engine_for(pg_url)
    try:
        with engine.begin() as connection:
            deleted = ledger.delete_runs(connection, [result.run_id])
    finally:
        engine.dispose()
    assert deleted == result.counts
    assert _foreign_keys(pg_url) == keys
    assert all(rows == [] for rows in _dump(pg_url).values())


def test_dropped_keys_come_back_with_the_same_definitions(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        before = constraints.drop_foreign_keys(connection)
        assert before
        assert constraints.drop_foreign_keys(connection) == []
        constraints.add_foreign_keys(connection, before)
        again = constraints.drop_foreign_keys(connection)
        assert again == before
        connection.rollback()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2", "is not K/N"),
        ("0/3", "between 1 and N"),
        ("4/3", "between 1 and N"),
        ("a/b", "is not K/N"),
    ],
)
def test_a_malformed_shard_is_named(text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        tiles.Shard.parse(text)


def test_shards_split_the_copies_without_overlap() -> None:
    parts = [set(tiles.Shard(k, 4).copies(10)) for k in range(1, 5)]
    assert sorted(i for part in parts for i in part) == list(range(10))
    assert parts[0] == {0, 4, 8}


def test_copy_count_and_its_limit() -> None:
    assert tiles.copy_count(100, 10) == 1000
    assert tiles.copy_count(100, 0.001) == 1
    with pytest.raises(ScenarioError, match="at most 65,536"):
        tiles.copy_count(100, 1000)


def test_masks_keep_uuid_version_and_differ_per_copy() -> None:
    masks = [tiles.copy_mask(1, i) for i in range(300)]
    assert len({m[:2] for m in masks}) == 300
    assert all(m[6] & 0xF0 == 0 and m[8] & 0xC0 == 0 for m in masks)


def test_shard_of_a_scenario_without_tiles_is_refused(pg_url: str) -> None:
    with pytest.raises(ScenarioError, match="only a scenario with `tiles:`"):
        runner.run_scenario("baseline", database_url=pg_url, shard="1/2")


def test_the_shipped_load_scenario_has_the_promised_shape() -> None:
    tiled = runner.prepare_tiled("load")
    per_tile = {name: len(rows) for name, rows in tiled.first.items()}
    assert tiled.copies == 100
    assert per_tile["profiles"] * 100 == 11_000  # 1,000 of them waiting for a mechanic
    assert per_tile["mechanics"] * 100 == 1_000
    assert per_tile["organizations"] * 100 == 400  # 100 workshops, 300 independents' own shops
    assert per_tile["session_requests"] * 100 == 100_000
    statuses = {
        row[_column("session_requests", "status")] for row in tiled.first["session_requests"]
    }
    assert statuses == {"pending", "accepted", "completed", "expired", "cancelled"}


def _column(table: str, name: str) -> int:
    from seeding.db.writer import COLUMNS

    return [column for column, _, _ in COLUMNS[table]].index(name)


def test_unknown_tiles_value_is_a_clear_error(tmp_path: Path, tile_file: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(Path(tile_file).read_text().replace("tiles: 10", "tiles: 0"))
    with pytest.raises(ScenarioError, match="tiles"):
        runner.prepare_tiled(str(path))


def test_the_cli_writes_a_shard_and_reports_its_rate(pg_url: str, tile_file: str) -> None:
    from typer.testing import CliRunner

    from seeding.cli import app

    result = CliRunner().invoke(
        app, ["scenario", tile_file, "--db", pg_url, "--scale", "0.2", "--shard", "2/2"]
    )
    assert result.exit_code == 0, result.output
    assert "scale 0.2, shard 2/2" in result.output
    assert "rows/s" in result.output
    tile_rows = sum(map(len, runner.prepare_tiled(tile_file).first.values()))
    total = next(
        line.split() for line in result.output.splitlines() if line.strip().startswith("total")
    )
    assert int(total[1].replace(",", "")) == tile_rows  # copies 0 and 1: shard 2/2 writes one

    refused = CliRunner().invoke(app, ["scenario", "baseline", "--db", pg_url, "--shard", "1/2"])
    assert refused.exit_code == 2
    assert "only a scenario with `tiles:`" in refused.output


@pytest.mark.parametrize("scale", [0.0, -1.0, float("inf"), float("nan")])
def test_a_scale_that_is_not_a_positive_number_is_refused(tile_file: str, scale: float) -> None:
    with pytest.raises(ScenarioError, match="--scale must be a positive number"):
        runner.prepare_tiled(tile_file, scale=scale)
    with pytest.raises(ScenarioError, match="--scale must be a positive number"):
        runner.prepare("baseline", scale=scale)


def test_reset_names_the_shards_and_removes_one(pg_url: str, tile_file: str) -> None:
    from seeding import reset

    first = runner.run_scenario(tile_file, database_url=pg_url, scale=0.2, shard="1/2")
    second = runner.run_scenario(tile_file, database_url=pg_url, scale=0.2, shard="2/2")
    dry = reset.reset_database(pg_url, dry_run=True)
    assert {run.shard for run in dry.plan.runs} == {"1/2", "2/2"}
    assert "shard 2/2" in " ".join(run.describe() for run in dry.plan.runs)
    done = reset.reset_database(pg_url, run_id=first.run_id)
    assert done.deleted == first.counts
    left = _dump(pg_url)
    assert {name: len(rows) for name, rows in left.items() if rows} == second.counts


def test_reset_reads_a_ledger_from_before_shards(pg_url: str) -> None:
    from seeding import reset

    runner.run_scenario("baseline", database_url=pg_url)
    engine = database.engine_for(pg_url)
    with engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE seeding.runs DROP COLUMN shard"))
    engine.dispose()
    dry = reset.reset_database(pg_url, dry_run=True)
    assert [run.shard for run in dry.plan.runs] == [None]
    assert dry.plan.total == 73
