"""Session assignments: seeded sessions are in the mechanic queue exactly as the app reads it.

The app's queue (the team's shared app-schema.md §5): *unassigned* = assignments with no mechanic
and status 'queued' whose session is pending or waiting; *mine* = a mechanic's assignments
(offered, accepted, joined, in_progress) whose session is waiting or live.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
import yaml
from app_shape import admit_tool_request_statuses, as_user, snapshot

import factories
from factories import SessionAssignmentFactory, SessionFactory, SessionRequestFactory
from factories.assignments import OFFER_TTL, automatic_status
from seeding import doctor, runner
from seeding.db import database, writer
from seeding.domain import vocabularies
from seeding.domain.schema import Session, SessionAssignment
from seeding.errors import FactoryRuleError, ResetBlockedError, ScenarioError
from seeding.report import build_report, render
from seeding.reset import reset_database
from seeding.runner import run_scenario

NOW = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
PASSWORD = "a-test-password-7"

#: The statuses the queue's "mine" list reads (the app's code reads joined and in_progress too,
#: which the table's CHECK does not allow).
MINE = ("offered", "accepted", "joined", "in_progress")


def _build(make: Callable[[], Any], seed: int = 11) -> list[Any]:
    factories.reseed(seed)
    with factories.clock(NOW), factories.collect() as rows:
        make()
    return rows


def _assignments(rows: list[Any]) -> list[SessionAssignment]:
    return [row for row in rows if isinstance(row, SessionAssignment)]


def _sessions(rows: list[Any]) -> list[Session]:
    return [row for row in rows if isinstance(row, Session)]


def _check_queue_rules(rows: list[Any], now: datetime) -> None:
    """Every session is queued, or its mechanic's, exactly as the automatic rule says."""
    by_session: dict[uuid.UUID, list[SessionAssignment]] = {}
    for assignment in _assignments(rows):
        by_session.setdefault(assignment.session_id, []).append(assignment)
    for session in _sessions(rows):
        mine = by_session.get(session.id, [])
        if session.mechanic_id is None and session.status in ("pending", "waiting"):
            # Queued for all, unless it was given another (waiting for the customer's waiver).
            queued = [a for a in mine
                      if a.status in ("queued", "pending_waiver") and a.mechanic_id is None]
            assert len(queued) == 1, (session.status, mine)
        if session.mechanic_id is not None and session.status in ("pending", "waiting", "live"):
            accepted = [a for a in mine if a.status == "accepted"]
            assert len(accepted) == 1, (session.status, mine)
            assert accepted[0].mechanic_id == session.mechanic_id
            assert accepted[0].accepted_at is not None
            if session.started_at is not None:
                assert accepted[0].accepted_at <= session.started_at
        for assignment in mine:
            _check_times(assignment, session, now)


def _check_times(assignment: SessionAssignment, session: Session, now: datetime) -> None:
    created = assignment.created_at
    assert created is not None and session.created_at <= created <= now
    offered, accepted = assignment.offered_at, assignment.accepted_at
    if offered is not None:
        assert created <= offered <= now
    if accepted is not None:
        assert offered is not None and offered <= accepted <= now
    assert assignment.updated_at is not None and created <= assignment.updated_at <= now
    if assignment.status == "offered":
        assert assignment.expires_at is not None and assignment.expires_at > now
    if assignment.status == "expired":
        assert assignment.expires_at is not None and assignment.expires_at <= now
    assert (accepted is not None) == (assignment.status in ("accepted", "completed"))
    if assignment.status in ("offered", "accepted", "declined", "completed"):
        assert assignment.mechanic_id is not None


