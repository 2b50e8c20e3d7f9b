"""The schema doctor against real databases: our own schema, and one altered like the app's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from seeding import database, doctor
from seeding.doctor import Problem

CUSTOMER_FK_SQL = (
    "ALTER TABLE public.session_requests ADD CONSTRAINT session_requests_customer_id_fkey "
    "FOREIGN KEY (customer_id) REFERENCES public.profiles(id) NOT VALID;"
)
CUSTOMER_FK = Problem(
    table="session_requests",
    column="customer_id",
    kind="missing_foreign_key",
    message=(
        "session_requests.customer_id: no foreign key to profiles(id), so PostgREST embedded "
        "joins (profiles!session_requests_customer_id_fkey) fail with PGRST200; fix: add it "
        "NOT VALID with the fix SQL (existing orphan rows do not block it)"
    ),
    fix_sql=CUSTOMER_FK_SQL,
)

# Like the app's staging database: its older vocabularies, a few columns the tool does not
# know, one of ours missing or of another type, no vehicles table.
APP_LIKE_CHANGES = """
ALTER TABLE session_requests
    DROP CONSTRAINT session_requests_status_check,
    ADD CONSTRAINT session_requests_status_check
        CHECK (status IN ('pending', 'accepted', 'cancelled', 'expired')),
    DROP CONSTRAINT session_requests_routing_type_check,
    ADD CONSTRAINT session_requests_routing_type_check
        CHECK (routing_type IN ('workshop_only', 'broadcast', 'hybrid')),
    ALTER COLUMN matching_score TYPE json,
    ALTER COLUMN customer_name TYPE varchar(200),
    ALTER COLUMN accepted_at TYPE timestamp without time zone;
ALTER TABLE profiles
    ADD COLUMN stripe_customer_id text NOT NULL,
    ADD COLUMN referral_code text NOT NULL DEFAULT 'none',
    ADD COLUMN serial_number bigint GENERATED ALWAYS AS IDENTITY,
    ADD COLUMN nickname text;
ALTER TABLE mechanics
    DROP COLUMN about_me,
    ALTER COLUMN years_of_experience TYPE text USING years_of_experience::text,
    ALTER COLUMN specialist_tier TYPE varchar(20);
DROP TABLE vehicles CASCADE;
"""


def run_sql(engine: sa.Engine, statements: str) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(statements)


def diagnose(engine: sa.Engine) -> list[Problem]:
    with engine.connect() as connection:
        return doctor.diagnose(connection)


@pytest.fixture
def bare_engine(new_database: str) -> Iterator[sa.Engine]:
    """An engine on a fresh database without the app's tables."""
    engine = database.engine_for(new_database)
    yield engine
    engine.dispose()


def test_our_own_schema_lacks_only_the_customer_foreign_key(engine: sa.Engine) -> None:
    assert diagnose(engine) == [CUSTOMER_FK]


def test_an_empty_database_lacks_every_table(bare_engine: sa.Engine) -> None:
    problems = diagnose(bare_engine)
    assert [(p.kind, p.table) for p in problems] == [
        ("missing_table", "organizations"),
        ("missing_table", "vehicles"),
        ("missing_table", "mechanics"),
        ("missing_table", "profiles"),
        ("missing_table", "sessions"),
        ("missing_table", "session_requests"),
    ]
    assert problems[0].message == (
        "organizations: table missing from schema public; the tool writes it; fix: run "
        "`seed db create`, which creates the missing tables and leaves the others as they are"
    )


