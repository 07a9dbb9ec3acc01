"""OKX v5 public market data (spot and swap): ``books`` / ``books-l2-tbt`` / ``books50-l2-tbt``
order books with their CRC32 checksum and ``seqId``/``prevSeqId`` chain, and ``trades``.

Pure decoding, no I/O (the feed process is ``livestack.feeds.venue_ws``). Messages::

    {"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "snapshot" | "update",
     "data": [{"asks": [["41006.8", "0.6", "0", "1"], ...], "bids": [...], "ts": "1597026383085",
               "checksum": -855196043, "prevSeqId": -1, "seqId": 123456}]}
    {"arg": {"channel": "trades", "instId": "BTC-USDT"},
     "data": [{"instId": "BTC-USDT", "tradeId": "130639474", "px": "42219.9", "sz": "0.12060306",
               "side": "buy", "ts": "1630048897897"}]}

The book procedure (OKX "Order book checksum" / "Sequence number" documentation):

* ``snapshot``: the book is replaced; ``seqId`` is the start of the chain.
* ``update``: ``prevSeqId`` must equal the previous message's ``seqId`` (an update with no change
  repeats it: ``seqId == prevSeqId``); a size ``"0"`` deletes the level.
* checksum, after the message is applied: the best 25 bids and asks as
  ``bid1px:bid1sz:ask1px:ask1sz:bid2px:...`` (a side that runs out just stops contributing), the
  strings as sent, CRC32 as a *signed* 32-bit integer.

A mismatch or a broken chain -> ``MD_STATUS(GAP)`` and a resubscribe (the only way OKX gives a new
snapshot); updates until that snapshot are dropped (``dropped_unsynced``). Captures recorded
before OKX added ``seqId`` (2022) carry none: then only the checksum guards the book.

Records: ``update_id`` = ``seqId`` (0 when absent); ``ts_event`` = ``ts`` (ms) in ns. Trades:
``side`` = the taker's side, ``trade_id`` = ``tradeId``.
"""

from __future__ import annotations

import zlib

import msgspec

from livestack.feeds.l2book import (
    BUY, LAST, SELL, SNAP, DecimalError, L2Decoder, decimals_of, parse_fixed,
)

BOOK_CHANNELS = ("books", "books-l2-tbt", "books50-l2-tbt")
TRADE_CHANNELS = ("trades", "trades-all")
CHECKSUM_LEVELS = 25
DEFAULT_WS_URL = "wss://ws.okx.com:8443/ws/v5/public"
_MS = 1_000_000
_decode = msgspec.json.decode


def checksum_string(bids, asks, n: int = CHECKSUM_LEVELS) -> str:
    """The documented string: best ``n`` bids and asks interleaved, ``px:sz`` strings as sent.

    ``bids`` / ``asks``: ``[(price_str, size_str), ...]`` best first.
    """
    parts = []
    for i in range(n):
        if i < len(bids):
            parts.append(f"{bids[i][0]}:{bids[i][1]}")
        if i < len(asks):
            parts.append(f"{asks[i][0]}:{asks[i][1]}")
    return ":".join(parts)


def crc32_signed(s: str) -> int:
    v = zlib.crc32(s.encode())
    return v - (1 << 32) if v >= 1 << 31 else v


def book_checksum(book) -> int:
    """OKX checksum of a :class:`~livestack.feeds.l2book.StrBook`."""
    b = [(lv[2], lv[3]) for lv in book.bids.top(CHECKSUM_LEVELS)]
    a = [(lv[2], lv[3]) for lv in book.asks.top(CHECKSUM_LEVELS)]
    return crc32_signed(checksum_string(b, a))


def subscribe_message(symbols, channels=("books", "trades")) -> bytes:
    return msgspec.json.encode({"op": "subscribe",
                                "args": [{"channel": c, "instId": s} for s in symbols for c in channels]})


def unsubscribe_message(symbols, channels=("books",)) -> bytes:
    return msgspec.json.encode({"op": "unsubscribe",
                                "args": [{"channel": c, "instId": s} for s in symbols for c in channels]})


