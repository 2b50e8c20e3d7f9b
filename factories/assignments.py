"""SessionAssignmentFactory: a session offered to mechanics, as the mechanic queue reads it.

The app's queue (app-schema.md §5) lists, for a signed-in mechanic, the *unassigned*
sessions (a 'queued' assignment with no mechanic, a broadcast, whose session is pending or
waiting) and *theirs* (an offered or accepted assignment with their ``mechanics.id``, whose
session is waiting or live). So that a seeded session shows there as the app would show it,
:class:`~factories.sessions.SessionFactory` gives every session its assignment by
:func:`automatic_status`: a pending or waiting session without a mechanic is queued for all
mechanics, and a pending, waiting or live session with a mechanic is that mechanic's accepted
one. A scenario may add more (``create: session_assignment``): offers to a mechanic,
declined, expired, cancelled or completed ones.

The automatic assignments draw from a generator of their own, seeded by their session's id,
never from the factories' shared one: adding them changes no other row of any scenario.

Times follow the lifecycle: created just after the session, then offered, then accepted,
all before now (and an accepted assignment before its session started); an open offer has
not expired yet, an expired one has.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

import factory

from factories.base import BaseFactory, RelatedRows, new_uuid
from factories.context import current_clock, rng
from factories.mechanics import MechanicFactory
from seeding.domain.lifecycle import REQUEST_TTL
from seeding.domain.schema import SessionAssignment
from seeding.domain.vocabularies import MATCH_REASONS, PRIORITY_BROADCAST_METADATA
from seeding.errors import FactoryRuleError

#: The session statuses whose session, without a mechanic, is queued for all mechanics.
QUEUED_SESSION_STATUSES = ("pending", "waiting")
#: The session statuses whose session, with a mechanic, is that mechanic's accepted one.
ACCEPTED_SESSION_STATUSES = ("pending", "waiting", "live")

#: The statuses whose assignment is its session's mechanic's (the mechanic id is the session's).
SESSION_MECHANIC_STATUSES = ("accepted", "completed")
#: The statuses of an assignment offered to one mechanic, who is not yet the session's.
OFFERED_STATUSES = ("offered", "declined")

#: The session a standalone assignment of each status is made for (when none is passed).
SESSION_STATUS_FOR = {
    "pending_waiver": "pending",
    "queued": "pending",
    "offered": "pending",
    "declined": "pending",
    "accepted": "waiting",
    "expired": "expired",
    "cancelled": "cancelled",
    "completed": "completed",
}

#: How long a mechanic has to answer an offer. guess: no source gives the app's value.
OFFER_TTL = timedelta(minutes=15)

#: The weights of the priorities drawn for an assignment that is not a priority broadcast's.
_PRIORITY_WEIGHTS = (("normal", 8), ("high", 1), ("low", 1))


def automatic_status(session_status: str | None, has_mechanic: bool) -> str | None:
    """Return the status of the assignment a session of that status gets, or None for none.

    A pending or waiting session without a mechanic is queued for every mechanic (the
    queue's unassigned list); a pending, waiting or live session with a mechanic is that
    mechanic's accepted one (the queue's "mine", once the session is waiting or live).
    Other sessions (scheduled, finished, cancelled, ...) get none.
    """
    if has_mechanic:
        return "accepted" if session_status in ACCEPTED_SESSION_STATUSES else None
    return "queued" if session_status in QUEUED_SESSION_STATUSES else None


def _generator(o: Any) -> random.Random:
    """Return the generator an assignment draws from: its own for an automatic one."""
    if not o.automatic:
        return rng()
    seed = hashlib.sha256(b"session_assignment:" + o.session.id.bytes).digest()
    return random.Random(int.from_bytes(seed[:8], "big"))


def _id(o: Any) -> uuid.UUID:
    if not o.automatic:
        return new_uuid(o.id_prefix)
    value = uuid.UUID(int=o.draw.getrandbits(128), version=4)
    digits = (o.id_prefix or "").replace("-", "").lower()
    return uuid.UUID(hex=digits + value.hex[len(digits):]) if digits else value


def _an(status: str) -> str:
    """Return the status with its article: 'an accepted', 'a declined'."""
    return f"{'an' if status[:1] in 'aeiou' else 'a'} {status}"


def _mechanic_id(o: Any) -> uuid.UUID | None:
    given = o.mechanic.id if o.mechanic is not None else None
    if o.status in SESSION_MECHANIC_STATUSES:
        held = o.session.mechanic_id
        if held is None:
            raise FactoryRuleError(
                f"SessionAssignmentFactory: {_an(o.status)} assignment is its session's "
                "mechanic's, and this session has none; pass a session with a mechanic"
            )
        if given is not None and given != held:
            raise FactoryRuleError(
                f"SessionAssignmentFactory: {_an(o.status)} assignment is its session's "
                f"mechanic's ({held}), not {given}'s; leave mechanic out"
            )
        return held  # type: ignore[no-any-return]
    if o.status in OFFERED_STATUSES and given is None:
        raise FactoryRuleError(
            f"SessionAssignmentFactory: {_an(o.status)} assignment was offered to a mechanic; "
            "pass mechanic="
        )
    return given


def _priority(o: Any) -> str:
    metadata = o.session.metadata_ or {}
    if all(metadata.get(k) == v for k, v in PRIORITY_BROADCAST_METADATA.items()):
        return "high"
    values, weights = zip(*_PRIORITY_WEIGHTS, strict=True)
    return str(o.draw.choices(values, weights)[0])


@dataclass(frozen=True)
class _Times:
    created: datetime
    offered: datetime | None
    accepted: datetime | None
    expires: datetime | None
    updated: datetime


def _after(start: datetime, seconds: float, bound: datetime) -> datetime:
    """Return ``start`` plus whole seconds, at most ``bound`` (and never before ``start``)."""
    return max(start, min(start + timedelta(seconds=round(seconds)), bound))


def _between(draw: random.Random, start: datetime, end: datetime) -> datetime:
    """Return an instant from ``start`` to ``end``, to the second (``start`` if none)."""
    span = int((end - start).total_seconds())
    return start + timedelta(seconds=draw.randint(0, span)) if span > 0 else start


def _times(o: Any) -> _Times:
    """Draw the assignment's times: after its session was made, before now, in order."""
    now = current_clock().now
    draw: random.Random = o.draw
    session = o.session
    start = min(session.created_at or now, now)
    bound = now
    if o.status in SESSION_MECHANIC_STATUSES and session.started_at is not None:
        # Accepted before the session started.
        bound = max(start, min(now, session.started_at))
    created = _after(start, draw.uniform(1, 20), bound)
    offered = accepted = expires = None
    updated = created
    if o.status in SESSION_MECHANIC_STATUSES:
        offered = _after(created, draw.uniform(2, 60), bound)
        accepted = _after(offered, draw.uniform(5, 180), bound)
        updated = accepted
        if o.status == "completed" and session.ended_at is not None:
            updated = max(accepted, min(session.ended_at, now))
    elif o.status == "offered":
        # Still open: offered less than the offer's lifetime ago.
        offered = _between(draw, max(created, now - OFFER_TTL * 0.9), now)
        expires = offered + OFFER_TTL
        updated = offered
    elif o.status == "declined":
        offered = _between(draw, created, now)
        expires = offered + OFFER_TTL
        updated = _between(draw, offered, min(expires, now))
    elif o.status == "expired":
        if o.mechanic_id is not None:
            offered = _between(draw, created, max(created, now - OFFER_TTL))
            expires = min(offered + OFFER_TTL, now)
        else:
            # A broadcast nobody took: over when its session's request would have expired.
            expires = min(created + REQUEST_TTL, now)
        updated = expires
    elif o.status == "cancelled":
        if o.mechanic_id is not None:
            offered = _between(draw, created, now)
        asked = offered or created
        updated = _between(draw, asked, min(asked + REQUEST_TTL, now))
    return _Times(created, offered, accepted, expires, updated)


