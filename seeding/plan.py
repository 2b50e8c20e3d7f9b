"""The plan: a scenario's steps checked against the factories and expanded into rows to build.

Scenario file → :class:`Plan`. Every name (factory, trait, field, ref, mix value) is checked
here, before anything is built or written, and each mix is resolved to exact quotas. The plan
is a plain, immutable value: printing it shows what a run will make.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import factory
import yaml

import factories
from seeding import plans, vocabularies
from seeding.errors import ScenarioError
from seeding.quotas import resolve_mix
from seeding.scenario_file import (
    FACTORY_NAMES,
    CreateStep,
    Pick,
    Scenario,
    UpdateStep,
    Window,
    _node_at,
    error_at,
)

FACTORIES: dict[str, type[factory.Factory[Any]]] = {
    "workshop": factories.WorkshopFactory,
    "customer": factories.CustomerFactory,
    "mechanic": factories.MechanicFactory,
    "vehicle": factories.VehicleFactory,
    "session_request": factories.SessionRequestFactory,
    "session": factories.SessionFactory,
}

#: The relations each factory takes as objects, and the kind of row each one is.
RELATIONS: dict[str, dict[str, str]] = {
    "workshop": {},
    "customer": {},
    "mechanic": {"organization": "workshop"},
    "vehicle": {"customer": "customer"},
    "session_request": {
        "customer": "customer",
        "mechanic": "mechanic",
        "vehicle": "vehicle",
        "workshop": "workshop",
        "preferred_mechanic": "mechanic",
        "parent_session": "session",
    },
    "session": {"customer": "customer", "mechanic": "mechanic"},
}

#: Fields whose values come from a closed vocabulary, per factory.
VOCABULARY: dict[str, dict[str, tuple[Any, ...]]] = {
    "session_request": {
        "status": vocabularies.REQUEST_STATUSES,
        "session_type": vocabularies.SESSION_TYPES,
        "routing_type": vocabularies.ROUTING_TYPES,
        "request_type": vocabularies.REQUEST_TYPES,
        "session_status": vocabularies.SESSION_STATUSES,
        "plan_code": plans.PLAN_CODES,
    },
    "session": {
        "status": vocabularies.SESSION_STATUSES,
        "type": vocabularies.SESSION_TYPES,
        "plan": plans.PLAN_CODES,
    },
    "mechanic": {
        "mechanic_type": vocabularies.MECHANIC_TYPES,
        "service_tier": vocabularies.SERVICE_TIERS,
        "specialist_tier": vocabularies.SPECIALIST_TIERS,
    },
}
for _name in ("workshop", "customer", "mechanic"):
    VOCABULARY.setdefault(_name, {})["province"] = vocabularies.PROVINCES

#: Scenario-friendly names of factory parameters.
ALIASES: dict[str, dict[str, str]] = {"mechanic": {"type": "mechanic_type"}}

#: Keys a ``where`` filter accepts beyond the model's columns.
DERIVED_FILTERS: dict[str, tuple[str, ...]] = {"mechanic": ("type", "complete")}


@dataclass(frozen=True)
class RowSpec:
    """One row to build: the factory's keyword arguments and its relations (by ref or pick)."""

    kwargs: Mapping[str, Any]
    relations: Mapping[str, str | Pick | None]
    ref: str | None = None


@dataclass(frozen=True)
class CreatePlan:
    """Build ``rows`` with one factory."""

    scenario: str
    index: int
    factory: str
    rows: tuple[RowSpec, ...]
    group: str | None
    window: Window | None
    where: str


@dataclass(frozen=True)
class UpdatePlan:
    """Change rows made earlier."""

    scenario: str
    index: int
    refs: tuple[str, ...]
    set: Mapping[str, Any]
    regenerate: tuple[str, ...]
    traits: tuple[str, ...]
    fields: Mapping[str, Any]
    where: str


@dataclass(frozen=True)
class Plan:
    """What a run will build: every step of the chain, with exact rows, and the clock."""

    scenario: str
    seed: int
    scale: float
    now: datetime
    window: Window | None
    steps: tuple[CreatePlan | UpdatePlan, ...]
    expect: Mapping[str, str] = field(default_factory=dict)

    @property
    def row_count(self) -> int:
        """Return how many rows the create steps ask for (sub-rows not counted)."""
        return sum(len(step.rows) for step in self.steps if isinstance(step, CreatePlan))