class OkxDecoder(L2Decoder):
    """Decoder of one OKX public websocket connection (any number of instruments)."""

    venue = "okx"

    def on_message(self, msg, ts: int) -> int:
        """Decode one message (bytes or str) received at ``ts`` (ns); returns records added."""
        c = self.c
        c.messages += 1
        out = self.out
        n0 = out.n
        if msg == b"pong" or msg == "pong":  # answer to the keepalive "ping"
            c.control += 1
            return 0
        try:
            m = _decode(msg)
        except (msgspec.DecodeError, UnicodeDecodeError):
            self.malformed("json", ts, msg)
            return 0
        if type(m) is not dict:
            self.malformed("json", ts, msg)
            return 0
        arg = m.get("arg")
        if "event" in m or arg is None:
            if "event" in m or m.get("op") or msg in (b"pong", "pong"):
                c.control += 1
            else:
                self.malformed("field", ts, msg)
            return 0
        try:
            ch = arg["channel"]
            sym = arg["instId"]
            data = m["data"]
            if type(data) is not list:
                raise TypeError
        except (KeyError, TypeError):
            self.malformed("field", ts, msg)
            return 0
        st = self.state(sym)
        if st is None:
            self.malformed("stream", ts, msg)
            return 0
        try:
            if ch in BOOK_CHANNELS:
                self._book(st, m.get("action"), data, ts)
            elif ch in TRADE_CHANNELS:
                self._trades(st, data, ts)
            else:
                c.ignored += 1  # a channel this feed does not use (tickers, candles ...)
                return 0
        except DecimalError:
            out.truncate(n0)
            self.malformed("decimal", ts, msg)
            if ch in BOOK_CHANNELS and st.synced:
                self.gap(st, ts)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError):
            out.truncate(n0)
            self.malformed("field", ts, msg)
            if ch in BOOK_CHANNELS and st.synced:
                self.gap(st, ts)
        k = out.n - n0
        c.records += k
        return k

    def _book(self, st, action, data, ts: int) -> None:
        c = self.c
        for d in data:
            bids = d["bids"]
            asks = d["asks"]
            tev = int(d["ts"]) * _MS
            seq = d.get("seqId")
            prev = d.get("prevSeqId")
            if seq is not None and type(seq) is not int or prev is not None and type(prev) is not int:
                raise TypeError("seqId")
            cs = d.get("checksum")
            if cs is not None and type(cs) is not int:
                raise TypeError("checksum")
            uid = seq or 0
            c.book_messages += 1
            out = self.out
            if action == "snapshot":
                self.snapshot_begin(st, ts, tev, uid)
                n = self._levels(st, st.book.bids, BUY, [(lv[0], lv[1]) for lv in bids], ts, tev, uid, SNAP)
                n += self._levels(st, st.book.asks, SELL, [(lv[0], lv[1]) for lv in asks], ts, tev, uid, SNAP)
                self.snapshot_end(st, ts, tev, uid, n)
                st.last_seq = uid
            elif action == "update":
                if not st.synced:
                    c.dropped_unsynced += 1
                    continue
                if prev is not None and prev != st.last_seq:
                    c.seq_breaks += 1
                    self.gap(st, ts, prev)
                    continue
                n0 = out.n
                self._levels(st, st.book.bids, BUY, [(lv[0], lv[1]) for lv in bids], ts, tev, uid, 0)
                self._levels(st, st.book.asks, SELL, [(lv[0], lv[1]) for lv in asks], ts, tev, uid, 0)
                if out.n > n0:
                    out.flag_last(LAST)
                st.last_seq = uid
            else:
                raise ValueError(f"action {action!r}")
            if cs is not None:
                if book_checksum(st.book) == cs:
                    c.checksum_ok += 1
                else:
                    c.checksum_failed += 1
                    self.gap(st, ts, cs)

    def _trades(self, st, data, ts: int) -> None:
        inst = st.inst
        add = self.out.add_trade
        for d in data:
            side = d["side"]
            if side not in ("buy", "sell"):
                raise ValueError("side")
            px = parse_fixed(d["px"], inst.price_decimals)
            q = parse_fixed(d["sz"], inst.qty_decimals)
            if px <= 0 or q <= 0:
                raise DecimalError("trade price/size not positive")
            add(inst.id, ts, int(d["ts"]) * _MS, px, q, int(d["tradeId"]), BUY if side == "buy" else SELL, LAST)
            self.c.trades += 1


def scan_decimals(msg, seen: dict) -> None:
    """Pre-scan for ``capture verify``: widen ``seen[instId] = [price_decimals, qty_decimals]``."""
    try:
        m = _decode(msg)
        sym = m["arg"]["instId"]
        data = m["data"]
    except Exception:
        return
    d = seen.setdefault(sym, [0, 0])
    for x in data if type(data) is list else ():
        if type(x) is not dict:
            continue
        for lv in (x.get("bids") or []) + (x.get("asks") or []):
            if type(lv) is list and len(lv) >= 2:
                d[0] = max(d[0], decimals_of(lv[0]))
                d[1] = max(d[1], decimals_of(lv[1]))
        if "px" in x:
            d[0] = max(d[0], decimals_of(x["px"]))
            d[1] = max(d[1], decimals_of(x.get("sz")))
