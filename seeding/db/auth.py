"""Seeded people as Supabase users: the ``auth.users`` and ``auth.identities`` rows they need.

On a database with Supabase's ``auth`` schema, every seeded customer and mechanic gets an
auth user the sign-in server (GoTrue) accepts: the zero ``instance_id``, ``aud`` and ``role``
'authenticated', a bcrypt ``encrypted_password``, ``email_confirmed_at`` set, every token
column '' (a NULL there breaks sign-in for everyone), and one 'email' identity whose
``provider_id`` is the user's id. Their id is the id the app's rows hold: a customer's
``profiles.id``, a mechanic's ``mechanics.user_id``.

One password serves every seeded user (:data:`DEFAULT_PASSWORD`, or ``--user-password``, or
``SEED_USER_PASSWORD``). bcrypt is slow on purpose, so it is hashed once per run; its salt is
drawn from the run's seed, so the same run gives the same rows (an export diffs cleanly).

The app's trigger on ``auth.users`` makes a bare profile for each new user (its role from
the metadata's ``role``); the run then writes its full profile over it (see
:mod:`seeding.db.writer`), so no trigger default is left where the scenario set a value.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from seeding.errors import ConfigurationError
from seeding.scenario.kinds import KIND_OF_MODEL, KINDS

if TYPE_CHECKING:
    from seeding.db.catalog import Catalog

#: The password of every seeded user, unless ``--user-password`` or the variable says.
DEFAULT_PASSWORD = "seeding-password-1"
PASSWORD_VARIABLE = "SEED_USER_PASSWORD"
#: GoTrue's single instance.
INSTANCE_ID = uuid.UUID(int=0)
#: bcrypt's cost as Supabase uses it.
ROUNDS = 10
#: The token columns GoTrue scans into strings: NULL in any of them fails every sign-in.
TOKEN_COLUMNS = (
    "confirmation_token", "recovery_token", "email_change_token_new", "email_change",
    "phone_change", "phone_change_token", "email_change_token_current",
    "reauthentication_token",
)
_NAMESPACE = uuid.UUID("5eed0000-0000-4000-8000-0000000a0001")
_STANDARD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_BCRYPT = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True)
class Person:
    """One seeded person who signs in: their auth id, email, role and when they signed up."""

    id: uuid.UUID
    email: str
    role: str
    created_at: datetime
    full_name: str | None
    #: The id of the person's row (a customer's profile, a mechanic), whose hex their email
    #: holds; a tiled run rewrites it in each copy of the auth rows.
    row_id: uuid.UUID | None = None


def user_password(given: str | None = None) -> str:
    """Return the seeded users' password: ``given``, else ``SEED_USER_PASSWORD``, else default.

    Raises:
        ConfigurationError: When the password is shorter than 6 characters (GoTrue's minimum).

    """
    password = given if given is not None else os.environ.get(PASSWORD_VARIABLE) or DEFAULT_PASSWORD
    if len(password) < 6:
        raise ConfigurationError(
            "the seeded users' password is shorter than 6 characters, which Supabase's sign-in "
            f"refuses; give a longer one (--user-password or {PASSWORD_VARIABLE})"
        )
    return password


def hash_password(password: str, seed: int) -> str:
    """Return the bcrypt hash of the password, its salt drawn from the run's seed."""
    import bcrypt  # only runs that write auth users pay for loading it

    digest = hashlib.sha256(f"seeding-salt:{seed}".encode()).digest()[:16]
    encoded = base64.b64encode(digest).translate(bytes.maketrans(_STANDARD, _BCRYPT))[:22]
    salt = b"$2a$%02d$" % ROUNDS + encoded
    return bcrypt.hashpw(password.encode(), salt).decode()


def people(rows: Iterable[Any]) -> list[Person]:
    """Return the people among built rows (kinds with an auth user), in build order."""
    found: list[Person] = []
    for row in rows:
        kind = KINDS[KIND_OF_MODEL[type(row)]]
        if kind.auth_user is None or kind.auth_role is None:
            continue
        name = getattr(row, "full_name", None) or getattr(row, "name", None)
        found.append(Person(getattr(row, kind.auth_user), row.email, kind.auth_role,
                            row.created_at, name, row.id))
    return found


def user_row(person: Person, password_hash: str) -> dict[str, Any]:
    """Return a person's ``auth.users`` values by column (a database writes those it has)."""
    return {
        "instance_id": INSTANCE_ID,
        "id": person.id,
        "aud": "authenticated",
        "role": "authenticated",
        "email": person.email.lower(),
        "encrypted_password": password_hash,
        "email_confirmed_at": person.created_at,
        "confirmation_sent_at": person.created_at,
        "raw_app_meta_data": {"provider": "email", "providers": ["email"]},
        "raw_user_meta_data": _metadata(person),
        "is_super_admin": False,
        "created_at": person.created_at,
        "updated_at": person.created_at,
        "is_sso_user": False,
        "is_anonymous": False,
        **dict.fromkeys(TOKEN_COLUMNS, ""),
    }


def identity_row(person: Person) -> dict[str, Any]:
    """Return a person's 'email' ``auth.identities`` values by column."""
    return {
        "id": uuid.uuid5(_NAMESPACE, str(person.id)),
        "user_id": person.id,
        "provider": "email",
        "provider_id": str(person.id),
        "identity_data": {
            "sub": str(person.id), "email": person.email.lower(),
            "email_verified": True, "phone_verified": False,
        },
        "created_at": person.created_at,
        "updated_at": person.created_at,
    }


def accounts(catalog: Catalog, people: Sequence[Person], password_hash: str
             ) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Return the people's ``auth.users`` rows and 'email' identities, by (schema, table).

    Each table goes in where the database has it (users first): a database without
    ``auth.identities`` gets the users alone. Every run writes them so (the built path, the
    tiled path, an export).
    """
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if people and catalog.table("users", "auth") is not None:
        found[("auth", "users")] = [user_row(p, password_hash) for p in people]
        if catalog.table("identities", "auth") is not None:
            found[("auth", "identities")] = [identity_row(p) for p in people]
    return found


def seeded_accounts(catalog: Catalog, rows: Iterable[Any], password: str, seed: int
                    ) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Return :func:`accounts` for the people among built rows (none: no hashing at all).

    The password is hashed once, here: bcrypt is slow on purpose.
    """
    seeded = people(rows)
    if not seeded:
        return {}
    return accounts(catalog, seeded, hash_password(password, seed))


def _metadata(person: Person) -> Mapping[str, Any]:
    data: dict[str, Any] = {"role": person.role, "email_verified": True}
    if person.full_name:
        data["full_name"] = person.full_name
    return data
