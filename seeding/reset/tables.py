"""The tables a reset reads and deletes from: their schemas, their names, their live columns."""

from __future__ import annotations

from typing import Final

from seeding.db import ledger
from seeding.db.catalog import Catalog

#: The schema of the app's tables.
APP_SCHEMA: Final = "public"

#: Supabase's schema of auth users, whose rows a run on Supabase records.
AUTH_SCHEMA: Final = "auth"

#: The kinds of live relation that hold the app's rows (a view holds none).
_TABLE_KINDS: Final = ("table", "partitioned table")


def live_columns(catalog: Catalog) -> dict[str, dict[str, str]]:
    """Return the app's and Supabase's auth tables as the ledger names them, with column types."""
    return {
        ledger_name(table.schema, table.name): {
            column.name: column.base_type for column in table.columns.values()
        }
        for table in catalog.tables.values()
        if table.schema in (APP_SCHEMA, AUTH_SCHEMA) and table.kind in _TABLE_KINDS
    }


#: A table's name as the ledger writes it (``auth.users``; ``profiles``).
ledger_name = ledger.table_name


def app_table(name: str) -> str:
    """Return a table the ledger names (``profiles``, ``auth.users``), quoted for SQL text."""
    return ledger.relation(name)
