"""Choosing the database: --db, SEED_DATABASE_URL, never DATABASE_URL; both URL schemes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from seeding.db import database, guard
from seeding.errors import ConfigurationError


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d"),
        ("postgresql://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
        ("  postgresql://u@/d?host=/tmp  ", "postgresql+psycopg://u@/d?host=/tmp"),
    ],
)
def test_both_schemes_are_accepted(given: str, expected: str) -> None:
    assert database.normalize_url(given) == expected


@pytest.mark.parametrize("bad", ["localhost:5432/db", "sqlite:///x.db", "http://example.com"])
def test_other_urls_are_refused_with_the_fix(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="write it as postgresql://"):
        database.normalize_url(bad)


def test_password_is_masked() -> None:
    assert database.mask_password("postgresql://u:secret@h:5432/d") == "postgresql://u:***@h:5432/d"
    assert database.mask_password("postgresql://u@h/d") == "postgresql://u@h/d"
    # Rebuilt from what libpq reads: the password is never carried over, wherever it was.
    assert database.mask_password("postgresql://u@h/d?password=secret&sslmode=require") == (
        "postgresql://u:***@h/d"
    )
    assert database.mask_password("postgresql://u:p@ss@h/d") == (
        "(a database URL that cannot be read)"
    )


def test_an_engine_s_url_gives_the_same_connection_and_hides_the_password(
    pg_url: str,
) -> None:
    engine = database.engine_for(pg_url)
    again = sa.create_engine(engine.url)
    try:
        with engine.connect() as one, again.connect() as other:
            query = sa.text("SELECT current_database()")
            assert one.execute(query).scalar() == other.execute(query).scalar()
    finally:
        engine.dispose()
        again.dispose()
    url = database.sqlalchemy_url(guard.read("postgresql://u:s3cret@h/d"))
    assert "s3cret" not in url.render_as_string(hide_password=True)


def test_the_variable_is_used_and_database_url_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://prod@db.example.com/prod")
    monkeypatch.setenv("SEED_DATABASE_URL", "postgres://seed@localhost/seed")
    target = database.resolve(None)
    assert target.source == "SEED_DATABASE_URL"
    assert "prod" not in target.url
    assert database.resolve("postgresql://given@localhost/x").source == "--db"


def _setting(connection: sa.Connection, name: str) -> str:
    return str(connection.execute(sa.text("SELECT current_setting(:n)"), {"n": name}).scalar_one())


def test_local_settings_hold_inside_and_are_put_back_after(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text("SET LOCAL work_mem = '8MB'"))
        with database.local_settings(connection, {"enable_nestloop": "off", "work_mem": "64MB"}):
            assert _setting(connection, "enable_nestloop") == "off"
            assert _setting(connection, "work_mem") == "64MB"
        assert _setting(connection, "enable_nestloop") == "on"
        assert _setting(connection, "work_mem") == "8MB"


def test_local_settings_are_put_back_after_an_error_in_python(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        with pytest.raises(KeyError):
            with database.local_settings(connection, {"enable_nestloop": "off"}):
                raise KeyError("inside")
        assert _setting(connection, "enable_nestloop") == "on"


def test_a_failed_statement_inside_local_settings_is_the_error_raised(engine: sa.Engine) -> None:
    # The failed statement aborts the transaction, so putting the settings back fails too:
    # that second failure must not hide the first.
    with engine.connect() as connection, connection.begin():
        with pytest.raises(sa_exc.ProgrammingError, match="no_such_table"):
            with database.local_settings(connection, {"enable_nestloop": "off"}):
                connection.execute(sa.text("SELECT * FROM no_such_table"))