# ---------------------------------------------------------------------------------------
# The factories: no database.
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "has_mechanic", "expected"),
    [
        ("pending", False, "queued"), ("waiting", False, "queued"), ("live", False, None),
        ("pending", True, "accepted"), ("waiting", True, "accepted"), ("live", True, "accepted"),
        ("scheduled", True, None), ("scheduled", False, None), ("completed", True, None),
        ("cancelled", True, None), ("expired", False, None), ("archived", True, None),
    ],
)
def test_the_automatic_assignment_of_each_session(
    status: str, has_mechanic: bool, expected: str | None
) -> None:
    assert automatic_status(status, has_mechanic) == expected
    rows = _build(lambda: SessionFactory.build(
        status=status, **({} if has_mechanic else {"mechanic": None})))
    assert [a.status for a in _assignments(rows)] == ([expected] if expected else [])
    _check_queue_rules(rows, NOW)


def test_a_session_may_be_given_another_assignment_or_none() -> None:
    rows = _build(lambda: SessionFactory.build(
        status="pending", mechanic=None, assignment_status="pending_waiver"))
    assert [(a.status, a.mechanic_id) for a in _assignments(rows)] == [("pending_waiver", None)]
    rows = _build(lambda: SessionFactory.build(status="pending", mechanic=None,
                                               assignment_status=None))
    assert _assignments(rows) == []


def test_every_session_of_the_factories_keeps_the_queue_rules() -> None:
    def make() -> None:
        for status in vocabularies.SESSION_STATUSES:
            SessionFactory.build_batch(5, status=status)
            SessionFactory.build_batch(5, status=status, mechanic=None)
        for status in ("waiting", "pending", "scheduled", "live"):
            SessionRequestFactory.build_batch(10, accepted=True, session_status=status)
        SessionRequestFactory.build_batch(20, completed=True)

    rows = _build(make)
    _check_queue_rules(rows, NOW)
    counts = Counter(a.status for a in _assignments(rows))
    assert counts == {"queued": 10, "accepted": 45}
    # Parents before children: each assignment after its session.
    position = {id(row): i for i, row in enumerate(rows)}
    by_id = {row.id: row for row in rows}
    for assignment in _assignments(rows):
        assert position[id(by_id[assignment.session_id])] < position[id(assignment)]


@pytest.mark.parametrize("status", vocabularies.ASSIGNMENT_STATUSES)
def test_each_status_trait_keeps_the_lifecycle(status: str) -> None:
    rows = _build(lambda: SessionAssignmentFactory.build_batch(20, **{status: True}))
    made = [a for a in _assignments(rows) if a.status == status]
    assert len(made) == 20
    sessions = {s.id: s for s in _sessions(rows)}
    # The session made for it: one of the status's own (see SESSION_STATUS_FOR), queued for
    # all mechanics too when the assignment is an offer to one.
    _check_queue_rules(rows, NOW)
    others = Counter(a.status for a in _assignments(rows) if a.status != status)
    assert others == ({"queued": 20} if status in ("offered", "declined") else {})
    for assignment in made:
        session = sessions[assignment.session_id]
        _check_times(assignment, session, NOW)
        if status in ("accepted", "completed"):
            assert assignment.mechanic_id == session.mechanic_id is not None
        if status in ("queued", "pending_waiver"):
            assert assignment.mechanic_id is None and assignment.match_score == 0
            assert assignment.match_reasons == []
        assert assignment.priority in vocabularies.ASSIGNMENT_PRIORITIES
        assert set(assignment.match_reasons or ()) <= set(vocabularies.MATCH_REASONS)
    assert len(sessions) == 20


def test_an_offer_is_open_for_its_lifetime() -> None:
    rows = _build(lambda: SessionAssignmentFactory.build_batch(20, offered=True))
    for assignment in (a for a in _assignments(rows) if a.status == "offered"):
        assert assignment.offered_at is not None and assignment.expires_at is not None
        assert assignment.expires_at - assignment.offered_at == OFFER_TTL


def test_a_priority_broadcast_s_session_is_assigned_with_high_priority() -> None:
    rows = _build(lambda: SessionRequestFactory.build_batch(
        10, accepted=True, priority_broadcast=True, session_status="waiting"))
    assert {a.priority for a in _assignments(rows)} == {"high"}
    rows = _build(lambda: SessionFactory.build_batch(200, status="pending", mechanic=None))
    assert Counter(a.priority for a in _assignments(rows)).most_common(1)[0][0] == "normal"
    assert {a.priority for a in _assignments(rows)} == set(vocabularies.ASSIGNMENT_PRIORITIES)


