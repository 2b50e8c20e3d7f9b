"""The app's plan codes: which session type each plan belongs to, its length and its price."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final


@dataclass(frozen=True)
class Plan:
    """A plan a customer books: ``plan_code`` on requests, ``plan`` on sessions."""

    code: str
    name: str
    session_type: str
    minutes: int
    price: Decimal


PLANS: Final = (
    Plan("chat10", "Quick Chat", "chat", 30, Decimal("9.99")),
    Plan("video15", "Standard Video", "video", 45, Decimal("29.99")),
    Plan("video30", "Extended Video", "video", 90, Decimal("49.99")),
    Plan("diagnostic", "Full Diagnostic", "diagnostic", 60, Decimal("49.99")),
)

PLAN_CODES: Final = tuple(plan.code for plan in PLANS)
PLANS_BY_CODE: Final = {plan.code: plan for plan in PLANS}


def plans_for(session_type: str) -> tuple[Plan, ...]:
    """Return the plans of one session type, in the app's order.

    Args:
        session_type: One of :data:`seeding.domain.vocabularies.SESSION_TYPES`.

    """
    return tuple(plan for plan in PLANS if plan.session_type == session_type)


def sql_plan_fits_type(plan_column: str, type_column: str) -> str:
    """Return a SQL condition that is true when the plan belongs to the session type."""
    # A simple CASE reads the plan once per row; an unknown plan (or none) fits no type. The
    # type is compared as it is (enum or text): a cast to text per row costs a fifth of a
    # pass over a million requests.
    branches = " ".join(
        f"WHEN '{p.code}' THEN {type_column} = '{p.session_type}'" for p in PLANS
    )
    return f"(CASE {plan_column} {branches} ELSE false END)"
