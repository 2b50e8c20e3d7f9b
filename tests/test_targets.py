"""Targets: parsing an ``expect`` block, refusing bad paths and conditions, evaluating them."""

from __future__ import annotations

from typing import Any

import pytest

from seeding.domain.vocabularies import (
    MECHANIC_TYPES,
    PROVINCES,
    REQUEST_STATUSES,
    ROUTING_TYPES,
    SESSION_STATUSES,
)
from seeding.errors import ScenarioError
from seeding.scenario.targets import (
    KNOWN_METRICS,
    MAP_METRICS,
    Target,
    TargetResult,
    evaluate,
    parse_target,
    parse_targets,
)

REPORT: dict[str, Any] = {
    "session_requests": {
        "total": 43,
        "by_status": {"cancelled": 36, "completed": 6, "pending": 1},
        "share_by_session_type": {"chat": 0.8605, "video": 0.0698, "diagnostic": 0.0698},
        "response_minutes": {"count": 13, "avg": None, "min": None, "max": None},
    },
    "sessions": {"by_status": {"completed": 6}},
    "mechanics": {"incomplete_count": 4, "by_type": {"virtual": 6, "workshop": 1}},
    "customers": {"provinces": {"ON": 3}},
}


@pytest.mark.parametrize(
    ("condition", "op", "value", "needed"),
    [
        (">= 120", ">=", 120.0, ">= 120"),
        ("<= 0.60", "<=", 0.6, "<= 0.6"),
        ("== 1", "==", 1.0, "== 1"),
        ("> 0", ">", 0.0, "> 0"),
        ("<5", "<", 5.0, "< 5"),
        ("  >=  2.5 ", ">=", 2.5, ">= 2.5"),
        (">= -1", ">=", -1.0, ">= -1"),
        ("<= .5", "<=", 0.5, "<= 0.5"),
    ],
)
def test_conditions_parse(condition: str, op: str, value: float, needed: str) -> None:
    target = parse_target("session_requests.total", condition)
    assert target == Target("session_requests.total", op, value)
    assert target.needed == needed


