"""Tiled scenarios: many copies of factory-built rows, each copy with ids of its own.

A scenario with ``tiles: N`` describes one tile (a workshop's corner of the marketplace) and
is N copies of it at ``--scale 1``. The factories build a few *variants* of the tile (the
same steps under different seeds), once; every copy is a variant whose uuids are XORed
with the copy's own mask. XOR keeps every relation inside the copy (a foreign key moves
with the id it points at), and the hex of an id written into a text (an email, a slug)
is rewritten with it, so every rule the factories keep holds in every copy: the factories
stay the one definition of the data, and no row is made per row by Faker or factory_boy.

Rows are encoded once per variant in PostgreSQL's binary COPY format; a copy is that
buffer with its uuid bytes and hex digits patched by numpy, streamed to the server while
the next one is made. Memory holds a variant at a time, whatever the scale. Copies are
disjoint, so ``--shard K/N`` writes copies K, K+N, K+2N, ... (counting from 1) and all the
shards together are the unsharded run.

On the app's own (Supabase) database a variant is fitted to the live schema first (as a
built run is: :mod:`seeding.db.fit`), and its people get their auth users and identities in
the same copies (:mod:`seeding.db.auth`): their ids are XORed like every id, and the texts that
hold one (an email, an identity's dashed ``provider_id`` and JSON ``sub``) are rewritten
with it. The profiles the app's trigger makes for new auth users are written over through a
staging table, and the rows the app's triggers make are recorded by the server itself
(:func:`record_app_made`).
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from queue import Queue
from typing import Any, TypeGuard, cast

import numpy as np
import sqlalchemy as sa
from psycopg import sql
from psycopg.adapt import PyFormat, Transformer
from psycopg.copy import QueuedLibpqWriter
from psycopg.pq import Format
from psycopg.types.json import Jsonb

from seeding.db import auth, constraints, fit, ledger
from seeding.db.catalog import Catalog, Table, read_catalog
from seeding.db.identifiers import identifier, quote
from seeding.db.writer import COLUMNS, record_columns, row_values
from seeding.domain.schema import APP_TABLES, MODELS, Base
from seeding.errors import ScenarioError, SchemaError, SchemaMismatchError
from seeding.scenario.builder import Built

#: How many distinct variants of a tile the factories build; each makes a block of the copies.
VARIANTS = 4
#: The most copies one run writes: each has its own two-byte id prefix (see copy_mask).
MAX_COPIES = 2**16

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
#: Blocks (up to 128 kB each) waiting to be sent: a few copies' worth.
QUEUED_BLOCKS = 32
#: The types of the ledger's block columns (see seeding.db.ledger.BLOCK_COLUMNS).
UUID_OID, TEXT_OID, UUID_ARRAY_OID = 2950, 25, 2951
_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Shard:
    """Which copies a run writes: copy ``i`` (0-based) when ``i % count == index - 1``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """Parse ``K/N`` (1 ≤ K ≤ N).

        Raises:
            ScenarioError: When the text is not of that form.

        """
        match = _SHARD.match(text)
        if not match:
            raise ScenarioError(
                f"--shard {text!r} is not K/N (for example 2/8: the second of 8 shards)"
            )
        index, count = int(match[1]), int(match[2])
        if not 1 <= index <= count:
            raise ScenarioError(
                f"--shard {text!r}: K must be between 1 and N, as in 1/{max(count, 1)}"
            )
        return cls(index, count)

    def copies(self, total: int) -> range:
        """Return the copies of ``total`` this shard writes."""
        return range(self.index - 1, total, self.count)

    def __str__(self) -> str:
        """Return ``K/N``."""
        return f"{self.index}/{self.count}"


WHOLE = Shard(1, 1)


def copy_count(tiles: int, scale: float) -> int:
    """Return how many copies a run writes: the scenario's ``tiles`` times the scale (at least 1).

    Raises:
        ScenarioError: When that is more than :data:`MAX_COPIES`.

    """
    count = max(1, math.floor(tiles * scale + 0.5))
    if count > MAX_COPIES:
        raise ScenarioError(
            f"--scale {scale:g} asks for {count:,} copies of the tile; a run writes at most "
            f"{MAX_COPIES:,} (--scale {MAX_COPIES / tiles:g} here)"
        )
    return count


