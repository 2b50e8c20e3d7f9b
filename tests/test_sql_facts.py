"""The SQL spellings of the domain's facts say what their Python spellings say.

The report checks in SQL what the factories keep in Python (reserved emails, postal
prefixes, plans, whole minutes); each pair is compared here on the same inputs, edge cases
included, by running the SQL on the database.
"""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from seeding.domain.contacts import is_reserved_email, sql_email_domain, sql_reserved_domain
from seeding.domain.geography import (
    POSTAL_PREFIXES,
    province_of_postal_code,
    sql_postal_prefix_matches,
)
from seeding.domain.integrity import sql_whole_minutes
from seeding.domain.plans import PLANS, sql_plan_fits_type
from seeding.domain.vocabularies import PROVINCES, SESSION_TYPES

EMAILS = [
    "ana.li.1f2e@example.com", "x@example.net", "x@example.org", "x@EXAMPLE.COM",
    "x@mail.example.com", "x@example.com.", "x@notexample.com", "x@example.co",
    "x@shop.test", "x@test", "x@a.b.invalid", "x@localhost", "x@my.localhost.", "x@example",
    "x@gmail.com", "x@test.com", "a@b@example.com", "a@example.com@gmail.com",
    "no-at-sign.test", "no-at-sign", "x@", "@", "", "x@.test", "x@example.com ",
    "x@sub.EXAMPLE.org", "x@example.comx", "x@xexample.com", "x_y%z@example.com",
]


def test_reserved_emails_in_sql_are_the_reserved_emails_in_python(engine: sa.Engine) -> None:
    query = sa.text(f"SELECT {sql_reserved_domain(sql_email_domain(':email'))}")
    with engine.connect() as connection:
        in_sql = {e: connection.execute(query, {"email": e}).scalar_one() for e in EMAILS}
    assert in_sql == {e: is_reserved_email(e) for e in EMAILS}
    assert set(in_sql.values()) == {True, False}


def test_postal_prefixes_in_sql_are_the_prefixes_in_python(engine: sa.Engine) -> None:
    codes = [f"{letter}1A 1A1" for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"] + ["k1a 0b1"]
    query = sa.text(f"SELECT {sql_postal_prefix_matches(':code', ':province')}")
    with engine.connect() as connection:
        for code, province in itertools.product(codes, PROVINCES):
            fits = connection.execute(query, {"code": code, "province": province}).scalar_one()
            assert fits == (province in province_of_postal_code(code)), (code, province)
    assert any(POSTAL_PREFIXES.values())


def test_plans_in_sql_fit_the_types_they_fit_in_python(engine: sa.Engine) -> None:
    query = sa.text(f"SELECT {sql_plan_fits_type('CAST(:plan AS text)', 'CAST(:type AS text)')}")
    with engine.connect() as connection:
        plans = [p.code for p in PLANS] + ["gold", None]
        for plan, kind in itertools.product(plans, SESSION_TYPES):
            fits = connection.execute(query, {"plan": plan, "type": kind}).scalar_one()
            assert fits == any(p.code == plan and p.session_type == kind for p in PLANS)


@pytest.mark.parametrize("seconds", [
    0, 1, 29, 29.999999, 30, 30.000001, 89.5, 90, 150, 3570, 3600, -29.999999, -30, -90, -91,
    86400 * 3 + 30, 1e-6,
])
def test_whole_minutes_round_as_numeric_does(engine: sa.Engine, seconds: float) -> None:
    span = "make_interval(secs => CAST(:seconds AS double precision))"
    query = sa.text(
        f"SELECT {sql_whole_minutes(span)}, round(extract(epoch FROM {span}) / 60)"
    )
    with engine.connect() as connection:
        fast, exact = connection.execute(query, {"seconds": seconds}).one()
    assert fast == float(exact)
