"""The pytest plugin: real PostgreSQL databases, empty or seeded with a scenario, as fixtures.

Installing the package activates it (entry point ``pytest11``); a repo needs no conftest.
This module holds the pytest side only (the flag, the ini key, the fixtures); the databases
are made, copied and dropped by :class:`seeding.testing.server.SeedServer`, which needs no pytest.

Fixtures:

- ``seed_database_url`` (session): the URL of the server the plugin makes its databases on.
  It comes from ``--seed-database-url``, else the ini key ``seed_database_url``, else the
  variable ``SEED_TEST_DATABASE_URL``; with none, an embedded server is started for the test
  session (only when a test first asks for a ``seed_*`` fixture) and stopped at its end.
- ``seed_session`` (function): a SQLAlchemy session on a database holding the app's tables,
  inside a transaction rolled back after the test (``session.commit()`` included); every
  factory's ``create()`` persists through it while the test runs.
- ``seed_scenario`` (function): ``seed_scenario("diverse")`` returns a
  :class:`ScenarioDatabase`, a database of the test's own holding that scenario. Each
  scenario is built into a template database, kept on the server for the next sessions
  while nothing that decides its rows changes; each call copies it
  (``CREATE DATABASE ... TEMPLATE``), so what a test writes, even committed, no other sees.
  The templates start from the tool's own tables, or from the app's schema that
  ``--seed-schema`` / the ini key ``seed_schema`` names (SQL files, or folders of them);
  on the app's Supabase schema ``db.as_user(...)`` runs statements as a seeded user, through
  RLS (:mod:`seeding.testing.personas`).
- ``seed_server`` (session): the :class:`SeedServer` behind the two above, for fixtures of
  your own (for example one copy of a scenario shared read-only by a whole session).

Every database the plugin makes is named ``seed_test_<hex>`` (a test's copy, the
``seed_session`` database) or ``seed_tpl_<scenario>_<hex>`` (a template). A test's copy is
dropped after the test, the ``seed_session`` database when the session ends; a template is
kept (ini ``seed_keep_templates = false``: dropped at the end too). A session that is killed
cannot drop its databases: each carries a comment naming its session
(:data:`seeding.testing.server.OWNER_COMMENT`), and the next session on the server drops those
whose session is gone (:meth:`SeedServer.sweep`). The next session also stops an embedded
server left running by a killed one (:func:`seeding.db.embedded.sweep_scratch`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

import pytest

from seeding.errors import SeedingError
from seeding.testing.server import (
    INI_KEY,
    KEEP_INI_KEY,
    OPTION,
    OWNER_COMMENT,
    OWNER_PREFIX,
    SCHEMA_INI_KEY,
    SCHEMA_OPTION,
    TEMPLATE_PREFIX,
    TEST_DATABASE_PREFIX,
    URL_VARIABLE,
    ScenarioDatabase,
    SeedServer,
    Template,
    check_server,
    database_url,
    factory_random_state,
    restore_factory_random_state,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: The seed the factories start from in every test that uses ``seed_session``.
FACTORY_SEED: Final = 0

_SOURCE: Final = pytest.StashKey[str]()
_SERVER: Final = pytest.StashKey[SeedServer]()
_T = TypeVar("_T")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the flag and the ini key that name the server."""
    what = "PostgreSQL server URL on which the seed_* fixtures make (and drop) their databases"
    group = parser.getgroup("seeding", "seeded PostgreSQL databases (seeding)")
    group.addoption(
        OPTION,
        action="store",
        dest="seed_database_url",
        metavar="URL",
        help=f"{what}; default: the ini key {INI_KEY}, else ${URL_VARIABLE}, else an embedded one",
    )
    parser.addini(
        INI_KEY,
        help=f"{what} ({OPTION} wins); default: ${URL_VARIABLE}, else an embedded one",
        default="",
    )
    schema = (
        "the schema seed_scenario's templates start from: a .sql file (a schema dump) or a "
        "folder of .sql files run in name order (migrations), before the scenario is seeded"
    )
    group.addoption(
        SCHEMA_OPTION,
        action="append",
        dest="seed_schema",
        metavar="PATH",
        help=f"{schema}; repeat for more; default: the ini key {SCHEMA_INI_KEY}, else the "
        "tool's own tables",
    )
    parser.addini(
        SCHEMA_INI_KEY,
        type="paths",
        help=f"{schema}; paths relative to the ini file ({SCHEMA_OPTION} wins)",
        default=[],
    )
    parser.addini(
        KEEP_INI_KEY,
        type="bool",
        help="keep seed_scenario's templates on the server for the next sessions, rebuilt "
        "when the scenario, the schema, the seed or the package change (default: true)",
        default=True,
    )


