"""Simulated market: a seeded stochastic order-flow model that needs no files and no network.

The model keeps one L2 book per instrument in integer ticks and lots and draws one *event* at a
time, each at an exponentially distributed interval (mean ``1 / events_per_s`` of simulated time):

* **limit arrival** (``p_limit``): a bid or an ask joins a level at a geometric distance from its
  side's best price; with some probability it improves the best price inside the spread. An
  arrival priced through the opposite side is executed as a marketable order instead.
* **cancel** (``p_cancel``): part or all of a level near the top goes away.
* **market order** (``p_market``): sweeps the opposite side from its best level, leaving trades.

A latent *fair value* follows a Gaussian random walk; the further the mid is from it, the more the
flow leans to one side (market orders buy above / sell below, limit orders improve the side that
fair value pulls toward), so the mid drifts with it and the spread reopens and refills. Each side
always keeps at least one level; levels that drift far from the top are pruned.

Every event becomes the records a venue would send for it, 64-byte slots in one numpy array per
call (dtype ``MD_OVERLAY`` below: header fields plus four generic int64 words; view rows of one
kind through ``DTYPE_BY_KIND[kind]`` for the named fields)::

    first call:   MD_STATUS(SNAPSHOT_BEGIN)  MD_LEVEL*(SNAPSHOT)  MD_STATUS(SNAPSHOT_END, LAST_IN_MSG)
    limit/cancel: MD_LEVEL(LAST_IN_MSG)                        [MD_BBO(LAST_IN_MSG) if the top moved]
    market order: MD_TRADE(LAST_IN_MSG)* MD_LEVEL* MD_LEVEL(LAST_IN_MSG)   [MD_BBO(LAST_IN_MSG)]

so a trade, a depth update and a top-of-book change are three venue messages, as on Binance
(trade stream, depth stream, bookTicker). ``ts_event`` and the header ``ts`` are the event's
simulated time; the consumer of the records (the simulated venue) restamps ``ts`` with its
market-data latency and ``seq`` with its ring sequence.

The same seed gives the same records, bit for bit (numpy PCG64 draws, integer book arithmetic).
Two implementations give the same records byte for byte: the compiled ``livestack.feeds._sim``
(used when built) and the pure-Python reference :class:`PyMarketModel`; :func:`MarketModel` picks.
``bench/bench_sim.py`` measures both paths' consumers.
"""

from __future__ import annotations

import math
import multiprocessing
import signal
import time
from dataclasses import dataclass

import numpy as np

from livestack.config import Instrument
from livestack.schema import DTYPES, HEADER, FeedStatus, RecordFlag, RecordKind, Side, spec

# One 64-byte overlay for every market-data kind: the header, then ts_event, then four int64
# words whose meaning depends on ``kind``:
#
#   kind       a (@32)     b (@40)     c (@48)             d (@56)
#   MD_LEVEL   price       qty         update_id           side (u8, rest padding)
#   MD_TRADE   price       qty         trade_id            side (u8, rest padding)
#   MD_BBO     bid_px      bid_qty     ask_px              ask_qty
#   MD_STATUS  update_id   detail      status (u8, pad)    padding
#
# Writing a small non-negative value into an int64 word stores it in the word's first byte and
# zeroes the padding (little-endian), which is exactly the u8 field plus padding of the spec.
# ``_check_overlay`` below proves the offsets against the spec at import.
MD_OVERLAY = np.dtype({
    "names": list(HEADER.names) + ["ts_event", "a", "b", "c", "d"],
    "formats": [HEADER.fields[n][0] for n in HEADER.names] + ["<i8"] * 5,
    "offsets": [HEADER.fields[n][1] for n in HEADER.names] + [HEADER.itemsize + 8 * k for k in range(5)],
    "itemsize": 64,
})

_OVERLAY_FIELDS = {
    "MD_LEVEL": {"price": "a", "qty": "b", "update_id": "c", "side": "d"},
    "MD_TRADE": {"price": "a", "qty": "b", "trade_id": "c", "side": "d"},
    "MD_BBO": {"bid_px": "a", "bid_qty": "b", "ask_px": "c", "ask_qty": "d"},
    "MD_STATUS": {"update_id": "a", "detail": "b", "status": "c"},
}


