"""The live catalog: one read of a database's tables, columns, keys, checks and triggers.

:func:`read_catalog` reads the schemas it is given (``public`` and ``auth`` by default) in six
``pg_catalog`` queries, whatever the number of tables, inside the caller's transaction, and
returns an immutable :class:`Catalog`. Nothing is written; a schema that does not exist is
simply absent; a failed query raises :class:`~seeding.errors.DatabaseError` with the
database's own first message line.

Names are data here: every schema, table and column name is read as a value and compared as
one, never put into SQL text. Values reach the queries as bound parameters.

Conventions:

- A qualified name (the keys of :attr:`Catalog.tables` and :attr:`Catalog.enums`, an enum
  column's :attr:`Column.type`, :attr:`Trigger.function`) is ``schema + "." + name``,
  unquoted. Use :meth:`Catalog.table` to look a table up by its two parts exactly.
- :attr:`Column.type` is ``format_type`` with the column's modifiers (``character
  varying(255)``, ``text[]``), which names a type outside the session's search path with its
  schema; an enum (or an array of one) is named by its qualified name instead.
  :attr:`Column.base_type` resolves domains and drops modifiers, for comparing types.
- :attr:`Column.allowed` is what the column's enum and its one-column list CHECKs admit
  (their intersection when there are several); a CHECK that is more than a list of literals
  is kept as text only (:attr:`Table.checks`) and narrows nothing here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

import psycopg
import sqlalchemy as sa
from psycopg.rows import dict_row
from sqlalchemy import exc as sa_exc

from seeding.db.checks import allowed_values
from seeding.errors import DatabaseError, first_line

__all__ = [
    "Catalog",
    "Check",
    "Column",
    "ForeignKey",
    "Table",
    "Trigger",
    "Unique",
    "allowed_values",
    "read_catalog",
]

#: The schemas read when none are given.
DEFAULT_SCHEMAS: Final = ("public", "auth")

TableKind = Literal["table", "partitioned table", "view", "materialized view", "foreign table"]
ReferentialAction = Literal["NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT"]
TriggerTiming = Literal["BEFORE", "AFTER", "INSTEAD OF"]

_KINDS: Final[Mapping[str, TableKind]] = {
    "r": "table",
    "p": "partitioned table",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
}
_ACTIONS: Final[Mapping[str, ReferentialAction]] = {
    "a": "NO ACTION",
    "r": "RESTRICT",
    "c": "CASCADE",
    "n": "SET NULL",
    "d": "SET DEFAULT",
}
# pg_trigger.tgtype bits (PostgreSQL's catalog/pg_trigger.h).
_ROW: Final = 1 << 0
_BEFORE: Final = 1 << 1
_INSERT: Final = 1 << 2
_DELETE: Final = 1 << 3
_UPDATE: Final = 1 << 4
_TRUNCATE: Final = 1 << 5
_INSTEAD: Final = 1 << 6


@dataclass(frozen=True)
class Column:
    """A column of a live table, view or other relation.

    Attributes:
        name: The column's name, exactly as stored.
        position: Its ``attnum`` (1-based; a dropped column leaves a gap). Constraint and
            index column numbers refer to it.
        type: ``format_type`` with modifiers (``character varying(255)``, ``text[]``); an
            enum's qualified name (``public.session_type``, ``public.mood[]`` for an array).
        type_oid: ``atttypid``, the oid of the column's own type (a domain's, an enum's).
        base_type: The type without modifiers, domains resolved to their base type
            (``character varying``); an enum's qualified name.
        base_type_oid: The oid of ``base_type`` (= ``type_oid`` unless the type is a domain).
        is_enum: Whether the column's values are an enum's labels (directly or by a domain).
        enum_labels: The enum's labels in order; empty if not an enum.
        enum_schema: The schema of the enum type (of its elements for an array); else None.
        enum_name: The enum type's name (of its elements for an array); else None.
        not_null: Whether the column is NOT NULL.
        default: The default's expression (``pg_get_expr``), or None (always None for a
            generated column: see ``generation``).
        generated: Whether it is a generated column (``STORED``, or PostgreSQL 18's
            ``VIRTUAL``): it can never be written.
        generation: The generation expression of a generated column, else None.
        identity: ``'a'`` (``GENERATED ALWAYS AS IDENTITY``), ``'d'`` (``BY DEFAULT``) or None.
        allowed: The values the column admits by its enum and its one-column list CHECKs,
            in order; None when neither limits it.

    """

    name: str
    position: int
    type: str
    type_oid: int
    base_type: str
    base_type_oid: int
    is_enum: bool
    enum_labels: tuple[str, ...]
    enum_schema: str | None
    enum_name: str | None
    not_null: bool
    default: str | None
    generated: bool
    generation: str | None
    identity: Literal["a", "d"] | None
    allowed: tuple[str, ...] | None


@dataclass(frozen=True)
class Check:
    """A CHECK constraint of a table.

    Attributes:
        name: The constraint's name.
        definition: ``pg_get_constraintdef``: ``CHECK (...)``, with ``NOT VALID`` when not
            validated.
        columns: The columns it involves (its ``conkey``), in the catalog's order.
        validated: Whether existing rows were checked (False for ``NOT VALID``).
        enforced: False only for PostgreSQL 18's ``NOT ENFORCED``.

    """

    name: str
    definition: str
    columns: tuple[str, ...]
    validated: bool
    enforced: bool = True


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key, from the table that holds it to the table it points at.

    Attributes:
        name: The constraint's name.
        schema: The schema of the table holding the key.
        table: The table holding the key.
        columns: The key's columns, in order.
        target_schema: The schema of the table pointed at.
        target_table: The table pointed at.
        target_columns: The columns pointed at, matching ``columns`` one to one.
        on_delete: What deleting a target row does.
        on_update: What changing a target key does.
        deferrable: Whether the check can be deferred.
        initially_deferred: Whether it is deferred unless told otherwise.
        validated: Whether existing rows were checked (False for ``NOT VALID``).
        enforced: False only for PostgreSQL 18's ``NOT ENFORCED``.
        definition: ``pg_get_constraintdef``.

    """

    name: str
    schema: str
    table: str
    columns: tuple[str, ...]
    target_schema: str
    target_table: str
    target_columns: tuple[str, ...]
    on_delete: ReferentialAction
    on_update: ReferentialAction
    deferrable: bool
    initially_deferred: bool
    validated: bool
    enforced: bool
    definition: str


