"""The app's vocabularies and rules: values its CHECKs admit, where facts live, one open session.

The app's real database (the team's shared app-schema.md, built by ``tests/app_shape.sql``) is
the authority: every value the factories write is one its CHECKs admit; a priority broadcast
is a 'broadcast' request named in its session's metadata; a customer's profile holds the place
in both of the app's forms; a customer has at most one open session, in every scenario, with
or without the app's unique index.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

import factories
from factories import (
    CustomerFactory,
    MechanicFactory,
    SessionFactory,
    SessionRequestFactory,
)
from seeding.db import database, writer
from seeding.db.catalog import Catalog, read_catalog
from seeding.domain import integrity
from seeding.domain.lifecycle import OPEN_SESSION_STATUSES, PRIORITY_WINDOW_MINUTES
from seeding.domain.schema import Profile, Session, SessionRequest
from seeding.domain.vocabularies import (
    APPLICATION_STATUSES,
    CHECKED_FOLLOW_UP_TYPES,
    CUSTOMER_ACCOUNT_TYPES,
    CUSTOMER_ROLE,
    FOLLOW_UP_TYPES,
    MECHANIC_ACCOUNT_TYPES,
    MECHANIC_ROLE,
    MECHANIC_TYPES,
    ORGANIZATION_STATUSES,
    ORGANIZATION_TYPES,
    PARTICIPATION_MODES,
    PRIORITY_BROADCAST_METADATA,
    PROFILE_ROLES,
    PROVINCE_NAMES,
    PROVINCES,
    REQUEST_TYPES,
    ROUTING_TYPES,
    ROUTINGS,
    SERVICE_TIERS,
    SPECIALIST_TIERS,
    VERIFICATION_STATUSES,
)
from seeding.errors import FactoryRuleError, ScenarioError
from seeding.pytest_plugin import SeedServer
from seeding.report import build_report
from seeding.runner import prepare, run_scenario
from seeding.scenario.builder import Built
from seeding.scenario.kinds import KINDS

NOW = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)

#: Each column the app's CHECK limits to a list, and the tool's vocabulary of what it writes
#: there: the same set.
CHECKED: dict[tuple[str, str], tuple[str, ...]] = {
    ("profiles", "account_type"): CUSTOMER_ACCOUNT_TYPES,
    ("mechanics", "account_type"): MECHANIC_ACCOUNT_TYPES,
    ("mechanics", "application_status"): APPLICATION_STATUSES,
    ("mechanics", "service_tier"): SERVICE_TIERS,
    ("mechanics", "participation_mode"): PARTICIPATION_MODES,
    ("mechanics", "specialist_tier"): SPECIALIST_TIERS,
    ("organizations", "organization_type"): ORGANIZATION_TYPES,
    ("organizations", "status"): ORGANIZATION_STATUSES,
    ("organizations", "verification_status"): VERIFICATION_STATUSES,
    ("session_requests", "routing_type"): ROUTING_TYPES,
    ("session_requests", "request_type"): REQUEST_TYPES,
    ("session_requests", "follow_up_type"): CHECKED_FOLLOW_UP_TYPES,
}

OPEN_INDEX = (
    "CREATE UNIQUE INDEX sessions_one_open_per_customer_idx ON sessions (customer_user_id) "
    "WHERE status IN ('pending', 'waiting', 'live', 'scheduled')"
)


@pytest.fixture(scope="module")
def app_catalog(test_server: SeedServer) -> Iterator[Catalog]:
    """The catalog of a database shaped like the app's live one (made once for the module)."""
    from app_shape import create_app_shape

    name = test_server.create_database("seeding_test_")
    url = test_server.database_url(name)
    create_app_shape(url, live=True)
    with psycopg.connect(url) as connection:
        catalog = read_catalog(connection)
    yield catalog
    test_server.drop_database(name)


def _built(name: str, **options: Any) -> Built:
    return prepare(name, **options)[1]


