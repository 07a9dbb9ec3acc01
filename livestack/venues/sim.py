"""Simulated exchange venue: matches the stack's orders against the market the strategy sees.

The market is a stream of MD records -- the seeded order-flow model of ``livestack.feeds.sim``
(default) or a Binance capture decoded by ``livestack.feeds.capture.decode_capture`` -- and the
same records are both published to the harness (``md.<feed>``) and applied here to a public L2
book. Our orders are matched against that book; they are not shown in the public feed (the
strategy sees them through EXEC events), and the public flow does not react to them.

Matching rules
--------------
* **Aggressive** (a buy priced at or above the best ask, a sell at or below the best bid, or a
  MARKET order): fills against the displayed levels from the best, each at the level's price, as
  far as the limit allows. Liquidity we take is remembered per level (``taken``) so two orders do
  not take the same displayed quantity; the memory shrinks as the level's public quantity shrinks.
  The remainder rests (LIMIT GTC), or is canceled (IOC, MARKET). A POST_ONLY order that would
  cross is rejected.
* **Resting, queue position**: an order joins behind the displayed quantity at its price
  (``ahead``). A public trade at that price first consumes ``ahead``, then fills our orders in time
  priority (price-time: among ours, earlier first). A public decrease of the level that is not
  explained by trades there is a cancel: it shrinks ``ahead`` proportionally (the canceled
  quantity is spread evenly over the queue), and ``ahead`` never exceeds the displayed quantity.
  A public trade *through* our price (a sell printing below our bid) fills the order completely;
  a public level arriving on the other side at or through our price (an ask at or below our bid)
  fills us against it at our price.
* **Replace** keeps the queue position when only the quantity goes down, else re-queues at the
  back. The order keeps its venue_order_id; REPLACED carries the new client_order_id and the old
  one in ``orig_client_order_id``.

Time is simulated and deterministic. A command is processed at ``arrival = cmd.ts +
order_latency_ns + U(0, order_jitter_ns)`` against the book as it is at that time (market records
with ``ts_event`` <= arrival applied first); its EXEC records carry ``ts_event`` = the time they
happened and header ``ts`` = ``ts_event + response_latency_ns + U(0, response_jitter_ns)``, and
``poll(out, now)`` hands out those with ``ts <= now``. Published market data are restamped
``ts = ts_event + md_latency_ns + U(0, md_jitter_ns)``. Both stay monotonic; the jitter draws
come from a generator seeded by ``seed``.

Reject reasons (``EXEC.reason``) reuse ``DenyReason`` codes where one fits
(UNKNOWN_INSTRUMENT, BAD_PRICE, BAD_QTY, DUPLICATE, UNKNOWN_ORDER); venue-only reasons are
``REASON_*`` >= 100 below.

Process entry: :func:`run_process` (docs/CONTRACTS.md) -- one process publishes the market data
into ``md_ring`` and runs :mod:`livestack.venues.process` over the order and exec rings.
"""

from __future__ import annotations

import collections
import time

import numpy as np

from livestack.config import Instrument
from livestack.feeds import sim as fsim
from livestack.schema import (DTYPES, DenyReason, ExecType, FeedStatus, OrdType, OrderCmdType,
                              Side, TimeInForce)
from livestack.venues.base import VenueAdapter

# venue-only reject reasons
REASON_POST_ONLY_WOULD_CROSS = 100
REASON_BAD_SIDE = 101
REASON_BAD_TYPE = 102  # unknown ord_type / tif / cmd
REASON_QTY_BELOW_FILLED = 103  # replace to a quantity not above what is already filled

BUY = int(Side.BUY)
SELL = int(Side.SELL)
_ACCEPTED = int(ExecType.ACCEPTED)
_REJECTED = int(ExecType.REJECTED)
_PARTIAL = int(ExecType.PARTIALLY_FILLED)
_FILLED = int(ExecType.FILLED)
_CANCELED = int(ExecType.CANCELED)
_CANCEL_REJECTED = int(ExecType.CANCEL_REJECTED)
_REPLACED = int(ExecType.REPLACED)
_GTC, _IOC, _POST = int(TimeInForce.GTC), int(TimeInForce.IOC), int(TimeInForce.POST_ONLY)
_LIMIT, _MARKET = int(OrdType.LIMIT), int(OrdType.MARKET)
_NEW, _CANCEL, _REPLACE = int(OrderCmdType.NEW), int(OrderCmdType.CANCEL), int(OrderCmdType.REPLACE)
_SNAP_BEGIN = int(FeedStatus.SNAPSHOT_BEGIN)

#: EXEC without its padding: the fields an event tuple fills, in order.
_EXEC_FIELDS = ("kind", "version", "flags", "instrument", "seq", "ts", "ts_event", "client_order_id",
                "orig_client_order_id", "venue_order_id", "exec_id", "price", "qty", "last_px",
                "last_qty", "cum_qty", "leaves_qty", "exec_type", "side", "reason")
