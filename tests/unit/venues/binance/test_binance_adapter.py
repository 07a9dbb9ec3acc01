"""BinanceAdapter against a small in-test Binance stand-in (real sockets: aiohttp REST + WebSocket):
acks, fills with trade ids as exec ids, rejects with named reasons, cancel, replace (spot
cancelReplace / USD-M modify), lost answers resolved by status queries (no duplicate, no lost fill),
fills missed while disconnected recovered by reconciliation, -1021 retried once, bad frames counted."""

import time

import numpy as np
import pytest

from livestack.config import Instrument
from livestack.schema import ExecType, OrderCmdType, OrdType, Side, TimeInForce, new
from livestack.venues.binance import codec
from livestack.venues.binance.adapter import BinanceAdapter
from livestack.venues.binance.auth import Credentials
from livestack.venues.execid import exec_id_words

from .fake_binance import KEY, SECRET, FakeBinance

pytestmark = pytest.mark.timeout(60)

INST = Instrument(1, "BTCUSDT", "binance", price_decimals=2, qty_decimals=8, tick=1, lot=1000)
INST_U = Instrument(1, "BTCUSDT", "binance", price_decimals=2, qty_decimals=3, tick=1, lot=1)


@pytest.fixture(params=["spot", "usdm"])
def venue(request):
    market = request.param
    fake = FakeBinance(market, step="0.00001" if market == "spot" else "0.001").start()
    inst = INST if market == "spot" else INST_U
    ad = BinanceAdapter([inst], fake.options(), creds=Credentials(KEY, SECRET))
    ad.start()
    try:
        wait(lambda: ad.up, "connect")
        yield fake, ad, inst
    finally:
        ad.stop()
        fake.stop()


def wait(cond, what, timeout=60.0):  # generous: a busy 2-core CI machine, never a sleep
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def cmd(kind, cid, side=Side.BUY, price=5000000, qty=100000, orig=0, tif=TimeInForce.GTC):
    c = new("ORDER_CMD")
    c["cmd"], c["client_order_id"], c["side"], c["price"], c["qty"] = int(kind), cid, int(side), price, qty
    c["orig_client_order_id"], c["tif"], c["ord_type"], c["instrument"] = orig, int(tif), int(OrdType.LIMIT), 1
    return c


class Events:
    def __init__(self, ad):
        self.ad = ad
        self.got = []
        self.buf = np.zeros(64, dtype=new("EXEC").dtype)

    def drain(self):
        n = self.ad.poll(self.buf, 0)
        self.ad.delivered(n)  # as the process loop does once the exec ring took them
        self.got.extend(self.buf[i].copy() for i in range(n))
        return self.got

    def until(self, pred, what, timeout=10.0):
        wait(lambda: any(pred(e) for e in self.drain()), what, timeout)

    def of(self, cid, et=None):
        return [e for e in self.drain() if e["client_order_id"] == cid and (et is None or e["exec_type"] == et)]


def clid(cid):
    return codec.client_order_id(77, cid)


def test_new_is_acked_then_partial_and_full_fills_carry_trade_ids(venue):
    fake, ad, inst = venue
    ev = Events(ad)
    qty = 200000 if inst.qty_decimals == 8 else 2
    ad.submit(cmd(OrderCmdType.NEW, 11, qty=qty))
    ev.until(lambda e: e["client_order_id"] == 11 and e["exec_type"] == ExecType.ACCEPTED, "ack")
    half = "0.00100000" if inst.qty_decimals == 8 else "0.001"
    t1 = fake.trade(clid(11), half)
    t2 = fake.trade(clid(11), half)
    ev.until(lambda e: e["exec_type"] == ExecType.FILLED, "filled")
    fills = [e for e in ev.got if e["exec_type"] in (ExecType.PARTIALLY_FILLED, ExecType.FILLED)]
    assert [int(e["exec_type"]) for e in fills] == [ExecType.PARTIALLY_FILLED, ExecType.FILLED]
    for e, t in zip(fills, (t1, t2)):
        assert (int(e["exec_id"]), int(e["exec_id_hi"])) == exec_id_words(f"BTCUSDT-{t['id']}")
        assert e["last_qty"] == qty // 2 and e["last_px"] == 5000000
    assert fills[-1]["cum_qty"] == qty and fills[-1]["leaves_qty"] == 0
    assert len(ev.of(11, ExecType.ACCEPTED)) == 1           # answer + stream NEW: one ack
    # each fill is followed by its fee (commission n / asset N): an EXEC FEE with the fill's exec id
    from livestack.venues.fees import fees_of

    kinds = [int(e["exec_type"]) for e in ev.got if e["client_order_id"] == 11]
    assert kinds[-4:] == [ExecType.PARTIALLY_FILLED, ExecType.FEE, ExecType.FILLED, ExecType.FEE]
    fees = fees_of(np.array(ev.got))
    asset = "BNB" if inst.qty_decimals == 8 else "USDT"     # the stand-in's spot / USD-M fee assets
    assert [fees[exec_id_words(f"BTCUSDT-{t['id']}")] for t in (t1, t2)] == [("0.00100000", asset)] * 2
    place = [p for m, p in fake.requests if m == "order.place"]
    assert len(place) == 1 and place[0]["newClientOrderId"] == clid(11)


