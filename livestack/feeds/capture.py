"""Recorded Binance captures: decode to MD records, or replay them straight into a ring (no network).

Capture format (``../shared/data/binance/*.gz``): gzip text, one message a line,
``<local receive ns> <json>``. Lines are combined-stream envelopes
(``{"stream": ..., "data": ...}``) except the REST depth snapshot (``{"lastUpdateId": ...}``),
which appears where the recorder received it, after a few diffs. Both go through the same
:class:`~livestack.feeds.binance.BinanceDecoder` and BookSync the live feed uses.
"""

from __future__ import annotations

import time

import numpy as np

from livestack.config import Instrument
from livestack.feeds.binance import BinanceDecoder, Counters, MdBuffer
from livestack.schema import SLOT64, FeedStatus, RecordFlag

REPLAYED = int(RecordFlag.REPLAYED)


def read_capture(path, fmt: str | None = None) -> list[tuple[int, bytes]]:
    """All lines of a capture as ``(receive ns, message bytes)``; snapshot lines included.

    Any format ``livestack capture verify`` reads (``capture_formats.FORMATS``: the native
    ``<ns> <json>`` lines, cryptofeed's raw recorder files), detected from the first lines.
    """
    from livestack.feeds.capture_formats import read_messages

    return [(m.ts, m.data) for m in read_messages(path, fmt).messages]


def is_snapshot(msg: bytes) -> bool:
    """A REST depth snapshot line (not a combined-stream envelope)."""
    return msg[:40].lstrip().startswith(b'{"lastUpdateId"')


def _decoder(instrument: Instrument, market: str, counters: Counters | None):
    return BinanceDecoder([instrument], market, MdBuffer(1 << 16), counters or Counters())


def decode_capture(path, instrument: Instrument, market: str = "usdm", *, counters: Counters | None = None,
                   connected: bool = True, replayed: bool = True) -> np.ndarray:
    """Decode a whole capture into 64-byte MD records (dtype ``livestack.schema.SLOT64``).

    Every kind is there, in stream order: ``MD_STATUS(CONNECTED)`` first (``connected``), then
    trades and BBOs as they come, the snapshot (``SNAPSHOT_BEGIN`` / levels flagged ``SNAPSHOT`` /
    ``SNAPSHOT_END``) when the BookSync has a straddling diff, buffered and later diffs as
    ``MD_LEVEL`` (last of each message flagged ``LAST_IN_MSG``). ``seq`` is 1..N; ``flags`` has
    ``REPLAYED`` when ``replayed``. Decode a record's body with
    ``arr.view(livestack.schema.DTYPE_BY_KIND[kind])`` on the rows of that kind.

    Parameters
    ----------
    path : str or path-like
        Capture file (gzip or plain).
    instrument : Instrument
        Decimals and id of the records (e.g. ``livestack.config.BTCUSDT_USDM``).
    market : {"usdm", "spot", "okx", "kraken"}
        Binance: selects the continuity rule (``pu`` chain vs ``U``/``u``); ``okx`` / ``kraken``: an
        OKX / Kraken websocket capture through their checksummed book decoders (the instrument's
        ``symbol`` is the venue's, e.g. ``BTC-USDT``, ``BTC/USD``).
    counters : Counters, optional
        Filled with what was seen (messages, malformed by reason, gaps, snapshots ...).
    """
    lines = read_capture(path)
    if market in L2_MARKETS:
        return _decode_l2(lines, instrument, market, connected, replayed)
    dec = _decoder(instrument, market, counters)
    out = dec.out
    if connected and lines:
        dec.status_all(lines[0][0], FeedStatus.CONNECTED)
    sym = instrument.symbol
    for ts, msg in lines:
        if is_snapshot(msg):
            dec.on_snapshot(sym, msg, ts)
        else:
            dec.on_message(msg, ts)
    recs = np.array(out.view(), dtype=SLOT64, copy=True)
    recs["seq"] = np.arange(1, len(recs) + 1, dtype=np.uint64)
    if replayed:
        recs["flags"] |= REPLAYED
    return recs


#: ``market`` values of :func:`decode_capture` served by the OKX / Kraken decoders
L2_MARKETS = ("okx", "kraken")


def _decode_l2(lines, instrument: Instrument, market: str, connected: bool, replayed: bool) -> np.ndarray:
    if market == "okx":
        from livestack.feeds.okx import OkxDecoder as Dec
    else:
        from livestack.feeds.kraken import KrakenDecoder as Dec
    dec = Dec([instrument], MdBuffer(1 << 16))
    if connected and lines:
        dec.status_all(lines[0][0], FeedStatus.CONNECTED)
    for ts, msg in lines:
        dec.on_message(msg, ts)
    recs = np.array(dec.out.arr[:dec.out.n], dtype=SLOT64, copy=True)
    recs["seq"] = np.arange(1, len(recs) + 1, dtype=np.uint64)
    if replayed:
        recs["flags"] |= REPLAYED
    return recs


