"""CustomerFactory and VehicleFactory: customers are profiles with ``role = 'customer'``."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, ClassVar

import factory

from factories.base import BaseFactory, PlacedFactory
from factories.catalog import MAKES, VEHICLE_MODELS
from factories.catalog import vin as make_vin
from factories.context import current_clock, rng
from factories.timeline import signed_up_at
from seeding.domain.contacts import email_address, fictional_phone
from seeding.domain.geography import time_zone_of
from seeding.domain.schema import Profile, Vehicle
from seeding.domain.vocabularies import CUSTOMER_ROLE, PROVINCE_NAMES
from seeding.errors import FactoryRuleError


def state_province(province: str | None) -> str | None:
    """Return ``profiles.state_province`` for a province code: its name ('ON' → 'Ontario')."""
    return PROVINCE_NAMES.get(province, province) if province is not None else None


def postal_zip_code(postal_code: str | None) -> str | None:
    """Return ``profiles.postal_zip_code`` for a postal code: 'A1A 1A1', upper case, one space."""
    if postal_code is None:
        return None
    compact = postal_code.replace(" ", "").upper()
    return f"{compact[:3]} {compact[3:]}" if len(compact) == 6 else postal_code


#: The profile columns that repeat the place in the app's other form, and what each follows.
DERIVED_PLACE: dict[str, tuple[str, Any]] = {
    "state_province": ("province", state_province),
    "postal_zip_code": ("postal_code", postal_zip_code),
}


class CustomerFactory(PlacedFactory):
    """A signed-up customer with a full Canadian address, coordinates and accepted terms.

    The place is written in both of the app's forms: ``province`` 'ON' and ``postal_code``
    (what the requests copy and the report's geography reads), and ``state_province``
    'Ontario' and ``postal_zip_code`` 'K1P 5G4' (what the customer's profile screen reads).
    """

    class Meta:
        model = Profile

    _scenario_params: ClassVar[dict[str, tuple[type, ...]]] = {
        "first_name": (str,),
        "last_name": (str,),
    }

    class Params:
        first_name = factory.Faker("first_name", locale="en_CA")
        last_name = factory.Faker("last_name", locale="en_CA")

    role = CUSTOMER_ROLE
    full_name = factory.LazyAttribute(lambda o: f"{o.first_name} {o.last_name}")
    email = factory.LazyAttribute(
        lambda o: email_address(o.first_name, o.last_name, unique=o.id.hex[:10])
    )
    phone = factory.LazyAttribute(lambda o: fictional_phone(rng(), o.place.area_code))
    address_line1 = factory.Faker("street_address", locale="en_CA")
    state_province = factory.LazyAttribute(lambda o: state_province(o.province))
    postal_zip_code = factory.LazyAttribute(lambda o: postal_zip_code(o.postal_code))
    account_type = "individual_customer"
    organization_id = None
    # Each province's main time zone, as the app stores it (seeding.domain.geography.TIME_ZONES).
    timezone = factory.LazyAttribute(lambda o: time_zone_of(o.place.province))
    is_18_plus = True
    terms_accepted = True
    waiver_accepted = True
    created_at = factory.LazyFunction(lambda: signed_up_at(rng(), current_clock()))

    @classmethod
    def _check(cls, row: Any) -> None:
        super()._check(row)
        for column, (source, derive) in DERIVED_PLACE.items():
            expected = derive(getattr(row, source))
            if getattr(row, column) != expected:
                raise FactoryRuleError(
                    f"CustomerFactory: {column} {getattr(row, column)!r} does not match "
                    f"{source} {getattr(row, source)!r} (expected {expected!r}); leave "
                    f"{column} to the factory, it follows {source}"
                )

    @classmethod
    def derive(cls, row: Any, given: Collection[str] = ()) -> None:
        """Make a changed row's derived columns follow the ones they repeat (an update step).

        Args:
            row: A customer built earlier, whose place an update changed.
            given: The columns the update set itself; those are left as they are (and
                checked).

        """
        for column, (source, derive) in DERIVED_PLACE.items():
            if column not in given:
                setattr(row, column, derive(getattr(row, source)))


class VehicleFactory(BaseFactory):
    """A customer's car: a make and model sold in Canada, a recent year, a valid VIN."""

    class Meta:
        model = Vehicle

    #: The attribute naming the row's owner: the builder indexes vehicles by customer.
    _owner: ClassVar[str] = "customer_id"

    class Params:
        customer = factory.SubFactory(CustomerFactory)

    customer_id = factory.LazyAttribute(lambda o: o.customer.id)
    make = factory.LazyFunction(lambda: rng().choice(MAKES))
    model = factory.LazyAttribute(lambda o: rng().choice(VEHICLE_MODELS.get(o.make, ("Sedan",))))
    year = factory.LazyFunction(lambda: current_clock().now.year - rng().randint(0, 15))
    vin = factory.LazyAttribute(lambda o: make_vin(rng(), o.year))
    created_at = factory.LazyAttribute(
        lambda o: max(o.customer.created_at, signed_up_at(rng(), current_clock()))
    )
