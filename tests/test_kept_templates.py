"""Templates kept between test sessions: found again by their key, rebuilt when it changes.

The inner sessions run through pytester (the plugin from its entry point) on the outer
session's server, each on a scenario file of the test's own folder, so its template's slot is
the test's alone; every test drops what it kept. The package's code is part of the key, and
other work in a checkout changes it at any time: the sessions here pin it (a conftest), and a
test of its own checks that the code is in the key.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from seeding import runner
from seeding.errors import ConfigurationError
from seeding.testing import server as testserver
from seeding.testing import templates
from seeding.testing.server import KEPT_COMMENT, SeedServer, template_key

pytest_plugins = ["pytester"]
# Loaded before any test: pytester puts sys.modules back after each test, and numpy (which a
# run loads) cannot be loaded twice in one process.
assert callable(runner.run_scenario)

BASELINE = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.yaml"
PINNED = b"the code as the test pins it"
#: The inner sessions' conftest: the package's code digest pinned (see the module's doc).
PIN = f"""
import seeding.testing.templates
seeding.testing.templates._code_digest = lambda: {PINNED!r}
"""
#: The inner sessions' test: one copy of the scenario, and what the session got.
USES_MINE = """
import json, os

def test_mine(seed_scenario, seed_server):
    db = seed_scenario("mine.yaml")
    assert db.session.execute(__import__("sqlalchemy").text(
        "SELECT count(*) FROM session_requests")).scalar() == 44
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(f"got_{worker}_{os.getpid()}.json", "w") as file:
        json.dump([[t.name, t.built, t.kept] for t in seed_server.templates], file)
"""
SUMMARY = re.compile(r"^seeding: template of mine \(seed \d+\): (.*) \((seed_tpl_mine_\w+)\)$")


@pytest.fixture
def on_server(pg_server_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Inner sessions use the outer session's server, through SEED_TEST_DATABASE_URL."""
    monkeypatch.setenv("SEED_TEST_DATABASE_URL", pg_server_url)
    return pg_server_url


@pytest.fixture
def mine(pytester: pytest.Pytester, on_server: str) -> Iterator[Path]:
    """A scenario file (mine.yaml, extending base.yaml: the baseline) in the test's folder.

    Every template kept for it is dropped after the test.
    """
    pytester.makeconftest(PIN)
    (pytester.path / "base.yaml").write_text(BASELINE.read_text())
    path = pytester.path / "mine.yaml"
    path.write_text(
        "description: The baseline and one more pending request.\n"
        "extends: base\n"
        "steps:\n"
        "  - create: session_request\n"
        "    traits: [pending]\n"
    )
    yield path
    cleaner = SeedServer(on_server)
    try:
        cleaner.drop_kept_templates(kept_for(on_server, pytester.path))
    finally:
        cleaner.close()


def kept_for(server_url: str, folder: Path) -> dict[str, tuple[int, str]]:
    """Return the kept templates of scenarios in ``folder``: name -> (oid, key)."""
    with psycopg.connect(server_url) as connection:
        rows = connection.execute(
            "SELECT datname, oid, shobj_description(oid, 'pg_database') FROM pg_database "
            "WHERE starts_with(shobj_description(oid, 'pg_database'), %s)", (KEPT_COMMENT,)
        ).fetchall()
    found = {}
    for name, oid, comment in rows:
        described = json.loads(comment[len(KEPT_COMMENT):])
        if any(str(file).startswith(str(folder.resolve())) for file in described["files"]):
            found[name] = (int(oid), str(described["key"]))
    return found


def session_summary(result: pytest.RunResult) -> tuple[str, str]:
    """Return what the inner session said of mine's template: (how, its name)."""
    lines = [m.groups() for m in map(SUMMARY.match, result.outlines) if m]
    assert len(lines) == 1, result.outlines
    return lines[0][0], lines[0][1]