@dataclass(frozen=True)
class Unique:
    """A uniqueness rule: a primary key, a UNIQUE constraint, or a unique index.

    Attributes:
        name: The constraint's name, or the index's for an index without one.
        columns: The key's plain columns, in order (not an index's INCLUDE columns).
        primary: Whether it is the primary key.
        constraint: Whether it is a constraint (primary key or UNIQUE), not only an index.
        predicate: A partial index's ``WHERE`` (``pg_get_expr``), else None.
        expressions: The key's expressions (``lower((email)::text)``), for an expression
            index; then ``columns`` holds only its plain columns.
        nulls_distinct: False for ``NULLS NOT DISTINCT`` (PostgreSQL 15+).

    """

    name: str
    columns: tuple[str, ...]
    primary: bool
    constraint: bool
    predicate: str | None
    expressions: tuple[str, ...] = ()
    nulls_distinct: bool = True


@dataclass(frozen=True)
class Trigger:
    """A trigger a user made (not the ones PostgreSQL makes for foreign keys).

    Attributes:
        name: The trigger's name.
        timing: ``BEFORE``, ``AFTER`` or ``INSTEAD OF``.
        events: Among ``INSERT``, ``UPDATE``, ``DELETE``, ``TRUNCATE``, in that order.
        update_columns: The columns of ``UPDATE OF``; empty when any UPDATE fires it.
        for_each_row: True for ``FOR EACH ROW``, False for ``FOR EACH STATEMENT``.
        function: The trigger function's qualified name (``public.handle_new_user``).
        enabled: Whether it fires in an ordinary session (``session_replication_role``
            ``origin``): enabled (``O``) or ``ENABLE ALWAYS`` (``A``).
        fires_on_replica: Whether it fires when ``session_replication_role = replica``
            (``ENABLE REPLICA`` or ``ENABLE ALWAYS``).
        definition: ``pg_get_triggerdef``, the ``CREATE TRIGGER`` statement, with its WHEN.

    """

    name: str
    timing: TriggerTiming
    events: tuple[str, ...]
    update_columns: tuple[str, ...]
    for_each_row: bool
    function: str
    enabled: bool
    fires_on_replica: bool
    definition: str