def _scenario(tmp_path: Path, body: str, name: str = "mine.yaml") -> str:
    path = tmp_path / name
    path.write_text(
        "description: test\nseed: 3\nclock: {now: 2026-03-01T10:00:00-05:00}\n"
        + textwrap.dedent(body)
    )
    return str(path)


def _of(built: Built, model: type) -> list[Any]:
    return [row for row in built.rows if isinstance(row, model)]


def _open_per_customer(built: Built) -> Counter[Any]:
    return Counter(
        s.customer_user_id for s in _of(built, Session)
        if s.status in OPEN_SESSION_STATUSES and s.customer_user_id is not None
    )


# --- vocabularies: the app's CHECKs ---------------------------------------------------------


def test_each_checked_vocabulary_is_the_app_s_check(app_catalog: Catalog) -> None:
    for (table, name), vocabulary in CHECKED.items():
        found = app_catalog.table(table)
        assert found is not None, table
        column = found.column(name)
        assert column is not None and column.allowed is not None, f"{table}.{name}"
        assert set(column.allowed) == set(vocabulary), f"{table}.{name}"


def test_every_value_the_shipped_scenarios_write_is_one_the_app_admits(
    app_catalog: Catalog,
) -> None:
    checked = 0
    for name in ("baseline", "diverse", "load"):
        for row in _built(name).rows:
            table = app_catalog.table(row.__tablename__)
            assert table is not None
            for attribute in row.__mapper__.column_attrs:
                column = table.column(attribute.columns[0].name)
                if column is None or column.allowed is None:
                    continue
                value = getattr(row, attribute.key)
                assert value is None or str(value) in column.allowed, (
                    f"{name}: {row.__tablename__}.{column.name} {value!r}"
                )
                checked += 1
    assert checked > 1_000


def test_the_scenario_vocabularies_accept_the_union_where_sources_disagree() -> None:
    requests = KINDS["session_request"].vocabularies
    assert set(CHECKED_FOLLOW_UP_TYPES) < set(requests["follow_up_type"]) == set(FOLLOW_UP_TYPES)
    assert {"quick_question", "mini_extension", "new_issue"} <= set(FOLLOW_UP_TYPES)
    assert requests["routing_type"] == ROUTINGS == (*ROUTING_TYPES, "priority_broadcast")
    assert KINDS["customer"].vocabularies["account_type"] == CUSTOMER_ACCOUNT_TYPES
    assert KINDS["mechanic"].vocabularies["account_type"] == MECHANIC_ACCOUNT_TYPES
    assert KINDS["mechanic"].vocabularies["participation_mode"] == PARTICIPATION_MODES


def test_a_follow_up_type_of_the_union_is_accepted_and_one_outside_is_refused(
    tmp_path: Path,
) -> None:
    step = """
    steps:
      - create: session_request
        traits: [completed, follow_up]
        fields: {{follow_up_type: {}}}
    """
    built = _built(_scenario(tmp_path, step.format("quick_question")))
    assert [r.follow_up_type for r in _of(built, SessionRequest)] == ["quick_question"]
    with pytest.raises(ScenarioError, match=r"unknown value 'same_issue'.*continuation"):
        prepare(_scenario(tmp_path, step.format("same_issue")))


def test_follow_ups_draw_their_type_from_the_check_s_values() -> None:
    factories.reseed(4)
    with factories.clock(NOW), factories.collect():
        requests = SessionRequestFactory.build_batch(60, completed=True, follow_up=True)
    assert {r.follow_up_type for r in requests} == set(CHECKED_FOLLOW_UP_TYPES)


@pytest.mark.parametrize("mechanic_type", MECHANIC_TYPES)
def test_every_mechanic_type_takes_micro_and_full_sessions(mechanic_type: str) -> None:
    factories.reseed(6)
    with factories.collect():
        mechanics = MechanicFactory.build_batch(20, **{mechanic_type: True})
    assert {m.participation_mode for m in mechanics} == {"both"}
    with factories.collect():
        chosen = MechanicFactory.build(participation_mode="micro_only", **{mechanic_type: True})
    assert chosen.participation_mode == "micro_only"


