"""The app's closed vocabularies: one tuple each, used by the CHECK constraints and the factories.

Where the app's own sources disagree, the vocabulary is the union of them all, so that every
value the live database can hold is accepted here. Each such choice is written down beside
the tuple, and nowhere else.
"""

from __future__ import annotations

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

#: ``session_requests.routing_type``. The CHECK allows the first three; the app's code also
#: writes 'priority_broadcast', which the audit's rows could hold. Union of both.
ROUTING_TYPES: Final = ("broadcast", "workshop_only", "hybrid", "priority_broadcast")

#: ``session_requests.request_type``.
REQUEST_TYPES: Final = ("general", "brand_specialist")

#: ``account_type`` of profiles (customers) and mechanics: one vocabulary for both tables.
ACCOUNT_TYPES: Final = ("individual_customer", "individual_mechanic", "workshop_mechanic")

#: ``mechanics.service_tier``.
SERVICE_TIERS: Final = ("virtual_only", "workshop_partner", "licensed_mobile")

#: ``mechanics.participation_mode``.
PARTICIPATION_MODES: Final = ("virtual_only", "both", "physical_only")

#: ``mechanics.specialist_tier``.
SPECIALIST_TIERS: Final = ("general", "brand", "master")

#: ``mechanics.application_status``. The app lists approved and pending "and others"; these
#: are the ones a seeded mechanic can have.
APPLICATION_STATUSES: Final = ("approved", "pending", "rejected", "suspended")

#: ``organizations.organization_type``; workshops are the only kind this tool writes.
ORGANIZATION_TYPES: Final = ("workshop", "corporate")

#: ``organizations.status``.
ORGANIZATION_STATUSES: Final = ("active", "pending")

#: ``organizations.verification_status``.
VERIFICATION_STATUSES: Final = ("verified", "unverified", "pending")

#: ``session_requests.follow_up_type``: not constrained by the app; what the factories write.
FOLLOW_UP_TYPES: Final = ("same_issue", "new_issue", "check_in")

#: Canada's provinces and territories, as the two-letter codes the app stores.
PROVINCES: Final = ("AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT")

#: The three mechanic types of the app's rule (see :mod:`seeding.mechanic_types`).
MECHANIC_TYPES: Final = ("virtual", "workshop", "independent")


def sql_in(column: str, values: tuple[str, ...]) -> str:
    """Return a CHECK expression that limits ``column`` to ``values``.

    Args:
        column: The column's name.
        values: The allowed values.

    """
    quoted = ", ".join("'" + value.replace("'", "''") + "'" for value in values)
    return f"{column} IN ({quoted})"
