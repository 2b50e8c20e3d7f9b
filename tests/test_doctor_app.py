"""``seed db doctor`` on databases shaped like the app's real Supabase one, and on the tool's own.

What the app allows is a fact of its schema (the team's shared app-schema.md, built by
tests/app_shape.sql); what the tool writes is derived from the model and the registry, so that
these tests follow the vocabularies when they change.
"""

from __future__ import annotations

from typing import Any

import psycopg
import sqlalchemy as sa
from typer.testing import CliRunner

from seeding import doctor
from seeding.cli import app
from seeding.db import database
from seeding.doctor import Problem
from seeding.domain import vocabularies
from seeding.scenario.kinds import KINDS

runner = CliRunner()

#: The labels of the migrations' ``session_request_status`` enum.
APP_REQUEST_STATUSES = ("pending", "accepted", "cancelled")

#: The migrations' list CHECKs on the columns the tool writes (app-schema.md §2).
APP_CHECKS: dict[tuple[str, str], tuple[str, ...]] = {
    ("organizations", "organization_type"): ("corporate", "workshop"),
    ("organizations", "status"): ("pending", "active", "suspended", "closed"),
    ("organizations", "verification_status"): ("unverified", "pending", "verified", "rejected"),
    ("profiles", "account_type"): (
        "individual_customer", "corporate_customer", "workshop_customer"
    ),
    ("mechanics", "account_type"): ("individual_mechanic", "workshop_mechanic"),
    ("mechanics", "application_status"): (
        "draft", "pending", "under_review", "approved", "rejected", "additional_info_required"
    ),
    ("mechanics", "service_tier"): ("virtual_only", "workshop_partner", "licensed_mobile"),
    ("mechanics", "participation_mode"): ("micro_only", "full_only", "both"),
    ("mechanics", "specialist_tier"): ("general", "brand", "master"),
    ("session_requests", "follow_up_type"): ("continuation", "re-diagnosis", "additional_work"),
    ("session_requests", "routing_type"): ("workshop_only", "broadcast", "hybrid"),
    ("session_requests", "request_type"): ("general", "brand_specialist"),
}


def _tool_writes(table: str, column: str) -> tuple[str, ...]:
    [kind] = [kind for kind in KINDS.values() if kind.table == table]
    model_table = kind.model.__table__
    assert isinstance(model_table, sa.Table)
    return doctor.written_values(kind, model_table.columns[column]) or ()


def _check_gaps() -> dict[tuple[str, str], list[str]]:
    """Return, per CHECKed column, the values the tool may write that the app's CHECK lacks."""
    gaps = {
        where: [value for value in _tool_writes(*where) if value not in allowed]
        for where, allowed in APP_CHECKS.items()
    }
    return {where: lacking for where, lacking in gaps.items() if lacking}


