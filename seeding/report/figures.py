"""The report's figures, section by section: each one SQL query run on the database's snapshot.

Requests (counts and shares by status, type and routing, response times, local times),
samples, the busiest customers and mechanics, profiles, workshops, sessions and the mechanic
queue. Each function reads through a :class:`~seeding.report.shape.Shape` (the live
database's column names, and the run's rows alone when a run is measured) and returns a part
of the :class:`~seeding.report.model.Report`; :func:`seeding.report.build.build_report` runs
them in lanes and assembles the whole.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from seeding.db.database import local_settings
from seeding.domain.geography import sql_time_zone
from seeding.domain.lifecycle import sql_priority_broadcast
from seeding.domain.mechanic_types import sql_mechanic_type
from seeding.domain.rhythm import LOCAL_HOURS, WEEKDAYS
from seeding.domain.vocabularies import REQUEST_STATUSES
from seeding.report.metrics import (
    ASSIGNMENTS,
    CUSTOMER_GEO_COLUMNS,
    MECHANIC_PROFILE_FIELD_COLUMNS,
    MECHANIC_PROFILE_FIELDS,
    SQL_MECHANIC_COMPLETE,
)
from seeding.report.model import (
    NULL_KEY,
    RESPONSE_BUCKETS,
    AssignmentStats,
    CustomerActivity,
    CustomerStats,
    IncompleteMechanic,
    MechanicActivity,
    MechanicStats,
    RequestStats,
    ResponseMinutes,
    SampleRequest,
    SessionStats,
    WorkshopStats,
)
from seeding.report.shape import Shape


def _rows(connection: Connection, sql: str, **params: Any) -> Sequence[Any]:
    # Rows typed as Any: the Row generic differs between SQLAlchemy 2.0 and 2.1.
    return connection.execute(sa.text(sql), params).all()


def _key(value: Any) -> str:
    return NULL_KEY if value is None else str(value)


#: The columns of the requests that the report breaks the requests down by.
_BREAKDOWNS = ("status", "session_type", "routing_type", "request_type")


def _response_buckets() -> str:
    """Return the count of responses per histogram bucket, as SQL columns ``h_0``, ``h_1``..."""
    waited = "(accepted_at - created_at)"
    bounds = [None, *RESPONSE_BUCKETS, None]
    columns = []
    for index in range(len(RESPONSE_BUCKETS) + 1):
        low, high = bounds[index], bounds[index + 1]
        where = [f"{waited} >= interval '{low} minutes'"] if low is not None else []
        where += [f"{waited} < interval '{high} minutes'"] if high is not None else []
        columns.append(f"count(*) FILTER (WHERE {' AND '.join(where)}) AS h_{index}")
    return ", ".join(columns)


def request_figures(connection: Connection, shape: Shape) -> RequestStats:
    """Measure the requests in one pass, grouped by every breakdown at once.

    The sample is left empty and ``without_customer_profile`` counts only the requests
    without a ``customer_id``: the jobs ``sample`` and ``parties`` give the rest.

    The few hundred groups (status x session type x routing x request type x assigned) come
    back with their counts, sums, minima and maxima, and are added up here: one scan
    instead of one per breakdown. The casts to text run once per group.
    """
    rows = _rows(
        connection,
        f"""
        SELECT status::text, session_type::text, routing_type::text, request_type::text,
               mechanic_id IS NOT NULL AS assigned, count(*) AS n,
               count(accepted_at) AS responses, sum(accepted_at - created_at) AS waited,
               min(accepted_at - created_at) AS shortest, max(accepted_at - created_at) AS longest,
               min(created_at) AS oldest, max(created_at) AS newest,
               count(workshop_id) AS with_workshop,
               count(preferred_workshop_id) AS with_preferred_workshop,
               count(preferred_mechanic_id) AS with_preferred_mechanic,
               count(*) FILTER (WHERE {sql_priority_broadcast()}) AS priority_broadcasts,
               count(*) FILTER (WHERE is_follow_up) AS follow_ups,
               count(*) FILTER (WHERE is_urgent) AS urgent,
               count(*) - count(customer_id) AS without_customer, {_response_buckets()}
        FROM {shape.rel("session_requests")}
        GROUP BY status, session_type, routing_type, request_type, mechanic_id IS NOT NULL
        """,
    )
    by: dict[str, dict[str, int]] = {name: defaultdict(int) for name in _BREAKDOWNS}
    for row in rows:
        for index, name in enumerate(_BREAKDOWNS):
            by[name][_key(row[index])] += int(row.n)
    responses = sum(int(row.responses) for row in rows)
    waited, shortest, longest = (_present(rows, c) for c in ("waited", "shortest", "longest"))
    cancelled = [row for row in rows if row.status == "cancelled"]
    return RequestStats(
        total=sum(int(row.n) for row in rows),
        by_status=_most_first(by["status"]),
        by_session_type=_most_first(by["session_type"]),
        by_routing_type=_most_first(by["routing_type"]),
        by_request_type=_most_first(by["request_type"]),
        assigned=sum(int(row.n) for row in rows if row.assigned),
        cancelled_before_assignment=sum(int(row.n) for row in cancelled if not row.assigned),
        cancelled_after_assignment=sum(int(row.n) for row in cancelled if row.assigned),
        response_minutes=ResponseMinutes(
            count=responses,
            avg=_in_minutes(sum(waited, timedelta()), responses) if waited else None,
            min=_in_minutes(min(shortest), 1) if shortest else None,
            max=_in_minutes(max(longest), 1) if longest else None,
        ),
        oldest=min(_present(rows, "oldest"), default=None),
        newest=max(_present(rows, "newest"), default=None),
        with_workshop=sum(int(row.with_workshop) for row in rows),
        with_preferred_workshop=sum(int(row.with_preferred_workshop) for row in rows),
        with_preferred_mechanic=sum(int(row.with_preferred_mechanic) for row in rows),
        priority_broadcasts=sum(int(row.priority_broadcasts) for row in rows),
        follow_ups=sum(int(row.follow_ups) for row in rows),
        urgent=sum(int(row.urgent) for row in rows),
        without_customer_profile=sum(int(row.without_customer) for row in rows),
        sample=(),
        response_histogram=tuple(
            sum(int(getattr(row, f"h_{index}")) for row in rows)
            for index in range(len(RESPONSE_BUCKETS) + 1)
        ),
    )


def _present(rows: Sequence[Any], column: str) -> list[Any]:
    return [value for row in rows if (value := getattr(row, column)) is not None]


def _most_first(counts: dict[str, int]) -> dict[str, int]:
    """Return counts ordered by count, most first, then by key ((none) last among equals)."""
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0] == NULL_KEY, item[0])))


def _in_minutes(span: timedelta, count: int) -> float:
    """Return ``span / count`` in minutes rounded to 2 decimals, half away from zero (as SQL)."""
    microseconds = Decimal((span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds)
    minutes = microseconds / Decimal(count * 60_000_000)
    return float(minutes.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


#: A local hour starts on a half hour of UTC in every Canadian time zone (Newfoundland is
#: UTC-3:30 or -2:30): requests counted per half hour of UTC can be read in local time.
_BIN_SECONDS = 1800


def request_times(connection: Connection, shape: Shape) -> dict[str, dict[str, int]]:
    """Count the requests by month, weekday and hour of their customer's local time.

    The time zone is the customer's province's (:func:`seeding.domain.geography.sql_time_zone`;
    Toronto's for a request whose customer has no profile or no known province). One scan
    counts the requests per province and half hour of UTC; only those few groups are turned
    into local times.

    Returns:
        The ``by_local_month``, ``by_local_weekday`` and ``by_local_hour`` fields of
        :class:`RequestStats`, each in its keys' order (months oldest first, Monday first,
        hours from 00).

    """
    rows = _rows(
        connection,
        f"""
        WITH binned AS (
            SELECT p.province, floor(date_part('epoch', r.created_at) / {_BIN_SECONDS}) AS bin,
                   count(*) AS n
            FROM {shape.rel("session_requests", "r")}
                 LEFT JOIN {shape.rel("profiles", "p")} ON p.id = r.customer_id
            WHERE r.created_at IS NOT NULL
            GROUP BY 1, 2)
        SELECT to_char(t.local, 'YYYY-MM') AS month, extract(isodow FROM t.local)::int AS weekday,
               extract(hour FROM t.local)::int AS hour, sum(t.n)::bigint AS n
        FROM (SELECT to_timestamp(bin * {_BIN_SECONDS}) AT TIME ZONE {sql_time_zone("province")}
                     AS local, n
              FROM binned) t
        GROUP BY 1, 2, 3
        """,
    )
    months: dict[str, int] = defaultdict(int)
    weekdays: dict[str, int] = defaultdict(int)
    hours: dict[str, int] = defaultdict(int)
    for month, weekday, hour, n in rows:
        months[str(month)] += int(n)
        weekdays[WEEKDAYS[int(weekday) - 1]] += int(n)
        hours[LOCAL_HOURS[int(hour)]] += int(n)
    return {
        "by_local_month": dict(sorted(months.items())),
        "by_local_weekday": {day: weekdays[day] for day in WEEKDAYS if day in weekdays},
        "by_local_hour": {hour: hours[hour] for hour in LOCAL_HOURS if hour in hours},
    }


def sample_requests(connection: Connection, shape: Shape, sample: int) -> tuple[SampleRequest, ...]:
    """Return the first ``sample`` requests by ``created_at`` (then id)."""
    # The casts run on the few rows kept, not on every row the sort reads.
    first = _rows(
        connection,
        f"""
        SELECT id, status::text, session_type::text, created_at FROM (
            SELECT id, status, session_type, created_at FROM {shape.rel("session_requests")}
            ORDER BY created_at, id LIMIT :sample) first
        ORDER BY created_at, id
        """,
        sample=max(int(sample), 0),
    )
    return tuple(SampleRequest(str(r[0]), _key(r[1]), _key(r[2]), r[3]) for r in first)


@dataclass(frozen=True)
class _Party:
    """One customer or mechanic of the list, with its requests by status."""

    id: Any
    total: int
    #: A customer's: whether a profile exists.
    has_profile: bool
    #: A mechanic's name, from its row (None without one).
    name: str | None
    #: A customer's profile email, else the requests' copy; a mechanic's, from its row.
    email: str | None
    #: A mechanic's type (None without a row).
    type: str | None
    by_status: dict[str, int]


@dataclass(frozen=True)
class _Parties:
    """The customers or the mechanics of the requests, as the pass over the requests gives.

    How many distinct ids (all; with a completed request; for customers, with a customer
    profile, and the requests whose customer has no profile at all), and the ``top`` ids,
    one by one.
    """

    count: int
    with_completed: int
    with_customer_profile: int
    requests_without_profile: int
    top: list[_Party]


def parties(connection: Connection, shape: Shape, top: int) -> tuple[_Parties, _Parties]:
    """Count the customers and the mechanics of the requests, and list the ``top`` of each.

    One scan of the requests, grouped by customer and by mechanic at once (grouping sets),
    with a count per known status; a party with another status gets its statuses counted
    one by one. The summary figures are window aggregates over all the groups, so they come
    back on every listed row (at least one row per side, so that they always come back).

    Returns:
        The customers, then the mechanics.

    """
    per_status = ", ".join(
        f"count(*) FILTER (WHERE status = '{status}') AS s_{i}"
        for i, status in enumerate(REQUEST_STATUSES)
    )
    statuses = ", ".join(f"t.s_{i}" for i in range(len(REQUEST_STATUSES)))
    known = " + ".join(f"t.s_{i}" for i in range(len(REQUEST_STATUSES)))
    completed = f"t.s_{REQUEST_STATUSES.index('completed')}"
    mechanic_type = sql_mechanic_type("m")
    requests = shape.rel("session_requests")
    profiles, mechanics = shape.rel("profiles", "p"), shape.rel("mechanics", "m")
    # Hash joins: without statistics (a table just loaded, before autovacuum analyzes it)
    # the planner guesses 200 customers and looks each of 100,000 up by index: 0.1 s more.
    with local_settings(connection, {"enable_nestloop": "off"}):
        rows = _rows(
            connection,
            f"""
            WITH grouped AS MATERIALIZED (
                SELECT GROUPING(customer_id) = 1 AS of_mechanic,
                       coalesce(customer_id, mechanic_id) AS party, count(*) AS total, {per_status},
                       max(customer_email) AS email_copy
                FROM {requests} GROUP BY GROUPING SETS ((customer_id), (mechanic_id))),
            customers AS (
                SELECT false AS of_mechanic, t.party, t.total, t.total - ({known}) AS other,
                       {statuses}, p.id IS NOT NULL AS has_profile, NULL::text AS name,
                       coalesce(p.email, t.email_copy) AS email, NULL::text AS type,
                       count(*) OVER () AS parties,
                       count(*) FILTER (WHERE {completed} > 0) OVER () AS with_completed,
                       count(*) FILTER (WHERE p.role = 'customer') OVER () AS with_customer_profile,
                       sum(t.total) FILTER (WHERE p.id IS NULL) OVER () AS requests_without_profile
                FROM grouped t LEFT JOIN {profiles} ON p.id = t.party
                WHERE NOT t.of_mechanic AND t.party IS NOT NULL
                ORDER BY t.total DESC, t.party LIMIT :rows),
            mechanics AS (
                SELECT true, t.party, t.total, t.total - ({known}), {statuses}, false, m.name,
                       m.email, CASE WHEN m.id IS NOT NULL THEN {mechanic_type} END,
                       count(*) OVER (), count(*) FILTER (WHERE {completed} > 0) OVER (), 0, 0
                FROM grouped t LEFT JOIN {mechanics} ON m.id = t.party
                WHERE t.of_mechanic AND t.party IS NOT NULL
                ORDER BY t.total DESC, t.party LIMIT :rows)
            SELECT * FROM customers UNION ALL SELECT * FROM mechanics
            """,
            rows=max(int(top), 1),
        )
    return (
        _side(connection, shape, [r for r in rows if not r.of_mechanic], "customer_id", top),
        _side(connection, shape, [r for r in rows if r.of_mechanic], "mechanic_id", top),
    )


def _side(
    connection: Connection, shape: Shape, rows: list[Any], column: str, top: int
) -> _Parties:
    """Read one side's rows of :func:`parties` (``column`` names the side)."""
    if not rows:
        return _Parties(0, 0, 0, 0, [])
    listed = rows[:top]
    # A status the vocabulary does not know: count those parties' statuses one by one.
    unknown = [row.party for row in listed if row.other]
    exact = _statuses_of(connection, shape, column, unknown) if unknown else {}
    parties = []
    for row in listed:
        counts = {s: int(getattr(row, f"s_{i}")) for i, s in enumerate(REQUEST_STATUSES)}
        by_status = exact.get(row.party) or _most_first({s: n for s, n in counts.items() if n})
        parties.append(
            _Party(
                id=row.party,
                total=int(row.total),
                has_profile=bool(row.has_profile),
                name=row.name,
                email=row.email,
                type=row.type,
                by_status=by_status,
            )
        )
    first = rows[0]
    return _Parties(
        count=int(first.parties),
        with_completed=int(first.with_completed),
        with_customer_profile=int(first.with_customer_profile or 0),
        requests_without_profile=int(first.requests_without_profile or 0),
        top=parties,
    )