def test_profiles_roles_customers_and_mechanics() -> None:
    factories.reseed(2)
    assert CustomerFactory.build().role == CUSTOMER_ROLE == "customer"
    # The app admits only 'mechanic' to its mechanic pages: a mechanic's auth user carries it
    # (the profile trigger copies it into profiles.role).
    assert KINDS["mechanic"].auth_role == MECHANIC_ROLE == "mechanic"
    assert KINDS["customer"].auth_role == CUSTOMER_ROLE
    assert {CUSTOMER_ROLE, MECHANIC_ROLE} <= set(PROFILE_ROLES)


# --- a priority broadcast, as the app stores it ---------------------------------------------


@pytest.mark.parametrize("asked", [{"priority_broadcast": True},
                                   {"routing_type": "priority_broadcast"}])
def test_a_priority_broadcast_is_a_broadcast_named_in_its_session(asked: dict[str, Any]) -> None:
    factories.reseed(8)
    with factories.clock(NOW), factories.collect():
        accepted = SessionRequestFactory.build(accepted=True, **asked)
        pending = SessionRequestFactory.build(pending=True, **asked)
    for request in (accepted, pending):
        assert request.routing_type == "broadcast"
        assert request.preferred_mechanic_id is not None
        assert request.priority_window_minutes == PRIORITY_WINDOW_MINUTES
        assert request.priority_notified_at > request.created_at
    assert accepted.preferred_mechanic_id == accepted.mechanic_id
    assert pending.session_id is None


def test_the_session_of_a_priority_broadcast_carries_it_in_metadata() -> None:
    factories.reseed(8)
    with factories.clock(NOW), factories.collect() as rows:
        SessionRequestFactory.build(completed=True, priority_broadcast=True)
        SessionRequestFactory.build(completed=True)
        SessionRequestFactory.build(completed=True, hybrid=True)
    priority, plain, hybrid = _of_rows(rows, Session)
    assert priority.metadata_ == {"plan_name": priority.metadata_["plan_name"],
                                  **PRIORITY_BROADCAST_METADATA}
    assert PRIORITY_BROADCAST_METADATA == {"routing_type": "priority_broadcast"}
    assert "routing_type" not in plain.metadata_ and "routing_type" not in hybrid.metadata_
    assert SessionFactory.build(priority_broadcast=True).metadata_["routing_type"] == (
        "priority_broadcast"
    )


def _of_rows(rows: list[object], model: type) -> list[Any]:
    return [row for row in rows if isinstance(row, model)]


def test_a_priority_broadcast_routed_otherwise_is_refused() -> None:
    with pytest.raises(FactoryRuleError, match="a priority broadcast is a broadcast"):
        SessionRequestFactory.build(priority_broadcast=True, routing_type="hybrid")
    with pytest.raises(FactoryRuleError, match="a priority broadcast is a broadcast"):
        SessionRequestFactory.build(priority_broadcast=True, workshop_only=True)


def test_a_scenario_asks_for_priority_broadcasts_by_routing_and_gets_the_app_s_rows(
    tmp_path: Path,
) -> None:
    built = _built(_scenario(tmp_path, """
    steps:
      - create: mechanic
        count: 3
      - create: session_request
        count: 8
        traits: [completed]
        with: {mechanic: {any: mechanic}}
        mix:
          routing_type: {priority_broadcast: 4, broadcast: 2, hybrid: 2}
    """))
    requests = _of(built, SessionRequest)
    assert Counter(r.routing_type for r in requests) == {"broadcast": 6, "hybrid": 2}
    priority = [r for r in requests if r.preferred_mechanic_id is not None]
    assert len(priority) == 4
    sessions = {s.id: s for s in _of(built, Session)}
    assert all(sessions[r.session_id].metadata_.get("routing_type") == "priority_broadcast"
               for r in priority)
    assert all(r.priority_notified_at is None for r in requests if r not in priority)


