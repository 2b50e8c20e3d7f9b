"""Benchmark reset and replacing runs beside a million requests.

One run, one server, a fresh database:

1. ``seed scenario load --scale 10`` (1,984,000 rows), then ``seed scenario diverse`` beside
   it (282 rows);
2. ``seed reset --dry-run``: of the small run (``--scenario diverse``), of the big one
   (``--scenario load``), of both (every run);
3. ``seed scenario load --scale 10`` again: it replaces its own earlier run;
4. ``seed reset --yes --scenario load``: deletes the big run, the small one stays;
5. with ``--app live|migrations`` (default ``live``; ``none`` skips it), on a fresh database
   shaped like the app's (tests/app_shape.py): ``load`` at the same scale with its auth users,
   then ``seed reset --yes``, with the strongest lock the reset took on ``auth.users`` (a
   watcher reads ``pg_locks`` every 50 ms: an ``AccessExclusiveLock`` there stops every
   sign-in while the reset runs).

Every step is the CLI in a subprocess, timed end to end.

Usage:
    python bench/reset.py [--server URL] [--scale 10] [--app live|migrations|none]

``--server`` is a PostgreSQL server URL the benchmark may create a database on (default:
$SEED_TEST_DATABASE_URL, else the embedded server). The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import threading
import time

import psycopg
from load import APP_PASSWORD, app_database, bench_database, run_measured, seed, server_url


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
    parser.add_argument("--app", default="live", choices=["live", "migrations", "none"],
                        help="the app-shaped database to reset a load on (default live)")
    args = parser.parse_args()
    server = server_url(args.server)

    with bench_database(server) as (name, url):
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

    if args.app != "none":
        with app_database(server, args.app, triggers=True) as url:
            print(f"app-shaped ({args.app}) database; load at scale {args.scale}", flush=True)
            timed(f"seed scenario load --scale {args.scale} (with auth users)",
                  "scenario", "load", "--scale", args.scale, "--db", url,
                  "--user-password", APP_PASSWORD)
            with LockWatch(url) as locks:
                timed("seed reset --yes (the load, its auth users, the app's rows)",
                      "reset", "--yes", "--db", url)
            print(f"locks the reset took on auth.users: {', '.join(sorted(locks.seen))}",
                  flush=True)


class LockWatch:
    """Read the granted locks on ``auth.users`` every 50 ms while the block runs."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: set[str] = set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch)

    def _watch(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as connection:
            while not self._done.is_set():
                self.seen.update(str(mode) for (mode,) in connection.execute(
                    "SELECT mode FROM pg_locks WHERE granted "
                    "AND relation = 'auth.users'::regclass"
                ))
                time.sleep(0.05)

    def __enter__(self) -> LockWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()


if __name__ == "__main__":
    main()
