"""Building a plan: run the factories step by step, resolve relations, keep the refs.

Plan → :class:`Built` (every row, parents first, and the named rows). Nothing touches a
database here; the writer persists the result.

The app allows a customer one open session (pending, waiting, live or scheduled): a partial
unique index on ``sessions.customer_user_id`` where it has one, its booking code where it has
not. A row that opens a session (a session of such a status, or a request that starts one)
is given, from a pick, a customer without an open session; what cannot keep the rule (a
customer named by ref who has one already, a pick whose customers all have one) is refused
(:func:`check_one_open_session`), naming the step and the customer.
"""

from __future__ import annotations

import bisect
import functools
import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

import sqlalchemy as sa

import factories
from seeding.domain.schema import Base
from seeding.errors import ScenarioError
from seeding.scenario.files import Pick
from seeding.scenario.kinds import KIND_OF_MODEL, KINDS
from seeding.scenario.plan import CreatePlan, Plan, RowSpec, UpdatePlan, step_seed

#: The kind of each model (from the registry).
KIND_OF = KIND_OF_MODEL

#: Each model whose rows may be a holder's one open session, with its factory's hook that
#: names the holder (``open_session_holder``: a session's customer).
_OPEN_SESSION_HOLDERS: dict[type, Callable[[Any], Any]] = {
    kind.model: hook for kind in KINDS.values()
    if (hook := getattr(kind.factory, "open_session_holder", None)) is not None
}
#: Each model whose rows are indexed by owner, with the owner attribute (``_owner`` of its
#: factory: a vehicle's customer).
_OWNERS: dict[type, tuple[str, str]] = {
    kind.model: (kind.name, owner) for kind in KINDS.values()
    if (owner := getattr(kind.factory, "_owner", None)) is not None
}