@dataclass(frozen=True)
class ServerSetting:
    """Where the server comes from: a URL and the setting that gave it, or the embedded one."""

    #: The URL as configured, or None for the embedded server.
    url: str | None
    #: '--seed-database-url', 'ini seed_database_url', 'SEED_TEST_DATABASE_URL' or 'embedded'.
    source: str


def configured_server(config: pytest.Config) -> ServerSetting:
    """Return the server the settings name: the flag, else the ini key, else the variable."""
    flag = config.getoption("seed_database_url")
    if flag:
        return ServerSetting(url=str(flag), source=OPTION)
    ini = config.getini(INI_KEY)
    if isinstance(ini, str) and ini.strip():
        return ServerSetting(url=ini.strip(), source=f"ini {INI_KEY}")
    variable = os.environ.get(URL_VARIABLE, "").strip()
    if variable:
        return ServerSetting(url=variable, source=URL_VARIABLE)
    return ServerSetting(url=None, source="embedded")


@dataclass(frozen=True)
class SchemaSetting:
    """The schema the templates start from: SQL files or folders, and the setting that named it."""

    #: The files and folders, absolute; empty: the tool's own tables.
    paths: tuple[Path, ...]
    #: '--seed-schema', 'ini seed_schema' or 'the tool's own tables'.
    source: str


def configured_schema(config: pytest.Config) -> SchemaSetting:
    """Return the schema the settings name: the flag (repeatable), else the ini key."""
    flag = config.getoption("seed_schema")
    if flag:
        base = config.invocation_params.dir
        return SchemaSetting(paths=tuple(base / str(p) for p in flag), source=SCHEMA_OPTION)
    ini = config.getini(SCHEMA_INI_KEY)
    if isinstance(ini, list) and ini:
        return SchemaSetting(paths=tuple(Path(p) for p in ini), source=f"ini {SCHEMA_INI_KEY}")
    return SchemaSetting(paths=(), source="the tool's own tables")


def describe_template(template: Template) -> str:
    """Return one line on how a session got a scenario's template."""
    if not template.built:
        how = "reused the kept one"
    else:
        took = f"built in {template.seconds:.2f} s"
        how = f"{took}, kept for the next sessions" if template.kept else took
    scenario = f"{template.scenario} (seed {template.seed})"
    return f"seeding: template of {scenario}: {how} ({template.name})"


class SeedScenario:
    """The ``seed_scenario`` fixture: call it with a scenario's name for a database of its own.

    Example:
        ``db = seed_scenario("diverse")``; ``db.session``, ``db.url``, ``db.ref("alex")``.

    """

    def __init__(self, server: SeedServer) -> None:
        self._server = server
        self._copies: list[ScenarioDatabase] = []

    def __call__(
        self, name_or_path: str, *, seed: int | None = None, scale: float = 1.0
    ) -> ScenarioDatabase:
        """Return a new database holding the scenario, dropped after the test.

        Args:
            name_or_path: A shipped scenario's name, or a path to a scenario file.
            seed: The run's seed (default: the scenario's).
            scale: Multiplies the scenario's step counts.

        """
        database = _or_fail(
            lambda: self._server.copy(name_or_path, seed=seed, scale=scale),
            f"seed_scenario({name_or_path!r})",
        )
        self._copies.append(database)
        return database

    def release_all(self) -> None:
        """Drop every database this fixture gave."""
        while self._copies:
            self._server.release(self._copies.pop())


