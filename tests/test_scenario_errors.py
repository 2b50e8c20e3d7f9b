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
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_scenario_is_one_line_exit_2_nothing_written(
    case: str, tmp_path: Path, new_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text, pattern = CASES[case]
    (tmp_path / "bad.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
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