@dataclass(frozen=True)
class Table:
    """A table (or view, or other relation with columns) of the live database.

    Attributes:
        schema: Its schema.
        name: Its name.
        kind: ``table``, ``partitioned table``, ``view``, ``materialized view`` or
            ``foreign table``.
        columns: Its columns by name, in ``position`` order.
        checks: Its CHECK constraints, by name.
        foreign_keys: The foreign keys it holds, by name.
        referenced_by: The foreign keys pointing at it, from any schema (those from a table
            outside the schemas read too), by schema, table and name.
        uniques: Its primary key, UNIQUE constraints and unique indexes: the primary key
            first, then by name.
        triggers: Its triggers, by name (the order PostgreSQL fires them in).
        rls_enabled: Whether row-level security is enabled.
        rls_forced: Whether it applies to the table's owner too (``FORCE``).

    """

    schema: str
    name: str
    kind: TableKind
    columns: Mapping[str, Column]
    checks: tuple[Check, ...]
    foreign_keys: tuple[ForeignKey, ...]
    referenced_by: tuple[ForeignKey, ...]
    uniques: tuple[Unique, ...]
    triggers: tuple[Trigger, ...]
    rls_enabled: bool
    rls_forced: bool

    @property
    def qualified_name(self) -> str:
        """Return ``schema.name``, unquoted (the key in :attr:`Catalog.tables`)."""
        return f"{self.schema}.{self.name}"

    @property
    def primary_key(self) -> Unique | None:
        """Return the primary key, if the table has one."""
        return next((unique for unique in self.uniques if unique.primary), None)

    def column(self, name: str) -> Column | None:
        """Return the column called ``name`` (exactly), or None."""
        return self.columns.get(name)

    def foreign_keys_on(self, column: str) -> tuple[ForeignKey, ...]:
        """Return the foreign keys held by this table whose columns include ``column``."""
        return tuple(key for key in self.foreign_keys if column in key.columns)

    def unique_on(self, columns: str | Iterable[str]) -> tuple[Unique, ...]:
        """Return the uniqueness rules on exactly these columns (in any order).

        Partial indexes are included (check :attr:`Unique.predicate`); expression indexes
        are not.

        Args:
            columns: One column name, or several.

        """
        wanted = {columns} if isinstance(columns, str) else set(columns)
        return tuple(
            unique
            for unique in self.uniques
            if not unique.expressions and set(unique.columns) == wanted
        )

    def required_columns(self) -> tuple[Column, ...]:
        """Return the columns an INSERT must give: NOT NULL, no default, generated or identity."""
        return tuple(
            column
            for column in self.columns.values()
            if column.not_null
            and column.default is None
            and not column.generated
            and column.identity is None
        )

    def writable_columns(self) -> tuple[Column, ...]:
        """Return the columns an INSERT may give: not generated, not ``IDENTITY ALWAYS``."""
        return tuple(
            column
            for column in self.columns.values()
            if not column.generated and column.identity != "a"
        )


@dataclass(frozen=True)
class Catalog:
    """The live schema of some schemas of a database, as :func:`read_catalog` read it.

    Attributes:
        tables: Every table, view and other relation with columns, by ``schema.name``.
        enums: Each enum's labels in order, by qualified name: the enums of the schemas read
            and those their columns use (from any schema).
        schemas: The schemas read that exist, in the order asked for.
        server_version: ``server_version_num`` (``150012`` for 15.12).

    """

    tables: Mapping[str, Table]
    enums: Mapping[str, tuple[str, ...]]
    schemas: tuple[str, ...]
    server_version: int

    def table(self, name: str, schema: str = "public") -> Table | None:
        """Return the table ``schema.name`` (both compared exactly), or None."""
        found = self.tables.get(f"{schema}.{name}")
        if found is not None and found.schema == schema and found.name == name:
            return found
        # A dot in a name makes the key ambiguous: compare the parts.
        return next(
            (t for t in self.tables.values() if t.schema == schema and t.name == name), None
        )

    def has_schema(self, name: str) -> bool:
        """Return whether ``name`` is one of the schemas read and exists in the database."""
        return name in self.schemas


# ------------------------------------------------------------------------------------------
# The queries. Each takes %(schemas)s (name[]); none holds a name as text.
# ------------------------------------------------------------------------------------------

