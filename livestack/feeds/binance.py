"""Binance spot and USD-M futures market data: message decoding and the local order-book procedure.

Pure logic, no I/O: the feed process (``binance_ws``), the capture decoder (``capture``) and the
tests all drive the same :class:`BinanceDecoder` with ``(bytes, receive ns)`` pairs and REST
snapshot bodies, and collect 64-byte MD records from its :class:`MdBuffer`.

Records (layouts in ``livestack/schema/spec.py``)
-------------------------------------------------
* depth diff  -> one ``MD_LEVEL`` per price level, bids first then asks, ``qty`` 0 deletes,
  ``update_id`` = the diff's ``u``; the last record of the message has flag ``LAST_IN_MSG``.
  A diff with no levels produces no record.
* trade       -> ``MD_TRADE``, ``side`` = aggressor: ``m`` true (buyer is maker) -> SELL, else BUY.
* bookTicker  -> ``MD_BBO``.
* snapshot    -> ``MD_STATUS(SNAPSHOT_BEGIN, update_id=lastUpdateId)``, ``MD_LEVEL`` with flag
  ``SNAPSHOT`` (bids then asks), ``MD_STATUS(SNAPSHOT_END, update_id=lastUpdateId,
  detail=level count)`` with flags ``SNAPSHOT|LAST_IN_MSG``; the book is valid after it.
* ``MD_STATUS(GAP)``: ``update_id`` = last applied ``u``, ``detail`` = what was expected
  (spot: the next ``U`` = u+1; futures: the next ``pu`` = u). Also written on ring overflow.
* ``ts`` = local receive time (ns). A diff buffered while waiting for the snapshot is released
  with ``ts = max(its receive time, the snapshot's receive time)`` so ``ts`` never goes back.
* ``ts_event`` = venue time in ns: depth ``T`` (futures) else ``E``; trade ``T``; bookTicker
  ``T``/``E`` (futures), spot bookTicker carries no time so ``ts_event = ts``; snapshot ``T``/``E``
  when present (futures) else its receive time.
* ``seq`` is left 0: the ring writer stamps the per-ring producer sequence.

The order-book procedure (Binance "How to manage a local order book correctly")
------------------------------------------------------------------------------
spot (``U``/``u``): buffer diffs; fetch the snapshot (``lastUpdateId`` = L); drop diffs with
``u <= L``; the first applied diff must have ``U <= L+1 <= u``; afterwards each diff must have
``U <= prev_u + 1`` (normally ``U == prev_u + 1``; diffs with ``u <= prev_u`` are old and dropped).

USD-M futures (``pu`` chain): drop diffs with ``u < L``; the first applied diff must have
``U <= L <= u``; afterwards each diff's ``pu`` must equal the previous diff's ``u``.

A broken chain emits ``MD_STATUS(GAP)`` and starts over: the offending diff is buffered and a new
snapshot is requested (:attr:`BookSync.needs_snapshot`). A snapshot older than the first
buffered diff (no straddle) is discarded and another is requested, without declaring the book
valid in between.

Decoding
--------
A stream message is scanned once, in C (``_binance.FastDecoder``): strict RFC 8259 JSON (checked
against the standard library's parser by a fuzz test), field types checked, decimal strings
converted exactly to fixed point (``ls_parse_fixed``), trades and bookTickers written straight
into the :class:`MdBuffer`; a depth diff comes back as a small ``Diff`` (ids, raw level arrays)
for its BookSync, whose level arrays are parsed in C into MD_LEVEL slots when applied. REST
snapshots (rare) go through msgspec. No Python object per level anywhere.

Malformed input is counted by reason in :class:`Counters` (``malformed_json``: not JSON;
``_field``: a field missing or of the wrong type; ``_decimal``: a price/qty that is not an exact
decimal at the instrument's scale, or not positive; ``_levels``: a level array that is not
``[["price","qty"], ...]``; ``_stream``: unknown stream/symbol; ``_snapshot``: a REST body that
does not decode), kept as a sample in :attr:`BinanceDecoder.malformed_samples`, and never reaches
the book. A message rejected at decode is simply dropped (if it was a diff, the next diff shows the
gap); a diff whose levels turn out malformed when applied is a gap right away.
"""

