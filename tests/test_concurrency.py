"""Two runs started together do not interleave: the run lock, seen from separate processes."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import psycopg

from seeding.db import ledger
from seeding.domain.schema import APP_TABLES

APP = [table.name for table in APP_TABLES]

SCENARIO = """\
description: Customers with completed requests, to run beside another scenario.
seed: {seed}
clock:
  now: 2025-11-06T14:10:00-05:00
steps:
  - create: workshop
  - create: customer
    ref: testers
    count: 2
  - create: mechanic
    traits: [workshop]
  - create: session_request
    count: 3
    traits: [completed]
    with: {{customer: {{ref: testers}}}}
"""

NO_WAIT_MESSAGE = (
    "error: another seed run is writing to this database; wait for it, or run again without "
    "--no-wait\n"
)


def seed(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "seeding.cli", *arguments]


def forward(stream: IO[str], into: queue.Queue[str]) -> None:
    """Put every line of a child's stream into a queue, as it comes."""
    for line in stream:
        into.put(line)


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def app_tables(url: str) -> int:
    with psycopg.connect(url) as c:
        row = c.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname IN ('public', 'seeding')"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_no_wait_fails_at_once_while_another_run_holds_the_lock(new_database: str) -> None:
    with psycopg.connect(new_database) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (ledger.RUN_LOCK_KEY,))
        # The lock is still held when the run ends: it did not wait for it.
        done = subprocess.run(
            seed("scenario", "baseline", "--no-wait", "--db", new_database),
            env=environment(), capture_output=True, text=True, timeout=120,
        )
        holder.rollback()
    assert done.returncode == 2, done.stderr
    assert done.stderr == NO_WAIT_MESSAGE
    assert done.stdout == ""
    assert app_tables(new_database) == 0


def test_a_run_waits_for_the_lock_then_succeeds(new_database: str) -> None:
    lines: queue.Queue[str] = queue.Queue()
    with psycopg.connect(new_database) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (ledger.RUN_LOCK_KEY,))
        process = subprocess.Popen(
            seed("scenario", "baseline", "--db", new_database),
            env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            assert process.stderr is not None
            stderr = process.stderr
            threading.Thread(target=forward, args=(stderr, lines), daemon=True).start()
            line = lines.get(timeout=120)
            assert line == (
                "another seed run is writing to this database; waiting for it to finish...\n"
            )
            time.sleep(0.5)
            assert process.poll() is None, "the run finished while the lock was held"
            assert app_tables(new_database) == 0
        except BaseException:
            process.kill()
            raise
        finally:
            holder.rollback()  # releases the lock
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "scenario baseline (seed 20251112, scale 1):" in output
    with psycopg.connect(new_database) as c:
        assert c.execute("SELECT scenario, rows FROM seeding.runs").fetchall() == [("baseline", 73)]


def test_two_runs_started_together_both_complete_without_mixing(
    new_database: str, tmp_path: Path
) -> None:
    for name, number in (("alpha", 7), ("beta", 8)):
        (tmp_path / f"{name}.yaml").write_text(SCENARIO.format(seed=number))
    waiting: queue.Queue[str] = queue.Queue()
    # Both start while the test holds the lock, so both are queued on it at once.
    with psycopg.connect(new_database) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (ledger.RUN_LOCK_KEY,))
        processes = [
            subprocess.Popen(
                seed("scenario", str(tmp_path / f"{name}.yaml"), "--scale", "20",
                     "--db", new_database),
                env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for name in ("alpha", "beta")
        ]
        try:
            for process in processes:
                stderr = process.stderr
                assert stderr is not None
                threading.Thread(target=forward, args=(stderr, waiting), daemon=True).start()
            lines = [waiting.get(timeout=120) for _ in processes]
            assert all("waiting for it to finish" in line for line in lines), lines
        except BaseException:
            for process in processes:
                process.kill()
            raise
        finally:
            holder.rollback()
    outputs = [process.communicate(timeout=180)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs

    with psycopg.connect(new_database) as c:
        runs = c.execute("SELECT id, scenario, rows FROM seeding.runs ORDER BY scenario").fetchall()
        assert [(scenario, rows > 0) for _, scenario, rows in runs] == [
            ("alpha", True), ("beta", True)
        ]
        total = 0
        for run_id, scenario, rows in runs:
            recorded = c.execute(
                "SELECT count(*) FROM seeding.ledger WHERE run_id = %s", (run_id,)
            ).fetchone()
            present = sum(
                c.execute(
                    f"SELECT count(*) FROM {table} x JOIN seeding.ledger l ON l.row_id = x.id "
                    "WHERE l.run_id = %s AND l.table_name = %s", (run_id, table),
                ).fetchone()[0]  # type: ignore[index]
                for table in APP
            )
            assert recorded == (present,) == (rows,), scenario
            total += rows
        app_rows = sum(
            c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in APP
        )
        assert app_rows == total
