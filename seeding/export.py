"""Exporting a scenario as a seed file: the rows a run writes, as SQL the Supabase CLI loads.

:func:`export_scenario` is the library call behind ``seed export``. It builds the scenario
exactly as a run does (:func:`seeding.runner.prepare`: same seed, same rows, same ids), fits
the rows to a schema (:func:`seeding.db.fit.fit`, as a run does before it writes) and renders
them as text, without writing to any database:

- the schema is the tool's own (``seed db create``'s, every column of :mod:`seeding.domain.schema`)
  or, with ``database_url``, a live database's, read once in a read-only transaction; there,
  where Supabase's ``auth.users`` exists, every seeded person gets the same auth user and
  email identity a run writes (:mod:`seeding.db.auth`), their password hashed with a salt drawn
  from the seed, so the file is the same byte for byte for the same scenario, seed and schema;
- ``sql`` (:data:`SQL`) is what the Supabase CLI's seed runner accepts (``supabase db reset``
  runs the files ``[db.seed] sql_paths`` lists): plain statements it can split on ``;`` (no
  ``COPY ... FROM stdin``, no psql meta-command, no ``E''`` string, no dollar quote),
  schema-qualified names always quoted, explicit column lists, multi-row ``INSERT`` of at
  most :data:`ROWS_PER_INSERT` rows and about :data:`CHARS_PER_INSERT` characters, parents
  before children, the rows the app's trigger makes first written over
  (``ON CONFLICT ... DO UPDATE``, as a run does), sequences set after their tables;
- ``copy`` (:data:`COPY`) is the same rows in ``COPY ... FROM stdin`` blocks, for big seeds
  loaded with ``psql -v ON_ERROR_STOP=1 --single-transaction -f``.

The app's triggers fire while the file loads, as they do during a run: the profile trigger
makes each mechanic's profile (the app's mechanic pages need it), the customers' profiles
are then written over the bare ones it made. ``replica=True`` sets
``session_replication_role = replica`` for the file instead (reset at its end): no trigger
fires, foreign keys are not checked, and rows the triggers would make are not made.

Values are standard SQL literals (``''`` doubled, ``standard_conforming_strings`` on),
untyped where the column's type reads them (uuid, timestamps with their offset, dates,
enums, arrays as ``'{...}'``, json as its text), numbers and booleans bare, NULL.

The ledger records nothing: the rows are loaded by whoever runs the file, when the tool is
not there. ``seed reset`` does not know them; ``supabase db reset`` (which rebuilds the
database) removes them.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Final, Literal

from psycopg import sql
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql

from seeding import runner
from seeding.callbacks import Status, in_phase
from seeding.db import auth, database, fit, guard, ledger, writer
from seeding.db.catalog import Catalog, Table, read_catalog
from seeding.domain.schema import APP_TABLES, Base
from seeding.errors import ConfigurationError, DatabaseError, ScenarioError, SchemaMismatchError
from seeding.scenario.files import display, locate

Format = Literal["sql", "copy"]
SQL: Final = "sql"
COPY: Final = "copy"
FORMATS: Final = (SQL, COPY)

#: The most rows one ``INSERT`` holds.
ROWS_PER_INSERT: Final = 500
#: About the most characters one ``INSERT`` holds (a statement ends after the row that
#: reaches it): the Supabase CLI reads a statement into one buffer (256 KiB in older CLIs).
CHARS_PER_INSERT: Final = 128 * 1024

#: The file's groups with ``split``, in load order: Supabase's auth users first, then each
#: app table, parents first. A group's file is ``NN_group.sql`` (NN its place here, from 01).
GROUPS: Final = ("auth", *(table.name for table in APP_TABLES))

#: The one file's name without ``split``.
SINGLE_FILE: Final = "seed.sql"

_NEXTVAL = re.compile(r"^nextval\('((?:[^']|'')+)'::regclass\)$")
_INTEGER_TYPES = frozenset({"smallint", "integer", "bigint"})


@dataclass(frozen=True)
class TableRows:
    """One table's rows as the file writes them."""

    #: The table as the ledger names it (``profiles``, ``auth.users``).
    table: str
    schema: str
    name: str
    columns: tuple[str, ...]
    #: The columns' types (``jsonb`` values are written as JSON text).
    types: tuple[str, ...]
    #: The rows, and how a row's values are read in :attr:`columns` order.
    rows: Sequence[Any]
    values: Callable[[Any], tuple[Any, ...]]
    #: Write over a row of the same key the app made first (``ON CONFLICT (key) DO UPDATE``).
    upsert_on: str | None = None
    #: Columns the file gives values to whose default draws from a sequence, each with the
    #: SQL expression naming the sequence: set after the table's rows.
    sequences: tuple[tuple[str, str], ...] = ()

    @property
    def group(self) -> str:
        """Return the group of :data:`GROUPS` the table's rows go to."""
        return "auth" if self.schema == "auth" else self.name


