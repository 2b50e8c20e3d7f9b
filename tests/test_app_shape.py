"""The app-shaped fixture database behaves like the app's real Supabase database."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, LiteralString

import psycopg
import pytest
from app_shape import AUTH_TOKEN_COLUMNS, as_user, create_app_shape, sign_in_check
from psycopg import errors, sql

Connection = psycopg.Connection[Any]


@pytest.fixture
def db(app_db: str) -> Iterator[Connection]:
    with psycopg.connect(app_db, autocommit=True) as connection:
        yield connection


@pytest.fixture
def live_db(app_db_live: str) -> Iterator[Connection]:
    with psycopg.connect(app_db_live, autocommit=True) as connection:
        yield connection


def add_auth_user(
    connection: Connection,
    email: str,
    password: str = "Password123!",
    *,
    metadata: dict[str, Any] | None = None,
) -> uuid.UUID:
    """Insert a user the way domain.md's sign-in recipe does; return the id."""
    user_id = uuid.uuid4()
    connection.execute(
        """
        INSERT INTO auth.users (
            instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
            raw_app_meta_data, raw_user_meta_data, created_at, updated_at,
            confirmation_token, recovery_token, email_change_token_new, email_change)
        VALUES (
            '00000000-0000-0000-0000-000000000000', %(id)s, 'authenticated', 'authenticated',
            %(email)s, extensions.crypt(%(password)s, extensions.gen_salt('bf')), now(),
            '{"provider": "email", "providers": ["email"]}', %(metadata)s, now(), now(),
            '', '', '', '')
        """,
        {
            "id": user_id,
            "email": email,
            "password": password,
            "metadata": json.dumps(metadata or {}),
        },
    )
    connection.execute(
        """
        INSERT INTO auth.identities (provider_id, user_id, identity_data, provider,
                                     last_sign_in_at, created_at, updated_at)
        VALUES (%(id)s::text, %(id)s, %(data)s, 'email', now(), now(), now())
        """,
        {"id": user_id, "data": json.dumps({"sub": str(user_id), "email": email})},
    )
    return user_id


def add_session(
    connection: Connection, customer: uuid.UUID, status: str, **columns: Any
) -> uuid.UUID:
    values = {
        "type": "chat",
        "plan": "chat10",
        "stripe_session_id": f"cs_test_{uuid.uuid4().hex}",
        "customer_user_id": customer,
        "status": status,
        **columns,
    }
    query = sql.SQL("INSERT INTO public.sessions ({}) VALUES ({}) RETURNING id").format(
        sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(map(sql.Placeholder, values)),
    )
    row = connection.execute(query, values).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def one(connection: Connection, query: LiteralString, params: Any = None) -> Any:
    row = connection.execute(query, params).fetchone()
    assert row is not None
    return row[0]


# --- auth.users and the profile trigger ----------------------------------------------------


def test_auth_user_gets_a_profile_with_the_metadata_role_and_its_email(db: Connection) -> None:
    mechanic = add_auth_user(db, "Mech@Example.com", metadata={"role": "mechanic"})
    customer = add_auth_user(db, "cust@example.com", metadata={"full_name": "Ann Smith"})

    rows = db.execute(
        "SELECT id, role, email, email_verified, full_name FROM public.profiles ORDER BY role"
    ).fetchall()

    assert rows == [
        (customer, "customer", "cust@example.com", True, None),  # no other key is read
        (mechanic, "mechanic", "Mech@Example.com", True, None),
    ]


def test_profile_email_follows_the_auth_email(db: Connection) -> None:
    user = add_auth_user(db, "old@example.com")
    db.execute("UPDATE auth.users SET email = 'new@example.com' WHERE id = %s", [user])
    assert one(db, "SELECT email FROM public.profiles WHERE id = %s", [user]) == "new@example.com"


def test_a_plain_insert_into_profiles_fails_on_the_key(db: Connection) -> None:
    user = add_auth_user(db, "cust@example.com")
    with pytest.raises(errors.UniqueViolation) as caught:
        db.execute("INSERT INTO public.profiles (id, full_name) VALUES (%s, 'Ann')", [user])
    assert caught.value.diag.constraint_name == "profiles_pkey"


