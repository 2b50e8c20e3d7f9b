"""The pytest plugin, run the way another repo runs it: example test files through pytester.

Every inner session is a subprocess that loads the plugin from its ``pytest11`` entry point,
with no conftest. It uses the outer session's server (``SEED_TEST_DATABASE_URL``), except
the tests of the embedded default, which name no server at all.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from seeding.pytest_plugin import SeedServer, database_url

pytest_plugins = ["pytester"]

# Bad servers: nothing listens on ports 1-3; the passwords must never be printed.
FLAG_URL = "postgresql://bob:flag-s3cret@127.0.0.1:1/flag_db"
INI_URL = "postgresql://bob:ini-s3cret@127.0.0.1:2/ini_db"
ENV_URL = "postgresql://bob:env-s3cret@127.0.0.1:3/env_db"


@pytest.fixture
def on_server(pg_server_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Inner sessions use the outer session's server, through SEED_TEST_DATABASE_URL."""
    monkeypatch.setenv("SEED_TEST_DATABASE_URL", pg_server_url)
    return pg_server_url


def databases_like(server_url: str, prefix: str) -> set[str]:
    with psycopg.connect(server_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,)
        ).fetchall()
    return {row[0] for row in rows}


def output_of(result: pytest.RunResult) -> str:
    return "\n".join(result.outlines + result.errlines)


def test_the_entry_point_registers_the_flag_the_ini_key_and_the_fixtures(
    pytester: pytest.Pytester,
) -> None:
    help_text = output_of(pytester.runpytest_subprocess("--help"))
    assert "--seed-database-url=URL" in help_text
    assert "seed_database_url (string):" in help_text
    assert "--seed-schema=PATH" in help_text and "seed_schema (paths):" in help_text
    assert "seed_keep_templates (bool):" in help_text
    pytester.makepyfile("def test_nothing(): pass")
    pytester.runpytest_subprocess("--fixtures").stdout.fnmatch_lines([
        "*fixtures defined from seeding.pytest_plugin*",
        "seed_database_url ?session scope? -- *seeding/pytest_plugin.py:*",
        "seed_server ?session scope? -- *seeding/pytest_plugin.py:*",
        "seed_session -- *seeding/pytest_plugin.py:*",
        "seed_scenario -- *seeding/pytest_plugin.py:*",
    ])


def test_seed_session_persists_factories_and_undoes_even_committed_writes(
    pytester: pytest.Pytester, on_server: str
) -> None:
    pytester.makepyfile(
        """
        import pytest
        import sqlalchemy as sa

        from factories import MechanicFactory, SessionRequestFactory
        from seeding.errors import ConfigurationError
        from seeding.domain.schema import Base, Mechanic, Organization, SessionRequest

        def count(session, model):
            return session.scalar(sa.select(sa.func.count()).select_from(model))

        def test_writes_and_commits(seed_session):
            mechanic = MechanicFactory.create(workshop=True)
            SessionRequestFactory.create(completed=True, mechanic=mechanic)
            seed_session.commit()
            assert count(seed_session, SessionRequest) == 1
            workshop = seed_session.get(Organization, mechanic.workshop_id)
            assert workshop.organization_type == "workshop"

        def test_sees_none_of_it(seed_session):
            for table in Base.metadata.sorted_tables:
                assert count(seed_session, table) == 0, table.name

        def test_factories_are_unbound_after_the_test():
            with pytest.raises(ConfigurationError, match="none is bound"):
                MechanicFactory.create()
        """
    )
    result = pytester.runpytest_subprocess("-v")
    result.assert_outcomes(passed=3)


def test_seed_session_starts_each_test_from_one_seed_and_restores_the_generators(
    pytester: pytest.Pytester, on_server: str
) -> None:
    pytester.makepyfile(
        """
        import factory.random
        import factories
        from factories import MechanicFactory

        factories.reseed(5)
        FIRST_DRAW_AFTER_RESEED_5 = factory.random.randgen.random()
        factories.reseed(5)
        ids = []

        def test_one(seed_session):
            ids.append(MechanicFactory.create().id)

        def test_two(seed_session):
            ids.append(MechanicFactory.create().id)
            assert ids[0] == ids[1]

        def test_state_from_before_is_back():
            assert factory.random.randgen.random() == FIRST_DRAW_AFTER_RESEED_5
        """
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=3)


