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
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from queue import Queue
from typing import Any, TypeGuard, cast

import numpy as np
import sqlalchemy as sa
from psycopg.adapt import PyFormat, Transformer
from psycopg.copy import QueuedLibpqWriter
from psycopg.pq import Format
from psycopg.types.json import Jsonb

from seeding import ledger
from seeding.build import Built
from seeding.catalog import Catalog, read_catalog
from seeding.errors import ScenarioError, SchemaError
from seeding.schema import APP_TABLES
from seeding.writer import COLUMNS, row_values

#: How many distinct variants of a tile the factories build; each makes a block of the copies.
VARIANTS = 4
#: The most copies one run writes: each has its own two-byte id prefix (see copy_mask).
MAX_COPIES = 2**16

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
#: Blocks (up to 128 kB each) waiting to be sent: a few copies' worth.
QUEUED_BLOCKS = 32
#: The types of the ledger's block columns (see seeding.ledger.BLOCK_COLUMNS).
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
    hex_source: np.ndarray  # int64: the uuid byte that digit shows
    hex_high: np.ndarray  # bool: whether it shows that byte's high nibble

    def copy(self, mask: bytes) -> bytes:
        """Return the rows of one copy: uuids XORed with ``mask``, their hex rewritten."""
        out = self.data.copy()
        if self.uuid_count:
            out[self.uuid_bytes] ^= np.tile(np.frombuffer(mask, dtype=np.uint8), self.uuid_count)
        if len(self.hex_at):
            source = out[self.hex_source]
            nibble = np.where(self.hex_high, source >> 4, source & 0x0F)
            out[self.hex_at] = _HEX_DIGITS[nibble]
        return out.tobytes()


