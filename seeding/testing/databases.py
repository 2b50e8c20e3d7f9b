"""The database a test gets: one scenario's copy, its rows by name, and its users.

A :class:`ScenarioDatabase` is what :meth:`seeding.testing.server.SeedServer.copy` returns and
the plugin's ``seed_scenario`` fixture yields: its URL, an engine and a session opened on
first use, the scenario's named rows (:meth:`ScenarioDatabase.ref`), and on a database shaped
like the app's, its seeded users and a block run as one of them
(:meth:`ScenarioDatabase.as_user`, through :mod:`seeding.testing.personas`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from seeding.db.database import normalize_url
from seeding.errors import ScenarioError

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from seeding.testing.personas import Person, Persona


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

    def customers(self) -> list[Person]:
        """Return the seeded customers (Supabase users), by email.

        Each :class:`~seeding.testing.personas.Person` has the auth user's ``id`` (what
        ``auth.uid()`` returns for them), ``email`` and ``name``; pass one to :meth:`as_user`.

        Raises:
            SchemaError: When the database is not shaped like the app's Supabase one.

        """
        __tracebackhide__ = True
        return self._people("customer", "db.customers()")

    def mechanics(self) -> list[Person]:
        """Return the seeded mechanics (Supabase users), by email; ``mechanic_id`` is theirs.

        Raises:
            SchemaError: When the database is not shaped like the app's Supabase one.

        """
        __tracebackhide__ = True
        return self._people("mechanic", "db.mechanics()")

    def _people(self, role: str, where: str) -> list[Person]:
        from seeding.testing.personas import driver_of, people, require_supabase

        with self.engine.connect() as connection:
            driver = driver_of(connection)
            require_supabase(driver, [], where=where, database=self.name)
            found = people(driver, role)
            connection.rollback()
        return found

    def person(self, who: Person | uuid.UUID | str) -> Person:
        """Return the seeded user ``who`` names (as :meth:`as_user` takes it).

        Raises:
            SchemaError: When the database is not shaped like the app's Supabase one.
            ScenarioError: When no seeded user is ``who``; the message says how to name one.

        """
        __tracebackhide__ = True
        from seeding.testing.personas import driver_of, find_person, require_supabase

        where = f"db.person({str(who)!r})"
        with self.engine.connect() as connection:
            driver = driver_of(connection)
            require_supabase(driver, [], where=where, database=self.name)
            found = find_person(driver, who, self.refs, where=where, scenario=self.scenario)
            connection.rollback()
        return found

    def as_user(
        self,
        who: Person | uuid.UUID | str,
        *,
        commit: bool = False,
        claims: Mapping[str, Any] | None = None,
    ) -> AbstractContextManager[Persona]:
        """Run a block as a seeded user, signed in, the way the app's REST API runs a request.

        ``with db.as_user("ana@example.com") as ana:`` runs ``ana.execute(...)`` (psycopg)
        and ``ana.session`` (SQLAlchemy) as the role ``authenticated`` with the user's JWT
        claims in ``request.jwt.claims``, so ``auth.uid()`` is the user and the RLS policies
        apply. The block is one transaction; the role and the claims end with it.

        Args:
            who: A :class:`~seeding.testing.personas.Person` (:meth:`customers`, :meth:`mechanics`),
                an email, the name of a scenario's ref that is a customer or a mechanic, or
                an auth user's id (a mechanic's ``mechanics.id`` too).
            commit: Keep what the block wrote (default: rolled back when it ends).
            claims: Claims to add or change (``{"app_metadata": {...}}``).

        Raises:
            SchemaError: When the database is not shaped like the app's Supabase one.
            ScenarioError: When no seeded user is ``who``; the message says how to name one.
            ConfigurationError: When the database user may not act as ``authenticated``.

        """
        from seeding.testing.personas import signed_in

        return signed_in(
            self.engine, who, refs=self.refs, scenario=self.scenario, database=self.name,
            where=f"db.as_user({str(who)!r})", commit=commit, claims=claims,
        )

    def as_anon(
        self, *, commit: bool = False, claims: Mapping[str, Any] | None = None
    ) -> AbstractContextManager[Persona]:
        """Run a block as the app's API runs a request without a user (role ``anon``).

        As :meth:`as_user`; ``auth.uid()`` is NULL.

        Raises:
            SchemaError: When the database is not shaped like the app's Supabase one.
            ConfigurationError: When the database user may not act as ``anon``.

        """
        from seeding.testing.personas import signed_in

        return signed_in(
            self.engine, None, refs=self.refs, scenario=self.scenario, database=self.name,
            where="db.as_anon()", commit=commit, claims=claims,
        )

    def close(self) -> None:
        """Close the session and the engine (the database stays until it is dropped)."""
        if self._connections.session is not None:
            self._connections.session.close()
            self._connections.session = None
        if self._connections.engine is not None:
            self._connections.engine.dispose()
            self._connections.engine = None


