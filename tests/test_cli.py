"""The ``seed`` command: exit codes, exact messages, and what lands in the database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from seeding import database
from seeding.cli import app

runner = CliRunner()


def test_version_and_help() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("seed 0.")
    for command in (["--help"], ["db", "--help"], ["db", "create", "--help"]):
        assert runner.invoke(app, command).exit_code == 0


def test_db_create_creates_then_changes_nothing(new_database: str) -> None:
    first = runner.invoke(app, ["db", "create", "--db", new_database])
    assert first.exit_code == 0, first.output
    assert "created 6 tables: organizations" in first.output
    second = runner.invoke(app, ["db", "create", "--db", new_database])
    assert second.exit_code == 0
    assert "all tables present; nothing changed" in second.output
    engine = database.engine_for(new_database)
    with engine.connect() as c:
        tables = set(sa.inspect(c).get_table_names())
        fks = {
            fk["constrained_columns"][0]
            for fk in sa.inspect(c).get_foreign_keys("session_requests")
        }
    engine.dispose()
    assert tables == {
        "organizations", "profiles", "mechanics", "vehicles", "sessions", "session_requests"
    }
    # The app's quirk, kept: customer_id has no foreign key.
    assert "customer_id" not in fks and "mechanic_id" in fks


def test_db_create_fills_in_only_what_is_missing(new_database: str) -> None:
    runner.invoke(app, ["db", "create", "--db", new_database])
    engine = database.engine_for(new_database)
    with engine.begin() as c:
        c.execute(sa.text("DROP TABLE session_requests"))
    engine.dispose()
    result = runner.invoke(app, ["db", "create", "--db", new_database])
    assert result.exit_code == 0
    assert "created 1 tables: session_requests" in result.output


def test_unreachable_database_is_one_line_exit_2_no_password() -> None:
    result = runner.invoke(app, ["db", "create", "--db", "postgres://me:s3cret@127.0.0.1:1/x"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert result.output.startswith("error: cannot connect to postgresql://me:***@127.0.0.1:1/x")
    assert "s3cret" not in result.output
    assert "Traceback" not in result.output


def test_a_url_that_is_not_postgresql_is_refused() -> None:
    result = runner.invoke(app, ["db", "create", "--db", "mysql://root@localhost/db"])
    assert result.exit_code == 2
    assert result.output == (
        "error: the database URL (from --db) has the scheme 'mysql', not PostgreSQL; "
        "write it as postgresql://user:password@host:5432/database\n"
    )


def test_db_url_prints_the_database(new_database: str) -> None:
    result = runner.invoke(app, ["db", "url", "--db", new_database.replace("postgresql://", "postgres://")])
    assert result.exit_code == 0
    assert result.output.strip() == new_database


def test_a_wrong_scenario_is_refused_before_any_server_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No --db and no SEED_DATABASE_URL: the embedded server would be next, but the scenario
    # is read first (and tests/conftest.py fails a fast test that starts the server).
    monkeypatch.delenv("SEED_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    for arguments in (["scenario", "nothere.yaml"], ["report", "--scenario", "nothere.yaml"]):
        result = runner.invoke(app, arguments)
        assert (result.exit_code, result.output) == (
            2, "error: nothere.yaml: no such scenario file; check the path\n"
        )


class Recorded:
    """A Status that records what the library tells it."""

    def __init__(self) -> None:
        self.phases: list[str] = []
        self.totals: list[int] = []
        self.written = 0

    @contextmanager
    def phase(self, message: str) -> Iterator[None]:
        self.phases.append(message)
        yield

    @contextmanager
    def rows(self, total: int) -> Iterator[Callable[[int], None]]:
        self.totals.append(total)

        def advance(count: int) -> None:
            self.written += count

        yield advance


def test_run_scenario_tells_its_status_each_phase_and_the_rows(pg_url: str, tile_file: str) -> None:
    from seeding import measure
    from seeding.runner import prepare_tiled, run_scenario

    status = Recorded()
    result = run_scenario("baseline", database_url=pg_url, status=status)
    assert status.phases == ["checking and building the scenario", "writing 73 rows"]
    assert (result.tiled, result.shard, result.scenario, sum(result.counts.values())) == (
        False, None, "baseline", 73
    )
    assert result.target is not None and result.target.endpoint == database.endpoint_of(pg_url)
    checked = measure.measure_targets(result.target, expect=result.expect, now=result.now)
    assert checked and all(target.met for target in checked)

    tiled = Recorded()
    result = run_scenario(tile_file, database_url=pg_url, scale=0.2, shard="1/2", status=tiled)
    rows = sum(map(len, prepare_tiled(tile_file).first.values()))
    assert tiled.phases == ["checking and building the scenario"]
    assert tiled.totals == [rows] and tiled.written == rows == sum(result.counts.values())
    assert (result.tiled, result.shard) == (True, "1/2")
    assert measure.measure_targets(result.target, expect={}) == ()
