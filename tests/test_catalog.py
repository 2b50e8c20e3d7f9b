"""The live-catalog reader against real databases: the app's shape, the tool's, odd ones."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy import exc as sa_exc

from seeding.db import database
from seeding.db.catalog import Catalog, allowed_values, read_catalog
from seeding.domain.schema import Base
from seeding.errors import DatabaseError


@pytest.fixture
def read(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A function reading the catalog of a URL (through SQLAlchemy) and closing its engine."""
    engines: list[sa.Engine] = []

    def read_url(url: str, schemas: Any = ("public", "auth")) -> Catalog:
        engine = database.engine_for(url)
        engines.append(engine)
        with engine.connect() as connection:
            return read_catalog(connection, schemas)

    yield read_url
    for engine in engines:
        engine.dispose()


@pytest.fixture
def app_catalog(app_db: str, read: Any) -> Catalog:
    catalog: Catalog = read(app_db)
    return catalog


def _run(url: str, *statements: sql.Composed | str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement if isinstance(statement, sql.Composed)
                               else statement.encode())


# ------------------------------------------------------------------------------------------
# The app's shape (tests/app_shape.sql).
# ------------------------------------------------------------------------------------------


def test_participation_mode_allows_exactly_the_check_s_values(app_catalog: Catalog) -> None:
    mechanics = app_catalog.table("mechanics")
    assert mechanics is not None
    column = mechanics.column("participation_mode")
    assert column is not None
    assert column.allowed == ("micro_only", "full_only", "both")
    assert column.type == "text" and not column.is_enum
    assert column.default == "'both'::text"
    [check] = [c for c in mechanics.checks if c.columns == ("participation_mode",)]
    assert check.name == "mechanics_participation_mode_check"
    assert check.definition.startswith("CHECK ((participation_mode = ANY (ARRAY[")
    assert check.validated


def test_session_request_status_is_an_enum_with_its_labels(app_catalog: Catalog) -> None:
    status = app_catalog.tables["public.session_requests"].columns["status"]
    assert status.is_enum
    assert status.enum_labels == ("pending", "accepted", "cancelled")
    assert status.allowed == ("pending", "accepted", "cancelled")
    assert status.type == "public.session_request_status"
    assert (status.enum_schema, status.enum_name) == ("public", "session_request_status")
    assert status.not_null and status.default is not None
    assert app_catalog.enums["public.session_request_status"] == (
        "pending", "accepted", "cancelled",
    )
    assert app_catalog.enums["public.session_type"] == ("chat", "video", "diagnostic")


def test_a_varchar_column_s_list_check_is_read(app_catalog: Catalog) -> None:
    table = app_catalog.table("session_assignments")
    assert table is not None
    priority = table.columns["priority"]
    assert priority.type == "character varying(20)"
    assert priority.base_type == "character varying"
    assert priority.type_oid == 1043
    assert priority.allowed == ("high", "normal", "low")


def test_vehicle_year_is_text_and_not_null(app_catalog: Catalog) -> None:
    vehicles = app_catalog.table("vehicles")
    assert vehicles is not None
    year = vehicles.columns["year"]
    assert (year.type, year.type_oid, year.not_null, year.default) == ("text", 25, True, None)
    # Its CHECK (non-empty) is not a list: kept as text, narrows nothing.
    assert year.allowed is None
    assert any(check.columns == ("year",) for check in vehicles.checks)
    assert [c.name for c in vehicles.required_columns()] == ["user_id", "make", "model", "year"]


def test_sessions_mechanic_id_points_at_auth_users_set_null(app_catalog: Catalog) -> None:
    sessions = app_catalog.table("sessions")
    assert sessions is not None
    [key] = sessions.foreign_keys_on("mechanic_id")
    assert key.name == "sessions_mechanic_id_fkey"
    assert (key.schema, key.table, key.columns) == ("public", "sessions", ("mechanic_id",))
    assert (key.target_schema, key.target_table, key.target_columns) == (
        "auth", "users", ("id",),
    )
    assert (key.on_delete, key.on_update) == ("SET NULL", "NO ACTION")
    assert key.validated and not key.deferrable
    users = app_catalog.table("users", "auth")
    assert users is not None
    assert key in users.referenced_by


