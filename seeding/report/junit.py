"""The report as JUnit XML, so that CI shows its targets and integrity rules as tests.

One ``testsuite`` per part: ``targets`` (one ``testcase`` per target, in the ``expect``
block's order) and ``integrity`` (one per rule, in rule order; a rule the database cannot
check is a skipped case). A missed target or a broken rule is a ``failure`` whose message
and text give what was expected and what was observed. Drawn from the report's JSON
(:meth:`seeding.report.Report.to_dict`), like every rendering. With a comparison, each case
also carries the other report's value as a property (``before``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any, Final

from seeding.report.compare import Comparison
from seeding.report.model import Report
from seeding.scenario.targets import format_number

#: The ``classname`` of each part's cases: CI tools group cases by it.
CLASSNAMES: Final = {"targets": "seed.report.targets", "integrity": "seed.report.integrity"}


def render_junit(report: Report, comparison: Comparison | None = None) -> str:
    """Return the report's targets and integrity rules as a JUnit XML document.

    Args:
        report: The report; its ``targets`` are those checked (none: an empty suite).
        comparison: The report compared with another: each case gets a ``before`` property.

    """
    data = report.to_dict()
    now = str(data["now"])
    before_targets = {t.metric: t for t in comparison.targets} if comparison else {}
    before_rules = (
        {str(r["rule"]): r.get("violations") for r in comparison.before.get("integrity") or ()}
        if comparison else {}
    )
    root = ET.Element("testsuites", name="seed report")
    targets = ET.SubElement(root, "testsuite", name="targets", timestamp=now)
    for target in data["targets"]:
        case = _case(targets, "targets", str(target["metric"]))
        metric = str(target["metric"])
        if comparison is not None:
            side = before_targets.get(metric)
            _properties(case, {
                "needed": target["needed"],
                "before": format_number(side.before.current) if side else "n/a",
                "gap_before": format_number(side.gap_before) if side else "n/a",
                "gap_after": format_number(side.gap_after) if side else "n/a",
            })
        if target["met"]:
            continue
        observed = (
            f"not measurable (needs {', '.join(target['missing'])})"
            if target.get("missing") else format_number(target["current"])
        )
        _failure(case, "target missed", f"{metric}: expected {target['needed']}, "
                 f"observed {observed}", expected=str(target["needed"]), observed=observed)
    integrity = ET.SubElement(root, "testsuite", name="integrity", timestamp=now)
    for rule in data["integrity"]:
        name = str(rule["rule"])
        case = _case(integrity, "integrity", name)
        if comparison is not None:
            _properties(case, {"before": format_number(before_rules.get(name))})
        violations = int(rule["violations"])
        if violations:
            ids = ", ".join(rule["sample_ids"])
            _failure(case, "rule broken",
                     f"{name}: expected 0 rows breaking it, observed {violations}",
                     expected="0", observed=str(violations), extra=f"first ids: {ids}")
    for skipped in data.get("skipped_rules") or ():
        case = _case(integrity, "integrity", str(skipped["rule"]))
        ET.SubElement(case, "skipped",
                      message=f"needs {', '.join(skipped['missing'])}, absent on this database")
    for suite in (targets, integrity, root):
        _count(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def _case(suite: ET.Element, part: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=CLASSNAMES[part], name=name, time="0")


def _properties(case: ET.Element, values: Mapping[str, Any]) -> None:
    properties = ET.SubElement(case, "properties")
    for name, value in values.items():
        ET.SubElement(properties, "property", name=name, value=str(value))


def _failure(case: ET.Element, kind: str, message: str, *, expected: str, observed: str,
             extra: str = "") -> None:
    failure = ET.SubElement(case, "failure", message=message, type=kind)
    failure.text = "\n".join(
        line for line in (f"expected: {expected}", f"observed: {observed}", extra) if line
    )


def _count(element: ET.Element) -> None:
    """Set a suite's (or the document's) tests, failures, errors and skipped counts."""
    cases: Sequence[ET.Element] = list(element.iter("testcase"))
    element.set("tests", str(len(cases)))
    element.set("failures", str(sum(case.find("failure") is not None for case in cases)))
    element.set("errors", "0")
    element.set("skipped", str(sum(case.find("skipped") is not None for case in cases)))
    element.set("time", "0")
