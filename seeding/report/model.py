"""The report as a plain, immutable value, and its JSON form (the contract in docs/report.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from seeding.scenario.targets import Target, TargetResult, evaluate, unavailable_reason

#: The key that stands for NULL in a ``by_*`` map (JSON keys are strings).
NULL_KEY = "(none)"

#: The version of the JSON contract (docs/report.md), written as the top-level ``version``.
#: 1 (no ``version`` key): every metric a number. 2: a metric the database cannot measure is
#: null and listed under ``unavailable``; the rules it cannot check are under
#: ``skipped_rules``, not in ``integrity``.
REPORT_VERSION: Final = 2


def iso_utc(moment: datetime | None) -> str | None:
    """Return an instant as ISO 8601 in UTC; a naive one is taken to be UTC already."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def span_days(oldest: datetime | None, newest: datetime | None) -> int:
    """Return the whole days from oldest to newest, a part of a day counting as one; 0 if none.

    The audit's 2025-10-29 00:45:48 to 2025-11-06 14:05:57 gives 9.
    """
    if oldest is None or newest is None:
        return 0
    delta = newest - oldest
    return delta.days + (1 if delta - timedelta(days=delta.days) > timedelta(0) else 0)


def shares(counts: Mapping[str, int], total: int) -> dict[str, float]:
    """Return each count's fraction of ``total``, 0..1 rounded to 4 decimals."""
    return {key: round(count / total, 4) for key, count in counts.items()} if total else {}


@dataclass(frozen=True)
class ResponseMinutes:
    """Minutes from ``created_at`` to ``accepted_at`` of the requests a mechanic accepted."""

    count: int
    avg: float | None
    min: float | None
    max: float | None


#: The upper edges (minutes) of the response-time histogram's buckets; a last bucket holds
#: the responses from the highest edge on, and the first also those under 0 (a broken row).
RESPONSE_BUCKETS: Final = (1, 2, 3, 5, 10, 15, 30, 60)


def histogram_buckets(counts: Iterable[int]) -> list[dict[str, Any]]:
    """Return the response histogram as JSON writes it: every bucket, from and to minutes."""
    edges = (0, *RESPONSE_BUCKETS, None)
    return [
        {"from_minutes": edges[i], "to_minutes": edges[i + 1], "count": count}
        for i, count in enumerate(counts)
    ]


@dataclass(frozen=True)
class SampleRequest:
    """One request of the sample: the first ones by ``created_at``."""

    id: str
    status: str
    session_type: str
    created_at: datetime


@dataclass(frozen=True)
class RequestStats:
    """What the ``session_requests`` table shows."""

    total: int
    by_status: Mapping[str, int]
    by_session_type: Mapping[str, int]
    by_routing_type: Mapping[str, int]
    by_request_type: Mapping[str, int]
    assigned: int
    cancelled_before_assignment: int
    cancelled_after_assignment: int
    response_minutes: ResponseMinutes
    oldest: datetime | None
    newest: datetime | None
    with_workshop: int
    with_preferred_workshop: int
    with_preferred_mechanic: int
    #: Broadcasts offered first to a preferred mechanic (the app's 'priority_broadcast').
    priority_broadcasts: int
    follow_ups: int
    urgent: int
    without_customer_profile: int
    sample: tuple[SampleRequest, ...]
    #: The responses per bucket of :data:`RESPONSE_BUCKETS` (one more count than edges).
    response_histogram: tuple[int, ...] = (0,) * (len(RESPONSE_BUCKETS) + 1)
    #: Requests per month of their customer's local time ("2025-10"), oldest month first.
    by_local_month: Mapping[str, int] = field(default_factory=dict)
    #: Requests per weekday of their customer's local time ("mon" .. "sun"), Monday first.
    by_local_weekday: Mapping[str, int] = field(default_factory=dict)
    #: Requests per hour of their customer's local time ("00" .. "23"), in hour order.
    by_local_hour: Mapping[str, int] = field(default_factory=dict)

    @property
    def local_months(self) -> int:
        """Return in how many months (the customers' local time) requests were made."""
        return len(self.by_local_month)

    @property
    def local_weekdays(self) -> int:
        """Return on how many of the 7 weekdays (the customers' local time) requests were made."""
        return len(self.by_local_weekday)

    @property
    def unassigned(self) -> int:
        """Return how many requests have no mechanic."""
        return self.total - self.assigned

    @property
    def span_days(self) -> int:
        """Return the days from the oldest request to the newest, rounded up."""
        return span_days(self.oldest, self.newest)

    def to_dict(self) -> dict[str, Any]:
        """Return the section as the report's JSON writes it."""
        return {
            "total": self.total,
            "by_status": dict(self.by_status),
            "share_by_status": shares(self.by_status, self.total),
            "by_session_type": dict(self.by_session_type),
            "share_by_session_type": shares(self.by_session_type, self.total),
            "by_routing_type": dict(self.by_routing_type),
            "by_request_type": dict(self.by_request_type),
            "assigned": self.assigned,
            "unassigned": self.unassigned,
            "cancelled_before_assignment": self.cancelled_before_assignment,
            "cancelled_after_assignment": self.cancelled_after_assignment,
            "response_minutes": dataclasses.asdict(self.response_minutes),
            "response_histogram": histogram_buckets(self.response_histogram),
            "oldest": iso_utc(self.oldest),
            "newest": iso_utc(self.newest),
            "span_days": self.span_days,
            "by_local_month": dict(self.by_local_month),
            "by_local_weekday": dict(self.by_local_weekday),
            "by_local_hour": dict(self.by_local_hour),
            "local_months": self.local_months,
            "local_weekdays": self.local_weekdays,
            "with_workshop": self.with_workshop,
            "with_preferred_workshop": self.with_preferred_workshop,
            "with_preferred_mechanic": self.with_preferred_mechanic,
            "priority_broadcasts": self.priority_broadcasts,
            "follow_ups": self.follow_ups,
            "urgent": self.urgent,
            "without_customer_profile": self.without_customer_profile,
            "sample": [
                {
                    "id": r.id,
                    "status": r.status,
                    "session_type": r.session_type,
                    "created_at": iso_utc(r.created_at),
                }
                for r in self.sample
            ],
        }


