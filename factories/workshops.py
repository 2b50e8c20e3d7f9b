"""WorkshopFactory: workshops are organizations with ``organization_type = 'workshop'``."""

from __future__ import annotations

from typing import ClassVar

import factory

from factories.base import PlacedFactory
from factories.catalog import WORKSHOP_WORDS
from factories.context import current_clock, rng
from factories.timeline import signed_up_at
from seeding.domain import geography
from seeding.domain.contacts import EMAIL_DOMAIN, fictional_phone, slug
from seeding.domain.schema import Organization


def _coverage(o: object) -> list[str]:
    own = o.postal_code[:3]  # type: ignore[attr-defined]
    letters = o.place.postal_letters  # type: ignore[attr-defined]
    others = {
        f"{rng().choice(letters)}{rng().randint(1, 9)}{rng().choice(geography.INNER_LETTERS)}"
        for _ in range(rng().randint(2, 5))
    }
    return [own, *sorted(others - {own})]


class WorkshopFactory(PlacedFactory):
    """A verified, active workshop in a Canadian city, covering the postal areas around it.

    Traits:
        owner_operated: the one-person shop of an independent mechanic.
        pending_verification: a workshop that signed up and is not verified yet.
    """

    class Meta:
        model = Organization

    _scenario_params: ClassVar[dict[str, tuple[type, ...]]] = {
        "owner_name": (str,),
    }

    class Params:
        owner_name = factory.Faker("last_name", locale="en_CA")
        owner_operated = factory.Trait(
            name=factory.LazyAttribute(lambda o: f"{o.owner_name}'s Auto Repair"),
            mechanic_capacity=1,
            service_radius_km=15,
        )
        pending_verification = factory.Trait(status="pending", verification_status="pending")

    name = factory.LazyAttribute(lambda o: f"{o.owner_name} {rng().choice(WORKSHOP_WORDS)}")
    slug = factory.LazyAttribute(lambda o: f"{slug(o.name)}-{o.id.hex[:6]}")
    email = factory.LazyAttribute(lambda o: f"{o.slug}@{EMAIL_DOMAIN}")
    organization_type = "workshop"
    phone = factory.LazyAttribute(lambda o: fictional_phone(rng(), o.place.area_code))
    address = factory.Faker("street_address", locale="en_CA")
    status = "active"
    verification_status = "verified"
    coverage_postal_codes = factory.LazyAttribute(_coverage)
    service_radius_km = factory.LazyFunction(lambda: rng().choice((10, 15, 25, 40)))
    mechanic_capacity = factory.LazyFunction(lambda: rng().randint(2, 12))
    created_at = factory.LazyFunction(lambda: signed_up_at(rng(), current_clock()))
