"""Building the report: the SQL that measures a database, run in the database, read-only.

Every number is an aggregate computed by PostgreSQL (``count``, ``GROUP BY``, ``FILTER``);
only aggregates and a few bounded lists (``LIMIT``) come back, so a million requests take
seconds. A missing table or column, a refused permission or a lost connection raises; it is
never reported as zeros.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from psycopg import errors as pg_errors
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from seeding import integrity
from seeding.database import describe
from seeding.errors import DatabaseError, SchemaError
from seeding.mechanic_types import sql_mechanic_type
from seeding.report.model import (
    NULL_KEY,
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
    WorkshopStats,
)
from seeding.schema import APP_TABLES
from seeding.targets import Target

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

_MINUTES = "extract(epoch FROM accepted_at - created_at)::numeric / 60"

#: The memory each sort or hash of the report may use (PostgreSQL's default, 4MB, sends the
#: joins of a million requests to disk: about 1.5 times slower).
WORK_MEM = "128MB"


def build_report(
    connection: Connection,
    *,
    now: datetime | None = None,
    sample: int = 10,
    top: int = 20,
    targets: Sequence[Target] = (),
) -> Report:
    """Measure a database with the app's tables; read only.

    Args:
        connection: A connection to the database; the report runs its queries on it and
            writes nothing. For one consistent snapshot, open it with
            ``isolation_level="REPEATABLE READ"``. The report raises ``work_mem`` for the
            connection's transaction (:data:`WORK_MEM`), so its joins stay in memory.
        now: The instant the integrity rules take as now; by default the database's ``now()``.
        sample: How many requests to list, the first ones by ``created_at``.
        top: How many customers, mechanics and incomplete mechanics to list one by one (the
            counts always cover all of them).
        targets: Conditions to check the report against (see :mod:`seeding.targets`).

    Raises:
        SchemaError: When a table or column of the app is missing; the message names it.
        DatabaseError: When a query fails: a refused permission, a lost connection.

    """
    with translated_errors():
        check_schema(connection)
        if connection.in_transaction():
            connection.execute(sa.text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
        if now is None:
            now = connection.execute(sa.text("SELECT now()")).scalar_one()
        moment = now
        with _beside(connection) as other, ThreadPoolExecutor(max_workers=1) as pool:
            # The integrity rules run on a second connection that shares the snapshot, while
            # the metrics run here (a million requests: about 5.5 s instead of 7).
            rules = pool.submit(integrity.check, other, moment) if other is not None else None
            requests = _requests(connection, sample)
            customers = _customers(connection, top)
            mechanics = _mechanics(connection, top)
            workshops = _workshops(connection)
            sessions = _sessions(connection)
            found = rules.result() if rules is not None else integrity.check(connection, moment)
        report = Report(
            now=now,
            session_requests=requests,
            customers=customers,
            mechanics=mechanics,
            workshops=workshops,
            sessions=sessions,
            integrity=tuple(
                IntegrityResult(v.rule, v.count, tuple(str(i) for i in v.sample)) for v in found
            ),
        )
    return report.with_targets(targets) if targets else report


@contextmanager
def _beside(connection: Connection) -> Iterator[Connection | None]:
    """Yield a second connection reading the same snapshot as ``connection``, or None.

    Only a REPEATABLE READ (or SERIALIZABLE) transaction has one snapshot to share; any
    other connection, or a server that cannot give a second one, gets None, and the report
    runs its queries one after the other.
    """
    level = connection.execute(sa.text("SHOW transaction_isolation")).scalar_one()
    if level not in ("repeatable read", "serializable"):
        yield None
        return
    snapshot = connection.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
    try:
        other = connection.engine.connect().execution_options(isolation_level="REPEATABLE READ")
    except sa_exc.DBAPIError:
        yield None
        return
    try:
        other.execute(sa.text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
        other.execute(sa.text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
        yield other
    finally:
        other.rollback()
        other.close()


def check_schema(connection: Connection) -> None:
    """Raise SchemaError unless every table and column of the app's schema is there.

    Raises:
        SchemaError: Naming the missing tables, else the missing columns, and the fix.

    """
    inspector = sa.inspect(connection)
    present = set(inspector.get_table_names()) | set(inspector.get_view_names())
    missing = [table.name for table in APP_TABLES if table.name not in present]
    if len(missing) == 1:
        raise SchemaError(f"table {missing[0]} is missing; create it with `seed db create`")
    if missing:
        raise SchemaError(
            f"tables {', '.join(missing)} are missing; create them with `seed db create`"
        )
    lacking = []
    for table in APP_TABLES:
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        lacking += [f"{table.name}.{c.name}" for c in table.columns if c.name not in columns]
    if lacking:
        raise SchemaError(
            f"column{'s' if len(lacking) > 1 else ''} {', '.join(lacking)} "
            f"{'are' if len(lacking) > 1 else 'is'} missing; the report needs the app's "
            "columns: apply the app's migrations (`seed db create` adds missing tables only)"
        )


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn a failed query into SchemaError (missing table or column) or DatabaseError."""
    try:
        yield
    except sa_exc.DBAPIError as error:
        reason = describe(error)
        if isinstance(error.orig, pg_errors.UndefinedTable | pg_errors.UndefinedColumn):
            raise SchemaError(
                f"report query failed: {reason}; the database's schema differs from the "
                "app's: apply the app's migrations, or `seed db create` for missing tables"
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


def _minutes(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def _requests(connection: Connection, sample: int) -> RequestStats:
    row = _rows(
        connection,
        f"""
        SELECT count(*) AS total,
               count(mechanic_id) AS assigned,
               count(*) FILTER (WHERE status = 'cancelled' AND mechanic_id IS NULL)
                   AS cancelled_before,
               count(*) FILTER (WHERE status = 'cancelled' AND mechanic_id IS NOT NULL)
                   AS cancelled_after,
               count(accepted_at) AS responses,
               round(avg({_MINUTES}), 2) AS avg_minutes,
               round(min({_MINUTES}), 2) AS min_minutes,
               round(max({_MINUTES}), 2) AS max_minutes,
               min(created_at) AS oldest,
               max(created_at) AS newest,
               count(workshop_id) AS with_workshop,
               count(preferred_workshop_id) AS with_preferred_workshop,
               count(preferred_mechanic_id) AS with_preferred_mechanic,
               count(*) FILTER (WHERE is_follow_up) AS follow_ups,
               count(*) FILTER (WHERE is_urgent) AS urgent
        FROM session_requests
        """,
    )[0]
    by: dict[str, dict[str, int]] = defaultdict(dict)
    # One scan for the four breakdowns; GROUPING() says which set a row belongs to.
    for grouping, status, session_type, routing_type, request_type, count in _rows(
        connection,
        """
        SELECT GROUPING(status, session_type, routing_type, request_type),
               status, session_type, routing_type, request_type, count(*)
        FROM (SELECT status::text AS status, session_type::text AS session_type,
                     routing_type::text AS routing_type, request_type::text AS request_type
              FROM session_requests) r
        GROUP BY GROUPING SETS ((status), (session_type), (routing_type), (request_type))
        ORDER BY 1, count(*) DESC, 2, 3, 4, 5
        """,
    ):
        dimension, value = {
            0b0111: ("status", status),
            0b1011: ("session_type", session_type),
            0b1101: ("routing_type", routing_type),
            0b1110: ("request_type", request_type),
        }[grouping]
        by[dimension][_key(value)] = int(count)
    without_profile = connection.execute(
        sa.text(
            "SELECT count(*) FROM session_requests r "
            "WHERE NOT EXISTS (SELECT 1 FROM profiles p WHERE p.id = r.customer_id)"
        )
    ).scalar_one()
    first = _rows(
        connection,
        "SELECT id, status::text, session_type::text, created_at FROM session_requests "
        "ORDER BY created_at, id LIMIT :sample",
        sample=max(int(sample), 0),
    )
    return RequestStats(
        total=row.total,
        by_status=by["status"],
        by_session_type=by["session_type"],
        by_routing_type=by["routing_type"],
        by_request_type=by["request_type"],
        assigned=row.assigned,
        cancelled_before_assignment=row.cancelled_before,
        cancelled_after_assignment=row.cancelled_after,
        response_minutes=ResponseMinutes(
            count=row.responses,
            avg=_minutes(row.avg_minutes),
            min=_minutes(row.min_minutes),
            max=_minutes(row.max_minutes),
        ),
        oldest=row.oldest,
        newest=row.newest,
        with_workshop=row.with_workshop,
        with_preferred_workshop=row.with_preferred_workshop,
        with_preferred_mechanic=row.with_preferred_mechanic,
        follow_ups=row.follow_ups,
        urgent=row.urgent,
        without_customer_profile=int(without_profile),
        sample=tuple(SampleRequest(str(r[0]), _key(r[1]), _key(r[2]), r[3]) for r in first),
    )


@dataclass(frozen=True)
class _Parties:
    """What one pass over a request column gives.

    How many distinct ids (all, with a completed request, with a customer profile), and the
    ``top`` ids, one by one.
    """

    count: int
    with_completed: int
    with_customer_profile: int
    top: list[tuple[Any, ...]]


def _per_party(connection: Connection, column: str, details: str, join: str, top: int) -> _Parties:
    """Count the distinct ids of a request column, and list the ``top`` of them.

    One scan of the requests; the list holds (id, total, *details, by_status).
    """
    rows = _rows(
        connection,
        f"""
        WITH totals AS MATERIALIZED (
            SELECT {column} AS party, count(*)::bigint AS total,
                   count(*) FILTER (WHERE status = 'completed') AS completed
            FROM session_requests WHERE {column} IS NOT NULL GROUP BY 1),
        summary AS (
            SELECT count(*) AS parties, count(*) FILTER (WHERE completed > 0) AS with_completed,
                   count(*) FILTER (WHERE EXISTS (SELECT 1 FROM profiles p
                                                  WHERE p.id = totals.party AND p.role = 'customer'))
                       AS with_customer_profile
            FROM totals),
        top AS (SELECT party, total FROM totals ORDER BY total DESC, party LIMIT :top),
        per AS (
            SELECT r.{column} AS party, r.status::text AS status, count(*) AS n,
                   max(r.customer_email) AS email_copy
            FROM session_requests r JOIN top ON top.party = r.{column} GROUP BY 1, 2),
        ranked AS (
            SELECT top.party, top.total, max(per.email_copy) AS email_copy
            FROM top JOIN per USING (party) GROUP BY top.party, top.total),
        listed AS (
            SELECT ranked.party, ranked.total, {details}, per.status, per.n
            FROM ranked JOIN per USING (party) {join})
        SELECT summary.parties, summary.with_completed, summary.with_customer_profile, listed.*
        FROM summary LEFT JOIN listed ON true
        ORDER BY listed.total DESC, listed.party, listed.n DESC, listed.status
        """,
        top=max(int(top), 0),
    )
    found: dict[uuid.UUID, tuple[Any, ...]] = {}
    statuses: dict[uuid.UUID, dict[str, int]] = defaultdict(dict)
    for row in rows:
        listed = row[3:]
        if listed[0] is None:
            continue
        found.setdefault(listed[0], tuple(listed[:-2]))
        statuses[listed[0]][_key(listed[-2])] = int(listed[-1])
    first = rows[0]
    return _Parties(
        count=int(first[0]), with_completed=int(first[1]), with_customer_profile=int(first[2]),
        top=[(*found[party], statuses[party]) for party in found],
    )


def _customers(connection: Connection, top: int) -> CustomerStats:
    full_geo = " AND ".join(f"{column} IS NOT NULL" for column in CUSTOMER_GEO_COLUMNS)
    total, with_full_geo = _rows(
        connection,
        f"SELECT count(*), count(*) FILTER (WHERE {full_geo}) "
        "FROM profiles WHERE role = 'customer'",
    )[0]
    provinces = _rows(
        connection,
        "SELECT province, count(*) FROM profiles WHERE role = 'customer' "
        "AND province IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1",
    )
    parties = _per_party(
        connection,
        "customer_id",
        "p.id IS NOT NULL, coalesce(p.email, ranked.email_copy)",
        "LEFT JOIN profiles p ON p.id = ranked.party",
        top,
    )
    return CustomerStats(
        total=total,
        active=parties.count,
        with_requests=parties.with_customer_profile,
        with_full_geo=with_full_geo,
        provinces={str(p): int(n) for p, n in provinces},
        per_customer=tuple(
            CustomerActivity(
                id=str(party), email=email, has_profile=bool(has), total=int(n), by_status=st
            )
            for party, n, has, email, st in parties.top
        ),
    )


def _mechanics(connection: Connection, top: int) -> MechanicStats:
    mechanic_type = sql_mechanic_type("m")
    by_type = _rows(
        connection,
        f"""
        SELECT {mechanic_type} AS type, count(*), count(*) FILTER (WHERE {SQL_MECHANIC_COMPLETE})
        FROM mechanics m GROUP BY 1 ORDER BY 2 DESC, 1
        """,
    )
    lacking = ", ".join(
        f"CASE WHEN {condition} THEN '{name}' END"
        for name, condition in MECHANIC_PROFILE_FIELDS.items()
    )
    incomplete = _rows(
        connection,
        f"""
        SELECT m.id, m.name, m.email, {mechanic_type}, m.profile_completion_score,
               array_remove(ARRAY[{lacking}], NULL)
        FROM mechanics m WHERE NOT {SQL_MECHANIC_COMPLETE}
        ORDER BY m.created_at, m.id LIMIT :top
        """,
        top=max(int(top), 0),
    )
    parties = _per_party(
        connection,
        "mechanic_id",
        f"m.name, m.email, CASE WHEN m.id IS NOT NULL THEN {mechanic_type} END",
        "LEFT JOIN mechanics m ON m.id = ranked.party",
        top,
    )
    return MechanicStats(
        total=sum(int(n) for _, n, _ in by_type),
        participating=parties.count,
        complete=sum(int(c) for _, _, c in by_type),
        by_type={t: int(n) for t, n, _ in by_type},
        complete_by_type={t: int(c) for t, _, c in by_type if c},
        with_completed_session=parties.with_completed,
        incomplete=tuple(
            IncompleteMechanic(str(i), name, email, kind, score, tuple(missing))
            for i, name, email, kind, score, missing in incomplete
        ),
        per_mechanic=tuple(
            MechanicActivity(
                id=str(party), name=name, email=email, type=kind, total=int(n), by_status=st
            )
            for party, n, name, email, kind, st in parties.top
        ),
    )


def _workshops(connection: Connection) -> WorkshopStats:
    rows = _rows(
        connection,
        "SELECT province, count(*) FROM organizations WHERE organization_type = 'workshop' "
        "GROUP BY 1 ORDER BY 2 DESC, 1",
    )
    return WorkshopStats(
        total=sum(int(n) for _, n in rows),
        provinces={str(p): int(n) for p, n in rows if p is not None},
    )


def _sessions(connection: Connection) -> SessionStats:
    by_status = _rows(
        connection, "SELECT status, count(*) FROM sessions GROUP BY 1 ORDER BY 2 DESC, 1"
    )
    completed = _rows(
        connection,
        f"""
        SELECT {sql_mechanic_type("m")}, count(*) FROM sessions s
        JOIN mechanics m ON m.id = s.mechanic_id WHERE s.status = 'completed'
        GROUP BY 1 ORDER BY 2 DESC, 1
        """,
    )
    return SessionStats(
        total=sum(int(n) for _, n in by_status),
        by_status={_key(s): int(n) for s, n in by_status},
        completed_by_mechanic_type={t: int(n) for t, n in completed},
    )
