"""Property tests (hypothesis): the L2 book and the position accounting."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from livestack.config import Instrument
from livestack.core import Core
from livestack.core import inputs as R
from livestack.schema import ExecType, Side

from tests.unit.core.helpers import BUY, SELL, Driver

INST = Instrument(1, "T", tick=1, lot=1)
RISK = {"max_order_qty": 10**9, "max_position": 10**12, "max_open_orders": 8}

# a consistent update sequence: bids strictly below 1000, asks at or above 1000 -> never crossed
bid_updates = st.tuples(st.just(int(Side.BUY)), st.integers(960, 999), st.integers(0, 50))
ask_updates = st.tuples(st.just(int(Side.SELL)), st.integers(1000, 1039), st.integers(0, 50))
messages = st.lists(st.lists(st.one_of(bid_updates, ask_updates), min_size=1, max_size=6), max_size=60)


def _run(msgs, depth):
    core = Core([INST], RISK, book_depth=depth)
    recs = R.snapshot(1, 1, [(990, 5)], [(1010, 5)])
    for msg in msgs:
        for k, (side, px, q) in enumerate(msg):
            recs.append(R.md_level(1, 2, side, px, q, flags=R.LAST if k == len(msg) - 1 else 0))
    core.process_array(R.slots(recs))
    return core


def _reference(msgs):
    book = {int(Side.BUY): {990: 5}, int(Side.SELL): {1010: 5}}
    for msg in msgs:
        for side, px, q in msg:
            if q == 0:
                book[side].pop(px, None)
            else:
                book[side][px] = q
    bids = sorted(book[int(Side.BUY)].items(), reverse=True)
    asks = sorted(book[int(Side.SELL)].items())
    return bids, asks


@settings(max_examples=200, deadline=None)
@given(messages)
def test_book_matches_a_reference_and_keeps_its_invariants(msgs):
    core = _run(msgs, depth=64)  # deeper than the price range: nothing is truncated
    bids, asks = core.book(1)
    rb, ra = _reference(msgs)
    assert [tuple(x) for x in bids] == rb and [tuple(x) for x in asks] == ra
    _invariants(core, bids, asks)


@settings(max_examples=200, deadline=None)
@given(messages, st.integers(1, 8))
def test_shallow_book_is_exactly_the_true_top(msgs, depth):
    core = _run(msgs, depth)
    bids, asks = core.book(1)
    _invariants(core, bids, asks)
    rb, ra = _reference(msgs)
    # the core holds the full book: the exposed top is the true top, level for level
    assert [tuple(x) for x in bids] == rb[:depth] and [tuple(x) for x in asks] == ra[:depth]


def _invariants(core, bids, asks):
    assert all(bids[k, 0] > bids[k + 1, 0] for k in range(len(bids) - 1)), "bids sorted descending"
    assert all(asks[k, 0] < asks[k + 1, 0] for k in range(len(asks) - 1)), "asks sorted ascending"
    assert (bids[:, 1] > 0).all() and (asks[:, 1] > 0).all(), "sizes positive"
    if len(bids) and len(asks):
        assert bids[0, 0] < asks[0, 0], "never crossed"
    s = core.instrument_state(1)
    assert s["bid_px"] == (bids[0, 0] if len(bids) else 0) and s["ask_px"] == (asks[0, 0] if len(asks) else 0)
    assert core.counters()["anomalies"] == 0


# ---- accounting ---------------------------------------------------------------------------------

fills = st.lists(st.tuples(st.sampled_from([BUY, SELL]), st.integers(1, 400), st.integers(1, 50)),
                 min_size=1, max_size=40)


def _tdiv(a, b):
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _brute(fs):
    """Average-cost PnL recomputed fill by fill, and an exact (rational) realized PnL."""
    from fractions import Fraction
    pos = cost = realized = 0
    xpos, xcost, xreal = 0, Fraction(0), Fraction(0)
    for side, px, q in fs:
        for _ in range(q):  # unit by unit, exact: independent of the core's formula
            s = 1 if side == BUY else -1
            if xpos == 0 or (xpos > 0) == (s > 0):
                xcost += s * px
            else:
                avg = xcost / xpos
                xreal += (px - avg) * (-s)
                xcost += s * avg
            xpos += s
        sq = q if side == BUY else -q
        if pos == 0 or (pos > 0) == (sq > 0):
            pos += sq
            cost += sq * px
        else:
            close = min(q, abs(pos))
            sgn = 1 if pos > 0 else -1
            removed = _tdiv(cost * close, abs(pos))
            realized += sgn * close * px - removed
            cost -= removed
            pos -= sgn * close
            if q > close:
                pos = -sgn * (q - close)
                cost = -sgn * (q - close) * px
    return pos, cost, realized, xreal


@settings(max_examples=150, deadline=None)
@given(fills)
def test_position_is_the_sum_of_fills_and_realized_pnl_matches_brute_force(fs):
    d = Driver(risk={"max_order_qty": 10**6, "max_position": 10**9, "max_open_orders": 8},
               instruments=(Instrument(1, "T", tick=1, lot=1),), book=False)
    d.feed(R.snapshot(1, d.ts, [(1, 1)], [(100000, 1)]))
    coid = 0
    for side, px, q in fs:
        o, r = d.new(side, px, q)
        assert len(o) == 1, r
        coid = int(o[0]["client_order_id"])
        d.exec(ExecType.FILLED, coid, last_px=px, last_qty=q)
    pos, cost, realized, exact = _brute(fs)
    p = d.core.position(1)
    assert p["net_qty"] == sum(q if s == BUY else -q for s, _, q in fs) == pos
    assert p["cost"] == cost and p["realized_pnl"] == realized
    # rounding only moves value between cost basis and realized PnL: their difference is the cash
    cash = -sum((q if sd == BUY else -q) * px for sd, px, q in fs)
    assert p["realized_pnl"] - p["cost"] == cash
    if pos == 0:
        assert p["realized_pnl"] == exact == cash  # flat: realized PnL is exact
    # the FILL records tell the same story
    assert d.core.counters()["fills"] == len(fs)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([int(Side.BUY), int(Side.SELL)]), st.integers(1, 10**6),
                          st.integers(1, 10**4)), max_size=40))
def test_position_module_keeps_realized_minus_cost_equal_to_the_cash_flow(fills):
    from livestack.core.positions import apply_fills

    pos, cost, realized, unrealized, total = apply_fills(fills, last_px=500_000)
    cash = sum((q if s == int(Side.BUY) else -q) * p for s, p, q in fills)
    assert pos == sum(q if s == int(Side.BUY) else -q for s, _, q in fills)
    assert realized - cost == -cash
    assert total == realized + unrealized