def _seed(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def _diagnose(url: str) -> list[Problem]:
    engine = database.engine_for(url)
    try:
        with engine.connect() as connection:
            return doctor.diagnose(connection)
    finally:
        engine.dispose()


def _rows(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as connection:
        return connection.execute(query.encode(), params or None).fetchall()


def _keys(url: str) -> set[tuple[str, str, str, tuple[str, ...], str]]:
    """Return every foreign key: schema, table, name, columns, definition."""
    rows = _rows(
        url,
        """
        SELECT n.nspname::text, t.relname::text, c.conname::text,
               ARRAY(SELECT a.attname::text FROM unnest(c.conkey) k
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k),
               pg_get_constraintdef(c.oid)
        FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace WHERE c.contype = 'f'
        """,
    )
    return {(s, t, name, tuple(columns), d) for s, t, name, columns, d in rows}


def _auth_schema(url: str) -> list[tuple[Any, ...]]:
    """Return schema auth's columns, constraints, indexes and triggers, and its row counts."""
    return _rows(
        url,
        """
        SELECT 'column', c.relname::text, a.attname::text,
               format_type(a.atttypid, a.atttypmod), a.attnotnull::text,
               coalesce(pg_get_expr(d.adbin, d.adrelid), '')
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = 'auth' AND a.attnum > 0 AND NOT a.attisdropped
        UNION ALL
        SELECT 'constraint', t.relname::text, c.conname::text, pg_get_constraintdef(c.oid),
               c.convalidated::text, ''
        FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'auth'
        UNION ALL
        SELECT 'index', t.relname::text, i.relname::text, pg_get_indexdef(i.oid), '', ''
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = 'auth'
        UNION ALL
        SELECT 'trigger', t.relname::text, g.tgname::text, pg_get_triggerdef(g.oid),
               g.tgenabled::text, ''
        FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'auth'
        UNION ALL
        SELECT 'rows', 'users', (SELECT count(*) FROM auth.users)::text, '', '', ''
        ORDER BY 1, 2, 3, 4
        """,
    )


def _triggers(url: str) -> set[tuple[str, str]]:
    """Return (table as doctor names it, trigger) for the seeded tables and auth.users."""
    tables = [kind.table for kind in KINDS.values()]
    rows = _rows(
        url,
        """
        SELECT CASE WHEN n.nspname = 'public' THEN t.relname::text
                    ELSE n.nspname || '.' || t.relname END, g.tgname::text
        FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE NOT g.tgisinternal
          AND ((n.nspname = 'public' AND t.relname = ANY(%s))
               OR (n.nspname = 'auth' AND t.relname = 'users'))
        """,
        tables,
    )
    return {(table, name) for table, name in rows}


def _where(found: list[Problem]) -> set[tuple[str, str, str | None]]:
    return {(p.kind, p.table, p.column) for p in found}


def test_doctor_lists_the_app_s_real_gaps_and_no_false_ones(app_db: str) -> None:
    code, output = _seed("db", "doctor", "--db", app_db)

    assert code == 1, output
    found = _diagnose(app_db)
    problems, notes = doctor.problems_in(found), doctor.notes_in(found)
    gaps = _check_gaps()
    assert _where(problems) == {("check_narrower", "session_requests", "status")} | {
        ("check_narrower", table, column) for table, column in gaps
    }
    # The request status enum lacks what the tool writes: 'completed' and 'expired' among them.
    [status] = [p for p in problems if p.column == "status"]
    lacking = [s for s in vocabularies.REQUEST_STATUSES if s not in APP_REQUEST_STATUSES]
    assert {"completed", "expired"} <= set(lacking)
    assert status.message == (
        "session_requests.status: enum session_request_status lacks "
        f"{', '.join(repr(s) for s in lacking)}, which the tool may write; fix: "
        "`seed db doctor --apply` adds the labels"
    )
    assert status.apply_sql == tuple(
        f"ALTER TYPE public.session_request_status ADD VALUE IF NOT EXISTS '{s}';"
        for s in lacking
    )
    for (table, column), values in gaps.items():
        [check] = [p for p in problems if (p.table, p.column) == (table, column)]
        assert f"{table}.{column}: CHECK {table}_{column}_check lacks " in check.message
        assert f"lacks {', '.join(repr(v) for v in values)}, which" in check.message
        allowed = ", ".join(f"'{v}'" for v in (*APP_CHECKS[table, column], *values))
        assert check.apply_sql == (
            f"ALTER TABLE public.{table} DROP CONSTRAINT {table}_{column}_check, "
            f"ADD CONSTRAINT {table}_{column}_check CHECK ({column} IN ({allowed}));",
        )
    for problem in problems:
        assert f"- {problem.message}\n" in output
        for line in (problem.fix_sql or "").splitlines():
            assert f"    {line}\n" in output

    # No problem with the keys the app has its own way: vehicles.user_id (the tool's
    # customer_id), sessions.mechanic_id and session_requests.customer_id to auth.users.
    assert not [p for p in problems if p.kind.endswith("foreign_key") or p.table == "vehicles"]
    keyed = {(p.kind, p.table, p.column, p.severity) for p in found if "foreign_key" in p.kind}
    assert keyed == {
        ("foreign_key_elsewhere", "sessions", "mechanic_id", "note"),
        ("foreign_key_elsewhere", "session_requests", "customer_id", "note"),
    }
    assert not [p for p in found if p.table == "vehicles" and p.column is not None]
    # Every trigger on the seeded tables and on auth.users is a note, with what the tool does.
    triggers = {
        (p.table, p.message.split(": trigger ")[1].split(" ")[0])
        for p in notes if p.kind == "trigger"
    }
    assert triggers == _triggers(app_db)
    [created] = [p for p in notes if "trigger on_auth_user_created " in p.message]
    assert created.message.startswith(
        "auth.users: trigger on_auth_user_created (AFTER INSERT FOR EACH ROW, "
        "public.handle_new_user): fires for each seeded person's auth user"
    )
    assert "the run writes its full row over it" in created.message
    # Columns the app lacks are notes: not written.
    absent = {(p.table, p.column) for p in notes if p.kind == "missing_column"}
    assert ("mechanics", "is_online") in absent
    assert f"{len(notes)} notes:\n" in output


def test_apply_closes_the_gaps_and_adds_no_key(app_db: str) -> None:
    keys, auth = _keys(app_db), _auth_schema(app_db)
    statements = [s for p in doctor.problems_in(_diagnose(app_db)) for s in p.apply_sql]

    code, output = _seed("db", "doctor", "--apply", "--db", app_db)

    assert code == 0, output
    applying = [line for line in output.splitlines() if line.startswith("applying: ")]
    assert applying == [f"applying: {statement}" for statement in statements]
    assert "compatible: " in output
    # Every column the tool needs a key on had one: nothing added, nothing changed; above
    # all, sessions.mechanic_id keeps its one key, to auth.users.
    assert _keys(app_db) == keys
    assert [d for _, table, _, columns, d in keys
            if (table, columns) == ("sessions", ("mechanic_id",))] == [
        "FOREIGN KEY (mechanic_id) REFERENCES auth.users(id) ON DELETE SET NULL"
    ]
    assert _auth_schema(app_db) == auth
    labels = _rows(app_db, "SELECT unnest(enum_range(NULL::session_request_status))::text")
    assert {label for (label,) in labels} == set(vocabularies.REQUEST_STATUSES)

    code, output = _seed("db", "doctor", "--db", app_db)
    assert code == 0, output
    assert "problem" not in output.split("notes:")[0]


def test_apply_adds_keys_only_on_columns_that_have_none(app_db: str) -> None:
    with psycopg.connect(app_db) as connection:
        connection.execute(
            b"ALTER TABLE session_requests DROP CONSTRAINT session_requests_mechanic_id_fkey;"
            b"ALTER TABLE sessions DROP CONSTRAINT sessions_workshop_id_fkey"
        )
    before, auth = _keys(app_db), _auth_schema(app_db)

    code, output = _seed("db", "doctor", "--apply", "--db", app_db)

    assert code == 0, output
    after = _keys(app_db)
    assert before <= after
    added = after - before
    assert {(k[0], k[1], k[3]) for k in added} == {
        ("public", "session_requests", ("mechanic_id",)),
        ("public", "sessions", ("workshop_id",)),
    }
    keyed_before = {(k[0], k[1], column) for k in before for column in k[3]}
    assert not {(k[0], k[1], column) for k in added for column in k[3]} & keyed_before
    assert all(k[4].endswith("NOT VALID") for k in added)
    assert _auth_schema(app_db) == auth


def test_a_run_after_apply_writes_the_new_values_and_assigns_sessions(app_db: str) -> None:
    code, output = _seed("scenario", "baseline", "--db", app_db)
    assert code == 2
    assert "'completed'" in output and "seed db doctor --apply" in output

    code, output = _seed("db", "doctor", "--apply", "--db", app_db)
    assert code == 0, output
    # The labels are committed: the next run, in its own transaction, writes them.
    code, output = _seed("scenario", "baseline", "--db", app_db)
    assert code == 0, output

    [(completed, assigned)] = _rows(
        app_db,
        "SELECT (SELECT count(*) FROM session_requests WHERE status = 'completed'), "
        "(SELECT count(*) FROM sessions WHERE mechanic_id IS NOT NULL)",
    )
    assert completed > 0 and assigned > 0
    # The tool's own auth users trip nothing.
    code, output = _seed("db", "doctor", "--db", app_db)
    assert code == 0, output


def test_null_auth_tokens_are_a_problem_doctor_never_fixes(app_db: str) -> None:
    _seed("db", "doctor", "--apply", "--db", app_db)
    with psycopg.connect(app_db) as connection:
        connection.execute(
            b"INSERT INTO auth.users (instance_id, id, aud, role, email) VALUES "
            b"('00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', "
            b"'authenticated', 'tester@example.com')"
        )
    auth = _auth_schema(app_db)

    code, output = _seed("db", "doctor", "--apply", "--db", app_db)

    assert code == 1, output
    assert "applying: " not in output
    assert _auth_schema(app_db) == auth
    [problem] = doctor.problems_in(_diagnose(app_db))
    assert (problem.kind, problem.table, problem.apply_sql) == (
        "auth_null_tokens", "auth.users", ()
    )
    assert problem.message.startswith(
        "auth.users: 1 user has NULL in a token column (confirmation_token, recovery_token, "
    )
    assert "doctor never writes to auth" in problem.message
    assert problem.fix_sql is not None and problem.fix_sql.startswith("UPDATE auth.users SET ")
    assert f"    {problem.fix_sql}\n" in output

    with psycopg.connect(app_db) as connection:
        connection.execute(problem.fix_sql.encode())
    code, output = _seed("db", "doctor", "--db", app_db)
    assert code == 0, output


def test_the_live_shape_lacks_only_the_check_values(app_db_live: str) -> None:
    found = _diagnose(app_db_live)

    assert _where(doctor.problems_in(found)) == {
        ("check_narrower", table, column) for table, column in _check_gaps()
    }
    # sessions.mechanic_id points at mechanics(id) there: nothing to say about it.
    assert not [p for p in found if (p.table, p.column) == ("sessions", "mechanic_id")]
    assert {(p.table, p.column) for p in found if "foreign_key" in p.kind} == {
        ("session_requests", "customer_id")
    }
    keys = _keys(app_db_live)
    code, output = _seed("db", "doctor", "--apply", "--db", app_db_live)
    assert code == 0, output
    assert _keys(app_db_live) == keys


def test_the_tool_s_own_schema_is_compatible_with_a_note(pg_url: str) -> None:
    keys = _keys(pg_url)

    code, output = _seed("db", "doctor", "--db", pg_url)

    assert code == 0, output
    [note] = _diagnose(pg_url)
    assert (note.severity, note.kind, note.table, note.column) == (
        "note", "missing_foreign_key", "session_requests", "customer_id"
    )
    assert f"1 note:\n- {note.message}\n" in output
    assert output.endswith(
        "compatible: every table, column, vocabulary and foreign key the tool needs is there "
        "(notes above: deliberate or harmless differences)\n"
    )
    code, output = _seed("db", "doctor", "--apply", "--db", pg_url)
    assert code == 0, output
    assert "applying: " not in output
    assert _keys(pg_url) == keys