def test_a_second_session_reuses_the_template_and_a_changed_file_rebuilds_it(
    pytester: pytest.Pytester, on_server: str, mine: Path
) -> None:
    pytester.makepyfile(test_mine=USES_MINE)

    def session() -> tuple[str, str]:
        result = pytester.runpytest_subprocess()
        result.assert_outcomes(passed=1)
        return session_summary(result)

    how, first = session()
    assert how.startswith("built in ") and how.endswith(", kept for the next sessions")
    kept = kept_for(on_server, pytester.path)
    assert list(kept) == [first]
    # Unchanged: the same database (same oid), copied without building.
    assert session() == ("reused the kept one", first)
    assert kept_for(on_server, pytester.path) == kept

    # A file the scenario extends changed: rebuilt, and the stale template dropped.
    base = pytester.path / "base.yaml"
    base.write_text(base.read_text() + "\n# a comment changes the file's bytes\n")
    how, second = session()
    assert how.startswith("built in ") and second != first
    assert list(kept_for(on_server, pytester.path)) == [second]
    assert session() == ("reused the kept one", second)

    # The scenario's own file changed: rebuilt again.
    mine.write_text(mine.read_text().replace("one more pending", "one pending"))
    how, third = session()
    assert how.startswith("built in ") and third not in (first, second)
    assert list(kept_for(on_server, pytester.path)) == [third]

    # Another seed is another slot: its own template, the first kept beside it.
    pytester.makepyfile(test_mine=USES_MINE.replace('"mine.yaml"', '"mine.yaml", seed=5'))
    how, other_seed = session()
    assert how.startswith("built in ") and set(kept_for(on_server, pytester.path)) == {
        third, other_seed}


def test_with_keeping_off_the_template_is_built_and_dropped(
    pytester: pytest.Pytester, on_server: str, mine: Path
) -> None:
    pytester.makepyfile(test_mine=USES_MINE)
    for _ in range(2):
        result = pytester.runpytest_subprocess("-o", "seed_keep_templates=false")
        result.assert_outcomes(passed=1)
        how, name = session_summary(result)
        assert how.startswith("built in ") and "kept" not in how
        assert name not in {n for (n,) in databases(on_server)}
    assert kept_for(on_server, pytester.path) == {}


def databases(server_url: str) -> list[tuple[str]]:
    with psycopg.connect(server_url) as connection:
        return [(str(r[0]),) for r in connection.execute("SELECT datname FROM pg_database")]


def test_a_changed_schema_file_rebuilds_the_template(
    pytester: pytest.Pytester, on_server: str, mine: Path
) -> None:
    schema = pytester.path / "schema.sql"
    schema.write_text("CREATE TABLE public.app_extra (note text);\n")
    pytester.makepyfile(test_mine=USES_MINE + """
def test_the_schema_ran_first(seed_scenario):
    db = seed_scenario("mine.yaml")
    assert db.session.execute(__import__("sqlalchemy").text(
        "SELECT count(*) FROM app_extra")).scalar() == 0
""")

    def session() -> tuple[str, str]:
        result = pytester.runpytest_subprocess("--seed-schema", "schema.sql")
        result.assert_outcomes(passed=2)
        return session_summary(result)

    how, first = session()
    assert how.startswith("built in ")
    assert session() == ("reused the kept one", first)
    schema.write_text("CREATE TABLE public.app_extra (note text, more text);\n")
    how, second = session()
    assert how.startswith("built in ") and second != first
    assert list(kept_for(on_server, pytester.path)) == [second]


def test_a_bad_schema_setting_is_one_line(
    pytester: pytest.Pytester, on_server: str, mine: Path
) -> None:
    (pytester.path / "bad.sql").write_text("CREATE TABLE a (x int);\n\nCREATE TABLE b (y nope);\n")
    pytester.makepyfile(test_mine=USES_MINE)
    result = pytester.runpytest_subprocess("--seed-schema", "bad.sql")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "seed_scenario('mine.yaml'): */bad.sql:3: type \"nope\" does not exist; fix the schema "
        "file, or the schema setting (--seed-schema); each file runs all or nothing, in order",
    ])
    pytester.makeini("[pytest]\nseed_schema = missing.sql\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "seed_scenario('mine.yaml'): no such schema file or folder: */missing.sql (from ini "
        "seed_schema); give a .sql file (a schema dump) or a folder of .sql files (your "
        "migrations), or remove it",
    ])
    assert "Traceback" not in "\n".join(result.outlines + result.errlines)
    assert kept_for(on_server, pytester.path) == {}