_SERVER_SQL: Final = """
    SELECT current_setting('server_version_num')::integer AS version,
           ARRAY(SELECT n.nspname::text FROM pg_catalog.pg_namespace n
                 WHERE n.nspname = ANY(%(schemas)s::name[])
                    OR (%(every)s AND n.nspname <> 'information_schema'
                        AND n.nspname !~ '^pg_')
                 ORDER BY n.nspname) AS present
"""

# One row per column (one with NULL columns for a relation without any). Domains are
# resolved to their base type (a domain over a domain too); an enum column, or a column of
# an array of enums, brings the enum's labels.
_COLUMNS_SQL: Final = """
    WITH RECURSIVE domains(oid, base) AS (
        SELECT t.oid, t.typbasetype FROM pg_catalog.pg_type t WHERE t.typtype = 'd'
        UNION ALL
        SELECT d.oid, t.typbasetype FROM domains d
        JOIN pg_catalog.pg_type t ON t.oid = d.base AND t.typtype = 'd'
    ), roots AS (
        SELECT d.oid, d.base FROM domains d
        JOIN pg_catalog.pg_type t ON t.oid = d.base AND t.typtype <> 'd'
    )
    SELECT n.nspname::text AS schema,
           c.relname::text AS table_name,
           c.relkind::text AS kind,
           c.relrowsecurity AS rls_enabled,
           c.relforcerowsecurity AS rls_forced,
           a.attname::text AS column_name,
           a.attnum::integer AS position,
           a.atttypid::bigint AS type_oid,
           pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
           coalesce(r.base, a.atttypid)::bigint AS base_type_oid,
           pg_catalog.format_type(coalesce(r.base, a.atttypid), NULL) AS base_type,
           et.oid IS NOT NULL AND et.oid <> bt.oid AS enum_array,
           en.nspname::text AS enum_schema,
           et.typname::text AS enum_name,
           CASE WHEN et.oid IS NOT NULL THEN ARRAY(
               SELECT e.enumlabel::text FROM pg_catalog.pg_enum e
               WHERE e.enumtypid = et.oid ORDER BY e.enumsortorder) END AS enum_labels,
           a.attnotnull AS not_null,
           pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) AS default_expression,
           a.attgenerated::text AS generated,
           a.attidentity::text AS identity
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_catalog.pg_attribute a
        ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    LEFT JOIN roots r ON r.oid = a.atttypid
    LEFT JOIN pg_catalog.pg_type bt ON bt.oid = coalesce(r.base, a.atttypid)
    LEFT JOIN pg_catalog.pg_type et
        ON et.oid = CASE WHEN bt.typtype = 'e' THEN bt.oid
                         WHEN bt.typcategory = 'A' THEN bt.typelem END
       AND et.typtype = 'e'
    LEFT JOIN pg_catalog.pg_namespace en ON en.oid = et.typnamespace
    WHERE n.nspname = ANY(%(schemas)s::name[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""

_ENUMS_SQL: Final = """
    SELECT n.nspname::text AS schema, t.typname::text AS name,
           ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e
                 WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) AS labels
    FROM pg_catalog.pg_type t
    JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
    WHERE t.typtype = 'e' AND n.nspname = ANY(%(schemas)s::name[])
    ORDER BY n.nspname, t.typname
"""

# CHECKs of the tables read, and foreign keys held by them or pointing at them. A key that
# points at a partitioned table has a copy per partition on the same referencing table
# (conparentid set): those copies are left out.
_CONSTRAINTS_SQL: Final = """
    SELECT con.conname::text AS name,
           con.contype::text AS kind,
           n.nspname::text AS schema,
           c.relname::text AS table_name,
           pg_catalog.pg_get_constraintdef(con.oid) AS definition,
           ARRAY(SELECT a.attname::text
                 FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_catalog.pg_attribute a
                     ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                 ORDER BY k.ord) AS columns,
           rn.nspname::text AS target_schema,
           rc.relname::text AS target_table,
           ARRAY(SELECT a.attname::text
                 FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_catalog.pg_attribute a
                     ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                 ORDER BY k.ord) AS target_columns,
           con.confdeltype::text AS on_delete,
           con.confupdtype::text AS on_update,
           con.condeferrable AS deferrable,
           con.condeferred AS initially_deferred,
           con.convalidated AS validated,
           {enforced} AS enforced
    FROM pg_catalog.pg_constraint con
    JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid
    LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
    LEFT JOIN pg_catalog.pg_constraint parent ON parent.oid = con.conparentid
    WHERE con.contype IN ('c', 'f')
      AND (n.nspname = ANY(%(schemas)s::name[])
           OR (con.contype = 'f' AND rn.nspname = ANY(%(schemas)s::name[])))
      AND (parent.oid IS NULL OR parent.conrelid <> con.conrelid)