def _check_overlay() -> None:
    for name, fields in _OVERLAY_FIELDS.items():
        dt = DTYPES[name]
        if dt.itemsize != MD_OVERLAY.itemsize:
            raise AssertionError(f"{name}: {dt.itemsize} bytes, overlay is 64")
        for f, o in fields.items():
            if dt.fields[f][1] != MD_OVERLAY.fields[o][1]:
                raise AssertionError(f"{name}.{f} at {dt.fields[f][1]}, overlay {o} at {MD_OVERLAY.fields[o][1]}")


_check_overlay()

K_LEVEL = int(RecordKind.MD_LEVEL)
K_TRADE = int(RecordKind.MD_TRADE)
K_BBO = int(RecordKind.MD_BBO)
K_STATUS = int(RecordKind.MD_STATUS)
F_LAST = int(RecordFlag.LAST_IN_MSG)
F_SNAP = int(RecordFlag.SNAPSHOT)
BUY = int(Side.BUY)
SELL = int(Side.SELL)
_VERSION = {k: spec.RECORDS_BY_KIND[k].version for k in (K_LEVEL, K_TRADE, K_BBO, K_STATUS)}


def md_records(n: int) -> np.ndarray:
    """``n`` zeroed 64-byte market-data slots (dtype ``MD_OVERLAY``)."""
    return np.zeros(n, dtype=MD_OVERLAY)


def status_records(instrument: int, statuses, ts: int, update_id: int = 0, detail: int = 0) -> np.ndarray:
    """MD_STATUS records (overlay dtype), one per status in ``statuses``, the last LAST_IN_MSG."""
    out = md_records(len(statuses))
    out["kind"] = K_STATUS
    out["version"] = _VERSION[K_STATUS]
    out["instrument"] = instrument
    out["ts"] = ts
    out["ts_event"] = ts
    out["a"] = update_id
    out["b"] = detail
    out["c"] = [int(s) for s in statuses]
    out["flags"][-1] = F_LAST
    return out


def snapshot_records(instrument: int, bids, asks, ts: int, update_id: int) -> np.ndarray:
    """A snapshot: SNAPSHOT_BEGIN, one MD_LEVEL (flag SNAPSHOT) per level, SNAPSHOT_END.

    ``bids`` and ``asks`` are iterables of (price, qty) in price/qty units. SNAPSHOT_END carries
    LAST_IN_MSG: the book is consistent after it.
    """
    bids = list(bids)
    asks = list(asks)
    n = len(bids) + len(asks)
    out = md_records(n + 2)
    out["instrument"] = instrument
    out["ts"] = ts
    out["ts_event"] = ts
    out["kind"][:] = K_LEVEL
    out["version"][:] = _VERSION[K_LEVEL]
    out["flags"][1:n + 1] = F_SNAP
    if n:
        out["a"][1:n + 1] = [p for p, _ in bids] + [p for p, _ in asks]
        out["b"][1:n + 1] = [q for _, q in bids] + [q for _, q in asks]
        out["c"][1:n + 1] = update_id
        out["d"][1:n + 1] = [BUY] * len(bids) + [SELL] * len(asks)
    for i, st in ((0, FeedStatus.SNAPSHOT_BEGIN), (n + 1, FeedStatus.SNAPSHOT_END)):
        out["kind"][i] = K_STATUS
        out["version"][i] = _VERSION[K_STATUS]
        out["a"][i] = update_id
        out["c"][i] = int(st)
    out["flags"][n + 1] = F_SNAP | F_LAST
    return out