EXEC_OVERLAY = np.dtype({
    "names": list(_EXEC_FIELDS),
    "formats": [DTYPES["EXEC"].fields[f][0] for f in _EXEC_FIELDS],
    "offsets": [DTYPES["EXEC"].fields[f][1] for f in _EXEC_FIELDS],
    "itemsize": DTYPES["EXEC"].itemsize,
})
_EXEC_KIND = 5

#: Options of the simulated venue and their defaults (see :func:`run_process`).
DEFAULTS = {
    "market": "model",            # "model" (seeded order flow), "capture" (Binance replay), "none"
    "seed": 1,                    # model and latency-jitter seed
    "model": None,                # dict of livestack.feeds.sim.ModelParams fields
    "events_per_s": None,         # model event rate, events/s of simulated time (overrides model.events_per_s; default 10k)
    "pace": True,                 # True: simulated time = wall clock; False: as fast as the md ring takes it
    "capture_path": None,         # market="capture": path of the Binance capture (.gz)
    "capture_market": "usdm",     # market="capture": "usdm" or "spot" (decode_capture's market)
    "replay_speed": 1.0,          # market="capture", pace=True: 1.0 = recorded pace, 2.0 = twice as fast
    "replay_loop": False,         # market="capture": start over (with a fresh snapshot) at the end
    "order_latency_ns": 50_000,   # stack -> venue, fixed part
    "order_jitter_ns": 10_000,    # stack -> venue, uniform jitter 0..this
    "response_latency_ns": None,  # venue -> stack (EXEC), None = order_latency_ns
    "response_jitter_ns": None,   # None = order_jitter_ns
    "md_latency_ns": 20_000,      # venue -> stack market data, fixed part
    "md_jitter_ns": 5_000,        # market data jitter
    "md_chunk": 512,              # model events drawn per service call (max)
    "md_lead": 8192,              # pace=False: draw more only while the md ring holds <= this many unread
                                  # records (lower: commands matched closer to the harness's market time;
                                  # higher: more throughput)
    "start_ns": None,             # simulated time of the start (pace=False only); None = wall clock now
}


class _Order:
    __slots__ = ("coid", "voi", "inst", "side", "price", "qty", "cum", "ahead", "tif", "ord_type")

    def __init__(self, coid, voi, inst, side, price, qty, tif, ord_type):
        self.coid = coid
        self.voi = voi
        self.inst = inst
        self.side = side
        self.price = price
        self.qty = qty
        self.cum = 0
        self.ahead = 0
        self.tif = tif
        self.ord_type = ord_type


class _Book:
    """Public L2 book of one instrument (price/qty units) plus our resting orders on it."""

    __slots__ = ("inst", "bids", "asks", "ours_bid", "ours_ask", "best_ours_bid", "best_ours_ask",
                 "traded", "taken")

    def __init__(self, inst: Instrument):
        self.inst = inst
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.ours_bid: dict[int, list[_Order]] = {}  # price -> our resting bids, time priority
        self.ours_ask: dict[int, list[_Order]] = {}
        self.best_ours_bid = None
        self.best_ours_ask = None
        self.traded: dict[tuple[int, int], int] = {}  # (side, px) -> public qty traded since the level's last update
        self.taken: dict[tuple[int, int], int] = {}  # (side, px) -> displayed qty we took

    def refresh_best(self) -> None:
        self.best_ours_bid = max(self.ours_bid) if self.ours_bid else None
        self.best_ours_ask = min(self.ours_ask) if self.ours_ask else None

    def best_bid(self):
        return max(self.bids) if self.bids else None

    def best_ask(self):
        return min(self.asks) if self.asks else None


class _Cmd:
    __slots__ = ("arrival", "cmd", "inst", "coid", "orig", "price", "qty", "side", "tif", "ord_type")


