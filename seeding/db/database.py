"""Which database a command uses, how to connect to it, and creating the app's tables in it.

The URL comes from ``--db`` or ``SEED_DATABASE_URL``, never from ``DATABASE_URL`` (too often
that one points at production). With neither, the embedded server is started.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine

from seeding.db import embedded, guard
from seeding.domain.schema import Base
from seeding.errors import ConfigurationError, DatabaseError, first_line

#: The variable that names the database; ``DATABASE_URL`` is ignored on purpose.
URL_VARIABLE = "SEED_DATABASE_URL"

#: What ``--db supabase`` names: the Supabase CLI's local database (``supabase start``), with
#: the CLI's fixed local password.
SUPABASE_ALIAS = "supabase"
SUPABASE_LOCAL_URL = "postgresql://postgres:postgres@127.0.0.1:54322/postgres"

#: The advisory-lock key of schema changes (``seed db create``), so two never interleave.
SCHEMA_LOCK_KEY = 0x5EED_0001


@dataclass(frozen=True)
class Target:
    """The database a command works on, where its URL came from, and where it connects."""

    url: str
    #: '--db', 'SEED_DATABASE_URL' or 'embedded'.
    source: str
    #: The one reading of the URL and the environment that every connection is made with.
    endpoint: guard.Endpoint
    embedded_server: embedded.EmbeddedServer | None = None

    @property
    def display_url(self) -> str:
        """Return the URL rebuilt from what the tool connects to, without the password."""
        return self.endpoint.display()


def normalize_url(url: str) -> str:
    """Return a SQLAlchemy URL that uses psycopg 3, from a ``postgres://`` or ``postgresql://`` one.

    Raises:
        ConfigurationError: When the URL is not a PostgreSQL URL, or cannot be read one way
            only (the message never repeats it).

    """
    raw = url.strip()
    guard.read(raw)
    scheme, sep, rest = raw.partition("://")
    if not sep:
        raise ConfigurationError(
            "a database URL is needed here, not libpq key=value pairs; "
            "write it as postgresql://user:password@host:5432/database"
        )
    return f"postgresql+psycopg://{rest}"


def libpq_url(url: str) -> str:
    """Return the URL as libpq (psql, psycopg) reads it: scheme ``postgresql``."""
    return "postgresql://" + normalize_url(url).partition("://")[2]


def mask_password(url: str) -> str:
    """Return a URL fit to print: rebuilt from what libpq reads in it, without the password."""
    try:
        return guard.read(url).display()
    except ConfigurationError:
        return "(a database URL that cannot be read)"


def resolve(db: str | None = None) -> Target:
    """Return the database to use: ``db``, else ``SEED_DATABASE_URL``, else the embedded server.

    Only the URL and the environment are read; nothing connects, except to start the
    embedded server (on its own socket, whatever the environment says).

    Args:
        db: A URL given on the command line or by a caller; ``supabase`` names the Supabase
            CLI's local database (:data:`SUPABASE_LOCAL_URL`).

    Raises:
        ConfigurationError: When the URL cannot be read one way only.
        DatabaseError: When ``supabase`` is named and nothing answers at its port.

    """
    if db:
        if db.strip().lower() == SUPABASE_ALIAS:
            return supabase_local("--db supabase")
        return Target(url=db.strip(), source="--db", endpoint=guard.read(db, source="--db"))
    configured = os.environ.get(URL_VARIABLE)
    if configured and configured.strip().lower() == SUPABASE_ALIAS:
        return supabase_local(f"{URL_VARIABLE}=supabase")
    if configured:
        endpoint = guard.read(configured, source=URL_VARIABLE)
        return Target(url=configured.strip(), source=URL_VARIABLE, endpoint=endpoint)
    server = embedded.start()
    return Target(url=server.url(), source="embedded", endpoint=server.endpoint(),
                  embedded_server=server)


def supabase_local(source: str) -> Target:
    """Return the Supabase CLI's local database, after checking that something answers there.

    Raises:
        DatabaseError: When nothing listens at its port: the stack is not started.

    """
    endpoint = guard.read(SUPABASE_LOCAL_URL, source=source, public_password=True)
    host, port = endpoint.params["host"], int(endpoint.params["port"])
    try:
        with socket.create_connection((host, port), timeout=2):
            pass
    except OSError:
        raise DatabaseError(
            f"{source}: nothing answers at {host}:{port}, the Supabase CLI's local database; "
            "start it with `supabase start` (in your app's folder), or give its URL with --db"
        ) from None
    return Target(url=SUPABASE_LOCAL_URL, source=source, endpoint=endpoint)


def endpoint_of(target: str | guard.Endpoint | Target) -> guard.Endpoint:
    """Return the endpoint of a URL (read now), an endpoint, or a target."""
    if isinstance(target, Target):
        return target.endpoint
    if isinstance(target, guard.Endpoint):
        return target
    return guard.read(target)


def target_of(database_url: str | guard.Endpoint | Target | None = None) -> Target:
    """Return the target of a URL (read now), an endpoint or a target; None: :func:`resolve`'s.

    Raises:
        ConfigurationError: When a URL cannot be read one way only.

    """
    if database_url is None:
        return resolve()
    if isinstance(database_url, Target):
        return database_url
    if isinstance(database_url, guard.Endpoint):
        return Target(url=database_url.display(), source=database_url.source,
                      endpoint=database_url)
    if database_url.strip().lower() == SUPABASE_ALIAS:
        return supabase_local("supabase")
    return Target(url=database_url.strip(), source="", endpoint=guard.read(database_url))


def sqlalchemy_url(endpoint: guard.Endpoint) -> URL:
    """Return an SQLAlchemy URL that gives psycopg exactly the endpoint's parameters.

    The password is in the URL's password field, which SQLAlchemy masks when it prints.
    """
    params = dict(endpoint.params)
    password = params.pop("password", None)
    return URL.create("postgresql+psycopg", password=password, query=params)


def engine_for(target: str | guard.Endpoint | Target) -> Engine:
    """Return an engine whose every connection is made with exactly the target's endpoint.

    The server is asked once that it answers. SQLAlchemy never parses the URL: libpq's
    reading (:func:`seeding.db.guard.read`) is the only one, the one the guard decided on.

    Raises:
        ConfigurationError: When a URL cannot be read one way only.
        DatabaseError: When the server cannot be reached or refuses the connection.

    """
    endpoint = endpoint_of(target)
    engine = sa.create_engine(sqlalchemy_url(endpoint), creator=endpoint.connect,
                              pool_pre_ping=True)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as error:
        engine.dispose()
        raise DatabaseError(guard.redact(
            f"cannot connect to {endpoint.display()}: {describe(error)}; check that the server "
            f"is running and the URL is right (--db or {URL_VARIABLE})"
        )) from None
    return engine


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """Yield a connection inside one transaction, turning driver errors into DatabaseError."""
    try:
        with engine.begin() as connection:
            yield connection
    except sa_exc.DBAPIError as error:
        raise DatabaseError(describe(error)) from None


#: The memory each sort or hash of a big query may use (``SET LOCAL``: the report, a reset's
#: plan and its bulk deletes). PostgreSQL's default, 4MB, sends the hashes of a million ids
#: to disk: the report's joins ran about 1.5 times slower, a bulk delete's several times.
WORK_MEM = "128MB"


@contextmanager
def local_settings(connection: Connection, settings: Mapping[str, str]) -> Iterator[None]:
    """Apply settings to the statements inside (``SET LOCAL``), then put back the ones before.

    For planner settings that one query needs and the rest of the caller's transaction must
    not inherit. When a statement inside fails, its transaction is aborted and its rollback
    undoes the settings: the error inside is the one raised, not a failed restore.
    """
    names = list(settings)
    if not names:
        yield
        return

    def assign(values: Mapping[str, str]) -> None:
        pairs = ", ".join(f"set_config(:name{i}, :value{i}, true)" for i in range(len(names)))
        params = {f"name{i}": name for i, name in enumerate(names)}
        params |= {f"value{i}": values[name] for i, name in enumerate(names)}
        connection.execute(sa.text(f"SELECT {pairs}"), params)

    reads = ", ".join(f"current_setting(:name{i})" for i in range(len(names)))
    before = connection.execute(
        sa.text(f"SELECT {reads}"), {f"name{i}": name for i, name in enumerate(names)}
    ).one()
    assign(settings)
    try:
        yield
    except BaseException:
        with suppress(sa_exc.SQLAlchemyError):
            assign(dict(zip(names, before, strict=True)))
        raise
    assign(dict(zip(names, before, strict=True)))


def describe(error: sa_exc.DBAPIError) -> str:
    """Return the first line of the database's own message for a failed statement."""
    if error.orig is not None:
        return str(error.orig).strip().splitlines()[0]
    return str(error).splitlines()[0]


