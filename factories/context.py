"""What the factories read from their surroundings: the clock, the bound session, the collector.

No factory reads the wall clock: a scenario (or a test) sets the clock, and the default
stands on the audit's day. ``create()`` persists through the session bound here; ``build()``
records every row it makes, parents included, in the active collector, so a bulk writer can
persist what a build produced.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import factory.random
from sqlalchemy.orm import Session

from seeding.errors import ConfigurationError


@dataclass(frozen=True)
class Clock:
    """The scenario clock: ``now``, and the window in which rows are created."""

    now: datetime
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name in ("now", "start", "end"):
            if getattr(self, name).tzinfo is None:
                raise ConfigurationError(f"clock.{name} {getattr(self, name)} has no time zone")
        if not self.start <= self.end <= self.now:
            raise ConfigurationError(
                f"clock window {self.start.isoformat()} .. {self.end.isoformat()} must end "
                f"at or before now ({self.now.isoformat()}) and start before it ends"
            )


#: The audit's day, noon in Toronto; the default window is the 30 days before it.
AUDIT_NOW = datetime(2025, 11, 12, 17, 0, tzinfo=UTC)
DEFAULT_CLOCK = Clock(now=AUDIT_NOW, start=AUDIT_NOW - timedelta(days=30), end=AUDIT_NOW)

_clock: ContextVar[Clock] = ContextVar("seeding_clock", default=DEFAULT_CLOCK)
_session: ContextVar[Session | None] = ContextVar("seeding_session", default=None)
_collector: ContextVar[list[object] | None] = ContextVar("seeding_collector", default=None)


def current_clock() -> Clock:
    """Return the clock factories use now."""
    return _clock.get()


@contextmanager
def clock(
    now: datetime, *, start: datetime | None = None, end: datetime | None = None
) -> Iterator[Clock]:
    """Set the scenario clock for the duration of the block.

    Args:
        now: What "now" is for every row built inside the block.
        start: The start of the creation window (default: 30 days before ``now``).
        end: The end of the creation window (default: ``now``).

    """
    value = Clock(now=now, start=start or now - timedelta(days=30), end=end or now)
    token = _clock.set(value)
    try:
        yield value
    finally:
        _clock.reset(token)


def rng() -> random.Random:
    """Return the random generator every factory draws from (seeded by :func:`reseed`)."""
    return factory.random.randgen


def reseed(seed: int) -> None:
    """Seed factory_boy's and Faker's generators: one seed fixes every value, ids included."""
    factory.random.reseed_random(seed)


@contextmanager
def bind(session: Session) -> Iterator[Session]:
    """Make ``Factory.create()`` persist through ``session`` for the duration of the block."""
    token = _session.set(session)
    try:
        yield session
    finally:
        _session.reset(token)


def bound_session() -> Session:
    """Return the session ``create()`` persists through.

    Raises:
        ConfigurationError: When no session is bound.

    """
    session = _session.get()
    if session is None:
        raise ConfigurationError(
            "Factory.create() needs a database session and none is bound; wrap the calls in "
            "`with factories.bind(session):`, use the seed_session pytest fixture, "
            "or call .build() to make rows without a database"
        )
    return session


@contextmanager
def collect() -> Iterator[list[object]]:
    """Collect every row ``build()`` makes inside the block, parents before children."""
    rows: list[object] = []
    token = _collector.set(rows)
    try:
        yield rows
    finally:
        _collector.reset(token)


def record(row: object) -> None:
    """Add a built row to the active collector, if there is one."""
    rows = _collector.get()
    if rows is not None:
        rows.append(row)
