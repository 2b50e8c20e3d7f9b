"""Tests as a persona: statements run as a seeded Supabase user, the way the app's API runs them.

Supabase's REST API (PostgREST) runs each request in a transaction of its own, as the role the
request's JWT names (``authenticated`` for a signed-in user, ``anon`` without one), with the
token's claims in the setting ``request.jwt.claims``; ``auth.uid()`` reads the user's id from
there and the RLS policies read ``auth.uid()``. :func:`signed_in` does the same on a database
the plugin made: ``SET LOCAL ROLE``, the claims with ``set_config(..., true)`` (also the older
one-setting-per-claim ``request.jwt.claim.*``), both local to one transaction that ends with
the block, so neither reaches the next use of the connection.

Only a database shaped like the app's Supabase one has what this needs (schema ``auth`` with
``auth.users`` and ``auth.uid()``, the roles ``authenticated`` and ``anon``); on the tool's
own schema every call here is one :class:`~seeding.errors.SchemaError` that says so.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from seeding.errors import ConfigurationError, ScenarioError, SchemaError

if TYPE_CHECKING:
    import psycopg
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

#: The role of a signed-in user's requests.
AUTHENTICATED: Final = "authenticated"
#: The role of a request without a signed-in user (the anon key).
ANON: Final = "anon"
#: Where the fixture's docs say how to give the plugin the app's schema.
SCHEMA_HINT: Final = (
    "personas need the app's Supabase schema (schema auth with auth.users and auth.uid(), the "
    "roles authenticated and anon, the RLS policies): give the plugin that schema with "
    "--seed-schema PATH or the ini key seed_schema (a schema dump, or the folder of migrations)"
)
# A claim that can be a setting of its own (request.jwt.claim.<name>).
_CLAIM_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A namespace for the persona's session id: the same user gets the same one every time.
_SESSION_NAMESPACE: Final = uuid.UUID("6f1c3a52-6a4e-4b8e-9d7c-2f0d3c1b5e11")

# Every seeded person: the auth user, with their profile and mechanic rows where they have them.
_PEOPLE: Final = """
SELECT u.id AS user_id, u.email::text AS email,
       CASE WHEN m.id IS NOT NULL THEN 'mechanic'
            ELSE coalesce(p.role, u.raw_user_meta_data ->> 'role', 'customer') END AS role,
       coalesce(m.name, p.full_name, u.raw_user_meta_data ->> 'full_name') AS name,
       m.id AS mechanic_id, coalesce(u.phone::text, '') AS phone,
       coalesce(u.raw_app_meta_data, '{}'::jsonb) AS app_metadata,
       coalesce(u.raw_user_meta_data, '{}'::jsonb) AS user_metadata