def test_seed_scenario_gives_the_scenario_its_refs_and_a_usable_url(
    pytester: pytest.Pytester, on_server: str
) -> None:
    pytester.makepyfile(
        """
        import uuid

        import psycopg
        import pytest
        import sqlalchemy as sa

        from seeding.errors import ScenarioError
        from seeding.domain.schema import Mechanic, SessionRequest

        def test_baseline(seed_scenario):
            db = seed_scenario("baseline")
            assert (db.scenario, db.seed) == ("baseline", 20251112)
            assert db.name.startswith("seed_test_") and db.url.startswith("postgresql://")
            statuses = db.session.execute(
                sa.select(SessionRequest.status, sa.func.count()).group_by(SessionRequest.status)
            ).all()
            assert dict(statuses) == {"cancelled": 36, "completed": 6, "pending": 1}
            alex = db.ref("alex")
            assert isinstance(alex, uuid.UUID) and str(alex).startswith("c62837da")
            assert db.session.get(Mechanic, alex).name == "Alex Thompson"
            with psycopg.connect(db.url) as connection:
                assert connection.execute("SELECT count(*) FROM mechanics").fetchone() == (7,)
            with db.engine.connect() as connection:
                assert connection.scalar(sa.text("SELECT count(*) FROM session_requests")) == 43
            with pytest.raises(ScenarioError, match="has no ref 'bob'; its refs: alex, cust1"):
                db.ref("bob")

        def test_a_group_ref_is_a_list(seed_scenario):
            customers = seed_scenario("diverse").ref("new_customers")
            assert isinstance(customers, list) and len(customers) == 6
        """
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=2)


def test_what_a_test_commits_in_its_copy_no_other_test_sees(
    pytester: pytest.Pytester, on_server: str
) -> None:
    pytester.makepyfile(
        """
        import psycopg
        import sqlalchemy as sa

        from seeding.domain.schema import SessionRequest

        names = []

        def count(db):
            return db.session.scalar(sa.select(sa.func.count()).select_from(SessionRequest))

        def test_deletes_and_commits(seed_scenario):
            db = seed_scenario("baseline")
            names.append(db.name)
            db.session.execute(sa.delete(SessionRequest))
            db.session.commit()
            with psycopg.connect(db.url, autocommit=True) as connection:
                connection.execute("DELETE FROM sessions")
                left = connection.execute("SELECT count(*) FROM session_requests").fetchone()
                assert left == (0,)

        def test_then_sees_every_row(seed_scenario):
            db = seed_scenario("baseline")
            names.append(db.name)
            assert count(db) == 43
            with psycopg.connect(db.url) as connection:
                assert connection.execute("SELECT count(*) FROM sessions").fetchone()[0] > 0

        def test_two_copies_in_one_test_are_apart(seed_scenario):
            first, second = seed_scenario("baseline"), seed_scenario("baseline")
            assert first.name != second.name
            first.session.execute(sa.delete(SessionRequest))
            first.session.commit()
            assert (count(first), count(second)) == (0, 43)

        def test_each_copy_was_dropped_after_its_test(seed_server):
            with psycopg.connect(seed_server.url) as connection:
                left = connection.execute(
                    "SELECT count(*) FROM pg_database WHERE datname = ANY(%s)", (names,)
                ).fetchone()[0]
            assert len(set(names)) == 2 and left == 0
        """
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=4)


