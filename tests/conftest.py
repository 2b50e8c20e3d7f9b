"""Resource fixtures: a real PostgreSQL (embedded by default, or SEED_TEST_DATABASE_URL)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import sqlalchemy as sa

from seeding.db import database, embedded
from seeding.pytest_plugin import SeedServer


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A libpq URL of a PostgreSQL server the tests may create databases on."""
    configured = os.environ.get("SEED_TEST_DATABASE_URL")
    if configured:
        yield database.libpq_url(configured)
        return
    given = os.environ.get("SEED_TEST_DATA_DIR")
    data_dir = Path(given) if given else embedded.scratch_data_dir("seed-test-postgres-")
    server = embedded.start(data_dir)
    yield server.url("postgres")
    if embedded.stop(data_dir) and not given:
        shutil.rmtree(data_dir.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def test_server(pg_server_url: str) -> Iterator[SeedServer]:
    """Makes and drops the tests' databases; a killed session's are dropped by the next one."""
    server = SeedServer(pg_server_url, source="SEED_TEST_DATABASE_URL")
    yield server
    server.close()


@pytest.fixture
def make_database(test_server: SeedServer) -> Iterator[Callable[[], str]]:
    """A function that creates a fresh, empty database and returns its URL; all dropped after."""
    made: list[str] = []

    def make() -> str:
        made.append(test_server.create_database("seeding_test_"))
        return test_server.database_url(made[-1])

    yield make
    for name in made:
        test_server.drop_database(name)


@pytest.fixture
def new_database(make_database: Callable[[], str]) -> str:
    """A URL of a fresh, empty database, dropped after the test."""
    return make_database()


@pytest.fixture
def pg_url(make_database: Callable[[], str]) -> str:
    """A URL of a fresh database holding the app's tables."""
    url = make_database()
    engine = database.engine_for(url)
    database.create_schema(engine)
    engine.dispose()
    return url


@pytest.fixture
def engine(pg_url: str) -> Iterator[sa.Engine]:
    """An engine on a fresh database holding the app's tables."""
    engine = database.engine_for(pg_url)
    yield engine
    engine.dispose()


#: A small tiled scenario: a workshop's corner, 10 copies at --scale 1.
TILE = """
description: A small tiled scenario for tests.
tiles: 10
seed: 7
clock:
  now: 2026-11-20T12:00:00-05:00
  window: {from: 2026-11-01T00:00:00-05:00, to: 2026-11-20T11:00:00-05:00}
steps:
  - create: workshop
    ref: shop
  - create: mechanic
    count: 2
    traits: [workshop]
    with: {organization: shop}
  - create: mechanic
    traits: [independent]
  - create: mechanic
    traits: [virtual]
  - create: customer
    count: 5
  - create: vehicle
    count: 6
    with: {customer: {any: customer}}
  - create: session_request
    count: 20
    traits: [completed]
    with: {customer: {any: customer}, mechanic: {any: mechanic}}
    mix:
      routing_type: {broadcast: 50%, workshop_only: 25%, priority_broadcast: 25%}
      trait: {none: 80%, follow_up: 10%, brand_specialist: 10%}
  - create: session_request
    count: 10
    traits: [cancelled_after_assignment]
    with: {customer: {any: customer}, mechanic: {any: mechanic}}
  - create: session_request
    count: 10
    traits: [pending]
    with: {customer: {any: customer}}
"""


@pytest.fixture(scope="session")
def tile_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The path of a file holding :data:`TILE`."""
    path = tmp_path_factory.mktemp("tiles") / "tiny.yaml"
    path.write_text(TILE)
    return str(path)


@pytest.fixture
def app_db(make_database: Callable[[], str]) -> str:
    """A URL of a fresh database shaped like the app's real Supabase one (migrations' shape)."""
    from app_shape import create_app_shape

    url = make_database()
    create_app_shape(url)
    return url


@pytest.fixture
def app_ready(app_db: str) -> str:
    """The migrations' shape, with the request statuses the tool writes admitted."""
    from app_shape import admit_tool_request_statuses

    admit_tool_request_statuses(app_db)
    return app_db


@pytest.fixture
def app_db_live(make_database: Callable[[], str]) -> str:
    """A URL of a fresh database shaped like the app's live staging Supabase database."""
    from app_shape import create_app_shape

    url = make_database()
    create_app_shape(url, live=True)
    return url


#: The fixtures every database fixture reaches: this suite's server, and the plugin's.
SERVER_FIXTURES = frozenset({"pg_server_url", "seed_database_url"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``database`` every test whose fixtures reach a PostgreSQL server.

    The fixtures counted are the test's own (their closure), and a fixture a parameter names
    (a test or fixture that calls ``request.getfixturevalue(param)``). A test that starts a
    server some other way (a subprocess, an inner pytest session) says so itself with
    ``@pytest.mark.database``. ``pytest -m "not database"`` runs the rest.
    """
    for item in items:
        named = set(getattr(item, "fixturenames", ()))
        if isinstance(item, pytest.Function) and hasattr(item, "callspec"):
            named |= {v for v in item.callspec.params.values() if isinstance(v, str)}
        if _reaches_server(item, named, set()):
            item.add_marker(pytest.mark.database)


def _reaches_server(item: pytest.Item, names: Iterable[str], seen: set[str]) -> bool:
    """Return whether any of the fixtures named, or a fixture they need, is a server's."""
    for name in names:
        if name in SERVER_FIXTURES:
            return True
        if name in seen:
            continue
        seen.add(name)
        for definition in item.session._fixturemanager.getfixturedefs(name, item) or ():
            if _reaches_server(item, definition.argnames, seen):
                return True
    return False


@pytest.fixture(autouse=True)
def _fast_tests_start_no_server(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail a test not marked ``database`` that would start the embedded server in-process."""
    if request.node.get_closest_marker("database") is not None:
        return
    test = request.node.nodeid

    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise AssertionError(
            f"{test} starts the embedded PostgreSQL: give it a database fixture (pg_url, "
            "new_database, ...) or mark it @pytest.mark.database"
        )

    monkeypatch.setattr(embedded, "start", refuse)