def _or_fail(action: Callable[[], _T], where: str) -> _T:
    """Run ``action``; turn a seeding error into a one-line test failure, without traceback."""
    __tracebackhide__ = True
    try:
        return action()
    except SeedingError as error:
        message = f"{where}: {error}"
    # Outside the except block, so the report is the message alone, with no chained traceback.
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def seed_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Yield the URL (libpq form) of the PostgreSQL server the seed_* fixtures use.

    From ``--seed-database-url``, else the ini key ``seed_database_url``, else
    ``SEED_TEST_DATABASE_URL``; with none, an embedded server in a temporary folder, started
    now and stopped when the test session ends.
    """
    setting = configured_server(request.config)
    request.config.stash[_SOURCE] = setting.source
    if setting.url is not None:
        configured = setting.url
        yield _or_fail(lambda: check_server(configured, source=setting.source), "seed_database_url")
        return
    from seeding.db import embedded

    data_dir = embedded.scratch_data_dir()
    server = _or_fail(lambda: embedded.start(data_dir), "seed_database_url (embedded server)")
    try:
        yield server.url("postgres")
    finally:
        if embedded.stop(data_dir):
            shutil.rmtree(data_dir.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def seed_server(request: pytest.FixtureRequest, seed_database_url: str) -> Iterator[SeedServer]:
    """Yield the server of ``seed_database_url``, which makes, copies and drops the databases."""
    config = request.config
    source = config.stash.get(_SOURCE, "the seed_database_url fixture")
    schema = configured_schema(config)
    # An embedded server goes with its session: nothing to keep a template for.
    keep = bool(config.getini(KEEP_INI_KEY)) and source != "embedded"
    server = SeedServer(
        seed_database_url, source=source, keep_templates=keep, schema=schema.paths,
        schema_source=schema.source,
    )
    config.stash[_SERVER] = server
    yield server
    _or_fail(server.close, "seed_server teardown")


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Say, per scenario, whether its template was built or a kept one reused."""
    server = config.stash.get(_SERVER, None)
    if server is None or config.get_verbosity() < 0:
        return
    for template in server.templates:
        terminalreporter.write_line(describe_template(template))


@pytest.fixture
def seed_session(seed_server: SeedServer) -> Iterator[Session]:
    """Yield a SQLAlchemy session on a database of the app's tables; its writes are undone.

    The session runs inside a transaction rolled back after the test: its ``commit()`` only
    releases a savepoint. While the test runs, every factory's ``create()`` persists through
    it, and the factories start from the seed :data:`FACTORY_SEED`, so a test makes the same
    rows alone or in a suite; the generators' state from before is restored after it.
    """
    from sqlalchemy.orm import Session

    import factories

    engine = _or_fail(seed_server.schema_engine, "seed_session")
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    random_state = factory_random_state()
    factories.reseed(FACTORY_SEED)
    try:
        with factories.bind(session):
            yield session
    finally:
        restore_factory_random_state(random_state)
        session.close()
        transaction.rollback()
        connection.close()


@pytest.fixture
def seed_scenario(seed_server: SeedServer) -> Iterator[SeedScenario]:
    """Call it with a scenario's name for a database of the test's own holding that scenario.

    ``seed_scenario("diverse")`` returns a :class:`ScenarioDatabase` (``.session``, ``.url``,
    ``.engine``, ``.ref(name)``; on the app's Supabase schema ``.as_user(who)``,
    ``.as_anon()``, ``.customers()``, ``.mechanics()``). The scenario is built into a template,
    kept for the next sessions while its key holds; every call copies it, so what a test
    writes, even committed, no other test sees. Call it more than once for more databases (of
    the same scenario or others).
    """
    seeder = SeedScenario(seed_server)
    yield seeder
    _or_fail(seeder.release_all, "seed_scenario teardown")


__all__ = [
    "FACTORY_SEED",
    "INI_KEY",
    "KEEP_INI_KEY",
    "OPTION",
    "OWNER_COMMENT",
    "OWNER_PREFIX",
    "SCHEMA_INI_KEY",
    "SCHEMA_OPTION",
    "TEMPLATE_PREFIX",
    "TEST_DATABASE_PREFIX",
    "URL_VARIABLE",
    "SchemaSetting",
    "ScenarioDatabase",
    "SeedScenario",
    "SeedServer",
    "ServerSetting",
    "Template",
    "check_server",
    "configured_schema",
    "configured_server",
    "database_url",
    "describe_template",
    "seed_database_url",
    "seed_scenario",
    "seed_server",
    "seed_session",
]