def variant_seed(seed: int, variant: int) -> int:
    """Return the seed the factories build variant ``variant`` of a tile with."""
    if variant == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:variant:{variant}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


def copy_mask(seed: int, copy: int) -> bytes:
    """Return the 16 bytes copy ``copy`` XORs its uuids with.

    Encoded variants hold their uuids with the first two bytes zeroed, so every id of a copy
    starts with the mask's first two bytes: a prefix of the copy's own that grows with the
    copy's number. Each copy's rows then land together in the primary-key indexes (about
    twice as fast to write as scattered ids), and the hex prefixes that slugs and emails
    carry never repeat between copies of one variant. The version and variant bits are zero,
    so a version-4 uuid stays one.
    """
    rest = bytearray(hashlib.sha256(f"{seed}:copy:{copy}".encode()).digest()[:16])
    if not 0 <= copy < MAX_COPIES:
        raise ScenarioError(f"a run writes at most {MAX_COPIES:,} copies of a tile; lower --scale")
    base = int.from_bytes(hashlib.sha256(f"{seed}:copies".encode()).digest()[:2], "big")
    rest[:2] = ((base + copy) % MAX_COPIES).to_bytes(2, "big")
    rest[6] &= 0x0F
    rest[8] &= 0x3F
    return bytes(rest)


class _BoundedWriter(QueuedLibpqWriter):
    """psycopg's queued writer, holding at most a few megabytes.

    It sends from a thread while the next copy is patched. Its own queue takes 1,024 blocks,
    which would let memory grow with the scale whenever patching outruns the server.
    """

    def __init__(self, cursor: Any) -> None:
        super().__init__(cursor)
        if isinstance(getattr(self, "_queue", None), Queue):
            self._queue = Queue(maxsize=QUEUED_BLOCKS)  # type: ignore[assignment]


@dataclass(frozen=True)
class Encoded:
    """One variant's rows of one table, in binary COPY format, and where copies patch them."""

    table: str
    rows: int
    data: np.ndarray  # uint8: the rows, without signature and trailer
    uuid_bytes: np.ndarray  # int64: every byte of every uuid value
    uuid_count: int
    hex_at: np.ndarray  # int64: every hex digit of an id written into a text
    hex_nibble: np.ndarray  # int64: which of the id's 32 hex digits it is
    hex_base: np.ndarray  # uint8: that digit's value in the encoded id (see copy_mask)

    def copy(self, mask: bytes) -> bytes:
        """Return the rows of one copy: uuids XORed with ``mask``, their hex rewritten.

        A copy's id is the encoded id (its first two bytes zeroed) XORed with the mask, so
        each hex digit of it written into a text is the encoded digit XORed with the mask's
        digit at the same place: the text follows its id, wherever that id is written.
        """
        out = self.data.copy()
        mask_bytes = np.frombuffer(mask, dtype=np.uint8)
        if self.uuid_count:
            out[self.uuid_bytes] ^= np.tile(mask_bytes, self.uuid_count)
        if len(self.hex_at):
            nibbles = np.empty(32, dtype=np.uint8)
            nibbles[0::2], nibbles[1::2] = mask_bytes >> 4, mask_bytes & 0x0F
            out[self.hex_at] = _HEX_DIGITS[self.hex_base ^ nibbles[self.hex_nibble]]
        return out.tobytes()


