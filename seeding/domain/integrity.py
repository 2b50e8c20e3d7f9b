"""The app's rules as SQL: each rule's query returns the ids of the rows that break it.

The missing foreign keys and the denormalized columns leave these rules to the code that
writes rows; the factories keep them and the report counts what breaks them. Each query takes
one parameter, ``now``: the instant nothing may come after (the scenario clock, or the
database's ``now()`` for a live database).

The SQL is written against this tool's schema (:mod:`seeding.domain.schema`). On another database
(the app's real one) a :class:`TableReader` (:class:`seeding.report.shape.Shape`) says how to
read each table; each rule declares the columns it reads (:attr:`Rule.columns`), and a rule
that needs a column the database lacks is skipped (:func:`skipped_rules`), never run on a
stand-in.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from seeding.domain.contacts import sql_email_domain, sql_reserved_domain
from seeding.domain.geography import CITY_RADIUS_KM, sql_city_values, sql_postal_prefix_matches
from seeding.domain.lifecycle import (
    ASSIGNED_STATUSES,
    EITHER_STATUSES,
    REQUEST_TTL,
    SESSION_STATUSES_FOR_REQUEST,
    UNASSIGNED_STATUSES,
)
from seeding.domain.mechanic_types import sql_mechanic_type
from seeding.domain.plans import sql_plan_fits_type

_TTL = f"interval '{int(REQUEST_TTL.total_seconds())} seconds'"


class TableReader(Protocol):
    """How to read the app's tables on a database (:class:`seeding.report.shape.Shape`)."""

    def rel(self, table: str, alias: str | None = None) -> str:
        """Return the SQL that reads ``table`` in a FROM clause, with ``alias`` if given."""
        ...

    def missing(self, columns: Iterable[str]) -> tuple[str, ...]:
        """Return the live columns absent among those ``columns`` (``table.column``) need."""
        ...

    def __hash__(self) -> int:
        """Readers are hashable: the rules built for one are kept (:func:`rules_for`)."""
        ...


class _ByName:
    """The tool's own schema: every table read by its name, no column missing."""

    def rel(self, table: str, alias: str | None = None) -> str:
        return table if alias is None else f"{table} {alias}"

    def missing(self, columns: Iterable[str]) -> tuple[str, ...]:
        return ()


#: The reader of the tool's own schema (the default of every check).
BY_NAME: TableReader = _ByName()


#: The tables whose emails are checked, each row once: a mechanic's profile repeats the
#: mechanic's email (on the app's database its auth trigger writes one), so only customers'.
_EMAIL_OWNERS = (
    ("profiles", "WHERE role = 'customer'"),
    ("mechanics", ""),
    ("organizations", ""),
)