@pytest.mark.parametrize(
    "condition", ["120", ">= ", "=> 120", "= 1", "!= 3", ">= 1 2", ">= ten", "", "≥ 5", ">=1e3"]
)
def test_malformed_conditions_say_the_accepted_forms(condition: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_target("session_requests.total", condition)
    message = str(caught.value)
    assert message.startswith(f"expect.session_requests.total: malformed condition {condition!r}")
    assert "'>= N', '<= N', '== N', '> N' or '< N'" in message
    assert "\n" not in message


def test_a_condition_that_is_not_text_is_malformed() -> None:
    with pytest.raises(ScenarioError, match="malformed condition 120"):
        parse_target("session_requests.total", 120)  # type: ignore[arg-type]


def test_an_unknown_path_lists_the_closest_valid_ones() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_target("session_requests.totl", ">= 1")
    message = str(caught.value)
    assert message.startswith("expect.session_requests.totl: unknown metric path; closest valid ")
    assert "session_requests.total" in message


def test_a_path_far_from_any_says_where_paths_start() -> None:
    with pytest.raises(ScenarioError, match=r"valid paths start with customers\., "):
        parse_target("zzz", ">= 1")


def test_an_unknown_map_key_lists_the_vocabulary() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_target("sessions.by_status.refundd", ">= 1")
    assert str(caught.value) == (
        "expect.sessions.by_status.refundd: unknown key 'refundd' of sessions.by_status; "
        "expected one of " + ", ".join(SESSION_STATUSES)
    )


def test_a_map_is_not_a_number() -> None:
    with pytest.raises(ScenarioError, match=r"a map, not a number; .*mechanics\.by_type\.virtual"):
        parse_target("mechanics.by_type", ">= 1")


@pytest.mark.parametrize(
    ("path", "vocabulary"),
    [
        ("session_requests.by_status", REQUEST_STATUSES),
        ("session_requests.by_routing_type", ROUTING_TYPES),
        ("sessions.by_status", SESSION_STATUSES),
        ("mechanics.complete_by_type", MECHANIC_TYPES),
        ("sessions.completed_by_mechanic_type", MECHANIC_TYPES),
        ("customers.provinces", PROVINCES),
        ("workshops.provinces", PROVINCES),
    ],
)
def test_every_vocabulary_key_of_a_map_is_known(path: str, vocabulary: tuple[str, ...]) -> None:
    assert MAP_METRICS[path] == vocabulary
    for key in vocabulary:
        assert f"{path}.{key}" in KNOWN_METRICS
        parse_target(f"{path}.{key}", ">= 0")


def test_known_metrics_include_the_issue_examples_and_no_maps() -> None:
    for path in ("session_requests.total", "session_requests.share_by_session_type.chat",
                 "sessions.by_status.refunded", "mechanics.incomplete_count",
                 "customers.province_count", "workshops.province_count", "sessions.total",
                 "mechanics.with_completed_session", "session_requests.response_minutes.avg"):
        assert path in KNOWN_METRICS
    assert not set(MAP_METRICS) & KNOWN_METRICS
    assert "session_requests.by_status.completedd" not in KNOWN_METRICS


def test_parse_targets_keeps_the_block_order() -> None:
    targets = parse_targets({"sessions.by_status.refunded": ">= 1",
                             "session_requests.total": "> 5"})
    assert [t.metric for t in targets] == ["sessions.by_status.refunded", "session_requests.total"]


def test_evaluate_reads_numbers_and_counts_an_absent_key_as_zero() -> None:
    targets = parse_targets({
        "session_requests.total": ">= 15",
        "sessions.by_status.refunded": ">= 1",
        "sessions.by_status.archived": "== 0",
        "session_requests.share_by_session_type.chat": "<= 0.60",
        "mechanics.incomplete_count": "== 4",
        "customers.provinces.QC": "> 0",
        "mechanics.by_type.independent": "< 1",
    })
    assert evaluate(REPORT, targets) == [
        TargetResult("session_requests.total", 43, ">= 15", True),
        TargetResult("sessions.by_status.refunded", 0, ">= 1", False),
        TargetResult("sessions.by_status.archived", 0, "== 0", True),
        TargetResult("session_requests.share_by_session_type.chat", 0.8605, "<= 0.6", False),
        TargetResult("mechanics.incomplete_count", 4, "== 4", True),
        TargetResult("customers.provinces.QC", 0, "> 0", False),
        TargetResult("mechanics.by_type.independent", 0, "< 1", True),
    ]


def test_a_missing_value_meets_no_target() -> None:
    [result] = evaluate(REPORT, [parse_target("session_requests.response_minutes.avg", "<= 5")])
    assert result == TargetResult("session_requests.response_minutes.avg", None, "<= 5", False)
    assert result.to_dict() == {"metric": "session_requests.response_minutes.avg",
                                "current": None, "needed": "<= 5", "met": False}


@pytest.mark.parametrize(
    ("op", "current", "met"),
    [
        (">=", 10, True), (">=", 9, False),
        ("<=", 10, True), ("<=", 11, False),
        ("==", 10, True), ("==", 10.5, False),
        (">", 10, False), (">", 11, True),
        ("<", 10, False), ("<", 9, True),
    ],
)
def test_each_operator_at_its_boundary(op: str, current: float, met: bool) -> None:
    assert Target("session_requests.total", op, 10).met_by(current) is met


def test_every_shipped_scenario_names_known_metrics() -> None:
    from seeding.scenario.files import load, shipped

    for name in shipped():
        expect = load(name)[0].expect
        assert expect or load(name)[0].tiles, name  # a tiled scenario may leave the report out
        assert [t.metric for t in parse_targets(expect)] == list(expect)
