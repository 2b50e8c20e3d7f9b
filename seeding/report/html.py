"""The report as one self-contained HTML page: the audit's picture, charts and every figure.

Everything is drawn from the report's JSON (:meth:`seeding.report.Report.to_dict`), so the
page shows what the JSON says and a metric added to the contract appears without a line
here: every map of counts gets a chart (the audit's in its order first, then the others), and
every number a row under "All figures". Each figure shown carries its JSON path in a
``data-metric`` attribute, which the tests read back against the JSON.

The charts are static SVG drawn by pygal (imported only when a page is drawn), inline, with
pygal's script left out (``js=[]``):
the page loads nothing, from the network or elsewhere. Values are printed on the bars, since
there is no script for tooltips. With a comparison, each chart of a map draws both sides.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, Final

from seeding.report.compare import Change, Comparison, bucket_label, is_map, value_at
from seeding.report.model import NULL_KEY, Report
from seeding.scenario.targets import format_number

#: Colours of the series: the first for a single series; a status has its own.
PALETTE: Final = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4",
                  "#84cc16", "#f97316", "#64748b", "#ec4899", "#14b8a6", "#a855f7")
STATUS_COLORS: Final = {
    "completed": "#10b981", "cancelled": "#ef4444", "pending": "#f59e0b",
    "accepted": "#2563eb", "expired": "#64748b", "unattended": "#8b5cf6",
}
#: The colour of the other report's series in a comparison.
BEFORE_COLOR: Final = "#cbd5e1"
#: The colours of a chart's maps (this report's, then the other's, lighter), when it has several.
MAP_COLORS: Final = (("#2563eb", "#bfdbfe"), ("#10b981", "#a7f3d0"), ("#f59e0b", "#fde68a"))

#: The chart's width in SVG units; the page scales it to the column (a phone's too).
CHART_WIDTH: Final = 460

#: The most characters of a label a chart shows (the table beside it shows it whole).
LABEL_LENGTH: Final = 20

NOT_AVAILABLE: Final = "not available"


@dataclass(frozen=True)
class Panel:
    """One chart of the audit's picture and the figures it draws."""

    title: str
    #: The map (or list) the chart draws, as a JSON path.
    path: str
    #: ``bars`` (a map), ``histogram``, ``customers``, ``mechanics``, ``pairs`` (numbers).
    kind: str = "bars"
    #: For ``pairs``: each bar's label and its number's path. For ``bars``: further maps
    #: drawn as other series, with their names.
    series: tuple[tuple[str, str], ...] = ()
    note: str = ""


#: The audit's picture, in the order it asks its questions.
PANELS: Final = (
    Panel("Requests by status", "session_requests.by_status"),
    Panel("Assigned and unassigned", "session_requests.assigned", "pairs",
          (("assigned", "session_requests.assigned"),
           ("never assigned", "session_requests.unassigned"))),
    Panel("Cancelled before and after assignment", "session_requests.cancelled_before_assignment",
          "pairs",
          (("before assignment", "session_requests.cancelled_before_assignment"),
           ("after assignment", "session_requests.cancelled_after_assignment"))),
    Panel("Requests by session type", "session_requests.by_session_type"),
    Panel("Requests by routing", "session_requests.by_routing_type"),
    Panel("Response times (minutes from request to acceptance)",
          "session_requests.response_histogram", "histogram"),
    Panel("Requests per customer", "customers.per_customer", "customers",
          note="the customers with the most requests, by status"),
    Panel("Requests per mechanic, by mechanic type", "mechanics.per_mechanic", "mechanics",
          note="the mechanics with the most requests"),
    Panel("Mechanics by type", "mechanics.by_type", "bars",
          (("complete profiles", "mechanics.complete_by_type"),)),
    Panel("Customers and workshops by province", "customers.provinces", "bars",
          (("workshops", "workshops.provinces"),)),
    Panel("Sessions by status", "sessions.by_status"),
    Panel("Session assignments by status", "session_assignments.by_status"),
    Panel("Completed sessions by mechanic type", "sessions.completed_by_mechanic_type"),
    Panel("Requests by request type", "session_requests.by_request_type"),
)

