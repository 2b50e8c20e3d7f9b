"""A tiled run (``seed scenario load``) on the app's real Supabase database.

The databases are shaped like the app's (tests/app_shape.sql): the migrations' shape with the
tool's request statuses admitted (``app_ready``), and the live staging one (``app_db_live``).
A small tiled scenario of this file's own (a workshop's corner, with the mechanic queue) is
written in 6 copies of 4 variants, so that every copy's ids, and the texts holding them, are
rewritten from the variant's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from app_shape import sign_in_check, snapshot
from psycopg import sql

from seeding.db import database, ledger, tiles
from seeding.errors import DatabaseError, SchemaMismatchError
from seeding.reset import reset_database
from seeding.runner import prepare_tiled, run_scenario

PASSWORD = "a-tiled-password-9"

#: Each copy: 4 mechanics, 7 customers (2 of them waiting in the mechanic queue), requests
#: that complete (the app's analytics trigger fires), are cancelled, or wait.
TILE = """
description: A small tiled scenario for the app's database, with the mechanic queue.
tiles: 10
seed: 11
clock:
  now: 2026-11-20T12:00:00-05:00
  window: {from: 2026-11-01T00:00:00-05:00, to: 2026-11-20T11:00:00-05:00}
steps:
  - create: workshop
    ref: shop
  - create: mechanic
    count: 2
    traits: [workshop]
    with: {organization: shop}
  - create: mechanic
    traits: [independent]
  - create: mechanic
    traits: [virtual]
  - create: customer
    count: 5
  - create: vehicle
    count: 6
    with: {customer: {any: customer}}
  - create: session_request
    count: 8
    traits: [completed]
    with: {customer: {any: customer}, mechanic: {any: mechanic}}
  - create: session_request
    count: 4
    traits: [cancelled_after_assignment]
    with: {customer: {any: customer}, mechanic: {any: mechanic}}
  - create: session_request
    count: 4
    traits: [pending]
    with: {customer: {any: customer}}
  - create: customer
    ref: waiting
    count: 2
  - create: session
    ref: queued
    count: 2
    with: {customer: {ref: waiting}, mechanic: null}
    mix:
      status: {pending: 50%, waiting: 50%}
  - create: session_assignment
    count: 2
    traits: [offered]
    with: {session: {ref: queued}, mechanic: {any: mechanic}}
"""

#: --scale 0.6 of ``tiles: 10``: 6 copies, from 4 variants.
SCALE = 0.6
COPIES = 6


@pytest.fixture(scope="module")
def queue_tile(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The path of a file holding :data:`TILE`."""
    path = tmp_path_factory.mktemp("supabase_tiles") / "corner.yaml"
    path.write_text(TILE)
    return str(path)


#: The app's foreign keys: oid (new if dropped and added back), table, name, SQL.
KEYS_SQL = (
    "SELECT oid, conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
    "FROM pg_constraint WHERE contype = 'f' "
    "AND connamespace::regnamespace::text IN ('public', 'auth') ORDER BY 2, 3"
)


def _keys(url: str) -> list[tuple[int, str, str, str]]:
    """Return the app's foreign keys (:data:`KEYS_SQL`), read on a connection of their own."""
    with psycopg.connect(url) as connection:
        return _key_rows(connection.execute(KEYS_SQL))


def _key_rows(rows: Iterable[Sequence[Any]]) -> list[tuple[int, str, str, str]]:
    return [(int(oid), str(table), str(name), str(definition))
            for oid, table, name, definition in rows]


def _one(connection: psycopg.Connection[Any], query: str) -> Any:
    row = connection.execute(query.encode()).fetchone()
    assert row is not None
    return row[0]