@dataclass
class Built:
    """The rows of a run, in build order (parents before children), and its named rows."""

    rows: list[Base] = field(default_factory=list)
    refs: dict[str, list[Base]] = field(default_factory=dict)
    by_kind: dict[str, list[Base]] = field(default_factory=lambda: defaultdict(list))
    by_id: dict[uuid.UUID, Base] = field(default_factory=dict)
    #: Rows of a kind with an owner (``_owner`` of its factory), by kind and owner id.
    owned: dict[str, dict[Any, list[Base]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    #: Where each step's rows start in ``rows``, and the step (``file:line: steps[i]``).
    step_starts: list[tuple[int, str]] = field(default_factory=list)
    #: The last update step that changed a row, by the row's id().
    changed_by: dict[int, str] = field(default_factory=dict)
    #: The customers with an open session, each with the index of that session in ``rows``.
    open_sessions: dict[uuid.UUID, int] = field(default_factory=dict)

    def origin(self, index: int) -> str:
        """Return the step that made (or last changed) ``rows[index]``."""
        changed = self.changed_by.get(id(self.rows[index]))
        if changed is not None:
            return changed
        at = bisect.bisect_right(self.step_starts, index, key=lambda start: start[0]) - 1
        return self.step_starts[at][1] if at >= 0 else "the factories"

    def add(self, row: Base) -> None:
        """Record one built row."""
        self.rows.append(row)
        kind = KIND_OF[type(row)]
        self.by_kind[kind].append(row)
        self.by_id[row.id] = row  # type: ignore[attr-defined]
        owner = _OWNERS.get(type(row))
        if owner is not None:
            self.owned[owner[0]][getattr(row, owner[1])].append(row)
        holder = _open_session_holder(row)
        if holder is not None:
            self.open_sessions.setdefault(holder, len(self.rows) - 1)

    def index_open_sessions(self) -> None:
        """Find the open sessions again (an update step may have changed their statuses)."""
        self.open_sessions = {}
        for index, row in enumerate(self.rows):
            holder = _open_session_holder(row)
            if holder is not None:
                self.open_sessions.setdefault(holder, index)

    def name_of(self, row_id: uuid.UUID) -> str:
        """Return how a scenario names a row: its ref, its place in a group, else its id."""
        in_group = None
        for name, rows in self.refs.items():
            for position, row in enumerate(rows):
                if row.id == row_id:  # type: ignore[attr-defined]
                    if len(rows) == 1:
                        return f"{name} ({row_id})"
                    in_group = in_group or f"{name}[{position}] ({row_id})"
        return in_group or str(row_id)

    def ref_ids(self) -> dict[str, uuid.UUID | list[uuid.UUID]]:
        """Return each ref's id (a single row) or ids (a group)."""
        return {
            name: rows[0].id if len(rows) == 1 else [r.id for r in rows]  # type: ignore[attr-defined]
            for name, rows in self.refs.items()
        }


def _open_session_holder(row: Base) -> Any | None:
    """Return the holder (a customer) whose one open session ``row`` is, else None."""
    hook = _OPEN_SESSION_HOLDERS.get(type(row))
    return None if hook is None else hook(row)


def _matches(row: Any, where: Mapping[str, Any]) -> bool:
    derived = KINDS[KIND_OF[type(row)]].derived_filters
    for key, wanted in where.items():
        value = derived[key](row) if key in derived else getattr(row, key)
        if isinstance(wanted, list):
            if value not in wanted:
                return False
        elif value != wanted:
            return False
    return True


class _Picker:
    """Chooses related rows from a set, spreading them evenly and independently, seeded.

    Each relation (a pick: its kind, group and condition) goes over its candidates in passes,
    each candidate once a pass, so the rows are spread evenly: 50 requests over 15 mechanics
    give each 3 or 4. Each pass after the first is a fresh order drawn from the relation's
    own generator; with one order for every pass, two relations with as many candidates
    would move in lockstep (15 requests over 3 customers and 3 mechanics: each customer
    always with the same mechanic). The first pass is the order the step's generator draws.
    """

    def __init__(self, built: Built, rng: random.Random) -> None:
        self.built = built
        self.rng = rng
        self.cycles: dict[tuple[Any, ...], list[Base]] = {}
        #: Each relation's generator of the orders of its passes after the first.
        self.orders: dict[tuple[Any, ...], random.Random] = {}
        self.positions: dict[tuple[Any, ...], int] = defaultdict(int)

    def candidates(
        self, kind: str, pick: Pick, extra: Mapping[str, Any] | None = None
    ) -> list[Base]:
        pool = self.built.refs[pick.ref] if pick.ref else self.built.by_kind[kind]
        where = {**pick.where, **(extra or {})}
        return [row for row in pool if _matches(row, where)]

    def pick(self, kind: str, pick: Pick, where_text: str, extra: Mapping[str, Any] | None = None,
             exclude_none: str | None = None, avoid: Mapping[Any, Any] | None = None) -> Base:
        """Return the next row of the pick's seeded passes; skip those whose id is in ``avoid``.

        Raises:
            ScenarioError: When no row matches, or every row that does is to be avoided (the
                customers of a row that opens a session, who all have an open session).

        """
        key = (kind, pick.any, pick.ref, tuple(sorted((k, str(v)) for k, v in pick.where.items())),
               tuple(sorted((k, str(v)) for k, v in (extra or {}).items())), exclude_none)
        if key not in self.cycles:
            found = self.candidates(kind, pick, extra)
            if exclude_none:
                found = [row for row in found if getattr(row, exclude_none) is not None]
            if not found:
                condition = {**pick.where, **(extra or {})}
                if exclude_none:
                    condition[exclude_none] = "set"
                raise ScenarioError(
                    f"{where_text}: no {kind} matches {condition or 'the pick'}"
                    f"{' in ' + pick.ref if pick.ref else ''}; make such rows in an earlier step"
                )
            self.rng.shuffle(found)
            self.cycles[key] = found
            # Seeded by the relation and its first order (itself drawn from the step's seed),
            # never by the step's generator: the other draws of the step stay as they were.
            ids = ",".join(str(row.id) for row in found)  # type: ignore[attr-defined]
            self.orders[key] = random.Random(f"{key!r}:{ids}")
        rows = self.cycles[key]
        # The rest of this pass, then a whole pass: every row is tried at least once.
        for _ in range(2 * len(rows)):
            position = self.positions[key]
            self.positions[key] += 1
            if position and position % len(rows) == 0:  # a new pass, in an order of its own
                self.orders[key].shuffle(rows)
            row = rows[position % len(rows)]
            if not avoid or row.id not in avoid:  # type: ignore[attr-defined]
                return row
        raise ScenarioError(
            f"{where_text}: every {kind} of the pick{' in ' + pick.ref if pick.ref else ''} "
            f"({len(rows)}) already has an open session (pending, waiting, live or scheduled), "
            "and the app allows a customer one at a time; this row would open another: make "
            "more customers for the pick, or give the row a session status that is not open"
        )


class _Related:
    """The rows built so far, as a factory's relation hook asks for them."""

    def __init__(self, built: Built, picker: _Picker, where: str) -> None:
        self.built = built
        self.picker = picker
        self.where = where

    def pick(self, kind: str, where: Mapping[str, Any] | None = None) -> Any:
        return self.picker.pick(kind, Pick(any=kind, where=dict(where or {})), self.where)

    def exist(self, kind: str, where: Mapping[str, Any] | None = None) -> bool:
        rows = self.built.by_kind[kind]
        return any(_matches(row, where) for row in rows) if where else bool(rows)

    def get(self, row_id: Any) -> Any | None:
        return self.built.by_id.get(row_id)

    def owned(self, kind: str, owner_id: Any) -> list[Base]:
        return self.built.owned[kind].get(owner_id, [])

    def choice(self, rows: Sequence[Any]) -> Any:
        return self.picker.rng.choice(rows)

    def of_kind(self, kind: str) -> Sequence[Any]:
        return self.built.by_kind[kind]


def _relations(step: CreatePlan, spec: RowSpec, built: Built, picker: _Picker) -> dict[str, Any]:
    """Resolve a row's relations to objects, in the order its kind declares them.

    A factory with relation rules of its own (``plan_relations``, ``complete_relations``) is
    asked before and after: which relations its row cannot have, and which it implies.
    """
    kind = KINDS[step.factory]
    relations = dict(spec.relations)
    plan_hook = getattr(kind.factory, "plan_relations", None)
    exclusions: Mapping[str, str] = plan_hook(spec.kwargs, relations) if plan_hook else {}
    # A row that opens a session is given a customer without one, when it is picked.
    opens_hook = getattr(kind.factory, "opens_session", None)
    opens = opens_hook is not None and opens_hook(spec.kwargs)
    holder_relation = getattr(kind.factory, "_open_session_relation", None)
    resolved: dict[str, Any] = {}
    for relation in kind.relations:
        if relation.name not in relations:
            continue
        value = relations.pop(relation.name)
        if value is None:
            resolved[relation.name] = None
            continue
        avoid = built.open_sessions if opens and relation.name == holder_relation else None
        if isinstance(value, str):
            rows = built.refs[value]
            resolved[relation.name] = (
                rows[0] if len(rows) == 1
                else picker.pick(relation.kind, Pick(ref=value), step.where, avoid=avoid)
            )
            continue
        resolved[relation.name] = picker.pick(
            relation.kind, value, f"{step.where}.with.{relation.name}",
            exclude_none=exclusions.get(relation.name), avoid=avoid,
        )
    if relations:  # validation admits only declared relations: this is a bug, not a typo
        raise ScenarioError(
            f"{step.where}: relations {', '.join(sorted(relations))} of {kind.name} were not "
            "resolved; this is a bug in seeding (the registry and the builder disagree), "
            "please report it"
        )
    complete_hook = getattr(kind.factory, "complete_relations", None)
    if complete_hook:
        complete_hook(spec.kwargs, resolved, _Related(built, picker, step.where))
    return resolved


def _create(step: CreatePlan, plan: Plan, built: Built) -> None:
    cls = KINDS[step.factory].factory
    picker = _Picker(built, random.Random(step_seed(plan.seed, step.scenario, step.index) ^ 1))
    window = step.window or plan.window
    start = window.start if window else plan.now - timedelta(days=30)
    end = window.end if window else plan.now
    made: list[Base] = []
    with factories.clock(plan.now, start=start, end=end):
        for spec in step.rows:
            relations = _relations(step, spec, built, picker)
            with factories.collect() as rows:
                try:
                    row = cls.build(**spec.kwargs, **relations)
                except ScenarioError:
                    raise
                except Exception as error:  # a factory rule, or a value the model refuses
                    raise ScenarioError(f"{step.where}: {error}") from None
            for new in rows:
                built.add(new)  # type: ignore[arg-type]
            made.append(row)
            if spec.ref:
                built.refs[spec.ref] = [row]
    if step.group:
        built.refs[step.group] = made


def _update(step: UpdatePlan, plan: Plan, built: Built) -> None:
    rows = [row for ref in step.refs for row in built.refs[ref]]
    if not rows:  # a group of no rows
        return
    kind = KIND_OF[type(rows[0])]
    cls = KINDS[kind].factory
    with factories.clock(plan.now):
        for row in rows:
            built.changed_by[id(row)] = step.where
            if step.regenerate:
                with factories.collect():
                    try:
                        fresh = cls.build(**{t: True for t in step.traits}, **step.fields)
                    except ScenarioError:
                        raise
                    except Exception as error:  # a factory rule, or a value the model refuses
                        raise ScenarioError(f"{step.where}: {error}") from None
                for key in step.regenerate:
                    setattr(row, key, getattr(fresh, key))
            for key, value in step.set.items():
                setattr(row, key, value)
            # Columns that repeat others in another form follow them (unless set too).
            derive = getattr(cls, "derive", None)
            if derive is not None:
                derive(row, given=set(step.set))
            check = getattr(cls, "_check", None)
            if check is not None:
                try:
                    check(row)
                except Exception as error:
                    raise ScenarioError(f"{step.where}: {error}") from None
    # Rows that copy the changed rows' values follow them (a request's customer_* copies):
    # each factory's ``after_update`` hook. An update may open or close a session.
    related = _Related(built, _Picker(built, random.Random(0)), step.where)
    for other in KINDS.values():
        hook = getattr(other.factory, "after_update", None)
        if hook is not None:
            hook(kind, rows, related)
    built.index_open_sessions()


def _after_build(built: Built) -> None:
    """Let each factory complete its rows from the whole run (``after_build`` hooks).

    A mechanic's ``completed_sessions`` and ``rating`` come from the sessions built.
    """
    related = _Related(built, _Picker(built, random.Random(0)), "the factories")
    for kind in KINDS.values():
        hook = getattr(kind.factory, "after_build", None)
        if hook is not None:
            hook(related)


@functools.cache
def unique_keys(model: type[Base]) -> tuple[tuple[str, ...], ...]:
    """Return the attribute names of each unique key of a model (its primary key first)."""
    table = cast(sa.Table, model.__table__)
    mapper = sa.inspect(model)
    unique = (sa.PrimaryKeyConstraint, sa.UniqueConstraint)
    keys: list[tuple[str, ...]] = []
    for constraint in sorted(
        (c for c in table.constraints if isinstance(c, unique)),
        key=lambda c: (not isinstance(c, sa.PrimaryKeyConstraint), str(c.name)),
    ):
        keys.append(tuple(mapper.get_property_by_column(c).key for c in constraint.columns))
    return tuple(keys)


def check_unique(built: Built) -> None:
    """Refuse two rows with the same value of a unique key (an id, a slug, an email, ...).

    The database would refuse them too, but only once the run is writing.

    Raises:
        ScenarioError: Naming the step of the second row and the step of the first.

    """
    seen: dict[tuple[str, tuple[str, ...], tuple[Any, ...]], int] = {}
    for index, row in enumerate(built.rows):
        for attrs in unique_keys(type(row)):
            values = tuple(getattr(row, attr) for attr in attrs)
            if any(value is None for value in values):
                continue
            key = (row.__tablename__, attrs, values)
            first = seen.setdefault(key, index)
            if first != index:
                shown = ", ".join(str(value) for value in values)
                raise ScenarioError(
                    f"{built.origin(index)}: {row.__tablename__}.{', '.join(attrs)} {shown!r} "
                    f"is already used by a row of {built.origin(first)}; a unique value can be "
                    "used once (leave the field to the factory, or give each row its own value)"
                )


def check_unique_across_copies(built: Built, copies: int) -> None:
    """Refuse a unique text of a tile that every copy of it would repeat.

    A copy rewrites the hex of a row's ids written into its texts (see seeding.db.tiles), so a
    unique text (a slug, an email) differs between copies only when it holds the first six
    hex digits of one of its row's ids, as the factories make it.

    Raises:
        ScenarioError: Naming the step of the first such row.

    """
    if copies <= 1:
        return
    for index, row in enumerate(built.rows):
        model = type(row)
        columns = sa.inspect(model).columns
        for attrs in unique_keys(model)[1:]:
            texts = [getattr(row, a) for a in attrs if isinstance(getattr(row, a), str)]
            if not texts:
                continue
            hexes = [
                value.hex[:6] for value in (getattr(row, c.key) for c in columns)
                if isinstance(value, uuid.UUID)
            ]
            if not any(h in text for text in texts for h in hexes):
                raise ScenarioError(
                    f"{built.origin(index)}: {row.__tablename__}.{', '.join(attrs)} "
                    f"{', '.join(texts)!r} would be the same in each of the {copies:,} copies of "
                    "the tile, and it must be unique; leave it to the factory (which writes the "
                    "row's id into it, and each copy its own id)"
                )


def check_one_open_session(built: Built) -> None:
    """Refuse a customer with two open sessions (pending, waiting, live or scheduled).

    The app's partial unique index on ``sessions.customer_user_id`` would refuse the second
    where the database has it, and its booking code keeps the rule where it has not.

    Raises:
        ScenarioError: Naming the step of the second session, the customer, and the step of
            the first.

    """
    first: dict[uuid.UUID, int] = {}
    for index, row in enumerate(built.rows):
        customer = _open_session_holder(row)
        if customer is None:
            continue
        earlier = first.setdefault(customer, index)
        if earlier != index:
            raise ScenarioError(
                f"{built.origin(index)}: customer {built.name_of(customer)} would have two open "
                f"sessions, a {row.status} one from here and a "  # type: ignore[attr-defined]
                f"{built.rows[earlier].status} one from {built.origin(earlier)}; "  # type: ignore[attr-defined]
                "the app allows a customer one open session "
                "(pending, waiting, live or scheduled) at a time; give this row another "
                "customer (a pick gives one without an open session), or a session status "
                "that is not open"
            )


def build(plan: Plan) -> Built:
    """Build every row of a plan, in memory.

    Raises:
        ScenarioError: When a step cannot be built (no row matches a pick, a rule is broken,
            two rows share a unique value, a customer would have two open sessions).

    """
    built = Built()
    for step in plan.steps:
        factories.reseed(step_seed(plan.seed, step.scenario, step.index))
        built.step_starts.append((len(built.rows), step.where))
        if isinstance(step, CreatePlan):
            _create(step, plan, built)
        else:
            _update(step, plan, built)
    _after_build(built)
    check_unique(built)
    check_one_open_session(built)
    return built
