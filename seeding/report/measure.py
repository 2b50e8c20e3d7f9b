"""Measuring a database on one snapshot: the report behind ``seed report``, and a run's targets.

Read only, so the write guard does not apply. The report's queries read one snapshot
(``REPEATABLE READ``), so its figures and the targets checked against them agree.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from seeding.db import database, guard, ledger
from seeding.errors import DatabaseError, ScenarioError, SeedingError
from seeding.report import Report, build_report
from seeding.scenario import targets


@dataclass(frozen=True)
class Scope:
    """Which rows a report measured, and on which clock: what ``seed report`` says it did."""

    #: The run whose rows alone were measured; None: the whole database.
    run: ledger.RunRecord | None
    #: The instant the time rules took as now, and where it came from.
    now: datetime | None
    clock: str

    def describe(self) -> str:
        """Return ``rows: ...; clock: ...`` for the output."""
        rows = self.run.describe() if self.run else "the whole database"
        return f"rows: {rows}; clock: {self.clock}"


def measure(
    database_url: str | guard.Endpoint | database.Target | None = None,
    *,
    scenario: str | None = None,
    run: uuid.UUID | str | None = None,
    expect: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> Report:
    """Build the report of a database and check targets: the library call behind ``seed report``.

    See :func:`measure_scoped`, which also says which rows and clock were measured.
    """
    return measure_scoped(database_url, scenario=scenario, run=run, expect=expect, now=now)[0]


def measure_scoped(
    database_url: str | guard.Endpoint | database.Target | None = None,
    *,
    scenario: str | None = None,
    run: uuid.UUID | str | None = None,
    expect: Mapping[str, str] | None = None,
    now: datetime | None = None,
    database_now: bool = False,
) -> tuple[Report, Scope]:
    """Build the report of a database, or of one run's rows, and check targets.

    Args:
        database_url: The database (``postgres://`` or ``postgresql://``), its endpoint, or a
            :class:`~seeding.db.database.Target`. None: as ``seed`` chooses
            (``SEED_DATABASE_URL``, else the embedded server), once the targets are read.
        scenario: A scenario (a shipped name or a file) whose ``expect`` targets to check.
            Its latest run is measured (its rows alone, on its clock, its count targets
            scaled to its ``--scale``); when the ledger has no run of it, the whole
            database is, on the scenario's clock.
        run: A run's id: measure its rows alone, on its clock, against its scenario's
            targets when that scenario can be read (``scenario`` names it otherwise).
        expect: Targets to check besides (``{metric: condition}``, as a scenario's
            ``expect``); they win over the scenario's for the same metric.
        now: The instant the integrity rules take as now; by default the run's clock, else
            the scenario's, else the database's ``now()``.
        database_now: Take the database's ``now()`` whatever the run's or scenario's clock.

    Returns:
        The report (its ``targets`` hold each target checked, met or not), and its scope.

    Raises:
        ScenarioError: When the scenario cannot be read, a target is malformed, or ``run``
            is not a run id (before anything connects).
        ConfigurationError: When the URL cannot be read.
        SchemaError: When a table or column of the app is missing.
        DatabaseError: When the database cannot be reached, a query fails, or ``run`` is
            not in its ledger.

    """
    run_id = _run_id(run)
    wanted: dict[str, str] = {}
    scenario_now: datetime | None = None
    name: str | None = None
    if scenario:
        name, scenario_now, wanted = _scenario_facts(scenario)
    target = database.target_of(database_url)
    engine = database.engine_for(target.endpoint)
    try:
        snapshot = engine.execution_options(isolation_level="REPEATABLE READ")
        with database.transaction(snapshot) as connection:
            found = _the_run(connection, run_id, name)
            if found is not None and run_id is not None and not scenario and expect is None:
                scenario_now, wanted = _targets_of(found.scenario)
            wanted = {**wanted, **dict(expect or {})}
            checked = targets.parse_targets(wanted)
            if found is not None:
                checked = targets.scaled(checked, found.scale)
            instant, clock = (
                (None, "the database's now() (--now now)") if database_now and now is None
                else _clock(now, found, scenario, scenario_now)
            )
            report = build_report(
                connection, now=instant, targets=checked,
                run=found.id if found is not None else None,
            )
            return report, Scope(found, instant or report.now, clock)
    finally:
        engine.dispose()


def _run_id(run: uuid.UUID | str | None) -> uuid.UUID | None:
    if run is None or isinstance(run, uuid.UUID):
        return run
    try:
        return uuid.UUID(run.strip())
    except ValueError:
        raise ScenarioError(
            f"--run {run!r} is not a run id; `seed reset --dry-run` lists the runs and their ids"
        ) from None


def _the_run(
    connection: Connection, run_id: uuid.UUID | None, scenario: str | None
) -> ledger.RunRecord | None:
    """Return the run to measure: the one named, else the scenario's latest, else None.

    ``scenario`` is the name the ledger records its runs under.
    """
    if run_id is not None:
        found = ledger.find_run(connection, run_id)
        if found is None:
            raise DatabaseError(
                f"no run {run_id} in this database's ledger; `seed reset --dry-run` lists "
                "the runs it holds"
            )
        return found
    if scenario:
        return ledger.latest_run(connection, scenario)
    return None


def _clock(
    now: datetime | None, run: ledger.RunRecord | None, scenario: str | None,
    scenario_now: datetime | None,
) -> tuple[datetime | None, str]:
    """Return the report's now (None: the database's) and where it came from."""
    if now is not None:
        return now, f"{now.isoformat()} (--now)"
    if run is not None and run.clock is not None:
        return run.clock, f"{run.clock.isoformat()} (the run's clock)"
    if scenario_now is not None:
        named = scenario or (run.scenario if run is not None else "")
        return scenario_now, f"{scenario_now.isoformat()} (scenario {named}'s clock)"
    return None, "the database's now()"


def _targets_of(scenario: str) -> tuple[datetime | None, dict[str, str]]:
    """Return a recorded run's scenario clock and targets, when its file can still be read."""
    try:
        return scenario_clock(scenario)
    except SeedingError:
        return None, {}


