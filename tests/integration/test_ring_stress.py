"""Producer and consumer in separate (spawned) processes over a real shared-memory ring.

Allowed outcome, stated up front: the consumer reads every record 1..N exactly once, in order,
intact (checksum), and nothing else. The variant SIGKILLs the consumer mid-stream and starts a new
one, which must resume at exactly the position the dead one had released.
"""

import functools
import multiprocessing as mp
import os
import signal

import numpy as np
import pytest

from livestack.ipc import Ring, pyring, segment_name, shm
from livestack.schema import RecordKind

from tests.integration import ringstress as rs
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

CASES = {"compiled": 10_000_000, "reference": 100_000}


_wait_for = functools.partial(wait_for, poll_s=0.01)


def _setup(impl, session, capacity):
    cls = {"compiled": Ring, "reference": pyring.PyRing}[impl]
    ring = cls.create(segment_name(session, "stress"), capacity, 64, RecordKind.MD_LEVEL)
    status_name = segment_name(session, "status")
    _, mm = shm.create_segment(status_name, 64)
    status = np.frombuffer(mm, dtype=np.int64, count=8)
    return ring, status


@pytest.mark.parametrize("impl", list(CASES))
def test_stream_is_exactly_once_in_order_and_intact(impl, session, procs):
    total = CASES[impl]
    ring, status = _setup(impl, session, 1 << 12)
    ctx = mp.get_context("spawn")
    prod = ctx.Process(target=rs.produce, args=(impl, ring.name, total, 1, 700))
    cons = ctx.Process(target=rs.consume, args=(impl, ring.name, segment_name(session, "status"), total, 2, 900))
    procs += [prod, cons]
    cons.start()
    prod.start()
    prod.join(timeout=240)
    cons.join(timeout=60)
    assert prod.exitcode == 0 and cons.exitcode == 0, (prod.exitcode, cons.exitcode)
    assert status[rs.ERRORS] == 0, f"bad record at position {status[rs.FIRST_BAD]}"
    assert status[rs.VERIFIED] == total
    assert ring.head == ring.tail == total
    ring.close()


@pytest.mark.parametrize("impl", list(CASES))
def test_consumer_killed_mid_stream_resumes_exactly_where_it_released(impl, session, procs):
    total = CASES[impl]
    ring, status = _setup(impl, session, 1 << 12)
    ctx = mp.get_context("spawn")
    status_name = segment_name(session, "status")
    prod = ctx.Process(target=rs.produce, args=(impl, ring.name, total, 3, 500))
    procs.append(prod)
    prod.start()
    kills = 0
    for fraction in (0.2, 0.5, 0.8):
        cons = ctx.Process(target=rs.consume, args=(impl, ring.name, status_name, total, 4, 800))
        procs.append(cons)
        cons.start()
        # this consumer must have attached before it can be killed (under load the previous one may
        # already be past this fraction, and the kill would land before the new one even started)
        _wait_for(lambda: status[rs.INSTANCES] == kills + 1 or not cons.is_alive(), 240,
                  f"consumer {kills + 1} to attach")
        _wait_for(lambda: status[rs.VERIFIED] >= fraction * total or not cons.is_alive(), 240,
                  f"consumer to pass {fraction:.0%}")
        assert cons.is_alive(), f"consumer exited early ({cons.exitcode})"
        os.kill(cons.pid, signal.SIGKILL)
        cons.join(timeout=10)
        assert cons.exitcode == -signal.SIGKILL
        kills += 1
    last = ctx.Process(target=rs.consume, args=(impl, ring.name, status_name, total, 5, 800))
    procs.append(last)
    last.start()
    prod.join(timeout=240)
    last.join(timeout=120)
    assert prod.exitcode == 0 and last.exitcode == 0, (prod.exitcode, last.exitcode)
    assert kills == 3 and status[rs.INSTANCES] == 4
    assert status[rs.ERRORS] == 0, f"bad record at position {status[rs.FIRST_BAD]}"
    assert status[rs.VERIFIED] == total and ring.head == total
    ring.close()
