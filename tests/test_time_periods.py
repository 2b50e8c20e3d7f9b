"""Time periods: requests spread over a history with a marketplace's rhythm, in local time.

The factories draw a request's creation in the clock's window with the rhythm of
:data:`seeding.domain.rhythm.MARKETPLACE` in the customer's local time; the report reads the times
back by local month, weekday and hour (in SQL), and ``diverse`` expects several months and
every weekday.
"""

from __future__ import annotations

import random
import re
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

import factories
from factories import CustomerFactory, SessionFactory, SessionRequestFactory
from factories.context import Clock
from factories.timeline import in_history, local_zone
from seeding.db import database
from seeding.domain import integrity
from seeding.domain.geography import DEFAULT_TIME_ZONE, TIME_ZONES, sql_time_zone, time_zone_of
from seeding.domain.lifecycle import REQUEST_TTL
from seeding.domain.rhythm import LOCAL_HOURS, MARKETPLACE, WEEKDAYS, Rhythm
from seeding.domain.schema import MODELS, Session
from seeding.domain.vocabularies import PROVINCES
from seeding.errors import ScenarioError
from seeding.report import build_report, render
from seeding.runner import run_scenario
from seeding.scenario.targets import (
    UNSCALED_METRICS,
    check_metric,
    evaluate,
    is_count,
    lookup,
    parse_targets,
)

NOW = datetime(2025, 11, 12, 17, 0, tzinfo=UTC)
#: Three months of history before the clock, as diverse's.
HISTORY = Clock(now=NOW, start=NOW - timedelta(days=92), end=NOW - timedelta(hours=1))
VANCOUVER, ST_JOHNS = ZoneInfo("America/Vancouver"), ZoneInfo("America/St_Johns")


def draws(zone: ZoneInfo, n: int = 6000, seed: int = 1, clock: Clock = HISTORY) -> list[datetime]:
    rng = random.Random(seed)
    return [in_history(rng, clock, zone) for _ in range(n)]


# --- the rhythm, drawn -----------------------------------------------------------------------


@pytest.mark.parametrize("room", [timedelta(0), REQUEST_TTL, timedelta(hours=3)])
def test_an_instant_of_history_stays_in_the_window_and_leaves_room(room: timedelta) -> None:
    rng = random.Random(3)
    latest = min(HISTORY.end, HISTORY.now - room)
    for _ in range(2000):
        instant = in_history(rng, HISTORY, VANCOUVER, room=room)
        assert HISTORY.start <= instant <= latest
        assert (latest - instant).microseconds == 0  # whole seconds from the window's end


def test_the_same_seed_draws_the_same_instants_another_seed_others() -> None:
    assert draws(VANCOUVER, 300, seed=5) == draws(VANCOUVER, 300, seed=5)
    assert draws(VANCOUVER, 300, seed=5) != draws(VANCOUVER, 300, seed=6)


@pytest.mark.parametrize("zone", [VANCOUVER, ST_JOHNS, ZoneInfo("America/Toronto")])
def test_requests_follow_the_rhythm_of_the_local_day(zone: ZoneInfo) -> None:
    local = [instant.astimezone(zone) for instant in draws(zone)]
    hours = Counter(moment.hour for moment in local)
    night = sum(hours[hour] for hour in range(6)) / len(local)
    assert night < 0.05  # the profile gives the night (00-06) about 3%
    weekday_evenings = sum(1 for m in local if m.weekday() < 5 and 17 <= m.hour < 22)
    assert weekday_evenings / len(local) > 0.25  # about 31%: after work is the busiest
    weekend = [m.hour for m in local if m.weekday() >= 5]
    late_mornings = sum(1 for hour in weekend if 10 <= hour < 13)
    assert late_mornings > 1.3 * sum(1 for hour in weekend if 18 <= hour < 21)
    assert len({m.weekday() for m in local}) == 7


def test_the_hours_are_the_customers_local_ones_not_utc() -> None:
    # The same quiet night, at different hours of UTC: 08-14 UTC in Vancouver, 03-09 in
    # St. John's (half an hour off).
    def quiet_utc_hours(zone: ZoneInfo) -> float:
        utc = Counter(instant.astimezone(UTC).hour for instant in draws(zone))
        return sum(utc[hour] for hour in range(9, 13)) / sum(utc.values())

    assert quiet_utc_hours(VANCOUVER) < 0.04
    assert quiet_utc_hours(ST_JOHNS) > 0.10


def test_recent_weeks_are_denser_than_old_ones() -> None:
    found = draws(VANCOUVER)
    oldest = sum(1 for x in found if x < HISTORY.start + timedelta(days=30))
    newest = sum(1 for x in found if x >= HISTORY.end - timedelta(days=30))
    # A half-life of 45 days: the newest month holds about 2.5 times the oldest's requests.
    assert newest > 1.8 * oldest
    assert oldest > 0.08 * len(found)  # old months are thinner, not empty


