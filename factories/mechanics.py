"""MechanicFactory: complete mechanics of the three types, exactly as the app classifies them."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar

import factory

from factories.base import PlacedFactory, RelatedRows, new_uuid
from factories.catalog import MAKES, SPECIALIZATIONS
from factories.context import current_clock, rng
from factories.timeline import signed_up_at
from factories.workshops import WorkshopFactory
from seeding.domain import geography
from seeding.domain.contacts import email_address, fictional_phone
from seeding.domain.mechanic_types import ACCOUNT_TYPE_OF
from seeding.domain.schema import Mechanic
from seeding.domain.vocabularies import MECHANIC_TYPES
from seeding.errors import FactoryRuleError

#: What each type looks like in the app's other columns.
SERVICE_TIER_OF = {
    "virtual": "virtual_only",
    "workshop": "workshop_partner",
    "independent": "licensed_mobile",
}
#: ``participation_mode`` says which sessions a mechanic takes: micro-sessions (a few minutes
#: of advice; a workshop mechanic takes them on shift, between bay jobs) or full ones (every
#: plan this tool seeds: chat10, video15, video30, diagnostic). Every type takes full sessions,
#: so none is 'micro_only'; and none of them is kept from micro-sessions either ('full_only'):
#: a virtual mechanic has no bay to be kept at, an independent one takes them at any time, a
#: workshop one on shift. So 'both' for all three: the column's default and what the app's
#: code writes (its seeder's 'virtual_only' and 'physical_only' were refused by the CHECK).
#: Pass ``participation_mode=`` for the other two.
PARTICIPATION_OF = {"virtual": "both", "workshop": "both", "independent": "both"}


def _place(o: Any) -> geography.City:
    # Workshop and independent mechanics work where their workshop is.
    if o.organization is not None and o.organization.city in geography.CITIES_BY_NAME:
        return geography.CITIES_BY_NAME[o.organization.city]
    if o.in_city:
        return geography.city_named(o.in_city)
    return geography.pick_city(rng(), o.in_province)


def _brands(o: Any) -> list[str]:
    if o.specialist_tier == "general" and not o.with_brand:
        return []
    brands = set(rng().sample(MAKES, rng().randint(1, 2)))
    if o.with_brand:
        brands.add(o.with_brand)
    return sorted(brands)


def _red_seal_number(o: Any) -> str:
    year = current_clock().now.year - rng().randint(0, max(o.years_of_experience or 1, 1))
    return f"RS-{o.province}-{year}-{rng().randint(100000, 999999)}"


class MechanicFactory(PlacedFactory):
    """A mechanic whose profile is complete: location, experience, Red Seal, specializations.

    The type is drawn at random unless a trait names it.

    Traits:
        virtual: no workshop (``service_tier = 'virtual_only'``).
        workshop: employed by a workshop (``account_type = 'workshop_mechanic'``); pass the
            workshop as ``organization=`` or one is made.
        independent: owner-operator of their own shop (``account_type = 'individual_mechanic'``
            with ``workshop_id`` set).
        incomplete: a profile left unfinished, as the audit found four: no city, province,
            postal code, coordinates or experience, score under 80, cannot accept sessions.
    """

    class Meta:
        model = Mechanic

    _scenario_params: ClassVar[dict[str, tuple[type, ...]]] = {
        "first_name": (str,),
        "last_name": (str,),
        "with_brand": (str,),
        "mechanic_type": (str,),
        "as_independent": (bool,),
        "as_virtual": (bool,),
        "as_workshop": (bool,),
    }

    class Params:
        # One flag per type trait: traits that all set one parameter would overwrite each other.
        as_virtual = False
        as_workshop = False
        as_independent = False
        mechanic_type = factory.LazyAttribute(
            lambda o: "virtual"
            if o.as_virtual
            else "workshop"
            if o.as_workshop
            else "independent"
            if o.as_independent
            else rng().choice(MECHANIC_TYPES)
        )
        organization = factory.Maybe(
            factory.LazyAttribute(lambda o: o.mechanic_type == "workshop"),
            yes_declaration=factory.SubFactory(WorkshopFactory),
            no_declaration=factory.Maybe(
                factory.LazyAttribute(lambda o: o.mechanic_type == "independent"),
                yes_declaration=factory.SubFactory(
                    WorkshopFactory,
                    owner_operated=True,
                    owner_name=factory.SelfAttribute("..last_name"),
                ),
                no_declaration=None,
            ),
        )
        place = factory.LazyAttribute(_place)
        first_name = factory.Faker("first_name", locale="en_CA")
        last_name = factory.Faker("last_name", locale="en_CA")
        with_brand = None

        virtual = factory.Trait(as_virtual=True)
        workshop = factory.Trait(as_workshop=True)
        independent = factory.Trait(as_independent=True)
        incomplete = factory.Trait(
            city=None,
            province=None,
            postal_code=None,
            latitude=None,
            longitude=None,
            years_of_experience=None,
            red_seal_certified=False,
            red_seal_number=None,
            red_seal_province=None,
            red_seal_expiry_date=None,
            specializations=factory.LazyFunction(list),
            brand_specializations=factory.LazyFunction(list),
            profile_completion_score=factory.LazyFunction(lambda: rng().randint(15, 45)),
            application_status="pending",
            about_me=None,
        )

    user_id = factory.LazyFunction(new_uuid)
    name = factory.LazyAttribute(lambda o: f"{o.first_name} {o.last_name}")
    email = factory.LazyAttribute(
        lambda o: email_address(o.first_name, o.last_name, unique=o.id.hex[:10])
    )
    phone = factory.LazyAttribute(lambda o: fictional_phone(rng(), o.place.area_code))
    account_type = factory.LazyAttribute(lambda o: ACCOUNT_TYPE_OF[o.mechanic_type])
    workshop_id = factory.LazyAttribute(lambda o: o.organization.id if o.organization else None)
    service_tier = factory.LazyAttribute(lambda o: SERVICE_TIER_OF[o.mechanic_type])
    participation_mode = factory.LazyAttribute(lambda o: PARTICIPATION_OF[o.mechanic_type])
    application_status = "approved"
    profile_completion_score = factory.LazyFunction(lambda: rng().randint(80, 100))
    can_accept_sessions = factory.LazyAttribute(
        lambda o: o.profile_completion_score >= 80 and o.application_status == "approved"
    )
    is_available = factory.LazyAttribute(lambda o: o.can_accept_sessions and rng().random() < 0.8)
    is_online = factory.LazyAttribute(lambda o: o.is_available and rng().random() < 0.6)
    years_of_experience = factory.LazyFunction(lambda: rng().randint(2, 30))
    red_seal_certified = True
    red_seal_number = factory.LazyAttribute(_red_seal_number)
    red_seal_province = factory.SelfAttribute("province")
    red_seal_expiry_date = factory.LazyFunction(
        lambda: current_clock().now.date() + timedelta(days=rng().randint(90, 5 * 365))
    )
    specializations = factory.LazyFunction(
        lambda: sorted(rng().sample(SPECIALIZATIONS, rng().randint(2, 4)))
    )
    specialist_tier = factory.LazyAttribute(
        lambda o: "brand"
        if o.with_brand
        else rng().choices(("general", "brand", "master"), (6, 3, 1))[0]
    )
    brand_specializations = factory.LazyAttribute(_brands)
    rating = None
    completed_sessions = 0
    about_me = factory.LazyAttribute(
        lambda o: (
            "Red Seal Automotive Service Technician, "
            f"{o.years_of_experience} years in {o.city}."
        )
        if o.years_of_experience and o.city
        else None
    )
    hourly_rate = factory.LazyFunction(lambda: Decimal(rng().randrange(6000, 16000, 500)) / 100)
    created_at = factory.LazyFunction(lambda: signed_up_at(rng(), current_clock()))

    @classmethod
    def _generate(cls, strategy: str, params: dict[str, Any]) -> Any:
        # A mechanic given a workshop is a workshop mechanic unless told otherwise; a virtual
        # one with a workshop would be shown by the app as independent.
        organization = params.get("organization")
        if organization is not None:
            if params.get("virtual") or params.get("mechanic_type") == "virtual":
                raise FactoryRuleError(
                    "MechanicFactory: a virtual mechanic has no workshop, but organization= was "
                    "given; drop it, or ask for workshop=True or independent=True"
                )
            if not params.get("independent") and "mechanic_type" not in params:
                params.setdefault("workshop", True)
        return super()._generate(strategy, params)

    @classmethod
    def after_build(cls, related: RelatedRows) -> None:
        """Set each mechanic's ``completed_sessions`` and ``rating`` from the sessions built."""
        ratings: dict[Any, list[int]] = defaultdict(list)
        completed: dict[Any, int] = defaultdict(int)
        for session in related.of_kind("session"):
            if session.status == "completed" and session.mechanic_id is not None:
                completed[session.mechanic_id] += 1
                if session.rating is not None:
                    ratings[session.mechanic_id].append(session.rating)
        for mechanic in related.of_kind("mechanic"):
            mechanic.completed_sessions = completed.get(mechanic.id, 0)
            scores = ratings.get(mechanic.id)
            mechanic.rating = (
                (Decimal(sum(scores)) / len(scores)).quantize(Decimal("0.01")) if scores else None
            )
