"""The matching engine on its own: queue position, latency and the cancel race, execution ids,
rejects, the book, determinism. Every expectation follows from the rules in
``livestack/matching/engine.pyx``."""

from __future__ import annotations

import numpy as np
import pytest

from livestack.config import Instrument
from livestack.feeds import sim as fsim
from livestack.matching import REASON_BAD_TYPE, MatchingEngine
from livestack.schema import DTYPES, DenyReason, ExecType as E, OrderCmdType as C, RecordKind, Side, TimeInForce, new

INST = Instrument(1, "SIM", tick=1, lot=1)
BUY, SELL = int(Side.BUY), int(Side.SELL)
FAR = 2**62


def md(kind, side, price, qty, ts):
    r = fsim.md_records(1)
    r["kind"], r["version"], r["flags"], r["instrument"] = int(kind), 1, fsim.F_LAST, 1
    r["ts"] = r["ts_event"] = ts
    r["a"], r["b"], r["d"] = price, qty, side
    return r


def level(side, price, qty, ts=1):
    return md(RecordKind.MD_LEVEL, side, price, qty, ts)


def trade(aggressor, price, qty, ts=1):
    return md(RecordKind.MD_TRADE, aggressor, price, qty, ts)


def engine(bids=((100, 10), (99, 20)), asks=((101, 10), (102, 20)), **kw):
    e = MatchingEngine([INST], **kw)
    e.on_market(fsim.snapshot_records(1, bids, asks, 1, 1))
    return e


def cmd(kind, coid, side=BUY, price=100, qty=5, orig=0, tif=TimeInForce.GTC, ts=2):
    c = new("ORDER_CMD", 1, cmd=int(kind), client_order_id=coid, orig_client_order_id=orig, side=side,
            price=price, qty=qty, tif=int(tif), ord_type=1, instrument=1)
    c["ts"] = ts
    return c


def events(e, now=FAR):
    out = np.zeros(1024, dtype=DTYPES["EXEC"])
    n = e.poll(out, now)
    return out[:n].copy()


def kinds(evs):
    return [(int(x["client_order_id"]), int(x["exec_type"])) for x in evs]


def ahead(e, coid):
    return {o["coid"]: o["ahead"] for o in e.live_orders()}[coid]


def test_queue_ahead_follows_trades_and_spreads_cancels_over_the_queue():
    e = engine(bids=((100, 40),))
    e.submit(cmd(C.NEW, 1, price=100, qty=10))
    events(e)
    assert ahead(e, 1) == 40                         # behind the displayed 40
    e.on_market(level(BUY, 100, 100, ts=3))          # 60 join behind us
    assert ahead(e, 1) == 40
    e.on_market(trade(SELL, 100, 10, ts=4))          # the front of the queue trades: 30 ahead
    assert ahead(e, 1) == 30
    e.on_market(level(BUY, 100, 70, ts=4))           # 100 -> 70: 10 traded + 20 canceled,
    assert ahead(e, 1) == 30 - 20 * 30 // 100        # the 20 spread over the queue: 24
    e.on_market(level(BUY, 100, 20, ts=5))           # 50 canceled of 70
    assert ahead(e, 1) == 24 - 50 * 24 // 70         # 7
    e.on_market(level(BUY, 100, 5, ts=6))            # 15 canceled of 20: 7 - 15 * 7 // 20 = 2
    assert ahead(e, 1) == 2
    e.on_market(level(BUY, 100, 1, ts=7))            # never more than displayed
    assert ahead(e, 1) == 1
    assert events(e).size == 0
    e.on_market(trade(SELL, 100, 5, ts=8))           # 1 ahead, then 4 to us
    evs = events(e)
    assert kinds(evs) == [(1, E.PARTIALLY_FILLED)] and evs["last_qty"][0] == 4 and evs["last_px"][0] == 100


