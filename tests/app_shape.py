"""A database shaped like the app's real Supabase database, and what a test asks of it.

``app_shape.sql`` builds the migrations' shape (with the live database's extra columns);
:data:`LIVE_PATCH` turns it into the live staging shape where the two disagree (see
the team's shared app-schema.md). :func:`sign_in_check` is what Supabase's auth server checks before
it lets a user sign in with email and password; :func:`as_user` runs statements the way the
REST API runs a signed-in user's (role ``authenticated``, the JWT claims as settings).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

#: The SQL that builds the app's shape into an empty database.
APP_SHAPE_SQL = Path(__file__).with_name("app_shape.sql")

#: The instance id the auth server looks users up under.
AUTH_INSTANCE_ID = "00000000-0000-0000-0000-000000000000"

#: auth.users columns the auth server scans into strings: NULL in any fails the sign-in
#: ("Database error querying schema"); '' is what a user made by the server holds.
AUTH_TOKEN_COLUMNS = (
    "confirmation_token",
    "recovery_token",
    "email_change_token_new",
    "email_change",
    "phone_change",
    "phone_change_token",
    "email_change_token_current",
    "reauthentication_token",
)

#: The live staging shape where it differs from the migrations' (app-schema.md §2, §4):
#: session_requests has L's 31 columns (status and session_type text, plan_code and
#: is_follow_up nullable, no updated_at/notes/notification_sent_at/metadata) and
#: sessions.mechanic_id references mechanics(id), without the columns L lacks.
#: guess: no CHECK on the text status/session_type (L holds 'completed', which every
#: known CHECK refuses); ON DELETE SET NULL for sessions.mechanic_id; the enum type dropped.
LIVE_PATCH = """
DROP POLICY "Mechanics can view pending requests" ON public.session_requests;
ALTER TABLE public.session_requests ALTER COLUMN status DROP DEFAULT;
ALTER TABLE public.session_requests ALTER COLUMN status TYPE text USING status::text;
ALTER TABLE public.session_requests ALTER COLUMN status SET DEFAULT 'pending';
ALTER TABLE public.session_requests
    ALTER COLUMN session_type TYPE text USING session_type::text,
    ALTER COLUMN plan_code DROP NOT NULL,
    ALTER COLUMN is_follow_up DROP NOT NULL,
    DROP COLUMN updated_at,
    DROP COLUMN notes,
    DROP COLUMN notification_sent_at,
    DROP COLUMN metadata;
DROP TYPE public.session_request_status;
CREATE POLICY "Mechanics can view pending requests" ON public.session_requests
    FOR SELECT TO authenticated USING (
        status = 'pending' AND EXISTS (
            SELECT FROM public.mechanics m
            WHERE m.user_id = auth.uid() AND m.can_accept_sessions = true
        )
    );

ALTER TABLE public.sessions
    DROP CONSTRAINT sessions_mechanic_id_fkey,
    ADD CONSTRAINT sessions_mechanic_id_fkey FOREIGN KEY (mechanic_id)
        REFERENCES public.mechanics (id) ON DELETE SET NULL,
    DROP COLUMN waiver_accepted,
    DROP COLUMN waiver_accepted_at,
    DROP COLUMN waiver_ip_address,
    DROP COLUMN vehicle_info,
    DROP COLUMN session_notes,
    DROP COLUMN review;
"""


def create_app_shape(url: str, *, live: bool = False) -> None:
    """Build the app's shape into the empty database at ``url``, in one transaction.

    Args:
        url: A libpq URL of a fresh, empty database; the user must be a superuser (roles,
            extensions, ``ALTER DATABASE``).
        live: Build the live staging shape instead of the migrations' (:data:`LIVE_PATCH`).

    """
    statements = APP_SHAPE_SQL.read_text()
    with psycopg.connect(url) as connection:  # commits on leaving, rolls back on error
        connection.execute(statements.encode())
        if live:
            connection.execute(LIVE_PATCH.encode())


def pgcrypto_is_real(connection: psycopg.Connection[Any]) -> bool:
    """Return whether the database's crypt() is pgcrypto's, not the fixture's stand-in."""
    row = connection.execute(
        "SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'pgcrypto')"
    ).fetchone()
    return bool(row and row[0])