class Encoder:
    """Encodes rows for binary COPY into the live table's column types."""

    def __init__(self, connection: sa.Connection, catalog: Catalog | None = None) -> None:
        """Encode for the database of ``connection`` (its type adapters).

        ``catalog`` is its live schema, when the caller has read it; else the app's schema
        is read on the first table asked for.
        """
        self.connection = connection
        driver = connection.connection.driver_connection
        assert driver is not None
        self.transformer = Transformer(driver)
        self._catalog = catalog
        self._oids: dict[tuple[str, str, tuple[str, ...]], list[int]] = {}

    def column_oids(
        self, table: str, columns: Sequence[str], schema: str = ledger.APP_SCHEMA
    ) -> list[int]:
        """Return the live column types (an enum or domain as its text or base type).

        Raises:
            SchemaError: When the table or one of the columns is missing.

        """
        key = (schema, table, tuple(columns))
        if key not in self._oids:
            self._oids[key] = self._read_oids(schema, table, columns)
        return self._oids[key]

    def _read_oids(self, schema: str, table: str, columns: Sequence[str]) -> list[int]:
        if self._catalog is None:  # read once, on the first table asked for
            self._catalog = read_catalog(self.connection, (ledger.APP_SCHEMA,))
        live = self._catalog.table(table, schema)
        if live is None or not live.columns:
            raise SchemaError(f"table {table} is missing; create it with seed db create")
        missing = [c for c in columns if c not in live.columns]
        if missing:
            raise SchemaError(
                f"table {table} lacks column(s) {', '.join(missing)}; "
                "compare it with seed db doctor"
            )
        return [
            TEXT_OID if column.is_enum else column.base_type_oid
            for column in (live.columns[c] for c in columns)
        ]

    def encode(
        self,
        table: str,
        rows: Sequence[tuple[object, ...]],
        oids: Sequence[int],
        *,
        keep: frozenset[int] = frozenset(),
        context: Sequence[Sequence[uuid.UUID]] | None = None,
    ) -> Encoded:
        """Encode rows (the table's columns in order), noting their uuids and embedded hex ids.

        A uuid is noted alone or as an element of a list (an array column). The hex of a
        row's uuids found in its texts and JSON (plain, at least its first six digits, or the
        whole dashed form) is rewritten in each copy with the id. The values at the positions
        in ``keep`` are left as they are in copies (a uuid that is no id of the tile, a hash).
        ``context`` gives, per row, ids of the tile that row's texts may hold although the
        row does not (a mechanic's email, written into the auth user's row, holds the hex of
        the mechanic's id).

        Raises:
            SchemaError: When a value cannot be written in its live column's type.

        """
        self.transformer.set_dumper_types(list(oids), Format.BINARY)
        formats = [PyFormat.BINARY] * len(oids)
        data = bytearray()
        uuid_starts: list[int] = []
        hex_at: list[int] = []
        hex_nibble: list[int] = []
        hex_base: list[int] = []
        for index, values in enumerate(rows):
            values = tuple(
                Jsonb(v) if isinstance(v, (dict, list)) and oid in (114, 3802) else v
                for v, oid in zip(values, oids, strict=True)
            )
            try:
                dumped = self.transformer.dump_sequence(values, formats)
            except Exception as error:
                raise SchemaError(
                    f"{table}: a value does not fit its live column's type "
                    f"({type(error).__name__}: {error}); compare it with seed db doctor"
                ) from None
            data += struct.pack("!h", len(dumped))
            ids: set[uuid.UUID] = set(context[index]) if context is not None else set()
            texts: list[tuple[int, bytes]] = []
            for position, (value, field) in enumerate(zip(values, dumped, strict=True)):
                if field is None:
                    data += b"\xff\xff\xff\xff"
                    continue
                field = bytes(field)
                data += struct.pack("!i", len(field))
                if position in keep:
                    pass
                elif isinstance(value, uuid.UUID):
                    uuid_starts.append(len(data))
                    ids.add(value)
                elif _is_uuid_list(value):
                    uuid_starts += _element_starts(field, value, len(data))
                elif isinstance(value, (str, Jsonb)):
                    texts.append((len(data), field))
                data += field
            for value in ids if texts else ():
                digits: list[int] = []  # the id as encoded (see copy_mask), digit by digit
                for offset, field in texts:
                    for at, places in _id_runs(field, value):
                        if not digits:
                            digits = [int(d, 16) for d in (bytes(2) + value.bytes[2:]).hex()]
                        hex_at.extend(offset + at + place for place in places)
                        hex_nibble.extend(range(len(places)))
                        hex_base.extend(digits[: len(places)])
        starts_array = np.asarray(uuid_starts, dtype=np.int64)[:, None]
        uuid_bytes = (starts_array + np.arange(16)).ravel()
        encoded = np.frombuffer(bytes(data), dtype=np.uint8).copy()
        encoded[(starts_array + np.arange(2)).ravel()] = 0  # see copy_mask
        return Encoded(
            table=table,
            rows=len(rows),
            data=encoded,
            uuid_bytes=uuid_bytes,
            uuid_count=len(uuid_starts),
            hex_at=np.asarray(hex_at, dtype=np.int64),
            hex_nibble=np.asarray(hex_nibble, dtype=np.int64),
            hex_base=np.asarray(hex_base, dtype=np.uint8),
        )


