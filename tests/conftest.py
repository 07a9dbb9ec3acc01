"""Shared fixtures: recorded data location, unique shm sessions with guaranteed cleanup, and
process cleanup for multi-process tests."""

from __future__ import annotations

import os
import pathlib
import tempfile

import pytest

from livestack.ipc import shm

ROOT = pathlib.Path(__file__).resolve().parents[1]

# The per-CPU harness locks (livestack/node) of this test run live in a folder of its own: another
# test run on the same host (a second checkout, CI beside a developer) must not make our stacks
# refuse their harness CPU. Within this run the locks still apply, and tests/unit/node checks them.
os.environ.setdefault("LIVESTACK_CPU_LOCK_DIR", tempfile.mkdtemp(prefix="livestack-cpu-locks-"))


def data_dir() -> pathlib.Path | None:
    """``$LIVESTACK_DATA`` or ``../shared/data`` beside the repository, if it exists."""
    env = os.environ.get("LIVESTACK_DATA")
    for cand in ([pathlib.Path(env)] if env else []) + [ROOT.parent / "shared" / "data"]:
        if cand.is_dir():
            return cand
    return None


@pytest.fixture(scope="session")
def datadir() -> pathlib.Path:
    d = data_dir()
    if d is None:
        pytest.skip("recorded data not found: set LIVESTACK_DATA or put it at ../shared/data")
    return d


@pytest.fixture
def session():
    """A unique shm session id; every segment of it is unlinked after the test, pass or fail."""
    sid = shm.new_session_id()
    yield sid
    shm.remove_session(sid)


@pytest.fixture
def procs():
    """A list to append multiprocessing.Process objects to; all are killed and joined at teardown."""
    started = []
    yield started
    for p in started:
        if p.is_alive():
            p.kill()
        p.join(timeout=10)