"""

# Unique indexes, those behind a PRIMARY KEY or UNIQUE constraint included: each key column
# by name (NULL for an expression) and by its definition.
_UNIQUES_SQL: Final = """
    SELECT n.nspname::text AS schema,
           c.relname::text AS table_name,
           coalesce(con.conname, ic.relname)::text AS name,
           con.oid IS NOT NULL AS constraint,
           i.indisprimary AS primary,
           ARRAY(SELECT a.attname::text
                 FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                 LEFT JOIN pg_catalog.pg_attribute a
                     ON a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0
                 WHERE k.ord <= i.indnkeyatts
                 ORDER BY k.ord) AS columns,
           ARRAY(SELECT pg_catalog.pg_get_indexdef(i.indexrelid, k.ord::integer, true)
                 FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                 WHERE k.ord <= i.indnkeyatts
                 ORDER BY k.ord) AS definitions,
           pg_catalog.pg_get_expr(i.indpred, i.indrelid) AS predicate,
           {nulls_distinct} AS nulls_distinct
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_catalog.pg_constraint con
        ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
       AND con.contype IN ('p', 'u')
    WHERE i.indisunique AND n.nspname = ANY(%(schemas)s::name[])
"""

_TRIGGERS_SQL: Final = """
    SELECT n.nspname::text AS schema,
           c.relname::text AS table_name,
           t.tgname::text AS name,
           t.tgtype::integer AS type,
           t.tgenabled::text AS enabled,
           pn.nspname::text AS function_schema,
           p.proname::text AS function_name,
           ARRAY(SELECT a.attname::text
                 FROM unnest(t.tgattr::int2[]) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_catalog.pg_attribute a
                     ON a.attrelid = t.tgrelid AND a.attnum = k.attnum
                 ORDER BY k.ord) AS update_columns,
           pg_catalog.pg_get_triggerdef(t.oid) AS definition
    FROM pg_catalog.pg_trigger t
    JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
    JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
    WHERE NOT t.tgisinternal AND n.nspname = ANY(%(schemas)s::name[])
"""

#: How many queries :func:`read_catalog` runs on a database holding a schema it reads.
QUERY_COUNT: Final = 6


def read_catalog(
    connection: sa.Connection | psycopg.Connection[Any],
    schemas: Sequence[str] | None = DEFAULT_SCHEMAS,
) -> Catalog:
    """Read the live schema of ``schemas`` in six catalog queries, inside the caller's transaction.

    Only reads. An SQLAlchemy connection begins its transaction if none is open (as any
    statement does); a psycopg one behaves by its own ``autocommit`` setting.

    Args:
        connection: An SQLAlchemy connection (on psycopg) or a psycopg connection.
        schemas: The schemas to read; a missing one is left out. None reads every schema
            except PostgreSQL's own (``pg_*``, ``information_schema``).

    Returns:
        The catalog, immutable.

    Raises:
        DatabaseError: When a query fails (an aborted transaction too), with the database's
            first message line.

    """
    if isinstance(schemas, str):
        schemas = (schemas,)
    asked = list(dict.fromkeys(schemas or ()))
    server = _query(connection, _SERVER_SQL, {"schemas": asked, "every": schemas is None})[0]
    version = int(server["version"])
    existing = set(server["present"])
    present = [name for name in asked if name in existing] if schemas is not None else sorted(
        existing
    )
    if not present:
        return Catalog(MappingProxyType({}), MappingProxyType({}), (), version)
    params = {"schemas": present}
    column_rows = _query(connection, _COLUMNS_SQL, params)
    enum_rows = _query(connection, _ENUMS_SQL, params)
    constraint_rows = _query(
        connection,
        _CONSTRAINTS_SQL.format(enforced="con.conenforced" if version >= 180000 else "true"),
        params,
    )
    unique_rows = _query(
        connection,
        _UNIQUES_SQL.format(
            nulls_distinct="NOT i.indnullsnotdistinct" if version >= 150000 else "true"
        ),
        params,
    )
    trigger_rows = _query(connection, _TRIGGERS_SQL, params)
    return _build(
        version, tuple(present), column_rows, enum_rows, constraint_rows, unique_rows,
        trigger_rows,
    )


def _query(
    connection: sa.Connection | psycopg.Connection[Any], query: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Run one catalog query with bound parameters and return its rows as dicts."""
    try:
        if isinstance(connection, sa.Connection):
            result = connection.exec_driver_sql(query, params)
            keys = list(result.keys())
            return [dict(zip(keys, row, strict=True)) for row in result.all()]
        with connection.cursor(row_factory=dict_row) as cursor:
            cursor.execute(query.encode(), params)
            return cursor.fetchall()
    except sa_exc.DBAPIError as error:
        raise DatabaseError(
            f"cannot read the database's catalog: {first_line(error.orig or error)}"
        ) from None
    except (sa_exc.SQLAlchemyError, psycopg.Error) as error:
        raise DatabaseError(f"cannot read the database's catalog: {first_line(error)}") from None


