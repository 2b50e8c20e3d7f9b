"""Report targets: the metric paths a scenario's ``expect`` block may name, parsing, evaluation.

A scenario says what the seeded database must show, as metric path → condition::

    expect:
      session_requests.total: ">= 120"
      session_requests.share_by_session_type.chat: "<= 0.60"
      sessions.by_status.refunded: ">= 1"
      mechanics.incomplete_count: "== 1"

A path names a number in :meth:`seeding.report.Report.to_dict`. A path into one of the report's
maps (``by_status``, ``provinces``, ...) accepts any key of that map's vocabulary, and a key the
report's map lacks counts as 0: the maps hold only the values that occur. A map whose keys are
not a closed vocabulary (``session_requests.by_local_month``: months) accepts any key of its
form (``2025-10``).

A metric the database cannot measure (listed under the report's ``unavailable``: a column it
needs is absent) meets no target, and its result says so: ``missing`` names the columns.

This module works on the report's plain dict and imports nothing of the report, so that the
report can import it; ``tests/test_targets.py`` checks that the paths here and the keys the
report writes are the same set.
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from seeding.domain.rhythm import LOCAL_HOURS, WEEKDAYS
from seeding.domain.vocabularies import (
    ASSIGNMENT_STATUSES,
    MECHANIC_TYPES,
    PROVINCES,
    REQUEST_STATUSES,
    REQUEST_TYPES,
    ROUTING_TYPES,
    SESSION_STATUSES,
    SESSION_TYPES,
)
from seeding.errors import ScenarioError

#: The report's single numbers, by dotted path.
SCALAR_METRICS: Final = (
    "session_requests.total",
    "session_requests.assigned",
    "session_requests.unassigned",
    "session_requests.cancelled_before_assignment",
    "session_requests.cancelled_after_assignment",
    "session_requests.response_minutes.count",
    "session_requests.response_minutes.avg",
    "session_requests.response_minutes.min",
    "session_requests.response_minutes.max",
    "session_requests.span_days",
    # Distinct local months and weekdays with a request: "time periods", not counts of rows.
    "session_requests.local_months",
    "session_requests.local_weekdays",
    "session_requests.with_workshop",
    "session_requests.with_preferred_workshop",
    "session_requests.with_preferred_mechanic",
    "session_requests.priority_broadcasts",
    "session_requests.follow_ups",
    "session_requests.urgent",
    "session_requests.without_customer_profile",
    "customers.total",
    "customers.active",
    "customers.with_full_geo",
    "customers.with_requests",
    "customers.province_count",
    "mechanics.total",
    "mechanics.participating",
    "mechanics.complete",
    "mechanics.incomplete_count",
    "mechanics.with_completed_session",
    "workshops.total",
    "workshops.province_count",
    "sessions.total",
    "session_assignments.total",
    "integrity_violations",
)

#: The report's maps, by dotted path, each with the vocabulary its keys come from.
MAP_METRICS: Final[dict[str, tuple[str, ...]]] = {
    "session_requests.by_status": REQUEST_STATUSES,
    "session_requests.share_by_status": REQUEST_STATUSES,
    "session_requests.by_session_type": SESSION_TYPES,
    "session_requests.share_by_session_type": SESSION_TYPES,
    "session_requests.by_routing_type": ROUTING_TYPES,
    "session_requests.by_request_type": REQUEST_TYPES,
    "session_requests.by_local_weekday": WEEKDAYS,
    "session_requests.by_local_hour": LOCAL_HOURS,
    "customers.provinces": PROVINCES,
    "mechanics.by_type": MECHANIC_TYPES,
    "mechanics.complete_by_type": MECHANIC_TYPES,
    "workshops.provinces": PROVINCES,
    "sessions.by_status": SESSION_STATUSES,
    "sessions.completed_by_mechanic_type": MECHANIC_TYPES,
    "session_assignments.by_status": ASSIGNMENT_STATUSES,
}


@dataclass(frozen=True)
class OpenKeys:
    """The keys of a map that has no closed vocabulary: a form, and an example of it."""

    pattern: re.Pattern[str]
    form: str
    example: str


#: The report's maps whose keys are not a closed vocabulary, by dotted path, with their form.
OPEN_MAP_METRICS: Final[dict[str, OpenKeys]] = {
    "session_requests.by_local_month": OpenKeys(
        re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$"), "a month YYYY-MM", "2025-10"
    ),
}

#: Every dotted path a target may name, but those into :data:`OPEN_MAP_METRICS`.
KNOWN_METRICS: Final = frozenset(SCALAR_METRICS) | frozenset(
    f"{path}.{key}" for path, keys in MAP_METRICS.items() for key in keys
)

#: The comparison operators a condition may use, longest first so that ``>=`` wins over ``>``.
OPERATORS: Final[dict[str, Callable[[float, float], bool]]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
}

_CONDITION = re.compile(r"^\s*(>=|<=|==|>|<)\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*$")
_ACCEPTED_FORMS = "'>= N', '<= N', '== N', '> N' or '< N', N a number (e.g. '>= 120', '<= 0.60')"


@dataclass(frozen=True)
class Target:
    """One condition a report's metric must meet, such as ``session_requests.total >= 120``."""

    metric: str
    op: str
    value: float
    #: A range's upper end: the target is then ``value <= current <= high`` (an ``==`` count
    #: target of a scaled run, see :func:`scaled`).
    high: float | None = None

    @property
    def needed(self) -> str:
        """Return the condition as text, e.g. ``">= 120"``, ``"21 to 43"``."""
        if self.high is not None:
            return f"{format_number(self.value)} to {format_number(self.high)}"
        return f"{self.op} {format_number(self.value)}"

    def met_by(self, current: float | None) -> bool:
        """Return whether a metric's current value meets the condition (None never does)."""
        if current is None:
            return False
        if self.high is not None:
            return self.value <= current <= self.high
        return OPERATORS[self.op](current, self.value)


