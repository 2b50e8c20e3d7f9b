"""Building the report: the SQL that measures a database, run in the database, read-only.

Every number is an aggregate computed by PostgreSQL (``count``, ``GROUP BY``, ``FILTER``);
only aggregates and a few bounded lists (``LIMIT``) come back, so a million requests take
seconds. A missing table, a refused permission or a lost connection raises; it is never
reported as zeros.

The report reads the live catalog once (:func:`check_schema`) and runs on any database with
the app's tables: the app's real one too, whose columns differ from this tool's schema. Each
metric declares the columns it reads (:data:`METRIC_COLUMNS`), each integrity rule too
(:attr:`seeding.domain.integrity.Rule.columns`); those that need a column the database lacks are
reported as not available, or skipped, never as a number (:mod:`seeding.report.shape`).
"""


from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import partial

import sqlalchemy as sa
from psycopg import errors as pg_errors
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from seeding.db.catalog import read_catalog
from seeding.db.database import WORK_MEM, describe
from seeding.domain import integrity
from seeding.errors import DatabaseError, SchemaError
from seeding.report import lanes
from seeding.report.figures import (
    assignment_stats,
    customer_profiles,
    customer_stats,
    mechanic_profiles,
    mechanic_stats,
    parties,
    request_figures,
    request_times,
    sample_requests,
    session_stats,
    workshop_stats,
)

# What each metric reads lived here until metrics.py: still exported.
from seeding.report.metrics import CUSTOMER_GEO_COLUMNS as CUSTOMER_GEO_COLUMNS
from seeding.report.metrics import MECHANIC_PROFILE_FIELDS as MECHANIC_PROFILE_FIELDS
from seeding.report.metrics import METRIC_COLUMNS as METRIC_COLUMNS
from seeding.report.metrics import OPTIONAL_COLUMNS as OPTIONAL_COLUMNS
from seeding.report.metrics import SQL_MECHANIC_COMPLETE as SQL_MECHANIC_COMPLETE
from seeding.report.metrics import unavailable_metrics
from seeding.report.model import (
    NO_ASSIGNMENTS,
    IntegrityResult,
    Report,
    RequestStats,
    SkippedRule,
)
from seeding.report.shape import CORE_TABLES, SCHEMA, Shape, shape_of
from seeding.scenario.targets import Target


def build_report(
    connection: Connection,
    *,
    now: datetime | None = None,
    sample: int = 10,
    top: int = 20,
    targets: Sequence[Target] = (),
    run: uuid.UUID | None = None,
) -> Report:
    """Measure a database with the app's tables; read only.

    Args:
        connection: A connection to the database; the report runs its queries on it and
            writes nothing. For one consistent snapshot, open it with
            ``isolation_level="REPEATABLE READ"``; such a connection that has written nothing
            also lets the report run its queries on a second connection that reads the same
            snapshot (:mod:`seeding.report.lanes`). The report raises ``work_mem`` for the
            connection's transaction (:data:`seeding.db.database.WORK_MEM`), so its joins stay
            in memory, and with two connections turns off parallel workers, both with
            ``SET LOCAL``.
        now: The instant the integrity rules take as now; by default the database's ``now()``.
        sample: How many requests to list, the first ones by ``created_at``.
        top: How many customers, mechanics and incomplete mechanics to list one by one (the
            counts always cover all of them).
        targets: Conditions to check the report against (see :mod:`seeding.scenario.targets`).
        run: Measure only the rows this run wrote (by the ledger); None: every row.

    Raises:
        SchemaError: When a table the report needs is missing; the message names it. A
            missing column is no error: the metrics that need it are reported as not
            available (:attr:`Report.unavailable`), the rules that need it as skipped
            (:attr:`Report.skipped_rules`).
        DatabaseError: When a query fails: a refused permission, a lost connection.

    """
    with translated_errors():
        shape = check_schema(connection)
        if run is not None:
            shape = dataclasses.replace(shape, run=run)
        unavailable = unavailable_metrics(shape)
        skipped = integrity.skipped_rules(shape)
        passes = [
            tuple(name for name in names if name not in skipped)
            for names in integrity.REQUEST_PASSES
        ]
        if now is None:
            now = connection.execute(sa.text("SELECT now()")).scalar_one()
        top = max(int(top), 0)
        # The longest first (as measured on a million requests: 1.1, 0.95, 0.75, 0.45, then
        # 0.2 s and less), so that the lanes end at about the same time.
        jobs: dict[str, lanes.Job] = {
            **{
                f"requests {index}": partial(
                    integrity.check_requests, now=now, rules=rules, reader=shape
                )
                for index, rules in enumerate(passes)
                if rules
            },
            "parties": partial(parties, shape=shape, top=top),
            "request figures": partial(request_figures, shape=shape),
            "sessions": partial(session_stats, shape=shape),
            **(
                {}
                if "session_assignments.total" in unavailable
                else {"session assignments": partial(assignment_stats, shape=shape)}
            ),
            "sample": partial(sample_requests, shape=shape, sample=max(int(sample), 0)),
            "request times": partial(request_times, shape=shape),
            **{
                rule: partial(integrity.check_tables, now=now, rules=(rule,), reader=shape)
                for rule in integrity.TABLE_RULES
                if rule not in skipped
            },
            "mechanic profiles": partial(mechanic_profiles, shape=shape, top=top),
            "customer profiles": partial(customer_profiles, shape=shape),
            "workshops": partial(workshop_stats, shape=shape),
        }
        with lanes.opened(connection, {"work_mem": WORK_MEM}) as connections:
            done = lanes.run(jobs, connections)
        customer_parties, mechanic_parties = done["parties"]
        figures: RequestStats = done["request figures"]
        requests = dataclasses.replace(
            figures,
            sample=done["sample"],
            **done["request times"],
            without_customer_profile=figures.without_customer_profile
            + customer_parties.requests_without_profile,
        )
        found = integrity.in_rule_order(
            *(done[f"requests {index}"] for index, rules in enumerate(passes) if rules),
            *(done[rule] for rule in integrity.TABLE_RULES if rule not in skipped),
            skipped=skipped,
        )
        report = Report(
            now=now,
            session_requests=requests,
            customers=customer_stats(done["customer profiles"], customer_parties),
            mechanics=mechanic_stats(done["mechanic profiles"], mechanic_parties),
            workshops=done["workshops"],
            sessions=done["sessions"],
            session_assignments=done.get("session assignments", NO_ASSIGNMENTS),
            integrity=tuple(
                IntegrityResult(v.rule, v.count, tuple(str(i) for i in v.sample)) for v in found
            ),
            unavailable=unavailable,
            skipped_rules=tuple(SkippedRule(rule, missing) for rule, missing in skipped.items()),
        )
    return report.with_targets(targets) if targets else report


