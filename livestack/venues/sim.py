"""Simulated exchange venue: matches the stack's orders against the market the strategy sees.

The market is a stream of MD records -- the seeded order-flow model of ``livestack.feeds.sim``
(default) or a Binance capture decoded by ``livestack.feeds.capture.decode_capture`` -- and the
same records are both published to the harness (``md.<feed>``) and applied here to a public L2
book. Our orders are matched against that book by :class:`livestack.matching.MatchingEngine`, the
one matching engine the backtest uses too: price-time priority, queue position, partial fills,
latency and rejects are its rules (see ``livestack/matching/engine.pyx``). Our orders are not shown
in the public feed (the strategy sees them through EXEC events), and the public flow does not react
to them.

Time is simulated and deterministic. A command is processed at ``arrival = cmd.ts +
order_latency_ns + U(0, order_jitter_ns)`` against the book as it is at that time (market records
with ``ts_event`` < arrival applied first); its EXEC records carry ``ts_event`` = the time they
happened and header ``ts`` = ``ts_event + response_latency_ns + U(0, response_jitter_ns)``, and
``poll(out, now)`` hands out those with ``ts <= now``. Published market data are restamped
``ts = ts_event + md_latency_ns + U(0, md_jitter_ns)``. Both stay monotonic; the jitter draws
come from generators seeded by ``seed``.

Clocks of the process (``run_process``): ``pace=True`` runs on the wall clock (a live run);
``pace=False`` runs the market as fast as the md ring takes it; ``virtual_time=True`` runs on the
timestamps of its inputs, in lock step with the harness (``livestack.venues.virtual``), so that the
process gives the same fills as ``livestack backtest`` on the same capture.

Execution ids: ``exec_id`` counts 1, 2, 3... within one process and ``exec_id_hi`` is the process
incarnation's epoch (``exec_epoch``; ``run_process`` derives it from the exec ring's producer
position at start, which grows with every event an earlier incarnation wrote), so a restarted
venue never repeats an (exec_id, exec_id_hi) pair within a session and a fill is never (0, 0).

Process entry: :func:`run_process` (docs/CONTRACTS.md) -- one process publishes the market data
into ``md_ring`` and runs :mod:`livestack.venues.process` over the order and exec rings.
"""

from __future__ import annotations

import collections
import time
from types import SimpleNamespace

import numpy as np

from livestack.config import Instrument
from livestack.feeds import sim as fsim
from livestack.matching import (REASON_BAD_SIDE, REASON_BAD_TYPE, REASON_POST_ONLY_WOULD_CROSS,  # noqa: F401
                                REASON_QTY_BELOW_FILLED, MatchingEngine)
from livestack.schema import DTYPES, FeedStatus
from livestack.venues.base import VenueAdapter

#: Options of the simulated venue and their defaults (see :func:`run_process`).
DEFAULTS = {
    "market": "model",            # "model" (seeded order flow), "capture" (Binance replay), "none"
    "seed": 1,                    # model and latency-jitter seed
    "model": None,                # dict of livestack.feeds.sim.ModelParams fields
    "events_per_s": None,         # model event rate, events/s of simulated time (overrides model.events_per_s; default 10k)
    "pace": True,                 # True: simulated time = wall clock; False: as fast as the md ring takes it
    "virtual_time": False,        # True: lock step with the harness on the inputs' timestamps (implies pace=False)
    "capture_path": None,         # market="capture": path of the Binance capture (.gz)
    "capture_market": "usdm",     # market="capture": "usdm" or "spot" (decode_capture's market)
    "capture_limit": None,        # market="capture": replay only the first N records (cut at a message end)
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
    "exec_epoch": None,           # exec_id_hi of every event; None = 1 (run_process: from the exec ring)
    "max_orders": 4096,           # live order table of the matching engine
}


class _BookView:
    """A copy of one instrument's public book (price -> qty dicts) for inspection."""

    __slots__ = ("bids", "asks")

    def __init__(self, bids, asks):
        self.bids = dict(bids)
        self.asks = dict(asks)


