"""What each of the report's metrics reads: the columns behind every key of the JSON contract.

:data:`METRIC_COLUMNS` names, per metric, the ``table.column`` it reads (an integrity rule
declares its own, :attr:`seeding.domain.integrity.Rule.columns`); :func:`unavailable_metrics`
says which of them a live database cannot give, so the report shows them as not available,
never as a number. The audit's definitions of a complete mechanic and a customer's complete
geography live here too, in SQL.
"""

from __future__ import annotations

from typing import Final

from seeding.report.shape import Shape

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


ASSIGNMENTS = "session_assignments"


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
    "session_assignments.total": (ASSIGNMENTS,),
    "session_assignments.by_status": (ASSIGNMENTS, *_columns(ASSIGNMENTS, "status")),
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