def step_seed(seed: int, scenario: str, index: int) -> int:
    """Return the seed of one step: stable whatever steps come after it."""
    digest = hashlib.sha256(f"{seed}:{scenario}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def factory_names(name: str) -> tuple[set[str], set[str]]:
    """Return (traits, other accepted keyword names) of a factory."""
    cls = FACTORIES[name]
    params = cls._meta.parameters
    traits = {key for key, value in params.items() if isinstance(value, factory.Trait)}
    accepted = (set(cls._meta.declarations) | set(params)) - traits
    accepted |= set(ALIASES.get(name, {}))
    return traits, accepted


def _closest(word: str, options: set[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, sorted(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Checker:
    """Checks the names in one scenario file; errors carry file and line."""

    def __init__(self, path: Path, node: yaml.Node, refs: dict[str, str]) -> None:
        self.path = path
        self.node = node
        self.refs = refs  # ref name → factory name, from earlier steps and ancestors

    def fail(self, loc: list[str | int], where: str, message: str) -> ScenarioError:
        return error_at(self.path, _node_at(self.node, loc), where, message)

    def factory(self, name: str, loc: list[str | int], where: str) -> str:
        if name not in FACTORIES:
            raise self.fail(
                loc, where, f"unknown factory {name!r}{_closest(name, FACTORY_NAMES)}; "
                f"expected one of {', '.join(FACTORY_NAMES)}"
            )
        return name

    def traits(self, kind: str, traits: tuple[str, ...], loc: list[str | int], where: str) -> None:
        known, _ = factory_names(kind)
        for i, trait in enumerate(traits):
            if trait not in known:
                raise self.fail(
                    [*loc, i], f"{where}[{i}]",
                    f"unknown trait {trait!r} of {kind}{_closest(trait, known)}; "
                    f"expected one of {', '.join(sorted(known))}",
                )

    def fields(
        self, kind: str, values: Mapping[str, Any], loc: list[str | int], where: str
    ) -> dict[str, Any]:
        _, accepted = factory_names(kind)
        out: dict[str, Any] = {}
        for key, value in values.items():
            if key not in accepted or key in RELATIONS[kind]:
                hint = "; relations go under `with:`" if key in RELATIONS[kind] else ""
                raise self.fail(
                    [*loc, key], f"{where}.{key}",
                    f"unknown field {key!r} of {kind}{_closest(key, accepted)}{hint}",
                )
            self.value(kind, key, value, [*loc, key], f"{where}.{key}")
            out[ALIASES.get(kind, {}).get(key, key)] = value
        return out

    def value(self, kind: str, key: str, value: Any, loc: list[str | int], where: str) -> None:
        vocabulary = VOCABULARY.get(kind, {}).get(ALIASES.get(kind, {}).get(key, key))
        if vocabulary is not None and value is not None and value not in vocabulary:
            raise self.fail(
                loc, where,
                f"unknown value {value!r}{_closest(str(value), tuple(map(str, vocabulary)))}; "
                f"expected one of {', '.join(map(str, vocabulary))}",
            )

    def ref(self, name: str, loc: list[str | int], where: str, kind: str | None = None) -> None:
        if name not in self.refs:
            known = set(self.refs)
            raise self.fail(
                loc, where,
                f"unknown ref {name!r}{_closest(name, known)}; refs are named by an earlier "
                f"step's `ref:` (known: {', '.join(sorted(known)) or 'none'})",
            )
        if kind is not None and self.refs[name] != kind:
            raise self.fail(
                loc, where, f"ref {name!r} names {self.refs[name]} rows, not {kind} rows"
            )

    def relation(
        self, kind: str, name: str, value: str | Pick | None, loc: list[str | int], where: str
    ) -> None:
        relations = RELATIONS[kind]
        if name not in relations:
            raise self.fail(
                loc, where, f"{kind} has no relation {name!r}{_closest(name, set(relations))}; "
                f"expected one of {', '.join(relations) or 'none'}",
            )
        target = relations[name]
        if value is None:
            return
        if isinstance(value, str):
            self.ref(value, loc, where, target)
            return
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
                    f"unknown field {key!r} of {target}{_closest(key, columns)}",
                )


def factories_model_columns(kind: str) -> list[str]:
    """Return the attribute names of a factory's model columns."""
    model = FACTORIES[kind]._meta.model
    return [attr.key for attr in model.__mapper__.column_attrs]


def _create_plan(
    checker: _Checker, scenario: str, index: int, step: CreateStep, seed: int, scale: float
) -> CreatePlan:
    loc: list[str | int] = ["steps", index]
    where = f"steps[{index}]"
    kind = checker.factory(step.create, [*loc, "create"], f"{where}.create")
    checker.traits(kind, step.traits, [*loc, "traits"], f"{where}.traits")
    fields = checker.fields(kind, step.fields, [*loc, "fields"], f"{where}.fields")
    for name, relation in step.relations.items():
        checker.relation(kind, name, relation, [*loc, "with", name], f"{where}.with.{name}")

    count = step.count
    each_len = {len(values) for values in step.each.values()}
    if len(each_len) > 1:
        raise checker.fail(
            [*loc, "each"], f"{where}.each", "every list under `each` needs the same length"
        )
    if each_len:
        n = each_len.pop()
        if count is not None and count != n:
            raise checker.fail(
                [*loc, "each"], f"{where}.each", f"lists of {n} values, but count is {count}"
            )
        count = n
    factor = scale if step.scale and not step.each else 1.0

    traits_known, _ = factory_names(kind)
    quotas: dict[str, list[Any]] = {}
    total: int | None = round(count * factor) if count is not None else None
    for dimension, shares in step.mix.items():
        dim_loc: list[str | int] = [*loc, "mix", dimension]
        dim_where = f"{where}.mix.{dimension}"
        try:
            resolved_total, quota = resolve_mix(shares, count, factor)
        except ValueError as error:
            raise checker.fail(dim_loc, dim_where, f"{error}") from None
        if total is None:
            total = resolved_total
            count = round(resolved_total / factor) if factor else resolved_total
        elif resolved_total != total:
            raise checker.fail(
                dim_loc, dim_where,
                f"adds up to {resolved_total} rows, but the step makes {total}",
            )
        for value in shares:
            value_loc = [*dim_loc, value]
            if dimension == "trait":
                if value != "none" and value not in traits_known:
                    raise checker.fail(
                        value_loc, f"{dim_where}.{value}",
                        f"unknown trait {value!r} of {kind}{_closest(value, traits_known)}; "
                        f"expected one of {', '.join(sorted(traits_known))}, or none",
                    )
            elif dimension in RELATIONS[kind]:
                checker.ref(value, value_loc, f"{dim_where}.{value}", RELATIONS[kind][dimension])
            else:
                checker.fields(kind, {dimension: value}, [*loc, "mix"], f"{where}.mix")
        values: list[Any] = []
        for value, n in quota.items():
            values += [value] * n
        random.Random(step_seed(seed, scenario, index * 1000 + len(quotas))).shuffle(values)
        quotas[dimension] = values
    if total is None:
        total = 1 if not step.mix else 0
    each_relations = {key: values for key, values in step.each.items() if key in RELATIONS[kind]}
    for key, values in each_relations.items():
        for i, value in enumerate(values):
            checker.relation(kind, key, value, [*loc, "each", key, i], f"{where}.each.{key}[{i}]")
    each_fields = {
        key: values for key, values in step.each.items()
        if key != "ref" and key not in each_relations
    }
    if each_fields:
        checker.fields(kind, {key: None for key in each_fields}, [*loc, "each"], f"{where}.each")
        for key, values in each_fields.items():
            for i, value in enumerate(values):
                checker.value(kind, key, value, [*loc, "each", key, i], f"{where}.each.{key}[{i}]")

    rows = []
    row_refs = step.each.get("ref", [])
    for i in range(total):
        kwargs: dict[str, Any] = dict(fields)
        kwargs.update({trait: True for trait in step.traits})
        relations: dict[str, str | Pick | None] = dict(step.relations)
        for dimension, values in quotas.items():
            value = values[i]
            if dimension == "trait":
                if value != "none":
                    kwargs[value] = True
            elif dimension in RELATIONS[kind]:
                relations[dimension] = value
            else:
                kwargs[ALIASES.get(kind, {}).get(dimension, dimension)] = value
        for key, values in each_fields.items():
            kwargs[ALIASES.get(kind, {}).get(key, key)] = values[i]
        for key, values in each_relations.items():
            relations[key] = values[i]
        rows.append(
            RowSpec(kwargs=kwargs, relations=relations, ref=row_refs[i] if row_refs else None)
        )
    return CreatePlan(
        scenario=scenario, index=index, factory=kind, rows=tuple(rows), group=step.ref,
        window=step.window, where=f"{checker.path.name}:{where}",
    )


def _update_plan(checker: _Checker, scenario: str, index: int, step: UpdateStep) -> UpdatePlan:
    loc: list[str | int] = ["steps", index]
    where = f"steps[{index}]"
    refs = (step.update,) if isinstance(step.update, str) else tuple(step.update)
    kinds = set()
    for i, ref in enumerate(refs):
        checker.ref(
            ref,
            [*loc, "update", i] if not isinstance(step.update, str) else [*loc, "update"],
            f"{where}.update",
        )
        kinds.add(checker.refs[ref])
    if len(kinds) != 1:
        raise checker.fail(
            [*loc, "update"], f"{where}.update", "an update step changes rows of one kind"
        )
    kind = kinds.pop()
    columns = set(factories_model_columns(kind))
    for key in [*step.set, *step.regenerate]:
        if key not in columns:
            raise checker.fail(
                [*loc, "set" if key in step.set else "regenerate"], f"{where}",
                f"unknown column {key!r} of {kind}{_closest(key, columns)}",
            )
        if key == "id" or key.endswith("_id"):
            raise checker.fail(
                [*loc], where,
                f"{key!r} relates rows and cannot be updated; make a new row instead",
            )
    checker.traits(kind, step.traits, [*loc, "traits"], f"{where}.traits")
    fields = checker.fields(kind, step.fields, [*loc, "fields"], f"{where}.fields")
    return UpdatePlan(
        scenario=scenario, index=index, refs=refs, set=dict(step.set), regenerate=step.regenerate,
        traits=step.traits, fields=fields, where=f"{checker.path.name}:{where}",
    )


def make_plan(
    scenario: Scenario,
    nodes: Mapping[Path, yaml.Node],
    *,
    seed: int | None = None,
    scale: float = 1.0,
) -> Plan:
    """Check a loaded scenario against the factories and expand it into a plan.

    Args:
        scenario: The scenario, its ``extends`` chain resolved.
        nodes: Each file's YAML node tree, for line numbers.
        seed: The run's seed; the scenario's own when None.
        scale: Multiplies the step counts (quotas kept).

    Raises:
        ScenarioError: On the first name, ref or quota that is wrong.

    """
    if not (scale > 0 and math.isfinite(scale)):
        raise ScenarioError(f"--scale must be a positive number, not {scale}")
    run_seed = scenario.seed if seed is None else seed
    refs: dict[str, str] = {}
    steps: list[CreatePlan | UpdatePlan] = []
    for name, path, spec in scenario.chain:
        checker = _Checker(path, nodes[path], refs)
        for index, step in enumerate(spec.steps):
            if isinstance(step, CreateStep):
                plan = _create_plan(checker, name, index, step, run_seed, scale)
                for row_ref in (row.ref for row in plan.rows if row.ref):
                    refs[row_ref] = plan.factory
                if step.ref:
                    refs[step.ref] = plan.factory
                steps.append(plan)
            else:
                steps.append(_update_plan(checker, name, index, step))
    clock = scenario.clock
    now = clock.now if clock else factories.AUDIT_NOW
    window = clock.window if clock else None
    if window is not None and not window.start <= window.end <= now:
        raise ScenarioError(f"{scenario.path.name}: clock.window must end at or before clock.now")
    return Plan(
        scenario=scenario.name, seed=run_seed, scale=scale, now=now, window=window,
        steps=tuple(steps), expect=scenario.expect,
    )

