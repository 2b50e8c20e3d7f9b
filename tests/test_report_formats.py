"""The report as people read it: a self-contained HTML page, JUnit XML, before and after.

The page is rendered in headless Chromium (Debian's `chromium`): every chart must be drawn
and every figure it shows must equal the JSON's. The JUnit file is read with junitparser.
The comparison of an empty database with `diverse` must show each target's gap closing.
"""

from __future__ import annotations

import copy
import html
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import sqlalchemy as sa
from junitparser import Failure, JUnitXml, Skipped, TestSuite
from typer.testing import CliRunner

from seeding.cli import app
from seeding.db import database
from seeding.pytest_plugin import SeedServer
from seeding.report import Report, measure, render
from seeding.report.compare import compare, read_report_file
from seeding.report.html import PANELS
from seeding.scenario.targets import format_number

runner = CliRunner()

#: A database that is never there: a command that connects fails on it.
CLOSED_PORT = "postgresql://postgres@127.0.0.1:1/nothing"


@dataclass(frozen=True)
class Databases:
    """The module's databases: an empty one with the app's tables, and `diverse`."""

    empty: str
    diverse: str
    files: Path


def invoke(*arguments: str) -> Any:
    result = runner.invoke(app, list(arguments))
    assert "Traceback" not in result.output, result.output
    return result


