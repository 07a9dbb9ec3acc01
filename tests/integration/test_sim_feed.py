"""The simulated market as a feed process of its own (no venue) over a real shm ring.

Allowed outcome: a snapshot first, then updates, ``seq`` 1, 2, 3 ... without a hole (the consumer
keeps up, and in as-fast-as-possible mode the feed never outruns the ring), clean exit on stop
and on SIGTERM.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest

from livestack.config import Instrument
from livestack.feeds import sim
from livestack.ipc import Ring, segment_name
from livestack.schema import FeedStatus, RecordKind

CTX = mp.get_context("spawn")


@pytest.mark.parametrize("pace", [True, False])
def test_feed_process_publishes_a_snapshot_then_a_gapless_stream(session, procs, pace):
    ring = Ring.create(segment_name(session, "md.sim"), 1 << 14, 64)
    stop = CTX.Event()
    insts = [Instrument(1, "A"), Instrument(2, "B", tick=5)]
    p = CTX.Process(target=sim.run_process, args=(ring.name, insts, {"pace": pace, "events_per_s": 50_000}, stop))
    procs.append(p)
    p.start()
    buf = np.zeros(4096, dtype=sim.MD_OVERLAY)
    got = []
    deadline = time.monotonic() + 30
    try:
        while sum(map(len, got)) < 60_000 and time.monotonic() < deadline:
            n = ring.read(buf)
            if n:
                got.append(buf[:n].copy())
            else:
                time.sleep(0.001)
        if pace:
            os.kill(p.pid, signal.SIGTERM)
        else:
            stop.set()
        p.join(timeout=20)
    finally:
        stop.set()
        p.join(timeout=20)
    assert p.exitcode == 0
    recs = np.concatenate(got)
    assert len(recs) >= 60_000
    assert recs["seq"].tolist() == list(range(1, len(recs) + 1))
    assert not ((recs["kind"] == RecordKind.MD_STATUS) & (recs["c"] == FeedStatus.GAP)).any()
    for iid in (1, 2):
        mine = recs[recs["instrument"] == iid]
        assert mine["kind"][0] == RecordKind.MD_STATUS and mine["c"][0] == FeedStatus.SNAPSHOT_BEGIN
    assert (recs["a"][(recs["instrument"] == 2) & (recs["kind"] == RecordKind.MD_LEVEL)] % 5 == 0).all()
    assert (np.diff(recs["ts_event"]) >= 0).all()
    ring.close()