def _statuses_of(
    connection: Connection, shape: Shape, column: str, parties: list[Any]
) -> dict[Any, dict[str, int]]:
    """Count the requests of a few parties by status, whatever the statuses are."""
    counts: dict[Any, dict[str, int]] = defaultdict(dict)
    for party, status, n in _rows(
        connection,
        f"SELECT {column}, status::text, count(*) FROM {shape.rel('session_requests')} "
        f"WHERE {column} = ANY(:parties) GROUP BY 1, 2 ORDER BY 1, 3 DESC, 2",
        parties=parties,
    ):
        counts[party][_key(status)] = int(n)
    return {party: _most_first(by_status) for party, by_status in counts.items()}


@dataclass(frozen=True)
class _CustomerProfiles:
    total: int
    with_full_geo: int
    provinces: dict[str, int]


def customer_profiles(connection: Connection, shape: Shape) -> _CustomerProfiles:
    """Return how many customers there are, and how many have a complete geography."""
    full_geo = " AND ".join(f"{column} IS NOT NULL" for column in CUSTOMER_GEO_COLUMNS)
    total, with_full_geo = _rows(
        connection,
        f"SELECT count(*), count(*) FILTER (WHERE {full_geo}) "
        f"FROM {shape.rel('profiles')} WHERE role = 'customer'",
    )[0]
    provinces = _rows(
        connection,
        f"SELECT province, count(*) FROM {shape.rel('profiles')} WHERE role = 'customer' "
        "AND province IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1",
    )
    return _CustomerProfiles(
        int(total), int(with_full_geo), {str(p): int(n) for p, n in provinces}
    )


