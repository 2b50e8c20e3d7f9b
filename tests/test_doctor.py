"""The schema doctor against real databases: our own schema, and one altered like the app's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from seeding import doctor
from seeding.db import database
from seeding.doctor import Problem
from seeding.domain import vocabularies
from seeding.domain.schema import SessionRequest
from seeding.scenario.kinds import KINDS

CUSTOMER_FK_SQL = (
    "ALTER TABLE public.session_requests ADD CONSTRAINT session_requests_customer_id_fkey "
    "FOREIGN KEY (customer_id) REFERENCES public.profiles(id) NOT VALID;"
)
#: On the tool's own schema the embedded join's key is left out on purpose: a note.
CUSTOMER_FK_NOTE = Problem(
    table="session_requests",
    column="customer_id",
    kind="missing_foreign_key",
    message=(
        "session_requests.customer_id: no foreign key to profiles(id), on purpose: the app's "
        "migrations point it at auth.users, which the tool's own schema (`seed db create`, "
        "no auth schema) lacks, so it has none; PostgREST embedded joins "
        "(profiles!session_requests_customer_id_fkey) fail with PGRST200; `--apply` leaves "
        "it: add it yourself if you embed here"
    ),
    fix_sql=CUSTOMER_FK_SQL,
    severity="note",
)

# Like the app's staging database: its older vocabularies, a few columns the tool does not
# know, one of ours missing or of another type, no vehicles table.
APP_LIKE_CHANGES = """
ALTER TABLE session_requests
    DROP CONSTRAINT session_requests_status_check,
    ADD CONSTRAINT session_requests_status_check
        CHECK (status IN ('pending', 'accepted', 'cancelled', 'expired')),
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
ALTER TABLE sessions
    ALTER COLUMN duration_minutes TYPE interval USING make_interval(mins => duration_minutes);
DROP TABLE vehicles CASCADE;
"""


def run_sql(engine: sa.Engine, statements: str) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(statements)


def diagnose(engine: sa.Engine) -> list[Problem]:
    with engine.connect() as connection:
        return doctor.diagnose(connection)


def problems(engine: sa.Engine) -> list[Problem]:
    return doctor.problems_in(diagnose(engine))


def _model_column(name: str) -> sa.Column[Any]:
    table = SessionRequest.__table__
    assert isinstance(table, sa.Table)
    column: sa.Column[Any] = table.columns[name]
    return column


@pytest.fixture
def bare_engine(new_database: str) -> Iterator[sa.Engine]:
    """An engine on a fresh database without the app's tables."""
    engine = database.engine_for(new_database)
    yield engine
    engine.dispose()


def test_our_own_schema_has_no_problem_and_one_note(engine: sa.Engine) -> None:
    assert diagnose(engine) == [CUSTOMER_FK_NOTE]
    assert problems(engine) == []


def test_an_empty_database_lacks_every_table(bare_engine: sa.Engine) -> None:
    found = diagnose(bare_engine)
    assert [(p.kind, p.table, p.severity) for p in found] == [
        ("missing_table", "organizations", "problem"),
        ("missing_table", "vehicles", "problem"),
        ("missing_table", "mechanics", "problem"),
        ("missing_table", "profiles", "problem"),
        ("missing_table", "sessions", "problem"),
        ("missing_table", "session_assignments", "problem"),
        ("missing_table", "session_requests", "problem"),
    ]
    assert found[0].message == (
        "organizations: table missing from schema public; the tool writes it; fix: run "
        "`seed db create`, which creates the missing tables and leaves the others as they are"
    )