#: The key figures at the top of the page: label, path.
CARDS: Final = (
    ("requests", "session_requests.total"),
    ("cancelled", "session_requests.by_status.cancelled"),
    ("never assigned", "session_requests.unassigned"),
    ("customer profiles", "customers.total"),
    ("mechanics", "mechanics.total"),
    ("complete mechanics", "mechanics.complete"),
    ("workshops", "workshops.total"),
    ("sessions", "sessions.total"),
    ("rows breaking a rule", "integrity_violations"),
)

_CSS: Final = """
:root { color-scheme: light; --ink: #111827; --muted: #6b7280; --line: #e5e7eb;
  --ok: #047857; --bad: #b91c1c; --panel: #ffffff; --page: #f3f4f6; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--page); color: var(--ink);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", sans-serif; }
header, main, footer { max-width: 1180px; margin: 0 auto; padding: 12px 16px; }
h1 { font-size: 1.5rem; margin: 12px 0 4px; }
h2 { font-size: 1.2rem; margin: 28px 0 10px; }
h3 { font-size: 1rem; margin: 0 0 6px; }
.muted { color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(140px, 1fr)); gap: 10px;
  margin: 14px 0; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px;
  padding: 10px 12px; }
.card .figure { display: block; font-size: 1.6rem; font-weight: 650; }
.card .label { color: var(--muted); font-size: .85rem; }
.card .change { display: block; font-size: .8rem; color: var(--muted); }
.card.bad .figure { color: var(--bad); }
.panels { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 480px), 1fr));
  gap: 14px; align-items: start; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 10px;
  padding: 12px; min-width: 0; }
.panel svg { display: block; width: 100%; height: auto; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; margin: 6px 0; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.who { overflow-wrap: anywhere; min-width: 8em; }
td.ids { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .8rem;
  word-break: break-all; }
section.block { background: var(--panel); border: 1px solid var(--line); border-radius: 10px;
  padding: 12px; margin-bottom: 14px; }
.badge { display: inline-block; border-radius: 999px; padding: 0 8px; font-size: .8rem;
  font-weight: 600; white-space: nowrap; }
.badge.ok { background: #d1fae5; color: var(--ok); }
.badge.bad { background: #fee2e2; color: var(--bad); }
.badge.na { background: #e5e7eb; color: #374151; }
details summary { cursor: pointer; margin: 6px 0; }
@media (max-width: 520px) {
  body { font-size: 14px; }
  header, main, footer { padding: 8px 10px; }
  .card .figure { font-size: 1.3rem; }
  th, td { padding: 3px 5px; }
}
"""