# ------------------------------------------------------------------------------------------
# Assembly.
# ------------------------------------------------------------------------------------------

_Key = tuple[str, str]


def _build(
    version: int,
    present: tuple[str, ...],
    column_rows: list[dict[str, Any]],
    enum_rows: list[dict[str, Any]],
    constraint_rows: list[dict[str, Any]],
    unique_rows: list[dict[str, Any]],
    trigger_rows: list[dict[str, Any]],
) -> Catalog:
    """Assemble the catalog from the rows of the six queries."""
    kinds: dict[_Key, tuple[TableKind, bool, bool]] = {}
    raw_columns: dict[_Key, list[dict[str, Any]]] = {}
    enums: dict[str, tuple[str, ...]] = {
        f"{row['schema']}.{row['name']}": tuple(row["labels"]) for row in enum_rows
    }
    for row in column_rows:
        key = (row["schema"], row["table_name"])
        kinds[key] = (_KINDS[row["kind"]], row["rls_enabled"], row["rls_forced"])
        rows = raw_columns.setdefault(key, [])
        if row["column_name"] is not None:
            rows.append(row)
            if row["enum_name"] is not None:
                enums.setdefault(
                    f"{row['enum_schema']}.{row['enum_name']}", tuple(row["enum_labels"])
                )

    checks: dict[_Key, list[Check]] = {}
    held: dict[_Key, list[ForeignKey]] = {}
    pointing: dict[_Key, list[ForeignKey]] = {}
    for row in constraint_rows:
        key = (row["schema"], row["table_name"])
        if row["kind"] == "c":
            checks.setdefault(key, []).append(
                Check(
                    name=row["name"],
                    definition=row["definition"],
                    columns=tuple(row["columns"]),
                    validated=row["validated"],
                    enforced=row["enforced"],
                )
            )
            continue
        foreign_key = ForeignKey(
            name=row["name"],
            schema=row["schema"],
            table=row["table_name"],
            columns=tuple(row["columns"]),
            target_schema=row["target_schema"],
            target_table=row["target_table"],
            target_columns=tuple(row["target_columns"]),
            on_delete=_ACTIONS[row["on_delete"]],
            on_update=_ACTIONS[row["on_update"]],
            deferrable=row["deferrable"],
            initially_deferred=row["initially_deferred"],
            validated=row["validated"],
            enforced=row["enforced"],
            definition=row["definition"],
        )
        if key in kinds:
            held.setdefault(key, []).append(foreign_key)
        target = (row["target_schema"], row["target_table"])
        if target in kinds:
            pointing.setdefault(target, []).append(foreign_key)

    uniques: dict[_Key, list[Unique]] = {}
    for row in unique_rows:
        names = row["columns"]
        uniques.setdefault((row["schema"], row["table_name"]), []).append(
            Unique(
                name=row["name"],
                columns=tuple(name for name in names if name is not None),
                primary=row["primary"],
                constraint=row["constraint"],
                predicate=row["predicate"],
                expressions=tuple(
                    text for name, text in zip(names, row["definitions"], strict=True)
                    if name is None
                ),
                nulls_distinct=row["nulls_distinct"],
            )
        )

    triggers: dict[_Key, list[Trigger]] = {}
    for row in trigger_rows:
        triggers.setdefault((row["schema"], row["table_name"]), []).append(_trigger(row))

    # The queries leave rows unsorted (sorting names there costs more): sort here. Python
    # orders str by code point, which is the byte order of UTF-8, PostgreSQL's "C" order of
    # names (and the order it fires triggers in).
    rank = {schema: number for number, schema in enumerate(present)}
    tables: dict[str, Table] = {}
    for key in sorted(kinds, key=lambda key: (rank.get(key[0], len(rank)), key)):
        kind, rls_enabled, rls_forced = kinds[key]
        table_checks = tuple(sorted(checks.get(key, ()), key=lambda check: check.name))
        columns = {
            row["column_name"]: _column(row, table_checks)
            for row in sorted(raw_columns[key], key=lambda row: int(row["position"]))
        }
        tables[f"{key[0]}.{key[1]}"] = Table(
            schema=key[0],
            name=key[1],
            kind=kind,
            columns=MappingProxyType(columns),
            checks=table_checks,
            foreign_keys=tuple(sorted(held.get(key, ()), key=lambda k: k.name)),
            referenced_by=tuple(
                sorted(pointing.get(key, ()), key=lambda k: (k.schema, k.table, k.name))
            ),
            uniques=tuple(
                sorted(uniques.get(key, ()), key=lambda u: (not u.primary, u.name))
            ),
            triggers=tuple(sorted(triggers.get(key, ()), key=lambda t: t.name)),
            rls_enabled=rls_enabled,
            rls_forced=rls_forced,
        )
    return Catalog(
        tables=MappingProxyType(tables),
        enums=MappingProxyType(dict(sorted(enums.items()))),
        schemas=present,
        server_version=version,
    )


