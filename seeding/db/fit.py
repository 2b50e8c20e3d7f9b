"""Fitting built rows to the target's live schema: what each table gets, or what does not fit.

Read, don't assume: before a run writes, the live catalog (:mod:`seeding.db.catalog`) is read and
every table's rows are fitted to it:

- only the columns the live table has are written; the tool's columns it lacks are listed
  once (:attr:`Fit.absent`), not an error;
- a column the app names otherwise is written under its live name (``vehicles.customer_id``
  is ``vehicles.user_id`` in the app: the registry's ``live_names``);
- a key whose live target is ``auth.users`` gets the related person's auth id
  (``sessions.mechanic_id``: the mechanic's ``user_id`` when it points at ``auth.users``, the
  mechanic's ``id`` when it points at ``mechanics``);
- a value is written in the live column's type (``vehicles.year`` is text in the app).

What cannot fit is found here, before anything is written, and raised as one
:class:`~seeding.errors.SchemaMismatchError` listing every problem: a table the database
lacks, a NOT NULL column with no default the tool cannot fill, a value an enum or a CHECK
rejects (with the values the scenario needs and the statement that would admit them), a
duplicate under a unique key or a partial unique index.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from seeding.db import admit, ledger
from seeding.db import catalog as live
from seeding.db.identifiers import shown
from seeding.domain.schema import APP_TABLES, Base
from seeding.errors import SchemaMismatchError
from seeding.scenario.kinds import KIND_OF_MODEL, KINDS

#: Turns a row of the tool's schema into the value of one live column.
Getter = Callable[[Any], Any]

#: Live types whose values are written as text whatever the tool's type.
TEXT_TYPES: Final = frozenset({"text", "character varying", "character"})


@dataclass(frozen=True)
class TableFit:
    """How one table's rows are written to the live database."""

    #: The live table, schema-qualified as the ledger names it (``profiles``, ``auth.users``).
    table: str
    schema: str
    name: str
    #: The live columns written, in order, and how each value is read from a row.
    columns: tuple[str, ...]
    getters: tuple[Getter, ...]
    #: The live types of the written columns (``jsonb`` values need wrapping).
    types: tuple[str, ...]
    #: The column whose conflict means "the app made this row first; write over it".
    upsert_on: str | None = None

    def values(self, row: Any) -> tuple[Any, ...]:
        """Return a row's values in :attr:`columns` order."""
        return tuple(getter(row) for getter in self.getters)


@dataclass(frozen=True)
class Fit:
    """How a run's rows are written to this database."""

    tables: Mapping[str, TableFit]
    #: ``table.column`` the tool fills but the database lacks (not written).
    absent: tuple[str, ...] = ()
    #: Whether the database is Supabase's (has ``auth.users``): people get auth users.
    auth: bool = False


@dataclass(frozen=True)
class Problem:
    """One thing that keeps the rows from fitting, and its fix."""

    table: str
    column: str | None
    message: str
    fix: str | None = None

    def describe(self) -> str:
        """Return the problem as one line of the error."""
        where = f"{self.table}.{self.column}" if self.column else self.table
        return f"{where}: {self.message}" + (f"; fix: {self.fix}" if self.fix else "")


def auth_id(row: Any) -> Any:
    """Return the auth user id of a person row (a customer's profile, a mechanic), else None."""
    kind = KINDS[KIND_OF_MODEL[type(row)]]
    return getattr(row, kind.auth_user) if kind.auth_user else None


def fit(catalog: live.Catalog, rows: Sequence[Base]) -> Fit:
    """Fit built rows to a live schema.

    Args:
        catalog: The target's live schema.
        rows: The rows of the run (parents before children).

    Raises:
        SchemaMismatchError: Listing every table, column and value that does not fit, with
            its fix; nothing has been written.

    """
    by_id = {row.id: row for row in rows}  # type: ignore[attr-defined]
    present = {type(row).__table__.name for row in rows}  # type: ignore[attr-defined]
    problems: list[Problem] = []
    absent: list[str] = []
    tables: dict[str, TableFit] = {}
    auth = catalog.table("users", "auth") is not None
    for model_table in APP_TABLES:
        if model_table.name not in present:
            continue
        table = catalog.table(model_table.name)
        if table is None:
            problems.append(Problem(
                model_table.name, None, "the database has no such table",
                "create it with the app's migrations (or `seed db create` on a database "
                "the tool owns)",
            ))
            continue
        table_rows = [row for row in rows if type(row).__table__.name == model_table.name]  # type: ignore[attr-defined]
        fitted, missing = _fit_table(table, table_rows[0], by_id, catalog, problems)
        absent.extend(f"{table.name}.{name}" for name in missing)
        tables[table.name] = fitted
        _check_values(table, fitted, table_rows, problems)
        _check_unique(table, fitted, table_rows, problems)
    if problems:
        raise SchemaMismatchError(
            f"the scenario's rows do not fit this database ({_count(problems, 'problem')}); "
            "nothing was written: " + " | ".join(p.describe() for p in problems),
            problems=[p.describe() for p in problems],
        )
    return Fit(tables, tuple(absent), auth)