def test_incoherent_overrides_are_refused_with_the_fix() -> None:
    factories.reseed(1)
    with factories.clock(NOW):
        broadcast = SessionFactory.build(status="pending", mechanic=None, assignment_status=None)
        theirs = SessionFactory.build(status="waiting", assignment_status=None)
        with pytest.raises(FactoryRuleError, match="session's mechanic's, and this session"):
            SessionAssignmentFactory.build(accepted=True, session=broadcast)
        with pytest.raises(FactoryRuleError, match="leave mechanic out"):
            SessionAssignmentFactory.build(
                accepted=True, session=theirs,
                mechanic=factories.MechanicFactory.build())
        with pytest.raises(FactoryRuleError, match="pass mechanic="):
            SessionAssignmentFactory.build(offered=True, session=broadcast, mechanic=None)
        with pytest.raises(FactoryRuleError, match="a mechanic"):
            SessionFactory.build(status="pending", mechanic=None, assignment_status="offered")


def test_automatic_assignments_change_no_other_row() -> None:
    def make(**kwargs: Any) -> Callable[[], None]:
        def build() -> None:
            for status in ("pending", "waiting", "live", "completed"):
                SessionFactory.build_batch(5, status=status, **kwargs)
                SessionFactory.build_batch(5, status=status, mechanic=None, **kwargs)
            SessionRequestFactory.build_batch(10, accepted=True, session_status="waiting")
        return build

    def others(rows: list[Any]) -> list[tuple[Any, ...]]:
        return [writer.row_values(r) for r in rows if not isinstance(r, SessionAssignment)]

    with_them = _build(make())
    without = _build(make(assignment_status=None))  # the requests' sessions keep theirs
    assert len(_assignments(with_them)) == 35 and len(_assignments(without)) == 10
    assert others(with_them) == others(without)
    # ... and are themselves the same for the same seed, other for another.
    again = _build(make())
    other = _build(make(), seed=12)
    ids = [a.id for a in _assignments(with_them)]
    assert ids == [a.id for a in _assignments(again)]
    assert not set(ids) & {a.id for a in _assignments(other)}


# ---------------------------------------------------------------------------------------
# The shipped scenarios: built in memory.
# ---------------------------------------------------------------------------------------


def test_baseline_has_none() -> None:
    _, built = runner.prepare("baseline")
    assert built.by_kind["session_assignment"] == []
    assert not any(s.status in ("pending", "waiting", "live") for s in built.by_kind["session"])  # type: ignore[attr-defined]


def test_diverse_queues_its_sessions_and_gives_every_status() -> None:
    scenario, built = runner.prepare("diverse")
    _check_queue_rules(built.rows, scenario.now)
    counts = Counter(a.status for a in built.by_kind["session_assignment"])  # type: ignore[attr-defined]
    assert counts == {"accepted": 7, "queued": 6, "offered": 3, "completed": 3, "declined": 2,
                      "expired": 2, "cancelled": 2, "pending_waiver": 1}


def test_load_queues_its_sessions() -> None:
    tiled = runner.prepare_tiled("load", scale=0.01)
    rows = tiled.first
    at = [name for name, _, _ in writer.COLUMNS["session_assignments"]].index("status")
    counts = Counter(row[at] for row in rows["session_assignments"])
    assert counts == {"accepted": 75, "queued": 10, "offered": 10, "declined": 5}
    assert len(rows["profiles"]) == 110 and len(rows["session_requests"]) == 1000


def _scenario(tmp_path: Path, steps: list[dict[str, Any]]) -> str:
    path = tmp_path / "assignments.yaml"
    path.write_text(yaml.safe_dump({
        "description": "assignments", "seed": 3,
        "clock": {"now": "2026-11-20T12:00:00-05:00"}, "steps": steps,
    }))
    return str(path)


