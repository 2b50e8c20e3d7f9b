"""The marketplace's rhythm: when customers ask for help, in their own local time.

One declarative profile (:data:`MARKETPLACE`): how the week's requests spread over its days,
how a day's spread over its hours (a workday's and a weekend day's), and how fast the
marketplace grows (a request is twice as likely today as one half-life ago). The factories
draw request times from it (:func:`factories.timeline.in_history`), in the customer's
local time zone (:data:`seeding.domain.geography.TIME_ZONES`); the report reads the times back in
that zone, by month, weekday and hour, with the vocabularies below.

The figures are a plausible consumer marketplace's, not measured ones: few requests at
night, more in the evening after work, a late-morning peak at the weekend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from types import MappingProxyType
from typing import Final

#: The weekdays, Monday first (ISO 8601: Monday is day 1), as the report names them.
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: The hours of a local day, as the report names them: "00" to "23".
LOCAL_HOURS: Final = tuple(f"{hour:02d}" for hour in range(24))

#: The weekdays whose hours follow the weekend's shape.
WEEKEND: Final = frozenset({"sat", "sun"})


@dataclass(frozen=True)
class Rhythm:
    """When requests are made: a weekly and daily profile, and the marketplace's growth.

    The weights are relative: ``days`` give each weekday's share of a week's requests, and
    each of ``workday_hours`` and ``weekend_hours`` (24 weights, from 00:00 to 23:00 local
    time) the shape of a day's requests over its hours, whatever their sum.
    """

    #: Each weekday's relative share of a week's requests (every name of :data:`WEEKDAYS`).
    days: Mapping[str, float]
    #: The shape of a workday's requests over its 24 local hours.
    workday_hours: tuple[float, ...]
    #: The shape of a weekend day's requests over its 24 local hours.
    weekend_hours: tuple[float, ...]
    #: Growth: a moment is half as likely as one this much later, all else equal.
    half_life: timedelta

    def __post_init__(self) -> None:
        """Refuse a profile that names other days, lacks an hour, or has no positive weight."""
        if set(self.days) != set(WEEKDAYS):
            raise ValueError(f"a rhythm's days are {', '.join(WEEKDAYS)}; got {sorted(self.days)}")
        for name in ("workday_hours", "weekend_hours"):
            hours = getattr(self, name)
            if len(hours) != len(LOCAL_HOURS) or min(hours) < 0 or not sum(hours) > 0:
                raise ValueError(f"a rhythm's {name} are 24 weights >= 0, not all 0")
        if min(self.days.values()) < 0 or not sum(self.days.values()) > 0:
            raise ValueError("a rhythm's days are weights >= 0, not all 0")
        if self.half_life <= timedelta(0):
            raise ValueError(f"a rhythm's half_life must be positive; got {self.half_life}")

    @cached_property
    def table(self) -> tuple[tuple[float, ...], ...]:
        """Return the relative density of requests by local weekday (Monday first) and hour.

        A day's hours average to the day's weight: a day's total follows ``days`` whatever
        the shape of its hours.
        """
        rows = []
        for day in WEEKDAYS:
            hours = self.weekend_hours if day in WEEKEND else self.workday_hours
            mean = sum(hours) / len(hours)
            rows.append(tuple(self.days[day] * weight / mean for weight in hours))
        return tuple(rows)

    @cached_property
    def peak(self) -> float:
        """Return the highest density of :attr:`table`."""
        return max(max(row) for row in self.table)

    def density(self, local: datetime) -> float:
        """Return the relative density of requests at a local time (its weekday and hour)."""
        return self.table[local.weekday()][local.hour]


#: A consumer marketplace for car trouble, by the customer's local time: quiet from midnight
#: to six, busy on weekday evenings (after work, 17:00 to 21:00) and late weekend mornings,
#: a little busier early in the week; it doubles every 45 days, so recent weeks are denser.
MARKETPLACE: Final = Rhythm(
    days=MappingProxyType({
        "mon": 1.00, "tue": 0.95, "wed": 0.95, "thu": 1.00, "fri": 0.90, "sat": 0.80, "sun": 0.70,
    }),
    workday_hours=(
        0.30, 0.15, 0.10, 0.08, 0.08, 0.15,  # 00-05: night
        0.40, 0.90, 1.30, 1.40, 1.40, 1.40,  # 06-11: morning
        1.70, 1.50, 1.30, 1.30, 1.60, 2.30,  # 12-17: lunch, afternoon
        2.80, 3.00, 2.80, 2.20, 1.30, 0.60,  # 18-23: evening
    ),
    weekend_hours=(
        0.50, 0.30, 0.15, 0.10, 0.08, 0.10,  # 00-05: night
        0.20, 0.50, 1.10, 1.90, 2.60, 2.90,  # 06-11: late morning
        2.70, 2.30, 2.00, 1.80, 1.70, 1.70,  # 12-17
        1.70, 1.60, 1.40, 1.10, 0.80, 0.60,  # 18-23
    ),
    half_life=timedelta(days=45),
)
