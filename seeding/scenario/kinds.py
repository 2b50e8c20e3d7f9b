"""The registry of kinds: each kind of row a scenario makes, declared once.

A kind (``workshop``, ``customer``, ``mechanic``, ``vehicle``, ``session_request``,
``session``, ``session_assignment``) is its model, its factory, the names a scenario uses for
it, the relations its factory takes, the closed vocabularies and ranges of its columns, the
extra keys a pick's ``where`` accepts, and the references to it that the app keeps without a
foreign key.
Scenario validation, the planner, the builder, reset, doctor and the report's table list all
derive from :data:`KINDS`. Adding a kind is its model, its factory and one entry here.

The factory is named, not imported: reset, doctor and the report read this registry without
loading factory_boy and Faker (:meth:`Kind.factory` loads it on first use).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import import_module
from types import MappingProxyType
from typing import Any

from seeding.domain import plans, vocabularies
from seeding.domain.mechanic_types import mechanic_type
from seeding.domain.schema import (
    Base,
    Mechanic,
    Organization,
    Profile,
    Session,
    SessionAssignment,
    SessionRequest,
    Vehicle,
)


@dataclass(frozen=True)
class Relation:
    """A related row a kind's factory takes as an object (``customer=``), and its kind."""

    #: The factory's keyword, and the name a scenario writes under ``with:``.
    name: str
    #: The kind of the related row.
    kind: str


@dataclass(frozen=True)
class UndeclaredReference:
    """A column of this kind's table that holds another table's id with no foreign key.

    The app keeps several such references (an auth user's id is also the profile's id).
    Reset treats them as references (a kept row pointing at a deleted one blocks); doctor
    asks for a key only where ``embedded_join`` says the app's embedded joins need one.
    """

    column: str
    #: The table (of the tool's schema) whose ``id`` the column holds.
    table: str
    target_column: str = "id"
    #: Whether the app's PostgREST embedded joins need a foreign key here (doctor adds it).
    embedded_join: bool = False


@dataclass(frozen=True)
class Kind:
    """One kind of row: everything the engine knows about it, in one place."""

    #: The scenario name (``create: session_request``).
    name: str
    model: type[Base]
    #: ``module:Class`` of the factory, loaded on first use.
    factory_path: str
    relations: tuple[Relation, ...] = ()
    #: Scenario-friendly names of factory parameters (``type`` for ``mechanic_type``).
    aliases: Mapping[str, str] = field(default_factory=dict)
    #: Fields whose values come from a closed vocabulary.
    vocabularies: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    #: Columns the table's CHECK constraints hold to a range (inclusive).
    ranges: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    #: Keys a pick's ``where`` accepts beyond the model's columns, and how each is read.
    derived_filters: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    undeclared_references: tuple[UndeclaredReference, ...] = ()
    #: Other names the app gives a column (``vehicles.customer_id`` is its ``user_id``).
    live_names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: For a person, the attribute holding their auth user's id (Supabase's ``auth.users``).
    auth_user: str | None = None
    #: The role a person's auth user carries in its metadata (the app's profile trigger
    #: copies it to ``profiles.role``).
    auth_role: str | None = None

    @property
    def table(self) -> str:
        """Return the name of the kind's table."""
        return str(self.model.__tablename__)

    @cached_property
    def factory(self) -> Any:
        """Return the factory class (imported on first use)."""
        module, _, name = self.factory_path.partition(":")
        return getattr(import_module(module), name)

    def relation(self, name: str) -> Relation | None:
        """Return the relation of that name, if the kind has one."""
        return next((r for r in self.relations if r.name == name), None)

    @property
    def relation_names(self) -> dict[str, str]:
        """Return each relation's name and the kind it points at."""
        return {r.name: r.kind for r in self.relations}


#: The profile completion score from which the app lets a mechanic accept sessions.
COMPLETE_SCORE = 80

_PLACED = {"province": vocabularies.PROVINCES}