from __future__ import annotations

import collections

import msgspec
import numpy as np

from livestack.config import Instrument
from livestack.feeds._binance import (  # noqa: F401
    DEPTH, DONE, ERR_DECIMAL, ERR_FIELD, ERR_JSON, ERR_STREAM, KIND_BBO, KIND_DEPTH, KIND_TRADE,
    LEVELS_DECIMAL, LEVELS_SYNTAX, Diff, FastDecoder, MdBuffer, SyncState,
)
from livestack.schema import FeedStatus, RecordFlag, Side

MARKETS = ("spot", "usdm")

#: Production endpoints; the feed takes them from options so tests can point at a replay server.
DEFAULT_URLS = {
    "spot": {"ws": "wss://stream.binance.com:9443/stream", "rest": "https://api.binance.com/api/v3/depth"},
    "usdm": {"ws": "wss://fstream.binance.com/stream", "rest": "https://fapi.binance.com/fapi/v1/depth"},
}
#: Depth stream update speed the captures use (and the feed subscribes to by default).
DEFAULT_DEPTH_SPEED = {"spot": "100ms", "usdm": "0ms"}

LAST = int(RecordFlag.LAST_IN_MSG)
SNAP = int(RecordFlag.SNAPSHOT)
BUY = int(Side.BUY)
SELL = int(Side.SELL)
_NS_PER_MS = 1_000_000

# ---------------------------------------------------------------------------------------------
# Counters
# ---------------------------------------------------------------------------------------------

#: Counter names, in the order of :attr:`Counters.values` (also the layout of the shared counter
#: array a supervisor may hand to the feed process; see ``binance_ws``).
COUNTER_NAMES = (
    "messages",            # websocket / capture messages seen (not counting REST snapshots)
    "records",             # MD records produced
    "malformed_json",      # not JSON / not the expected JSON shape at the top
    "malformed_field",     # required field missing or of the wrong type
    "malformed_decimal",   # price/qty not an exact decimal at the instrument scale (or <= 0)
    "malformed_levels",    # level array not a list of ["price","qty"] pairs
    "malformed_stream",    # unknown stream, symbol or event type
    "malformed_snapshot",  # REST snapshot that could not be decoded
    "snapshots",           # snapshots applied (book (re)synced)
    "snapshot_refetch",    # snapshots discarded because no buffered diff straddled them
    "diffs_dropped_stale", # buffered diffs at or below lastUpdateId, dropped as the procedure says
    "diffs_dropped_old",   # diffs older than the book while synced (duplicates), dropped
    "buffer_dropped",      # buffered diffs dropped because the pre-snapshot buffer was full
    "gaps",                # sequence gaps (MD_STATUS GAP) including those from overflows
    "stale",               # stale periods detected (MD_STATUS STALE)
    "connects",            # websocket connections established
    "reconnects",          # reconnect attempts after a lost or failed connection
    "disconnects",         # connections lost
    "overflows",           # ring-full events (a batch or part of it dropped)
    "overflow_records",    # records dropped because the ring was full
    "pings",               # keepalive pings sent and answered
    "snapshot_errors",     # REST snapshot requests that failed (network, HTTP status)
)
MALFORMED_REASONS = ("json", "field", "decimal", "levels", "stream", "snapshot")


