"""The app's rules as SQL: each rule's query returns the ids of the rows that break it.

The missing foreign keys and the denormalized columns leave these rules to the code that
writes rows; the factories keep them and the report counts what breaks them. Each query takes
one parameter, ``now``: the instant nothing may come after (the scenario clock, or the
database's ``now()`` for a live database).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from seeding.contacts import sql_email_domain, sql_reserved_domain
from seeding.geography import CITY_RADIUS_KM, sql_city_values, sql_postal_prefix_matches
from seeding.lifecycle import (
    ASSIGNED_STATUSES,
    EITHER_STATUSES,
    REQUEST_TTL,
    SESSION_STATUSES_FOR_REQUEST,
    UNASSIGNED_STATUSES,
)
from seeding.mechanic_types import sql_mechanic_type
from seeding.plans import sql_plan_fits_type

_TTL = f"interval '{int(REQUEST_TTL.total_seconds())} seconds'"


def _geo(table: str) -> str:
    return f"""
        SELECT t.id FROM {table} t
        LEFT JOIN (VALUES {sql_city_values()}) AS c(name, province, lat, lon) ON c.name = t.city
        WHERE t.city IS NULL OR t.province IS NULL OR t.postal_code IS NULL
           OR t.latitude IS NULL OR t.longitude IS NULL
           OR c.name IS NULL OR c.province <> t.province
           OR NOT {sql_postal_prefix_matches('t.postal_code', 't.province')}
           OR t.postal_code !~ '^[A-Z][0-9][A-Z] [0-9][A-Z][0-9]$'
           OR 6371 * 2 * asin(sqrt(power(sin(radians(t.latitude - c.lat) / 2), 2)
              + cos(radians(c.lat)) * cos(radians(t.latitude))
              * power(sin(radians(t.longitude - c.lon) / 2), 2))) > {CITY_RADIUS_KM + 1}
    """


def sql_whole_minutes(span: str) -> str:
    """Return SQL for an interval's length in minutes, rounded half away from zero.

    The same as ``round(extract(epoch FROM span) / 60)``, in floating point: numeric costs
    twice the whole rule on 750,000 sessions. Exact at every half minute, where floating
    point and numeric could part (a half minute is a whole number of seconds).
    """
    seconds = f"date_part('epoch', {span})"
    return f"(sign({seconds}) * floor(abs({seconds}) / 60 + 0.5))"


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def _fitting_session_statuses() -> str:
    branches = " ".join(
        f"WHEN '{status}' THEN s.status IN ({_sql_list(fitting)})"
        for status, fitting in SESSION_STATUSES_FOR_REQUEST.items()
    )
    return f"CASE r.status {branches} ELSE false END"


#: The rules about a request, as conditions on one row of :data:`REQUESTS`: they are
#: checked in two passes over the requests (:data:`REQUEST_PASSES`), not one scan per rule.
#: PostgreSQL leaves out of a pass the joins that none of its conditions reads.
REQUESTS = """session_requests r
    LEFT JOIN sessions s ON s.id = r.session_id
    LEFT JOIN profiles p ON p.id = r.customer_id
    LEFT JOIN vehicles v ON v.id = r.vehicle_id
    LEFT JOIN mechanics m ON m.id = r.mechanic_id"""

_REQUEST_CONDITIONS: dict[str, str] = {
    "request timestamps in order": """
        r.accepted_at < r.created_at OR s.started_at < r.accepted_at
        OR s.ended_at <= s.started_at OR s.created_at < r.accepted_at
    """,
    "mechanic and accepted_at exactly when the status implies them": f"""
        CASE r.status
            {" ".join(f"WHEN '{x}' THEN r.mechanic_id IS NULL OR r.accepted_at IS NULL"
                      for x in ASSIGNED_STATUSES)}
            {" ".join(f"WHEN '{x}' THEN r.mechanic_id IS NOT NULL OR r.accepted_at IS NOT NULL"
                      for x in UNASSIGNED_STATUSES)}
            {" ".join(f"WHEN '{x}' THEN (r.mechanic_id IS NULL) <> (r.accepted_at IS NULL)"
                      for x in EITHER_STATUSES)}
            ELSE false END
    """,
    "expires_at fits pending and expired": f"""
        r.expires_at IS NULL OR r.expires_at <> r.created_at + {_TTL}
        OR (r.status = 'pending' AND r.expires_at <= :now)
        OR (r.status = 'expired' AND r.expires_at > :now)
    """,
    "nothing happens after now": """
        r.created_at > :now OR r.accepted_at > :now OR s.started_at > :now OR s.ended_at > :now
    """,
    "customer copies equal the profile": """
        p.id IS NULL OR r.customer_name IS DISTINCT FROM p.full_name
        OR r.customer_email IS DISTINCT FROM p.email OR r.customer_city IS DISTINCT FROM p.city
        OR r.customer_country IS DISTINCT FROM p.country
        OR r.customer_postal_code IS DISTINCT FROM p.postal_code
    """,
    "vehicle belongs to the customer": "v.id IS NULL OR v.customer_id <> r.customer_id",
    "routing fields agree with routing_type": """
        (r.routing_type = 'workshop_only'
         AND (r.workshop_id IS NULL OR r.preferred_workshop_id IS NULL))
        OR (r.routing_type = 'hybrid' AND r.preferred_workshop_id IS NULL)
        OR (r.routing_type = 'broadcast'
            AND (r.preferred_workshop_id IS NOT NULL OR r.preferred_mechanic_id IS NOT NULL))
        OR (r.routing_type = 'priority_broadcast' AND (r.preferred_mechanic_id IS NULL
            OR r.priority_window_minutes IS DISTINCT FROM 10 OR r.priority_notified_at IS NULL
            OR r.priority_notified_at < r.created_at))
        OR (r.routing_type <> 'priority_broadcast' AND (r.priority_window_minutes IS NOT NULL
            OR r.priority_notified_at IS NOT NULL))
    """,
    "workshop_only mechanic works at the workshop": """
        m.id IS NOT NULL AND r.routing_type = 'workshop_only'
        AND m.workshop_id IS DISTINCT FROM r.workshop_id
    """,
    "request has a session of a fitting status exactly when it should": f"""
        ((r.status IN ({_sql_list(ASSIGNED_STATUSES)})
          OR (r.status IN ({_sql_list(EITHER_STATUSES)}) AND r.mechanic_id IS NOT NULL))
         AND (s.id IS NULL OR NOT ({_fitting_session_statuses()})
              OR s.mechanic_id IS DISTINCT FROM r.mechanic_id
              OR s.customer_user_id IS DISTINCT FROM r.customer_id
              OR s.type <> r.session_type OR s.plan <> r.plan_code))
        OR ((r.status IN ({_sql_list(UNASSIGNED_STATUSES)})
             OR (r.status IN ({_sql_list(EITHER_STATUSES)}) AND r.mechanic_id IS NULL))
            AND r.session_id IS NOT NULL)
    """,
    "brand requests name a brand": (
        "(r.request_type = 'brand_specialist') <> (r.requested_brand IS NOT NULL)"
    ),
    "plan fits session type": f"NOT {sql_plan_fits_type('r.plan_code', 'r.session_type')}",
    # A lookup per follow-up, not a join: a join would hash every session for the few
    # requests that are follow-ups.
    "follow-ups point at an earlier finished session of the customer": """
        (r.is_follow_up AND (r.follow_up_type IS NULL OR NOT EXISTS (
            SELECT FROM sessions ps WHERE ps.id = r.parent_session_id
            AND ps.customer_user_id = r.customer_id AND ps.ended_at <= r.created_at)))
        OR (NOT r.is_follow_up AND r.parent_session_id IS NOT NULL)
    """,
}
_REQUEST = "request"  # marks a rule of _REQUEST_CONDITIONS in _RULE_SQL, where it keeps its place

_RULE_SQL: dict[str, str] = {
    "customer geography agrees": _geo("profiles") + " OR t.address_line1 IS NULL",
    "workshop geography agrees": _geo("organizations") + " OR t.address IS NULL",
    "complete mechanic geography agrees": _geo("mechanics").replace(
        "WHERE", "WHERE t.profile_completion_score >= 80 AND (", 1
    )
    + ")",
    "complete mechanic profile": """
        SELECT id FROM mechanics WHERE profile_completion_score >= 80 AND NOT (
            years_of_experience > 0 AND red_seal_certified AND red_seal_number IS NOT NULL
            AND cardinality(specializations) > 0 AND can_accept_sessions
            AND application_status = 'approved')
    """,
    "incomplete mechanic lacks location and experience": """
        SELECT id FROM mechanics WHERE profile_completion_score < 80 AND (
            city IS NOT NULL OR province IS NOT NULL OR postal_code IS NOT NULL
            OR years_of_experience IS NOT NULL OR can_accept_sessions)
    """,
    "workshop mechanic at a workshop": f"""
        SELECT m.id FROM mechanics m LEFT JOIN organizations o ON o.id = m.workshop_id
        WHERE ({sql_mechanic_type('m')}) <> 'virtual'
          AND (o.id IS NULL OR o.organization_type <> 'workshop')
    """,
    "emails at reserved domains": "\nUNION ALL\n".join(
        # OFFSET 0 keeps the subquery: the domain is computed once per row, not per test.
        f"SELECT id FROM (SELECT id, {sql_email_domain('email')} AS domain "
        f"FROM {table} OFFSET 0) t "
        f"WHERE NOT {sql_reserved_domain('domain')}"
        for table in ("profiles", "mechanics", "organizations")
    ),
    "request timestamps in order": _REQUEST,
    "mechanic and accepted_at exactly when the status implies them": _REQUEST,
    "expires_at fits pending and expired": _REQUEST,
    "nothing happens after now": _REQUEST,
    # Its requests are checked in the pass over the requests, its sessions here.
    "plan fits session type": f"""
        SELECT id FROM sessions WHERE NOT {sql_plan_fits_type('plan', 'type')}
    """,
    "customer copies equal the profile": _REQUEST,
    "vehicle belongs to the customer": _REQUEST,
    "routing fields agree with routing_type": _REQUEST,
    "workshop_only mechanic works at the workshop": _REQUEST,
    "request has a session of a fitting status exactly when it should": _REQUEST,
    "finished sessions have start, end, matching duration and rating": f"""
        SELECT id FROM sessions WHERE status IN ('completed', 'archived') AND (
            started_at IS NULL OR ended_at IS NULL OR rating IS NULL OR rating NOT BETWEEN 1 AND 5
            OR duration_minutes IS DISTINCT FROM {sql_whole_minutes('ended_at - started_at')})
    """,
    "brand requests name a brand": _REQUEST,
    "follow-ups point at an earlier finished session of the customer": _REQUEST,
    # The app shows a workshop_mechanic without a workshop_id as virtual: the bug of the app's
    # own seeding script, which "workshop mechanic at a workshop" (derived types) cannot see.
    "workshop_mechanic account has a workshop": """
        SELECT id FROM mechanics WHERE account_type = 'workshop_mechanic' AND workshop_id IS NULL
    """,
}


@dataclass(frozen=True)
class Rule:
    """One rule of the app that the database does not enforce."""

    name: str
    #: A query returning the ids of the rows that break the rule (None: requests only).
    sql: str | None
    #: For a rule about requests: its condition on one row of :data:`REQUESTS`. A rule with
    #: both checks its requests with the condition and its other rows with ``sql``.
    condition: str | None = None


@dataclass(frozen=True)
class Violations:
    """The rows that break one rule: how many, and the first few ids."""

    rule: str
    count: int
    sample: tuple[uuid.UUID, ...]


def _rule(name: str, query: str) -> Rule:
    condition = _REQUEST_CONDITIONS.get(name)
    return Rule(name, None if query == _REQUEST else query, condition)


RULES: tuple[Rule, ...] = tuple(_rule(name, query) for name, query in _RULE_SQL.items())


def _reads_sessions(condition: str) -> bool:
    return re.search(r"\bs\.", condition) is not None


#: The request rules split into the passes :func:`check` makes: those that join each request
#: to its session, and the rest. Two passes of about the same cost, which can run side by
#: side on two connections (the session join is the most costly part of checking requests).
REQUEST_PASSES: tuple[tuple[str, ...], ...] = tuple(
    tuple(name for name, sql in _REQUEST_CONDITIONS.items() if _reads_sessions(sql) is joined)
    for joined in (True, False)
)

#: The rules that are a query of their own (:func:`check_tables` runs them).
TABLE_RULES: tuple[str, ...] = tuple(rule.name for rule in RULES if rule.sql is not None)


def check(connection: Connection, now: datetime, *, sample: int = 5) -> list[Violations]:
    """Run every rule; return one Violations per rule, in rule order (count 0 when kept).

    Args:
        connection: A connection to a database with the app's tables.
        now: The instant no event may come after.
        sample: How many offending ids to keep per rule.

    """
    return in_rule_order(
        *(check_requests(connection, now, sample=sample, rules=rules) for rules in REQUEST_PASSES),
        check_tables(connection, now, sample=sample),
        sample=sample,
    )


def check_requests(
    connection: Connection,
    now: datetime,
    *,
    sample: int = 5,
    rules: Sequence[str] | None = None,
) -> dict[str, Violations]:
    """Check rules' conditions on the requests in one pass; return Violations by rule name.

    The part of :func:`check` that reads the requests and their joins; the other passes and
    :func:`check_tables` may run at the same time on other connections.

    Args:
        connection: A connection to a database with the app's tables.
        now: The instant no event may come after.
        sample: How many offending ids to keep per rule.
        rules: The names of the request rules to check (one of :data:`REQUEST_PASSES`, say);
            by default all of them.

    Raises:
        ValueError: When a name in ``rules`` is not a rule about requests.

    """
    wanted = set(_REQUEST_CONDITIONS if rules is None else rules)
    if unknown := wanted - set(_REQUEST_CONDITIONS):
        raise ValueError(f"not rules about requests: {', '.join(sorted(unknown))}")
    on_requests = [rule for rule in RULES if rule.name in wanted]
    found: dict[str, Violations] = {}
    if not on_requests:
        return found
    # Counts in one pass; samples only for the rules that are broken.
    columns = ", ".join(f"count(*) FILTER (WHERE {rule.condition})" for rule in on_requests)
    counts = connection.execute(sa.text(f"SELECT {columns} FROM {REQUESTS}"), {"now": now}).one()
    for rule, count in zip(on_requests, counts, strict=True):
        ids: tuple[uuid.UUID, ...] = ()
        if count:
            first = f"SELECT r.id FROM {REQUESTS} WHERE {rule.condition} ORDER BY r.id LIMIT :n"
            params = {"now": now, "n": int(sample)}
            ids = tuple(connection.execute(sa.text(first), params).scalars())
        found[rule.name] = Violations(rule.name, int(count), ids)
    return found


def check_tables(
    connection: Connection,
    now: datetime,
    *,
    sample: int = 5,
    rules: Sequence[str] | None = None,
) -> dict[str, Violations]:
    """Run the rules' own queries (all but the request conditions); return them by rule name.

    Args:
        connection: A connection to a database with the app's tables.
        now: The instant no event may come after.
        sample: How many offending ids to keep per rule.
        rules: The names of the rules to run (each one a query of its own, so they can be
            spread over connections); by default all of them.

    Raises:
        ValueError: When a name in ``rules`` is not a rule with a query of its own.

    """
    with_sql = {rule.name for rule in RULES if rule.sql is not None}
    wanted = with_sql if rules is None else set(rules)
    if unknown := wanted - with_sql:
        raise ValueError(f"not rules with a query: {', '.join(sorted(unknown))}")
    found: dict[str, Violations] = {}
    for rule in RULES:
        if rule.sql is None or rule.name not in wanted:
            continue
        # MATERIALIZED: the rule runs once, however many rows break it (seconds at 1M rows).
        statement = sa.text(
            f"WITH broken AS MATERIALIZED ({rule.sql}) "
            f"SELECT id, (SELECT count(*) FROM broken) FROM broken ORDER BY id LIMIT {int(sample)}"
        )
        rows = connection.execute(statement, {"now": now}).all()
        count = rows[0][1] if rows else 0
        found[rule.name] = Violations(rule.name, int(count), tuple(row[0] for row in rows))
    return found


def in_rule_order(*parts: dict[str, Violations], sample: int = 5) -> list[Violations]:
    """Join what :func:`check_requests` and :func:`check_tables` found, one per rule, in order.

    A rule found in both (its requests and its other rows) gets the counts added and the
    lowest ``sample`` ids.

    Raises:
        ValueError: When a rule is in none of the parts: it did not run, and a rule that did
            not run must not read as kept.

    """
    joined: list[Violations] = []
    for rule in RULES:
        found = [part[rule.name] for part in parts if rule.name in part]
        if not found:
            raise ValueError(f"integrity rule {rule.name!r} did not run")
        ids = tuple(sorted({i for violations in found for i in violations.sample})[: int(sample)])
        joined.append(Violations(rule.name, sum(v.count for v in found), ids))
    return joined