def _fit_table(
    table: live.Table, sample: Base, by_id: Mapping[Any, Base], catalog: live.Catalog,
    problems: list[Problem],
) -> tuple[TableFit, list[str]]:
    kind = KINDS[KIND_OF_MODEL[type(sample)]]
    mapper = type(sample).__mapper__
    columns: list[str] = []
    getters: list[Getter] = []
    types: list[str] = []
    missing: list[str] = []
    for model_column in type(sample).__table__.columns:
        key = mapper.get_property_by_column(model_column).key
        names = (model_column.name, *kind.live_names.get(model_column.name, ()))
        column = next((table.columns[n] for n in names if n in table.columns), None)
        if column is None:
            missing.append(model_column.name)
            continue
        if column.generated or column.identity == "a" or column.name in columns:
            continue
        getter = _getter(key, column, table, by_id)
        columns.append(column.name)
        getters.append(getter)
        types.append(column.base_type)
    for column in table.required_columns():
        if column.name not in columns:
            problems.append(Problem(
                table.name, column.name,
                "is NOT NULL with no default, and the tool has no value for it",
                f"give it a default (ALTER TABLE {shown(table.schema, table.name)} ALTER "
                f"COLUMN {shown(column.name)} SET DEFAULT ...), or tell us which value it "
                "should hold",
            ))
    upsert = "id" if (kind.auth_user == "id" and catalog.table("users", "auth") is not None
                      and "id" in columns) else None
    fitted = TableFit(
        ledger.table_name(table.schema, table.name),
        table.schema, table.name, tuple(columns), tuple(getters), tuple(types), upsert,
    )
    return fitted, missing


def _getter(key: str, column: live.Column, table: live.Table, by_id: Mapping[Any, Base]
            ) -> Getter:
    """Return how one live column's value is read from a row."""
    keys = table.foreign_keys_on(column.name)
    to_auth = any(k.target_schema == "auth" and k.target_table == "users" for k in keys)

    def read(row: Any) -> Any:
        return getattr(row, key)

    getter: Getter = read
    if to_auth:
        def person(row: Any) -> Any:
            value = getattr(row, key)
            related = by_id.get(value)
            return auth_id(related) if related is not None else value
        getter = person
    if column.base_type in TEXT_TYPES:
        inner = getter

        def as_text(row: Any) -> Any:
            value = inner(row)
            return value if value is None or isinstance(value, str) else str(value)
        getter = as_text
    return getter


def _check_values(table: live.Table, fitted: TableFit, rows: Iterable[Base],
                  problems: list[Problem]) -> None:
    """Name every value an enum or a list CHECK rejects, with what would admit it."""
    for index, name in enumerate(fitted.columns):
        column = table.columns[name]
        if column.allowed is None:
            continue
        allowed = set(column.allowed)
        needed: dict[str, int] = defaultdict(int)
        for row in rows:
            value = fitted.getters[index](row)
            if value is not None and str(value) not in allowed:
                needed[str(value)] += 1
        if not needed:
            continue
        values = ", ".join(f"'{v}' ({_count_rows(n)})" for v, n in sorted(needed.items()))
        problems.append(Problem(
            table.name, name,
            f"the scenario needs {values}, which the database does not allow "
            f"(it allows {', '.join(column.allowed)})",
            _admit(table, column, sorted(needed)),
        ))


def _admit(table: live.Table, column: live.Column, values: Sequence[str]) -> str:
    """Return the statements that would admit the values (what doctor --apply runs)."""
    if column.is_enum and column.enum_name:
        adds = admit.enum_labels_added(column.enum_schema or "public", column.enum_name, values)
        return (
            f"{' '.join(adds)} (`seed db doctor --apply` runs it), or leave those rows out of "
            "the scenario"
        )
    checks = [c for c in table.checks if c.columns == (column.name,)]
    if checks:
        widened = admit.check_widened(table.schema, table.name, checks[0], column.name,
                                      column.allowed or (), values)
        return (
            f"widen the CHECK: {widened} (`seed db doctor --apply` runs it), or leave "
            "those values out of the scenario"
        )
    return "leave those values out of the scenario"


_PREDICATE_COLUMN = re.compile(r"^\(*\s*\(?\"?([a-z_][a-z0-9_]*)\"?\)?")


def _check_unique(table: live.Table, fitted: TableFit, rows: Sequence[Base],
                  problems: list[Problem]) -> None:
    """Name duplicates the run's own rows would make under a unique key or partial index."""
    for unique in table.uniques:
        if unique.expressions or not unique.columns or unique.primary:
            continue
        if any(c not in fitted.columns for c in unique.columns):
            continue
        at = [fitted.columns.index(c) for c in unique.columns]
        scoped: tuple[int, set[str]] | None = None
        if unique.predicate is not None:
            matched = _PREDICATE_COLUMN.match(unique.predicate)
            column = matched.group(1) if matched else None
            if column is None or column not in fitted.columns:
                continue  # a predicate this check cannot read: the database will tell
            admitted = live.allowed_values(unique.predicate, column)
            if admitted is None:
                continue
            scoped = (fitted.columns.index(column), set(admitted))
        seen: dict[tuple[Any, ...], int] = defaultdict(int)
        for row in rows:
            if scoped is not None:
                value = fitted.getters[scoped[0]](row)
                if value is None or str(value) not in scoped[1]:
                    continue
            key = tuple(fitted.getters[i](row) for i in at)
            if all(v is not None for v in key) or not unique.nulls_distinct:
                seen[key] += 1
        doubled = {key: n for key, n in seen.items() if n > 1}
        if doubled:
            first = next(iter(doubled))
            scope = f" where {unique.predicate}" if unique.predicate else ""
            problems.append(Problem(
                table.name, ", ".join(unique.columns),
                f"{len(doubled)} value{'s' if len(doubled) != 1 else ''} would repeat under "
                f"the unique index {unique.name}{scope} (e.g. {_shown_key(first)} "
                f"{doubled[first]} times)",
                "change the scenario so that each value occurs once",
            ))


def _shown_key(key: tuple[Any, ...]) -> str:
    return ", ".join(str(v) for v in key)


def _count(items: Sequence[Any], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _count_rows(n: int) -> str:
    return f"{n} row{'' if n == 1 else 's'}"