class Counters:
    """The decoder's and feed's counters: plain int attributes, named by ``COUNTER_NAMES``.

    Increments on the hot path are attribute adds (tens of ns; a numpy or shared-memory slot
    update costs several times that). :meth:`publish` copies them into a shared array
    (``multiprocessing.Array('q', len(COUNTER_NAMES))``) that a supervisor reads with
    :class:`SharedCounters`; the feed process publishes every ``publish_ms`` and at exit.
    """

    __slots__ = COUNTER_NAMES

    def __init__(self):
        for n in COUNTER_NAMES:
            setattr(self, n, 0)

    def add(self, name: str, k: int = 1) -> None:
        setattr(self, name, getattr(self, name) + k)

    @property
    def malformed(self) -> int:
        return sum(getattr(self, f"malformed_{r}") for r in MALFORMED_REASONS)

    def as_dict(self) -> dict[str, int]:
        return {n: getattr(self, n) for n in COUNTER_NAMES}

    def publish(self, buffer) -> None:
        """Copy every counter into ``buffer`` (int64 slots in ``COUNTER_NAMES`` order)."""
        np.frombuffer(buffer, dtype=np.int64, count=len(COUNTER_NAMES))[:] = [getattr(self, n) for n in COUNTER_NAMES]

    def __repr__(self):
        return f"Counters({ {k: v for k, v in self.as_dict().items() if v} })"


class SharedCounters:
    """Read side of published counters: ``SharedCounters(mp_array.get_obj()).gaps``."""

    def __init__(self, buffer):
        self.values = np.frombuffer(buffer, dtype=np.int64, count=len(COUNTER_NAMES))

    def __getattr__(self, name):
        try:
            return int(self.values[COUNTER_NAMES.index(name)])
        except ValueError:
            raise AttributeError(name) from None

    @property
    def malformed(self) -> int:
        d = self.as_dict()
        return sum(d[f"malformed_{r}"] for r in MALFORMED_REASONS)

    def as_dict(self) -> dict[str, int]:
        return {n: int(v) for n, v in zip(COUNTER_NAMES, self.values)}

    def __repr__(self):
        return f"SharedCounters({ {k: v for k, v in self.as_dict().items() if v} })"


# ---------------------------------------------------------------------------------------------
# REST snapshot (msgspec: validated while decoded; level arrays stay raw JSON for the C parser).
# Stream messages are scanned by _binance.FastDecoder.
# ---------------------------------------------------------------------------------------------

class Snapshot(msgspec.Struct, gc=False):
    """REST depth snapshot (``/api/v3/depth``, ``/fapi/v1/depth``)."""

    lastUpdateId: int
    bids: msgspec.Raw
    asks: msgspec.Raw
    E: int = 0
    T: int = 0


_SNAPSHOT = msgspec.json.Decoder(Snapshot)


# ---------------------------------------------------------------------------------------------
# BookSync: the local order-book procedure for one instrument
# ---------------------------------------------------------------------------------------------