@pytest.mark.parametrize("shape", ["app_ready", "app_db_live"])
def test_load_on_the_app_s_database_signs_in_and_resets(
    shape: str, queue_tile: str, request: pytest.FixtureRequest
) -> None:
    url: str = request.getfixturevalue(shape)
    before, keys_before = snapshot(url), _keys(url)
    result = run_scenario(queue_tile, database_url=url, scale=SCALE, user_password=PASSWORD)
    tile = prepare_tiled(queue_tile).first
    people = len(tile["profiles"]) + len(tile["mechanics"])
    assert result.tiled
    assert result.counts["auth.users"] == result.counts["auth.identities"] == people * COPIES
    assert result.counts["session_requests"] == len(tile["session_requests"]) * COPIES
    assert "organizations.latitude" in result.absent
    with psycopg.connect(url) as connection:
        completed = _one(connection, "SELECT count(*) FROM sessions WHERE status = 'completed'")
        assert completed > 0
        # The app's triggers made the mechanics' profiles and the analytics rows: recorded.
        assert result.app_made == {
            "profiles": len(tile["mechanics"]) * COPIES, "session_analytics": completed,
        }
        # Every copy has ids of its own: a 2-byte prefix per copy, every auth id distinct.
        assert _one(connection, "SELECT count(DISTINCT id) FROM auth.users") == people * COPIES
        assert _one(connection, "SELECT count(DISTINCT left(id::text, 4)) FROM auth.users") == (
            COPIES
        )
        # Customers' auth ids are their profiles' ids; mechanics' are their user_id; the
        # emails, which hold the hex of the row's id, follow it into every copy.
        assert _one(connection, """
            SELECT count(*) FROM profiles p JOIN auth.users u ON u.id = p.id
            WHERE p.role = 'customer' AND u.email = lower(p.email)
              AND u.raw_user_meta_data->>'role' = 'customer'""") == len(tile["profiles"]) * COPIES
        assert _one(connection, """
            SELECT count(*) FROM mechanics m JOIN auth.users u ON u.id = m.user_id
            JOIN profiles p ON p.id = u.id
            WHERE u.email = lower(m.email) AND p.role = 'mechanic'""") == (
            len(tile["mechanics"]) * COPIES
        )
        # The identity holds the user's id as text and in its JSON, rewritten per copy.
        assert _one(connection, """
            SELECT count(*) FROM auth.identities i JOIN auth.users u ON u.id = i.user_id
            WHERE i.provider = 'email' AND i.provider_id = u.id::text
              AND i.identity_data->>'sub' = u.id::text AND i.email = u.email""") == (
            people * COPIES
        )
        # The scenario's profile is written over the trigger's bare one, in every copy.
        assert _one(connection, """
            SELECT count(*) FROM profiles WHERE role = 'customer'
              AND (full_name IS NULL OR city IS NULL OR NOT is_18_plus)""") == 0
        # Every row pointing at a person points at a customer's or mechanic's auth user.
        assert _one(connection, """
            SELECT count(*) FROM vehicles v LEFT JOIN profiles p ON p.id = v.user_id
            WHERE p.role IS DISTINCT FROM 'customer'""") == 0
        assert _one(connection, """
            SELECT count(*) FROM session_requests r LEFT JOIN profiles p ON p.id = r.customer_id
            WHERE p.role IS DISTINCT FROM 'customer'""") == 0
        assert _one(connection, """
            SELECT count(*) FROM sessions s LEFT JOIN profiles p ON p.id = s.customer_user_id
            WHERE p.role IS DISTINCT FROM 'customer'""") == 0
        # The mechanic queue (app-schema.md §5): broadcast assignments of waiting sessions.
        assert _one(connection, """
            SELECT count(*) FROM session_assignments a JOIN sessions s ON s.id = a.session_id
            WHERE a.mechanic_id IS NULL AND a.status = 'queued'
              AND s.status IN ('pending', 'waiting') AND s.ended_at IS NULL""") == 2 * COPIES
        # A customer and a mechanic of each copy sign in; a wrong password does not.
        sample = connection.execute("""
            SELECT DISTINCT ON (left(u.id::text, 4), p.role) u.email, u.id::text
            FROM auth.users u JOIN profiles p ON p.id = u.id
            ORDER BY left(u.id::text, 4), p.role, u.email""").fetchall()
        assert len(sample) == 2 * COPIES
        for email, user_id in sample:
            assert sign_in_check(connection, email, PASSWORD) == user_id, email
        assert sign_in_check(connection, sample[0][0], "not-the-password") is None
    # The keys into auth were never dropped (same oids); the others came back the same.
    keys_after = _keys(url)
    assert [k[1:] for k in keys_after] == [k[1:] for k in keys_before]
    assert {k for k in keys_after if "REFERENCES auth." in k[3]} == {
        k for k in keys_before if "REFERENCES auth." in k[3]
    }
    assert reset_database(url).outcome == "deleted"
    assert snapshot(url) == before


