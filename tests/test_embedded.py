"""Throwaway embedded servers: a killed process's server is stopped by the next one."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from seeding.db import embedded

STARTS_AND_WAITS = """
import sys, time
from seeding.db import embedded
data_dir = embedded.scratch_data_dir(sys.argv[1])
embedded.start(data_dir)
print(data_dir, flush=True)
time.sleep(600)
"""


@pytest.mark.database  # its child starts an embedded server
def test_the_server_of_a_killed_process_is_stopped_and_its_folder_removed() -> None:
    prefix = f"seed-sweep-test-{uuid.uuid4().hex[:8]}-"
    command = [sys.executable, "-c", STARTS_AND_WAITS, prefix]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None
            data_dir = Path(child.stdout.readline().strip())
            assert embedded.running(data_dir) is not None
            assert embedded.sweep_scratch(prefix) == []  # its process is alive: kept
        finally:
            child.send_signal(signal.SIGKILL)
    try:
        assert embedded.running(data_dir) is not None  # outlived its process

        assert embedded.sweep_scratch(prefix) == [data_dir.parent]

        assert embedded.running(data_dir) is None
        assert not data_dir.parent.exists()
    finally:
        if data_dir.parent.exists():
            embedded.stop(data_dir)
            shutil.rmtree(data_dir.parent, ignore_errors=True)


def test_a_folder_without_an_owner_is_never_touched() -> None:
    prefix = f"seed-sweep-test-{uuid.uuid4().hex[:8]}-"
    mine = embedded.scratch_data_dir(prefix).parent
    foreign = mine.with_name(f"{prefix}foreign")
    foreign.mkdir()
    try:
        (mine / embedded.OWNER_FILE).write_text("999999999 1")  # a process that is gone
        assert embedded.sweep_scratch(prefix) == [mine]
        assert foreign.exists()
    finally:
        shutil.rmtree(mine, ignore_errors=True)
        shutil.rmtree(foreign, ignore_errors=True)