def test_venue_reject_maps_the_code_and_local_filter_reject_never_sends(venue):
    fake, ad, inst = venue
    ev = Events(ad)
    big = 10 * 10 ** inst.qty_decimals                          # 10 x 1.00 passes MIN_NOTIONAL 5
    ad.submit(cmd(OrderCmdType.NEW, 21, price=100, qty=big))    # "1.00": the stand-in refuses -2010
    ev.until(lambda e: e["client_order_id"] == 21 and e["exec_type"] == ExecType.REJECTED, "reject")
    assert ev.of(21, ExecType.REJECTED)[0]["reason"] == codec.Reject.NEW_ORDER_REJECTED
    ad.submit(cmd(OrderCmdType.NEW, 22, qty=10_000 * 10 ** inst.qty_decimals))  # above LOT_SIZE maxQty
    ev.until(lambda e: e["client_order_id"] == 22, "local reject")
    assert ev.of(22)[0]["reason"] == codec.Reject.FILTER_LOT
    # nothing about order 22 went out (other requests -- time sync, the reconcile sweep -- may have:
    # counting all requests failed when a sweep fell in between on a loaded machine)
    assert not [p for _, p in fake.requests if clid(22) in str(p)]


def test_cancel_and_replace(venue):
    fake, ad, inst = venue
    ev = Events(ad)
    q = 100000 if inst.qty_decimals == 8 else 1
    ad.submit(cmd(OrderCmdType.NEW, 31, qty=q))
    ev.until(lambda e: e["client_order_id"] == 31 and e["exec_type"] == ExecType.ACCEPTED, "ack")
    ad.submit(cmd(OrderCmdType.REPLACE, 32, orig=31, price=5000100, qty=q * 2))
    ev.until(lambda e: e["client_order_id"] == 32 and e["exec_type"] == ExecType.REPLACED, "replaced")
    r = ev.of(32, ExecType.REPLACED)[0]
    assert r["orig_client_order_id"] == 31 and r["price"] == 5000100
    ad.submit(cmd(OrderCmdType.CANCEL, 32))
    ev.until(lambda e: e["client_order_id"] == 32 and e["exec_type"] == ExecType.CANCELED, "canceled")
    time.sleep(0.2)
    assert not ev.of(31, ExecType.CANCELED)                 # the replaced venue order's cancel is not news
    assert len(ev.of(32, ExecType.CANCELED)) == 1
    ad.submit(cmd(OrderCmdType.CANCEL, 32))                  # again: Binance -2011
    ev.until(lambda e: e["client_order_id"] == 32 and e["exec_type"] == ExecType.CANCEL_REJECTED, "cxl rej")
    assert ev.of(32, ExecType.CANCEL_REJECTED)[0]["reason"] == codec.Reject.CANCEL_REJECTED