def test_a_scenario_makes_them_by_name(tmp_path: Path) -> None:
    path = _scenario(tmp_path, [
        {"create": "mechanic", "count": 2, "traits": ["workshop"]},
        {"create": "customer", "ref": "people", "count": 3},
        {"create": "session", "ref": "open", "count": 2,
         "with": {"customer": {"ref": "people"}, "mechanic": None},
         "fields": {"status": "pending"}},
        {"create": "session", "ref": "taken", "fields": {"status": "waiting"},
         "with": {"customer": {"ref": "people"}, "mechanic": {"any": "mechanic"}}},
        {"create": "session_assignment", "ref": "offers", "count": 2, "traits": ["offered"],
         "with": {"session": {"ref": "open"}}},
        {"create": "session_assignment", "ref": "completed", "traits": ["completed"],
         "fields": {"priority": "low"}},
    ])
    scenario, built = runner.prepare(path)
    counts = Counter(a.status for a in built.by_kind["session_assignment"])  # type: ignore[attr-defined]
    assert counts == {"queued": 2, "accepted": 1, "offered": 2, "completed": 1}
    open_ids = {s.id for s in built.refs["open"]}  # type: ignore[attr-defined]
    mechanic_ids = {m.id for m in built.by_kind["mechanic"][:2]}  # type: ignore[attr-defined]
    for offer in built.refs["offers"]:
        # Offered to one of the scenario's complete mechanics, not a new one.
        assert offer.session_id in open_ids and offer.mechanic_id in mechanic_ids  # type: ignore[attr-defined]
    assert built.refs["completed"][0].priority == "low"  # type: ignore[attr-defined]
    _check_queue_rules(built.rows, scenario.now)


def test_a_scenario_s_wrong_status_or_session_is_refused(tmp_path: Path) -> None:
    bad = _scenario(tmp_path, [{"create": "session_assignment", "fields": {"status": "joined"}}])
    with pytest.raises(ScenarioError, match="unknown value 'joined'.*one of pending_waiver"):
        runner.prepare(bad)
    no_mechanic = _scenario(tmp_path, [
        {"create": "session", "ref": "open", "fields": {"status": "pending"},
         "with": {"mechanic": None}},
        {"create": "session_assignment", "traits": ["accepted"], "with": {"session": "open"}},
    ])
    with pytest.raises(ScenarioError, match="session's mechanic's, and this session has none"):
        runner.prepare(no_mechanic)
    broken = _scenario(tmp_path, [
        {"create": "session", "fields": {"status": "pending"}, "with": {"mechanic": None}},
        {"create": "session_assignment", "ref": "broadcast",
         "with": {"session": {"any": "session"}}},
        {"update": "broadcast", "set": {"status": "accepted"}},
    ])
    with pytest.raises(ScenarioError, match="an accepted assignment has a mechanic"):
        runner.prepare(broken)
    pick = _scenario(tmp_path, [
        {"create": "session", "fields": {"status": "pending"}, "with": {"mechanic": None}},
        {"create": "session_assignment", "traits": ["accepted"],
         "with": {"session": {"any": "session"}}},
    ])
    with pytest.raises(ScenarioError, match="no session matches.*mechanic_id"):
        runner.prepare(pick)


# ---------------------------------------------------------------------------------------
# On a database: the app's queue, the report, reset and doctor.
# ---------------------------------------------------------------------------------------


#: The queue's unassigned list, as the app asks for it with the mechanic's token.
UNASSIGNED = """
    SELECT session_id FROM session_assignments
    WHERE mechanic_id IS NULL AND status = 'queued'
    ORDER BY priority DESC, created_at DESC LIMIT 50
"""
#: A mechanic's own assignments, as the app asks for them with the mechanic's token.
MINE_SQL = """
    SELECT session_id FROM session_assignments
    WHERE mechanic_id = %s AND status = ANY(%s)
"""
#: The sessions the queue keeps (the app reads sessions as the service role: the sessions
#: policy hides every row from a signed-in user). It selects scheduled_start/end too.
KEPT = """
    SELECT id, scheduled_start, scheduled_end FROM sessions
    WHERE id = ANY(%s) AND status = ANY(%s)
"""


