"""Variants of a tile built in a child process: the same rows as in-process, or a fallback."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import pytest

from seeding.db import variants
from seeding.errors import ScenarioError


def test_the_child_builds_the_rows_a_thread_would(tile_file: str) -> None:
    with variants.Builds(tile_file, 11, [1, 2, 3]) as builds:
        assert builds.in_child
        built = {v: builds.result(v) for v in (1, 2, 3)}
    assert builds._child is not None and builds._child.returncode == 0  # it ended on its own
    for v in (1, 2, 3):
        assert built[v] == variants.build_variant(tile_file, 11, v)
    assert built[1] != built[2]  # the variants differ from one another


@pytest.mark.parametrize("python", ["/nonexistent/python", ""])
def test_without_a_child_the_variants_are_built_in_a_thread(
    tile_file: str, monkeypatch: pytest.MonkeyPatch, python: str
) -> None:
    monkeypatch.setattr(sys, "executable", python)  # the sys variants reads
    with variants.Builds(tile_file, 11, [1, 2]) as builds:
        assert not builds.in_child
        assert builds.result(2) == variants.build_variant(tile_file, 11, 2)


def test_a_child_that_stops_early_leaves_the_rest_to_a_thread(
    tile_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def exits_at_once(
        path: str, seed: int, order: Sequence[int], now: datetime | None = None
    ) -> tuple[subprocess.Popen[bytes] | None, BinaryIO | None]:
        child, pipe = original(path, seed, order, now)
        assert child is not None
        child.kill()
        return child, pipe

    original = variants._start_child
    monkeypatch.setattr(variants, "_start_child", exits_at_once)
    with variants.Builds(tile_file, 11, [1, 3]) as builds:
        assert builds.in_child
        assert builds.result(3) == variants.build_variant(tile_file, 11, 3)


def test_a_scenario_error_in_the_child_is_raised_for_every_variant(tmp_path: Path) -> None:
    missing = str(tmp_path / "gone.yaml")
    with variants.Builds(missing, 11, [1, 2]) as builds:
        assert builds.in_child
        for v in (1, 2):
            with pytest.raises(ScenarioError, match="gone.yaml"):
                builds.result(v)


def test_leaving_early_stops_the_child(tile_file: str) -> None:
    with variants.Builds(tile_file, 11, list(range(1, 40))) as builds:
        child = builds._child
    assert child is not None
    assert child.returncode == -signal.SIGKILL  # stopped, not left to build 39 variants


def test_the_child_runs_as_a_module() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "seeding.db.variants", "--help"], capture_output=True, text=True
    )
    assert completed.returncode == 0 and "--variants" in completed.stdout