def test_lost_answer_is_resolved_by_a_status_query_without_resending(venue):
    fake, ad, inst = venue
    ev = Events(ad)
    fake.drop_answers = 1
    fake.sessions_backup = None
    ad.submit(cmd(OrderCmdType.NEW, 41))
    ev.until(lambda e: e["client_order_id"] == 41 and e["exec_type"] == ExecType.ACCEPTED, "ack (stream)", 15)
    wait(lambda: any(m == "order.status" for m, _ in fake.requests), "status query", 15)
    assert sum(m == "order.place" for m, _ in fake.requests) == 1
    assert len(ev.of(41, ExecType.ACCEPTED)) == 1


def test_fills_while_disconnected_are_recovered_once_by_reconciliation(venue):
    fake, ad, inst = venue
    ev = Events(ad)
    q = 300000 if inst.qty_decimals == 8 else 3
    one = "0.00100000" if inst.qty_decimals == 8 else "0.001"
    ad.submit(cmd(OrderCmdType.NEW, 51, qty=q))
    ev.until(lambda e: e["client_order_id"] == 51 and e["exec_type"] == ExecType.ACCEPTED, "ack")
    fake.trade(clid(51), one)
    ev.until(lambda e: e["exec_type"] == ExecType.PARTIALLY_FILLED, "first fill")
    connects = ad.stats["connects"]
    fake.kick()
    t2 = fake.trade(clid(51), one, push=False)              # happens while we are away: no event
    t3 = fake.trade(clid(51), one, push=False)
    wait(lambda: ad.stats["connects"] > connects, "reconnect")
    ev.until(lambda e: e["exec_type"] == ExecType.FILLED, "recovered fills", 15)
    fills = [e for e in ev.got if e["exec_type"] in (ExecType.PARTIALLY_FILLED, ExecType.FILLED)]
    ids = [(int(e["exec_id"]), int(e["exec_id_hi"])) for e in fills]
    assert len(ids) == len(set(ids)) == 3
    assert exec_id_words(f"BTCUSDT-{t2['id']}") in ids and exec_id_words(f"BTCUSDT-{t3['id']}") in ids
    assert sum(int(e["last_qty"]) for e in fills) == q


def test_bad_frames_are_counted_and_1021_is_resynced_and_retried_once(venue):
    fake, ad, inst = venue
    ev = Events(ad)
    fake.garbage = 1
    fake.fail_1021_once = True
    ad.submit(cmd(OrderCmdType.NEW, 61))
    ev.until(lambda e: e["client_order_id"] == 61 and e["exec_type"] == ExecType.ACCEPTED, "ack")
    assert ad.stats["bad_messages"] >= 2
    assert ad.stats["time_resyncs"] == 1
    assert sum(m == "order.place" for m, _ in fake.requests) == 2   # the -1021 one was never taken
    ad._on_event({"e": "executionReport", "s": 5})                    # wrong types: counted, no crash
    ad._on_event({"e": "ORDER_TRADE_UPDATE", "o": []})
    assert ad.stats["bad_messages"] >= 4


def test_418_bans_halt_the_venue_new_orders_are_rejected_locally_until_it_passes(venue):
    fake, ad, inst = venue
    ev = Events(ad)
    fake.ban_next = 1
    ad.submit(cmd(OrderCmdType.NEW, 71))
    ev.until(lambda e: e["client_order_id"] == 71 and e["exec_type"] == ExecType.REJECTED, "banned")
    assert ad.halted and ad.status_counters()["halted"] == 1
    assert ev.of(71, ExecType.REJECTED)[0]["reason"] == codec.Reject.TOO_MANY_REQUESTS
    n = sum(m == "order.place" for m, _ in fake.requests)
    ad.submit(cmd(OrderCmdType.NEW, 72))
    ev.until(lambda e: e["client_order_id"] == 72 and e["exec_type"] == ExecType.REJECTED, "local reject")
    assert ev.of(72, ExecType.REJECTED)[0]["reason"] == codec.Reject.BANNED
    assert sum(m == "order.place" for m, _ in fake.requests) == n     # nothing sent while banned