class SimExchange(VenueAdapter):
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
    state_lost_on_restart = True

    def __init__(self, instruments: list[Instrument], options: dict | None = None):
        opts = dict(DEFAULTS)
        unknown = set(options or {}) - set(DEFAULTS) - _PROCESS_OPTIONS
        if unknown:
            raise ValueError(f"sim venue: unknown option(s) {sorted(unknown)}; known: {sorted(set(DEFAULTS) | _PROCESS_OPTIONS)}")
        opts.update({k: v for k, v in (options or {}).items()})
        if opts["virtual_time"]:
            opts["pace"] = False
        self.options = opts
        self.instruments = {i.id: i for i in instruments}
        self._last_md_ts = 0
        self._md_rng = np.random.Generator(np.random.PCG64([int(opts["seed"]) & 0xFFFFFFFF, 0x3D]))
        order_lat = int(opts["order_latency_ns"])
        order_jit = int(opts["order_jitter_ns"])
        resp_lat = int(opts["response_latency_ns"] if opts["response_latency_ns"] is not None else order_lat)
        resp_jit = int(opts["response_jitter_ns"] if opts["response_jitter_ns"] is not None else order_jit)
        self.md_lat = int(opts["md_latency_ns"])
        self.md_jit = int(opts["md_jitter_ns"])
        if min(order_lat, order_jit, resp_lat, resp_jit, self.md_lat, self.md_jit) < 0:
            raise ValueError("sim venue: latencies and jitters must be >= 0")
        self.engine = MatchingEngine(instruments, order_lat, order_jit, resp_lat, resp_jit,
                                     seed=int(opts["seed"]) & 0xFFFFFFFF,
                                     exec_epoch=int(opts["exec_epoch"] or 1), max_orders=int(opts["max_orders"]))
        self.pace = bool(opts["pace"])
        self.source = None
        self._t0 = time.time_ns()
        if opts["start_ns"] is not None and not self.pace:
            self._t0 = int(opts["start_ns"])
        self._mono0 = time.monotonic_ns()
        self._md_out: list[np.ndarray] = []
        self.stats = collections.Counter()
        self._make_source(instruments)

    # --- inspection -----------------------------------------------------------------------
    @property
    def orders(self) -> dict:
        """Our live resting orders by client_order_id (copies: coid, voi, inst, side, price, qty,
        cum, ahead, tif, ord_type), in time priority."""
        return {o["coid"]: SimpleNamespace(**o) for o in self.engine.live_orders()}

    @property
    def books(self) -> dict:
        """The public book of every instrument (copies, price -> qty)."""
        return {iid: _BookView(*self.engine.book(iid)) for iid in self.instruments}

    @property
    def market_ts(self) -> int:
        """Time of the last market record applied."""
        return self.engine.market_ts

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
                                        float(self.options["replay_speed"]), bool(self.options["replay_loop"]),
                                        self.options["capture_limit"])
        else:
            raise ValueError(f"sim venue: market {kind!r}: expected 'model', 'capture' or 'none'")

    def now_ns(self) -> int:
        """The venue's clock: the wall clock when paced, else the market's simulated time."""
        if self.pace or self.source is None:
            return self._t0 + time.monotonic_ns() - self._mono0
        e = self.engine
        if getattr(self.source, "done", False):  # replay over: everything queued is due
            return max(e.market_ts, e.last_arrival, e.last_deliver)
        return max(e.market_ts, self._t0)

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
        for iid in self.instruments:
            bids, asks = self.engine.book(iid)
            parts.append(fsim.snapshot_records(iid, bids, asks, ts, 0))
        return np.concatenate(parts)

    # --- VenueAdapter ---------------------------------------------------------------------
    def start(self) -> None:
        """Nothing to connect: the exchange is in this process."""

    def stop(self) -> None:
        """Nothing to disconnect; resting orders are simply forgotten with the process."""

    def submit(self, cmds: np.ndarray) -> None:
        """Queue ORDER_CMD records; each is processed at ``ts + order latency + jitter``."""
        if len(cmds):
            self.engine.submit(cmds)

    def poll(self, out: np.ndarray, now_ns: int) -> int:
        """Process commands due by ``now_ns``; copy EXEC records with ``ts <= now_ns`` into ``out``."""
        return self.engine.poll(out, now_ns)

    def on_harness_lost(self) -> None:
        """Cancel-on-disconnect: every resting order of ours is canceled now."""
        e = self.engine
        n = len(e.live_orders())
        e.cancel_everything(max(e.market_ts, e.last_arrival))
        self.stats["cod_canceled"] += n

    def advance(self, now_ns: int) -> None:
        """Process queued commands whose arrival is <= ``now_ns``."""
        self.engine.advance(now_ns)

    def on_market(self, recs: np.ndarray) -> None:
        """Apply market records (any 64-byte MD dtype, ts_event order) to the public book and our
        queues; commands that arrive before a record are processed first."""
        if len(recs):
            self.engine.on_market(recs)


