"""Doctor on tables and columns: missing ones, types, vocabularies, unfilled NOT NULL."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.base import PGDialect

from seeding.db import admit
from seeding.db.catalog import Check, Column, Table
from seeding.db.catalog import allowed_values as listed_values
from seeding.db.fit import TEXT_TYPES
from seeding.db.identifiers import shown
from seeding.doctor.problems import (
    AUTH_SCHEMA,
    COMPATIBLE_TYPES,
    SCHEMA,
    Problem,
    app_table,
    listing,
)
from seeding.scenario.kinds import Kind

# SQLAlchemy leaves the dialect constructor unannotated.
_DIALECT: Final = PGDialect()  # type: ignore[no-untyped-call]


#: The first name in a CHECK's text: the column a list of its values is about.
_FIRST_NAME: Final = re.compile(
    r'^\s*(?:CHECK\b)?[\s(]*(?:"((?:[^"]|"")*)"|([A-Za-z_][A-Za-z0-9_$]*))', re.IGNORECASE
)


def vocabulary(column: sa.Column[Any]) -> tuple[str, ...] | None:
    """Return the values the model allows in a column of the tool's schema, if it lists some.

    The list is the column's enum labels, or the literals of its ``IN (...)`` CHECK.
    """
    if isinstance(column.type, sa.Enum):
        return tuple(column.type.enums)
    table = column.table
    assert isinstance(table, sa.Table)
    for constraint in table.constraints:
        if not isinstance(constraint, sa.CheckConstraint):
            continue
        values = listed_values(str(constraint.sqltext), column.name)
        if values is not None:
            return values
    return None


def written_values(kind: Kind | None, column: sa.Column[Any]) -> tuple[str, ...] | None:
    """Return the values the tool may write in a model column, if it has a closed list.

    The model's vocabulary (:func:`vocabulary`) where it has one: no value outside it is
    stored, whatever a scenario names. Else the registry's vocabulary of that field
    (``Kind.vocabularies``), if any.
    """
    model = vocabulary(column)
    if model is not None or kind is None:
        return model
    key = kind.model.__mapper__.get_property_by_column(column).key
    listed = kind.vocabularies.get(key)
    return None if listed is None else tuple(str(value) for value in listed)


def allowed_values(definition: str) -> frozenset[str] | None:
    """Return the values a CHECK allows when it is a list of literals, else None.

    Reads ``col = ANY (ARRAY['a'::text, ...])`` (what ``pg_get_constraintdef`` makes of
    ``IN (...)``), ``col IN ('a', ...)`` and ``col = 'a' OR col = 'b'``; an ``IS NULL`` branch
    is allowed. A CHECK that negates, compares or pattern-matches is not a list, nor one
    that only allows NULL. The column is the first name in the CHECK, and every term must be
    about it (see :func:`seeding.db.checks.allowed_values`, which reads it).

    Args:
        definition: The CHECK as ``pg_get_constraintdef`` returns it.

    """
    match = _FIRST_NAME.match(definition)
    if match is None:
        return None
    column = match[2] if match[1] is None else match[1].replace('""', '"')
    values = _listed(definition, column)
    return None if values is None else frozenset(values)


def _listed(definition: str, column: str) -> tuple[str, ...] | None:
    """Return the values a CHECK about ``column`` allows when it lists some, else None."""
    values = listed_values(definition, column)
    # A CHECK that allows only NULL lists nothing the doctor can widen.
    return values if values else None


def missing_table(name: str, app_database: bool) -> Problem:
    """Return the problem of a table the tool writes that the database lacks."""
    fix = (
        "create it with the app's migrations"
        if app_database
        else "run `seed db create`, which creates the missing tables and leaves the others "
        "as they are"
    )
    return Problem(
        name,
        None,
        "missing_table",
        f"{name}: table missing from schema {SCHEMA}; the tool writes it; fix: {fix}",
    )


def _found_type(live: Column) -> str:
    """Return a live column's type as the doctor compares it: an enum by its unqualified name."""
    if live.is_enum and live.enum_name is not None:
        return live.enum_name
    return live.base_type


def _expected_type(column: sa.Column[Any]) -> str:
    """Return the PostgreSQL name of a model column's type, without modifiers."""
    if isinstance(column.type, sa.Enum) and column.type.name:
        return column.type.name
    compiled = column.type.compile(dialect=_DIALECT).lower()
    return re.sub(r"\(.*?\)", "", compiled).strip()


def live_column(kind: Kind | None, name: str, live: Table) -> Column | None:
    """Return the live column a model column is written to: its own name, or a live name."""
    names = (name, *(kind.live_names.get(name, ()) if kind is not None else ()))
    return next((live.columns[n] for n in names if n in live.columns), None)


