"""Before and after: a report side by side with another, every metric with its change.

The other report is a dict of the JSON contract (docs/report.md): a file that
``seed report --format json`` wrote (:func:`read_report_file`), or another database's report
(:meth:`seeding.report.Report.to_dict`). Both are walked the same way, so a metric added to
the contract is compared without a line here: every number under a section, every key of
every map (a key one side lacks counts as 0 there, as in the contract), each integrity rule's
violations, and the response-time histogram's buckets. Shares change in percentage points.

A target (the current report's, else the other's) is checked on both sides, with the gap
that separates each side from meeting it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from seeding.errors import ConfigurationError, ScenarioError
from seeding.report.model import REPORT_VERSION, Report
from seeding.scenario.targets import (
    MAP_METRICS,
    TargetResult,
    evaluate,
    format_number,
    parse_target,
)

#: How a metric's change is measured.
Unit = Literal["count", "percentage points", "minutes", "days"]

#: The top-level keys of the contract that are not sections of numbers.
_NOT_SECTIONS: Final = frozenset(
    {"version", "now", "integrity", "integrity_violations", "skipped_rules", "unavailable",
     "targets", "comparison"}
)

#: A metric (its path's last key) whose value is a map of counts (or shares) by a key.
_MAP_NAME = re.compile(r"^(share_)?by_|_by_|^provinces$")

#: What a comparison's JSON says the change of a metric is measured in, by path pattern.
_SHARE = re.compile(r"(^|\.)share_by_")
_MINUTES = re.compile(r"\.response_minutes\.(avg|min|max)$")


@dataclass(frozen=True)
class Change:
    """One metric before and after; None where a side could not measure it (or lacks it)."""

    metric: str
    before: float | None
    after: float | None

    @property
    def unit(self) -> Unit:
        """Return what the change is measured in: shares change in percentage points."""
        if _SHARE.search(self.metric):
            return "percentage points"
        if _MINUTES.search(self.metric):
            return "minutes"
        if self.metric.endswith(".span_days"):
            return "days"
        return "count"

    @property
    def change(self) -> float | None:
        """Return after minus before (for a share, in percentage points); None without both."""
        if self.before is None or self.after is None:
            return None
        if self.unit == "percentage points":
            return round((self.after - self.before) * 100, 2)
        if isinstance(self.before, int) and isinstance(self.after, int):
            return self.after - self.before
        return round(self.after - self.before, 2)

    @property
    def changed(self) -> bool:
        """Return whether the metric differs between the two sides (n/a on one side counts)."""
        return self.before != self.after

    def show(self, value: float | None) -> str:
        """Return a side's value as the renderings show it (a share as a percentage)."""
        if value is None:
            return "n/a"
        if self.unit == "percentage points":
            return f"{100 * value:.1f}%"
        return format_number(value)

    def change_text(self) -> str:
        """Return the change signed, ``+5``, ``-3``, ``+12.5 pp``, ``0``; ``n/a`` without both."""
        change = self.change
        if change is None:
            return "n/a"
        if change == 0:
            text = "0"
        elif isinstance(change, int):
            text = f"{change:+,}"
        else:
            text = f"{change:+,.2f}".rstrip("0").rstrip(".")
        return f"{text} pp" if self.unit == "percentage points" else text

    def to_dict(self) -> dict[str, Any]:
        """Return the change as the comparison's JSON writes it."""
        return {
            "metric": self.metric,
            "before": self.before,
            "after": self.after,
            "change": self.change,
            "unit": self.unit,
        }


@dataclass(frozen=True)
class TargetChange:
    """A target on both sides: what each side shows, whether it met it, and its gap.

    The gap is how far a side is from meeting the target (0 when met; None when the side
    could not measure the metric).
    """

    metric: str
    needed: str
    before: TargetResult
    after: TargetResult

    @property
    def gap_before(self) -> float | None:
        """Return how far the other report was from meeting the target."""
        return gap(self.before)

    @property
    def gap_after(self) -> float | None:
        """Return how far this report is from meeting the target."""
        return gap(self.after)

    @property
    def status(self) -> str:
        """Return ``met``, ``closed`` (met now, not before), ``opened`` or ``missed``."""
        if self.after.met:
            return "met" if self.before.met else "closed"
        return "opened" if self.before.met else "missed"

    def to_dict(self) -> dict[str, Any]:
        """Return the target's two sides as the comparison's JSON writes them."""
        return {
            "metric": self.metric,
            "needed": self.needed,
            "before": self.before.current,
            "after": self.after.current,
            "met_before": self.before.met,
            "met_after": self.after.met,
            "gap_before": self.gap_before,
            "gap_after": self.gap_after,
            "status": self.status,
        }