@dataclass(frozen=True)
class CustomerActivity:
    """One customer's requests, by status; ``email`` is the profile's, else the request's copy."""

    id: str
    email: str | None
    has_profile: bool
    total: int
    by_status: Mapping[str, int]


@dataclass(frozen=True)
class CustomerStats:
    """Customers: profiles with ``role = 'customer'``, and who made the requests."""

    total: int
    #: Distinct ``customer_id`` of the requests (whether or not a profile exists).
    active: int
    #: Customer profiles with at least one request.
    with_requests: int
    with_full_geo: int
    provinces: Mapping[str, int]
    #: The customers with the most requests, most first (at most ``top`` of them).
    per_customer: tuple[CustomerActivity, ...]

    @property
    def province_count(self) -> int:
        """Return how many provinces customers live in."""
        return len(self.provinces)

    def to_dict(self) -> dict[str, Any]:
        """Return the section as the report's JSON writes it."""
        return {
            "total": self.total,
            "active": self.active,
            "with_requests": self.with_requests,
            "with_full_geo": self.with_full_geo,
            "provinces": dict(self.provinces),
            "province_count": self.province_count,
            "per_customer": [_activity(c) for c in self.per_customer],
        }


@dataclass(frozen=True)
class MechanicActivity:
    """One mechanic's requests, by status; name, email and type are None without a row."""

    id: str
    name: str | None
    email: str | None
    type: str | None
    total: int
    by_status: Mapping[str, int]


@dataclass(frozen=True)
class IncompleteMechanic:
    """A mechanic whose profile is not complete, and what it lacks."""

    id: str
    name: str | None
    email: str | None
    type: str
    profile_completion_score: int | None
    missing: tuple[str, ...]


@dataclass(frozen=True)
class MechanicStats:
    """Mechanics: types, profile completeness, and who took the requests."""

    total: int
    #: Distinct ``mechanic_id`` of the requests.
    participating: int
    complete: int
    by_type: Mapping[str, int]
    complete_by_type: Mapping[str, int]
    #: Distinct ``mechanic_id`` of the requests with status completed.
    with_completed_session: int
    #: The incomplete mechanics, oldest first (at most ``top`` of them).
    incomplete: tuple[IncompleteMechanic, ...]
    #: The mechanics with the most requests, most first (at most ``top`` of them).
    per_mechanic: tuple[MechanicActivity, ...]

    @property
    def incomplete_count(self) -> int:
        """Return how many mechanics are not complete."""
        return self.total - self.complete

    def to_dict(self) -> dict[str, Any]:
        """Return the section as the report's JSON writes it."""
        return {
            "total": self.total,
            "participating": self.participating,
            "complete": self.complete,
            "incomplete_count": self.incomplete_count,
            "incomplete": [
                {
                    "id": m.id,
                    "name": m.name,
                    "email": m.email,
                    "type": m.type,
                    "profile_completion_score": m.profile_completion_score,
                    "missing": list(m.missing),
                }
                for m in self.incomplete
            ],
            "by_type": dict(self.by_type),
            "complete_by_type": dict(self.complete_by_type),
            "with_completed_session": self.with_completed_session,
            "per_mechanic": [
                {
                    "id": m.id,
                    "name": m.name,
                    "email": m.email,
                    "type": m.type,
                    "total": m.total,
                    "by_status": dict(m.by_status),
                }
                for m in self.per_mechanic
            ],
        }


@dataclass(frozen=True)
class WorkshopStats:
    """Workshops: organizations with ``organization_type = 'workshop'``."""

    total: int
    provinces: Mapping[str, int]

    @property
    def province_count(self) -> int:
        """Return how many provinces have a workshop."""
        return len(self.provinces)

    def to_dict(self) -> dict[str, Any]:
        """Return the section as the report's JSON writes it."""
        return {
            "total": self.total,
            "provinces": dict(self.provinces),
            "province_count": self.province_count,
        }


