"""The simulated market: deterministic per seed, snapshot first, and a sane book after every message."""

from __future__ import annotations

import numpy as np
import pytest

from livestack.config import Instrument
from livestack.feeds import sim
from livestack.ipc import Ring, segment_name
from livestack.schema import DTYPE_BY_KIND, FeedStatus, RecordFlag, RecordKind, Side

INST = Instrument(1, "SIM")
#: every test runs against the compiled model and the pure-Python reference
IMPLS = ["py"] + (["cy"] if sim.compiled_available() else [])


@pytest.fixture(params=IMPLS)
def impl(request):
    return request.param
LAST = int(RecordFlag.LAST_IN_MSG)
SNAP = int(RecordFlag.SNAPSHOT)


def replay_book(recs):
    """Apply records to a plain dict book; yield (record index, bids, asks) after every LAST_IN_MSG."""
    bids, asks = {}, {}
    for i, r in enumerate(recs):
        k = int(r["kind"])
        if k == RecordKind.MD_STATUS and int(r["c"]) == FeedStatus.SNAPSHOT_BEGIN:
            bids.clear()
            asks.clear()
        elif k == RecordKind.MD_LEVEL:
            book = bids if int(r["d"]) == Side.BUY else asks
            if int(r["b"]):
                book[int(r["a"])] = int(r["b"])
            else:
                book.pop(int(r["a"]), None)
        if int(r["flags"]) & LAST:
            yield i, bids, asks


def test_same_seed_gives_identical_records_and_other_seeds_differ(impl):
    a = sim.MarketModel(INST, seed=42, impl=impl).generate(5000)
    b = sim.MarketModel(INST, seed=42, impl=impl).generate(5000)
    c = sim.MarketModel(INST, seed=43, impl=impl).generate(5000)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_generation_in_chunks_equals_generation_in_one_call(impl):
    m1 = sim.MarketModel(INST, seed=5, impl=impl, t0_ns=0)
    whole = m1.generate(3000)
    m2 = sim.MarketModel(INST, seed=5, impl=impl, t0_ns=0)
    parts = np.concatenate([m2.generate(1000) for _ in range(3)])
    assert whole.tobytes() == parts.tobytes()
    # chunked by time (as the paced venue draws it): the same stream too
    m3 = sim.MarketModel(INST, seed=5, impl=impl, t0_ns=0)
    by_time = []
    t = 0
    while m3.events < 3000:
        t += 1_000_000
        by_time.append(m3.generate(3000 - m3.events, until_ns=t))
    assert whole.tobytes() == np.concatenate(by_time).tobytes()


@pytest.mark.skipif(not sim.compiled_available(), reason="livestack.feeds._sim not built")
@pytest.mark.parametrize("seed,tick,lot", [(1, 1, 1), (2, 5, 10), (3, 10, 1)])
def test_compiled_model_gives_the_reference_records_byte_for_byte(seed, tick, lot):
    inst = Instrument(3, "X", tick=tick, lot=lot)
    params = {"levels": 12}
    py = sim.MarketModel(inst, seed, params, 10**18, impl="py")
    cy = sim.MarketModel(inst, seed, params, 10**18, impl="cy")
    for n in (1, 10, 5000, 20_000):
        a, b = py.generate(n), cy.generate(n)
        assert a.tobytes() == b.tobytes()
    assert py.book() == cy.book() and py.top() == cy.top() and py.events == cy.events


def test_stream_starts_with_a_snapshot(impl):
    recs = sim.MarketModel(INST, seed=1, impl=impl).generate(10)
    assert recs["kind"][0] == RecordKind.MD_STATUS and recs["c"][0] == FeedStatus.SNAPSHOT_BEGIN
    end = int(np.nonzero((recs["kind"] == RecordKind.MD_STATUS) & (recs["c"] == FeedStatus.SNAPSHOT_END))[0][0])
    levels = recs[1:end]
    assert (levels["kind"] == RecordKind.MD_LEVEL).all()
    assert (levels["flags"] & SNAP).all()
    assert recs["flags"][end] & LAST and recs["flags"][end] & SNAP
    bids = levels[levels["d"] == Side.BUY]["a"]
    asks = levels[levels["d"] == Side.SELL]["a"]
    assert (np.diff(bids) < 0).all() and (np.diff(asks) > 0).all()  # sorted best first
    assert bids[0] < asks[0]
    assert not (recs["flags"][end + 1:] & SNAP).any()