class SimExchange(VenueAdapter):
    state_lost_on_restart = True

    """The simulated exchange (see the module docstring).

    Its book and our orders live in this process: a restarted venue process starts empty
    (``state_lost_on_restart``), and the core ends the orders the old one had (VENUE_RESET).

    Parameters
    ----------
    instruments : list[Instrument]
    options : dict
        See ``DEFAULTS``. With ``market="none"`` there is no market source: feed the book with
        :meth:`on_market` (tests, or a caller that owns the market).

    Driving it
    ----------
    ``submit(cmds)`` queues commands; ``on_market(recs)`` applies market records (processing
    queued commands whose arrival comes first); ``advance(now)`` processes commands due by
    ``now``; ``poll(out, now)`` = ``advance(now)`` then the EXEC records due by ``now``.
    With a market source, ``service(now)`` draws the market up to ``now`` and applies it;
    ``take_md(now)`` returns the records to publish.
    """

    name = "sim"

    def __init__(self, instruments: list[Instrument], options: dict | None = None):
        opts = dict(DEFAULTS)
        unknown = set(options or {}) - set(DEFAULTS) - _PROCESS_OPTIONS
        if unknown:
            raise ValueError(f"sim venue: unknown option(s) {sorted(unknown)}; known: {sorted(set(DEFAULTS) | _PROCESS_OPTIONS)}")
        opts.update({k: v for k, v in (options or {}).items()})
        self.options = opts
        self.instruments = {i.id: i for i in instruments}
        self.books = {i.id: _Book(i) for i in instruments}
        self.orders: dict[int, _Order] = {}  # live orders by client_order_id
        self.pending: collections.deque[_Cmd] = collections.deque()
        self.out: collections.deque[tuple] = collections.deque()  # EXEC tuples, ts-ordered
        self.market_ts = 0  # ts_event of the last market record applied
        self._last_arrival = 0
        self._last_deliver = 0
        self._last_md_ts = 0
        self._voi = 0
        self._exec_id = 0
        self._jit = np.random.Generator(np.random.PCG64([int(opts["seed"]) & 0xFFFFFFFF, 0x5EED]))
        self._jit_buf: list[float] = []
        self._md_rng = np.random.Generator(np.random.PCG64([int(opts["seed"]) & 0xFFFFFFFF, 0x3D]))
        self.order_lat = int(opts["order_latency_ns"])
        self.order_jit = int(opts["order_jitter_ns"])
        self.resp_lat = int(opts["response_latency_ns"] if opts["response_latency_ns"] is not None else self.order_lat)
        self.resp_jit = int(opts["response_jitter_ns"] if opts["response_jitter_ns"] is not None else self.order_jit)
        self.md_lat = int(opts["md_latency_ns"])
        self.md_jit = int(opts["md_jitter_ns"])
        if min(self.order_lat, self.order_jit, self.resp_lat, self.resp_jit, self.md_lat, self.md_jit) < 0:
            raise ValueError("sim venue: latencies and jitters must be >= 0")
        self.pace = bool(opts["pace"])
        self.source = None
        self._t0 = time.time_ns()
        if opts["start_ns"] is not None and not self.pace:
            self._t0 = int(opts["start_ns"])
        self._mono0 = time.monotonic_ns()
        self._md_out: list[np.ndarray] = []
        self.stats = collections.Counter()
        self._make_source(instruments)

    # --- market source --------------------------------------------------------------------
    def _make_source(self, instruments) -> None:
        kind = self.options["market"]
        if kind == "none":
            return
        if kind == "model":
            params = dict(self.options["model"] or {})
            if self.options["events_per_s"] is not None:
                params["events_per_s"] = self.options["events_per_s"]
            self.source = fsim.MultiModel(instruments, int(self.options["seed"]), params, self._t0)
        elif kind == "capture":
            if len(instruments) != 1:
                raise ValueError("sim venue: capture replay takes exactly one instrument")
            if not self.options["capture_path"]:
                raise ValueError("sim venue: market='capture' needs capture_path")
            self.source = CaptureSource(self.options["capture_path"], instruments[0],
                                        self.options["capture_market"], self._t0,
                                        float(self.options["replay_speed"]), bool(self.options["replay_loop"]))
        else:
            raise ValueError(f"sim venue: market {kind!r}: expected 'model', 'capture' or 'none'")

    def now_ns(self) -> int:
        """The venue's clock: the wall clock when paced, else the market's simulated time."""
        if self.pace or self.source is None:
            return self._t0 + time.monotonic_ns() - self._mono0
        if getattr(self.source, "done", False):  # replay over: everything queued is due
            return max(self.market_ts, self._last_arrival, self._last_deliver)
        return max(self.market_ts, self._t0)

    def service(self, now_ns: int, room: int | None = None, unread: int | None = None) -> int:
        """Draw the market up to ``now_ns`` (paced) or ``md_chunk`` events (not paced) and apply
        it; returns the records drawn.

        Not paced, the market runs only as far ahead of its consumer as ``md_lead`` allows: it
        draws when the md ring holds at most ``md_lead`` unread records (``unread``) and has room
        for the chunk (``room``, free slots). The lead is simulated time the harness has not seen
        yet; a command it sends is matched no earlier than the market time the venue has reached.
        """
        if self.source is None:
            return 0
        chunk = int(self.options["md_chunk"])
        if self.pace:
            recs = self.source.generate(chunk, now_ns)
        else:
            if room is not None and room < 8 * chunk:
                return 0
            if unread is not None and unread > int(self.options["md_lead"]):
                return 0
            recs = self.source.generate(chunk)
        if not len(recs):
            return 0
        self.on_market(recs)
        self._md_out.append(self._stamp_md(recs))
        return len(recs)

    def take_md(self, now_ns: int | None = None) -> np.ndarray | None:
        """Market records applied so far and not yet handed out (already restamped with the md
        latency); when paced only those whose ``ts`` <= ``now_ns`` (the rest wait their turn)."""
        if not self._md_out:
            return None
        recs = self._md_out[0] if len(self._md_out) == 1 else np.concatenate(self._md_out)
        self._md_out = []
        if now_ns is not None and self.pace:
            k = int(np.searchsorted(recs["ts"], now_ns, side="right"))
            if k < len(recs):
                self._md_out = [recs[k:]]
                recs = recs[:k]
        return recs if len(recs) else None

    def _stamp_md(self, recs: np.ndarray) -> np.ndarray:
        """Header ``ts`` = ``ts_event`` + md latency + jitter, kept monotonic."""
        n = len(recs)
        ts = recs["ts_event"] + self.md_lat
        if self.md_jit:
            ts = ts + (self._md_rng.random(n) * (self.md_jit + 1)).astype(np.int64)
        ts = np.maximum.accumulate(np.maximum(ts, self._last_md_ts))
        recs["ts"] = ts
        self._last_md_ts = int(ts[-1])
        return recs

    def snapshot(self, ts: int) -> np.ndarray:
        """The public book of every instrument as snapshot records (overlay dtype), stamped ``ts``."""
        parts = []
        for iid, b in self.books.items():
            parts.append(fsim.snapshot_records(iid, sorted(b.bids.items(), reverse=True),
                                               sorted(b.asks.items()), ts, 0))
        return np.concatenate(parts)

    # --- VenueAdapter ---------------------------------------------------------------------
    def start(self) -> None:
        """Nothing to connect: the exchange is in this process."""

    def stop(self) -> None:
        """Nothing to disconnect; resting orders are simply forgotten with the process."""

    def submit(self, cmds: np.ndarray) -> None:
        """Queue ORDER_CMD records; each is processed at ``ts + order latency + jitter``."""
        if not len(cmds):
            return
        ts = cmds["ts"].tolist()
        cmd = cmds["cmd"].tolist()
        inst = cmds["instrument"].tolist()
        coid = cmds["client_order_id"].tolist()
        orig = cmds["orig_client_order_id"].tolist()
        price = cmds["price"].tolist()
        qty = cmds["qty"].tolist()
        side = cmds["side"].tolist()
        tif = cmds["tif"].tolist()
        otype = cmds["ord_type"].tolist()
        for i in range(len(ts)):
            c = _Cmd()
            arr = ts[i] + self.order_lat + (int(self._uniform() * (self.order_jit + 1)) if self.order_jit else 0)
            if arr < self._last_arrival:
                arr = self._last_arrival  # one connection: commands arrive in the order sent
            self._last_arrival = arr
            c.arrival = arr
            c.cmd, c.inst, c.coid, c.orig = cmd[i], inst[i], coid[i], orig[i]
            c.price, c.qty, c.side, c.tif, c.ord_type = price[i], qty[i], side[i], tif[i], otype[i]
            self.pending.append(c)

    def poll(self, out: np.ndarray, now_ns: int) -> int:
        """Process commands due by ``now_ns``; copy EXEC records with ``ts <= now_ns`` into ``out``."""
        self.advance(now_ns)
        q = self.out
        if not q:
            return 0
        cap = len(out)
        rows = []
        while q and q[0][5] <= now_ns and len(rows) < cap:
            rows.append(q.popleft())
        n = len(rows)
        if not n:
            return 0
        out.view(EXEC_OVERLAY)[:n] = np.array(rows, dtype=EXEC_OVERLAY)
        return n

    def on_harness_lost(self) -> None:
        """Cancel-on-disconnect: every resting order of ours is canceled now."""
        now = max(self.market_ts, self._last_arrival)
        self.pending.clear()
        for o in list(self.orders.values()):
            self._remove(o)
            self._emit(o, _CANCELED, now, 0, 0)
            self.stats["cod_canceled"] += 1

    # --- time -----------------------------------------------------------------------------
    def _uniform(self) -> float:
        if not self._jit_buf:
            self._jit_buf = self._jit.random(1024).tolist()
        return self._jit_buf.pop()

    def advance(self, now_ns: int) -> None:
        """Process queued commands whose arrival is <= ``now_ns``."""
        p = self.pending
        while p and p[0].arrival <= now_ns:
            self._process(p.popleft())

    # --- market data ----------------------------------------------------------------------
    def on_market(self, recs: np.ndarray) -> None:
        """Apply market records (any 64-byte MD dtype, ts_event order) to the public book and our
        queues; commands that arrive before a record are processed first."""
        if not len(recs):
            return
        v = recs.view(fsim.MD_OVERLAY)
        kinds = v["kind"].tolist()
        tse = v["ts_event"].tolist()
        insts = v["instrument"].tolist()
        A = v["a"].tolist()
        B = v["b"].tolist()
        C = v["c"].tolist()
        D = v["d"].tolist()
        books = self.books
        pending = self.pending
        K_LEVEL, K_TRADE, K_STATUS = fsim.K_LEVEL, fsim.K_TRADE, fsim.K_STATUS
        market_ts = self.market_ts
        cur_inst, b = None, None
        for i in range(len(kinds)):
            t = tse[i]
            if pending and pending[0].arrival < t:
                self.market_ts = market_ts
                self.advance(t - 1)
            if t > market_ts:
                market_ts = t
            k = kinds[i]
            if insts[i] != cur_inst:
                cur_inst = insts[i]
                b = books.get(cur_inst)
            if b is None:
                continue
            if k == K_LEVEL:
                # the public book; our queues only when we rest or took liquidity (the slow path)
                side, px, qty = D[i], A[i], B[i]
                book = b.bids if side == BUY else b.asks
                old = book.get(px, 0)
                if qty:
                    book[px] = qty
                elif old:
                    del book[px]
                if b.taken or b.ours_bid or b.ours_ask:
                    # only a level where we rest, where we took liquidity, or one that crosses us
                    if (px in (b.ours_bid if side == BUY else b.ours_ask)
                            or (b.taken and (side, px) in b.taken)
                            or (qty > old and (
                                (side == SELL and b.best_ours_bid is not None and px <= b.best_ours_bid)
                                or (side == BUY and b.best_ours_ask is not None and px >= b.best_ours_ask)))):
                        self.market_ts = market_ts
                        self._level(b, side, px, old, qty, t)
            elif k == K_TRADE:
                if b.ours_bid or b.ours_ask:
                    self.market_ts = market_ts
                    self._trade(b, D[i], A[i], B[i], t)
            elif k == K_STATUS and (C[i] & 0xFF) == _SNAP_BEGIN:
                b.bids.clear()
                b.asks.clear()
                b.traded.clear()
                b.taken.clear()
        self.market_ts = market_ts

    def _level(self, b: _Book, side: int, px: int, old: int, qty: int, t: int) -> None:
        """Our side of a public level change ``old`` -> ``qty`` (the book is already updated)."""
        key = (side, px)
        if b.taken and key in b.taken:
            tk = b.taken[key]
            if qty < old:
                tk -= old - qty
            tk = min(tk, qty)
            if tk > 0:
                b.taken[key] = tk
            else:
                del b.taken[key]
        ours = (b.ours_bid if side == BUY else b.ours_ask).get(px)
        if ours:
            traded = b.traded.pop(key, 0)
            if qty < old:
                cancel = old - qty - traded
                if cancel > 0:
                    for o in ours:
                        o.ahead -= cancel * o.ahead // old
            for o in ours:
                if o.ahead > qty:
                    o.ahead = qty
        # a public order on the other side at or through our resting price: we trade with it
        if qty > old:
            if side == SELL and b.best_ours_bid is not None and px <= b.best_ours_bid:
                self._cross(b, BUY, px, t)
            elif side == BUY and b.best_ours_ask is not None and px >= b.best_ours_ask:
                self._cross(b, SELL, px, t)

    def _cross(self, b: _Book, our_side: int, px: int, t: int) -> None:
        """Public liquidity at ``px`` (other side) crosses our resting orders: fill them at
        their prices, better-priced first, up to the displayed quantity not yet taken."""
        other = SELL if our_side == BUY else BUY
        book = b.asks if our_side == BUY else b.bids
        ours = b.ours_bid if our_side == BUY else b.ours_ask
        key = (other, px)
        avail = book.get(px, 0) - b.taken.get(key, 0)
        prices = sorted((p for p in ours if (p >= px if our_side == BUY else p <= px)),
                        reverse=(our_side == BUY))
        for p in prices:
            for o in list(ours.get(p, ())):
                if avail <= 0:
                    break
                f = min(avail, o.qty - o.cum)
                avail -= f
                b.taken[key] = b.taken.get(key, 0) + f
                self._fill(o, o.price, f, t)
        b.refresh_best()

    def _trade(self, b: _Book, aggressor: int, px: int, qty: int, t: int) -> None:
        if aggressor == SELL:
            if b.best_ours_bid is None or b.best_ours_bid < px:
                return
            ours = b.ours_bid
            through = [p for p in ours if p > px]
            side = BUY
        elif aggressor == BUY:
            if b.best_ours_ask is None or b.best_ours_ask > px:
                return
            ours = b.ours_ask
            through = [p for p in ours if p < px]
            side = SELL
        else:
            return
        for p in through:  # traded through our price: we would have been hit first
            for o in list(ours[p]):
                self._fill(o, o.price, o.qty - o.cum, t)
        at = ours.get(px)
        if at:
            key = (side, px)
            b.traded[key] = b.traded.get(key, 0) + qty
            used = 0  # trade quantity already given to our earlier orders at this price
            for o in list(at):
                avail = qty - o.ahead - used
                o.ahead = o.ahead - qty if o.ahead > qty else 0
                if avail > 0:
                    f = min(avail, o.qty - o.cum)
                    used += f
                    self._fill(o, o.price, f, t)
        b.refresh_best()

    # --- commands -------------------------------------------------------------------------
    def _process(self, c: _Cmd) -> None:
        t = c.arrival if c.arrival > self.market_ts else self.market_ts
        self.stats["commands"] += 1
        if c.cmd == _NEW:
            self._new(c, t)
        elif c.cmd == _CANCEL:
            self._cancel(c, t)
        elif c.cmd == _REPLACE:
            self._replace(c, t)
        else:
            self._event(_REJECTED, t, c.inst, c.coid, 0, 0, c.price, c.qty, 0, 0, 0, 0, c.side, REASON_BAD_TYPE)

    def _validate(self, inst: Instrument | None, price: int, qty: int, ord_type: int) -> int:
        if inst is None:
            return int(DenyReason.UNKNOWN_INSTRUMENT)
        if ord_type == _LIMIT and (price <= 0 or price % inst.tick):
            return int(DenyReason.BAD_PRICE)
        if qty <= 0 or qty % inst.lot:
            return int(DenyReason.BAD_QTY)
        return 0

    def _new(self, c: _Cmd, t: int) -> None:
        inst = self.instruments.get(c.inst)
        tif = c.tif or _GTC
        otype = c.ord_type or _LIMIT
        reason = self._validate(inst, c.price, c.qty, otype)
        if not reason and c.side not in (BUY, SELL):
            reason = REASON_BAD_SIDE
        if not reason and (tif not in (_GTC, _IOC, _POST) or otype not in (_LIMIT, _MARKET)
                           or (otype == _MARKET and tif == _POST)):
            reason = REASON_BAD_TYPE
        if not reason and c.coid in self.orders:
            reason = int(DenyReason.DUPLICATE)
        b = self.books.get(c.inst)
        if not reason and tif == _POST and self._crosses(b, c.side, c.price):
            reason = REASON_POST_ONLY_WOULD_CROSS
        if reason:
            self.stats["rejects"] += 1
            self._event(_REJECTED, t, c.inst, c.coid, 0, 0, c.price, c.qty, 0, 0, 0, 0, c.side, reason)
            return
        self._voi += 1
        o = _Order(c.coid, self._voi, c.inst, c.side, c.price if otype == _LIMIT else 0, c.qty, tif, otype)
        self.orders[o.coid] = o
        self._emit(o, _ACCEPTED, t, 0, 0)
        self._take(b, o, t)
        if o.cum < o.qty and o.coid in self.orders:
            if otype == _MARKET or tif == _IOC:
                self._remove(o)
                self._emit(o, _CANCELED, t, 0, 0)
            else:
                self._rest(b, o)

    def _crosses(self, b: _Book, side: int, price: int) -> bool:
        if side == BUY:
            return any(p <= price for p in b.asks)
        return any(p >= price for p in b.bids)

    def _take(self, b: _Book, o: _Order, t: int) -> None:
        """Fill ``o`` against displayed liquidity it crosses (best level first)."""
        if o.side == BUY:
            book, other = b.asks, SELL
            levels = sorted(p for p in book if o.ord_type == _MARKET or p <= o.price)
        else:
            book, other = b.bids, BUY
            levels = sorted((p for p in book if o.ord_type == _MARKET or p >= o.price), reverse=True)
        for p in levels:
            leaves = o.qty - o.cum
            if leaves <= 0:
                break
            key = (other, p)
            avail = book[p] - b.taken.get(key, 0)
            if avail <= 0:
                continue
            f = leaves if leaves < avail else avail
            b.taken[key] = b.taken.get(key, 0) + f
            self._fill(o, p, f, t, resting=False)

    def _rest(self, b: _Book, o: _Order) -> None:
        if o.side == BUY:
            o.ahead = b.bids.get(o.price, 0)
            b.ours_bid.setdefault(o.price, []).append(o)
        else:
            o.ahead = b.asks.get(o.price, 0)
            b.ours_ask.setdefault(o.price, []).append(o)
        b.refresh_best()

    def _unqueue(self, o: _Order) -> None:
        b = self.books[o.inst]
        ours = b.ours_bid if o.side == BUY else b.ours_ask
        lst = ours.get(o.price)
        if lst and o in lst:
            lst.remove(o)
            if not lst:
                del ours[o.price]
                b.traded.pop((o.side, o.price), None)  # only kept while we rest there
            b.refresh_best()

    def _remove(self, o: _Order) -> None:
        self._unqueue(o)
        self.orders.pop(o.coid, None)

    def _cancel(self, c: _Cmd, t: int) -> None:
        o = self.orders.get(c.coid)
        if o is None:
            self.stats["rejects"] += 1
            self._event(_CANCEL_REJECTED, t, c.inst, c.coid, 0, 0, c.price, c.qty, 0, 0, 0, 0, c.side,
                        int(DenyReason.UNKNOWN_ORDER))
            return
        self._remove(o)
        self._emit(o, _CANCELED, t, 0, 0)

    def _replace(self, c: _Cmd, t: int) -> None:
        o = self.orders.get(c.orig)
        reason = 0
        if o is None:
            reason = int(DenyReason.UNKNOWN_ORDER)
        else:
            reason = self._validate(self.instruments.get(o.inst), c.price, c.qty, o.ord_type)
            if not reason and c.coid != c.orig and c.coid in self.orders:
                reason = int(DenyReason.DUPLICATE)
            if not reason and c.qty <= o.cum:
                reason = REASON_QTY_BELOW_FILLED
            if not reason and o.tif == _POST and c.price != o.price and self._crosses(self.books[o.inst], o.side, c.price):
                reason = REASON_POST_ONLY_WOULD_CROSS
        if reason:
            self.stats["rejects"] += 1
            side = o.side if o is not None else c.side
            self._event(_CANCEL_REJECTED, t, c.inst, c.coid, c.orig, o.voi if o else 0, c.price, c.qty,
                        0, 0, o.cum if o else 0, (o.qty - o.cum) if o else 0, side, reason)
            return
        b = self.books[o.inst]
        keep_place = c.price == o.price and c.qty <= o.qty
        if not keep_place:
            self._unqueue(o)
        del self.orders[o.coid]
        orig = o.coid
        o.coid = c.coid
        o.price = c.price
        o.qty = c.qty
        self.orders[o.coid] = o
        self._emit(o, _REPLACED, t, 0, 0, orig=orig)
        if not keep_place:
            self._take(b, o, t)
            if o.cum < o.qty and o.coid in self.orders:
                self._rest(b, o)

    # --- events ---------------------------------------------------------------------------
    def _fill(self, o: _Order, px: int, f: int, t: int, resting: bool = True) -> None:
        if f <= 0:
            return
        o.cum += f
        if o.cum >= o.qty:
            self._remove(o)
            self._emit(o, _FILLED, t, px, f)
        else:
            self._emit(o, _PARTIAL, t, px, f)
        self.stats["fills"] += 1

    def _emit(self, o: _Order, et: int, t: int, last_px: int, last_qty: int, orig: int = 0) -> None:
        leaves = 0 if et == _CANCELED else o.qty - o.cum
        self._event(et, t, o.inst, o.coid, orig, o.voi, o.price, o.qty, last_px, last_qty, o.cum, leaves,
                    o.side, 0)

    def _event(self, et, t, inst, coid, orig, voi, price, qty, last_px, last_qty, cum, leaves, side, reason):
        self._exec_id += 1
        d = t + self.resp_lat + (int(self._uniform() * (self.resp_jit + 1)) if self.resp_jit else 0)
        if d < self._last_deliver:
            d = self._last_deliver
        self._last_deliver = d
        self.out.append((_EXEC_KIND, 1, 0, inst, 0, d, t, coid, orig, voi, self._exec_id, price, qty,
                         last_px, last_qty, cum, leaves, et, side, reason))


