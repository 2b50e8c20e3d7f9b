"""Doctor on foreign keys: the keys the tool's rows need, and where the live ones point."""

from __future__ import annotations

from collections.abc import Mapping

from seeding.db.catalog import ForeignKey, Table
from seeding.db.identifiers import shown
from seeding.doctor.columns import live_column
from seeding.doctor.problems import (
    AUTH_SCHEMA,
    KIND_OF_TABLE,
    SCHEMA,
    UNDECLARED_FOREIGN_KEYS,
    ForeignKeyNeed,
    Problem,
    app_table,
)
from seeding.domain.schema import Base


def foreign_key_needs() -> list[ForeignKeyNeed]:
    """Return the foreign keys to check: the tool schema's and the undeclared ones."""
    declared = [
        ForeignKeyNeed(table.name, key.parent.name, key.column.table.name, key.column.name)
        for table in Base.metadata.sorted_tables
        for key in sorted(table.foreign_keys, key=lambda key: key.parent.name)
    ]
    return declared + list(UNDECLARED_FOREIGN_KEYS)


def foreign_key_findings(
    live_tables: Mapping[str, Table], app_database: bool
) -> list[Problem]:
    """Return the findings on the foreign keys the tool's rows need (see the package)."""
    found: list[Problem] = []
    for need in foreign_key_needs():
        live = live_tables.get(need.table)
        referred = live_tables.get(need.referred_table)
        # A missing table or column is reported already, and the fix could not run.
        if live is None or referred is None or referred.column(need.referred_column) is None:
            continue
        column = live_column(KIND_OF_TABLE.get(need.table), need.column, live)
        if column is None:
            continue
        keys = live.foreign_keys_on(column.name)
        if any(_satisfies(key, column.name, need) for key in keys):
            continue
        if keys:
            found.append(_key_elsewhere(need, column.name, keys[0]))
        else:
            found.append(_missing_key(need, column.name, live, app_database))
    return found


def _satisfies(key: ForeignKey, column: str, need: ForeignKeyNeed) -> bool:
    return (
        key.columns == (column,)
        and key.target_schema == SCHEMA
        and key.target_table == need.referred_table
        and key.target_columns == (need.referred_column,)
    )


def _key_elsewhere(need: ForeignKeyNeed, column: str, key: ForeignKey) -> Problem:
    """Return the finding for a column whose key points elsewhere (never given a second)."""
    where = f"{need.table}.{column}"
    target = f"{need.referred_table}({need.referred_column})"
    names = (key.target_table,) if key.target_schema == SCHEMA else (
        key.target_schema, key.target_table
    )
    found = shown(*names) + f"({', '.join(shown(c) for c in key.target_columns)})"
    referred = KIND_OF_TABLE.get(need.referred_table)
    to_auth = (key.target_schema, key.target_table) == (AUTH_SCHEMA, "users")
    if to_auth and referred is not None and referred.auth_user is not None:
        person = (
            f"each {referred.name}'s auth user id ({need.referred_table}.{referred.auth_user})"
        )
        embed = (
            f"; PostgREST cannot embed {need.referred_table} through it (PGRST200)"
            if need.embedded_join else ""
        )
        why = (
            f" (one to {target} beside it would refuse every value this one accepts)"
            if referred.auth_user != need.referred_column else ""
        )
        return Problem(
            need.table,
            column,
            "foreign_key_elsewhere",
            f"{where}: its foreign key {key.name} points at {found}, not {target}: a run "
            f"writes {person} there, as the key wants{embed}; doctor never adds a second "
            f"key on a column that has one{why}",
            severity="note",
        )
    return Problem(
        need.table,
        column,
        "foreign_key_elsewhere",
        f"{where}: its foreign key {key.name} points at {found}, but the tool writes "
        f"{target} ids there, which the key refuses; fix: the app's migrations decide "
        f"(doctor adds no second key on a column that has one)",
    )


def _missing_key(
    need: ForeignKeyNeed, column: str, live: Table, app_database: bool
) -> Problem:
    """Return the finding for a column without any key: a problem, or a note (own schema)."""
    name = need.name
    taken = _constraint_named(live, name)
    renamed = ""
    if taken is not None:
        name = f"{need.table}_{need.column}_{need.referred_table}_fkey"
        renamed = f" ({need.name} is taken by a constraint {taken}; the fix names it {name})"
    target = f"{need.referred_table}({need.referred_column})"
    statement = (
        f"ALTER TABLE {app_table(need.table)} ADD CONSTRAINT {shown(name)} "
        f"FOREIGN KEY ({shown(column)}) REFERENCES "
        f"{app_table(need.referred_table)}({shown(need.referred_column)}) NOT VALID;"
    )
    where = f"{need.table}.{column}"
    joins = f"PostgREST embedded joins ({need.referred_table}!{name}) fail with PGRST200"
    if need.embedded_join and not app_database:
        return Problem(
            need.table,
            column,
            "missing_foreign_key",
            f"{where}: no foreign key to {target}, on purpose: the app's migrations point it "
            "at auth.users, which the tool's own schema (`seed db create`, no auth schema) "
            f"lacks, so it has none; {joins}; `--apply` leaves it: add it yourself if you "
            f"embed here{renamed}",
            statement,
            severity="note",
        )
    return Problem(
        need.table,
        column,
        "missing_foreign_key",
        f"{where}: no foreign key at all, where the tool's schema has one to {target}, so "
        f"{joins}{renamed}; fix: `seed db doctor --apply` adds it NOT VALID (existing orphan "
        "rows do not block it, new rows are checked)",
        statement,
        apply_sql=(statement,),
    )


def _constraint_named(table: Table, name: str) -> str | None:
    """Return the definition of the table's constraint called ``name``, if it has one.

    A CHECK or foreign key as ``pg_get_constraintdef`` gives it; a primary key or UNIQUE
    constraint spelt from its columns (the catalog keeps no definition of it).
    """
    for check in table.checks:
        if check.name == name:
            return check.definition
    for key in table.foreign_keys:
        if key.name == name:
            return key.definition
    for unique in table.uniques:
        if unique.constraint and unique.name == name:
            kind = "PRIMARY KEY" if unique.primary else "UNIQUE"
            nulls = "" if unique.nulls_distinct else " NULLS NOT DISTINCT"
            return f"{kind}{nulls} ({', '.join(shown(c) for c in unique.columns)})"
    return None
