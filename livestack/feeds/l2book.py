"""Shared pieces of the checksummed L2 feeds (OKX, Kraken): exact decimals, a book that keeps the
strings as sent, counters, and the per-instrument sync state.

Both venues publish a CRC32 of the top of their book computed over the price/size *strings* as
they sent them, so :class:`StrBook` keeps, for every level, the fixed-point price and quantity (what
goes into the MD records) *and* the two strings (what goes into the checksum). Levels are kept
sorted best first with :mod:`bisect` on a plain list of keys (bids keyed by ``-price``), so the top
N for a checksum is a slice, not a sort.

Record conventions are the Binance feed's (``livestack.feeds.binance``): one ``MD_LEVEL`` per level
changed (``qty`` 0 deletes, the last one of a message flagged ``LAST_IN_MSG``); a snapshot is
``MD_STATUS(SNAPSHOT_BEGIN)``, levels flagged ``SNAPSHOT``, ``MD_STATUS(SNAPSHOT_END, detail=levels)``;
a checksum mismatch or sequence break is ``MD_STATUS(GAP)`` and the instrument waits for a fresh
snapshot (the feed process resubscribes: :meth:`L2Decoder.take_resyncs`).
"""

from __future__ import annotations

import bisect
import collections
import re

from livestack.config import Instrument
from livestack.feeds._binance import MdBuffer
from livestack.schema import FeedStatus, RecordFlag, Side

LAST = int(RecordFlag.LAST_IN_MSG)
SNAP = int(RecordFlag.SNAPSHOT)
BUY = int(Side.BUY)
SELL = int(Side.SELL)
GAP = int(FeedStatus.GAP)
_DEC = re.compile(r"\A([0-9]+)(?:\.([0-9]+))?\Z")


class DecimalError(ValueError):
    """A price/quantity string that is not an exact non-negative decimal at the instrument's scale."""


def parse_fixed(s, decimals: int) -> int:
    """``"61800.30"`` at 2 decimals -> ``6180030``, exactly; raises :class:`DecimalError` otherwise.

    Digits beyond ``decimals`` are accepted only when they are zeros (``"1.500"`` at 2 is 150).
    """
    m = _DEC.match(s) if type(s) is str else None
    if m is None:
        raise DecimalError(f"not a decimal string: {s!r}")
    whole, frac = m.group(1), m.group(2) or ""
    if len(frac) > decimals:
        if frac[decimals:].strip("0"):
            raise DecimalError(f"{s!r} has more than {decimals} decimals")
        frac = frac[:decimals]
    v = int(whole + frac.ljust(decimals, "0"))
    if v >= 1 << 63:
        raise DecimalError(f"{s!r} overflows int64 at {decimals} decimals")
    return v


def decimals_of(s) -> int:
    """Number of decimals written in a decimal string (0 for an integer string); -1 if not one."""
    m = _DEC.match(s) if type(s) is str else None
    if m is None:
        return -1
    return len(m.group(2) or "")


#: Counter names of the OKX / Kraken decoders (a superset of what ``capture verify`` prints).
L2_COUNTER_NAMES = (
    "messages", "records", "control", "ignored", "book_messages", "trades", "snapshots",
    "checksum_ok", "checksum_failed", "seq_breaks", "gaps", "resyncs", "dropped_unsynced",
    "malformed_json", "malformed_field", "malformed_decimal", "malformed_stream",
    "connects", "reconnects", "disconnects", "overflows", "overflow_records",
)
L2_MALFORMED = ("json", "field", "decimal", "stream")


class L2Counters:
    """Plain int counters named by ``L2_COUNTER_NAMES``."""

    __slots__ = L2_COUNTER_NAMES

    def __init__(self):
        for n in L2_COUNTER_NAMES:
            setattr(self, n, 0)

    def add(self, name: str, k: int = 1) -> None:
        setattr(self, name, getattr(self, name) + k)

    @property
    def malformed(self) -> int:
        return sum(getattr(self, "malformed_" + r) for r in L2_MALFORMED)

    def as_dict(self) -> dict[str, int]:
        return {n: getattr(self, n) for n in L2_COUNTER_NAMES}

    def __repr__(self):
        return f"L2Counters({ {k: v for k, v in self.as_dict().items() if v} })"


class BookSide:
    """One side: ``key -> (price, qty, price_str, qty_str)`` plus the keys sorted best first."""

    __slots__ = ("sign", "keys", "levels")

    def __init__(self, bid: bool):
        self.sign = -1 if bid else 1
        self.keys: list[int] = []
        self.levels: dict[int, tuple] = {}

    def clear(self) -> None:
        self.keys.clear()
        self.levels.clear()

    def set(self, price: int, qty: int, ps: str, qs: str) -> None:
        k = price * self.sign
        lv = self.levels
        if qty == 0:
            if lv.pop(k, None) is not None:
                keys = self.keys
                del keys[bisect.bisect_left(keys, k)]
            return
        if k not in lv:
            bisect.insort(self.keys, k)
        lv[k] = (price, qty, ps, qs)

    def top(self, n: int) -> list[tuple]:
        lv = self.levels
        return [lv[k] for k in self.keys[:n]]

    def truncate(self, depth: int) -> list[int]:
        """Drop levels beyond ``depth``; returns the prices dropped."""
        keys = self.keys
        if len(keys) <= depth:
            return []
        gone = keys[depth:]
        del keys[depth:]
        lv = self.levels
        return [lv.pop(k)[0] for k in gone]

    def __len__(self):
        return len(self.keys)