def to_the_second(instant: object) -> str | None:
    """Return an ISO instant of a report without its fraction of a second (None stays None)."""
    if instant is None:
        return None
    try:
        return datetime.fromisoformat(str(instant)).replace(microsecond=0).isoformat()
    except ValueError:
        return str(instant)


def gap(result: TargetResult) -> float | None:
    """Return how far a result's value is from meeting its target: 0 when met, None unknown."""
    if result.met:
        return 0
    if result.current is None:
        return None
    _, _, bound = result.needed.partition(" ")
    distance = abs(float(bound) - result.current)
    return int(distance) if distance.is_integer() else round(distance, 4)


@dataclass(frozen=True)
class Comparison:
    """A report (after) compared with another (before): every metric, every target."""

    #: What the report was compared with: a file, or a database URL without its password.
    source: str
    #: The other report, as its JSON holds it (the charts draw it beside this one).
    before: Mapping[str, Any]
    #: Every metric of either side, in the order of this report's JSON, then the other's.
    metrics: tuple[Change, ...]
    #: Each target, on both sides.
    targets: tuple[TargetChange, ...]

    @property
    def before_now(self) -> str | None:
        """Return the instant the other report was taken at, to the second."""
        return to_the_second(self.before.get("now"))

    def changed(self) -> tuple[Change, ...]:
        """Return the metrics that differ."""
        return tuple(change for change in self.metrics if change.changed)

    def unchanged(self) -> tuple[Change, ...]:
        """Return the metrics that are the same on both sides."""
        return tuple(change for change in self.metrics if not change.changed)

    def to_dict(self) -> dict[str, Any]:
        """Return the comparison as JSON writes it, under the report's ``comparison`` key."""
        return {
            "with": self.source,
            "with_now": self.before_now,
            "changed": len(self.changed()),
            "metrics": [change.to_dict() for change in self.metrics],
            "targets": [target.to_dict() for target in self.targets],
        }


def compare(after: Report, before: Mapping[str, Any], source: str) -> Comparison:
    """Return ``after`` compared with ``before`` (a report dict of the same JSON version).

    Args:
        after: This report.
        before: The other report's dict (:func:`read_report_file`, or ``to_dict()``).
        source: What ``before`` is, as the renderings name it (a file, a masked URL).

    """
    now = after.to_dict()
    paths = _union(list(leaves(now)), list(leaves(before)))
    # A path null on both sides (no request: no oldest, no average) is no figure to compare.
    metrics = tuple(
        Change(".".join(path), sides[0], sides[1])
        for path in paths
        if (sides := (value_at(before, path), value_at(now, path))) != (None, None)
    )
    return Comparison(
        source=source, before=before, metrics=metrics, targets=_targets(after, before)
    )


def _targets(after: Report, before: Mapping[str, Any]) -> tuple[TargetChange, ...]:
    """Check this report's targets (else the other's) on both sides."""
    results: Sequence[TargetResult] = after.targets
    if not results:
        results = [
            TargetResult(str(t["metric"]), t.get("current"), str(t["needed"]), bool(t["met"]),
                         tuple(t.get("missing", ())))
            for t in before.get("targets", ())
        ]
    found = []
    now = after.to_dict()
    for result in results:
        try:
            target = parse_target(result.metric, result.needed)
        except ScenarioError:  # a metric of a newer contract: nothing to compare it with
            continue
        sides = []
        for side in (before, now):
            try:
                [checked] = evaluate(side, [target])
            except (KeyError, TypeError, AttributeError):  # a side that lacks the metric
                checked = TargetResult(result.metric, None, result.needed, False)
            sides.append(checked)
        found.append(TargetChange(result.metric, result.needed, sides[0], sides[1]))
    return tuple(found)