@dataclass(frozen=True)
class ExportFile:
    """One file of an export: its name and the tables it holds, rendered on demand."""

    name: str
    tables: tuple[TableRows, ...]
    fmt: Format
    header: tuple[str, ...]
    replica: bool

    def chunks(self) -> Iterator[str]:
        """Yield the file's text in pieces (a statement, or a block of COPY lines)."""
        for line in self.header:
            yield f"-- {line}\n" if line else "--\n"
        yield "SET client_encoding = 'UTF8';\n"
        yield "SET standard_conforming_strings = on;\n"
        if self.replica:
            yield "SET session_replication_role = replica;\n"
        for table in self.tables:
            yield "\n"
            if self.fmt == COPY:
                yield from _copy_table(table)
            else:
                yield from _insert_table(table)
            yield from _set_sequences(table)
        if self.replica:
            yield "\nRESET session_replication_role;\n"

    @property
    def text(self) -> str:
        """Return the whole file."""
        return "".join(self.chunks())

    @property
    def counts(self) -> dict[str, int]:
        """Return the rows per table the file holds."""
        return {table.table: len(table.rows) for table in self.tables}


@dataclass(frozen=True)
class Export:
    """A scenario's rows as one file, or one per group (``split``), and what they hold."""

    scenario: str
    seed: int
    scale: float
    fmt: Format
    files: tuple[ExportFile, ...]
    #: Where the schema came from: ``the tool's own schema`` or the database's URL, masked.
    shape: str
    #: Whether the schema has Supabase's ``auth.users`` (the file then makes the users).
    auth: bool
    replica: bool
    split: bool
    #: The scenario's clock (moved where ``now`` was given).
    now: datetime
    #: ``table.column`` the tool fills but the schema lacks (not written).
    absent: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)