FROM auth.users u
LEFT JOIN public.profiles p ON p.id = u.id
LEFT JOIN public.mechanics m ON m.user_id = u.id
"""


@dataclass(frozen=True)
class Person:
    """A seeded user of the app: a Supabase auth user, a customer or a mechanic.

    Attributes:
        id: The auth user's id: what ``auth.uid()`` returns when they are signed in, and what
            the app's rows hold (a customer's ``profiles.id``, ``vehicles.user_id``,
            ``session_requests.customer_id``; a mechanic's ``mechanics.user_id``).
        email: The email they sign in with.
        role: ``'mechanic'`` for a user with a mechanics row, else their profile's role
            (``'customer'`` for a seeded customer).
        name: The mechanic's name, else the profile's full name.
        mechanic_id: Their ``mechanics.id`` (a mechanic), else None.

    """

    id: uuid.UUID
    email: str
    role: str
    name: str | None = None
    mechanic_id: uuid.UUID | None = None


@dataclass(frozen=True)
class _Found:
    person: Person
    phone: str
    app_metadata: Mapping[str, Any]
    user_metadata: Mapping[str, Any]


@dataclass(frozen=True)
class Persona:
    """What runs as a persona inside ``with db.as_user(...)`` (or ``db.as_anon()``).

    Attributes:
        person: The signed-in user (None for ``as_anon``).
        role: The database role the statements run as (``authenticated`` or ``anon``).
        claims: The JWT claims set for the block (``request.jwt.claims``).
        session: A SQLAlchemy session in the block's transaction; its ``commit()`` only
            releases a savepoint.
        connection: The psycopg connection of the same transaction; its ``commit()`` is
            refused (the block ends the transaction: ``as_user(..., commit=True)`` keeps the
            writes).

    """

    person: Person | None
    role: str
    claims: Mapping[str, Any]
    session: Session
    connection: psycopg.Connection[Any]

    def execute(self, query: Any, params: Any = None) -> psycopg.Cursor[Any]:
        """Run ``query`` as the persona on :attr:`connection` (psycopg): ``.fetchall()`` etc."""
        return self.connection.execute(query, params)


def driver_of(connection: sa.Connection) -> psycopg.Connection[Any]:
    """Return the psycopg connection under a SQLAlchemy one (same transaction)."""
    driver = connection.connection.driver_connection
    assert driver is not None, "a SQLAlchemy connection that is closed"
    typed: psycopg.Connection[Any] = driver
    return typed


def missing_supabase(connection: psycopg.Connection[Any], roles: Sequence[str]) -> list[str]:
    """Return what the database lacks of Supabase's auth that personas need (empty: nothing)."""
    row = connection.execute(
        "SELECT to_regnamespace('auth') IS NOT NULL, to_regclass('auth.users') IS NOT NULL, "
        "to_regprocedure('auth.uid()') IS NOT NULL, "
        "ARRAY(SELECT r FROM unnest(%s::text[]) r "
        "      WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r))",
        [list(roles)],
    ).fetchone()
    assert row is not None
    if not row[0]:  # with no schema auth, its table and function go without saying
        missing = ["schema auth"]
    else:
        names = ("table auth.users", "function auth.uid()")
        missing = [what for what, there in zip(names, row[1:3], strict=True) if not there]
    return missing + [f"role {name}" for name in row[3]]


def require_supabase(
    connection: psycopg.Connection[Any], roles: Sequence[str], *, where: str, database: str
) -> None:
    """Raise a SchemaError unless the database has Supabase's auth and the roles.

    Raises:
        SchemaError: When something is missing; the message names it and the fix.

    """
    missing = missing_supabase(connection, roles)
    if not missing:
        return
    tool_schema = connection.execute(
        "SELECT to_regclass('public.session_requests') IS NOT NULL"
    ).fetchone()
    shape = " (it has the tool's own schema)" if tool_schema and tool_schema[0] else ""
    raise SchemaError(
        f"{where}: database {database} is not shaped like the app's Supabase database{shape}: "
        f"it has no {', '.join(missing)}; {SCHEMA_HINT}"
    )


def _found(row: Sequence[Any]) -> _Found:
    person = Person(id=row[0], email=row[1] or "", role=row[2], name=row[3], mechanic_id=row[4])
    return _Found(person=person, phone=row[5], app_metadata=row[6], user_metadata=row[7])


def people(connection: psycopg.Connection[Any], role: str | None = None) -> list[Person]:
    """Return the database's users (of one role: ``'customer'``, ``'mechanic'``), by email."""
    rows = connection.execute(
        f"SELECT * FROM ({_PEOPLE}) people"
        " WHERE %(role)s::text IS NULL OR people.role = %(role)s::text"
        " ORDER BY lower(people.email), people.user_id",
        {"role": role},
    ).fetchall()
    return [_found(row).person for row in rows]


def _by_id(
    connection: psycopg.Connection[Any], ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, _Found]:
    """Return the users an id names: an auth user's id, or a mechanic's ``mechanics.id``."""
    rows = connection.execute(
        f"SELECT given, people.* FROM ({_PEOPLE}) people"
        " JOIN unnest(%s::uuid[]) given ON given IN (people.user_id, people.mechanic_id)",
        [list(ids)],
    ).fetchall()
    return {row[0]: _found(row[1:]) for row in rows}


