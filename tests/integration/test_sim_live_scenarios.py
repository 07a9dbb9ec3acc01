"""Hand-made scenarios through the simulated venue process on the wall clock (a live run).

A small hand-written Binance USD-M capture is replayed by the venue process at its recorded pace
(``pace=True``: simulated time is the wall clock), and this process plays the harness over real
shm rings. The matching engine decides the same way as in the backtest (one engine); every expected
event below follows from the rules in ``livestack/matching/engine.pyx``.

Book after the snapshot (t = 1 ms): bids 100.00 x 5, 99.00 x 10; asks 101.00 x 5, 102.00 x 10.
Our orders, sent on the snapshot (order latency 300 ms: they arrive at ~0.3 s):

* A: buy 2.000 @ 100.00 -- queue ahead 5.000. Sell trades 3.000 (1.5 s: ahead 2.000), the level
  drops by the traded 3.000 (no cancel), sell trade 3.000 (2.0 s: 2.000 ahead, 1.000 to A =
  PARTIALLY_FILLED), sell trade 2.000 (2.5 s: A's last 1.000 = FILLED).
* B: sell 1.000 @ 101.00 -- ahead 5.000. The level drops to 1.000 with no trade (1.6 s: a cancel of
  4.000 spread over the queue: ahead 5 - 4 * 5 / 5 = 1.000), buy trade 1.500 (2.2 s: ahead 0, 0.500
  to B = PARTIALLY_FILLED). Cancel race: we cancel B when we see the 3.0 s update; the buy trade
  of 3.1 s fills B's last 0.500 (FILLED) before the cancel arrives (3.3 s): CANCEL_REJECTED,
  UNKNOWN_ORDER.
* C: sell 1.000 @ 102.00, canceled at once (arrives right after it): CANCELED, and the buy trade
  through 102.00 at 3.5 s fills nothing of ours.
* D: buy 1.000 @ 101.00 POST_ONLY: would cross the ask, REJECTED (POST_ONLY_WOULD_CROSS).
"""

from __future__ import annotations

import gzip
import json
import multiprocessing as mp
import os

import numpy as np

from livestack.config import BTCUSDT_USDM
from livestack.feeds import sim as fsim
from livestack.ipc import Ring, segment_name
from livestack.ipc.stopflag import StopFlag
from livestack.schema import DTYPES, DenyReason, ExecType as E, OrderCmdType, RecordKind, Side, TimeInForce, new
from livestack.venues import process as vp
from livestack.venues import sim
from tests.waiting import wait_for

CTX = mp.get_context("spawn")
T0 = 1_700_000_000_000_000_000
MS = 10**6


def _depth(t, U, u, pu, bids=(), asks=()):
    return t, {"stream": "btcusdt@depth@0ms", "data": {"e": "depthUpdate", "E": t // MS, "T": t // MS,
               "s": "BTCUSDT", "U": U, "u": u, "pu": pu, "b": [list(x) for x in bids], "a": [list(x) for x in asks]}}


def _trade(t, tid, px, qty, seller_aggressor):
    return t, {"stream": "btcusdt@trade", "data": {"e": "trade", "E": t // MS, "T": t // MS, "s": "BTCUSDT",
               "t": tid, "p": px, "q": qty, "X": "MARKET", "m": seller_aggressor}}


def write_capture(path):
    lines = [
        _depth(T0, 90, 105, 89, bids=[("100.00", "5.000")]),
        (T0 + MS, {"lastUpdateId": 100, "E": T0 // MS, "T": T0 // MS,
                   "bids": [["100.00", "5.000"], ["99.00", "10.000"]], "asks": [["101.00", "5.000"], ["102.00", "10.000"]]}),
        _trade(T0 + 1500 * MS, 1, "100.00", "3.000", True),
        _depth(T0 + 1510 * MS, 106, 107, 105, bids=[("100.00", "2.000")]),
        _depth(T0 + 1600 * MS, 108, 109, 107, asks=[("101.00", "1.000")]),
        _trade(T0 + 2000 * MS, 2, "100.00", "3.000", True),
        _trade(T0 + 2200 * MS, 3, "101.00", "1.500", False),
        _trade(T0 + 2500 * MS, 4, "100.00", "2.000", True),
        _depth(T0 + 3000 * MS, 110, 111, 109, bids=[("99.00", "11.000")]),  # our cue to cancel B
        _trade(T0 + 3100 * MS, 5, "101.00", "3.000", False),
        _trade(T0 + 3500 * MS, 6, "102.50", "20.000", False),
        _depth(T0 + 4000 * MS, 112, 113, 111, bids=[("99.00", "12.000")]),  # the end
    ]
    with gzip.open(path, "wt") as f:
        for t, m in lines:
            f.write(f"{t} {json.dumps(m)}\n")