def test_profiles_without_an_auth_user_are_refused(db: Connection) -> None:
    with pytest.raises(errors.ForeignKeyViolation) as caught:
        db.execute("INSERT INTO public.profiles (id) VALUES (%s)", [uuid.uuid4()])
    assert caught.value.diag.constraint_name == "profiles_id_fkey"


def test_deleting_the_auth_user_cascades_to_the_profile(db: Connection) -> None:
    user = add_auth_user(db, "cust@example.com")
    db.execute("DELETE FROM auth.users WHERE id = %s", [user])
    assert one(db, "SELECT count(*) FROM public.profiles") == 0


# --- mechanics ------------------------------------------------------------------------


def test_a_participation_mode_outside_the_check_is_refused(db: Connection) -> None:
    with pytest.raises(errors.CheckViolation) as caught:
        db.execute(
            "INSERT INTO public.mechanics (name, participation_mode) VALUES ('A', 'virtual_only')"
        )
    assert caught.value.diag.constraint_name == "mechanics_participation_mode_check"
    db.execute("INSERT INTO public.mechanics (name, participation_mode) VALUES ('B', 'both')")


@pytest.mark.parametrize(
    ("score", "written", "expected"),
    [(80, False, True), (79, True, False), (None, True, False), (100, None, True)],
)
def test_can_accept_sessions_follows_the_score(
    db: Connection, score: int | None, written: bool | None, expected: bool
) -> None:
    mechanic = one(
        db,
        "INSERT INTO public.mechanics (profile_completion_score, can_accept_sessions) "
        "VALUES (%s, %s) RETURNING id",
        [score, written],
    )
    assert one(db, "SELECT can_accept_sessions FROM public.mechanics WHERE id = %s",
               [mechanic]) is expected
    db.execute("UPDATE public.mechanics SET profile_completion_score = 85 WHERE id = %s",
               [mechanic])
    assert one(db, "SELECT can_accept_sessions FROM public.mechanics WHERE id = %s",
               [mechanic]) is True


def test_a_workshop_creator_joining_their_workshop_becomes_its_owner(db: Connection) -> None:
    owner = add_auth_user(db, "owner@example.com", metadata={"role": "mechanic"})
    shop = one(
        db,
        "INSERT INTO public.organizations (organization_type, name, slug, email, created_by) "
        "VALUES ('workshop', 'Elite', 'elite', 'shop@example.com', %s) RETURNING id",
        [owner],
    )
    db.execute("INSERT INTO public.mechanics (user_id, workshop_id) VALUES (%s, %s)",
               [owner, shop])
    assert db.execute(
        "SELECT organization_id, user_id, role, status FROM public.organization_members"
    ).fetchall() == [(shop, owner, "owner", "active")]


def test_any_update_of_an_invited_mechanic_without_a_workshop_fails(db: Connection) -> None:
    shop = one(
        db,
        "INSERT INTO public.organizations (organization_type, name, slug, email) "
        "VALUES ('workshop', 'Elite', 'elite', 'shop@example.com') RETURNING id",
    )
    mechanic = one(
        db,
        "INSERT INTO public.mechanics (invited_by, invite_accepted_at) VALUES (%s, now()) "
        "RETURNING id",
        [shop],
    )
    with pytest.raises(errors.CheckViolation) as caught:
        db.execute("UPDATE public.mechanics SET name = 'X' WHERE id = %s", [mechanic])
    assert caught.value.diag.constraint_name == "mechanics_account_type_check"


# --- session_requests and sessions ----------------------------------------------------


def test_a_request_status_outside_the_enum_is_refused(db: Connection) -> None:
    customer = add_auth_user(db, "cust@example.com")
    insert = (
        "INSERT INTO public.session_requests (customer_id, session_type, plan_code, status) "
        "VALUES (%s, 'chat', 'chat10', %s)"
    )
    with pytest.raises(errors.InvalidTextRepresentation, match="session_request_status"):
        db.execute(insert, [customer, "completed"])
    db.execute(insert, [customer, "cancelled"])


