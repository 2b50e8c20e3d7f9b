"""The ``seed`` command: exit codes, exact messages, and what lands in the database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from seeding.cli import app
from seeding.cli.output import counted
from seeding.db import database
from seeding.domain.schema import APP_TABLES

runner = CliRunner()

#: A database that is never there: a command that connects fails on it.
CLOSED_PORT = "postgresql://postgres@127.0.0.1:1/nothing"


def test_version_and_help() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("seed 0.")
    for command in (["--help"], ["db", "--help"], ["db", "create", "--help"]):
        assert runner.invoke(app, command).exit_code == 0


def test_help_lists_the_commands_in_the_order_they_are_used() -> None:
    # Each module of seeding.cli registers its commands as seeding.cli imports it, in this order.
    assert [info.name for info in app.registered_commands] == [
        "scenarios", "kinds", "scenario", "report", "reset", "export",
    ]


def test_db_create_creates_then_changes_nothing(new_database: str) -> None:
    first = runner.invoke(app, ["db", "create", "--db", new_database])
    assert first.exit_code == 0, first.output
    created = [table.name for table in APP_TABLES]
    assert f"created {len(created)} tables: {', '.join(created)}\n" in first.output
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
    assert tables == set(created) >= {
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
    assert "created 1 table: session_requests" in result.output


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
    from seeding.report import measure
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


# Quiet, honest output.

#: A small scenario with targets: met as given, missed with MISSED in place of a figure.
TARGETED = """\
description: Three customers, three mechanics, fifteen completed requests, with targets.
seed: 7
clock:
  now: 2025-11-06T14:10:00-05:00
steps:
  - create: customer
    count: 3
  - create: mechanic
    count: 3
    traits: [independent]
  - create: session_request
    count: 15
    traits: [completed]
    with: {customer: {any: customer}, mechanic: {any: mechanic}}
expect:
  session_requests.total: "== 15"
  session_requests.by_status.completed: "MISSED"
  customers.total: ">= 3"
"""


def targeted(tmp_path: Path, *, missed: bool) -> str:
    path = tmp_path / ("missed.yaml" if missed else "met.yaml")
    path.write_text(TARGETED.replace("MISSED", ">= 16" if missed else "== 15"))
    return str(path)


def test_a_run_prints_one_summary_and_only_the_missed_targets(
    pg_url: str, tmp_path: Path
) -> None:
    met = runner.invoke(app, ["scenario", targeted(tmp_path, missed=False), "--db", pg_url])
    assert met.exit_code == 0, met.output
    lines = met.output.splitlines()
    assert lines[0] == f"database: {pg_url} (from --db)"
    assert lines[1] == "scenario met (seed 7, scale 1):"
    assert lines[-2].startswith("  total                     42  in ")
    assert lines[-1] == "targets: 3 of 3 met"
    assert runner.invoke(app, ["reset", "--yes", "--db", pg_url]).exit_code == 0

    missed = runner.invoke(app, ["scenario", targeted(tmp_path, missed=True), "--db", pg_url])
    assert missed.exit_code == 1
    assert missed.output.splitlines()[-2:] == [
        "targets: 2 of 3 met",
        "  MISS session_requests.by_status.completed        15  needed >= 16",
    ]

    verbose = runner.invoke(
        app, ["scenario", targeted(tmp_path, missed=True), "-v", "--db", pg_url]
    )
    assert verbose.exit_code == 1
    assert verbose.output.splitlines()[-4:] == [
        "targets: 2 of 3 met",
        "  ok   session_requests.total                      15  needed == 15",
        "  MISS session_requests.by_status.completed        15  needed >= 16",
        "  ok   customers.total                              3  needed >= 3",
    ]


def _seed_with_stdout_closed(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run ``seed`` in a process whose stdout is a pipe its reader has already closed."""
    read, write = os.pipe()
    os.close(read)  # every write to the pipe now fails (EPIPE)
    try:
        return subprocess.run(
            [sys.executable, "-m", "seeding.cli", *arguments],
            stdout=write, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            timeout=300, check=False,
        )
    finally:
        os.close(write)


def test_a_closed_stdout_does_not_fail_a_committed_run(pg_url: str, tmp_path: Path) -> None:
    done = _seed_with_stdout_closed("scenario", "baseline", "--db", pg_url)
    assert (done.returncode, done.stderr) == (0, "")
    engine = database.engine_for(pg_url)
    with engine.connect() as c:
        assert c.scalar(sa.text("SELECT count(*) FROM session_requests")) == 43
    engine.dispose()
    # The exit code is the run's own: 1 when a target is missed, the output cut or not.
    missed = _seed_with_stdout_closed("scenario", targeted(tmp_path, missed=True), "--db", pg_url)
    assert (missed.returncode, missed.stderr) == (1, "")