def scenario_clock(scenario: str) -> tuple[datetime, dict[str, str]]:
    """Return a scenario's clock (its ``clock.now``, or the default it runs with) and targets.

    Raises:
        ScenarioError: When the scenario cannot be read.

    """
    _, now, expect = _scenario_facts(scenario)
    return now, expect


def _scenario_facts(scenario: str) -> tuple[str, datetime, dict[str, str]]:
    """Return a scenario's name (as the ledger records its runs), clock and targets.

    Raises:
        ScenarioError: When the scenario cannot be read.

    """
    from seeding.scenario.files import load
    from seeding.scenario.plan import make_plan  # pydantic, YAML, the factories: only when asked

    loaded, nodes = load(scenario)
    plan = make_plan(loaded, nodes)
    return plan.scenario, plan.now, dict(plan.expect)


def measure_targets(
    database_url: str | guard.Endpoint | database.Target | None,
    *,
    expect: Mapping[str, str],
    now: datetime | None = None,
    run: uuid.UUID | None = None,
) -> tuple[targets.TargetResult, ...]:
    """Check a run's ``expect`` targets against its database, as ``seed scenario`` does after it.

    Args:
        database_url: The database the run wrote (a run's ``target``).
        expect: The run's targets (``{metric: condition}``); with none, nothing connects.
        now: The run's clock, which the integrity rules take as now.
        run: The run's id: its rows alone are measured, whatever else the database holds,
            and its count targets are scaled to its ``--scale`` (:func:`targets.scaled`).
            None: the whole database, targets as written.

    Returns:
        Each target, met or not; empty when there are none.

    Raises:
        SchemaError: When a table or column of the app is missing.
        DatabaseError: When the database cannot be reached or a query fails.

    """
    if not expect:
        return ()
    return measure(database_url, expect=expect, now=now, run=run).targets
