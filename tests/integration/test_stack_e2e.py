"""The whole stack as real processes over real shared memory (issue 4's end-to-end tests).

Each test runs `Supervisor` (what `livestack run` runs) with its own session id and records dir,
checks what flowed through the rings and what reached the HDF5 file, and always stops the
session (processes joined, segments unlinked) even when an assertion fails.
"""

from __future__ import annotations

import io
import os
import signal
import time

import numpy as np
import pytest

from livestack.ipc import shm
from livestack.node import config
from livestack.node.supervisor import Supervisor

pytestmark = pytest.mark.slow


def _wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def stack(tmp_path):
    started = []

    def _start(raw: dict):
        raw = dict(raw)
        raw.setdefault("session", {})
        raw["session"] = {"records_dir": str(tmp_path / "records"), "status_interval_s": 0.0, **raw["session"]}
        sup = Supervisor(config.validate(raw), out=io.StringIO())
        started.append(sup)
        sup.start()
        return sup

    yield _start
    for sup in started:
        sup.stop(timeout=20)
        assert shm.list_segments(sup.session) == [], "segments left behind"


def _run_for(sup, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert sup.poll(), "; ".join(sup.events)
        time.sleep(0.1)


def _records(sup):
    from livestack.records import open_session

    return open_session(sup.records_path)


def test_default_simulated_stack_trades_and_shuts_down_cleanly(stack):
    sup = stack({"session": {"duration_s": 0.0}})
    _run_for(sup, 20)
    s = sup.status()
    assert s["md"] > 1000, "market data did not flow"
    assert s["orders"] > 10, "the market maker placed no orders"
    rc = sup.stop(timeout=20)
    assert rc == 0, sup.events
    assert shm.list_segments(sup.session) == []
    rec = _records(sup)
    states = set(rec["order_state"]["state"])
    assert {"ACCEPTED", "CANCELED"} <= states, states
    assert len(rec["fill"]) > 0, "no fills in 20 s of market making"
    seq = np.sort(np.concatenate([np.asarray(df["seq"], dtype=np.uint64) for k, df in rec.items()
                                  if len(df) and not k.startswith("journal_")]))
    assert seq[0] == 1 and np.all(np.diff(seq) == 1), "record-stream sequence has holes or duplicates"


def test_a_killed_feed_venue_is_restarted_and_the_book_resyncs(stack):
    sup = stack({})
    _run_for(sup, 3)
    venue = sup.procs["venue"].proc
    os.kill(venue.pid, signal.SIGKILL)
    _wait(lambda: sup.poll() and sup.procs["venue"].restarts >= 1, 30, "venue restart")
    before = sup.status()["md"]
    _run_for(sup, 3)
    assert sup.status()["md"] > before, "market data did not resume after the restart"
    assert any("restarted" in e for e in sup.events)


def test_a_killed_harness_makes_the_venue_cancel_its_resting_orders(stack):
    from livestack.schema import DTYPES, ExecType

    sup = stack({})
    _wait(lambda: sup.poll() and sup.status().get("telemetry", {}).get("gauges", {}).get("open_orders", 0) > 0,
          30, "the market maker to have resting orders")
    os.kill(sup.procs["harness"].proc.pid, signal.SIGKILL)
    _wait(lambda: not sup.poll(), 10, "supervisor to notice the dead harness")
    venue = sup.procs["venue"].proc
    venue.join(timeout=15)
    assert venue.exitcode == 0, "venue did not stop by itself after cancel-on-disconnect"
    # what the venue reported after the harness died is still unread in the exec ring
    unread = sup._owned(sup.rings["exec"]).view()
    execs = np.asarray(unread).view(DTYPES["EXEC"])
    assert (execs["exec_type"] == ExecType.CANCELED).sum() >= 1, "no cancel-on-disconnect reports"