def export_scenario(
    name_or_path: str,
    *,
    seed: int | None = None,
    scale: float = 1.0,
    fmt: str = SQL,
    database_url: str | guard.Endpoint | database.Target | None = None,
    user_password: str | None = None,
    split: bool = False,
    replica: bool = False,
    max_rows: int | None = None,
    now: datetime | str | None = None,
    status: Status | None = None,
) -> Export:
    """Render a scenario's rows as a seed file (or files): the library call behind ``seed export``.

    Args:
        name_or_path: A shipped scenario's name, or a path to a scenario file.
        seed: The run's seed (default: the scenario's).
        scale: Multiplies the step counts; quotas are kept.
        fmt: ``sql`` (the Supabase CLI's seed runner, psql) or ``copy`` (psql only).
        database_url: Shape the rows for this database's live schema, read in a read-only
            transaction (nothing is written there). None: the tool's own schema, without auth
            users.
        user_password: The seeded Supabase users' password (default: ``SEED_USER_PASSWORD``,
            else :data:`seeding.db.auth.DEFAULT_PASSWORD`); only its bcrypt hash is written.
        split: One file per group of :data:`GROUPS` (every group of the schema, an empty
            table's too), named so that a glob sorts them in load order.
        replica: Load with ``session_replication_role = replica``: no trigger fires.
        max_rows: The most rows built in memory; default ``$SEED_MAX_ROWS``, else 5,000,000.
        now: Move the scenario in time so that its clock is this instant (``"now"``, an ISO
            timestamp with its offset, or an aware datetime), as ``seed scenario --now`` does.
            None: the scenario's own clock. ``"now"`` gives another file at every export.
        status: Shown each phase while it runs.

    Raises:
        ConfigurationError: When the format or the password is wrong, or the URL unreadable.
        ScenarioError: When the scenario is wrong, or tiled (its copies are streamed into a
            database by ``seed scenario``, not exported).
        SchemaMismatchError: When the rows do not fit the database's schema (with each fix).
        DatabaseError: When the database cannot be reached or its schema read.

    """
    if fmt not in FORMATS:
        raise ConfigurationError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    password = auth.user_password(user_password)
    given = None if database_url is None else database.target_of(database_url)
    with in_phase(status, "checking and building the scenario"):
        if runner.is_tiled(name_or_path):
            raise ScenarioError(
                f"{display(locate(name_or_path))}: the scenario is tiled (`tiles:`): its copies "
                "are streamed into a database by `seed scenario`, not exported as a file; "
                "export a scenario without `tiles:`, or seed it with `seed scenario`"
            )
        plan, built = runner.prepare(name_or_path, seed=seed, scale=scale, max_rows=max_rows,
                                     now=now)
    if given is None:
        fitted, catalog, shape = _own_fit(built.rows), None, "the tool's own schema"
    else:
        with in_phase(status, "reading the database's schema"):
            catalog = _read_schema(given)
        shape = given.display_url
        try:
            fitted = fit.fit(catalog, built.rows)
        except SchemaMismatchError as error:
            raise SchemaMismatchError(
                str(error).replace("nothing was written", "no file was written", 1),
                problems=error.problems,
            ) from None
    with in_phase(status, "rendering the rows"):
        tables: list[TableRows] = []
        if fitted.auth and catalog is not None:
            tables += _people(catalog, built.rows, password, plan.seed)
        for name, rows in writer.group_by_table(built.rows).items():
            table_fit = fitted.tables[name]
            live = None if catalog is None else catalog.table(table_fit.name, table_fit.schema)
            tables.append(TableRows(
                table=table_fit.table, schema=table_fit.schema, name=table_fit.name,
                columns=table_fit.columns, types=table_fit.types, rows=rows,
                values=table_fit.values, upsert_on=table_fit.upsert_on,
                sequences=_sequences(live, table_fit.columns),
            ))
    kind: Format = SQL if fmt == SQL else COPY
    clock = plan.now if now is not None else None
    header = _header(plan.scenario, plan.seed, plan.scale, clock, kind, given is not None,
                     fitted.auth, replica)
    if split:
        by_group = {group: tuple(t for t in tables if t.group == group) for group in GROUPS}
        groups = [g for g in GROUPS if g != "auth" or fitted.auth]
        files = tuple(
            ExportFile(file_name(group), by_group[group], kind,
                       (*header, "", f"Group {group}: load the files in name order."), replica)
            for group in groups
        )
    else:
        files = (ExportFile(SINGLE_FILE, tuple(tables), kind, header, replica),)
    return Export(
        scenario=plan.scenario, seed=plan.seed, scale=plan.scale, fmt=kind, files=files,
        shape=shape, auth=fitted.auth, replica=replica, split=split, now=plan.now,
        absent=fitted.absent,
        counts={table.table: len(table.rows) for table in tables},
    )


def file_name(group: str) -> str:
    """Return the file a group's rows go to with ``split`` (``01_auth.sql``)."""
    return f"{GROUPS.index(group) + 1:02d}_{group}.sql"


def _header(scenario: str, seed: int, scale: float, clock: datetime | None, fmt: Format,
            live: bool, has_auth: bool, replica: bool) -> tuple[str, ...]:
    """Return the file's comment lines: what it holds and how to load it (no URL, no secret)."""
    moved = f", clock moved to {clock.isoformat()}" if clock is not None else ""
    lines = [f"Seed data made by `seed export`: scenario {scenario}, seed {seed}, "
             f"scale {scale:g}{moved}."]
    if not live:
        lines.append("Shaped for the tool's own schema (`seed db create`); no Supabase auth users.")
    elif has_auth:
        lines.append("Shaped for the schema of the database read with --db, with a Supabase "
                     "auth user and email identity for every seeded person.")
    else:
        lines.append("Shaped for the schema of the database read with --db (no auth schema).")
    if fmt == SQL:
        lines.append("Load: list it in supabase/config.toml [db.seed] sql_paths "
                     "(`supabase db reset`), or `psql -v ON_ERROR_STOP=1 --single-transaction -f`.")
    else:
        lines.append("Load: `psql -v ON_ERROR_STOP=1 --single-transaction -f` "
                     "(COPY blocks: not for the Supabase CLI's seed runner).")
    if replica:
        lines.append("session_replication_role = replica while it loads: no trigger fires.")
    else:
        lines.append("The database's triggers fire as they do during `seed scenario`.")
    lines.append("The seeding ledger does not record these rows: `seed reset` leaves them.")
    return tuple(lines)