def _is_uuid_list(value: object) -> TypeGuard[list[uuid.UUID]]:
    """Return whether a value is a list of uuids (an array of ids, such as a ledger block)."""
    return isinstance(value, list) and bool(value) and all(isinstance(v, uuid.UUID) for v in value)


def _element_starts(field: bytes, values: list[uuid.UUID], offset: int) -> list[int]:
    """Return where each uuid of a one-dimensional array starts (``offset``: the field's start).

    The binary array is a header of five int32 (dimensions, null flag, element type, length,
    lower bound), then per element its int32 length and its 16 bytes.
    """
    starts = [offset + 20 + 20 * i + 4 for i in range(len(values))]
    for start, value in zip(starts, values, strict=True):
        if field[start - offset : start - offset + 16] != value.bytes:
            raise SchemaError("an array of ids is not encoded as expected; report this as a bug")
    return starts


#: Where each hex digit of a dashed uuid (8-4-4-4-12) stands in its 36 characters.
_DASHED_AT = tuple(at for at in range(36) if at not in (8, 13, 18, 23))
#: Where each of the first n hex digits of a plain run stands.
_PLAIN_AT = tuple(range(32))


def _id_runs(field: bytes, value: uuid.UUID) -> Iterable[tuple[int, Sequence[int]]]:
    """Yield (offset in the field, where its digits stand) for each run of an id's hex digits.

    The k-th place holds the id's k-th hex digit. An id is found in a text as a run of at
    least its first 6 hex digits (the factories write ``id.hex[:10]`` into emails and slugs),
    or whole in its dashed form (``str(id)``, as an auth identity's ``provider_id`` and
    ``identity_data`` hold the user's id).
    """
    plain = value.hex.encode()
    needle = plain[:6]
    at = field.find(needle)
    if at < 0:
        return
    dashed = str(value).encode()
    while at >= 0:
        if field.startswith(dashed, at):
            yield at, _DASHED_AT
            at = field.find(needle, at + len(dashed))
            continue
        length = 6
        while length < 32 and at + length < len(field) and field[at + length] == plain[length]:
            length += 1
        yield at, _PLAIN_AT[:length]
        at = field.find(needle, at + length)


@dataclass(frozen=True)
class Target:
    """Where one table's rows of a variant go: a COPY, and what runs around it."""

    #: The table as the ledger names it (``profiles``, ``auth.users``).
    name: str
    #: ``COPY ... FROM STDIN (FORMAT BINARY)`` into the table, or into its staging table.
    statement: sql.Composable
    encoded: Encoded
    #: Run before each variant's COPY (a staging table made where missing) and after it
    #: (the staged rows written over the rows the app made).
    before: tuple[sql.Composable, ...] = ()
    after: tuple[sql.Composable, ...] = ()
    #: Whether the COPY runs with the keys' row checks off (see seeding.db.constraints).
    unchecked: bool = False

    @property
    def app(self) -> bool:
        """Return whether it is one of the app's tables (not Supabase's auth schema)."""
        return "." not in self.name


@dataclass(frozen=True)
class Variant:
    """One variant of a tile: its rows per table, encoded, and the ledger's rows for them."""

    #: In write order: parents before children.
    targets: tuple[Target, ...]
    ledger: Encoded
    #: ``table.column`` the tool fills but the live database lacks (not written).
    absent: tuple[str, ...] = ()

    @property
    def tables(self) -> dict[str, Encoded]:
        """Return the encoded rows by table (as the ledger names it)."""
        return {target.name: target.encoded for target in self.targets}

    @property
    def rows(self) -> int:
        """Return how many app rows one copy of this variant writes."""
        return sum(target.encoded.rows for target in self.targets if target.app)


@dataclass(frozen=True)
class AppDatabase:
    """What a tiled run needs to write to the app's own (Supabase) database."""

    #: Its live schema (``public`` and ``auth``).
    catalog: Catalog
    #: The bcrypt hash of the seeded users' password, made once per run.
    password_hash: str
    #: The tables (schema, table) written with their keys' row checks off, checked after
    #: (:func:`seeding.db.constraints.quiet_tables`).
    unchecked: frozenset[tuple[str, str]] = frozenset()