def test_queue_partial_fill_and_cancel_race_in_a_wall_clock_run(session, procs, tmp_path):
    cap = tmp_path / "hand.gz"
    write_capture(cap)
    names = {k: segment_name(session, n) for k, n in (("orders", "orders.sim"), ("exec", "exec.sim"), ("md", "md.sim"))}
    rings = {"orders": Ring.create(names["orders"], 1 << 10, 64, RecordKind.ORDER_CMD),
             "exec": Ring.create(names["exec"], 1 << 10, 128, RecordKind.EXEC),
             "md": Ring.create(names["md"], 1 << 12, 64)}
    stop = StopFlag(CTX)
    counters = CTX.Array("q", len(vp.COUNTERS))
    opts = {"market": "capture", "capture_path": str(cap), "capture_market": "usdm", "pace": True,
            "order_latency_ns": 300 * MS, "order_jitter_ns": 0, "response_latency_ns": 1 * MS,
            "response_jitter_ns": 0, "md_latency_ns": 0, "md_jitter_ns": 0, "counters": counters,
            "harness_pid": os.getpid(), "idle_max_sleep_ns": 200_000}
    p = CTX.Process(target=sim.run_process, args=(names["orders"], names["exec"], [BTCUSDT_USDM], opts, stop),
                    kwargs={"md_ring": names["md"]})
    procs.append(p)
    p.start()
    md_buf = np.zeros(256, dtype=fsim.MD_OVERLAY)
    ex_buf = np.zeros(256, dtype=DTYPES["EXEC"])
    seen_md, execs = [], []

    def pump():
        n = rings["md"].read(md_buf)
        if n:
            seen_md.append(md_buf[:n].copy())
        k = rings["exec"].read(ex_buf)
        if k:
            execs.append(ex_buf[:k].copy())
        return n + k

    def md_all():
        return np.concatenate(seen_md) if seen_md else md_buf[:0]

    def send(coid, cmd, side=0, price=0, qty=0, tif=TimeInForce.GTC):
        c = new("ORDER_CMD", 1, cmd=int(cmd), client_order_id=coid, side=int(side), price=price, qty=qty,
                tif=int(tif), ord_type=1, instrument=BTCUSDT_USDM.id)
        c["ts"] = int(md_all()["ts"][-1])  # ts_core: the time of the last input the "core" saw
        assert rings["orders"].write(c) == 0

    def until(pred, what, timeout=20):
        wait_for(lambda: (pump(), pred())[1], timeout, what, poll_s=0.002)

    try:
        until(lambda: len(md_all()) and (md_all()["kind"] == RecordKind.MD_LEVEL).sum() >= 4, "the snapshot")
        send(1, OrderCmdType.NEW, Side.BUY, 10000, 2000)                     # A
        send(2, OrderCmdType.NEW, Side.SELL, 10100, 1000)                    # B
        send(3, OrderCmdType.NEW, Side.SELL, 10200, 1000)                    # C
        send(3, OrderCmdType.CANCEL)                                          # C canceled at once
        send(4, OrderCmdType.NEW, Side.BUY, 10100, 1000, TimeInForce.POST_ONLY)  # D
        cue = T0 + 3000 * MS
        until(lambda: len(md_all()) and int(md_all()["ts_event"][-1]) - int(md_all()["ts_event"][0]) >= cue - T0,
              "the 3.0 s cue")
        send(2, OrderCmdType.CANCEL)                                          # B: the cancel race
        until(lambda: sum(len(e) for e in execs) >= 10, "every execution event", timeout=30)
    finally:
        stop.set()
        p.join(20)
    assert p.exitcode == 0
    while pump():
        pass
    ev = np.concatenate(execs)
    by = {c: [(int(e["exec_type"]), int(e["last_qty"]), int(e["reason"])) for e in ev[ev["client_order_id"] == c]]
          for c in (1, 2, 3, 4)}
    assert by[1] == [(E.ACCEPTED, 0, 0), (E.PARTIALLY_FILLED, 1000, 0), (E.FILLED, 1000, 0)]
    assert by[2] == [(E.ACCEPTED, 0, 0), (E.PARTIALLY_FILLED, 500, 0), (E.FILLED, 500, 0),
                     (E.CANCEL_REJECTED, 0, DenyReason.UNKNOWN_ORDER)]
    assert by[3] == [(E.ACCEPTED, 0, 0), (E.CANCELED, 0, 0)]
    assert by[4] == [(E.REJECTED, 0, sim.REASON_POST_ONLY_WOULD_CROSS)]
    fills = ev[(ev["exec_type"] == E.PARTIALLY_FILLED) | (ev["exec_type"] == E.FILLED)]
    assert (fills["last_px"] == fills["price"]).all()  # resting orders fill at their own price
    assert len(set(zip(ev["exec_id"].tolist(), ev["exec_id_hi"].tolist()))) == len(ev)
    for r in rings.values():
        r.close()