class Encoder:
    """Encodes rows for binary COPY into the live table's column types."""

    def __init__(self, connection: sa.Connection) -> None:
        """Encode for the database of ``connection`` (its type adapters)."""
        self.connection = connection
        driver = connection.connection.driver_connection
        assert driver is not None
        self.transformer = Transformer(driver)
        self._catalog: Catalog | None = None
        self._oids: dict[tuple[str, tuple[str, ...]], list[int]] = {}

    def column_oids(self, table: str, columns: Sequence[str]) -> list[int]:
        """Return the live column types (an enum or domain as its text or base type).

        Raises:
            SchemaError: When the table or one of the columns is missing.

        """
        key = (table, tuple(columns))
        if key not in self._oids:
            self._oids[key] = self._read_oids(table, columns)
        return self._oids[key]

    def _read_oids(self, table: str, columns: Sequence[str]) -> list[int]:
        if self._catalog is None:  # read once, on the first table asked for
            self._catalog = read_catalog(self.connection, (ledger.APP_SCHEMA,))
        live = self._catalog.table(table, ledger.APP_SCHEMA)
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
    ) -> Encoded:
        """Encode rows (the table's columns in order), noting their uuids and embedded hex ids.

        A uuid is noted alone or as an element of a list (an array column). The uuids of the
        columns at the positions in ``keep`` are left as they are in copies.
        """
        self.transformer.set_dumper_types(list(oids), Format.BINARY)
        formats = [PyFormat.BINARY] * len(oids)
        data = bytearray()
        uuid_starts: list[int] = []
        hex_at: list[int] = []
        hex_source: list[int] = []
        hex_high: list[bool] = []
        for values in rows:
            values = tuple(
                Jsonb(v) if isinstance(v, (dict, list)) and oid in (114, 3802) else v
                for v, oid in zip(values, oids, strict=True)
            )
            dumped = self.transformer.dump_sequence(values, formats)
            data += struct.pack("!h", len(dumped))
            starts: dict[uuid.UUID, int] = {}
            texts: list[tuple[int, bytes]] = []
            for position, (value, field) in enumerate(zip(values, dumped, strict=True)):
                if field is None:
                    data += b"\xff\xff\xff\xff"
                    continue
                field = bytes(field)
                data += struct.pack("!i", len(field))
                if isinstance(value, uuid.UUID) and position not in keep:
                    uuid_starts.append(len(data))
                    starts.setdefault(value, len(data))
                elif _is_uuid_list(value) and position not in keep:
                    uuid_starts += _element_starts(field, value, len(data))
                elif isinstance(value, str):
                    texts.append((len(data), field))
                data += field
            for offset, field in texts:
                for value, start in starts.items():
                    for at, length in _hex_runs(field, value.hex):
                        for k in range(length):
                            hex_at.append(offset + at + k)
                            hex_source.append(start + k // 2)
                            hex_high.append(k % 2 == 0)
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
            hex_source=np.asarray(hex_source, dtype=np.int64),
            hex_high=np.asarray(hex_high, dtype=bool),
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


def _hex_runs(field: bytes, hex_id: str) -> Iterable[tuple[int, int]]:
    """Yield (offset, length) of each run of at least 6 leading hex digits of an id in a text."""
    needle = hex_id[:6].encode()
    at = field.find(needle)
    while at >= 0:
        length = 6
        while (
            length < 32 and at + length < len(field) and field[at + length] == ord(hex_id[length])
        ):
            length += 1
        yield at, length
        at = field.find(needle, at + length)


@dataclass(frozen=True)
class Variant:
    """One variant of a tile: its rows per table, encoded, and the ledger's rows for them."""

    tables: dict[str, Encoded]
    ledger: Encoded

    @property
    def rows(self) -> int:
        """Return how many app rows one copy of this variant writes."""
        return sum(encoded.rows for encoded in self.tables.values())


def tile_rows(built: Built) -> dict[str, list[tuple[object, ...]]]:
    """Return a built tile's rows as value tuples per table (parents first)."""
    grouped: dict[str, list[tuple[object, ...]]] = {table.name: [] for table in APP_TABLES}
    for row in built.rows:
        grouped[row.__table__.name].append(row_values(row))  # type: ignore[attr-defined]
    return {name: rows for name, rows in grouped.items() if rows}


def encode_variant(
    encoder: Encoder, rows: dict[str, list[tuple[object, ...]]], run_id: uuid.UUID
) -> Variant:
    """Encode a tile's rows (see :func:`tile_rows`) and its ledger rows for run ``run_id``.

    Raises:
        SchemaError: When the live tables lack a column the tool writes.

    """
    tables: dict[str, Encoded] = {}
    ledger_rows: list[tuple[object, ...]] = []
    for table in APP_TABLES:
        table_rows = rows.get(table.name)
        if not table_rows:
            continue
        columns = [name for name, _, _ in COLUMNS[table.name]]
        tables[table.name] = encoder.encode(
            table.name, table_rows, encoder.column_oids(table.name, columns)
        )
        ids = [cast(uuid.UUID, row[0]) for row in table_rows]  # every app table's id
        ledger_rows += ledger.block_rows(run_id, table.name, ids)
    # A block of ids per table and copy; the run's id is the same in every copy.
    blocks = encoder.encode(
        ledger.BLOCKS, ledger_rows, [UUID_OID, TEXT_OID, UUID_ARRAY_OID], keep=frozenset({0})
    )
    return Variant(tables=tables, ledger=blocks)


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
    """COPY copies of one variant into every app table, then their rows into the ledger.

    Each copy is the variant XORed with :func:`copy_mask`; psycopg's writer thread sends
    one copy while the next is patched. Returns rows per table. The caller drops the
    foreign keys first (:func:`drop_foreign_keys`), so tables may be written in any order.

    Raises:
        psycopg.Error: When the database refuses a row (the caller rolls back).

    """
    chosen = list(copies)
    masks = [copy_mask(seed, i) for i in chosen]
    driver = connection.connection.driver_connection
    assert driver is not None
    counts: dict[str, int] = {}
    targets = [
        (name, ledger.copy_statement(ledger.APP_SCHEMA, name, [n for n, _, _ in COLUMNS[name]]),
         encoded)
        for name, encoded in variant.tables.items()
    ]
    targets.append((
        ledger.BLOCKS,
        ledger.copy_statement(ledger.SCHEMA, ledger.blocks.name, ledger.BLOCK_COLUMNS),
        variant.ledger,
    ))
    with driver.cursor() as cursor:
        for name, statement, encoded in targets:
            with cursor.copy(statement, writer=_BoundedWriter(cursor)) as copy:
                copy.write(SIGNATURE)
                for mask in masks:
                    copy.write(encoded.copy(mask))
                    if progress is not None and name != ledger.BLOCKS:
                        progress(encoded.rows)
                copy.write(TRAILER)
            if name != ledger.BLOCKS:
                counts[name] = encoded.rows * len(masks)
    return counts


__all__ = [
    "VARIANTS",
    "WHOLE",
    "Encoded",
    "Encoder",
    "Shard",
    "Variant",
    "copy_count",
    "copy_mask",
    "encode_variant",
    "stream",
    "tile_rows",
    "variant_of",
    "variant_seed",
]