def leaves(report: Mapping[str, Any]) -> Iterator[tuple[str, ...]]:
    """Yield the path of every number of a report dict (a null metric is a leaf too).

    Sections are walked down to their numbers; lists of rows (customers, mechanics, the
    sample) are not metrics and are left out; the integrity rules give one path each
    (``integrity.<rule>``), the response histogram one per bucket.
    """
    for key, value in report.items():
        if key in _NOT_SECTIONS:
            continue
        yield from _walk((key,), value)
    yield ("integrity_violations",)
    for rule in report.get("integrity") or ():
        yield ("integrity", str(rule["rule"]))


def _walk(path: tuple[str, ...], value: Any) -> Iterator[tuple[str, ...]]:
    if isinstance(value, bool) or isinstance(value, str):
        return
    if value is None or isinstance(value, int | float):
        yield path
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from _walk((*path, str(key)), inner)
    elif isinstance(value, list) and path[-1] == "response_histogram":
        for bucket in value:
            yield (*path, bucket_label(bucket))


def bucket_label(bucket: Mapping[str, Any]) -> str:
    """Return a histogram bucket's label: ``1-2`` (minutes), ``60+`` for the last."""
    low, high = bucket.get("from_minutes"), bucket.get("to_minutes")
    if high is None:
        return f"{format_number(low)}+"
    return f"{format_number(low)}-{format_number(high)}"


def is_map(path: Sequence[str]) -> bool:
    """Return whether a path names a map of counts or shares (a key it lacks counts as 0)."""
    return bool(path) and (".".join(path) in MAP_METRICS or bool(_MAP_NAME.search(path[-1])))


