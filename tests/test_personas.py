"""Tests as a persona: ``db.as_user(...)`` / ``db.as_anon()`` on a scenario's copy.

The copies are made by a :class:`SeedServer` whose templates start from the app's Supabase
shape (tests/app_shape.sql, then its live patch: text statuses, so ``diverse`` fits as is),
the way the plugin makes them with ``--seed-schema``. The README's persona examples run
through pytester with that flag.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from app_shape import APP_SHAPE_SQL, LIVE_PATCH
from psycopg import errors, sql

from seeding import runner
from seeding.errors import ConfigurationError, ScenarioError, SchemaError
from seeding.testing.personas import Person, signed_in
from seeding.testing.server import ScenarioDatabase, SeedServer

pytest_plugins = ["pytester"]
# Loaded before any test: pytester puts sys.modules back after each test, and numpy (which a
# run loads) cannot be loaded twice in one process.
assert callable(runner.run_scenario)

README = Path(__file__).resolve().parents[1] / "README.md"
#: What the mechanic queue reads first (app-schema.md §5): broadcast assignments still queued.
#: A vehicle the tests write as a persona (no seeded make is spelled so).
INSERT_MINE = ("INSERT INTO vehicles (user_id, make, model, year) "
               "VALUES (auth.uid(), 'PersonaTest', 'Rio', '2020')")
QUEUE = "SELECT session_id FROM session_assignments WHERE mechanic_id IS NULL AND status = 'queued'"


def write_app_schema(folder: Path) -> Path:
    """Write the app's live shape as a folder of migrations; return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "001_app_shape.sql").write_text(APP_SHAPE_SQL.read_text())
    (folder / "002_live.sql").write_text(LIVE_PATCH)
    return folder


@pytest.fixture(scope="module")
def app_server(
    pg_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SeedServer]:
    schema = write_app_schema(tmp_path_factory.mktemp("app") / "migrations")
    server = SeedServer(pg_server_url, schema=[schema], schema_source="the test")
    yield server
    server.close()


@pytest.fixture
def db(app_server: SeedServer) -> Iterator[ScenarioDatabase]:
    database = app_server.copy("diverse")
    yield database
    app_server.release(database)


def superuser(db: ScenarioDatabase, query: str, params: Any = None) -> list[Any]:
    """Run a query on a connection of the test's own (the superuser: no RLS)."""
    with psycopg.connect(db.url) as connection:
        return connection.execute(query, params).fetchall()


def test_customers_and_mechanics_are_the_seeded_auth_users(db: ScenarioDatabase) -> None:
    customers, mechanics = db.customers(), db.mechanics()
    expected_customers = superuser(
        db, "SELECT u.id, u.email FROM profiles p JOIN auth.users u ON u.id = p.id "
        "WHERE p.role = 'customer' ORDER BY lower(u.email)")
    assert [(c.id, c.email) for c in customers] == [tuple(row) for row in expected_customers]
    assert len(customers) > 3 and {c.role for c in customers} == {"customer"}
    expected_mechanics = superuser(
        db, "SELECT m.id, m.user_id FROM mechanics m ORDER BY m.id")
    assert sorted((m.mechanic_id, m.id) for m in mechanics) == [
        tuple(row) for row in expected_mechanics]
    assert len(mechanics) > 3 and {m.role for m in mechanics} == {"mechanic"}
    # A ref names a customer by their auth id and a mechanic by mechanics.id: both resolve.
    assert db.person("cust1") == next(c for c in customers if c.id == db.ref("cust1"))
    alex = db.person("alex")
    assert (alex.name, alex.mechanic_id, alex.email) == (
        "Alex Thompson", db.ref("alex"), "workshop.mechanic@test.com")
    assert db.person("WORKSHOP.Mechanic@test.com") == alex == db.person(str(alex.id))
    assert db.person(alex) == alex == db.person(db.ref("alex"))  # type: ignore[arg-type]