def _read_schema(target: database.Target) -> Catalog:
    """Read the live schema (public and auth) in one read-only transaction.

    Raises:
        DatabaseError: When the database cannot be reached or read.

    """
    engine = database.engine_for(target.endpoint)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            try:
                return read_catalog(connection, runner.LIVE_SCHEMAS)
            finally:
                connection.rollback()
    except sa_exc.DBAPIError as error:
        raise DatabaseError(guard.redact(
            f"cannot read the schema of {target.display_url}: {database.describe(error)}"
        )) from None
    finally:
        engine.dispose()


def _own_fit(rows: Sequence[Base]) -> fit.Fit:
    """Return how rows are written to the tool's own schema: every column, as built.

    It is what :func:`seeding.db.fit.fit` makes of the schema ``seed db create`` makes (no
    generated or identity column, the tool's names and types, no key to ``auth.users``),
    without a database to read it from.
    """
    tables: dict[str, fit.TableFit] = {}
    for name in writer.group_by_table(rows):
        model = next(t for t in APP_TABLES if t.name == name)
        columns = writer.COLUMNS[name]
        getters = tuple(_attribute(key) for _, key, _ in columns)
        types = tuple(
            column.type.compile(dialect=postgresql.dialect()).lower()  # type: ignore[no-untyped-call]
            for column in model.columns
        )
        tables[name] = fit.TableFit(
            ledger.table_name(ledger.APP_SCHEMA, name), ledger.APP_SCHEMA, name,
            tuple(column for column, _, _ in columns), getters, types,
        )
    return fit.Fit(tables)


def _attribute(key: str) -> fit.Getter:
    def read(row: Any) -> Any:
        return getattr(row, key)

    return read


def _people(catalog: Catalog, rows: Sequence[Base], password: str, seed: int) -> list[TableRows]:
    """Return the auth users and identities a run writes for the seeded people."""
    found = []
    for (schema, name), records in auth.seeded_accounts(catalog, rows, password, seed).items():
        live = catalog.table(name, schema)
        assert live is not None
        columns = tuple(writer.record_columns(live, records[0]))  # as write_records writes
        found.append(TableRows(
            table=ledger.table_name(schema, name), schema=schema, name=name,
            columns=columns, types=tuple(live.columns[c].base_type for c in columns),
            rows=records, values=_record_values(columns),
            sequences=_sequences(live, columns),
        ))
    return found