def test_cancel_race_a_cancel_in_flight_loses_to_the_fill():
    e = engine(order_latency_ns=1000, response_latency_ns=500)
    e.submit(cmd(C.NEW, 1, side=SELL, price=101, qty=5, ts=0))        # arrives at 1000
    e.on_market(level(BUY, 99, 21, ts=1000))                          # same instant: md first
    e.submit(cmd(C.CANCEL, 1, ts=2000))                               # arrives at 3000
    e.on_market(trade(BUY, 102, 1, ts=2500))                          # trades through 101: filled at 2500
    e.on_market(level(BUY, 99, 22, ts=3500))                          # the cancel is processed before this
    evs = events(e)
    assert kinds(evs) == [(1, E.ACCEPTED), (1, E.FILLED), (1, E.CANCEL_REJECTED)]
    assert evs["ts_event"].tolist() == [1000, 2500, 3000]
    assert evs["ts"].tolist() == [1500, 3000, 3500]
    assert evs["reason"][2] == DenyReason.UNKNOWN_ORDER and evs["last_px"][1] == 101


def test_a_cancel_that_arrives_first_wins_and_nothing_fills():
    e = engine(order_latency_ns=1000)
    e.submit(cmd(C.NEW, 1, side=SELL, price=101, qty=5, ts=0))
    e.submit(cmd(C.CANCEL, 1, ts=100))                                # arrives at 1100
    e.on_market(trade(BUY, 102, 1, ts=1200))
    assert kinds(events(e)) == [(1, E.ACCEPTED), (1, E.CANCELED)]


def test_events_are_handed_out_only_once_delivered():
    e = engine(response_latency_ns=700)
    e.submit(cmd(C.NEW, 1, ts=10))
    assert events(e, now=709).size == 0
    assert kinds(events(e, now=710)) == [(1, E.ACCEPTED)]
    assert e.next_delivery_ns == 2**63 - 1 and e.pending == 0


def test_exec_ids_count_from_one_with_the_epoch_as_high_word():
    e = engine(exec_epoch=42)
    e.submit(np.concatenate([cmd(C.NEW, 1, side=BUY, price=101, qty=15), cmd(C.CANCEL, 99)]))
    evs = events(e)
    assert evs["exec_id"].tolist() == list(range(1, len(evs) + 1))
    assert (evs["exec_id_hi"] == 42).all()
    e.set_exec_epoch(43)
    e.submit(cmd(C.CANCEL, 1))
    assert events(e)["exec_id_hi"].tolist() == [43]
    with pytest.raises(ValueError):
        MatchingEngine([INST], exec_epoch=0)


def test_through_trade_fills_better_priced_orders_first():
    e = engine()
    e.submit(np.concatenate([cmd(C.NEW, 1, side=BUY, price=99, qty=1), cmd(C.NEW, 2, side=BUY, price=100, qty=1)]))
    events(e)
    e.on_market(trade(SELL, 98, 1, ts=3))
    assert kinds(events(e)) == [(2, E.FILLED), (1, E.FILLED)]


def test_liquidity_we_took_is_not_taken_twice_and_shrinks_with_the_level():
    e = engine()
    e.submit(cmd(C.NEW, 1, side=BUY, price=101, qty=8, tif=TimeInForce.IOC))
    e.submit(cmd(C.NEW, 2, side=BUY, price=101, qty=8, tif=TimeInForce.IOC))
    evs = events(e)
    assert kinds(evs) == [(1, E.ACCEPTED), (1, E.FILLED), (2, E.ACCEPTED), (2, E.PARTIALLY_FILLED), (2, E.CANCELED)]
    assert evs["last_qty"][3] == 2
    e.on_market(level(SELL, 101, 6, ts=3))       # 10 -> 6: 4 of the 10 we took are gone: 6 still taken
    e.submit(cmd(C.NEW, 3, side=BUY, price=101, qty=1, tif=TimeInForce.IOC, ts=3))
    assert kinds(events(e)) == [(3, E.ACCEPTED), (3, E.CANCELED)]
    e.on_market(level(SELL, 101, 9, ts=4))       # 3 more show up
    e.submit(cmd(C.NEW, 4, side=BUY, price=101, qty=5, tif=TimeInForce.IOC, ts=4))
    evs = events(e)
    assert kinds(evs) == [(4, E.ACCEPTED), (4, E.PARTIALLY_FILLED), (4, E.CANCELED)] and evs["last_qty"][1] == 3