def test_a_window_in_quiet_hours_still_gives_an_instant_in_it() -> None:
    # 20 minutes at 03:00 in Vancouver: most draws are refused, the last one is kept.
    start = datetime(2025, 11, 9, 3, 0, tzinfo=VANCOUVER)
    clock = Clock(now=start + timedelta(days=1), start=start, end=start + timedelta(minutes=20))
    found = draws(VANCOUVER, 200, clock=clock)
    assert all(clock.start <= instant <= clock.end for instant in found)
    assert len(set(found)) > 100  # drawn, not pinned to an end


def test_a_window_with_no_room_gives_its_start() -> None:
    clock = Clock(now=NOW, start=NOW - timedelta(minutes=30), end=NOW)
    assert in_history(random.Random(1), clock, VANCOUVER, room=timedelta(hours=1)) == clock.start


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"days": MappingProxyType({"mon": 1.0})}, "a rhythm's days are mon, tue"),
        ({"workday_hours": (1.0,) * 23}, "workday_hours are 24 weights"),
        ({"weekend_hours": (0.0,) * 24}, "weekend_hours are 24 weights"),
        ({"half_life": timedelta(0)}, "half_life must be positive"),
    ],
)
def test_a_profile_that_is_not_a_week_is_refused(change: dict[str, Any], message: str) -> None:
    fields = {"days": MARKETPLACE.days, "workday_hours": MARKETPLACE.workday_hours,
              "weekend_hours": MARKETPLACE.weekend_hours, "half_life": MARKETPLACE.half_life}
    with pytest.raises(ValueError, match=message):
        Rhythm(**{**fields, **change})


def test_a_days_weights_are_its_share_whatever_the_shape_of_its_hours() -> None:
    for day, row in zip(WEEKDAYS, MARKETPLACE.table, strict=True):
        assert sum(row) / len(row) == pytest.approx(MARKETPLACE.days[day])
    assert MARKETPLACE.peak == max(max(row) for row in MARKETPLACE.table)
    assert len(LOCAL_HOURS) == 24 and LOCAL_HOURS[0] == "00" and LOCAL_HOURS[-1] == "23"


# --- the factories ---------------------------------------------------------------------------


def test_time_zones_cover_every_province_and_default_to_toronto() -> None:
    assert set(TIME_ZONES) == set(PROVINCES)
    for province in PROVINCES:
        assert local_zone(province) == ZoneInfo(time_zone_of(province))
    assert time_zone_of(None) == time_zone_of("Ontario") == DEFAULT_TIME_ZONE == "America/Toronto"
    assert CustomerFactory.build(province="BC").timezone == "America/Vancouver"


def test_a_customers_requests_follow_the_rhythm_of_their_province() -> None:
    factories.reseed(11)
    with factories.clock(NOW, start=HISTORY.start, end=HISTORY.end), factories.collect() as rows:
        customer = CustomerFactory.build(province="BC")
        done = SessionRequestFactory.build_batch(300, completed=True, customer=customer)
        waiting = SessionRequestFactory.build_batch(20, pending=True, customer=customer)
        expired = SessionRequestFactory.build_batch(20, expired=True, customer=customer)
        sessions = SessionFactory.build_batch(20, status="completed", customer=customer)
    started = {row.id: row for row in rows if isinstance(row, Session)}
    local = [r.created_at.astimezone(VANCOUVER) for r in done]
    assert sum(1 for m in local if m.hour < 6) / len(local) < 0.07
    assert sum(1 for m in local if m.weekday() < 5 and 17 <= m.hour < 22) / len(local) > 0.2
    assert len({m.strftime("%Y-%m") for m in local}) >= 3
    for request in done:
        assert HISTORY.start <= request.created_at
        assert request.accepted_at is not None and request.created_at <= request.accepted_at
        session = started[request.session_id]
        assert session.started_at is not None and session.ended_at is not None
        assert request.accepted_at <= session.started_at < session.ended_at <= NOW
    # Still pending: made within the request's lifetime, whatever the history.
    assert all(NOW - REQUEST_TTL < r.created_at <= NOW for r in waiting)
    assert all(r.expires_at <= NOW and r.created_at >= HISTORY.start for r in expired)
    assert all(HISTORY.start <= s.created_at and s.ended_at <= NOW for s in sessions)


# --- the report ------------------------------------------------------------------------------


def _insert(connection: sa.Connection, table: str, **values: Any) -> None:
    connection.execute(sa.insert(MODELS[table].__table__).values(**values))  # type: ignore[arg-type]