def slot_lock_waiters(server_url: str, slot: str) -> int:
    """Return how many sessions wait for the advisory lock of a template's slot."""
    key = testserver._lock_key(slot)
    with psycopg.connect(server_url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND classid = %s::bigint::oid AND objid = %s::bigint::oid AND objsubid = 2",
            (testserver._BUILD_LOCK, key & 0xFFFFFFFF),
        ).fetchone()
    return int(row[0]) if row else 0


def test_sessions_racing_for_one_template_build_it_once_under_the_lock(
    pytester: pytest.Pytester, on_server: str, mine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_mine=USES_MINE)
    monkeypatch.setattr(templates, "_code_digest", lambda: PINNED)
    with psycopg.connect(on_server) as probe:
        user = str(probe.info.user)
    identity = template_key(str(mine), seed=None, scale=1.0, schema=(), user=user)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_mine.py"]
    with psycopg.connect(on_server, autocommit=True) as holder:
        # The test holds the slot's lock: both sessions must wait for it, then one builds.
        holder.execute("SELECT pg_advisory_lock(%s, %s)",
                       (testserver._BUILD_LOCK, testserver._lock_key(identity.slot)))
        sessions = [
            subprocess.Popen(command, cwd=pytester.path, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
            for _ in range(2)
        ]
        try:
            deadline = time.monotonic() + 120
            while slot_lock_waiters(on_server, identity.slot) < 2:
                assert time.monotonic() < deadline, "the sessions never waited for the lock"
                assert all(s.poll() is None for s in sessions), "a session ended early"
                time.sleep(0.1)
            assert kept_for(on_server, pytester.path) == {}  # none built while it was held
        finally:
            holder.execute("SELECT pg_advisory_unlock_all()")
        outputs = [s.communicate(timeout=300)[0] for s in sessions]
    assert [s.returncode for s in sessions] == [0, 0], outputs
    got = sorted(
        tuple(map(tuple, json.loads(p.read_text())))
        for p in pytester.path.glob("got_main_*.json")
    )
    names = {entry[0][0] for entry in got}
    assert len(got) == 2 and len(names) == 1
    assert sorted(entry[0][1] for entry in got) == [False, True]  # one built, one reused
    assert list(kept_for(on_server, pytester.path)) == list(names)
    assert kept_for(on_server, pytester.path)[names.pop()][1] == identity.key


def test_xdist_workers_build_one_template_once(
    pytester: pytest.Pytester, on_server: str, mine: Path
) -> None:
    pytest.importorskip("xdist")
    tests = "\n".join(
        USES_MINE.replace("def test_mine(", f"def test_mine_{i}(") for i in range(4)
    )
    pytester.makepyfile(test_mine=tests)
    result = pytester.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=4)
    per_worker = {
        path.name.split("_")[1]: tuple(map(tuple, json.loads(path.read_text())))
        for path in sorted(pytester.path.glob("got_gw*_*.json"))
    }
    assert set(per_worker) == {"gw0", "gw1"}, "both workers ran a test"
    # Each worker got the one template once; exactly one of them built it.
    assert all(len(entries) == 1 for entries in per_worker.values())
    names = {entries[0][0] for entries in per_worker.values()}
    assert len(names) == 1
    assert sorted(entries[0][1] for entries in per_worker.values()) == [False, True]
    assert list(kept_for(on_server, pytester.path)) == list(names)