def test_an_app_like_schema_reports_each_difference(engine: sa.Engine) -> None:
    run_sql(engine, APP_LIKE_CHANGES)

    found = diagnose(engine)

    assert [(p.severity, p.kind, p.table, p.column) for p in found] == [
        ("problem", "missing_table", "vehicles", None),
        ("note", "missing_column", "mechanics", "about_me"),
        ("problem", "not_null_unfilled", "profiles", "stripe_customer_id"),
        ("problem", "type_mismatch", "sessions", "duration_minutes"),
        ("problem", "check_narrower", "session_requests", "status"),
        ("problem", "type_mismatch", "session_requests", "accepted_at"),
        ("note", "missing_foreign_key", "session_requests", "customer_id"),
    ]
    by_column = {p.column: p for p in found}
    # Text takes any value (a run writes its text): years_of_experience is no problem.
    assert "years_of_experience" not in by_column
    assert by_column["about_me"].message == (
        "mechanics.about_me: the database has no such column; the tool's values for it are "
        "not written (a run leaves it out)"
    )
    assert by_column["about_me"].fix_sql is None
    assert by_column["duration_minutes"].message == (
        "sessions.duration_minutes: type interval, but the tool writes integer; fix: change "
        "the column if the app agrees (ALTER TABLE public.sessions ALTER COLUMN "
        "duration_minutes TYPE integer USING duration_minutes::integer)"
    )
    assert by_column["duration_minutes"].fix_sql is None
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
    status = by_column["status"]
    assert status.message == (
        "session_requests.status: CHECK session_requests_status_check lacks 'completed', "
        "'unattended', which the tool may write; fix: `seed db doctor --apply` widens it to "
        "what it allows and what the tool writes"
    )
    widened = (
        "ALTER TABLE public.session_requests DROP CONSTRAINT session_requests_status_check, "
        "ADD CONSTRAINT session_requests_status_check CHECK (status IN ('pending', "
        "'accepted', 'cancelled', 'expired', 'completed', 'unattended'));"
    )
    assert status.fix_sql == widened
    assert status.apply_sql == (widened,)
    assert by_column["customer_id"] == CUSTOMER_FK_NOTE


def test_the_shown_fixes_are_valid_sql(engine: sa.Engine) -> None:
    run_sql(engine, APP_LIKE_CHANGES)
    fixable = [p for p in problems(engine) if p.fix_sql]
    assert {p.kind for p in fixable} == {"check_narrower"}

    run_sql(engine, "\n".join(p.fix_sql or "" for p in fixable))

    assert {p.kind for p in problems(engine)} == {
        "type_mismatch",
        "not_null_unfilled",
        "missing_table",
    }


def test_apply_fixes_runs_only_the_additive_fixes(engine: sa.Engine) -> None:
    run_sql(engine, APP_LIKE_CHANGES)
    before = diagnose(engine)
    shown: list[str] = []

    with engine.begin() as connection:
        run = doctor.apply_fixes(connection, before, before=shown.append)

    [status] = [p for p in before if p.column == "status"]
    assert run == shown == list(status.apply_sql)
    after = diagnose(engine)
    assert after == [p for p in before if p is not status]


def test_apply_fixes_joins_the_callers_transaction(engine: sa.Engine) -> None:
    run_sql(engine, "ALTER TABLE sessions DROP CONSTRAINT sessions_mechanic_id_fkey")
    [missing] = problems(engine)
    connection = engine.connect()
    transaction = connection.begin()
    assert doctor.apply_fixes(connection, diagnose(engine)) == list(missing.apply_sql)
    transaction.rollback()
    connection.close()

    assert problems(engine) == [missing]


def test_a_foreign_key_counts_whatever_its_name(engine: sa.Engine) -> None:
    run_sql(
        engine,
        "ALTER TABLE session_requests ADD CONSTRAINT requests_customer FOREIGN KEY "
        "(customer_id) REFERENCES profiles(id)",
    )
    assert diagnose(engine) == []


AUTH_USERS = """
CREATE SCHEMA auth;
CREATE TABLE auth.users (id uuid PRIMARY KEY);
"""


def test_a_column_with_a_key_elsewhere_gets_no_second_one(engine: sa.Engine) -> None:
    # Supabase: the column's key goes to auth.users (the app's migrations).
    run_sql(
        engine,
        AUTH_USERS
        + """
        ALTER TABLE session_requests ADD CONSTRAINT session_requests_customer_id_fkey
            FOREIGN KEY (customer_id) REFERENCES auth.users(id);
        ALTER TABLE sessions DROP CONSTRAINT sessions_mechanic_id_fkey,
            ADD CONSTRAINT sessions_mechanic_id_fkey
            FOREIGN KEY (mechanic_id) REFERENCES auth.users(id);
        """,
    )

    found = diagnose(engine)

    assert [(p.severity, p.kind, p.table, p.column) for p in found] == [
        ("note", "foreign_key_elsewhere", "sessions", "mechanic_id"),
        ("note", "foreign_key_elsewhere", "session_requests", "customer_id"),
    ]
    assert found[0].message == (
        "sessions.mechanic_id: its foreign key sessions_mechanic_id_fkey points at "
        "auth.users(id), not mechanics(id): a run writes each mechanic's auth user id "
        "(mechanics.user_id) there, as the key wants; doctor never adds a second key on a "
        "column that has one (one to mechanics(id) beside it would refuse every value this "
        "one accepts)"
    )
    assert "PostgREST cannot embed profiles through it (PGRST200)" in found[1].message
    assert all(not p.apply_sql for p in found)
    with engine.begin() as connection:
        assert doctor.apply_fixes(connection, found) == []


