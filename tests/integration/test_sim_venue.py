"""The simulated venue as a real process over real shared-memory rings.

The test process plays the harness (reads md, sends ORDER_CMD, reads EXEC) except in the
harness-death test, where a spawned stand-in plays it and is SIGKILLed. Allowed outcomes, up front:

* md: a snapshot first, then updates; ``seq`` 1, 2, 3 ... with no hole while nothing overflows;
  after an overflow an MD_STATUS GAP followed by a fresh snapshot.
* orders: every command gets its EXEC records (ACCEPTED then fills / CANCELED), in order, with
  exec ``seq`` 1, 2, 3 ...
* harness killed: every resting order is CANCELED into the exec ring and the venue exits 0.
* stop event or SIGTERM: the venue exits 0.
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
import signal
import time

import numpy as np

from livestack.ipc.stopflag import StopFlag
from livestack.config import Instrument
from livestack.feeds import sim as fsim
from livestack.ipc import Ring, segment_name
from livestack.schema import DTYPES, ExecType as E, FeedStatus, OrdType, OrderCmdType, RecordKind, Side, TimeInForce, new
from livestack.venues import process as vp
from livestack.venues import sim
from tests.waiting import wait_for

INST = Instrument(1, "SIM")
CTX = mp.get_context("spawn")


_wait_for = functools.partial(wait_for, poll_s=0.002)


def make_rings(session, md_capacity=1 << 16):
    names = {k: segment_name(session, n) for k, n in
             (("orders", "orders.sim"), ("exec", "exec.sim"), ("md", "md.sim"))}
    rings = {
        "orders": Ring.create(names["orders"], 1 << 10, 64, RecordKind.ORDER_CMD),
        "exec": Ring.create(names["exec"], 1 << 10, 128, RecordKind.EXEC),
        "md": Ring.create(names["md"], md_capacity, 64),
    }
    return names, rings


def start_venue(procs, names, options, md=True):
    stop = StopFlag(CTX)  # not mp.Event: a SIGKILLed reader could leave its lock held
    counters = CTX.Array("q", len(vp.COUNTERS))
    opts = dict(options, counters=counters)
    p = CTX.Process(target=sim.run_process, args=(names["orders"], names["exec"], [INST], opts, stop),
                    kwargs={"md_ring": names["md"] if md else None})
    procs.append(p)
    p.start()
    return p, stop, counters


class Harness:
    """The test process as the harness: keeps a book from md, collects EXEC records."""

    def __init__(self, rings):
        self.rings = rings
        self.md_buf = np.zeros(4096, dtype=fsim.MD_OVERLAY)
        self.exec_buf = np.zeros(256, dtype=DTYPES["EXEC"])
        self.md = []
        self.execs = []
        self.bids, self.asks = {}, {}
        self.synced = False
        self.last_ts = 0

    def pump(self):
        n = self.rings["md"].read(self.md_buf)
        if n:
            recs = self.md_buf[:n].copy()
            self.md.append(recs)
            for r in recs.tolist():
                kind, flags, ts, a, b, c, d = r[0], r[2], r[5], r[7], r[8], r[9], r[10]
                self.last_ts = ts
                if kind == RecordKind.MD_STATUS:
                    if c == FeedStatus.SNAPSHOT_BEGIN:
                        self.bids.clear()
                        self.asks.clear()
                    elif c == FeedStatus.SNAPSHOT_END:
                        self.synced = True
                elif kind == RecordKind.MD_LEVEL:
                    book = self.bids if d == Side.BUY else self.asks
                    if b:
                        book[a] = b
                    else:
                        book.pop(a, None)
        k = self.rings["exec"].read(self.exec_buf)
        if k:
            self.execs.append(self.exec_buf[:k].copy())
        return n + k

    def all_execs(self):
        return np.concatenate(self.execs) if self.execs else self.exec_buf[:0]

    def all_md(self):
        return np.concatenate(self.md) if self.md else self.md_buf[:0]

    def run_until(self, pred, timeout, what):
        _wait_for(lambda: (self.pump(), pred())[1], timeout, what)

    def send(self, coid, side, price, qty, tif=TimeInForce.GTC, cmd=OrderCmdType.NEW):
        c = new("ORDER_CMD", 1, cmd=int(cmd), client_order_id=coid, side=int(side), price=price, qty=qty,
                tif=int(tif), ord_type=int(OrdType.LIMIT), instrument=1)
        c["ts"] = self.last_ts  # ts_core = ts of the input being processed
        assert self.rings["orders"].write(c) == 0


def close_all(rings):
    for r in rings.values():
        r.close()


def test_venue_process_publishes_market_data_and_matches_orders(session, procs):
    names, rings = make_rings(session)
    p, stop, counters = start_venue(procs, names, {"events_per_s": 20_000, "seed": 3, "harness_pid": os.getpid()})
    h = Harness(rings)
    try:
        h.run_until(lambda: h.synced and len(h.all_md()) > 500, 20, "snapshot and some market data")
        bb, ba = max(h.bids), min(h.asks)
        h.send(1, Side.BUY, bb, 5)  # joins the queue at the best bid
        h.send(2, Side.BUY, ba + 5, 3, tif=TimeInForce.IOC)  # crosses: fills now
        h.send(3, Side.SELL, 1, 1, tif=TimeInForce.IOC, cmd=OrderCmdType.CANCEL)  # cancel of an unknown order
        h.send(4, Side.BUY, bb + 0, 0)  # bad quantity
        h.run_until(lambda: len(h.all_execs()) >= 6, 20, "exec records")
        ev = h.all_execs()
        by = {c: [int(x) for x in ev["exec_type"][ev["client_order_id"] == c]] for c in (1, 2, 3, 4)}
        assert by[1][0] == E.ACCEPTED
        assert by[2][0] == E.ACCEPTED and by[2][-1] in (E.FILLED, E.CANCELED)
        assert E.FILLED in by[2] or E.PARTIALLY_FILLED in by[2]
        assert by[3] == [E.CANCEL_REJECTED] and by[4] == [E.REJECTED]
        # the resting order sits at the best bid of a moving market: it fills within seconds
        h.run_until(lambda: E.FILLED in set(h.all_execs()["exec_type"][h.all_execs()["client_order_id"] == 1].tolist()),
                    30, "the resting order to fill from its queue")
    finally:
        stop.set()
        p.join(timeout=20)
    assert p.exitcode == 0
    while h.pump():
        pass
    ev = h.all_execs()
    assert ev["seq"].tolist() == list(range(1, len(ev) + 1))
    md = h.all_md()
    assert md["seq"].tolist() == list(range(1, len(md) + 1))  # no loss
    assert md["kind"][-1] == RecordKind.MD_STATUS and md["c"][-1] == FeedStatus.DISCONNECTED  # the venue left
    assert (np.diff(md["ts"].astype(np.int64)) >= 0).all()
    c = vp.VenueCounters(counters).as_dict()
    assert c["commands"] == 4 and c["events"] == len(ev) and c["md_overflow"] == 0
    assert c["md_records"] == len(md)
    assert c["rejects"] == 2 and c["fills"] >= 2
    close_all(rings)


def standin_harness(orders_name, exec_name, ready):
    """Harness stand-in: three resting orders far from the market, wait for their ACCEPTED, then idle."""
    orders = Ring.attach(orders_name, timeout=10)
    execs = Ring.attach(exec_name, timeout=10)
    c = new("ORDER_CMD", 3, cmd=int(OrderCmdType.NEW), side=[int(Side.BUY), int(Side.BUY), int(Side.SELL)],
            price=[5000, 5001, 20000], qty=1, tif=int(TimeInForce.GTC), ord_type=int(OrdType.LIMIT), instrument=1)
    c["client_order_id"] = [11, 12, 13]
    orders.write_batch(c)
    out = np.zeros(16, dtype=DTYPES["EXEC"])
    got = 0
    deadline = time.monotonic() + 20
    while got < 3 and time.monotonic() < deadline:
        got += execs.read(out)
        time.sleep(0.001)
    ready.set()
    time.sleep(120)


def test_killed_harness_makes_the_venue_cancel_resting_orders_and_stop(session, procs):
    names, rings = make_rings(session)
    ready = CTX.Event()
    standin = CTX.Process(target=standin_harness, args=(names["orders"], names["exec"], ready))
    procs.append(standin)
    standin.start()
    p, stop, counters = start_venue(procs, names, {"harness_pid": standin.pid, "events_per_s": 5_000}, md=False)
    try:
        assert ready.wait(30), "stand-in harness never saw its orders accepted"
        time.sleep(0.1)
        assert p.is_alive()
        os.kill(standin.pid, signal.SIGKILL)
        p.join(timeout=20)  # the venue stops by itself
        assert p.exitcode == 0
    finally:
        stop.set()
        p.join(timeout=20)
    out = np.zeros(64, dtype=DTYPES["EXEC"])
    n = rings["exec"].read(out)  # we take over as the exec consumer where the stand-in left off
    ev = out[:n]
    assert sorted(ev["client_order_id"].tolist()) == [11, 12, 13]
    assert (ev["exec_type"] == E.CANCELED).all() and (ev["leaves_qty"] == 0).all()
    c = vp.VenueCounters(counters).as_dict()
    assert c["harness_lost"] == 1
    close_all(rings)


def test_sigterm_stops_the_venue_cleanly(session, procs):
    names, rings = make_rings(session)
    p, stop, counters = start_venue(procs, names, {"events_per_s": 5_000})
    h = Harness(rings)
    try:
        h.run_until(lambda: h.synced, 20, "snapshot")
        os.kill(p.pid, signal.SIGTERM)
        p.join(timeout=20)
        assert p.exitcode == 0
    finally:
        stop.set()
        p.join(timeout=20)
    close_all(rings)


def test_full_md_ring_counts_overflow_then_sends_gap_and_a_fresh_snapshot(session, procs):
    names, rings = make_rings(session, md_capacity=1 << 10)
    p, stop, counters = start_venue(procs, names, {"events_per_s": 100_000})
    try:
        _wait_for(lambda: vp.VenueCounters(counters)["md_overflow"] > 0, 20, "md overflow")
        h = Harness(rings)
        h.run_until(lambda: any(((m["kind"] == RecordKind.MD_STATUS) & (m["c"] == FeedStatus.GAP)).any()
                                for m in h.md), 20, "a GAP status")
        h.run_until(lambda: len(h.all_md()) > 3000, 20, "more market data")
    finally:
        stop.set()
        p.join(timeout=20)
    assert p.exitcode == 0
    md = h.all_md()
    st = np.nonzero(md["kind"] == RecordKind.MD_STATUS)[0]
    gaps = [i for i in st if md["c"][i] == FeedStatus.GAP]
    assert gaps
    g = gaps[0]
    assert md["kind"][g + 1] == RecordKind.MD_STATUS and md["c"][g + 1] == FeedStatus.SNAPSHOT_BEGIN
    assert md["seq"][g] > md["seq"][g - 1] + 1  # the dropped records left a hole in seq
    c = vp.VenueCounters(counters).as_dict()
    assert c["md_gaps"] >= 1 and c["md_overflow"] > 0
    close_all(rings)


def test_a_killed_and_restarted_venue_never_reuses_an_exec_id(session, procs):
    """Three lives of the venue process on the same rings, each SIGKILLed after its fills: every
    fill's (exec_id, exec_id_hi) pair is unique and never (0, 0), although the low words alone
    start over with every life (what made 356-472 duplicates per run before)."""
    names, rings = make_rings(session)
    h = Harness(rings)
    coid = 0

    def fills():
        ev = h.all_execs()
        return ev[(ev["exec_type"] == E.FILLED) | (ev["exec_type"] == E.PARTIALLY_FILLED)]

    for life in range(3):
        p, stop, counters = start_venue(procs, names, {"events_per_s": 20_000, "seed": 3 + life,
                                                       "harness_pid": os.getpid()})
        try:
            h.synced = False
            h.run_until(lambda: h.synced and h.asks, 20, f"snapshot of life {life}")
            want = len(fills()) + 5
            for _ in range(5):
                coid += 1
                h.send(coid, Side.BUY, min(h.asks) + 50, 1, tif=TimeInForce.IOC)  # crosses: fills
            h.run_until(lambda: len(fills()) >= want, 20, f"the fills of life {life}")
            os.kill(p.pid, signal.SIGKILL)
            p.join(timeout=20)
        finally:
            stop.set()
            p.join(timeout=20)
    f = fills()
    pairs = list(zip(f["exec_id"].tolist(), f["exec_id_hi"].tolist()))
    assert len(pairs) >= 15
    assert len(set(pairs)) == len(pairs) and (0, 0) not in pairs
    assert len(set(f["exec_id"].tolist())) < len(pairs)  # the low words repeat across lives...
    assert len(set(f["exec_id_hi"].tolist())) == 3  # ...the incarnation's epoch tells them apart
    ev = h.all_execs()
    assert (ev["exec_type"] == E.VENUE_RESET).sum() == 2  # each restart told the core its orders are gone
    close_all(rings)
