"""BinanceAdapter against the product's Binance test exchange (livestack.testing.binance_exchange):
Ed25519 signing, post-only / FOK / IOC outcomes, replace (spot cancelReplace, USD-M modify), the
USD-M dead-man switch, throttling before the exchange's limit, and 429 -> 418 -> HALTED."""

from __future__ import annotations

import time

import numpy as np
import pytest

from livestack.config import Instrument
from livestack.schema import DTYPES, ExecType, OrderCmdType, OrdType, Side, TimeInForce, new, parse_fixed
from livestack.venues.binance.adapter import BinanceAdapter
from livestack.venues.binance.auth import Credentials
from livestack.venues.binance.codec import Reject

be = pytest.importorskip("livestack.testing.binance_exchange")
pytestmark = pytest.mark.timeout(120)

INSTS = {"spot": Instrument(1, "BTCUSDT", "binance", price_decimals=2, qty_decimals=8, tick=1, lot=1000),
         "usdm": Instrument(1, "BTCUSDT", "binance", price_decimals=2, qty_decimals=3, tick=10, lot=1)}
QTY = {"spot": 10000, "usdm": 2}   # 0.0001 BTC (> 5 USDT) / 0.002 BTC (> 100 USDT)


def _wait(cond, what, timeout=60.0):  # generous: a busy 2-core machine
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


class Venue:
    def __init__(self, ex, market, creds, **opts):
        u = ex.urls()[market]
        self.ex, self.market, self.inst = ex, market, INSTS[market]
        o = {"market": market, "rest_url": u["rest"], "ws_api_url": u["ws_api"], "ws_stream_url": u["streams"] + "/ws",
             "session_epoch": 99, "recv_window_ms": 1000, "request_timeout_s": 2.0, "reconcile_interval_s": 0.5}
        o.update(opts)
        self.ad = BinanceAdapter([self.inst], o, creds=creds)
        self.ad.start()
        self.got = []
        self.buf = np.zeros(64, DTYPES["EXEC"])
        _wait(lambda: self.ad.up, "connect")

    def events(self):
        n = self.ad.poll(self.buf, 0)
        self.ad.delivered(n)  # as the process loop does once the exec ring took them
        self.got.extend(self.buf[i].copy() for i in range(n))
        return self.got

    def until(self, cid, et, timeout=15.0):
        _wait(lambda: any(e["client_order_id"] == cid and e["exec_type"] == et for e in self.events()),
              f"{cid} {ExecType(et).name}; got {[(int(e['client_order_id']), int(e['exec_type'])) for e in self.got]}",
              timeout)
        return [e for e in self.got if e["client_order_id"] == cid and e["exec_type"] == et][0]

    def send(self, kind, cid, side, price, qty, tif=TimeInForce.GTC, orig=0, ord_type=OrdType.LIMIT, flags=0):
        c = new("ORDER_CMD")
        c["flags"] = flags
        c["cmd"], c["client_order_id"], c["side"], c["price"], c["qty"] = int(kind), cid, int(side), price, qty
        c["orig_client_order_id"], c["tif"], c["ord_type"], c["instrument"] = orig, int(tif), int(ord_type), 1
        self.ad.submit(c)

    def best(self):
        _wait(lambda: all(self.ex.best(self.market)), "a book")
        b, a = self.ex.best(self.market)
        return parse_fixed(b, 2), parse_fixed(a, 2)


@pytest.fixture(params=["spot", "usdm"])
def market(request):
    return request.param


def _exchange(market, **kw):
    return be.start_exchange(markets=(market,), loop=True, **kw)


