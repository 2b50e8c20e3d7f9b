"""Mutated shipped scenarios: every one is built, or refused with one error naming its file.

Hypothesis takes ``scenarios/*.yaml`` apart (keys dropped or renamed, values replaced by
other types, huge or negative numbers, floats, strings, lists, dates, duplicate keys, deep
nesting, aliases that expand to millions of nodes, a cut-off file) and runs the in-memory
path: parse → plan → build, no database. The only outcomes allowed are success and a
ScenarioError whose message begins with a scenario file's path and is not the "bug to
report" of the library's last-resort guard. ``bench/fuzz_scenarios.py`` runs the same with
many more examples and counts the outcomes.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seeding import runner
from seeding.errors import ScenarioError
from seeding.scenario.files import display, shipped

#: The most rows one example may build: enough for every shipped scenario (load's tile is
#: 1,231 rows), little enough that a mutated count is refused quickly rather than built.
MAX_ROWS = 2_000

ORIGINALS: dict[str, Any] = {
    name: yaml.safe_load(path.read_text()) for name, path in shipped().items()
}


def _scalars(value: Any) -> set[Any]:
    if isinstance(value, dict):
        return set().union(*(_scalars(v) | {k} for k, v in value.items()))
    if isinstance(value, list):
        return set().union(set(), *(_scalars(v) for v in value))
    return {value} if isinstance(value, str | int) else set()


#: Strings the files use (refs, factories, traits, statuses, fields): mutations stay plausible.
WORDS = sorted(set().union(*(_scalars(doc) for doc in ORIGINALS.values())), key=str)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 7, 10**6, 10**12, 10**30, 2**63, -(2**63) - 1, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.5, -2.5, 1e308, float("nan")]),
    st.text(max_size=12),
    st.sampled_from(["", "%", "84%", "-5%", "nan%", "1e400%", "101%", "lots", "\x00"]),
    st.sampled_from(WORDS),
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))]),
    ),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),  # naive
)
#: The keys of a step, create and update.
STEP_KEYS = ("create", "update", "count", "ref", "traits", "fields", "mix", "each", "with",
             "window", "scale", "set", "regenerate")

values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(WORDS), st.text(max_size=6)), scalars, max_size=3),
)


def _nested(depth: int, leaf: Any, as_map: bool) -> Any:
    for _ in range(depth):
        leaf = {"k": leaf} if as_map else [leaf]
    return leaf


def _laughs(levels: int) -> list[Any]:
    """Return nested lists that share their items: dumped, the anchors and aliases of YAML."""
    node: list[Any] = ["lol"] * 9
    for _ in range(levels):
        node = [node] * 9
    return node


def _like(value: Any) -> st.SearchStrategy[Any]:
    """Return a strategy of values of the same type as ``value`` (else any value)."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.one_of(st.integers(-3, 3000), st.sampled_from([10**7, 10**12, 10**30, 2**63]))
    if isinstance(value, str):
        return st.one_of(st.sampled_from(WORDS), st.text(max_size=8))
    if isinstance(value, datetime):
        return scalars.filter(lambda v: isinstance(v, datetime))
    return values


@st.composite
def _place(draw: st.DrawFn, doc: Any) -> tuple[Any, Any]:
    """Draw a node of the document: (its container, its key or index); (None, None): the root."""
    parent: Any = None
    key: Any = None
    node = doc
    while True:
        children = list(node) if isinstance(node, dict) else (
            list(range(len(node))) if isinstance(node, list) else []
        )
        if not children or (parent is not None and draw(st.integers(0, 3)) == 0):
            return parent, key
        parent, key = node, draw(st.sampled_from(children))
        node = node[key]