def test_an_app_like_schema_reports_each_difference(engine: sa.Engine) -> None:
    run_sql(engine, APP_LIKE_CHANGES)

    problems = diagnose(engine)

    assert [(p.kind, p.table, p.column) for p in problems] == [
        ("missing_table", "vehicles", None),
        ("type_mismatch", "mechanics", "years_of_experience"),
        ("missing_column", "mechanics", "about_me"),
        ("not_null_unfilled", "profiles", "stripe_customer_id"),
        ("check_narrower", "session_requests", "status"),
        ("type_mismatch", "session_requests", "accepted_at"),
        ("check_narrower", "session_requests", "routing_type"),
        ("missing_foreign_key", "session_requests", "customer_id"),
    ]
    by_column = {p.column: p for p in problems}
    assert by_column["about_me"].message == (
        "mechanics.about_me: column missing; the tool writes it; fix: add it with the fix SQL"
    )
    assert by_column["about_me"].fix_sql == (
        "ALTER TABLE public.mechanics ADD COLUMN IF NOT EXISTS about_me TEXT;"
    )
    assert by_column["years_of_experience"].message == (
        "mechanics.years_of_experience: type text, but the tool writes integer; fix: change "
        "the column if the app agrees (ALTER TABLE public.mechanics ALTER COLUMN "
        "years_of_experience TYPE integer USING years_of_experience::integer)"
    )
    assert by_column["years_of_experience"].fix_sql is None
    assert by_column["accepted_at"].message.startswith(
        "session_requests.accepted_at: type timestamp without time zone, "
        "but the tool writes timestamp with time zone;"
    )
    assert by_column["stripe_customer_id"].message == (
        "profiles.stripe_customer_id: NOT NULL without a default, and the tool does not write "
        "it, so every row the tool inserts into profiles would fail; fix: give it a default "
        "(ALTER TABLE public.profiles ALTER COLUMN stripe_customer_id SET DEFAULT ...) or drop "
        "NOT NULL (ALTER TABLE public.profiles ALTER COLUMN stripe_customer_id DROP NOT NULL)"
    )
    assert by_column["status"].message == (
        "session_requests.status: CHECK session_requests_status_check lacks 'completed', "
        "'unattended', which the tool may write; fix: widen the CHECK with the fix SQL"
    )
    assert by_column["status"].fix_sql == (
        "ALTER TABLE public.session_requests DROP CONSTRAINT session_requests_status_check, "
        "ADD CONSTRAINT session_requests_status_check CHECK (status IN ('accepted', "
        "'cancelled', 'expired', 'pending', 'completed', 'unattended'));"
    )
    assert "lacks 'priority_broadcast'," in by_column["routing_type"].message
    assert by_column["customer_id"] == CUSTOMER_FK


def test_the_suggested_check_and_column_fixes_are_valid_sql(engine: sa.Engine) -> None:
    run_sql(engine, APP_LIKE_CHANGES)
    fixable = [p for p in diagnose(engine) if p.fix_sql and p.kind != "missing_foreign_key"]
    assert {p.kind for p in fixable} == {"missing_column", "check_narrower"}

    run_sql(engine, "\n".join(p.fix_sql or "" for p in fixable))

    assert {p.kind for p in diagnose(engine)} == {
        "type_mismatch",
        "not_null_unfilled",
        "missing_table",
        "missing_foreign_key",
    }


def test_apply_fixes_adds_only_the_foreign_keys(engine: sa.Engine) -> None:
    run_sql(engine, APP_LIKE_CHANGES)
    before = diagnose(engine)

    with engine.begin() as connection:
        run = doctor.apply_fixes(connection, before)

    assert run == [CUSTOMER_FK_SQL]
    after = diagnose(engine)
    assert after == [p for p in before if p.kind != "missing_foreign_key"]


def test_apply_fixes_joins_the_callers_transaction(engine: sa.Engine) -> None:
    connection = engine.connect()
    transaction = connection.begin()
    assert doctor.apply_fixes(connection, diagnose(engine)) == [CUSTOMER_FK_SQL]
    transaction.rollback()
    connection.close()

    assert diagnose(engine) == [CUSTOMER_FK]


def test_a_foreign_key_counts_whatever_its_name(engine: sa.Engine) -> None:
    run_sql(
        engine,
        "ALTER TABLE session_requests ADD CONSTRAINT requests_customer FOREIGN KEY "
        "(customer_id) REFERENCES profiles(id)",
    )
    assert diagnose(engine) == []


def test_a_taken_foreign_key_name_gets_another(engine: sa.Engine) -> None:
    # On Supabase the column's original foreign key, to auth.users, may keep the usual name.
    run_sql(
        engine,
        """
        CREATE SCHEMA auth;
        CREATE TABLE auth.users (id uuid PRIMARY KEY);
        ALTER TABLE session_requests ADD CONSTRAINT session_requests_customer_id_fkey
            FOREIGN KEY (customer_id) REFERENCES auth.users(id);
        """,
    )

    [problem] = diagnose(engine)

    assert problem.kind == "missing_foreign_key"
    assert "(profiles!session_requests_customer_id_profiles_fkey) fail" in problem.message
    assert (
        "session_requests_customer_id_fkey is taken by a constraint FOREIGN KEY (customer_id) "
        "REFERENCES auth.users(id); the fix names it session_requests_customer_id_profiles_fkey"
    ) in problem.message
    with engine.begin() as connection:
        doctor.apply_fixes(connection, [problem])
    assert diagnose(engine) == []