class CaptureSource:
    """A Binance capture, decoded by ``livestack.feeds.capture.decode_capture``, as a market
    source: records are re-timed so the capture's first receive time is ``t0_ns`` and handed out
    by their (re-timed) receive time ``ts``, which is what ``ts_event`` is set to as well
    (venue event times of different streams are not monotonic; receive times are)."""

    def __init__(self, path, instrument: Instrument, market: str, t0_ns: int, speed: float = 1.0,
                 loop: bool = False, limit: int | None = None):
        from livestack.feeds.capture import decode_capture

        recs = decode_capture(path, instrument, market)
        if limit is not None:
            recs = recs[:capture_cut(recs, int(limit))]
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




def capture_cut(recs: np.ndarray, limit: int) -> int:
    """How many of the decoded records ``recs`` to keep for at most ``limit`` records without
    splitting a message (the cut falls after a LAST_IN_MSG record)."""
    if limit >= len(recs):
        return len(recs)
    last = np.nonzero(recs["flags"][:limit] & fsim.F_LAST)[0]
    return int(last[-1]) + 1 if len(last) else 0

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
    if options.get("exec_epoch") is None:
        # this incarnation's exec_id_hi: every earlier incarnation that wrote an event moved the
        # exec ring's producer position past the one it started at, so no two writers share it
        options["exec_epoch"] = int(execs.tail) + 1
    ex = SimExchange(instruments, options)
    venue = _SimVenue(ex, md, counters)
    from livestack.telemetry import procmetrics  # its counters in /metrics (a mirror thread)

    metrics = procmetrics.start(exec_ring, "venue.sim", procmetrics.venue_updater(counters), {"venue": "sim"})
    deadline = None if options.get("seconds") is None else time.monotonic() + float(options["seconds"])

    def should_stop() -> bool:
        return term.flag or (deadline is not None and time.monotonic() > deadline)

    try:
        if ex.options["virtual_time"]:
            if md is None:
                raise ValueError("sim venue: virtual_time needs the md ring (the venue publishes the market)")
            from livestack.venues.virtual import run_virtual_loop

            watch = vp.HarnessWatch(options.get("harness_pid"), float(options.get("harness_check_s", 0.05)))
            res = run_virtual_loop(venue, orders, execs, md, options, stop, counters, should_stop, watch)
            if res["lost"]:
                ex.on_harness_lost()
                out = np.zeros(1024, dtype=DTYPES["EXEC"])
                n = ex.poll(out, 2**62)
                out["seq"][:n] = np.arange(res["exec_seq"] + 1, res["exec_seq"] + 1 + n, dtype=np.uint64)
                execs.write_batch(out[:n])
            venue.stop()
            return counters.as_dict()
        return vp.run_loop(venue, orders, execs, options, stop, counters, should_stop)
    finally:
        if metrics is not None:
            metrics.stop()
        orders.close()
        execs.close()
        if md is not None:
            md.close()