def _record_values(columns: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    def values(record: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(record[column] for column in columns)

    return values


def _sequences(live: Table | None, columns: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """Return the written columns whose default draws from a sequence, and the sequence."""
    if live is None:
        return ()
    found = []
    for name in columns:
        column = live.columns[name]
        if column.base_type not in _INTEGER_TYPES:
            continue
        if column.identity == "d":
            found.append((name, "pg_catalog.pg_get_serial_sequence("
                          f"{_string(_quoted(live.schema, live.name))}, {_string(name)})"))
            continue
        matched = _NEXTVAL.match(column.default or "")
        if matched:
            found.append((name, f"{_string(matched.group(1).replace(chr(39) * 2, chr(39)))}"
                          "::regclass"))
    return tuple(found)


# ------------------------------------------------------------------------------------------
# Rendering.
# ------------------------------------------------------------------------------------------


def _quoted(*names: str) -> str:
    """Return the names, each quoted (always), dot-joined: a name reaches the file only so."""
    return sql.Identifier(*names).as_string(None)


def _string(text: str) -> str:
    """Return a standard SQL string literal: ``'`` doubled, nothing else escaped."""
    return "'" + text.replace("'", "''") + "'"


def _insert_table(table: TableRows) -> Iterator[str]:
    """Yield the table's rows as multi-row INSERTs, each of bounded size."""
    head = (f"INSERT INTO {_quoted(table.schema, table.name)} "
            f"({', '.join(_quoted(c) for c in table.columns)}) VALUES\n")
    tail = ";\n"
    if table.upsert_on is not None:
        updates = ", ".join(f"{_quoted(c)} = EXCLUDED.{_quoted(c)}"
                            for c in table.columns if c != table.upsert_on)
        tail = (f"\nON CONFLICT ({_quoted(table.upsert_on)}) DO "
                + (f"UPDATE SET {updates};\n" if updates else "NOTHING;\n"))
    statement: list[str] = []
    size = 0
    for row in table.rows:
        values = table.values(row)
        shown = (literal(v, t) for v, t in zip(values, table.types, strict=True))
        line = "(" + ", ".join(shown) + ")"
        statement.append(line)
        size += len(line) + 2
        if len(statement) >= ROWS_PER_INSERT or size >= CHARS_PER_INSERT:
            yield head + ",\n".join(statement) + tail
            statement, size = [], 0
    if statement:
        yield head + ",\n".join(statement) + tail


def _copy_table(table: TableRows) -> Iterator[str]:
    """Yield the table's rows as one COPY block (through a staging table when upserted)."""
    columns = ", ".join(_quoted(c) for c in table.columns)
    target = _quoted(table.schema, table.name)
    into = target
    if table.upsert_on is not None:
        into = _quoted("pg_temp", "seeding_upsert")
        yield (f"CREATE TEMPORARY TABLE {_quoted('seeding_upsert')} AS SELECT {columns} "
               f"FROM {target} WITH NO DATA;\n")
    yield f"COPY {into} ({columns}) FROM stdin;\n"
    batch: list[str] = []
    for row in table.rows:
        values = table.values(row)
        batch.append("\t".join(copy_field(v, t) for v, t in zip(values, table.types, strict=True)))
        if len(batch) >= ROWS_PER_INSERT:
            yield "\n".join(batch) + "\n"
            batch = []
    if batch:
        yield "\n".join(batch) + "\n"
    yield "\\.\n"
    if table.upsert_on is not None:
        updates = ", ".join(f"{_quoted(c)} = EXCLUDED.{_quoted(c)}"
                            for c in table.columns if c != table.upsert_on)
        action = f"UPDATE SET {updates}" if updates else "NOTHING"
        yield (f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {into} "
               f"ON CONFLICT ({_quoted(table.upsert_on)}) DO {action};\n")
        yield f"DROP TABLE {into};\n"


def _set_sequences(table: TableRows) -> Iterator[str]:
    """Yield, per column drawn from a sequence, the statement that moves it past the rows."""
    target = _quoted(table.schema, table.name)
    for column, sequence in table.sequences:
        yield (f"SELECT pg_catalog.setval({sequence}, max({_quoted(column)})) FROM {target} "
               f"HAVING max({_quoted(column)}) IS NOT NULL;\n")


def text_of(value: Any, column_type: str = "") -> str | None:
    """Return a value as PostgreSQL reads it in a column of ``column_type`` (None: NULL).

    Raises:
        ScenarioError: For a value no column takes (a bug: it names the value's type).

    """
    if value is None:
        return None
    if column_type in ("json", "jsonb"):
        return json.dumps(value)  # as psycopg's Jsonb writes it during a run
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        if "\x00" in value:
            raise ScenarioError(f"the value {value[:40]!r} holds a NUL character, which "
                                "PostgreSQL's text cannot; this is a bug in seeding")
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return _array(value)
    if isinstance(value, dict):
        return json.dumps(value)
    raise ScenarioError(f"a value of type {type(value).__name__} cannot be exported; this is "
                        "a bug in seeding, please report it with the scenario file")


def _array(values: Sequence[Any]) -> str:
    r"""Return an array literal: ``{"a","b\"c",NULL}``."""
    items = []
    for value in values:
        if isinstance(value, (list, tuple)):
            items.append(_array(value))
            continue
        text = text_of(value)
        if text is None:
            items.append("NULL")
        else:
            items.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(items) + "}"


def literal(value: Any, column_type: str = "") -> str:
    """Return a value as a SQL literal for a column of ``column_type``.

    NULL, numbers and booleans bare; anything else a standard string the column's type reads
    (an ``INSERT`` casts an untyped literal to its column's type).
    """
    text = text_of(value, column_type)
    if text is None:
        return "NULL"
    return text if _is_bare(value, column_type) else _string(text)


def _is_bare(value: Any, column_type: str) -> bool:
    """Return whether a value is written as it is: a boolean or a finite number, not JSON."""
    if column_type in ("json", "jsonb"):
        return False
    if isinstance(value, (bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Decimal):
        return value.is_finite()
    return False


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def copy_field(value: Any, column_type: str = "") -> str:
    r"""Return a value as one field of COPY's text format (``\N`` for NULL)."""
    text = text_of(value, column_type)
    return "\\N" if text is None else text.translate(_COPY_ESCAPES)