@pytest.mark.parametrize("kind,coid,orig,expect,reason", [
    (7, 1, 0, E.REJECTED, REASON_BAD_TYPE),                           # unknown command
    (C.CANCEL, 5, 0, E.CANCEL_REJECTED, DenyReason.UNKNOWN_ORDER),    # unknown order
    (C.REPLACE, 6, 5, E.CANCEL_REJECTED, DenyReason.UNKNOWN_ORDER),
])
def test_commands_the_engine_cannot_take_are_rejected(kind, coid, orig, expect, reason):
    e = engine()
    e.submit(cmd(kind, coid, orig=orig))
    evs = events(e)
    assert kinds(evs) == [(coid, expect)] and evs["reason"][0] == reason
    assert e.counters()["rejects"] == 1


def test_a_full_order_table_rejects_resting_orders_but_takes_ioc():
    e = engine(max_orders=2)
    e.submit(np.concatenate([cmd(C.NEW, k, price=90) for k in (1, 2, 3)]
                            + [cmd(C.NEW, 4, side=BUY, price=101, qty=1, tif=TimeInForce.IOC)]))
    evs = events(e)
    assert kinds(evs) == [(1, E.ACCEPTED), (2, E.ACCEPTED), (3, E.REJECTED), (4, E.ACCEPTED), (4, E.FILLED)]
    assert evs["reason"][2] == DenyReason.ORDER_TABLE_FULL


def test_the_book_equals_a_dict_model_through_random_updates_and_a_snapshot():
    rng = np.random.default_rng(5)
    e = MatchingEngine([INST])
    ref = {BUY: {}, SELL: {}}
    recs = []
    for k in range(6000):
        side = BUY if rng.random() < 0.5 else SELL
        px = int(1000 - rng.integers(1, 600)) if side == BUY else int(1000 + rng.integers(0, 600))
        qty = int(rng.integers(0, 3)) * int(rng.integers(1, 50))
        recs.append(level(side, px, qty, ts=k))
        if qty:
            ref[side][px] = qty
        else:
            ref[side].pop(px, None)
    e.on_market(np.concatenate(recs))
    bids, asks = e.book(1)
    assert bids == sorted(ref[BUY].items(), reverse=True) and asks == sorted(ref[SELL].items())
    assert len(bids) > 256  # grew past the initial capacity
    e.on_market(fsim.snapshot_records(1, [(900, 1)], [(1100, 2)], 7000, 1))
    assert e.book(1) == ([(900, 1)], [(1100, 2)])


def test_same_inputs_give_identical_events_and_the_seed_moves_the_jitter():
    def run(seed):
        e = engine(order_latency_ns=1000, order_jitter_ns=700, response_jitter_ns=300, seed=seed)
        rng = np.random.default_rng(1)
        for i in range(200):
            e.submit(cmd(C.NEW, i + 1, side=BUY if i % 2 else SELL, price=int(100 + (i % 2 == 0) * 1 + rng.integers(-2, 3)),
                         qty=int(rng.integers(1, 4)), ts=100 * i))
            e.on_market(trade(SELL if i % 3 else BUY, int(100 + rng.integers(-2, 3)), int(rng.integers(1, 30)), ts=100 * i + 50))
        return events(e)
    a, b, c = run(1), run(1), run(2)
    assert a.tobytes() == b.tobytes() and a.tobytes() != c.tobytes()
    assert (np.diff(a["ts"]) >= 0).all() and len(a) > 200