def _ids(rows: list[Any]) -> set[uuid.UUID]:
    return {row[0] for row in rows}


def test_the_mechanic_queue_returns_every_seeded_queued_session(app_db: str) -> None:
    admit_tool_request_statuses(app_db)
    before = snapshot(app_db)
    result = run_scenario("diverse", database_url=app_db, user_password=PASSWORD)
    assert result.counts["session_assignments"] == 26
    with psycopg.connect(app_db) as connection:
        # What the queue should list: every session waiting for a mechanic, but the one
        # still waiting for its customer's waiver.
        waiting_for_one = _ids(connection.execute(
            "SELECT id FROM sessions WHERE status IN ('pending', 'waiting') "
            "AND mechanic_id IS NULL").fetchall())
        waiver = _ids(connection.execute(
            "SELECT session_id FROM session_assignments WHERE status = 'pending_waiver'"
        ).fetchall())
        assert len(waiting_for_one) == 7 and len(waiver) == 1 and waiver <= waiting_for_one
        waiting_for_one -= waiver
        # Each mechanic's sessions; sessions.mechanic_id holds the mechanic's auth user id
        # here (the migrations' key to auth.users).
        theirs: dict[uuid.UUID, set[uuid.UUID]] = {}
        for mechanic_id, session_id in connection.execute(
            "SELECT m.id, s.id FROM sessions s JOIN mechanics m ON m.user_id = s.mechanic_id "
            "WHERE s.status IN ('waiting', 'live')"
        ).fetchall():
            theirs.setdefault(mechanic_id, set()).add(session_id)
        assert sum(map(len, theirs.values())) == 5
        offered: dict[uuid.UUID, set[uuid.UUID]] = {}
        for mechanic_id, session_id in connection.execute(
            "SELECT a.mechanic_id, a.session_id FROM session_assignments a "
            "JOIN sessions s ON s.id = a.session_id "
            "WHERE a.status = 'offered' AND s.status IN ('waiting', 'live')"
        ).fetchall():
            offered.setdefault(mechanic_id, set()).add(session_id)
        mechanics = connection.execute(
            "SELECT id, user_id FROM mechanics ORDER BY id").fetchall()
        customer = connection.execute(
            "SELECT id FROM profiles WHERE role = 'customer' LIMIT 1").fetchone()
        assert customer is not None

        def kept(ids: set[uuid.UUID], statuses: list[str]) -> set[uuid.UUID]:
            return _ids(connection.execute(KEPT, [list(ids), statuses]).fetchall())

        # As the service role (no RLS), then as each signed-in mechanic (RLS: any user with
        # a mechanics row reads every assignment).
        for user in (None, *(user_id for _, user_id in mechanics)):
            def read(query: str, params: Any = None, user: Any = user) -> list[Any]:
                if user is None:
                    return connection.execute(query, params).fetchall()
                with as_user(connection, user) as signed_in:
                    return signed_in.execute(query, params).fetchall()

            unassigned = kept(_ids(read(UNASSIGNED)), ["pending", "waiting"])
            assert unassigned == waiting_for_one
        for mechanic_id, user_id in mechanics:
            with as_user(connection, user_id) as signed_in:
                own = _ids(signed_in.execute(MINE_SQL, [mechanic_id, list(MINE)]).fetchall())
            mine = kept(own, ["waiting", "live"])
            expected = theirs.get(mechanic_id, set()) | offered.get(mechanic_id, set())
            assert mine == expected, mechanic_id
        # A customer has no mechanics row: RLS shows them no assignment.
        with as_user(connection, customer[0]) as signed_in:
            assert signed_in.execute(
                "SELECT count(*) FROM session_assignments").fetchone() == (0,)
    # The report counts them by status, as the table holds them.
    engine = database.engine_for(app_db)
    try:
        with engine.connect() as reading:
            report = build_report(reading)
            in_sql: dict[str, int] = dict(reading.execute(sa.text(
                "SELECT status, count(*) FROM session_assignments GROUP BY 1")).all())
    finally:
        engine.dispose()
    assert report.available("session_assignments.by_status")
    assert dict(report.session_assignments.by_status) == in_sql
    assert report.session_assignments.total == 26
    assert "## Session assignments" in render(report, "markdown")
    assert reset_database(app_db).deleted["session_assignments"] == 26
    assert snapshot(app_db) == before