def test_a_bulk_reset_sets_aside_the_key_of_the_app_s_analytics_rows(app_db_live: str) -> None:
    """The analytics rows' key to sessions (no index on it) is set aside and put back.

    Left in place, deleting a session looks for its analytics rows by a scan of their table,
    each: at scale 10 the reset did not end in 20 minutes (9 s with the key set aside).
    """
    before = snapshot(app_db_live)
    result = run_scenario("load", database_url=app_db_live, scale=0.05, user_password=PASSWORD)
    assert sum(result.counts.values()) + sum(result.app_made.values()) >= 10_000  # a bulk reset
    keys = {k[2]: k for k in _keys(app_db_live)}
    done = reset_database(app_db_live)
    assert done.deleted["session_analytics"] == result.app_made["session_analytics"]
    after = {k[2]: k for k in _keys(app_db_live)}
    analytics = "session_analytics_session_id_fkey"
    assert after[analytics][1:] == keys[analytics][1:]  # the same key, table and definition
    assert after[analytics][0] != keys[analytics][0]  # dropped and added back
    assert {name: k[1:] for name, k in after.items()} == {name: k[1:] for name, k in keys.items()}
    assert snapshot(app_db_live) == before


def test_a_bulk_delete_keeps_the_keys_into_auth_and_never_locks_auth_users(
    app_db_live: str,
) -> None:
    """Sign-ins go on while a big run is deleted: no exclusive lock on auth.users.

    Dropping a key into ``auth.users`` (as the bulk delete once did with every key) locks that
    table against every reader until the delete commits. The keys into auth stay, and the
    columns of those the app left without an index (``sessions.customer_user_id``) are indexed
    for the delete alone, inside its transaction: without them, each deleted user scanned
    each such table (a reset of load at scale 1 took 255 s instead of 3 s).
    """
    before = snapshot(app_db_live)
    result = run_scenario("load", database_url=app_db_live, scale=0.05, user_password=PASSWORD)
    assert sum(result.counts.values()) >= 10_000  # a bulk delete
    keys = _keys(app_db_live)
    with psycopg.connect(app_db_live) as connection:
        indexes = connection.execute("SELECT indexrelid::int FROM pg_index ORDER BY 1").fetchall()
    engine = database.engine_for(app_db_live)
    try:
        with engine.begin() as connection:
            deleted = ledger.delete_runs(connection, [result.run_id])
            assert deleted["auth.users"] == result.counts["auth.users"]
            locks = connection.execute(sa.text(
                "SELECT mode FROM pg_locks WHERE pid = pg_backend_pid() AND granted "
                "AND relation = 'auth.users'::regclass"
            )).scalars().all()
            assert "AccessExclusiveLock" not in locks and "RowExclusiveLock" in locks
            # Every key into auth is there, the same constraint (its oid too: never dropped).
            in_auth = {k for k in keys if "REFERENCES auth." in k[3] or k[1].startswith("auth.")}
            assert in_auth and in_auth <= set(_key_rows(connection.execute(sa.text(KEYS_SQL))))
            left = connection.execute(sa.text(
                "SELECT count(*) FROM pg_class WHERE relname LIKE 'seeding_reset_%'"
            )).scalar_one()
            assert left == 0  # the delete's own indexes are gone before it ends
    finally:
        engine.dispose()
    after = _keys(app_db_live)
    assert [k[1:] for k in after] == [k[1:] for k in keys]  # the same keys, by definition
    into_auth = [k for k in keys if "REFERENCES auth." in k[3] or k[1].startswith("auth.")]
    assert into_auth and set(into_auth) <= set(after)  # those into auth: never dropped
    with psycopg.connect(app_db_live) as connection:
        assert connection.execute(
            "SELECT indexrelid::int FROM pg_index ORDER BY 1").fetchall() == indexes
    assert snapshot(app_db_live) == before


def test_a_rerun_replaces_the_copies_and_their_auth_users(app_db_live: str, queue_tile: str
                                                          ) -> None:
    first = run_scenario(queue_tile, database_url=app_db_live, scale=SCALE,
                         user_password=PASSWORD)
    again = run_scenario(queue_tile, database_url=app_db_live, scale=SCALE,
                         user_password=PASSWORD)
    assert again.replaced["auth.users"] == first.counts["auth.users"]
    assert again.replaced["session_analytics"] == first.app_made["session_analytics"]
    with psycopg.connect(app_db_live) as connection:
        assert _one(connection, "SELECT count(*) FROM auth.users") == again.counts["auth.users"]
        assert _one(connection, "SELECT count(*) FROM seeding.runs") == 1