def test_the_report_counts_priority_broadcasts_and_checks_their_sessions(
    engine: sa.Engine,
) -> None:
    factories.reseed(12)
    with factories.clock(NOW), factories.collect() as rows:
        for trait in ("completed", "accepted", "pending", "expired"):
            SessionRequestFactory.build_batch(3, **{trait: True}, priority_broadcast=True)
            SessionRequestFactory.build_batch(2, **{trait: True})
    with engine.begin() as connection:
        writer.write(connection, rows)
    with engine.connect() as connection:
        report = build_report(connection, now=NOW)
        assert report.session_requests.priority_broadcasts == 12
        assert dict(report.session_requests.by_routing_type) == {"broadcast": 20}
        assert report.to_dict()["session_requests"]["priority_broadcasts"] == 12
        assert {v.rule: v.count for v in integrity.check(connection, NOW) if v.count} == {}
        # A priority broadcast's session that forgot it, and a plain one that claims it.
        connection.execute(sa.text(
            "UPDATE sessions SET metadata = metadata - 'routing_type' WHERE id = (SELECT "
            "min(session_id::text)::uuid FROM session_requests "
            "WHERE preferred_mechanic_id IS NOT NULL)"))
        connection.execute(sa.text(
            "UPDATE sessions SET metadata = metadata || '{\"routing_type\": "
            "\"priority_broadcast\"}' WHERE id = (SELECT min(session_id::text)::uuid FROM "
            "session_requests WHERE preferred_mechanic_id IS NULL)"))
        broken = {v.rule: v.count for v in integrity.check(connection, NOW) if v.count}
        connection.rollback()
    assert broken == {"routing fields agree with routing_type": 2}


# --- the profile's place, in both of the app's forms ----------------------------------------


@pytest.mark.parametrize("province", PROVINCES)
def test_a_customer_s_profile_has_both_pairs(province: str) -> None:
    factories.reseed(9)
    customer = CustomerFactory.build(province=province)
    assert customer.province == province
    assert customer.state_province == PROVINCE_NAMES[province]
    assert customer.postal_zip_code == customer.postal_code
    assert customer.postal_zip_code[3] == " " and len(customer.postal_zip_code) == 7


def test_a_profile_pair_that_disagrees_is_refused_with_the_fix() -> None:
    with pytest.raises(FactoryRuleError, match="state_province 'Alberta' does not match"):
        CustomerFactory.build(province="ON", state_province="Alberta")
    with pytest.raises(FactoryRuleError, match="leave postal_zip_code to the factory"):
        CustomerFactory.build(province="ON", postal_zip_code="V6B 1A1")
    empty = CustomerFactory.build(province=None, postal_code=None, city=None)
    assert (empty.state_province, empty.postal_zip_code) == (None, None)


def test_an_update_moves_both_pairs_and_the_request_copies(tmp_path: Path) -> None:
    built = _built(_scenario(tmp_path, """
    steps:
      - create: customer
        ref: moving
        fields: {city: Toronto}
      - create: session_request
        count: 2
        traits: [completed]
        with: {customer: moving}
      - update: moving
        fields: {city: Calgary}
        regenerate: [city, province, postal_code, latitude, longitude]
    """))
    [customer] = _of(built, Profile)
    assert (customer.province, customer.state_province) == ("AB", "Alberta")
    assert customer.postal_zip_code == customer.postal_code
    assert customer.postal_code.startswith("T")
    assert {r.customer_postal_code for r in _of(built, SessionRequest)} == {customer.postal_code}


# --- one open session per customer ----------------------------------------------------------


