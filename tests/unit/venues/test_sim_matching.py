"""The simulated exchange's matching: rejects, price-time priority and queue position, partial and
aggressive fills, cancel, replace, cancel-on-disconnect, latency, determinism.

The market is fed by hand (``market="none"``) with the records a feed would send, so every
expected fill can be worked out from the rules in ``livestack.venues.sim``'s docstring.
"""

from __future__ import annotations

import numpy as np
import pytest

from livestack.config import Instrument
from livestack.feeds import sim as fsim
from livestack.schema import DTYPES, DenyReason, ExecType as E, OrdType, RecordKind, Side, TimeInForce, new
from livestack.venues import sim
from livestack.venues.base import VenueAdapter

INST = Instrument(1, "SIM", tick=1, lot=1)
BUY, SELL = int(Side.BUY), int(Side.SELL)
ZERO = {"market": "none", "order_latency_ns": 0, "order_jitter_ns": 0, "md_latency_ns": 0, "md_jitter_ns": 0}
FAR = 2**62


def md(kind, side, price, qty, ts=1):
    r = fsim.md_records(1)
    r["kind"] = kind
    r["version"] = 1
    r["flags"] = fsim.F_LAST
    r["instrument"] = 1
    r["ts"] = r["ts_event"] = ts
    r["a"], r["b"], r["d"] = price, qty, side
    return r


def level(side, price, qty, ts=1):
    return md(RecordKind.MD_LEVEL, side, price, qty, ts)


def trade(aggressor, price, qty, ts=1):
    return md(RecordKind.MD_TRADE, aggressor, price, qty, ts)


def exchange(bids=((100, 10), (99, 20)), asks=((101, 10), (102, 20)), **opts):
    ex = sim.SimExchange([INST], dict(ZERO, **opts))
    ex.on_market(fsim.snapshot_records(1, bids, asks, 1, 1))
    return ex


def cmd(kind, coid, side=BUY, price=100, qty=5, orig=0, tif=TimeInForce.GTC, ord_type=OrdType.LIMIT, inst=1, ts=2):
    c = new("ORDER_CMD", 1, cmd=int(kind), client_order_id=coid, orig_client_order_id=orig, side=side,
            price=price, qty=qty, tif=int(tif), ord_type=int(ord_type), instrument=inst)
    c["ts"] = ts
    return c


def events(ex, now=FAR):
    out = np.zeros(256, dtype=DTYPES["EXEC"])
    n = ex.poll(out, now)
    return out[:n].copy()


def send(ex, *cmds, now=FAR):
    for c in cmds:
        ex.submit(c)
    return events(ex, now)


def kinds(evs):
    return [(int(e["client_order_id"]), int(e["exec_type"])) for e in evs]


def test_sim_exchange_is_a_venue_adapter():
    assert isinstance(sim.SimExchange([INST], ZERO), VenueAdapter)


@pytest.mark.parametrize("price,qty,reason", [
    (0, 5, DenyReason.BAD_PRICE), (-100, 5, DenyReason.BAD_PRICE),
    (100, 0, DenyReason.BAD_QTY), (100, -1, DenyReason.BAD_QTY),
])
def test_new_order_with_bad_price_or_quantity_is_rejected(price, qty, reason):
    ex = exchange()
    evs = send(ex, cmd(1, 1, price=price, qty=qty))
    assert kinds(evs) == [(1, E.REJECTED)] and evs["reason"][0] == reason
    assert not ex.orders


def test_price_off_tick_and_quantity_off_lot_are_rejected():
    inst = Instrument(2, "X", tick=10, lot=5)
    ex = sim.SimExchange([inst], ZERO)
    ex.on_market(fsim.snapshot_records(2, [(1000, 50)], [(1010, 50)], 1, 1))
    evs = send(ex, cmd(1, 1, price=1005, qty=5, inst=2), cmd(1, 2, price=1000, qty=7, inst=2),
               cmd(1, 3, price=1000, qty=10, inst=2))
    assert kinds(evs) == [(1, E.REJECTED), (2, E.REJECTED), (3, E.ACCEPTED)]
    assert evs["reason"].tolist()[:2] == [DenyReason.BAD_PRICE, DenyReason.BAD_QTY]