def test_live_shape_differs_where_the_sources_disagree(app_db_live: str, read: Any) -> None:
    catalog: Catalog = read(app_db_live)
    requests = catalog.table("session_requests")
    sessions = catalog.table("sessions")
    assert requests is not None and sessions is not None
    status = requests.columns["status"]
    assert (status.type, status.is_enum, status.allowed) == ("text", False, None)
    assert "public.session_request_status" not in catalog.enums
    assert "metadata" not in requests.columns
    [key] = sessions.foreign_keys_on("mechanic_id")
    assert (key.target_schema, key.target_table, key.on_delete) == (
        "public", "mechanics", "SET NULL",
    )


def test_the_partial_unique_index_is_found_with_its_predicate(app_catalog: Catalog) -> None:
    sessions = app_catalog.table("sessions")
    assert sessions is not None
    [unique] = sessions.unique_on(["customer_user_id"])
    assert unique.name == "sessions_one_open_per_customer_idx"
    assert not unique.constraint and not unique.primary
    assert unique.predicate == (
        "(status = ANY (ARRAY['pending'::text, 'waiting'::text, 'live'::text, "
        "'scheduled'::text]))"
    )
    assert sessions.primary_key is not None and sessions.primary_key.columns == ("id",)
    assert sessions.uniques[0] == sessions.primary_key
    [stripe] = sessions.unique_on("stripe_session_id")
    assert stripe.constraint and stripe.predicate is None
    users = app_catalog.table("users", "auth")
    assert users is not None
    [email] = users.unique_on("email")
    assert (email.name, email.predicate) == ("users_email_partial_key", "(is_sso_user = false)")


def test_auth_identities_email_is_generated(app_catalog: Catalog) -> None:
    identities = app_catalog.table("identities", schema="auth")
    assert identities is not None
    email = identities.columns["email"]
    assert email.generated and email.default is None
    assert email.generation == "lower((identity_data ->> 'email'::text))"
    assert email not in identities.writable_columns()
    assert email not in identities.required_columns()
    id_column = identities.columns["id"]
    assert id_column.default == "gen_random_uuid()" and not id_column.generated
    users = app_catalog.table("users", "auth")
    assert users is not None
    confirmed_at = users.columns["confirmed_at"]
    assert confirmed_at.generated and confirmed_at.type == "timestamp with time zone"
    assert users.columns["email"].type == "character varying(255)"


def test_the_profile_trigger_on_auth_users_is_listed(app_catalog: Catalog) -> None:
    users = app_catalog.table("users", "auth")
    assert users is not None
    by_name = {trigger.name: trigger for trigger in users.triggers}
    created = by_name["on_auth_user_created"]
    assert created.timing == "AFTER" and created.events == ("INSERT",)
    assert created.for_each_row and created.enabled and not created.fires_on_replica
    assert created.function == "public.handle_new_user"
    assert created.update_columns == ()
    updated = by_name["on_auth_user_email_updated"]
    assert (updated.events, updated.update_columns) == (("UPDATE",), ("email",))
    # Names sort in the order PostgreSQL fires same-event triggers in.
    assert [t.name for t in users.triggers] == sorted(by_name)

    mechanics = app_catalog.table("mechanics")
    assert mechanics is not None
    score = {t.name: t for t in mechanics.triggers}["set_can_accept_sessions"]
    assert score.timing == "BEFORE"
    assert (score.events, score.update_columns) == (
        ("INSERT", "UPDATE"), ("profile_completion_score",),
    )
    vehicles = app_catalog.table("vehicles")
    assert vehicles is not None
    [primary] = vehicles.triggers
    assert "WHEN (new.is_primary)" in primary.definition


def test_rls_is_enabled_on_profiles_and_not_on_auth_users(app_catalog: Catalog) -> None:
    profiles = app_catalog.table("profiles")
    users = app_catalog.table("users", "auth")
    assert profiles is not None and users is not None
    assert profiles.rls_enabled and not profiles.rls_forced
    assert not users.rls_enabled


def test_organizations_slug_is_unique_and_email_is_not(app_catalog: Catalog) -> None:
    organizations = app_catalog.table("organizations")
    assert organizations is not None
    [slug] = organizations.unique_on(["slug"])
    assert slug.name == "organizations_slug_key"
    assert slug.constraint and not slug.primary and slug.nulls_distinct
    assert organizations.unique_on(["email"]) == ()
    members = app_catalog.table("organization_members")
    assert members is not None
    assert len(members.unique_on(["user_id", "organization_id"])) == 1


