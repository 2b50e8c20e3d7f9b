"""Rendering a report: markdown that reads like the audit reports, a terminal table, or JSON.

Markdown and the terminal text are drawn from one list of sections (facts and tables), so the
two always say the same thing.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from seeding.domain.rhythm import LOCAL_HOURS, WEEKDAYS
from seeding.report import compare
from seeding.report.html import render_html
from seeding.report.junit import render_junit
from seeding.report.model import Report, RequestStats, histogram_buckets, iso_utc
from seeding.scenario.targets import TargetResult, format_number

Format = Literal["table", "markdown", "json", "html", "junit"]

#: Every format :func:`render` writes.
FORMATS: tuple[Format, ...] = ("table", "markdown", "json", "html", "junit")


@dataclass(frozen=True)
class Table:
    """A table of a section: a header row and rows of cells."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Section:
    """A headed part of the report: a few labelled facts, then tables."""

    title: str
    facts: tuple[tuple[str, str], ...] = ()
    tables: tuple[Table, ...] = field(default_factory=tuple)


def render(report: Report, fmt: Format, comparison: compare.Comparison | None = None) -> str:
    """Return the report as text.

    Args:
        report: The report, from :func:`seeding.report.build_report`.
        fmt: ``markdown`` (headed sections and pipe tables, like the audit reports),
            ``table`` (plain aligned text for a terminal), ``json`` (``to_dict()``, indented,
            keys sorted), ``html`` (one self-contained page with charts,
            :mod:`seeding.report.html`) or ``junit`` (targets and rules as test cases,
            :mod:`seeding.report.junit`).
        comparison: The report compared with another (:func:`seeding.report.compare.compare`):
            markdown and table show the comparison, JSON adds it under ``comparison``, HTML
            and JUnit show both sides.

    Raises:
        ValueError: When ``fmt`` is none of :data:`FORMATS`.

    """
    if fmt == "html":
        return render_html(report, comparison)
    if fmt == "junit":
        return render_junit(report, comparison)
    if comparison is not None and fmt in ("json", "markdown", "table"):
        return {
            "json": compare.render_json, "markdown": compare.render_markdown,
            "table": compare.render_text,
        }[fmt](comparison, report)
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, sort_keys=True)
    if fmt == "markdown":
        return _markdown(report)
    if fmt == "table":
        return _text(report)
    raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _percent(count: int, total: int) -> str:
    return f"{100 * count / total:.1f}%" if total else "—"


def _short(identifier: str) -> str:
    return identifier[:8]


def _breakdown(name: str, counts: Mapping[str, int], total: int) -> Table:
    rows = [(key, str(n), _percent(n, total)) for key, n in counts.items()]
    rows.append(("TOTAL", str(total), _percent(total, total)))
    return Table((name, "Count", "Percentage"), tuple(rows))


def _time_periods(r: RequestStats) -> Section:
    """Return when the requests were made, in their customers' local time: months, days, hours.

    Every weekday and hour has its row, 0 included, so the week's and the day's rhythm show.
    """
    counted = sum(r.by_local_hour.values())

    def spread(name: str, keys: Sequence[str], counts: Mapping[str, int]) -> Table:
        rows = [(key, str(n), _percent(n, counted)) for key in keys for n in [counts.get(key, 0)]]
        rows.append(("TOTAL", str(counted), _percent(counted, counted)))
        return Table((name, "Count", "Percentage"), tuple(rows))

    return Section(
        "Time periods (customer's local time)",
        facts=(
            ("Calendar months", str(r.local_months)),
            ("Weekdays", f"{r.local_weekdays} of {len(WEEKDAYS)}"),
        ),
        tables=(
            spread("Month", tuple(r.by_local_month), r.by_local_month),
            spread("Weekday", WEEKDAYS, r.by_local_weekday),
            spread("Local hour", LOCAL_HOURS, r.by_local_hour),
        ),
    )


def _histogram(r: RequestStats) -> Table:
    """Return the responses per bucket of minutes (every bucket, 0 included)."""
    buckets = histogram_buckets(r.response_histogram)
    count = r.response_minutes.count
    return Table(
        ("Response time (minutes)", "Responses", "Percentage"),
        tuple((compare.bucket_label(b), str(b["count"]), _percent(b["count"], count))
              for b in buckets),
    )