class BookSync:
    """Binance's local order-book procedure for one instrument, emitting MD records to ``out``.

    States: not synced (diffs buffered, a snapshot wanted or pending) and synced (diffs applied
    after a continuity check). The feed asks :attr:`needs_snapshot` and hands the REST body to
    :meth:`on_snapshot`; :meth:`reset` starts over after a disconnect, stale period or overflow.
    """

    def __init__(self, instrument: Instrument, market: str, out: MdBuffer, counters: Counters,
                 max_buffered: int = 10_000, state: SyncState | None = None, slot: int = 0):
        if market not in MARKETS:
            raise ValueError(f"market {market!r}: expected one of {MARKETS}")
        self.instrument = instrument
        self.market = market
        self.futures = market == "usdm"
        self.out = out
        self.c = counters
        self.max_buffered = max_buffered
        self.buffered: collections.deque = collections.deque()
        self.pending = None  # (Snapshot, ts) waiting for a straddling diff
        # synced / last_u / _first live in a SyncState shared with the decoder's C fast path
        self._st = state if state is not None else SyncState(1)
        self._slot = slot
        self.synced = False
        self.last_u = 0
        self._first = False
        self.resync_count = 0

    synced = property(lambda self: self._st.get_synced(self._slot),
                      lambda self, v: self._st.set_synced(self._slot, v),
                      doc="book in sync: diffs are applied after the continuity check")
    last_u = property(lambda self: self._st.get_last_u(self._slot),
                      lambda self, v: self._st.set_last_u(self._slot, v),
                      doc="final update id of the last diff (or snapshot) applied")
    _first = property(lambda self: self._st.get_first(self._slot),
                      lambda self, v: self._st.set_first(self._slot, v),
                      doc="the next diff is the first after a snapshot (no continuity check)")

    # -- state ------------------------------------------------------------------------------
    @property
    def needs_snapshot(self) -> bool:
        """True when a REST snapshot should be fetched: not synced, none pending, diffs buffered."""
        return not self.synced and self.pending is None and len(self.buffered) > 0

    def reset(self, ts: int, status: int = 0, detail: int = 0) -> None:
        """Forget the book state; with ``status`` emit ``MD_STATUS(status)`` (GAP, STALE, DISCONNECTED)."""
        if status:
            self.out.add_status(self.instrument.id, ts, ts, status, self.last_u, detail, LAST)
            if status == FeedStatus.GAP:
                self.c.add("gaps")
        self.synced = False
        self.pending = None
        self.buffered.clear()
        self._first = False

    # -- input ------------------------------------------------------------------------------
    def on_diff(self, d, ts: int) -> None:
        if self.synced:
            self._apply(d, ts, ts)
            return
        self.buffered.append((d, ts))
        if len(self.buffered) > self.max_buffered:
            self.buffered.popleft()
            self.c.add("buffer_dropped")
        if self.pending is not None:
            self._try_sync()

    def on_snapshot(self, snap: Snapshot, ts: int) -> None:
        if self.synced:
            return  # a late answer to a request that is no longer needed
        self.pending = (snap, ts)
        self._try_sync()

    # -- procedure --------------------------------------------------------------------------
    def _try_sync(self) -> None:
        snap, sts = self.pending
        L = snap.lastUpdateId
        buf = self.buffered
        futures = self.futures
        # drop what the snapshot already contains
        while buf and (buf[0][0].u < L if futures else buf[0][0].u <= L):
            buf.popleft()
            self.c.add("diffs_dropped_stale")
        if not buf:
            return  # keep the snapshot, wait for the straddling diff
        d = buf[0][0]
        if not ((d.U <= L <= d.u) if futures else (d.U <= L + 1 <= d.u)):
            # first remaining diff starts after the snapshot: the snapshot is too old
            self.pending = None
            self.c.add("snapshot_refetch")
            return
        if not self._emit_snapshot(snap, sts):
            self.pending = None
            return
        self.pending = None
        self.synced = True
        self.last_u = L
        self._first = True
        self.resync_count += 1
        self.c.add("snapshots")
        while buf and self.synced:
            d, dts = buf.popleft()
            self._apply(d, dts if dts > sts else sts, dts)

    def _emit_snapshot(self, snap: Snapshot, ts: int) -> bool:
        out = self.out
        inst = self.instrument
        start = out.n
        L = snap.lastUpdateId
        t = snap.T or snap.E
        tev = t * _NS_PER_MS if t else ts
        out.add_status(inst.id, ts, tev, FeedStatus.SNAPSHOT_BEGIN, L, 0, SNAP)
        nb = out.add_levels(snap.bids, BUY, inst.id, ts, tev, L, inst.price_decimals, inst.qty_decimals, SNAP)
        na = out.add_levels(snap.asks, SELL, inst.id, ts, tev, L, inst.price_decimals, inst.qty_decimals, SNAP) if nb >= 0 else nb
        if nb < 0 or na < 0:
            out.truncate(start)
            self.c.add("malformed_snapshot")
            return False
        out.add_status(inst.id, ts, tev, FeedStatus.SNAPSHOT_END, L, nb + na, SNAP | LAST)
        return True

    def _apply(self, d, ts: int, recv_ts: int) -> None:
        last = self.last_u
        if self._first:
            self._first = False
        elif self.futures:
            if d.pu != last:
                if d.u <= last:
                    self.c.add("diffs_dropped_old")
                    return
                self._gap(d, recv_ts, last)
                return
        else:
            if d.u <= last:
                self.c.add("diffs_dropped_old")
                return
            if d.U > last + 1:
                self._gap(d, recv_ts, last + 1)
                return
        out = self.out
        inst = self.instrument
        tev = (d.T if self.futures and d.T > 0 else d.E) * _NS_PER_MS
        start = out.n
        nb = out.add_levels(d.b, BUY, inst.id, ts, tev, d.u, inst.price_decimals, inst.qty_decimals, 0)
        na = out.add_levels(d.a, SELL, inst.id, ts, tev, d.u, inst.price_decimals, inst.qty_decimals, 0) if nb >= 0 else nb
        if nb < 0 or na < 0:
            out.truncate(start)
            self.c.add("malformed_levels" if min(nb, na) == LEVELS_SYNTAX else "malformed_decimal")
            # the chain needs this diff and it cannot be applied: the book is no longer exact
            self._gap(None, recv_ts, last + (0 if self.futures else 1))
            return
        if nb + na:
            out.flag_last(LAST)
        self.last_u = d.u

    def _gap(self, d, ts: int, expected: int) -> None:
        self.out.add_status(self.instrument.id, ts, ts, FeedStatus.GAP, self.last_u, expected, LAST)
        self.c.add("gaps")
        self.synced = False
        self.pending = None
        self.buffered.clear()
        self._first = False
        if d is not None:
            self.buffered.append((d, ts))