class CaptureSource:
    """A Binance capture, decoded by ``livestack.feeds.capture.decode_capture``, as a market
    source: records are re-timed so the capture's first receive time is ``t0_ns`` and handed out
    by their (re-timed) receive time ``ts``, which is what ``ts_event`` is set to as well
    (venue event times of different streams are not monotonic; receive times are)."""

    def __init__(self, path, instrument: Instrument, market: str, t0_ns: int, speed: float = 1.0,
                 loop: bool = False):
        from livestack.feeds.capture import decode_capture

        recs = decode_capture(path, instrument, market)
        if recs.dtype.itemsize != 64:
            raise ValueError(f"capture {path}: records are {recs.dtype.itemsize} bytes, expected 64")
        self.recs = np.ascontiguousarray(recs).view(fsim.MD_OVERLAY).copy()
        if not len(self.recs):
            raise ValueError(f"capture {path}: no records decoded")
        ts = self.recs["ts"].astype(np.int64)
        rel = ts - ts[0]
        if speed > 0:
            rel = (rel / speed).astype(np.int64)
        self.rel = np.maximum.accumulate(rel)
        self.recs["ts_event"] = 0
        self.t0 = t0_ns
        self.pos = 0
        self.loop = loop
        self.loops = 0
        self.instrument = instrument
        self.t_ns = t0_ns

    @property
    def done(self) -> bool:
        return self.pos >= len(self.recs) and not self.loop

    def generate(self, n_events: int, until_ns: int | None = None) -> np.ndarray:
        """Up to ``n_events`` messages' worth of records (a message ends at LAST_IN_MSG; at least
        ``n_events`` records are handed out if available) with time <= ``until_ns``."""
        if self.pos >= len(self.recs):
            if not self.loop:
                return self.recs[:0]
            self.loops += 1
            self.pos = 0
            self.t0 = self.t_ns + 1 - int(self.rel[0])
        end = min(len(self.recs), self.pos + max(1, n_events) * 4)
        if until_ns is not None:
            end = min(end, self.pos + int(np.searchsorted(self.rel[self.pos:end], until_ns - self.t0, side="right")))
        # do not split a message: extend to the next LAST_IN_MSG
        flags = self.recs["flags"]
        while end < len(self.recs) and end > self.pos and not (flags[end - 1] & fsim.F_LAST):
            end += 1
        out = self.recs[self.pos:end].copy()
        t = self.rel[self.pos:end] + self.t0
        out["ts"] = t
        out["ts_event"] = t
        self.pos = end
        if len(out):
            self.t_ns = int(t[-1])
        return out