def _status_columns(by_status: Sequence[Mapping[str, int]]) -> list[str]:
    seen: dict[str, None] = {}
    for counts in by_status:
        seen.update(dict.fromkeys(counts))
    return list(seen)


def sections(report: Report) -> list[Section]:
    """Return the report's sections, in the order the audit asked its questions."""
    r, c, m = report.session_requests, report.customers, report.mechanics
    response = r.response_minutes
    found = [
        Section("Status breakdown", tables=(_breakdown("Status", r.by_status, r.total),)),
        Section(
            "Assignment",
            tables=(
                Table(
                    ("Assignment status", "Count", "Percentage"),
                    (
                        ("Never assigned", str(r.unassigned), _percent(r.unassigned, r.total)),
                        ("Assigned to mechanic", str(r.assigned), _percent(r.assigned, r.total)),
                    ),
                ),
            ),
        ),
    ]
    statuses = _status_columns([x.by_status for x in m.per_mechanic])
    found.append(
        Section(
            "Mechanics involved",
            facts=(
                ("Participating mechanics", f"{m.participating} of {m.total}"),
                ("Mechanics with a completed request", str(m.with_completed_session)),
            ),
            tables=(
                Table(
                    ("Mechanic", "Email", "Type", "Sessions", *statuses),
                    tuple(
                        (
                            _short(x.id),
                            x.email or "—",
                            x.type or "—",
                            str(x.total),
                            *(str(x.by_status.get(s, 0)) for s in statuses),
                        )
                        for x in m.per_mechanic
                    ),
                ),
            )
            if m.per_mechanic
            else (),
        )
    )
    found.append(
        Section(
            "Time analysis",
            facts=(
                ("Oldest request", iso_utc(r.oldest) or "—"),
                ("Newest request", iso_utc(r.newest) or "—"),
                ("Time span", f"{r.span_days} days"),
                ("Responses", str(response.count)),
                ("Average response time", _minutes(response.avg)),
                ("Fastest response", _minutes(response.min)),
                ("Slowest response", _minutes(response.max)),
            ),
            tables=(_histogram(r),) if response.count else (),
        )
    )
    found.append(_time_periods(r))
    found.append(
        Section(
            "Session types",
            tables=(_breakdown("Type", r.by_session_type, r.total),),
        )
    )
    statuses = _status_columns([x.by_status for x in c.per_customer])
    found.append(
        Section(
            "Customers",
            facts=(
                ("Customer profiles", str(c.total)),
                ("Customers who made requests", str(c.active)),
                ("Customer profiles with requests", str(c.with_requests)),
                ("Requests whose customer has no profile", str(r.without_customer_profile)),
                ("Profiles with full geography", f"{c.with_full_geo} of {c.total}"),
                ("Provinces", _counts(c.provinces)),
            ),
            tables=(
                Table(
                    ("Customer", "Sessions", *statuses, "Profile"),
                    tuple(
                        (
                            x.email or _short(x.id),
                            str(x.total),
                            *(str(x.by_status.get(s, 0)) for s in statuses),
                            "yes" if x.has_profile else "MISSING",
                        )
                        for x in c.per_customer
                    ),
                ),
            )
            if c.per_customer
            else (),
        )
    )
    cancelled = r.cancelled_before_assignment + r.cancelled_after_assignment
    found.append(
        Section(
            "Cancellations",
            tables=(
                Table(
                    ("Cancelled", "Count", "Share of cancellations"),
                    (
                        (
                            "Before a mechanic was assigned",
                            str(r.cancelled_before_assignment),
                            _percent(r.cancelled_before_assignment, cancelled),
                        ),
                        (
                            "After a mechanic was assigned",
                            str(r.cancelled_after_assignment),
                            _percent(r.cancelled_after_assignment, cancelled),
                        ),
                    ),
                ),
            ),
        )
    )
    found.append(
        Section(
            "Workshop routing",
            facts=(
                ("Routed to a workshop", str(r.with_workshop)),
                ("With a preferred workshop", str(r.with_preferred_workshop)),
                ("With a preferred mechanic", str(r.with_preferred_mechanic)),
                ("Priority broadcasts", str(r.priority_broadcasts)),
                ("Request types", _counts(r.by_request_type)),
                ("Follow-ups", str(r.follow_ups)),
                ("Urgent", str(r.urgent)),
            ),
            tables=(_breakdown("Routing type", r.by_routing_type, r.total),),
        )
    )
    found.append(
        Section(
            "Mechanic profiles",
            facts=(
                ("Mechanics", str(m.total)),
                ("Complete profiles", str(m.complete)),
                ("Incomplete profiles", str(m.incomplete_count)),
            ),
            tables=(
                Table(
                    ("Type", "Mechanics", "Complete"),
                    tuple(
                        (t, str(n), str(m.complete_by_type.get(t, 0))) for t, n in m.by_type.items()
                    ),
                ),
                *(
                    (
                        Table(
                            ("Incomplete mechanic", "Email", "Type", "Score", "Missing"),
                            tuple(
                                (
                                    _short(x.id),
                                    x.email or "—",
                                    x.type,
                                    format_number(x.profile_completion_score),
                                    ", ".join(x.missing) or "—",
                                )
                                for x in m.incomplete
                            ),
                        ),
                    )
                    if m.incomplete
                    else ()
                ),
            ),
        )
    )
    found.append(
        Section(
            "Workshops",
            facts=(
                ("Workshops", str(report.workshops.total)),
                ("Provinces", _counts(report.workshops.provinces)),
            ),
        )
    )
    s = report.sessions
    found.append(
        Section(
            "Sessions",
            facts=(("Completed sessions by mechanic type", _counts(s.completed_by_mechanic_type)),),
            tables=(_breakdown("Status", s.by_status, s.total),),
        )
    )
    a = report.session_assignments
    found.append(
        Section(
            "Session assignments",
            facts=(("Assignments", str(a.total)),),
            tables=(_breakdown("Status", a.by_status, a.total),),
        )
    )
    found.append(
        Section(
            f"Sample requests (first {len(r.sample)})",
            tables=(
                Table(
                    ("#", "Request", "Status", "Type", "Created"),
                    tuple(
                        (
                            str(i),
                            _short(x.id),
                            x.status,
                            x.session_type,
                            iso_utc(x.created_at) or "",
                        )
                        for i, x in enumerate(r.sample, 1)
                    ),
                ),
            )
            if r.sample
            else (),
        )
    )
    return _marked(report, found)


