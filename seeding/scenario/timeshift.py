"""Moving a planned scenario in time: ``seed scenario NAME --now now|TIMESTAMP``.

A scenario's rows are built around its clock (``clock.now``, else the audit's day). Shifting
moves every instant the plan holds by the same amount: the clock, the creation windows, and
every time a step writes (``created_at`` lists, ``set:`` values: baseline's audited times).
The factories then draw their times around the moved clock: a request made "minutes ago" is
minutes before the new now, a live session is live at it, and the marketplace's daily and
weekly rhythm falls on real evenings and weekdays (moving drawn times by an amount that is
not whole weeks would put the evening peak at night). So a drawn time is not the unmoved
one plus the shift, and may belong to another row; the same ``--now`` gives the same rows.
Dates without a time (a birth date, a vehicle's year) do not move.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from seeding.errors import ScenarioError
from seeding.scenario.files import Window
from seeding.scenario.plan import CreatePlan, Plan, RowSpec, UpdatePlan

#: What ``--now`` accepts besides a timestamp: the current time (whole seconds, UTC).
CURRENT = "now"


def parse_now(value: str, *, current: datetime | None = None) -> datetime:
    """Return the instant ``--now`` names: ``now``, or an ISO 8601 timestamp with its offset.

    Raises:
        ScenarioError: When the value is neither, or the timestamp has no offset.

    """
    text = value.strip()
    if text.lower() == CURRENT:
        moment = current or datetime.now(UTC)
        return moment.replace(microsecond=0)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ScenarioError(
            f"--now {value!r} is not a time; give `now` or an ISO 8601 timestamp with its "
            "offset, such as 2026-12-01T09:30:00-05:00"
        ) from None
    if moment.tzinfo is None:
        raise ScenarioError(
            f"--now {value!r} has no offset; add one (2026-12-01T09:30:00-05:00, or Z for UTC)"
        )
    return moment


def shifted(plan: Plan, now: datetime) -> Plan:
    """Return the plan with every instant moved by ``now - plan.now``."""
    delta = now - plan.now
    if not delta:
        return plan
    steps = tuple(
        _create(step, delta) if isinstance(step, CreatePlan) else _update(step, delta)
        for step in plan.steps
    )
    return dataclasses.replace(
        plan, now=plan.now + delta, window=_window(plan.window, delta), steps=steps
    )


def _window(window: Window | None, delta: timedelta) -> Window | None:
    if window is None:
        return None
    return window.model_copy(update={"start": window.start + delta, "end": window.end + delta})


def _create(step: CreatePlan, delta: timedelta) -> CreatePlan:
    rows = tuple(
        RowSpec(kwargs=_moved(row.kwargs, delta), relations=row.relations, ref=row.ref)
        for row in step.rows
    )
    return dataclasses.replace(step, rows=rows, window=_window(step.window, delta))


def _update(step: UpdatePlan, delta: timedelta) -> UpdatePlan:
    return dataclasses.replace(
        step, set=_moved(step.set, delta), fields=_moved(step.fields, delta)
    )


def _moved(values: Mapping[str, Any], delta: timedelta) -> dict[str, Any]:
    return {key: _move(value, delta) for key, value in values.items()}


def _move(value: Any, delta: timedelta) -> Any:
    if isinstance(value, datetime):
        return value + delta
    if isinstance(value, list | tuple):
        return type(value)(_move(item, delta) for item in value)
    if isinstance(value, dict):
        return {key: _move(item, delta) for key, item in value.items()}
    return value
