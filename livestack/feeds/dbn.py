"""Databento DBN market-by-order replay as a feed (``[feed] kind = "dbn"``).

A DBN file (``.dbn`` or ``.dbn.zst``, decoded by the ``databento-dbn`` package) of MBO records is
turned into the L2 records every other feed produces: an order-by-order book is kept here
(``order_id -> (side, price, size)`` plus the aggregate size per price level), and every change of a
level's aggregate becomes one ``MD_LEVEL`` (qty 0 deletes); ``T`` (trade) records become
``MD_TRADE`` (side = the aggressor's: ``B`` -> BUY, ``A`` -> SELL, ``N`` -> NONE).

Databento's book rules (their "MBO" schema and order-book examples): ``A`` add, ``C`` cancel
(``size`` is the amount cancelled; the order goes at 0), ``M`` modify (new price and/or size; an
unknown order is an add), ``R`` clear the book, ``T``/``F`` trade/fill leave the book alone (the
exchange follows with the cancel/modify). ``F_LAST`` (flag 128) closes an event: the last MD record
of each event carries ``LAST_IN_MSG``, so a consumer sees the book only in consistent states.

The snapshot: records flagged ``F_SNAPSHOT`` (32) are the book at the start of the file. They build
the order book silently; at the first record without the flag (or ``F_LAST`` on a snapshot record)
the feed emits ``MD_STATUS(SNAPSHOT_BEGIN)``, every level flagged ``SNAPSHOT``, and
``MD_STATUS(SNAPSHOT_END, detail=levels)``. A mid-file ``R`` or snapshot starts another one.

Prices are int64 x 1e-9 in DBN; records carry them at the instrument's ``price_decimals``, exactly
(a price that is not on that grid is counted ``malformed`` and the book marked GAP). ``ts`` is
``ts_recv``, ``ts_event`` is ``ts_event``, ``update_id`` the venue ``sequence``.
"""

from __future__ import annotations

import logging
import time

import msgspec
import numpy as np

from livestack.feeds._binance import MdBuffer
from livestack.schema import SLOT64, FeedStatus, RecordFlag, Side

log = logging.getLogger(__name__)

F_LAST = 128
F_SNAPSHOT = 32
LAST = int(RecordFlag.LAST_IN_MSG)
SNAP = int(RecordFlag.SNAPSHOT)
REPLAYED = int(RecordFlag.REPLAYED)
_SIDE = {"B": int(Side.BUY), "A": int(Side.SELL), "N": int(Side.NONE)}


class DbnFeedOptions(msgspec.Struct, forbid_unknown_fields=True):
    """``[feed] kind = "dbn"`` options (the config contract of this feed)."""

    path: str
    #: DBN ``instrument_id`` -> livestack instrument symbol; default: the DBN symbol mappings
    instrument_map: dict[str, str] = {}
    pace: str = "max"           # "max" | "recorded"
    speed: float = 1.0
    attach_timeout_s: float = 5.0
    ring_timeout_s: float = 10.0

    def check(self) -> list[tuple[str, str]]:
        """Cross-field rules as (key, message) pairs (the config schema, livestack.node.schema, calls it)."""
        import os

        out = []
        if self.pace not in ("max", "recorded"):
            out.append(("pace", f"= {self.pace!r}: expected 'max' or 'recorded'"))
        if self.speed <= 0:
            out.append(("speed", "must be > 0"))
        if not os.path.exists(self.path):
            out.append(("path", f"= {self.path!r}: no such file"))
        return out


def validate_options(options: dict) -> DbnFeedOptions:
    try:
        o = msgspec.convert(dict(options or {}), DbnFeedOptions)
    except msgspec.ValidationError as e:
        raise ValueError(f"feed.options (kind dbn): {e}") from None
    problems = [p for p in o.check() if p[0] != "path"]  # the file is checked when the feed opens it
    if problems:
        key, msg = problems[0]
        raise ValueError(f"feed.options.{key} {msg}")
    return o


def read_dbn(path):
    """``(metadata, [records])`` of a DBN file (zstd detected from the name)."""
    import databento_dbn as db

    zst = str(path).endswith(".zst")
    dec = db.DBNDecoder(compression=db.Compression.ZSTD) if zst else db.DBNDecoder()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            dec.write(chunk)
    recs = dec.decode()
    meta = recs[0] if recs and type(recs[0]).__name__ == "Metadata" else None
    return meta, (recs[1:] if meta is not None else recs)