def test_every_table_and_schema_of_the_app_shape(app_catalog: Catalog) -> None:
    assert app_catalog.schemas == ("public", "auth")
    assert app_catalog.has_schema("auth") and not app_catalog.has_schema("extensions")
    assert app_catalog.server_version >= 150000
    assert set(app_catalog.tables) == {
        "auth.identities", "auth.users", "public.intakes", "public.mechanics",
        "public.organization_members", "public.organizations", "public.profiles",
        "public.session_analytics", "public.session_assignments", "public.session_participants",
        "public.session_requests", "public.sessions", "public.vehicles",
    }
    for table in app_catalog.tables.values():
        assert table.kind == "table"
        positions = [column.position for column in table.columns.values()]
        assert positions == sorted(positions)


def test_a_psycopg_connection_reads_the_same_catalog(app_db: str, read: Any) -> None:
    through_sqlalchemy: Catalog = read(app_db)
    with psycopg.connect(app_db) as connection:
        through_psycopg = read_catalog(connection)
    assert through_psycopg == through_sqlalchemy


def test_the_read_takes_six_queries_and_writes_nothing(app_db: str) -> None:
    engine = database.engine_for(app_db)
    statements: list[str] = []
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))

            @sa.event.listens_for(connection, "before_cursor_execute")
            def count(*args: Any) -> None:
                statements.append(args[2])

            started = time.perf_counter()
            read_catalog(connection)
            elapsed = time.perf_counter() - started
            sa.event.remove(connection, "before_cursor_execute", count)
            assert connection.in_transaction()
            assert connection.execute(
                sa.text("SELECT txid_current_if_assigned()")
            ).scalar_one() is None
    finally:
        engine.dispose()
    assert len(statements) == 6
    assert all("%(schemas)s" in statement for statement in statements)
    assert elapsed < 2.0  # well under 0.2 s in practice; generous for a loaded machine


# ------------------------------------------------------------------------------------------
# The tool's own schema.
# ------------------------------------------------------------------------------------------


def test_every_table_of_the_tool_s_schema_is_found_with_its_columns(
    pg_url: str, read: Any
) -> None:
    catalog: Catalog = read(pg_url)
    assert not catalog.has_schema("auth")
    for model in Base.metadata.sorted_tables:
        table = catalog.table(model.name)
        assert table is not None, model.name
        assert list(table.columns) == [column.name for column in model.columns]
        for column in model.columns:
            live = table.columns[column.name]
            assert live.not_null == (not column.nullable), f"{model.name}.{column.name}"
            if isinstance(column.type, sa.Enum):
                assert live.is_enum
                assert live.enum_labels == tuple(column.type.enums)
        declared = {(key.parent.name, key.column.table.name) for key in model.foreign_keys}
        live_keys = {(key.columns[0], key.target_table) for key in table.foreign_keys}
        assert live_keys == declared, model.name
        assert table.primary_key is not None
        assert table.primary_key.columns == tuple(c.name for c in model.primary_key.columns)


# ------------------------------------------------------------------------------------------
# Failures and absences.
# ------------------------------------------------------------------------------------------


def test_an_aborted_transaction_raises_rather_than_reads_nothing(pg_url: str) -> None:
    engine = database.engine_for(pg_url)
    try:
        with engine.connect() as connection:
            with pytest.raises(sa_exc.DBAPIError):
                connection.execute(sa.text("SELECT 1 / 0"))
            with pytest.raises(DatabaseError, match="current transaction is aborted") as caught:
                read_catalog(connection)
            assert "\n" not in str(caught.value)
    finally:
        engine.dispose()
    with psycopg.connect(pg_url) as raw:
        with pytest.raises(psycopg.errors.DivisionByZero):
            raw.execute("SELECT 1 / 0")
        with pytest.raises(DatabaseError, match="current transaction is aborted"):
            read_catalog(raw)


def test_a_missing_schema_is_absent_not_an_error(new_database: str, read: Any) -> None:
    catalog: Catalog = read(new_database, ("auth", "public", "nowhere"))
    assert catalog.schemas == ("public",)
    assert not catalog.has_schema("auth") and not catalog.has_schema("nowhere")
    assert catalog.has_schema("public")
    assert dict(catalog.tables) == {} and dict(catalog.enums) == {}
    assert catalog.table("users", "auth") is None
    nothing: Catalog = read(new_database, ("nowhere",))
    assert (nothing.schemas, dict(nothing.tables)) == ((), {})
    assert nothing.server_version == catalog.server_version