def test_a_customer_sees_only_their_own_requests_vehicles_and_profile(
    db: ScenarioDatabase,
) -> None:
    counts = superuser(
        db, "SELECT p.id, (SELECT count(*) FROM session_requests r WHERE r.customer_id = p.id),"
        " (SELECT count(*) FROM vehicles v WHERE v.user_id = p.id)"
        " FROM profiles p WHERE p.role = 'customer' ORDER BY 2 DESC, 1 LIMIT 3")
    assert counts[0][1] > 1
    for customer_id, requests, vehicles in counts:
        with db.as_user(customer_id) as signed_in:
            assert signed_in.execute("SELECT auth.uid(), current_user").fetchone() == (
                customer_id, "authenticated")
            owners = signed_in.execute(
                "SELECT DISTINCT customer_id FROM session_requests").fetchall()
            assert owners == [(customer_id,)]
            seen = signed_in.execute(
                "SELECT (SELECT count(*) FROM session_requests), (SELECT count(*) FROM vehicles),"
                " (SELECT count(*) FROM vehicles WHERE user_id <> auth.uid()),"
                " (SELECT array_agg(id) FROM profiles), (SELECT count(*) FROM sessions)"
            ).fetchone()
            assert seen == (requests, vehicles, 0, [customer_id], 0)
    total = superuser(db, "SELECT count(*) FROM session_requests")[0][0]
    assert total > counts[0][1]


def test_the_claims_are_supabase_s_and_auth_uid_reads_either_form(db: ScenarioDatabase) -> None:
    martha = db.person("cust1")
    extra = {"app_metadata": {"provider": "email", "role": "admin"}}
    with db.as_user(martha.email, claims=extra) as signed_in:
        setting = signed_in.execute("SELECT current_setting('request.jwt.claims')").fetchone()
        assert setting is not None
        claims = json.loads(setting[0])
        old_style = signed_in.execute(
            "SELECT current_setting('request.jwt.claim.sub'),"
            " current_setting('request.jwt.claim.role'), auth.jwt() -> 'app_metadata' ->> 'role',"
            " auth.email(), auth.role()").fetchone()
    assert signed_in.person == martha and signed_in.role == "authenticated"
    assert claims == dict(signed_in.claims)
    assert {k: claims[k] for k in ("sub", "role", "aud", "email", "is_anonymous", "aal")} == {
        "sub": str(martha.id), "role": "authenticated", "aud": "authenticated",
        "email": martha.email, "is_anonymous": False, "aal": "aal1"}
    assert claims["user_metadata"]["role"] == "customer" and claims["exp"] > claims["iat"]
    assert old_style == (str(martha.id), "authenticated", "admin", martha.email, "authenticated")


def test_a_mechanic_sees_the_queue_a_customer_and_anon_do_not(db: ScenarioDatabase) -> None:
    queued = {row[0] for row in superuser(db, QUEUE)}
    assert queued
    pending = {row[0] for row in superuser(
        db, "SELECT id FROM session_requests WHERE status = 'pending'")}
    accepting: list[bool] = []
    for mechanic in db.mechanics():
        with db.as_user(mechanic) as signed_in:
            assert {row[0] for row in signed_in.execute(QUEUE)} == queued, mechanic.email
            visible = {row[0] for row in signed_in.execute("SELECT id FROM session_requests")}
            may_accept = signed_in.execute(
                "SELECT can_accept_sessions FROM mechanics WHERE user_id = auth.uid()"
            ).fetchone()
        # RLS: a mechanic who may accept sessions reads the pending requests, others none.
        assert visible == (pending if may_accept == (True,) else set()), mechanic.email
        accepting.append(may_accept == (True,))
    assert pending and set(accepting) == {True, False}  # both kinds were seen
    with db.as_user("cust2") as signed_in:
        assert signed_in.execute(QUEUE).fetchall() == []
        assert signed_in.execute("SELECT count(*) FROM mechanics").fetchone() == (
            len(db.mechanics()),)
    with db.as_anon() as anonymous:
        assert anonymous.person is None and anonymous.claims["role"] == "anon"
        assert anonymous.execute(
            "SELECT auth.uid(), current_user, (SELECT count(*) FROM mechanics),"
            " (SELECT count(*) FROM vehicles), (SELECT count(*) FROM session_requests)"
        ).fetchone() == (None, "anon", 0, 0, 0)


def test_the_session_runs_as_the_persona_and_its_commit_keeps_the_role(
    db: ScenarioDatabase,
) -> None:
    martha = db.person("cust1")
    with db.as_user("cust1") as signed_in:
        session = signed_in.session
        assert session.scalar(sa.text("SELECT auth.uid()")) == martha.id
        session.execute(sa.text(INSERT_MINE))
        session.commit()  # a savepoint: the block's transaction, role and claims go on
        assert session.scalar(sa.text("SELECT current_user")) == "authenticated"
        mine = signed_in.execute("SELECT count(*) FROM vehicles WHERE make = 'PersonaTest'")
        assert mine.fetchone() == (1,)
        with pytest.raises(psycopg.ProgrammingError, match="commit"):
            signed_in.connection.commit()
    # Rolled back with the block (commit=False).
    assert superuser(db, "SELECT count(*) FROM vehicles WHERE make = 'PersonaTest'") == [(0,)]