def test_ed25519_keys_post_only_fok_and_replace(market, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    ex = _exchange(market, ed25519_pub=pub)
    v = None
    try:
        v = Venue(ex, market, Credentials(be.DEFAULT_ED25519_API_KEY, priv, "ed25519"))
        ex.advance(3.0)
        bid, ask = v.best()
        tick, q = v.inst.tick, QTY[market]
        v.send(OrderCmdType.NEW, 1, Side.BUY, ask + 5 * tick, q, TimeInForce.POST_ONLY)   # would take
        r = v.until(1, ExecType.REJECTED)
        assert r["reason"] == (Reject.NEW_ORDER_REJECTED if market == "spot" else Reject.GTX_ORDER_REJECT)
        v.send(OrderCmdType.NEW, 2, Side.BUY, bid - 50 * tick, q, TimeInForce.POST_ONLY)  # rests
        v.until(2, ExecType.ACCEPTED)
        v.send(OrderCmdType.REPLACE, 3, Side.BUY, bid - 60 * tick, q * 2, orig=2)
        rep = v.until(3, ExecType.REPLACED)
        assert rep["orig_client_order_id"] == 2 and rep["price"] == bid - 60 * tick
        v.send(OrderCmdType.CANCEL, 3, Side.BUY, 0, 0)
        v.until(3, ExecType.CANCELED)
        v.send(OrderCmdType.NEW, 4, Side.BUY, bid - 50 * tick, q, TimeInForce.FOK)         # cannot fill at once
        assert v.until(4, ExecType.EXPIRED if market == "spot" else ExecType.REJECTED)
        v.send(OrderCmdType.NEW, 5, Side.BUY, ask + 5 * tick, q, TimeInForce.IOC)          # takes
        v.until(5, ExecType.FILLED)
        trades = ex.trades(market)
        assert len(trades) >= 1
        if market == "spot":   # an Ed25519 key logs the session on, then subscribes the user stream
            assert v.ad.stats["session_logons"] == 1 and v.ad.stats["user_stream_subscriptions"] == 1
        assert not [e for e in v.got if e["client_order_id"] == 2 and e["exec_type"] == ExecType.CANCELED]
    finally:
        if v is not None:
            v.ad.stop()
        ex.stop()


def test_status_command_is_answered_with_order_status(market, tmp_path):
    """The core's STATUS (recovery, pending timeouts): live -> reason 0 with the order's state, a fill
    the core was not told of comes first (by trade id), unknown to Binance -> 1, ended -> 2."""
    ex = _exchange(market)
    v = None
    try:
        v = Venue(ex, market, Credentials(be.DEFAULT_API_KEY, be.DEFAULT_API_SECRET), store_dir=str(tmp_path / "j"))
        ex.advance(3.0)
        bid, ask = v.best()
        tick, q = v.inst.tick, QTY[market]
        v.send(OrderCmdType.NEW, 7, Side.BUY, bid - 50 * tick, q)
        v.until(7, ExecType.ACCEPTED)
        v.send(OrderCmdType.STATUS, 7, Side.BUY, bid - 50 * tick, q)
        st = v.until(7, ExecType.ORDER_STATUS)
        assert (st["reason"], st["cum_qty"], st["leaves_qty"], st["price"]) == (0, 0, q, bid - 50 * tick)
        assert st["venue_order_id"] == v.until(7, ExecType.ACCEPTED)["venue_order_id"] != 0
        v.send(OrderCmdType.STATUS, 8, Side.SELL, ask, q)          # never sent: Binance does not know it
        assert v.until(8, ExecType.ORDER_STATUS)["reason"] == 1
        v.send(OrderCmdType.CANCEL, 7, Side.BUY, 0, 0)
        v.until(7, ExecType.CANCELED)
        v.got.clear()
        v.send(OrderCmdType.STATUS, 7, Side.BUY, bid - 50 * tick, q)
        assert v.until(7, ExecType.ORDER_STATUS)["reason"] == 2
        # a fill this venue process never reported (a killed predecessor): reported first, then the status
        bid, ask = v.best()
        v.send(OrderCmdType.NEW, 9, Side.BUY, ask + 5 * tick, q, TimeInForce.IOC)
        v.until(9, ExecType.FILLED)
        v.ad.exec_ids = type(v.ad.exec_ids)()       # forget the trade ids
        v.ad.core[9].cum, v.ad.core[9].terminal = 0, False
        v.got.clear()
        v.send(OrderCmdType.STATUS, 9, Side.BUY, ask + 5 * tick, q)
        st = v.until(9, ExecType.ORDER_STATUS)
        kinds = [int(e["exec_type"]) for e in v.got if e["client_order_id"] == 9]
        assert kinds.index(ExecType.FILLED) < kinds.index(ExecType.ORDER_STATUS)
        assert (st["reason"], st["cum_qty"]) == (2, q)
        assert v.ad.stats["status_requests"] == 4
        if market == "usdm":   # a per-order reduce-only (ORDER_CMD flag) reaches Binance as reduceOnly=true
            from livestack.schema import RecordFlag

            # order 9 bought q: long, so a reduce-only buy is refused (-2022) and a reduce-only sell rests
            v.send(OrderCmdType.NEW, 10, Side.BUY, bid - 50 * tick, q, flags=int(RecordFlag.REDUCE_ONLY))
            assert v.until(10, ExecType.REJECTED)["reason"] == 2022
            v.send(OrderCmdType.NEW, 11, Side.SELL, ask + 50 * tick, q, flags=int(RecordFlag.REDUCE_ONLY))
            v.until(11, ExecType.ACCEPTED)
            assert [o["reduceOnly"] for o in ex.orders(market) if o["clientOrderId"].endswith("-11")] == [True]
    finally:
        if v is not None:
            v.ad.stop()
        ex.stop()


def test_usdm_positions_are_reported_after_every_fill_they_count(tmp_path):
    """``positions_request``: a STATUS burst is followed by the account's position (ORDER_STATUS
    reason 3, order id 0), which the core compares with its own. The snapshot comes over the WS
    API, the fills over the user stream: with the stream stalled, a snapshot that already counts a
    fill waits for it (the exec ring is FIFO: the core then has the fill before the position). A
    position this session did not make is reported once ``position_settle_s`` ran out."""
    ex = _exchange("usdm")
    v = None
    try:
        v = Venue(ex, "usdm", Credentials(be.DEFAULT_API_KEY, be.DEFAULT_API_SECRET),
                  positions_request=True, position_settle_s=2.0, reconcile_interval_s=0.0)
        ex.advance(3.0)
        bid, ask = v.best()
        tick, q = v.inst.tick, QTY["usdm"]
        v.send(OrderCmdType.NEW, 1, Side.BUY, ask + 5 * tick, q, TimeInForce.IOC)
        v.until(1, ExecType.FILLED)
        v.got.clear()
        v.send(OrderCmdType.STATUS, 1, Side.BUY, ask + 5 * tick, q)
        pos = v.until(0, ExecType.ORDER_STATUS)
        assert (pos["reason"], pos["instrument"], pos["qty"]) == (3, 1, q)

        ex.fault("stall", seconds=1.5)             # the user stream holds the next fill
        bid, ask = v.best()
        v.send(OrderCmdType.NEW, 2, Side.BUY, ask + 5 * tick, q, TimeInForce.IOC)
        _wait(lambda: len(ex.trades("usdm")) == 2, "the second fill at the exchange")
        v.got.clear()
        v.send(OrderCmdType.STATUS, 1, Side.BUY, ask + 5 * tick, q)   # its answer: the position now counts 2q
        pos = v.until(0, ExecType.ORDER_STATUS)
        seq = [(int(e["client_order_id"]), int(e["exec_type"])) for e in v.got]
        assert pos["qty"] == 2 * q
        assert seq.index((2, ExecType.FILLED)) < seq.index((0, ExecType.ORDER_STATUS)), seq
        assert v.ad.stats["positions_unsettled"] == 0

        ex.foreign_position("0.005")              # traded by hand on the same account
        v.got.clear()
        v.send(OrderCmdType.STATUS, 1, Side.BUY, ask + 5 * tick, q)
        pos = v.until(0, ExecType.ORDER_STATUS, timeout=30.0)
        assert pos["qty"] == 2 * q + 5             # reported as it is: the core halts on the difference
        assert v.ad.stats["positions_unsettled"] == 1 and v.ad.stats["positions_reported"] == 3
    finally:
        if v is not None:
            v.ad.stop()
        ex.stop()


def test_positions_request_is_refused_for_spot():
    from livestack.venues.binance.config import load_options

    with pytest.raises(ValueError, match="positions_request is a USD-M feature"):
        load_options({"market": "spot", "positions_request": True})
    with pytest.raises(ValueError, match="position_settle_s must be >= 0"):
        load_options({"market": "usdm", "position_settle_s": -1})


def _queued(v, cid, et):
    """The adapter made the event (it is in its queue), whether or not the process loop took it."""
    return any(int(r["client_order_id"]) == cid and int(r["exec_type"]) == et for r, _ in list(v.ad.events))


def test_a_venue_killed_before_its_events_reached_the_ring_reports_them_after_the_restart(market, tmp_path):
    """The journal records an event as reported only once the exec ring took it (``delivered``).
    Killed with a REPLACED made but not delivered, the spot venue had already journaled the old
    order as retired: its successor neither sent the REPLACE again nor knew the new order, the
    core's pending replace was answered "ended" and the instrument halted (the venue-kill stall of
    issue 15). Killed with a polled fill not yet in the ring, the fill was lost for good. A CANCEL /
    REPLACE refused by the venue itself was sent again by the successor."""
    ex = _exchange(market)
    creds = Credentials(be.DEFAULT_API_KEY, be.DEFAULT_API_SECRET)
    store = str(tmp_path / "j")
    a = b = None
    try:
        a = Venue(ex, market, creds, store_dir=store)
        ex.advance(3.0)
        bid, ask = a.best()
        tick, q = a.inst.tick, QTY[market]
        a.send(OrderCmdType.NEW, 2, Side.BUY, bid - 50 * tick, q)
        a.until(2, ExecType.ACCEPTED)
        a.send(OrderCmdType.REPLACE, 4, Side.BUY, 10**12, q, orig=2)           # refused here (price filter)
        a.until(4, ExecType.CANCEL_REJECTED)
        a.send(OrderCmdType.REPLACE, 3, Side.BUY, bid - 60 * tick, q, orig=2)  # taken at Binance ...
        a.send(OrderCmdType.NEW, 5, Side.BUY, ask + 5 * tick, q, TimeInForce.IOC)  # ... and a fill
        _wait(lambda: _queued(a, 3, ExecType.REPLACED) and _queued(a, 5, ExecType.FILLED), "REPLACED and FILLED made")
        a.ad.poll(a.buf, 0)   # the loop took them; the ring never did: killed here
        a.ad.stop()
        a = None
        b = Venue(ex, market, creds, store_dir=store)
        rep = b.until(3, ExecType.REPLACED)
        assert rep["orig_client_order_id"] == 2 and rep["price"] == bid - 60 * tick
        b.until(5, ExecType.FILLED)
        assert b.ad.stats["commands_resent_after_restart"] == 1     # the REPLACE; not the refused one
        if market == "spot":
            assert b.ad.stats["resent_replaces_found"] == 1          # asked first: it had taken
        live = [o for o in ex.orders(market) if o.get("status") in ("NEW", "PARTIALLY_FILLED")]
        assert len(live) == 1 and parse_fixed(live[0]["price"], 2) == bid - 60 * tick
        b.send(OrderCmdType.CANCEL, 3, Side.BUY, 0, 0)
        b.until(3, ExecType.CANCELED)
    finally:
        for v in (a, b):
            if v is not None:
                v.ad.stop()
        ex.stop()


def test_usdm_countdown_cancel_all_is_refreshed_while_the_harness_lives():
    ex = _exchange("usdm")
    v = None
    try:
        v = Venue(ex, "usdm", Credentials(be.DEFAULT_API_KEY, be.DEFAULT_API_SECRET),
                  countdown_cancel_ms=2000, countdown_refresh_s=0.2)
        _wait(lambda: v.ad.stats["countdown_refreshes"] >= 3, "countdown refreshes")
        v.ad.harness_alive = False          # what on_harness_lost does first: stop refreshing
        n = v.ad.stats["countdown_refreshes"]
        time.sleep(0.6)
        assert v.ad.stats["countdown_refreshes"] <= n + 1
    finally:
        if v is not None:
            v.ad.stop()
        ex.stop()


def _early_in_a_window(v, length_s: int = 10) -> None:
    """Wait until the server clock is early in a ``length_s`` window: the limiter's and the
    exchange's windows are aligned to it, and orders split across a boundary were each below the
    limit in their own window (neither throttled nor refused: the test failed about 1 run in 10)."""
    _wait(lambda: 0.2 <= (v.ad.server_ms() / 1000.0) % length_s <= 4.0, f"the start of a {length_s} s window")


def test_throttled_below_the_exchange_limit_then_429_and_418_halt(market):
    ex = _exchange(market, **{f"{market}_limits": "ORDERS:10S=5"}, ban_after=2, ban_s=30)
    v = None
    try:
        v = Venue(ex, market, Credentials(be.DEFAULT_API_KEY, be.DEFAULT_API_SECRET), stale_order_s=1.5)
        ex.advance(3.0)
        bid, _ = v.best()
        _early_in_a_window(v)
        for i in range(6):
            v.send(OrderCmdType.NEW, 10 + i, Side.BUY, bid - (50 + i) * v.inst.tick, QTY[market])
        _wait(lambda: sum(e["exec_type"] in (ExecType.ACCEPTED, ExecType.REJECTED) for e in v.events()) >= 6,
              "six answers")
        assert v.ad.limiter.stats["throttled"] >= 1, ([(int(e["client_order_id"]), int(e["exec_type"]), int(e["reason"])) for e in v.got], dict(v.ad.limiter.stats), v.ad.limiter.windows)
        assert not any(k.startswith("error.-1015") for k in v.ad.stats), "the exchange had to refuse: not throttled"
        stale = [e for e in v.got if e["exec_type"] == ExecType.REJECTED]
        assert all(e["reason"] == Reject.STALE for e in stale)
        # a limiter that does not hold back: Binance answers 429, then bans (418): HALTED
        v.ad.limiter.safety = 1e9  # (not windows.clear(): the next answer's rateLimits teach it the limit again)
        _early_in_a_window(v)
        for i in range(8):
            v.send(OrderCmdType.NEW, 100 + i, Side.BUY, bid - (80 + i) * v.inst.tick, QTY[market])
        _wait(lambda: v.ad.halted or v.ad.stats.get("error.-1015", 0) >= 1, "429")
        assert v.ad.stats.get("error.-1015", 0) + v.ad.stats.get("error.-1003", 0) >= 1
    finally:
        if v is not None:
            v.ad.stop()
        ex.stop()