def test_the_live_shape_takes_a_completed_request_and_has_31_columns(live_db: Connection) -> None:
    customer = add_auth_user(live_db, "cust@example.com")
    live_db.execute(
        "INSERT INTO public.session_requests (customer_id, session_type, status) "
        "VALUES (%s, 'chat', 'completed')",
        [customer],
    )
    assert one(
        live_db,
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = 'session_requests'",
    ) == 31


def test_a_request_for_an_unknown_customer_is_refused_by_the_auth_users_key(
    db: Connection,
) -> None:
    with pytest.raises(errors.ForeignKeyViolation) as caught:
        db.execute(
            "INSERT INTO public.session_requests (customer_id, session_type, plan_code) "
            "VALUES (%s, 'chat', 'chat10')",
            [uuid.uuid4()],
        )
    assert caught.value.diag.constraint_name == "session_requests_customer_id_fkey"
    assert one(
        db,
        "SELECT confrelid::regclass::text FROM pg_constraint "
        "WHERE conname = 'session_requests_customer_id_fkey'",
    ) == "auth.users"


def test_a_second_open_session_for_one_customer_is_refused(db: Connection) -> None:
    customer = add_auth_user(db, "cust@example.com")
    add_session(db, customer, "waiting")
    add_session(db, customer, "completed")
    add_session(db, customer, "cancelled")
    with pytest.raises(errors.UniqueViolation) as caught:
        add_session(db, customer, "scheduled")
    assert caught.value.diag.constraint_name == "sessions_one_open_per_customer_idx"


def test_a_completed_session_gets_an_analytics_row_that_goes_with_it(db: Connection) -> None:
    customer = add_auth_user(db, "cust@example.com")
    session = add_session(db, customer, "completed", type="video", plan="video15",
                          metadata='{"routing_type": "priority_broadcast"}')
    assert db.execute(
        "SELECT session_id, type, status, plan, customer_user_id, metadata "
        "FROM public.session_analytics"
    ).fetchall() == [
        (session, "video", "completed", "video15", customer,
         {"routing_type": "priority_broadcast"}),
    ]

    db.execute("DELETE FROM public.sessions WHERE id = %s", [session])
    assert one(db, "SELECT count(*) FROM public.session_analytics") == 0


def test_a_session_completed_by_update_gets_one_analytics_row(db: Connection) -> None:
    customer = add_auth_user(db, "cust@example.com")
    session = add_session(db, customer, "live")
    db.execute("UPDATE public.sessions SET status = 'completed' WHERE id = %s", [session])
    db.execute("UPDATE public.sessions SET status = 'completed' WHERE id = %s", [session])
    assert one(db, "SELECT count(*) FROM public.session_analytics") == 1


def test_cancelling_a_session_fills_its_times(db: Connection) -> None:
    customer = add_auth_user(db, "cust@example.com")
    session = add_session(db, customer, "pending")
    db.execute("UPDATE public.sessions SET status = 'cancelled' WHERE id = %s", [session])
    assert db.execute(
        "SELECT cancelled_at IS NOT NULL, ended_at IS NOT NULL FROM public.sessions"
    ).fetchone() == (True, True)


@pytest.mark.parametrize(("live", "target"), [(False, "auth.users"), (True, "mechanics")])
def test_sessions_mechanic_id_references_the_shapes_table(
    make_database: Callable[[], str], live: bool, target: str
) -> None:
    url = make_database()
    create_app_shape(url, live=live)
    with psycopg.connect(url) as connection:
        assert one(
            connection,
            "SELECT confrelid::regclass::text FROM pg_constraint "
            "WHERE conname = 'sessions_mechanic_id_fkey'",
        ) == target


def test_assigning_a_mechanic_copies_their_workshop(db: Connection) -> None:
    customer = add_auth_user(db, "cust@example.com")
    shop = one(
        db,
        "INSERT INTO public.organizations (organization_type, name, slug, email) "
        "VALUES ('workshop', 'Elite', 'elite', 'shop@example.com') RETURNING id",
    )
    mechanic = one(db, "INSERT INTO public.mechanics (workshop_id) VALUES (%s) RETURNING id",
                   [shop])
    session = add_session(db, customer, "pending")
    request = one(
        db,
        "INSERT INTO public.session_requests (customer_id, session_type, plan_code) "
        "VALUES (%s, 'chat', 'chat10') RETURNING id",
        [customer],
    )
    db.execute("UPDATE public.session_requests SET mechanic_id = %s WHERE id = %s",
               [mechanic, request])
    assert one(db, "SELECT workshop_id FROM public.session_requests") == shop
    assert one(db, "SELECT workshop_id FROM public.sessions WHERE id = %s", [session]) == shop


