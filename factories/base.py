"""The base of every factory: deterministic ids, persistence, and the place a row is in."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

import factory
from factory.alchemy import SQLAlchemyModelFactory

from factories.context import bound_session, record, rng
from seeding.domain import geography
from seeding.errors import FactoryRuleError


def new_uuid(prefix: str | None = None) -> uuid.UUID:
    """Return a version-4 uuid drawn from the seeded generator, optionally with a hex prefix.

    Args:
        prefix: Leading hex digits the id must begin with (dashes ignored), e.g. 'c62837da'.

    """
    value = uuid.UUID(int=rng().getrandbits(128), version=4)
    if not prefix:
        return value
    digits = prefix.replace("-", "").lower()
    if len(digits) > 32 or any(c not in "0123456789abcdef" for c in digits):
        raise FactoryRuleError(f"id prefix {prefix!r} is not up to 32 hex digits")
    return uuid.UUID(hex=digits + value.hex[len(digits) :])


class RelatedRows(Protocol):
    """The rows built so far, as a factory's relation hook sees them (the builder's side).

    A factory whose relations follow rules of its own (a request's status and routing) has
    the class methods ``plan_relations`` and ``complete_relations``; the scenario builder
    calls them around resolving the relations a scenario gives. A factory whose rows follow
    other rows has ``after_update(kind, rows, related)`` (called after an update step changed
    ``rows`` of ``kind``) and ``after_build(related)`` (called once every row is built).
    """

    def pick(self, kind: str, where: Mapping[str, Any] | None = None) -> Any:
        """Return a row of that kind matching ``where``, spread evenly over the candidates."""

    def exist(self, kind: str, where: Mapping[str, Any] | None = None) -> bool:
        """Return whether a row of that kind matches ``where`` (draws nothing)."""

    def get(self, row_id: Any) -> Any | None:
        """Return the row of that id, if it was built."""

    def owned(self, kind: str, owner_id: Any) -> Sequence[Any]:
        """Return the rows of ``kind`` owned by ``owner_id`` built so far (a customer's vehicles).

        The kind's factory names the owner attribute in ``_owner``.
        """

    def choice(self, rows: Sequence[Any]) -> Any:
        """Return one of ``rows``, drawn from the step's seeded generator."""

    def of_kind(self, kind: str) -> Sequence[Any]:
        """Return every row of a kind built so far, in build order."""


class BaseFactory(SQLAlchemyModelFactory):
    """A factory whose ``create()`` flushes through the bound session and whose ids are seeded.

    ``build()`` makes rows without a database and records them in the active collector
    (:func:`factories.collect`), so the bulk writer persists exactly what was built.
    """

    class Meta:
        abstract = True
        sqlalchemy_session_persistence = "flush"

    class Params:
        id_prefix = None

    #: The factory's parameters a scenario may set that are not columns, with the types a
    #: value may have (the planner checks them; ``seed kinds`` lists them). Each factory
    #: declares its own; :func:`scenario_params` merges those of its bases.
    _scenario_params: ClassVar[dict[str, tuple[type, ...]]] = {"id_prefix": (str,)}
    #: Parameters the factory works out itself (objects, not values): never a scenario field.
    _internal_params: ClassVar[frozenset[str]] = frozenset()

    id = factory.LazyAttribute(lambda o: new_uuid(o.id_prefix))

    @classmethod
    def _generate(cls, strategy: str, params: dict[str, Any]) -> Any:
        # factory_boy asks of every trait left out whether it is on; each asking fails and
        # formats an error (a fifth of a tile's build). Saying "off" up front is the same.
        for name in _traits_off_by_default(cls):
            params.setdefault(name, False)
        return super()._generate(strategy, params)

    @classmethod
    def _build(cls, model_class: type, *args: Any, **kwargs: Any) -> Any:
        row = model_class(*args, **kwargs)
        cls._check(row)
        record(row)
        return row

    @classmethod
    def _create(cls, model_class: type, *args: Any, **kwargs: Any) -> Any:
        session = bound_session()
        row = model_class(*args, **kwargs)
        cls._check(row)
        session.add(row)
        session.flush()
        return row

    @classmethod
    def _check(cls, row: Any) -> None:
        """Raise FactoryRuleError when overrides made a row the app would not hold."""


def scenario_params(cls: type) -> dict[str, tuple[type, ...]]:
    """Return the parameters a scenario may give a factory (its own and its bases'), typed."""
    found: dict[str, tuple[type, ...]] = {}
    for klass in reversed(cls.__mro__):
        found.update(vars(klass).get("_scenario_params", {}))
    return found


def internal_params(cls: type) -> frozenset[str]:
    """Return the parameters a factory (or a base) works out itself."""
    found: set[str] = set()
    for klass in cls.__mro__:
        found |= vars(klass).get("_internal_params", frozenset())
    return frozenset(found)


@functools.cache
def _traits_off_by_default(cls: type[factory.Factory[Any]]) -> tuple[str, ...]:
    """Return the factory's traits that no other trait turns on (those are left unset)."""
    traits = {
        name: param for name, param in cls._meta.parameters.items()
        if isinstance(param, factory.Trait)
    }
    turned_on = {key for trait in traits.values() for key in trait.overrides}
    return tuple(name for name in traits if name not in turned_on)


def _place(o: Any) -> geography.City:
    if o.in_city:
        city = geography.city_named(o.in_city)
        if o.in_province and city.province != o.in_province:
            raise FactoryRuleError(
                f"city {o.in_city!r} is in {city.province}, not {o.in_province}; "
                "pass a city of that province, or only one of the two"
            )
        return city
    return geography.pick_city(rng(), o.in_province)


class PlacedFactory(BaseFactory):
    """A factory of rows with a Canadian place: province, city, postal code and coordinates agree.

    Pass ``city=`` and/or ``province=`` to choose the place; the postal code and coordinates
    follow. Pass them as ``None`` to leave them empty.
    """

    class Meta:
        abstract = True

    class Params:
        in_province = None
        in_city = None
        place = factory.LazyAttribute(_place)
        coordinates = factory.LazyAttribute(lambda o: geography.near(rng(), o.place))

    _scenario_params: ClassVar[dict[str, tuple[type, ...]]] = {
        "in_city": (str,), "in_province": (str,),
    }
    _internal_params: ClassVar[frozenset[str]] = frozenset({"place", "coordinates"})

    province = factory.LazyAttribute(lambda o: o.place.province)
    city = factory.LazyAttribute(lambda o: o.place.name)
    postal_code = factory.LazyAttribute(lambda o: geography.postal_code(rng(), o.place))
    country = "Canada"
    latitude = factory.LazyAttribute(lambda o: o.coordinates[0])
    longitude = factory.LazyAttribute(lambda o: o.coordinates[1])

    @classmethod
    def _generate(cls, strategy: str, params: dict[str, Any]) -> Any:
        # A city or province passed by name picks the place, so the rest follows it.
        for field, param in (("city", "in_city"), ("province", "in_province")):
            if params.get(field) is not None and param not in params:
                params[param] = params.pop(field)
        return super()._generate(strategy, params)

    @classmethod
    def _check(cls, row: Any) -> None:
        check_place(cls.__name__, row)


def check_place(factory_name: str, row: Any) -> None:
    """Raise FactoryRuleError when a row's province, city, postal code and coordinates disagree."""
    province, city_name, code = row.province, row.city, row.postal_code
    if city_name is not None and city_name in geography.CITIES_BY_NAME:
        city = geography.CITIES_BY_NAME[city_name]
        if province is not None and city.province != province:
            raise FactoryRuleError(
                f"{factory_name}: city {city_name!r} is in {city.province}, not {province}; "
                f"pass city= or province= alone, or both in agreement"
            )
        if row.latitude is not None and row.longitude is not None:
            km = geography.distance_km(city.latitude, city.longitude, row.latitude, row.longitude)
            if km > geography.CITY_RADIUS_KM + 1:
                raise FactoryRuleError(
                    f"{factory_name}: coordinates ({row.latitude}, {row.longitude}) are "
                    f"{km:.0f} km from {city_name}; leave latitude and longitude to the factory"
                )
    if code is not None and province is not None:
        if province not in geography.province_of_postal_code(code):
            raise FactoryRuleError(
                f"{factory_name}: postal code {code!r} does not belong to {province}; "
                "leave postal_code to the factory or give one whose first letter fits"
            )


__all__ = ["BaseFactory", "PlacedFactory", "check_place", "new_uuid"]
