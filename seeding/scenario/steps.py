"""What a scenario step may name and set, and its values checked against the models.

The registry of kinds (:data:`seeding.scenario.kinds.KINDS`) seen by scenario name: each
kind's factory, relations, vocabularies, ranges, parameters, aliases and derived filters.
:class:`Checker` checks a scenario file's names and values against them, with the file and
line in each error; :func:`column_value` turns a value into what its column holds.
:mod:`seeding.scenario.plan` uses them to expand the steps into a plan.
"""

from __future__ import annotations

import difflib
import functools
import math
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast

import factory
import pydantic
import sqlalchemy as sa
import yaml

from factories.base import internal_params, scenario_params
from seeding.errors import ScenarioError
from seeding.scenario.files import (
    FACTORY_NAMES,
    Pick,
    _node_at,
    display,
    error_at,
)
from seeding.scenario.kinds import KINDS

# Views of the registry of kinds (seeding.scenario.kinds), by scenario name.
FACTORIES: dict[str, type[factory.Factory[Any]]] = {n: k.factory for n, k in KINDS.items()}


#: The relations each factory takes as objects, and the kind of row each one is.
RELATIONS: dict[str, dict[str, str]] = {n: k.relation_names for n, k in KINDS.items()}


#: Fields whose values come from a closed vocabulary, per factory.
VOCABULARY: dict[str, dict[str, tuple[Any, ...]]] = {
    n: dict(k.vocabularies) for n, k in KINDS.items()
}


#: Columns the tables' CHECK constraints hold to a range (inclusive).
RANGES: dict[str, dict[str, tuple[int, int]]] = {n: dict(k.ranges) for n, k in KINDS.items()}


#: The types of each kind's factory parameters (not columns) a scenario may set: declared on
#: the factories (``_scenario_params``).
PARAM_TYPES: dict[str, dict[str, tuple[type, ...]]] = {
    n: scenario_params(k.factory) for n, k in KINDS.items()
}


#: Each kind's factory parameters that the factory works out itself (objects, not values).
INTERNAL_PARAMS: dict[str, frozenset[str]] = {
    n: internal_params(k.factory) for n, k in KINDS.items()
}


#: Scenario-friendly names of factory parameters.
ALIASES: dict[str, dict[str, str]] = {n: dict(k.aliases) for n, k in KINDS.items()}


#: Keys a ``where`` filter accepts beyond the model's columns.
DERIVED_FILTERS: dict[str, tuple[str, ...]] = {
    n: tuple(k.derived_filters) for n, k in KINDS.items()
}


#: Scenario times fall in [EARLIEST, LATEST): the factories' time arithmetic (a year before
#: the window, hours after now) stays inside Python's and PostgreSQL's ranges.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)


LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def factory_names(name: str) -> tuple[set[str], set[str]]:
    """Return (traits, other accepted keyword names) of a factory."""
    cls = FACTORIES[name]
    params = cls._meta.parameters
    traits = {key for key, value in params.items() if isinstance(value, factory.Trait)}
    accepted = (set(cls._meta.declarations) | set(params)) - traits
    accepted |= set(ALIASES.get(name, {}))
    return traits, accepted