def sign_in_check(connection: psycopg.Connection[Any], email: str, password: str) -> str | None:
    """Return the user's id if Supabase's auth server would let them sign in, else None.

    What the server checks for an email and password: the user found by lower(email) under
    the instance :data:`AUTH_INSTANCE_ID` with ``aud = 'authenticated'`` and not an SSO user;
    the email confirmed; not banned; no NULL among :data:`AUTH_TOKEN_COLUMNS`; the password
    matching ``encrypted_password`` (crypt); and exactly one ``email`` identity, whose
    ``provider_id`` is the user's id.
    """
    tokens_set = " AND ".join(f"u.{column} IS NOT NULL" for column in AUTH_TOKEN_COLUMNS)
    # Without pgcrypto (the embedded server's build lacks it) the fixture's crypt() is a
    # stand-in: a real bcrypt hash (what the tool writes) is then checked in Python.
    real = pgcrypto_is_real(connection)
    row = connection.execute(
        f"""
        SELECT u.id::text, u.encrypted_password,
               extensions.crypt(%(password)s, u.encrypted_password) = u.encrypted_password
        FROM auth.users u
        WHERE lower(u.email) = lower(%(email)s)
          AND u.instance_id = %(instance)s::uuid
          AND u.aud = 'authenticated'
          AND NOT u.is_sso_user
          AND u.email_confirmed_at IS NOT NULL
          AND (u.banned_until IS NULL OR u.banned_until < now())
          AND {tokens_set}
          AND u.encrypted_password IS NOT NULL
          AND (SELECT count(*) FROM auth.identities i
               WHERE i.user_id = u.id AND i.provider = 'email') = 1
          AND EXISTS (SELECT FROM auth.identities i
                      WHERE i.user_id = u.id AND i.provider = 'email'
                        AND i.provider_id = u.id::text)
        """.encode(),
        {"email": email, "password": password, "instance": AUTH_INSTANCE_ID},
    ).fetchone()
    if row is None:
        return None
    if not row[2]:
        if real:
            return None
        import bcrypt

        try:
            if not bcrypt.checkpw(password.encode(), str(row[1]).encode()):
                return None
        except ValueError:  # not a bcrypt hash
            return None
    return str(row[0])


@contextmanager
def as_user(
    connection: psycopg.Connection[Any], user_id: uuid.UUID | str
) -> Iterator[psycopg.Connection[Any]]:
    """Run the block as the signed-in user ``user_id``, as the REST API would.

    In a transaction (a savepoint if one is open): ``SET LOCAL ROLE authenticated`` and the
    JWT claims in ``request.jwt.claims``, so that RLS and ``auth.uid()`` see that user. Both
    are undone when the block ends, also inside a transaction that goes on.
    """
    claims = json.dumps({"sub": str(user_id), "role": "authenticated", "aud": "authenticated"})
    with connection.transaction():
        connection.execute("SET LOCAL ROLE authenticated")
        connection.execute("SELECT set_config('request.jwt.claims', %s, true)", [claims])
        yield connection
        connection.execute("RESET ROLE")
        connection.execute("SELECT set_config('request.jwt.claims', '', true)")


def admit_tool_request_statuses(url: str) -> None:
    """What `seed db doctor --apply` does for the migrations' enum: add the tool's statuses."""
    from psycopg import sql

    from seeding.domain import vocabularies

    with psycopg.connect(url, autocommit=True) as connection:
        for status in vocabularies.REQUEST_STATUSES:
            connection.execute(
                sql.SQL("ALTER TYPE public.session_request_status ADD VALUE IF NOT EXISTS {}")
                .format(sql.Literal(status))
            )


def snapshot(url: str) -> dict[str, str]:
    """Return an md5 of every table's rows in public and auth: what 'as it was' means."""
    with psycopg.connect(url) as connection:
        tables = connection.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('public', 'auth') AND table_type = 'BASE TABLE' "
            "ORDER BY 1, 2"
        ).fetchall()
        found = {}
        for schema, table in tables:
            rows = connection.execute(
                sql.SQL("SELECT coalesce(string_agg(t::text, '|' ORDER BY t::text), '') "
                        "FROM {} AS t").format(sql.Identifier(schema, table))
            ).fetchone()
            assert rows is not None
            found[f"{schema}.{table}"] = hashlib.md5(str(rows[0]).encode()).hexdigest()
    return found