def driver_message(error: BaseException) -> str | None:
    """Return the first line of a psycopg error raised outside SQLAlchemy (a COPY).

    Return None when the error is not psycopg's.
    """
    if not type(error).__module__.startswith("psycopg"):
        return None
    return first_line(error)


def missing_tables(connection: Connection) -> list[str]:
    """Return the app's tables that the database lacks, in creation order."""
    present = set(sa.inspect(connection).get_table_names(schema="public"))
    return [table.name for table in Base.metadata.sorted_tables if table.name not in present]


def create_schema(engine: Engine, *, allow_remote: bool = False) -> list[str]:
    """Create the app's tables (and the ``session_type`` enum) that are missing.

    Safe to run again: what exists is left as it is. Two runs at once serialise on an
    advisory lock. The write guard checks where the engine's connection went first.

    Args:
        engine: An engine on the database.
        allow_remote: Write even to a server that is neither local nor in
            ``SEED_ALLOW_HOSTS`` (for a caller that created the database itself).

    Raises:
        ConfigurationError: When the guard refuses the server (nothing is created).

    Returns:
        The names of the tables created, in creation order (empty when none were missing).

    """
    with transaction(engine) as connection:
        guard.ensure_connection_writable(connection, allow_remote=allow_remote)
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK_KEY)))
        missing = missing_tables(connection)
        Base.metadata.create_all(connection, checkfirst=True)
    return missing


def create_tables(
    database_url: str | guard.Endpoint | Target, *, allow_remote: bool = False
) -> list[str]:
    """Create the app's tables that are missing: the library call behind ``seed db create``.

    The write guard decides before connecting (and :func:`create_schema` again on the open
    connection).

    Args:
        database_url: The database (``postgres://`` or ``postgresql://``), its endpoint or
            its target.
        allow_remote: Write even to a server that is neither local nor in
            ``SEED_ALLOW_HOSTS`` (for a caller that created the database itself).

    Returns:
        The names of the tables created, in creation order (empty when none were missing).

    Raises:
        ConfigurationError: When the URL cannot be read, or the guard refuses the server.
        DatabaseError: When the server cannot be reached or a statement fails.

    """
    endpoint = endpoint_of(database_url)
    if not allow_remote:
        guard.ensure_writable(endpoint)
    engine = engine_for(endpoint)
    try:
        return create_schema(engine, allow_remote=allow_remote)
    finally:
        engine.dispose()
