"""Benchmark the bulk path: `seed scenario load` against the database's own ceiling.

One run, one server, a fresh database:

1. ``seed scenario load --scale 1`` and ``--scale 10`` end to end (subprocesses; rows per
   second and peak memory of each);
1b. the largest of those scales again on a database shaped like the app's live Supabase one
   (tests/app_shape.py: ``auth.users`` and the app's triggers), where every customer and
   mechanic also gets an auth user and an identity; then once more with the app's own
   triggers disabled on that database (the bench's own; the tool never disables them), which
   tells the time of the app's triggers from the tool's;
2. a bare binary COPY of as many pre-made rows of the session_requests shape (the rows the
   scale-10 run wrote, read back into memory first), into a table of the same columns: with
   no index (the heap's ceiling) and with its primary key;
3. factory_boy ``SessionRequestFactory.create()`` per row through the ORM (a sample);
4. ``seed report`` on the million requests, a few times: the first run and the median
   (the first right after the load and the bare COPY; one machine's runs differ a lot).

Usage:
    python bench/load.py [--server URL] [--scales 1,10] [--app live|migrations|none]
                         [--sample 2000] [--reports 5]

``--server`` is a PostgreSQL server URL the benchmark may create a database on (default:
$SEED_TEST_DATABASE_URL, else the embedded server). Prints the figures and the ratios.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent


def server_url(given: str | None) -> str:
    """Return a libpq URL of the server to benchmark on."""
    from seeding.db import database, embedded

    url = given or os.environ.get("SEED_TEST_DATABASE_URL")
    if url:
        return database.libpq_url(url)
    data_dir = Path(os.environ.get("SEED_DATA_DIR") or embedded.default_data_dir())
    return embedded.start(data_dir).url("postgres")


def with_database(server: str, name: str) -> str:
    """Return the server URL pointing at another database."""
    parts = psycopg.conninfo.conninfo_to_dict(server)
    parts["dbname"] = name
    return "postgresql://?" + "&".join(f"{k}={v}" for k, v in parts.items() if v is not None)


@contextmanager
def bench_database(server: str) -> Iterator[tuple[str, str]]:
    """Create a fresh database on the server; yield its name and URL; drop it after."""
    name = f"seed_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name, with_database(server, name)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


#: The seeded users' password on the app-shaped database.
APP_PASSWORD = "bench-password-1"


@contextmanager
def app_database(server: str, shape: str, *, triggers: bool) -> Iterator[str]:
    """Yield the URL of a fresh database shaped like the app's (``live`` or ``migrations``).

    ``triggers=False`` disables the app's own triggers there (``DISABLE TRIGGER USER`` on
    ``auth.users`` and the app's tables), to measure what they cost; the keys' checks stay.
    """
    sys.path.insert(0, str(ROOT / "tests"))
    from app_shape import admit_tool_request_statuses, create_app_shape

    with bench_database(server) as (_, url):
        create_app_shape(url, live=shape == "live")
        if shape == "migrations":
            admit_tool_request_statuses(url)
        if not triggers:
            with psycopg.connect(url) as connection:
                tables = connection.execute(
                    "SELECT schemaname, tablename FROM pg_tables "
                    "WHERE schemaname = 'public' OR (schemaname, tablename) = ('auth', 'users')"
                ).fetchall()
                for schema, table in tables:
                    connection.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(
                        sql.Identifier(schema, table)))
        yield url


def track_functions(url: str) -> None:
    """Have the server time the database's PL/pgSQL functions (the app's triggers) from now on.

    ``track_functions`` is a superuser's setting; set on the database, every later connection
    (the run's) has it.
    """
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(sql.SQL("ALTER DATABASE {} SET track_functions = 'pl'").format(
            sql.Identifier(str(name))))


def function_times(url: str) -> str:
    """Return the time the run spent in each PL/pgSQL function, busiest first, and the sum.

    The statistics reach ``pg_stat_user_functions`` when the run's backend ends; the bench
    waits for them up to two seconds.
    """
    deadline = time.monotonic() + 2
    with psycopg.connect(url, autocommit=True) as connection:
        while True:
            rows = connection.execute(
                "SELECT funcname, calls, self_time / 1000 FROM pg_stat_user_functions "
                "WHERE calls > 0 ORDER BY self_time DESC"
            ).fetchall()
            if rows or time.monotonic() > deadline:
                break
            time.sleep(0.2)
            connection.execute("SELECT pg_stat_clear_snapshot()")
    total = sum(float(seconds) for _, _, seconds in rows)
    listed = ", ".join(
        f"{name} {calls:,} calls {float(seconds):.1f} s" for name, calls, seconds in rows
    )
    return f"{total:.1f} s ({listed})" if rows else ""


def tree_resident_kb(root: int) -> int:
    """Return the resident memory (kB) of a process and all its descendants, summed."""
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        try:
            with open(f"/proc/{pid}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
            for task in os.scandir(f"/proc/{pid}/task"):
                with open(f"{task.path}/children") as children:
                    pending += [int(child) for child in children.read().split()]
        except (OSError, ValueError):
            continue  # it ended meanwhile
    return total


def run_measured(argv: list[str]) -> tuple[float, int, str]:
    """Run a command; return (seconds, peak resident memory in MB, its stdout).

    The peak is the larger of the command's own peak (its rusage, exact) and the peak of its
    process tree's summed resident memory (sampled every 20 ms): ``seed`` builds the tile's
    variants in a child process, and the two together are what the machine must hold.
    """
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err)
        tree_peak = 0
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            tree_peak = max(tree_peak, tree_resident_kb(process.pid))
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if process.returncode not in (0, 1):
        sys.exit(f"{' '.join(argv)} failed ({process.returncode}): {stderr.strip()}")
    return seconds, max(usage.ru_maxrss, tree_peak) // 1024, stdout


def seed(*args: str) -> list[str]:
    """Return the argv of the ``seed`` command of this interpreter."""
    return [sys.executable, "-m", "seeding.cli", *args]


def total_rows(stdout: str) -> int:
    """Read the total row count off `seed scenario`'s output."""
    for line in stdout.splitlines():
        if line.strip().startswith("total"):
            return int(line.split()[1].replace(",", ""))
    raise SystemExit(f"no total in: {stdout}")


def bare_copy(url: str) -> tuple[int, float, float]:
    """COPY the session_requests rows, pre-made in memory, into same-shaped tables."""
    with psycopg.connect(url) as connection:
        data = bytearray()
        with connection.cursor().copy("COPY session_requests TO STDOUT (FORMAT BINARY)") as copy:
            for block in copy:
                data += block
        rows = connection.execute("SELECT count(*) FROM session_requests").fetchone()[0]  # type: ignore[index]
        rates = []
        for including in ("INCLUDING DEFAULTS", "INCLUDING DEFAULTS INCLUDING INDEXES"):
            connection.execute(f"CREATE TABLE bench_bare (LIKE session_requests {including})")
            connection.commit()
            started = time.perf_counter()
            with connection.cursor().copy("COPY bench_bare FROM STDIN (FORMAT BINARY)") as copy:
                for at in range(0, len(data), 1 << 20):
                    copy.write(data[at : at + (1 << 20)])
            connection.commit()
            rates.append(rows / (time.perf_counter() - started))
            connection.execute("DROP TABLE bench_bare")
            connection.commit()
    return rows, rates[0], rates[1]


def factory_rate(url: str, sample: int) -> float:
    """Return factory_boy's rows per second: SessionRequestFactory.create() one by one."""
    from sqlalchemy.orm import Session

    import factories
    from seeding.db import database

    engine = database.engine_for(url)
    try:
        with Session(engine) as session, factories.bind(session):
            customer = factories.CustomerFactory.create()
            vehicle = factories.VehicleFactory.create(customer=customer)
            started = time.perf_counter()
            for _ in range(sample):
                factories.SessionRequestFactory.create(customer=customer, vehicle=vehicle)
            seconds = time.perf_counter() - started
            session.rollback()
    finally:
        engine.dispose()
    return sample / seconds


def _probe(_: object = None) -> float:
    started = time.perf_counter()
    sum(range(30_000_000))
    return time.perf_counter() - started


def cpu_probe() -> str:
    """Return how long a fixed piece of pure Python takes, alone and on two cores at once.

    A shared machine's speed drifts by half within an hour, and its two cores are not always
    two: printed before and after, the probe says whether two runs' figures can be compared.
    """
    alone = _probe()
    with multiprocessing.Pool(2) as pool:
        both = max(pool.map(_probe, range(2)))
    return f"{alone:.2f} s alone, {both:.2f} s two at once"


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server", help="PostgreSQL server URL (default: $SEED_TEST_DATABASE_URL or embedded)"
    )
    parser.add_argument(
        "--scales", default="1,10", help="comma-separated scales of `load` (default 1,10)"
    )
    parser.add_argument(
        "--app", choices=("live", "migrations", "none"), default="live",
        help="the app-shaped database `load` also runs on at the largest scale: the live "
        "staging shape (default), the migrations' shape, or none",
    )
    parser.add_argument(
        "--sample", type=int, default=2000, help="factory_boy rows to time (default 2000)"
    )
    parser.add_argument(
        "--reports", type=int, default=5, help="times to run `seed report` (default 5)"
    )
    args = parser.parse_args()

    server = server_url(args.server)
    with bench_database(server) as (name, url):
        print(
            "server: PostgreSQL on "
            f"{psycopg.conninfo.conninfo_to_dict(server).get('host') or 'socket'}; "
            f"database {name}; {os.cpu_count()} cores; cpu probe {cpu_probe()}",
            flush=True,
        )
        runs: dict[float, tuple[int, float, int]] = {}
        for scale in (float(s) for s in args.scales.split(",")):
            seconds, peak, stdout = run_measured(
                seed("scenario", "load", "--db", url, "--scale", f"{scale:g}")
            )
            rows = total_rows(stdout)
            runs[scale] = (rows, seconds, peak)
            print(
                f"seed scenario load --scale {scale:g}: {rows:,} rows in {seconds:.1f} s "
                f"= {rows / seconds:,.0f} rows/s end to end; peak memory {peak} MB",
                flush=True,
            )

        app_runs: dict[str, tuple[int, float, int]] = {}
        if args.app != "none":
            scale = max(runs)
            for label, triggers in (("app-shaped", True), ("app-shaped, its triggers off", False)):
                with app_database(server, args.app, triggers=triggers) as app_url:
                    track_functions(app_url)
                    seconds, peak, stdout = run_measured(seed(
                        "scenario", "load", "--db", app_url, "--scale", f"{scale:g}",
                        "--user-password", APP_PASSWORD,
                    ))
                    functions = function_times(app_url)
                rows = total_rows(stdout)
                app_runs[label] = (rows, seconds, peak)
                print(
                    f"seed scenario load --scale {scale:g}, {label} ({args.app}) database: "
                    f"{rows:,} rows (auth users and identities included) in {seconds:.1f} s "
                    f"= {rows / seconds:,.0f} rows/s; peak memory {peak} MB; "
                    f"{seconds / runs[scale][1]:.2f}× the tool's own schema",
                    flush=True,
                )
                if functions:
                    print(f"  of which in the app's trigger functions: {functions}", flush=True)

        requests, bare, bare_pk = bare_copy(url)
        print(
            f"bare binary COPY of {requests:,} pre-made session_requests rows: "
            f"{bare:,.0f} rows/s (no index), {bare_pk:,.0f} rows/s (with its primary key)",
            flush=True,
        )

        reports = [
            run_measured(seed("report", "--db", url, "--format", "json"))[0]
            for _ in range(max(args.reports, 1))
        ]
        report_seconds = statistics.median(reports)
        report_range = f"{min(reports):.1f}-{max(reports):.1f} s"
        print(
            f"seed report on {requests:,} requests: first {reports[0]:.1f} s, median of "
            f"{len(reports)} {report_seconds:.1f} s ({report_range})",
            flush=True,
        )

        per_row = factory_rate(url, args.sample)
        print(
            f"factory_boy create() per row: {per_row:,.0f} rows/s (sample of {args.sample:,})",
            flush=True,
        )

        print(f"cpu probe at the end: {cpu_probe()}", flush=True)
        largest = max(runs)
        rows, seconds, _ = runs[largest]
        rate = rows / seconds
        print()
        print("| figure | value |")
        print("| --- | --- |")
        for scale, (n, s, peak) in runs.items():
            print(
                f"| `seed scenario load --scale {scale:g}` | {n:,} rows in {s:.1f} s, "
                f"{n / s:,.0f} rows/s, peak {peak} MB |"
            )
        for label, (n, s, peak) in app_runs.items():
            print(
                f"| `seed scenario load --scale {largest:g}`, {label} ({args.app}) | {n:,} rows "
                f"in {s:.1f} s, {n / s:,.0f} rows/s, peak {peak} MB; {s / seconds:.2f}× the "
                "tool's own schema (target ≤ 1.3×) |"
            )
        print(f"| bare binary COPY, session_requests shape, no index | {bare:,.0f} rows/s |")
        print(
            "| bare binary COPY, session_requests shape, with primary key | "
            f"{bare_pk:,.0f} rows/s |"
        )
        print(f"| factory_boy `create()` per row | {per_row:,.0f} rows/s |")
        print(
            f"| `seed report` on {requests:,} requests | first {reports[0]:.1f} s; median of "
            f"{len(reports)} {report_seconds:.1f} s ({report_range}) (target < 5 s) |"
        )
        print(
            f"| load (scale {largest:g}) / bare COPY, no index | {rate / bare:.0%} (target ≥ 35%) |"
        )
        print(f"| load (scale {largest:g}) / bare COPY, with primary key | {rate / bare_pk:.0%} |")
        print(f"| load (scale {largest:g}) / factory_boy per row | {rate / per_row:,.0f}× |")


if __name__ == "__main__":
    main()