def _column(row: dict[str, Any], checks: tuple[Check, ...]) -> Column:
    """Return the column of a row of the columns query, its ``allowed`` from ``checks``."""
    name: str = row["column_name"]
    enum_schema: str | None = row["enum_schema"]
    enum_name: str | None = row["enum_name"]
    is_enum = enum_name is not None and not row["enum_array"]
    labels = tuple(row["enum_labels"]) if is_enum else ()
    type_text: str = row["type"]
    base_type: str = row["base_type"]
    if enum_name is not None:
        qualified = f"{enum_schema}.{enum_name}" + ("[]" if row["enum_array"] else "")
        base_type = qualified
        if row["base_type_oid"] == row["type_oid"]:  # not a domain: named by the enum
            type_text = qualified
    generated = row["generated"] != ""
    allowed: tuple[str, ...] | None = labels if is_enum else None
    for check in checks:
        if check.columns != (name,) or not check.enforced:
            continue
        values = allowed_values(check.definition, name)
        if values is None:
            continue
        allowed = values if allowed is None else tuple(v for v in allowed if v in values)
    identity = row["identity"] or None
    return Column(
        name=name,
        position=row["position"],
        type=type_text,
        type_oid=row["type_oid"],
        base_type=base_type,
        base_type_oid=row["base_type_oid"],
        is_enum=is_enum,
        enum_labels=labels,
        enum_schema=enum_schema,
        enum_name=enum_name,
        not_null=row["not_null"],
        default=None if generated else row["default_expression"],
        generated=generated,
        generation=row["default_expression"] if generated else None,
        identity="a" if identity == "a" else "d" if identity == "d" else None,
        allowed=allowed,
    )


def _trigger(row: dict[str, Any]) -> Trigger:
    """Return the trigger of a row of the triggers query."""
    bits: int = row["type"]
    timing: TriggerTiming = (
        "INSTEAD OF" if bits & _INSTEAD else "BEFORE" if bits & _BEFORE else "AFTER"
    )
    events = tuple(
        event
        for bit, event in (
            (_INSERT, "INSERT"), (_UPDATE, "UPDATE"), (_DELETE, "DELETE"),
            (_TRUNCATE, "TRUNCATE"),
        )
        if bits & bit
    )
    return Trigger(
        name=row["name"],
        timing=timing,
        events=events,
        update_columns=tuple(row["update_columns"]),
        for_each_row=bool(bits & _ROW),
        function=f"{row['function_schema']}.{row['function_name']}",
        enabled=row["enabled"] in ("O", "A"),
        fires_on_replica=row["enabled"] in ("R", "A"),
        definition=row["definition"],
    )