def customer_stats(profiles: _CustomerProfiles, parties: _Parties) -> CustomerStats:
    """Return the customers' section from their profiles and the busiest of them."""
    return CustomerStats(
        total=profiles.total,
        active=parties.count,
        with_requests=parties.with_customer_profile,
        with_full_geo=profiles.with_full_geo,
        provinces=profiles.provinces,
        per_customer=tuple(
            CustomerActivity(
                id=str(c.id), email=c.email, has_profile=c.has_profile, total=c.total,
                by_status=c.by_status,
            )
            for c in parties.top
        ),
    )


@dataclass(frozen=True)
class _MechanicProfiles:
    #: (type, how many, how many complete), most first.
    by_type: list[tuple[str, int, int]]
    incomplete: tuple[IncompleteMechanic, ...]


def mechanic_profiles(connection: Connection, shape: Shape, top: int) -> _MechanicProfiles:
    """Return the mechanics by type, how many are complete, and the incomplete ones (``top``)."""
    mechanic_type = sql_mechanic_type("m")
    mechanics = shape.rel("mechanics", "m")
    by_type = _rows(
        connection,
        f"""
        SELECT {mechanic_type} AS type, count(*), count(*) FILTER (WHERE {SQL_MECHANIC_COMPLETE})
        FROM {mechanics} GROUP BY 1 ORDER BY 2 DESC, 1
        """,
    )
    lacking = ", ".join(
        f"CASE WHEN {condition} THEN '{name}' END"
        for name, condition in MECHANIC_PROFILE_FIELDS.items()
        if not shape.missing(MECHANIC_PROFILE_FIELD_COLUMNS[name])
    )
    incomplete = _rows(
        connection,
        f"""
        SELECT m.id, m.name, m.email, {mechanic_type}, m.profile_completion_score,
               array_remove(ARRAY[{lacking}]::text[], NULL)
        FROM {mechanics} WHERE NOT {SQL_MECHANIC_COMPLETE}
        ORDER BY m.created_at, m.id LIMIT :top
        """,
        top=top,
    )
    return _MechanicProfiles(
        by_type=[(str(t), int(n), int(c)) for t, n, c in by_type],
        incomplete=tuple(
            IncompleteMechanic(str(i), name, email, kind, score, tuple(missing))
            for i, name, email, kind, score, missing in incomplete
        ),
    )