def closest(word: str, options: set[str] | tuple[str, ...]) -> str:
    """Return `` (did you mean 'x'?)`` for the option closest to a misspelt word, else ''."""
    close = difflib.get_close_matches(word, sorted(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def shown_value(value: Any) -> str:
    """Return a value as an error message shows it (short)."""
    text = value.isoformat() if isinstance(value, date) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@functools.cache
def model_columns(kind: str) -> dict[str, sa.Column[Any]]:
    """Return a factory's model columns by attribute name."""
    model = FACTORIES[kind]._meta.model
    return {
        prop.key: cast("sa.Column[Any]", prop.columns[0])
        for prop in sa.inspect(model).column_attrs
    }


def factories_model_columns(kind: str) -> list[str]:
    """Return the attribute names of a factory's model columns."""
    return list(model_columns(kind))


TIME_RANGE = f"between {EARLIEST.date()} and {LATEST.year - 1}-12-31"


def in_time_range(value: date) -> bool:
    """Return whether a date or an aware time lies in the range the database stores."""
    if isinstance(value, datetime):
        return value.tzinfo is not None and EARLIEST <= value < LATEST
    return EARLIEST.date() <= value < LATEST.date()


def _json_like(value: Any) -> bool:
    if value is None or isinstance(value, bool | int):
        return True
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_json_like(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_like(v) for k, v in value.items())
    return False


def column_value(column: sa.Column[Any], value: Any) -> Any:
    """Return ``value`` as ``column`` holds it (the text of a uuid as a UUID).

    Raises:
        ValueError: Saying what the column needs, when the value does not fit it.

    """
    kind = column.type
    if value is None:
        if not column.nullable:
            raise ValueError("needs a value, not null")
        return None
    if isinstance(kind, sa.Boolean):
        if not isinstance(value, bool):
            raise ValueError("needs true or false")
    elif isinstance(kind, sa.Integer):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("needs a whole number")
        bits = (
            64 if isinstance(kind, sa.BigInteger)
            else 16 if isinstance(kind, sa.SmallInteger) else 32
        )
        if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            raise ValueError(f"is beyond the column's range (a {bits}-bit integer)")
    elif isinstance(kind, sa.Numeric):  # Double too
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("needs a number")
        try:
            magnitude = abs(float(value))
        except OverflowError:
            raise ValueError("is too large a number") from None
        if not isinstance(kind, sa.Float) and kind.precision is not None:
            limit = 10 ** (kind.precision - (kind.scale or 0))
            if not magnitude < limit:
                raise ValueError(f"must be a number below {limit:,} (numeric({kind.precision}, "
                                 f"{kind.scale or 0}))")
    elif isinstance(kind, sa.DateTime):
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError("needs a time with its offset, e.g. 2025-11-06T14:05:57-05:00")
        if not in_time_range(value):
            raise ValueError(f"must fall {TIME_RANGE}")
    elif isinstance(kind, sa.Date):
        if isinstance(value, datetime) or not isinstance(value, date):
            raise ValueError("needs a date, e.g. 2026-05-01")
        if not in_time_range(value):
            raise ValueError(f"must fall {TIME_RANGE}")
    elif isinstance(kind, sa.Uuid):
        if isinstance(value, str):
            try:
                return uuid.UUID(value)
            except ValueError:
                pass
        if not isinstance(value, uuid.UUID):
            raise ValueError("needs a uuid, e.g. 29026e3d-5c1f-4c4e-9d0e-6d3f2b8a7c10")
    elif isinstance(kind, sa.ARRAY):
        if not isinstance(value, list) or not all(
            isinstance(item, str) and "\x00" not in item for item in value
        ):
            raise ValueError("needs a list of texts, e.g. [brakes, tires]")
    elif isinstance(kind, sa.JSON):
        if not _json_like(value):
            raise ValueError(
                "needs JSON: numbers, texts, true/false, null, lists and mappings with text keys"
            )
    elif isinstance(kind, sa.String):
        if not isinstance(value, str):
            hint = " (quote it to make it one)" if isinstance(value, int | float | date) else ""
            raise ValueError(f"needs a text{hint}")
        if "\x00" in value:
            raise ValueError("cannot hold a NUL character")
    return value


def _param_value(kind: str, name: str, value: Any) -> Any:
    """Check a factory parameter's value (a parameter that is not a column).

    Raises:
        ValueError: Saying what the parameter needs.

    """
    types = PARAM_TYPES[kind].get(name)
    if types is None or value is None:
        return value
    if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
        needs = {str: "a text", bool: "true or false", int: "a number", datetime: "a time"}
        raise ValueError(f"needs {needs[types[0]]}")
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("cannot hold a NUL character")
    if isinstance(value, float) and not (math.isfinite(value) and value >= 0):
        raise ValueError("needs a non-negative number")
    if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= 10**6:
        raise ValueError("needs a number between 0 and 1,000,000")
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError("needs a time with its offset, e.g. 2025-11-06T14:05:57-05:00")
    if isinstance(value, datetime) and not in_time_range(value):
        raise ValueError(f"must fall {TIME_RANGE}")
    return value


class Checker:
    """Checks the names and values in one scenario file; errors carry file and line."""

    def __init__(self, path: Path, node: yaml.Node, refs: dict[str, str]) -> None:
        self.path = path
        self.node = node
        self.refs = refs  # ref name → factory name, from earlier steps and ancestors

    def fail(self, loc: list[str | int], where: str, message: str) -> ScenarioError:
        """Return the error for the node at ``loc``, naming the file, its line and ``where``."""
        return error_at(self.path, _node_at(self.node, loc), where, message)

    def place(self, loc: list[str | int], where: str) -> str:
        """Return ``file:line: where``, how build errors name a step."""
        node = _node_at(self.node, loc)
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        return f"{display(self.path)}{line}: {where}"

    def factory(self, name: str, loc: list[str | int], where: str) -> str:
        """Return the kind a step names, or fail with the closest known one."""
        if name not in FACTORIES:
            raise self.fail(
                loc, where, f"unknown factory {name!r}{closest(name, FACTORY_NAMES)}; "
                f"expected one of {', '.join(FACTORY_NAMES)}"
            )
        return name

    def traits(self, kind: str, traits: tuple[str, ...], loc: list[str | int], where: str) -> None:
        """Fail on a trait the kind's factory lacks."""
        known, _ = factory_names(kind)
        for i, trait in enumerate(traits):
            if trait not in known:
                raise self.fail(
                    [*loc, i], f"{where}[{i}]",
                    f"unknown trait {trait!r} of {kind}{closest(trait, known)}; "
                    f"expected one of {', '.join(sorted(known))}",
                )

    def field_name(self, kind: str, key: str, loc: list[str | int], where: str) -> str:
        """Check a field's name; return the factory's keyword for it."""
        _, accepted = factory_names(kind)
        if key not in accepted or key in RELATIONS[kind]:
            hint = "; relations go under `with:`" if key in RELATIONS[kind] else ""
            raise self.fail(
                loc, where, f"unknown field {key!r} of {kind}{closest(key, accepted)}{hint}"
            )
        if key in INTERNAL_PARAMS[kind]:
            raise self.fail(
                loc, where, f"{key!r} is worked out by the {kind} factory and cannot be set"
            )
        return ALIASES.get(kind, {}).get(key, key)

    def fields(
        self, kind: str, values: Mapping[str, Any], loc: list[str | int], where: str
    ) -> dict[str, Any]:
        """Return a step's values checked and converted (aliases, vocabularies, ranges, types)."""
        out: dict[str, Any] = {}
        for key, value in values.items():
            name = self.field_name(kind, key, [*loc, key], f"{where}.{key}")
            out[name] = self.value(kind, key, value, [*loc, key], f"{where}.{key}")
        return out

    def value(self, kind: str, key: str, value: Any, loc: list[str | int], where: str) -> Any:
        """Check one value of a field; return it as the row holds it."""
        name = ALIASES.get(kind, {}).get(key, key)
        vocabulary = VOCABULARY.get(kind, {}).get(name)
        if vocabulary is not None and value is not None and value not in vocabulary:
            raise self.fail(
                loc, where,
                f"unknown value {shown_value(value)}"
                f"{closest(str(value), tuple(map(str, vocabulary)))}; "
                f"expected one of {', '.join(map(str, vocabulary))}",
            )
        column = model_columns(kind).get(name)
        try:
            value = (column_value(column, value) if column is not None
                     else _param_value(kind, name, value))
        except ValueError as error:
            raise self.fail(loc, where, f"{name} {error}; found {shown_value(value)}") from None
        bounds = RANGES.get(kind, {}).get(name)
        if bounds is not None and value is not None and not bounds[0] <= value <= bounds[1]:
            raise self.fail(
                loc, where, f"{name} must be between {bounds[0]} and {bounds[1]}; found {value!r}"
            )
        return value

    def ref(self, name: str, loc: list[str | int], where: str, kind: str | None = None) -> None:
        """Fail on a ref no earlier step or ancestor names, or one of another kind than ``kind``."""
        if name not in self.refs:
            known = set(self.refs)
            raise self.fail(
                loc, where,
                f"unknown ref {name!r}{closest(name, known)}; refs are named by an earlier "
                f"step's `ref:` (known: {', '.join(sorted(known)) or 'none'})",
            )
        if kind is not None and self.refs[name] != kind:
            raise self.fail(
                loc, where, f"ref {name!r} names {self.refs[name]} rows, not {kind} rows"
            )

    def relation(
        self, kind: str, name: str, value: Any, loc: list[str | int], where: str
    ) -> str | Pick | None:
        """Check a relation (a ref, a pick, or none); return it as the build takes it."""
        relations = RELATIONS[kind]
        if name not in relations:
            raise self.fail(
                loc, where, f"{kind} has no relation {name!r}{closest(name, set(relations))}; "
                f"expected one of {', '.join(relations) or 'none'}",
            )
        target = relations[name]
        if value is None:
            return None
        if isinstance(value, dict):
            try:
                value = Pick.model_validate(value)
            except pydantic.ValidationError as error:
                first = error.errors()[0]
                at = ".".join(str(part) for part in first["loc"])
                raise self.fail(
                    loc, where, f"a pick's {at or 'value'}: {first['msg'][:1].lower()}"
                    f"{first['msg'][1:]}; a pick is {{any: {target}}} or {{ref: GROUP}}, "
                    "with `where:`",
                ) from None
        if isinstance(value, str):
            self.ref(value, loc, where, target)
            return value
        if not isinstance(value, Pick):
            raise self.fail(
                loc, where,
                f"a relation is a ref's name, a pick ({{any: {target}}} or {{ref: GROUP}}, with "
                f"`where:`) or null; found {shown_value(value)}",
            )
        if (value.any is None) == (value.ref is None):
            raise self.fail(
                loc, where, "a pick needs exactly one of `any: <factory>` or `ref: <group>`"
            )
        if value.any is not None and value.any != target:
            raise self.fail(
                [*loc, "any"], f"{where}.any", f"{name} must be a {target}, not {value.any!r}"
            )
        if value.ref is not None:
            self.ref(value.ref, [*loc, "ref"], f"{where}.ref", target)
        columns = set(factories_model_columns(target)) | set(DERIVED_FILTERS.get(target, ()))
        for key in value.where:
            if key not in columns:
                raise self.fail(
                    [*loc, "where", key], f"{where}.where.{key}",
                    f"unknown field {key!r} of {target}{closest(key, columns)}",
                )
        return value
