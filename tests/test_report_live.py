"""The report on the app's real schema (the migrations' shape and the live staging one).

The app's database differs from this tool's schema: vehicles have ``user_id``, not
``customer_id``; ``session_requests.status`` is an enum without 'completed' (migrations) or
text (live); ``sessions.mechanic_id`` holds the mechanic's auth user id (migrations) or a
``mechanics.id`` (live); mechanics and organizations have no latitude or longitude. The
report measures what it can there, names what it cannot, and refuses only a missing table.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from app_shape import AUTH_INSTANCE_ID
from psycopg import sql
from typer.testing import CliRunner

from seeding.cli import app
from seeding.db import database
from seeding.db.catalog import read_catalog
from seeding.domain import integrity
from seeding.domain.schema import APP_TABLES
from seeding.errors import SchemaError
from seeding.report import build, build_report, metrics, render
from seeding.report.shape import Shape, shape_of
from seeding.scenario.targets import parse_targets

#: Every test reaches a server (some through app_url, which picks its fixture by name).
pytestmark = pytest.mark.database

Connection = psycopg.Connection[Any]
runner = CliRunner()

#: What the app's database cannot give the report, in both shapes (no latitude, longitude).
UNAVAILABLE = {
    "mechanics.incomplete.missing.latitude": ("mechanics.latitude",),
    "mechanics.incomplete.missing.longitude": ("mechanics.longitude",),
}
SKIPPED = [
    ("workshop geography agrees", ("organizations.latitude", "organizations.longitude")),
    ("complete mechanic geography agrees", ("mechanics.latitude", "mechanics.longitude")),
]


@pytest.fixture(params=["app_db", "app_db_live"], ids=["migrations", "live"])
def app_url(request: pytest.FixtureRequest) -> str:
    """A fresh app-shaped database: the migrations' shape, then the live one."""
    url: str = request.getfixturevalue(request.param)
    return url


def is_live(url: str, connection: Connection) -> bool:
    row = connection.execute(
        "SELECT confrelid::regclass::text FROM pg_constraint "
        "WHERE conname = 'sessions_mechanic_id_fkey'"
    ).fetchone()
    return row is not None and row[0] == "mechanics"


def one(connection: Connection, query: str, params: Any = None) -> Any:
    row = connection.execute(query.encode(), params).fetchone()
    assert row is not None
    return row[0]


def add_user(connection: Connection, email: str, role: str = "customer") -> uuid.UUID:
    """An auth user as the auth server makes one; its trigger makes the profile."""
    user = uuid.uuid4()
    connection.execute(
        """
        INSERT INTO auth.users (instance_id, id, aud, role, email, email_confirmed_at,
                                raw_user_meta_data, created_at, updated_at)
        VALUES (%s, %s, 'authenticated', 'authenticated', %s, now(), %s, now(), now())
        """,
        [AUTH_INSTANCE_ID, user, email, json.dumps({"role": role})],
    )
    return user


def insert(connection: Connection, table: str, **values: Any) -> uuid.UUID:
    query = sql.SQL("INSERT INTO public.{} ({}) VALUES ({}) RETURNING id").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(map(sql.Placeholder, values)),
    )
    return uuid.UUID(str(one(connection, query.as_string(connection), values)))