#: Shown in place of a metric the database cannot measure (docs/report.md).
NOT_AVAILABLE = "not available"

#: The metrics each fact shows, by section title (without its "(...)" part) and label.
_FACT_METRICS: dict[tuple[str, str], tuple[str, ...]] = {
    ("Mechanics involved", "Participating mechanics"): ("mechanics.participating",),
    ("Mechanics involved", "Mechanics with a completed request"): (
        "mechanics.with_completed_session",
    ),
    ("Time analysis", "Oldest request"): ("session_requests.oldest",),
    ("Time analysis", "Newest request"): ("session_requests.newest",),
    ("Time analysis", "Time span"): ("session_requests.span_days",),
    ("Time analysis", "Responses"): ("session_requests.response_minutes",),
    ("Time analysis", "Average response time"): ("session_requests.response_minutes",),
    ("Time analysis", "Fastest response"): ("session_requests.response_minutes",),
    ("Time analysis", "Slowest response"): ("session_requests.response_minutes",),
    ("Time periods", "Calendar months"): ("session_requests.local_months",),
    ("Time periods", "Weekdays"): ("session_requests.local_weekdays",),
    ("Customers", "Customer profiles"): ("customers.total",),
    ("Customers", "Customers who made requests"): ("customers.active",),
    ("Customers", "Customer profiles with requests"): ("customers.with_requests",),
    ("Customers", "Requests whose customer has no profile"): (
        "session_requests.without_customer_profile",
    ),
    ("Customers", "Profiles with full geography"): ("customers.with_full_geo", "customers.total"),
    ("Customers", "Provinces"): ("customers.provinces",),
    ("Workshop routing", "Routed to a workshop"): ("session_requests.with_workshop",),
    ("Workshop routing", "With a preferred workshop"): (
        "session_requests.with_preferred_workshop",
    ),
    ("Workshop routing", "With a preferred mechanic"): (
        "session_requests.with_preferred_mechanic",
    ),
    ("Workshop routing", "Priority broadcasts"): ("session_requests.priority_broadcasts",),
    ("Workshop routing", "Request types"): ("session_requests.by_request_type",),
    ("Workshop routing", "Follow-ups"): ("session_requests.follow_ups",),
    ("Workshop routing", "Urgent"): ("session_requests.urgent",),
    ("Mechanic profiles", "Complete profiles"): ("mechanics.complete",),
    ("Mechanic profiles", "Incomplete profiles"): ("mechanics.incomplete_count",),
    ("Workshops", "Workshops"): ("workshops.total",),
    ("Workshops", "Provinces"): ("workshops.provinces",),
    ("Sessions", "Completed sessions by mechanic type"): (
        "sessions.completed_by_mechanic_type",
    ),
    ("Session assignments", "Assignments"): ("session_assignments.total",),
}