def test_commit_true_keeps_what_the_persona_wrote(db: ScenarioDatabase) -> None:
    with db.as_user("cust1", commit=True) as signed_in:
        signed_in.execute(INSERT_MINE)
    assert superuser(db, "SELECT user_id FROM vehicles WHERE make = 'PersonaTest'") == [
        (db.ref("cust1"),)]


def test_rls_refuses_a_write_for_someone_else_and_the_block_is_undone(
    db: ScenarioDatabase,
) -> None:
    other = db.ref("cust2")
    before = superuser(db, "SELECT count(*) FROM vehicles")
    with pytest.raises(errors.InsufficientPrivilege), db.as_user("cust1", commit=True) as ana:
        ana.execute(INSERT_MINE)
        ana.execute("INSERT INTO vehicles (user_id, make, model, year) "
                    "VALUES (%s, 'Ford', 'F-150', '2021')", [other])
    assert superuser(db, "SELECT count(*) FROM vehicles") == before


def test_the_role_and_claims_never_reach_the_next_use_of_the_connection(
    db: ScenarioDatabase,
) -> None:
    def state() -> tuple[Any, ...]:
        with db.engine.connect() as connection:
            row = connection.execute(sa.text(
                "SELECT pg_backend_pid(), current_user = session_user, auth.uid(),"
                " coalesce(current_setting('request.jwt.claims', true), ''),"
                " coalesce(current_setting('request.jwt.claim.sub', true), '')")).one()
        return tuple(row)

    pid = state()[0]
    for commit in (False, True):
        with db.as_user("alex", commit=commit) as signed_in:
            assert signed_in.execute("SELECT pg_backend_pid()").fetchone() == (pid,)
        assert state() == (pid, True, None, "", "")
    with pytest.raises(ZeroDivisionError), db.as_user("alex"):
        _ = 1 / 0
    assert state()[1:] == (True, None, "", "")
    # The test's own session (db.session) never runs as a persona.
    assert db.session.scalar(sa.text("SELECT current_user = session_user")) is True
    # A plain SET ROLE inside a committed block outlives it: that connection is not reused.
    with db.as_user("alex", commit=True) as signed_in:
        signed_in.execute("SET ROLE anon")
    after = state()
    assert after[1] is True and after[0] != pid


@pytest.mark.parametrize(
    ("who", "message"),
    [
        ("zed", r"db\.as_user\('zed'\): no seeded user is 'zed'; name one by email \(see "
                r"db\.customers\(\), db\.mechanics\(\)\), by a ref of the scenario that is a "
                r"customer or a mechanic \(alex, cust1, cust2, cust3, mechanic_0d887221, .*\), "
                r"or by an auth user id"),
        ("nobody@example.com", r"no seeded user is 'nobody@example.com'; name one by email"),
        (str(uuid.UUID(int=7)), r"no seeded user is '00000000-0000-0000-0000-000000000007'"),
        ("new_customers", r"ref 'new_customers' of scenario 'diverse' is a group of 6 rows; "
                          r"pick one: db\.as_user\(db\.ref\('new_customers'\)\[0\]\)"),
        ("elite", r"ref 'elite' of scenario 'diverse' is not a user \(a customer or a "
                  r"mechanic\); name one by email"),
    ],
    ids=["unknown-name", "unknown-email", "unknown-id", "group-ref", "workshop-ref"],
)
def test_an_unknown_user_is_one_error_saying_how_to_name_one(
    db: ScenarioDatabase, who: str, message: str
) -> None:
    with pytest.raises(ScenarioError, match=message) as raised, db.as_user(who):
        pass
    assert "\n" not in str(raised.value)


