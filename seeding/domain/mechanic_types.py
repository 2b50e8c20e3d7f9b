"""The app's mechanic-type rule: virtual, workshop or independent, derived, never stored.

- virtual: no ``workshop_id``;
- workshop: ``workshop_id`` set and ``account_type = 'workshop_mechanic'``;
- independent: ``workshop_id`` set (their own shop) and ``account_type = 'individual_mechanic'``.

The app's own seeding script made "independent" mechanics without a workshop, which the app
then shows as virtual; this module is the one place that says how the app decides.
"""

from __future__ import annotations

import uuid
from typing import Final, Literal

MechanicType = Literal["virtual", "workshop", "independent"]

#: The ``account_type`` each workshop-holding type must have.
ACCOUNT_TYPE_OF: Final[dict[str, str]] = {
    "virtual": "individual_mechanic",
    "workshop": "workshop_mechanic",
    "independent": "individual_mechanic",
}


def mechanic_type(workshop_id: uuid.UUID | str | None, account_type: str | None) -> MechanicType:
    """Return the type the app shows for a mechanic row.

    Args:
        workshop_id: The row's ``workshop_id``.
        account_type: The row's ``account_type``.

    """
    if workshop_id is None:
        return "virtual"
    if account_type == "workshop_mechanic":
        return "workshop"
    return "independent"


def sql_mechanic_type(alias: str = "mechanics") -> str:
    """Return a SQL expression giving the type of a mechanics row, as :func:`mechanic_type` does.

    Args:
        alias: The name or alias of the mechanics table in the query.

    """
    return (
        f"CASE WHEN {alias}.workshop_id IS NULL THEN 'virtual' "
        f"WHEN {alias}.account_type = 'workshop_mechanic' THEN 'workshop' "
        "ELSE 'independent' END"
    )
