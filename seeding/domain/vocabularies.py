"""The app's closed vocabularies: one tuple each, used by the CHECK constraints and the factories.

The authority is the app's real database (its migrations, code and live captures). Where the
live database constrains a column (a CHECK), the vocabulary is that CHECK's list, and the
factories write nothing else. Where the app's own sources disagree, a scenario may name any
value of their union, so that every value the live database can hold is accepted, but the
factories draw only from what a constrained column allows (``follow_up_type``). Each such
choice is written down beside the tuple, and nowhere else.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

#: ``session_requests.status``. The original enum had pending, accepted, cancelled; a later
#: CHECK added expired; the app's state machine also knows the legacy 'unattended'; the
#: audited staging data holds 'completed', which no migration lists. Union of all four.
REQUEST_STATUSES: Final = ("pending", "accepted", "completed", "cancelled", "expired", "unattended")

#: ``sessions.status``. The two CHECK versions together.
SESSION_STATUSES: Final = (
    "pending",
    "waiting",
    "live",
    "scheduled",
    "completed",
    "cancelled",
    "expired",
    "unattended",
    "refunded",
    "archived",
)

#: ``session_type``: a PostgreSQL enum in the app, shared by requests and sessions.
SESSION_TYPES: Final = ("chat", "video", "diagnostic")

#: ``session_requests.routing_type``: what the CHECK allows, and all the column ever holds
#: (the audited rows are all 'broadcast').
ROUTING_TYPES: Final = ("broadcast", "workshop_only", "hybrid")

#: The routings a scenario may ask a request for: the column's, and 'priority_broadcast'. The
#: app's code names a priority broadcast, but never stores the name in the request: the
#: request is a 'broadcast' with ``preferred_mechanic_id``, ``priority_window_minutes`` and
#: ``priority_notified_at`` set, and the session it starts carries
#: :data:`PRIORITY_BROADCAST_METADATA` in ``sessions.metadata`` (as the app's session factory
#: writes ``metadata.routing_type``). See ``factories.requests``.
ROUTINGS: Final = (*ROUTING_TYPES, "priority_broadcast")

#: What a priority broadcast's session holds in ``sessions.metadata`` (besides its plan name).
PRIORITY_BROADCAST_METADATA: Final = MappingProxyType({"routing_type": "priority_broadcast"})

#: ``session_requests.request_type``.
REQUEST_TYPES: Final = ("general", "brand_specialist")

#: ``profiles.account_type`` (the CHECK's list); the factories write 'individual_customer'.
CUSTOMER_ACCOUNT_TYPES: Final = ("individual_customer", "corporate_customer", "workshop_customer")

#: ``mechanics.account_type`` (the CHECK's list): with ``workshop_id``, it gives the mechanic
#: type (see :mod:`seeding.domain.mechanic_types`).
MECHANIC_ACCOUNT_TYPES: Final = ("individual_mechanic", "workshop_mechanic")

#: ``profiles.role``: no CHECK. The app's code uses customer, mechanic and admin; the live
#: rows also hold workshop and workshop_admin. Union of both.
PROFILE_ROLES: Final = ("customer", "mechanic", "admin", "workshop", "workshop_admin")
#: The role of a customer's profile: the customer APIs refuse any other (or none).
CUSTOMER_ROLE: Final = "customer"
#: The role of a mechanic's profile: the app admits only this one to the mechanic pages.
MECHANIC_ROLE: Final = "mechanic"

#: ``mechanics.service_tier``.
SERVICE_TIERS: Final = ("virtual_only", "workshop_partner", "licensed_mobile")

#: ``mechanics.participation_mode``: which sessions a mechanic takes, micro-sessions (a few
#: minutes of advice, on shift) or full ones (every plan this tool seeds). The CHECK's list;
#: the 'virtual_only' and 'physical_only' of the app's own seeder are refused by it (23514).
PARTICIPATION_MODES: Final = ("micro_only", "full_only", "both")

#: ``mechanics.specialist_tier``.
SPECIALIST_TIERS: Final = ("general", "brand", "master")

#: ``mechanics.application_status`` (the CHECK's list; 'suspended' is an ``account_status``).
#: The factories write approved, and pending for an incomplete profile.
APPLICATION_STATUSES: Final = (
    "draft",
    "pending",
    "under_review",
    "approved",
    "rejected",
    "additional_info_required",
)

#: ``organizations.organization_type``; workshops are the only kind this tool writes.
ORGANIZATION_TYPES: Final = ("workshop", "corporate")

#: ``organizations.status`` (the CHECK's list); the factories write active, and pending for
#: a workshop not verified yet.
ORGANIZATION_STATUSES: Final = ("pending", "active", "suspended", "closed")

#: ``organizations.verification_status`` (the CHECK's list).
VERIFICATION_STATUSES: Final = ("unverified", "pending", "verified", "rejected")

#: ``session_requests.follow_up_type`` as the migrations' CHECK allows it: what the factories
#: draw from.
CHECKED_FOLLOW_UP_TYPES: Final = ("continuation", "re-diagnosis", "additional_work")
#: ``session_requests.follow_up_type``: the CHECK's values and the app code's (quick_question,
#: mini_extension, new_issue), which the CHECK refuses where the database has it. A scenario
#: may name any of the union; the factories write only :data:`CHECKED_FOLLOW_UP_TYPES`.
FOLLOW_UP_TYPES: Final = (
    *CHECKED_FOLLOW_UP_TYPES,
    "quick_question",
    "mini_extension",
    "new_issue",
)

#: ``session_assignments.status`` (the CHECK's list). The app's code also reads joined,
#: in_progress and pending, and writes 'ended' when a session ends, which the CHECK refuses;
#: the factories write only these.
ASSIGNMENT_STATUSES: Final = (
    "pending_waiver",
    "queued",
    "offered",
    "accepted",
    "declined",
    "expired",
    "cancelled",
    "completed",
)

#: ``session_assignments.priority`` (the CHECK's list). The mechanic queue orders it as text,
#: descending: normal, low, high.
ASSIGNMENT_PRIORITIES: Final = ("high", "normal", "low")

#: ``session_assignments.match_reasons``: guess: no source lists the reasons the app's
#: matching writes (a ``text[]`` with no CHECK); these say why a mechanic was offered a session.
MATCH_REASONS: Final = (
    "available_now",
    "session_type",
    "nearby",
    "brand_match",
    "red_seal_certified",
    "rating",
)

#: Canada's provinces and territories, as the two-letter codes the app stores.
PROVINCES: Final = ("AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT")

#: Each province's name, as ``profiles.state_province`` holds it beside the code in
#: ``profiles.province`` (the live rows: 'Ontario' and 'ON'; the customer screens read the name).
PROVINCE_NAMES: Final = MappingProxyType({
    "AB": "Alberta",
    "BC": "British Columbia",
    "MB": "Manitoba",
    "NB": "New Brunswick",
    "NL": "Newfoundland and Labrador",
    "NS": "Nova Scotia",
    "NT": "Northwest Territories",
    "NU": "Nunavut",
    "ON": "Ontario",
    "PE": "Prince Edward Island",
    "QC": "Quebec",
    "SK": "Saskatchewan",
    "YT": "Yukon",
})

#: The three mechanic types of the app's rule (see :mod:`seeding.domain.mechanic_types`).
MECHANIC_TYPES: Final = ("virtual", "workshop", "independent")


def sql_in(column: str, values: tuple[str, ...]) -> str:
    """Return a CHECK expression that limits ``column`` to ``values``.

    Args:
        column: The column's name.
        values: The allowed values.

    """
    quoted = ", ".join("'" + value.replace("'", "''") + "'" for value in values)
    return f"{column} IN ({quoted})"