@pytest.mark.parametrize(("name", "options"), [
    ("baseline", {}), ("diverse", {}), ("diverse", {"scale": 2}), ("diverse", {"seed": 5}),
    ("load", {}), ("load", {"seed": 11}),
])
def test_every_shipped_scenario_gives_a_customer_one_open_session(
    name: str, options: dict[str, Any]
) -> None:
    built = _built(name, **options)
    open_sessions = _open_per_customer(built)
    assert max(open_sessions.values(), default=0) <= 1
    if name != "baseline":
        assert sum(open_sessions.values()) >= 10


def test_a_pick_gives_a_row_that_opens_a_session_a_customer_without_one(tmp_path: Path) -> None:
    body = """
    steps:
      - create: customer
        ref: people
        count: 3
      - create: session_request
        traits: [accepted]
        with: {customer: people}
      - create: session_request
        count: 2
        traits: [accepted]
        mix: {session_status: {live: 1, scheduled: 1}}
        with: {customer: {any: customer}}
      - create: session_request
        count: 4
        traits: [completed]
        with: {customer: {ref: people}}
    """
    built = _built(_scenario(tmp_path, body))
    assert sorted(_open_per_customer(built).values()) == [1, 1, 1]
    # One more open session than there are customers: refused, naming the step.
    one_more = body + """
      - create: session
        fields: {status: waiting}
        with: {customer: {any: customer}}
    """
    with pytest.raises(ScenarioError) as caught:
        prepare(_scenario(tmp_path, one_more))
    message = str(caught.value)
    assert message.startswith(str(tmp_path / "mine.yaml") + ":")
    assert "steps[4].with.customer: every customer of the pick (3) already has an open session" in (
        message
    )


def test_a_customer_named_by_ref_with_an_open_session_is_refused(tmp_path: Path) -> None:
    path = _scenario(tmp_path, """
    steps:
      - create: customer
        ref: cust1
      - create: session_request
        traits: [accepted]
        with: {customer: cust1}
      - create: session_request
        traits: [accepted]
        fields: {session_status: scheduled}
        with: {customer: cust1}
    """)
    with pytest.raises(ScenarioError) as caught:
        prepare(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:11: steps[2]: customer cust1 (")
    assert (f"would have two open sessions, a scheduled one from here and a waiting one from "
            f"{path}:8: steps[1]; the app allows a customer one open session") in message


def test_an_update_that_opens_a_second_session_is_refused(tmp_path: Path) -> None:
    path = _scenario(tmp_path, """
    steps:
      - create: customer
        ref: cust1
      - create: session
        ref: first
        fields: {status: live}
        with: {customer: cust1}
      - create: session
        ref: second
        with: {customer: cust1}
      - update: second
        set: {status: pending}
    """)
    with pytest.raises(ScenarioError, match=r"steps\[3\]: customer cust1 .* two open sessions"):
        prepare(path)


def test_a_finished_session_and_an_open_one_are_fine(tmp_path: Path) -> None:
    built = _built(_scenario(tmp_path, """
    steps:
      - create: customer
        ref: cust1
      - create: session
        count: 4
        mix: {status: {completed: 2, cancelled: 1, live: 1}}
        with: {customer: cust1}
    """))
    assert list(_open_per_customer(built).values()) == [1]


@pytest.mark.parametrize(("name", "scale"), [("diverse", 1.0), ("load", 0.02)])
def test_shipped_scenarios_write_under_the_app_s_open_session_index(
    pg_url: str, name: str, scale: float
) -> None:
    engine = database.engine_for(pg_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(OPEN_INDEX))
        run_scenario(name, database_url=pg_url, scale=scale)
        with engine.connect() as connection:
            most = connection.execute(sa.text(
                "SELECT max(n) FROM (SELECT count(*) AS n FROM sessions WHERE status IN "
                "('pending', 'waiting', 'live', 'scheduled') GROUP BY customer_user_id) t"
            )).scalar_one()
    finally:
        engine.dispose()
    assert most == 1


def test_the_model_writes_both_location_pairs_of_a_profile() -> None:
    columns = set(Profile.__table__.columns.keys())
    assert {"province", "postal_code", "state_province", "postal_zip_code"} <= columns