def tile_rows(built: Built) -> dict[str, list[tuple[object, ...]]]:
    """Return a built tile's rows as value tuples per table (parents first)."""
    grouped: dict[str, list[tuple[object, ...]]] = {table.name: [] for table in APP_TABLES}
    for row in built.rows:
        grouped[row.__table__.name].append(row_values(row))  # type: ignore[attr-defined]
    return {name: rows for name, rows in grouped.items() if rows}


def row_views(rows: dict[str, list[tuple[object, ...]]]) -> list[Base]:
    """Return a tile's rows (see :func:`tile_rows`) as read-only instances of their models.

    Each is its model's instance with its values as attributes and no ORM state, so that
    :func:`seeding.db.fit.fit` and :func:`seeding.db.auth.people` read a variant built in the
    child process as they read built rows; none is ever added to a session.
    """
    views: list[Base] = []
    for table in APP_TABLES:
        model = MODELS[table.name]
        keys = [key for _, key, _ in COLUMNS[table.name]]
        for values in rows.get(table.name, ()):
            view = model.__new__(model)
            view.__dict__.update(zip(keys, values, strict=True))
            views.append(view)
    return views


def encode_variant(
    encoder: Encoder,
    rows: dict[str, list[tuple[object, ...]]],
    run_id: uuid.UUID,
    app: AppDatabase | None = None,
    *,
    copies: int = 1,
) -> Variant:
    """Encode a tile's rows (see :func:`tile_rows`) and its ledger rows for run ``run_id``.

    On a database of the tool's own (``app`` None) every column of the tool's tables is
    written. On the app's own database the rows are fitted to its live schema first
    (:func:`seeding.db.fit.fit`: its columns, names and types), every seeded person gets an auth
    user and an email identity (:mod:`seeding.db.auth`), and the rows the app's trigger makes
    for a new auth user (a customer's profile) are written over, through a staging table.

    ``copies`` is how many copies of this variant the run writes: with more than one, a
    value under one of the app's unique keys must change from copy to copy.

    Raises:
        SchemaError: When the live tables lack a column the tool writes.
        SchemaMismatchError: When the rows do not fit the app's live schema.

    """
    if app is not None:
        return _encode_for_app(encoder, rows, run_id, app, copies)
    targets: list[Target] = []
    ledger_rows: list[tuple[object, ...]] = []
    for table in APP_TABLES:
        table_rows = rows.get(table.name)
        if not table_rows:
            continue
        columns = [name for name, _, _ in COLUMNS[table.name]]
        encoded = encoder.encode(table.name, table_rows, encoder.column_oids(table.name, columns))
        statement = ledger.copy_statement(ledger.APP_SCHEMA, table.name, columns)
        targets.append(Target(table.name, statement, encoded))
        ids = [cast(uuid.UUID, row[0]) for row in table_rows]  # every app table's id
        ledger_rows += ledger.block_rows(run_id, table.name, ids)
    return Variant(targets=tuple(targets), ledger=_ledger_blocks(encoder, ledger_rows))


def _ledger_blocks(encoder: Encoder, ledger_rows: list[tuple[object, ...]]) -> Encoded:
    """Encode the ledger's blocks of one copy: the run's id is the same in every copy."""
    return encoder.encode(
        ledger.BLOCKS, ledger_rows, [UUID_OID, TEXT_OID, UUID_ARRAY_OID], keep=frozenset({0})
    )


#: auth.users columns that hold no id of the tile: the same in every copy.
_AUTH_KEPT = frozenset({"instance_id", "encrypted_password"})