def _geo(table: str, reader: TableReader = BY_NAME, *, also: str = "",
         only: str = "true") -> str:
    """Return the rows of ``table`` (those ``only`` admits) whose geography disagrees.

    ``also`` is one more condition that breaks the rule (a missing address).
    """
    return f"""
        SELECT t.id FROM {reader.rel(table, "t")}
        LEFT JOIN (VALUES {sql_city_values()}) AS c(name, province, lat, lon) ON c.name = t.city
        WHERE ({only}) AND (t.city IS NULL OR t.province IS NULL OR t.postal_code IS NULL
           OR t.latitude IS NULL OR t.longitude IS NULL
           OR c.name IS NULL OR c.province <> t.province
           OR NOT {sql_postal_prefix_matches('t.postal_code', 't.province')}
           OR t.postal_code !~ '^[A-Z][0-9][A-Z] [0-9][A-Z][0-9]$'
           OR 6371 * 2 * asin(sqrt(power(sin(radians(t.latitude - c.lat) / 2), 2)
              + cos(radians(c.lat)) * cos(radians(t.latitude))
              * power(sin(radians(t.longitude - c.lon) / 2), 2))) > {CITY_RADIUS_KM + 1}
           {f"OR {also}" if also else ""})
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


def requests_joined(reader: TableReader = BY_NAME, conditions: Iterable[str] = ()) -> str:
    """Return the FROM clause the request rules' conditions read: a request and its parties.

    With ``conditions``, only the joins they read (PostgreSQL would leave the others out of
    the plan anyway, but their key columns must exist); without, all of them.
    """
    read = "\n".join(conditions)
    joins = (
        ("sessions", "s", "s.id = r.session_id"),
        ("profiles", "p", "p.id = r.customer_id"),
        ("vehicles", "v", "v.id = r.vehicle_id"),
        ("mechanics", "m", "m.id = r.mechanic_id"),
    )
    return reader.rel("session_requests", "r") + "".join(
        f"\n    LEFT JOIN {reader.rel(table, alias)} ON {on}"
        for table, alias, on in joins
        if not read or re.search(rf"\b{alias}\.", read)
    )


#: The rules about a request, as conditions on one row of :data:`REQUESTS`: they are
#: checked in two passes over the requests (:data:`REQUEST_PASSES`), not one scan per rule.
#: PostgreSQL leaves out of a pass the joins that none of its conditions reads.
REQUESTS = requests_joined()

#: The table each alias of the request rules' conditions reads.
_ALIASES = {
    "r": "session_requests",
    "s": "sessions",
    "ps": "sessions",
    "p": "profiles",
    "v": "vehicles",
    "m": "mechanics",
}
#: The columns each join of :func:`requests_joined` reads, by the alias it joins.
_JOIN_COLUMNS = {
    "s": ("session_requests.session_id", "sessions.id"),
    "p": ("session_requests.customer_id", "profiles.id"),
    "v": ("session_requests.vehicle_id", "vehicles.id"),
    "m": ("session_requests.mechanic_id", "mechanics.id"),
}


def _request_conditions(reader: TableReader) -> dict[str, str]:
    """Return each request rule's condition on one row of :func:`requests_joined`."""
    return {
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
        # A priority broadcast is stored as a 'broadcast' with a preferred mechanic, the window
        # and priority_notified_at; its session's metadata names it (the app keeps the name
        # nowhere else). Other requests may have the column's default window (10), no more.
        "routing fields agree with routing_type": """
        (r.routing_type = 'workshop_only'
         AND (r.workshop_id IS NULL OR r.preferred_workshop_id IS NULL))
        OR (r.routing_type = 'hybrid' AND r.preferred_workshop_id IS NULL)
        OR (r.routing_type = 'broadcast' AND r.preferred_workshop_id IS NOT NULL)
        OR (r.routing_type = 'broadcast' AND r.preferred_mechanic_id IS NOT NULL
            AND (r.priority_window_minutes IS DISTINCT FROM 10 OR r.priority_notified_at IS NULL
                 OR r.priority_notified_at < r.created_at))
        OR ((r.routing_type <> 'broadcast' OR r.preferred_mechanic_id IS NULL)
            AND (r.priority_window_minutes <> 10 OR r.priority_notified_at IS NOT NULL))
        OR (s.id IS NOT NULL
            AND coalesce(r.routing_type = 'broadcast' AND r.preferred_mechanic_id IS NOT NULL,
                         false)
            <> coalesce(s.metadata ->> 'routing_type' = 'priority_broadcast', false))
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
        "follow-ups point at an earlier finished session of the customer": f"""
        (r.is_follow_up AND (r.follow_up_type IS NULL OR NOT EXISTS (
            SELECT FROM {reader.rel("sessions", "ps")} WHERE ps.id = r.parent_session_id
            AND ps.customer_user_id = r.customer_id AND ps.ended_at <= r.created_at)))
        OR (NOT r.is_follow_up AND r.parent_session_id IS NOT NULL)
    """,
    }


_REQUEST = "request"  # marks a rule of _request_conditions in _rule_sql, where it keeps its place


def _rule_sql(reader: TableReader) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Return each rule's own query and the columns it reads, in the rules' order.

    A rule about requests only has :data:`_REQUEST` for its query (its condition is in
    :func:`_request_conditions`, whose columns are read off the condition).
    """
    geo = ("id", "city", "province", "postal_code", "latitude", "longitude")
    mechanics, sessions = reader.rel("mechanics"), reader.rel("sessions")
    mechanics_m, organizations_o = reader.rel("mechanics", "m"), reader.rel("organizations", "o")
    return {
        # Customers only: on the app's database a mechanic's profile (its auth trigger's)
        # has no address, and is no customer.
        "customer geography agrees": (
            _geo("profiles", reader, also="t.address_line1 IS NULL", only="t.role = 'customer'"),
            _columns("profiles", *geo, "address_line1", "role"),
        ),
        "workshop geography agrees": (
            _geo("organizations", reader, also="t.address IS NULL"),
            _columns("organizations", *geo, "address"),
        ),
        "complete mechanic geography agrees": (
            _geo("mechanics", reader, only="t.profile_completion_score >= 80"),
            _columns("mechanics", *geo, "profile_completion_score"),
        ),
        "complete mechanic profile": (
            f"""
        SELECT id FROM {mechanics} WHERE profile_completion_score >= 80 AND NOT (
            years_of_experience > 0 AND red_seal_certified AND red_seal_number IS NOT NULL
            AND cardinality(specializations) > 0 AND can_accept_sessions
            AND application_status = 'approved')
    """,
            _columns(
                "mechanics", "id", "profile_completion_score", "years_of_experience",
                "red_seal_certified", "red_seal_number", "specializations",
                "can_accept_sessions", "application_status",
            ),
        ),
        "incomplete mechanic lacks location and experience": (
            f"""
        SELECT id FROM {mechanics} WHERE profile_completion_score < 80 AND (
            city IS NOT NULL OR province IS NOT NULL OR postal_code IS NOT NULL
            OR years_of_experience IS NOT NULL OR can_accept_sessions)
    """,
            _columns(
                "mechanics", "id", "profile_completion_score", "city", "province",
                "postal_code", "years_of_experience", "can_accept_sessions",
            ),
        ),
        "workshop mechanic at a workshop": (
            f"""
        SELECT m.id FROM {mechanics_m} LEFT JOIN {organizations_o} ON o.id = m.workshop_id
        WHERE ({sql_mechanic_type('m')}) <> 'virtual'
          AND (o.id IS NULL OR o.organization_type <> 'workshop')
    """,
            _columns("mechanics", "id", "workshop_id", "account_type")
            + _columns("organizations", "id", "organization_type"),
        ),
        "emails at reserved domains": (
            "\nUNION ALL\n".join(
                # OFFSET 0 keeps the subquery: the domain is computed once per row, not per test.
                f"SELECT id FROM (SELECT id, {sql_email_domain('email')} AS domain "
                f"FROM {reader.rel(table)} {only} OFFSET 0) t "
                f"WHERE NOT {sql_reserved_domain('domain')}"
                for table, only in _EMAIL_OWNERS
            ),
            tuple(
                column
                for table, only in _EMAIL_OWNERS
                for column in _columns(table, "id", "email", *(("role",) if only else ()))
            ),
        ),
        "request timestamps in order": (_REQUEST, ()),
        "mechanic and accepted_at exactly when the status implies them": (_REQUEST, ()),
        "expires_at fits pending and expired": (_REQUEST, ()),
        "nothing happens after now": (_REQUEST, ()),
        # Its requests are checked in the pass over the requests, its sessions here.
        "plan fits session type": (
            f"""
        SELECT id FROM {sessions} WHERE NOT {sql_plan_fits_type('plan', 'type')}
    """,
            _columns("sessions", "id", "plan", "type"),
        ),
        "customer copies equal the profile": (_REQUEST, ()),
        "vehicle belongs to the customer": (_REQUEST, ()),
        "routing fields agree with routing_type": (_REQUEST, ()),
        "workshop_only mechanic works at the workshop": (_REQUEST, ()),
        "request has a session of a fitting status exactly when it should": (_REQUEST, ()),
        "finished sessions have start, end, matching duration and rating": (
            f"""
        SELECT id FROM {sessions} WHERE status IN ('completed', 'archived') AND (
            started_at IS NULL OR ended_at IS NULL OR rating IS NULL OR rating NOT BETWEEN 1 AND 5
            OR duration_minutes IS DISTINCT FROM {sql_whole_minutes('ended_at - started_at')})
    """,
            _columns(
                "sessions", "id", "status", "started_at", "ended_at", "rating", "duration_minutes"
            ),
        ),
        "brand requests name a brand": (_REQUEST, ()),
        "follow-ups point at an earlier finished session of the customer": (_REQUEST, ()),
        # The app shows a workshop_mechanic without a workshop_id as virtual: the bug of the
        # app's own seeding script, which "workshop mechanic at a workshop" (derived types)
        # cannot see.
        "workshop_mechanic account has a workshop": (
            f"""
        SELECT id FROM {mechanics} WHERE account_type = 'workshop_mechanic' AND workshop_id IS NULL
    """,
            _columns("mechanics", "id", "account_type", "workshop_id"),
        ),
    }


def _columns(table: str, *columns: str) -> tuple[str, ...]:
    return tuple(f"{table}.{column}" for column in columns)


def _read_by(condition: str) -> tuple[str, ...]:
    """Return the columns a request rule's condition reads (``table.column``), joins included."""
    found: dict[str, None] = {"session_requests.id": None}
    for alias, column in re.findall(r"\b(r|s|ps|p|v|m)\.([a-z_0-9]+)\b", condition):
        if alias in _JOIN_COLUMNS:
            found.update(dict.fromkeys(_JOIN_COLUMNS[alias]))
        found[f"{_ALIASES[alias]}.{column}"] = None
    return tuple(found)


@dataclass(frozen=True)
class Rule:
    """One rule of the app that the database does not enforce."""

    name: str
    #: A query returning the ids of the rows that break the rule (None: requests only).
    sql: str | None
    #: For a rule about requests: its condition on one row of :data:`REQUESTS`. A rule with
    #: both checks its requests with the condition and its other rows with ``sql``.
    condition: str | None = None
    #: The columns the rule reads, as ``table.column``: a database without one skips it.
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Violations:
    """The rows that break one rule: how many, and the first few ids."""

    rule: str
    count: int
    sample: tuple[uuid.UUID, ...]


@lru_cache(maxsize=16)
def rules_for(reader: TableReader = BY_NAME) -> tuple[Rule, ...]:
    """Return the rules, in order, with their SQL reading the tables as ``reader`` says."""
    conditions = _request_conditions(reader)
    rules = []
    for name, (query, columns) in _rule_sql(reader).items():
        condition = conditions.get(name)
        read = dict.fromkeys(columns)
        if condition is not None:
            read.update(dict.fromkeys(_read_by(condition)))
        rules.append(Rule(name, None if query == _REQUEST else query, condition, tuple(read)))
    return tuple(rules)


RULES: tuple[Rule, ...] = rules_for()

#: The rules about requests: those with a condition on one row of :data:`REQUESTS`.
_REQUEST_RULES: tuple[str, ...] = tuple(rule.name for rule in RULES if rule.condition)


def _reads_sessions(condition: str) -> bool:
    return re.search(r"\bs\.", condition) is not None


#: The request rules split into the passes :func:`check` makes: those that join each request
#: to its session, and the rest. Two passes of about the same cost, which can run side by
#: side on two connections (the session join is the most costly part of checking requests).
REQUEST_PASSES: tuple[tuple[str, ...], ...] = tuple(
    tuple(
        name
        for name, condition in _request_conditions(BY_NAME).items()
        if _reads_sessions(condition) is joined
    )
    for joined in (True, False)
)

#: The rules that are a query of their own (:func:`check_tables` runs them).
TABLE_RULES: tuple[str, ...] = tuple(rule.name for rule in RULES if rule.sql is not None)


def skipped_rules(reader: TableReader = BY_NAME) -> dict[str, tuple[str, ...]]:
    """Return the rules a database cannot check, in rule order, each with the columns it lacks.

    Empty on the tool's own schema. A skipped rule is neither run nor counted as kept.
    """
    return {
        rule.name: missing
        for rule in rules_for(reader)
        if (missing := reader.missing(rule.columns))
    }


def check(
    connection: Connection,
    now: datetime,
    *,
    sample: int = 5,
    reader: TableReader = BY_NAME,
) -> list[Violations]:
    """Run every rule the database can check; return one Violations per rule, in rule order.

    A rule kept has count 0; a rule the database cannot check (:func:`skipped_rules`) is left
    out, so on the tool's own schema there is one Violations per rule of :data:`RULES`.

    Args:
        connection: A connection to a database with the app's tables.
        now: The instant no event may come after.
        sample: How many offending ids to keep per rule.
        reader: How to read the app's tables on this database; by default the tool's schema.

    """
    skipped = skipped_rules(reader)
    return in_rule_order(
        *(
            check_requests(
                connection, now, sample=sample, reader=reader,
                rules=[name for name in rules if name not in skipped],
            )
            for rules in REQUEST_PASSES
        ),
        check_tables(
            connection, now, sample=sample, reader=reader,
            rules=[name for name in TABLE_RULES if name not in skipped],
        ),
        sample=sample,
        skipped=skipped,
    )


def check_requests(
    connection: Connection,
    now: datetime,
    *,
    sample: int = 5,
    rules: Sequence[str] | None = None,
    reader: TableReader = BY_NAME,
) -> dict[str, Violations]:
    """Check rules' conditions on the requests in one pass; return Violations by rule name.

    The part of :func:`check` that reads the requests and their joins; the other passes and
    :func:`check_tables` may run at the same time on other connections.

    Args:
        connection: A connection to a database with the app's tables.
        now: The instant no event may come after.
        sample: How many offending ids to keep per rule.
        rules: The names of the request rules to check (one of :data:`REQUEST_PASSES`, say);
            by default all of them that the database can check.
        reader: How to read the app's tables on this database; by default the tool's schema.

    Raises:
        ValueError: When a name in ``rules`` is not a rule about requests, or is one the
            database cannot check (:func:`skipped_rules`).

    """
    skipped = skipped_rules(reader)
    wanted = set(_REQUEST_RULES) - set(skipped) if rules is None else set(rules)
    if unknown := wanted - set(_REQUEST_RULES):
        raise ValueError(f"not rules about requests: {', '.join(sorted(unknown))}")
    _refuse_skipped(wanted, skipped)
    on_requests = [rule for rule in rules_for(reader) if rule.name in wanted]
    found: dict[str, Violations] = {}
    if not on_requests:
        return found
    joined = requests_joined(reader, [str(rule.condition) for rule in on_requests])
    # Counts in one pass; samples only for the rules that are broken.
    columns = ", ".join(f"count(*) FILTER (WHERE {rule.condition})" for rule in on_requests)
    counts = connection.execute(sa.text(f"SELECT {columns} FROM {joined}"), {"now": now}).one()
    for rule, count in zip(on_requests, counts, strict=True):
        ids: tuple[uuid.UUID, ...] = ()
        if count:
            first = f"SELECT r.id FROM {joined} WHERE {rule.condition} ORDER BY r.id LIMIT :n"
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
    reader: TableReader = BY_NAME,
) -> dict[str, Violations]:
    """Run the rules' own queries (all but the request conditions); return them by rule name.

    Args:
        connection: A connection to a database with the app's tables.
        now: The instant no event may come after.
        sample: How many offending ids to keep per rule.
        rules: The names of the rules to run (each one a query of its own, so they can be
            spread over connections); by default all of them that the database can check.
        reader: How to read the app's tables on this database; by default the tool's schema.

    Raises:
        ValueError: When a name in ``rules`` is not a rule with a query of its own, or is one
            the database cannot check (:func:`skipped_rules`).

    """
    skipped = skipped_rules(reader)
    with_sql = set(TABLE_RULES)
    wanted = with_sql - set(skipped) if rules is None else set(rules)
    if unknown := wanted - with_sql:
        raise ValueError(f"not rules with a query: {', '.join(sorted(unknown))}")
    _refuse_skipped(wanted, skipped)
    found: dict[str, Violations] = {}
    for rule in rules_for(reader):
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


