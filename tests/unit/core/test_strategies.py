"""The example strategies do what their docstrings say (checked on the Cython flavour; the other
flavours are proven identical in test_flavours)."""

from __future__ import annotations

import pytest

from livestack import strategies
from livestack.core import Core
from livestack.core import inputs as R
from livestack.schema import ControlCmdType, ExecType, FeedStatus, OrderCmdType, Side, TimeInForce

from tests.unit.core.helpers import INST, RISK

BOOK = ([(100000, 50), (99990, 50)], [(100010, 50), (100020, 50)])


class Run:
    def __init__(self, name, params=None, risk=None):
        self.core = Core([INST], dict(RISK, **(risk or {})), strategies.get(name, params))
        self.ts = 10
        self.hseq = 1

    def feed(self, recs):
        recs = recs if isinstance(recs, list) else [recs]
        self.ts += 1000
        for r in recs:
            r["ts"] = self.ts
        o, r = self.core.process_array(R.slots(recs), hseq0=self.hseq)
        self.hseq += len(recs)
        return o, r


def _quotes(orders):
    return {int(o["side"]): int(o["price"]) for o in orders if o["cmd"] == OrderCmdType.NEW}


@pytest.mark.parametrize("name", ["mm_cy", "mm_numba", "mm_py"])
def test_market_maker_quotes_both_sides_around_the_mid(name):
    r = Run(name, {"half_spread_ticks": 2, "quote_qty": 10})
    o, _ = r.feed(R.snapshot(1, 0, *BOOK))  # evaluated at SNAPSHOT_END: the book is valid
    q = _quotes(o)
    # mid 100005: bid floor(100005 - 20) = 99980, ask ceil(100005 + 20) = 100030
    assert q == {int(Side.BUY): 99980, int(Side.SELL): 100030}
    assert set(o["qty"]) == {10}


def test_market_maker_skews_quotes_against_inventory():
    r = Run("mm_cy", {"half_spread_ticks": 2, "quote_qty": 10, "skew_ticks": 2, "max_position": 100})
    o, _ = r.feed(R.snapshot(1, 0, *BOOK))
    bid_id = int(o[o["side"] == Side.BUY][0]["client_order_id"])
    ask_id = int(o[o["side"] == Side.SELL][0]["client_order_id"])
    r.feed(R.exec_(1, 0, int(ExecType.ACCEPTED), ask_id))
    # bought 10 (= quote_qty): fair moves down 2 ticks; the ask is replaced lower
    o, _ = r.feed(R.exec_(1, 0, int(ExecType.FILLED), bid_id, last_px=99980, last_qty=10, exec_id=1))
    rep = o[o["cmd"] == OrderCmdType.REPLACE]
    new = o[o["cmd"] == OrderCmdType.NEW]
    assert len(rep) == 1 and rep[0]["side"] == Side.SELL and rep[0]["price"] == 100010
    assert len(new) == 1 and new[0]["side"] == Side.BUY and new[0]["price"] == 99960


def test_market_maker_cancels_its_quotes_when_the_feed_breaks():
    r = Run("mm_cy")
    o, _ = r.feed(R.snapshot(1, 0, *BOOK))
    for oid in o["client_order_id"]:
        r.feed(R.exec_(1, 0, int(ExecType.ACCEPTED), int(oid)))
    o, _ = r.feed(R.md_status(1, 0, int(FeedStatus.GAP)))
    assert sorted(o["cmd"]) == [OrderCmdType.CANCEL, OrderCmdType.CANCEL]


def test_market_maker_only_reduces_while_reducing():
    r = Run("mm_cy", {"quote_qty": 10})
    o, _ = r.feed(R.snapshot(1, 0, *BOOK))
    bid_id = int(o[o["side"] == Side.BUY][0]["client_order_id"])
    ask_id = int(o[o["side"] == Side.SELL][0]["client_order_id"])
    r.feed(R.exec_(1, 0, int(ExecType.ACCEPTED), ask_id))
    r.feed(R.exec_(1, 0, int(ExecType.FILLED), bid_id, last_px=99980, last_qty=4, exec_id=1))
    r.feed(R.control(0, int(ControlCmdType.REDUCE_ONLY)))
    o, _ = r.feed(R.md_level(1, 0, Side.BUY, 99990, 41))
    # long 4: no bid; the ask is resized to 4 (replace), nothing that adds to the position
    assert not (o["side"] == Side.BUY).any()
    assert r.core.counters()["denials"] == 0


def test_taker_crosses_the_spread_on_trade_flow_imbalance():
    r = Run("taker_cy", {"threshold": 100, "take_qty": 5, "decay_permille": 0, "cooldown_ns": 0})
    r.feed(R.snapshot(1, 0, *BOOK))
    o, _ = r.feed(R.md_trade(1, 0, Side.BUY, 100010, 60))
    assert len(o) == 0
    o, _ = r.feed(R.md_trade(1, 0, Side.BUY, 100010, 60))
    assert len(o) == 1 and o[0]["side"] == Side.BUY and o[0]["price"] == 100010 and o[0]["tif"] == TimeInForce.IOC
    r.feed(R.exec_(1, 0, int(ExecType.FILLED), int(o[0]["client_order_id"]), last_px=100010, last_qty=5, exec_id=1))
    o, _ = r.feed([R.md_trade(1, 0, Side.SELL, 100000, 60), R.md_trade(1, 0, Side.SELL, 100000, 60)])
    assert len(o) == 1 and o[0]["side"] == Side.SELL and o[0]["price"] == 100000


def test_plain_python_strategy_with_named_accessors():
    import dataclasses

    from livestack.strategies.sdk import PyHooks, Strategy

    @dataclasses.dataclass
    class JoinParams:
        size: int = 7

    class JoinBidSdk(Strategy):
        Params = JoinParams

        def on_trade(self, ctx, i):
            mine = ctx.orders(i)
            book = ctx.inst(i)
            if not mine:
                ctx.place(Side.BUY, book.bid_px, self.params.size)
            elif mine[0].price != book.bid_px:
                ctx.modify(mine[0].id, book.bid_px, mine[0].qty)
            assert ctx.bids(i)[0] == (book.bid_px, book.bid_qty)

    from livestack.core.strategy import PyStrategy

    JoinBid = lambda: PyStrategy(PyHooks(JoinBidSdk(JoinParams())), "join", ("size",), (7,))  # noqa: E731
    core = Core([INST], RISK, JoinBid())
    recs = R.snapshot(1, 1, *BOOK) + [R.md_trade(1, 2, Side.SELL, 100000, 1)]
    o, r = core.process_array(R.slots(recs))
    assert len(o) == 1 and o[0]["price"] == 100000 and o[0]["qty"] == 7
    recs = [R.exec_(1, 3, int(ExecType.ACCEPTED), 1), R.md_level(1, 3, Side.BUY, 100000, 0),
            R.md_trade(1, 4, Side.SELL, 99990, 1)]
    o, r = core.process_array(R.slots(recs), hseq0=10)
    assert len(o) == 1 and o[0]["cmd"] == OrderCmdType.REPLACE and o[0]["price"] == 99990
    assert core.counters()["anomalies"] == 0
