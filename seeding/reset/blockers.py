"""The rows in a reset's way: the references into the app's tables, and the SQL that finds them.

A *blocker* is a row the reset would keep (a row the tool did not write, or a row of a run not
being reset) whose reference points at a row it would delete. Choices made here, and nowhere
else:

- The references checked are the foreign keys of ``seeding.domain.schema``, the app's references
  that have no foreign key (:data:`UNDECLARED_REFERENCES`), and every one-column foreign key
  the live database has into an app table. The live app has more tables than the tool models,
  and a key ``ON DELETE CASCADE`` or ``SET NULL`` from one of them would otherwise change rows
  the tool did not write.
- A reference that matters (its target table has rows to delete) whose table or column the
  database lacks is a SchemaError: it cannot be checked, and "nothing points there" would be
  a guess.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from seeding.db import ledger
from seeding.db.catalog import Catalog, read_catalog
from seeding.db.identifiers import quote
from seeding.domain.schema import APP_TABLES
from seeding.errors import ResetBlockedError, SchemaError
from seeding.reset.tables import APP_SCHEMA, app_table, ledger_name
from seeding.scenario.kinds import KINDS


@dataclass(frozen=True)
class Reference:
    """A column whose values are the ids (or another key) of rows of an app table."""

    table: str
    column: str
    points_at_table: str
    points_at_column: str = "id"
    #: The referencing table's schema: live foreign keys may come from outside ``public``.
    schema: str = APP_SCHEMA
    #: The referencing table's one-column primary key; None when it has none (ctid is shown).
    primary_key: str | None = "id"

    @property
    def where(self) -> str:
        """Return the referencing table's name, with its schema when that is not ``public``."""
        return self.table if self.schema == APP_SCHEMA else f"{self.schema}.{self.table}"

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """Return what identifies the reference, whichever way it was found."""
        return (self.schema, self.table, self.column, self.points_at_table, self.points_at_column)


#: The app's references that have no foreign key into ``public``. Each column holds an auth
#: user's id, which is also that user's ``profiles.id`` (see ``seeding.domain.schema``); a tester's
#: request for a seeded customer is such a reference.
UNDECLARED_REFERENCES: Final = tuple(
    Reference(kind.table, ref.column, ref.table, ref.target_column)
    for kind in KINDS.values()
    for ref in kind.undeclared_references
)


def references() -> tuple[Reference, ...]:
    """Return the references the tool knows: the schema's foreign keys, then the undeclared."""
    declared = tuple(
        Reference(table.name, key.parent.name, key.column.table.name, key.column.name)
        for table in APP_TABLES
        for key in sorted(table.foreign_keys, key=lambda key: key.parent.name)
    )
    return declared + UNDECLARED_REFERENCES


@dataclass(frozen=True)
class Blocker:
    """A row the reset would keep that points at a row it would delete."""

    #: The kept row's table (with its schema when that is not ``public``).
    table: str
    #: The kept row's primary key as text (its ctid when the table has no one-column key).
    row_id: str
    column: str
    points_at_table: str
    #: The id of the row that would be deleted.
    points_at_id: uuid.UUID
    #: The run that wrote the kept row, when a run not being reset did; None for rows the
    #: tool did not write.
    run_id: uuid.UUID | None

    def describe(self) -> str:
        """Return ``table id: column → table id`` and whose row it is, for a listing."""
        owner = f" (written by run {self.run_id})" if self.run_id else ""
        return (
            f"{self.table} {self.row_id}: {self.column} → "
            f"{self.points_at_table} {self.points_at_id}{owner}"
        )


def live_references(connection: Connection, catalog: Catalog) -> tuple[Reference, ...]:
    """Return the live one-column foreign keys into the app's tables, from any schema.

    ``catalog`` holds the app's schema. A key's own table shows its primary key only when its
    schema was read: the schemas it lacks are read here, once for all of them.
    """
    targets = [(APP_SCHEMA, table.name) for table in APP_TABLES]
    targets += [ledger.split(name) for name in ledger.AUTH_TABLES]
    keys = sorted(
        (
            key
            for schema, name in targets
            if (live := catalog.table(name, schema)) is not None
            for key in live.referenced_by
            if len(key.columns) == 1 and key.schema != ledger.SCHEMA
        ),
        key=lambda key: (key.schema, key.table, key.columns, key.target_table, key.name),
    )
    unread = sorted({key.schema for key in keys} - set(catalog.schemas))
    sources = (catalog, read_catalog(connection, unread)) if unread else (catalog,)

    def primary_key(schema: str, table: str) -> str | None:
        found = next((t for c in sources if (t := c.table(table, schema)) is not None), None)
        key = found.primary_key if found is not None else None
        return key.columns[0] if key is not None and len(key.columns) == 1 else None

    return tuple(
        Reference(key.table, key.columns[0], ledger_name(key.target_schema, key.target_table),
                  key.target_columns[0], schema=key.schema,
                  primary_key=primary_key(key.schema, key.table))
        for key in keys
    )