def test_the_catalog_is_immutable(app_catalog: Catalog) -> None:
    table = app_catalog.table("profiles")
    assert table is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        table.rls_enabled = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        app_catalog.tables["public.x"] = table  # type: ignore[index]
    with pytest.raises(TypeError):
        table.columns["x"] = table.columns["id"]  # type: ignore[index]


# ------------------------------------------------------------------------------------------
# Hostile names: read exactly, never run.
# ------------------------------------------------------------------------------------------

SCHEMA = 'sch"; DROP SCHEMA public CASCADE; --'
TABLE = 'tab"; DROP TABLE public.victim; -- .x'
COLUMN = 'we"ird; col :x %s %(y)s'
CHECK = 'ck"; COMMIT; CREATE TABLE public.pwned(); --'
KEY = "fk'; DELETE FROM public.victim; --"
UNIQUE = 'uq";'
TRIGGER = 'tg"; DROP TRIGGER x ON y; --'
FUNCTION = 'fn"(); --'


def test_names_with_quotes_and_semicolons_are_read_exactly(new_database: str, read: Any) -> None:
    table = sql.Identifier(SCHEMA, TABLE)
    column = sql.Identifier(COLUMN)
    function = sql.Identifier(SCHEMA, FUNCTION)
    _run(
        new_database,
        "CREATE TABLE public.victim (id integer PRIMARY KEY)",
        sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)),
        sql.SQL(
            "CREATE TABLE {table} (id integer PRIMARY KEY, {column} text NOT NULL, "
            "victim_id integer, "
            "CONSTRAINT {check} CHECK ({column} IN ('a', 'b''c', 'd\"e;')), "
            "CONSTRAINT {key} FOREIGN KEY (victim_id) REFERENCES public.victim (id) "
            "ON DELETE RESTRICT ON UPDATE CASCADE, "
            "CONSTRAINT {unique} UNIQUE ({column}))"
        ).format(
            table=table, column=column, check=sql.Identifier(CHECK), key=sql.Identifier(KEY),
            unique=sql.Identifier(UNIQUE),
        ),
        sql.SQL(
            "CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$"
        ).format(function),
        sql.SQL(
            "CREATE TRIGGER {} BEFORE INSERT OR UPDATE OF {} ON {} FOR EACH ROW "
            "EXECUTE FUNCTION {}()"
        ).format(sql.Identifier(TRIGGER), column, table, function),
    )
    catalog: Catalog = read(new_database, (SCHEMA, "public"))
    assert catalog.schemas == (SCHEMA, "public")
    found = catalog.table(TABLE, SCHEMA)
    assert found is not None
    assert (found.schema, found.name) == (SCHEMA, TABLE)
    assert catalog.tables[f"{SCHEMA}.{TABLE}"] is found
    assert list(found.columns) == ["id", COLUMN, "victim_id"]
    assert found.columns[COLUMN].allowed == ("a", "b'c", 'd"e;')
    [check] = found.checks
    assert (check.name, check.columns) == (CHECK, (COLUMN,))
    [key] = found.foreign_keys
    assert (key.name, key.on_delete, key.on_update) == (KEY, "RESTRICT", "CASCADE")
    victim = catalog.table("victim")
    assert victim is not None and victim.referenced_by == (key,)
    [unique] = found.unique_on(COLUMN)
    assert unique.name == UNIQUE
    [trigger] = found.triggers
    assert trigger.name == TRIGGER
    assert trigger.update_columns == (COLUMN,)
    assert trigger.function == f"{SCHEMA}.{FUNCTION}"
    # Nothing ran: the victim and public are there, nothing else was made.
    assert set(catalog.tables) == {f"{SCHEMA}.{TABLE}", "public.victim"}


# ------------------------------------------------------------------------------------------
# What the app's shape lacks: domains, identities, views, partitions, trigger modes.
# ------------------------------------------------------------------------------------------