@st.composite
def mutated(draw: st.DrawFn, names: tuple[str, ...] = tuple(ORIGINALS)) -> tuple[str, str]:
    """Draw (a shipped scenario's name, the text of a mutated copy of it)."""
    name = draw(st.sampled_from(names))
    doc = copy.deepcopy(ORIGINALS[name])
    for _ in range(draw(st.integers(1, 3))):
        parent, key = draw(_place(doc))
        kind = draw(st.sampled_from(
            ["drop", "replace", "replace", "nudge", "nudge", "rename", "deep", "laughs", "step"]
        ))
        steps = doc.get("steps") if isinstance(doc, dict) else None
        if kind == "step" and isinstance(steps, list) and steps:
            # One key of one step, or one field of it: where the plan and the build look.
            step = draw(st.sampled_from(steps))
            if isinstance(step, dict):
                key = draw(st.sampled_from(STEP_KEYS))
                if key in ("fields", "set", "each", "with", "mix") and draw(st.booleans()):
                    inner = step.setdefault(key, {})
                    if isinstance(inner, dict):
                        value = draw(values)
                        inner[draw(st.sampled_from(WORDS))] = (
                            [value, value] if key == "each" else value
                        )
                        continue
                step[key] = draw(values)
            continue
        if parent is None:
            doc = draw(values) if kind == "replace" else doc
            continue
        if kind == "drop":
            del parent[key]
        elif kind == "replace":
            parent[key] = draw(values)
        elif kind == "nudge":  # a value of the same type: the file still reads, the plan runs
            parent[key] = draw(_like(parent[key]))
        elif kind == "rename" and isinstance(parent, dict):
            parent[draw(st.one_of(st.sampled_from(WORDS), st.text(max_size=6)))] = parent.pop(key)
        elif kind == "deep":
            parent[key] = _nested(draw(st.integers(1, 150)), parent[key], draw(st.booleans()))
        elif kind == "laughs":
            parent[key] = _laughs(draw(st.integers(1, 8)))
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=200)
    edit = draw(st.sampled_from(["none"] * 6 + ["duplicate", "cut"]))
    lines = text.splitlines(keepends=True)
    if edit == "duplicate":  # a `key: value` line twice: a duplicate key in the same mapping
        candidates = [i for i, line in enumerate(lines) if re.match(r"^\s*[\w.]+: \S", line)]
        if candidates:
            i = draw(st.sampled_from(candidates))
            lines.insert(i + 1, lines[i])
    elif edit == "cut" and lines:
        lines = lines[: draw(st.integers(0, len(lines) - 1))]
    return name, "".join(lines)


def outcome(path: Path) -> tuple[str, str]:
    """Run a scenario file through the in-memory path; return (outcome, detail).

    Outcomes: ``built``; ``refused`` (a ScenarioError naming a scenario file); ``unnamed`` (a
    ScenarioError that names none); ``bug`` (the last-resort guard's "bug to report");
    ``crashed`` (any other exception).
    """
    name = str(path)
    try:
        if runner.is_tiled(name):
            runner.prepare_tiled(name, max_rows=MAX_ROWS)
        else:
            runner.prepare(name, max_rows=MAX_ROWS)
    except ScenarioError as error:
        message = str(error)
        files = (display(path), *(display(p) for p in shipped().values()))
        if "this is a bug in seeding" in message:
            return "bug", message
        if not message.startswith(files) or "\n" in message:
            return "unnamed", message
        return "refused", message
    except Exception as error:
        return "crashed", f"{type(error).__name__}: {error}"
    return "built", ""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(case=mutated())
def test_a_mutated_shipped_scenario_is_built_or_refused_naming_its_file(
    folder: Path, case: tuple[str, str]
) -> None:
    name, text = case
    # Each scenario in a folder of its own: a mutated baseline is no sibling of diverse.
    path = folder / name / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    result, detail = outcome(path)
    assert result in ("built", "refused"), f"{result}: {detail}\n--- {path.name}:\n{text}"


def test_the_shipped_scenarios_are_built_unmutated(folder: Path) -> None:
    for name, path in shipped().items():
        assert outcome(path) == ("built", ""), name
