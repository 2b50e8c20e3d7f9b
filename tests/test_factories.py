"""Rows built by the factories keep the app's rules, checked in SQL over hundreds of rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import factory
import pytest
import sqlalchemy as sa

import factories
from factories import (
    CustomerFactory,
    MechanicFactory,
    SessionAssignmentFactory,
    SessionFactory,
    SessionRequestFactory,
    VehicleFactory,
    WorkshopFactory,
)
from seeding.db import writer
from seeding.domain import integrity
from seeding.domain.contacts import is_reserved_email
from seeding.domain.mechanic_types import sql_mechanic_type
from seeding.domain.schema import Mechanic, SessionAssignment
from seeding.domain.vocabularies import ASSIGNMENT_STATUSES
from seeding.errors import ConfigurationError, FactoryRuleError

NOW = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)

REQUEST_TRAITS = (
    "pending",
    "accepted",
    "completed",
    "expired",
    "cancelled_before_assignment",
    "cancelled_after_assignment",
)
ROUTINGS = ("broadcast", "workshop_only", "hybrid", "priority_broadcast")


def build_and_write(engine: sa.Engine, make: Callable[[], Any], seed: int = 7) -> list[object]:
    factories.reseed(seed)
    with factories.clock(NOW), factories.collect() as rows:
        make()
    with engine.begin() as connection:
        writer.write(connection, rows)
    return rows


def broken(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {v.rule: v.count for v in integrity.check(connection, NOW) if v.count}


def test_every_rule_holds_over_hundreds_of_rows(engine: sa.Engine) -> None:
    def make() -> None:
        for i in range(300):
            SessionRequestFactory.build(
                **{REQUEST_TRAITS[i % 6]: True},
                routing_type=ROUTINGS[i % 4],
                is_follow_up=i % 7 == 0,
                request_type="brand_specialist" if i % 5 == 0 else "general",
                is_urgent=i % 3 == 0,
            )
        for i in range(100):
            MechanicFactory.build(incomplete=i % 4 == 0)
        for status in ("pending", "waiting", "live", "scheduled", "completed", "cancelled",
                       "expired", "unattended", "refunded", "archived"):
            SessionFactory.build_batch(10, status=status)
            SessionFactory.build_batch(10, status=status, mechanic=None)
        for status in ASSIGNMENT_STATUSES:
            SessionAssignmentFactory.build_batch(10, status=status)

    build_and_write(engine, make)
    assert broken(engine) == {}
    with engine.connect() as c:
        counts: dict[str, int] = dict(
            c.execute(sa.text("SELECT status, count(*) FROM session_requests GROUP BY 1")).all()
        )
        assert counts == {
            "pending": 50, "accepted": 50, "completed": 50, "expired": 50, "cancelled": 100
        }
        assert c.scalar(sa.text("SELECT count(*) FROM profiles")) >= 300
        # A session is queued for all mechanics, or its mechanic's, as the queue reads it:
        # besides the 10 of each status made on their own, 20 queued (pending and waiting
        # sessions without a mechanic) and 20 more for the offered and declined ones' sessions,
        # 30 accepted (pending, waiting and live sessions with one) and 50 for the accepted
        # requests' sessions (waiting: their first fitting status).
        by_status: dict[str, int] = dict(c.execute(sa.text(
            "SELECT status, count(*) FROM session_assignments GROUP BY 1")).all())
        assert by_status == {**dict.fromkeys(ASSIGNMENT_STATUSES, 10),
                             "queued": 10 + 20 + 20, "accepted": 10 + 30 + 50}
        assert c.scalar(sa.text("""
            SELECT count(*) FROM sessions s
            WHERE s.status IN ('pending', 'waiting') AND s.mechanic_id IS NULL
              AND NOT EXISTS (SELECT FROM session_assignments a WHERE a.session_id = s.id
                              AND a.status IN ('queued', 'pending_waiver')
                              AND a.mechanic_id IS NULL)""")) == 0
        assert c.scalar(sa.text("""
            SELECT count(*) FROM session_assignments a JOIN sessions s ON s.id = a.session_id
            WHERE a.created_at < s.created_at OR a.offered_at < a.created_at
               OR a.accepted_at < a.offered_at OR a.accepted_at > s.started_at
               OR greatest(a.created_at, a.offered_at, a.accepted_at, a.updated_at) > :now
            """), {"now": NOW}) == 0


@pytest.mark.parametrize("trait", REQUEST_TRAITS)
def test_each_lifecycle_trait_keeps_the_rules(engine: sa.Engine, trait: str) -> None:
    build_and_write(engine, lambda: SessionRequestFactory.build_batch(40, **{trait: True}))
    assert broken(engine) == {}
    with engine.connect() as c:
        row = c.execute(sa.text("""
            SELECT count(*) FILTER (WHERE mechanic_id IS NOT NULL),
                   count(*) FILTER (WHERE session_id IS NOT NULL), count(*)
            FROM session_requests""")).one()
    assigned = trait in ("accepted", "completed", "cancelled_after_assignment")
    assert row == ((40, 40, 40) if assigned else (0, 0, 40))


def test_a_bug_in_a_row_is_caught_by_the_rules(engine: sa.Engine) -> None:
    # The rules must be able to fail: break one row of each kind on purpose.
    build_and_write(engine, lambda: SessionRequestFactory.build_batch(5, completed=True))
    with engine.begin() as c:
        c.execute(sa.text(
            "UPDATE profiles SET postal_code = 'V6B 1A1' "
            "WHERE id = (SELECT min(id::text)::uuid FROM profiles WHERE province <> 'BC')"
        ))
        c.execute(sa.text(
            "UPDATE session_requests SET accepted_at = created_at - interval '1 minute' "
            "WHERE id = (SELECT min(id::text)::uuid FROM session_requests)"
        ))
        c.execute(sa.text(
            "UPDATE session_requests SET customer_email = 'stale@example.com' "
            "WHERE id = (SELECT max(id::text)::uuid FROM session_requests)"
        ))
    found = broken(engine)
    assert found["customer geography agrees"] == 1
    assert found["request timestamps in order"] == 1
    # The stale email, and the request whose customer's postal code moved under it.
    assert found["customer copies equal the profile"] == 2


@pytest.mark.parametrize("mechanic_type", ["virtual", "workshop", "independent"])
def test_each_mechanic_type_is_what_the_app_derives(engine: sa.Engine, mechanic_type: str) -> None:
    build_and_write(engine, lambda: MechanicFactory.build_batch(60, **{mechanic_type: True}))
    with engine.connect() as c:
        types = c.execute(
            sa.text(f"SELECT {sql_mechanic_type('m')}, count(*) FROM mechanics m GROUP BY 1")
        ).all()
        incomplete = c.scalar(
            sa.text("SELECT count(*) FROM mechanics WHERE profile_completion_score < 80")
        )
    assert types == [(mechanic_type, 60)]
    assert incomplete == 0
    assert broken(engine) == {}


def test_incomplete_mechanics_lack_what_the_audited_ones_lack(engine: sa.Engine) -> None:
    build_and_write(engine, lambda: MechanicFactory.build_batch(30, incomplete=True))
    with engine.connect() as c:
        row = c.execute(sa.text("""
            SELECT count(*) FILTER (WHERE city IS NULL AND province IS NULL AND postal_code IS NULL
                                      AND years_of_experience IS NULL),
                   count(*) FILTER (WHERE profile_completion_score < 80 AND NOT can_accept_sessions)
            FROM mechanics""")).one()
    assert row == (30, 30)


def test_an_independent_mechanic_owns_a_one_person_workshop() -> None:
    factories.reseed(3)
    with factories.collect() as rows:
        mechanic = MechanicFactory.build(independent=True)
    workshop: Any = next(r for r in rows if r.__class__.__name__ == "Organization")
    assert mechanic.workshop_id == workshop.id
    assert mechanic.account_type == "individual_mechanic"
    assert workshop.mechanic_capacity == 1
    assert mechanic.city == workshop.city


def test_related_rows_are_passed_as_objects() -> None:
    factories.reseed(5)
    customer = CustomerFactory.build(province="BC")
    workshop = WorkshopFactory.build(city="Calgary")
    mechanic = MechanicFactory.build(organization=workshop)
    vehicle = VehicleFactory.build(customer=customer)
    request = SessionRequestFactory.build(
        completed=True, customer=customer, mechanic=mechanic, vehicle=vehicle
    )
    assert customer.province == "BC" and customer.postal_code.startswith("V")
    assert workshop.province == "AB" and workshop.postal_code.startswith("T")
    assert mechanic.workshop_id == workshop.id and mechanic.account_type == "workshop_mechanic"
    assert mechanic.city == "Calgary"
    assert request.customer_id == customer.id and request.customer_email == customer.email
    assert request.mechanic_id == mechanic.id and request.workshop_id == workshop.id
    assert request.vehicle_id == vehicle.id


def test_workshop_only_requests_go_to_a_mechanic_of_that_workshop() -> None:
    factories.reseed(9)
    with factories.clock(NOW):
        requests = SessionRequestFactory.build_batch(20, accepted=True, workshop_only=True)
    for request in requests:
        assert request.workshop_id is not None
        assert request.preferred_workshop_id == request.workshop_id


def test_incoherent_overrides_are_refused_with_the_fix() -> None:
    with pytest.raises(FactoryRuleError, match="city 'Vancouver' is in BC, not ON"):
        CustomerFactory.build(city="Vancouver", province="ON")
    with pytest.raises(FactoryRuleError, match="postal code 'V6B 1A1' does not belong to ON"):
        CustomerFactory.build(province="ON", postal_code="V6B 1A1")
    with pytest.raises(FactoryRuleError, match="virtual mechanic has no workshop"):
        MechanicFactory.build(virtual=True, organization=WorkshopFactory.build())


def test_emails_are_reserved_and_unique() -> None:
    factories.reseed(11)
    customers = CustomerFactory.build_batch(500)
    mechanics = MechanicFactory.build_batch(200)
    emails = [row.email for row in [*customers, *mechanics]]
    assert all(is_reserved_email(e) for e in emails)
    assert len(set(emails)) == len(emails)


def test_no_wall_clock_a_clock_moves_every_timestamp() -> None:
    factories.reseed(1)
    with factories.clock(NOW):
        early = SessionRequestFactory.build(completed=True)
    factories.reseed(1)
    with factories.clock(NOW + timedelta(days=400)):
        late = SessionRequestFactory.build(completed=True)
    assert late.created_at - early.created_at == timedelta(days=400)


def test_create_persists_through_the_bound_session(engine: sa.Engine) -> None:
    factories.reseed(2)
    with sa.orm.Session(engine) as session, factories.bind(session), factories.clock(NOW):
        request = SessionRequestFactory.create(completed=True, workshop_only=True)
        mechanic = session.get(Mechanic, request.mechanic_id)
        assert mechanic is not None and mechanic.workshop_id == request.workshop_id
        session.commit()
    assert broken(engine) == {}


def test_create_persists_a_session_s_assignment_after_it(engine: sa.Engine) -> None:
    factories.reseed(3)
    with sa.orm.Session(engine) as session, factories.bind(session), factories.clock(NOW):
        queued = SessionFactory.create(status="pending", mechanic=None)
        offer = SessionAssignmentFactory.create(offered=True, session=queued)
        session.commit()
        found = session.scalars(
            sa.select(SessionAssignment).where(SessionAssignment.session_id == queued.id)
        ).all()
        assert sorted((a.status, a.mechanic_id is None) for a in found) == [
            ("offered", False), ("queued", True)]
        assert offer.mechanic_id is not None


def test_an_assignment_s_lifecycle_is_checked() -> None:
    factories.reseed(4)
    with factories.clock(NOW), factories.collect():
        with pytest.raises(FactoryRuleError, match="offered to a mechanic; pass mechanic="):
            SessionAssignmentFactory.build(declined=True, mechanic=None)
        with pytest.raises(FactoryRuleError, match="has an accepted_at"):
            SessionAssignmentFactory.build(queued=True, accepted_at=NOW)
        with pytest.raises(FactoryRuleError, match="in that order"):
            SessionAssignmentFactory.build(offered=True, created_at=NOW + timedelta(hours=1))


def test_create_without_a_session_says_how_to_bind_one() -> None:
    with pytest.raises(ConfigurationError, match="factories.bind"):
        CustomerFactory.create()


def test_a_trait_turned_on_by_another_trait_still_takes_effect() -> None:
    # Traits left out are passed as off up front (a speed-up); one that another trait turns
    # on must not be, or the explicit "off" would win over the other trait.
    class UnverifiedShopFactory(WorkshopFactory):
        class Params:
            new_signup = factory.Trait(pending_verification=True)  # type: ignore[no-untyped-call]

    with factories.collect():
        shop = UnverifiedShopFactory.build(new_signup=True)
        plain = UnverifiedShopFactory.build()
    assert (shop.status, shop.verification_status) == ("pending", "pending")
    assert plain.verification_status != "pending"


def test_leaving_a_trait_out_builds_what_passing_it_off_builds() -> None:
    def built(**traits: bool) -> list[tuple[object, ...]]:
        factories.reseed(5)
        with factories.clock(NOW), factories.collect():
            rows = [SessionRequestFactory.build(**traits) for _ in range(20)]
        return [writer.row_values(row) for row in rows]

    assert built() == built(**{name: False for name in REQUEST_TRAITS})