@dataclass(frozen=True)
class TargetResult:
    """A target checked against a report: the metric, its current value, what was needed.

    A target on a metric the database cannot measure is not met, has no current value, and
    names the absent columns in ``missing``.
    """

    metric: str
    current: float | None
    needed: str
    met: bool
    #: The absent columns that keep the metric from being measured; empty when it was.
    missing: tuple[str, ...] = ()

    @property
    def measurable(self) -> bool:
        """Return whether the database could measure the metric."""
        return not self.missing

    @property
    def status(self) -> str:
        """Return ``met``, ``missed`` or ``not measurable (needs table.column, ...)``."""
        if self.missing:
            return f"not measurable (needs {', '.join(self.missing)})"
        return "met" if self.met else "missed"

    def to_dict(self) -> dict[str, Any]:
        """Return the result as the report's JSON writes it; ``missing`` only if not measurable."""
        found: dict[str, Any] = {
            "metric": self.metric,
            "current": self.current,
            "needed": self.needed,
            "met": self.met,
        }
        if self.missing:
            found["missing"] = list(self.missing)
        return found


def format_number(value: float | None) -> str:
    """Return a number as a target or report shows it: ``120``, ``0.6``; ``—`` for None."""
    if value is None:
        return "—"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def parse_target(metric: str, condition: str) -> Target:
    """Return the target that one entry of a scenario's ``expect`` block describes.

    Args:
        metric: A dotted path into the report, e.g. ``sessions.by_status.refunded``.
        condition: ``>= N``, ``<= N``, ``== N``, ``> N`` or ``< N``.

    Raises:
        ScenarioError: When the path names no number of the report (the message lists the
            closest valid paths) or the condition is malformed (it lists the accepted forms).

    """
    check_metric(metric)
    match = _CONDITION.match(condition) if isinstance(condition, str) else None
    if match is None:
        raise ScenarioError(
            f"expect.{metric}: malformed condition {condition!r}; write {_ACCEPTED_FORMS}"
        )
    return Target(metric=metric, op=match.group(1), value=float(match.group(2)))


def parse_targets(expect: Mapping[str, str]) -> list[Target]:
    """Return the targets of a whole ``expect`` block, in its order.

    Raises:
        ScenarioError: On the first entry that :func:`parse_target` refuses.

    """
    return [parse_target(metric, condition) for metric, condition in expect.items()]


def check_metric(metric: str) -> None:
    """Raise ScenarioError, naming the closest valid paths, unless ``metric`` is a known path.

    A known path is one of :data:`KNOWN_METRICS`, or a key of its form into one of
    :data:`OPEN_MAP_METRICS`.
    """
    if metric in KNOWN_METRICS:
        return
    parent, _, key = metric.rpartition(".")
    if parent in OPEN_MAP_METRICS:
        keys = OPEN_MAP_METRICS[parent]
        if keys.pattern.match(key):
            return
        raise ScenarioError(
            f"expect.{metric}: key {key!r} of {parent} is not {keys.form}; "
            f"e.g. {parent}.{keys.example}"
        )
    if metric in OPEN_MAP_METRICS:
        keys = OPEN_MAP_METRICS[metric]
        raise ScenarioError(
            f"expect.{metric}: {metric} is a map, not a number; name one of its keys, "
            f"{keys.form}, e.g. {metric}.{keys.example}"
        )
    if parent in MAP_METRICS:
        raise ScenarioError(
            f"expect.{metric}: unknown key {key!r} of {parent}; expected one of "
            + ", ".join(MAP_METRICS[parent])
        )
    if metric in MAP_METRICS:
        raise ScenarioError(
            f"expect.{metric}: {metric} is a map, not a number; name one of its keys, "
            f"e.g. {metric}.{MAP_METRICS[metric][0]}"
        )
    close = difflib.get_close_matches(metric, sorted(KNOWN_METRICS), n=3, cutoff=0.6)
    if close:
        hint = "closest valid paths: " + ", ".join(close)
    else:
        sections = sorted({path.split(".")[0] for path in KNOWN_METRICS})
        hint = "valid paths start with " + ", ".join(f"{s}." for s in sections)
    raise ScenarioError(f"expect.{metric}: unknown metric path; {hint} (see docs/report.md)")


