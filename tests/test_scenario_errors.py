"""Bad scenarios: one short message naming the file, exit code 2, nothing written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from seeding.cli import app

runner = CliRunner()

GOOD_HEAD = "description: test\nsteps:\n"

CASES = {
    "yaml syntax": ("description: x\nsteps:\n  - create: mechanic\n    count: [3\n",
                    r"bad\.yaml:5:1: YAML syntax error: expected ',' or ']'"),
    "unknown factory": (
        GOOD_HEAD + "  - create: mechanik\n",
        r"bad\.yaml:3: steps\[0\]\.create: "
        r"unknown factory 'mechanik' \(did you mean 'mechanic'\?\)",
    ),
    "unknown trait": (
        GOOD_HEAD + "  - create: mechanic\n    traits: [virtaul]\n",
        r"bad\.yaml:4: steps\[0\]\.traits\[0\]: "
        r"unknown trait 'virtaul' of mechanic \(did you mean 'virtual'\?\)",
    ),
    "unknown field": (
        GOOD_HEAD + "  - create: customer\n    fields: {provnce: BC}\n",
        r"bad\.yaml:4: steps\[0\]\.fields\.provnce: "
        r"unknown field 'provnce' of customer \(did you mean 'province'\?\)",
    ),
    "unknown mix value": (
        GOOD_HEAD + "  - create: mechanic\n    count: 3\n"
        "    mix:\n      type: {virtaul: 2, workshop: 1}\n",
        r"bad\.yaml:6: steps\[0\]\.mix\.type: "
        r"unknown value 'virtaul' \(did you mean 'virtual'\?\); "
        r"expected one of virtual, workshop, independent",
    ),
    "unknown ref": (GOOD_HEAD + "  - create: vehicle\n    with: {customer: custmer1}\n",
                    r"bad\.yaml:4: steps\[0\]\.with\.customer: unknown ref 'custmer1'"),
    "unknown key": (GOOD_HEAD + "  - create: mechanic\n    cuont: 3\n",
                    r"bad\.yaml:4: steps\[0\]: unknown key 'cuont' \(did you mean 'count'\?\)"),
    "quotas that don't add up": (
        GOOD_HEAD + "  - create: session_request\n    count: 43\n"
        "    mix:\n      status: {cancelled: 36, completed: 6}\n",
        r"bad\.yaml:6: steps\[0\]\.mix\.status: counts add up to 42, but the step's count is 43",
    ),
    "percentages that don't add up": (
        GOOD_HEAD + "  - create: session_request\n    count: 43\n"
        "    mix:\n      status: {cancelled: 84%, completed: 14%}\n",
        r"percentages add up to 98%, not 100%",
    ),
    "negative count": (
        GOOD_HEAD + "  - create: mechanic\n    count: -3\n",
        r"bad\.yaml:4: steps\[0\]\.count: "
        r"input should be greater than or equal to 0; found -3",
    ),
    "non-numeric count": (GOOD_HEAD + "  - create: mechanic\n    count: lots\n",
                          r"bad\.yaml:4: steps\[0\]\.count: input should be a valid integer"),
    "empty file": ("", r"bad\.yaml: the file is empty"),
    "missing description": ("steps: []\n", r"bad\.yaml:1: description: field required"),
    # Each of these once ended in a traceback, or in an error that did not name the file.
    "a count beyond the bound (once a MemoryError)": (
        GOOD_HEAD + "  - create: customer\n    count: 1000000000000\n",
        r"^error: bad\.yaml:4: steps\[0\]: count 1000000000000 \(after --scale 1\) would build "
        r"1,000,000,000,000 rows in memory, over the bound of 5,000,000; lower the count, or "
        r"raise SEED_MAX_ROWS$",
    ),
    "a date in year 1 (once an OverflowError)": (
        "description: x\nclock:\n  now: 0001-01-01T00:00:00+00:00\nsteps:\n  - create: customer\n",
        r"^error: bad\.yaml:3: clock\.now: times must fall between 1900-01-01 and 8999-12-31; "
        r"found 0001-01-01T00:00:00\+00:00$",
    ),
    "a step window in year 1": (
        GOOD_HEAD + "  - create: customer\n"
        "    window: {from: 0001-01-01T00:00:00Z, to: 0001-01-02T00:00:00Z}\n",
        r"^error: bad\.yaml:4: steps\[0\]\.window: times must fall between",
    ),
    "an integer where a ref belongs (once a TypeError)": (
        GOOD_HEAD + "  - create: customer\n    each: {ref: [5]}\n"
        "  - create: vehicle\n    with: {customer: c}\n",
        r"^error: bad\.yaml:4: steps\[0\]\.each\.ref\[0\]: a ref is a name \(a text\); found 5$",
    ),
    "a float in an each relation list (once an AttributeError)": (
        GOOD_HEAD + "  - create: customer\n    ref: c\n  - create: vehicle\n"
        "    each: {customer: [c, 1.5]}\n",
        r"^error: bad\.yaml:6: steps\[1\]\.each\.customer\[1\]: a relation is a ref's name, a "
        r"pick \(\{any: customer\} or \{ref: GROUP\}, with `where:`\) or null; found 1\.5$",
    ),
    "a step window after now (once named no file)": (
        GOOD_HEAD + "  - create: customer\n"
        "    window: {from: 2030-01-01T00:00:00Z, to: 2030-01-02T00:00:00Z}\n",
        r"^error: bad\.yaml:4: steps\[0\]\.window: the window 2030-01-01T00:00:00\+00:00 \.\. "
        r"2030-01-02T00:00:00\+00:00 must start before it ends and end at or before clock\.now "
        r"\(2025-11-12T17:00:00\+00:00, the default, as no file of the scenario has a clock\)$",
    ),
    "a seed beyond bigint (once failed in the ledger)": (
        "description: x\nseed: 9223372036854775808\nsteps:\n  - create: customer\n",
        r"^error: bad\.yaml:2: seed: 9223372036854775808 is out of range; a seed is stored as a "
        r"bigint, from -9,223,372,036,854,775,808 to 9,223,372,036,854,775,807$",
    ),
    "a duplicate unique value (once refused by the database)": (
        GOOD_HEAD + "  - create: workshop\n    fields: {email: shop@example.com}\n"
        "  - create: workshop\n    fields: {email: shop@example.com}\n",
        r"^error: bad\.yaml:5: steps\[1\]: organizations\.email 'shop@example\.com' is already "
        r"used by a row of bad\.yaml:3: steps\[0\]; a unique value can be used once",
    ),
    "a list where a scalar belongs (once named no line)": (
        GOOD_HEAD + "  - create: customer\n    fields: {city: [Toronto, Ottawa]}\n",
        r"^error: bad\.yaml:4: steps\[0\]\.fields\.city: city needs a text; "
        r"found \['Toronto', 'Ottawa'\]$",
    ),
    "a typo in an expect metric (once written, then exit 2)": (
        GOOD_HEAD + "  - create: customer\nexpect:\n  customers.totl: '>= 1'\n",
        r"^error: bad\.yaml:5: expect\.customers\.totl: unknown metric path; closest valid "
        r"paths: customers\.total",
    ),
    "a duplicate key (once the last one won)": (
        GOOD_HEAD + "  - create: customer\n    count: 1\n    count: 2\n",
        r"^error: bad\.yaml:5: duplicate key 'count' \(first at line 4\); a key may appear once "
        r"in a mapping, remove one$",
    ),
    "nesting 5,000 deep (once a RecursionError)": (
        GOOD_HEAD + "  - create: customer\n    fields: {city: " + "[" * 5000 + "]" * 5000 + "}\n",
        r"^error: bad\.yaml:4: nested more than 100 levels deep",
    ),
    "aliases nine-fold eight times in a pick's where": (
        GOOD_HEAD + "  - create: customer\n  - create: vehicle\n    with:\n      customer:\n"
        "        any: customer\n        where:\n"
        "          a0: &a0 [x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"          a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)
        ),
        r"^error: bad\.yaml:13: alias \*a3 stands for 7,381 nodes, and the file's aliases add "
        r"15,670 nodes in all, over the bound of 10,000",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_scenario_is_one_line_exit_2_nothing_written(
    case: str, tmp_path: Path, new_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text, pattern = CASES[case]
    (tmp_path / "bad.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SEED_MAX_ROWS", raising=False)
    result = runner.invoke(app, ["scenario", "bad.yaml", "--db", new_database])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1, result.output
    assert result.output.startswith("error: ")
    import re

    assert re.search(pattern, result.output), result.output
    with psycopg.connect(new_database) as c:
        assert c.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname IN ('public', 'seeding')"
        ).fetchone() == (0,)


def test_missing_file_and_unknown_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["scenario", "nothere.yaml"])
    assert (result.exit_code, result.output) == (
        2, "error: nothere.yaml: no such scenario file; check the path\n"
    )
    result = runner.invoke(app, ["scenario", "divers"])
    assert result.exit_code == 2
    assert result.output.startswith("error: unknown scenario 'divers' (did you mean diverse?)")


def test_a_cycle_of_extends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.yaml").write_text("description: a\nextends: b\n")
    (tmp_path / "b.yaml").write_text("description: b\nextends: a\n")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["scenario", "a.yaml"])
    assert result.exit_code == 2
    assert "extends forms a cycle: a.yaml → b.yaml → a.yaml" in result.output


def test_extends_and_update_of_an_inherited_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_database: str
) -> None:
    (tmp_path / "child.yaml").write_text(
        "description: child\nextends: baseline\nsteps:\n"
        "  - update: mechanic_2750cdea\n    traits: [virtual]\n"
        "    regenerate: [city, province, postal_code, latitude, longitude, years_of_experience]\n"
        "  - create: customer\n    ref: bc_customers\n    count: 4\n    fields: {province: BC}\n"
        "  - create: session_request\n    count: 8\n    traits: [completed]\n"
        "    with: {customer: {ref: bc_customers},"
        " mechanic: {any: mechanic, where: {type: workshop}}}\n"
    )
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["scenario", "child.yaml", "--db", new_database])
    assert result.exit_code == 0, result.output
    with psycopg.connect(new_database) as c:
        assert c.execute("SELECT count(*) FROM session_requests").fetchone() == (51,)
        assert c.execute(
            "SELECT city IS NOT NULL, years_of_experience IS NOT NULL FROM mechanics "
            "WHERE id::text LIKE '2750cdea%'"
        ).fetchone() == (True, True)
        assert c.execute("""
            SELECT count(*) FROM session_requests r JOIN profiles p ON p.id = r.customer_id
            JOIN mechanics m ON m.id = r.mechanic_id
            WHERE p.province = 'BC' AND m.account_type = 'workshop_mechanic'""").fetchone() == (8,)


def test_a_run_killed_half_way_leaves_nothing_and_the_next_succeeds(new_database: str) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "seeding.cli", "scenario", "diverse", "--scale", "15",
         "--db", new_database],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    dbname = psycopg.conninfo.conninfo_to_dict(new_database)["dbname"]
    deadline = time.monotonic() + 120
    try:
        with psycopg.connect(new_database, autocommit=True) as watcher:
            while time.monotonic() < deadline:
                busy = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = %s AND query LIKE 'COPY%%' AND state = 'active'",
                    (dbname,),
                ).fetchone()
                if busy and busy[0]:
                    break
                assert process.poll() is None, "the run ended before it was killed"
                time.sleep(0.02)
            else:
                pytest.fail("the run never started writing")
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    time.sleep(0.5)
    with psycopg.connect(new_database) as c:
        tables = c.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert tables == (0,)  # even the tables created inside the run's transaction are gone
    result = runner.invoke(app, ["scenario", "baseline", "--db", new_database])
    assert result.exit_code == 0, result.output
