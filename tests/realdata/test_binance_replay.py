"""replay_into_ring writes exactly what decode_capture returns, through a real shm ring."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from livestack.config import BTCUSDT_SPOT
from livestack.feeds.capture import decode_capture, replay_into_ring
from livestack.ipc import Backoff, Ring, segment_name

SPOT = BTCUSDT_SPOT  # spot sizes keep 8 decimals: see livestack/config.py


@pytest.fixture(scope="module")
def spot_path(datadir):
    p = datadir / "binance/spot-btcusdt-20240808.gz"
    if not p.exists():
        pytest.skip(f"{p} missing")
    return p


def _drain(ring, total, out, done):
    buf = np.zeros(8192, dtype=ring.dtype)
    b = Backoff("backoff")
    got = 0
    while not done.is_set() or ring.size():
        k = ring.read(buf)
        if k:
            out.append(buf[:k].copy())
            got += k
            b.reset()
        else:
            b.idle()


@pytest.mark.parametrize("pace,capacity", [("max", 1 << 10), ("recorded", 1 << 16)])
def test_replay_into_ring_writes_the_decoded_capture_in_order(spot_path, session, pace, capacity):
    expect = decode_capture(spot_path, SPOT, "spot")
    ring = Ring.create(segment_name(session, "md.replay"), capacity, 64)
    chunks, done = [], threading.Event()
    t = threading.Thread(target=_drain, args=(ring, len(expect), chunks, done), daemon=True)
    t.start()
    try:
        # recorded pace sped up 2000x: the 6-minute capture in ~0.2 s, still paced message by message
        n = replay_into_ring(spot_path, ring, SPOT, "spot", pace=pace, speed=2000.0, timeout=20.0)
    finally:
        done.set()
        t.join(20)
        ring.close()
        ring.unlink()
    assert not t.is_alive()
    got = np.concatenate(chunks)
    assert n == len(expect) == len(got)
    assert np.array_equal(got.view(np.uint8), expect.view(np.uint8))  # bit-identical, seq included