def test_unknown_instrument_duplicate_id_and_bad_side_are_rejected():
    ex = exchange()
    evs = send(ex, cmd(1, 1, inst=9), cmd(1, 2), cmd(1, 2), cmd(1, 3, side=0))
    assert kinds(evs) == [(1, E.REJECTED), (2, E.ACCEPTED), (2, E.REJECTED), (3, E.REJECTED)]
    assert evs["reason"].tolist() == [DenyReason.UNKNOWN_INSTRUMENT, 0, DenyReason.DUPLICATE, sim.REASON_BAD_SIDE]


def test_cancel_and_replace_of_an_unknown_order_are_cancel_rejected():
    ex = exchange()
    evs = send(ex, cmd(2, 77), cmd(3, 78, orig=76, price=100))
    assert kinds(evs) == [(77, E.CANCEL_REJECTED), (78, E.CANCEL_REJECTED)]
    assert (evs["reason"] == DenyReason.UNKNOWN_ORDER).all()
    assert evs["orig_client_order_id"].tolist() == [0, 76]


def test_replace_with_bad_price_or_qty_is_cancel_rejected_and_the_order_stays():
    ex = exchange()
    send(ex, cmd(1, 1, price=100, qty=5))
    evs = send(ex, cmd(3, 2, orig=1, price=0, qty=5), cmd(3, 3, orig=1, price=100, qty=0))
    assert kinds(evs) == [(2, E.CANCEL_REJECTED), (3, E.CANCEL_REJECTED)]
    assert evs["reason"].tolist() == [DenyReason.BAD_PRICE, DenyReason.BAD_QTY]
    assert list(ex.orders) == [1]


def test_resting_order_joins_behind_displayed_quantity_and_trades_consume_the_queue_first():
    ex = exchange()
    evs = send(ex, cmd(1, 1, price=100, qty=5))
    assert kinds(evs) == [(1, E.ACCEPTED)]
    assert evs["leaves_qty"][0] == 5 and evs["venue_order_id"][0] > 0
    assert ex.orders[1].ahead == 10
    ex.on_market(trade(SELL, 100, 6, ts=3))
    ex.on_market(level(BUY, 100, 4, ts=3))  # the level shrinks by the traded 6: no cancel
    assert events(ex).size == 0 and ex.orders[1].ahead == 4
    ex.on_market(trade(SELL, 100, 6, ts=4))  # 4 ahead, then 2 to us
    evs = events(ex)
    assert kinds(evs) == [(1, E.PARTIALLY_FILLED)]
    assert (evs["last_px"][0], evs["last_qty"][0], evs["cum_qty"][0], evs["leaves_qty"][0]) == (100, 2, 2, 3)
    ex.on_market(trade(SELL, 100, 10, ts=5))
    evs = events(ex)
    assert kinds(evs) == [(1, E.FILLED)]
    assert (evs["last_qty"][0], evs["cum_qty"][0], evs["leaves_qty"][0]) == (3, 5, 0)
    assert not ex.orders


def test_public_cancels_at_the_level_shrink_the_queue_ahead():
    ex = exchange()
    send(ex, cmd(1, 1, price=100, qty=5))
    ex.on_market(level(BUY, 100, 15))  # someone joined behind us: ahead unchanged
    assert ex.orders[1].ahead == 10
    ex.on_market(level(BUY, 100, 9))  # 6 canceled out of 15, spread over the queue: 10 - 6*10/15 = 6
    assert ex.orders[1].ahead == 6
    ex.on_market(level(BUY, 100, 2))  # ahead never exceeds the displayed quantity
    assert ex.orders[1].ahead == 2
    ex.on_market(trade(SELL, 100, 3))
    evs = events(ex)
    assert kinds(evs) == [(1, E.PARTIALLY_FILLED)] and evs["last_qty"][0] == 1