def _encode_for_app(
    encoder: Encoder,
    rows: dict[str, list[tuple[object, ...]]],
    run_id: uuid.UUID,
    app: AppDatabase,
    copies: int,
) -> Variant:
    """Encode a variant for the app's own database (see :func:`encode_variant`).

    Raises:
        SchemaMismatchError: When the rows do not fit the app's live schema.

    """
    views = row_views(rows)
    fitted = fit.fit(app.catalog, views)
    values = {
        name: [table_fit.values(v) for v in views if v.__table__.name == name]  # type: ignore[attr-defined]
        for name, table_fit in fitted.tables.items()
    }
    if copies > 1:
        repeated = [
            problem for name, table_fit in fitted.tables.items()
            for problem in _repeated_in_copies(app.catalog, table_fit, values[name])
        ]
        if repeated:
            raise SchemaMismatchError(
                "the scenario's rows do not fit this database: every copy of the tile would "
                "repeat a value the app keeps unique; nothing was written: "
                + " | ".join(repeated),
                problems=repeated,
            )
    targets: list[Target] = []
    ledger_rows: list[tuple[object, ...]] = []
    people = auth.people(views)
    # A person's texts may hold their row's id (a mechanic's email), not their auth id.
    context = [[p.row_id] if p.row_id is not None else [] for p in people]
    for (schema, name), records in auth.accounts(app.catalog, people, app.password_hash).items():
        live = app.catalog.table(name, schema)
        assert live is not None
        kept = _AUTH_KEPT if name == "users" else frozenset()
        targets.append(_records_target(encoder, app, live, records, context, kept))
        ids = [cast(uuid.UUID, r["id"]) for r in records]
        ledger_rows += ledger.block_rows(run_id, ledger.table_name(schema, name), ids)
    by_table: dict[str, list[Base]] = {}
    for view in views:
        by_table.setdefault(view.__table__.name, []).append(view)  # type: ignore[attr-defined]
    for name in write_order(app.catalog, list(fitted.tables)):
        table_fit = fitted.tables[name]
        table_views = by_table[name]
        oids = encoder.column_oids(table_fit.name, table_fit.columns, table_fit.schema)
        encoded = encoder.encode(table_fit.table, values[name], oids)
        targets.append(_table_target(app, table_fit, encoded))
        ids = [cast(uuid.UUID, v.id) for v in table_views]  # type: ignore[attr-defined]
        ledger_rows += ledger.block_rows(run_id, table_fit.table, ids)
    return Variant(
        targets=tuple(targets), ledger=_ledger_blocks(encoder, ledger_rows),
        absent=fitted.absent,
    )


def _repeated_in_copies(
    catalog: Catalog, table_fit: fit.TableFit, values: Sequence[tuple[object, ...]]
) -> list[str]:
    """Return the app's unique keys on a table whose values every copy would repeat.

    A copy rewrites its ids and the hex of them in texts (see :class:`Encoder`), so a key
    changes from copy to copy when it holds an id, or a text holding the first six hex digits
    of one of its row's ids (as the factories write them into emails and slugs). The tool's
    own unique keys are checked before anything is built
    (:func:`seeding.scenario.builder.check_unique_across_copies`); these are the app's, read live.
    Partial unique indexes are left to the database.
    """
    live = catalog.table(table_fit.name, table_fit.schema)
    assert live is not None
    found: list[str] = []
    for unique in live.uniques:
        if unique.primary or unique.expressions or unique.predicate is not None:
            continue
        if not unique.columns or any(c not in table_fit.columns for c in unique.columns):
            continue
        at = [table_fit.columns.index(c) for c in unique.columns]
        for row in values:
            key = [row[i] for i in at]
            if unique.nulls_distinct and any(v is None for v in key):
                continue  # never equal to another
            if any(isinstance(v, uuid.UUID) for v in key):
                continue
            hexes = [v.hex[:6] for v in row if isinstance(v, uuid.UUID)]
            if any(isinstance(v, str) and any(h in v for h in hexes) for v in key):
                continue
            shown = ", ".join(map(repr, key))
            found.append(
                f"{table_fit.table}.{', '.join(unique.columns)}: {shown} would be the same in "
                f"each copy of the tile, and {unique.name} keeps it unique; fix: the factory "
                "writes the row's id into it (as it does into emails and slugs)"
            )
            break
    return found


def _records_target(
    encoder: Encoder,
    app: AppDatabase,
    table: Table,
    records: Sequence[dict[str, Any]],
    context: Sequence[Sequence[uuid.UUID]],
    kept: frozenset[str] = frozenset(),
) -> Target:
    """Encode records (values by column) into the columns of a live table that it has.

    Its columns are those :func:`seeding.db.writer.write_records` writes.
    """
    columns = record_columns(table, records[0])
    oids = encoder.column_oids(table.name, columns, table.schema)
    keep = frozenset(i for i, name in enumerate(columns) if name in kept)
    encoded = encoder.encode(
        ledger.table_name(table.schema, table.name),
        [tuple(r[c] for c in columns) for r in records], oids, keep=keep, context=context,
    )
    statement = ledger.copy_statement(table.schema, table.name, columns)
    return Target(
        ledger.table_name(table.schema, table.name), statement, encoded,
        unchecked=(table.schema, table.name) in app.unchecked,
    )


