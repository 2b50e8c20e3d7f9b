"""seed reset: exactly the ledger's rows go, every other row stays, blockers change nothing."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any, NoReturn

import psycopg
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from seeding import cli, reset, runner
from seeding.db import guard, ledger
from seeding.domain.schema import APP_TABLES
from seeding.errors import ConfigurationError, ResetBlockedError

cli_runner = CliRunner()

APP = [table.name for table in APP_TABLES]
LEDGER = ["seeding.runs", "seeding.ledger"]

SMALL = """\
description: Two customers with completed requests, to sit beside another scenario.
seed: 7
clock:
  now: 2025-11-06T14:10:00-05:00
steps:
  - create: workshop
  - create: customer
    ref: testers
    count: 2
  - create: mechanic
    traits: [workshop]
  - create: session_request
    count: 3
    traits: [completed]
    with: {customer: {ref: testers}}
"""

Dump = dict[str, list[dict[str, Any]] | None]


def dump(url: str) -> Dump:
    """Every row of every app table and of the ledger, as JSON objects, in a fixed order."""
    tables: Dump = {}
    with psycopg.connect(url) as c:
        for name in APP + LEDGER:
            qualified = name if "." in name else f'public."{name}"'
            row = c.execute("SELECT to_regclass(%s)", (qualified,)).fetchone()
            if row is None or row[0] is None:
                tables[name] = None
                continue
            query = f"SELECT row_to_json(t)::text FROM {qualified} t ORDER BY 1"
            rows = c.execute(query).fetchall()
            tables[name] = [json.loads(text) for (text,) in rows]
    return tables


def without(before: Dump, ids: set[str], run_ids: set[str]) -> Dump:
    """The dump less the rows with these ids and the ledger rows of these runs."""
    expected: Dump = {}
    for name, rows in before.items():
        if rows is None:
            expected[name] = None
        elif name == "seeding.runs":
            expected[name] = [r for r in rows if r["id"] not in run_ids]
        elif name == "seeding.ledger":
            expected[name] = [r for r in rows if r["run_id"] not in run_ids]
        else:
            expected[name] = [r for r in rows if r["id"] not in ids]
    return expected


def ledger_ids(url: str, run_id: uuid.UUID | None = None) -> set[str]:
    with psycopg.connect(url) as c:
        rows = c.execute(
            "SELECT row_id::text FROM seeding.ledger WHERE %s::uuid IS NULL OR run_id = %s",
            (run_id, run_id),
        ).fetchall()
    return {row_id for (row_id,) in rows}


def seeded(url: str, table: str) -> str:
    """The id of one row the tool wrote in a table."""
    with psycopg.connect(url) as c:
        row = c.execute(
            "SELECT row_id::text FROM seeding.ledger WHERE table_name = %s ORDER BY row_id LIMIT 1",
            (table,),
        ).fetchone()
    assert row is not None
    return str(row[0])


def add_foreign_rows(url: str) -> dict[str, str]:
    """A tester's own rows, related among themselves and to nothing the tool wrote."""
    ids = {name: str(uuid.uuid4()) for name in
           ("organization", "profile", "mechanic", "user", "vehicle", "session", "request")}
    with psycopg.connect(url) as c:
        c.execute("""INSERT INTO organizations (id, name, slug, email, organization_type)
                     VALUES (%(organization)s, 'Tester Garage', 'tester-garage',
                             'garage@tester.example', 'workshop')""", ids)
        c.execute("""INSERT INTO profiles (id, role, full_name, email, city)
                     VALUES (%(profile)s, 'customer', 'Tess Tester', 'tess@tester.example',
                             'Halifax')""", ids)
        c.execute("""INSERT INTO mechanics (id, user_id, name, workshop_id, account_type)
                     VALUES (%(mechanic)s, %(user)s, 'Tom Tester', %(organization)s,
                             'workshop_mechanic')""", ids)
        c.execute("""INSERT INTO vehicles (id, customer_id, make, model, year)
                     VALUES (%(vehicle)s, %(profile)s, 'Honda', 'Civic', 2019)""", ids)
        c.execute("""INSERT INTO sessions (id, type, status, plan, stripe_session_id,
                                           customer_user_id, mechanic_id)
                     VALUES (%(session)s, 'chat', 'completed', 'chat10', 'cs_test_tester',
                             %(profile)s, %(mechanic)s)""", ids)
        c.execute("""INSERT INTO session_requests (id, customer_id, customer_name, session_type,
                                                   plan_code, status, mechanic_id, session_id,
                                                   vehicle_id, workshop_id)
                     VALUES (%(request)s, %(profile)s, 'Tess Tester', 'chat', 'chat10',
                             'accepted', %(mechanic)s, %(session)s, %(vehicle)s,
                             %(organization)s)""", ids)
    return ids


