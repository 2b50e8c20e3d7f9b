"""The plan: a scenario's steps checked against the factories and expanded into rows to build.

Scenario file → :class:`Plan`. Every name (factory, trait, field, ref, mix value) is checked
here, before anything is built or written, and each mix is resolved to exact quotas. The plan
is a plain, immutable value: printing it shows what a run will make.
"""


from __future__ import annotations

import hashlib
import math
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

import factories
from seeding.domain.quotas import resolve_mix
from seeding.errors import ConfigurationError, ScenarioError
from seeding.scenario import targets
from seeding.scenario.files import (
    CreateStep,
    Pick,
    Scenario,
    UpdateStep,
    Window,
    _node_at,
    display,
    error_at,
)
from seeding.scenario.steps import (
    ALIASES,
    RELATIONS,
    TIME_RANGE,
    Checker,
    closest,
    factories_model_columns,
    factory_names,
    in_time_range,
    shown_value,
)

# The registry's views and the value checks lived here until steps.py: still exported.
from seeding.scenario.steps import DERIVED_FILTERS as DERIVED_FILTERS
from seeding.scenario.steps import EARLIEST as EARLIEST
from seeding.scenario.steps import FACTORIES as FACTORIES
from seeding.scenario.steps import INTERNAL_PARAMS as INTERNAL_PARAMS
from seeding.scenario.steps import LATEST as LATEST
from seeding.scenario.steps import PARAM_TYPES as PARAM_TYPES
from seeding.scenario.steps import RANGES as RANGES
from seeding.scenario.steps import VOCABULARY as VOCABULARY
from seeding.scenario.steps import column_value as column_value
from seeding.scenario.steps import model_columns as model_columns

#: The most rows a run builds in memory (a tiled run: its tile), unless SEED_MAX_ROWS says.
DEFAULT_MAX_ROWS = 5_000_000


MAX_ROWS_ENV = "SEED_MAX_ROWS"


#: A run's seed is stored in ``seeding.runs.seed``, a bigint.
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1


def bound_setting(value: int | None, env: str, default: int) -> int:
    """Return a bound on rows: ``value`` if given, else the environment variable ``env``.

    Raises:
        ConfigurationError: When the value (or the variable) is not a positive whole number.

    """
    if value is None:
        text = os.environ.get(env, "").strip()
        if not text:
            return default
        try:
            value = int(text.replace("_", "").replace(",", ""))
        except ValueError:
            value = 0
        if value < 1:
            raise ConfigurationError(
                f"{env}={text!r} is not a positive whole number of rows; set it like "
                f"{env}={default * 2} or unset it (default {default:,})"
            )
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"the bound on rows must be a positive whole number, not {value!r}"
        )
    return value


def max_rows_setting(max_rows: int | None = None) -> int:
    """Return the bound on the rows a run builds in memory (the argument, SEED_MAX_ROWS, 5M).

    Raises:
        ConfigurationError: When it is not a positive whole number.

    """
    return bound_setting(max_rows, MAX_ROWS_ENV, DEFAULT_MAX_ROWS)


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
    #: The scenario's ``extends`` chain by name, ancestors first, itself last.
    family: tuple[str, ...] = ()

    @property
    def row_count(self) -> int:
        """Return how many rows the create steps ask for (sub-rows not counted)."""
        return sum(len(step.rows) for step in self.steps if isinstance(step, CreatePlan))