def column_findings(
    table: sa.Table, kind: Kind | None, column: sa.Column[Any], live_table: Table,
    written: set[str],
) -> list[Problem]:
    """Return the findings on one column of the tool's table against the live table."""
    live = live_column(kind, column.name, live_table)
    if live is None:
        other = kind.live_names.get(column.name, ()) if kind is not None else ()
        also = f" (nor {', '.join(other)})" if other else ""
        return [
            Problem(
                table.name,
                column.name,
                "missing_column",
                f"{table.name}.{column.name}: the database has no such column{also}; "
                "the tool's values for it are not written (a run leaves it out)",
                severity="note",
            )
        ]
    where = f"{table.name}.{live.name}"
    if live.generated or live.identity == "a":
        how = "a generated column" if live.generated else "an identity column (ALWAYS)"
        return [
            Problem(
                table.name,
                live.name,
                "generated_column",
                f"{where}: {how}; the database fills it, the tool's values for it are not "
                "written",
                severity="note",
            )
        ]
    if live.name in written:
        return []
    written.add(live.name)
    expected = _expected_type(column)
    values = written_values(kind, column)
    if not _type_fits(expected, values is not None, live):
        found = _found_type(live)
        name = shown(live.name)
        return [
            Problem(
                table.name,
                live.name,
                "type_mismatch",
                f"{where}: type {found}, but the tool writes {expected}; fix: change the "
                f"column if the app agrees (ALTER TABLE {app_table(table.name)} ALTER COLUMN "
                f"{name} TYPE {expected} USING {name}::{expected})",
            )
        ]
    if values is None:
        return []
    return _vocabulary_problems(table.name, live, values, live_table.checks)


def _type_fits(expected: str, has_vocabulary: bool, live: Column) -> bool:
    """Return whether the tool's values for a column can be written in the live column."""
    if live.base_type in TEXT_TYPES:
        return True
    if has_vocabulary and live.is_enum:
        return True
    found = _found_type(live)
    return found == expected or found in COMPATIBLE_TYPES.get(expected, frozenset())


def _vocabulary_problems(
    table: str, live: Column, values: tuple[str, ...], checks: Sequence[Check]
) -> list[Problem]:
    column = live.name
    where = f"{table}.{column}"
    problems: list[Problem] = []
    if live.is_enum and live.enum_schema is not None and live.enum_name is not None:
        lacking = [value for value in values if value not in live.enum_labels]
        if lacking:
            statements = admit.enum_labels_added(live.enum_schema, live.enum_name, lacking)
            in_auth = live.enum_schema == AUTH_SCHEMA
            how = (
                "add the labels yourself (doctor never changes schema auth)"
                if in_auth else "`seed db doctor --apply` adds the labels"
            )
            problems.append(
                Problem(
                    table,
                    column,
                    "check_narrower",
                    f"{where}: enum {live.enum_name} lacks {listing(lacking)}, which the "
                    f"tool may write; fix: {how}",
                    "\n".join(statements),
                    apply_sql=() if in_auth else statements,
                )
            )
    for check in checks:
        if check.columns != (column,) or not check.enforced:
            continue
        allowed = _listed(check.definition, column)
        if allowed is None:
            continue
        lacking = [value for value in values if value not in allowed]
        if not lacking:
            continue
        statement = admit.check_widened(SCHEMA, table, check, column, allowed, lacking)
        problems.append(
            Problem(
                table,
                column,
                "check_narrower",
                f"{where}: CHECK {check.name} lacks {listing(lacking)}, which the tool "
                "may write; fix: `seed db doctor --apply` widens it to what it allows and "
                "what the tool writes",
                statement,
                apply_sql=(statement,),
            )
        )
    return problems


def unfilled_problems(table: str, live: Table, written: set[str]) -> list[Problem]:
    """Return a problem for each live NOT NULL column without a default the tool leaves out."""
    problems: list[Problem] = []
    for column in live.required_columns():
        if column.name in written:
            continue
        alter = f"ALTER TABLE {app_table(table)} ALTER COLUMN {shown(column.name)}"
        problems.append(
            Problem(
                table,
                column.name,
                "not_null_unfilled",
                f"{table}.{column.name}: NOT NULL without a default, and the tool does not write "
                f"it, so every row the tool inserts into {table} would fail; fix: give it "
                f"a default ({alter} SET DEFAULT ...) or drop NOT NULL ({alter} DROP NOT NULL)",
            )
        )
    return problems