def replay_into_ring(path, ring, instrument: Instrument, market: str = "usdm", pace: str = "max", *,
                     speed: float = 1.0, stop=None, counters: Counters | None = None,
                     timeout: float = 10.0, first_seq: int = 1) -> int:
    """Decode a capture and write its records into ``ring`` (a 64-byte md ring); returns records written.

    ``pace="max"`` writes as fast as the consumer takes them; ``pace="recorded"`` reproduces the
    recorded inter-arrival times (divided by ``speed``), each message's records written when its
    receive time comes. Never drops: when the ring is full it waits with ``Backoff("backoff")``
    for the consumer (replay is research, not live: nothing is lost), giving up with
    ``TimeoutError`` after ``timeout`` seconds without progress. ``stop`` (an Event) ends early.
    Records carry flag ``REPLAYED`` and ``seq`` from ``first_seq``.
    """
    from livestack.ipc import Backoff

    if pace not in ("max", "recorded"):
        raise ValueError(f"pace {pace!r}: expected 'max' or 'recorded'")
    lines = read_capture(path)
    dec = _decoder(instrument, market, counters)
    out = dec.out
    backoff = Backoff("backoff")
    seq = first_seq
    written = 0
    sym = instrument.symbol

    def flush() -> None:
        nonlocal seq, written
        recs = out.view()
        n = len(recs)
        if not n:
            return
        recs["seq"] = np.arange(seq, seq + n, dtype=np.uint64)
        recs["flags"] |= REPLAYED
        k = 0
        deadline = time.monotonic() + timeout
        backoff.reset()
        while k < n:
            got = ring.write_batch(recs[k:])
            if got:
                k += got
                deadline = time.monotonic() + timeout
                backoff.reset()
                continue
            if stop is not None and stop.is_set():
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"replay into {ring.name}: ring full for {timeout} s")
            backoff.idle()
        seq += k
        written += k
        out.clear()

    if lines:
        dec.status_all(lines[0][0], FeedStatus.CONNECTED)
    t0_rec = lines[0][0] if lines else 0
    t0_wall = time.perf_counter_ns()
    batch_lines = 256 if pace == "max" else 1
    for i, (ts, msg) in enumerate(lines):
        if stop is not None and (i & 255) == 0 and stop.is_set():
            break
        if pace == "recorded":
            due = t0_wall + int((ts - t0_rec) / speed)
            now = time.perf_counter_ns()
            if due > now:
                flush()
                time.sleep((due - now) / 1e9)
        if is_snapshot(msg):
            dec.on_snapshot(sym, msg, ts)
        else:
            dec.on_message(msg, ts)
        if (i + 1) % batch_lines == 0:
            flush()
    flush()
    return written


def book_from_records(recs: np.ndarray):
    """Reference consumer: apply MD records to an L2 book as the core would.

    ``SNAPSHOT_BEGIN`` clears, ``MD_LEVEL`` sets (qty 0 deletes), ``SNAPSHOT_END`` makes the book
    valid, ``GAP``/``STALE``/``DISCONNECTED`` make it invalid. Returns ``(bids, asks, valid)`` with
    ``{price: qty}`` dicts in fixed point. A plain loop, for tests and research, not the hot path.
    """
    from livestack.schema import DTYPE_BY_KIND, RecordKind, Side

    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    valid = False
    lv = np.ascontiguousarray(recs).view(DTYPE_BY_KIND[RecordKind.MD_LEVEL])
    st = np.ascontiguousarray(recs).view(DTYPE_BY_KIND[RecordKind.MD_STATUS])
    kinds = recs["kind"].tolist()
    prices, qtys, sides = lv["price"].tolist(), lv["qty"].tolist(), lv["side"].tolist()
    status = st["status"].tolist()
    begin, end = int(FeedStatus.SNAPSHOT_BEGIN), int(FeedStatus.SNAPSHOT_END)
    bad = (int(FeedStatus.GAP), int(FeedStatus.STALE), int(FeedStatus.DISCONNECTED))
    K_LEVEL, K_STATUS, BUY = int(RecordKind.MD_LEVEL), int(RecordKind.MD_STATUS), int(Side.BUY)
    for i, k in enumerate(kinds):
        if k == K_LEVEL:
            book = bids if sides[i] == BUY else asks
            if qtys[i] == 0:
                book.pop(prices[i], None)
            else:
                book[prices[i]] = qtys[i]
        elif k == K_STATUS:
            s = status[i]
            if s == begin:
                bids.clear()
                asks.clear()
            elif s == end:
                valid = True
            elif s in bad:
                valid = False
    return bids, asks, valid