def _refuse_skipped(wanted: set[str], skipped: dict[str, tuple[str, ...]]) -> None:
    if cannot := [name for name in skipped if name in wanted]:
        raise ValueError(
            "rules this database cannot check: "
            + "; ".join(f"{name} (needs {', '.join(skipped[name])})" for name in cannot)
        )


def in_rule_order(
    *parts: dict[str, Violations],
    sample: int = 5,
    skipped: Iterable[str] = (),
) -> list[Violations]:
    """Join what :func:`check_requests` and :func:`check_tables` found, one per rule, in order.

    A rule found in both (its requests and its other rows) gets the counts added and the
    lowest ``sample`` ids. The rules named in ``skipped`` (:func:`skipped_rules`) are left out.

    Raises:
        ValueError: When a rule is in none of the parts and not skipped: it did not run, and
            a rule that did not run must not read as kept.

    """
    left_out = set(skipped)
    joined: list[Violations] = []
    for rule in RULES:
        if rule.name in left_out:
            continue
        found = [part[rule.name] for part in parts if rule.name in part]
        if not found:
            raise ValueError(f"integrity rule {rule.name!r} did not run")
        ids = tuple(sorted({i for violations in found for i in violations.sample})[: int(sample)])
        joined.append(Violations(rule.name, sum(v.count for v in found), ids))
    return joined