def _people(url: str) -> list[tuple[str, ...]]:
    with psycopg.connect(url) as connection:
        return [tuple(map(str, row)) for row in connection.execute("""
            SELECT u.id, u.email, i.provider_id, p.role, p.full_name
            FROM auth.users u JOIN auth.identities i ON i.user_id = u.id
            JOIN profiles p ON p.id = u.id ORDER BY u.id""")]


def test_shards_on_the_app_s_database_add_up_to_the_whole_run(
    make_database: Callable[[], str], queue_tile: str
) -> None:
    from app_shape import create_app_shape

    whole, sharded = make_database(), make_database()
    for url in (whole, sharded):
        create_app_shape(url, live=True)
    run_scenario(queue_tile, database_url=whole, scale=0.3, user_password=PASSWORD)
    for shard in ("2/2", "1/2"):
        run_scenario(queue_tile, database_url=sharded, scale=0.3, shard=shard,
                     user_password=PASSWORD)
    assert _people(sharded) == _people(whole)
    assert len(_people(whole)) == 3 * 11


def test_without_the_transaction_s_statistics_the_app_s_rows_are_still_recorded(
    app_db_live: str, queue_tile: str
) -> None:
    with psycopg.connect(app_db_live, autocommit=True) as connection:
        connection.execute(
            sql.SQL("ALTER DATABASE {} SET track_counts = off").format(
                sql.Identifier(str(connection.info.dbname)))
        )
    result = run_scenario(queue_tile, database_url=app_db_live, scale=0.2,
                          user_password=PASSWORD)
    assert result.app_made["profiles"] == result.counts["mechanics"]
    assert result.app_made["session_analytics"] > 0


def test_a_row_that_breaks_a_key_is_refused_and_nothing_is_written(
    app_db_live: str, queue_tile: str
) -> None:
    """A key left in place but unchecked row by row is checked after the COPY."""
    with psycopg.connect(app_db_live) as connection:
        # An app key the tool does not know of, on a table written with row checks off.
        connection.execute(
            "ALTER TABLE session_requests ADD CONSTRAINT session_requests_city_fkey "
            "FOREIGN KEY (customer_city) REFERENCES organizations (slug)"
        )
    keys = _keys(app_db_live)
    before = snapshot(app_db_live)
    with pytest.raises(DatabaseError, match="breaks its foreign key session_requests_city_fkey"):
        run_scenario(queue_tile, database_url=app_db_live, scale=0.2, user_password=PASSWORD)
    assert snapshot(app_db_live) == before
    assert _keys(app_db_live) == keys


#: A role that owns the app's tables but may not set session_replication_role, as on a
#: hosted database where the tool's role is no superuser.
OWNER = "seeding_test_app_owner"


@pytest.fixture
def as_owner(app_db_live: str) -> Iterator[str]:
    """The live-shaped database, reached as a role that owns it and is no superuser."""
    with psycopg.connect(app_db_live, autocommit=True) as connection:
        try:
            connection.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER").format(
                sql.Identifier(OWNER)))
        except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
            pass  # made by an earlier test, or another session at the same time
        owner = sql.Identifier(OWNER)
        connection.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
            sql.Identifier(str(connection.info.dbname)), owner))
        for schema in ("public", "auth"):
            connection.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(
                sql.Identifier(schema), owner))
        tables = connection.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN ('public', 'auth')"
        ).fetchall()
        for schema, table in tables:
            connection.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(
                sql.Identifier(schema, table), owner))
    parts = psycopg.conninfo.conninfo_to_dict(app_db_live)
    parts["user"] = OWNER
    yield psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in parts.items()})
    with psycopg.connect(app_db_live, autocommit=True) as connection:
        connection.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(owner))
        try:
            connection.execute(sql.SQL("DROP ROLE {}").format(owner))
        except psycopg.errors.DependentObjectsStillExist:
            pass  # it owns a database of a test running at the same time, which drops it


def test_a_role_that_may_not_turn_the_checks_off_writes_with_them(
    as_owner: str, app_db_live: str, queue_tile: str
) -> None:
    with psycopg.connect(as_owner) as connection:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute("SET session_replication_role = replica")
    keys = _keys(as_owner)
    result = run_scenario(queue_tile, database_url=as_owner, scale=0.2, user_password=PASSWORD,
                          allow_remote=True)
    assert result.app_made["profiles"] == result.counts["mechanics"]
    assert [k[1:] for k in _keys(as_owner)] == [k[1:] for k in keys]
    with psycopg.connect(app_db_live) as connection:  # crypt() is the API roles' and ours
        assert _one(connection, "SELECT count(*) FROM auth.users") == result.counts["auth.users"]
        email = _one(connection, "SELECT email FROM auth.users ORDER BY email LIMIT 1")
        assert sign_in_check(connection, email, PASSWORD) is not None