def test_a_key_to_a_table_the_tool_s_ids_are_not_in_is_a_problem(engine: sa.Engine) -> None:
    run_sql(
        engine,
        "ALTER TABLE sessions DROP CONSTRAINT sessions_mechanic_id_fkey, "
        "ADD CONSTRAINT sessions_mechanic_id_fkey FOREIGN KEY (mechanic_id) "
        "REFERENCES profiles(id) NOT VALID",
    )
    [problem] = problems(engine)
    assert (problem.kind, problem.table, problem.column) == (
        "foreign_key_elsewhere", "sessions", "mechanic_id"
    )
    assert problem.apply_sql == ()
    assert "points at profiles(id), but the tool writes mechanics(id) ids there" in (
        problem.message
    )


def test_on_the_app_s_database_a_keyless_embed_column_gets_its_key(engine: sa.Engine) -> None:
    # An auth schema: the app's database, where the embedded join's key is a problem. The
    # usual name is taken (by a CHECK here), so the fix names the key otherwise.
    run_sql(
        engine,
        AUTH_USERS
        + """
        ALTER TABLE session_requests ADD CONSTRAINT session_requests_customer_id_fkey
            CHECK (customer_id IS NOT NULL);
        """,
    )

    [problem] = diagnose(engine)

    assert (problem.severity, problem.kind) == ("problem", "missing_foreign_key")
    assert "(profiles!session_requests_customer_id_profiles_fkey) fail" in problem.message
    assert (
        "session_requests_customer_id_fkey is taken by a constraint CHECK ((customer_id IS NOT "
        "NULL)); the fix names it session_requests_customer_id_profiles_fkey"
    ) in problem.message
    with engine.begin() as connection:
        assert len(doctor.apply_fixes(connection, [problem])) == 1
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

    found = problems(bare_engine)

    lacking = [s for s in vocabularies.REQUEST_STATUSES if s not in ("pending", "accepted",
                                                                       "cancelled")]
    assert [(p.kind, p.table, p.column, p.message) for p in found] == [
        (
            "check_narrower",
            "sessions",
            "type",
            "sessions.type: enum session_type lacks 'diagnostic', which the tool may write; "
            "fix: `seed db doctor --apply` adds the labels",
        ),
        (
            "check_narrower",
            "session_requests",
            "session_type",
            "session_requests.session_type: enum session_type lacks 'diagnostic', which the "
            "tool may write; fix: `seed db doctor --apply` adds the labels",
        ),
        (
            "check_narrower",
            "session_requests",
            "status",
            f"session_requests.status: enum session_request_status lacks "
            f"{', '.join(repr(s) for s in lacking)}, which the tool may write; fix: `seed db "
            "doctor --apply` adds the labels",
        ),
    ]
    assert found[0].fix_sql == (
        "ALTER TYPE public.session_type ADD VALUE IF NOT EXISTS 'diagnostic';"
    )
    assert found[2].apply_sql == tuple(
        f"ALTER TYPE public.session_request_status ADD VALUE IF NOT EXISTS '{s}';"
        for s in lacking
    )

    # --apply's way: one transaction, committed; the labels are usable after it.
    diagnosis = doctor.check_database(bare_engine.url.render_as_string(hide_password=False),
                                      apply=True)
    assert diagnosis.problems == ()
    assert len(diagnosis.applied) == 2 + len(lacking)
    with bare_engine.connect() as connection:
        labels = connection.execute(sa.text(
            "SELECT array_agg(label::text) FROM unnest(enum_range(NULL::session_request_status))"
            " AS label"
        )).scalar_one()
    assert set(labels) == set(vocabularies.REQUEST_STATUSES)