def mechanic_stats(profiles: _MechanicProfiles, parties: _Parties) -> MechanicStats:
    """Return the mechanics' section from their profiles and the busiest of them."""
    by_type = profiles.by_type
    return MechanicStats(
        total=sum(n for _, n, _ in by_type),
        participating=parties.count,
        complete=sum(c for _, _, c in by_type),
        by_type={t: n for t, n, _ in by_type},
        complete_by_type={t: c for t, _, c in by_type if c},
        with_completed_session=parties.with_completed,
        incomplete=profiles.incomplete,
        per_mechanic=tuple(
            MechanicActivity(
                id=str(m.id), name=m.name, email=m.email, type=m.type, total=m.total,
                by_status=m.by_status,
            )
            for m in parties.top
        ),
    )


def workshop_stats(connection: Connection, shape: Shape) -> WorkshopStats:
    """Return the workshops' section: how many, and in which provinces."""
    rows = _rows(
        connection,
        f"SELECT province, count(*) FROM {shape.rel('organizations')} "
        "WHERE organization_type = 'workshop' "
        "GROUP BY 1 ORDER BY 2 DESC, 1",
    )
    return WorkshopStats(
        total=sum(int(n) for _, n in rows),
        provinces={str(p): int(n) for p, n in rows if p is not None},
    )