def lookup(report: Mapping[str, Any], metric: str) -> float | None:
    """Return the number a known path names in a report dict; a map key absent from it is 0.

    Raises:
        ScenarioError: When the path is not a known metric.
        KeyError: When the report dict lacks a section or number the path needs (a dict
            that :meth:`seeding.report.Report.to_dict` did not make).

    """
    check_metric(metric)
    parent, _, key = metric.rpartition(".")
    if parent in MAP_METRICS or parent in OPEN_MAP_METRICS:
        found = _walk(report, parent).get(key, 0)
    else:
        found = _walk(report, metric)
    if found is None:
        return None
    if isinstance(found, bool) or not isinstance(found, int | float):
        raise TypeError(f"report value at {metric} is {found!r}, not a number")
    return found


def unavailable_reason(
    unavailable: Mapping[str, Sequence[str]], metric: str
) -> tuple[str, ...]:
    """Return the absent columns that keep ``metric`` from being measured; empty if none do.

    Args:
        unavailable: The metrics a report could not measure (its path → absent columns).
        metric: A dotted path; it is unavailable when it, or a path above it (the map
            ``sessions.by_status`` above ``sessions.by_status.refunded``), is listed.

    """
    parts = metric.split(".")
    for end in range(len(parts), 0, -1):
        missing = unavailable.get(".".join(parts[:end]))
        if missing:
            return tuple(missing)
    return ()


def evaluate(report: Mapping[str, Any], targets: Iterable[Target]) -> list[TargetResult]:
    """Check each target against a report dict; return one result per target, in order.

    A target on a metric the report lists under ``unavailable`` is not met, and its result
    names the absent columns (``missing``).

    Args:
        report: :meth:`seeding.report.Report.to_dict` of a report.
        targets: The targets, e.g. from :func:`parse_targets`.

    """
    unavailable = {
        str(entry["metric"]): tuple(entry["missing"]) for entry in report.get("unavailable", ())
    }
    results = []
    for target in targets:
        missing = unavailable_reason(unavailable, target.metric)
        if missing:
            check_metric(target.metric)
            results.append(TargetResult(target.metric, None, target.needed, False, missing))
            continue
        current = lookup(report, target.metric)
        results.append(
            TargetResult(
                metric=target.metric,
                current=current,
                needed=target.needed,
                met=target.met_by(current),
            )
        )
    return results


def _walk(report: Mapping[str, Any], path: str) -> Any:
    node: Any = report
    for part in path.split("."):
        node = node[part]
    return node


#: Scalar metrics that are not counts of rows: a scaled run keeps their targets as written.
UNSCALED_METRICS: Final = frozenset({
    "session_requests.response_minutes.avg",
    "session_requests.response_minutes.min",
    "session_requests.response_minutes.max",
    "session_requests.span_days",
    "session_requests.local_months",
    "session_requests.local_weekdays",
    "customers.province_count",
    "workshops.province_count",
    "integrity_violations",
})


def is_count(metric: str) -> bool:
    """Return whether a metric counts rows (it then scales with ``--scale``).

    Shares (``share_by_*``), averages, extremes, spans and numbers of distinct values (of
    provinces) are not counts.
    """
    parent, _, _ = metric.rpartition(".")
    if parent in MAP_METRICS:
        return not parent.rpartition(".")[2].startswith("share_")
    return metric not in UNSCALED_METRICS


def scaled(targets: Iterable[Target], scale: float) -> list[Target]:
    """Return a run's targets at ``--scale``: count targets scaled as the quotas are.

    A count is rounded as a step's count is (``round(N * scale)``), in the direction the run
    can move it: a lower bound (``>=``, ``>``) scales down below 1 and stays above it, an
    upper bound (``<=``, ``<``) scales up above 1 and stays below it, and ``== N`` becomes the
    range between the two. Parts of a scenario do not scale (``each`` rows, ``scale: false``
    steps: baseline's audited rows inside diverse), so a lower bound never grows with the run:
    ``diverse --scale 0.5`` promises ``>= 60`` requests where ``diverse`` promises ``>= 120``,
    and ``diverse --scale 2`` still ``>= 120``. Other targets are kept as written.
    """
    if scale == 1.0:
        return list(targets)
    down, up = min(scale, 1.0), max(scale, 1.0)
    found = []
    for target in targets:
        if not is_count(target.metric) or target.high is not None:
            found.append(target)
        elif target.op in (">=", ">"):
            found.append(Target(target.metric, target.op, float(round(target.value * down))))
        elif target.op in ("<=", "<"):
            found.append(Target(target.metric, target.op, float(round(target.value * up))))
        else:
            low, high = float(round(target.value * down)), float(round(target.value * up))
            found.append(Target(target.metric, "==", low, high if high != low else None))
    return found
