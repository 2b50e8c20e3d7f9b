"""CustomerFactory and VehicleFactory: customers are profiles with ``role = 'customer'``."""

from __future__ import annotations

import factory

from factories.base import BaseFactory, PlacedFactory
from factories.catalog import MAKES, VEHICLE_MODELS
from factories.catalog import vin as make_vin
from factories.context import current_clock, rng
from factories.timeline import signed_up_at
from seeding.contacts import email_address, fictional_phone
from seeding.schema import Profile, Vehicle

#: Each province's main time zone, as the app stores it in ``profiles.timezone``.
TIME_ZONES = {
    "NL": "America/St_Johns",
    "NS": "America/Halifax",
    "PE": "America/Halifax",
    "NB": "America/Moncton",
    "QC": "America/Toronto",
    "ON": "America/Toronto",
    "MB": "America/Winnipeg",
    "SK": "America/Regina",
    "AB": "America/Edmonton",
    "BC": "America/Vancouver",
    "YT": "America/Whitehorse",
    "NT": "America/Yellowknife",
    "NU": "America/Iqaluit",
}


class CustomerFactory(PlacedFactory):
    """A signed-up customer with a full Canadian address, coordinates and accepted terms."""

    class Meta:
        model = Profile

    class Params:
        first_name = factory.Faker("first_name", locale="en_CA")
        last_name = factory.Faker("last_name", locale="en_CA")

    role = "customer"
    full_name = factory.LazyAttribute(lambda o: f"{o.first_name} {o.last_name}")
    email = factory.LazyAttribute(
        lambda o: email_address(o.first_name, o.last_name, unique=o.id.hex[:10])
    )
    phone = factory.LazyAttribute(lambda o: fictional_phone(rng(), o.place.area_code))
    address_line1 = factory.Faker("street_address", locale="en_CA")
    account_type = "individual_customer"
    organization_id = None
    timezone = factory.LazyAttribute(lambda o: TIME_ZONES.get(o.place.province, "America/Toronto"))
    is_18_plus = True
    terms_accepted = True
    waiver_accepted = True
    created_at = factory.LazyFunction(lambda: signed_up_at(rng(), current_clock()))


class VehicleFactory(BaseFactory):
    """A customer's car: a make and model sold in Canada, a recent year, a valid VIN."""

    class Meta:
        model = Vehicle

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