def render_html(report: Report, comparison: Comparison | None = None) -> str:
    """Return the report as one HTML page that needs nothing else to show: no network, no file.

    Args:
        report: The report.
        comparison: The report compared with another (:func:`seeding.report.compare.compare`):
            the charts draw both sides, the tables show both values and the change.

    """
    page = _Page(report.to_dict(), comparison)
    return page.render()


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _path(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


class _Page:
    """The page under construction: the report's dict, the comparison, the charts drawn."""

    def __init__(self, data: Mapping[str, Any], comparison: Comparison | None) -> None:
        self.data = data
        self.comparison = comparison
        self.before = comparison.before if comparison is not None else None
        self.unavailable = {
            str(entry["metric"]): list(entry["missing"]) for entry in data.get("unavailable", ())
        }
        self.charts = 0

    # Values and their cells.

    def value(self, path: str) -> float | None:
        return value_at(self.data, _path(path))

    def raw(self, path: str) -> Any:
        node: Any = self.data
        for key in _path(path):
            if not isinstance(node, Mapping):
                return None
            node = node.get(key)
        return node

    def missing(self, path: str) -> list[str]:
        parts = path.split(".")
        for end in range(len(parts), 0, -1):
            found = self.unavailable.get(".".join(parts[:end]))
            if found:
                return found
        return []

    def cell(self, path: str, value: Any = None, *, looked_up: bool = True) -> str:
        """Return a table cell holding a figure, tagged with its JSON path."""
        if looked_up:
            value = self.value(path)
        shown = NOT_AVAILABLE if value is None else (
            format_number(value) if isinstance(value, int | float) else str(value)
        )
        return f'<td class="n" data-metric="{_esc(path)}">{_esc(shown)}</td>'

    def change_cells(self, path: str) -> str:
        """Return the before and change cells of a figure, in a comparison; else nothing."""
        if self.before is None:
            return ""
        change = Change(path, value_at(self.before, _path(path)), self.value(path))
        return (f'<td class="n">{_esc(change.show(change.before))}</td>'
                f'<td class="n">{_esc(change.change_text())}</td>')

    def change_headers(self) -> str:
        return '<th class="n">Before</th><th class="n">Change</th>' if self.before else ""

    # The page.

    def render(self) -> str:
        now = self.data.get("now")
        title = f"Seed report, {now}" if now else "Seed report"
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
            "<header>",
            "<h1>Seed report</h1>",
            f'<p class="muted">Taken at <span data-metric="now">{_esc(now)}</span>'
            f' · JSON contract version <span data-metric="version">'
            f'{_esc(self.data.get("version"))}</span>',
        ]
        if self.comparison is not None:
            parts.append(
                f" · compared with {_esc(self.comparison.source)}, taken at "
                f"{_esc(self.comparison.before_now or 'an unknown time')}"
            )
        parts += ["</p>", self.cards(), "</header>", "<main>"]
        parts += [self.picture(), self.targets(), self.integrity(), self.not_available(),
                  self.changes(), self.figures()]
        parts += [
            "</main><footer class=\"muted\"><p>Charts drawn with pygal "
            f"{_esc(version('pygal'))} as inline SVG; this page loads nothing else."
            "</p></footer></body></html>",
        ]
        return "\n".join(part for part in parts if part) + "\n"

    def cards(self) -> str:
        cards = []
        for label, path in CARDS:
            value = self.value(path)
            bad = path == "integrity_violations" and bool(value)
            extra = ""
            if path == "session_requests.by_status.cancelled":
                total = self.value("session_requests.total")
                if value is not None and total:
                    extra = f" ({100 * value / total:.1f}%)"
            change = ""
            if self.before is not None:
                moved = Change(path, value_at(self.before, _path(path)), value)
                change = f'<span class="change">{_esc(moved.change_text())} since before</span>'
            shown = NOT_AVAILABLE if value is None else format_number(value)
            cards.append(
                f'<div class="card{" bad" if bad else ""}"><span class="figure" '
                f'data-metric="{_esc(path)}">{_esc(shown)}</span>'
                f'<span class="label">{_esc(label)}{_esc(extra)}</span>{change}</div>'
            )
        targets = self.data.get("targets") or []
        if targets:
            met = sum(bool(t["met"]) for t in targets)
            cards.append(
                f'<div class="card{"" if met == len(targets) else " bad"}">'
                f'<span class="figure">{met} of {len(targets)}</span>'
                f'<span class="label">targets met</span></div>'
            )
        return f'<div class="cards">{"".join(cards)}</div>'

    def targets(self) -> str:
        targets = self.data.get("targets") or []
        if not targets:
            return ""
        compared = {t.metric: t for t in self.comparison.targets} if self.comparison else {}
        head = "<tr><th>Metric</th><th class=\"n\">Current</th><th>Needed</th><th>Status</th>"
        if compared:
            head += ('<th class="n">Before</th><th class="n">Gap before</th>'
                     '<th class="n">Gap after</th>')
        rows = [head + "</tr>"]
        for target in targets:
            metric = str(target["metric"])
            if target.get("missing"):
                badge = ('<span class="badge na">not measurable: needs '
                         f'{_esc(", ".join(target["missing"]))}</span>')
            elif target["met"]:
                badge = '<span class="badge ok">met</span>'
            else:
                badge = '<span class="badge bad">missed</span>'
            current = target.get("current")
            row = (f"<tr><td>{_esc(metric)}</td>"
                   f'<td class="n" data-target="{_esc(metric)}">'
                   f"{_esc(format_number(current))}</td>"
                   f"<td>{_esc(target['needed'])}</td><td>{badge}</td>")
            if compared and metric in compared:
                side = compared[metric]
                row += (f'<td class="n">{_esc(format_number(side.before.current))}</td>'
                        f'<td class="n">{_esc(format_number(side.gap_before))}</td>'
                        f'<td class="n">{_esc(format_number(side.gap_after))}</td>')
            rows.append(row + "</tr>")
        met = sum(bool(t["met"]) for t in targets)
        return (f'<section class="block" id="targets"><h2>Targets: {met} of {len(targets)} met'
                f'</h2><div class="scroll"><table>{"".join(rows)}</table></div></section>')

    # The charts.

    def picture(self) -> str:
        drawn: set[str] = set()
        panels = []
        for panel in PANELS:
            drawn.add(panel.path)
            drawn.update(path for _, path in panel.series)
            if panel.kind != "pairs" and panel.path not in self._known_paths():
                continue  # a metric of another version of the contract
            panels.append(self.panel(panel))
        for path in self._maps():
            if path in drawn or ".share_by_" in f".{path}":
                continue
            title = path.replace("_", " ").replace(".", ": ")
            panels.append(self.panel(Panel(title[:1].upper() + title[1:], path)))
        return f'<h2>The picture</h2><div class="panels">{"".join(panels)}</div>'

    def _known_paths(self) -> set[str]:
        found: set[str] = set()
        for section, value in self.data.items():
            if isinstance(value, Mapping):
                found.update(f"{section}.{key}" for key in value)
        return found

    def _maps(self) -> Iterator[str]:
        """Yield the path of every map of counts in the report, in the JSON's order."""

        def walk(path: tuple[str, ...], node: Any) -> Iterator[str]:
            if isinstance(node, Mapping):
                for key, value in node.items():
                    here = (*path, str(key))
                    if is_map(here) and (value is None or isinstance(value, Mapping)):
                        yield ".".join(here)
                    elif isinstance(value, Mapping):
                        yield from walk(here, value)

        for section, value in self.data.items():
            if isinstance(value, Mapping):
                yield from walk((section,), value)

    def panel(self, panel: Panel) -> str:
        heading = f"<h3>{_esc(panel.title)}</h3>"
        note = f'<p class="muted">{_esc(panel.note)}</p>' if panel.note else ""
        paths = [panel.path, *(path for _, path in panel.series)]
        lacking = sorted({column for path in paths for column in self.missing(path)})
        if lacking:
            return (f'<div class="panel">{heading}<p class="muted" '
                    f'data-metric="{_esc(panel.path)}">{NOT_AVAILABLE}: needs '
                    f"{_esc(', '.join(lacking))}</p></div>")
        draw = {
            "bars": self.bars, "pairs": self.pairs, "histogram": self.histogram,
            "customers": self.customers, "mechanics": self.mechanics,
        }[panel.kind]
        chart, table = draw(panel)
        return f'<div class="panel">{heading}{note}{chart}{table}</div>'

    def chart(self, kind: str, title: str, labels: Sequence[str],
              series: Sequence[tuple[str, Sequence[float | None], str]], *,
              horizontal: bool = True, stacked: bool = False) -> str:
        """Return one pygal chart (``kind``: its class) as inline SVG: no script, no comment."""
        import pygal
        from pygal.style import Style

        self.charts += 1
        legend = len(series) > 1
        rows = max(len(labels), 1)
        per_row = 24 if stacked or not horizontal else 14 + 16 * len(series)
        height = (80 + rows * per_row + (34 * ((len(series) + 1) // 2) if legend else 0)
                  if horizontal else 320)
        style = Style(
            background="transparent", plot_background="transparent",
            foreground="#1f2937", foreground_strong="#111827", foreground_subtle="#6b7280",
            font_family='system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
            label_font_size=13, major_label_font_size=13, value_font_size=12,
            value_label_font_size=12, legend_font_size=13, title_font_size=14,
            no_data_font_size=20, colors=tuple(color for _, _, color in series) or PALETTE,
            opacity="0.95", opacity_hover="1", transition="0ms",
            guide_stroke_color="#e5e7eb", major_guide_stroke_color="#d1d5db",
        )
        chart = getattr(pygal, kind)(
            js=[], disable_xml_declaration=True, style=style, width=CHART_WIDTH,
            height=height, print_values=True, print_zeroes=False, show_legend=legend,
            legend_at_bottom=True, legend_at_bottom_columns=min(len(series), 2), margin=6,
            spacing=8,
            truncate_label=24, truncate_legend=-1,
            value_formatter=_formatted, no_data_text="no data", show_y_guides=not horizontal,
            show_x_guides=horizontal, include_x_axis=True, print_values_position="center",
        )
        chart.uuid = f"c{self.charts}"  # the page's own ids, not random ones
        chart.x_labels = [_short(label) for label in labels]
        for name, values, _ in series:
            chart.add(name, list(values))
        svg = str(chart.render(is_unicode=True))
        # pygal's comments, and the inline config its script would read (none is loaded).
        svg = re.sub(r"<!--.*?-->|<script\b.*?</script>", "", svg, flags=re.S)
        svg = svg.replace("<title>Pygal</title>", f"<title>{_esc(title)}</title>", 1)
        return svg.replace("<svg ", f'<svg role="img" aria-label="{_esc(title)}" ', 1)

    def _sides(self, path: str) -> list[tuple[str, Mapping[str, Any]]]:
        """Return the map at ``path`` on each side: the other report's first, then this one's."""
        sides: list[tuple[str, Mapping[str, Any]]] = []
        if self.before is not None:
            node = _get(self.before, path)
            sides.append(("before", node if isinstance(node, Mapping) else {}))
        node = self.raw(path)
        sides.append(("now" if self.before is not None else "", node or {}))
        return sides

    def bars(self, panel: Panel) -> tuple[str, str]:
        maps = [("" if not panel.series else _series_name(panel.path), panel.path),
                *((name, path) for name, path in panel.series)]
        keys: dict[str, None] = {}
        for _, path in maps:
            for _, side in self._sides(path):
                keys.update(dict.fromkeys(str(key) for key in side))
        labels = list(keys)
        series = []
        for index, (name, path) in enumerate(maps):
            for side_name, side in self._sides(path):
                label = " ".join(part for part in (name, side_name) if part) or "requests"
                now, then = MAP_COLORS[index % len(MAP_COLORS)]
                if len(maps) == 1:
                    now, then = PALETTE[0], BEFORE_COLOR
                color = then if side_name == "before" else now
                series.append((label, [side.get(key) or None for key in labels], color))
        if len(maps) == 1 and len(labels) > 12:  # hours of a day: a row of columns
            chart = self.chart("Bar", panel.title, labels, series, horizontal=False)
        else:  # the first key on top
            chart = self.chart("HorizontalBar", panel.title, labels[::-1],
                               [(n, v[::-1], c) for n, v, c in series])
        head = "<tr><th></th>" + "".join(
            f'<th class="n">{_esc(name or "count")}</th>{self.change_headers()}'
            for name, _ in maps
        )
        share = len(maps) == 1 and panel.path.startswith("session_requests.by_")
        head += '<th class="n">share</th>' if share else ""
        total = self.value("session_requests.total") if share else None
        rows = [head + "</tr>"]
        for key in labels:
            row = f"<tr><td>{_esc(key)}</td>"
            for _, path in maps:
                row += self.cell(f"{path}.{key}") + self.change_cells(f"{path}.{key}")
            if share:
                count = self.value(f"{panel.path}.{key}") or 0
                row += f'<td class="n">{_percent(count, total)}</td>'
            rows.append(row + "</tr>")
        return chart, _table(rows)

    def pairs(self, panel: Panel) -> tuple[str, str]:
        labels = [label for label, _ in panel.series]
        series = []
        if self.before is not None:
            series.append(("before", [value_at(self.before, _path(p)) for _, p in panel.series],
                           BEFORE_COLOR))
        series.append(("now" if self.before is not None else "requests",
                       [self.value(p) for _, p in panel.series], PALETTE[0]))
        chart = self.chart("HorizontalBar", panel.title, labels[::-1],
                           [(n, list(v)[::-1], c) for n, v, c in series])
        total = sum(v or 0 for v in series[-1][1])
        rows = ["<tr><th></th><th class=\"n\">count</th>" + self.change_headers()
                + '<th class="n">share</th></tr>']
        for label, path in panel.series:
            rows.append(f"<tr><td>{_esc(label)}</td>{self.cell(path)}{self.change_cells(path)}"
                        f'<td class="n">{_percent(self.value(path) or 0, total)}</td></tr>')
        return chart, _table(rows)

    def histogram(self, panel: Panel) -> tuple[str, str]:
        buckets = self.raw(panel.path) or []
        labels = [bucket_label(bucket) for bucket in buckets]
        series = []
        if self.before is not None:
            series.append(("before", [value_at(self.before, (*_path(panel.path), label)) or None
                                      for label in labels], BEFORE_COLOR))
        series.append(("now" if self.before is not None else "responses",
                       [bucket.get("count") or None for bucket in buckets], PALETTE[0]))
        chart = self.chart("Bar", panel.title, labels, series, horizontal=False)
        rows = ["<tr><th>minutes</th><th class=\"n\">responses</th>"
                + self.change_headers() + "</tr>"]
        for label in labels:
            path = f"{panel.path}.{label}"
            rows.append(f"<tr><td>{_esc(label)}</td>{self.cell(path)}"
                        f"{self.change_cells(path)}</tr>")
        facts = []
        for name, key in (("responses", "count"), ("average", "avg"), ("fastest", "min"),
                          ("slowest", "max")):
            path = f"session_requests.response_minutes.{key}"
            facts.append(f"<tr><td>{name}</td>{self.cell(path)}{self.change_cells(path)}</tr>")
        return chart, _table(rows) + _table(facts)

    def customers(self, panel: Panel) -> tuple[str, str]:
        people = list(self.raw(panel.path) or [])
        labels = [str(c.get("email") or str(c["id"])[:8]) for c in people]
        statuses: dict[str, None] = {}
        for person in people:
            statuses.update(dict.fromkeys(person.get("by_status") or {}))
        series = [
            (status, [(p.get("by_status") or {}).get(status) or None for p in people][::-1],
             STATUS_COLORS.get(status, PALETTE[index % len(PALETTE)]))
            for index, status in enumerate(statuses)
        ]
        chart = self.chart("HorizontalStackedBar", panel.title, labels[::-1], series,
                           stacked=True)
        return chart, self.people_table(panel.path, people, labels, "customer")

    def mechanics(self, panel: Panel) -> tuple[str, str]:
        people = list(self.raw(panel.path) or [])
        labels = [str(m.get("name") or str(m["id"])[:8]) for m in people]
        kinds = list(dict.fromkeys(str(m.get("type") or NULL_KEY) for m in people))
        series = [
            (kind, [m["total"] if str(m.get("type") or NULL_KEY) == kind else None
                    for m in people][::-1], PALETTE[index % len(PALETTE)])
            for index, kind in enumerate(kinds)
        ]
        chart = self.chart("HorizontalStackedBar", panel.title, labels[::-1], series,
                           stacked=True)
        return chart, self.people_table(panel.path, people, labels, "mechanic")

    def people_table(self, path: str, people: Sequence[Mapping[str, Any]],
                     labels: Sequence[str], noun: str) -> str:
        rows = [f'<tr><th>{noun}</th><th>type</th><th class="n">requests</th>'
                "<th>by status</th></tr>"
                if noun == "mechanic" else
                f'<tr><th>{noun}</th><th class="n">requests</th><th>by status</th></tr>']
        for index, (person, label) in enumerate(zip(people, labels, strict=True)):
            kind = f"<td>{_esc(person.get('type') or '—')}</td>" if noun == "mechanic" else ""
            by_status = ", ".join(f"{k} {n}" for k, n in (person.get("by_status") or {}).items())
            total = self.cell(f"{path}.{index}.total", person.get("total"), looked_up=False)
            rows.append(f'<tr><td class="who">{_esc(label)}</td>{kind}{total}'
                        f"<td>{_esc(by_status)}</td></tr>")
        return _table(rows) if people else '<p class="muted">none</p>'

    # The rest of the page.

    def integrity(self) -> str:
        rules = list(self.data.get("integrity") or [])
        total = self.data.get("integrity_violations")
        rows = ["<tr><th>Rule</th><th class=\"n\">Violations</th>" + self.change_headers()
                + "<th>First offending ids</th></tr>"]
        for rule in rules:
            path = f"integrity.{rule['rule']}"
            bad = bool(rule["violations"])
            badge = (f'<span class="badge {"bad" if bad else "ok"}">'
                     f'{"broken" if bad else "kept"}</span>')
            rows.append(
                f"<tr><td>{_esc(rule['rule'])} {badge}</td>"
                f"{self.cell(path, rule['violations'], looked_up=False)}"
                f"{self.change_cells(path)}"
                f'<td class="ids">{_esc(", ".join(rule["sample_ids"]) or "—")}</td></tr>'
            )
        for skipped in self.data.get("skipped_rules") or []:
            rows.append(
                f"<tr><td>{_esc(skipped['rule'])} <span class=\"badge na\">skipped</span></td>"
                f'<td class="n">—</td>{"<td></td><td></td>" if self.before else ""}'
                f"<td>needs {_esc(', '.join(skipped['missing']))}</td></tr>"
            )
        return (f'<section class="block" id="integrity"><h2>Integrity: '
                f'<span data-metric="integrity_violations">{_esc(format_number(total))}</span>'
                f" rows break a rule</h2>{_table(rows)}</section>")

    def not_available(self) -> str:
        if not self.unavailable:
            return ""
        items = "".join(
            f"<li><strong>{_esc(metric)}</strong>: needs {_esc(', '.join(missing))}</li>"
            for metric, missing in self.unavailable.items()
        )
        return (f'<section class="block" id="unavailable"><h2>Not available on this database'
                f"</h2><ul>{items}</ul></section>")

    def changes(self) -> str:
        if self.comparison is None:
            return ""
        changed, unchanged = self.comparison.changed(), self.comparison.unchanged()

        def table(changes: Sequence[Change]) -> str:
            rows = ['<tr><th>Metric</th><th class="n">Before</th><th class="n">After</th>'
                    '<th class="n">Change</th></tr>']
            rows += [
                f"<tr><td>{_esc(c.metric)}</td><td class=\"n\">{_esc(c.show(c.before))}</td>"
                f'<td class="n">{_esc(c.show(c.after))}</td>'
                f'<td class="n">{_esc(c.change_text())}</td></tr>'
                for c in changes
            ]
            return _table(rows)

        return (f'<section class="block" id="changes"><h2>Before and after: '
                f"{len(changed)} of {len(self.comparison.metrics)} metrics changed</h2>"
                f"{table(changed) if changed else '<p>Nothing changed.</p>'}"
                f"<details><summary>Unchanged ({len(unchanged)})</summary>{table(unchanged)}"
                "</details></section>")

    def figures(self) -> str:
        """Return every number and list of the report, section by section, maps aside."""
        blocks = []
        for section, value in self.data.items():
            if not isinstance(value, Mapping):
                continue
            rows = ["<tr><th>Metric</th><th class=\"n\">Value</th>" + self.change_headers()
                    + "</tr>"]
            lists = []
            for path, item in _scalars((section,), value):
                if isinstance(item, list):
                    lists.append(self.rows_table(path, item))
                    continue
                if isinstance(item, str):  # an instant: no change to show
                    change = "<td></td><td></td>" if self.before is not None else ""
                else:
                    change = self.change_cells(path)
                rows.append(f"<tr><td>{_esc(path)}</td>"
                            f"{self.cell(path, item, looked_up=False)}{change}</tr>")
            blocks.append(f'<section class="block"><h3>{_esc(section)}</h3>{_table(rows)}'
                          f"{''.join(lists)}</section>")
        return f'<h2>All figures</h2>{"".join(blocks)}'

    def rows_table(self, path: str, items: Sequence[Any]) -> str:
        """Return a list of the report (customers, mechanics, the sample) as a table."""
        title = f"<h3>{_esc(path)}</h3>"
        if not items or not all(isinstance(item, Mapping) for item in items):
            return f'{title}<p class="muted">{"none" if not items else _esc(items)}</p>'
        columns = list(dict.fromkeys(key for item in items for key in item))
        rows = ["<tr>" + "".join(f"<th>{_esc(c)}</th>" for c in columns) + "</tr>"]
        for item in items:
            cells = []
            for column in columns:
                value = item.get(column)
                if isinstance(value, Mapping):
                    value = ", ".join(f"{k} {v}" for k, v in value.items())
                elif isinstance(value, list):
                    value = ", ".join(str(v) for v in value)
                elif isinstance(value, bool):
                    value = "yes" if value else "no"
                cells.append(f"<td>{_esc('—' if value is None or value == '' else value)}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        return title + _table(rows)


def _scalars(path: tuple[str, ...], node: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Yield each number, text and list under a section, by path; maps of counts are left out."""
    for key, value in node.items():
        here = (*path, str(key))
        if is_map(here):
            continue
        if isinstance(value, Mapping):
            yield from _scalars(here, value)
        else:
            yield ".".join(here), value


def _get(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for key in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _short(label: str) -> str:
    return label if len(label) <= LABEL_LENGTH else label[: LABEL_LENGTH - 1] + "…"


def _series_name(path: str) -> str:
    return path.split(".")[0].replace("_", " ")


def _formatted(value: Any) -> str:
    return "" if value is None else format_number(value)


def _percent(count: float, total: float | None) -> str:
    return f"{100 * count / total:.1f}%" if total else "—"


def _table(rows: Sequence[str]) -> str:
    return f'<div class="scroll"><table>{"".join(rows)}</table></div>'
