"""When things happen: creation, response and session times that follow the request lifecycle.

Every instant comes from the scenario clock (never the wall clock): created ≤ accepted ≤
session start < session end ≤ now; a pending request has not expired yet, an expired one has.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from factories.context import Clock
from seeding.lifecycle import REQUEST_TTL

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
    """Draw an instant in the clock's window that leaves ``room`` before now."""
    latest = min(clock.end, clock.now - room)
    if latest <= clock.start:
        return clock.start
    span = (latest - clock.start).total_seconds()
    return clock.start + timedelta(seconds=round(rng.uniform(0, span)))


def request_created_at(
    rng: random.Random, clock: Clock, status: str, assigned: bool, session_status: str | None
) -> datetime:
    """Draw when a request was created, so that its whole lifecycle fits before now."""
    now = clock.now
    if status == "pending":
        # Still waiting: created less than the request's lifetime ago.
        return now - timedelta(seconds=round(rng.uniform(30, REQUEST_TTL.total_seconds() * 0.8)))
    if status == "accepted":
        if session_status == "scheduled":
            return in_window(rng, clock, room=timedelta(hours=1))
        # Accepted a little while ago; the session is waiting to start or running.
        return now - timedelta(seconds=round(rng.uniform(35 * 60, 75 * 60)))
    if status in ("expired", "unattended") or (status == "cancelled" and not assigned):
        return in_window(rng, clock, room=REQUEST_TTL)
    return in_window(rng, clock, room=FINISHED_ROOM)


def plus_minutes(instant: datetime, minutes: float) -> datetime:
    """Return ``instant`` plus a number of minutes, to the whole second."""
    return instant + timedelta(seconds=round(minutes * 60))


def signed_up_at(rng: random.Random, clock: Clock) -> datetime:
    """Draw when an account (customer, mechanic, workshop, vehicle) was made: before the window.

    Accounts predate the requests of the window, so no request is older than its customer,
    mechanic or vehicle.
    """
    return clock.start - timedelta(seconds=round(rng.uniform(86_400, 365 * 86_400)))
