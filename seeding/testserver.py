"""The databases the tests get, on a PostgreSQL server: made, seeded once, copied, dropped.

Free of pytest (the plugin's fixtures and the bench use it alike). A :class:`SeedServer`
builds each scenario once into a template database (``seed_tpl_<scenario>_<hex>``) and copies
it for every caller (``CREATE DATABASE ... TEMPLATE``) as a :class:`ScenarioDatabase`
(``seed_test_<hex>``); it drops every database it made when closed. A session that is killed
cannot drop them: each carries a comment naming its owner (:data:`OWNER_COMMENT`), and the
next :class:`SeedServer` on the server drops those whose owner is gone (:meth:`SeedServer.sweep`).
"""

from __future__ import annotations

import re
import time
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from seeding.database import libpq_url, mask_password, normalize_url
from seeding.errors import ConfigurationError, DatabaseError, ScenarioError

if TYPE_CHECKING:
    import psycopg
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from seeding.runner import RunResult

# Where the pytest plugin reads the server's URL; named here because the errors below name them.
#: The command-line flag that names the server.
OPTION: Final = "--seed-database-url"
#: The ini key that names the server (the flag wins over it).
INI_KEY: Final = "seed_database_url"
#: The environment variable that names the server (the flag and the ini key win over it).
URL_VARIABLE: Final = "SEED_TEST_DATABASE_URL"

#: The name prefix of a test's database (a scenario's copy, the ``seed_session`` database).
TEST_DATABASE_PREFIX: Final = "seed_test_"
#: The name prefix of a scenario's template database.
TEMPLATE_PREFIX: Final = "seed_tpl_"
#: The comment on every database a :class:`SeedServer` makes, naming it by its
#: ``application_name``; while a connection of that name is open, its databases are in use.
OWNER_COMMENT: Final = "made by a seeding test session; owner: "
#: The start of a :class:`SeedServer`'s ``application_name`` (then a random hex).
OWNER_PREFIX: Final = "seeding-tests-"


def _fix_hint(source: str) -> str:
    return (
        f"the URL came from {source}; to fix this, either start that server, or correct the "
        f"URL, or remove it: the plugin reads {OPTION}, else the ini key {INI_KEY}, else "
        f"${URL_VARIABLE}, and with none of them starts an embedded PostgreSQL"
    )


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def check_server(url: str, *, source: str) -> str:
    """Return the server's URL in libpq form (``postgresql://``) once it answers.

    Raises:
        ConfigurationError: When the URL is not a PostgreSQL URL.
        DatabaseError: When the server cannot be reached or refuses the connection.

    """
    import psycopg

    try:
        server_url = libpq_url(url)
    except ConfigurationError as error:
        raise ConfigurationError(f"{error} (from {source})") from None
    try:
        psycopg.connect(server_url, connect_timeout=10).close()
    except psycopg.Error as error:
        raise DatabaseError(
            f"cannot connect to {mask_password(server_url)}: {_first_line(error)}; "
            f"{_fix_hint(source)}"
        ) from None
    return server_url


def database_url(server_url: str, name: str) -> str:
    """Return a libpq URL of the database ``name`` on the server of ``server_url``.

    Everything but the database is kept as written (host, socket folder, port, options).
    """
    parts = urlsplit(libpq_url(server_url))
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(key == "dbname" for key, _ in pairs):
        query = urlencode([(k, v) for k, v in pairs if k != "dbname"], quote_via=quote)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", query, parts.fragment))


def factory_random_state() -> object:
    """Return the state of the generators the factories draw from (factory_boy's and Faker's)."""
    import factory.random

    return factory.random.get_random_state()  # type: ignore[no-untyped-call]


def restore_factory_random_state(state: object) -> None:
    """Set the factories' generators back to a state :func:`factory_random_state` returned."""
    import factory.random

    factory.random.set_random_state(state)  # type: ignore[no-untyped-call]