class MboBook:
    """Order-by-order book of one instrument emitting L2 level changes."""

    __slots__ = ("orders", "levels", "inst", "scale", "out", "in_snapshot", "synced", "malformed", "open_event")

    def __init__(self, inst, out: MdBuffer):
        self.orders: dict[int, tuple] = {}
        self.levels: tuple[dict, dict] = ({}, {})   # BUY, SELL: price -> aggregate size
        self.inst = inst
        exp = 9 - inst.price_decimals
        if exp < 0:
            raise ValueError(f"instrument {inst.symbol}: price_decimals > 9 (DBN prices are 1e-9)")
        self.scale = 10 ** exp
        self.out = out
        self.in_snapshot = False
        self.synced = False
        self.malformed = 0
        self.open_event = False

    def _px(self, p: int) -> int:
        q, r = divmod(p, self.scale)
        if r:
            raise ValueError(f"price {p}e-9 not on the {self.inst.price_decimals}-decimal grid")
        return q

    def _change(self, sd: int, px: int, dq: int, ts: int, tev: int, seq: int) -> None:
        lv = self.levels[0 if sd == 1 else 1]
        q = lv.get(px, 0) + dq
        if q > 0:
            lv[px] = q
        else:
            lv.pop(px, None)
            q = 0
        if not self.in_snapshot:
            self.out.add_level(self.inst.id, ts, tev, px, q, seq, sd, 0)

    def clear(self) -> None:
        self.orders.clear()
        self.levels[0].clear()
        self.levels[1].clear()

    def emit_snapshot(self, ts: int, tev: int, seq: int) -> None:
        out, iid = self.out, self.inst.id
        out.add_status(iid, ts, tev, int(FeedStatus.SNAPSHOT_BEGIN), seq, 0, SNAP)
        n = 0
        for sd, lv in ((1, self.levels[0]), (2, self.levels[1])):
            for px in sorted(lv, reverse=(sd == 1)):
                out.add_level(iid, ts, tev, px, lv[px], seq, sd, SNAP)
                n += 1
        out.add_status(iid, ts, tev, int(FeedStatus.SNAPSHOT_END), seq, n, SNAP | LAST)
        self.in_snapshot = False
        self.synced = True

    def on_record(self, r) -> None:
        flags = int(r.flags)
        ts, tev, seq = r.ts_recv, r.ts_event, r.sequence
        action = str(r.action)
        snap = bool(flags & F_SNAPSHOT)
        if self.in_snapshot and not snap:
            self.emit_snapshot(ts, tev, seq)
        if snap and not self.in_snapshot and (not self.synced or action == "R"):
            self.in_snapshot = True
            self.clear()
        out = self.out
        n0 = out.n
        try:
            if action == "A":
                sd = _SIDE[str(r.side)]
                px = self._px(r.price)
                self.orders[r.order_id] = (sd, px, r.size)
                self._change(sd, px, r.size, ts, tev, seq)
            elif action == "C":
                o = self.orders.get(r.order_id)
                if o is not None:
                    sd, px, size = o
                    dq = min(r.size, size)
                    if size - dq > 0:
                        self.orders[r.order_id] = (sd, px, size - dq)
                    else:
                        del self.orders[r.order_id]
                    self._change(sd, px, -dq, ts, tev, seq)
            elif action == "M":
                sd = _SIDE[str(r.side)]
                px = self._px(r.price)
                o = self.orders.get(r.order_id)
                if o is not None:
                    osd, opx, osize = o
                    self._change(osd, opx, -osize, ts, tev, seq)
                self.orders[r.order_id] = (sd, px, r.size)
                self._change(sd, px, r.size, ts, tev, seq)
            elif action == "R":
                if not self.in_snapshot:
                    self.in_snapshot = True
                self.clear()
            elif action == "T":
                px = self._px(r.price)
                out.add_trade(self.inst.id, ts, tev, px, r.size, seq, _SIDE.get(str(r.side), 0), 0)
            # F (fill) and N (none) leave the book alone
        except (ValueError, KeyError):
            out.truncate(n0)
            self.malformed += 1
            out.add_status(self.inst.id, ts, ts, int(FeedStatus.GAP), seq, 0, LAST)
            self.synced = False
            return
        if out.n > n0:
            self.open_event = True
        if flags & F_LAST:
            if self.in_snapshot and snap:
                self.emit_snapshot(ts, tev, seq)
            elif self.open_event:
                out.flag_last(LAST)
            self.open_event = False