class StrBook:
    """An L2 book of one instrument that keeps the strings as sent (for venue checksums)."""

    __slots__ = ("bids", "asks")

    def __init__(self):
        self.bids = BookSide(True)
        self.asks = BookSide(False)

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def best(self):
        """``(bid_px, bid_qty, ask_px, ask_qty)`` in fixed point, 0 where a side is empty."""
        b = self.bids.top(1)
        a = self.asks.top(1)
        return (b[0][0] if b else 0, b[0][1] if b else 0, a[0][0] if a else 0, a[0][1] if a else 0)


class InstState:
    """Sync state of one instrument: its book, whether it is valid, the last sequence number."""

    __slots__ = ("inst", "book", "synced", "last_seq", "depth", "resync_wanted")

    def __init__(self, inst: Instrument, depth: int = 0):
        self.inst = inst
        self.book = StrBook()
        self.synced = False
        self.last_seq = 0
        self.depth = depth
        self.resync_wanted = False


class L2Decoder:
    """Base of the OKX and Kraken decoders: instruments by venue symbol, records into ``out``.

    Parameters
    ----------
    instruments : list of Instrument
        ``symbol`` is the venue's own (OKX ``"BTC-USDT-SWAP"``, Kraken ``"BTC/USD"``).
    out : MdBuffer, optional
    counters : L2Counters, optional
    auto_instruments : dict, optional
        ``{symbol: (price_decimals, qty_decimals)}`` for symbols not in ``instruments`` (``capture
        verify`` builds it with a pre-scan); ids are given from ``auto_first_id`` up.
    """

    venue = ""

    def __init__(self, instruments=(), out: MdBuffer | None = None, counters: L2Counters | None = None,
                 auto_instruments: dict | None = None, auto_first_id: int = 1, samples: int = 16):
        self.out = out if out is not None else MdBuffer()
        self.c = counters if counters is not None else L2Counters()
        self.states: dict[str, InstState] = {}
        for inst in instruments:
            if inst.symbol in self.states:
                raise ValueError(f"instrument {inst.symbol} given twice")
            self.states[inst.symbol] = InstState(inst)
        self._auto = dict(auto_instruments or {})
        self._next_id = max([auto_first_id] + [i.id + 1 for i in instruments])
        self.malformed_samples: collections.deque = collections.deque(maxlen=samples)

    # -- instruments ------------------------------------------------------------------------
    def state(self, symbol) -> InstState | None:
        st = self.states.get(symbol)
        if st is None and symbol in self._auto:
            pd, qd = self._auto[symbol]
            st = self.states[symbol] = InstState(Instrument(self._next_id, symbol, self.venue, pd, qd))
            self._next_id += 1
        return st

    def malformed(self, reason: str, ts: int, msg) -> None:
        self.c.add("malformed_" + reason)
        if isinstance(msg, str):
            msg = msg.encode()
        self.malformed_samples.append((reason, ts, bytes(msg[:200])))

    # -- book primitives --------------------------------------------------------------------
    def _levels(self, st: InstState, side: BookSide, sd: int, levels, ts: int, tev: int, uid: int,
                flags: int) -> int:
        """Apply ``[(price_str, qty_str), ...]`` to ``side`` emitting MD_LEVELs; raises DecimalError."""
        inst = st.inst
        pd, qd, iid = inst.price_decimals, inst.qty_decimals, inst.id
        add = self.out.add_level
        for ps, qs in levels:
            px = parse_fixed(ps, pd)
            q = parse_fixed(qs, qd)
            if px <= 0:
                raise DecimalError(f"price {ps!r} not positive")
            side.set(px, q, ps, qs)
            add(iid, ts, tev, px, q, uid, sd, flags)
        return len(levels)

    def snapshot_begin(self, st: InstState, ts: int, tev: int, uid: int) -> int:
        self.out.add_status(st.inst.id, ts, tev, int(FeedStatus.SNAPSHOT_BEGIN), uid, 0, SNAP)
        st.book.clear()
        return self.out.n

    def snapshot_end(self, st: InstState, ts: int, tev: int, uid: int, n: int) -> None:
        self.out.add_status(st.inst.id, ts, tev, int(FeedStatus.SNAPSHOT_END), uid, n, SNAP | LAST)
        st.synced = True
        st.resync_wanted = False
        self.c.snapshots += 1

    def truncate(self, st: InstState, ts: int, tev: int, uid: int) -> None:
        """Cut both sides to the subscribed depth (Kraken), emitting deletes for what fell out."""
        if st.depth <= 0:
            return
        iid, add = st.inst.id, self.out.add_level
        for side, sd in ((st.book.bids, BUY), (st.book.asks, SELL)):
            for px in side.truncate(st.depth):
                add(iid, ts, tev, px, 0, uid, sd, 0)

    def gap(self, st: InstState, ts: int, detail: int = 0) -> None:
        """The book is no longer exact: ``MD_STATUS(GAP)``, wait for a snapshot, ask for a resync."""
        self.out.add_status(st.inst.id, ts, ts, GAP, st.last_seq, detail, LAST)
        self.c.gaps += 1
        st.synced = False
        st.resync_wanted = True

    def take_resyncs(self) -> list[str]:
        """Symbols whose book needs a fresh snapshot (the feed resubscribes them); clears the wish."""
        out = []
        for sym, st in self.states.items():
            if st.resync_wanted:
                st.resync_wanted = False
                out.append(sym)
                self.c.resyncs += 1
        return out

    def status_all(self, ts: int, status: int, detail: int = 0) -> int:
        n0 = self.out.n
        for st in self.states.values():
            self.out.add_status(st.inst.id, ts, ts, status, st.last_seq, detail, LAST)
        return self.out.n - n0

    def reset_all(self, ts: int, status: int = 0, detail: int = 0) -> int:
        n0 = self.out.n
        for st in self.states.values():
            if status:
                self.out.add_status(st.inst.id, ts, ts, status, st.last_seq, detail, LAST)
            st.synced = False
            st.book.clear()
        return self.out.n - n0
