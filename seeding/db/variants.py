"""The variants of a tile after the first, built in a child process while copies are written.

A variant is about a second of pure Python in the factories. Built in a thread, it holds the
GIL that the COPY's sending thread needs: at ``--scale 10`` the run measured 1.5 to 2.3 s
slower than with the variants built beforehand. A child process (``python -m
seeding.db.variants``) builds them on the other core instead and sends each back pickled, in
order, over a pipe of its own.

The child runs the same code on the same seeds, so its rows are the rows a thread would
build. When no child can be started, or it stops before sending every variant, the missing
ones are built in a thread as before; only a scenario error found by the child is final.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from datetime import datetime
from types import TracebackType
from typing import BinaryIO

from seeding.errors import ScenarioError

#: A built tile's rows per table (see seeding.db.tiles.tile_rows).
TileRows = dict[str, list[tuple[object, ...]]]


def build_variant(path: str, seed: int, variant: int, now: datetime | None = None) -> TileRows:
    """Build variant ``variant`` of the tiled scenario at ``path`` for a run's ``seed``.

    ``now`` moves the scenario in time, as ``--now`` does (:mod:`seeding.scenario.timeshift`).

    Raises:
        ScenarioError: When the scenario is wrong or the variant cannot be built.

    """
    from seeding.db import tiles
    from seeding.scenario.builder import build
    from seeding.scenario.files import load
    from seeding.scenario.plan import make_plan

    scenario, nodes = load(path)
    # The tile's size was checked against the run's bound by prepare_tiled (which may have
    # been given its own); every variant has the same rows.
    plan = make_plan(
        scenario, nodes, seed=tiles.variant_seed(seed, variant), scale=1.0, max_rows=2**62
    )
    if now is not None:
        from seeding.scenario.timeshift import shifted

        plan = shifted(plan, now)
    return tiles.tile_rows(build(plan))


class Builds:
    """Variants of one tile, built in order by a child process (or, failing that, a thread).

    Use as a context manager: leaving it stops the child if it is still building.
    """

    def __init__(
        self, path: str, seed: int, variants: Sequence[int], now: datetime | None = None
    ) -> None:
        """Start building ``variants`` of the scenario at ``path`` for a run's ``seed``."""
        self.path, self.seed, self.now = path, seed, now
        self._order = list(variants)
        self._results: dict[int, Future[TileRows]] = {v: Future() for v in self._order}
        self._child: subprocess.Popen[bytes] | None = None
        self._pipe: BinaryIO | None = None
        self._closing = False
        if self._order:
            self._child, self._pipe = _start_child(path, seed, self._order, now)
        self._reader = threading.Thread(target=self._collect, name="seed-variants", daemon=True)
        self._reader.start()

    @property
    def in_child(self) -> bool:
        """Return whether a child process was started to build the variants."""
        return self._child is not None

    def result(self, variant: int) -> TileRows:
        """Return a variant's rows, waiting for them.

        Raises:
            ScenarioError: When the variant cannot be built.

        """
        return self._results[variant].result()

    def _collect(self) -> None:
        """Take the child's variants as they come; build in this thread what it did not send."""
        if self._pipe is not None:
            try:
                while True:
                    kind, variant, payload = pickle.load(self._pipe)
                    if kind == "rows":
                        self._results[variant].set_result(payload)
                    else:  # "error": the scenario is wrong; every later variant waits on it
                        error = ScenarioError(payload)
                        for future in self._results.values():
                            if not future.done():
                                future.set_exception(error)
                        return
            except (EOFError, OSError, pickle.UnpicklingError, ValueError):
                pass  # the child stopped (or was stopped): build the rest here
            finally:
                self._pipe.close()
        for variant in self._order:
            future = self._results[variant]
            if future.done() or self._closing:
                continue
            try:
                future.set_result(build_variant(self.path, self.seed, variant, self.now))
            except BaseException as error:  # handed to the waiting caller
                future.set_exception(error)

    def close(self) -> None:
        """Stop the child if it is still building, and wait for it and the reader."""
        self._closing = True
        if self._child is not None:
            sent_all = all(future.done() for future in self._results.values())
            try:
                # A child that sent every variant is exiting: let it end on its own.
                self._child.wait(timeout=2 if sent_all else 0)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait()
        self._reader.join()

    def __enter__(self) -> Builds:
        """Return the builds."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the child (see :meth:`close`)."""
        self.close()


def _start_child(
    path: str, seed: int, variants: Sequence[int], now: datetime | None = None
) -> tuple[subprocess.Popen[bytes] | None, BinaryIO | None]:
    """Start ``python -m seeding.db.variants``; return it and the pipe it writes to (or Nones)."""
    if not sys.executable:  # an embedded interpreter: no python to start
        return None, None
    read_end, write_end = os.pipe()
    environment = dict(os.environ)
    # The child imports what this process imports: the same seeding, factories and Faker.
    environment["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    argv = [
        sys.executable, "-m", "seeding.db.variants", "--fd", str(write_end),
        "--path", path, "--seed", str(seed), "--variants", ",".join(map(str, variants)),
        *(["--now", now.isoformat()] if now is not None else []),
    ]
    try:
        child = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, pass_fds=(write_end,), env=environment,
        )
    except (OSError, ValueError):  # no such file; pass_fds where it is not supported
        os.close(read_end)
        return None, None
    finally:
        os.close(write_end)
    return child, os.fdopen(read_end, "rb")


def main(argv: Sequence[str] | None = None) -> None:
    """Build the variants asked for and write each to the pipe, pickled, in order."""
    parser = argparse.ArgumentParser(prog="python -m seeding.db.variants")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--variants", required=True)
    parser.add_argument("--now", default=None)
    args = parser.parse_args(argv)
    now = datetime.fromisoformat(args.now) if args.now else None
    with os.fdopen(args.fd, "wb") as pipe:
        for variant in map(int, args.variants.split(",")):
            try:
                rows = build_variant(args.path, args.seed, variant, now)
            except ScenarioError as error:
                pickle.dump(("error", variant, str(error)), pipe)
                return
            pickle.dump(("rows", variant, rows), pipe, protocol=pickle.HIGHEST_PROTOCOL)
            pipe.flush()


if __name__ == "__main__":
    main()
