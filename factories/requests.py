"""SessionRequestFactory: a customer's request in any status, with the lifecycle it implies.

Status drives the rest: a mechanic and ``accepted_at`` exactly when the status implies them,
a sessions row of a fitting status for accepted, completed and cancelled-after-assignment
requests, an ``expires_at`` that fits pending and expired ones, and routing fields that agree
with ``routing_type``.

A priority broadcast is asked for as a routing (the ``priority_broadcast`` trait, or
``routing_type='priority_broadcast'``) and built as the app stores it: ``routing_type`` is
'broadcast' (the column's CHECK knows no other name for it), with ``preferred_mechanic_id``,
``priority_window_minutes`` and ``priority_notified_at`` set; the session the request starts,
if any, has ``{"routing_type": "priority_broadcast"}`` in its ``metadata``, where the app's
code keeps that name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

import factory

from factories.base import BaseFactory, RelatedRows
from factories.catalog import CONCERN_KEYWORDS
from factories.context import current_clock, rng
from factories.customers import CustomerFactory, VehicleFactory
from factories.mechanics import MechanicFactory
from factories.sessions import SessionFactory
from factories.timeline import local_zone, plus_minutes, request_created_at, response_minutes
from factories.workshops import WorkshopFactory
from seeding.domain.lifecycle import (
    ASSIGNED_STATUSES,
    OPEN_SESSION_STATUSES,
    PRIORITY_WINDOW_MINUTES,
    REQUEST_TTL,
    SESSION_STATUSES_FOR_REQUEST,
)
from seeding.domain.plans import plans_for
from seeding.domain.schema import SessionRequest
from seeding.domain.vocabularies import CHECKED_FOLLOW_UP_TYPES, SESSION_TYPES
from seeding.errors import FactoryRuleError

ROUTED_TO_WORKSHOP = ("workshop_only", "hybrid")

#: The routing traits, in the order a request's relations look for them (the first one wins).
ROUTING_TRAITS = ("workshop_only", "hybrid", "priority_broadcast")

#: The routing a scenario asks for that the app stores as a 'broadcast' (see the module).
PRIORITY_BROADCAST = "priority_broadcast"


def _is(expression: Any) -> factory.LazyAttribute:
    return factory.LazyAttribute(expression)


def _session_status(o: Any) -> str | None:
    fitting = SESSION_STATUSES_FOR_REQUEST.get(o.status)
    if not fitting or not o.assigned:
        return None
    return fitting[0]


def _workshop_id(o: Any) -> Any:
    if o.routing_type == "workshop_only" and o.workshop is not None:
        return o.workshop.id
    return o.mechanic.workshop_id if o.mechanic is not None else None


class SessionRequestFactory(BaseFactory):
    """A session request; pending unless a trait or ``status=`` says otherwise.

    Related rows are passed as objects (``customer=``, ``mechanic=``, ``vehicle=``,
    ``workshop=``, ``preferred_mechanic=``, ``session=``, ``parent_session=``); left out,
    they are made.

    Traits:
        pending, accepted, completed, expired: that status, with its lifecycle.
        cancelled_before_assignment: cancelled while no mechanic had accepted.
        cancelled_after_assignment: cancelled after a mechanic accepted (a cancelled session).
        workshop_only, hybrid: that routing, with its workshop.
        priority_broadcast: a broadcast offered first to a preferred mechanic (see the
            module); ``routing_type='priority_broadcast'`` is the same.
        follow_up: a follow-up of an earlier completed session of the same customer.
        brand_specialist: asks for a specialist of the vehicle's make.
        urgent: ``is_urgent``.
    """

    class Meta:
        model = SessionRequest

    _scenario_params: ClassVar[dict[str, tuple[type, ...]]] = {
        "with_brand": (str,),
        "type": (str,),
        "session_status": (str,),
        "after_assignment": (bool,),
        "assigned": (bool,),
        "response_minutes": (int, float),
        "ends_before": (datetime,),
    }
    _internal_params: ClassVar[frozenset[str]] = frozenset({"session", "parent_mechanic"})

    class Params:
        customer = factory.SubFactory(CustomerFactory)
        vehicle = factory.SubFactory(VehicleFactory, customer=factory.SelfAttribute("..customer"))
        # Whether a cancelled request had a mechanic before it was cancelled.
        after_assignment = False
        assigned = _is(
            lambda o: o.status in ASSIGNED_STATUSES
            or (o.status == "cancelled" and o.after_assignment)
        )
        workshop = factory.Maybe(
            _is(lambda o: o.routing_type in ROUTED_TO_WORKSHOP),
            yes_declaration=factory.SubFactory(WorkshopFactory),
            no_declaration=None,
        )
        mechanic = factory.Maybe(
            _is(lambda o: o.assigned and o.routing_type == "workshop_only"),
            yes_declaration=factory.SubFactory(
                MechanicFactory,
                workshop=True,
                organization=factory.SelfAttribute("..workshop"),
                with_brand=factory.SelfAttribute("..requested_brand"),
            ),
            no_declaration=factory.Maybe(
                "assigned",
                yes_declaration=factory.SubFactory(
                    MechanicFactory, with_brand=factory.SelfAttribute("..requested_brand")
                ),
                no_declaration=None,
            ),
        )
        # A priority broadcast (stored as a 'broadcast' with the priority columns set).
        priority = False
        preferred_mechanic = factory.Maybe(
            "priority",
            yes_declaration=factory.Maybe(
                _is(lambda o: o.mechanic is not None),
                yes_declaration=factory.SelfAttribute("mechanic"),
                no_declaration=factory.SubFactory(MechanicFactory),
            ),
            no_declaration=None,
        )
        response_minutes = factory.LazyFunction(lambda: response_minutes(rng()))
        session_status = _is(_session_status)
        session = factory.Maybe(
            _is(lambda o: o.session_status is not None),
            yes_declaration=factory.SubFactory(
                SessionFactory,
                customer=factory.SelfAttribute("..customer"),
                mechanic=factory.SelfAttribute("..mechanic"),
                type=factory.SelfAttribute("..session_type"),
                plan=factory.SelfAttribute("..plan_code"),
                status=factory.SelfAttribute("..session_status"),
                priority_broadcast=factory.SelfAttribute("..priority"),
                # A session starts when its request is accepted (or, for a request whose
                # accepted_at was left out on purpose, when it was made).
                created_at=factory.LazyAttribute(
                    lambda s: s.factory_parent.accepted_at or s.factory_parent.created_at
                ),
            ),
            no_declaration=None,
        )
        # Who ran the earlier session a follow-up refers to: the request's mechanic by default.
        parent_mechanic = factory.LazyAttribute(lambda o: o.mechanic or o.preferred_mechanic)
        parent_session = factory.Maybe(
            "is_follow_up",
            yes_declaration=factory.SubFactory(
                SessionFactory,
                customer=factory.SelfAttribute("..customer"),
                status="completed",
                ends_before=factory.SelfAttribute("..created_at"),
                mechanic=factory.Maybe(
                    factory.LazyAttribute(lambda s: s.factory_parent.parent_mechanic is not None),
                    yes_declaration=factory.SelfAttribute("..parent_mechanic"),
                    no_declaration=factory.SubFactory(MechanicFactory),
                ),
            ),
            no_declaration=None,
        )

        pending = factory.Trait(status="pending")
        accepted = factory.Trait(status="accepted")
        completed = factory.Trait(status="completed")
        expired = factory.Trait(status="expired")
        cancelled_before_assignment = factory.Trait(status="cancelled")
        cancelled_after_assignment = factory.Trait(status="cancelled", after_assignment=True)
        workshop_only = factory.Trait(routing_type="workshop_only")
        hybrid = factory.Trait(routing_type="hybrid")
        priority_broadcast = factory.Trait(priority=True, routing_type="broadcast")
        follow_up = factory.Trait(is_follow_up=True)
        brand_specialist = factory.Trait(request_type="brand_specialist")
        urgent = factory.Trait(is_urgent=True)

    customer_id = _is(lambda o: o.customer.id)
    customer_name = _is(lambda o: o.customer.full_name)
    customer_email = _is(lambda o: o.customer.email)
    customer_city = _is(lambda o: o.customer.city)
    customer_country = _is(lambda o: o.customer.country)
    customer_postal_code = _is(lambda o: o.customer.postal_code)
    session_type = factory.LazyFunction(lambda: rng().choice(SESSION_TYPES))
    plan_code = _is(lambda o: rng().choice(plans_for(o.session_type)).code)
    status = "pending"
    # In the clock's window with the marketplace's rhythm, in the customer's local time.
    created_at = _is(
        lambda o: request_created_at(
            rng(), current_clock(), o.status, o.assigned, o.session_status,
            zone=local_zone(getattr(o.customer, "province", None)),
        )
    )
    accepted_at = _is(
        lambda o: plus_minutes(o.created_at, o.response_minutes) if o.assigned else None
    )
    expires_at = _is(lambda o: o.created_at + REQUEST_TTL)
    mechanic_id = _is(lambda o: o.mechanic.id if o.mechanic is not None else None)
    session_id = _is(lambda o: o.session.id if o.session is not None else None)
    vehicle_id = _is(lambda o: o.vehicle.id if o.vehicle is not None else None)
    routing_type = "broadcast"
    workshop_id = _is(_workshop_id)
    preferred_workshop_id = _is(
        lambda o: o.workshop.id
        if o.workshop is not None and o.routing_type in ROUTED_TO_WORKSHOP
        else None
    )
    preferred_mechanic_id = _is(
        lambda o: o.preferred_mechanic.id if o.preferred_mechanic is not None else None
    )
    priority_window_minutes = _is(lambda o: PRIORITY_WINDOW_MINUTES if o.priority else None)
    priority_notified_at = _is(
        lambda o: plus_minutes(o.created_at, rng().uniform(0.05, 0.5)) if o.priority else None
    )
    request_type = "general"
    requested_brand = _is(
        lambda o: o.vehicle.make
        if o.request_type == "brand_specialist" and o.vehicle is not None
        else None
    )
    is_follow_up = False
    # The migrations' CHECK values: the app code's own (quick_question, ...) fail it.
    follow_up_type = _is(
        lambda o: rng().choice(CHECKED_FOLLOW_UP_TYPES) if o.is_follow_up else None
    )
    parent_session_id = _is(lambda o: o.parent_session.id if o.parent_session is not None else None)
    extracted_keywords = factory.LazyFunction(
        lambda: sorted(rng().sample(CONCERN_KEYWORDS, rng().randint(1, 3)))
    )
    matching_score = _is(lambda o: round(rng().uniform(55, 99), 1) if o.assigned else None)
    prefer_local_mechanic = factory.LazyFunction(lambda: rng().random() < 0.3)
    is_urgent = False

    @classmethod
    def after_update(cls, kind: str, rows: Sequence[Any], related: RelatedRows) -> None:
        """Copy an updated customer's values again into their requests' ``customer_*``."""
        if kind != "customer":
            return
        changed = {row.id for row in rows}
        for request in related.of_kind("session_request"):
            if request.customer_id in changed:
                profile: Any = related.get(request.customer_id)
                request.customer_name = profile.full_name
                request.customer_email = profile.email
                request.customer_city = profile.city
                request.customer_country = profile.country
                request.customer_postal_code = profile.postal_code

    @classmethod
    def status_of(cls, kwargs: Mapping[str, Any]) -> tuple[str, bool]:
        """Return the status a request built with ``kwargs`` gets, and whether it is assigned.

        The traits that set a status are read from the factory's own declarations.
        """
        status = str(kwargs.get("status", "pending"))
        after = bool(kwargs.get("after_assignment"))
        for name, declaration in cls._meta.parameters.items():
            if isinstance(declaration, factory.Trait) and kwargs.get(name):
                overrides = declaration.overrides
                if "status" in overrides:
                    status = str(overrides["status"])
                    after = after or bool(overrides.get("after_assignment"))
        assigned = status in ASSIGNED_STATUSES or (status == "cancelled" and after)
        return status, assigned

    @staticmethod
    def routing_of(kwargs: Mapping[str, Any]) -> str:
        """Return the routing a request built with ``kwargs`` asks for (priority_broadcast too)."""
        for trait in ROUTING_TRAITS:
            if kwargs.get(trait):
                return trait
        if kwargs.get("priority"):
            return PRIORITY_BROADCAST
        return str(kwargs.get("routing_type", "broadcast"))

    #: The relation whose row may hold one open session (a pick avoids those that have one).
    _open_session_relation: ClassVar[str] = "customer"

    @classmethod
    def opens_session(cls, kwargs: Mapping[str, Any]) -> bool:
        """Return whether a request built with ``kwargs`` starts an open session.

        Open: pending, waiting, live or scheduled (:data:`OPEN_SESSION_STATUSES`); the app
        allows its customer one such session at a time.
        """
        status, assigned = cls.status_of(kwargs)
        if not assigned:
            return False
        if "session_status" in kwargs:
            session_status = kwargs["session_status"]
        else:
            fitting = SESSION_STATUSES_FOR_REQUEST.get(status)
            session_status = fitting[0] if fitting else None
        return session_status in OPEN_SESSION_STATUSES

    @classmethod
    def _generate(cls, strategy: str, params: dict[str, Any]) -> Any:
        # A priority broadcast asked for by its routing is the trait: a 'broadcast' row.
        if params.get("routing_type") == PRIORITY_BROADCAST:
            params["routing_type"] = "broadcast"
            params[PRIORITY_BROADCAST] = True
        if params.get(PRIORITY_BROADCAST) or params.get("priority"):
            other = params.get("routing_type") not in (None, "broadcast")
            routed = [t for t in ROUTED_TO_WORKSHOP if params.get(t)]
            if other or routed:
                shown = repr(params["routing_type"]) if other else routed[0]
                raise FactoryRuleError(
                    f"SessionRequestFactory: a priority broadcast is a broadcast, but routing "
                    f"{shown} was asked for too; drop one of the two"
                )
        return super()._generate(strategy, params)

    @classmethod
    def plan_relations(cls, kwargs: Mapping[str, Any], relations: dict[str, Any]
                       ) -> dict[str, str]:
        """Drop the relations the request's status rules out; return the picks' exclusions.

        The builder's hook, before it resolves the relations a scenario gives: an unassigned
        request has no mechanic, and a workshop-only request's mechanic works for a workshop.

        Returns:
            For a relation, the column its picked row must have set.

        """
        _, assigned = cls.status_of(kwargs)
        if not assigned:
            relations.pop("mechanic", None)
        return {"mechanic": "workshop_id"} if cls.routing_of(kwargs) == "workshop_only" else {}

    @classmethod
    def complete_relations(cls, kwargs: Mapping[str, Any], resolved: dict[str, Any],
                           rows: RelatedRows) -> None:
        """Add the related rows the request's routing and follow-up imply, and a vehicle.

        The builder's hook, after it resolved the relations a scenario gives: a request
        routed to a workshop gets one, a priority broadcast its preferred mechanic, a follow-up
        the mechanic of its earlier session, and a customer's request one of their vehicles.
        """
        routing = cls.routing_of(kwargs)
        complete = {"complete": True}
        mechanic = resolved.get("mechanic")
        if routing == "workshop_only" and mechanic is not None and "workshop" not in resolved:
            resolved["workshop"] = rows.get(mechanic.workshop_id)
        if routing in ROUTED_TO_WORKSHOP and "workshop" not in resolved and rows.exist("workshop"):
            resolved["workshop"] = rows.pick("workshop")
        if routing == "priority_broadcast" and "preferred_mechanic" not in resolved:
            if mechanic is not None:
                resolved["preferred_mechanic"] = mechanic
            elif rows.exist("mechanic", complete):
                resolved["preferred_mechanic"] = rows.pick("mechanic", complete)
        follow_up = kwargs.get("follow_up") or kwargs.get("is_follow_up")
        if (
            follow_up
            and resolved.get("mechanic") is None
            and resolved.get("preferred_mechanic") is None
            and rows.exist("mechanic", complete)
        ):
            resolved["parent_mechanic"] = rows.pick("mechanic", complete)
        customer = resolved.get("customer")
        if customer is not None and "vehicle" not in resolved:
            vehicles = rows.owned("vehicle", customer.id)
            if vehicles:
                resolved["vehicle"] = rows.choice(vehicles)
