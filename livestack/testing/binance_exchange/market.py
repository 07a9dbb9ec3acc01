"""The replayed market of one Binance market (spot or USD-M): a capture walked by the exchange clock.

One clock drives everything the exchange shows about the market, so that what a client sees on
the market-data streams, the REST depth snapshot and its own fills agree:

* the raw capture messages (``livestack.testing.replay_server.Venue``: the venue's own bytes and
  the venue's string book, which the REST ``depth`` endpoint serves) are passed as the clock
  passes their receive time;
* the same capture decoded into MD records (``livestack.feeds.capture.decode_capture``) feeds the
  shared matching engine (``livestack.matching.MatchingEngine``), which matches our orders
  against that book with queue position, as the simulated venue and the backtest do.

Time: the capture's receive timestamps (ns) are the engine's time. ``Clock`` maps the wall clock
onto it: ``cap_now = cap_t0 + (wall - wall_t0) * speed + manual offset``; ``speed=0`` stops the
replay until a test advances it (``Clock.advance``).
"""

from __future__ import annotations

import time
from decimal import Decimal

import numpy as np

from livestack.config import BTCUSDT_SPOT, BTCUSDT_USDM, Instrument
from livestack.feeds.capture import decode_capture
from livestack.matching import MatchingEngine
from livestack.schema import DTYPES, FeedStatus, RecordKind
from livestack.testing.replay_server import Venue


class Clock:
    """Maps the wall clock onto capture time (ns)."""

    def __init__(self, speed: float = 1.0):
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.speed = float(speed)
        self.wall0 = time.monotonic_ns()
        self.offset = 0  # capture ns added by advance()

    def elapsed(self) -> int:
        """Capture nanoseconds since the start."""
        return int((time.monotonic_ns() - self.wall0) * self.speed) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += int(seconds * 1e9)


def _fmt(units: int, decimals: int, shown: int) -> str:
    """Fixed-point ``units`` (10**-decimals) as a decimal string with ``shown`` decimals."""
    d = Decimal(units).scaleb(-decimals)
    return f"{d:.{shown}f}"