def test_orders_over_rest_when_the_ws_api_is_off():
    fake = FakeBinance("spot").start()
    ad = BinanceAdapter([INST], fake.options(use_ws_api=False), creds=Credentials(KEY, SECRET))
    ad.start()
    try:
        wait(lambda: ad.up, "connect")
        ev = Events(ad)
        ad.submit(cmd(OrderCmdType.NEW, 81))
        ev.until(lambda e: e["client_order_id"] == 81 and e["exec_type"] == ExecType.ACCEPTED, "ack")
        ad.submit(cmd(OrderCmdType.CANCEL, 81))
        ev.until(lambda e: e["client_order_id"] == 81 and e["exec_type"] == ExecType.CANCELED, "canceled")
        assert not any(m.startswith("order.") for m, _ in fake.requests)   # REST carried both
        assert fake.orders[clid(81)]["status"] == "CANCELED"
        assert ad.stats["rest_requests"] >= 4
    finally:
        ad.stop()
        fake.stop()


def test_a_restarted_venue_process_reports_exactly_what_happened_while_it_was_gone(tmp_path):
    fake = FakeBinance("spot").start()
    opts = fake.options(store_dir=str(tmp_path / "store"))
    a = BinanceAdapter([INST], opts, creds=Credentials(KEY, SECRET))
    a.start()
    try:
        wait(lambda: a.up, "connect")
        ev = Events(a)
        a.submit(cmd(OrderCmdType.NEW, 91, qty=300000))
        a.submit(cmd(OrderCmdType.NEW, 92))
        ev.until(lambda e: e["client_order_id"] == 92 and e["exec_type"] == ExecType.ACCEPTED, "ack 92")
        ev.until(lambda e: e["client_order_id"] == 91 and e["exec_type"] == ExecType.ACCEPTED, "ack 91")
        t1 = fake.trade(clid(91), "0.00100000")
        ev.until(lambda e: e["exec_type"] == ExecType.PARTIALLY_FILLED, "first fill")
    finally:
        a.stop()
    # while no venue process runs: two more fills of 91 (it fills), 92 is canceled (e.g. by hand)
    t2 = fake.trade(clid(91), "0.00100000", push=False)
    t3 = fake.trade(clid(91), "0.00100000", push=False)
    fake.call(lambda: fake.orders[clid(92)].update(status="CANCELED"))
    b = BinanceAdapter([INST], opts, creds=Credentials(KEY, SECRET))
    b.start()
    try:
        wait(lambda: b.up, "reconnect")
        ev = Events(b)
        ev.until(lambda e: e["client_order_id"] == 92 and e["exec_type"] == ExecType.CANCELED, "92 canceled")
        ev.until(lambda e: e["client_order_id"] == 91 and e["exec_type"] == ExecType.FILLED, "91 filled")
        time.sleep(0.3)
        got = ev.drain()
        fills = [(int(e["exec_id"]), int(e["exec_id_hi"])) for e in got
                 if e["exec_type"] in (ExecType.PARTIALLY_FILLED, ExecType.FILLED)]
        assert sorted(fills) == sorted(exec_id_words(f"BTCUSDT-{t['id']}") for t in (t2, t3))  # t1 not again
        assert exec_id_words(f"BTCUSDT-{t1['id']}") not in fills
        assert not [e for e in got if e["exec_type"] == ExecType.ACCEPTED]
        assert sum(m == "order.place" for m, _ in fake.requests) == 2
    finally:
        b.stop()
        fake.stop()


