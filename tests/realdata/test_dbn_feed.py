"""Databento DBN MBO replay feed on the shared CME ES file: after every event (``F_LAST``) the top of
book the feed's L2 records give equals the one a plain-Python order-by-order model of the DBN
records gives."""

from __future__ import annotations

import numpy as np
import pytest

from livestack.config import Instrument
from livestack.schema import DTYPE_BY_KIND, SLOT64, FeedStatus, RecordKind, Side

from tests.conftest import data_dir

pytestmark = pytest.mark.realdata
ES = Instrument(3, "ESH4", "cme", price_decimals=2, qty_decimals=0)


def _file():
    d = data_dir()
    p = d / "databento" / "esh4-glbx-mdp3-20231225.mbo.dbn.zst" if d else None
    if p is None or not p.exists():
        pytest.skip("recorded data not found: set LIVESTACK_DATA or put it at ../shared/data")
    return p


class Model:
    """Databento's book rules, written out plainly: orders by id, size per price, best by max/min."""

    def __init__(self):
        self.orders = {}
        self.agg = {"B": {}, "A": {}, "N": {}}

    def _add(self, s, p, q):
        lv = self.agg[s]
        lv[p] = lv.get(p, 0) + q
        if lv[p] == 0:
            del lv[p]

    def apply(self, r):
        a = str(r.action)
        if a == "R":
            self.orders = {}
            self.agg = {"B": {}, "A": {}, "N": {}}
        elif a == "A":
            self.orders[r.order_id] = (str(r.side), r.price, r.size)
            self._add(str(r.side), r.price, r.size)
        elif a == "C" and r.order_id in self.orders:
            s, p, q = self.orders.pop(r.order_id)
            left = max(q - r.size, 0)
            self._add(s, p, left - q)
            if left:
                self.orders[r.order_id] = (s, p, left)
        elif a == "M":
            if r.order_id in self.orders:
                s, p, q = self.orders.pop(r.order_id)
                self._add(s, p, -q)
            self.orders[r.order_id] = (str(r.side), r.price, r.size)
            self._add(str(r.side), r.price, r.size)

    def top(self):
        b, a = self.agg["B"], self.agg["A"]
        bb = max(b) if b else None
        ba = min(a) if a else None
        return (bb // 10**7 if bb else 0, b.get(bb, 0), ba // 10**7 if ba else 0, a.get(ba, 0))


def test_dbn_top_of_book_after_every_event_matches_model():
    from livestack.feeds.dbn import F_LAST, DbnReplay

    rp = DbnReplay(_file(), [ES])
    model = Model()
    bids, asks = {}, {}
    valid = False
    lv_dt = DTYPE_BY_KIND[RecordKind.MD_LEVEL]
    st_dt = DTYPE_BY_KIND[RecordKind.MD_STATUS]
    checked = trades = 0
    K_LEVEL, K_STATUS, K_TRADE = int(RecordKind.MD_LEVEL), int(RecordKind.MD_STATUS), int(RecordKind.MD_TRADE)
    BEGIN, END, GAP, BUY = (int(FeedStatus.SNAPSHOT_BEGIN), int(FeedStatus.SNAPSHOT_END), int(FeedStatus.GAP),
                            int(Side.BUY))
    for r in rp.records:
        rp.feed(r)
        model.apply(r)
        if not int(r.flags) & F_LAST:
            continue
        n = rp.out.n
        recs = rp.out.arr[:n]
        kinds = recs["kind"].tolist()
        lv, st = recs.view(lv_dt), recs.view(st_dt)
        sides, prices, qtys, status = lv["side"].tolist(), lv["price"].tolist(), lv["qty"].tolist(), st["status"].tolist()
        for i, k in enumerate(kinds):
            if k == K_LEVEL:
                book = bids if sides[i] == BUY else asks
                p, q = prices[i], qtys[i]
                book.pop(p, None) if q == 0 else book.__setitem__(p, q)
            elif k == K_STATUS:
                if status[i] == BEGIN:
                    bids.clear(), asks.clear()
                elif status[i] == END:
                    valid = True
                elif status[i] == GAP:
                    valid = False
            elif k == K_TRADE:
                trades += 1
        rp.out.clear()
        if not valid:
            continue
        bb = max(bids) if bids else 0
        ba = min(asks) if asks else 0
        assert (bb, bids.get(bb, 0), ba, asks.get(ba, 0)) == model.top(), f"after record seq {r.sequence}"
        checked += 1
    assert checked > 45_000 and trades > 1000
    assert all(b.malformed == 0 for b in rp.books.values())


def test_decode_dbn_snapshot_first():
    from livestack.feeds.dbn import decode_dbn

    recs = decode_dbn(_file(), [ES])
    st = recs.view(DTYPE_BY_KIND[RecordKind.MD_STATUS])
    assert recs["kind"][0] == int(RecordKind.MD_STATUS) and st["status"][0] == int(FeedStatus.SNAPSHOT_BEGIN)
    ends = np.flatnonzero((recs["kind"] == int(RecordKind.MD_STATUS)) & (st["status"] == int(FeedStatus.SNAPSHOT_END)))
    assert len(ends) == 1 and (recs["seq"] == np.arange(1, len(recs) + 1)).all()


def test_dbn_options_contract():
    from livestack.feeds.dbn import validate_options

    assert validate_options({"path": "x.dbn"}).pace == "max"
    with pytest.raises(ValueError, match="unknown field|Object contains unknown field"):
        validate_options({"path": "x", "bogus": 1})
    with pytest.raises(ValueError, match="pace"):
        validate_options({"path": "x", "pace": "slow"})


def test_dbn_feed_process_into_ring(session, procs):
    """``kind = "dbn"`` as the supervisor runs it: a spawned process replays the file into a shared
    md ring; the records read back equal the offline decode."""
    import multiprocessing as mp
    import time

    from livestack.feeds.dbn import decode_dbn, run_process
    from livestack.ipc import Backoff, Ring, segment_name

    path = _file()
    ref = decode_dbn(path, [ES])
    ctx = mp.get_context("spawn")
    ring = Ring.create(segment_name(session, "md.dbn"), 1 << 14, 64)
    stop = ctx.Event()
    p = ctx.Process(target=run_process, args=(ring.name, [ES], {"path": str(path)}, stop), daemon=True)
    procs.append(p)
    chunks, buf = [], np.zeros(4096, dtype=ring.dtype)
    got = 0
    try:
        p.start()
        deadline = time.monotonic() + 120
        b = Backoff("backoff")
        while got < len(ref):
            assert time.monotonic() < deadline and p.is_alive(), f"{got}/{len(ref)} records, exit {p.exitcode}"
            k = ring.read(buf)
            if k:
                chunks.append(buf[:k].copy())
                got += k
                b.reset()
            else:
                b.idle()
        stop.set()
        p.join(15)
        assert p.exitcode == 0
    finally:
        stop.set()
        ring.close()
        ring.unlink()
    recs = np.concatenate(chunks)
    for f in ("kind", "seq", "instrument", "ts", "flags"):
        assert np.array_equal(recs[f], ref[f]), f
    lv = DTYPE_BY_KIND[RecordKind.MD_LEVEL]
    assert np.array_equal(recs.view(lv)["price"], ref.view(lv)["price"])
    assert np.array_equal(recs.view(lv)["qty"], ref.view(lv)["qty"])
