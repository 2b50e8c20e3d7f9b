"""What a test pays for ``seed_scenario("diverse")``: a session's start, and every call after.

Drives the pytest plugin's own SeedServer, exactly as the fixture does: copy the scenario's
template (``CREATE DATABASE ... TEMPLATE``), open ``.session``, run a first query, close and
drop the copy. A session's first call also connects and finds the template: it builds it
when there is no kept one (as with ``seed_keep_templates = false``, or the first session
after a change), or finds the one an earlier session kept (its key computed, the slot's lock
taken). Both starts are measured, the kept one over ``--sessions`` new sessions.

    .venv/bin/python bench/seed_scenario_fixture.py [--db URL] [--scenario diverse] [-n 30]
        [--sessions 5] [--schema PATH ...]

The server: ``--db``, else ``SEED_TEST_DATABASE_URL``, else an embedded PostgreSQL started in
a temporary folder for the run. ``--schema``: the templates start from that schema (SQL files
or folders, as the plugin's ``--seed-schema``), e.g. ``tests/app_shape.sql``. The kept
template stays on the server, as a test session leaves it (the next session with the same key
reuses it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import sqlalchemy as sa

from seeding.db import embedded
from seeding.db.database import mask_password
from seeding.domain.schema import SessionRequest
from seeding.pytest_plugin import URL_VARIABLE, SeedServer, check_server


@contextmanager
def server_url(db: str | None) -> Iterator[tuple[str, str]]:
    configured = db or os.environ.get(URL_VARIABLE)
    if configured:
        source = "--db" if db else URL_VARIABLE
        yield check_server(configured, source=source), source
        return
    folder = Path(tempfile.mkdtemp(prefix="seed_bench_"))
    data_dir = folder / "data"
    try:
        yield embedded.start(data_dir).url("postgres"), "embedded"
    finally:
        embedded.stop(data_dir)
        shutil.rmtree(folder, ignore_errors=True)


def session_start(
    url: str, source: str, scenario: str, schema: list[str]
) -> tuple[float, float, bool]:
    """Time a new session's first call with keeping on: (start, teardown, built)."""
    server = SeedServer(url, source=source, keep_templates=True, schema=schema)
    try:
        copy, query, drop, _ = one_test(server, scenario)
        return copy + query, drop, server.templates[0].built
    finally:
        server.close()


def one_test(server: SeedServer, scenario: str) -> tuple[float, float, float, int]:
    """Time one test's use of the fixture: copy, session + first query, teardown (drop)."""
    started = time.perf_counter()
    database = server.copy(scenario)
    copied = time.perf_counter()
    count = database.session.scalar(sa.select(sa.func.count()).select_from(SessionRequest))
    queried = time.perf_counter()
    server.release(database)
    dropped = time.perf_counter()
    return copied - started, queried - copied, dropped - queried, int(count or 0)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", help=f"PostgreSQL server URL (default: ${URL_VARIABLE}, else embedded)"
    )
    parser.add_argument("--scenario", default="diverse")
    parser.add_argument("-n", "--repeat", type=int, default=30)
    parser.add_argument("--sessions", type=int, default=5,
                        help="new sessions that find the kept template (default 5)")
    parser.add_argument("--schema", action="append", default=[], metavar="PATH",
                        help="SQL file or folder the templates start from (repeatable)")
    args = parser.parse_args()

    with server_url(args.db) as (url, source):
        server = SeedServer(url, source=source, schema=args.schema)
        try:
            with psycopg.connect(url) as connection:
                version = connection.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            print(f"server: {mask_password(url)} ({source}), PostgreSQL {version}"
                  + (f", schema {' '.join(args.schema)}" if args.schema else ""))
            started = time.perf_counter()
            copy, query, drop, rows = one_test(server, args.scenario)
            print(f"session start, no kept template: first seed_scenario({args.scenario!r}) "
                  f"(connects, builds the template, {rows} requests, copies, first query): "
                  f"{ms(copy + query)}")
            print(f"  of which build + copy {ms(copy)}, session + first query {ms(query)}; "
                  f"then drop {ms(drop)}")
            runs = [one_test(server, args.scenario) for _ in range(args.repeat)]
        finally:
            server.close()
        # Keeping on: a first session finds or builds the kept template, then new sessions
        # each start on it.
        _, _, built = session_start(url, source, args.scenario, args.schema)
        kept = [session_start(url, source, args.scenario, args.schema)
                for _ in range(args.sessions)]
        total = time.perf_counter() - started

    totals = [sum(run[:3]) for run in runs]
    print(f"each later test, over {args.repeat}: median {ms(statistics.median(totals))}, "
          f"p95 {ms(p95(totals))}, max {ms(max(totals))}")
    for label, index in (("copy (CREATE DATABASE ... TEMPLATE)", 0),
                         ("session + first query", 1), ("teardown (close, DROP DATABASE)", 2)):
        values = [run[index] for run in runs]
        print(f"  {label:36} median {ms(statistics.median(values))}, p95 {ms(p95(values))}")
    assert not any(was_built for _, _, was_built in kept), "a kept template was rebuilt"
    starts = [start for start, _, _ in kept]
    print(f"session start, kept template found (over {args.sessions} new sessions; "
          f"{'built by the first' if built else 'kept by an earlier run'}): "
          f"median {ms(statistics.median(starts))}, max {ms(max(starts))}")
    print(f"(whole run: {total:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