#: Customers by province (None: a profile without one; "ghost": no profile at all).
CUSTOMERS = {"NL": 1, "BC": 2, "SK": 3, "ON": 4, None: 5, "ghost": 7}

#: Instants that test the local reading: DST ends (2025-11-02) and starts (2026-03-08), a UTC
#: month that is the last of the previous one locally, Newfoundland's half hour.
INSTANTS = (
    datetime(2025, 11, 1, 3, 30, tzinfo=UTC),
    datetime(2025, 11, 2, 5, 59, 59, tzinfo=UTC),
    datetime(2025, 11, 2, 6, 0, tzinfo=UTC),
    datetime(2025, 11, 2, 9, 29, 59, tzinfo=UTC),
    datetime(2025, 11, 2, 9, 30, 0, 500_000, tzinfo=UTC),
    datetime(2026, 3, 8, 10, 15, tzinfo=UTC),
    datetime(2025, 12, 31, 23, 45, tzinfo=UTC),
    datetime(2025, 8, 17, 2, 0, tzinfo=UTC),
)


def _uid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def _make_requests(connection: sa.Connection) -> list[tuple[datetime, str]]:
    """Insert a request per customer and instant; return each one's instant and time zone."""
    made = []
    for province, n in CUSTOMERS.items():
        if province != "ghost":
            _insert(connection, "profiles", id=_uid(n), role="customer",
                    email=f"c{n}@example.com", province=province)
        for index, instant in enumerate(INSTANTS):
            _insert(connection, "session_requests", id=_uid(1000 * n + index),
                    customer_id=_uid(n), status="expired", session_type="chat",
                    created_at=instant)
            zone = time_zone_of(province if province != "ghost" else None)
            made.append((instant, zone))
    return made


def _expected(made: Sequence[tuple[datetime, str]]) -> dict[str, dict[str, int]]:
    local = [instant.astimezone(ZoneInfo(zone)) for instant, zone in made]
    months = Counter(m.strftime("%Y-%m") for m in local)
    days = Counter(WEEKDAYS[m.weekday()] for m in local)
    hours = Counter(f"{m.hour:02d}" for m in local)
    return {
        "by_local_month": dict(sorted(months.items())),
        "by_local_weekday": {d: days[d] for d in WEEKDAYS if d in days},
        "by_local_hour": {h: hours[h] for h in LOCAL_HOURS if h in hours},
    }


def test_sql_time_zones_are_the_python_ones(engine: sa.Engine) -> None:
    query = sa.text(f"SELECT {sql_time_zone('CAST(:province AS text)')}")
    with engine.connect() as connection:
        for province in (*PROVINCES, None, "", "on", "Ontario", "X'Y"):
            zone = connection.execute(query, {"province": province}).scalar_one()
            assert zone == time_zone_of(province), province


def test_the_report_reads_months_weekdays_and_hours_in_the_customers_zone(
    engine: sa.Engine,
) -> None:
    with engine.begin() as connection:
        made = _make_requests(connection)
        report = build_report(connection, now=NOW)
    found = report.to_dict()["session_requests"]
    expected = _expected(made)
    for key, counts in expected.items():
        assert found[key] == counts, key
        assert list(found[key]) == list(counts), key  # in the keys' own order
    assert found["local_months"] == len(expected["by_local_month"]) >= 5
    assert found["local_weekdays"] == len(expected["by_local_weekday"])
    assert sum(found["by_local_hour"].values()) == found["total"] == len(made)
    # The local reading differs from UTC's where it should: a UTC November evening is an
    # October one in Vancouver, and a UTC 09:30 is 07:00 in St. John's.
    assert expected["by_local_month"].get("2025-10", 0) > 0
    nl_hours = {f"{i.astimezone(ST_JOHNS).hour:02d}" for i in INSTANTS}
    assert {"07", "06"} <= nl_hours