def test_a_template_a_live_session_holds_is_not_dropped_as_stale(
    pytester: pytest.Pytester, on_server: str, mine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(templates, "_code_digest", lambda: PINNED)
    first = SeedServer(on_server, keep_templates=True)
    second = SeedServer(on_server, keep_templates=True)
    try:
        first.release(first.copy(str(mine)))
        old = first.templates[0].name
        mine.write_text(mine.read_text() + "\n# changed\n")
        second.release(second.copy(str(mine)))
        new = second.templates[0]
        assert new.built and new.name != old
        # The first session still holds the old one: kept, and still copied.
        assert set(kept_for(on_server, pytester.path)) == {old, new.name}
        copy = first.copy(str(mine))
        assert copy.scenario == "mine"
        first.release(copy)
    finally:
        first.close()
        second.close()
    third = SeedServer(on_server, keep_templates=True)
    try:
        third.release(third.copy(str(mine)))
        assert (third.templates[0].name, third.templates[0].built) == (new.name, False)
        assert set(kept_for(on_server, pytester.path)) == {new.name}  # the stale one dropped
    finally:
        third.close()


def test_a_kept_template_unused_for_a_week_is_dropped_by_the_next_session(
    pytester: pytest.Pytester, on_server: str, mine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(templates, "_code_digest", lambda: PINNED)
    server = SeedServer(on_server, keep_templates=True)
    try:
        server.release(server.copy(str(mine)))
        name = server.templates[0].name
    finally:
        server.close()
    with psycopg.connect(on_server, autocommit=True) as connection:
        row = connection.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (name,)).fetchone()
        assert row is not None
        described = json.loads(row[0][len(KEPT_COMMENT):])
        described["used"] = (datetime.now(UTC) - timedelta(days=8)).isoformat()
        connection.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(name), sql.Literal(KEPT_COMMENT + json.dumps(described))))
    # Another session holds it (the shared lock a session takes on a template it uses).
    with psycopg.connect(on_server, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock_shared(%s, %s)",
                       (testserver._USE_LOCK, testserver._lock_key(name)))
        sweeper = SeedServer(on_server)
        try:
            sweeper.sweep()
        finally:
            sweeper.close()
        assert name in kept_for(on_server, pytester.path)
    # Held by none, it is dropped by the next session's first connection.
    later = SeedServer(on_server)
    try:
        later.sweep()
        assert kept_for(on_server, pytester.path) == {}
    finally:
        later.close()


def test_the_key_covers_what_decides_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = tmp_path / "mine.yaml"
    scenario.write_text(BASELINE.read_text())
    schema = tmp_path / "schema.sql"
    schema.write_text("SELECT 1;\n")

    def key(**changes: object) -> testserver.TemplateKey:
        arguments: dict[str, object] = {
            "seed": None, "scale": 1.0, "schema": (schema,), "user": "postgres"}
        arguments.update(changes)
        return template_key(str(scenario), **arguments)  # type: ignore[arg-type]

    base = key()
    assert key() == base
    variants = {
        "seed": key(seed=3), "scale": key(scale=2.0), "own schema": key(schema=()),
        "user": key(user="someone"),
    }
    monkeypatch.setenv("SEED_USER_PASSWORD", "another-password")
    variants["password"] = key()
    monkeypatch.delenv("SEED_USER_PASSWORD")
    monkeypatch.setattr(templates, "_code_digest", lambda: b"other code")
    variants["code"] = key()
    monkeypatch.undo()
    schema.write_text("SELECT 2;\n")
    variants["schema bytes"] = key()
    scenario.write_text(BASELINE.read_text() + "\n")
    variants["scenario bytes"] = key()
    keys = {name: variant.key for name, variant in variants.items()}
    assert len(set(keys.values()) | {base.key}) == len(keys) + 1, keys
    # The content is in the key, not the slot: an edited file replaces its template.
    assert variants["schema bytes"].slot == variants["scenario bytes"].slot == base.slot
    assert variants["code"].slot == variants["password"].slot == base.slot
    assert len({variants[n].slot for n in ("seed", "scale", "own schema", "user")}) == 4
    assert templates._code_digest() == templates._code_digest()  # read once, cached


def test_a_migration_added_to_a_schema_folder_changes_the_key_not_the_slot(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "001_a.sql").write_text("SELECT 1;\n")

    def key() -> testserver.TemplateKey:
        return template_key(
            str(BASELINE), seed=None, scale=1.0, schema=testserver.schema_files([folder]),
            user="postgres", schema_setting=[folder],
        )

    before = key()
    (folder / "002_b.sql").write_text("SELECT 1;\n")
    after = key()
    assert after.slot == before.slot and after.key != before.key


def test_schema_paths_name_files_or_folders_of_them(tmp_path: Path) -> None:
    (tmp_path / "migrations").mkdir()
    for name in ("002_b.sql", "001_a.sql", "notes.txt"):
        (tmp_path / "migrations" / name).write_text("SELECT 1;\n")
    (tmp_path / "dump.sql").write_text("SELECT 1;\n")
    files = testserver.schema_files([tmp_path / "dump.sql", tmp_path / "migrations"])
    assert [f.name for f in files] == ["dump.sql", "001_a.sql", "002_b.sql"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigurationError, match="holds no .sql file"):
        testserver.schema_files([tmp_path / "empty"], source="--seed-schema")