def _is(expression: Any) -> factory.LazyAttribute:
    return factory.LazyAttribute(expression)


class SessionAssignmentFactory(BaseFactory):
    """A session's assignment: queued for all mechanics unless a trait or ``status=`` says.

    Pass ``session=`` (a sessions row; left out, one of a fitting status is made, see
    :data:`SESSION_STATUS_FOR`, queued for all mechanics too for an offer) and, for an offer,
    ``mechanic=``. An accepted or completed assignment is its session's mechanic's. Leave
    ``mechanic`` out (or ``None``) for a broadcast.

    Traits: one per status (``queued``, ``offered``, ``accepted``, ``declined``, ``expired``,
    ``cancelled``, ``completed``, ``pending_waiver``).
    """

    class Meta:
        model = SessionAssignment

    _scenario_params: ClassVar[dict[str, tuple[type, ...]]] = {
        "session_status": (str,),
    }
    _internal_params: ClassVar[frozenset[str]] = frozenset({"draw", "times", "session"})

    class Params:
        # The assignment a session gets by itself (see the module): its own generator.
        automatic = False
        draw = _is(_generator)
        session_status = _is(lambda o: SESSION_STATUS_FOR[o.status])
        session = factory.SubFactory(
            "factories.sessions.SessionFactory",
            status=factory.SelfAttribute("..session_status"),
            mechanic=factory.Maybe(
                _is(lambda s: s.factory_parent.status in SESSION_MECHANIC_STATUSES),
                yes_declaration=factory.SubFactory(MechanicFactory),
                no_declaration=None,
            ),
            # This assignment is the session's own; an offer's session is queued for all too.
            assignment_status=factory.Maybe(
                _is(lambda s: s.factory_parent.status in OFFERED_STATUSES),
                yes_declaration=_is(
                    lambda s: automatic_status(s.status, s.mechanic_id is not None)
                ),
                no_declaration=None,
            ),
        )
        mechanic = factory.Maybe(
            _is(lambda o: o.status in OFFERED_STATUSES),
            yes_declaration=factory.SubFactory(MechanicFactory),
            no_declaration=None,
        )
        times = _is(_times)

        pending_waiver = factory.Trait(status="pending_waiver")
        queued = factory.Trait(status="queued")
        offered = factory.Trait(status="offered")
        accepted = factory.Trait(status="accepted")
        declined = factory.Trait(status="declined")
        expired = factory.Trait(status="expired")
        cancelled = factory.Trait(status="cancelled")
        completed = factory.Trait(status="completed")

    id = _is(_id)
    session_id = _is(lambda o: o.session.id)
    status = "queued"
    mechanic_id = _is(_mechanic_id)
    priority = _is(_priority)
    created_at = _is(lambda o: o.times.created)
    offered_at = _is(lambda o: o.times.offered)
    accepted_at = _is(lambda o: o.times.accepted)
    expires_at = _is(lambda o: o.times.expires)
    match_score = _is(lambda o: o.draw.randint(55, 99) if o.mechanic_id is not None else 0)
    match_reasons = _is(
        lambda o: sorted(o.draw.sample(MATCH_REASONS, o.draw.randint(1, 3)))
        if o.mechanic_id is not None
        else []
    )
    metadata_ = factory.LazyFunction(dict)
    updated_at = _is(lambda o: o.times.updated)

    @classmethod
    def _check(cls, row: Any) -> None:
        """Raise FactoryRuleError when overrides (or an update step) broke the lifecycle."""
        if row.status in (*SESSION_MECHANIC_STATUSES, *OFFERED_STATUSES) and (
            row.mechanic_id is None
        ):
            raise FactoryRuleError(
                f"SessionAssignmentFactory: {_an(row.status)} assignment has a mechanic; "
                "set mechanic_id too (an accepted one: its session's mechanic)"
            )
        if (row.accepted_at is not None) != (row.status in SESSION_MECHANIC_STATUSES):
            state = "has no" if row.accepted_at is None else "has an"
            raise FactoryRuleError(
                f"SessionAssignmentFactory: {_an(row.status)} assignment {state} accepted_at; "
                "only accepted and completed ones have one: set both together"
            )
        times = [t for t in (row.created_at, row.offered_at, row.accepted_at) if t is not None]
        if times != sorted(times):
            raise FactoryRuleError(
                "SessionAssignmentFactory: created_at, offered_at and accepted_at must be in "
                "that order; leave them to the factory"
            )

    @classmethod
    def status_of(cls, kwargs: Mapping[str, Any]) -> str:
        """Return the status an assignment built with ``kwargs`` gets (its traits read too)."""
        status = str(kwargs.get("status", "queued"))
        for name, declaration in cls._meta.parameters.items():
            if isinstance(declaration, factory.Trait) and kwargs.get(name):
                status = str(declaration.overrides.get("status", status))
        return status

    @classmethod
    def plan_relations(cls, kwargs: Mapping[str, Any], relations: dict[str, Any]
                       ) -> dict[str, str]:
        """Return the picks' exclusions: an accepted or completed one needs a session's mechanic.

        The builder's hook, before it resolves the relations a scenario gives. A mechanic
        given for such an assignment must be its session's (the factory says so otherwise).
        """
        if cls.status_of(kwargs) in SESSION_MECHANIC_STATUSES:
            return {"session": "mechanic_id"}
        return {}

    @classmethod
    def complete_relations(cls, kwargs: Mapping[str, Any], resolved: dict[str, Any],
                           rows: RelatedRows) -> None:
        """Offer an offered or declined assignment to a complete mechanic of the scenario.

        The builder's hook, after it resolved the relations a scenario gives; a scenario
        that names no mechanic for an offer gets one of its complete mechanics, when it has
        one, rather than a new one.
        """
        complete = {"complete": True}
        if (
            cls.status_of(kwargs) in OFFERED_STATUSES
            and "mechanic" not in resolved
            and rows.exist("mechanic", complete)
        ):
            resolved["mechanic"] = rows.pick("mechanic", complete)


__all__ = ["SessionAssignmentFactory", "automatic_status"]