@dataclass(frozen=True)
class ModelParams:
    """Parameters of the order-flow model (prices in ticks, sizes in lots of the instrument).

    Defaults give a liquid book: spread mostly 1-2 ticks, ~``levels`` levels a side, a trade in
    about one event out of ten.
    """

    events_per_s: float = 10_000.0  #: mean event rate in simulated time
    start_price: int = 0  #: initial mid in price units; 0 -> 10_000 ticks
    levels: int = 20  #: target depth in levels per side (arrivals and pruning keep it near)
    mean_qty: float = 8.0  #: mean lots of a limit arrival (geometric)
    p_limit: float = 0.55  #: probability an event is a limit arrival
    p_cancel: float = 0.35  #: ... a cancel (the rest are market orders)
    p_improve: float = 0.25  #: probability a limit arrival improves the best price (spread > 1)
    depth_decay: float = 0.15  #: geometric parameter of the distance of arrivals/cancels from the top
    mean_market_qty: float = 6.0  #: mean lots of a market order (geometric)
    fair_sigma: float = 0.04  #: fair-value random walk, ticks per event (std dev)
    lean: float = 0.08  #: side bias per tick of (fair - mid), capped at +-0.35
    bbo: bool = True  #: emit MD_BBO when the top of book changes

    @classmethod
    def from_options(cls, options: dict | None) -> "ModelParams":
        options = dict(options or {})
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(options) - known
        if unknown:
            raise ValueError(f"simulated market: unknown option(s) {sorted(unknown)}; known: {sorted(known)}")
        p = cls(**options)
        if p.events_per_s <= 0:
            raise ValueError("simulated market: events_per_s must be positive")
        if not (0 < p.p_limit and 0 <= p.p_cancel and p.p_limit + p.p_cancel < 1):
            raise ValueError("simulated market: need 0 < p_limit, 0 <= p_cancel, p_limit + p_cancel < 1")
        if p.levels < 2 or p.mean_qty < 1 or p.mean_market_qty < 1:
            raise ValueError("simulated market: levels >= 2, mean_qty >= 1, mean_market_qty >= 1")
        if not (0 < p.depth_decay < 1):
            raise ValueError("simulated market: depth_decay in (0, 1)")
        return p