def test_an_enum_column_may_be_text_with_a_check(engine: sa.Engine) -> None:
    run_sql(
        engine,
        """
        ALTER TABLE sessions ALTER COLUMN type TYPE text,
            ADD CONSTRAINT sessions_type_check CHECK (type = 'chat' OR type = 'video');
        """,
    )
    [problem] = problems(engine)
    assert problem.message == (
        "sessions.type: CHECK sessions_type_check lacks 'diagnostic', which the tool may "
        "write; fix: `seed db doctor --apply` widens it to what it allows and what the tool "
        "writes"
    )


def test_a_not_valid_check_is_widened_not_valid(engine: sa.Engine) -> None:
    # Rows the narrower CHECK never validated stay as they are: the widened one is NOT VALID.
    run_sql(
        engine,
        """
        ALTER TABLE sessions DROP CONSTRAINT sessions_status_check,
            DROP CONSTRAINT sessions_plan_check;
        INSERT INTO sessions (type, status, plan, stripe_session_id)
            VALUES ('chat', 'legacy', 'free', 'cs_1');
        ALTER TABLE sessions ADD CONSTRAINT sessions_status_check
            CHECK (status IN ('pending', 'completed')) NOT VALID;
        """,
    )
    [problem] = problems(engine)
    assert problem.apply_sql[0].endswith(" NOT VALID;")
    with engine.begin() as connection:
        doctor.apply_fixes(connection, [problem])
    assert problems(engine) == []


def test_model_vocabulary_bounds_the_registry_s(engine: sa.Engine) -> None:
    # The registry lets a scenario name a routing the column never stores
    # ('priority_broadcast' is stored as 'broadcast'): a CHECK holding the model's list is no
    # problem; one lacking a model value is, and names only that value.
    [request] = [kind for kind in KINDS.values() if kind.model is SessionRequest]
    column = _model_column("routing_type")
    written = doctor.written_values(request, column)
    assert written == doctor.vocabulary(column) == vocabularies.ROUTING_TYPES
    assert problems(engine) == []
    kept = [value for value in vocabularies.ROUTING_TYPES if value != "hybrid"]
    run_sql(
        engine,
        "ALTER TABLE session_requests DROP CONSTRAINT session_requests_routing_type_check, "
        "ADD CONSTRAINT session_requests_routing_type_check CHECK (routing_type IN ("
        + ", ".join(f"'{value}'" for value in kept)
        + "))",
    )
    [problem] = problems(engine)
    assert "lacks 'hybrid', which" in problem.message


def test_the_registry_s_vocabulary_counts_where_the_model_has_none(engine: sa.Engine) -> None:
    # follow_up_type has no CHECK in the tool's schema: the registry says what a run may write.
    [request] = [kind for kind in KINDS.values() if kind.model is SessionRequest]
    values = tuple(str(v) for v in request.vocabularies["follow_up_type"])
    column = _model_column("follow_up_type")
    assert doctor.vocabulary(column) is None
    assert doctor.written_values(request, column) == values
    allowed = vocabularies.CHECKED_FOLLOW_UP_TYPES[:1]
    run_sql(
        engine,
        "ALTER TABLE session_requests ADD CONSTRAINT session_requests_follow_up_type_check "
        f"CHECK (follow_up_type IN ('{allowed[0]}'))",
    )
    [problem] = problems(engine)
    lacking = [value for value in values if value not in allowed]
    assert f"lacks {', '.join(repr(v) for v in lacking)}, which" in problem.message


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
    assert [n.embedded_join for n in doctor.UNDECLARED_FOREIGN_KEYS] == [True]


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
    found = diagnose(engine)
    assert [(p.column, p.severity, p.fix_sql) for p in found] == [
        (
            column,
            "problem",
            f"ALTER TABLE public.session_requests ADD CONSTRAINT session_requests_{column}_fkey "
            f"FOREIGN KEY ({column}) REFERENCES public.{target}(id) NOT VALID;",
        )
        for column, target in [
            ("mechanic_id", "mechanics"),
            ("session_id", "sessions"),
            ("vehicle_id", "vehicles"),
            ("workshop_id", "organizations"),
        ]
    ] + [("customer_id", "note", CUSTOMER_FK_SQL)]
    with engine.begin() as connection:
        assert len(doctor.apply_fixes(connection, found)) == 4
    assert diagnose(engine) == [CUSTOMER_FK_NOTE]
