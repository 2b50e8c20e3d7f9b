"""The schema doctor: what a live database lacks for the rows this tool writes, and notes.

:func:`diagnose` reads the live catalog (``public`` and Supabase's ``auth``) and checks, at the
schema level, what a run's preflight (:mod:`seeding.db.fit`) checks on a run's rows: for each
kind's table (:data:`seeding.scenario.kinds.KINDS`) and each column the tool writes, under its
own name or one of the registry's ``live_names``. Every finding is a :class:`Problem` with a
``severity``: a **problem** makes the schema incompatible (``seed db doctor`` exits 1); a
**note** is a deliberate or harmless difference, shown and exit 0.

Problems:

- a table the tool writes is missing (``seed db create`` on a database the tool owns; the
  app's migrations on the app's own);
- a live type the tool's values cannot be written as (see *Types* below);
- a value the tool may write that the live enum or a one-column list CHECK refuses; the
  values the tool may write in a column are the model's vocabulary (:func:`vocabulary`: its
  enum, or its ``IN (...)`` CHECK), else the registry's vocabulary for that field
  (``Kind.vocabularies``). The model's list bounds the registry's: a value outside it is
  never stored (``routing_type='priority_broadcast'`` is stored as ``'broadcast'``);
- a NOT NULL live column without a default, identity or generated value that the tool does
  not write: every insert would fail;
- a foreign key the tool's schema declares, or an embedded join needs, on a column that has
  none at all (see *Foreign keys*), or a key that points where the tool's values cannot go;
- auth users with NULL in a token column (:data:`seeding.db.auth.TOKEN_COLUMNS`): the sign-in
  server fails every sign-in while one exists. Its ``UPDATE`` is printed, never run: doctor
  never writes to ``auth``.

Notes: a column the database lacks (not written, as a run leaves it out); a column the
database generates; a key that points at ``auth.users`` where the tool's schema points at a
person's table (a run writes the person's auth id there, as :mod:`seeding.db.fit` does); the
embedded-join key the tool's own schema leaves out on purpose; each trigger on the seeded
tables and on ``auth.users``, with what the tool does about it.

Foreign keys (the rule): a key is needed where :mod:`seeding.domain.schema` declares one, and on the
columns the registry marks ``embedded_join`` (``session_requests.customer_id → profiles(id)``,
which PostgREST's ``profiles!session_requests_customer_id_fkey`` needs). A need is met by a
key with that column and target, whatever its name. A column that already has a key, to
any table, never gets another: the app's ``sessions.mechanic_id → auth.users`` and
``session_requests.customer_id → auth.users`` are kept as they are (a second key to
``mechanics`` would refuse every assignment), and are notes. A column with no key at all
gets one (``NOT VALID``: existing orphan rows do not block it, new rows are checked), except
the embedded-join key on the tool's own schema (a database without an ``auth`` schema, as
``seed db create`` makes it): there the difference is deliberate, a note, and ``--apply``
leaves it. When the usual name is taken the fix uses ``<table>_<column>_<target>_fkey``.

``--apply`` (:func:`apply_fixes`) makes only additive changes the app's rows and code cannot
notice: it adds enum labels (``ALTER TYPE ... ADD VALUE IF NOT EXISTS``), widens a list CHECK
to the union of what it allows and what the tool writes (dropped and re-added by its exact
name in one ``ALTER TABLE``; ``NOT VALID`` only if it was), and adds a missing foreign key on
a column that has none. Nothing in ``auth`` is touched; types, columns and NOT NULL are the
app's migrations to change. :func:`check_database` runs the fixes in one transaction and
commits before returning, so a run that follows may use the new labels (PostgreSQL 12+
allows ``ADD VALUE`` in a transaction, but not the new label in that same transaction; the
catalog reader needs 12+ anyway).

Types are compared by their PostgreSQL names without modifiers. A text live column
(``text``, ``character varying``, ``character``) takes any of the tool's values (a run writes
their text, as :mod:`seeding.db.fit` does: ``vehicles.year`` is text in the app); a column with
a vocabulary may be any enum; otherwise the types must match or be one of
:data:`COMPATIBLE_TYPES`.
"""

from seeding.doctor.check import (
    Diagnosis,
    apply_fixes,
    check_database,
    diagnose,
    notes_in,
    problems_in,
)
from seeding.doctor.columns import allowed_values, vocabulary, written_values
from seeding.doctor.keys import foreign_key_needs
from seeding.doctor.problems import (
    AUTH_SCHEMA,
    COMPATIBLE_TYPES,
    SCHEMA,
    UNDECLARED_FOREIGN_KEYS,
    BeforeStatement,
    ForeignKeyNeed,
    Problem,
    ProblemKind,
    Severity,
)

__all__ = [
    "AUTH_SCHEMA",
    "COMPATIBLE_TYPES",
    "SCHEMA",
    "UNDECLARED_FOREIGN_KEYS",
    "BeforeStatement",
    "Diagnosis",
    "ForeignKeyNeed",
    "Problem",
    "ProblemKind",
    "Severity",
    "allowed_values",
    "apply_fixes",
    "check_database",
    "diagnose",
    "foreign_key_needs",
    "notes_in",
    "problems_in",
    "vocabulary",
    "written_values",
]