def test_one_primary_vehicle_per_user(db: Connection) -> None:
    owner = add_auth_user(db, "cust@example.com")
    insert = (
        "INSERT INTO public.vehicles (user_id, make, model, year, is_primary) "
        "VALUES (%s, 'Honda', 'Civic', '2019', true) RETURNING id"
    )
    one(db, insert, [owner])
    second = one(db, insert, [owner])
    assert db.execute("SELECT id FROM public.vehicles WHERE is_primary").fetchall() == [
        (second,)
    ]


# --- sign-in --------------------------------------------------------------------------


def test_a_hand_made_user_passes_the_sign_in_check(db: Connection) -> None:
    user = add_auth_user(db, "Cust@Example.com", "s3cret-pass")
    assert sign_in_check(db, "cust@example.com", "s3cret-pass") == str(user)
    assert one(db, "SELECT length(encrypted_password) FROM auth.users") == 60


def test_crypt_and_gen_salt_are_on_the_search_path_and_hash_like_bcrypt(app_db: str) -> None:
    # A new connection: the database's search path reaches schema extensions, as on Supabase.
    with psycopg.connect(app_db) as connection:
        hashed = one(connection, "SELECT crypt('pw', gen_salt('bf'))")
        assert re.fullmatch(r"\$2a\$06\$[./A-Za-z0-9]{53}", hashed)
        assert one(connection, "SELECT crypt('pw', %s) = %s", [hashed, hashed]) is True
        assert one(connection, "SELECT crypt('pX', %s) = %s", [hashed, hashed]) is False


def test_a_wrong_password_fails_the_sign_in_check(db: Connection) -> None:
    add_auth_user(db, "cust@example.com", "s3cret-pass")
    assert sign_in_check(db, "cust@example.com", "wrong-pass") is None
    assert sign_in_check(db, "nobody@example.com", "s3cret-pass") is None


@pytest.mark.parametrize("column", AUTH_TOKEN_COLUMNS)
def test_a_null_token_fails_the_sign_in_check(db: Connection, column: str) -> None:
    user = add_auth_user(db, "cust@example.com", "s3cret-pass")
    db.execute(
        sql.SQL("UPDATE auth.users SET {} = NULL WHERE id = %s").format(sql.Identifier(column)),
        [user],
    )
    assert sign_in_check(db, "cust@example.com", "s3cret-pass") is None


@pytest.mark.parametrize(
    "breakage",
    [
        "UPDATE auth.users SET email_confirmed_at = NULL",
        "UPDATE auth.users SET instance_id = NULL",
        "UPDATE auth.users SET aud = 'anon'",
        "UPDATE auth.users SET banned_until = now() + interval '1 day'",
        "DELETE FROM auth.identities",
        "UPDATE auth.identities SET provider_id = 'cust@example.com'",
    ],
)
def test_what_else_the_auth_server_checks_fails_the_sign_in_check(
    db: Connection, breakage: str
) -> None:
    add_auth_user(db, "cust@example.com", "s3cret-pass")
    db.execute(breakage.encode())
    assert sign_in_check(db, "cust@example.com", "s3cret-pass") is None


def test_a_duplicate_email_is_refused(db: Connection) -> None:
    add_auth_user(db, "cust@example.com")
    with pytest.raises(errors.UniqueViolation) as caught:
        add_auth_user(db, "cust@example.com")
    assert caught.value.diag.constraint_name == "users_email_partial_key"


def test_random_tokens_must_be_unique_but_empty_ones_may_repeat(db: Connection) -> None:
    first = add_auth_user(db, "a@example.com")
    second = add_auth_user(db, "b@example.com")
    db.execute("UPDATE auth.users SET recovery_token = 'abc' WHERE id = %s", [first])
    with pytest.raises(errors.UniqueViolation):
        db.execute("UPDATE auth.users SET recovery_token = 'abc' WHERE id = %s", [second])