def test_records_are_valid_schema_records(impl):
    recs = sim.MarketModel(INST, seed=3, impl=impl).generate(2000)
    for kind in (RecordKind.MD_LEVEL, RecordKind.MD_TRADE, RecordKind.MD_BBO, RecordKind.MD_STATUS):
        rows = recs[recs["kind"] == kind]
        assert len(rows), kind
        typed = rows.view(DTYPE_BY_KIND[int(kind)])
        assert (typed["version"] == 1).all() and (typed["instrument"] == 1).all()
    lv = recs[recs["kind"] == RecordKind.MD_LEVEL].view(DTYPE_BY_KIND[1])
    assert set(np.unique(lv["side"]).tolist()) == {1, 2}
    assert (lv["_pad"] == 0).all()
    tr = recs[recs["kind"] == RecordKind.MD_TRADE].view(DTYPE_BY_KIND[2])
    assert (tr["qty"] > 0).all() and (np.diff(tr["trade_id"]) == 1).all()
    assert (np.diff(recs["ts_event"]) >= 0).all() and (recs["ts"] == recs["ts_event"]).all()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_book_is_never_crossed_spread_at_least_one_tick_and_levels_on_tick(seed, impl):
    inst = Instrument(7, "SIM7", tick=5, lot=10)
    m = sim.MarketModel(inst, seed=seed, impl=impl)
    recs = m.generate(40_000)
    assert (recs["a"][recs["kind"] == RecordKind.MD_LEVEL] % 5 == 0).all()
    assert (recs["b"][recs["kind"] == RecordKind.MD_LEVEL] % 10 == 0).all()
    assert (recs["b"][recs["kind"] == RecordKind.MD_TRADE] % 10 == 0).all()
    spreads, mids, depth = [], [], []
    bbo_rows = recs["kind"] == RecordKind.MD_BBO
    for i, bids, asks in replay_book(recs):
        assert bids and asks, "a side went empty"
        bb, ba = max(bids), min(asks)
        assert ba - bb >= inst.tick
        if bbo_rows[i]:
            r = recs[i]
            assert (int(r["a"]), int(r["b"]), int(r["c"]), int(r["d"])) == (bb, bids[bb], ba, asks[ba])
        spreads.append(ba - bb)
        mids.append(bb + ba)
        depth.append(min(len(bids), len(asks)))
    spreads = np.array(spreads) // inst.tick
    assert np.median(spreads) <= 2  # a liquid book: mostly 1-2 ticks
    assert np.mean(depth) >= 10  # realistic depth
    assert np.ptp(mids) > 10 * inst.tick  # the mid moves
    # the model book and the replayed book agree
    bids, asks = m.book()
    assert dict(bids) == replay_book_last(recs)[0] and dict(asks) == replay_book_last(recs)[1]


def replay_book_last(recs):
    last = None
    for _, bids, asks in replay_book(recs):
        last = (dict(bids), dict(asks))
    return last


def test_every_depth_update_ends_with_last_in_msg_and_trades_are_messages(impl):
    recs = sim.MarketModel(INST, seed=9, impl=impl).generate(5000)
    assert recs["flags"][-1] & LAST
    tr = recs["kind"] == RecordKind.MD_TRADE
    assert (recs["flags"][tr] & LAST).all()
    # a non-LAST level record is followed by another level record of the same message
    lv = np.nonzero((recs["kind"] == RecordKind.MD_LEVEL) & ~(recs["flags"] & LAST).astype(bool)
                    & ~(recs["flags"] & SNAP).astype(bool))[0]
    assert (recs["kind"][lv + 1] == RecordKind.MD_LEVEL).all()
    assert (recs["c"][lv + 1] == recs["c"][lv]).all()  # same update_id


def test_event_rate_is_configurable_in_simulated_time(impl):
    m = sim.MarketModel(INST, seed=1, params={"events_per_s": 50_000.0}, t0_ns=10**18, impl=impl)
    m.generate(20_000)
    elapsed = m.t_ns - 10**18
    assert abs(20_000 / (elapsed / 1e9) / 50_000 - 1) < 0.05
    m2 = sim.MarketModel(INST, seed=1, t0_ns=0, impl=impl)
    r = m2.generate(10**9, until_ns=10_000_000)  # 10 ms at 10k/s: ~100 events
    assert 50 < m2.events < 200 and r["ts_event"].max() <= 10_000_000


def test_unknown_model_option_is_an_error():
    with pytest.raises(ValueError, match="unknown option"):
        sim.MarketModel(INST, params={"nope": 1})


def test_publisher_counts_overflow_then_sends_gap_and_a_fresh_snapshot(session):
    name = segment_name(session, "md.sim")
    ring = Ring.create(name, 1 << 10, 64)
    try:
        m = sim.MarketModel(INST, seed=1)
        pub = sim.MdPublisher(ring, snapshot=m.snapshot, instruments=[1])
        recs = m.generate(2000)
        assert len(recs) > 1024
        pub.publish(recs)
        assert pub.published == 1024 and pub.overflow == len(recs) - 1024 and pub.gaps == 1
        out = np.zeros(4096, dtype=sim.MD_OVERLAY)
        n = ring.read(out)
        assert n == 1024 and (np.diff(out["seq"][:n].astype(np.int64)) == 1).all()
        more = m.generate(10)
        pub.publish(more)  # room now: GAP + snapshot first, then this batch
        n = ring.read(out)
        got = out[:n]
        assert got["kind"][0] == RecordKind.MD_STATUS and got["c"][0] == FeedStatus.GAP
        assert got["kind"][1] == RecordKind.MD_STATUS and got["c"][1] == FeedStatus.SNAPSHOT_BEGIN
        end = int(np.nonzero((got["kind"] == RecordKind.MD_STATUS) & (got["c"] == FeedStatus.SNAPSHOT_END))[0][0])
        assert (got["flags"][2:end] & SNAP).all()
        assert got["seq"][0] > 1024 + 1  # the dropped records left a hole in seq
        assert (np.diff(got["seq"].astype(np.int64)) == 1).all()
        assert n - end - 1 == len(more)
    finally:
        ring.close()
        ring.unlink()
