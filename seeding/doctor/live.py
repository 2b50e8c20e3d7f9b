"""Doctor on what lives beside the tables: auth users that break sign-in, and triggers."""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from seeding.db.auth import TOKEN_COLUMNS
from seeding.db.catalog import Catalog, Table, Trigger
from seeding.db.database import describe
from seeding.db.identifiers import quote, shown
from seeding.doctor.problems import AUTH_SCHEMA, SCHEMA, Problem
from seeding.domain.schema import APP_TABLES
from seeding.scenario.kinds import KINDS


def auth_token_problems(connection: Connection, catalog: Catalog) -> list[Problem]:
    """Count the auth users with NULL in a token column: each breaks every sign-in."""
    users = catalog.table("users", AUTH_SCHEMA)
    if users is None:
        return []
    columns = [name for name in TOKEN_COLUMNS if name in users.columns]
    if not columns:
        return []
    where = " OR ".join(f"{quote(name)} IS NULL" for name in columns)
    try:
        with connection.begin_nested():
            count = connection.execute(
                sa.text(f"SELECT count(*) FROM {quote(AUTH_SCHEMA, 'users')} WHERE {where}")
            ).scalar_one()
    except sa_exc.DBAPIError as error:
        return [
            Problem(
                "auth.users",
                None,
                "auth_null_tokens",
                f"auth.users: could not count the users with NULL token columns "
                f"({describe(error)}); a NULL there fails every sign-in",
                severity="note",
            )
        ]
    if not count:
        return []
    shown_where = " OR ".join(f"{shown(name)} IS NULL" for name in columns)
    sets = ", ".join(f"{shown(name)} = coalesce({shown(name)}, '')" for name in columns)
    statement = f"UPDATE {shown(AUTH_SCHEMA, 'users')} SET {sets} WHERE {shown_where};"
    users_text = "user has" if count == 1 else "users have"
    return [
        Problem(
            "auth.users",
            None,
            "auth_null_tokens",
            f"auth.users: {count} {users_text} NULL in a token column ({', '.join(columns)}); "
            "the sign-in server fails every sign-in while one does ('Database error querying "
            "schema'); fix: run the UPDATE yourself (doctor never writes to auth)",
            statement,
        )
    ]


def trigger_notes(catalog: Catalog, live_tables: Mapping[str, Table]) -> list[Problem]:
    """Note each trigger on the seeded tables and on auth.users, and what the tool does."""
    users = catalog.table("users", AUTH_SCHEMA)
    upserted = {
        kind.table for kind in KINDS.values() if kind.auth_user == "id" and users is not None
    }
    tables: list[Table] = [live_tables[t.name] for t in APP_TABLES if t.name in live_tables]
    if users is not None:
        tables.append(users)
    notes: list[Problem] = []
    for table in tables:
        name = table.name if table.schema == SCHEMA else table.qualified_name
        for trigger in table.triggers:
            what = _trigger_effect(table, trigger, upserted, recorded=users is not None)
            notes.append(
                Problem(
                    name,
                    None,
                    "trigger",
                    f"{name}: trigger {trigger.name} ({_trigger_timing(trigger)}, "
                    f"{trigger.function}): {what}",
                    severity="note",
                )
            )
    return notes


def _trigger_timing(trigger: Trigger) -> str:
    events = " OR ".join(
        f"UPDATE OF {', '.join(trigger.update_columns)}"
        if event == "UPDATE" and trigger.update_columns else event
        for event in trigger.events
    )
    row = "FOR EACH ROW" if trigger.for_each_row else "FOR EACH STATEMENT"
    disabled = "" if trigger.enabled else ", disabled"
    return f"{trigger.timing} {events} {row}{disabled}"


def _trigger_effect(
    table: Table, trigger: Trigger, upserted: set[str], *, recorded: bool
) -> str:
    """Say what a run and a reset do about a trigger (``recorded``: its rows go to the ledger).

    On Supabase (an ``auth`` schema) a run records the rows the app's triggers make that
    point at its rows by a foreign key (:func:`seeding.runner._app_made`); elsewhere it does not.
    """
    made = (
        "rows it makes that point at the run's rows by a foreign key are recorded in the "
        "run's ledger and reset with it"
        if recorded else "rows it makes are not the run's: `seed reset` leaves them"
    )
    if not trigger.enabled:
        return "disabled: it fires neither on a run nor on a reset"
    auth = table.schema == AUTH_SCHEMA
    each = "for each row" if trigger.for_each_row else "once for each table"
    parts: list[str] = []
    if "INSERT" in trigger.events:
        if auth:
            parts.append(
                f"fires for each seeded person's auth user; {made}"
                + (
                    f"; where it makes the person's {', '.join(sorted(upserted))} row, the run "
                    "writes its full row over it (INSERT ... ON CONFLICT (id) DO UPDATE)"
                    if upserted else ""
                )
            )
        elif trigger.timing == "BEFORE":
            parts.append(
                f"fires {each} the run writes and may change or refuse its values: "
                "what it stores wins over the scenario's"
            )
        else:
            parts.append(
                f"fires {each} the run writes; {made}"
            )
    if "UPDATE" in trigger.events:
        if table.schema == SCHEMA and table.name in upserted:
            parts.append(
                "fires when the run writes a row over the one the auth trigger made"
            )
        elif "INSERT" not in trigger.events:
            parts.append(
                "the run only inserts: it fires when the app updates the rows later"
                if not auth else "the run never updates auth users: it does not fire"
            )
    if "DELETE" in trigger.events:
        parts.append("fires when `seed reset` deletes the run's rows")
    if trigger.events == ("TRUNCATE",):
        parts.append("the tool never truncates: it does not fire")
    return "; ".join(parts)