def value_at(report: Mapping[str, Any], path: Sequence[str]) -> float | None:
    """Return the number at a path of a report dict, as :func:`leaves` names it.

    None where the value is null (not measurable) or the report lacks it; a key a map lacks
    is 0.
    """
    if path[0] == "integrity" and len(path) == 2:
        rules = {str(r["rule"]): r.get("violations") for r in report.get("integrity") or ()}
        return _number(rules.get(path[1]))
    node: Any = report
    for depth, key in enumerate(path):
        if isinstance(node, list) and path[depth - 1] == "response_histogram":
            counts = {bucket_label(bucket): bucket.get("count") for bucket in node}
            return _number(counts.get(key))
        if not isinstance(node, dict):
            return None
        if key not in node:
            return 0 if is_map(path[:depth]) and depth == len(path) - 1 else None
        node = node[key]
    return _number(node)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _union(first: list[tuple[str, ...]], second: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Return the paths of both sides, this side's order first; a null map gives its keys."""
    seen = dict.fromkeys(first)
    seen.update(dict.fromkeys(second))
    # A metric null on one side (a map it could not measure) and a map on the other: the
    # map's keys stand for it.
    return [
        path for path in seen
        if not any(other[: len(path)] == path and len(other) > len(path) for other in seen)
    ]


def read_report_file(path: str) -> dict[str, Any]:
    """Return a JSON report that ``seed report --format json`` wrote, checked.

    Raises:
        ConfigurationError: In one line naming the file, when it cannot be read, is not a
            JSON report, or is of another version of the contract.

    """
    remake = "make it with `seed report --format json --output FILE`"
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ConfigurationError(
            f"{path}: no such file; give a JSON report ({remake}) or a postgresql:// URL"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ConfigurationError(f"{path}: cannot read it ({reason}); {remake}") from None
    try:
        found = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigurationError(
            f"{path}: not a JSON report (line {error.lineno}: {error.msg}); {remake}"
        ) from None
    if not isinstance(found, dict) or not isinstance(found.get("session_requests"), dict):
        raise ConfigurationError(f"{path}: JSON, but not a report of `seed report`; {remake}")
    version = found.get("version")
    if version != REPORT_VERSION:
        which = "no version (contract 1)" if version is None else f"version {version!r}"
        raise ConfigurationError(
            f"{path}: a report of JSON {which}, and this seed writes version "
            f"{REPORT_VERSION}; {remake} again"
        )
    return found


def is_database_url(other: str) -> bool:
    """Return whether ``--compare`` names a database (a PostgreSQL URL) rather than a file."""
    return other.strip().lower().startswith(("postgres://", "postgresql://"))


# Renderings: terminal text and markdown (html and junit draw the comparison themselves).


def _target_rows(comparison: Comparison, met: str, unmet: str) -> list[tuple[str, ...]]:
    marks = {"met": met, "closed": f"{met} closed", "opened": f"{unmet} opened",
             "missed": unmet}
    return [
        (
            t.metric,
            t.needed,
            format_number(t.before.current),
            format_number(t.after.current),
            format_number(t.gap_before),
            format_number(t.gap_after),
            marks[t.status],
        )
        for t in comparison.targets
    ]


_TARGET_HEADERS: Final = ("Metric", "Needed", "Before", "After", "Gap before", "Gap after",
                          "Status")
_METRIC_HEADERS: Final = ("Metric", "Before", "After", "Change")


def _metric_rows(changes: Sequence[Change]) -> list[tuple[str, ...]]:
    return [
        (c.metric, c.show(c.before), c.show(c.after), c.change_text()) for c in changes
    ]


def _summary(comparison: Comparison, after: Report) -> list[str]:
    closed = sum(t.status == "closed" for t in comparison.targets)
    met = sum(t.after.met for t in comparison.targets)
    lines = [
        f"Before: {comparison.source}, taken at {comparison.before_now or 'an unknown time'}",
        f"After: this database, taken at {to_the_second(after.to_dict()['now'])}",
        f"{len(comparison.changed())} of {len(comparison.metrics)} metrics changed",
    ]
    if comparison.targets:
        lines.append(
            f"targets: {met} of {len(comparison.targets)} met after, "
            f"{sum(t.before.met for t in comparison.targets)} before; {closed} closed"
        )
    return lines


def render_markdown(comparison: Comparison, after: Report) -> str:
    """Return the comparison as markdown for a pull request or ``$GITHUB_STEP_SUMMARY``.

    The targets with both gaps, then the metrics that changed; those that did not are folded
    in a ``<details>`` block.
    """
    parts = ["# Seed report: before and after", "\n".join(f"- {line}" for line in
                                                          _summary(comparison, after))]
    if comparison.targets:
        parts.append("## Targets\n\n" + _pipe(_TARGET_HEADERS,
                                               _target_rows(comparison, "✅", "⚠️")))
    changed, unchanged = comparison.changed(), comparison.unchanged()
    parts.append(
        f"## Changed ({len(changed)})\n\n"
        + (_pipe(_METRIC_HEADERS, _metric_rows(changed)) if changed else "Nothing changed.")
    )
    if unchanged:
        parts.append(
            f"<details><summary>Unchanged ({len(unchanged)})</summary>\n\n"
            + _pipe(_METRIC_HEADERS, _metric_rows(unchanged))
            + "\n\n</details>"
        )
    return "\n\n".join(parts) + "\n"


def render_text(comparison: Comparison, after: Report) -> str:
    """Return the comparison as aligned text for a terminal: every metric, changed or not."""
    parts = ["Seed report: before and after", "\n".join(_summary(comparison, after))]
    if comparison.targets:
        parts.append("Targets\n=======\n\n" + "\n".join(
            _aligned(_TARGET_HEADERS, _target_rows(comparison, "met", "NOT MET"))
        ))
    parts.append("Metrics\n=======\n\n" + "\n".join(
        _aligned(_METRIC_HEADERS, _metric_rows(comparison.metrics))
    ))
    return "\n\n".join(parts) + "\n"


def render_json(comparison: Comparison, after: Report) -> str:
    """Return this report's JSON with the comparison under ``comparison``."""
    return json.dumps({**after.to_dict(), "comparison": comparison.to_dict()}, indent=2,
                      sort_keys=True)


def _pipe(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _aligned(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str], numeric: bool) -> str:
        return "  ".join(
            cell.ljust(w) if index == 0 or not numeric else cell.rjust(w)
            for index, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(headers, False), "  ".join("-" * w for w in widths),
            *(line(row, True) for row in rows)]