class PyMarketModel:
    """Seeded order-flow model of one instrument, pure Python (the reference implementation of
    the compiled ``livestack.feeds._sim.ModelCore``; both give the same records, byte for byte).

    Parameters
    ----------
    instrument : Instrument
    seed : int
        The same seed gives the same record stream.
    params : ModelParams or dict, optional
    t0_ns : int
        Simulated time of the first event (ns since the epoch).
    """

    _BLOCK = 8192  # random draws per refill

    def __init__(self, instrument: Instrument, seed: int = 1, params=None, t0_ns: int = 0):
        self.instrument = instrument
        self.params = params if isinstance(params, ModelParams) else ModelParams.from_options(params)
        p = self.params
        self._rng = np.random.Generator(np.random.PCG64([int(seed) & 0xFFFFFFFF, instrument.id]))
        self._u: list[float] = []
        self._g: list[float] = []
        self._e: list[float] = []
        self.t_ns = int(t0_ns)
        self._next_t = -1
        self._mean_gap_ns = 1e9 / p.events_per_s
        self.tick = instrument.tick
        self.lot = instrument.lot
        mid = (p.start_price // self.tick) if p.start_price else 10_000
        self.bids: dict[int, int] = {}  # price in ticks -> qty in lots
        self.asks: dict[int, int] = {}
        self.best_bid = mid - 1
        self.best_ask = mid + 1
        self.fair = float(mid)
        self.update_id = 0
        self.trade_id = 0
        self.events = 0
        self.snapshot_sent = False
        self._log_keep = math.log(1.0 - p.depth_decay)
        self._log_qty = math.log(1.0 - 1.0 / p.mean_qty)
        self._log_mqty = math.log(1.0 - 1.0 / p.mean_market_qty)
        # initial book: `levels` levels a side, decreasing slowly in size away from the top
        for i in range(p.levels):
            self.bids[mid - 1 - i] = self._qty()
            self.asks[mid + 1 + i] = self._qty()
        self._last_top = self.top()

    # --- random draws (blocks of numpy draws, consumed as Python floats) -------------------
    def _uni(self) -> float:
        if not self._u:
            self._u = self._rng.random(self._BLOCK).tolist()
        return self._u.pop()

    def _gauss(self) -> float:
        if not self._g:
            self._g = self._rng.standard_normal(self._BLOCK).tolist()
        return self._g.pop()

    def _expo(self) -> float:
        if not self._e:
            self._e = self._rng.standard_exponential(self._BLOCK).tolist()
        return self._e.pop()

    def _geom(self, log_keep: float) -> int:
        """Geometric on {0, 1, 2, ...} with P(k) = (1 - q) q^k, log_keep = log q."""
        u = self._uni()
        return int(math.log(1.0 - u) / log_keep) if u > 0.0 else 0

    def _qty(self) -> int:
        return 1 + self._geom(self._log_qty)

    # --- state ----------------------------------------------------------------------------
    def top(self) -> tuple[int, int, int, int]:
        """(bid_px, bid_qty, ask_px, ask_qty) in ticks and lots."""
        return self.best_bid, self.bids[self.best_bid], self.best_ask, self.asks[self.best_ask]

    def book(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(bids best first, asks best first) as (price, qty) in price/qty units."""
        t, lot = self.tick, self.lot
        return ([(p * t, q * lot) for p, q in sorted(self.bids.items(), reverse=True)],
                [(p * t, q * lot) for p, q in sorted(self.asks.items())])

    def snapshot(self, ts: int | None = None) -> np.ndarray:
        """The current book as a snapshot (overlay records), stamped ``ts`` (default: model time)."""
        bids, asks = self.book()
        self.snapshot_sent = True
        return snapshot_records(self.instrument.id, bids, asks, self.t_ns if ts is None else ts, self.update_id)

    # --- generation -----------------------------------------------------------------------
    def generate(self, n_events: int, until_ns: int | None = None) -> np.ndarray:
        """Draw up to ``n_events`` events (stopping before the first one later than ``until_ns``)
        and return their records (overlay dtype); the first call starts with a snapshot."""
        cols: list[tuple] = []  # (kind, flags, ts_event, a, b, c, d)
        head = None
        if not self.snapshot_sent:
            head = self.snapshot()
        p = self.params
        t_ns = self.t_ns
        gap = self._mean_gap_ns
        pm = 1.0 - p.p_limit - p.p_cancel
        pl = pm + p.p_limit
        n = 0
        while n < n_events:
            if self._next_t < 0:  # the next event's time is drawn once, whatever the chunking
                self._next_t = t_ns + int(self._expo() * gap) + 1
            nt = self._next_t
            if until_ns is not None and nt > until_ns:
                break
            self._next_t = -1
            t_ns = nt
            self.t_ns = t_ns
            n += 1
            self.fair += self._gauss() * p.fair_sigma
            lean = (self.fair - 0.5 * (self.best_bid + self.best_ask)) * p.lean
            lean = 0.35 if lean > 0.35 else (-0.35 if lean < -0.35 else lean)
            u = self._uni()
            if u < pm:
                buy = self._uni() < 0.5 + lean
                self._market(cols, t_ns, buy, 1 + self._geom(self._log_mqty))
            elif u < pl:
                self._limit(cols, t_ns, self._uni() < 0.5 + lean * 0.5, lean)
            else:
                self._cancel(cols, t_ns, self._uni() < 0.5)
            if self.events % 256 == 0:
                self._prune(cols, t_ns)
            self.events += 1
            if p.bbo:
                top = self.top()
                if top != self._last_top:
                    self._last_top = top
                    cols.append((K_BBO, F_LAST, t_ns, top[0] * self.tick, top[1] * self.lot,
                                 top[2] * self.tick, top[3] * self.lot))
        out = self._build(cols)
        if head is not None:
            out = np.concatenate([head, out])
        return out

    def _build(self, cols: list[tuple]) -> np.ndarray:
        out = md_records(len(cols))
        if not cols:
            return out
        kind, flags, ts, a, b, c, d = zip(*cols)
        out["kind"] = kind
        out["version"] = 1
        out["flags"] = flags
        out["instrument"] = self.instrument.id
        out["ts"] = ts
        out["ts_event"] = ts
        out["a"] = a
        out["b"] = b
        out["c"] = c
        out["d"] = d
        return out

    def _level(self, cols, t_ns, side_buy: bool, px: int, qty: int, last: bool) -> None:
        cols.append((K_LEVEL, F_LAST if last else 0, t_ns, px * self.tick, qty * self.lot,
                     self.update_id, BUY if side_buy else SELL))

    def _limit(self, cols, t_ns, buy: bool, lean: float) -> None:
        p = self.params
        improve = p.p_improve + (lean if buy else -lean)
        spread = self.best_ask - self.best_bid
        qty = self._qty()
        if buy:
            if spread > 1 and self._uni() < improve:
                px = self.best_bid + 1 + (self._geom(self._log_keep) % (spread - 1))
            elif len(self.bids) < p.levels // 2:  # thin side: refill behind the last level
                px = min(self.bids) - 1 - self._geom(self._log_keep)
            else:
                px = self.best_bid - self._geom(self._log_keep)
            if px >= self.best_ask:  # marketable: execute instead of resting
                self._market(cols, t_ns, True, qty)
                return
            book = self.bids
        else:
            if spread > 1 and self._uni() < improve:
                px = self.best_ask - 1 - (self._geom(self._log_keep) % (spread - 1))
            elif len(self.asks) < p.levels // 2:
                px = max(self.asks) + 1 + self._geom(self._log_keep)
            else:
                px = self.best_ask + self._geom(self._log_keep)
            if px <= self.best_bid:
                self._market(cols, t_ns, False, qty)
                return
            book = self.asks
        newq = book.get(px, 0) + qty
        book[px] = newq
        if buy and px > self.best_bid:
            self.best_bid = px
        elif not buy and px < self.best_ask:
            self.best_ask = px
        self.update_id += 1
        self._level(cols, t_ns, buy, px, newq, True)

    def _cancel(self, cols, t_ns, buy: bool) -> None:
        book = self.bids if buy else self.asks
        if len(book) <= 1:
            return  # keep the last level: a side is never empty
        k = self._geom(self._log_keep)
        step = -1 if buy else 1
        px = self.best_bid if buy else self.best_ask
        # the k-th existing level from the top (bounded scan over ticks)
        found = px
        seen = 0
        for _ in range(4 * self.params.levels + k):
            if px in book:
                found = px
                if seen == k:
                    break
                seen += 1
            px += step
        q = book[found]
        cut = 1 + int(self._uni() * q)  # uniform 1..q lots: the whole level with prob 1/q
        newq = q - cut if cut < q else 0
        self.update_id += 1
        if newq:
            book[found] = newq
        else:
            del book[found]
            if buy and found == self.best_bid:
                self.best_bid = max(book)
            elif not buy and found == self.best_ask:
                self.best_ask = min(book)
        self._level(cols, t_ns, buy, found, newq, True)

    def _market(self, cols, t_ns, buy: bool, qty: int) -> None:
        """A market order of ``qty`` lots; never empties the opposite side."""
        book = self.asks if buy else self.bids
        side = BUY if buy else SELL
        changed = []
        px = self.best_ask if buy else self.best_bid
        step = 1 if buy else -1
        total = sum(book.values())
        qty = min(qty, total - 1)
        scan = 0
        while qty > 0 and scan < 100_000:
            lvl = book.get(px)
            if lvl:
                take = lvl if lvl < qty else qty
                qty -= take
                self.trade_id += 1
                cols.append((K_TRADE, F_LAST, t_ns, px * self.tick, take * self.lot, self.trade_id, side))
                if take == lvl:
                    del book[px]
                    changed.append((px, 0))
                else:
                    book[px] = lvl - take
                    changed.append((px, lvl - take))
                    break
            px += step
            scan += 1
        if not changed:
            return
        if buy:
            self.best_ask = min(book)
        else:
            self.best_bid = max(book)
        self.update_id += 1
        last = len(changed) - 1
        for i, (lpx, lq) in enumerate(changed):
            self._level(cols, t_ns, not buy, lpx, lq, i == last)

    def _prune(self, cols, t_ns) -> None:
        """Delete levels more than 3 x ``levels`` ticks from their side's best price."""
        far = 3 * self.params.levels
        dead_b = sorted((px for px in self.bids if self.best_bid - px > far), reverse=True)
        dead_a = sorted(px for px in self.asks if px - self.best_ask > far)
        if not dead_b and not dead_a:
            return
        self.update_id += 1
        for px in dead_b:
            del self.bids[px]
        for px in dead_a:
            del self.asks[px]
        dead = [(True, px) for px in dead_b] + [(False, px) for px in dead_a]
        for i, (buy, px) in enumerate(dead):
            self._level(cols, t_ns, buy, px, 0, i == len(dead) - 1)


class CyMarketModel:
    """The compiled model (``livestack.feeds._sim.ModelCore``) behind the same interface as
    :class:`PyMarketModel`: ``generate``, ``snapshot``, ``book``, ``top``, ``events``, ``t_ns``."""

    def __init__(self, instrument: Instrument, seed: int = 1, params=None, t0_ns: int = 0):
        from livestack.feeds import _sim

        self.instrument = instrument
        self.params = params if isinstance(params, ModelParams) else ModelParams.from_options(params)
        self._core = _sim.ModelCore(instrument, seed, self.params, int(t0_ns), MD_OVERLAY)

    events = property(lambda self: self._core.events)
    t_ns = property(lambda self: self._core.t_ns)
    update_id = property(lambda self: self._core.update_id)
    fair = property(lambda self: self._core.fair)

    @property
    def snapshot_sent(self) -> bool:
        return self._core.snapshot_sent

    def top(self) -> tuple[int, int, int, int]:
        return self._core.top()

    def book(self):
        return self._core.book()

    def snapshot(self, ts: int | None = None) -> np.ndarray:
        bids, asks = self._core.book()
        self._core.snapshot_sent = True
        return snapshot_records(self.instrument.id, bids, asks, self.t_ns if ts is None else ts, self.update_id)

    def generate(self, n_events: int, until_ns: int | None = None) -> np.ndarray:
        head = None if self._core.snapshot_sent else self.snapshot()
        out = self._core.generate(n_events, until_ns)
        return out if head is None else np.concatenate([head, out])


def compiled_available() -> bool:
    try:
        from livestack.feeds import _sim  # noqa: F401
    except ImportError:
        return False
    return True


def MarketModel(instrument: Instrument, seed: int = 1, params=None, t0_ns: int = 0, impl: str = "auto"):
    """The order-flow model of one instrument: compiled when the extension is built
    (``impl="auto"`` or ``"cy"``), else (or with ``impl="py"``) the pure-Python reference.

    Parameters
    ----------
    instrument : Instrument
        Prices in ticks of ``instrument.tick``, sizes in lots of ``instrument.lot``.
    seed : int
        The same seed gives the same records (whichever implementation).
    params : ModelParams or dict, optional
        See :class:`ModelParams`.
    t0_ns : int
        Simulated time before the first event.
    """
    if impl not in ("auto", "cy", "py"):
        raise ValueError(f"simulated market: impl {impl!r}: expected auto, cy or py")
    if impl == "py" or (impl == "auto" and not compiled_available()):
        return PyMarketModel(instrument, seed, params, t0_ns)
    return CyMarketModel(instrument, seed, params, t0_ns)


class MultiModel:
    """One :class:`MarketModel` per instrument, merged in event-time order (seed + instrument id)."""

    def __init__(self, instruments, seed: int = 1, params=None, t0_ns: int = 0):
        self.models = [MarketModel(i, seed, params, t0_ns) for i in instruments]

    def generate(self, n_events: int, until_ns: int | None = None) -> np.ndarray:
        if len(self.models) == 1:
            return self.models[0].generate(n_events, until_ns)
        # every instrument draws up to one common horizon (about n_events in all), so that the
        # merged stream stays in time order across calls; then a stable merge by ts
        if until_ns is None:
            rate = sum(m.params.events_per_s for m in self.models)
            until_ns = max(m.t_ns for m in self.models) + int(n_events / rate * 1e9) + 1
        parts = [m.generate(1 << 40, until_ns) for m in self.models]
        out = np.concatenate(parts)
        return out[np.argsort(out["ts_event"], kind="stable")]


# ----------------------------------------------------------------------------------------------
# Feed process: the simulated market alone, published into an md ring (the simulated venue
# publishes the same model itself; use this one for a market without a venue).
# ----------------------------------------------------------------------------------------------

def run_process(ring_name: str, instruments: list[Instrument], options: dict, stop) -> None:
    """Feed process entry (docs/CONTRACTS.md): publish the simulated market into ``ring_name``.

    Options: ``seed`` (1), ``pace`` (True: simulated time follows the wall clock at
    ``events_per_s``; False: as fast as the ring takes it), ``model`` (dict of
    :class:`ModelParams`), ``events_per_s`` (overrides ``model.events_per_s``), ``seconds``
    (run time limit, None = until stopped). Ring full: the overflow is counted and an MD_STATUS
    GAP is sent, then a fresh snapshot.
    """
    from livestack.ipc import Backoff, Ring

    term = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: term.__setitem__("flag", True))
    ring = Ring.attach(ring_name, slot_size=64, timeout=10.0, role="producer")
    params = dict(options.get("model") or {})
    if options.get("events_per_s") is not None:
        params["events_per_s"] = options["events_per_s"]
    pace = bool(options.get("pace", True))
    t0 = time.time_ns()
    mm = MultiModel(instruments, int(options.get("seed", 1)), params, t0)
    pub = MdPublisher(ring, snapshot=lambda ts: np.concatenate([m.snapshot(ts) for m in mm.models]),
                      instruments=[i.id for i in instruments])
    backoff = Backoff("backoff")
    deadline = None if options.get("seconds") is None else time.monotonic() + float(options["seconds"])
    mono0 = time.monotonic_ns()
    from livestack.telemetry import procmetrics  # its counters in /metrics (a mirror thread)

    metrics = procmetrics.start(ring_name, "feed.sim", procmetrics.feed_updater(
        lambda: {"records": pub.published, "overflow_records": pub.overflow, "gaps": pub.gaps}), {"feed": "sim"})
    try:
        while not term["flag"] and not (stop is not None and stop.is_set()):
            if deadline is not None and time.monotonic() > deadline:
                break
            if pace:
                recs = mm.generate(4096, t0 + time.monotonic_ns() - mono0)
            elif ring.free() >= 8192:  # as fast as the consumer takes it: never overflow on purpose
                recs = mm.generate(1024)
            else:
                recs = None
            if recs is not None and len(recs):
                pub.publish(recs)
                backoff.reset()
            else:
                pub.publish(None)
                backoff.idle()
    finally:
        if metrics is not None:
            metrics.stop()
        ring.close()


class MdPublisher:
    """Writes market-data records into an md ring, stamping ``seq``; on a full ring counts the
    overflow, then (once there is room) sends MD_STATUS(GAP) per instrument and a fresh snapshot.

    ``seq`` is stamped on every record offered, so records dropped on overflow leave a hole in
    the sequence as well as the GAP status.
    """

    def __init__(self, ring, snapshot, instruments):
        self.ring = ring
        self.snapshot = snapshot  # callable(ts) -> overlay records of a full snapshot
        self.instruments = list(instruments)
        self.seq = 0
        self.published = 0
        self.overflow = 0  # records dropped because the ring was full
        self.gaps = 0  # GAP episodes
        self._gap_pending = False
        self._gap_expected = 0
        self._last_ts = 0

    def publish(self, recs) -> int:
        """Offer ``recs`` (64-byte records, any MD dtype; may be None to only retry a pending
        resync). Returns how many were written."""
        ring = self.ring
        written = 0
        if self._gap_pending and not self._resync():
            if recs is not None and len(recs):
                self._stamp(recs)
                self.overflow += len(recs)
            return 0
        if recs is None or not len(recs):
            return 0
        self._stamp(recs)
        k = ring.write_batch(recs)
        written += k
        self.published += k
        if k < len(recs):
            self.overflow += len(recs) - k
            self.gaps += 1
            self._gap_pending = True
            self._gap_expected = int(recs["seq"][k])
            self._resync()
        return written

    def _stamp(self, recs) -> None:
        n = len(recs)
        recs["seq"] = np.arange(self.seq + 1, self.seq + 1 + n, dtype=np.uint64)
        self.seq += n
        self._last_ts = int(recs["ts"][-1])

    def _resync(self) -> bool:
        """Write GAP statuses and a snapshot all-or-nothing; True when done."""
        ts = self._last_ts
        gap = np.concatenate([status_records(i, [FeedStatus.GAP], ts, detail=self._gap_expected)
                              for i in self.instruments])
        batch = np.concatenate([gap, self.snapshot(ts)])
        if self.ring.free() < len(batch):
            return False
        self._stamp(batch)
        if self.ring.write_batch(batch, True) != len(batch):  # cannot happen: single producer
            raise RuntimeError("md ring: resync write failed with room available")
        self.published += len(batch)
        self._gap_pending = False
        return True


def main(argv=None) -> int:  # pragma: no cover - manual tool
    """Print a few seconds of the model's statistics (``python -m livestack.feeds.sim``)."""
    inst = Instrument(1, "SIM")
    m = MarketModel(inst, 1)
    t = time.perf_counter()
    recs = m.generate(200_000)
    dt = time.perf_counter() - t
    print(f"{m.events} events, {len(recs)} records in {dt:.2f}s ({m.events / dt:,.0f} events/s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    multiprocessing.freeze_support()
    raise SystemExit(main())