def test_a_run_s_assignments_are_measured_and_reset_children_first(new_database: str) -> None:
    result = run_scenario("diverse", database_url=new_database)
    assert result.counts["session_assignments"] == 26
    engine = database.engine_for(new_database)
    try:
        with engine.connect() as connection:
            report = build_report(connection)
            # The times follow the lifecycle in SQL too.
            out_of_order = connection.execute(sa.text("""
                SELECT count(*) FROM session_assignments a JOIN sessions s ON s.id = a.session_id
                WHERE a.created_at < s.created_at OR a.offered_at < a.created_at
                   OR a.accepted_at < a.offered_at OR a.updated_at < a.created_at
                   OR greatest(a.created_at, a.offered_at, a.accepted_at, a.updated_at)
                      > '2025-11-12T12:00:00-05:00'
                   OR (a.status = 'accepted') <> (a.accepted_at IS NOT NULL
                                                  AND a.status <> 'completed')
            """)).scalar_one()
    finally:
        engine.dispose()
    assert out_of_order == 0
    assert report.to_dict()["session_assignments"] == {
        "total": 26,
        "by_status": {"accepted": 7, "queued": 6, "completed": 3, "offered": 3,
                      "cancelled": 2, "declined": 2, "expired": 2, "pending_waiver": 1},
    }
    assert report.targets == ()
    planned = reset_database(new_database, dry_run=True).plan
    order = list(planned.counts)
    assert order.index("session_assignments") < order.index("sessions")
    assert planned.counts["session_assignments"] == 26
    done = reset_database(new_database)
    assert done.deleted["session_assignments"] == 26
    with psycopg.connect(new_database) as connection:
        assert connection.execute("SELECT count(*) FROM session_assignments").fetchone() == (0,)


def test_an_assignment_the_tool_did_not_write_blocks_the_reset(pg_url: str) -> None:
    run_scenario("diverse", database_url=pg_url)
    with psycopg.connect(pg_url) as connection:
        connection.execute(
            "INSERT INTO session_assignments (session_id) "
            "SELECT id FROM sessions WHERE status = 'pending' LIMIT 1")
    with pytest.raises(ResetBlockedError, match="session_assignments"):
        reset_database(pg_url)


def test_the_report_on_a_database_without_the_table_names_it_not_available(
    pg_url: str,
) -> None:
    with psycopg.connect(pg_url) as connection:
        connection.execute("DROP TABLE session_assignments")
    engine = database.engine_for(pg_url)
    try:
        with engine.connect() as connection:
            from seeding.scenario.targets import parse_targets

            report = build_report(connection, targets=parse_targets(
                {"session_assignments.by_status.queued": ">= 1", "sessions.total": ">= 0"}))
    finally:
        engine.dispose()
    assert report.unavailable == {
        "session_assignments.total": ("session_assignments",),
        "session_assignments.by_status": ("session_assignments",),
    }
    data = report.to_dict()
    assert data["session_assignments"] == {"total": None, "by_status": None}
    assert [t["met"] for t in data["targets"]] == [False, True]
    assert data["targets"][0]["missing"] == ["session_assignments"]
    text = render(report, "table")
    assert "Assignments: not available\nStatuses:    not available\n" in text
    assert "session_assignments.by_status: needs session_assignments\n" in text


@pytest.mark.parametrize("shape", ["pg_url", "app_db"])
def test_doctor_finds_nothing_about_the_table(shape: str, request: pytest.FixtureRequest) -> None:
    url: str = request.getfixturevalue(shape)
    engine = database.engine_for(url)
    try:
        with engine.connect() as connection:
            found = doctor.diagnose(connection)
    finally:
        engine.dispose()
    assert [f for f in found if f.table == "session_assignments"] == []