ZOO = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN short_text AS character varying(10);
CREATE DOMAIN shorter_text AS short_text;
CREATE DOMAIN mood_domain AS mood;
CREATE TABLE zoo (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code integer GENERATED BY DEFAULT AS IDENTITY,
    m mood NOT NULL CHECK (m IN ('sad', 'ok')),
    md mood_domain,
    moods mood[],
    s short_text,
    ss shorter_text,
    kind text CHECK (kind IS NULL OR kind = 'x'),
    grade text CHECK (grade = 'a' OR grade = 'b'),
    score integer CHECK (score > 0),
    label text NOT NULL DEFAULT 'x',
    must text NOT NULL,
    twice integer GENERATED ALWAYS AS (code * 2) STORED,
    email text,
    serial_no serial
);
ALTER TABLE zoo ADD CONSTRAINT zoo_grade_wide CHECK (grade IN ('a', 'b', 'c')) NOT VALID;
CREATE UNIQUE INDEX zoo_lower_email ON zoo (lower(email), code);
CREATE UNIQUE INDEX zoo_label_key ON zoo (label) NULLS NOT DISTINCT;
CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE TRIGGER zoo_off BEFORE DELETE ON zoo FOR EACH ROW EXECUTE FUNCTION noop();
ALTER TABLE zoo DISABLE TRIGGER zoo_off;
CREATE TRIGGER zoo_replica AFTER INSERT ON zoo FOR EACH ROW EXECUTE FUNCTION noop();
ALTER TABLE zoo ENABLE REPLICA TRIGGER zoo_replica;
CREATE TRIGGER zoo_always AFTER UPDATE ON zoo FOR EACH ROW EXECUTE FUNCTION noop();
ALTER TABLE zoo ENABLE ALWAYS TRIGGER zoo_always;
CREATE TRIGGER zoo_truncate AFTER TRUNCATE ON zoo FOR EACH STATEMENT EXECUTE FUNCTION noop();
CREATE VIEW zoo_view AS SELECT id, m FROM zoo;
CREATE TRIGGER zoo_view_insert INSTEAD OF INSERT ON zoo_view FOR EACH ROW
    EXECUTE FUNCTION noop();