def session_stats(connection: Connection, shape: Shape) -> SessionStats:
    """Count the sessions by status, and the completed ones by their mechanic's type (one scan)."""
    rows = _rows(
        connection,
        f"""
        SELECT s.status, CASE WHEN s.status = 'completed' AND m.id IS NOT NULL
                              THEN {sql_mechanic_type("m")} END AS type, count(*)
        FROM {shape.rel("sessions", "s")} LEFT JOIN {shape.rel("mechanics", "m")}
             ON m.id = s.mechanic_id
        GROUP BY 1, 2
        """,
    )
    by_status: dict[str, int] = defaultdict(int)
    completed: dict[str, int] = defaultdict(int)
    for status, kind, n in rows:
        by_status[_key(status)] += int(n)
        if kind is not None:
            completed[kind] += int(n)
    return SessionStats(
        total=sum(by_status.values()),
        by_status=_most_first(by_status),
        completed_by_mechanic_type=_most_first(completed),
    )


def assignment_stats(connection: Connection, shape: Shape) -> AssignmentStats:
    """Count the sessions' assignments by status (what the mechanic queue reads)."""
    rows = _rows(
        connection,
        f"SELECT status::text, count(*) FROM {shape.rel(ASSIGNMENTS)} GROUP BY 1",
    )
    by_status = {_key(status): int(n) for status, n in rows}
    return AssignmentStats(total=sum(by_status.values()), by_status=_most_first(by_status))