def report_of(url: str, **options: Any) -> Any:
    engine = database.engine_for(url).execution_options(isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as connection:
            return build_report(connection, **options)
    finally:
        engine.dispose()


# --- an empty app database -------------------------------------------------------------------


def test_an_empty_app_database_is_measured_and_names_what_it_lacks(app_url: str) -> None:
    report = report_of(app_url)
    assert report.session_requests.total == 0 and report.mechanics.total == 0
    assert dict(report.unavailable) == UNAVAILABLE
    assert [(r.rule, r.missing) for r in report.skipped_rules] == SKIPPED
    measured = [r.rule for r in report.integrity]
    assert measured == [r.name for r in integrity.RULES if r.name not in dict(SKIPPED)]
    assert all(r.violations == 0 for r in report.integrity)
    data = report.to_dict()
    assert data["version"] == 2
    assert data["unavailable"] == [
        {"metric": metric, "missing": list(missing)} for metric, missing in UNAVAILABLE.items()
    ]
    assert data["skipped_rules"] == [
        {"rule": rule, "missing": list(missing)} for rule, missing in SKIPPED
    ]
    assert data["mechanics"]["incomplete"] == []  # measured: only two of its fields are not


@pytest.mark.parametrize("fmt", ["table", "markdown", "json"])
def test_seed_report_runs_on_an_empty_app_database(app_url: str, fmt: str) -> None:
    result = runner.invoke(app, ["report", "--db", app_url, "--format", fmt])
    assert result.exit_code == 0, result.output
    if fmt == "json":
        data = json.loads(result.output)
        assert data["version"] == 2 and data["session_requests"]["total"] == 0
        assert [entry["rule"] for entry in data["skipped_rules"]] == [r for r, _ in SKIPPED]
    else:
        assert "Not available on this database" in result.output
        assert "mechanics.incomplete.missing.latitude" in result.output


# --- a few rows made by hand, as the app makes them --------------------------------------------


def make_rows(url: str) -> dict[str, uuid.UUID]:
    """A customer, a mechanic (with an auth user), a vehicle, two sessions, three requests.

    The customer's accepted request has a live session; the mechanic also has a completed
    session of no request. ``sessions.mechanic_id`` holds what the shape's key says: the
    mechanic's auth user id (migrations), or their ``mechanics.id`` (live).
    """
    now = datetime.now().astimezone()
    with psycopg.connect(url, autocommit=True) as connection:
        live = is_live(url, connection)
        customer = add_user(connection, "ann@example.com")
        connection.execute(
            "UPDATE public.profiles SET full_name = 'Ann', city = 'Toronto', province = 'ON', "
            "postal_code = 'M5V 1A1', address_line1 = '1 Main St', country = 'Canada' "
            "WHERE id = %s",
            [customer],
        )
        mechanic_user = add_user(connection, "bob@example.com", role="mechanic")
        mechanic = insert(
            connection, "mechanics", user_id=mechanic_user, name="Bob", email="bob@example.com",
            profile_completion_score=90, city="Toronto", province="ON", postal_code="M4B 1B3",
            years_of_experience=8, red_seal_certified=True, red_seal_number="RS-1",
            specializations=["brakes"], application_status="approved",
        )
        vehicle = insert(connection, "vehicles", user_id=customer, make="Honda",
                         model="Civic", year="2019")
        held = mechanic if live else mechanic_user
        live_session = insert(
            connection, "sessions", type="chat", status="live", plan="chat10",
            stripe_session_id="cs_live", customer_user_id=customer, mechanic_id=held,
            started_at=now - timedelta(minutes=5), created_at=now - timedelta(minutes=9),
        )
        completed_session = insert(
            connection, "sessions", type="video", status="completed", plan="video15",
            stripe_session_id="cs_done", customer_user_id=customer, mechanic_id=held,
            started_at=now - timedelta(days=2), ended_at=now - timedelta(days=2, minutes=-45),
            duration_minutes=45, rating=5, created_at=now - timedelta(days=2, minutes=5),
        )
        copies = {"customer_name": "Ann", "customer_email": "ann@example.com",
                  "customer_city": "Toronto", "customer_country": "Canada",
                  "customer_postal_code": "M5V 1A1", "vehicle_id": vehicle}
        accepted = insert(
            connection, "session_requests", customer_id=customer, session_type="chat",
            plan_code="chat10", status="accepted", mechanic_id=mechanic,
            session_id=live_session, created_at=now - timedelta(minutes=10),
            accepted_at=now - timedelta(minutes=9),
            expires_at=now - timedelta(minutes=10) + timedelta(hours=1), **copies,
        )
        pending = insert(
            connection, "session_requests", customer_id=customer, session_type="video",
            plan_code="video15", status="pending", created_at=now - timedelta(minutes=3),
            expires_at=now - timedelta(minutes=3) + timedelta(hours=1), **copies,
        )
        cancelled = insert(
            connection, "session_requests", customer_id=customer, session_type="chat",
            plan_code="chat10", status="cancelled", created_at=now - timedelta(days=1),
            expires_at=now - timedelta(days=1) + timedelta(hours=1), **copies,
        )
    return {"customer": customer, "mechanic": mechanic, "mechanic_user": mechanic_user,
            "vehicle": vehicle, "accepted": accepted, "pending": pending,
            "cancelled": cancelled, "live_session": live_session,
            "completed_session": completed_session}


def test_hand_made_rows_are_measured(app_url: str) -> None:
    ids = make_rows(app_url)
    report = report_of(app_url, sample=5)
    data = report.to_dict()
    requests = data["session_requests"]
    assert requests["total"] == 3
    assert requests["by_status"] == {"accepted": 1, "cancelled": 1, "pending": 1}
    assert requests["by_session_type"] == {"chat": 2, "video": 1}
    assert (requests["assigned"], requests["unassigned"]) == (1, 2)
    assert requests["cancelled_before_assignment"] == 1
    assert requests["response_minutes"]["count"] == 1
    assert requests["without_customer_profile"] == 0
    assert [r["id"] for r in requests["sample"]] == [
        str(ids["cancelled"]), str(ids["accepted"]), str(ids["pending"])]
    customers = data["customers"]
    assert (customers["total"], customers["active"], customers["with_requests"]) == (1, 1, 1)
    assert customers["provinces"] == {"ON": 1}
    # The profile's email is the auth user's, copied by the app's trigger.
    assert customers["per_customer"][0]["email"] == "ann@example.com"
    mechanics = data["mechanics"]
    assert (mechanics["total"], mechanics["complete"], mechanics["participating"]) == (1, 1, 1)
    assert mechanics["by_type"] == {"virtual": 1}
    assert mechanics["per_mechanic"][0]["id"] == str(ids["mechanic"])
    assert mechanics["per_mechanic"][0]["name"] == "Bob"
    # sessions.mechanic_id names the mechanic by auth user id (migrations) or mechanics.id (live).
    assert data["sessions"] == {"total": 2, "by_status": {"completed": 1, "live": 1},
                                "completed_by_mechanic_type": {"virtual": 1}}
    assert dict(report.unavailable) == UNAVAILABLE
    assert [(r.rule, r.missing) for r in report.skipped_rules] == SKIPPED
    found = {r.rule: r.violations for r in report.integrity}
    # The vehicle's owner is user_id; the session's mechanic, its type and plan match.
    assert found["vehicle belongs to the customer"] == 0
    assert found["request has a session of a fitting status exactly when it should"] == 0
    assert found["mechanic and accepted_at exactly when the status implies them"] == 0
    assert found["customer copies equal the profile"] == 0
    assert found["finished sessions have start, end, matching duration and rating"] == 0


def test_broken_rows_of_the_app_are_counted(app_url: str) -> None:
    ids = make_rows(app_url)
    with psycopg.connect(app_url, autocommit=True) as connection:
        stranger = add_user(connection, "cy@example.com")
        other_vehicle = insert(connection, "vehicles", user_id=stranger, make="Kia",
                               model="Rio", year="2020")
        connection.execute("UPDATE public.session_requests SET vehicle_id = %s WHERE id = %s",
                           [other_vehicle, ids["accepted"]])
        # The live session now names another mechanic than the request's.
        other_user = add_user(connection, "dee@example.com", role="mechanic")
        other = insert(connection, "mechanics", user_id=other_user, name="Dee")
        held = other if is_live(app_url, connection) else other_user
        connection.execute("UPDATE public.sessions SET mechanic_id = %s WHERE id = %s",
                           [held, ids["live_session"]])
    report = report_of(app_url)
    found = {r.rule: r for r in report.integrity}
    assert found["vehicle belongs to the customer"].sample_ids == (str(ids["accepted"]),)
    fitting = found["request has a session of a fitting status exactly when it should"]
    assert fitting.sample_ids == (str(ids["accepted"]),)


@pytest.mark.parametrize("fmt", ["table", "markdown", "json"])
def test_seed_report_renders_hand_made_rows(app_url: str, fmt: str) -> None:
    make_rows(app_url)
    result = runner.invoke(app, ["report", "--db", app_url, "--format", fmt])
    assert result.exit_code == 0, result.output
    output = result.output
    if fmt == "json":
        data = json.loads(output)
        assert data["session_requests"]["total"] == 3
        assert data["sessions"]["completed_by_mechanic_type"] == {"virtual": 1}
        return
    lines = output.splitlines()
    if fmt == "markdown":
        assert "## Not available on this database" in lines
        assert "- **mechanics.incomplete.missing.latitude:** needs mechanics.latitude" in lines
        assert ("| workshop geography agrees | skipped | needs organizations.latitude, "
                "organizations.longitude |") in lines
        assert "- **Rules skipped (columns absent on this database):** 2" in lines
    else:
        assert "Not available on this database" in lines
        assert any(line.startswith("mechanics.incomplete.missing.longitude:")
                   and line.endswith("needs mechanics.longitude") for line in lines)
        assert any(line.startswith("complete mechanic geography agrees")
                   and "skipped" in line and line.endswith(
                       "needs mechanics.latitude, mechanics.longitude") for line in lines)


# --- what the catalog says is followed ---------------------------------------------------------


def test_a_session_mechanic_without_a_key_is_matched_either_way(app_db: str) -> None:
    ids = make_rows(app_db)
    with psycopg.connect(app_db, autocommit=True) as connection:
        connection.execute("ALTER TABLE public.sessions DROP CONSTRAINT sessions_mechanic_id_fkey")
        # One session names the mechanic by mechanics.id, the other by auth user id.
        connection.execute("UPDATE public.sessions SET mechanic_id = %s WHERE id = %s",
                           [ids["mechanic"], ids["live_session"]])
        connection.execute(
            "UPDATE public.sessions SET status = 'completed', ended_at = started_at "
            "+ interval '30 minutes', duration_minutes = 30, rating = 4 WHERE id = %s",
            [ids["live_session"]],
        )
    report = report_of(app_db)
    assert report.sessions.completed_by_mechanic_type == {"virtual": 2}
    engine = database.engine_for(app_db)
    try:
        with engine.connect() as connection:
            assert shape_of(read_catalog(connection)).session_mechanic == "either"
    finally:
        engine.dispose()


def test_the_shapes_read_the_app_as_the_catalog_says(app_url: str) -> None:
    engine = database.engine_for(app_url)
    try:
        with engine.connect() as connection:
            shape = shape_of(read_catalog(connection))
            live = connection.execute(sa.text(
                "SELECT confrelid::regclass::text FROM pg_constraint "
                "WHERE conname = 'sessions_mechanic_id_fkey'")).scalar_one() == "mechanics"
    finally:
        engine.dispose()
    relations = dict(shape.relations)
    assert shape.has_auth
    assert shape.session_mechanic == ("mechanics" if live else "users")
    assert "t.user_id AS customer_id" in relations["vehicles"]
    # The enum without 'completed' is read as text; the live text column is read as it is.
    assert ("t.status::text AS status" in relations.get("session_requests", "")) is not live
    # The live sessions.type (an enum) is compared with a text session_type: read as text.
    assert ("t.type::text AS type" in relations["sessions"]) is live
    assert ("coalesce(mu.id, t.mechanic_id) AS mechanic_id" in relations["sessions"]) is not live


# --- what the report cannot measure ------------------------------------------------------------


def test_targets_on_an_unavailable_metric_are_not_measurable(app_db_live: str) -> None:
    make_rows(app_db_live)
    with psycopg.connect(app_db_live, autocommit=True) as connection:
        connection.execute("ALTER TABLE public.session_requests DROP COLUMN is_urgent")
    targets = parse_targets({"session_requests.urgent": "== 0",
                             "session_requests.total": ">= 3",
                             "integrity_violations": ">= 0"})
    report = report_of(app_db_live, targets=targets)
    assert report.unavailable["session_requests.urgent"] == ("session_requests.is_urgent",)
    urgent, total, violations = report.targets
    assert (urgent.current, urgent.met, urgent.missing) == (
        None, False, ("session_requests.is_urgent",))
    assert urgent.status == "not measurable (needs session_requests.is_urgent)"
    assert (total.met, total.measurable) == (True, True)
    data = report.to_dict()
    assert data["session_requests"]["urgent"] is None
    assert data["session_requests"]["total"] == 3
    assert data["targets"][0] == {"metric": "session_requests.urgent", "current": None,
                                  "needed": "== 0", "met": False,
                                  "missing": ["session_requests.is_urgent"]}
    assert "missing" not in data["targets"][1]
    markdown = render(report, "markdown").splitlines()
    assert ("| session_requests.urgent | — | == 0 | not measurable: needs "
            "session_requests.is_urgent |") in markdown
    assert any(line.startswith("| integrity_violations | ")
               and line.endswith(" | >= 0 | ✅ (2 rules skipped) |") for line in markdown)
    assert "- **Urgent:** not available" in markdown
    assert "- **session_requests.urgent:** needs session_requests.is_urgent" in markdown
    text = render(report, "table")
    assert "NOT MET" not in text.split("Current State Assessment")[1].split("Integrity")[0]


def test_a_missing_table_is_one_line_without_a_migration_to_apply(app_db: str) -> None:
    with psycopg.connect(app_db, autocommit=True) as connection:
        connection.execute("DROP TABLE public.session_requests")
    with pytest.raises(SchemaError) as caught:
        report_of(app_db)
    message = str(caught.value)
    assert message == (
        "table public.session_requests is missing; the report needs the app's tables "
        "organizations, vehicles, mechanics, profiles, sessions, session_requests in schema "
        "public: is this the app's database?")
    result = runner.invoke(app, ["report", "--db", app_db])
    assert result.exit_code == 2
    assert "table public.session_requests is missing" in result.output
    assert "migration" not in result.output and "seed db create" not in result.output


# --- every column: declared by what reads it ----------------------------------------------------


def _strict(shape: Shape) -> Shape:
    """The shape, reading every table by its name: a query that reads a column it lacks fails.

    (On the tool's schema less one column, that column's stand-in is all the shape adds.)
    """
    return dataclasses.replace(shape, relations=())


def test_every_column_the_report_reads_is_declared(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Drop each column of the tool's schema in turn: the report still runs, no rule that
    # runs reads the column, and a metric query that reads it belongs to a metric naming it.
    now = datetime(2026, 1, 1).astimezone()
    strict_shape: list[Shape] = []
    real_shape_of: Callable[..., Shape] = shape_of
    with engine.connect() as connection:
        for table in APP_TABLES:
            for column in table.columns:
                name = f"{table.name}.{column.name}"
                dropped = connection.begin_nested()
                connection.execute(sa.text(
                    f'ALTER TABLE "{table.name}" DROP COLUMN "{column.name}" CASCADE'))
                report = build_report(connection, now=now)
                named = {c for missing in report.unavailable.values() for c in missing}
                shape = _strict(real_shape_of(read_catalog(connection)))
                step = connection.begin_nested()
                integrity.check(connection, now, reader=shape)  # the rules run: none reads it
                step.rollback()
                strict_shape[:] = [shape]
                monkeypatch.setattr(build, "shape_of", lambda _: strict_shape[0])
                step = connection.begin_nested()
                try:
                    build_report(connection, now=now)
                except SchemaError as error:
                    assert column.name in str(error), error
                    assert name in named or name in metrics.OPTIONAL_COLUMNS, (
                        f"{name} is read by a metric that does not declare it")
                finally:
                    step.rollback()
                    monkeypatch.setattr(build, "shape_of", real_shape_of)
                dropped.rollback()


def test_a_target_under_an_unavailable_map_is_not_measurable() -> None:
    from seeding.scenario.targets import evaluate

    report = {"version": 2, "session_requests": {"total": 4, "by_status": None},
              "unavailable": [{"metric": "session_requests.by_status",
                               "missing": ["session_requests.status"]}]}
    targets = parse_targets({"session_requests.by_status.completed": ">= 1",
                             "session_requests.total": "== 4"})
    completed, total = evaluate(report, targets)
    assert (completed.current, completed.met, completed.missing) == (
        None, False, ("session_requests.status",))
    assert (total.current, total.met, total.measurable) == (4, True, True)
    assert total.status == "met" and "missing" not in total.to_dict()