def test_what_a_killed_venue_process_had_not_handed_over_is_reported_by_its_successor(tmp_path):
    """Journal lines go out with the events (poll), commands are journaled as taken (submit): an ack
    still queued at the kill is reported again, and a cancel taken but never acted on is sent again."""
    from livestack.venues.binance.journal import Journal

    fake = FakeBinance("spot").start()
    opts = fake.options(store_dir=str(tmp_path / "store"))
    a = BinanceAdapter([INST], opts, creds=Credentials(KEY, SECRET))
    a.start()
    try:
        wait(lambda: a.up, "connect")
        ev = Events(a)
        a.submit(cmd(OrderCmdType.NEW, 95))
        ev.until(lambda e: e["client_order_id"] == 95 and e["exec_type"] == ExecType.ACCEPTED, "ack 95")
        a.submit(cmd(OrderCmdType.NEW, 96))
        wait(lambda: a.stats["events"] >= 2, "ack 96 made (not handed over)")
    finally:
        a.stop()        # "killed": 96's ack never left the process
    with open(a.journal.path, "ab") as f:   # ... and it had taken a CANCEL of 95 it never acted on
        f.write(Journal.command_line((int(OrderCmdType.CANCEL), 95, 0, 1, 1, 5000000, 100000, 1, 1, False)))
    b = BinanceAdapter([INST], opts, creds=Credentials(KEY, SECRET))
    b.start()
    try:
        wait(lambda: b.up, "reconnect")
        ev = Events(b)
        ev.until(lambda e: e["client_order_id"] == 96 and e["exec_type"] == ExecType.ACCEPTED, "96 acked again")
        ev.until(lambda e: e["client_order_id"] == 95 and e["exec_type"] == ExecType.CANCELED, "95 canceled")
        assert b.stats["commands_resent_after_restart"] == 1
        assert sum(m == "order.place" for m, _ in fake.requests) == 2     # no order placed twice
    finally:
        b.stop()
        fake.stop()


def test_mutated_user_stream_events_are_counted_never_raised(venue):
    """Seeded mutations of the documented events (wrong types, missing / extra fields, odd values,
    our own clientOrderIds among them) go through the adapter's event handler on its I/O loop:
    nothing raises, and the venue keeps working."""
    import asyncio
    import random

    from .test_binance_codec import FUT_UPDATE, SPOT_REPORT

    fake, ad, inst = venue
    ev = Events(ad)
    ad.submit(cmd(OrderCmdType.NEW, 95))
    ev.until(lambda e: e["client_order_id"] == 95 and e["exec_type"] == ExecType.ACCEPTED, "ack")
    rnd = random.Random(15)
    odd = [None, "", "x", -1, 0, 2**70, 1.5, [], {}, True, "1e9", "-0.1", "0.000000001"]
    base_spot = dict(SPOT_REPORT, s="BTCUSDT", c=clid(95), i=1000)
    base_fut = dict(FUT_UPDATE, o=dict(FUT_UPDATE["o"], c=clid(95)))
    docs = []
    for _ in range(400):
        spot = rnd.random() < 0.5
        d = dict(base_spot) if spot else {**base_fut, "o": dict(base_fut["o"])}
        tgt = d if spot else d["o"]
        for _ in range(rnd.randint(1, 3)):
            k = rnd.choice(list(tgt))
            r = rnd.random()
            if r < 0.4:
                tgt[k] = rnd.choice(odd)
            elif r < 0.6:
                tgt.pop(k, None)
            elif r < 0.8:
                tgt["x"] = rnd.choice(["TRADE", "NEW", "CANCELED", "EXPIRED", "AMENDMENT", "?"])
            else:
                tgt["zz" + str(rnd.random())] = 1
        docs.append(d)
    docs += [None, [], "str", 5, {"e": None}, {"e": "executionReport"}, {"e": "listenKeyExpired"}]

    async def run():
        for d in docs:
            ad._on_event(d)
    asyncio.run_coroutine_threadsafe(run(), ad._loop).result(30)
    assert ad.stats["bad_messages"] > 100
    wait(lambda: ad.stats["connects"] >= 2 and ad.up, "the reconnect the listenKeyExpired event asked for")
    ad.submit(cmd(OrderCmdType.NEW, 96))
    ev.until(lambda e: e["client_order_id"] == 96 and e["exec_type"] == ExecType.ACCEPTED, "still trading", 20)


def test_a_new_order_met_by_a_dropped_connection_is_placed_once_after_the_reconnect(venue):
    fake, ad, inst = venue
    ev = Events(ad)
    connects = ad.stats["connects"]
    fake.kick()
    ad.submit(cmd(OrderCmdType.NEW, 97))
    ev.until(lambda e: e["client_order_id"] == 97 and e["exec_type"] in (ExecType.ACCEPTED, ExecType.REJECTED),
             "an answer", 20)
    wait(lambda: ad.stats["connects"] > connects, "reconnect")
    assert [int(e["exec_type"]) for e in ev.of(97)] == [ExecType.ACCEPTED], ad.stats
    assert clid(97) in fake.orders