def table_counts(output: str) -> dict[str, int]:
    """The per-table lines of a reset's output."""
    return {
        table: int(count.replace(",", ""))
        for table, count in re.findall(r"^  (\w+)\s+([\d,]+)$", output, re.MULTILINE)
        if table != "total"
    }


@pytest.fixture
def baseline(pg_url: str) -> runner.RunResult:
    return runner.run_scenario("baseline", database_url=pg_url)


@pytest.fixture
def two_runs(pg_url: str, tmp_path: Path) -> tuple[runner.RunResult, runner.RunResult]:
    (tmp_path / "small.yaml").write_text(SMALL)
    first = runner.run_scenario("baseline", database_url=pg_url)
    second = runner.run_scenario(str(tmp_path / "small.yaml"), database_url=pg_url)
    return first, second


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to connect fail the test."""

    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        pytest.fail("reset tried to connect")

    monkeypatch.setattr(psycopg, "connect", refuse)
    monkeypatch.setattr(psycopg.Connection, "connect", refuse)
    monkeypatch.setattr(sa, "create_engine", refuse)


# What a reset deletes, and what it keeps.


def test_reset_deletes_the_tools_rows_and_keeps_every_other_row_as_it_was(
    pg_url: str, baseline: runner.RunResult
) -> None:
    foreign = add_foreign_rows(pg_url)
    before = dump(pg_url)
    written = ledger_ids(pg_url)
    assert len(written) == 73

    result = cli_runner.invoke(cli.app, ["reset", "--yes", "--db", pg_url])

    assert result.exit_code == 0, result.output
    after = dump(pg_url)
    assert after == without(before, written, {str(baseline.run_id)})
    assert after["seeding.runs"] == [] and after["seeding.ledger"] == []
    remaining = {row["id"] for name in APP for row in after[name] or []}
    assert remaining == set(foreign.values()) - {foreign["user"]}
    assert not remaining & written
    assert "deleted the rows of 1 run:" in result.output
    assert f"  run {baseline.run_id} (baseline, seed 20251112, " in result.output
    assert table_counts(result.output) == {
        "session_requests": 43, "sessions": 15, "profiles": 3, "mechanics": 7, "vehicles": 3,
        "organizations": 2,
    }
    assert re.search(r"^  total\s+73$", result.output, re.MULTILINE)


def test_dry_run_changes_nothing_and_counts_what_the_reset_then_deletes(
    pg_url: str, baseline: runner.RunResult
) -> None:
    add_foreign_rows(pg_url)
    before = dump(pg_url)

    dry = cli_runner.invoke(cli.app, ["reset", "--yes", "--dry-run", "--db", pg_url])

    assert dry.exit_code == 0, dry.output
    assert dump(pg_url) == before
    assert "dry run: a reset would delete the rows of 1 run:" in dry.output
    assert dry.output.endswith("nothing deleted (dry run)\n")
    real = cli_runner.invoke(cli.app, ["reset", "--yes", "--db", pg_url])
    assert real.exit_code == 0, real.output
    after = dump(pg_url)
    gone = {name: len(before[name] or []) - len(after[name] or []) for name in APP}
    assert table_counts(dry.output) == table_counts(real.output) == {
        name: count for name, count in gone.items() if count
    }


def test_the_library_plan_counts_what_execute_deletes(
    pg_url: str, baseline: runner.RunResult
) -> None:
    planned = reset.reset_database(pg_url, dry_run=True)
    assert planned.outcome == "dry_run" and planned.plan.run_ids == (baseline.run_id,)
    done = reset.reset_database(pg_url)
    assert done.outcome == "deleted"
    children_first = dict(reversed(baseline.counts.items()))
    assert dict(done.deleted) == dict(planned.plan.counts) == children_first
    assert reset.reset_database(pg_url).outcome == "nothing"


def test_run_removes_only_that_run(
    pg_url: str, two_runs: tuple[runner.RunResult, runner.RunResult]
) -> None:
    kept, removed = two_runs
    before = dump(pg_url)
    removed_ids = ledger_ids(pg_url, removed.run_id)
    assert removed_ids and ledger_ids(pg_url, kept.run_id)

    result = cli_runner.invoke(
        cli.app, ["reset", "--yes", "--run", str(removed.run_id), "--db", pg_url]
    )

    assert result.exit_code == 0, result.output
    assert dump(pg_url) == without(before, removed_ids, {str(removed.run_id)})
    assert f"run {removed.run_id} (small, seed 7" in result.output
    assert str(kept.run_id) not in result.output
    assert sum(table_counts(result.output).values()) == len(removed_ids) == 19


def test_a_bulk_run_goes_exactly_and_its_keys_come_back(
    pg_url: str, baseline: runner.RunResult
) -> None:
    # Over constraints.BULK_ROWS rows: the keys are set aside and the ids hashed.
    load = runner.run_scenario("load", database_url=pg_url, scale=0.06)
    assert sum(load.counts.values()) >= 10_000
    keys = "SELECT count(*) FROM pg_constraint WHERE contype = 'f'"
    with psycopg.connect(pg_url) as c:
        keys_before = c.execute(keys).fetchone()
    before = dump(pg_url)
    removed_ids = ledger_ids(pg_url, load.run_id)

    done = reset.reset_database(pg_url, run_id=load.run_id)

    assert done.deleted == {table: n for table, n in load.counts.items() if n}
    assert dump(pg_url) == without(before, removed_ids, {str(load.run_id)})
    with psycopg.connect(pg_url) as c:
        assert c.execute(keys).fetchone() == keys_before


@pytest.mark.parametrize("name", ["baseline", "scenarios/baseline.yaml"])
def test_scenario_removes_only_the_runs_of_that_scenario(
    pg_url: str, two_runs: tuple[runner.RunResult, runner.RunResult], name: str
) -> None:
    removed, kept = two_runs
    before = dump(pg_url)
    removed_ids = ledger_ids(pg_url, removed.run_id)

    result = cli_runner.invoke(cli.app, ["reset", "--yes", "--scenario", name, "--db", pg_url])

    assert result.exit_code == 0, result.output
    assert dump(pg_url) == without(before, removed_ids, {str(removed.run_id)})
    assert sum(table_counts(result.output).values()) == 73


def test_a_scenario_file_path_selects_runs_by_its_stem(
    pg_url: str, two_runs: tuple[runner.RunResult, runner.RunResult], tmp_path: Path
) -> None:
    kept, removed = two_runs
    result = cli_runner.invoke(
        cli.app, ["reset", "--yes", "--scenario", str(tmp_path / "small.yaml"), "--db", pg_url]
    )
    assert result.exit_code == 0, result.output
    with psycopg.connect(pg_url) as c:
        assert c.execute("SELECT id FROM seeding.runs").fetchall() == [(kept.run_id,)]


# Rows the reset would keep that point at rows it would delete.

BLOCKING_ROWS = {
    # case: (table, column, points at, SQL inserting the row; %(target)s is the seeded row)
    "a request for a seeded mechanic": (
        "session_requests", "mechanic_id", "mechanics",
        "INSERT INTO session_requests (id, customer_id, session_type, mechanic_id) "
        "VALUES (%(id)s, gen_random_uuid(), 'chat', %(target)s)",
    ),
    "a request of a seeded customer (no foreign key)": (
        "session_requests", "customer_id", "profiles",
        "INSERT INTO session_requests (id, customer_id, session_type) "
        "VALUES (%(id)s, %(target)s, 'video')",
    ),
    "a follow-up of a seeded session": (
        "session_requests", "parent_session_id", "sessions",
        "INSERT INTO session_requests (id, customer_id, session_type, parent_session_id) "
        "VALUES (%(id)s, gen_random_uuid(), 'chat', %(target)s)",
    ),
    "a vehicle of a seeded customer (no foreign key)": (
        "vehicles", "customer_id", "profiles",
        "INSERT INTO vehicles (id, customer_id) VALUES (%(id)s, %(target)s)",
    ),
    "a session of a seeded customer (no foreign key)": (
        "sessions", "customer_user_id", "profiles",
        "INSERT INTO sessions (id, type, plan, stripe_session_id, customer_user_id) "
        "VALUES (%(id)s, 'chat', 'chat10', 'cs_test_1', %(target)s)",
    ),
    "a mechanic account of a seeded user (no foreign key)": (
        "mechanics", "user_id", "profiles",
        "INSERT INTO mechanics (id, user_id) VALUES (%(id)s, %(target)s)",
    ),
    "a mechanic at a seeded workshop": (
        "mechanics", "workshop_id", "organizations",
        "INSERT INTO mechanics (id, workshop_id) VALUES (%(id)s, %(target)s)",
    ),
    "a vehicle of a seeded customer, its customer_id text": (
        "vehicles", "customer_id", "profiles",
        "INSERT INTO vehicles (id, customer_id) VALUES (%(id)s, %(target)s::text)",
    ),
    "a mechanic at a seeded workshop by its code (a live key to another column)": (
        "mechanics", "org_code", "organizations",
        "INSERT INTO mechanics (id, org_code) VALUES (%(id)s, 'org-' || %(target)s)",
    ),
}

#: What a case changes in the schema first: a live database the tool did not create.
SCHEMA_CHANGES = {
    # No foreign key: the column may be of another type than the id it holds.
    "a vehicle of a seeded customer, its customer_id text": (
        "ALTER TABLE vehicles ALTER COLUMN customer_id TYPE text",
    ),
    "a mechanic at a seeded workshop by its code (a live key to another column)": (
        "ALTER TABLE organizations ADD COLUMN code text UNIQUE",
        "UPDATE organizations SET code = 'org-' || id",
        "ALTER TABLE mechanics ADD COLUMN org_code text REFERENCES organizations (code)",
    ),
}


@pytest.mark.parametrize("case", sorted(BLOCKING_ROWS))
def test_a_foreign_row_pointing_at_a_seeded_row_blocks_the_reset(
    pg_url: str, baseline: runner.RunResult, case: str
) -> None:
    table, column, target_table, insert = BLOCKING_ROWS[case]
    row_id, target = str(uuid.uuid4()), seeded(pg_url, target_table)
    add_foreign_rows(pg_url)
    with psycopg.connect(pg_url) as c:
        for change in SCHEMA_CHANGES.get(case, ()):
            c.execute(change)
        c.execute(insert, {"id": row_id, "target": target})
    before = dump(pg_url)

    result = cli_runner.invoke(cli.app, ["reset", "--yes", "--db", pg_url])

    assert result.exit_code == 1, result.output
    assert dump(pg_url) == before
    lines = result.output.splitlines()
    assert lines[0].startswith(
        "error: reset refused, nothing was deleted: 1 row (not written by this tool) point at "
        "rows it would delete; first: "
    )
    assert lines[1:] == [
        "the rows in the way:", f"  {table} {row_id}: {column} → {target_table} {target}"
    ]
    assert "Traceback" not in result.output


def test_every_blocking_row_is_listed_and_the_dry_run_exits_1(
    pg_url: str, baseline: runner.RunResult
) -> None:
    mechanic, profile = seeded(pg_url, "mechanics"), seeded(pg_url, "profiles")
    by_mechanic, by_customer = str(uuid.uuid4()), str(uuid.uuid4())
    with psycopg.connect(pg_url) as c:
        c.execute("INSERT INTO session_requests (id, customer_id, session_type, mechanic_id) "
                  "VALUES (%s, gen_random_uuid(), 'chat', %s)", (by_mechanic, mechanic))
        c.execute("INSERT INTO session_requests (id, customer_id, session_type) "
                  "VALUES (%s, %s, 'video')", (by_customer, profile))
    before = dump(pg_url)

    dry = cli_runner.invoke(cli.app, ["reset", "--yes", "--dry-run", "--db", pg_url])
    real = cli_runner.invoke(cli.app, ["reset", "--yes", "--db", pg_url])

    assert (dry.exit_code, real.exit_code) == (1, 1)
    assert dump(pg_url) == before
    for output in (dry.output, real.output):
        assert f"session_requests {by_mechanic}: mechanic_id → mechanics {mechanic}" in output
        assert f"session_requests {by_customer}: customer_id → profiles {profile}" in output
    assert "fix: delete those rows or point them elsewhere, or reset the runs" in dry.output
    assert "error: reset refused, nothing was deleted: 2 rows (not written" in real.output


def test_many_blocking_rows_are_listed_up_to_20(pg_url: str, baseline: runner.RunResult) -> None:
    profile = seeded(pg_url, "profiles")
    with psycopg.connect(pg_url) as c:
        c.execute("INSERT INTO session_requests (customer_id, session_type) "
                  "SELECT %s, 'chat' FROM generate_series(1, 25)", (profile,))
    result = cli_runner.invoke(cli.app, ["reset", "--yes", "--db", pg_url])
    assert result.exit_code == 1
    assert "25 rows (not written by this tool)" in result.output
    assert result.output.count(f": customer_id → profiles {profile}\n") == 20
    assert result.output.endswith("  and 5 more\n")


def test_a_row_of_a_run_not_being_reset_blocks_and_names_its_run(
    pg_url: str, two_runs: tuple[runner.RunResult, runner.RunResult]
) -> None:
    first, second = two_runs
    with psycopg.connect(pg_url) as c:
        row = c.execute("SELECT row_id::text FROM seeding.ledger WHERE run_id = %s "
                        "AND table_name = 'mechanics' ORDER BY 1 LIMIT 1",
                        (first.run_id,)).fetchone()
        assert row is not None
        mechanic = row[0]
        request = c.execute(
            "UPDATE session_requests SET mechanic_id = %s WHERE id = (SELECT row_id FROM "
            "seeding.ledger WHERE run_id = %s AND table_name = 'session_requests' ORDER BY 1 "
            "LIMIT 1) RETURNING id::text", (mechanic, second.run_id)).fetchone()
        assert request is not None
    before = dump(pg_url)

    with pytest.raises(ResetBlockedError) as blocked:
        reset.reset_database(pg_url, run_id=first.run_id)

    assert dump(pg_url) == before
    assert blocked.value.blockers == (
        reset.Blocker("session_requests", request[0], "mechanic_id", "mechanics",
                      uuid.UUID(mechanic), second.run_id),
    )
    assert "(written by runs not being reset)" in str(blocked.value)
    assert reset.reset_database(pg_url).outcome == "deleted"  # both runs: nothing is kept


def test_a_live_foreign_key_from_a_table_the_tool_does_not_know_blocks(
    pg_url: str, baseline: runner.RunResult
) -> None:
    # ON DELETE CASCADE would silently delete the tester's message: reset must refuse first.
    session = seeded(pg_url, "sessions")
    with psycopg.connect(pg_url) as c:
        c.execute("CREATE TABLE chat_messages (id bigint PRIMARY KEY, "
                  "session_id uuid REFERENCES sessions (id) ON DELETE CASCADE, body text)")
        c.execute("INSERT INTO chat_messages VALUES (7, %s, 'hello')", (session,))
    before = dump(pg_url)

    result = cli_runner.invoke(cli.app, ["reset", "--yes", "--db", pg_url])
    everything = cli_runner.invoke(cli.app, ["reset", "--yes", "--all-tables", "--db", pg_url])

    for output in (result.output, everything.output):
        assert f"  chat_messages 7: session_id → sessions {session}\n" in output
    assert (result.exit_code, everything.exit_code) == (1, 1)
    assert dump(pg_url) == before
    with psycopg.connect(pg_url) as c:
        assert c.execute("SELECT count(*) FROM chat_messages").fetchone() == (1,)


# Selecting runs: errors are one line, exit 2.


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--run", "nope"], "error: --run 'nope' is not a run id (a uuid); runs in the ledger: "),
        (["--run", "5eed0000-0000-4000-8000-000000000000"],
         "error: no run 5eed0000-0000-4000-8000-000000000000 in the ledger; runs in the ledger: "),
        (["--scenario", "diverse"],
         "error: no run of scenario 'diverse' in the ledger; runs in the ledger: "),
    ],
)
def test_an_unknown_run_or_scenario_is_one_line_listing_the_runs(
    pg_url: str, baseline: runner.RunResult, arguments: list[str], message: str
) -> None:
    before = dump(pg_url)
    result = cli_runner.invoke(cli.app, ["reset", "--yes", *arguments, "--db", pg_url])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert result.output.startswith(message), result.output
    assert f"{baseline.run_id} (baseline, seed 20251112, " in result.output
    assert result.output.endswith(", 73 rows)\n")
    assert dump(pg_url) == before


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--run", "x", "--scenario", "y"], "error: --run and --scenario both choose runs"),
        (["--all-tables", "--scenario", "y"], "error: --all-tables empties every app table, so it"),
    ],
)
def test_contradicting_options_are_refused_before_connecting(
    arguments: list[str], message: str, no_connections: None
) -> None:
    result = cli_runner.invoke(cli.app, ["reset", "--yes", *arguments, "--db", "postgresql://u@localhost/x"])
    assert result.exit_code == 2
    assert result.output.startswith(message) and result.output.count("\n") == 1


def test_a_database_without_a_ledger_has_nothing_to_reset(pg_url: str) -> None:
    add_foreign_rows(pg_url)
    before = dump(pg_url)
    result = cli_runner.invoke(cli.app, ["reset", "--yes", "--db", pg_url])
    assert result.exit_code == 0, result.output
    assert result.output.endswith("\nnothing to reset: this database has no seeding ledger\n")
    assert dump(pg_url) == before and before["seeding.runs"] is None
    named = cli_runner.invoke(cli.app, ["reset", "--yes", "--scenario", "baseline", "--db", pg_url])
    assert (named.exit_code, named.output) == (
        2, "error: no run of scenario 'baseline': this database has no seeding ledger\n"
    )


def test_an_empty_ledger_has_nothing_to_reset(pg_url: str, baseline: runner.RunResult) -> None:
    assert cli_runner.invoke(cli.app, ["reset", "--yes", "--db", pg_url]).exit_code == 0
    again = cli_runner.invoke(cli.app, ["reset", "--yes", "--db", pg_url])
    assert again.exit_code == 0
    assert again.output.endswith("\nnothing to reset: the ledger records no runs\n")


# A schema the reset cannot check.


def test_a_missing_table_the_ledger_lists_is_a_schema_error(
    pg_url: str, baseline: runner.RunResult
) -> None:
    with psycopg.connect(pg_url) as c:
        c.execute("DROP TABLE vehicles CASCADE")
    before = dump(pg_url)
    result = cli_runner.invoke(cli.app, ["reset", "--yes", "--db", pg_url])
    assert result.exit_code == 2
    assert result.output.startswith(
        "error: the ledger lists rows of table vehicles, which the database lacks; nothing was "
        "deleted; fix: recreate the missing tables with `seed db create`"
    )
    assert result.output.count("\n") == 1
    assert dump(pg_url) == before


def test_a_missing_reference_column_is_a_schema_error_not_no_rows(
    pg_url: str, baseline: runner.RunResult
) -> None:
    with psycopg.connect(pg_url) as c:
        c.execute("ALTER TABLE sessions DROP COLUMN customer_user_id")
    before = dump(pg_url)
    result = cli_runner.invoke(cli.app, ["reset", "--yes", "--db", pg_url])
    assert result.exit_code == 2
    assert result.output.startswith(
        "error: cannot check which rows point at the rows the reset would delete: the database "
        "lacks sessions.customer_user_id (→ profiles); nothing was deleted"
    )
    assert dump(pg_url) == before


# --all-tables, and the guard.


def test_all_tables_empties_every_app_table_and_the_ledger(
    pg_url: str, baseline: runner.RunResult
) -> None:
    add_foreign_rows(pg_url)
    result = cli_runner.invoke(cli.app, ["reset", "--yes", "--all-tables", "--db", pg_url])
    assert result.exit_code == 0, result.output
    assert "deleted every row of the app's tables, and the ledger (1 run):" in result.output
    after = dump(pg_url)
    assert all(after[name] == [] for name in APP + LEDGER), after
    assert table_counts(result.output)["session_requests"] == 44


@pytest.mark.parametrize("allowed", [None, "db.example.com"])
@pytest.mark.parametrize("extra", [[], ["--dry-run"], ["--yes"]])
def test_all_tables_is_refused_on_a_remote_database_before_connecting(
    allowed: str | None, extra: list[str], monkeypatch: pytest.MonkeyPatch, no_connections: None
) -> None:
    if allowed:
        monkeypatch.setenv("SEED_ALLOW_HOSTS", allowed)
    else:
        monkeypatch.delenv("SEED_ALLOW_HOSTS", raising=False)
    result = cli_runner.invoke(
        cli.app, ["reset", "--yes", "--all-tables", *extra, "--db", "postgresql://u:secret@db.example.com/x"]
    )
    assert result.exit_code == 2
    assert result.output == (
        "error: refusing --all-tables on database 'x' on db.example.com as u: host "
        "db.example.com is not local; --all-tables is for local databases only (localhost, "
        "127.0.0.0/8, ::1, a unix socket), whatever SEED_ALLOW_HOSTS lists; to delete only the "
        "rows this tool wrote, run `seed reset` without it\n"
    )
    assert "secret" not in result.output


def test_a_plain_reset_of_a_remote_database_is_refused_before_connecting(
    monkeypatch: pytest.MonkeyPatch, no_connections: None
) -> None:
    monkeypatch.delenv("SEED_ALLOW_HOSTS", raising=False)
    result = cli_runner.invoke(cli.app, ["reset", "--yes", "--db", "postgresql://u:secret@db.example.com/x"])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "host db.example.com is not local" in result.output
    assert "SEED_ALLOW_HOSTS=db.example.com" in result.output
    assert "secret" not in result.output


@pytest.mark.parametrize(
    "url", ["postgresql://u:pw@localhost/x", "postgresql://u@/x?host=/tmp/pg", "postgresql:///x"]
)
def test_ensure_local_allows_local_databases(url: str, no_connections: None) -> None:
    guard.ensure_local(url, action="--all-tables", instead="-")


def test_ensure_local_refuses_every_remote_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEED_ALLOW_HOSTS", "db.example.com")
    with pytest.raises(ConfigurationError, match=r"host db\.example\.com is not local") as refused:
        guard.ensure_local("host=localhost,db.example.com password=s3cret", action="x", instead="y")
    assert "s3cret" not in str(refused.value)


# Confirmation on a terminal.


def test_on_a_terminal_it_asks_and_no_deletes_nothing(
    pg_url: str, baseline: runner.RunResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("seeding.cli.reset._stdin_is_terminal", lambda: True)
    before = dump(pg_url)
    declined = cli_runner.invoke(cli.app, ["reset", "--db", pg_url], input="n\n")
    assert declined.exit_code == 1
    assert "this will delete the rows of 1 run:" in declined.output
    assert "delete these rows? [y/N]: n\naborted; nothing deleted\n" in declined.output
    assert dump(pg_url) == before
    accepted = cli_runner.invoke(cli.app, ["reset", "--db", pg_url], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "deleted the rows of 1 run:" in accepted.output
    assert ledger_ids(pg_url) == set()


def test_yes_does_not_ask(
    pg_url: str, baseline: runner.RunResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("seeding.cli.reset._stdin_is_terminal", lambda: True)
    result = cli_runner.invoke(cli.app, ["reset", "--yes", "--db", pg_url])
    assert result.exit_code == 0
    assert "delete these rows?" not in result.output and ledger_ids(pg_url) == set()


def test_a_change_after_the_confirmation_deletes_nothing(
    pg_url: str, baseline: runner.RunResult
) -> None:
    profile = seeded(pg_url, "profiles")

    def meanwhile(plan: reset.ResetPlan) -> bool:
        with psycopg.connect(pg_url) as c:
            c.execute("INSERT INTO session_requests (customer_id, session_type) "
                      "VALUES (%s, 'chat')", (profile,))
        return True

    before_ids = ledger_ids(pg_url)
    with pytest.raises(ResetBlockedError):
        reset.reset_database(pg_url, confirm=meanwhile)
    assert ledger_ids(pg_url) == before_ids


# Locks: a reset never interleaves with a run, nor with the app's writes.


def test_no_wait_fails_at_once_while_a_run_holds_the_lock(
    pg_url: str, baseline: runner.RunResult
) -> None:
    with psycopg.connect(pg_url) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (ledger.RUN_LOCK_KEY,))
        result = cli_runner.invoke(cli.app, ["reset", "--yes", "--no-wait", "--db", pg_url])
    assert result.exit_code == 2
    assert result.output == (
        "error: another seed run is writing to this database; wait for it, or run again "
        "without --no-wait\n"
    )
    assert len(ledger_ids(pg_url)) == 73


def _in_thread(function: Any) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = function()
        except Exception as error:  # noqa: BLE001 - handed to the test
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def _wait_for(lines: list[str], text: str) -> None:
    deadline = time.monotonic() + 20
    while not any(text in line for line in lines):
        assert time.monotonic() < deadline, f"never notified {text!r}: {lines}"
        time.sleep(0.02)


def test_a_reset_waits_for_a_run_to_finish(pg_url: str, baseline: runner.RunResult) -> None:
    lines: list[str] = []
    with psycopg.connect(pg_url) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (ledger.RUN_LOCK_KEY,))
        thread, outcome = _in_thread(lambda: reset.reset_database(pg_url, notify=lines.append))
        _wait_for(lines, "another seed run is writing to this database; waiting")
        time.sleep(0.3)
        assert thread.is_alive() and len(ledger_ids(pg_url)) == 73
        holder.rollback()
    thread.join(30)
    assert outcome["result"].outcome == "deleted"
    assert ledger_ids(pg_url) == set()


def test_a_row_the_app_writes_while_the_reset_waits_is_seen(
    pg_url: str, baseline: runner.RunResult
) -> None:
    # customer_id has no foreign key: only the table lock makes the check and the delete agree.
    profile = seeded(pg_url, "profiles")
    lines: list[str] = []
    before_ids = ledger_ids(pg_url)
    with psycopg.connect(pg_url) as app:
        app.execute("INSERT INTO session_requests (customer_id, session_type) "
                    "VALUES (%s, 'chat')", (profile,))
        busy = cli_runner.invoke(cli.app, ["reset", "--yes", "--no-wait", "--db", pg_url])
        assert (busy.exit_code, busy.output) == (2, (
            "error: another transaction is writing to the app's tables; wait for it to end, or "
            "run again without --no-wait\n"))
        thread, outcome = _in_thread(lambda: reset.reset_database(pg_url, notify=lines.append))
        _wait_for(lines, "another transaction is writing to the app's tables; waiting")
        app.commit()
    thread.join(30)
    assert isinstance(outcome.get("error"), ResetBlockedError), outcome
    assert ledger_ids(pg_url) == before_ids
