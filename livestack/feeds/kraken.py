"""Kraken spot public market data: the ``book`` channel with its CRC32 checksum (websocket v2, and
v1 for captures recorded before v2) and ``trade``.

Pure decoding, no I/O (the feed process is ``livestack.feeds.venue_ws``). Messages:

v2 (``wss://ws.kraken.com/v2``)::

    {"channel": "book", "type": "snapshot" | "update", "data": [{"symbol": "BTC/USD",
      "bids": [{"price": 45283.5, "qty": 0.10000000}], "asks": [...], "checksum": 3310070434,
      "timestamp": "2023-10-06T17:35:55.440295Z"}]}
    {"channel": "trade", "type": "update", "data": [{"symbol": "BTC/USD", "side": "buy",
      "price": 45283.5, "qty": 0.001, "ord_type": "market", "trade_id": 1, "timestamp": "..."}]}

v1 (``wss://ws.kraken.com``)::

    [chanID, {"as": [["price", "volume", "time"], ...], "bs": [...]}, "book-1000", "XBT/USD"]
    [chanID, {"a": [...]}, {"b": [...], "c": "974947235"}, "book-1000", "XBT/USD"]   (or one dict)
    [chanID, [["price", "volume", "time", "b"|"s", "l"|"m", "misc"], ...], "trade", "XBT/USD"]

The book procedure (Kraken "Book checksum" guides, v1 and v2): apply every level of a message in
order (qty 0 deletes; v1 levels may carry a 4th ``"r"`` republish flag), then truncate each side to
the subscribed depth (no delete is sent for levels that fall out of scope: the feed emits one), then
checksum the best 10 asks (low to high) followed by the best 10 bids (high to low): for each level
the price and the quantity *as sent* with the ``.`` removed and leading zeros stripped, concatenated;
CRC32, unsigned. v2 sends price/qty as JSON numbers: they are read as their text, never as floats,
so the checksum and the fixed-point values are exact. v2 checksums snapshots too; v1 only updates.

Kraken has no sequence number: a mismatch is the only sign of a lost message -> ``MD_STATUS(GAP)``
and a resubscribe; updates until the new snapshot are dropped (``dropped_unsynced``).

Records: ``update_id`` 0 (none on the wire); ``ts_event``: v2 ``timestamp``, v1 the newest level time.
Trades: ``side`` = the taker's; ``trade_id`` = v2 ``trade_id``, v1 none (0).
"""

from __future__ import annotations

import json
import zlib
from datetime import datetime

from livestack.feeds.l2book import (
    BUY, LAST, SELL, SNAP, DecimalError, L2Decoder, decimals_of, parse_fixed,
)

CHECKSUM_LEVELS = 10
DEFAULT_DEPTH = 10
DEFAULT_WS_URL = "wss://ws.kraken.com/v2"


def _fmt(s: str) -> str:
    return s.replace(".", "").lstrip("0")


def checksum_string(asks, bids, n: int = CHECKSUM_LEVELS) -> str:
    """The documented string: best ``n`` asks then best ``n`` bids, ``price+qty`` with ``.`` and
    leading zeros removed. ``asks`` / ``bids``: ``[(price_str, qty_str), ...]`` best first."""
    return "".join(_fmt(p) + _fmt(q) for p, q in list(asks[:n]) + list(bids[:n]))


def crc32(s: str) -> int:
    return zlib.crc32(s.encode())


def book_checksum(book) -> int:
    a = [(lv[2], lv[3]) for lv in book.asks.top(CHECKSUM_LEVELS)]
    b = [(lv[2], lv[3]) for lv in book.bids.top(CHECKSUM_LEVELS)]
    return crc32(checksum_string(a, b))


def _text_number(s: str) -> str:
    return s


_loads = json.JSONDecoder(parse_float=_text_number, parse_int=_text_number).decode


def _ns(ts) -> int:
    """``"2023-10-06T17:35:55.440295Z"`` -> ns since the epoch; v1 ``"1618678133.365913"`` too."""
    if "T" in ts:
        body, _, frac = ts.rstrip("Z").partition(".")
        dt = datetime.fromisoformat(body + "+00:00")
        return int(dt.timestamp()) * 1_000_000_000 + int((frac[:9] or "0").ljust(9, "0"))
    whole, _, frac = ts.partition(".")
    return int(whole) * 1_000_000_000 + int((frac[:9] or "0").ljust(9, "0"))


def subscribe_messages(symbols, depth: int = DEFAULT_DEPTH, v2: bool = True) -> list[bytes]:
    if v2:
        return [json.dumps({"method": "subscribe", "params": {"channel": "book", "symbol": list(symbols),
                                                              "depth": depth}}).encode(),
                json.dumps({"method": "subscribe", "params": {"channel": "trade", "symbol": list(symbols)}}).encode()]
    return [json.dumps({"event": "subscribe", "pair": list(symbols), "subscription": {"name": "book", "depth": depth}}).encode(),
            json.dumps({"event": "subscribe", "pair": list(symbols), "subscription": {"name": "trade"}}).encode()]