@pytest.mark.parametrize("keep", ["true", "false"])
def test_two_scenarios_side_by_side_each_built_once_and_every_copy_dropped_at_the_end(
    pytester: pytest.Pytester, on_server: str, keep: str
) -> None:
    pytester.makeini(f"[pytest]\nseed_keep_templates = {keep}\n")
    pytester.makepyfile(
        """
        import json

        import psycopg
        import sqlalchemy as sa

        from seeding.domain.schema import Mechanic, SessionRequest

        def counts(db):
            return tuple(
                db.session.scalar(sa.select(sa.func.count()).select_from(model))
                for model in (SessionRequest, Mechanic)
            )

        def test_both_in_one_test(seed_scenario):
            baseline, diverse = seed_scenario("baseline"), seed_scenario("diverse")
            assert counts(baseline) == (43, 7)
            assert counts(diverse) == (143, 17)

        def test_both_again_in_the_other_order(seed_scenario):
            diverse, baseline = seed_scenario("diverse"), seed_scenario("baseline")
            assert counts(diverse) == (143, 17)
            assert counts(baseline) == (43, 7)

        def test_each_was_built_once(seed_server, seed_scenario, seed_session):
            seed_scenario("diverse")
            templates = sorted((t.scenario, t.name) for t in seed_server.templates)
            assert [scenario for scenario, _ in templates] == ["baseline", "diverse"]
            made = list(seed_server.database_names)
            with psycopg.connect(seed_server.url) as connection:
                present = {r[0] for r in connection.execute("SELECT datname FROM pg_database")}
            assert set(made) | {name for _, name in templates} <= present
            with open("made.json", "w") as file:
                json.dump({"made": made, "templates": [name for _, name in templates]}, file)
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=3)
    made = json.loads((pytester.path / "made.json").read_text())
    templates = made["templates"]
    assert [name.rsplit("_", 1)[0] for name in templates] == [
        "seed_tpl_baseline", "seed_tpl_diverse"]
    left = databases_like(on_server, "seed_")
    assert left & set(made["made"]) == set()  # the copies and the seed_session database
    summary = [line for line in result.outlines if line.startswith("seeding: template of")]
    assert len(summary) == 2
    if keep == "false":
        # The seed_session database, two templates, the last test's copy: all dropped.
        kinds = sorted(name.rsplit("_", 1)[0] for name in made["made"])
        assert kinds == ["seed_test", "seed_test", "seed_tpl_baseline", "seed_tpl_diverse"]
        assert all(line.endswith(")") and "kept" not in line for line in summary)
        return
    assert sorted(name.rsplit("_", 1)[0] for name in made["made"]) == ["seed_test", "seed_test"]
    assert set(templates) <= left  # kept, marked as such
    with psycopg.connect(on_server) as connection:
        comments = connection.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
            "WHERE datname = ANY(%s)", (templates,)).fetchall()
    assert all(c.startswith("seeding kept template: {") for (c,) in comments)


def test_databases_left_by_a_killed_session_are_dropped_by_the_next_one(
    pytester: pytest.Pytester, on_server: str
) -> None:
    pytester.makepyfile(
        test_killed="""
        import json, os, signal

        def test_killed_with_its_databases_made(seed_server, seed_scenario, seed_session):
            seed_scenario("baseline")
            with open("made.json", "w") as file:
                json.dump(list(seed_server.database_names), file)
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    pytester.runpytest_subprocess("test_killed.py")
    made = set(json.loads((pytester.path / "made.json").read_text()))
    # The seed_session database and the copy (the template is kept for the next session).
    assert len(made) == 2 and made <= databases_like(on_server, "seed_")

    # A database someone is connected to, and a live session's databases, are kept.
    in_use = sorted(made)[0]
    with psycopg.connect(database_url(on_server, in_use)):
        alive = SeedServer(on_server)
        try:
            kept = alive.create_database()
            pytester.makepyfile(
                test_next="""
                def test_next(seed_session):
                    pass
                """
            )
            pytester.runpytest_subprocess("test_next.py").assert_outcomes(passed=1)
            assert databases_like(on_server, "seed_") & (made | {kept}) == {in_use, kept}
        finally:
            alive.close()
    # Once no one is connected, the next session drops it too.
    pytester.runpytest_subprocess("test_next.py").assert_outcomes(passed=1)
    assert databases_like(on_server, "seed_") & made == set()


def test_a_database_without_the_owner_comment_is_never_swept(on_server: str) -> None:
    name = "seed_test_not_made_by_a_seed_server"
    with psycopg.connect(on_server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        server = SeedServer(on_server)
        server.create_database()
        assert name in databases_like(on_server, "seed_test_")
        server.close()
    finally:
        with psycopg.connect(on_server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))


def test_an_unknown_scenario_is_one_clean_failure(
    pytester: pytest.Pytester, on_server: str
) -> None:
    pytester.makepyfile(
        """
        def test_typo(seed_scenario):
            seed_scenario("divers")
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "seed_scenario('divers'): unknown scenario 'divers' (did you mean diverse?); "
        "shipped scenarios: *",
    ])
    output = output_of(result)
    assert "Traceback" not in output and "pytest_plugin.py" not in output
    assert "seeding/testing/" not in output  # the server, its templates, the databases


@pytest.mark.parametrize(
    ("flag", "ini", "env", "database", "source"),
    [
        (FLAG_URL, INI_URL, "good", "flag_db", "--seed-database-url"),
        (None, INI_URL, "good", "ini_db", "ini seed_database_url"),
        (None, None, ENV_URL, "env_db", "SEED_TEST_DATABASE_URL"),
    ],
    ids=["flag-beats-ini-and-env", "ini-beats-env", "env"],
)
def test_the_flag_beats_the_ini_key_beats_the_variable(
    pytester: pytest.Pytester,
    pg_server_url: str,
    monkeypatch: pytest.MonkeyPatch,
    flag: str | None,
    ini: str | None,
    env: str,
    database: str,
    source: str,
) -> None:
    monkeypatch.setenv("SEED_TEST_DATABASE_URL", pg_server_url if env == "good" else env)
    if ini:
        pytester.makeini(f"[pytest]\nseed_database_url = {ini}\n")
    pytester.makepyfile("def test_url(seed_database_url): pass")
    result = pytester.runpytest_subprocess(*([f"--seed-database-url={flag}"] if flag else []))
    result.assert_outcomes(errors=1)
    output = output_of(result)
    assert "cannot connect to postgresql://bob:***@127.0.0.1:" in output
    assert f"/{database}: " in output and f"the URL came from {source};" in output
    assert "s3cret" not in output and "Traceback" not in output


@pytest.mark.parametrize("setting", ["flag", "ini"])
def test_a_good_setting_wins_over_a_bad_variable(
    pytester: pytest.Pytester,
    pg_server_url: str,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
) -> None:
    monkeypatch.setenv("SEED_TEST_DATABASE_URL", ENV_URL)
    args: list[str] = []
    if setting == "flag":
        pytester.makeini(f"[pytest]\nseed_database_url = {INI_URL}\n")
        args.append(f"--seed-database-url={pg_server_url}")
    else:
        pytester.makeini(f"[pytest]\nseed_database_url = {pg_server_url}\n")
    pytester.makepyfile(
        """
        def test_url(seed_database_url):
            open("used.txt", "w").write(seed_database_url)
        """
    )
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
    assert (pytester.path / "used.txt").read_text() == pg_server_url


def test_nothing_is_started_for_tests_that_use_no_seed_fixture(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEED_TEST_DATABASE_URL", raising=False)
    pytester.makepyfile("def test_plain(): pass")
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
    assert list(pytester.path.rglob("postmaster.pid")) == []
    assert list(pytester.path.rglob("seed_postgres*")) == []
    # A bad flag does not matter either while no test asks for the server.
    pytester.runpytest_subprocess(f"--seed-database-url={FLAG_URL}").assert_outcomes(passed=1)


@pytest.mark.database  # the inner session starts an embedded server
def test_the_default_is_an_embedded_server_for_the_session_stopped_at_its_end(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEED_TEST_DATABASE_URL", raising=False)
    pytester.makepyfile(
        """
        import sqlalchemy as sa

        from factories import MechanicFactory
        from seeding.domain.schema import Mechanic, SessionRequest

        def count(session, model):
            return session.scalar(sa.select(sa.func.count()).select_from(model))

        def test_session(seed_session, seed_database_url):
            open("url.txt", "w").write(seed_database_url)
            MechanicFactory.create(independent=True)
            seed_session.commit()
            assert count(seed_session, Mechanic) == 1

        def test_rolled_back(seed_session):
            assert count(seed_session, Mechanic) == 0

        def test_scenario(seed_scenario):
            assert count(seed_scenario("baseline").session, SessionRequest) == 43
        """
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=3)
    url = (pytester.path / "url.txt").read_text()
    assert "host=" in url  # a unix socket: the embedded server
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=3)
    # Its data folder (where its socket was) was a fresh folder of the system's temp, and is
    # gone: not under pytest's tmp_path, which another pytest session closes to its server.
    data_dir = Path(str(psycopg.conninfo.conninfo_to_dict(url)["host"]))
    assert data_dir.parent.name.startswith("seed-postgres-")
    assert pytester.path not in data_dir.parents
    assert not data_dir.parent.exists()
