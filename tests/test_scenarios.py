"""Scenarios: baseline gives the audit's figures, runs are deterministic, reruns replace."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner

from seeding.cli import app
from seeding.db import database
from seeding.runner import run_scenario

runner = CliRunner()


def q(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = database.engine_for(url)
    try:
        with engine.connect() as c:
            return [tuple(r) for r in c.execute(sa.text(sql))]
    finally:
        engine.dispose()


def one(url: str, sql: str) -> Any:
    return q(url, sql)[0][0]


def test_baseline_reproduces_the_audit_figure_for_figure(new_database: str) -> None:
    result = runner.invoke(app, ["scenario", "baseline", "--db", new_database])
    assert result.exit_code == 0, result.output
    url = new_database
    assert q(url, "SELECT status, count(*) FROM session_requests GROUP BY 1 ORDER BY 1") == [
        ("cancelled", 36), ("completed", 6), ("pending", 1)]
    assert q(
        url, "SELECT session_type::text, count(*) FROM session_requests GROUP BY 1 ORDER BY 1"
    ) == [("chat", 37), ("diagnostic", 3), ("video", 3)]
    assert q(url, "SELECT routing_type, count(*) FROM session_requests GROUP BY 1") == [
        ("broadcast", 43)]
    assert one(url, "SELECT count(*) FROM session_requests WHERE workshop_id IS NOT NULL") == 5
    assert one(
        url, "SELECT count(*) FROM session_requests WHERE preferred_workshop_id IS NOT NULL"
    ) == 0
    assert one(url, "SELECT count(*) FROM session_requests WHERE mechanic_id IS NOT NULL") == 13
    assert q(url, """
        SELECT left(mechanic_id::text, 8), count(*) FILTER (WHERE status = 'completed'),
               count(*) FILTER (WHERE status = 'cancelled')
        FROM session_requests WHERE mechanic_id IS NOT NULL GROUP BY 1 ORDER BY 1""") == [
        ("0d887221", 0, 2), ("2750cdea", 0, 6), ("c62837da", 4, 1)]
    assert one(
        url,
        "SELECT count(*) FROM session_requests "
        "WHERE status = 'cancelled' AND mechanic_id IS NULL",
    ) == 27
    assert one(
        url,
        "SELECT count(*) FROM session_requests "
        "WHERE status = 'cancelled' AND mechanic_id IS NOT NULL",
    ) == 9
    assert one(
        url,
        "SELECT count(*) FROM session_requests "
        "WHERE status = 'completed' AND mechanic_id IS NULL",
    ) == 2
    assert q(url, """
        SELECT customer_email, count(*),
               count(*) FILTER (WHERE status = 'completed'),
               count(*) FILTER (WHERE status = 'cancelled'),
               count(*) FILTER (WHERE status = 'pending')
        FROM session_requests GROUP BY 1 ORDER BY 1""") == [
        ("cust1@test.com", 33, 3, 29, 1), ("cust2@test.com", 9, 3, 6, 0),
        ("cust3@example.com", 1, 0, 1, 0)]
    assert q(url, """
        SELECT round(avg(m)::numeric, 2), round(min(m)::numeric, 2), round(max(m)::numeric, 2)
        FROM (SELECT extract(epoch FROM accepted_at - created_at) / 60 AS m
              FROM session_requests WHERE accepted_at IS NOT NULL) t""") == [
        (Decimal("4.83"), Decimal("0.47"), Decimal("29.38"))]
    assert q(url, """
        SELECT to_char(min(created_at) AT TIME ZONE 'America/Toronto', 'YYYY-MM-DD HH24:MI:SS'),
               to_char(max(created_at) AT TIME ZONE 'America/Toronto', 'YYYY-MM-DD HH24:MI:SS')
        FROM session_requests""") == [("2025-10-29 00:45:48", "2025-11-06 14:05:57")]
    assert q(
        url,
        "SELECT left(id::text, 8), status, session_type::text FROM session_requests "
        "ORDER BY created_at LIMIT 10",
    ) == [
        ("29026e3d", "cancelled", "chat"), ("5086115b", "cancelled", "chat"),
        ("3b22dd87", "cancelled", "video"), ("ed99907c", "completed", "chat"),
        ("3b884909", "cancelled", "chat"), ("fd1e4bcb", "cancelled", "chat"),
        ("b3dc74a1", "cancelled", "chat"), ("c3206121", "cancelled", "chat"),
        ("f1370a3b", "cancelled", "chat"), ("119b4c3f", "cancelled", "chat")]
    assert one(url, "SELECT count(*) FROM mechanics") == 7
    assert q(url, """SELECT name, email, account_type, years_of_experience, red_seal_certified, city
                     FROM mechanics WHERE id::text LIKE 'c62837da%'""") == [
        ("Alex Thompson", "workshop.mechanic@test.com", "workshop_mechanic", 8, True, "Toronto")]
    assert q(url, """
        SELECT o.name, o.city, o.postal_code
        FROM mechanics m JOIN organizations o ON o.id = m.workshop_id
        WHERE m.id::text LIKE 'c62837da%'""") == [
        ("Elite Auto Care Workshop", "Toronto", "M4B 1B3")]
    incomplete = q(url, """
        SELECT left(id::text, 8) FROM mechanics WHERE city IS NULL AND province IS NULL
        AND postal_code IS NULL AND years_of_experience IS NULL ORDER BY 1""")
    assert len(incomplete) == 4
    assert {"0d887221", "2750cdea", "99c254c1"} <= {row[0] for row in incomplete}
    assert one(url, "SELECT count(*) FROM profiles WHERE role = 'customer'") == 3
    # The place in both of the app's forms (its customer screens read the second pair).
    assert q(url, """
        SELECT province, state_province, count(*) FILTER (WHERE postal_zip_code = postal_code)
        FROM profiles GROUP BY 1, 2""") == [("ON", "Ontario", 3)]
    # Only values the app's CHECKs admit: 'both' for every type (not 'virtual_only').
    assert q(url, "SELECT DISTINCT participation_mode FROM mechanics") == [("both",)]


def test_same_scenario_and_seed_on_two_databases_is_identical(make_database) -> None:  # type: ignore[no-untyped-def]
    first, second = make_database(), make_database()
    for url in (first, second):
        run_scenario("diverse", database_url=url)
    dump = "SELECT * FROM {} ORDER BY id"
    for table in (
        "organizations", "profiles", "mechanics", "vehicles", "sessions", "session_requests"
    ):
        assert q(first, dump.format(table)) == q(second, dump.format(table)), table


def test_a_second_run_leaves_the_state_of_one_run(new_database: str) -> None:
    run_scenario("diverse", database_url=new_database)
    before = {
        t: q(new_database, f"SELECT * FROM {t} ORDER BY id")
        for t in ("mechanics", "session_requests", "sessions")
    }
    run_scenario("diverse", database_url=new_database)
    after = {
        t: q(new_database, f"SELECT * FROM {t} ORDER BY id")
        for t in ("mechanics", "session_requests", "sessions")
    }
    assert before == after
    assert one(new_database, "SELECT count(*) FROM seeding.runs") == 1
    assert one(new_database, "SELECT count(*) FROM seeding.ledger") == sum(
        one(new_database, f"SELECT count(*) FROM {t}") for t in
        ("organizations", "profiles", "mechanics", "vehicles", "sessions",
         "session_assignments", "session_requests"))


def test_another_seed_gives_other_rows(make_database) -> None:  # type: ignore[no-untyped-def]
    first, second = make_database(), make_database()
    run_scenario("diverse", database_url=first)
    run_scenario("diverse", database_url=second, seed=7)
    def ids(url: str) -> set[object]:
        return {r[0] for r in q(url, "SELECT id FROM session_requests")}

    assert ids(first).isdisjoint(ids(second))


def test_scale_multiplies_counts_and_keeps_quotas(new_database: str) -> None:
    run_scenario("diverse", database_url=new_database, scale=2)
    # Steps with explicit per-row lists keep their rows (25 of baseline's); counted and mixed
    # steps double (baseline's 18, diverse's 100).
    assert one(new_database, "SELECT count(*) FROM session_requests") == 25 + 2 * 18 + 2 * 100
    assert one(
        new_database, "SELECT count(*) FROM session_requests WHERE status = 'accepted'"
    ) == 20


def test_report_targets_exit_1_on_baseline_and_0_after_diverse(new_database: str) -> None:
    assert runner.invoke(app, ["scenario", "baseline", "--db", new_database]).exit_code == 0
    missed = runner.invoke(app, ["report", "--db", new_database, "--scenario", "diverse"])
    assert missed.exit_code == 1
    seeded = runner.invoke(app, ["scenario", "diverse", "--db", new_database])
    assert seeded.exit_code == 0, seeded.output
    assert "MISS" not in seeded.output
    met = runner.invoke(
        app, ["report", "--db", new_database, "--scenario", "diverse", "--format", "json"]
    )
    assert met.exit_code == 0
    import json

    figures = json.loads(met.output)
    assert figures["session_requests"]["total"] == 143
    assert all(t["met"] for t in figures["targets"])
    # A priority broadcast is a 'broadcast' row, counted apart; the column holds no other name.
    requests = figures["session_requests"]
    assert set(requests["by_routing_type"]) == {"broadcast", "workshop_only", "hybrid"}
    assert requests["priority_broadcasts"] == 10
    assert one(new_database, """
        SELECT count(*) FROM session_requests r JOIN sessions s ON s.id = r.session_id
        WHERE s.metadata ->> 'routing_type' = 'priority_broadcast'
          AND r.routing_type = 'broadcast' AND r.preferred_mechanic_id IS NOT NULL""") == 7
    # One open session per customer.
    assert one(new_database, """
        SELECT max(n) FROM (SELECT count(*) AS n FROM sessions
        WHERE status IN ('pending', 'waiting', 'live', 'scheduled') GROUP BY customer_user_id) t
        """) == 1


def test_report_on_a_database_without_the_table_exits_2_naming_it(new_database: str) -> None:
    result = runner.invoke(app, ["report", "--db", new_database])
    assert result.exit_code == 2
    assert result.output.startswith("error: ")
    assert "session_requests" in result.output or "organizations" in result.output