class DbnReplay:
    """All MBO records of a DBN file -> MD records, per instrument (``instruments`` by symbol)."""

    def __init__(self, path, instruments, instrument_map: dict | None = None):
        self.meta, self.records = read_dbn(path)
        by_symbol = {i.symbol: i for i in instruments}
        imap = dict(instrument_map or {})
        if not imap and self.meta is not None:
            for raw, intervals in dict(self.meta.mappings).items():  # {"ESH4": [{"symbol": "17077", ...}]}
                for iv in intervals:
                    imap[str(iv["symbol"])] = raw
        self.out = MdBuffer(1 << 16)
        self.books: dict[int, MboBook] = {}
        for iid, sym in imap.items():
            if sym in by_symbol:
                self.books[int(iid)] = MboBook(by_symbol[sym], self.out)
        if not self.books:
            raise ValueError(f"{path}: none of the DBN instruments {sorted(imap.items())} is configured "
                             f"(instruments: {sorted(by_symbol)}); set feed.options.instrument_map")
        self.skipped = 0

    def feed(self, r) -> None:
        b = self.books.get(r.instrument_id)
        if b is None or type(r).__name__ != "MBOMsg":
            self.skipped += 1
            return
        b.on_record(r)

    def finish(self) -> None:
        for b in self.books.values():
            if b.in_snapshot:
                last = self.records[-1]
                b.emit_snapshot(last.ts_recv, last.ts_event, last.sequence)


def decode_dbn(path, instruments, instrument_map=None) -> np.ndarray:
    """A whole DBN file as 64-byte MD records (``SLOT64``), ``seq`` 1..N, flagged ``REPLAYED``."""
    rp = DbnReplay(path, instruments, instrument_map)
    for r in rp.records:
        rp.feed(r)
    rp.finish()
    recs = np.array(rp.out.arr[:rp.out.n], dtype=SLOT64, copy=True)
    recs["seq"] = np.arange(1, len(recs) + 1, dtype=np.uint64)
    recs["flags"] |= REPLAYED
    return recs


def run_process(ring_name: str, instruments, options: dict, stop) -> None:
    """Feed process entry point: replay the DBN file into the md ring, then wait for ``stop``."""
    from livestack.ipc import Backoff, Ring

    o = validate_options(options)
    ring = Ring.attach(ring_name, slot_size=64, timeout=o.attach_timeout_s, role="producer")
    try:
        rp = DbnReplay(o.path, list(instruments), o.instrument_map)
        out = rp.out
        seq = 1
        backoff = Backoff("backoff")
        t0_wall = time.perf_counter_ns()
        t0_rec = rp.records[0].ts_recv if rp.records else 0

        def flush():
            nonlocal seq
            out_n = out.n
            if out_n:
                out.arr["flags"][:out_n] |= REPLAYED  # a replay, as decode_dbn marks it
            k = 0
            deadline = time.monotonic() + o.ring_timeout_s
            while k < out_n:
                got = out.write_to(ring, seq + k, k)
                if got:
                    k += got
                    deadline = time.monotonic() + o.ring_timeout_s
                    backoff.reset()
                    continue
                if stop is not None and stop.is_set():
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"dbn feed: ring {ring_name} full for {o.ring_timeout_s} s")
                backoff.idle()
            seq += k
            out.clear()

        for i, r in enumerate(rp.records):
            if stop is not None and (i & 255) == 0 and stop.is_set():
                break
            if o.pace == "recorded":
                due = t0_wall + int((r.ts_recv - t0_rec) / o.speed)
                now = time.perf_counter_ns()
                if due > now:
                    flush()
                    time.sleep((due - now) / 1e9)
            rp.feed(r)
            if out.n >= 4096 and int(r.flags) & F_LAST:  # whole events only
                flush()
        rp.finish()
        flush()
        log.info("dbn feed: %d records replayed from %s (%d skipped)", seq - 1, o.path, rp.skipped)
        while stop is not None and not stop.wait(0.2):
            pass
    finally:
        ring.close()
