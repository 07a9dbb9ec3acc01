"""The simulated venue replaying the real Binance USD-M capture instead of the model.

Allowed outcomes: every decoded record is handed out once, in order, re-timed monotonically; the
matching book agrees with a book built from the same records; our orders are accepted and filled
against the recorded market (aggressive at once, resting from the queue as the market trades).
"""

from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np
import pytest

from livestack.config import BTCUSDT_USDM
from livestack.feeds import sim as fsim
from livestack.ipc import Ring, segment_name
from livestack.schema import DTYPES, ExecType as E, FeedStatus, OrdType, OrderCmdType, RecordKind, TimeInForce, new
from livestack.venues import process as vp
from livestack.venues import sim

FAR = 2**62


@pytest.fixture(scope="module")
def capture(datadir):
    path = datadir / "binance" / "usdm-btcusdt-20240808.gz"
    if not path.exists():
        pytest.skip(f"{path} missing")
    return str(path)


def cmd(coid, side, price, qty, tif=TimeInForce.GTC, ts=0):
    c = new("ORDER_CMD", 1, cmd=int(OrderCmdType.NEW), client_order_id=coid, side=side, price=price, qty=qty,
            tif=int(tif), ord_type=int(OrdType.LIMIT), instrument=1)
    c["ts"] = ts
    return c


def test_capture_replay_feeds_the_matching_book_and_fills_our_orders(capture):
    from livestack.feeds.capture import decode_capture

    decoded = decode_capture(capture, BTCUSDT_USDM, "usdm")
    ex = sim.SimExchange([BTCUSDT_USDM], {"market": "capture", "capture_path": capture, "pace": False,
                                          "start_ns": 10**18, "md_latency_ns": 1000, "md_jitter_ns": 0})
    out = np.zeros(256, dtype=DTYPES["EXEC"])
    published, execs = [], []
    sent = False
    while not ex.source.done:
        ex.service(0)
        recs = ex.take_md()
        if recs is not None:
            published.append(recs)
        b = ex.books[1]
        if not sent and b.bids and b.asks and ex.market_ts > 10**18 + 30 * 10**9:
            bb, ba = max(b.bids), min(b.asks)
            assert bb < ba
            ex.submit(cmd(1, 1, bb, 2, ts=ex.market_ts))  # rests at the best bid
            ex.submit(cmd(2, 2, ba, 1, ts=ex.market_ts))  # rests at the best ask
            ex.submit(cmd(3, 1, ba + 1000, 5, tif=TimeInForce.IOC, ts=ex.market_ts))  # crosses
            sent = True
        n = ex.poll(out, ex.now_ns())
        if n:
            execs.append(out[:n].copy())
    n = ex.poll(out, FAR)
    execs.append(out[:n].copy())
    md = np.concatenate(published)
    assert len(md) == len(decoded)  # every record, once
    assert (md["kind"] == decoded["kind"]).all() and (md.view(fsim.MD_OVERLAY)["a"] == decoded.view(fsim.MD_OVERLAY)["a"]).all()
    assert (np.diff(md["ts"]) >= 0).all()
    snap = np.nonzero((md["kind"] == RecordKind.MD_STATUS) & (md["c"] == FeedStatus.SNAPSHOT_BEGIN))[0]
    assert len(snap) == 1
    # the matching book equals the book the last BBO describes
    b = ex.books[1]
    bbo = md[md["kind"] == RecordKind.MD_BBO][-1]
    assert max(b.bids) == bbo["a"] and min(b.asks) == bbo["c"]
    ev = np.concatenate(execs)
    by = {c: [int(x) for x in ev["exec_type"][ev["client_order_id"] == c]] for c in (1, 2, 3)}
    assert by[3][0] == E.ACCEPTED and by[3][-1] == E.FILLED  # 5 BTC within $100 of the ask
    assert by[1][0] == E.ACCEPTED and by[1][-1] == E.FILLED  # BTC traded through the bid in 5 minutes
    assert by[2][0] == E.ACCEPTED and by[2][-1] == E.FILLED
    assert (np.diff(ev["ts"]) >= 0).all()


def test_venue_process_replays_the_capture_into_the_md_ring(capture, session, procs):
    ctx = mp.get_context("spawn")
    names = {k: segment_name(session, n) for k, n in (("orders", "orders.sim"), ("exec", "exec.sim"), ("md", "md.sim"))}
    rings = [Ring.create(names["orders"], 1 << 10, 64, RecordKind.ORDER_CMD),
             Ring.create(names["exec"], 1 << 10, 128, RecordKind.EXEC),
             Ring.create(names["md"], 1 << 16, 64)]
    stop = ctx.Event()
    counters = ctx.Array("q", len(vp.COUNTERS))
    opts = {"market": "capture", "capture_path": capture, "pace": False, "counters": counters}
    p = ctx.Process(target=sim.run_process, args=(names["orders"], names["exec"], [BTCUSDT_USDM], opts, stop),
                    kwargs={"md_ring": names["md"]})
    procs.append(p)
    p.start()
    buf = np.zeros(8192, dtype=fsim.MD_OVERLAY)
    got = 0
    seq_ok = True
    last = 0
    deadline = time.monotonic() + 60
    try:
        while got < 100_000 and time.monotonic() < deadline:
            n = rings[2].read(buf)
            if n:
                s = buf["seq"][:n].astype(np.int64)
                seq_ok &= bool(s[0] == last + 1 and (np.diff(s) == 1).all())
                last = int(s[-1])
                got += n
            else:
                time.sleep(0.001)
    finally:
        stop.set()
        p.join(timeout=20)
    assert p.exitcode == 0
    assert got >= 100_000 and seq_ok  # as fast as the consumer takes it, nothing lost
    assert vp.VenueCounters(counters)["md_overflow"] == 0
    for r in rings:
        r.close()
