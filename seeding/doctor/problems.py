"""What doctor finds (a problem or a note), the keys it checks and the types it accepts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from seeding.db import admit
from seeding.db.identifiers import shown
from seeding.scenario.kinds import KINDS, Kind

#: What is found, one word per kind.
ProblemKind = Literal[
    "missing_table",
    "missing_column",
    "generated_column",
    "type_mismatch",
    "not_null_unfilled",
    "check_narrower",
    "missing_foreign_key",
    "foreign_key_elsewhere",
    "auth_null_tokens",
    "trigger",
]


#: A problem makes the schema incompatible (exit 1); a note is shown only (exit 0).
Severity = Literal["problem", "note"]


#: The schema the app's tables live in.
SCHEMA: Final = "public"


#: Supabase's auth schema: read, never written.
AUTH_SCHEMA: Final = "auth"


#: Called with each statement just before :func:`apply_fixes` runs it.
BeforeStatement = Callable[[str], None]


@dataclass(frozen=True)
class Problem:
    """One finding: a difference between the live schema and what the tool writes, or a note."""

    #: The table (``auth.users`` for Supabase's users table).
    table: str
    #: The column concerned (its live name); None for a whole table.
    column: str | None
    kind: ProblemKind
    #: One line: where, what, the value found, and the fix.
    message: str
    #: SQL that fixes it, shown to a person (several statements on several lines).
    fix_sql: str | None = None
    #: ``problem`` (the schema is incompatible) or ``note`` (shown only).
    severity: Severity = "problem"
    #: The statements ``--apply`` runs for it, in order; empty when it runs none.
    apply_sql: tuple[str, ...] = ()

    @property
    def is_problem(self) -> bool:
        """Return whether it makes the schema incompatible (``severity == 'problem'``)."""
        return self.severity == "problem"


@dataclass(frozen=True)
class ForeignKeyNeed:
    """A foreign key the tool's schema declares, or one the app's embedded joins rely on."""

    table: str
    column: str
    referred_table: str
    referred_column: str
    #: Whether ``seeding.domain.schema`` leaves it out on purpose (an embedded join's key).
    embedded_join: bool = False

    @property
    def name(self) -> str:
        """Return the name PostgreSQL (and the app's embed hints) give it."""
        return f"{self.table}_{self.column}_fkey"


#: Foreign keys the embedded joins need that ``seeding.domain.schema`` leaves out on purpose.
UNDECLARED_FOREIGN_KEYS: Final = tuple(
    ForeignKeyNeed(kind.table, ref.column, ref.table, ref.target_column, embedded_join=True)
    for kind in KINDS.values()
    for ref in kind.undeclared_references
    if ref.embedded_join
)


#: Live types accepted for an expected one besides itself (see :mod:`seeding.doctor`).
COMPATIBLE_TYPES: Final[dict[str, frozenset[str]]] = {
    "text[]": frozenset({"character varying[]"}),
    "jsonb": frozenset({"json"}),
    "integer": frozenset({"bigint", "numeric"}),
    "double precision": frozenset({"numeric"}),
    "numeric": frozenset({"double precision"}),
}


#: Each kind by its table's name.
KIND_OF_TABLE: Final[Mapping[str, Kind]] = {kind.table: kind for kind in KINDS.values()}


def app_table(name: str) -> str:
    """Return an app table's name as shown in a message (``public.<name>``)."""
    return shown(SCHEMA, name)


def listing(values: Iterable[str]) -> str:
    """Return values as a list of SQL literals, for a message or a statement."""
    return ", ".join(admit.literal(value) for value in values)