CREATE TABLE events (id integer, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE event_refs (
    id integer, at date,
    CONSTRAINT event_refs_event_fkey FOREIGN KEY (id, at) REFERENCES events
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
CREATE TABLE nothing ();
CREATE SCHEMA other;
CREATE TABLE other.refs (zoo_id bigint REFERENCES public.zoo (id) ON DELETE SET DEFAULT);
ALTER TABLE zoo ENABLE ROW LEVEL SECURITY;
ALTER TABLE zoo FORCE ROW LEVEL SECURITY;
"""


@pytest.fixture
def zoo(new_database: str, read: Any) -> Catalog:
    _run(new_database, ZOO)
    catalog: Catalog = read(new_database, "public")
    return catalog


def test_domains_enums_and_arrays_of_them(zoo: Catalog) -> None:
    table = zoo.table("zoo")
    assert table is not None
    columns = table.columns
    assert (columns["m"].type, columns["m"].is_enum, columns["m"].allowed) == (
        "public.mood", True, ("sad", "ok"),
    )
    md = columns["md"]
    assert (md.type, md.base_type, md.is_enum) == ("mood_domain", "public.mood", True)
    assert md.enum_labels == ("sad", "ok", "happy") == md.allowed
    assert md.base_type_oid != md.type_oid == columns["md"].type_oid
    assert md.base_type_oid == columns["m"].type_oid
    moods = columns["moods"]
    assert (moods.type, moods.is_enum, moods.enum_labels, moods.allowed) == (
        "public.mood[]", False, (), None,
    )
    assert (moods.enum_schema, moods.enum_name) == ("public", "mood")
    s, ss = columns["s"], columns["ss"]
    assert (s.type, s.base_type, s.base_type_oid) == ("short_text", "character varying", 1043)
    assert (ss.type, ss.base_type, ss.base_type_oid) == (
        "shorter_text", "character varying", 1043,
    )
    assert zoo.enums == {"public.mood": ("sad", "ok", "happy")}


def test_checks_that_list_values_and_those_that_do_not(zoo: Catalog) -> None:
    table = zoo.table("zoo")
    assert table is not None
    assert table.columns["kind"].allowed == ("x",)
    # Two list CHECKs: the narrower wins; the NOT VALID one still limits new rows.
    assert table.columns["grade"].allowed == ("a", "b")
    wide = next(check for check in table.checks if check.name == "zoo_grade_wide")
    assert not wide.validated and wide.definition.endswith("NOT VALID")
    assert table.columns["score"].allowed is None
    assert any(check.columns == ("score",) for check in table.checks)


def test_identity_generated_and_default_columns(zoo: Catalog) -> None:
    table = zoo.table("zoo")
    assert table is not None
    columns = table.columns
    assert (columns["id"].identity, columns["code"].identity) == ("a", "d")
    assert columns["twice"].generated and columns["twice"].generation == "(code * 2)"
    assert columns["serial_no"].default == "nextval('zoo_serial_no_seq'::regclass)"
    assert [c.name for c in table.required_columns()] == ["m", "must"]
    writable = [c.name for c in table.writable_columns()]
    assert "id" not in writable and "twice" not in writable
    assert "code" in writable and "serial_no" in writable
    assert table.rls_enabled and table.rls_forced


def test_expression_and_nulls_not_distinct_indexes(zoo: Catalog) -> None:
    table = zoo.table("zoo")
    assert table is not None
    by_name = {unique.name: unique for unique in table.uniques}
    expression = by_name["zoo_lower_email"]
    assert (expression.columns, expression.expressions) == (("code",), ("lower(email)",))
    assert table.unique_on("code") == ()
    [label] = table.unique_on("label")
    assert not label.nulls_distinct and not label.constraint


def test_trigger_modes_and_kinds(zoo: Catalog) -> None:
    table = zoo.table("zoo")
    view = zoo.table("zoo_view")
    assert table is not None and view is not None
    triggers = {trigger.name: trigger for trigger in table.triggers}
    assert (triggers["zoo_off"].enabled, triggers["zoo_off"].fires_on_replica) == (False, False)
    assert (triggers["zoo_replica"].enabled, triggers["zoo_replica"].fires_on_replica) == (
        False, True,
    )
    assert (triggers["zoo_always"].enabled, triggers["zoo_always"].fires_on_replica) == (
        True, True,
    )
    truncate = triggers["zoo_truncate"]
    assert (truncate.events, truncate.for_each_row) == (("TRUNCATE",), False)
    assert view.kind == "view"
    [instead] = view.triggers
    assert (instead.timing, instead.events) == ("INSTEAD OF", ("INSERT",))
    assert list(view.columns) == ["id", "m"]


def test_partitions_and_keys_into_a_partitioned_table(zoo: Catalog) -> None:
    events, refs = zoo.table("events"), zoo.table("event_refs")
    partition = zoo.table("events_2024")
    assert events is not None and refs is not None and partition is not None
    assert (events.kind, partition.kind) == ("partitioned table", "table")
    # PostgreSQL keeps a copy of the key per partition; the reader shows it once.
    [key] = refs.foreign_keys
    assert (key.target_table, key.columns, key.target_columns) == (
        "events", ("id", "at"), ("id", "at"),
    )
    assert key.deferrable and key.initially_deferred and key.on_delete == "CASCADE"
    assert events.referenced_by == (key,)
    assert events.primary_key is not None and events.primary_key.columns == ("id", "at")


def test_keys_from_schemas_not_read_and_tables_without_columns(zoo: Catalog) -> None:
    table, nothing = zoo.table("zoo"), zoo.table("nothing")
    assert table is not None and nothing is not None
    assert dict(nothing.columns) == {}
    [inbound] = table.referenced_by
    assert (inbound.schema, inbound.table, inbound.on_delete) == ("other", "refs", "SET DEFAULT")
    assert zoo.table("refs", "other") is None and not zoo.has_schema("other")


def test_every_schema_is_read_when_none_are_named(new_database: str, read: Any) -> None:
    _run(new_database, ZOO)
    catalog: Catalog = read(new_database, None)
    assert catalog.schemas == ("other", "public")
    other = catalog.table("refs", "other")
    assert other is not None and len(other.foreign_keys) == 1


def test_hundreds_of_tables_take_the_same_six_queries(new_database: str) -> None:
    _run(
        new_database,
        """
        CREATE TYPE state AS ENUM ('a', 'b');
        DO $$
        BEGIN
            FOR i IN 1..300 LOOP
                EXECUTE format(
                    'CREATE TABLE t%s (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), '
                    'parent uuid REFERENCES t%s (id) ON DELETE CASCADE, '
                    'kind text NOT NULL CHECK (kind IN (''x'', ''y'')), '
                    'st state, email text UNIQUE, n integer CHECK (n > 0), '
                    'made timestamptz DEFAULT now())', i, greatest(i - 1, 1));
            END LOOP;
        END $$;
        """,
    )
    engine = database.engine_for(new_database)
    statements: list[str] = []
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
            sa.event.listen(connection, "before_cursor_execute",
                            lambda *args: statements.append(args[2]))
            catalog = read_catalog(connection)
    finally:
        engine.dispose()
    assert len(statements) == 6
    assert len(catalog.tables) == 300
    t300 = catalog.table("t300")
    assert t300 is not None
    assert t300.columns["kind"].allowed == ("x", "y")
    assert t300.columns["st"].allowed == ("a", "b")
    assert [key.target_table for key in t300.foreign_keys] == ["t299"]
    assert len(t300.uniques) == 2


# ------------------------------------------------------------------------------------------
# allowed_values on pg_get_constraintdef's text.
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("definition", "column", "expected"),
    [
        ("CHECK ((participation_mode = ANY (ARRAY['micro_only'::text, 'full_only'::text, "
         "'both'::text])))", "participation_mode", ("micro_only", "full_only", "both")),
        ("CHECK (((priority)::text = ANY ((ARRAY['high'::character varying, "
         "'normal'::character varying])::text[])))", "priority", ("high", "normal")),
        ("CHECK ((status = 'x'::text))", "status", ("x",)),
        ("CHECK (((kind IS NULL) OR (kind = ANY (ARRAY['a'::text, 'b'::text]))))", "kind",
         ("a", "b")),
        ("CHECK (((grade = 'a'::text) OR (grade = 'b'::text) OR (grade = 'a'::text)))",
         "grade", ("a", "b")),
        ("CHECK ((a = ANY (ARRAY['x'::text]))) NOT VALID", "a", ("x",)),
        ("CHECK ((m = ANY (ARRAY['sad'::public.mood, 'ok'::\"My Type\"])))", "m",
         ("sad", "ok")),
        ("CHECK ((x = 'it''s'::text))", "x", ("it's",)),
        ("CHECK ((\"we\"\"ird\" = ANY (ARRAY['a'::text])))", 'we"ird', ("a",)),
        ("CHECK ((n = ANY (ARRAY[1, 2, '-3'::integer])))", "n", ("1", "2", "-3")),
        ("status IN ('a', 'b')", "status", ("a", "b")),
        ("CHECK ((s IS NULL))", "s", ()),
        # Not lists.
        ("CHECK ((length(TRIM(BOTH FROM year)) > 0))", "year", None),
        ("CHECK (((rating >= 1) AND (rating <= 5)))", "rating", None),
        ("CHECK ((status <> ALL (ARRAY['a'::text])))", "status", None),
        ("CHECK (((a = 'x'::text) AND (a = 'y'::text)))", "a", None),
        ("CHECK ((NOT (a = 'x'::text)))", "a", None),
        ("CHECK ((other = 'x'::text))", "status", None),
        ("CHECK (((a = 'x'::text) OR (b = 'y'::text)))", "a", None),
        ("CHECK ((lower(a) = 'x'::text))", "a", None),
        ("CHECK ((a = ANY (ARRAY['x'::text, NULL::text])))", "a", None),
        ("CHECK ((a = b))", "a", None),
        ("CHECK ((a = 'x'::text)", "a", None),
        ("", "a", None),
    ],
)
def test_allowed_values(definition: str, column: str, expected: tuple[str, ...] | None) -> None:
    assert allowed_values(definition, column) == expected


def test_postgresql_18_virtual_columns_and_not_enforced_checks(
    new_database: str, read: Any
) -> None:
    probe: Catalog = read(new_database, "public")
    if probe.server_version < 180000:
        pytest.skip("VIRTUAL generated columns and NOT ENFORCED are PostgreSQL 18's")
    _run(
        new_database,
        "CREATE TABLE v (a integer NOT NULL, b integer GENERATED ALWAYS AS (a * 2) VIRTUAL, "
        "c text CONSTRAINT v_c_check CHECK (c IN ('x', 'y')) NOT ENFORCED, "
        "d text CHECK (d IN ('p', 'q')))",
    )
    catalog: Catalog = read(new_database, "public")
    table = catalog.table("v")
    assert table is not None
    assert table.columns["b"].generated and table.columns["b"].generation == "(a * 2)"
    assert [c.name for c in table.writable_columns()] == ["a", "c", "d"]
    # NOT NULL constraints (pg_constraint rows since 18) are not CHECKs here.
    assert all(check.definition.startswith("CHECK") for check in table.checks)
    [not_enforced] = [check for check in table.checks if check.name == "v_c_check"]
    assert not not_enforced.enforced
    assert table.columns["c"].allowed is None
    assert table.columns["d"].allowed == ("p", "q")