#: Every kind, in the order messages list them.
KINDS: Mapping[str, Kind] = MappingProxyType({kind.name: kind for kind in (
    Kind(
        "workshop", Organization, "factories.workshops:WorkshopFactory",
        vocabularies={
            **_PLACED,
            "organization_type": vocabularies.ORGANIZATION_TYPES,
            "status": vocabularies.ORGANIZATION_STATUSES,
            "verification_status": vocabularies.VERIFICATION_STATUSES,
        },
    ),
    Kind(
        "customer", Profile, "factories.customers:CustomerFactory",
        vocabularies={
            **_PLACED,
            "account_type": vocabularies.CUSTOMER_ACCOUNT_TYPES,
            "role": vocabularies.PROFILE_ROLES,
        },
        auth_user="id",
        auth_role="customer",
    ),
    Kind(
        "mechanic", Mechanic, "factories.mechanics:MechanicFactory",
        relations=(Relation("organization", "workshop"),),
        aliases={"type": "mechanic_type"},
        vocabularies={
            **_PLACED,
            "mechanic_type": vocabularies.MECHANIC_TYPES,
            "service_tier": vocabularies.SERVICE_TIERS,
            "specialist_tier": vocabularies.SPECIALIST_TIERS,
            "account_type": vocabularies.MECHANIC_ACCOUNT_TYPES,
            "participation_mode": vocabularies.PARTICIPATION_MODES,
            "application_status": vocabularies.APPLICATION_STATUSES,
            "red_seal_province": vocabularies.PROVINCES,
        },
        ranges={"profile_completion_score": (0, 100)},
        derived_filters={
            "type": lambda row: mechanic_type(row.workshop_id, row.account_type),
            "complete": lambda row: row.profile_completion_score >= COMPLETE_SCORE,
        },
        undeclared_references=(UndeclaredReference("user_id", "profiles"),),
        auth_user="user_id",
        auth_role="mechanic",
    ),
    Kind(
        "vehicle", Vehicle, "factories.customers:VehicleFactory",
        relations=(Relation("customer", "customer"),),
        undeclared_references=(UndeclaredReference("customer_id", "profiles"),),
        live_names={"customer_id": ("user_id",)},
    ),
    Kind(
        "session_request", SessionRequest, "factories.requests:SessionRequestFactory",
        relations=(  # in the order the builder resolves them
            Relation("customer", "customer"),
            Relation("workshop", "workshop"),
            Relation("mechanic", "mechanic"),
            Relation("preferred_mechanic", "mechanic"),
            Relation("vehicle", "vehicle"),
            Relation("parent_session", "session"),
        ),
        vocabularies={
            "status": vocabularies.REQUEST_STATUSES,
            "session_type": vocabularies.SESSION_TYPES,
            # A scenario may ask for a priority broadcast by its routing (see ROUTINGS).
            "routing_type": vocabularies.ROUTINGS,
            "request_type": vocabularies.REQUEST_TYPES,
            "follow_up_type": vocabularies.FOLLOW_UP_TYPES,
            "session_status": vocabularies.SESSION_STATUSES,
            "plan_code": plans.PLAN_CODES,
        },
        undeclared_references=(
            UndeclaredReference("customer_id", "profiles", embedded_join=True),
        ),
    ),
    Kind(
        "session", Session, "factories.sessions:SessionFactory",
        relations=(Relation("customer", "customer"), Relation("mechanic", "mechanic")),
        vocabularies={
            "status": vocabularies.SESSION_STATUSES,
            "type": vocabularies.SESSION_TYPES,
            "plan": plans.PLAN_CODES,
            # The assignment the session gets (see factories.assignments).
            "assignment_status": vocabularies.ASSIGNMENT_STATUSES,
        },
        ranges={"rating": (1, 5)},
        undeclared_references=(UndeclaredReference("customer_user_id", "profiles"),),
    ),
    Kind(
        "session_assignment", SessionAssignment,
        "factories.assignments:SessionAssignmentFactory",
        relations=(Relation("session", "session"), Relation("mechanic", "mechanic")),
        vocabularies={
            "status": vocabularies.ASSIGNMENT_STATUSES,
            "priority": vocabularies.ASSIGNMENT_PRIORITIES,
            "session_status": vocabularies.SESSION_STATUSES,
        },
    ),
)})

#: The scenario names of the kinds, in registry order.
NAMES: tuple[str, ...] = tuple(KINDS)

#: The kind of each model.
KIND_OF_MODEL: Mapping[type[Base], str] = MappingProxyType(
    {kind.model: kind.name for kind in KINDS.values()}
)


def kind(name: str) -> Kind:
    """Return the kind of that scenario name.

    Raises:
        KeyError: When there is no such kind (scenario validation names it first).

    """
    return KINDS[name]