class Market:
    """One symbol of one market, replayed (see the module docstring).

    Parameters
    ----------
    path : capture file (``<ns> <json>`` lines, gzip or not)
    market : "spot" | "usdm"
    clock : Clock shared by the exchange
    loop : bool
        At the end of the capture, start over (the book is rebuilt from the snapshot).
    """

    def __init__(self, path, market: str, clock: Clock, loop: bool = False):
        if market not in ("spot", "usdm"):
            raise ValueError(f"market {market!r}: expected 'spot' or 'usdm'")
        self.path = str(path)
        self.market = market
        self.clock = clock
        self.loop = loop
        base = BTCUSDT_SPOT if market == "spot" else BTCUSDT_USDM
        self.venue = Venue(path, market)
        self.symbol = self._symbol_of(self.venue) or base.symbol
        self.instrument: Instrument = base if self.symbol == base.symbol else Instrument(
            1, self.symbol, base.venue, base.price_decimals, base.qty_decimals, base.tick, base.lot)
        recs = decode_capture(path, self.instrument, market)
        self.recs = np.ascontiguousarray(recs)
        ts = self.recs["ts"].astype(np.int64)
        self.rec_times = np.maximum.accumulate(ts)
        self.msg_times = np.maximum.accumulate(np.array([m.ts for m in self.venue.msgs], dtype=np.int64))
        # the replay starts where the engine's book is valid: at the capture's first SNAPSHOT_END
        st = self.recs.view(DTYPES["MD_STATUS"])
        ends = np.nonzero((self.recs["kind"] == RecordKind.MD_STATUS) & (st["status"] == FeedStatus.SNAPSHOT_END))[0]
        self.t0 = int(self.rec_times[ends[0]]) if len(ends) else int(min(self.rec_times[0], self.msg_times[0]))
        self.rec_pos = 0
        self.msg_pos = 0
        self.loops = 0
        self.base_offset = 0  # capture ns added per loop
        self.engine = MatchingEngine([self.instrument], 0, 0, 0, 0, seed=1, exec_epoch=1, max_orders=1 << 16)
        self._out = np.zeros(4096, dtype=DTYPES["EXEC"])
        pd, qd = self.instrument.price_decimals, self.instrument.qty_decimals
        self.price_scale = 10 ** pd
        self.qty_scale = 10 ** qd
        # shown decimals in API strings: spot shows 8 for both; USD-M BTCUSDT pricePrecision 2, quantityPrecision 3
        self.price_shown = 8 if market == "spot" else 2
        self.qty_shown = 8 if market == "spot" else 3
        self.base_asset = self.symbol[:-4] if self.symbol.endswith("USDT") else self.symbol[:3]
        self.quote_asset = self.symbol[len(self.base_asset):]
        self.last_trade_px: int | None = None
        self._book, self._book_at = None, -1
        self.step(self.t0)  # the capture up to the book's start is history, not replayed

    @staticmethod
    def _symbol_of(venue: Venue) -> str | None:
        for m in venue.msgs:
            if m.stream and "@" in m.stream:
                return m.stream.split("@", 1)[0].upper()
        return None

    # -- time ---------------------------------------------------------------------------------
    def now(self) -> int:
        """The engine time (capture ns) of the exchange clock now."""
        return self.t0 + self.clock.elapsed()

    @property
    def done(self) -> bool:
        return self.msg_pos >= len(self.venue.msgs) and self.rec_pos >= len(self.recs) and not self.loop

    def step(self, now: int) -> tuple[list, int]:
        """Pass the capture up to ``now``: apply MD records to the engine, pass the raw messages
        over the venue book; returns (new raw messages [(stream, text)], engine events polled)."""
        new = []
        while True:
            rel = now - self.base_offset
            k = int(np.searchsorted(self.rec_times, rel, side="right"))
            if k > self.rec_pos:
                seg = self.recs[self.rec_pos:k]
                self.engine.on_market(seg, self.rec_times[self.rec_pos:k] + self.base_offset)
                self.rec_pos = k
            j = int(np.searchsorted(self.msg_times, rel, side="right"))
            msgs = self.venue.msgs
            for i in range(self.msg_pos, j):
                m = msgs[i]
                if m.diff is not None:
                    self.venue.pass_diff(m.diff)
                new.append((m.stream, m.text))
            self.msg_pos = max(self.msg_pos, j)
            if not (self.loop and self.msg_pos >= len(msgs) and self.rec_pos >= len(self.recs)):
                break
            # start over: the engine's book is rebuilt by the capture's own snapshot records
            last = int(max(self.rec_times[-1], self.msg_times[-1])) + self.base_offset
            self.base_offset = last + 1 - self.t0
            self.rec_pos = self.msg_pos = 0
            self.loops += 1
            v = Venue.__new__(Venue)
            v.__dict__.update(self.venue.__dict__)
            snap = __import__("orjson").loads(self.venue.snapshot_body)
            v.bids = {p: q for p, q in snap["bids"]}
            v.asks = {p: q for p, q in snap["asks"]}
            v.book_id, v.book_moved = snap["lastUpdateId"], False
            self.venue = v
        return new

    def poll_events(self, now: int) -> np.ndarray:
        """Engine events delivered by ``now`` (a copy)."""
        n = self.engine.poll(self._out, now)
        return self._out[:n].copy()

    # -- fixed point --------------------------------------------------------------------------
    def px_units(self, s: str) -> int:
        """Decimal string -> price units; ValueError if not representable."""
        d = Decimal(s) * self.price_scale
        if d != d.to_integral_value():
            raise ValueError(s)
        return int(d)

    def qty_units(self, s: str) -> int:
        d = Decimal(s) * self.qty_scale
        if d != d.to_integral_value():
            raise ValueError(s)
        return int(d)

    def px_str(self, units: int) -> str:
        return _fmt(units, self.instrument.price_decimals, self.price_shown)

    def qty_str(self, units: int) -> str:
        return _fmt(units, self.instrument.qty_decimals, self.qty_shown)

    def px_dec(self, units: int) -> Decimal:
        return Decimal(units).scaleb(-self.instrument.price_decimals)

    def qty_dec(self, units: int) -> Decimal:
        return Decimal(units).scaleb(-self.instrument.qty_decimals)

    def book(self):
        """(bids, asks) of the engine's public book in units, best first (cached until the next
        market record: our orders do not change the public book)."""
        n = self.engine.n_md
        if self._book_at != n:
            self._book = self.engine.book(self.instrument.id)
            self._book_at = n
        return self._book

    def best(self):
        bids, asks = self.book()
        return (bids[0][0] if bids else None), (asks[0][0] if asks else None)

    def depth_body(self, limit: int) -> bytes:
        return self.venue.snapshot(limit)