def _table_target(app: AppDatabase, table_fit: fit.TableFit, encoded: Encoded) -> Target:
    """Return where a fitted table's rows go: the table, or a staging table to write over it.

    A table whose rows the app makes first (a customer's profile, made by the app's trigger
    when the auth user is written) gets its rows in a temporary table; after each variant's
    COPY one ``INSERT ... ON CONFLICT DO UPDATE`` writes them over the app's rows (the
    columns the run writes; the others as the app set them) and adds any the app did not
    make, as :func:`seeding.db.writer.upsert_values` does for a built run. Set-wise, it took
    the time an ``UPDATE ... FROM`` the staging table did (bench/README.md).
    """
    target = identifier(table_fit.schema, table_fit.name)
    if table_fit.upsert_on is None:
        statement = ledger.copy_statement(table_fit.schema, table_fit.name, table_fit.columns)
        unchecked = (table_fit.schema, table_fit.name) in app.unchecked
        return Target(table_fit.table, statement, encoded, unchecked=unchecked)
    name = f"seeding_stage_{table_fit.name}"
    stage = identifier("pg_temp", name)
    columns = sql.SQL(", ").join(identifier(c) for c in table_fit.columns)
    updates = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(identifier(c), identifier(c))
        for c in table_fit.columns if c != table_fit.upsert_on
    )
    before = (sql.SQL(
        "CREATE TEMPORARY TABLE IF NOT EXISTS {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA"
    ).format(identifier(name), columns, target),)
    after = (
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO UPDATE SET {}").format(
            target, columns, columns, stage, identifier(table_fit.upsert_on), updates),
        sql.SQL("TRUNCATE {}").format(stage),
    )
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(stage, columns)
    return Target(table_fit.table, statement, encoded, before, after)


def write_order(catalog: Catalog, tables: Sequence[str]) -> list[str]:
    """Return the app's tables (names in ``public``) parents first by their live foreign keys.

    The app's keys stay in place while a tiled run writes (see seeding.runner.write_tiled),
    so a table is written after every table it points at; ties keep the tool's order.
    """
    order = {table.name: i for i, table in enumerate(APP_TABLES)}
    pending = sorted(tables, key=lambda name: order.get(name, len(order)))
    parents = {
        name: {
            key.target_table for key in live.foreign_keys
            if key.target_schema == ledger.APP_SCHEMA and key.target_table in tables
            and key.target_table != name
        } if (live := catalog.table(name)) is not None else set()
        for name in pending
    }
    written: list[str] = []
    while pending:
        ready = next((n for n in pending if parents[n] <= set(written)), pending[0])  # a cycle
        written.append(ready)
        pending.remove(ready)
    return written


def variant_of(copy: int, copies: int, variants: int) -> int:
    """Return the variant copy ``copy`` of ``copies`` is made from.

    The first block of copies comes from variant 0, the next from variant 1, and so on, so
    later variants can be built while the first ones are written.
    """
    return copy * variants // copies


def stream(
    connection: sa.Connection,
    variant: Variant,
    copies: Iterable[int],
    *,
    seed: int,
    progress: Progress | None = None,
) -> dict[str, int]:
    """COPY copies of one variant into every table, then their rows into the ledger.

    Each copy is the variant XORed with :func:`copy_mask`; psycopg's writer thread sends
    one copy while the next is patched. Tables are written in the variant's order, parents
    first, each with the statements it runs before and after its COPY. Returns rows per
    table (as the ledger names it); ``progress`` hears of the app's rows.

    Raises:
        psycopg.Error: When the database refuses a row (the caller rolls back).

    """
    chosen = list(copies)
    masks = [copy_mask(seed, i) for i in chosen]
    driver = connection.connection.driver_connection
    assert driver is not None
    counts: dict[str, int] = {}
    blocks = Target(
        ledger.BLOCKS,
        ledger.copy_statement(ledger.SCHEMA, ledger.blocks.name, ledger.BLOCK_COLUMNS),
        variant.ledger,
    )
    with driver.cursor() as cursor:
        for target in (*variant.targets, blocks):
            for statement in target.before:
                cursor.execute(statement)
            if target.unchecked:
                constraints.set_unchecked(connection, True)
            with cursor.copy(target.statement, writer=_BoundedWriter(cursor)) as copy:
                copy.write(SIGNATURE)
                for mask in masks:
                    copy.write(target.encoded.copy(mask))
                    if progress is not None and target.app and target is not blocks:
                        progress(target.encoded.rows)
                copy.write(TRAILER)
            if target.unchecked:
                constraints.set_unchecked(connection, False)
            for statement in target.after:
                cursor.execute(statement)
            if target is not blocks:
                counts[target.name] = target.encoded.rows * len(masks)
    return counts