def _slug(name_or_path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", Path(name_or_path).stem.lower()).strip("_")[:24] or "scenario"


@dataclass
class _Connections:
    engine: sa.Engine | None = None
    session: Session | None = None


@dataclass(frozen=True)
class ScenarioDatabase:
    """A database of one test's own, holding a scenario; dropped after the test.

    Attributes:
        scenario: The scenario's name.
        seed: The seed it was built with.
        name: The database's name (``seed_test_<hex>``).
        url: A libpq URL (``postgresql://``) of the database, for psycopg, psql or any
            libpq client; SQLAlchemy users take :attr:`engine`, or
            ``seeding.normalize_url(url)`` for a ``postgresql+psycopg://`` URL.
        refs: The scenario's named rows: a uuid each, or a list of uuids for a group.

    """

    scenario: str
    seed: int
    name: str
    url: str
    refs: Mapping[str, uuid.UUID | list[uuid.UUID]] = field(repr=False)
    _connections: _Connections = field(default_factory=_Connections, repr=False, compare=False)

    @property
    def engine(self) -> sa.Engine:
        """An SQLAlchemy engine on the database (psycopg 3), disposed after the test."""
        if self._connections.engine is None:
            import sqlalchemy as sa

            self._connections.engine = sa.create_engine(normalize_url(self.url))
        return self._connections.engine

    @property
    def session(self) -> Session:
        """An SQLAlchemy session on the database, opened on first use, closed after the test.

        Its commits are real: they stay in this database, which no other test sees.
        ``with factories.bind(db.session):`` makes the factories' ``create()`` write here.
        """
        if self._connections.session is None:
            from sqlalchemy.orm import Session

            self._connections.session = Session(self.engine)
        return self._connections.session

    def ref(self, name: str) -> uuid.UUID | list[uuid.UUID]:
        """Return the id of the scenario's row named ``name`` (a list for a group of rows).

        Raises:
            ScenarioError: When the scenario names no row so; the message lists the names.

        """
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        try:
            return self.refs[name]
        except KeyError:
            known = ", ".join(sorted(self.refs)) or "(none)"
            raise ScenarioError(
                f"scenario {self.scenario!r} has no ref {name!r}; its refs: {known}"
            ) from None

    def close(self) -> None:
        """Close the session and the engine (the database stays until it is dropped)."""
        if self._connections.session is not None:
            self._connections.session.close()
            self._connections.session = None
        if self._connections.engine is not None:
            self._connections.engine.dispose()
            self._connections.engine = None


@dataclass(frozen=True)
class _Template:
    """A scenario's template database and what building it wrote."""

    name: str
    result: RunResult


class SeedServer:
    """A PostgreSQL server and every database the plugin made on it.

    It builds each scenario once into a template database, copies the template for every
    test that asks, and drops all it made when closed. Usable without pytest (the bench does).

    Args:
        url: A URL of any database on the server that the user may connect to; the user
            needs the right to create databases.
        source: Where the URL came from, named in error messages.

    """

    def __init__(self, url: str, *, source: str = "the caller") -> None:
        self.url = libpq_url(url)
        self.source = source
        #: The ``application_name`` of this object's connection, named on its databases.
        self.owner = f"{OWNER_PREFIX}{uuid.uuid4().hex[:12]}"
        self._admin: psycopg.Connection[Any] | None = None
        self._swept = False
        self._made: list[str] = []
        self._templates: dict[tuple[str, int | None, float], _Template] = {}
        self._schema_engine: sa.Engine | None = None

    @property
    def database_names(self) -> tuple[str, ...]:
        """The databases this server object made and has not dropped yet, oldest first."""
        return tuple(self._made)

    def _admin_connection(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._admin is None or self._admin.closed or self._admin.broken:
            try:
                self._admin = psycopg.connect(
                    self.url, autocommit=True, connect_timeout=10, application_name=self.owner
                )
            except psycopg.Error as error:
                raise DatabaseError(
                    f"cannot connect to {mask_password(self.url)}: {_first_line(error)}; "
                    f"{_fix_hint(self.source)}"
                ) from None
            if not self._swept:
                self._swept = True
                self.sweep()
        return self._admin

    def sweep(self) -> list[str]:
        """Drop the databases that test sessions now gone left behind; return their names.

        Those are the databases whose comment (:data:`OWNER_COMMENT`) names an owner with no
        connection open on the server: its session was killed before it could drop them. A
        database someone is connected to stays, and so does one that cannot be dropped (made
        by another user, say). Runs once, when this object first connects.
        """
        import psycopg
        from psycopg import sql

        admin = self._admin_connection()
        try:
            found = admin.execute(
                """
                SELECT d.datname FROM pg_database d
                CROSS JOIN LATERAL (SELECT shobj_description(d.oid, 'pg_database') AS comment) c
                WHERE starts_with(c.comment, %(marker)s)
                  AND NOT EXISTS (
                      SELECT FROM pg_stat_activity a
                      WHERE a.application_name = substr(c.comment, length(%(marker)s) + 1)
                         OR a.datname = d.datname)
                ORDER BY d.datname
                """,
                {"marker": OWNER_COMMENT},
            ).fetchall()
        except psycopg.Error as error:
            warnings.warn(
                f"seeding: could not look for databases left by killed test sessions on "
                f"{mask_password(self.url)}: {_first_line(error)}",
                stacklevel=2,
            )
            return []
        dropped = []
        for (name,) in found:
            try:  # not WITH (FORCE): one that someone has just connected to is in use
                admin.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
            except psycopg.Error:  # in use, not ours to drop, already gone: it stays
                continue
            dropped.append(name)
        return dropped

    def _execute(self, statement: Any) -> None:
        import psycopg

        try:
            self._admin_connection().execute(statement)
        except psycopg.Error as error:
            raise DatabaseError(f"on {mask_password(self.url)}: {_first_line(error)}") from None

    def create_database(
        self, prefix: str = TEST_DATABASE_PREFIX, *, template: str | None = None
    ) -> str:
        """Create a database named ``<prefix><random hex>``, empty or a copy of ``template``.

        Returns:
            The new database's name; it is dropped by :meth:`drop_database` or :meth:`close`.

        """
        from psycopg import sql

        name = f"{prefix}{uuid.uuid4().hex[:12]}"
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
        self._execute(statement)
        self._made.append(name)
        comment = sql.SQL("COMMENT ON DATABASE {} IS {}")
        self._execute(comment.format(sql.Identifier(name), sql.Literal(OWNER_COMMENT + self.owner)))
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database this object made, closing any connection still open on it."""
        from psycopg import sql

        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        self._execute(drop.format(sql.Identifier(name)))
        if name in self._made:
            self._made.remove(name)

    def database_url(self, name: str) -> str:
        """Return a libpq URL of the database ``name`` on this server."""
        return database_url(self.url, name)

    def _template(
        self, name_or_path: str, *, seed: int | None = None, scale: float = 1.0
    ) -> _Template:
        """Return the template database holding a scenario, building it on first use.

        Raises:
            ScenarioError: When the scenario is unknown or malformed.
            DatabaseError: When the server refuses the database or the rows.

        """
        key = (name_or_path, seed, scale)
        if key in self._templates:
            return self._templates[key]
        from seeding.runner import run_scenario

        name = self.create_database(f"{TEMPLATE_PREFIX}{_slug(name_or_path)}_")
        # Building reseeds the factories' generators; a test's own sequence must not change
        # because it happened to be the first to ask for this scenario.
        random_state = factory_random_state()
        try:
            # The server writes only databases it created itself: it opts out of the guard.
            result = run_scenario(
                name_or_path, database_url=self.database_url(name), seed=seed, scale=scale,
                allow_remote=True,
            )
        except BaseException:
            self.drop_database(name)
            raise
        finally:
            restore_factory_random_state(random_state)
        import psycopg
        from psycopg import sql

        # Analysed now, the template gives autovacuum no reason to connect to it (a copy
        # waits for any connection to its template to end), and its copies start analysed.
        try:
            with psycopg.connect(self.database_url(name), autocommit=True) as connection:
                connection.execute("ANALYZE")
        except psycopg.Error as error:
            self.drop_database(name)
            raise DatabaseError(f"on {mask_password(self.url)}: {_first_line(error)}") from None
        self._wait_for_disconnect(name)
        # No connection may be open on a template while it is copied: refuse them all.
        refuse = sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false")
        self._execute(refuse.format(sql.Identifier(name)))
        self._templates[key] = _Template(name=name, result=result)
        return self._templates[key]

    def copy(
        self, name_or_path: str, *, seed: int | None = None, scale: float = 1.0
    ) -> ScenarioDatabase:
        """Return a new database holding a scenario: a copy of its template (built once).

        Args:
            name_or_path: A shipped scenario's name, or a path to a scenario file.
            seed: The run's seed (default: the scenario's).
            scale: Multiplies the scenario's step counts.

        Raises:
            ScenarioError: When the scenario is unknown or malformed.
            DatabaseError: When the server refuses the database or the rows.

        """
        template = self._template(name_or_path, seed=seed, scale=scale)
        name = self.create_database(template=template.name)
        result = template.result
        return ScenarioDatabase(
            scenario=result.scenario,
            seed=result.seed,
            name=name,
            url=self.database_url(name),
            refs=MappingProxyType(
                {k: list(v) if isinstance(v, list) else v for k, v in result.refs.items()}
            ),
        )

    def release(self, database: ScenarioDatabase) -> None:
        """Close a copy's connections and drop it."""
        database.close()
        self._wait_for_disconnect(database.name)
        self.drop_database(database.name)

    def _wait_for_disconnect(self, name: str, *, timeout: float = 1.0) -> None:
        # A closed connection's server process exits a moment later; DROP DATABASE finding it
        # still there sleeps 100 ms before it looks again. Polling for a few ms is cheaper.
        import psycopg

        deadline = time.monotonic() + timeout
        admin = self._admin_connection()
        try:
            while time.monotonic() < deadline:
                row = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = %s AND backend_type = 'client backend'",
                    (name,),
                ).fetchone()
                if not row or row[0] == 0:
                    return
                time.sleep(0.002)
        except psycopg.Error:
            return  # DROP DATABASE ... WITH (FORCE) below copes, only slower

    def schema_engine(self) -> sa.Engine:
        """Return an engine on this server's database of the app's tables, made on first use."""
        if self._schema_engine is None:
            import sqlalchemy as sa

            from seeding.database import create_schema

            name = self.create_database()
            engine = sa.create_engine(normalize_url(self.database_url(name)))
            create_schema(engine, allow_remote=True)  # a database it created itself
            self._schema_engine = engine
        return self._schema_engine

    def close(self) -> None:
        """Drop every database this object made and close its connections."""
        if self._schema_engine is not None:
            self._schema_engine.dispose()
            self._schema_engine = None
        self._templates.clear()
        try:
            for name in reversed(self._made):
                self.drop_database(name)
        finally:
            if self._admin is not None:
                self._admin.close()
                self._admin = None


__all__ = [
    "INI_KEY",
    "OPTION",
    "OWNER_COMMENT",
    "OWNER_PREFIX",
    "TEMPLATE_PREFIX",
    "TEST_DATABASE_PREFIX",
    "URL_VARIABLE",
    "ScenarioDatabase",
    "SeedServer",
    "check_server",
    "database_url",
    "factory_random_state",
    "restore_factory_random_state",
]