def resubscribe_messages(symbols, depth: int = DEFAULT_DEPTH, v2: bool = True) -> list[bytes]:
    """Unsubscribe then subscribe the book: Kraken answers with a fresh snapshot."""
    if v2:
        return [json.dumps({"method": "unsubscribe", "params": {"channel": "book", "symbol": list(symbols),
                                                                "depth": depth}}).encode(),
                subscribe_messages(symbols, depth, True)[0]]
    return [json.dumps({"event": "unsubscribe", "pair": list(symbols), "subscription": {"name": "book", "depth": depth}}).encode(),
            subscribe_messages(symbols, depth, False)[0]]


class KrakenDecoder(L2Decoder):
    """Decoder of one Kraken spot websocket connection, v2 or v1 (told apart per message).

    ``depth``: the subscribed book depth (v2 default 10); v1 takes it from the channel name
    (``book-1000``), v2 from the subscribe acknowledgement when one is seen.
    """

    venue = "kraken"

    def __init__(self, *a, depth: int = DEFAULT_DEPTH, **kw):
        super().__init__(*a, **kw)
        self.depth = depth

    def on_message(self, msg, ts: int) -> int:
        c = self.c
        c.messages += 1
        out = self.out
        n0 = out.n
        try:
            m = _loads(msg.decode() if type(msg) is not str else msg)
        except (ValueError, UnicodeDecodeError, RecursionError):
            self.malformed("json", ts, msg)
            return 0
        st = None
        book = False
        try:
            if type(m) is dict:
                ch = m.get("channel")
                if ch == "book" or ch == "trade":
                    data = m["data"]
                    if type(data) is not list:
                        raise TypeError("data")
                    for d in data:
                        st = self.state(d["symbol"])
                        if st is None:
                            self.malformed("stream", ts, msg)
                            continue
                        if ch == "book":
                            book = True
                            self._book_v2(st, m["type"], d, ts)
                        else:
                            self._trade_v2(st, d, ts)
                    book = False
                elif "event" in m or "method" in m or ch in ("heartbeat", "status", "instrument"):
                    c.control += 1
                    res = m.get("result")
                    if m.get("method") == "subscribe" and type(res) is dict and res.get("channel") == "book":
                        st = self.state(res.get("symbol"))
                        if st is not None and res.get("depth"):
                            st.depth = int(res["depth"])
                elif ch is not None:
                    c.ignored += 1
                else:
                    self.malformed("field", ts, msg)
            elif type(m) is list and len(m) >= 4 and type(m[-1]) is str and type(m[-2]) is str:
                name, pair = m[-2], m[-1]
                st = self.state(pair)
                if st is None:
                    self.malformed("stream", ts, msg)
                elif name.startswith("book-"):
                    book = True
                    if not st.depth:
                        st.depth = int(name[5:])
                    self._book_v1(st, m[1:-2], ts)
                elif name == "trade":
                    self._trades_v1(st, m[1], ts)
                else:
                    c.ignored += 1
            else:
                self.malformed("field", ts, msg)
        except DecimalError:
            out.truncate(n0)
            self.malformed("decimal", ts, msg)
            if book and st is not None and st.synced:
                self.gap(st, ts)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError):
            out.truncate(n0)
            self.malformed("field", ts, msg)
            if book and st is not None and st.synced:
                self.gap(st, ts)
        k = out.n - n0
        c.records += k
        return k

    # -- book -------------------------------------------------------------------------------
    def _check(self, st, expected: int, ts: int) -> None:
        if book_checksum(st.book) == expected:
            self.c.checksum_ok += 1
        else:
            self.c.checksum_failed += 1
            self.gap(st, ts, expected)

    def _book_v2(self, st, typ, d, ts: int) -> None:
        c = self.c
        c.book_messages += 1
        tev = _ns(d["timestamp"]) if "timestamp" in d else ts
        bids = [(lv["price"], lv["qty"]) for lv in d["bids"]]
        asks = [(lv["price"], lv["qty"]) for lv in d["asks"]]
        cs = int(d["checksum"]) if "checksum" in d else None
        if not st.depth:
            st.depth = self.depth
        if typ == "snapshot":
            self.snapshot_begin(st, ts, tev, 0)
            n = self._levels(st, st.book.bids, BUY, bids, ts, tev, 0, SNAP)
            n += self._levels(st, st.book.asks, SELL, asks, ts, tev, 0, SNAP)
            self.snapshot_end(st, ts, tev, 0, n)
        elif typ == "update":
            if not st.synced:
                c.dropped_unsynced += 1
                return
            out = self.out
            n0 = out.n
            self._levels(st, st.book.bids, BUY, bids, ts, tev, 0, 0)
            self._levels(st, st.book.asks, SELL, asks, ts, tev, 0, 0)
            self.truncate(st, ts, tev, 0)
            if out.n > n0:
                out.flag_last(LAST)
        else:
            raise ValueError(f"type {typ!r}")
        if cs is not None:
            self._check(st, cs, ts)

    def _book_v1(self, st, parts, ts: int) -> None:
        c = self.c
        c.book_messages += 1
        first = parts[0]
        if type(first) is not dict:
            raise TypeError("book part")
        if "as" in first or "bs" in first:
            asks = [(lv[0], lv[1]) for lv in first.get("as", ())]
            bids = [(lv[0], lv[1]) for lv in first.get("bs", ())]
            tev = max([_ns(lv[2]) for lv in first.get("as", ()) + first.get("bs", ())] or [ts])
            self.snapshot_begin(st, ts, tev, 0)
            n = self._levels(st, st.book.bids, BUY, bids, ts, tev, 0, SNAP)
            n += self._levels(st, st.book.asks, SELL, asks, ts, tev, 0, SNAP)
            self.snapshot_end(st, ts, tev, 0, n)
            return
        if not st.synced:
            c.dropped_unsynced += 1
            return
        out = self.out
        n0 = out.n
        cs = None
        for p in parts:
            if type(p) is not dict:
                raise TypeError("book part")
            for key, side, sd in (("a", st.book.asks, SELL), ("b", st.book.bids, BUY)):
                lvls = p.get(key)
                if lvls is None:
                    continue
                tev = max([_ns(lv[2]) for lv in lvls] or [ts])
                self._levels(st, side, sd, [(lv[0], lv[1]) for lv in lvls], ts, tev, 0, 0)
            if "c" in p:
                cs = int(p["c"])
        self.truncate(st, ts, ts, 0)
        if out.n > n0:
            out.flag_last(LAST)
        if cs is not None:
            self._check(st, cs, ts)

    # -- trades -----------------------------------------------------------------------------
    def _trade(self, st, ps, qs, side_buy: bool, tid: int, ts: int, tev: int) -> None:
        inst = st.inst
        px = parse_fixed(ps, inst.price_decimals)
        q = parse_fixed(qs, inst.qty_decimals)
        if px <= 0 or q <= 0:
            raise DecimalError("trade price/qty not positive")
        self.out.add_trade(inst.id, ts, tev, px, q, tid, BUY if side_buy else SELL, LAST)
        self.c.trades += 1

    def _trade_v2(self, st, d, ts: int) -> None:
        side = d["side"]
        if side not in ("buy", "sell"):
            raise ValueError("side")
        self._trade(st, d["price"], d["qty"], side == "buy", int(d.get("trade_id", 0)), ts,
                    _ns(d["timestamp"]) if "timestamp" in d else ts)

    def _trades_v1(self, st, rows, ts: int) -> None:
        if type(rows) is not list:
            raise TypeError("trade rows")
        for r in rows:
            if r[3] not in ("b", "s"):
                raise ValueError("side")
            self._trade(st, r[0], r[1], r[3] == "b", 0, ts, _ns(r[2]))