def test_price_time_priority_among_our_orders():
    ex = exchange()
    send(ex, cmd(1, 1, price=100, qty=5), cmd(1, 2, price=100, qty=5), cmd(1, 3, price=99, qty=5))
    ex.on_market(trade(SELL, 100, 13))  # 10 ahead, 3 to the first of ours
    assert kinds(events(ex)) == [(1, E.PARTIALLY_FILLED)]
    ex.on_market(trade(SELL, 100, 4))  # 2 finish order 1, then 2 to order 2
    evs = events(ex)
    assert kinds(evs) == [(1, E.FILLED), (2, E.PARTIALLY_FILLED)]
    assert evs["last_qty"].tolist() == [2, 2]
    assert 3 in ex.orders and ex.orders[3].cum == 0  # the lower price waits


def test_a_trade_through_our_price_fills_the_whole_order_at_our_price():
    ex = exchange()
    send(ex, cmd(1, 1, side=SELL, price=101, qty=5), cmd(1, 2, side=SELL, price=102, qty=5))
    ex.on_market(trade(BUY, 103, 1))
    evs = events(ex)
    assert kinds(evs) == [(1, E.FILLED), (2, E.FILLED)]
    assert evs["last_px"].tolist() == [101, 102]


def test_order_inside_the_spread_has_no_queue_and_fills_on_the_next_trade_at_its_price():
    ex = exchange(asks=((103, 10),))
    send(ex, cmd(1, 1, side=BUY, price=101, qty=5))
    assert ex.orders[1].ahead == 0
    ex.on_market(trade(SELL, 101, 2))
    evs = events(ex)
    assert kinds(evs) == [(1, E.PARTIALLY_FILLED)] and evs["last_qty"][0] == 2


def test_public_ask_arriving_at_our_bid_trades_with_it():
    ex = exchange(asks=((103, 10),))
    send(ex, cmd(1, 1, side=BUY, price=101, qty=5))
    ex.on_market(level(SELL, 101, 3))
    evs = events(ex)
    assert kinds(evs) == [(1, E.PARTIALLY_FILLED)]
    assert (evs["last_px"][0], evs["last_qty"][0]) == (101, 3)


def test_aggressive_limit_fills_across_levels_and_rests_the_remainder():
    ex = exchange()
    evs = send(ex, cmd(1, 1, side=BUY, price=102, qty=35))
    assert kinds(evs) == [(1, E.ACCEPTED), (1, E.PARTIALLY_FILLED), (1, E.PARTIALLY_FILLED)]
    assert evs["last_px"].tolist()[1:] == [101, 102] and evs["last_qty"].tolist()[1:] == [10, 20]
    o = ex.orders[1]
    assert (o.cum, o.price, o.ahead) == (30, 102, 0)  # rests at its limit for the remaining 5
    # the liquidity we took is gone for our next order
    evs = send(ex, cmd(1, 2, side=BUY, price=102, qty=5, tif=TimeInForce.IOC))
    assert kinds(evs) == [(2, E.ACCEPTED), (2, E.CANCELED)]


def test_ioc_remainder_is_canceled_and_market_order_walks_the_book():
    ex = exchange()
    evs = send(ex, cmd(1, 1, side=SELL, price=100, qty=15, tif=TimeInForce.IOC))
    assert kinds(evs) == [(1, E.ACCEPTED), (1, E.PARTIALLY_FILLED), (1, E.CANCELED)]
    assert evs["leaves_qty"][-1] == 0 and evs["cum_qty"][-1] == 10
    evs = send(ex, cmd(1, 2, side=BUY, price=0, qty=25, ord_type=OrdType.MARKET, tif=TimeInForce.IOC))
    assert kinds(evs) == [(2, E.ACCEPTED), (2, E.PARTIALLY_FILLED), (2, E.FILLED)]
    assert evs["last_px"].tolist()[1:] == [101, 102] and evs["last_qty"].tolist()[1:] == [10, 15]


