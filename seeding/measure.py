"""Measuring a database on one snapshot: the report behind ``seed report``, and a run's targets.

Read only, so the write guard does not apply. The report's queries read one snapshot
(``REPEATABLE READ``), so its figures and the targets checked against them agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from seeding import database, guard, targets
from seeding.report import Report, build_report


def measure(
    database_url: str | guard.Endpoint | database.Target | None = None,
    *,
    scenario: str | None = None,
    expect: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> Report:
    """Build the report of a database and check targets: the library call behind ``seed report``.

    Args:
        database_url: The database (``postgres://`` or ``postgresql://``), its endpoint, or a
            :class:`~seeding.database.Target`. None: as ``seed`` chooses
            (``SEED_DATABASE_URL``, else the embedded server), once the targets are read.
        scenario: A scenario (a shipped name or a file) whose ``expect`` targets to check.
        expect: Targets to check besides (``{metric: condition}``, as a scenario's
            ``expect``); they win over the scenario's for the same metric.
        now: The instant the integrity rules take as now; by default the scenario's clock
            when a scenario is given (the instant its rows were made for), else the
            database's ``now()``.

    Returns:
        The report; its ``targets`` hold each target checked, met or not.

    Raises:
        ScenarioError: When the scenario cannot be read, or a target is malformed (before
            anything connects).
        ConfigurationError: When the URL cannot be read.
        SchemaError: When a table or column of the app is missing.
        DatabaseError: When the database cannot be reached or a query fails.

    """
    wanted = dict(expect or {})
    if scenario:
        read = scenario_clock(scenario)
        wanted = {**read[1], **wanted}
        now = now if now is not None else read[0]
    checked = targets.parse_targets(wanted)
    target = database.target_of(database_url)
    engine = database.engine_for(target.endpoint)
    try:
        snapshot = engine.execution_options(isolation_level="REPEATABLE READ")
        with database.transaction(snapshot) as connection:
            return build_report(connection, now=now, targets=checked)
    finally:
        engine.dispose()


def scenario_clock(scenario: str) -> tuple[datetime, dict[str, str]]:
    """Return a scenario's clock (its ``clock.now``, or the default it runs with) and targets.

    Raises:
        ScenarioError: When the scenario cannot be read.

    """
    from seeding.plan import make_plan  # pydantic, YAML, the factories: only when asked
    from seeding.scenario_file import load

    loaded, nodes = load(scenario)
    plan = make_plan(loaded, nodes)
    return plan.now, dict(plan.expect)


def measure_targets(
    database_url: str | guard.Endpoint | database.Target | None,
    *,
    expect: Mapping[str, str],
    now: datetime | None = None,
) -> tuple[targets.TargetResult, ...]:
    """Check a run's ``expect`` targets against its database, as ``seed scenario`` does after it.

    Args:
        database_url: The database the run wrote (a run's ``target``).
        expect: The run's targets (``{metric: condition}``); with none, nothing connects.
        now: The run's clock, which the integrity rules take as now.

    Returns:
        Each target, met or not; empty when there are none.

    Raises:
        SchemaError: When a table or column of the app is missing.
        DatabaseError: When the database cannot be reached or a query fails.

    """
    if not expect:
        return ()
    return measure(database_url, expect=expect, now=now).targets