def step_seed(seed: int, scenario: str, index: int) -> int:
    """Return the seed of one step: stable whatever steps come after it."""
    digest = hashlib.sha256(f"{seed}:{scenario}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass
class _Budget:
    """The rows a plan may build in memory, and how many its steps take so far."""

    limit: int
    scale: float
    tile: bool
    used: int = 0

    def take(
        self, rows: int | None, checker: Checker, loc: list[str | int], where: str, what: str
    ) -> None:
        """Count a step's rows; ``None`` is more than can be counted.

        Raises:
            ScenarioError: When the rows would pass the limit.

        """
        if rows is not None and self.used + rows <= self.limit:
            self.used += rows
            return
        if rows is None:
            many = "more rows than can be counted"
        else:
            many = f"{rows:,} rows" if rows < 10**24 else f"{_digits(rows)} rows"
        before = (  # when the steps before it take the step over the bound
            f" ({self.used + rows:,} with the steps before it)"
            if rows is not None and self.used and rows <= self.limit else ""
        )
        if self.tile:
            scope = "for the tile (a tile is built whole; tiles and --scale make copies of it)"
        else:
            scope = f"(after --scale {self.scale:g})"
            what, scope = f"{what} {scope}", ""
        raise checker.fail(
            loc, where,
            f"{what} would build {many} in memory{before}{' ' + scope if scope else ''}, over the "
            f"bound of {self.limit:,}; lower the count, or raise {MAX_ROWS_ENV}",
        )


def _digits(number: int) -> str:
    """Return a whole number as written, shortened when it is very long."""
    text = str(number)
    return text if len(text) <= 24 else f"{text[:12]}... ({len(text)} digits)"


def _scaled(count: int, factor: float) -> int | None:
    """Return ``count`` times the scale, rounded; None when that is beyond a float."""
    if factor == 1.0:
        return count
    try:
        value = count * factor
    except OverflowError:
        return None
    return round(value) if math.isfinite(value) else None


def _create_plan(
    checker: Checker,
    scenario: str,
    index: int,
    step: CreateStep,
    seed: int,
    scale: float,
    budget: _Budget,
    clock: _ClockUsed,
) -> CreatePlan:
    loc: list[str | int] = ["steps", index]
    where = f"steps[{index}]"
    kind = checker.factory(step.create, [*loc, "create"], f"{where}.create")
    checker.traits(kind, step.traits, [*loc, "traits"], f"{where}.traits")
    fields = checker.fields(kind, step.fields, [*loc, "fields"], f"{where}.fields")
    relations_given: dict[str, str | Pick | None] = {}
    for name, relation in step.relations.items():
        relations_given[name] = checker.relation(
            kind, name, relation, [*loc, "with", name], f"{where}.with.{name}"
        )
    if step.window is not None:
        clock.check_window(checker, step.window, [*loc, "window"], f"{where}.window")

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
    total: int | None = None
    if count is not None:
        total = _scaled(count, factor)
        what = f"each lists of {count:,} values" if step.each else f"count {_digits(count)}"
        count_loc = [*loc, "each" if step.each else "count"]
        budget.take(total, checker, count_loc, where, what)
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
            budget.take(total, checker, dim_loc, where, f"mix.{dimension}")
        elif resolved_total != total:
            raise checker.fail(
                dim_loc, dim_where,
                f"adds up to {resolved_total} rows, but the step makes {total}",
            )
        as_held: dict[str, Any] = {}
        for value in shares:
            value_loc = [*dim_loc, value]
            if dimension == "trait":
                if value != "none" and value not in traits_known:
                    raise checker.fail(
                        value_loc, f"{dim_where}.{value}",
                        f"unknown trait {value!r} of {kind}{closest(value, traits_known)}; "
                        f"expected one of {', '.join(sorted(traits_known))}, or none",
                    )
                as_held[value] = value
            elif dimension in RELATIONS[kind]:
                checker.ref(value, value_loc, f"{dim_where}.{value}", RELATIONS[kind][dimension])
                as_held[value] = value
            else:
                checked = checker.fields(kind, {dimension: value}, [*loc, "mix"], f"{where}.mix")
                as_held[value] = next(iter(checked.values()))
        values: list[Any] = []
        for value, n in quota.items():
            values += [as_held[value]] * n
        random.Random(step_seed(seed, scenario, index * 1000 + len(quotas))).shuffle(values)
        quotas[dimension] = values
    if total is None:
        total = 1 if not step.mix else 0
        budget.take(total, checker, loc, where, "the step")
    each_relations: dict[str, list[str | Pick | None]] = {}
    for key, values in step.each.items():
        if key in RELATIONS[kind]:
            each_relations[key] = [
                checker.relation(
                    kind, key, value, [*loc, "each", key, i], f"{where}.each.{key}[{i}]"
                )
                for i, value in enumerate(values)
            ]
    row_refs = step.each.get("ref", [])
    for i, name in enumerate(row_refs):
        if not isinstance(name, str) or not name:
            raise checker.fail(
                [*loc, "each", "ref", i], f"{where}.each.ref[{i}]",
                f"a ref is a name (a text); found {shown_value(name)}",
            )
    each_fields: dict[str, list[Any]] = {}
    for key, values in step.each.items():
        if key == "ref" or key in each_relations:
            continue
        name = checker.field_name(kind, key, [*loc, "each", key], f"{where}.each.{key}")
        each_fields[name] = [
            checker.value(kind, key, value, [*loc, "each", key, i], f"{where}.each.{key}[{i}]")
            for i, value in enumerate(values)
        ]

    rows = []
    for i in range(total):
        kwargs: dict[str, Any] = dict(fields)
        kwargs.update({trait: True for trait in step.traits})
        relations: dict[str, str | Pick | None] = dict(relations_given)
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
            kwargs[key] = values[i]
        for key, values in each_relations.items():
            relations[key] = values[i]
        rows.append(
            RowSpec(kwargs=kwargs, relations=relations, ref=row_refs[i] if row_refs else None)
        )
    return CreatePlan(
        scenario=scenario, index=index, factory=kind, rows=tuple(rows), group=step.ref,
        window=step.window, where=checker.place(loc, where),
    )


def _update_plan(checker: Checker, scenario: str, index: int, step: UpdateStep) -> UpdatePlan:
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
                f"unknown column {key!r} of {kind}{closest(key, columns)}",
            )
        if key == "id" or key.endswith("_id"):
            raise checker.fail(
                [*loc], where,
                f"{key!r} relates rows and cannot be updated; make a new row instead",
            )
    values = {
        key: checker.value(kind, key, value, [*loc, "set", key], f"{where}.set.{key}")
        for key, value in step.set.items()
    }
    checker.traits(kind, step.traits, [*loc, "traits"], f"{where}.traits")
    fields = checker.fields(kind, step.fields, [*loc, "fields"], f"{where}.fields")
    return UpdatePlan(
        scenario=scenario, index=index, refs=refs, set=values, regenerate=step.regenerate,
        traits=step.traits, fields=fields, where=checker.place(loc, where),
    )