def test_post_only_that_would_cross_is_rejected():
    ex = exchange()
    evs = send(ex, cmd(1, 1, side=BUY, price=101, tif=TimeInForce.POST_ONLY),
               cmd(1, 2, side=BUY, price=100, tif=TimeInForce.POST_ONLY))
    assert kinds(evs) == [(1, E.REJECTED), (2, E.ACCEPTED)]
    assert evs["reason"][0] == sim.REASON_POST_ONLY_WOULD_CROSS


def test_cancel_removes_the_order_and_a_second_cancel_is_rejected():
    ex = exchange()
    send(ex, cmd(1, 1, price=100, qty=5))
    evs = send(ex, cmd(2, 1), cmd(2, 1))
    assert kinds(evs) == [(1, E.CANCELED), (1, E.CANCEL_REJECTED)]
    assert evs["leaves_qty"][0] == 0 and evs["venue_order_id"][0] > 0
    ex.on_market(trade(SELL, 99, 50))
    assert events(ex).size == 0


def test_replace_renames_the_order_and_keeps_queue_place_only_when_quantity_goes_down():
    ex = exchange()
    send(ex, cmd(1, 1, price=100, qty=5))
    ex.on_market(level(BUY, 100, 14))  # 4 more behind us
    evs = send(ex, cmd(3, 2, orig=1, price=100, qty=3))
    assert kinds(evs) == [(2, E.REPLACED)]
    e = evs[0]
    assert (e["orig_client_order_id"], e["price"], e["qty"], e["leaves_qty"]) == (1, 100, 3, 3)
    assert list(ex.orders) == [2] and ex.orders[2].ahead == 10  # kept its place
    voi = int(e["venue_order_id"])
    evs = send(ex, cmd(3, 3, orig=2, price=100, qty=4))  # quantity up: back of the queue
    assert kinds(evs) == [(3, E.REPLACED)] and evs["venue_order_id"][0] == voi
    assert ex.orders[3].ahead == 14
    evs = send(ex, cmd(3, 4, orig=3, price=99, qty=4))  # new price: behind 99's 20
    assert ex.orders[4].ahead == 20
    evs = send(ex, cmd(2, 3))  # the old id is gone
    assert kinds(evs) == [(3, E.CANCEL_REJECTED)]


def test_replace_that_crosses_fills_and_replace_below_filled_is_rejected():
    ex = exchange()
    send(ex, cmd(1, 1, side=BUY, price=100, qty=15))
    evs = send(ex, cmd(3, 2, orig=1, price=101, qty=15))
    assert kinds(evs) == [(2, E.REPLACED), (2, E.PARTIALLY_FILLED)]
    assert evs["last_qty"][1] == 10 and ex.orders[2].cum == 10
    evs = send(ex, cmd(3, 3, orig=2, price=101, qty=10))
    assert kinds(evs) == [(3, E.CANCEL_REJECTED)] and evs["reason"][0] == sim.REASON_QTY_BELOW_FILLED


def test_harness_lost_cancels_every_resting_order():
    ex = exchange()
    send(ex, cmd(1, 1, price=100), cmd(1, 2, side=SELL, price=105), cmd(1, 3, price=90))
    ex.on_harness_lost()
    evs = events(ex)
    assert sorted(kinds(evs)) == [(1, E.CANCELED), (2, E.CANCELED), (3, E.CANCELED)]
    assert not ex.orders


