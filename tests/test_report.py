"""The report: every metric on hand-made rows, every rule on a broken row, failures never zeros."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

import factories
from factories import MechanicFactory, SessionFactory, SessionRequestFactory
from seeding.db import database, writer
from seeding.domain import integrity
from seeding.domain.schema import MODELS
from seeding.errors import DatabaseError, SchemaError
from seeding.pytest_plugin import SeedServer
from seeding.report import build_report, lanes, render
from seeding.report.build import translated_errors
from seeding.report.model import span_days
from seeding.scenario.targets import KNOWN_METRICS, MAP_METRICS, OPEN_MAP_METRICS, parse_targets

NOW = datetime(2025, 11, 12, 17, 0, tzinfo=UTC)
TORONTO = ZoneInfo("America/Toronto")
# The audit's oldest and newest requests, in Toronto time (DST ended between them).
OLDEST = datetime(2025, 10, 29, 0, 45, 48, tzinfo=TORONTO)
NEWEST = datetime(2025, 11, 6, 14, 5, 57, tzinfo=TORONTO)


def uid(n: int) -> uuid.UUID:
    """A readable, ordered id: 00000000-0000-0000-0000-0000000000nn."""
    return uuid.UUID(int=n)


def insert(connection: sa.Connection, table: str, **values: Any) -> None:
    connection.execute(sa.insert(MODELS[table].__table__).values(**values))  # type: ignore[arg-type]


# Hand-made rows: the audit's questions, small enough to count by hand.
C1, C2, C3, GHOST, MECHANIC_USER = uid(1), uid(2), uid(3), uid(4), uid(5)
W1, W2, CORP = uid(11), uid(12), uid(13)
M_WORK, M_IND, M_VIRT, M_VIRT2, M_BAD = uid(21), uid(22), uid(23), uid(24), uid(25)
S1, S2, S3, S4 = uid(31), uid(32), uid(33), uid(34)
R = {n: uid(40 + n) for n in range(1, 9)}


def _org(connection: sa.Connection, id_: uuid.UUID, kind: str, province: str) -> None:
    insert(connection, "organizations", id=id_, name=f"org {id_}", slug=f"org-{id_}",
           email=f"org{id_.int}@example.com", organization_type=kind, province=province)


def _profile(connection: sa.Connection, id_: uuid.UUID, role: str, **geo: Any) -> None:
    insert(connection, "profiles", id=id_, role=role, email=f"user{id_.int}@example.com", **geo)


FULL_GEO = {"address_line1": "1 Main St", "city": "Toronto", "province": "ON",
            "postal_code": "M5V 1A1", "latitude": 43.7, "longitude": -79.4}


def _mechanic(connection: sa.Connection, id_: uuid.UUID, minute: int, **values: Any) -> None:
    insert(connection, "mechanics", id=id_, email=f"mech{id_.int}@example.com",
           created_at=NOW - timedelta(days=30) + timedelta(minutes=minute), **values)


def _request(connection: sa.Connection, n: int, customer: uuid.UUID, status: str, kind: str,
             created: datetime, mechanic: uuid.UUID | None = None,
             response: float | None = None, **values: Any) -> None:
    accepted = created + timedelta(minutes=response) if response is not None else None
    insert(connection, "session_requests", id=R[n], customer_id=customer, status=status,
           session_type=kind, mechanic_id=mechanic, created_at=created, accepted_at=accepted,
           customer_email=f"copy{customer.int}@example.com", **values)


def make_audit_like(connection: sa.Connection) -> None:
    _profile(connection, C1, "customer", **FULL_GEO)
    _profile(connection, C2, "customer", city="Montréal", province="QC", postal_code="H2X 1Y4",
             address_line1="2 Rue", latitude=None, longitude=None)
    _profile(connection, C3, "customer", **{**FULL_GEO, "province": "BC", "city": "Vancouver",
                                             "postal_code": "V6B 1A1"})
    _profile(connection, MECHANIC_USER, "mechanic", **FULL_GEO)
    _org(connection, W1, "workshop", "ON")
    _org(connection, W2, "workshop", "QC")
    _org(connection, CORP, "corporate", "ON")
    complete = {"city": "Toronto", "province": "ON", "postal_code": "M4B 1B3",
                "years_of_experience": 8}
    _mechanic(connection, M_WORK, 1, workshop_id=W1, account_type="workshop_mechanic",
              profile_completion_score=90, latitude=43.7, longitude=-79.4,
              red_seal_certified=True, specializations=["brakes"], **complete)
    _mechanic(connection, M_IND, 2, workshop_id=W2, account_type="individual_mechanic",
              profile_completion_score=85, **complete)
    _mechanic(connection, M_VIRT, 3, account_type="individual_mechanic",
              profile_completion_score=40)
    _mechanic(connection, M_VIRT2, 4, account_type="individual_mechanic",
              profile_completion_score=95, province="ON", postal_code="M5V 1A1",
              years_of_experience=5, latitude=43.7, longitude=-79.4, red_seal_certified=True,
              specializations=[])
    _mechanic(connection, M_BAD, 5, account_type="workshop_mechanic")
    insert(connection, "sessions", id=S1, type="chat", status="completed", plan="chat10",
           stripe_session_id="cs_1", mechanic_id=M_WORK)
    insert(connection, "sessions", id=S2, type="video", status="completed", plan="video15",
           stripe_session_id="cs_2", mechanic_id=M_IND)
    insert(connection, "sessions", id=S3, type="chat", status="refunded", plan="chat10",
           stripe_session_id="cs_3", mechanic_id=M_IND)
    insert(connection, "sessions", id=S4, type="chat", status="completed", plan="chat10",
           stripe_session_id="cs_4")
    hour = timedelta(hours=1)
    _request(connection, 1, C1, "completed", "chat", OLDEST, M_WORK, 2, workshop_id=W1)
    _request(connection, 2, C1, "completed", "video", OLDEST + hour, M_WORK, 10.5,
             workshop_id=W1, preferred_mechanic_id=M_WORK, is_follow_up=True)
    _request(connection, 3, C1, "cancelled", "chat", OLDEST + 2 * hour, M_IND, 0.5)
    _request(connection, 4, C1, "cancelled", "chat", OLDEST + 3 * hour, routing_type=None)
    _request(connection, 5, C2, "cancelled", "diagnostic", OLDEST + 4 * hour)
    _request(connection, 6, C2, "pending", "chat", NEWEST)
    _request(connection, 7, GHOST, "expired", "chat", OLDEST + 5 * hour, routing_type="hybrid",
             preferred_workshop_id=W2, is_urgent=True, request_type="brand_specialist",
             requested_brand="BMW")
    _request(connection, 8, C2, "accepted", "video", OLDEST + 6 * hour, M_IND, 4.25)


@pytest.fixture
def audit_like(engine: sa.Engine) -> dict[str, Any]:
    with engine.begin() as connection:
        make_audit_like(connection)
        report = build_report(connection, now=NOW, sample=3)
    return report.to_dict()


def test_status_breakdown_holds_only_occurring_values(audit_like: dict[str, Any]) -> None:
    requests = audit_like["session_requests"]
    assert requests["total"] == 8
    assert requests["by_status"] == {"cancelled": 3, "completed": 2, "accepted": 1,
                                     "expired": 1, "pending": 1}
    assert "unattended" not in requests["by_status"]
    assert requests["share_by_status"]["cancelled"] == 0.375
    assert requests["by_session_type"] == {"chat": 5, "video": 2, "diagnostic": 1}
    assert requests["share_by_session_type"] == {"chat": 0.625, "video": 0.25, "diagnostic": 0.125}
    assert requests["by_request_type"] == {"general": 7, "brand_specialist": 1}


def test_assignment_and_cancellation_timing(audit_like: dict[str, Any]) -> None:
    requests = audit_like["session_requests"]
    assert (requests["assigned"], requests["unassigned"]) == (4, 4)
    assert requests["cancelled_before_assignment"] == 2
    assert requests["cancelled_after_assignment"] == 1


def test_response_minutes_are_exact(audit_like: dict[str, Any]) -> None:
    # 2 + 10.5 + 0.5 + 4.25 = 17.25 over 4 responses: 4.3125, rounded to 4.31.
    assert audit_like["session_requests"]["response_minutes"] == {
        "count": 4, "avg": 4.31, "min": 0.5, "max": 10.5}


def test_time_span_of_the_audit_is_nine_days(audit_like: dict[str, Any]) -> None:
    requests = audit_like["session_requests"]
    assert requests["oldest"] == "2025-10-29T04:45:48+00:00"
    assert requests["newest"] == "2025-11-06T19:05:57+00:00"
    assert requests["span_days"] == 9


def test_routing_follow_ups_urgency_and_missing_profiles(audit_like: dict[str, Any]) -> None:
    requests = audit_like["session_requests"]
    assert requests["by_routing_type"] == {"broadcast": 6, "hybrid": 1, "(none)": 1}
    assert requests["with_workshop"] == 2
    assert requests["with_preferred_workshop"] == 1
    assert requests["with_preferred_mechanic"] == 1
    assert requests["follow_ups"] == 1
    assert requests["urgent"] == 1
    assert requests["without_customer_profile"] == 1


def test_sample_is_the_first_requests_by_created_at(audit_like: dict[str, Any]) -> None:
    assert audit_like["session_requests"]["sample"] == [
        {"id": str(R[1]), "status": "completed", "session_type": "chat",
         "created_at": "2025-10-29T04:45:48+00:00"},
        {"id": str(R[2]), "status": "completed", "session_type": "video",
         "created_at": "2025-10-29T05:45:48+00:00"},
        {"id": str(R[3]), "status": "cancelled", "session_type": "chat",
         "created_at": "2025-10-29T06:45:48+00:00"},
    ]


def test_customers_per_customer_and_geography(audit_like: dict[str, Any]) -> None:
    customers = audit_like["customers"]
    assert customers["total"] == 3
    assert customers["active"] == 3
    assert customers["with_requests"] == 2
    assert customers["with_full_geo"] == 2
    assert customers["provinces"] == {"BC": 1, "ON": 1, "QC": 1}
    assert customers["province_count"] == 3
    assert customers["per_customer"] == [
        {"id": str(C1), "email": "user1@example.com", "has_profile": True, "total": 4,
         "by_status": {"cancelled": 2, "completed": 2}},
        {"id": str(C2), "email": "user2@example.com", "has_profile": True, "total": 3,
         "by_status": {"accepted": 1, "cancelled": 1, "pending": 1}},
        {"id": str(GHOST), "email": "copy4@example.com", "has_profile": False, "total": 1,
         "by_status": {"expired": 1}},
    ]


def test_mechanics_types_completeness_and_participation(audit_like: dict[str, Any]) -> None:
    mechanics = audit_like["mechanics"]
    assert mechanics["total"] == 5
    assert mechanics["by_type"] == {"virtual": 3, "independent": 1, "workshop": 1}
    assert mechanics["complete"] == 2
    assert mechanics["complete_by_type"] == {"independent": 1, "workshop": 1}
    assert mechanics["incomplete_count"] == 3
    assert mechanics["participating"] == 2
    assert mechanics["with_completed_session"] == 1
    assert mechanics["per_mechanic"] == [
        {"id": str(M_WORK), "name": None, "email": "mech21@example.com", "type": "workshop",
         "total": 2, "by_status": {"completed": 2}},
        {"id": str(M_IND), "name": None, "email": "mech22@example.com", "type": "independent",
         "total": 2, "by_status": {"accepted": 1, "cancelled": 1}},
    ]


def test_incomplete_mechanics_list_what_they_miss(audit_like: dict[str, Any]) -> None:
    incomplete = {m["id"]: m for m in audit_like["mechanics"]["incomplete"]}
    assert list(incomplete) == [str(M_VIRT), str(M_VIRT2), str(M_BAD)]
    assert incomplete[str(M_VIRT)]["missing"] == [
        "city", "province", "postal_code", "years_of_experience", "latitude", "longitude",
        "red_seal", "specializations"]
    assert incomplete[str(M_VIRT)]["profile_completion_score"] == 40
    # Score 95, but no city: incomplete, and an empty specializations array counts as missing.
    assert incomplete[str(M_VIRT2)]["missing"] == ["city", "specializations"]
    assert incomplete[str(M_BAD)]["type"] == "virtual"


def test_workshops_and_sessions(audit_like: dict[str, Any]) -> None:
    assert audit_like["workshops"] == {"total": 2, "provinces": {"ON": 1, "QC": 1},
                                       "province_count": 2}
    assert audit_like["sessions"] == {
        "total": 4,
        "by_status": {"completed": 3, "refunded": 1},
        # The completed session without a mechanic has no type to count under.
        "completed_by_mechanic_type": {"independent": 1, "workshop": 1},
    }


def test_integrity_results_name_the_rows_that_break_a_rule(audit_like: dict[str, Any]) -> None:
    found = {r["rule"]: r for r in audit_like["integrity"]}
    assert [r["rule"] for r in audit_like["integrity"]] == [r.name for r in integrity.RULES]
    assert found["workshop_mechanic account has a workshop"] == {
        "rule": "workshop_mechanic account has a workshop", "violations": 1,
        "sample_ids": [str(M_BAD)]}
    # Every hand-made request holds a stale copy of its customer's email (or has no customer).
    assert found["customer copies equal the profile"]["violations"] == 8
    assert audit_like["integrity_violations"] == sum(r["violations"] for r in found.values())


def test_the_json_contract_has_every_documented_key(audit_like: dict[str, Any]) -> None:
    required = {
        "session_requests": {
            "total", "by_status", "by_session_type", "assigned", "unassigned",
            "cancelled_before_assignment", "cancelled_after_assignment", "response_minutes",
            "oldest", "newest", "span_days", "by_routing_type", "with_workshop",
            "with_preferred_workshop", "share_by_session_type", "by_request_type",
            "follow_ups", "urgent", "with_preferred_mechanic"},
        "customers": {"total", "active", "with_full_geo", "provinces", "per_customer",
                      "province_count", "with_requests"},
        "mechanics": {"total", "participating", "complete", "incomplete", "by_type",
                      "per_mechanic", "complete_by_type", "with_completed_session",
                      "incomplete_count"},
        "workshops": {"total", "provinces", "province_count"},
        "sessions": {"by_status", "completed_by_mechanic_type", "total"},
    }
    for section, keys in required.items():
        assert keys <= set(audit_like[section]), section
    assert {"integrity", "targets"} <= set(audit_like)
    json.dumps(audit_like)  # plain JSON values only


def _numbers(node: Any, path: str = "") -> Iterator[str]:
    for key, value in node.items():
        here = f"{path}{key}"
        if here in MAP_METRICS or here in OPEN_MAP_METRICS:
            yield here
        elif isinstance(value, dict):
            yield from _numbers(value, here + ".")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            yield here


def test_every_number_of_the_report_is_a_known_target_metric(audit_like: dict[str, Any]) -> None:
    numbers = set(_numbers(audit_like)) - {"version"}  # the contract's version, not a metric
    scalars = {m for m in KNOWN_METRICS if m.rpartition(".")[0] not in MAP_METRICS}
    assert numbers == scalars | set(MAP_METRICS) | set(OPEN_MAP_METRICS)
    assert audit_like["version"] == 2


def test_targets_are_checked_against_the_report(engine: sa.Engine) -> None:
    targets = parse_targets({"session_requests.total": ">= 120",
                             "sessions.by_status.refunded": ">= 1",
                             "sessions.by_status.archived": "== 0",
                             "mechanics.incomplete_count": "== 1"})
    with engine.begin() as connection:
        make_audit_like(connection)
        report = build_report(connection, now=NOW, targets=targets)
    assert report.to_dict()["targets"] == [
        {"metric": "session_requests.total", "current": 8, "needed": ">= 120", "met": False},
        {"metric": "sessions.by_status.refunded", "current": 1, "needed": ">= 1", "met": True},
        {"metric": "sessions.by_status.archived", "current": 0, "needed": "== 0", "met": True},
        {"metric": "mechanics.incomplete_count", "current": 3, "needed": "== 1", "met": False},
    ]
    markdown = render(report, "markdown")
    assert "## Current State Assessment" in markdown
    assert "| session_requests.total | 8 | >= 120 | ⚠️ |" in markdown
    assert "| sessions.by_status.refunded | 1 | >= 1 | ✅ |" in markdown


def test_empty_schema_gives_zeros_and_nulls(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        report = build_report(connection, now=NOW).to_dict()
    requests = report["session_requests"]
    assert {k: requests[k] for k in ("total", "assigned", "unassigned", "span_days",
                                      "cancelled_before_assignment", "oldest", "newest")} == {
        "total": 0, "assigned": 0, "unassigned": 0, "span_days": 0,
        "cancelled_before_assignment": 0, "oldest": None, "newest": None}
    assert requests["response_minutes"] == {"count": 0, "avg": None, "min": None, "max": None}
    assert requests["by_status"] == {} and requests["share_by_session_type"] == {}
    assert requests["sample"] == []
    assert report["customers"]["per_customer"] == []
    assert report["mechanics"]["by_type"] == {} and report["mechanics"]["total"] == 0
    assert report["workshops"] == {"total": 0, "provinces": {}, "province_count": 0}
    assert report["sessions"] == {"total": 0, "by_status": {}, "completed_by_mechanic_type": {}}
    assert all(r["violations"] == 0 for r in report["integrity"])
    assert len(report["integrity"]) == len(integrity.RULES)
    assert report["targets"] == []


def test_now_defaults_to_the_database_clock(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        before = connection.execute(sa.text("SELECT clock_timestamp()")).scalar_one()
        connection.commit()
        report = build_report(connection)
    assert report.now.tzinfo is not None
    assert abs(report.now - before) < timedelta(minutes=1)


def test_the_report_only_reads(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        connection.execute(sa.text("SET TRANSACTION READ ONLY"))
        make_nothing = build_report(connection, now=NOW)
    assert make_nothing.session_requests.total == 0


@pytest.mark.parametrize(
    ("oldest", "newest", "days"),
    [
        (OLDEST, NEWEST, 9),
        (OLDEST, OLDEST, 0),
        (OLDEST, OLDEST + timedelta(microseconds=1), 1),
        (OLDEST, OLDEST + timedelta(days=2), 2),
        (OLDEST, OLDEST + timedelta(days=2, seconds=1), 3),
        (None, None, 0),
    ],
)
def test_span_days_rounds_up(oldest: datetime | None, newest: datetime | None, days: int) -> None:
    assert span_days(oldest, newest) == days


# --- failures are not zeros ------------------------------------------------------------------


def test_a_missing_table_is_named_with_the_fix(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE session_requests"))
    with engine.connect() as connection, pytest.raises(SchemaError) as caught:
        build_report(connection, now=NOW)
    assert str(caught.value) == "table session_requests is missing; create it with `seed db create`"


def test_a_database_without_the_app_tables_names_them_all(new_database: str) -> None:
    engine = database.engine_for(new_database)
    try:
        with engine.connect() as connection, pytest.raises(SchemaError) as caught:
            build_report(connection, now=NOW)
    finally:
        engine.dispose()
    assert str(caught.value) == (
        "tables organizations, vehicles, mechanics, profiles, sessions, session_requests are "
        "missing; create them with `seed db create`")


def test_a_missing_column_is_named_not_refused(engine: sa.Engine) -> None:
    # The report runs on the live schema: what needs the column is named, the rest measured.
    with engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE mechanics DROP COLUMN years_of_experience"))
    with engine.connect() as connection:
        report = build_report(connection, now=NOW)
    lacking = ("mechanics.years_of_experience",)
    assert {m: report.unavailable[m] for m in ("mechanics.complete", "mechanics.incomplete",
                                               "mechanics.incomplete_count")} == {
        "mechanics.complete": lacking, "mechanics.incomplete": lacking,
        "mechanics.incomplete_count": lacking}
    assert [(r.rule, r.missing) for r in report.skipped_rules] == [
        ("complete mechanic profile", lacking),
        ("incomplete mechanic lacks location and experience", lacking)]
    data = report.to_dict()
    assert data["mechanics"]["complete"] is None and data["mechanics"]["total"] == 0
    assert {"metric": "mechanics.complete", "missing": list(lacking)} in data["unavailable"]
    assert len(data["integrity"]) == len(integrity.RULES) - 2


def test_a_query_on_a_missing_table_becomes_a_schema_error(engine: sa.Engine) -> None:
    with engine.connect() as connection, pytest.raises(
            SchemaError, match='relation "session_requestz" does not exist'):
        with translated_errors():
            connection.execute(sa.text("SELECT count(*) FROM session_requestz"))


def test_a_refused_permission_is_a_database_error(engine: sa.Engine) -> None:
    role = f"no_reader_{uuid.uuid4().hex[:8]}"
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE ROLE {role}"))
    try:
        with engine.connect() as connection:
            connection.execute(sa.text(f"SET ROLE {role}"))
            with pytest.raises(DatabaseError, match="permission denied .*may SELECT") as caught:
                build_report(connection, now=NOW)
            assert not isinstance(caught.value, SchemaError)
            connection.rollback()
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP ROLE {role}"))


def test_a_lost_connection_is_a_database_error(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        pid = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with engine.connect() as other:
            other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DatabaseError, match="lost the database connection"):
            build_report(connection, now=NOW)


# --- rendering --------------------------------------------------------------------------------


def test_markdown_reads_like_the_audit(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        make_audit_like(connection)
        report = build_report(connection, now=NOW)
    markdown = render(report, "markdown")
    for heading in ("## Status breakdown", "## Assignment", "## Mechanics involved",
                    "## Time analysis", "## Session types", "## Customers", "## Cancellations",
                    "## Workshop routing", "## Mechanic profiles", "## Workshops",
                    "## Sessions", "## Sample requests (first 8)", "## Integrity"):
        assert f"\n{heading}\n" in markdown
    assert "| cancelled | 3 | 37.5% |" in markdown
    assert "| TOTAL | 8 | 100.0% |" in markdown
    assert "- **Time span:** 9 days" in markdown
    assert "| workshop_mechanic account has a workshop | 1 | 00000000 |" in markdown
    assert "Current State Assessment" not in markdown


def test_table_and_json_renderings(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        make_audit_like(connection)
        report = build_report(connection, now=NOW)
    text = render(report, "table")
    assert "Status breakdown\n================\n" in text
    assert "Average response time: 4.31 minutes" in text
    assert "|" not in text.split("Integrity")[0]
    assert json.loads(render(report, "json")) == report.to_dict()
    assert render(report, "json") == json.dumps(report.to_dict(), indent=2, sort_keys=True)
    with pytest.raises(ValueError, match="expected one of table, markdown, json, html, junit"):
        render(report, "pdf")  # type: ignore[arg-type]


# --- every rule of the app, broken once -------------------------------------------------------

CLOCK = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)

#: Per rule: statements that break it on one row; the last returns that row's id.
BREAKS: dict[str, list[str]] = {
    "customer geography agrees": [
        "UPDATE profiles SET postal_code = 'V6B 1A1' WHERE id = (SELECT id FROM profiles "
        "WHERE province <> 'BC' ORDER BY id LIMIT 1) RETURNING id"],
    "workshop geography agrees": [
        "UPDATE organizations SET address = NULL WHERE id = (SELECT id FROM organizations "
        "ORDER BY id LIMIT 1) RETURNING id"],
    "complete mechanic geography agrees": [
        "UPDATE mechanics SET latitude = latitude + 5 WHERE id = (SELECT id FROM mechanics "
        "WHERE profile_completion_score >= 80 ORDER BY id LIMIT 1) RETURNING id"],
    "complete mechanic profile": [
        "UPDATE mechanics SET red_seal_certified = false WHERE id = (SELECT id FROM mechanics "
        "WHERE profile_completion_score >= 80 ORDER BY id LIMIT 1) RETURNING id"],
    "incomplete mechanic lacks location and experience": [
        "UPDATE mechanics SET years_of_experience = 3 WHERE id = (SELECT id FROM mechanics "
        "WHERE profile_completion_score < 80 ORDER BY id LIMIT 1) RETURNING id"],
    "workshop mechanic at a workshop": [
        "INSERT INTO organizations (id, name, slug, email, organization_type) VALUES "
        "('00000000-0000-0000-0000-0000000000cc', 'Corp', 'corp', 'corp@example.com', "
        "'corporate')",
        "UPDATE mechanics SET workshop_id = '00000000-0000-0000-0000-0000000000cc' WHERE id = "
        "(SELECT id FROM mechanics WHERE workshop_id IS NOT NULL ORDER BY id LIMIT 1) "
        "RETURNING id"],
    "emails at reserved domains": [
        "UPDATE mechanics SET email = 'real.person@gmail.com' WHERE id = (SELECT id FROM "
        "mechanics ORDER BY id LIMIT 1) RETURNING id"],
    # The "accepted before created".
    "request timestamps in order": [
        "UPDATE session_requests SET accepted_at = created_at - interval '1 minute' WHERE id = "
        "(SELECT id FROM session_requests WHERE accepted_at IS NOT NULL ORDER BY id LIMIT 1) "
        "RETURNING id"],
    # The "completed requests without a mechanic".
    "mechanic and accepted_at exactly when the status implies them": [
        "UPDATE session_requests SET mechanic_id = NULL WHERE id = (SELECT id FROM "
        "session_requests WHERE status = 'completed' ORDER BY id LIMIT 1) RETURNING id"],
    "expires_at fits pending and expired": [
        "UPDATE session_requests SET expires_at = NULL WHERE id = (SELECT id FROM "
        "session_requests ORDER BY id LIMIT 1) RETURNING id"],
    "nothing happens after now": [
        "UPDATE session_requests SET created_at = '2026-03-02T00:00:00Z' WHERE id = (SELECT id "
        "FROM session_requests WHERE status = 'expired' ORDER BY id LIMIT 1) RETURNING id"],
    "plan fits session type": [
        "UPDATE session_requests SET plan_code = 'chat10' WHERE id = (SELECT id FROM "
        "session_requests WHERE session_type <> 'chat' ORDER BY id LIMIT 1) RETURNING id"],
    # The "requests whose customer has no profile".
    "customer copies equal the profile": [
        "UPDATE session_requests SET customer_id = gen_random_uuid() WHERE id = (SELECT id FROM "
        "session_requests ORDER BY id LIMIT 1) RETURNING id"],
    "vehicle belongs to the customer": [
        "UPDATE session_requests SET vehicle_id = NULL WHERE id = (SELECT id FROM "
        "session_requests ORDER BY id LIMIT 1) RETURNING id"],
    "routing fields agree with routing_type": [
        "UPDATE session_requests SET preferred_workshop_id = (SELECT min(id::text)::uuid FROM "
        "organizations) WHERE id = (SELECT id FROM session_requests WHERE routing_type = "
        "'broadcast' ORDER BY id LIMIT 1) RETURNING id"],
    "workshop_only mechanic works at the workshop": [
        "UPDATE session_requests r SET workshop_id = (SELECT o.id FROM organizations o WHERE "
        "o.id <> r.workshop_id ORDER BY o.id LIMIT 1) WHERE r.id = (SELECT id FROM "
        "session_requests WHERE routing_type = 'workshop_only' AND mechanic_id IS NOT NULL "
        "ORDER BY id LIMIT 1) RETURNING r.id"],
    "request has a session of a fitting status exactly when it should": [
        "UPDATE session_requests SET session_id = NULL WHERE id = (SELECT id FROM "
        "session_requests WHERE status = 'completed' ORDER BY id LIMIT 1) RETURNING id"],
    "finished sessions have start, end, matching duration and rating": [
        "UPDATE sessions SET duration_minutes = duration_minutes + 7 WHERE id = (SELECT id FROM "
        "sessions WHERE status = 'completed' ORDER BY id LIMIT 1) RETURNING id"],
    "brand requests name a brand": [
        "UPDATE session_requests SET requested_brand = 'BMW' WHERE id = (SELECT id FROM "
        "session_requests WHERE request_type = 'general' ORDER BY id LIMIT 1) RETURNING id"],
    "follow-ups point at an earlier finished session of the customer": [
        "UPDATE session_requests SET is_follow_up = true WHERE id = (SELECT id FROM "
        "session_requests WHERE parent_session_id IS NULL ORDER BY id LIMIT 1) RETURNING id"],
    # The "a workshop mechanic without a workshop".
    "workshop_mechanic account has a workshop": [
        "UPDATE mechanics SET account_type = 'workshop_mechanic' WHERE id = (SELECT id FROM "
        "mechanics WHERE workshop_id IS NULL ORDER BY id LIMIT 1) RETURNING id"],
}

TRAITS = ("pending", "accepted", "completed", "expired", "cancelled_before_assignment",
          "cancelled_after_assignment")
ROUTINGS = ("broadcast", "workshop_only", "hybrid", "priority_broadcast")


@pytest.fixture(scope="module")
def clean_database(test_server: SeedServer) -> Iterator[str]:
    """A database of factory-built rows that keep every rule, made once for the module."""
    name = test_server.create_database("seeding_test_")
    url = test_server.database_url(name)
    engine = database.engine_for(url)
    database.create_schema(engine)
    factories.reseed(17)
    with factories.clock(CLOCK), factories.collect() as rows:
        for i in range(24):
            brand = i % 5 == 0
            SessionRequestFactory.build(**{TRAITS[i % 6]: True}, routing_type=ROUTINGS[i % 4],
                                        request_type="brand_specialist" if brand else "general")
        MechanicFactory.build_batch(2, incomplete=True)
        MechanicFactory.build_batch(2, virtual=True)
        SessionFactory.build_batch(2, status="completed")
    with engine.begin() as connection:
        writer.write(connection, rows)
    engine.dispose()
    yield url
    test_server.drop_database(name)


@pytest.fixture(scope="module")
def clean_engine(clean_database: str) -> Iterator[sa.Engine]:
    engine = database.engine_for(clean_database)
    yield engine
    engine.dispose()


def test_the_breaks_cover_every_rule() -> None:
    assert set(BREAKS) == {rule.name for rule in integrity.RULES}


def test_the_clean_database_keeps_every_rule(clean_engine: sa.Engine) -> None:
    with clean_engine.connect() as connection:
        report = build_report(connection, now=CLOCK)
    assert {r.rule: r.violations for r in report.integrity if r.violations} == {}
    assert report.session_requests.total == 24


@pytest.mark.parametrize("rule", list(BREAKS))
def test_each_rule_reports_the_row_that_breaks_it(clean_engine: sa.Engine, rule: str) -> None:
    with clean_engine.connect() as connection:
        try:
            *before, last = BREAKS[rule]
            for statement in before:
                connection.execute(sa.text(statement))
            broken_id = connection.execute(sa.text(last)).scalar_one()
            report = build_report(connection, now=CLOCK)
        finally:
            connection.rollback()
    found = {r.rule: r for r in report.integrity}
    assert found[rule].violations >= 1
    assert str(broken_id) in found[rule].sample_ids



# --- lanes: the report's queries on two connections that read one snapshot --------------------


def _report_on(engine: sa.Engine, isolation: str) -> dict[str, Any]:
    with engine.connect().execution_options(isolation_level=isolation) as connection:
        report = build_report(connection, now=CLOCK, sample=5, top=5).to_dict()
        connection.rollback()
    return report


def test_two_lanes_give_the_report_of_one(clean_engine: sa.Engine) -> None:
    with clean_engine.connect().execution_options(isolation_level="REPEATABLE READ") as c:
        with lanes.opened(c, {}) as connections:
            assert len(connections) == 2
        c.rollback()
    two = _report_on(clean_engine, "REPEATABLE READ")
    one = _report_on(clean_engine, "READ COMMITTED")
    assert two == one
    assert two["session_requests"]["total"] == 24


def test_every_lane_reads_the_snapshot_of_the_first(clean_engine: sa.Engine) -> None:
    count = "SELECT count(*) FROM profiles"
    with clean_engine.connect().execution_options(isolation_level="REPEATABLE READ") as c:
        before = c.execute(sa.text(count)).scalar_one()
        with lanes.opened(c, {}) as connections:
            with clean_engine.begin() as other:  # committed after the snapshot was taken
                added = other.execute(sa.text(
                    "INSERT INTO profiles (id, role) VALUES (gen_random_uuid(), 'customer') "
                    "RETURNING id")).scalar_one()
            try:
                seen = [lane.execute(sa.text(count)).scalar_one() for lane in connections]
            finally:
                c.rollback()
    with clean_engine.begin() as other:
        after = other.execute(sa.text(count)).scalar_one()
        other.execute(sa.text("DELETE FROM profiles WHERE id = :id"), {"id": added})
    assert seen == [before, before]
    assert after == before + 1


def test_a_transaction_with_its_own_writes_is_reported_whole(clean_engine: sa.Engine) -> None:
    with clean_engine.connect().execution_options(isolation_level="REPEATABLE READ") as c:
        c.execute(sa.text("DELETE FROM session_requests WHERE id = (SELECT min(id::text)::uuid "
                          "FROM session_requests)"))
        with lanes.opened(c, {}) as connections:
            alone = len(connections)
        report = build_report(c, now=CLOCK)
        c.rollback()
    assert alone == 1
    assert report.session_requests.total == 23


def test_a_full_pool_leaves_the_report_on_one_connection(clean_engine: sa.Engine) -> None:
    full = sa.create_engine(
        clean_engine.url, pool_size=1, max_overflow=0, pool_timeout=0.2
    ).execution_options(isolation_level="REPEATABLE READ")
    try:
        with full.connect() as connection:
            with lanes.opened(connection, {}) as connections:
                alone = len(connections)
            report = build_report(connection, now=CLOCK, sample=5, top=5).to_dict()
            connection.rollback()
    finally:
        full.dispose()
    assert alone == 1
    assert report == _report_on(clean_engine, "REPEATABLE READ")


def test_a_failed_job_stops_the_lanes_and_its_error_reaches_the_caller() -> None:
    ran: list[str] = []

    def job(name: str, fails: bool = False) -> lanes.Job:
        def run(connection: Any) -> str:
            ran.append(name)
            if fails:
                raise DatabaseError(f"{name} failed")
            return name
        return run

    # The scheduling only hands the connections to the jobs, so any object stands for one.
    one: Any = [object()]
    with pytest.raises(DatabaseError, match="b failed"):
        lanes.run({"a": job("a"), "b": job("b", fails=True), "c": job("c")}, one)
    assert ran == ["a", "b"]
    two: Any = [object(), object()]
    done = lanes.run({"a": job("a"), "b": job("b"), "c": job("c")}, two)
    assert done == {"a": "a", "b": "b", "c": "c"}


def test_a_status_outside_the_vocabulary_is_counted_by_name(clean_engine: sa.Engine) -> None:
    with clean_engine.connect() as connection:
        try:
            connection.execute(sa.text(
                "ALTER TABLE session_requests DROP CONSTRAINT session_requests_status_check"))
            customer = connection.execute(sa.text(
                "UPDATE session_requests SET status = 'on_hold' WHERE id = (SELECT id FROM "
                "session_requests WHERE customer_id = (SELECT customer_id FROM session_requests "
                "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1) ORDER BY id LIMIT 1) "
                "RETURNING customer_id")).scalar_one()
            report = build_report(connection, now=CLOCK, top=1)
        finally:
            connection.rollback()
    assert report.session_requests.by_status["on_hold"] == 1
    (first,) = report.customers.per_customer
    assert first.id == str(customer)
    assert first.by_status["on_hold"] == 1
    assert sum(first.by_status.values()) == first.total


def test_a_follow_up_needs_a_parent_of_the_same_customer(clean_engine: sa.Engine) -> None:
    rule = "follow-ups point at an earlier finished session of the customer"
    with clean_engine.connect() as connection:
        try:
            request, customer, created = connection.execute(sa.text(
                "SELECT id, customer_id, created_at FROM session_requests "
                "WHERE NOT is_follow_up ORDER BY id LIMIT 1")).one()
            # A completed session of no request becomes this customer's, ended before.
            parent = connection.execute(sa.text(
                "UPDATE sessions SET customer_user_id = :customer, "
                "started_at = :created - interval '3 hours', "
                "ended_at = :created - interval '3 hours' + duration_minutes * interval '1 minute' "
                "WHERE id = (SELECT s.id FROM sessions s WHERE s.status = 'completed' AND NOT "
                "EXISTS (SELECT FROM session_requests r WHERE r.session_id = s.id) "
                "ORDER BY s.id LIMIT 1) RETURNING id"),
                {"customer": customer, "created": created}).scalar_one()
            connection.execute(sa.text(
                "UPDATE session_requests SET is_follow_up = true, follow_up_type = 'same_issue', "
                "parent_session_id = :parent WHERE id = :id"), {"parent": parent, "id": request})
            kept = {r.rule: r.violations for r in build_report(connection, now=CLOCK).integrity}
            connection.execute(sa.text(
                "UPDATE sessions SET customer_user_id = NULL WHERE id = :id"), {"id": parent})
            broken = {r.rule: r for r in build_report(connection, now=CLOCK).integrity}
        finally:
            connection.rollback()
    assert kept[rule] == 0
    assert broken[rule].violations == 1
    assert broken[rule].sample_ids == (str(request),)


def test_a_rule_that_did_not_run_is_an_error_not_a_pass(clean_engine: sa.Engine) -> None:
    with clean_engine.connect() as connection:
        tables = integrity.check_tables(connection, CLOCK)
        first_pass = integrity.check_requests(
            connection, CLOCK, rules=integrity.REQUEST_PASSES[0])
        with pytest.raises(ValueError, match="did not run"):
            integrity.in_rule_order(tables, first_pass)
        with pytest.raises(ValueError, match="not rules about requests"):
            integrity.check_requests(connection, CLOCK, rules=["emails at reserved domains"])
        with pytest.raises(ValueError, match="not rules with a query"):
            integrity.check_tables(connection, CLOCK, rules=["brand requests name a brand"])
    assert set(integrity.REQUEST_PASSES[0]).isdisjoint(integrity.REQUEST_PASSES[1])
