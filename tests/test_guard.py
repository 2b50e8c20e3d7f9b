"""The write guard refuses non-local databases before any connection."""

from __future__ import annotations

import time
from typing import Any, NoReturn

import psycopg
import pytest
import sqlalchemy as sa

from seeding.db import guard
from seeding.errors import ConfigurationError

SUPABASE_POOLER = (
    "postgres://postgres.abcd:s3cret-pw@aws-0-ca-central-1.pooler.supabase.com:6543/postgres"
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("SEED_ALLOW_HOSTS", *guard.ENVIRONMENT.values(), "PGSERVICE", "PGPASSWORD"):
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
        "host=db.example.com hostaddr=127.0.0.1 dbname=x",
        "host=/tmp dbname=x port=5432",
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


def test_several_hosts_are_refused_even_when_each_is_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEED_ALLOW_HOSTS", "a.example.com,b.example.com")
    with pytest.raises(ConfigurationError, match="names 2 hosts"):
        guard.ensure_writable("postgresql://u@a.example.com,b.example.com/app")
    with pytest.raises(ConfigurationError, match="names 2 hosts"):
        guard.ensure_writable("host=/tmp,localhost dbname=x")


def test_pghost_is_checked_when_the_url_names_no_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHOST", "db.example.com")
    with pytest.raises(ConfigurationError, match=r"host db\.example\.com \(from PGHOST\) is not"):
        guard.ensure_writable("postgresql:///app")
    guard.ensure_writable("postgresql://localhost/app")


def test_a_service_is_refused_even_beside_a_host() -> None:
    # The service file may set a hostaddr, which libpq prefers to the URL's host.
    with pytest.raises(ConfigurationError, match="connection service 'staging'"):
        guard.ensure_writable("postgresql:///app?service=staging")
    with pytest.raises(ConfigurationError, match="connection service 'staging'"):
        guard.ensure_writable("postgresql://localhost/app?service=staging")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://u:s3cret-pw@localhost/app", "scheme 'mysql', not PostgreSQL"),
        ("postgresql://u:s3cret-pw@localhost/app?bogus=1", "cannot read the database URL"),
        ("u:s3cret-pw@localhost/app", "has no scheme"),
        ("postgresql://u:s3cret-pw%zz@localhost/app", "cannot read the database URL"),
    ],
)
def test_unreadable_urls_are_configuration_errors(url: str, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected) as refused:
        guard.ensure_writable(url)
    assert "s3cret-pw" not in str(refused.value)


# --- One reading of the target: the guard and the connection cannot disagree. -------------

REMOTE = "10.255.255.1"  # blackholes connections: one attempt would hang the test


