"""A seeded stand-in for the OKX and Kraken book channels: a random-walk L2 book whose messages carry
the venue's checksum, computed here independently of the decoders (``decimal.Decimal`` and the
documented string rules), for tests, fuzzing and ``bench_feed``.

``okx_session(seed, n)`` / ``kraken_session(seed, n, v2=True)`` return the websocket messages
(bytes) of one subscription: a snapshot, then ``n`` updates (and trades), exactly as the venue would
send them. Drop a message to see what a lost one does.
"""

from __future__ import annotations

import json
import random
import zlib
from decimal import Decimal


def _okx_cs(bids, asks) -> int:
    parts = []
    for i in range(25):
        if i < len(bids):
            parts += [bids[i][0], bids[i][1]]
        if i < len(asks):
            parts += [asks[i][0], asks[i][1]]
    v = zlib.crc32(":".join(parts).encode())
    return v - 2**32 if v >= 2**31 else v


def _kr_cs(asks, bids) -> int:
    def f(s):
        return s.replace(".", "").lstrip("0")
    return zlib.crc32("".join(f(p) + f(q) for p, q in asks[:10] + bids[:10]).encode())


class _Book:
    def __init__(self, rnd: random.Random, mid: int, tick: Decimal, qd: int, levels: int):
        self.r = rnd
        self.tick = tick
        self.qd = qd
        self.bids = {}
        self.asks = {}
        for i in range(1, levels + 1):
            self.bids[mid - i] = self._qty()
            self.asks[mid + i] = self._qty()

    def _qty(self) -> str:
        return str(Decimal(self.r.randint(1, 10**self.qd * 5)).scaleb(-self.qd))

    def px(self, k: int) -> str:
        return str(Decimal(k) * self.tick)

    def sorted(self):
        b = [(self.px(k), self.bids[k]) for k in sorted(self.bids, reverse=True)]
        a = [(self.px(k), self.asks[k]) for k in sorted(self.asks)]
        return b, a

    def step(self, depth: int | None = None):
        """Random changes; returns [(side, price_str, qty_str)] with qty '0...' for deletes."""
        ch = []
        for _ in range(self.r.randint(1, 6)):
            side = self.r.choice("ba")
            book = self.bids if side == "b" else self.asks
            keys = sorted(book, reverse=(side == "b"))
            if len(keys) > 2 and self.r.random() < 0.3:
                k = self.r.choice(keys[: depth or len(keys)])
                del book[k]
                ch.append((side, k, "0" if self.qd == 0 else "0." + "0" * self.qd))
            else:
                best_other = min(self.asks) if side == "b" else max(self.bids)
                lo, hi = (best_other - 30, best_other - 1) if side == "b" else (best_other + 1, best_other + 30)
                k = self.r.randint(lo, hi)
                q = self._qty()
                book[k] = q
                ch.append((side, k, q))
        return ch


def okx_session(seed: int = 1, n: int = 200, inst: str = "BTC-USDT", channel: str = "books",
                levels: int = 40, trades: bool = True) -> list[bytes]:
    r = random.Random(seed)
    bk = _Book(r, 300_000, Decimal("0.1"), 8, levels)
    seq = 1000
    ts = 1_700_000_000_000
    b, a = bk.sorted()
    out = [json.dumps({"arg": {"channel": channel, "instId": inst}, "action": "snapshot", "data": [{
        "asks": [[p, q, "0", "1"] for p, q in a], "bids": [[p, q, "0", "1"] for p, q in b],
        "ts": str(ts), "checksum": _okx_cs(b, a), "prevSeqId": -1, "seqId": seq}]}).encode()]
    for i in range(n):
        ts += r.randint(1, 50)
        ch = bk.step()
        b, a = bk.sorted()
        prev, seq = seq, seq + r.randint(1, 3)
        out.append(json.dumps({"arg": {"channel": channel, "instId": inst}, "action": "update", "data": [{
            "asks": [[bk.px(k), q, "0", "0" if set(q) <= {"0", "."} else "1"] for s, k, q in ch if s == "a"],
            "bids": [[bk.px(k), q, "0", "0" if set(q) <= {"0", "."} else "1"] for s, k, q in ch if s == "b"],
            "ts": str(ts), "checksum": _okx_cs(b, a), "prevSeqId": prev, "seqId": seq}]}).encode())
        if trades and i % 5 == 0:
            out.append(json.dumps({"arg": {"channel": "trades", "instId": inst}, "data": [{
                "instId": inst, "tradeId": str(10_000 + i), "px": b[0][0], "sz": "0.01", "side": r.choice(["buy", "sell"]),
                "ts": str(ts)}]}).encode())
    return out


def kraken_session(seed: int = 1, n: int = 200, symbol: str = "BTC/USD", depth: int = 10,
                   v2: bool = True, trades: bool = True) -> list[bytes]:
    r = random.Random(seed)
    bk = _Book(r, 452_850, Decimal("0.1"), 8, depth)
    out = []
    t = 1_700_000_000.0
    if v2:
        out.append(json.dumps({"method": "subscribe", "result": {"channel": "book", "symbol": symbol, "depth": depth,
                                                                 "snapshot": True}, "success": True}).encode())
    b, a = bk.sorted()

    def v2_levels(lv):
        return "[" + ",".join('{"price":%s,"qty":%s}' % (p, q) for p, q in lv) + "]"

    if v2:
        out.append(('{"channel":"book","type":"snapshot","data":[{"symbol":"%s","bids":%s,"asks":%s,"checksum":%d}]}'
                    % (symbol, v2_levels(b), v2_levels(a), _kr_cs(a, b))).encode())
    else:
        out.append(json.dumps([42, {"as": [[p, q, f"{t:.6f}"] for p, q in a], "bs": [[p, q, f"{t:.6f}"] for p, q in b]},
                               f"book-{depth}", symbol]).encode())
    for i in range(n):
        t += r.random()
        ch = bk.step(depth)
        # the venue keeps `depth` levels: what falls out is not announced
        for book, rev in ((bk.bids, True), (bk.asks, False)):
            for k in sorted(book, reverse=rev)[depth:]:
                del book[k]
        b, a = bk.sorted()
        cs = _kr_cs(a, b)
        asks = [(bk.px(k), q) for s, k, q in ch if s == "a"]
        bids = [(bk.px(k), q) for s, k, q in ch if s == "b"]
        if v2:
            out.append(('{"channel":"book","type":"update","data":[{"symbol":"%s","bids":%s,"asks":%s,"checksum":%d,'
                        '"timestamp":"2023-11-14T22:13:20.%06dZ"}]}' % (symbol, v2_levels(bids), v2_levels(asks), cs, i)).encode())
        else:
            parts = []
            if asks:
                parts.append({"a": [[p, q, f"{t:.6f}"] for p, q in asks]})
            if bids:
                parts.append({"b": [[p, q, f"{t:.6f}"] for p, q in bids]})
            parts[-1]["c"] = str(cs)
            out.append(json.dumps([42, *parts, f"book-{depth}", symbol]).encode())
        if trades and i % 5 == 0:
            if v2:
                out.append(('{"channel":"trade","type":"update","data":[{"symbol":"%s","side":"sell","price":%s,'
                            '"qty":0.01000000,"ord_type":"market","trade_id":%d,"timestamp":"2023-11-14T22:13:20.000001Z"}]}'
                            % (symbol, b[0][0], 100 + i)).encode())
            else:
                out.append(json.dumps([43, [[b[0][0], "0.01000000", f"{t:.6f}", "s", "m", ""]], "trade", symbol]).encode())
    return out
