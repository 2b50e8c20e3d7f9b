"""Building the report: the SQL that measures a database, run in the database, read-only.

Every number is an aggregate computed by PostgreSQL (``count``, ``GROUP BY``, ``FILTER``);
only aggregates and a few bounded lists (``LIMIT``) come back, so a million requests take
seconds. A missing table, a refused permission or a lost connection raises; it is never
reported as zeros.

The report reads the live catalog once (:func:`check_schema`) and runs on any database with
the app's tables: the app's real one too, whose columns differ from this tool's schema. Each
metric declares the columns it reads (:data:`METRIC_COLUMNS`), each integrity rule too
(:attr:`seeding.domain.integrity.Rule.columns`); those that need a column the database lacks are
reported as not available, or skipped, never as a number (:mod:`seeding.report.shape`).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from typing import Any, Final

import sqlalchemy as sa
from psycopg import errors as pg_errors
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from seeding.db.catalog import read_catalog
from seeding.db.database import WORK_MEM, describe, local_settings
from seeding.domain import integrity
from seeding.domain.geography import sql_time_zone
from seeding.domain.lifecycle import sql_priority_broadcast
from seeding.domain.mechanic_types import sql_mechanic_type
from seeding.domain.rhythm import LOCAL_HOURS, WEEKDAYS
from seeding.domain.vocabularies import REQUEST_STATUSES
from seeding.errors import DatabaseError, SchemaError
from seeding.report import lanes
from seeding.report.model import (
    NO_ASSIGNMENTS,
    NULL_KEY,
    RESPONSE_BUCKETS,
    AssignmentStats,
    CustomerActivity,
    CustomerStats,
    IncompleteMechanic,
    IntegrityResult,
    MechanicActivity,
    MechanicStats,
    Report,
    RequestStats,
    ResponseMinutes,
    SampleRequest,
    SessionStats,
    SkippedRule,
    WorkshopStats,
)
from seeding.report.shape import CORE_TABLES, SCHEMA, Shape, shape_of
from seeding.scenario.targets import Target

#: A mechanic's profile is complete when all of these hold (the audit's "complete profile").
SQL_MECHANIC_COMPLETE = (
    "(coalesce(m.profile_completion_score, 0) >= 80 AND m.city IS NOT NULL "
    "AND m.province IS NOT NULL AND m.postal_code IS NOT NULL "
    "AND m.years_of_experience IS NOT NULL)"
)

#: What an incomplete mechanic may lack: the name shown → the SQL condition that it lacks it.
MECHANIC_PROFILE_FIELDS: dict[str, str] = {
    "city": "m.city IS NULL",
    "province": "m.province IS NULL",
    "postal_code": "m.postal_code IS NULL",
    "years_of_experience": "m.years_of_experience IS NULL",
    "latitude": "m.latitude IS NULL",
    "longitude": "m.longitude IS NULL",
    "red_seal": "m.red_seal_certified IS NOT TRUE",
    "specializations": "coalesce(cardinality(m.specializations), 0) = 0",
}

#: A customer's geography is complete when every one of these columns is set.
CUSTOMER_GEO_COLUMNS = ("address_line1", "city", "province", "postal_code", "latitude", "longitude")


def _columns(table: str, *columns: str) -> tuple[str, ...]:
    return tuple(f"{table}.{column}" for column in columns)


_REQUESTS, _PROFILES, _MECHANICS = "session_requests", "profiles", "mechanics"
_ASSIGNMENTS = "session_assignments"
_MECHANIC_TYPE = _columns(_MECHANICS, "workshop_id", "account_type")
#: A request's local time: when it was made, and its customer's province (the time zone).
_LOCAL_TIME = _columns(_REQUESTS, "created_at", "customer_id") + _columns(
    _PROFILES, "id", "province"
)
_MECHANIC_COMPLETE = _columns(
    _MECHANICS, "profile_completion_score", "city", "province", "postal_code",
    "years_of_experience",
)

#: Each metric of the report (a key of the JSON contract, docs/report.md) and the columns it
#: reads, as ``table.column``; a metric not listed reads whole tables only (a ``total``).
#: A database that lacks one of its columns reports the metric as not available (the names
#: and emails shown beside listed parties are :data:`OPTIONAL_COLUMNS`).
METRIC_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "session_requests.by_status": _columns(_REQUESTS, "status"),
    "session_requests.share_by_status": _columns(_REQUESTS, "status"),
    "session_requests.by_session_type": _columns(_REQUESTS, "session_type"),
    "session_requests.share_by_session_type": _columns(_REQUESTS, "session_type"),
    "session_requests.by_routing_type": _columns(_REQUESTS, "routing_type"),
    "session_requests.by_request_type": _columns(_REQUESTS, "request_type"),
    "session_requests.assigned": _columns(_REQUESTS, "mechanic_id"),
    "session_requests.unassigned": _columns(_REQUESTS, "mechanic_id"),
    "session_requests.cancelled_before_assignment": _columns(_REQUESTS, "status", "mechanic_id"),
    "session_requests.cancelled_after_assignment": _columns(_REQUESTS, "status", "mechanic_id"),
    "session_requests.response_minutes": _columns(_REQUESTS, "created_at", "accepted_at"),
    "session_requests.response_histogram": _columns(_REQUESTS, "created_at", "accepted_at"),
    "session_requests.oldest": _columns(_REQUESTS, "created_at"),
    "session_requests.newest": _columns(_REQUESTS, "created_at"),
    "session_requests.span_days": _columns(_REQUESTS, "created_at"),
    **dict.fromkeys(
        (
            "session_requests.by_local_month",
            "session_requests.by_local_weekday",
            "session_requests.by_local_hour",
            "session_requests.local_months",
            "session_requests.local_weekdays",
        ),
        _LOCAL_TIME,
    ),
    "session_requests.with_workshop": _columns(_REQUESTS, "workshop_id"),
    "session_requests.with_preferred_workshop": _columns(_REQUESTS, "preferred_workshop_id"),
    "session_requests.with_preferred_mechanic": _columns(_REQUESTS, "preferred_mechanic_id"),
    "session_requests.priority_broadcasts": _columns(
        _REQUESTS, "routing_type", "preferred_mechanic_id", "priority_notified_at"
    ),
    "session_requests.follow_ups": _columns(_REQUESTS, "is_follow_up"),
    "session_requests.urgent": _columns(_REQUESTS, "is_urgent"),
    "session_requests.without_customer_profile": _columns(_REQUESTS, "customer_id")
    + _columns(_PROFILES, "id"),
    "session_requests.sample": _columns(_REQUESTS, "id", "status", "session_type", "created_at"),
    "customers.total": _columns(_PROFILES, "role"),
    "customers.active": _columns(_REQUESTS, "customer_id"),
    "customers.with_requests": _columns(_REQUESTS, "customer_id")
    + _columns(_PROFILES, "id", "role"),
    "customers.with_full_geo": _columns(_PROFILES, "role", *CUSTOMER_GEO_COLUMNS),
    "customers.provinces": _columns(_PROFILES, "role", "province"),
    "customers.province_count": _columns(_PROFILES, "role", "province"),
    "customers.per_customer": _columns(_REQUESTS, "customer_id", "status")
    + _columns(_PROFILES, "id"),
    "mechanics.by_type": _MECHANIC_TYPE,
    "mechanics.complete": _MECHANIC_COMPLETE,
    "mechanics.incomplete_count": _MECHANIC_COMPLETE,
    "mechanics.complete_by_type": _MECHANIC_COMPLETE + _MECHANIC_TYPE,
    "mechanics.incomplete": _MECHANIC_COMPLETE
    + _columns(_MECHANICS, "id", "created_at")
    + _MECHANIC_TYPE,
    "mechanics.participating": _columns(_REQUESTS, "mechanic_id"),
    "mechanics.with_completed_session": _columns(_REQUESTS, "mechanic_id", "status"),
    "mechanics.per_mechanic": _columns(_REQUESTS, "mechanic_id", "status")
    + _columns(_MECHANICS, "id")
    + _MECHANIC_TYPE,
    "workshops.total": _columns("organizations", "organization_type"),
    "workshops.provinces": _columns("organizations", "organization_type", "province"),
    "workshops.province_count": _columns("organizations", "organization_type", "province"),
    "sessions.by_status": _columns("sessions", "status"),
    # sessions.mechanic_id read as a mechanics.id (seeding.report.shape): where it holds auth
    # user ids, that needs mechanics.user_id too.
    "sessions.completed_by_mechanic_type": _columns("sessions", "status", "mechanic_id")
    + _columns(_MECHANICS, "id")
    + _MECHANIC_TYPE,
    # An optional table (seeding.report.shape.OPTIONAL_TABLES): its name stands for the whole
    # table, which a database made before the tool wrote it lacks.
    "session_assignments.total": (_ASSIGNMENTS,),
    "session_assignments.by_status": (_ASSIGNMENTS, *_columns(_ASSIGNMENTS, "status")),
}

#: The columns the report shows where the database has them, and leaves null where it has
#: not, without naming anything as not available: the names and emails beside the listed
#: customers and mechanics (a customer's email is then the requests' copy, or null).
OPTIONAL_COLUMNS: Final = (
    "profiles.email",
    "session_requests.customer_email",
    "mechanics.name",
    "mechanics.email",
)

#: The columns each of :data:`MECHANIC_PROFILE_FIELDS` reads. A field whose column the
#: database lacks is not checked: ``mechanics.incomplete[].missing`` never lists it, and the
#: report names it as not available (``mechanics.incomplete.missing.<field>``).
MECHANIC_PROFILE_FIELD_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "city": _columns(_MECHANICS, "city"),
    "province": _columns(_MECHANICS, "province"),
    "postal_code": _columns(_MECHANICS, "postal_code"),
    "years_of_experience": _columns(_MECHANICS, "years_of_experience"),
    "latitude": _columns(_MECHANICS, "latitude"),
    "longitude": _columns(_MECHANICS, "longitude"),
    "red_seal": _columns(_MECHANICS, "red_seal_certified"),
    "specializations": _columns(_MECHANICS, "specializations"),
}


def unavailable_metrics(shape: Shape) -> dict[str, tuple[str, ...]]:
    """Return the metrics a database cannot measure, each with the columns it lacks.

    In the order of :data:`METRIC_COLUMNS`, then the profile fields of incomplete mechanics
    that cannot be checked (``mechanics.incomplete.missing.<field>``); empty on the tool's own
    schema.
    """
    found = {
        metric: missing
        for metric, columns in METRIC_COLUMNS.items()
        if (missing := shape.missing(columns))
    }
    if "mechanics.incomplete" not in found:
        found.update(
            (f"mechanics.incomplete.missing.{field}", missing)
            for field, columns in MECHANIC_PROFILE_FIELD_COLUMNS.items()
            if (missing := shape.missing(columns))
        )
    return found



def build_report(
    connection: Connection,
    *,
    now: datetime | None = None,
    sample: int = 10,
    top: int = 20,
    targets: Sequence[Target] = (),
    run: uuid.UUID | None = None,
) -> Report:
    """Measure a database with the app's tables; read only.

    Args:
        connection: A connection to the database; the report runs its queries on it and
            writes nothing. For one consistent snapshot, open it with
            ``isolation_level="REPEATABLE READ"``; such a connection that has written nothing
            also lets the report run its queries on a second connection that reads the same
            snapshot (:mod:`seeding.report.lanes`). The report raises ``work_mem`` for the
            connection's transaction (:data:`seeding.db.database.WORK_MEM`), so its joins stay
            in memory, and with two connections turns off parallel workers, both with
            ``SET LOCAL``.
        now: The instant the integrity rules take as now; by default the database's ``now()``.
        sample: How many requests to list, the first ones by ``created_at``.
        top: How many customers, mechanics and incomplete mechanics to list one by one (the
            counts always cover all of them).
        targets: Conditions to check the report against (see :mod:`seeding.scenario.targets`).
        run: Measure only the rows this run wrote (by the ledger); None: every row.

    Raises:
        SchemaError: When a table the report needs is missing; the message names it. A
            missing column is no error: the metrics that need it are reported as not
            available (:attr:`Report.unavailable`), the rules that need it as skipped
            (:attr:`Report.skipped_rules`).
        DatabaseError: When a query fails: a refused permission, a lost connection.

    """
    with translated_errors():
        shape = check_schema(connection)
        if run is not None:
            shape = dataclasses.replace(shape, run=run)
        unavailable = unavailable_metrics(shape)
        skipped = integrity.skipped_rules(shape)
        passes = [
            tuple(name for name in names if name not in skipped)
            for names in integrity.REQUEST_PASSES
        ]
        if now is None:
            now = connection.execute(sa.text("SELECT now()")).scalar_one()
        top = max(int(top), 0)
        # The longest first (as measured on a million requests: 1.1, 0.95, 0.75, 0.45, then
        # 0.2 s and less), so that the lanes end at about the same time.
        jobs: dict[str, lanes.Job] = {
            **{
                f"requests {index}": partial(
                    integrity.check_requests, now=now, rules=rules, reader=shape
                )
                for index, rules in enumerate(passes)
                if rules
            },
            "parties": partial(_parties, shape=shape, top=top),
            "request figures": partial(_request_figures, shape=shape),
            "sessions": partial(_sessions, shape=shape),
            **(
                {}
                if "session_assignments.total" in unavailable
                else {"session assignments": partial(_assignments, shape=shape)}
            ),
            "sample": partial(_sample, shape=shape, sample=max(int(sample), 0)),
            "request times": partial(_request_times, shape=shape),
            **{
                rule: partial(integrity.check_tables, now=now, rules=(rule,), reader=shape)
                for rule in integrity.TABLE_RULES
                if rule not in skipped
            },
            "mechanic profiles": partial(_mechanic_profiles, shape=shape, top=top),
            "customer profiles": partial(_customer_profiles, shape=shape),
            "workshops": partial(_workshops, shape=shape),
        }
        with lanes.opened(connection, {"work_mem": WORK_MEM}) as connections:
            done = lanes.run(jobs, connections)
        customer_parties, mechanic_parties = done["parties"]
        figures: RequestStats = done["request figures"]
        requests = dataclasses.replace(
            figures,
            sample=done["sample"],
            **done["request times"],
            without_customer_profile=figures.without_customer_profile
            + customer_parties.requests_without_profile,
        )
        found = integrity.in_rule_order(
            *(done[f"requests {index}"] for index, rules in enumerate(passes) if rules),
            *(done[rule] for rule in integrity.TABLE_RULES if rule not in skipped),
            skipped=skipped,
        )
        report = Report(
            now=now,
            session_requests=requests,
            customers=_customers(done["customer profiles"], customer_parties),
            mechanics=_mechanics(done["mechanic profiles"], mechanic_parties),
            workshops=done["workshops"],
            sessions=done["sessions"],
            session_assignments=done.get("session assignments", NO_ASSIGNMENTS),
            integrity=tuple(
                IntegrityResult(v.rule, v.count, tuple(str(i) for i in v.sample)) for v in found
            ),
            unavailable=unavailable,
            skipped_rules=tuple(SkippedRule(rule, missing) for rule, missing in skipped.items()),
        )
    return report.with_targets(targets) if targets else report


def check_schema(connection: Connection) -> Shape:
    """Read the live catalog once; return how to read the app's tables on this database.

    Any database with the app's tables (:data:`seeding.report.shape.CORE_TABLES`, as tables
    or views in schema ``public``) passes, whatever columns they have.

    Raises:
        SchemaError: Naming the missing tables, in one line. A database that looks like one
            this tool made (no ``auth`` schema) is told to run ``seed db create``; the app's
            database (Supabase's ``auth`` schema) is only told what the report needs.
        DatabaseError: When the catalog cannot be read (a lost connection says so).

    """
    try:
        catalog = read_catalog(connection, (SCHEMA, "auth"))
    except DatabaseError as error:
        if connection.invalidated:
            reason = str(error).removeprefix("cannot read the database's catalog: ")
            raise DatabaseError(
                f"lost the database connection while reporting: {reason}; check that the "
                "server is running and run the report again"
            ) from None
        raise
    missing = [name for name in CORE_TABLES if catalog.table(name, SCHEMA) is None]
    if missing and not catalog.has_schema("auth"):
        if len(missing) == 1:
            raise SchemaError(f"table {missing[0]} is missing; create it with `seed db create`")
        raise SchemaError(
            f"tables {', '.join(missing)} are missing; create them with `seed db create`"
        )
    if missing:
        several = len(missing) > 1
        raise SchemaError(
            f"table{'s' if several else ''} {SCHEMA}.{f', {SCHEMA}.'.join(missing)} "
            f"{'are' if several else 'is'} missing; the report needs the app's tables "
            f"{', '.join(CORE_TABLES)} in schema {SCHEMA}: is this the app's database?"
        )
    return shape_of(catalog)


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn a failed query into SchemaError (missing table or column) or DatabaseError."""
    try:
        yield
    except sa_exc.DBAPIError as error:
        reason = describe(error)
        if isinstance(error.orig, pg_errors.UndefinedTable | pg_errors.UndefinedColumn):
            raise SchemaError(
                f"report query failed: {reason}; a table or column the catalog listed is "
                "gone (the schema changed while the report ran?): run the report again"
            ) from None
        if isinstance(error.orig, pg_errors.InsufficientPrivilege):
            raise DatabaseError(
                f"report query refused: {reason}; connect as a user that may SELECT from "
                "the app's tables (e.g. the postgres or service role)"
            ) from None
        if isinstance(error, sa_exc.OperationalError) or error.connection_invalidated:
            raise DatabaseError(
                f"lost the database connection while reporting: {reason}; check that the "
                "server is running and run the report again"
            ) from None
        raise DatabaseError(f"report query failed: {reason}") from None


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


def _request_figures(connection: Connection, shape: Shape) -> RequestStats:
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


def _request_times(connection: Connection, shape: Shape) -> dict[str, dict[str, int]]:
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


def _sample(connection: Connection, shape: Shape, sample: int) -> tuple[SampleRequest, ...]:
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


def _parties(connection: Connection, shape: Shape, top: int) -> tuple[_Parties, _Parties]:
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
    """Read one side's rows of :func:`_parties` (``column`` names the side)."""
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


def _customer_profiles(connection: Connection, shape: Shape) -> _CustomerProfiles:
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


def _customers(profiles: _CustomerProfiles, parties: _Parties) -> CustomerStats:
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


def _mechanic_profiles(connection: Connection, shape: Shape, top: int) -> _MechanicProfiles:
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


def _mechanics(profiles: _MechanicProfiles, parties: _Parties) -> MechanicStats:
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


def _workshops(connection: Connection, shape: Shape) -> WorkshopStats:
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


def _sessions(connection: Connection, shape: Shape) -> SessionStats:
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


def _assignments(connection: Connection, shape: Shape) -> AssignmentStats:
    """Count the sessions' assignments by status (what the mechanic queue reads)."""
    rows = _rows(
        connection,
        f"SELECT status::text, count(*) FROM {shape.rel(_ASSIGNMENTS)} GROUP BY 1",
    )
    by_status = {_key(status): int(n) for status, n in rows}
    return AssignmentStats(total=sum(by_status.values()), by_status=_most_first(by_status))