@dataclass(frozen=True)
class _ClockUsed:
    """The clock a plan runs on, and where it was set (for messages)."""

    now: datetime
    window: Window | None
    origin: str

    def check_window(
        self, checker: Checker, window: Window, loc: list[str | int], where: str
    ) -> None:
        """Refuse a window out of the time range, or not ending at or before now.

        Raises:
            ScenarioError: At the window, naming where ``now`` was set.

        """
        for instant in (window.start, window.end):
            if not in_time_range(instant):
                raise checker.fail(
                    loc, where, f"times must fall {TIME_RANGE}; found {instant.isoformat()}"
                )
        if not window.start <= window.end <= self.now:
            raise checker.fail(
                loc, where,
                f"the window {window.start.isoformat()} .. {window.end.isoformat()} must start "
                f"before it ends and end at or before clock.now ({self.now.isoformat()}, "
                f"{self.origin})",
            )


def _clock(scenario: Scenario, nodes: Mapping[Path, yaml.Node]) -> _ClockUsed:
    """Return the scenario's clock (the nearest in its chain), checked.

    Raises:
        ScenarioError: When a time is out of range, or the window ends after now.

    """
    for _, path, spec in reversed(scenario.chain):
        if spec.clock is None:
            continue
        checker = Checker(path, nodes[path], {})
        if not in_time_range(spec.clock.now):
            raise checker.fail(
                ["clock", "now"], "clock.now",
                f"times must fall {TIME_RANGE}; found {spec.clock.now.isoformat()}",
            )
        line = _node_at(nodes[path], ["clock", "now"])
        at = f":{line.start_mark.line + 1}" if line is not None else ""
        used = _ClockUsed(spec.clock.now, spec.clock.window, f"set at {display(path)}{at}")
        if spec.clock.window is not None:
            used.check_window(checker, spec.clock.window, ["clock", "window"], "clock.window")
        return used
    return _ClockUsed(
        factories.AUDIT_NOW, None, "the default, as no file of the scenario has a clock"
    )


