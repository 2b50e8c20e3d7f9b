"""The write guard refuses non-local databases before any connection."""

from __future__ import annotations

import time
from typing import Any, NoReturn

import psycopg
import pytest
import sqlalchemy as sa

from seeding import guard
from seeding.errors import ConfigurationError

SUPABASE_POOLER = (
    "postgres://postgres.abcd:s3cret-pw@aws-0-ca-central-1.pooler.supabase.com:6543/postgres"
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("SEED_ALLOW_HOSTS", "PGHOST", "PGHOSTADDR", "PGSERVICE"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to connect fail the test."""

    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        pytest.fail("the guard tried to connect")

    monkeypatch.setattr(psycopg, "connect", refuse)
    monkeypatch.setattr(psycopg.Connection, "connect", refuse)
    monkeypatch.setattr(sa, "create_engine", refuse)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql:///seeding",
        "postgresql://postgres@/seeding",
        "postgresql://postgres@/seeding?host=/tmp/pg-socket&port=5432",
        "postgresql://?host=/var/run/postgresql&dbname=x",
        "postgresql://?host=&dbname=x",
        "postgresql://postgres:pw@localhost:5432/postgres",
        "postgresql://postgres:pw@LOCALHOST/postgres",
        "postgresql://postgres:postgres@127.0.0.1:54322/postgres",
        "postgresql://postgres@127.1.2.3/postgres",
        "postgresql+psycopg://postgres@[::1]:5432/postgres",
        "postgres://postgres@localhost:5432,127.0.0.1:5433/postgres",
        "host=/tmp,localhost dbname=x",
        "host=db.example.com hostaddr=127.0.0.1 dbname=x",
    ],
)
def test_local_databases_are_writable(url: str, no_connections: None) -> None:
    assert guard.is_local(url)
    guard.ensure_writable(url)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        (SUPABASE_POOLER, "aws-0-ca-central-1.pooler.supabase.com"),
        ("postgresql://u:s3cret-pw@db.example.com:5432/app", "db.example.com"),
        ("postgresql+psycopg://u:s3cret-pw@10.0.0.5/app", "10.0.0.5"),
        ("postgresql://u:s3cret-pw@[2001:db8::1]:5432/app", "2001:db8::1"),
        ("postgresql://u:s3cret-pw@localhost:5432,db.example.com:5432/app", "db.example.com"),
        ("postgresql://u@localhost/app?password=s3cret-pw&hostaddr=10.0.0.5", "10.0.0.5"),
        ("host=localhost,db.example.com password=s3cret-pw", "db.example.com"),
        ("postgresql://u:s3cret-pw@localhost.example.com/app", "localhost.example.com"),
    ],
)
def test_remote_databases_are_refused_without_connecting(
    url: str, host: str, no_connections: None
) -> None:
    assert not guard.is_local(url)
    with pytest.raises(ConfigurationError) as refused:
        guard.ensure_writable(url)
    message = str(refused.value)
    assert f"host {host} is not local" in message
    assert f"SEED_ALLOW_HOSTS={host.lower()}" in message
    assert "s3cret-pw" not in message


def test_supabase_pooler_message() -> None:
    with pytest.raises(ConfigurationError) as refused:
        guard.ensure_writable(SUPABASE_POOLER)
    assert str(refused.value) == (
        "refusing to write to database 'postgres' on "
        "aws-0-ca-central-1.pooler.supabase.com:6543 as postgres.abcd: "
        "host aws-0-ca-central-1.pooler.supabase.com is not local "
        "(localhost, 127.0.0.0/8, ::1 or a unix socket); if it really is a database you may "
        "overwrite, allow it with SEED_ALLOW_HOSTS=aws-0-ca-central-1.pooler.supabase.com"
    )


def test_unroutable_host_is_refused_at_once() -> None:
    # 10.255.255.1 blackholes connection attempts: a connection would hang, parsing does not.
    started = time.monotonic()
    with pytest.raises(ConfigurationError):
        guard.ensure_writable("postgresql://u:pw@10.255.255.1:5432/app?connect_timeout=10")
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    "listed",
    [
        "db.example.com",
        " DB.Example.com ",
        "other.example.com, db.example.com",
        "other.example.com,,DB.EXAMPLE.COM,",
    ],
)
def test_listed_hosts_are_allowed(
    listed: str, monkeypatch: pytest.MonkeyPatch, no_connections: None
) -> None:
    monkeypatch.setenv("SEED_ALLOW_HOSTS", listed)
    guard.ensure_writable("postgresql://u:pw@db.example.com:5432/app")
    assert not guard.is_local("postgresql://u:pw@db.example.com:5432/app")


def test_every_one_of_several_hosts_must_be_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEED_ALLOW_HOSTS", "a.example.com")
    with pytest.raises(ConfigurationError, match=r"host b\.example\.com is not local"):
        guard.ensure_writable("postgresql://u@a.example.com,b.example.com/app")
    monkeypatch.setenv("SEED_ALLOW_HOSTS", "a.example.com,b.example.com")
    guard.ensure_writable("postgresql://u@a.example.com,b.example.com/app")


def test_pghost_is_checked_when_the_url_names_no_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHOST", "db.example.com")
    with pytest.raises(ConfigurationError, match=r"host db\.example\.com is not local"):
        guard.ensure_writable("postgresql:///app")
    guard.ensure_writable("postgresql://localhost/app")


def test_a_service_without_a_host_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="connection service 'staging'"):
        guard.ensure_writable("postgresql:///app?service=staging")
    guard.ensure_writable("postgresql://localhost/app?service=staging")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://u:s3cret-pw@localhost/app", "scheme 'mysql' is not PostgreSQL"),
        ("postgresql://u:s3cret-pw@localhost/app?bogus=1", "cannot read the database URL"),
    ],
)
def test_unreadable_urls_are_configuration_errors(url: str, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected) as refused:
        guard.ensure_writable(url)
    assert "s3cret-pw" not in str(refused.value)