def scan_decimals(msg, seen: dict) -> None:
    """Pre-scan for ``capture verify``: widen ``seen[symbol] = [price_decimals, qty_decimals]``."""
    try:
        m = _loads(msg.decode() if type(msg) is not str else msg)
    except Exception:
        return
    rows = []
    sym = None
    if type(m) is dict and type(m.get("data")) is list:
        for d in m["data"]:
            if type(d) is not dict or "symbol" not in d:
                continue
            s = seen.setdefault(d["symbol"], [0, 0])
            for lv in (d.get("bids") or []) + (d.get("asks") or []) + [d]:
                if type(lv) is dict and "price" in lv:
                    s[0] = max(s[0], decimals_of(lv["price"]))
                    s[1] = max(s[1], decimals_of(lv.get("qty")))
        return
    if type(m) is list and len(m) >= 4 and type(m[-1]) is str:
        sym = m[-1]
        for p in m[1:-2]:
            if type(p) is dict:
                for v in p.values():
                    if type(v) is list:
                        rows += v
            elif type(p) is list:
                rows += p
    if sym is None:
        return
    s = seen.setdefault(sym, [0, 0])
    for r in rows:
        if type(r) is list and len(r) >= 2:
            s[0] = max(s[0], decimals_of(r[0]))
            s[1] = max(s[1], decimals_of(r[1]))