def test_enums_lacking_labels(bare_engine: sa.Engine) -> None:
    # The app's first migrations: a two-label session_type, and status as an enum.
    run_sql(bare_engine, "CREATE TYPE session_type AS ENUM ('chat', 'video')")
    database.create_schema(bare_engine)
    run_sql(
        bare_engine,
        """
        CREATE TYPE session_request_status AS ENUM ('pending', 'accepted', 'cancelled');
        ALTER TABLE session_requests
            DROP CONSTRAINT session_requests_status_check,
            ALTER COLUMN status DROP DEFAULT,
            ALTER COLUMN status TYPE session_request_status
                USING status::session_request_status;
        """,
    )

    problems = [p for p in diagnose(bare_engine) if p.kind != "missing_foreign_key"]

    assert [(p.kind, p.table, p.column, p.message) for p in problems] == [
        (
            "check_narrower",
            "sessions",
            "type",
            "sessions.type: enum session_type lacks 'diagnostic', which the tool may write; "
            "fix: add the labels with the fix SQL",
        ),
        (
            "check_narrower",
            "session_requests",
            "session_type",
            "session_requests.session_type: enum session_type lacks 'diagnostic', which the "
            "tool may write; fix: add the labels with the fix SQL",
        ),
        (
            "check_narrower",
            "session_requests",
            "status",
            "session_requests.status: enum session_request_status lacks 'completed', "
            "'expired', 'unattended', which the tool may write; fix: add the labels with the "
            "fix SQL",
        ),
    ]
    assert (
        problems[0].fix_sql
        == "ALTER TYPE public.session_type ADD VALUE IF NOT EXISTS 'diagnostic';"
    )


def test_an_enum_column_may_be_text_with_a_check(engine: sa.Engine) -> None:
    run_sql(
        engine,
        """
        ALTER TABLE sessions ALTER COLUMN type TYPE text,
            ADD CONSTRAINT sessions_type_check CHECK (type = 'chat' OR type = 'video');
        """,
    )
    [problem, _customer_fk] = diagnose(engine)
    assert problem.message == (
        "sessions.type: CHECK sessions_type_check lacks 'diagnostic', which the tool may "
        "write; fix: widen the CHECK with the fix SQL"
    )


@pytest.mark.parametrize(
    ("definition", "allowed"),
    [
        (
            "CHECK ((status = ANY (ARRAY['pending'::text, 'accepted'::text])))",
            {"pending", "accepted"},
        ),
        (
            "CHECK (((status)::text = ANY ((ARRAY['a'::character varying, "
            "'b''c'::character varying])::text[])))",
            {"a", "b'c"},
        ),
        ("CHECK ((type = 'chat'::text) OR (type = 'video'::text))", {"chat", "video"}),
        ("CHECK ((status IS NULL) OR (status = ANY (ARRAY['x'::text])))", {"x"}),
        ("CHECK (status IN ('a', 'b'))", {"a", "b"}),
        ("CHECK ((status <> 'deleted'::text))", None),
        ("CHECK ((NOT (status = ANY (ARRAY['x'::text]))))", None),
        ("CHECK ((status ~ '^[a-z]+$'::text))", None),
        ("CHECK (((rating >= 1) AND (rating <= 5)))", None),
        ("CHECK ((char_length(name) > 0))", None),
    ],
)
def test_allowed_values(definition: str, allowed: set[str] | None) -> None:
    assert doctor.allowed_values(definition) == (None if allowed is None else frozenset(allowed))


def test_foreign_key_needs_cover_the_embedded_joins() -> None:
    needs = {(n.table, n.column, n.referred_table) for n in doctor.foreign_key_needs()}
    assert {
        ("session_requests", "customer_id", "profiles"),
        ("session_requests", "mechanic_id", "mechanics"),
        ("session_requests", "workshop_id", "organizations"),
        ("session_requests", "session_id", "sessions"),
        ("session_requests", "vehicle_id", "vehicles"),
    } <= needs


def test_missing_embedded_join_keys_are_reported(engine: sa.Engine) -> None:
    run_sql(
        engine,
        """
        ALTER TABLE session_requests
            DROP CONSTRAINT session_requests_mechanic_id_fkey,
            DROP CONSTRAINT session_requests_workshop_id_fkey,
            DROP CONSTRAINT session_requests_session_id_fkey,
            DROP CONSTRAINT session_requests_vehicle_id_fkey;
        """,
    )
    problems = diagnose(engine)
    assert [(p.column, p.fix_sql) for p in problems] == [
        (
            column,
            f"ALTER TABLE public.session_requests ADD CONSTRAINT session_requests_{column}_fkey "
            f"FOREIGN KEY ({column}) REFERENCES public.{target}(id) NOT VALID;",
        )
        for column, target in [
            ("mechanic_id", "mechanics"),
            ("session_id", "sessions"),
            ("vehicle_id", "vehicles"),
            ("workshop_id", "organizations"),
            ("customer_id", "profiles"),
        ]
    ]
    with engine.begin() as connection:
        assert len(doctor.apply_fixes(connection, problems)) == 5
    assert diagnose(engine) == []
