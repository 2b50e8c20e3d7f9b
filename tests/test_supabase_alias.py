"""`--db supabase`: the Supabase CLI's local database, or one line saying to start it."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from seeding.cli import app
from seeding.db import database
from seeding.errors import DatabaseError

PORT = 54322


def _port_free() -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", PORT)) != 0


@pytest.fixture
def listener(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """Something answering where `supabase start` would put the database; return its port.

    The port is one the system chose (54322 itself may be held a while by an earlier test's
    connections); the Supabase URL is pointed at it.
    """
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        monkeypatch.setattr(
            database, "SUPABASE_LOCAL_URL", f"postgresql://postgres:postgres@127.0.0.1:{port}/postgres"
        )
        yield port


@pytest.mark.parametrize("command", [["report"], ["scenario", "baseline"], ["reset", "--yes"],
                                     ["db", "doctor"], ["db", "url"]])
def test_every_command_says_to_start_supabase_when_nothing_answers(
    command: list[str],
) -> None:
    if not _port_free():
        pytest.skip(f"port {PORT} is in use on this machine")
    result = CliRunner().invoke(app, [*command, "--db", "supabase"])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        "error: --db supabase: nothing answers at 127.0.0.1:54322, the Supabase CLI's local "
        "database; start it with `supabase start` (in your app's folder), or give its URL "
        "with --db"
    ]


def test_the_alias_is_the_supabase_clis_database() -> None:
    assert database.SUPABASE_LOCAL_URL == (
        "postgresql://postgres:postgres@127.0.0.1:54322/postgres"
    )


def test_supabase_names_the_cli_database_and_never_shows_its_password(
    listener: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = database.resolve("supabase")
    params = dict(target.endpoint.params)
    assert (params["host"], params["port"], params["user"], params["dbname"]) == (
        "127.0.0.1", str(listener), "postgres", "postgres")
    assert target.display_url == f"postgresql://postgres:***@127.0.0.1:{listener}/postgres"
    assert database.target_of("supabase").endpoint.params == target.endpoint.params
    monkeypatch.setenv(database.URL_VARIABLE, "supabase")
    assert database.resolve().source == "SEED_DATABASE_URL=supabase"
    result = CliRunner().invoke(app, ["db", "url", "--db", "supabase"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"postgresql://postgres:***@127.0.0.1:{listener}/postgres"


def test_the_library_takes_supabase_too() -> None:
    if not _port_free():
        pytest.skip(f"port {PORT} is in use on this machine")
    with pytest.raises(DatabaseError, match="start it with `supabase start`"):
        database.target_of("supabase")


def test_its_public_password_does_not_mangle_later_messages(listener: int) -> None:
    from seeding.db import guard

    database.resolve("supabase")
    assert guard.redact("give a postgresql:// URL") == "give a postgresql:// URL"