# ---------------------------------------------------------------------------------------------
# BinanceDecoder: routes combined-stream messages of one market to per-instrument BookSyncs
# ---------------------------------------------------------------------------------------------

_ERR_REASON = {ERR_JSON: "json", ERR_FIELD: "field", ERR_DECIMAL: "decimal", ERR_STREAM: "stream"}
#: depth stream names accepted for a symbol (whatever the subscribed update speed)
_DEPTH_SUFFIXES = ("depth", "depth@0ms", "depth@100ms", "depth@250ms", "depth@500ms", "depth@1000ms")


class BinanceDecoder:
    """Decoder of one combined-stream connection (one market, one or more instruments).

    Parameters
    ----------
    instruments : list of Instrument
        Their ``symbol`` (e.g. ``"BTCUSDT"``) selects the streams; ``id`` goes in every record.
    market : {"spot", "usdm"}
    out : MdBuffer, optional
        Where records go (``out.take()`` hands them out as a SLOT64 array view).
    counters : Counters, optional
    depth_speed : str, optional
        Depth stream suffix (``"100ms"``, ``"0ms"``, ``""`` for the 1 s stream).
    fast_path : bool
        Let the C scanner apply in-sequence diffs of a synced book itself (``FastDecoder`` with a
        ``SyncState``); False sends every diff through ``BookSync`` in Python. Same records either
        way (tested); False exists for that test and the bench's comparison.
    """

    def __init__(self, instruments, market: str, out: MdBuffer | None = None,
                 counters: Counters | None = None, depth_speed: str | None = None,
                 max_buffered: int = 10_000, samples: int = 16, fast_path: bool = True):
        if market not in MARKETS:
            raise ValueError(f"market {market!r}: expected one of {MARKETS}")
        self.market = market
        self.out = out if out is not None else MdBuffer()
        self.c = counters if counters is not None else Counters()
        self.depth_speed = DEFAULT_DEPTH_SPEED[market] if depth_speed is None else depth_speed
        self.syncs: dict[str, BookSync] = {}
        self._state = SyncState(max(len(instruments), 1))
        for slot, inst in enumerate(instruments):
            key = inst.symbol.lower()
            if key in self.syncs:
                raise ValueError(f"instrument {inst.symbol} given twice")
            self.syncs[key] = BookSync(inst, market, self.out, self.c, max_buffered, self._state, slot)
        self._slots = list(self.syncs.values())
        routes = {}
        for slot, (sym, sync) in enumerate(self.syncs.items()):
            inst = sync.instrument
            args = (slot, inst.id, inst.price_decimals, inst.qty_decimals, market == "usdm")
            for suffix in _DEPTH_SUFFIXES:
                routes[f"{sym}@{suffix}"] = (KIND_DEPTH, *args)
            routes[f"{sym}@trade"] = (KIND_TRADE, *args)
            routes[f"{sym}@bookTicker"] = (KIND_BBO, *args)
        self._fast = FastDecoder(self.out, routes, self._state if fast_path else None)
        #: the last few malformed messages: (reason, receive ns, first 200 bytes)
        self.malformed_samples: collections.deque = collections.deque(maxlen=samples)

    # -- subscription -----------------------------------------------------------------------
    def streams(self) -> list[str]:
        """Combined-stream names to subscribe to: depth diffs, trades and bookTicker per symbol."""
        depth = "depth" + (f"@{self.depth_speed}" if self.depth_speed else "")
        out = []
        for sym in self.syncs:
            out += [f"{sym}@{depth}", f"{sym}@trade", f"{sym}@bookTicker"]
        return out

    # -- input ------------------------------------------------------------------------------
    def malformed(self, reason: str, ts: int, msg) -> None:
        """Count a malformed input by reason and keep a sample of it."""
        self.c.add("malformed_" + reason)
        self.malformed_samples.append((reason, ts, bytes(msg[:200])))

    def on_message(self, msg, ts: int) -> int:
        """Decode one combined-stream message (bytes) received at ``ts`` (ns); returns records added.

        The message is scanned once in C (``FastDecoder``: strict JSON, field types checked);
        trades and bookTickers become records right there, depth diffs go to their BookSync.
        """
        out = self.out
        n0 = out.n
        c = self.c
        c.messages += 1
        if type(msg) is str:
            msg = msg.encode()
        fast = self._fast
        rc = fast.decode(msg, ts)
        if rc == DEPTH:
            self._slots[fast.slot].on_diff(fast.diff, ts)
        elif rc != DONE:
            self.malformed(_ERR_REASON[rc], ts, msg)
            return 0
        k = out.n - n0
        c.records += k
        return k

    def on_snapshot(self, symbol: str, body, ts: int) -> int:
        """Hand the REST depth snapshot body for ``symbol`` to its BookSync; returns records added."""
        out = self.out
        n0 = out.n
        sync = self.syncs.get(symbol.lower())
        if sync is None:
            self.malformed("stream", ts, body)
            return 0
        try:
            snap = _SNAPSHOT.decode(body)
        except msgspec.DecodeError:
            self.malformed("snapshot", ts, body)
            return 0
        sync.on_snapshot(snap, ts)
        k = out.n - n0
        self.c.add("records", k)
        return k

    def needing_snapshot(self) -> list[str]:
        """Symbols (upper case) whose BookSync wants a REST snapshot now."""
        return [s.instrument.symbol for s in self.syncs.values() if s.needs_snapshot]

    def reset_all(self, ts: int, status: int = 0, detail: int = 0) -> int:
        """:meth:`BookSync.reset` on every instrument; returns records added."""
        n0 = self.out.n
        for s in self.syncs.values():
            s.reset(ts, status, detail)
        k = self.out.n - n0
        self.c.add("records", k)
        return k

    def status_all(self, ts: int, status: int, detail: int = 0) -> int:
        """Emit ``MD_STATUS(status)`` for every instrument without touching the sync state."""
        n0 = self.out.n
        for s in self.syncs.values():
            self.out.add_status(s.instrument.id, ts, ts, status, s.last_u, detail, LAST)
        k = self.out.n - n0
        self.c.add("records", k)
        return k
