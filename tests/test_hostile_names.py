"""Names read from the catalog stay names: no constraint, column or schema name runs as SQL.

A foreign key named ``a"; COMMIT; CREATE TABLE public.pwned(); --`` once made the tiled load
(which sets the keys aside and puts them back) run that text. Each command that reads names
from the catalog runs here beside names holding quotes, semicolons, comments, placeholders
(``%s``, ``:x``), other alphabets, and 63 bytes (PostgreSQL's longest): each works, every
key keeps its exact name and definition, and nothing else is created.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from seeding import doctor
from seeding.cli import app
from seeding.db import constraints
from seeding.db.database import engine_for
from seeding.domain.schema import APP_TABLES

runner = CliRunner()


def _name_of_63_bytes() -> str:
    name = 'z"; COMMIT; CREATE TABLE public.pwned(); --'
    while len(name.encode()) < 61:
        name += "é"
    return name + "x" * (63 - len(name.encode()))


HOSTILE = [
    pytest.param('a"; COMMIT; CREATE TABLE public.pwned(); --', id="quote-semicolon"),
    pytest.param("k /* c */ -- '; CREATE TABLE public.pwned()", id="comment"),
    pytest.param('k %s %(x)s %% :x \\:y ::z ";', id="placeholders"),
    pytest.param('clé ☃ 鍵 "ü"; CREATE TABLE public.pwned()', id="unicode"),
    pytest.param(_name_of_63_bytes(), id="63-bytes"),
]

#: The app's key the tests rename (``seed db create`` makes it).
RENAMED = "session_requests_vehicle_id_fkey"
#: The app's key the doctor adds back.
DROPPED = "session_requests_mechanic_id_fkey"
#: The key ``seed db create`` leaves out on purpose: doctor shows it as a note, never adds it.
UNDECLARED = "session_requests_customer_id_fkey"


def test_the_63_byte_name_is_63_bytes() -> None:
    assert len(_name_of_63_bytes().encode()) == 63


@pytest.fixture
def conn(pg_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(pg_url, autocommit=True) as connection:
        yield connection


def _ident(*names: str) -> sql.Identifier:
    return sql.Identifier(*names)


def _make_hostile(conn: psycopg.Connection, name: str) -> None:
    """Give the database keys, a column, a schema and a table named ``name``.

    - the app's key ``session_requests_vehicle_id_fkey`` is renamed ``name``;
    - a CHECK named ``a`` sits beside it (so ``DROP CONSTRAINT "a"; ...`` would succeed);
    - ``vehicles`` gets a nullable column ``name`` with a key ``name`` to ``profiles``;
    - schema ``name`` gets a table ``name`` whose key column ``name`` (its primary key too)
      points at ``profiles``, under a key named ``name``.
    """
    q = sql.SQL
    conn.execute(
        q("ALTER TABLE public.session_requests RENAME CONSTRAINT {} TO {}").format(
            _ident(RENAMED), _ident(name)
        )
    )
    conn.execute("ALTER TABLE public.session_requests ADD CONSTRAINT a CHECK (true)")
    conn.execute(
        q("ALTER TABLE public.vehicles ADD COLUMN {col} uuid, "
          "ADD CONSTRAINT {key} FOREIGN KEY ({col}) REFERENCES public.profiles(id)").format(
            col=_ident(name), key=_ident(name)
        )
    )
    conn.execute(q("CREATE SCHEMA {}").format(_ident(name)))
    conn.execute(
        q("CREATE TABLE {table} ({col} uuid PRIMARY KEY, "
          "CONSTRAINT {key} FOREIGN KEY ({col}) REFERENCES public.profiles(id))").format(
            table=_ident(name, name), col=_ident(name), key=_ident(name)
        )
    )


def _keys(conn: psycopg.Connection) -> list[tuple[str, str, str, str]]:
    """Return every foreign key of the database: schema, table, name, definition."""
    rows = conn.execute(
        "SELECT n.nspname::text, t.relname::text, c.conname::text, pg_get_constraintdef(c.oid) "
        "FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
        "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE c.contype = 'f' ORDER BY 1, 2, 3"
    ).fetchall()
    return [(str(a), str(b), str(c), str(d)) for a, b, c, d in rows]


def _relations(conn: psycopg.Connection) -> set[tuple[str, str]]:
    """Return every table, view, index and sequence outside the system schemas."""
    rows = conn.execute(
        "SELECT n.nspname::text, c.relname::text FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'"
    ).fetchall()
    return {(str(a), str(b)) for a, b in rows}


def _count(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(_ident("public", table)))
    found = row.fetchone()
    assert found is not None
    return int(found[0])


def _no_pwned(conn: psycopg.Connection) -> None:
    found = conn.execute("SELECT count(*) FROM pg_class WHERE relname = 'pwned'").fetchone()
    assert found == (0,)


def _seed(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("name", HOSTILE)
def test_load_and_reset_keep_hostile_names(
    name: str, pg_url: str, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    _make_hostile(conn, name)
    # Every delete sets the keys aside, as a big one does.
    monkeypatch.setattr(constraints, "BULK_ROWS", 1)
    keys = _keys(conn)
    assert (("public", "session_requests", name) in {k[:3] for k in keys})
    before = _relations(conn)

    # The tiled load drops the app's keys (the hostile ones with them) and adds them back.
    code, output = _seed("scenario", "load", "--scale", "0.01", "--db", pg_url)
    _no_pwned(conn)
    assert code == 0, output
    assert [key for key in _keys(conn) if key[0] != "seeding"] == keys
    keys = _keys(conn)  # with the ledger's
    # The load adds the ledger, nothing else.
    after_load = _relations(conn)
    assert {schema for schema, _ in after_load - before} == {"seeding"}
    assert before <= after_load
    requests = _count(conn, "session_requests")
    assert requests > 0

    # A row outside the app's tables points at a seeded profile under the hostile names: the
    # reset is refused, names it, and deletes nothing.
    conn.execute(
        sql.SQL("INSERT INTO {} SELECT id FROM public.profiles LIMIT 1").format(
            _ident(name, name)
        )
    )
    code, output = _seed("reset", "--yes", "--db", pg_url)
    assert code != 0
    assert "reset refused" in output
    assert f"{name}.{name}" in output
    assert _count(conn, "session_requests") == requests
    assert _keys(conn) == keys
    conn.execute(sql.SQL("DELETE FROM {}").format(_ident(name, name)))

    # A vehicle the tool did not write stays: its references (the hostile column among them)
    # are checked from the kept rows.
    conn.execute(
        "CREATE TEMP TABLE kept AS SELECT * FROM public.vehicles LIMIT 1; "
        "UPDATE kept SET id = gen_random_uuid(), customer_id = gen_random_uuid(); "
        "INSERT INTO public.vehicles SELECT * FROM kept"
    )
    code, output = _seed("reset", "--yes", "--db", pg_url)
    assert code == 0, output
    assert _count(conn, "session_requests") == 0
    assert _count(conn, "vehicles") == 1
    assert _keys(conn) == keys
    assert _relations(conn) == after_load
    _no_pwned(conn)

    # Every app table emptied, whoever wrote the rows.
    code, output = _seed("scenario", "load", "--scale", "0.01", "--db", pg_url)
    assert code == 0, output
    code, output = _seed("reset", "--all-tables", "--yes", "--db", pg_url)
    assert code == 0, output
    assert all(_count(conn, table.name) == 0 for table in APP_TABLES)
    assert _keys(conn) == keys
    assert _relations(conn) == after_load
    _no_pwned(conn)


@pytest.mark.parametrize("name", HOSTILE)
def test_a_failed_load_leaves_the_keys_as_they_were(
    name: str, pg_url: str, conn: psycopg.Connection
) -> None:
    _make_hostile(conn, name)
    # Every request breaks it: the load fails after it has set the keys aside.
    conn.execute(
        "ALTER TABLE public.session_requests ADD CONSTRAINT refuse_all CHECK (false) NOT VALID"
    )
    keys = _keys(conn)
    before = _relations(conn)
    code, output = _seed("scenario", "load", "--scale", "0.01", "--db", pg_url)
    _no_pwned(conn)
    assert _keys(conn) == keys
    assert code == 2, output
    assert "wrote nothing" in output
    assert all(_count(conn, table.name) == 0 for table in APP_TABLES)
    assert {schema for schema, _ in _relations(conn) - before} <= {"seeding"}
    _no_pwned(conn)


@pytest.mark.parametrize("name", HOSTILE)
def test_report_and_doctor_keep_hostile_names(
    name: str, pg_url: str, conn: psycopg.Connection
) -> None:
    _make_hostile(conn, name)
    code, output = _seed("scenario", "load", "--scale", "0.01", "--db", pg_url)
    assert code == 0, output
    keys = _keys(conn)
    relations = _relations(conn)

    code, output = _seed("report", "--db", pg_url)
    assert code == 0, output
    assert "Seed report" in output

    # A key the doctor adds back, beside the hostile ones (the undeclared one stays a note).
    conn.execute(
        sql.SQL("ALTER TABLE public.session_requests DROP CONSTRAINT {}").format(_ident(DROPPED))
    )
    code, output = _seed("db", "doctor", "--db", pg_url)
    assert code == 1
    assert DROPPED in output and UNDECLARED in output
    assert _relations(conn) == relations
    code, output = _seed("db", "doctor", "--apply", "--db", pg_url)
    assert code == 0, output
    assert output.count("applying: ") == 1
    assert "compatible" in output
    added = {key[2]: key[3] for key in _keys(conn) if key[2] in (DROPPED, UNDECLARED)}
    assert set(added) == {DROPPED}
    assert all(definition.endswith("NOT VALID") for definition in added.values())
    assert [k for k in _keys(conn) if k[2] not in added] == [k for k in keys if k[2] != DROPPED]
    assert _relations(conn) == relations
    _no_pwned(conn)


@pytest.mark.parametrize("name", HOSTILE)
def test_the_doctors_fix_sql_names_hostile_objects_exactly(
    name: str, pg_url: str, conn: psycopg.Connection
) -> None:
    """The fixes shown for a person, run as shown, change the named objects and nothing else."""
    q = sql.SQL
    # A narrower CHECK, a NOT NULL column the tool does not fill, an enum lacking labels: all
    # named ``name`` (the enum in schema ``name``).
    conn.execute(
        q("ALTER TABLE public.sessions DROP CONSTRAINT sessions_status_check, "
          "ADD CONSTRAINT {} CHECK (status IN ('completed'))").format(_ident(name))
    )
    conn.execute(q("ALTER TABLE public.profiles ADD COLUMN {} text NOT NULL").format(_ident(name)))
    conn.execute(q("CREATE SCHEMA {}").format(_ident(name)))
    conn.execute(q("CREATE TYPE {} AS ENUM ('chat')").format(_ident(name, name)))
    conn.execute(
        q("ALTER TABLE public.sessions ALTER COLUMN type TYPE {t} USING type::text::{t}").format(
            t=_ident(name, name)
        )
    )
    keys = _keys(conn)
    relations = _relations(conn)

    code, output = _seed("db", "doctor", "--db", pg_url)
    assert code == 1
    engine = engine_for(pg_url)
    try:
        with engine.connect() as connection:
            problems = doctor.diagnose(connection)
    finally:
        engine.dispose()
    by_kind = {(p.kind, p.table, p.column): p for p in problems}
    assert set(by_kind) == {
        ("check_narrower", "sessions", "status"),
        ("check_narrower", "sessions", "type"),
        ("not_null_unfilled", "profiles", name),
        ("missing_foreign_key", "session_requests", "customer_id"),
    }

    widen = by_kind["check_narrower", "sessions", "status"].fix_sql
    labels = by_kind["check_narrower", "sessions", "type"].fix_sql
    assert widen is not None and labels is not None
    unfilled = by_kind["not_null_unfilled", "profiles", name].message
    match = re.search(r"drop NOT NULL \((ALTER TABLE .*)\)$", unfilled)
    assert match is not None
    for statement in (widen, labels, match.group(1)):
        conn.execute(statement)  # as a person would paste it: nothing read as a placeholder

    checks = conn.execute(
        "SELECT conname::text FROM pg_constraint "
        "WHERE conrelid = 'public.sessions'::regclass AND contype = 'c' ORDER BY 1"
    ).fetchall()
    assert (name,) in checks
    code, output = _seed("db", "doctor", "--apply", "--db", pg_url)
    assert code == 0, output
    assert [key for key in _keys(conn) if key[2] != UNDECLARED] == keys
    assert _relations(conn) == relations
    _no_pwned(conn)