#: The metrics each table shows, by section title and the table's first header, with the
#: label of the fact that replaces the table when one of them cannot be measured.
_TABLE_METRICS: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("Status breakdown", "Status"): ("Statuses", ("session_requests.by_status",)),
    ("Assignment", "Assignment status"): ("Assignment", ("session_requests.assigned",)),
    ("Mechanics involved", "Mechanic"): ("Requests per mechanic", ("mechanics.per_mechanic",)),
    ("Session types", "Type"): ("Session types", ("session_requests.by_session_type",)),
    ("Time analysis", "Response time (minutes)"): (
        "Response times", ("session_requests.response_histogram",)
    ),
    ("Time periods", "Month"): ("Requests per month", ("session_requests.by_local_month",)),
    ("Time periods", "Weekday"): ("Requests per weekday", ("session_requests.by_local_weekday",)),
    ("Time periods", "Local hour"): ("Requests per hour", ("session_requests.by_local_hour",)),
    ("Customers", "Customer"): ("Requests per customer", ("customers.per_customer",)),
    ("Cancellations", "Cancelled"): (
        "Cancellations",
        (
            "session_requests.cancelled_before_assignment",
            "session_requests.cancelled_after_assignment",
        ),
    ),
    ("Workshop routing", "Routing type"): (
        "Routing types", ("session_requests.by_routing_type",)
    ),
    ("Mechanic profiles", "Type"): (
        "Mechanic types", ("mechanics.by_type", "mechanics.complete_by_type")
    ),
    ("Mechanic profiles", "Incomplete mechanic"): (
        "Incomplete mechanics", ("mechanics.incomplete",)
    ),
    ("Sessions", "Status"): ("Statuses", ("sessions.by_status",)),
    ("Session assignments", "Status"): ("Statuses", ("session_assignments.by_status",)),
    ("Sample requests", "#"): ("Sample requests", ("session_requests.sample",)),
}


def _marked(report: Report, found: list[Section]) -> list[Section]:
    """Return the sections with each metric the database cannot measure shown as not available.

    A fact's value becomes :data:`NOT_AVAILABLE`; a table is replaced by a fact saying so.
    The sections are unchanged on a database that measures everything.
    """
    if not report.unavailable:
        return found
    marked = []
    for section in found:
        title = section.title.split(" (")[0]
        facts = [
            (label, NOT_AVAILABLE if _lacking(report, _FACT_METRICS.get((title, label))) else value)
            for label, value in section.facts
        ]
        tables = [
            table
            for table in section.tables
            if not _lacking(report, _TABLE_METRICS.get((title, table.headers[0]), ("", ()))[1])
        ]
        facts += [
            (label, NOT_AVAILABLE)
            for (where, _), (label, metrics) in _TABLE_METRICS.items()
            if where == title and _lacking(report, metrics)
        ]
        marked.append(dataclasses.replace(section, facts=tuple(facts), tables=tuple(tables)))
    return marked