def live_named(refs: Sequence[Reference], live: Mapping[str, Mapping[str, str]]
                ) -> tuple[Reference, ...]:
    """Return the references under the names the live tables give their columns.

    The app names some columns otherwise (``vehicles.customer_id`` is its ``user_id``: the
    registry's ``live_names``); a reference is checked under the name the database has.
    """
    names = {kind.table: kind.live_names for kind in KINDS.values()}
    found = []
    for ref in refs:
        columns = live.get(ref.table, {})
        if ref.schema == APP_SCHEMA and ref.column not in columns:
            other = next((n for n in names.get(ref.table, {}).get(ref.column, ())
                          if n in columns), None)
            if other is not None:
                ref = dataclasses.replace(ref, column=other)
        found.append(ref)
    return tuple(found)


def merge_references(*groups: Sequence[Reference]) -> tuple[Reference, ...]:
    """Return the references of every group, each once (the first met wins)."""
    merged: dict[tuple[str, str, str, str, str], Reference] = {}
    for group in groups:
        for reference in group:
            merged.setdefault(reference.key, reference)
    return tuple(merged.values())


def find_blockers(
    connection: Connection,
    checked: Sequence[Reference],
    counts: Mapping[str, int],
    live: Mapping[str, Mapping[str, str]],
    *,
    run_ids: Sequence[uuid.UUID] | None,
    whole: Set[str] = frozenset(),
) -> tuple[Blocker, ...]:
    """Return the kept rows that point at rows to delete.

    ``run_ids`` None means every row of every app table goes: only rows outside the app's
    tables are kept then. Every row of the app's tables in ``whole`` goes too.
    """
    app_tables = {table.name for table in APP_TABLES}
    relevant = [ref for ref in checked if counts.get(ref.points_at_table)]
    unchecked = [
        f"{ref.where}.{ref.column} (→ {ref.points_at_table})"
        if ref.table in live else f"table {ref.where} (its {ref.column} → {ref.points_at_table})"
        for ref in relevant
        if ref.schema == APP_SCHEMA
        and (ref.column not in live.get(ref.table, {})
             or ref.points_at_column not in live.get(ref.points_at_table, {}))
    ]
    if unchecked:
        raise SchemaError(
            f"cannot check which rows point at the rows the reset would delete: the database "
            f"lacks {', '.join(unchecked)}; nothing was deleted; fix: `seed db doctor` shows "
            "how the schema differs (`seed db create` adds missing tables to a database of the "
            "tool's own; the app's database gets them from its migrations)"
        )
    found: list[Blocker] = []
    # The app's tables' references are checked per table, from its kept rows (see below).
    kept_by_table: dict[str, list[Reference]] = {}
    for ref in relevant:
        in_app = ref.schema == APP_SCHEMA and ref.table in app_tables
        if in_app and (run_ids is None or ref.table in whole):
            continue
        if in_app and run_ids is not None:
            kept_by_table.setdefault(ref.table, []).append(ref)
            continue
        on = _join_condition(
            ref, live, f"s.{quote(ref.column)}", f"d.{quote(ref.points_at_column)}"
        )
        row_id = f"s.{quote(ref.primary_key)}::text" if ref.primary_key else "s.ctid::text"
        query = (
            f"SELECT {row_id} AS row_id, d.id AS points_at_id "
            f"FROM {quote(ref.schema, ref.table)} AS s "
            f"JOIN {app_table(ref.points_at_table)} AS d ON {on}"
        )
        if run_ids is not None:
            query += (
                " JOIN seeding.ledger AS dl ON dl.table_name = :target AND dl.row_id = d.id"
                " AND dl.run_id = ANY(:runs)"
            )
            if ref.primary_key is not None:
                # Rows the runs recorded there too (made by the app's triggers) go with them.
                query += (
                    " WHERE NOT EXISTS (SELECT FROM seeding.ledger AS sl WHERE sl.table_name "
                    f"= :source AND sl.row_id::text = s.{quote(ref.primary_key)}::text "
                    "AND sl.run_id = ANY(:runs))"
                )
        parameters = {"target": ref.points_at_table, "runs": list(run_ids or []),
                      "source": ledger_name(ref.schema, ref.table)}
        for row in connection.execute(sa.text(query + " ORDER BY 1, 2"), parameters):
            found.append(
                Blocker(ref.where, row.row_id, ref.column, ref.points_at_table,
                        row.points_at_id, None)
            )
    for table, refs in kept_by_table.items():
        found += _kept_rows_in_the_way(connection, table, refs, live, list(run_ids or []))
    return tuple(sorted(found, key=lambda b: (b.table, b.row_id, b.column)))