def test_order_index_agrees_with_a_dict_model_through_random_new_cancel_replace():
    """The live-order table (slots, time-priority list, client_order_id hash index with
    backward-shift deletion) against an insertion-ordered dict, over colliding ids."""
    rng = np.random.default_rng(11)
    cap = 64
    e = MatchingEngine([INST], max_orders=cap)  # empty book: nothing crosses
    ref = {}  # coid -> (price, qty), in time priority
    for step in range(20_000):
        op = rng.integers(0, 3)
        coid = int(rng.integers(-150, 150)) * 1_000_003  # many ids, clustered hashes
        price = int(rng.integers(90, 95))
        qty = int(rng.integers(1, 6))
        if op == 0:
            e.submit(cmd(C.NEW, coid, price=price, qty=qty))
            if coid not in ref and len(ref) < cap:
                ref[coid] = (price, qty)
        elif op == 1:
            e.submit(cmd(C.CANCEL, coid))
            ref.pop(coid, None)
        else:
            orig = list(ref)[int(rng.integers(0, len(ref)))] if ref and rng.random() < 0.8 else coid
            e.submit(cmd(C.REPLACE, coid, orig=orig, price=price, qty=qty))
            if orig in ref and (coid == orig or coid not in ref):
                old_price, old_qty = ref[orig]
                if price == old_price and qty <= old_qty:  # keeps its place, renamed
                    ref = {(coid if k == orig else k): ((price, qty) if k == orig else v) for k, v in ref.items()}
                else:  # to the back
                    del ref[orig]
                    ref[coid] = (price, qty)
        events(e)
        if step % 97 == 0:
            assert [(o["coid"], o["price"], o["qty"]) for o in e.live_orders()] == \
                [(k, p, q) for k, (p, q) in ref.items()], f"step {step}"
    assert [(o["coid"], o["price"], o["qty"]) for o in e.live_orders()] == [(k, p, q) for k, (p, q) in ref.items()]
    assert e.counters()["resting"] == len(ref)


def test_best_level_is_tracked_across_sparse_and_off_grid_levels():
    """The hash ladder finds the next best level by stepping ticks, or by one pass over the table
    when the gap is wide or a price off the tick grid was seen: an IOC walks the asks in order."""
    inst = Instrument(1, "SIM", tick=10, lot=1)
    e = MatchingEngine([inst])
    asks = [(1000, 1), (1010, 1), (5000, 1), (90000, 1)]   # 1 tick, then ~400 and ~8500 ticks apart
    e.on_market(fsim.snapshot_records(1, [(900, 5)], asks, 1, 1))
    e.on_market(level(SELL, 1000, 0, ts=2))                 # the best goes: next is one tick away
    e.on_market(level(SELL, 1010, 0, ts=3))                 # next is far: found by a pass
    c = new("ORDER_CMD", 1, cmd=int(C.NEW), client_order_id=1, side=BUY, price=4990, qty=1,
            tif=int(TimeInForce.POST_ONLY), ord_type=1, instrument=1)
    c["ts"] = 4
    e.submit(c)                                             # 4990 < best ask 5000: rests
    assert kinds(events(e)) == [(1, E.ACCEPTED)]
    e.on_market(level(SELL, 4995, 1, ts=5))                 # off the tick grid
    e.on_market(level(SELL, 4995, 0, ts=6))
    c2 = c.copy()
    c2["client_order_id"], c2["price"], c2["tif"], c2["qty"] = 2, 100000, int(TimeInForce.IOC), 3
    c2["ts"] = 7
    e.submit(c2)
    evs = events(e)
    assert kinds(evs) == [(2, E.ACCEPTED), (2, E.PARTIALLY_FILLED), (2, E.PARTIALLY_FILLED), (2, E.CANCELED)]
    assert evs["last_px"].tolist()[1:3] == [5000, 90000]
    assert e.book(1) == ([(900, 5)], [(5000, 1), (90000, 1)])


def test_a_day_order_rests_like_gtc_on_the_simulated_venue():
    e = engine()
    e.submit(cmd(C.NEW, 1, side=BUY, price=100, qty=5, tif=TimeInForce.DAY))
    assert kinds(events(e)) == [(1, E.ACCEPTED)]
    assert [o["coid"] for o in e.live_orders()] == [1]
    e.submit(cmd(C.NEW, 2, side=BUY, price=100, qty=5, tif=99))
    assert kinds(events(e)) == [(2, E.REJECTED)]
