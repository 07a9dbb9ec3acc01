"""The OKX and Kraken feed processes (``[feed] kind = "okx"`` / ``"kraken"``): websocket -> decoder
(``livestack.feeds.okx`` / ``kraken``) -> md ring.

::

    venue (or testing.ws_replay)  --ws-->  WsSession (picows | websockets)  -->  OkxDecoder/KrakenDecoder
                                                                               --> MdBuffer --> md ring
    a checksum mismatch / sequence break -> MD_STATUS(GAP) -> unsubscribe + subscribe that book
    (the venue answers with a fresh snapshot); stale stream -> STALE, reconnect; lost connection ->
    DISCONNECTED, reconnect with exponential backoff. OKX gets a text "ping" when idle (its keepalive).

Entry points (the feed contract): ``run_okx`` / ``run_kraken(ring_name, instruments, options, stop)``;
``options`` are checked against :class:`OkxFeedOptions` / :class:`KrakenFeedOptions` (the config
contract of these kinds). Instrument ``symbol`` is the venue's (``BTC-USDT-SWAP``, ``BTC/USD``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

import msgspec

from livestack.feeds import kraken, okx
from livestack.feeds._binance import MdBuffer
from livestack.feeds.ws_transport import TRANSPORTS, WsSession
from livestack.ipc.wait import Backoff
from livestack.schema import FeedStatus

log = logging.getLogger(__name__)


class _Common(msgspec.Struct, forbid_unknown_fields=True):
    transport: str = "picows"            # "picows" | "websockets"
    trades: bool = True
    stale_ms: float = 30_000.0
    ping_interval_s: float = 20.0
    reconnect_min_s: float = 0.1
    reconnect_max_s: float = 5.0
    attach_timeout_s: float = 5.0
    overflow_wait_ms: float = 20.0
    log_level: str = "WARNING"

    def check(self) -> list[tuple[str, str]]:
        """Cross-field rules as (key, message) pairs (the config schema, livestack.node.schema, calls it)."""
        if self.transport not in TRANSPORTS:
            return [("transport", f"= {self.transport!r}: expected one of {TRANSPORTS}")]
        return []


class OkxFeedOptions(_Common, forbid_unknown_fields=True):
    ws_url: str = okx.DEFAULT_WS_URL
    channel: str = "books"               # books | books-l2-tbt | books50-l2-tbt

    def check(self):
        out = _Common.check(self)
        if self.channel not in okx.BOOK_CHANNELS:
            out.append(("channel", f"= {self.channel!r}: expected one of {okx.BOOK_CHANNELS}"))
        return out


class KrakenFeedOptions(_Common, forbid_unknown_fields=True):
    ws_url: str = kraken.DEFAULT_WS_URL
    version: int = 2                     # 2 (ws v2) | 1 (the old v1 API)
    depth: int = 10

    def check(self):
        out = _Common.check(self)
        if self.version not in (1, 2):
            out.append(("version", f"= {self.version}: expected 1 or 2"))
        if self.depth not in (10, 25, 100, 500, 1000):
            out.append(("depth", f"= {self.depth}: Kraken offers 10, 25, 100, 500, 1000"))
        return out


def _convert(options, cls, kind):
    try:
        o = msgspec.convert(dict(options or {}), cls)
    except msgspec.ValidationError as e:
        raise ValueError(f"feed.options (kind {kind}): {e}") from None
    problems = o.check()
    if problems:
        key, msg = problems[0]
        raise ValueError(f"feed.options.{key} {msg}")
    return o


def validate_okx(options) -> OkxFeedOptions:
    return _convert(options, OkxFeedOptions, "okx")


def validate_kraken(options) -> KrakenFeedOptions:
    return _convert(options, KrakenFeedOptions, "kraken")


class VenueFeed:
    """One websocket connection for the instruments of one venue, into one md ring."""

    def __init__(self, ring, instruments, venue: str, opts, stop=None):
        self.ring = ring
        self.venue = venue
        self.o = opts
        self.out = MdBuffer(8192)
        if venue == "okx":
            self.dec = okx.OkxDecoder(instruments, self.out)
        else:
            self.dec = kraken.KrakenDecoder(instruments, self.out, depth=opts.depth)
        self.c = self.dec.c
        self.symbols = [i.symbol for i in instruments]
        self.stop = stop
        self.seq = 1
        self._stopping = False
        self._sess: WsSession | None = None
        self._last_msg = time.monotonic()
        self._backoff = Backoff("backoff")
        self._overflow_wait = opts.overflow_wait_ms / 1000.0

    # -- subscription -----------------------------------------------------------------------
    def subscribe_messages(self) -> list[bytes]:
        if self.venue == "okx":
            chans = (self.o.channel,) + (("trades",) if self.o.trades else ())
            return [okx.subscribe_message(self.symbols, chans)]
        msgs = kraken.subscribe_messages(self.symbols, self.o.depth, self.o.version == 2)
        return msgs if self.o.trades else msgs[:1]

    def resubscribe_messages(self, symbols) -> list[bytes]:
        if self.venue == "okx":
            return [okx.unsubscribe_message(symbols, (self.o.channel,)),
                    okx.subscribe_message(symbols, (self.o.channel,))]
        return kraken.resubscribe_messages(symbols, self.o.depth, self.o.version == 2)

    # -- ring -------------------------------------------------------------------------------
    def flush(self) -> int:
        out = self.out
        n = out.n
        if n == 0:
            return 0
        ring = self.ring
        k = out.write_to(ring, self.seq, 0)
        while k < n and ring.wait_writable(self._overflow_wait, 1, self._backoff):
            k += out.write_to(ring, self.seq + k, k)
        self.seq += k
        out.clear()
        if k < n:
            self.c.overflows += 1
            self.c.overflow_records += n - k
            self.dec.reset_all(time.time_ns(), FeedStatus.GAP, -1)
            for st in self.dec.states.values():
                st.resync_wanted = True
        return k

    # -- messages ---------------------------------------------------------------------------
    def on_message(self, msg: bytes, ts: int) -> None:
        self.dec.on_message(msg, ts)

    def on_batch_end(self) -> None:
        """After what one socket read delivered: records to the ring, resubscribe broken books."""
        self._last_msg = time.monotonic()
        self.flush()
        for st in self.dec.states.values():
            if st.resync_wanted:
                syms = self.dec.take_resyncs()
                log.warning("%s: book of %s no longer exact (checksum/sequence), resubscribing", self.venue, syms)
                asyncio.ensure_future(self._send(self.resubscribe_messages(syms)))
                break

    async def _send(self, msgs) -> None:
        sess = self._sess
        if sess is None:
            return
        for m in msgs:
            try:
                await sess.send(m)
            except Exception as e:  # the connection went: the reconnect resubscribes everything
                log.warning("%s: send failed: %s", self.venue, e)
                return

    async def _on_open(self, sess: WsSession) -> None:
        self.c.connects += 1
        now = time.time_ns()
        self._last_msg = time.monotonic()
        self.dec.reset_all(now)
        self.dec.status_all(now, FeedStatus.CONNECTED)
        self.flush()
        await self._send(self.subscribe_messages())

    # -- loop -------------------------------------------------------------------------------
    async def _watchdog(self) -> None:
        stale_s = self.o.stale_ms / 1000.0
        last_ping = time.monotonic()
        while not self._stopping:
            await asyncio.sleep(0.05)
            if self.stop is not None and self.stop.is_set():
                self._stopping = True
                if self._sess is not None:
                    await self._sess.close()
                return
            sess = self._sess
            if sess is None:
                continue
            now = time.monotonic()
            if now - self._last_msg > stale_s:
                self.dec.reset_all(time.time_ns(), FeedStatus.STALE, int((now - self._last_msg) * 1e9))
                self.flush()
                self._last_msg = now
                await sess.close()
            elif self.o.ping_interval_s and now - last_ping >= self.o.ping_interval_s:
                last_ping = now
                if self.venue == "okx":
                    await self._send([b"ping"])
                else:
                    await sess.ping()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGTERM, lambda: setattr(self, "_stopping", True))
        except (NotImplementedError, RuntimeError, ValueError):
            pass
        dog = asyncio.ensure_future(self._watchdog())
        delay = self.o.reconnect_min_s
        first = True
        try:
            while not self._stopping:
                if not first:
                    self.c.reconnects += 1
                first = False
                self._sess = WsSession(self.o.ws_url, self.o.transport, self._on_open, self.on_message,
                                       on_batch_end=self.on_batch_end)
                try:
                    if await self._sess.run():
                        delay = self.o.reconnect_min_s
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    if not self._stopping:
                        log.warning("%s: connection to %s: %s", self.venue, self.o.ws_url, e)
                finally:
                    self._sess = None
                if self._stopping:
                    break
                self.c.disconnects += 1
                self.dec.reset_all(time.time_ns(), FeedStatus.DISCONNECTED)
                self.flush()
                end = time.monotonic() + delay
                while not self._stopping and time.monotonic() < end:
                    await asyncio.sleep(0.05)
                delay = min(delay * 2, self.o.reconnect_max_s)
        finally:
            dog.cancel()
            self.dec.reset_all(time.time_ns(), FeedStatus.DISCONNECTED)
            self.flush()


def _run(venue: str, ring_name: str, instruments, opts, stop, counters=None) -> None:
    from livestack.ipc import Ring

    logging.basicConfig(level=opts.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    ring = Ring.attach(ring_name, slot_size=64, timeout=opts.attach_timeout_s, role="producer")
    feed = VenueFeed(ring, list(instruments), venue, opts, stop)
    try:
        asyncio.run(feed.run())
    finally:
        log.info("%s feed stopped: %s", venue, feed.c)
        if counters is not None:
            counters.update(feed.c.as_dict())
        ring.close()


def run_okx(ring_name: str, instruments, options: dict, stop, counters=None) -> None:
    """OKX feed process entry point (``spawn``). ``counters``: an optional ``Manager().dict()``
    that receives the final counters (tests)."""
    _run("okx", ring_name, instruments, validate_okx(options), stop, counters)


def run_kraken(ring_name: str, instruments, options: dict, stop, counters=None) -> None:
    """Kraken feed process entry point (``spawn``)."""
    _run("kraken", ring_name, instruments, validate_kraken(options), stop, counters)