@dataclass(frozen=True)
class SessionStats:
    """The ``sessions`` table."""

    total: int
    by_status: Mapping[str, int]
    completed_by_mechanic_type: Mapping[str, int]

    def to_dict(self) -> dict[str, Any]:
        """Return the section as the report's JSON writes it."""
        return {
            "total": self.total,
            "by_status": dict(self.by_status),
            "completed_by_mechanic_type": dict(self.completed_by_mechanic_type),
        }


@dataclass(frozen=True)
class AssignmentStats:
    """The ``session_assignments`` table: what the mechanic queue reads, by status."""

    total: int
    by_status: Mapping[str, int]

    def to_dict(self) -> dict[str, Any]:
        """Return the section as the report's JSON writes it."""
        return {"total": self.total, "by_status": dict(self.by_status)}


#: The section of a database without ``session_assignments``: stand-ins, written as null.
NO_ASSIGNMENTS: Final = AssignmentStats(total=0, by_status={})


@dataclass(frozen=True)
class IntegrityResult:
    """One rule of the app: how many rows break it, and the first few ids."""

    rule: str
    violations: int
    sample_ids: tuple[str, ...]


@dataclass(frozen=True)
class SkippedRule:
    """A rule of the app the database cannot check: the columns it needs that are absent."""

    rule: str
    missing: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    """What a database holds, measured against the audit's questions and the app's rules.

    On a database that lacks columns the report reads (the app's real one, say), the metrics
    that need them are named in :attr:`unavailable`: their fields in the sections hold only
    stand-ins (0, empty), which :meth:`to_dict` writes as null and the renderings show as not
    available. Check :meth:`available` before reading such a field.
    """

    #: The instant the report was taken at (the database's ``now()`` unless given).
    now: datetime
    session_requests: RequestStats
    customers: CustomerStats
    mechanics: MechanicStats
    workshops: WorkshopStats
    sessions: SessionStats
    #: The sessions' assignments (stand-ins, listed in :attr:`unavailable`, on a database
    #: without the table).
    session_assignments: AssignmentStats
    #: The rules measured, in rule order (those in :attr:`skipped_rules` are not).
    integrity: tuple[IntegrityResult, ...]
    targets: tuple[TargetResult, ...] = ()
    #: The metrics the database cannot measure (paths of the JSON contract), each with the
    #: absent columns (``table.column``) it needs; empty on the tool's own schema. A path
    #: ``mechanics.incomplete.missing.<field>`` names a field the incomplete list cannot check.
    unavailable: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: The rules the database cannot check, in rule order, each with its absent columns.
    skipped_rules: tuple[SkippedRule, ...] = ()

    @property
    def integrity_violations(self) -> int:
        """Return the rows that break a rule, summed over the rules measured."""
        return sum(result.violations for result in self.integrity)

    def available(self, metric: str) -> bool:
        """Return whether the database could measure ``metric`` (a path of the JSON contract)."""
        return not self.missing_for(metric)

    def missing_for(self, metric: str) -> tuple[str, ...]:
        """Return the absent columns that keep ``metric`` (or a map above it) from being measured.

        Empty when it was measured.
        """
        return unavailable_reason(self.unavailable, metric)

    def with_targets(self, targets: Iterable[Target]) -> Report:
        """Return this report with each target checked against it."""
        results = evaluate(self.to_dict(), targets)
        return dataclasses.replace(self, targets=tuple(results))

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON values; the keys are the contract of docs/report.md."""
        found: dict[str, Any] = {
            "version": REPORT_VERSION,
            "now": iso_utc(self.now),
            "session_requests": self.session_requests.to_dict(),
            "customers": self.customers.to_dict(),
            "mechanics": self.mechanics.to_dict(),
            "workshops": self.workshops.to_dict(),
            "sessions": self.sessions.to_dict(),
            "session_assignments": self.session_assignments.to_dict(),
            "integrity": [
                {"rule": r.rule, "violations": r.violations, "sample_ids": list(r.sample_ids)}
                for r in self.integrity
            ],
            "integrity_violations": self.integrity_violations,
            "skipped_rules": [
                {"rule": r.rule, "missing": list(r.missing)} for r in self.skipped_rules
            ],
            "unavailable": [
                {"metric": metric, "missing": list(missing)}
                for metric, missing in self.unavailable.items()
            ],
            "targets": [result.to_dict() for result in self.targets],
        }
        for metric in self.unavailable:
            _set_null(found, metric)
        return found


def _set_null(report: dict[str, Any], metric: str) -> None:
    """Write null at a metric's path of a report dict (a path into a list is left alone)."""
    *sections, key = metric.split(".")
    node: Any = report
    for part in sections:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and key in node:
        node[key] = None


def _activity(customer: CustomerActivity) -> dict[str, Any]:
    return {
        "id": customer.id,
        "email": customer.email,
        "has_profile": customer.has_profile,
        "total": customer.total,
        "by_status": dict(customer.by_status),
    }