def _run_seed(scenario: Scenario, nodes: Mapping[Path, yaml.Node], seed: int | None) -> int:
    """Return the run's seed, which the ledger stores as a bigint.

    Raises:
        ScenarioError: When the seed is beyond a bigint.

    """
    fits = f"a seed is stored as a bigint, from {SEED_MIN:,} to {SEED_MAX:,}"
    if seed is not None:
        if not SEED_MIN <= seed <= SEED_MAX:
            raise ScenarioError(f"--seed {shown_value(seed)} is out of range; {fits}")
        return seed
    if not SEED_MIN <= scenario.seed <= SEED_MAX:
        path = scenario.path
        raise error_at(
            path, _node_at(nodes[path], ["seed"]), "seed",
            f"{shown_value(scenario.seed)} is out of range; {fits}",
        )
    return scenario.seed


def _check_expect(scenario: Scenario, nodes: Mapping[Path, yaml.Node]) -> None:
    """Check every target of every file of the chain, so a typo stops the run before it writes.

    Raises:
        ScenarioError: At the first target whose metric or condition is wrong.

    """
    for _, path, spec in scenario.chain:
        for metric, condition in spec.expect.items():
            try:
                targets.parse_target(metric, condition)
            except ScenarioError as error:
                node = _node_at(nodes[path], ["expect", metric])
                raise error_at(path, node, "", str(error)) from None


def make_plan(
    scenario: Scenario,
    nodes: Mapping[Path, yaml.Node],
    *,
    seed: int | None = None,
    scale: float = 1.0,
    max_rows: int | None = None,
) -> Plan:
    """Check a loaded scenario against the factories and expand it into a plan.

    Nothing is built: a plan that would build more than ``max_rows`` rows is refused first.

    Args:
        scenario: The scenario, its ``extends`` chain resolved.
        nodes: Each file's YAML node tree, for line numbers.
        seed: The run's seed; the scenario's own when None.
        scale: Multiplies the step counts (quotas kept).
        max_rows: The most rows the plan may build in memory (a tiled scenario: its tile);
            default: ``$SEED_MAX_ROWS``, else :data:`DEFAULT_MAX_ROWS`.

    Raises:
        ScenarioError: On the first name, ref, value, quota, time, target or bound that is
            wrong.
        ConfigurationError: When ``max_rows`` (or SEED_MAX_ROWS) is not a positive number.

    """
    if not (scale > 0 and math.isfinite(scale)):
        raise ScenarioError(f"--scale must be a positive number, not {scale}")
    budget = _Budget(max_rows_setting(max_rows), scale, tile=scenario.tiles is not None)
    run_seed = _run_seed(scenario, nodes, seed)
    clock = _clock(scenario, nodes)
    _check_expect(scenario, nodes)
    refs: dict[str, str] = {}
    steps: list[CreatePlan | UpdatePlan] = []
    for name, path, spec in scenario.chain:
        checker = Checker(path, nodes[path], refs)
        for index, step in enumerate(spec.steps):
            if isinstance(step, CreateStep):
                plan = _create_plan(checker, name, index, step, run_seed, scale, budget, clock)
                for row_ref in (row.ref for row in plan.rows if row.ref):
                    refs[row_ref] = plan.factory
                if step.ref:
                    refs[step.ref] = plan.factory
                steps.append(plan)
            else:
                steps.append(_update_plan(checker, name, index, step))
    return Plan(
        scenario=scenario.name, seed=run_seed, scale=scale, now=clock.now, window=clock.window,
        steps=tuple(steps), expect=scenario.expect,
        family=tuple(name for name, _, _ in scenario.chain),
    )
