"""Seeding the app's real Supabase database: fitted rows, auth users that sign in, reset.

The databases are shaped like the app's (tests/app_shape.sql): the migrations' shape
(``app_db``: the request status an enum without 'completed', keys to ``auth.users``) and the
live staging one (``app_db_live``: text statuses, ``sessions.mechanic_id`` → mechanics).
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from app_shape import as_user, sign_in_check, snapshot
from psycopg import sql

from seeding.db import auth
from seeding.errors import ConfigurationError, SchemaMismatchError
from seeding.reset import reset_database
from seeding.runner import run_scenario

PASSWORD = "a-test-password-7"


def test_preflight_names_what_does_not_fit_and_writes_nothing(app_db: str) -> None:
    before = snapshot(app_db)
    with pytest.raises(SchemaMismatchError) as refused:
        run_scenario("baseline", database_url=app_db)
    message = str(refused.value)
    assert "session_requests.status: the scenario needs 'completed'" in message
    assert "ALTER TYPE public.session_request_status ADD VALUE IF NOT EXISTS 'completed'" in message
    assert "nothing was written" in message
    assert snapshot(app_db) == before


@pytest.mark.parametrize("shape", ["app_ready", "app_db_live"])
def test_baseline_on_the_app_s_database(shape: str, request: pytest.FixtureRequest) -> None:
    url: str = request.getfixturevalue(shape)
    before = snapshot(url)
    result = run_scenario("baseline", database_url=url, user_password=PASSWORD)
    people = result.counts["profiles"] + result.counts["mechanics"]
    assert result.counts["auth.users"] == result.counts["auth.identities"] == people
    # The tool's columns the app lacks are listed, not an error.
    assert "organizations.latitude" in result.absent
    # The app's profile trigger made the mechanics' profiles; recorded with the run.
    assert result.app_made["profiles"] == result.counts["mechanics"]
    with psycopg.connect(url) as connection:
        emails = [e for (e,) in connection.execute("SELECT email FROM auth.users")]
        assert len(emails) == people
        for email in emails:
            assert sign_in_check(connection, email, PASSWORD) is not None, email
        assert sign_in_check(connection, emails[0], "not-the-password") is None
        # A customer's profile is the scenario's, not the trigger's bare one.
        blank = connection.execute(
            "SELECT count(*) FROM profiles p JOIN auth.users u ON u.id = p.id "
            "WHERE u.raw_user_meta_data->>'role' = 'customer' AND p.full_name IS NULL"
        ).fetchone()
        assert blank == (0,)
        roles: dict[str, int] = dict(connection.execute(
            "SELECT role, count(*) FROM profiles GROUP BY role").fetchall())
        assert roles == {"customer": result.counts["profiles"],
                         "mechanic": result.counts["mechanics"]}
        # Every vehicle belongs to its customer's auth user; year written as text.
        orphans = connection.execute(
            "SELECT count(*) FROM vehicles v LEFT JOIN profiles p ON p.id = v.user_id "
            "WHERE p.role IS DISTINCT FROM 'customer'").fetchone()
        assert orphans == (0,)
        # sessions.mechanic_id follows the live key: an auth user's id, or a mechanic's.
        target = connection.execute(
            "SELECT confrelid::regclass::text FROM pg_constraint "
            "WHERE conrelid = 'public.sessions'::regclass AND contype = 'f' "
            "AND conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = "
            "'public.sessions'::regclass AND attname = 'mechanic_id')]").fetchone()
        assert target is not None
        column = "user_id" if target[0] == "auth.users" else "id"
        unmatched = connection.execute(
            sql.SQL("SELECT count(*) FROM sessions s WHERE s.mechanic_id IS NOT NULL AND NOT "
                    "EXISTS (SELECT FROM mechanics m WHERE m.{} = s.mechanic_id)")
            .format(sql.Identifier(column))).fetchone()
        assert unmatched == (0,)
    assert reset_database(url).outcome == "deleted"
    assert snapshot(url) == before


def test_a_signed_in_customer_sees_only_their_own_rows(app_ready: str) -> None:
    run_scenario("diverse", database_url=app_ready, user_password=PASSWORD)
    # The mechanics' profiles the auth trigger made are no customers: no rule counts them.
    from typer.testing import CliRunner

    from seeding.cli import app

    report = CliRunner().invoke(app, ["report", "--db", app_ready, "--format", "json"])
    assert report.exit_code == 0, report.output
    rules = {rule["rule"]: rule["violations"] for rule in json.loads(report.output)["integrity"]}
    assert rules["customer geography agrees"] == 0
    with psycopg.connect(app_ready) as connection:
        customers = connection.execute(
            "SELECT p.id, (SELECT count(*) FROM vehicles v WHERE v.user_id = p.id), "
            "(SELECT count(*) FROM session_requests r WHERE r.customer_id = p.id) "
            "FROM profiles p WHERE p.role = 'customer' ORDER BY 3 DESC LIMIT 3").fetchall()
        assert customers and customers[0][2] > 0
        for customer_id, vehicles, requests in customers:
            with as_user(connection, customer_id) as signed_in:
                seen: Any = signed_in.execute(
                    "SELECT (SELECT count(*) FROM vehicles), "
                    "(SELECT count(*) FROM session_requests), "
                    "(SELECT count(*) FROM profiles)").fetchone()
            assert seen == (vehicles, requests, 1)


def test_the_password_is_settable_and_hashed_once_per_run(
    app_ready: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(auth.PASSWORD_VARIABLE, "from-the-environment")
    assert auth.user_password() == "from-the-environment"
    assert auth.user_password("given-here") == "given-here"
    monkeypatch.delenv(auth.PASSWORD_VARIABLE)
    assert auth.user_password() == auth.DEFAULT_PASSWORD
    with pytest.raises(ConfigurationError, match="shorter than 6"):
        auth.user_password("short")
    calls: list[str] = []
    real = auth.hash_password

    def counting(password: str, seed: int) -> str:
        calls.append(password)
        return real(password, seed)

    monkeypatch.setattr(auth, "hash_password", counting)
    result = run_scenario("baseline", database_url=app_ready, user_password=PASSWORD)
    assert result.counts["auth.users"] > 1
    assert calls == [PASSWORD]


def test_the_cli_names_what_the_database_lacks_and_what_its_triggers_made(
    app_ready: str,
) -> None:
    from typer.testing import CliRunner

    from seeding.cli import app

    result = CliRunner().invoke(
        app, ["scenario", "baseline", "--db", app_ready, "--user-password", PASSWORD]
    )
    assert result.exit_code == 0, result.output
    assert "made by the app's triggers, recorded with the run: profiles 7" in result.output
    assert "not written, the database lacks them: organizations.latitude" in result.output
    assert PASSWORD not in result.output
