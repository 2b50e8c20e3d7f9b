"""When things happen: creation, response and session times that follow the request lifecycle.

Every instant comes from the scenario clock (never the wall clock): created ≤ accepted ≤
session start < session end ≤ now; a pending request has not expired yet, an expired one has.

The clock's window is the marketplace's history: a request made in it (one that is over, or
scheduled) is drawn with the marketplace's rhythm (:data:`seeding.domain.rhythm.MARKETPLACE`) in its
customer's local time: recent days denser than old ones, few requests at night, more on
weekday evenings. Requests still pending or waiting are drawn from the last hour, as the
lifecycle wants.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from factories.context import Clock
from seeding.domain.geography import time_zone_of
from seeding.domain.lifecycle import REQUEST_TTL
from seeding.domain.rhythm import MARKETPLACE, Rhythm

#: The most a mechanic takes to accept (minutes); the audit's slowest was 29.38.
MAX_RESPONSE_MINUTES = 29.5
#: The most a session waits between acceptance and its start (minutes).
MAX_START_DELAY_MINUTES = 10
#: Room a finished request needs before now: response, start delay, the longest plan.
FINISHED_ROOM = timedelta(minutes=MAX_RESPONSE_MINUTES + MAX_START_DELAY_MINUTES + 90 + 5)


def response_minutes(rng: random.Random) -> float:
    """Draw how long a mechanic took to accept: mostly a few minutes, now and then half an hour."""
    value = math.exp(rng.gauss(math.log(3.0), 0.9))
    return round(min(max(value, 0.45), MAX_RESPONSE_MINUTES), 2)


def in_window(rng: random.Random, clock: Clock, room: timedelta = timedelta(0)) -> datetime:
    """Draw an instant in the clock's window that leaves ``room`` before now, evenly.

    Rows that follow the marketplace's rhythm are drawn with :func:`in_history` instead.
    """
    latest = min(clock.end, clock.now - room)
    if latest <= clock.start:
        return clock.start
    span = (latest - clock.start).total_seconds()
    return clock.start + timedelta(seconds=round(rng.uniform(0, span)))


#: The most draws :func:`in_history` makes before it keeps the last one (a window that lies
#: wholly in quiet hours, shorter than a day, may refuse many; a usual one makes 2.7 on average).
MAX_HISTORY_DRAWS = 64


@lru_cache(maxsize=64)
def local_zone(province: str | None) -> ZoneInfo:
    """Return the time zone people of a province live by (Toronto's when it is unknown)."""
    return ZoneInfo(time_zone_of(province))


def in_history(
    rng: random.Random,
    clock: Clock,
    zone: ZoneInfo,
    room: timedelta = timedelta(0),
    rhythm: Rhythm = MARKETPLACE,
) -> datetime:
    """Draw an instant of the clock's window, leaving ``room`` before now, with a rhythm.

    The instant's age before the window's end follows the rhythm's growth (an exponential
    decay of ``half_life``, cut at the window's start); its local weekday and hour in
    ``zone`` follow the rhythm's profile (a draw is kept with a probability of its density
    over the profile's peak, else drawn again). Whole seconds from the window's end.

    Args:
        rng: The generator to draw from.
        clock: The scenario clock: the window is ``start`` .. ``min(end, now - room)``.
        zone: The local time zone whose hours and weekdays the rhythm describes.
        room: How long before now the instant must be, at least.
        rhythm: The profile; the marketplace's by default.

    """
    latest = min(clock.end, clock.now - room)
    if latest <= clock.start:
        return clock.start
    span = math.floor((latest - clock.start).total_seconds())
    rate = math.log(2) / rhythm.half_life.total_seconds()
    # The share of the decay's mass the window holds, from its end back to its start.
    held = -math.expm1(-rate * span)
    instant = latest
    for _ in range(MAX_HISTORY_DRAWS):
        age = -math.log1p(-rng.random() * held) / rate
        instant = latest - timedelta(seconds=min(round(age), span))
        if rng.random() * rhythm.peak < rhythm.density(instant.astimezone(zone)):
            break
    return instant


def request_created_at(
    rng: random.Random,
    clock: Clock,
    status: str,
    assigned: bool,
    session_status: str | None,
    zone: ZoneInfo | None = None,
) -> datetime:
    """Draw when a request was created, so that its whole lifecycle fits before now.

    A request that is over (or scheduled) was made in the clock's window, with the
    marketplace's rhythm in ``zone``, the customer's local time (Toronto's by default):
    :func:`in_history`.
    """
    now = clock.now
    zone = zone or local_zone(None)
    if status == "pending":
        # Still waiting: created less than the request's lifetime ago.
        return now - timedelta(seconds=round(rng.uniform(30, REQUEST_TTL.total_seconds() * 0.8)))
    if status == "accepted":
        if session_status == "scheduled":
            return in_history(rng, clock, zone, room=timedelta(hours=1))
        # Accepted a little while ago; the session is waiting to start or running.
        return now - timedelta(seconds=round(rng.uniform(35 * 60, 75 * 60)))
    if status in ("expired", "unattended") or (status == "cancelled" and not assigned):
        return in_history(rng, clock, zone, room=REQUEST_TTL)
    return in_history(rng, clock, zone, room=FINISHED_ROOM)


def plus_minutes(instant: datetime, minutes: float) -> datetime:
    """Return ``instant`` plus a number of minutes, to the whole second."""
    return instant + timedelta(seconds=round(minutes * 60))


def signed_up_at(rng: random.Random, clock: Clock) -> datetime:
    """Draw when an account (customer, mechanic, workshop, vehicle) was made: before the window.

    Accounts predate the requests of the window, so no request is older than its customer,
    mechanic or vehicle.
    """
    return clock.start - timedelta(seconds=round(rng.uniform(86_400, 365 * 86_400)))
