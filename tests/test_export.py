"""``seed export``: a scenario's rows as a seed file the Supabase CLI and psql load.

The file must hold exactly the rows a run writes to the same schema, byte for byte the same
for the same scenario and seed, and keep the rules of the Supabase CLI's seed runner (one
batch of statements it splits on ``;``, no ``COPY``, no psql meta-command, one transaction):
``supabase_cli`` runs a file as the CLI does.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import supabase_cli
from app_shape import admit_tool_request_statuses, create_app_shape, sign_in_check
from psycopg import sql
from typer.testing import CliRunner

from seeding import export
from seeding.cli import app
from seeding.db import database
from seeding.errors import ConfigurationError, ScenarioError, SchemaMismatchError
from seeding.export import Export, export_scenario
from seeding.runner import run_scenario

PASSWORD = "an-export-password-3"
STATEMENT_STARTS = ("SET ", "RESET ", "INSERT INTO ", "SELECT pg_catalog.setval(")

#: A scenario with more customers than one INSERT holds.
MANY = """
description: More profiles than one INSERT holds.
seed: 11
clock:
  now: 2026-11-20T12:00:00-05:00
steps:
  - create: customer
    count: 1100
"""


def _code(statement: str) -> str:
    """Return a statement without the comment lines before it."""
    return "\n".join(line for line in statement.splitlines() if not line.startswith("--")).strip()


def _rows_in(statement: str) -> int:
    """Return how many rows a multi-row INSERT of the export holds (one per line)."""
    return sum(1 for line in statement.splitlines() if line.startswith("("))


# ------------------------------------------------------------------------------------------
# The file (no database).
# ------------------------------------------------------------------------------------------


def test_the_same_scenario_and_seed_give_the_same_bytes() -> None:
    first = export_scenario("baseline").files[0].text
    assert export_scenario("baseline").files[0].text == first
    copied = export_scenario("baseline", fmt="copy").files[0].text
    assert export_scenario("baseline", fmt="copy").files[0].text == copied
    other = export_scenario("baseline", seed=7).files[0].text
    assert other != first
    assert "scenario baseline, seed 20251112, scale 1." in first
    assert "scenario baseline, seed 7, scale 1." in other


def test_the_sql_file_keeps_the_supabase_cli_s_rules(tmp_path: Path) -> None:
    scenario = tmp_path / "many.yaml"
    scenario.write_text(MANY)
    made = export_scenario(str(scenario))
    text = made.files[0].text
    assert made.counts == {"profiles": 1100}
    assert not [line for line in text.splitlines() if line.startswith("\\")]
    assert "COPY" not in text and "$$" not in text
    assert not re.search(r"(?<![\w'])E'", text)  # no escape string
    statements = supabase_cli.split(text)
    codes = [_code(s) for s in statements]
    assert all(code.startswith(STATEMENT_STARTS) for code in codes), codes
    inserts = [code for code in codes if code.startswith("INSERT INTO ")]
    # Each INSERT is one statement to the CLI (none merged, none cut), of bounded size.
    assert len(inserts) == text.count("INSERT INTO ") == 3
    longest = max(len(line) for line in text.splitlines() if line.startswith("("))
    for insert in inserts:
        assert _rows_in(insert) <= export.ROWS_PER_INSERT
        assert len(insert) <= export.CHARS_PER_INSERT + longest + 1000
    for insert in inserts[:-1]:  # each ends where a bound is reached
        assert (_rows_in(insert) == export.ROWS_PER_INSERT
                or len(insert) >= export.CHARS_PER_INSERT)
    assert sum(map(_rows_in, inserts)) == 1100
    assert codes[:2] == ["SET client_encoding = 'UTF8'", "SET standard_conforming_strings = on"]
    assert "session_replication_role" not in text


def test_the_copy_file_holds_the_same_rows_in_copy_blocks() -> None:
    text = export_scenario("baseline", fmt="copy").files[0].text
    blocks = re.findall(r"^COPY (\S+) \([^\n]*\) FROM stdin;\n(.*?)^\\\.$", text, re.M | re.S)
    rows = {table: len(block.splitlines()) for table, block in blocks}
    assert rows == {f'"public"."{t}"': n for t, n in export_scenario("baseline").counts.items()}
    assert "INSERT INTO" not in text


def test_a_tiled_scenario_is_refused_in_one_line(tile_file: str) -> None:
    with pytest.raises(ScenarioError) as refused:
        export_scenario(tile_file)
    message = str(refused.value)
    assert "tiny.yaml: the scenario is tiled" in message and "\n" not in message


def test_a_wrong_format_or_password_is_refused_before_building() -> None:
    with pytest.raises(ConfigurationError, match="--format 'xml' is not one of sql, copy"):
        export_scenario("baseline", fmt="xml")
    with pytest.raises(ConfigurationError, match="shorter than 6"):
        export_scenario("baseline", user_password="short")


HOSTILE = [
    "it's; DROP TABLE x; --", "a -- b /* c */ d", "$$ $tag$ \\ \\' ''", "line\nnext\r\ttab",
    'quote " and {brace}, comma', "Montréal 🚗", "", "NULL", "\\x00ff", "BEGIN ATOMIC; END",
]


def test_hostile_text_stays_one_statement_for_the_cli() -> None:
    columns = ", ".join(f"c{i}" for i in range(len(HOSTILE)))
    values = ", ".join(export.literal(text, "text") for text in HOSTILE)
    arrays = export.literal(HOSTILE, "text[]")
    document = export.literal({"k": HOSTILE}, "jsonb")
    statement = f"INSERT INTO t ({columns}, a, j) VALUES ({values}, {arrays}, {document});"
    assert supabase_cli.split(f"SET x = 1;\n{statement}\nSET y = 2;") == [
        "SET x = 1", statement.rstrip(";"), "SET y = 2",
    ]


def test_the_cli_writes_a_file_stdout_or_a_folder(tmp_path: Path) -> None:
    runner = CliRunner()
    target = tmp_path / "seed.sql"
    written = runner.invoke(app, ["export", "baseline", "--output", str(target)])
    assert written.exit_code == 0, written.output
    assert written.stdout == ""
    assert "session_requests" in written.stderr and f"written to {target}" in written.stderr
    shown = runner.invoke(app, ["export", "baseline"])
    assert shown.exit_code == 0
    assert shown.stdout == target.read_text(encoding="utf-8")
    assert not list(tmp_path.glob(".*partial"))

    folder = tmp_path / "seeds"
    split = runner.invoke(app, ["export", "baseline", "--split", "--output", str(folder)])
    assert split.exit_code == 0, split.output
    names = sorted(p.name for p in folder.iterdir())
    assert names == [export.file_name(g) for g in export.GROUPS if g != "auth"]
    assert names[0] == "02_organizations.sql" and names[-1] == "08_session_requests.sql"
    inserts = sum((folder / name).read_text().count("INSERT INTO") for name in names)
    assert inserts == shown.stdout.count("INSERT INTO") > 0

    # A group file an earlier export wrote, which this one does not, is refused, not loaded.
    (folder / "01_auth.sql").write_text("-- from an export with --db\n")
    stale = runner.invoke(app, ["export", "baseline", "--split", "--output", str(folder)])
    assert stale.exit_code == 2
    assert stale.stderr.startswith(f"error: --output {folder}: it holds 01_auth.sql")
    assert len(stale.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--split"], "error: --split writes one file per table group into a folder"),
        (["--format", "xml"], "error: --format 'xml' is not one of sql, copy"),
        (["--output", "{tmp}"], "error: --output {tmp}: that is a folder"),
        (["--output", "{tmp}/missing/seed.sql"], "error: --output {tmp}/missing/seed.sql: there is "
         "no folder"),
        (["--split", "--output", "{tmp}/missing/seeds"], "error: --output {tmp}/missing/seeds: "
         "there is no folder"),
        (["--scale", "abc"], "error: invalid value for '--scale'"),
    ],
)
def test_the_cli_refuses_a_bad_request_in_one_line(
    arguments: list[str], message: str, tmp_path: Path
) -> None:
    given = [a.replace("{tmp}", str(tmp_path)) for a in arguments]
    result = CliRunner().invoke(app, ["export", "baseline", *given])
    assert result.exit_code == 2
    assert result.stderr.startswith(message.replace("{tmp}", str(tmp_path))), result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stdout == ""


# ------------------------------------------------------------------------------------------
# Values, read back by PostgreSQL.
# ------------------------------------------------------------------------------------------

VALUES: list[tuple[Any, str]] = [
    *((text, "text") for text in HOSTILE),
    (None, "text"), (True, "boolean"), (False, "boolean"), (-42, "integer"),
    (2**40, "bigint"), (-79.557573, "double precision"), (1e-05, "double precision"),
    (Decimal("4.50"), "numeric"), (Decimal("-0.01"), "numeric"),
    (uuid.UUID("db73b39f-16ed-4993-8bbd-9a3c4ca6bcd6"), "uuid"),
    (datetime(2025, 4, 12, 4, 33, 8, 123456, tzinfo=timezone(timedelta(hours=-4))),
     "timestamp with time zone"),
    (datetime(2025, 1, 1, tzinfo=UTC), "timestamp with time zone"), (date(2026, 2, 28), "date"),
    (HOSTILE, "text[]"), ([], "text[]"), (["a", None, "b"], "text[]"), ([1, 2], "integer[]"),
    ({"k": HOSTILE, "n": 1.5, "t": True, "z": None}, "jsonb"), ([1, "two"], "jsonb"),
    (7, "jsonb"), ("a string", "jsonb"), ({"ordered": 1, "keys": 2}, "json"),
]


def _same(read: Any, value: Any, column_type: str) -> bool:
    if column_type == "json" and isinstance(read, dict):
        return list(read) == list(value) and read == value
    if isinstance(value, float) and math.isnan(value):
        return isinstance(read, float) and math.isnan(read)
    return bool(read == value)


def test_every_value_reads_back_as_it_was_in_sql_and_in_copy(new_database: str) -> None:
    with psycopg.connect(new_database) as connection:
        connection.execute(sql.SQL("CREATE TABLE t ({})").format(sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(f"c{i}"), sql.SQL(column_type))
            for i, (_, column_type) in enumerate(VALUES)
        )))
        columns = ", ".join(f"c{i}" for i in range(len(VALUES)))
        literals = ", ".join(export.literal(v, t) for v, t in VALUES)
        connection.execute(f"INSERT INTO t ({columns}) VALUES ({literals})".encode())
        line = "\t".join(export.copy_field(v, t) for v, t in VALUES) + "\n"
        with connection.cursor().copy(f"COPY t ({columns}) FROM STDIN".encode()) as copy:
            copy.write(line.encode())
        rows = connection.execute("SELECT * FROM t").fetchall()
    assert len(rows) == 2
    for row in rows:
        for read, (value, column_type) in zip(row, VALUES, strict=True):
            assert _same(read, value, column_type), (column_type, value, read)


# ------------------------------------------------------------------------------------------
# Loading an export into the app's database, as psql and the Supabase CLI do.
# ------------------------------------------------------------------------------------------


def _app_database(make_database: Callable[[], str], *, live: bool = False) -> str:
    url = make_database()
    create_app_shape(url, live=live)
    if not live:
        admit_tool_request_statuses(url)  # what `seed db doctor --apply` does for 'completed'
    return url


def _psql(url: str, path: Path) -> None:
    done = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", str(path),
         database.libpq_url(url)],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "ERROR" not in done.stderr, done.stderr


def _counts(url: str) -> dict[str, int]:
    """Return the rows of every table of public and auth."""
    with psycopg.connect(url) as connection:
        tables = connection.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema "
            "IN ('public', 'auth') AND table_type = 'BASE TABLE' ORDER BY 1, 2").fetchall()
        found = {}
        for schema, table in tables:
            row = connection.execute(sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(schema, table))).fetchone()
            assert row is not None
            found[f"{schema}.{table}"] = int(row[0])
    return found


def _digests(url: str, made: Export) -> dict[str, str]:
    """Return, per exported table, a digest of the exported rows on the exported columns."""
    found = {}
    with psycopg.connect(url) as connection:
        for file in made.files:
            for table in file.tables:
                ids = [table.values(row)[table.columns.index("id")] for row in table.rows]
                columns = sql.SQL(", ").join(sql.Identifier(c) for c in table.columns)
                row = connection.execute(
                    sql.SQL("SELECT count(*), md5(string_agg(r::text, '|' ORDER BY r::text)) "
                            "FROM (SELECT {} FROM {} WHERE id = ANY(%s)) AS r").format(
                        columns, sql.Identifier(table.schema, table.name)),
                    [ids],
                ).fetchone()
                assert row is not None
                found[table.table] = f"{row[0]} {row[1]}"
    return found


def _everyone_signs_in(url: str, people: int) -> None:
    with psycopg.connect(url) as connection:
        emails = [e for (e,) in connection.execute("SELECT email FROM auth.users ORDER BY 1")]
        assert len(emails) == people
        for email in emails:
            assert sign_in_check(connection, email, PASSWORD) is not None, email
        assert sign_in_check(connection, emails[0], "not-the-password") is None


def test_an_export_loads_the_rows_a_run_writes(
    make_database: Callable[[], str], tmp_path: Path
) -> None:
    ran = _app_database(make_database)
    result = run_scenario("baseline", database_url=ran, user_password=PASSWORD)
    expected = _counts(ran)
    assert expected["public.session_analytics"] > 0  # a trigger's rows, made during the run

    read = _app_database(make_database)
    untouched = _counts(read)
    cli = CliRunner().invoke(app, ["export", "baseline", "--db", read, "--user-password",
                                   PASSWORD, "--output", str(tmp_path / "seed.sql")])
    assert cli.exit_code == 0, cli.output
    assert "not written, the schema lacks them: organizations.latitude" in cli.stderr
    assert PASSWORD not in cli.stderr
    made = export_scenario("baseline", database_url=read, user_password=PASSWORD)
    assert (tmp_path / "seed.sql").read_text(encoding="utf-8") == made.files[0].text
    # Read only: the database read is as it was, without the ledger's schema.
    assert _counts(read) == untouched
    with psycopg.connect(read) as connection:
        assert connection.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'seeding'").fetchone() == (0,)
    people = result.counts["profiles"] + result.counts["mechanics"]
    assert made.counts == result.counts
    assert made.counts["auth.users"] == made.counts["auth.identities"] == people
    reference = _digests(ran, made)
    assert PASSWORD not in made.files[0].text

    # psql, one transaction.
    _psql(read, tmp_path / "seed.sql")
    # The Supabase CLI's seed runner: one batch of statements, one transaction.
    by_cli = _app_database(make_database)
    # Two settings, then one INSERT per table (none holds more than one INSERT's rows).
    assert supabase_cli.load(by_cli, made.files[0].text) == 2 + len(made.files[0].tables)
    # COPY blocks, through psql.
    by_copy = _app_database(make_database)
    copy_file = tmp_path / "seed.copy.sql"
    copy_file.write_text(
        export_scenario("baseline", database_url=read, user_password=PASSWORD, fmt="copy")
        .files[0].text, encoding="utf-8")
    _psql(by_copy, copy_file)
    # One file per group, in the order a glob sorts them, as `sql_paths` lists them.
    by_files = _app_database(make_database)
    split = export_scenario("baseline", database_url=read, user_password=PASSWORD, split=True)
    names = [file.name for file in split.files]
    assert names == sorted(names) and names[0] == "01_auth.sql"
    assert sum(sum(f.counts.values()) for f in split.files) == sum(made.counts.values())
    for file in split.files:
        supabase_cli.load(by_files, file.text)

    for url in (read, by_cli, by_copy, by_files):
        assert _counts(url) == expected
        assert _digests(url, made) == reference
    _everyone_signs_in(read, people)
    _everyone_signs_in(by_cli, people)
    # The profile trigger fired, as during a run: the mechanics have their profiles.
    with psycopg.connect(by_cli) as connection:
        roles: dict[str, int] = dict(connection.execute(
            "SELECT role, count(*) FROM profiles GROUP BY role").fetchall())
    assert roles == {"customer": result.counts["profiles"],
                     "mechanic": result.counts["mechanics"]}


def test_replica_loads_the_file_with_no_trigger_firing(
    make_database: Callable[[], str],
) -> None:
    url = _app_database(make_database, live=True)
    made = export_scenario("baseline", database_url=url, user_password=PASSWORD, replica=True)
    text = made.files[0].text
    statements = [_code(s) for s in supabase_cli.split(text)]
    assert statements[2] == "SET session_replication_role = replica"
    assert statements[-1] == "RESET session_replication_role"
    supabase_cli.load(url, text)
    counts = _counts(url)
    # No trigger: the file's rows only; no profile for a mechanic, no analytics row.
    assert counts["public.profiles"] == made.counts["profiles"]
    assert counts["public.session_analytics"] == 0
    assert counts["auth.users"] == made.counts["auth.users"]
    _everyone_signs_in(url, made.counts["auth.users"])


def test_a_database_the_rows_do_not_fit_gets_no_file(make_database: Callable[[], str]) -> None:
    url = make_database()
    create_app_shape(url)  # the migrations' enum, without 'completed'
    with pytest.raises(SchemaMismatchError) as refused:
        export_scenario("baseline", database_url=url)
    message = str(refused.value)
    assert "no file was written" in message and "nothing was written" not in message
    assert "session_requests.status: the scenario needs 'completed'" in message


def test_generated_identity_and_sequence_columns(make_database: Callable[[], str],
                                                 tmp_path: Path) -> None:
    url = make_database()
    engine = database.engine_for(url)
    database.create_schema(engine)
    engine.dispose()
    with psycopg.connect(url) as connection:
        connection.execute("""
            ALTER TABLE organizations DROP COLUMN country,
                ADD COLUMN country text GENERATED ALWAYS AS ('Canada') STORED;
            ALTER TABLE mechanics ALTER COLUMN completed_sessions DROP DEFAULT,
                ALTER COLUMN completed_sessions ADD GENERATED BY DEFAULT AS IDENTITY;
            CREATE SEQUENCE "odd ""score"" seq";
            ALTER TABLE mechanics ALTER COLUMN profile_completion_score
                SET DEFAULT nextval('"odd ""score"" seq"');
        """)
    made = export_scenario("baseline", database_url=url)
    text = made.files[0].text
    organizations = next(t for t in made.files[0].tables if t.name == "organizations")
    assert "country" not in organizations.columns
    mechanics = next(t for t in made.files[0].tables if t.name == "mechanics")
    assert {column for column, _ in mechanics.sequences} == {
        "profile_completion_score", "completed_sessions"}
    assert text.count("SELECT pg_catalog.setval(") == 2
    path = tmp_path / "seed.sql"
    path.write_text(text, encoding="utf-8")
    _psql(url, path)
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT max(completed_sessions), max(profile_completion_score), count(*) "
            "FROM mechanics").fetchone()
        assert row is not None and row[2] == made.counts["mechanics"]
        assert connection.execute(
            "SELECT count(*) FROM organizations WHERE country = 'Canada'"
        ).fetchone() == (made.counts["organizations"],)
        identity = connection.execute(
            "SELECT nextval(pg_get_serial_sequence('mechanics', 'completed_sessions'))"
        ).fetchone()
        drawn = connection.execute("""SELECT nextval('"odd ""score"" seq"')""").fetchone()
    # The next row the app adds does not collide with the file's.
    assert identity is not None and identity[0] == row[0] + 1
    assert drawn is not None and drawn[0] == row[1] + 1



def test_now_moves_the_scenario_and_a_fixed_time_keeps_the_file_stable() -> None:
    moved = export_scenario("baseline", now="2030-06-01T12:00:00+00:00")
    text = moved.files[0].text
    assert export_scenario("baseline", now="2030-06-01T12:00:00+00:00").files[0].text == text
    assert text != export_scenario("baseline").files[0].text
    assert moved.now == datetime(2030, 6, 1, 12, tzinfo=UTC)
    assert f"clock moved to {moved.now.isoformat()}." in text
    requests = next(t for t in moved.files[0].tables if t.name == "session_requests")
    created = [requests.values(row)[requests.columns.index("created_at")]
               for row in requests.rows]
    assert max(created) <= moved.now and min(created) > datetime(2029, 1, 1, tzinfo=UTC)
    refused = CliRunner().invoke(app, ["export", "baseline", "--now", "tomorrow"])
    assert refused.exit_code == 2 and len(refused.stderr.splitlines()) == 1
    assert refused.stderr.startswith("error: ") and "--now" in refused.stderr


def test_the_file_does_not_depend_on_the_process() -> None:
    """Another process, with other hash seeds, writes the same bytes."""
    code = ("import sys; from seeding.export import export_scenario; "
            "sys.stdout.write(export_scenario('baseline', fmt='copy').files[0].text)")
    texts = set()
    for hash_seed in ("1", "2"):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True, env={**os.environ, "PYTHONHASHSEED": hash_seed})
        texts.add(done.stdout)
    assert texts == {export_scenario("baseline", fmt="copy").files[0].text}