def _by_email(connection: psycopg.Connection[Any], email: str) -> _Found | None:
    row = connection.execute(
        f"SELECT * FROM ({_PEOPLE}) people WHERE lower(people.email) = lower(%s)"
        " ORDER BY people.user_id LIMIT 1",
        [email],
    ).fetchone()
    return None if row is None else _found(row)


def _as_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _single_refs(refs: Mapping[str, uuid.UUID | list[uuid.UUID]]) -> dict[str, uuid.UUID]:
    return {name: value for name, value in refs.items() if isinstance(value, uuid.UUID)}


def _find(
    connection: psycopg.Connection[Any],
    who: Person | uuid.UUID | str,
    refs: Mapping[str, uuid.UUID | list[uuid.UUID]],
    *,
    where: str,
    scenario: str,
) -> _Found:
    """Return the seeded user ``who`` names.

    Raises:
        ScenarioError: When no seeded user is so named; the message says how to name one.

    """
    if isinstance(who, Person):
        key: uuid.UUID | None = who.id
    elif isinstance(who, uuid.UUID):
        key = who
    elif not isinstance(who, str):
        raise ConfigurationError(
            f"{where}: give a Person (db.customers(), db.mechanics()), an email, a ref's name "
            f"or an auth user id, not a {type(who).__name__}"
        )
    elif "@" in who:
        found = _by_email(connection, who)
        if found is not None:
            return found
        key = None
    elif who in refs:
        value = refs[who]
        if isinstance(value, list):
            raise ScenarioError(
                f"{where}: ref {who!r} of scenario {scenario!r} is a group of {len(value)} rows; "
                f"pick one: db.as_user(db.ref({who!r})[0])"
            )
        key = value
    else:
        key = _as_uuid(who)
    if key is not None:
        found_by_id = _by_id(connection, [key]).get(key)
        if found_by_id is not None:
            return found_by_id
    single = _single_refs(refs)
    users = _by_id(connection, list(single.values()))
    named = sorted(name for name, value in single.items() if value in users)
    listed = ", ".join(named) if named else "it names none"
    what = (f"ref {who!r} of scenario {scenario!r} is not a user (a customer or a mechanic)"
            if isinstance(who, str) and who in refs else f"no seeded user is {str(who)!r}")
    raise ScenarioError(
        f"{where}: {what}; name one by email (see db.customers(), db.mechanics()), by a ref "
        f"of the scenario that is a customer or a mechanic ({listed}), or by an auth user id"
    )


def find_person(
    connection: psycopg.Connection[Any],
    who: Person | uuid.UUID | str,
    refs: Mapping[str, uuid.UUID | list[uuid.UUID]],
    *,
    where: str,
    scenario: str,
) -> Person:
    """Return the seeded user ``who`` names: a Person, an email, a ref's name or an id.

    Raises:
        ScenarioError: When no seeded user is so named; the message says how to name one.

    """
    return _find(connection, who, refs, where=where, scenario=scenario).person


