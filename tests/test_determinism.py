"""One seed fixes every value, ids included; another seed gives other rows."""

from __future__ import annotations

import sqlalchemy as sa

import factories
from factories import MechanicFactory, SessionRequestFactory
from seeding.db import writer


def build(seed: int) -> list[tuple[str, tuple[object, ...]]]:
    factories.reseed(seed)
    with factories.collect() as rows:
        for trait in ("completed", "pending", "cancelled_after_assignment", "expired"):
            SessionRequestFactory.build_batch(25, **{trait: True})
        MechanicFactory.build_batch(10, incomplete=True)
    return [(row.__table__.name, writer.row_values(row)) for row in rows]  # type: ignore[attr-defined, arg-type]


def dump(engine: sa.Engine) -> list[tuple[object, ...]]:
    with engine.connect() as c:
        out: list[tuple[object, ...]] = []
        for table in (
            "organizations", "profiles", "mechanics", "vehicles", "sessions", "session_requests"
        ):
            out += [tuple(r) for r in c.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))]
        return out


def test_same_seed_same_rows_ids_included() -> None:
    first, second = build(42), build(42)
    assert first == second
    assert len(first) > 300


def test_another_seed_other_rows() -> None:
    first, other = build(42), build(43)
    ids = {values[0] for _, values in first}
    assert not ids & {values[0] for _, values in other}


def test_same_seed_same_database_contents(pg_url: str, new_database: str) -> None:
    # Two databases, one seed: identical contents.
    from seeding.db import database

    dumps = []
    for url in (pg_url, new_database):
        engine = database.engine_for(url)
        database.create_schema(engine)
        factories.reseed(42)
        with factories.collect() as rows:
            SessionRequestFactory.build_batch(30, completed=True)
        with engine.begin() as c:
            writer.write(c, rows)
        dumps.append(dump(engine))
        engine.dispose()
    assert dumps[0] == dumps[1]
    assert len(dumps[0]) >= 150