def _join_condition(
    ref: Reference, live: Mapping[str, Mapping[str, str]], source: str, target: str
) -> str:
    """Return ``source = target`` for ``ref`` (two column expressions), as text if types differ."""
    source_type = live.get(ref.table, {}).get(ref.column) if ref.schema == APP_SCHEMA else None
    target_type = live[ref.points_at_table].get(ref.points_at_column)
    if source_type is not None and source_type != target_type:
        # A reference without a foreign key may be of another type (text for uuid).
        return f"{source}::text = {target}::text"
    return f"{source} = {target}"


def _kept_rows_in_the_way(
    connection: Connection,
    table: str,
    refs: Sequence[Reference],
    live: Mapping[str, Mapping[str, str]],
    run_ids: list[uuid.UUID],
) -> list[Blocker]:
    """Return the rows of an app table that the reset keeps and that point at rows it deletes.

    One query for all of the table's references: the kept rows (those of no run being reset)
    are found once, then each reference matches only them against the ids of its target's
    rows in the runs, and only those matches against the target table. Replacing a million
    requests beside a small run, the references of ``session_requests`` took 0.8 s each
    as plain joins of the whole table; most rows go, and what is kept is small.
    """
    # The id is selected anyway (a key on it, profiles.id → auth.users, names it once).
    columns = "".join(
        f", s.{quote(name)}" for name in sorted({ref.column for ref in refs} - {"id"})
    )
    parameters: dict[str, object] = {"source": table, "runs": run_ids}
    parts = []
    for index, ref in enumerate(refs):
        source = f"s.{quote(ref.column)}"
        if ref.points_at_column != "id":
            # The ledger holds ids: match the target's rows first, then their ids.
            on = _join_condition(ref, live, source, f"d.{quote(ref.points_at_column)}")
            parts.append(
                f"SELECT {index} AS ref, s.id::text AS row_id, d.id AS points_at_id "
                f"FROM kept AS s JOIN {app_table(ref.points_at_table)} AS d ON {on} "
                f"JOIN seeding.ledger AS dl ON dl.table_name = :t{index} "
                "AND dl.row_id = d.id AND dl.run_id = ANY(:runs)"
            )
        else:
            # OFFSET 0 keeps the few matches apart, so that only they are looked up in the
            # target table (the planner takes a run's ids for ten rows and would otherwise
            # look up every one of them).
            on = _join_condition(ref, live, source, "dl.row_id")
            parts.append(
                f"SELECT {index} AS ref, m.id::text AS row_id, d.id AS points_at_id FROM ("
                f"  SELECT s.id, dl.row_id AS target FROM kept AS s JOIN ("
                f"    SELECT row_id FROM seeding.ledger WHERE table_name = :t{index}"
                f"    AND run_id = ANY(:runs)) AS dl ON {on} OFFSET 0) AS m "
                f"JOIN {app_table(ref.points_at_table)} AS d ON d.id = m.target"
            )
        parameters[f"t{index}"] = ref.points_at_table
    query = (
        f"WITH kept AS MATERIALIZED (SELECT s.id{columns} FROM {app_table(table)} AS s "
        "WHERE NOT EXISTS (SELECT FROM seeding.ledger AS sl WHERE sl.table_name = :source "
        "AND sl.row_id = s.id AND sl.run_id = ANY(:runs))) "
        + " UNION ALL ".join(parts)
        + " ORDER BY 2, 3"
    )
    rows = connection.execute(sa.text(query), parameters).all()
    if not rows:
        return []
    # Whose rows they are: a run not being reset, or none (rows the tool did not write).
    owners: dict[str, uuid.UUID] = {
        str(row_id): run_id
        for row_id, run_id in connection.execute(
            sa.text(
                "SELECT row_id, run_id FROM seeding.ledger "
                "WHERE table_name = :source AND row_id::text = ANY(CAST(:ids AS text[]))"
            ),
            {"source": table, "ids": sorted({row.row_id for row in rows})},
        )
    }
    return [
        Blocker(table, row.row_id, refs[row.ref].column, refs[row.ref].points_at_table,
                row.points_at_id, owners.get(row.row_id))
        for row in rows
    ]


def blocked_error(blockers: Sequence[Blocker]) -> ResetBlockedError:
    """Return the error that refuses a reset: how many rows, whose, the first, and the fix."""
    rows = len({(blocker.table, blocker.row_id) for blocker in blockers})
    foreign = len({(b.table, b.row_id) for b in blockers if b.run_id is None})
    whose = (
        "not written by this tool" if foreign == rows
        else "written by runs not being reset" if foreign == 0
        else f"{foreign} not written by this tool, {rows - foreign} of runs not being reset"
    )
    references_note = f" ({len(blockers)} references)" if len(blockers) != rows else ""
    return ResetBlockedError(
        f"reset refused, nothing was deleted: {rows} {'row' if rows == 1 else 'rows'} "
        f"({whose}) point at rows it would delete{references_note}; first: "
        f"{blockers[0].describe()}; fix: delete those rows or point them elsewhere, or reset "
        "the runs they belong to as well",
        blockers,
    )
