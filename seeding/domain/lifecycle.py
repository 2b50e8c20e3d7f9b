"""The session-request lifecycle: which status implies a mechanic, a session, an expiry.

pending → accepted → completed; pending → cancelled; pending → expired; accepted → cancelled;
plus the legacy 'unattended' (a pending request nobody took). Factories build rows that keep
these rules; the report counts the rows that break them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

#: How long a pending request waits for a mechanic before it expires. The app's value is not
#: in the sources we have; the audit's slowest acceptance (29.38 min) bounds it from below.
REQUEST_TTL: Final = timedelta(minutes=60)

#: ``priority_window_minutes`` of a priority broadcast (the app's default, and what it writes).
PRIORITY_WINDOW_MINUTES: Final = 10


def sql_priority_broadcast(alias: str = "") -> str:
    """Return SQL: the request is a priority broadcast, as the app stores one.

    The app's ``routing_type`` CHECK has no 'priority_broadcast': such a request is a
    'broadcast' offered first to its preferred mechanic, who was notified
    (``priority_notified_at``). The name itself is kept in its session's ``metadata``.

    Args:
        alias: The requests' alias in the query (``r``), or nothing.

    """
    a = f"{alias}." if alias else ""
    return (
        f"({a}routing_type = 'broadcast' AND {a}preferred_mechanic_id IS NOT NULL "
        f"AND {a}priority_notified_at IS NOT NULL)"
    )

#: Statuses whose request always has a mechanic and ``accepted_at``.
ASSIGNED_STATUSES: Final = ("accepted", "completed")
#: Statuses whose request never has a mechanic nor ``accepted_at``.
UNASSIGNED_STATUSES: Final = ("pending", "expired", "unattended")
#: Statuses that may go either way: cancelled before or after a mechanic accepted.
EITHER_STATUSES: Final = ("cancelled",)

#: The sessions-row statuses that fit a request: accepted (not yet over), completed, and
#: cancelled after assignment. Requests of other statuses have no sessions row.
SESSION_STATUSES_FOR_REQUEST: Final[dict[str, tuple[str, ...]]] = {
    "accepted": ("waiting", "pending", "scheduled", "live"),
    "completed": ("completed", "archived"),
    "cancelled": ("cancelled", "refunded", "unattended", "expired"),
}

#: Session statuses that make a session open: the app keeps one per customer (a partial
#: unique index on ``sessions.customer_user_id``), and its dashboard's banner shows it.
OPEN_SESSION_STATUSES: Final = ("pending", "waiting", "live", "scheduled")

#: Session statuses that mean the session ran to its end (start, end, duration, rating set).
FINISHED_SESSION_STATUSES: Final = ("completed", "archived")
#: Session statuses in which the session has started but not ended.
RUNNING_SESSION_STATUSES: Final = ("live",)