@pytest.fixture(scope="module")
def dbs(test_server: SeedServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    names = [test_server.create_database("seeding_test_") for _ in range(2)]
    empty, diverse = (test_server.database_url(name) for name in names)
    for url in (empty, diverse):
        assert invoke("db", "create", "--db", url).exit_code == 0
    seeded = invoke("scenario", "diverse", "--db", diverse)
    assert seeded.exit_code == 0, seeded.output
    yield Databases(empty, diverse, tmp_path_factory.mktemp("formats"))
    for name in names:
        test_server.drop_database(name)


def report_file(dbs: Databases, name: str, *arguments: str) -> Path:
    """Write `seed report ... --output FILE` and return the file; the exit code as earned."""
    path = dbs.files / name
    result = invoke("report", *arguments, "--output", str(path))
    assert result.exit_code in (0, 1), result.output
    return path


@pytest.fixture(scope="module")
def diverse_report(dbs: Databases) -> Report:
    return measure.measure(dbs.diverse, scenario="diverse")


@pytest.fixture(scope="module")
def diverse_json(dbs: Databases) -> dict[str, Any]:
    path = report_file(dbs, "diverse.json", "--db", dbs.diverse, "--scenario", "diverse",
                       "--format", "json")
    found: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return found


@pytest.fixture(scope="module")
def page(dbs: Databases, diverse_json: dict[str, Any]) -> Path:
    return report_file(dbs, "diverse.html", "--db", dbs.diverse, "--scenario", "diverse",
                       "--format", "html")


def resolve(data: Any, path: str) -> Any:
    """Return the value at a ``data-metric`` path of the JSON (a list index is a number).

    A key a map lacks is 0 (the contract's maps hold only the values that occur); the
    histogram's buckets are named ``1-2``, ``60+``; ``integrity.<rule>`` is a rule's count.
    """
    if path.startswith("integrity."):
        rules = {r["rule"]: r["violations"] for r in data["integrity"]}
        return rules[path.removeprefix("integrity.")]
    node = data
    for key in path.split("."):
        if isinstance(node, list) and key.isdigit():
            node = node[int(key)]
        elif isinstance(node, list):  # the response histogram
            labels = {
                (f"{format_number(b['from_minutes'])}+" if b["to_minutes"] is None
                 else f"{format_number(b['from_minutes'])}-{format_number(b['to_minutes'])}"):
                b["count"] for b in node
            }
            node = labels[key]
        elif key not in node:
            return 0
        else:
            node = node[key]
    return node


def shown(value: Any) -> str:
    if value is None:
        return "not available"
    return format_number(value) if isinstance(value, int | float) else str(value)


class Figures(HTMLParser):
    """Collects the text of every element tagged ``data-metric`` (and ``data-target``)."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: list[tuple[str, str]] = []
        self.targets: list[tuple[str, str]] = []
        self.text: list[str] = []
        self._open: list[tuple[str, str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for kind in ("data-metric", "data-target"):
            if found.get(kind) is not None:
                self._open.append((tag, kind, [str(found[kind])]))

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][0] == tag:
            _, kind, (path, *text) = self._open.pop()
            (self.metrics if kind == "data-metric" else self.targets).append(
                (path, "".join(text).strip())
            )

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for _, _, parts in self._open:
            parts.append(data)


#: Measures each chart as Chromium laid it out: its box, and the bars it drew.
PROBE = """<script>
const charts = [...document.querySelectorAll('svg.pygal-chart')].map(svg => {
  const box = svg.getBoundingClientRect();
  const bars = [...svg.querySelectorAll('rect.rect')].filter(rect => {
    const b = rect.getBBox(); return b.width > 0 && b.height > 0; }).length;
  return {label: svg.getAttribute('aria-label'), width: box.width, height: box.height, bars};
});
const report = document.createElement('pre');
report.id = 'probe';
const root = document.documentElement;
report.textContent = JSON.stringify({charts, viewport: window.innerWidth,
                                     pageWidth: root.scrollWidth, shown: root.clientWidth});
(window.frameElement ? parent.document : document).body.appendChild(report);
</script>"""

#: Headless Chromium's window is at least 500 pixels wide: a phone's width is a frame's.
PHONE_FRAME = '<!DOCTYPE html><html><body><iframe width="{width}" height="844" srcdoc="{page}">' \
    "</iframe></body></html>"


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def dump_dom(page: Path, tmp_path: Path, width: int) -> str:
    """Return the page's DOM after Chromium laid it out at ``width`` and ran the probe."""
    probed = tmp_path / f"probed-{width}.html"
    text = page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>")
    if width < 500:  # the frame's document has the page's origin (srcdoc): it may write here
        text = PHONE_FRAME.format(width=width, page=html.escape(text, quote=True))
    probed.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         # No network: a request to any host fails (the page must need none).
         "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
         f"--window-size={width},900", "--virtual-time-budget=3000",
         f"--user-data-dir={tmp_path / f'profile-{width}'}", "--dump-dom", probed.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def probe_of(dom: str) -> dict[str, Any]:
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert match, dom[-2000:]
    found: dict[str, Any] = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    return found


# The HTML page.


def test_the_page_loads_nothing(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "<script" not in text and "<link" not in text and "@import" not in text
    assert not re.search(r"\b(src|href)\s*=", text)
    assert not re.search(r"url\(", text)
    # The only addresses are the SVG namespace's, which nothing fetches.
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) == {"http://www.w3.org/2000/svg"}
    assert text.count("<svg") >= len(PANELS)


def test_chromium_draws_every_chart_and_shows_the_json_figures(
    page: Path, diverse_json: dict[str, Any], tmp_path: Path
) -> None:
    dom = dump_dom(page, tmp_path, 1280)
    probe = probe_of(dom)
    charts = probe["charts"]
    titles = {chart["label"] for chart in charts}
    assert {panel.title for panel in PANELS} <= titles
    for chart in charts:  # each chart laid out, with its bars drawn
        assert chart["width"] > 300 and chart["height"] > 150, chart
        assert chart["bars"] > 0, chart
    assert probe["viewport"] == 1280 and probe["pageWidth"] == probe["shown"]
    requests = diverse_json["session_requests"]
    by_title = {chart["label"]: chart for chart in charts}
    assert by_title["Requests by status"]["bars"] == len(requests["by_status"])
    assert by_title["Response times (minutes from request to acceptance)"]["bars"] == sum(
        1 for bucket in requests["response_histogram"] if bucket["count"]
    )

    figures = Figures()
    figures.feed(dom)
    assert len(figures.metrics) > 200
    for path, text in figures.metrics:  # every figure shown is the JSON's
        assert text == shown(resolve(diverse_json, path)), path
    paths = {path for path, _ in figures.metrics}
    assert {"session_requests.total", "session_requests.assigned", "session_requests.unassigned",
            "session_requests.cancelled_before_assignment",
            "session_requests.cancelled_after_assignment", "customers.total", "mechanics.total",
            "workshops.total", "sessions.total", "integrity_violations",
            "session_requests.response_minutes.avg"} <= paths
    for section, key in (("session_requests", "by_status"), ("session_requests",
                                                               "by_session_type"),
                         ("session_requests", "by_routing_type"), ("customers", "provinces"),
                         ("workshops", "provinces"), ("sessions", "by_status"),
                         ("mechanics", "by_type")):
        assert {f"{section}.{key}.{k}" for k in diverse_json[section][key]} <= paths
    for rule in diverse_json["integrity"]:
        assert f"integrity.{rule['rule']}" in paths
    for index in range(len(diverse_json["customers"]["per_customer"])):
        assert f"customers.per_customer.{index}.total" in paths
    for index in range(len(diverse_json["mechanics"]["per_mechanic"])):
        assert f"mechanics.per_mechanic.{index}.total" in paths
    assert [t for t, _ in figures.targets] == [t["metric"] for t in diverse_json["targets"]]
    for (metric, text), target in zip(figures.targets, diverse_json["targets"], strict=True):
        assert text == format_number(target["current"]), metric
    visible = " ".join(" ".join(figures.text).split())
    met = sum(t["met"] for t in diverse_json["targets"])
    assert f"Targets: {met} of {len(diverse_json['targets'])} met" in visible
    for rule in diverse_json["integrity"]:  # the first offending ids, whole
        for identifier in rule["sample_ids"]:
            assert identifier in visible


def test_the_page_fits_a_phone(page: Path, tmp_path: Path) -> None:
    probe = probe_of(dump_dom(page, tmp_path, 390))
    assert probe["viewport"] == 390
    assert probe["pageWidth"] == probe["shown"]  # wide tables scroll inside their box, not the page
    for chart in probe["charts"]:
        assert 300 <= chart["width"] <= 390 and chart["bars"] > 0, chart


def test_a_new_map_of_the_contract_gets_a_chart(diverse_report: Report) -> None:
    """A map the page does not name (one a later contract adds) is drawn all the same."""
    from seeding.report.html import _Page

    data = diverse_report.to_dict()
    data["sessions"]["by_weather"] = {"sunny": 7, "rainy": 3}
    text = _Page(data, None).render()
    assert 'aria-label="Sessions: by weather"' in text
    assert 'data-metric="sessions.by_weather.rainy">3<' in text


def test_an_unavailable_metric_reads_not_available(diverse_report: Report) -> None:
    from seeding.report.html import _Page

    data = diverse_report.to_dict()
    data["session_requests"]["by_routing_type"] = None
    data["unavailable"] = [{"metric": "session_requests.by_routing_type",
                            "missing": ["session_requests.routing_type"]}]
    text = _Page(data, None).render()
    assert ('data-metric="session_requests.by_routing_type">not available: needs '
            "session_requests.routing_type<") in text
    assert "<li><strong>session_requests.by_routing_type</strong>: needs" in text


def test_the_page_is_the_same_twice(diverse_report: Report) -> None:
    assert render(diverse_report, "html") == render(diverse_report, "html")


def test_the_response_histogram_counts_each_response_once(engine: sa.Engine) -> None:
    from test_report import NOW, make_audit_like

    from seeding.report import build_report

    with engine.begin() as connection:
        make_audit_like(connection)  # responses of 2, 10.5, 0.5 and 4.25 minutes
        found = build_report(connection, now=NOW).to_dict()["session_requests"]
    counts = {f"{b['from_minutes']}-{b['to_minutes']}": b["count"]
              for b in found["response_histogram"]}
    assert counts == {"0-1": 1, "1-2": 0, "2-3": 1, "3-5": 1, "5-10": 0, "10-15": 1,
                      "15-30": 0, "30-60": 0, "60-None": 0}  # a bucket holds its lower edge
    assert sum(counts.values()) == found["response_minutes"]["count"]
    table = render(build_report_of(engine), "markdown")
    assert "| 2-3 | 1 | 25.0% |" in table and "| 60+ | 0 | 0.0% |" in table


def build_report_of(engine: sa.Engine) -> Report:
    from test_report import NOW

    from seeding.report import build_report

    with engine.connect() as connection:
        return build_report(connection, now=NOW)


# JUnit.


def test_junit_has_one_case_per_target_and_rule(
    dbs: Databases, diverse_json: dict[str, Any]
) -> None:
    path = report_file(dbs, "diverse.xml", "--db", dbs.diverse, "--scenario", "diverse",
                       "--format", "junit")
    xml = JUnitXml.fromfile(str(path))
    suites = {suite.name: suite for suite in xml if isinstance(suite, TestSuite)}
    assert list(suites) == ["targets", "integrity"]
    targets, integrity = suites["targets"], suites["integrity"]
    assert [case.name for case in targets] == [t["metric"] for t in diverse_json["targets"]]
    assert [case.name for case in integrity] == [r["rule"] for r in diverse_json["integrity"]]
    assert targets.tests == len(diverse_json["targets"])
    assert integrity.tests == len(diverse_json["integrity"])
    missed = {t["metric"] for t in diverse_json["targets"] if not t["met"]}
    assert {case.name for case in targets if not case.is_passed} == missed
    broken = {r["rule"] for r in diverse_json["integrity"] if r["violations"]}
    assert {case.name for case in integrity if not case.is_passed} == broken
    assert xml.failures == len(missed) + len(broken)


def test_junit_failures_give_expected_and_observed(dbs: Databases, tmp_path: Path) -> None:
    # The empty database against diverse's targets: most are missed.
    path = report_file(dbs, "empty.xml", "--db", dbs.empty, "--scenario", "diverse",
                       "--format", "junit")
    suites = {s.name: s for s in JUnitXml.fromfile(str(path)) if isinstance(s, TestSuite)}
    cases = {case.name: case for case in suites["targets"]}
    [failure] = cases["session_requests.total"].result
    assert isinstance(failure, Failure)
    assert failure.message == "session_requests.total: expected >= 120, observed 0"
    assert failure.text == "expected: >= 120\nobserved: 0"
    assert cases["mechanics.incomplete_count"].is_passed  # <= 1 holds on nothing
    assert suites["targets"].failures == sum(not case.is_passed for case in cases.values()) > 40


def test_a_broken_rule_is_a_failure_with_its_ids(test_server: SeedServer, tmp_path: Path) -> None:
    name = test_server.create_database("seeding_test_")
    try:
        url = test_server.database_url(name)
        assert invoke("db", "create", "--db", url).exit_code == 0
        engine = database.engine_for(url)
        with engine.begin() as connection:
            connection.execute(sa.text(  # a customer in Toronto, whose email is real
                "INSERT INTO profiles (id, role, email, address_line1, city, province, "
                "postal_code, latitude, longitude) VALUES "
                "('00000000-0000-0000-0000-000000000001', 'customer', 'someone@gmail.com', "
                "'1 Main St', 'Toronto', 'ON', 'M5V 1A1', 43.7, -79.4)"
            ))
        engine.dispose()
        result = invoke("report", "--db", url, "--format", "junit")
        assert result.exit_code == 0, result.output
        xml = JUnitXml.fromstring(result.stdout.encode())
        [integrity] = [s for s in xml if isinstance(s, TestSuite) and s.name == "integrity"]
        failed = [case for case in integrity if not case.is_passed]
        assert [case.name for case in failed] == ["emails at reserved domains"]
        [failure] = failed[0].result
        assert isinstance(failure, Failure)
        assert failure.message == ("emails at reserved domains: expected 0 rows breaking it, "
                                   "observed 1")
        assert "first ids: 00000000-0000-0000-0000-000000000001" in str(failure.text)
    finally:
        test_server.drop_database(name)


def test_a_skipped_rule_is_a_skipped_case(diverse_report: Report) -> None:
    import dataclasses

    from seeding.report.model import SkippedRule

    skipped = dataclasses.replace(
        diverse_report,
        skipped_rules=(SkippedRule("workshop geography agrees", ("organizations.latitude",)),),
    )
    xml = JUnitXml.fromstring(render(skipped, "junit").encode())
    [integrity] = [s for s in xml if isinstance(s, TestSuite) and s.name == "integrity"]
    [case] = [c for c in integrity if c.is_skipped]
    [result] = case.result
    assert isinstance(result, Skipped)
    assert result.message == "needs organizations.latitude, absent on this database"
    assert integrity.skipped == 1


# Before and after.


def test_empty_then_diverse_closes_each_targets_gap(dbs: Databases) -> None:
    before = report_file(dbs, "before.json", "--db", dbs.empty, "--format", "json")
    result = invoke("report", "--db", dbs.diverse, "--scenario", "diverse", "--compare",
                    str(before), "--format", "json")
    assert result.exit_code in (0, 1), result.output
    found = json.loads(result.stdout)
    comparison = found["comparison"]
    assert comparison["with"] == str(before)
    targets = comparison["targets"]
    assert [t["metric"] for t in targets] == [t["metric"] for t in found["targets"]]
    for target in targets:
        assert target["met_after"] == next(t["met"] for t in found["targets"]
                                           if t["metric"] == target["metric"])
        if not target["met_after"]:
            continue
        assert target["gap_after"] == 0
        assert target["status"] == ("met" if target["met_before"] else "closed")
        assert target["met_before"] or target["gap_before"] > 0
    closed = [t for t in targets if t["status"] == "closed"]
    assert len(closed) >= 40
    total = next(t for t in targets if t["metric"] == "session_requests.total")
    assert (total["before"], total["gap_before"], total["gap_after"]) == (0, 120, 0)
    metrics = {m["metric"]: m for m in comparison["metrics"]}
    requests = found["session_requests"]["total"]
    assert metrics["session_requests.total"] == {
        "metric": "session_requests.total", "before": 0, "after": requests,
        "change": requests, "unit": "count"}
    chat = metrics["session_requests.share_by_session_type.chat"]
    assert chat["unit"] == "percentage points"
    assert chat["change"] == round(found["session_requests"]["share_by_session_type"]["chat"]
                                   * 100, 2)
    # The report itself is whole, so that it can be compared with later.
    assert found["session_requests"]["total"] == requests and found["version"] == 2


def test_a_database_url_compares_like_its_saved_report(dbs: Databases) -> None:
    before = report_file(dbs, "before-url.json", "--db", dbs.empty, "--format", "json")
    from_file = json.loads(invoke("report", "--db", dbs.diverse, "--compare", str(before),
                                  "--format", "json").stdout)["comparison"]
    password_url = dbs.empty.replace("postgresql://postgres@",
                                     "postgresql://postgres:s3cret@")
    result = invoke("report", "--db", dbs.diverse, "--compare", password_url,
                    "--format", "json")
    assert result.exit_code == 0, result.output
    from_url = json.loads(result.stdout)["comparison"]
    assert from_url["metrics"] == from_file["metrics"]
    assert from_url["with"] == database.mask_password(password_url)
    assert "***" in from_url["with"] and "s3cret" not in result.output


def test_markdown_comparison_suits_a_pull_request(dbs: Databases) -> None:
    before = report_file(dbs, "before-md.json", "--db", dbs.empty, "--format", "json")
    result = invoke("report", "--db", dbs.diverse, "--scenario", "diverse", "--compare",
                    str(before), "--format", "markdown")
    text = result.stdout
    assert text.startswith("# Seed report: before and after\n")
    assert ("## Targets\n\n| Metric | Needed | Before | After | Gap before | Gap after | Status |"
            in text)
    total = r"^\| session_requests\.total \| >= 120 \| 0 \| \d+ \| 120 \| 0 \| ✅ closed \|$"
    assert re.search(total, text, re.M)
    assert re.search(r"^## Changed \(\d+\)$", text, re.M)
    assert re.search(r"^\| session_requests\.share_by_status\.cancelled \| 0\.0% \| [\d.]+% \| "
                     r"\+[\d.]+ pp \|$", text, re.M)
    assert "<details><summary>Unchanged (" in text


def test_every_metric_is_compared_in_the_terminal(
    diverse_report: Report, diverse_json: dict[str, Any]
) -> None:
    before = copy.deepcopy(diverse_json)
    before["session_requests"]["by_status"]["cancelled"] -= 6
    del before["session_requests"]["by_status"]["pending"]  # absent: 0
    before["session_requests"]["share_by_status"]["cancelled"] -= 0.125
    before["session_requests"]["response_minutes"]["avg"] = None  # not measured
    comparison = compare(diverse_report, before, "before.json")
    rows = {c.metric: c for c in comparison.metrics}
    cancelled = diverse_json["session_requests"]["by_status"]["cancelled"]
    assert rows["session_requests.by_status.cancelled"].change_text() == "+6"
    assert rows["session_requests.by_status.cancelled"].before == cancelled - 6
    assert rows["session_requests.by_status.pending"].before == 0
    assert rows["session_requests.share_by_status.cancelled"].change_text() == "+12.5 pp"
    assert rows["session_requests.response_minutes.avg"].change_text() == "n/a"
    assert len(comparison.changed()) == 4
    rule = diverse_json["integrity"][0]["rule"]
    assert rows[f"integrity.{rule}"].change == 0
    assert rows["session_requests.response_histogram.1-2"].after == next(
        b["count"] for b in diverse_json["session_requests"]["response_histogram"]
        if b["from_minutes"] == 1)
    text = render(diverse_report, "table", comparison)
    for change in comparison.metrics:  # every metric, changed or not
        assert re.search(rf"^{re.escape(change.metric)}\s", text, re.M), change.metric


def test_html_and_junit_show_both_sides(
    diverse_report: Report, diverse_json: dict[str, Any]
) -> None:
    before = copy.deepcopy(diverse_json)
    before["session_requests"]["total"] = 43
    comparison = compare(diverse_report, before, "staging.json")
    page = render(diverse_report, "html", comparison)
    assert "compared with staging.json" in page
    assert re.search(r"Before and after: 1 of \d+ metrics changed", page)
    assert ">before</text>" in page  # the charts' legends: the other report's series
    root = ElementTree.fromstring(render(diverse_report, "junit", comparison))
    total = root.find("testsuite[@name='targets']/testcase[@name='session_requests.total']")
    assert total is not None
    properties = {p.get("name"): p.get("value") for p in total.iter("property")}
    assert properties["before"] == "43" and properties["needed"] == ">= 120"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "--compare {path}: no such file; give a JSON report (make it with `seed report "
               "--format json --output FILE`) or a postgresql:// URL"),
        ("not json", "--compare {path}: not a JSON report (line 1: Expecting value); make it "
                     "with `seed report --format json --output FILE`"),
        ('{"a": 1}', "--compare {path}: JSON, but not a report of `seed report`; make it with "
                     "`seed report --format json --output FILE`"),
        ('{"session_requests": {}}',
         "--compare {path}: a report of JSON no version (contract 1), and this seed writes "
         "version 2; make it with `seed report --format json --output FILE` again"),
        ('{"version": 3, "session_requests": {}}',
         "--compare {path}: a report of JSON version 3, and this seed writes version 2; make "
         "it with `seed report --format json --output FILE` again"),
    ],
    ids=["missing", "not-json", "not-a-report", "version-1", "version-3"],
)
def test_a_wrong_compare_file_is_one_line_before_any_query(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "before.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    # The database is a closed port: had anything connected, the error would say so.
    result = runner.invoke(app, ["report", "--db", CLOSED_PORT, "--compare", str(path)])
    assert (result.exit_code, result.output) == (2, "error: " + message.format(path=path)
                                                 + "\n")


def test_an_unknown_format_lists_them_all() -> None:
    result = runner.invoke(app, ["report", "--db", CLOSED_PORT, "--format", "pdf"])
    assert (result.exit_code, result.output) == (
        2, "error: --format 'pdf' is not one of table, markdown, json, html, junit\n"
    )


def test_a_saved_report_reads_back(diverse_json: dict[str, Any], dbs: Databases) -> None:
    assert read_report_file(str(dbs.files / "diverse.json")) == diverse_json