def test_a_unique_value_every_copy_would_repeat_is_named(app_db_live: str,
                                                        queue_tile: str) -> None:
    with psycopg.connect(app_db_live) as connection:
        connection.execute(
            "ALTER TABLE mechanics ADD CONSTRAINT mechanics_name_key UNIQUE (name)"
        )
    before = snapshot(app_db_live)
    with pytest.raises(SchemaMismatchError, match=r"mechanics\.name: .* mechanics_name_key"):
        run_scenario(queue_tile, database_url=app_db_live, scale=SCALE, user_password=PASSWORD)
    assert snapshot(app_db_live) == before
    # One copy per variant repeats nothing.
    result = run_scenario(queue_tile, database_url=app_db_live, scale=0.3,
                          user_password=PASSWORD)
    assert result.counts["mechanics"] == 3 * 4


def test_the_cli_prints_the_auth_users_and_the_app_s_rows(app_db_live: str,
                                                         queue_tile: str) -> None:
    from typer.testing import CliRunner

    from seeding.cli import app

    result = CliRunner().invoke(app, [
        "scenario", queue_tile, "--db", app_db_live, "--scale", "0.2",
        "--user-password", PASSWORD,
    ])
    assert result.exit_code == 0, result.output
    assert "auth.users" in result.output
    assert "rows/s" in result.output
    assert "made by the app's triggers, recorded with the run: profiles 8" in result.output
    assert PASSWORD not in result.output


def test_the_tool_s_own_schema_has_no_auth_users(pg_url: str, queue_tile: str) -> None:
    result = run_scenario(queue_tile, database_url=pg_url, scale=0.2)
    assert "auth.users" not in result.counts
    assert result.app_made == {}
    engine = database.engine_for(pg_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT to_regclass('auth.users')")).scalar() is None
    finally:
        engine.dispose()


def _xor(value: uuid.UUID, mask: bytes) -> uuid.UUID:
    zeroed = bytes(2) + value.bytes[2:]
    return uuid.UUID(bytes=bytes(a ^ b for a, b in zip(zeroed, mask, strict=True)))


def test_ids_in_texts_and_json_follow_the_copy(
    make_database: Callable[[], str],
) -> None:
    """An id's hex, plain or dashed, in a text or JSON, is rewritten with the id per copy.

    So is the hex of an id the row does not hold (given as context), and a kept column is not.
    """
    url = make_database()
    person, row, constant = uuid.uuid4(), uuid.uuid4(), uuid.UUID(int=0)
    values = (
        person, constant,
        f"x.{row.hex[:10]}@example.com",  # a mechanic's email: their row's id, not the user's
        str(person),  # a provider_id
        {"sub": str(person), "email": f"x.{row.hex[:10]}@example.com"},
        f"kept {person.hex}",
    )
    engine = database.engine_for(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(
                "CREATE TABLE t (id uuid, instance uuid, email text, provider_id text, "
                "data jsonb, note text)"))
            encoder = tiles.Encoder(connection)
            encoded = encoder.encode(
                "t", [values], [2950, 2950, 25, 25, 3802, 25],
                keep=frozenset({1, 5}), context=[[row]],
            )
            masks = [tiles.copy_mask(5, copy) for copy in range(3)]
            driver = connection.connection.driver_connection
            assert driver is not None
            with driver.cursor().copy("COPY t FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(tiles.SIGNATURE)
                for mask in masks:
                    copy.write(encoded.copy(mask))
                copy.write(tiles.TRAILER)
            found = connection.execute(sa.text("SELECT * FROM t")).all()
    finally:
        engine.dispose()
    expected = []
    for mask in masks:
        user, owner = _xor(person, mask), _xor(row, mask)
        email = f"x.{owner.hex[:10]}@example.com"
        expected.append((user, constant, email, str(user), {"sub": str(user), "email": email},
                         f"kept {person.hex}"))
    assert sorted(map(tuple, found), key=repr) == sorted(expected, key=repr)
    assert len({r[0] for r in found}) == 3

