"""Benchmark reset and replacing runs beside a million requests.

One run, one server, a fresh database:

1. ``seed scenario load --scale 10`` (1,984,000 rows), then ``seed scenario diverse`` beside
   it (282 rows);
2. ``seed reset --dry-run``: of the small run (``--scenario diverse``), of the big one
   (``--scenario load``), of both (every run);
3. ``seed scenario load --scale 10`` again: it replaces its own earlier run;
4. ``seed reset --yes --scenario load``: deletes the big run, the small one stays.

Every step is the CLI in a subprocess, timed end to end.

Usage:
    python bench/reset.py [--server URL] [--scale 10]

``--server`` is a PostgreSQL server URL the benchmark may create a database on (default:
$SEED_TEST_DATABASE_URL, else the embedded server). The database is dropped at the end.
"""

from __future__ import annotations

import argparse

import psycopg
from load import bench_database, run_measured, seed, server_url


def timed(label: str, *args: str) -> float:
    """Run ``seed`` with these arguments, print and return its time."""
    seconds, _, _ = run_measured(seed(*args))
    print(f"{label:<58} {seconds:6.1f} s", flush=True)
    return seconds


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server", help="PostgreSQL server URL (default: $SEED_TEST_DATABASE_URL or embedded)"
    )
    parser.add_argument("--scale", default="10", help="scale of `load` (default 10)")
    args = parser.parse_args()

    with bench_database(server_url(args.server)) as (name, url):
        load = ("scenario", "load", "--scale", args.scale, "--db", url)
        print(f"database {name}; load at scale {args.scale}", flush=True)
        timed(f"seed scenario load --scale {args.scale} (fresh)", *load)
        timed("seed scenario diverse (beside it)", "scenario", "diverse", "--db", url)
        timed("seed reset --dry-run --scenario diverse (the small run)",
              "reset", "--dry-run", "--scenario", "diverse", "--db", url)
        timed("seed reset --dry-run --scenario load (the big run)",
              "reset", "--dry-run", "--scenario", "load", "--db", url)
        timed("seed reset --dry-run (every run)", "reset", "--dry-run", "--db", url)
        timed(f"seed scenario load --scale {args.scale} (replacing itself)", *load)
        timed("seed reset --yes --scenario load (the big run)",
              "reset", "--yes", "--scenario", "load", "--db", url)
        with psycopg.connect(url) as connection:
            row = connection.execute("SELECT count(*) FROM session_requests").fetchone()
        print(f"session_requests left (the small run's): {row[0] if row else '?'}", flush=True)


if __name__ == "__main__":
    main()