# ----------------------------------------------------------------------------------------------
# Process entry
# ----------------------------------------------------------------------------------------------

#: Options read by :func:`run_process` / the process loop besides ``DEFAULTS``.
_PROCESS_OPTIONS = {"harness_pid", "harness_check_s", "batch", "lost_flush_s", "counters",
                    "attach_timeout_s", "seconds", "idle_spins", "idle_yields", "idle_max_sleep_ns"}


class _SimVenue:
    """SimExchange + market-data publishing, as one adapter for the generic process loop."""

    state_lost_on_restart = SimExchange.state_lost_on_restart

    def __init__(self, ex: SimExchange, md_ring, counters):
        self.ex = ex
        self.ring = md_ring
        self.c = counters
        self.pub = None
        if md_ring is not None:
            self.pub = fsim.MdPublisher(md_ring, snapshot=ex.snapshot, instruments=list(ex.instruments))

    # adapter protocol, delegated
    def start(self):
        self.ex.start()

    def stop(self):
        """Tell the md consumer the market is gone (MD_STATUS DISCONNECTED per instrument, if
        the ring has room), then stop the exchange."""
        if self.pub is not None:
            ts = max(self.ex.now_ns(), self.pub._last_ts)
            recs = np.concatenate([fsim.status_records(i, [FeedStatus.DISCONNECTED], ts)
                                   for i in self.ex.instruments])
            if self.ring.free() >= len(recs):
                self.pub.publish(recs)
                self.c.set("md_records", self.pub.published)
        self.ex.stop()

    def submit(self, cmds):
        self.ex.submit(cmds)

    def poll(self, out, now_ns):
        return self.ex.poll(out, now_ns)

    def on_harness_lost(self):
        self.ex.on_harness_lost()

    def now_ns(self):
        return self.ex.now_ns()

    def service(self, now_ns: int) -> int:
        ex = self.ex
        if self.ring is not None:
            unread = self.ring.size()
            n = ex.service(now_ns, self.ring.capacity - unread, unread)
        else:
            n = ex.service(now_ns)
        if self.pub is None:
            ex._md_out = []
            return n
        recs = ex.take_md(now_ns)
        if recs is not None:
            self.pub.publish(recs)
        elif self.pub._gap_pending:
            self.pub.publish(None)
        c = self.c
        c.set("md_records", self.pub.published)
        c.set("md_overflow", self.pub.overflow)
        c.set("md_gaps", self.pub.gaps)
        return n