def test_a_pipe_to_head_keeps_the_exit_code(pg_url: str) -> None:
    seed = f"{sys.executable} -m seeding.cli"
    done = subprocess.run(
        ["bash", "-c", f"{seed} scenario baseline --db '{pg_url}' | head -2; "
         "exit ${PIPESTATUS[0]}"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        f"database: {pg_url} (from --db)", "scenario baseline (seed 20251112, scale 1):"
    ]


def test_a_closed_stdout_on_a_command_that_only_reads_exits_0() -> None:
    for arguments in (["--version"], ["scenarios"]):
        done = _seed_with_stdout_closed(*arguments)
        assert (done.returncode, done.stderr) == (0, ""), arguments


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["scenario", "diverse", "--scale", "abc"],
         "error: invalid value for '--scale': Input should be a valid number, unable to parse "
         "string as a number; see `seed scenario --help`"),
        (["scenario", "diverse", "--seed", "x"],
         "error: invalid value for '--seed': Input should be a valid integer, unable to parse "
         "string as an integer; see `seed scenario --help`"),
        (["scenario", "diverse", "--shard", "x"],
         "error: --shard 'x' is not K/N (for example 2/8: the second of 8 shards)"),
        (["report", "--format", "yaml"],
         "error: --format 'yaml' is not one of table, markdown, json, html, junit"),
        (["scenario"], "error: missing argument 'name'; see `seed scenario --help`"),
        (["scenario", "diverse", "--sacle", "2"],
         "error: no such option: --sacle (Possible options: --scale, --seed); "
         "see `seed scenario --help`"),
        (["nosuch"], "error: no such command 'nosuch'; see `seed --help`"),
    ],
    ids=["scale", "seed", "shard", "format", "missing", "unknown-option", "unknown-command"],
)
def test_a_bad_command_line_is_one_line_exit_2(arguments: list[str], message: str) -> None:
    result = runner.invoke(app, [*arguments, "--db", CLOSED_PORT])
    assert (result.exit_code, result.output) == (2, message + "\n")


def test_help_still_works() -> None:
    for arguments in (["scenario", "--help"], ["report", "--help"], ["db", "doctor", "--help"]):
        result = runner.invoke(app, arguments)
        assert result.exit_code == 0 and "Usage: seed" in result.output, arguments
    bare = runner.invoke(app, [])
    assert bare.exit_code == 2 and "Usage: seed" in bare.output


def test_counts_take_the_right_plural() -> None:
    assert [counted(n, "row") for n in (0, 1, 2, 1204)] == [
        "0 rows", "1 row", "2 rows", "1,204 rows"
    ]
    assert (counted(1, "problem"), counted(3, "analysis", "analyses")) == (
        "1 problem", "3 analyses"
    )


def test_reset_without_a_terminal_needs_yes(pg_url: str) -> None:
    from seeding.runner import run_scenario

    run_scenario("baseline", database_url=pg_url)
    refused = runner.invoke(app, ["reset", "--db", pg_url])
    assert (refused.exit_code, refused.output) == (
        2,
        "error: seed reset deletes rows and asks first, but stdin is not a terminal to ask "
        "on; add --yes to delete without asking, or --dry-run to see what it would delete\n",
    )
    engine = database.engine_for(pg_url)
    with engine.connect() as c:
        assert c.scalar(sa.text("SELECT count(*) FROM session_requests")) == 43
    engine.dispose()
    assert runner.invoke(app, ["reset", "--dry-run", "--db", pg_url]).exit_code == 0
    assert runner.invoke(app, ["reset", "--yes", "--db", pg_url]).exit_code == 0


def test_reset_without_a_terminal_refuses_before_connecting() -> None:
    result = runner.invoke(app, ["reset", "--all-tables", "--db", CLOSED_PORT])
    assert result.exit_code == 2
    assert result.output.startswith("error: seed reset deletes rows and asks first")


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("missing/r.md",
         "--output {tmp}/missing/r.md: there is no folder {tmp}/missing; create it first "
         "(mkdir -p {tmp}/missing) or write elsewhere"),
        ("", "--output {tmp}/: that is a folder; give a file in it, such as {tmp}/report.md"),
        ("file.txt/r.md",
         "--output {tmp}/file.txt/r.md: {tmp}/file.txt is a file, not a folder; write "
         "elsewhere"),
        ("locked/r.md",
         "--output {tmp}/locked/r.md: cannot write there (Permission denied); choose a path "
         "you can write to"),
    ],
    ids=["missing-folder", "a-folder", "under-a-file", "read-only-folder"],
)
def test_report_output_is_checked_before_any_query(
    tmp_path: Path, output: str, message: str
) -> None:
    (tmp_path / "file.txt").write_text("")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if output.startswith("locked") and os.access(locked, os.W_OK):
        pytest.skip("this user (root?) may write in a read-only folder")
    # The database is a closed port: had anything connected, the error would say so.
    result = runner.invoke(app, ["report", "--output", f"{tmp_path}/{output}", "--db", CLOSED_PORT])
    assert (result.exit_code, result.output) == (
        2, "error: " + message.format(tmp=tmp_path) + "\n"
    )


def test_report_output_that_can_be_written_is_left_alone_until_the_report(
    tmp_path: Path,
) -> None:
    result = runner.invoke(app, ["report", "--output", str(tmp_path / "r.md"), "--db", CLOSED_PORT])
    assert result.exit_code == 2
    assert result.output.startswith("error: cannot connect to ")
    assert not (tmp_path / "r.md").exists()  # the check made no file


def test_a_run_names_the_runs_it_replaces(new_database: str) -> None:
    import re

    first = runner.invoke(app, ["scenario", "baseline", "--db", new_database])
    assert first.exit_code == 0, first.output
    assert "replaced" not in first.output
    again = runner.invoke(app, ["scenario", "diverse", "--db", new_database])
    assert again.exit_code == 0, again.output
    # diverse extends baseline with its seed: the same rows, so baseline's run is replaced.
    assert re.search(
        r"^replaced run [0-9a-f-]{36} of baseline \(seed 20251112\), [0-9,]+ rows$",
        again.output, re.M,
    ), again.output