# --- signed-in users (RLS) -----------------------------------------------------------


def test_a_signed_in_customer_sees_only_their_own_vehicles_and_profile(db: Connection) -> None:
    ann = add_auth_user(db, "ann@example.com")
    bob = add_auth_user(db, "bob@example.com")
    for owner, make in [(ann, "Honda"), (bob, "Ford"), (bob, "Kia")]:
        db.execute(
            "INSERT INTO public.vehicles (user_id, make, model, year) VALUES (%s, %s, 'X', '2020')",
            [owner, make],
        )

    with as_user(db, ann):
        assert one(db, "SELECT auth.uid()") == ann
        assert one(db, "SELECT current_user") == "authenticated"
        assert db.execute("SELECT make FROM public.vehicles").fetchall() == [("Honda",)]
        assert db.execute("SELECT id FROM public.profiles").fetchall() == [(ann,)]
        updated = db.execute(
            "UPDATE public.vehicles SET color = 'red' WHERE make = 'Ford'"
        ).rowcount
        assert updated == 0
    assert one(db, "SELECT current_user") == "postgres"
    assert one(db, "SELECT count(*) FROM public.vehicles") == 3


def test_a_signed_in_user_cannot_write_a_vehicle_for_someone_else(db: Connection) -> None:
    ann = add_auth_user(db, "ann@example.com")
    bob = add_auth_user(db, "bob@example.com")
    with pytest.raises(errors.InsufficientPrivilege), as_user(db, ann):
        db.execute(
            "INSERT INTO public.vehicles (user_id, make, model, year) "
            "VALUES (%s, 'Ford', 'F-150', '2021')",
            [bob],
        )


def test_signed_in_users_read_no_sessions_and_cannot_read_auth_users(db: Connection) -> None:
    customer = add_auth_user(db, "cust@example.com")
    add_session(db, customer, "pending")
    with as_user(db, customer):
        assert one(db, "SELECT count(*) FROM public.sessions") == 0
    with pytest.raises(errors.InsufficientPrivilege), as_user(db, customer):
        db.execute("SELECT count(*) FROM auth.users")


def test_only_a_mechanic_who_may_accept_sees_pending_requests(db: Connection) -> None:
    customer = add_auth_user(db, "cust@example.com")
    ready = add_auth_user(db, "ready@example.com", metadata={"role": "mechanic"})
    new = add_auth_user(db, "new@example.com", metadata={"role": "mechanic"})
    db.execute(
        "INSERT INTO public.mechanics (user_id, profile_completion_score) "
        "VALUES (%s, 90), (%s, 40)",
        [ready, new],
    )
    for status in ("pending", "cancelled"):
        db.execute(
            "INSERT INTO public.session_requests (customer_id, session_type, plan_code, status)"
            " VALUES (%s, 'chat', 'chat10', %s)",
            [customer, status],
        )

    with as_user(db, ready):
        assert db.execute("SELECT status::text FROM public.session_requests").fetchall() == [
            ("pending",)
        ]
        assert one(db, "SELECT count(*) FROM public.mechanics") == 2
    with as_user(db, new):
        assert one(db, "SELECT count(*) FROM public.session_requests") == 0
    with as_user(db, customer):
        assert one(db, "SELECT count(*) FROM public.session_requests") == 2
        assert one(db, "SELECT count(*) FROM public.session_assignments") == 0


def test_the_service_role_reads_every_session(db: Connection) -> None:
    customer = add_auth_user(db, "cust@example.com")
    add_session(db, customer, "pending")
    with db.transaction():
        db.execute("SET LOCAL ROLE service_role")
        assert one(db, "SELECT count(*) FROM public.sessions") == 1


# --- the fixture itself --------------------------------------------------------------


def test_two_app_databases_can_be_made_at_once(make_database: Callable[[], str]) -> None:
    urls = [make_database(), make_database()]
    failures: list[BaseException] = []

    def build(url: str) -> None:
        try:
            create_app_shape(url)
        except BaseException as error:  # reported below, from the main thread
            failures.append(error)

    threads = [threading.Thread(target=build, args=(url,)) for url in urls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