def run_process(orders_ring: str, exec_ring: str, instruments: list[Instrument], options: dict, stop,
                md_ring: str | None = None) -> dict:
    """Venue process entry (docs/CONTRACTS.md): the simulated exchange.

    Publishes the market (``options["market"]``: the seeded model by default, or a Binance
    capture) into ``md_ring`` and matches the ORDER_CMD records of ``orders_ring``, writing EXEC
    records into ``exec_ring``, until ``stop`` is set, SIGTERM, or the harness (``harness_pid``)
    dies -- then its resting orders are canceled (cancel-on-disconnect) and it stops.

    Options: ``DEFAULTS`` of this module plus the loop's (``livestack.venues.process.run_loop``):
    ``harness_pid``, ``harness_check_s``, ``batch``, ``lost_flush_s``, ``counters``,
    ``idle_spins``, ``idle_yields``, ``idle_max_sleep_ns``, ``attach_timeout_s`` (10), and
    ``seconds`` (run time limit, None = until stopped).
    Returns the final counters (a dict).
    """
    from livestack.ipc import Ring
    from livestack.venues import process as vp

    options = dict(options or {})
    term = vp._Term()
    term.install()
    attach_s = float(options.get("attach_timeout_s", 10.0))
    orders = Ring.attach(orders_ring, slot_size=64, timeout=attach_s, role="consumer")
    execs = Ring.attach(exec_ring, slot_size=128, timeout=attach_s, role="producer")
    md = Ring.attach(md_ring, slot_size=64, timeout=attach_s, role="producer") if md_ring else None
    counters = vp.VenueCounters(options.get("counters"))
    ex = SimExchange(instruments, options)
    venue = _SimVenue(ex, md, counters)
    deadline = None if options.get("seconds") is None else time.monotonic() + float(options["seconds"])

    def should_stop() -> bool:
        return term.flag or (deadline is not None and time.monotonic() > deadline)

    try:
        return vp.run_loop(venue, orders, execs, options, stop, counters, should_stop)
    finally:
        orders.close()
        execs.close()
        if md is not None:
            md.close()
