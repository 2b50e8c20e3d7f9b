"""SessionFactory: the sessions row an accepted request starts, in any of its statuses."""

from __future__ import annotations

import string
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

import factory

from factories.assignments import automatic_status
from factories.base import BaseFactory
from factories.context import current_clock, rng
from factories.customers import CustomerFactory
from factories.mechanics import MechanicFactory
from factories.timeline import (
    FINISHED_ROOM,
    MAX_START_DELAY_MINUTES,
    in_history,
    local_zone,
    plus_minutes,
)
from seeding.domain.lifecycle import (
    FINISHED_SESSION_STATUSES,
    OPEN_SESSION_STATUSES,
    RUNNING_SESSION_STATUSES,
)
from seeding.domain.plans import PLANS_BY_CODE, plans_for
from seeding.domain.schema import Session
from seeding.domain.vocabularies import PRIORITY_BROADCAST_METADATA, SESSION_TYPES

_STRIPE_ALPHABET = string.ascii_letters + string.digits


def _created_at(o: Any) -> Any:
    clock = current_clock()
    if o.ends_before is not None:
        # A parent session of a follow-up: over well before the follow-up was asked for.
        return o.ends_before - timedelta(hours=rng().uniform(6, 14 * 24))
    if o.status in RUNNING_SESSION_STATUSES or o.status in ("waiting", "pending"):
        return clock.now - timedelta(minutes=rng().uniform(5, 30))
    # Over: in the clock's window, with the marketplace's rhythm in the customer's local time.
    zone = local_zone(getattr(o.customer, "province", None))
    return in_history(rng(), clock, zone, room=FINISHED_ROOM)


def _started_at(o: Any) -> Any:
    if o.status in FINISHED_SESSION_STATUSES or o.status in RUNNING_SESSION_STATUSES:
        return plus_minutes(o.created_at, rng().uniform(1, MAX_START_DELAY_MINUTES / 2))
    return None


def _duration(o: Any) -> int | None:
    if o.status not in FINISHED_SESSION_STATUSES:
        return None
    plan_minutes = PLANS_BY_CODE[o.plan].minutes
    return rng().randint(max(plan_minutes // 3, 5), plan_minutes)


def _metadata(o: Any) -> dict[str, Any]:
    # The app's session factory writes the routing it was asked for into metadata; the only
    # routing kept nowhere else is a priority broadcast, so it is the one written here.
    metadata: dict[str, Any] = {"plan_name": PLANS_BY_CODE[o.plan].name}
    if o.priority_broadcast:
        metadata.update(PRIORITY_BROADCAST_METADATA)
    return metadata


def _scheduled_start(o: Any) -> Any:
    if o.status != "scheduled":
        return None
    return current_clock().now + timedelta(hours=rng().randint(2, 72))


class SessionFactory(BaseFactory):
    """A session between a customer and a mechanic; ``completed`` ones ran, ended and were rated.

    Pass ``status=`` (any of the sessions vocabulary); start, end, duration and rating follow.
    Pass ``ends_before=`` to place a finished session before an instant (a follow-up's parent),
    ``priority_broadcast=True`` for the session of a priority broadcast (its ``metadata`` says
    so, as the app's does).

    A customer has at most one open session (pending, waiting, live or scheduled) in the app;
    the scenario builder keeps that over all its rows (see :meth:`opens_session`).

    A session gets the assignment the mechanic queue reads it by
    (:func:`factories.assignments.automatic_status`): queued for all mechanics when it is
    pending or waiting without a mechanic, its mechanic's accepted one when it is pending,
    waiting or live with one. Pass ``assignment_status=`` to give it another one (any status
    of ``session_assignments``), or ``None`` for none.
    """

    class Meta:
        model = Session

    _scenario_params: ClassVar[dict[str, tuple[type, ...]]] = {
        "type": (str,),
        "ends_before": (datetime,),
    }
    _internal_params: ClassVar[frozenset[str]] = frozenset({"assignment"})

    class Params:
        customer = factory.SubFactory(CustomerFactory)
        mechanic = factory.SubFactory(MechanicFactory)
        ends_before = None
        priority_broadcast = False
        assignment_status = factory.LazyAttribute(
            lambda o: automatic_status(o.status, o.mechanic_id is not None)
        )

    type = factory.LazyFunction(lambda: rng().choice(SESSION_TYPES))
    status = "completed"
    plan = factory.LazyAttribute(lambda o: rng().choice(plans_for(o.type)).code)
    # Unique in the app: it holds the hex of the session's id, which each copy of a tiled
    # scenario rewrites (seeding.db.tiles). The 24 draws are kept, so the seed's stream is too.
    stripe_session_id = factory.LazyAttribute(
        lambda o: "cs_test_" + o.id.hex[:10]
        + "".join(rng().choice(_STRIPE_ALPHABET) for _ in range(24))[10:]
    )
    customer_user_id = factory.LazyAttribute(lambda o: o.customer.id if o.customer else None)
    mechanic_id = factory.LazyAttribute(lambda o: o.mechanic.id if o.mechanic else None)
    workshop_id = factory.LazyAttribute(lambda o: o.mechanic.workshop_id if o.mechanic else None)
    created_at = factory.LazyAttribute(_created_at)
    scheduled_start = factory.LazyAttribute(_scheduled_start)
    scheduled_end = factory.LazyAttribute(
        lambda o: o.scheduled_start + timedelta(minutes=PLANS_BY_CODE[o.plan].minutes)
        if o.scheduled_start
        else None
    )
    started_at = factory.LazyAttribute(_started_at)
    duration_minutes = factory.LazyAttribute(_duration)
    ended_at = factory.LazyAttribute(
        lambda o: o.started_at + timedelta(minutes=o.duration_minutes)
        if o.duration_minutes
        else None
    )
    rating = factory.LazyAttribute(
        lambda o: rng().choices((1, 2, 3, 4, 5), (1, 1, 3, 8, 12))[0]
        if o.status in FINISHED_SESSION_STATUSES
        else None
    )
    metadata_ = factory.LazyAttribute(_metadata)
    # The session's assignment, made after it (see factories.assignments).
    assignment = factory.Maybe(
        "assignment_status",
        yes_declaration=factory.RelatedFactory(
            "factories.assignments.SessionAssignmentFactory",
            factory_related_name="session",
            status=factory.SelfAttribute("..assignment_status"),
            automatic=True,
            # The session's mechanic, if it has one; else a broadcast.
            mechanic=factory.LazyAttribute(
                lambda a: a.factory_parent.mechanic
                if a.factory_parent.mechanic_id is not None
                else None
            ),
        ),
        no_declaration=None,
    )

    #: The relation of a row that opens a session whose row may hold one open session.
    _open_session_relation: ClassVar[str] = "customer"

    @classmethod
    def opens_session(cls, kwargs: Mapping[str, Any]) -> bool:
        """Return whether a session built with ``kwargs`` is open (its customer may have one)."""
        return kwargs.get("status", "completed") in OPEN_SESSION_STATUSES

    @classmethod
    def open_session_holder(cls, row: Any) -> Any | None:
        """Return the customer whose one open session ``row`` is, or None (not open)."""
        if row.status in OPEN_SESSION_STATUSES and row.customer_user_id is not None:
            return row.customer_user_id
        return None
