"""Foreign keys set aside during a bulk write or delete, and put back in the same transaction.

PostgreSQL checks a foreign key row by row: each row written looks up its parent, and each
row deleted scans its children's table (the app has no index on most referencing columns, so
deleting a million rows would take hours). Dropped before the bulk statement and added back
after it, a key checks every row in one pass. Both happen inside the caller's transaction:
the keys are never missing for anyone else, and a failed run restores them with the rest.
The price is a lock on the tables for the transaction, which a bulk run holds anyway.

On the app's own (Supabase) database a tiled run leaves the keys that point into ``auth`` in
place (dropping one would lock ``auth.users``, and every sign-in, until the run commits).
Their row-by-row checks are what made it slow: where the connection may set
``session_replication_role`` (a superuser, or a role granted it, as Supabase's ``postgres``
may be), a table whose inserts fire no trigger but the keys' own checks is written with
those checks off (:func:`quiet_tables`, :func:`unchecked_writes`), and the run's rows are
then checked against every one of its keys in one query per key (:func:`check_written`).

A bulk delete sets aside the keys of the tables pointing at the deleted rows as well, the
app's own beyond the tool's tables (:func:`referencing`), except, again, those pointing into
``auth``: their children's columns are indexed for the delete instead
(:func:`index_kept_keys`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import sqlalchemy as sa
from psycopg import sql
from sqlalchemy import exc as sa_exc

from seeding.db.catalog import Catalog, ForeignKey, read_catalog
from seeding.db.database import WORK_MEM, local_settings
from seeding.db.identifiers import execute, identifier, quote
from seeding.domain.schema import APP_TABLES
from seeding.errors import DatabaseError

#: Bulk statements of at least this many rows set the foreign keys aside.
BULK_ROWS = 10_000

#: The app's tables, as (schema, table).
APP = tuple(("public", table.name) for table in APP_TABLES)


def drop_foreign_keys(
    connection: sa.Connection,
    tables: Sequence[tuple[str, str]] = APP,
    *,
    sparing: Collection[str] = (),
) -> list[ForeignKey]:
    """Drop the foreign keys of these tables (schema, table); return them to add back.

    The keys are read from the live catalog (:mod:`seeding.db.catalog`), in schema, table and
    name order. Keys pointing into a schema of ``sparing`` stay: dropping one locks the
    table it points at (``ACCESS EXCLUSIVE``) until the transaction ends, which on Supabase's
    ``auth.users`` would hold off every sign-in.
    """
    wanted = set(tables)
    catalog = read_catalog(connection, sorted({schema for schema, _ in wanted}))
    keys = sorted(
        (
            key
            for table in catalog.tables.values()
            if (table.schema, table.name) in wanted
            for key in table.foreign_keys
            if key.target_schema not in sparing
        ),
        key=lambda key: (key.schema, key.table, key.name),
    )
    for key in keys:
        execute(
            connection,
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                identifier(key.schema, key.table), identifier(key.name)
            ),
        )
    return keys


def referencing(
    connection: sa.Connection,
    tables: Sequence[tuple[str, str]],
    *,
    sparing: Collection[str] = ("auth", "seeding"),
) -> list[tuple[str, str]]:
    """Return the tables (schema, table) holding a foreign key into one of these tables.

    A bulk delete sets their keys aside too: a key of a table the tool does not write (the
    app's ``session_analytics.session_id``, ``ON DELETE CASCADE``) otherwise looks for each
    deleted row's children, and without an index on its column that is a scan of its table
    per row (a reset of a million requests' sessions did not end in 20 minutes). Tables of
    the schemas in ``sparing`` keep theirs: the tool never changes ``auth``'s definitions
    (Supabase's own tables there have an index on ``user_id``), nor the ledger's.
    """
    catalog = read_catalog(connection, sorted({schema for schema, _ in tables}))
    found = {
        (key.schema, key.table)
        for schema, name in tables
        if (table := catalog.table(name, schema)) is not None
        for key in table.referenced_by
        if key.schema not in sparing
    }
    return sorted(found)


def index_kept_keys(
    connection: sa.Connection, targets: Sequence[tuple[str, str]], *, into: Collection[str]
) -> list[tuple[str, str]]:
    """Index, for this transaction, the columns of the kept keys into these tables.

    A bulk delete keeps the keys pointing into the schemas of ``into`` (``auth``: dropping
    one locks ``auth.users`` against every sign-in). Each row deleted from a table they point
    at then looks for its children through each key, a scan of the child's table per row
    where no index leads with the key's columns (the app has none on ``sessions``'
    ``customer_user_id``). This makes that index on each such child table outside ``into``
    (the tool never changes ``auth``'s definitions; Supabase's own tables there have theirs);
    :func:`drop_indexes` drops them before the transaction ends, so no one else ever sees
    them. Returns the indexes made, as (schema, name).
    """
    targets = [(schema, name) for schema, name in targets if schema in into]
    if not targets:  # the tool's own schema: nothing to read
        return []
    catalog = read_catalog(connection, sorted({schema for schema, _ in targets} | {"public"}))
    made: list[tuple[str, str]] = []
    for schema, name in targets:
        table = catalog.table(name, schema)
        if table is None:
            continue
        for key in sorted(table.referenced_by, key=lambda k: (k.schema, k.table, k.name)):
            if key.schema in into or not key.enforced or _leads_an_index(connection, key):
                continue
            index = f"seeding_reset_{len(made)}"
            execute(connection, sql.SQL("CREATE INDEX {} ON {} ({})").format(
                identifier(index), identifier(key.schema, key.table),
                sql.SQL(", ").join(identifier(column) for column in key.columns)))
            made.append((key.schema, index))
    return made


def _leads_an_index(connection: sa.Connection, key: ForeignKey) -> bool:
    """Return whether a valid, whole-table index of the key's table starts with its columns."""
    return bool(connection.execute(sa.text(
        "SELECT EXISTS (SELECT FROM pg_index AS i WHERE i.indrelid = CAST(:table AS regclass) "
        "AND i.indisvalid AND i.indpred IS NULL "
        "AND (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(CAST(:names AS text[]))]"
        " = ARRAY(SELECT a.attnum FROM unnest(CAST(:names AS text[])) WITH ORDINALITY AS c(name, n)"
        " JOIN pg_attribute AS a ON a.attrelid = CAST(:table AS regclass) AND a.attname = c.name"
        " ORDER BY c.n))"
    ), {"table": quote(key.schema, key.table), "names": list(key.columns)}).scalar_one())


def drop_indexes(connection: sa.Connection, indexes: Sequence[tuple[str, str]]) -> None:
    """Drop the indexes :func:`index_kept_keys` made."""
    for schema, name in indexes:
        execute(connection, sql.SQL("DROP INDEX {}").format(identifier(schema, name)))


def add_foreign_keys(connection: sa.Connection, keys: Sequence[ForeignKey]) -> None:
    """Add back keys dropped by :func:`drop_foreign_keys`; each checks every row once."""
    for key in keys:
        execute(
            connection,
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                identifier(key.schema, key.table), identifier(key.name), sql.SQL(key.definition)
            ),
        )


#: The function of the trigger PostgreSQL makes on a key's table to check each row written.
_ROW_CHECK = "RI_FKey_check_ins"
#: pg_trigger.tgtype's INSERT bit.
_INSERT = 1 << 2
#: The savepoint :func:`unchecked_writes` tries the setting in.
_PROBE = "seeding_replication_role_probe"


def unchecked_writes(connection: sa.Connection) -> bool:
    """Return whether this connection may write with the keys' row checks off.

    That is ``SET LOCAL session_replication_role = replica``: a superuser may, another role
    where it was granted (``GRANT SET ON PARAMETER``, or a hosting's own rule for ``SET``).
    Tried in a savepoint, put back at once and the savepoint released either way, so the
    rows written after belong to the transaction itself (the app's rows are told apart by
    their ``xmin``, the transaction's id, which a savepoint's writes do not carry).
    """
    connection.execute(sa.text(f"SAVEPOINT {_PROBE}"))
    try:
        set_unchecked(connection, True)
        set_unchecked(connection, False)
    except sa_exc.DBAPIError:
        connection.execute(sa.text(f"ROLLBACK TO SAVEPOINT {_PROBE}"))
        allowed = False
    else:
        allowed = True
    connection.execute(sa.text(f"RELEASE SAVEPOINT {_PROBE}"))
    return allowed


def quiet_tables(
    connection: sa.Connection, catalog: Catalog, tables: Sequence[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Return the tables (schema, table) whose inserts fire nothing but their keys' checks.

    With ``session_replication_role = replica`` such a table's inserts fire exactly what
    they fire otherwise, less the row checks of its foreign keys, which :func:`check_written`
    then makes for the run's rows. A table is not quiet when an insert fires any other
    trigger (the app's own, an audit's, a deferrable unique key's recheck) that would fire
    in one mode and not the other, or when a key of it is ``MATCH FULL``.
    """
    rows = connection.execute(sa.text(
        "SELECT n.nspname, c.relname, p.proname, t.tgenabled::text "
        "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_proc p ON p.oid = t.tgfoid "
        "WHERE (t.tgtype & :insert) <> 0"
    ), {"insert": _INSERT}).all()
    loud = {
        (str(schema), str(table)) for schema, table, function, enabled in rows
        if function != _ROW_CHECK and enabled not in ("A", "D")  # always, or never
    }
    quiet: set[tuple[str, str]] = set()
    for schema, name in tables:
        table = catalog.table(name, schema)
        if table is None or (schema, name) in loud:
            continue
        if any("MATCH FULL" in key.definition for key in table.foreign_keys):
            continue
        quiet.add((schema, name))
    return quiet


def set_unchecked(connection: sa.Connection, unchecked: bool) -> None:
    """Turn the keys' row checks off (with every trigger not ``ENABLE ALWAYS``) or back on.

    For the rest of the transaction (``SET LOCAL``, a statement a hosting's rules may admit
    where ``set_config()`` is refused); a rollback undoes it.
    """
    role = "replica" if unchecked else "origin"
    connection.execute(sa.text(f"SET LOCAL session_replication_role = {role}"))


def check_written(
    connection: sa.Connection, catalog: Catalog, tables: Collection[tuple[str, str]],
    *, skip: Collection[ForeignKey] = (),
) -> None:
    """Check the rows this transaction wrote into these tables against each of their keys.

    One query per key finds a row written in this transaction (its ``xmin``) whose key
    columns are all set and point at no row, as the key's own check would (``MATCH
    SIMPLE``). The rows pointed at are the run's own, written in the same transaction and
    seen by no one else, so none can go meanwhile. ``skip`` lists keys set aside by
    :func:`drop_foreign_keys`, which check every row when they are added back.

    Raises:
        DatabaseError: Naming the key and a row that breaks it (the caller rolls back).

    """
    skipped = {(key.schema, key.table, key.name) for key in skip}
    for schema, name in sorted(tables):
        table = catalog.table(name, schema)
        if table is None:
            continue
        for key in table.foreign_keys:
            if not key.enforced or (schema, name, key.name) in skipped:
                continue
            pairs = list(zip(key.columns, key.target_columns, strict=True))
            written = " AND ".join(f"c.{quote(c)} IS NOT NULL" for c, _ in pairs)
            joined = " AND ".join(f"p.{quote(t)} = c.{quote(c)}" for c, t in pairs)
            with local_settings(connection, {"enable_nestloop": "off", "work_mem": WORK_MEM}):
                broken = connection.execute(sa.text(
                    f"SELECT {', '.join(f'c.{quote(c)}::text' for c, _ in pairs)} "
                    f"FROM {quote(schema, name)} AS c "
                    f"WHERE c.xmin = pg_current_xact_id()::xid AND {written} AND NOT EXISTS "
                    f"(SELECT FROM {quote(key.target_schema, key.target_table)} AS p "
                    f"WHERE {joined}) LIMIT 1"
                )).first()
            if broken is not None:
                values = ", ".join(str(v) for v in broken)
                raise DatabaseError(
                    f"the database refused the run: a row of {schema}.{name} breaks its "
                    f"foreign key {key.name}: ({', '.join(key.columns)})=({values}) is not "
                    f"in {key.target_schema}.{key.target_table}; nothing was written"
                )