def test_an_empty_database_has_no_time_periods(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        found = build_report(connection, now=NOW).to_dict()["session_requests"]
    assert {k: found[k] for k in ("by_local_month", "by_local_weekday", "by_local_hour",
                                   "local_months", "local_weekdays")} == {
        "by_local_month": {}, "by_local_weekday": {}, "by_local_hour": {},
        "local_months": 0, "local_weekdays": 0}


def test_without_the_customers_province_local_time_is_not_available(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        _make_requests(connection)
        connection.execute(sa.text("ALTER TABLE profiles DROP COLUMN province"))
    targets = parse_targets({"session_requests.local_weekdays": "== 7"})
    with engine.connect() as connection:
        report = build_report(connection, now=NOW, targets=targets)
    metrics = ("by_local_month", "by_local_weekday", "by_local_hour", "local_months",
               "local_weekdays")
    for metric in metrics:
        assert report.unavailable[f"session_requests.{metric}"] == ("profiles.province",)
    found = report.to_dict()
    assert all(found["session_requests"][metric] is None for metric in metrics)
    assert found["session_requests"]["total"] == len(CUSTOMERS) * len(INSTANTS)
    (target,) = report.targets
    assert not target.met and target.missing == ("profiles.province",)
    text = render(report, "table")
    periods = text.split("Time periods (customer's local time)")[1].split("\n\n")[0]
    for label in ("Calendar months", "Weekdays", "Requests per month", "Requests per hour"):
        assert re.search(rf"^{label}: +not available$", periods, re.MULTILINE), label
    assert "- **session_requests.local_months:** needs profiles.province" in render(
        report, "markdown")


def test_the_renderings_show_every_weekday_and_hour(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        made = _make_requests(connection)
        report = build_report(connection, now=NOW)
    total = len(made)
    markdown = render(report, "markdown")
    assert "\n## Time periods (customer's local time)\n" in markdown
    assert f"- **Weekdays:** {report.session_requests.local_weekdays} of 7" in markdown
    section = markdown.split("## Time periods")[1].split("\n## ")[0]
    assert "| Local hour | Count | Percentage |" in section
    assert sum(1 for line in section.splitlines() if line[:5] in
               {f"| {hour} " for hour in LOCAL_HOURS}) == 24
    for day in WEEKDAYS:
        assert f"| {day} | " in section
    assert f"| TOTAL | {total} | 100.0% |" in section
    assert "| 2025-10 | " in section and "| 2026-03 | " in section


# --- targets ---------------------------------------------------------------------------------


def test_a_month_is_a_target_path_of_its_form() -> None:
    check_metric("session_requests.by_local_month.2025-10")
    check_metric("session_requests.by_local_hour.19")
    check_metric("session_requests.by_local_weekday.sun")
    with pytest.raises(ScenarioError, match=r"key '2025-13' .* is not a month YYYY-MM; e\.g\. "
                                            r"session_requests\.by_local_month\.2025-10"):
        check_metric("session_requests.by_local_month.2025-13")
    with pytest.raises(ScenarioError, match="is a map, not a number"):
        check_metric("session_requests.by_local_month")
    with pytest.raises(ScenarioError, match="expected one of 00, 01"):
        check_metric("session_requests.by_local_hour.7")
    report = {"session_requests": {"by_local_month": {"2025-10": 4}, "local_months": 1}}
    assert lookup(report, "session_requests.by_local_month.2025-10") == 4
    assert lookup(report, "session_requests.by_local_month.2025-09") == 0
    results = evaluate(report, parse_targets({"session_requests.by_local_month.2025-10": ">= 5",
                                              "session_requests.local_months": ">= 1"}))
    assert [r.met for r in results] == [False, True]


def test_distinct_months_and_weekdays_do_not_scale() -> None:
    # A scaled run keeps them as written: they count time periods, not rows.
    assert {"session_requests.local_months", "session_requests.local_weekdays"} <= UNSCALED_METRICS
    assert not is_count("session_requests.local_months")
    assert not is_count("session_requests.local_weekdays")
    assert is_count("session_requests.by_local_month.2025-10")
    assert is_count("session_requests.by_local_hour.19")


# --- diverse ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_diverse_spreads_its_requests_over_three_months(new_database: str, scale: float) -> None:
    run_scenario("diverse", database_url=new_database, scale=scale)
    engine = database.engine_for(new_database)
    try:
        with engine.connect() as connection:
            # diverse's clock is NOW; its window starts on 2025-08-12, Toronto time.
            report = build_report(connection, now=NOW)
            oldest_month, newest_month = connection.execute(sa.text("""
                SELECT count(*) FILTER (WHERE created_at < timestamptz '2025-09-11 00:00-04'),
                       count(*) FILTER (WHERE created_at >= timestamptz '2025-10-13 00:00-04')
                FROM session_requests
                WHERE customer_email NOT IN ('cust1@test.com', 'cust2@test.com',
                                             'cust3@example.com')
                  AND status NOT IN ('pending', 'accepted')""")).one()
    finally:
        engine.dispose()
    requests = report.session_requests
    assert requests.local_months >= 3 and requests.local_weekdays == 7
    assert min(requests.by_local_month) <= ("2025-08" if scale == 1 else "2025-09")
    # diverse's own requests of its history (not baseline's, not those of the last hour).
    assert 0 < oldest_month < newest_month
    broken = {r.rule: r.violations for r in report.integrity}
    for rule in ("request timestamps in order", "expires_at fits pending and expired",
                 "nothing happens after now"):
        assert broken[rule] == 0, rule
    assert len(report.integrity) == len(integrity.RULES)
