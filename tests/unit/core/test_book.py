"""The core's book is exact at every depth: its exposed top N equals a plain dict model's top N
after every message, deep books and levels that leave and re-enter the top included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from livestack.config import Instrument
from livestack.core import Core
from livestack.core import inputs as R
from livestack.schema import Anomaly, FeedStatus, Side

BUY, SELL = int(Side.BUY), int(Side.SELL)
INST = Instrument(1, "T", tick=1, lot=1)
RISK = {"max_order_qty": 10**9, "max_position": 10**12, "max_open_orders": 8}


class DictBook:
    """The reference: one dict per side, sorted only when asked."""

    def __init__(self):
        self.side = {BUY: {}, SELL: {}}

    def set(self, side, px, q):
        if q == 0:
            self.side[side].pop(px, None)
        else:
            self.side[side][px] = q

    def top(self, n):
        bids = sorted(self.side[BUY].items(), reverse=True)[:n]
        asks = sorted(self.side[SELL].items())[:n]
        return bids, asks


def _pairs(a):
    return [(int(p), int(q)) for p, q in a]


def _check(core, ref, depth):
    bids, asks = core.book(1)
    rb, ra = ref.top(depth)
    assert _pairs(bids) == rb and _pairs(asks) == ra
    s = core.instrument_state(1)
    assert (s["bid_px"], s["bid_qty"]) == (rb[0] if rb else (0, 0))
    assert (s["ask_px"], s["ask_qty"]) == (ra[0] if ra else (0, 0))
    assert s["n_bids"] == len(rb) and s["n_asks"] == len(ra) and s["depth"] == depth


# bids below 100000, asks at or above it (never crossed); narrow ranges revisit levels a lot, the
# wide one builds deep books (thousands of levels) whose deletes pull deep levels back into the top
def _updates(width):
    bid = st.tuples(st.just(BUY), st.integers(100000 - width, 99999), st.integers(0, 9))
    ask = st.tuples(st.just(SELL), st.integers(100000, 100000 + width - 1), st.integers(0, 9))
    return st.lists(st.lists(st.one_of(bid, ask), min_size=1, max_size=40), max_size=80)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([8, 60, 5000]).flatmap(_updates), st.sampled_from([1, 2, 5, 32, 1000]))
def test_top_n_equals_a_dict_model_after_every_message(msgs, depth):
    core = Core([INST], RISK, book_depth=depth)
    ref = DictBook()
    core.process_array(R.slots([R.md_status(1, 1, FeedStatus.SNAPSHOT_BEGIN),
                                R.md_status(1, 1, FeedStatus.SNAPSHOT_END)]))
    hseq = 10
    for msg in msgs:
        recs = [R.md_level(1, 2, side, px, q, flags=R.LAST if k == len(msg) - 1 else 0)
                for k, (side, px, q) in enumerate(msg)]
        core.process_array(R.slots(recs), hseq0=hseq)
        hseq += len(recs)
        for side, px, q in msg:
            ref.set(side, px, q)
        _check(core, ref, depth)
    fb, fa = core.full_book(1)
    rb, ra = ref.top(10**9)
    assert _pairs(fb) == rb and _pairs(fa) == ra
    assert core.counters()["anomalies"] == 0


def test_a_level_beyond_the_depth_comes_back_when_the_levels_above_it_go():
    # the defect this replaces: with depth 2 the third bid was never held, so deleting the two
    # best left an empty (wrong) book although the venue still had a bid
    core = Core([INST], RISK, book_depth=2)
    core.process_array(R.slots(R.snapshot(1, 1, [(100, 1), (99, 2), (98, 3), (97, 4)], [(101, 1)])))
    core.process_array(R.slots([R.md_level(1, 2, BUY, 100, 0, flags=0), R.md_level(1, 2, BUY, 99, 0)]))
    bids, _ = core.book(1)
    assert _pairs(bids) == [(98, 3), (97, 4)]
    assert core.instrument_state(1)["bid_px"] == 98
    # an insert below the exposed top is held, and rises when the top goes
    core.process_array(R.slots([R.md_level(1, 3, BUY, 96, 5), R.md_level(1, 3, BUY, 98, 0)]))
    assert _pairs(core.book(1)[0]) == [(97, 4), (96, 5)]


def test_depth_is_per_instrument_and_the_context_says_which():
    a = Instrument(1, "A", tick=1, lot=1, book_depth=1)
    b = Instrument(2, "B", tick=1, lot=1, book_depth=3)
    core = Core([a, b], RISK)
    for inst in (1, 2):
        core.process_array(R.slots(R.snapshot(inst, 1, [(100, 1), (99, 2), (98, 3), (97, 4)], [])))
    assert len(core.book(1)[0]) == 1 and len(core.book(2)[0]) == 3
    assert core.instrument_state(1)["depth"] == 1 and core.instrument_state(2)["depth"] == 3
    assert len(core.full_book(1)[0]) == 4
    # Core(book_depth=N) overrides every instrument (the backtest's --book-depth)
    core = Core([a, b], RISK, book_depth=2)
    assert core.instrument_state(1)["depth"] == 2 and core.instrument_state(2)["depth"] == 2


def test_book_grows_past_its_initial_room_without_losing_a_level():
    core = Core([INST], RISK, book_depth=5)
    n = 10_000  # well past the initial 1,024 levels a side
    bids = [(100000 - k, k + 1) for k in range(n)]
    core.process_array(R.slots(R.snapshot(1, 1, bids, [(100001, 1)])))
    fb, _ = core.full_book(1)
    assert len(fb) == n and _pairs(fb) == bids
    core.process_array(R.slots([R.md_level(1, 2, BUY, 100000 - k, 0, flags=0) for k in range(n - 3)]
                               + [R.md_level(1, 2, BUY, 1, 0)]))
    assert _pairs(core.book(1)[0]) == bids[n - 3:]
    assert core.counters()["anomalies_by_code"].get(Anomaly.BOOK_NO_MEMORY.name, 0) == 0


def test_snapshot_begin_clears_the_full_book():
    core = Core([INST], RISK, book_depth=1)
    core.process_array(R.slots(R.snapshot(1, 1, [(100, 1), (99, 2)], [(101, 1), (102, 1)])))
    core.process_array(R.slots(R.snapshot(1, 2, [(90, 1)], [])))
    fb, fa = core.full_book(1)
    assert _pairs(fb) == [(90, 1)] and len(fa) == 0
    assert np.array_equal(core.book(1)[1], np.zeros((0, 2), dtype=np.int64))


@pytest.mark.parametrize("tick", [1, 50_000_000])
def test_a_deep_churned_book_with_more_prices_than_the_hint_table_stays_exact(tick):
    # book.pyx finds a level from a hint (where its price last was); 40,000 prices a side overflow
    # the 2**14-entry hint table (collisions), deep inserts shift every better level (stale hints),
    # deletes pile up tombstones until a compaction moves every level: the book must not care.
    # tick > 1: the hints sit by the price grid the side learns; an off-grid price in round 7
    # refines that grid (every hint misplaced at once)
    rng = np.random.default_rng(11)
    core = Core([INST], RISK, book_depth=32)
    ref = DictBook()
    core.process_array(R.slots([R.md_status(1, 1, FeedStatus.SNAPSHOT_BEGIN),
                                R.md_status(1, 1, FeedStatus.SNAPSHOT_END)]))
    hseq = 10
    for rnd in range(12):
        n = 8000
        side = rng.integers(0, 2, n)
        # bids below 1,000,000, asks from it; wide in early rounds, narrow (churn near the top) later
        width = 40_000 if rnd % 3 == 0 else 300
        off = rng.integers(0, width, n)
        qty = np.where(rng.random(n) < (0.2 if rnd % 3 == 0 else 0.5), 0, rng.integers(1, 50, n))
        recs, upd = [], []
        for s, o, q in zip(side.tolist(), off.tolist(), qty.tolist()):
            sd, px = (BUY, (999_999 - o) * tick) if s == 0 else (SELL, (1_000_000 + o) * tick)
            if rnd == 7 and tick > 1 and o % 97 == 0:
                px += tick // 5 if sd == BUY else -(tick // 5)   # off the grid, not crossing
            recs.append(R.md_level(1, 2, sd, px, q, flags=0))
            upd.append((sd, px, q))
        recs[-1] = R.md_level(1, 2, *upd[-1], flags=R.LAST)
        core.process_array(R.slots(recs), hseq0=hseq)
        hseq += len(recs)
        for u in upd:
            ref.set(*u)
        _check(core, ref, 32)
        fb, fa = core.full_book(1)
        rb, ra = ref.top(10**9)
        assert _pairs(fb) == rb and _pairs(fa) == ra
    assert core.counters()["anomalies"] == 0