def test_order_latency_processes_the_command_against_the_book_at_arrival_time():
    ex = exchange(order_latency_ns=1000, response_latency_ns=500)
    ex.submit(cmd(1, 1, side=BUY, price=101, qty=5, ts=10_000, tif=TimeInForce.IOC))
    ex.on_market(level(SELL, 101, 0, ts=10_500))  # the ask leaves before our order arrives (11_000)
    ex.on_market(level(SELL, 101, 10, ts=11_500))  # and comes back after
    evs = events(ex, now=11_499)
    assert evs.size == 0  # processed at 11_000, reported at 11_500
    evs = events(ex, now=11_500)
    assert kinds(evs) == [(1, E.ACCEPTED), (1, E.CANCELED)]
    assert evs["ts_event"].tolist() == [11_000, 11_000] and evs["ts"].tolist() == [11_500, 11_500]


def test_jitter_is_seeded_and_exec_times_stay_monotonic():
    def run(seed):
        ex = exchange(order_latency_ns=1000, order_jitter_ns=700, response_jitter_ns=300, seed=seed)
        for i in range(50):
            ex.submit(cmd(1, i + 1, price=90 - (i % 5), ts=100 * i))
        return events(ex)
    a, b, c = run(1), run(1), run(2)
    assert a.tobytes() == b.tobytes() and a.tobytes() != c.tobytes()
    assert (np.diff(a["ts"]) >= 0).all()
    assert ((a["ts_event"] >= 1000 + 100 * np.arange(50)) & (a["ts_event"] <= 1700 + 100 * np.arange(50))).all()


def test_model_market_with_the_same_seed_and_commands_gives_identical_executions():
    def run():
        ex = sim.SimExchange([INST], {"market": "model", "seed": 11, "pace": False, "start_ns": 10**18})
        out = []
        for step in range(40):
            ex.service(0)
            b = ex.books[1]
            bb, ba = max(b.bids), min(b.asks)
            ex.submit(cmd(1, 2 * step + 1, side=BUY, price=bb, qty=3, ts=ex.market_ts))
            ex.submit(cmd(1, 2 * step + 2, side=SELL, price=ba - 1 if step % 3 == 0 else ba, qty=3, ts=ex.market_ts))
            out.append(events(ex, ex.market_ts))
        out.append(events(ex))
        return np.concatenate(out)
    a, b = run(), run()
    assert a.tobytes() == b.tobytes()
    et = a["exec_type"]
    assert (et == E.ACCEPTED).sum() == 80
    assert ((et == E.FILLED) | (et == E.PARTIALLY_FILLED)).sum() > 10  # resting orders do get filled


def test_unknown_venue_option_is_an_error():
    with pytest.raises(ValueError, match="unknown option"):
        sim.SimExchange([INST], {"latency": 5})


def test_two_instruments_share_one_time_ordered_market_and_match_separately():
    i2 = Instrument(2, "SIM2", tick=5, lot=2)
    ex = sim.SimExchange([INST, i2], {"market": "model", "pace": False, "start_ns": 10**18, "md_chunk": 300})
    recs = []
    for _ in range(20):
        ex.service(0)
        recs.append(ex.take_md())
    md = np.concatenate(recs)
    assert set(md["instrument"].tolist()) == {1, 2}
    assert (np.diff(md["ts"]) >= 0).all() and (np.diff(md["ts_event"]) >= 0).all()
    b2 = ex.books[2]
    evs = send(ex, cmd(1, 1, side=BUY, price=max(b2.asks), qty=4, inst=2, tif=TimeInForce.IOC, ts=ex.market_ts),
               cmd(1, 2, side=BUY, price=max(b2.asks), qty=3, inst=2, ts=ex.market_ts))
    one = [k for c, k in kinds(evs) if c == 1]
    assert one[0] == E.ACCEPTED and one[-1] == E.FILLED  # 4 = two lots of 2: fills against the asks
    assert [k for c, k in kinds(evs) if c == 2] == [E.REJECTED]  # 3 is not a multiple of the lot 2