@pytest.mark.parametrize(
    ("url", "environment", "reason"),
    [
        # A repeated parameter: libpq takes the last, other readers a list or the first.
        (f"postgresql://u@localhost/db?host={REMOTE}&host=localhost", {}, "host more than once"),
        (f"postgresql://u@localhost/x?host={REMOTE}&port=5432&host=/tmp", {},
         "host more than once"),
        # A service, in the URL or the environment: its file decides the host.
        ("postgresql://u@localhost/db?service=staging", {}, "connection service 'staging'"),
        ("postgresql://u@localhost/db", {"PGSERVICE": "staging"}, "unset PGSERVICE"),
        ("postgresql:///db", {"PGSERVICE": "staging"}, "connection service 'staging'"),
        # User-info holding '/', '?', '#' or '@' unencoded: read one way by libpq, another by
        # a URL parser.
        (f"postgresql://localhost:5432/x@{REMOTE}/db", {}, "one way only"),
        (f"postgresql://u:p@ss@{REMOTE}/db", {}, "one way only"),
        (f"postgresql://u:pa/ss@{REMOTE}/db", {}, "one way only"),
        # The environment redirecting a URL that names a local host.
        ("postgresql://u@localhost/db", {"PGHOSTADDR": REMOTE},
         f"address {REMOTE} (from PGHOSTADDR) is not local"),
        ("postgresql:///db", {"PGHOST": "db.example.com"}, "(from PGHOST)"),
        (f"postgresql://u@localhost/db?hostaddr={REMOTE}", {}, f"address {REMOTE} is not local"),
        (f"host=localhost hostaddr={REMOTE} dbname=x", {}, f"address {REMOTE} is not local"),
        ("postgresql://u@localhost,127.0.0.1/db", {}, "names 2 hosts"),
        ("postgresql:///db", {"PGHOST": "localhost,db.example.com"}, "names 2 hosts"),
        # Not readable as intended.
        ("postgresql://u@::1/x", {}, "IPv6 address in brackets"),
        ("postgresql://u:s3cret@localhost/db?host=", {}, None),  # an empty host: the socket
    ],
)
def test_the_guard_decides_on_libpq_s_reading(
    url: str, environment: dict[str, str], reason: str | None,
    monkeypatch: pytest.MonkeyPatch, no_connections: None,
) -> None:
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    if reason is None:
        endpoint = guard.ensure_writable(url)
        assert endpoint.is_local()
        return
    with pytest.raises(ConfigurationError) as refused:
        guard.ensure_writable(url)
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    ("url", "environment"),
    [
        ("postgresql://u@localhost/db", {"PGHOSTADDR": REMOTE}),
        ("postgresql://u@/db?host=/var/run/postgresql", {"PGHOSTADDR": REMOTE}),
        ("postgresql:///db", {}),
        ("postgresql://u@127.0.0.1:5432/db", {"PGHOST": REMOTE}),
    ],
)
def test_the_connection_is_made_with_exactly_what_was_decided(
    url: str, environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every connection parameter the environment could fill is explicit in the endpoint."""
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    endpoint = guard.read(url)
    decided = psycopg.conninfo.conninfo_to_dict(endpoint.conninfo)
    assert "host" in decided and "hostaddr" in decided
    assert endpoint.destinations() == [decided.get("hostaddr") or decided.get("host") or "/"]
    if "PGHOSTADDR" in environment:
        assert decided["hostaddr"] == REMOTE  # read, so the guard sees it too
        with pytest.raises(ConfigurationError):
            guard.ensure_writable(endpoint)


PASSWORDS = ["s3cret/pw", "s3cr?et#pw", "pa@ss:w/rd", "hunter2%pw", "quo'te\"pw"]


@pytest.mark.parametrize("password", PASSWORDS)
def test_no_message_or_display_holds_the_password(
    password: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from urllib.parse import quote

    encoded = quote(password, safe="")
    urls = [
        f"postgresql://u:{encoded}@db.example.com:5432/app",
        f"postgresql://u@db.example.com/app?password={encoded}",
        f"postgresql://u:{password}@db.example.com:5432/app",  # raw: ambiguous or misread
        f"u:{password}@db.example.com/app",  # no scheme
    ]
    for url in urls:
        try:
            endpoint = guard.read(url)
        except ConfigurationError as error:
            text = str(error)
        else:
            text = endpoint.display() + endpoint.describe()
            with pytest.raises(ConfigurationError) as refused:
                guard.ensure_writable(endpoint)
            text += str(refused.value)
        assert password not in text and encoded not in text, url
    monkeypatch.setenv("PGPASSWORD", password)
    assert password not in guard.redact(f"FATAL: password {password} was wrong")


def test_redact_removes_passwords_read_before() -> None:
    guard.read("postgresql://u:read-before-pw@localhost/db")
    assert guard.redact("a read-before-pw b") == "a *** b"
    assert guard.redact("a read-before-pw%21 b", ["read-before-pw!"]) == "a *** b"


def test_library_writers_refuse_a_remote_url_before_connecting(no_connections: None) -> None:
    from seeding.reset import reset_database
    from seeding.runner import run_scenario

    for url in (f"postgresql://u:pw@{REMOTE}/db", f"postgresql://u@localhost/db?hostaddr={REMOTE}"):
        with pytest.raises(ConfigurationError, match="refusing to write"):
            run_scenario("baseline", database_url=url)
        with pytest.raises(ConfigurationError, match="refusing to write"):
            reset_database(url)
        with pytest.raises(ConfigurationError, match="not local"):
            reset_database(url, all_tables=True, allow_remote=True)


def test_writers_check_where_the_connection_really_went(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An engine made by the caller is checked on its live connection (PQhost, PQhostaddr)."""
    from seeding import doctor, runner
    from seeding.db import database

    plan, built = runner.prepare("baseline")
    engine = sa.create_engine(database.normalize_url(pg_url))
    try:
        # As if the server this engine reached were another machine's.
        monkeypatch.setattr(guard, "is_local_host", lambda host: False)
        with pytest.raises(ConfigurationError, match="the server is not local"):
            runner.write_built(engine, plan, built)
        with pytest.raises(ConfigurationError, match="the server is not local"):
            database.create_schema(engine)
        with engine.begin() as connection, pytest.raises(ConfigurationError):
            doctor.apply_fixes(connection, [])
        with engine.connect() as connection:
            assert connection.execute(sa.text(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'seeding'"
            )).scalar() == 0
            assert connection.execute(sa.text("SELECT count(*) FROM profiles")).scalar() == 0
        result = runner.write_built(engine, plan, built, allow_remote=True)  # the opt-in
        assert sum(result.counts.values()) == len(built.rows)
    finally:
        engine.dispose()


def test_a_password_spelled_like_the_scheme_is_masked_but_the_scheme_stays() -> None:
    guard.read("postgresql://someone:postgres@127.0.0.1:5432/db")
    assert guard.redact("give a postgresql:// or postgres:// URL; it said postgres") == (
        "give a postgresql:// or postgres:// URL; it said ***"
    )