def test_a_user_who_may_not_act_as_authenticated_is_told_the_grant(
    db: ScenarioDatabase,
) -> None:
    role = f"seed_persona_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db.url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        admin.execute(sql.SQL("GRANT USAGE ON SCHEMA auth TO {0}; GRANT SELECT ON ALL TABLES "
                              "IN SCHEMA auth, public TO {0}").format(sql.Identifier(role)))
        engine = sa.create_engine(
            "postgresql+psycopg://", creator=lambda: psycopg.connect(db.url, user=role))
        try:
            message = (rf"db\.as_user\('cust1'\): the database user '{role}' may not act as "
                       rf"role authenticated \(permission denied to set role "
                       rf"\"authenticated\"\); grant it: GRANT authenticated TO {role}$")
            with pytest.raises(ConfigurationError, match=message), signed_in(
                engine, "cust1", refs=db.refs, scenario=db.scenario, database=db.name,
                where="db.as_user('cust1')",
            ):
                pass
        finally:
            engine.dispose()
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_claim_that_is_no_setting_name_goes_in_the_json_only(db: ScenarioDatabase) -> None:
    odd = {"https://example.com/claims": {"tier": "gold"}}
    with db.as_user("cust1", claims=odd) as signed_in:
        row = signed_in.execute(
            "SELECT auth.jwt() -> 'https://example.com/claims' ->> 'tier', auth.uid()").fetchone()
    assert row == ("gold", db.ref("cust1"))


def test_on_the_tool_s_own_schema_personas_say_what_they_need(
    test_server: SeedServer,
) -> None:
    db = test_server.copy("baseline")
    try:
        need = (r"database seed_test_\w+ is not shaped like the app's Supabase database \(it has"
                r" the tool's own schema\): it has no schema auth; personas need the app's "
                r"Supabase schema \(schema auth with auth.users and auth.uid\(\), the roles "
                r"authenticated and anon, the RLS policies\): give the plugin that schema with "
                r"--seed-schema PATH or the ini key seed_schema")
        with pytest.raises(SchemaError, match=r"db\.as_user\('alex'\): " + need), \
                db.as_user("alex"):
            pass
        with pytest.raises(SchemaError, match=r"db\.as_anon\(\): " + need), db.as_anon():
            pass
        with pytest.raises(SchemaError, match=r"db\.customers\(\): " + need):
            db.customers()
        with pytest.raises(SchemaError, match=r"db\.mechanics\(\): " + need):
            db.mechanics()
    finally:
        test_server.release(db)


def test_a_copy_has_the_template_s_database_settings(db: ScenarioDatabase) -> None:
    # app_shape.sql sets search_path on its database; CREATE DATABASE ... TEMPLATE drops it.
    assert superuser(db, "SHOW search_path") == [('"$user", public, extensions',)]


def test_a_pg_dump_of_the_app_s_database_is_a_schema_the_plugin_takes(
    pg_server_url: str, db: ScenarioDatabase, tmp_path: Path
) -> None:
    import shutil
    import subprocess

    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    # The copy holds the app's shape and rows; its schema, dumped, is what a user would give.
    dumped = subprocess.run(
        ["pg_dump", "--schema-only", "--schema=auth", "--schema=extensions",
         "--schema=public", "--dbname", db.url],
        capture_output=True, text=True, check=False,
    )
    if dumped.returncode != 0:
        pytest.skip(f"pg_dump cannot dump this server: {dumped.stderr.strip()[:200]}")
    (tmp_path / "schema.sql").write_text(dumped.stdout)
    server = SeedServer(pg_server_url, schema=[tmp_path / "schema.sql"])
    try:
        copy = server.copy("baseline")
        try:
            with copy.as_user("cust1") as signed_in:
                seen = signed_in.execute(
                    "SELECT count(DISTINCT customer_id), count(*) FROM session_requests"
                ).fetchone()
        finally:
            server.release(copy)
        assert seen is not None and seen[0] == 1 and seen[1] > 0
    finally:
        server.close()


def readme_persona_block() -> str:
    text = README.read_text(encoding="utf-8")
    blocks: list[str] = [b for b in re.findall(r"^```python\n(.*?)^```$", text, re.M | re.S)
                         if "as_user(" in b]
    assert len(blocks) == 1, "README's pytest section has one persona example"
    return blocks[0]


def test_readme_persona_examples_pass_with_the_app_schema(
    pytester: pytest.Pytester, pg_server_url: str
) -> None:
    block = readme_persona_block()
    write_app_schema(pytester.path / "supabase" / "schema")
    pytester.makepyfile(test_personas=block)
    result = pytester.runpytest_subprocess(
        "--seed-database-url", pg_server_url, "--seed-schema", "supabase/schema",
        "-o", "seed_keep_templates=false",  # a template of this temporary folder: not kept
    )
    tests = len(re.findall(r"^def test_", block, re.M))
    result.assert_outcomes(passed=tests)


def test_a_person_is_plain_data() -> None:
    person = Person(id=uuid.UUID(int=1), email="a@example.com", role="customer")
    assert person.name is None and person.mechanic_id is None