def _lacking(report: Report, metrics: tuple[str, ...] | None) -> bool:
    return any(not report.available(metric) for metric in metrics or ())


def _not_available(report: Report) -> list[Section]:
    """Return the section naming, one line each, what the database cannot measure or check."""
    if not report.unavailable:
        return []
    return [
        Section(
            "Not available on this database",
            facts=tuple(
                (metric, f"needs {', '.join(missing)}")
                for metric, missing in report.unavailable.items()
            ),
        )
    ]


def _minutes(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} minutes"


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{key} {n}" for key, n in counts.items()) or "none"


def _assessment(report: Report, *, met: str, unmet: str) -> Section:
    return Section(
        "Current State Assessment",
        tables=(
            Table(
                ("Metric", "Current", "Needed", "Status"),
                tuple(
                    (t.metric, format_number(t.current), t.needed, _status(report, t, met, unmet))
                    for t in report.targets
                ),
            ),
        ),
    )


def _status(report: Report, result: TargetResult, met: str, unmet: str) -> str:
    """Return a target's status cell: met, not met, or not measurable and why."""
    if not result.measurable:
        return f"not measurable: needs {', '.join(result.missing)}"
    status = met if result.met else unmet
    if result.metric == "integrity_violations" and report.skipped_rules:
        count = len(report.skipped_rules)
        status += f" ({count} rule{'s' if count > 1 else ''} skipped)"
    return status


def _integrity(report: Report) -> Section:
    skipped = len(report.skipped_rules)
    return Section(
        "Integrity",
        facts=(("Rows that break a rule", str(report.integrity_violations)),)
        + (
            (("Rules skipped (columns absent on this database)", str(skipped)),)
            if skipped
            else ()
        ),
        tables=(
            Table(
                ("Rule", "Violations", "Sample ids"),
                tuple(
                    (x.rule, str(x.violations), ", ".join(_short(i) for i in x.sample_ids) or "—")
                    for x in report.integrity
                )
                + tuple(
                    (x.rule, "skipped", f"needs {', '.join(x.missing)}")
                    for x in report.skipped_rules
                ),
            ),
        ),
    )


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _markdown(report: Report) -> str:
    parts = [f"# Seed report\n\n**Taken at:** {iso_utc(report.now)}"]
    all_sections = sections(report) + _not_available(report)
    if report.targets:
        all_sections.append(_assessment(report, met="✅", unmet="⚠️"))
    all_sections.append(_integrity(report))
    for section in all_sections:
        lines = [f"## {section.title}", ""]
        lines += [f"- **{label}:** {value}" for label, value in section.facts]
        for table in section.tables:
            if lines[-1] != "":
                lines.append("")
            lines.append("| " + " | ".join(table.headers) + " |")
            lines.append("|" + "|".join("---" for _ in table.headers) + "|")
            lines += [
                "| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in table.rows
            ]
        parts.append("\n".join(lines).rstrip())
    return "\n\n".join(parts) + "\n"


def _text(report: Report) -> str:
    parts = [f"Seed report, taken at {iso_utc(report.now)}"]
    all_sections = sections(report) + _not_available(report)
    if report.targets:
        all_sections.append(_assessment(report, met="met", unmet="NOT MET"))
    all_sections.append(_integrity(report))
    for section in all_sections:
        lines = [section.title, "=" * len(section.title)]
        width = max((len(label) for label, _ in section.facts), default=0)
        lines += [f"{label + ':':<{width + 1}} {value}" for label, value in section.facts]
        for table in section.tables:
            lines.append("")
            lines += _aligned(table)
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _aligned(table: Table) -> list[str]:
    widths = [len(h) for h in table.headers]
    for row in table.rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(w)
            if cell.lstrip("-").replace(".", "").rstrip("%").isdigit()
            else cell.ljust(w)
            for cell, w in zip(cells, widths, strict=True)
        ).rstrip()

    return [line(table.headers), "  ".join("-" * w for w in widths), *map(line, table.rows)]