def check_schema(connection: Connection) -> Shape:
    """Read the live catalog once; return how to read the app's tables on this database.

    Any database with the app's tables (:data:`seeding.report.shape.CORE_TABLES`, as tables
    or views in schema ``public``) passes, whatever columns they have.

    Raises:
        SchemaError: Naming the missing tables, in one line. A database that looks like one
            this tool made (no ``auth`` schema) is told to run ``seed db create``; the app's
            database (Supabase's ``auth`` schema) is only told what the report needs.
        DatabaseError: When the catalog cannot be read (a lost connection says so).

    """
    try:
        catalog = read_catalog(connection, (SCHEMA, "auth"))
    except DatabaseError as error:
        if connection.invalidated:
            reason = str(error).removeprefix("cannot read the database's catalog: ")
            raise DatabaseError(
                f"lost the database connection while reporting: {reason}; check that the "
                "server is running and run the report again"
            ) from None
        raise
    missing = [name for name in CORE_TABLES if catalog.table(name, SCHEMA) is None]
    if missing and not catalog.has_schema("auth"):
        if len(missing) == 1:
            raise SchemaError(f"table {missing[0]} is missing; create it with `seed db create`")
        raise SchemaError(
            f"tables {', '.join(missing)} are missing; create them with `seed db create`"
        )
    if missing:
        several = len(missing) > 1
        raise SchemaError(
            f"table{'s' if several else ''} {SCHEMA}.{f', {SCHEMA}.'.join(missing)} "
            f"{'are' if several else 'is'} missing; the report needs the app's tables "
            f"{', '.join(CORE_TABLES)} in schema {SCHEMA}: is this the app's database?"
        )
    return shape_of(catalog)


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn a failed query into SchemaError (missing table or column) or DatabaseError."""
    try:
        yield
    except sa_exc.DBAPIError as error:
        reason = describe(error)
        if isinstance(error.orig, pg_errors.UndefinedTable | pg_errors.UndefinedColumn):
            raise SchemaError(
                f"report query failed: {reason}; a table or column the catalog listed is "
                "gone (the schema changed while the report ran?): run the report again"
            ) from None
        if isinstance(error.orig, pg_errors.InsufficientPrivilege):
            raise DatabaseError(
                f"report query refused: {reason}; connect as a user that may SELECT from "
                "the app's tables (e.g. the postgres or service role)"
            ) from None
        if isinstance(error, sa_exc.OperationalError) or error.connection_invalidated:
            raise DatabaseError(
                f"lost the database connection while reporting: {reason}; check that the "
                "server is running and run the report again"
            ) from None
        raise DatabaseError(f"report query failed: {reason}") from None