def record_app_made(
    connection: sa.Connection,
    catalog: Catalog,
    run_id: uuid.UUID,
    written: Mapping[str, int],
) -> dict[str, int]:
    """Record in the ledger the rows the app's triggers made beside a tiled run's; count them.

    As :func:`seeding.runner._app_made` does for a built run, a row of an app table (a uuid
    ``id``, a foreign key to a table the run wrote) written in this transaction (its
    ``xmin``) that is not the run's is the app's (a mechanic's profile made for their auth
    user, a completed session's analytics row). Here the ids never leave the server: they
    are found and written into the ledger's blocks by one statement per table. A table is
    searched only where the transaction's own statistics (``pg_stat_xact_user_tables``)
    count more rows inserted into it than the run wrote there, unless those statistics are
    off (they then count fewer rows than the run wrote, and every table is searched).

    Args:
        connection: The run's connection, inside its transaction.
        catalog: The live schema.
        run_id: The run (started with :func:`seeding.db.ledger.start_run`).
        written: The rows the run wrote per table, as the ledger names them.

    """
    inserted: dict[str, int] = {
        str(name): int(count) for name, count in connection.execute(sa.text(
            "SELECT relname, n_tup_ins FROM pg_stat_xact_user_tables WHERE schemaname = :schema"
        ), {"schema": ledger.APP_SCHEMA})
    }
    trusted = all(
        inserted.get(name, 0) >= count for name, count in written.items() if "." not in name
    )
    made: dict[str, int] = {}
    for table in catalog.tables.values():
        if table.schema != ledger.APP_SCHEMA or table.kind != "table":
            continue
        primary = table.primary_key
        if primary is None or primary.columns != ("id",) or table.columns["id"].base_type != "uuid":
            continue
        targets = {ledger.table_name(k.target_schema, k.target_table) for k in table.foreign_keys}
        if not targets & set(written):
            continue
        if trusted and inserted.get(table.name, 0) <= written.get(table.name, 0):
            continue
        # Where the run wrote none of the table's rows, every row written is the app's.
        ours = ("  EXCEPT SELECT unnest(row_ids) FROM seeding.ledger_blocks"
                "    WHERE run_id = :run AND table_name = :name") if table.name in written else ""
        count = connection.execute(sa.text(
            f"WITH made AS (SELECT id FROM {quote(table.schema, table.name)} "
            f"    WHERE xmin = pg_current_xact_id()::xid {ours}), "
            "numbered AS (SELECT id, (row_number() OVER (ORDER BY id) - 1) / :block AS block"
            "  FROM made), "
            "blocks AS (INSERT INTO seeding.ledger_blocks (run_id, table_name, row_ids)"
            "  SELECT :run, :name, array_agg(id ORDER BY id) FROM numbered GROUP BY block"
            "  RETURNING cardinality(row_ids) AS ids) "
            "SELECT coalesce(sum(ids), 0) FROM blocks"
        ), {"run": run_id, "name": table.name, "block": ledger.BLOCK_IDS}).scalar_one()
        if count:
            made[table.name] = int(count)
    return made


__all__ = [
    "VARIANTS",
    "WHOLE",
    "AppDatabase",
    "Encoded",
    "Encoder",
    "Shard",
    "Target",
    "Variant",
    "copy_count",
    "copy_mask",
    "encode_variant",
    "record_app_made",
    "row_views",
    "stream",
    "tile_rows",
    "variant_of",
    "variant_seed",
    "write_order",
]