def user_claims(found: _Found, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the claims of a Supabase access token of the user (``extra`` on top)."""
    now = int(time.time())
    person = found.person
    claims: dict[str, Any] = {
        "aud": AUTHENTICATED,
        "exp": now + 3600,
        "iat": now,
        "iss": "supabase",
        "sub": str(person.id),
        "email": person.email,
        "phone": found.phone,
        "app_metadata": dict(found.app_metadata),
        "user_metadata": dict(found.user_metadata),
        "role": AUTHENTICATED,
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now}],
        "session_id": str(uuid.uuid5(_SESSION_NAMESPACE, str(person.id))),
        "is_anonymous": False,
    }
    claims.update(extra or {})
    return claims


def anon_claims(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the claims of Supabase's anon key (``extra`` on top)."""
    now = int(time.time())
    claims: dict[str, Any] = {"iss": "supabase", "role": ANON, "iat": now, "exp": now + 3600}
    claims.update(extra or {})
    return claims


def _set_claims(
    driver: psycopg.Connection[Any], role: str, claims: Mapping[str, Any], *, where: str
) -> None:
    """Set the role and claims for the transaction, as PostgREST does (both transaction-local).

    Raises:
        ConfigurationError: When the database user may not act as ``role``.

    """
    import psycopg
    from psycopg import sql

    from seeding.db.identifiers import identifier, shown

    try:
        driver.execute(sql.SQL("SET LOCAL ROLE {}").format(identifier(role)))
    except psycopg.errors.InsufficientPrivilege as error:
        user = driver.info.user
        raise ConfigurationError(
            f"{where}: the database user {user!r} may not act as role {role} "
            f"({str(error).strip().splitlines()[0]}); grant it: GRANT {shown(role)} TO "
            f"{shown(user)}"
        ) from None
    # The older one-setting-per-claim form too (auth.uid() of older projects reads it).
    single = {
        f"request.jwt.claim.{name}": value if isinstance(value, str) else json.dumps(value)
        for name, value in claims.items()
        if _CLAIM_NAME.fullmatch(name)  # a setting's name; others are in the JSON only
    }
    settings = {"request.jwt.claims": json.dumps(claims), **single}
    driver.execute(
        "SELECT set_config(name, value, true) FROM unnest(%s::text[], %s::text[]) s(name, value)",
        [list(settings), list(settings.values())],
    )


@contextmanager
def signed_in(
    engine: sa.Engine,
    who: Person | uuid.UUID | str | None,
    *,
    refs: Mapping[str, uuid.UUID | list[uuid.UUID]],
    scenario: str,
    database: str,
    where: str,
    commit: bool = False,
    claims: Mapping[str, Any] | None = None,
) -> Iterator[Persona]:
    """Run the block as the seeded user ``who`` (None: as ``anon``), in one transaction.

    The transaction sets the role and the JWT claims locally, as PostgREST does for a request,
    and ends with the block: rolled back (``commit=False``, or when the block raises) or
    committed. The role and claims end with it.

    Raises:
        SchemaError: When the database is not shaped like the app's Supabase one.
        ScenarioError: When no seeded user is ``who``.
        ConfigurationError: When the database user may not act as the role.

    """
    from sqlalchemy.orm import Session

    role = ANON if who is None else AUTHENTICATED
    with engine.connect() as connection:
        transaction = connection.begin()
        driver = driver_of(connection)
        try:
            require_supabase(driver, [role], where=where, database=database)
            person: Person | None = None
            if who is None:
                persona_claims = anon_claims(claims)
            else:
                found = _find(driver, who, refs, where=where, scenario=scenario)
                person = found.person
                persona_claims = user_claims(found, claims)
            _set_claims(driver, role, persona_claims, where=where)
            # A savepoint of psycopg's own: the test's connection.commit() inside is refused.
            with driver.transaction():
                session = Session(bind=connection, join_transaction_mode="create_savepoint")
                try:
                    yield Persona(
                        person=person, role=role, claims=persona_claims,
                        session=session, connection=driver,
                    )
                finally:
                    session.close()
        except BaseException:
            transaction.rollback()
            raise
        if not commit:
            transaction.rollback()
            return
        transaction.commit()
        # A plain SET ROLE in the block outlives the transaction: such a connection is not
        # put back for the next user.
        same = driver.execute("SELECT current_user = session_user").fetchone()
        if not (same and same[0]):
            connection.invalidate()


__all__ = [
    "ANON",
    "AUTHENTICATED",
    "SCHEMA_HINT",
    "Persona",
    "Person",
    "anon_claims",
    "driver_of",
    "find_person",
    "missing_supabase",
    "people",
    "require_supabase",
    "signed_in",
    "user_claims",
]
