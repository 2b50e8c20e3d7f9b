"""Benchmark the bulk path: `seed scenario load` against the database's own ceiling.

One run, one server, a fresh database:

1. ``seed scenario load --scale 1`` and ``--scale 10`` end to end (subprocesses; rows per
   second and peak memory of each);
2. a bare binary COPY of as many pre-made rows of the session_requests shape (the rows the
   scale-10 run wrote, read back into memory first), into a table of the same columns: with
   no index (the heap's ceiling) and with its primary key;
3. factory_boy ``SessionRequestFactory.create()`` per row through the ORM (a sample);
4. ``seed report`` on the million requests, a few times: the first run and the median
   (the first right after the load and the bare COPY; one machine's runs differ a lot).

Usage:
    python bench/load.py [--server URL] [--scales 1,10] [--sample 2000] [--reports 5]

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
    from seeding import database, embedded

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
    from seeding import database

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
