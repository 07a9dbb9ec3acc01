"""The Binance feed process: websocket combined stream + REST snapshot -> BookSync -> md ring.

::

    Binance (or testing.replay_server)         feed process (asyncio, one thread)
    wss .../stream?streams=s@depth@0ms/...  ─▶ recv(bytes) ─▶ BinanceDecoder ─▶ MdBuffer ─▶ write_batch ─▶ md.<feed>
    GET .../depth?symbol=S&limit=1000       ─▶ on_snapshot ─┘   (BookSync per symbol)     (seq stamped here)
                                               watchdog: stale -> MD_STATUS(STALE), reconnect
                                               keepalive: ping every ping_interval_s

Entry point (docs/CONTRACTS.md): ``run_process(ring_name, instruments, options, stop)``.

Options (all optional)
----------------------
``market``            "spot" | "usdm"; default from ``Instrument.venue`` ("binance-usdm" -> usdm)
``ws_url``            combined-stream base URL (default Binance's; ``?streams=`` is appended)
``rest_url``          depth snapshot URL (default Binance's; ``?symbol=&limit=`` appended)
``depth_speed``       "100ms" (spot default), "0ms" (usdm default), "" (1 s)
``snapshot_limit``    levels asked of the REST snapshot (1000)
``stale_ms``          no message for this long -> MD_STATUS(STALE) and reconnect (5000)
``ping_interval_s``   client keepalive ping period (10); ``ping_timeout_s`` (10)
``reconnect_min_s`` / ``reconnect_max_s``  exponential reconnect backoff bounds (0.1 / 5.0)
``snapshot_retry_s``  minimum time between snapshot requests for one symbol (0.25, doubling to 5)
``counters``          a ``multiprocessing.Array('q', len(binance.COUNTER_NAMES))`` the process
                      copies its counters into every ``publish_ms`` (50) and at exit; read it with
                      ``livestack.feeds.binance.SharedCounters(array.get_obj())`` (names and order:
                      ``livestack.feeds.binance.COUNTER_NAMES``)
``attach_timeout_s``  how long to wait for the ring to appear (5)
``overflow_wait_ms``  how long a write waits for the consumer to free slots, reset by progress (20)
``transport``         "picows" (default: fastest in ``bench/bench_feed.py``) | "websockets"

Records: see ``livestack.feeds.binance``. On every connect ``MD_STATUS(CONNECTED)``; on a lost
connection ``MD_STATUS(DISCONNECTED)``; on a stale stream ``MD_STATUS(STALE, detail=silence ns)``
then a reconnect; the book is valid again after the next ``SNAPSHOT_END``.

Full ring: a batch that does not fit is written in pieces as the consumer frees slots (waiting
with ``Backoff("backoff")``, never spinning); when the consumer frees none for
``overflow_wait_ms``, the records that do not fit are dropped and counted (``overflows``,
``overflow_records``), every instrument gets ``MD_STATUS(GAP, detail=-1)`` at the head of the
next batch and resyncs from a fresh snapshot (ARCHITECTURE.md, full-ring policy).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time


from livestack.feeds.binance import (
    COUNTER_NAMES, DEFAULT_URLS, BinanceDecoder, Counters, MdBuffer,
)
from livestack.ipc.wait import Backoff
from livestack.schema import FeedStatus

log = logging.getLogger("livestack.feeds.binance")

DEFAULTS = {
    "snapshot_limit": 1000,
    "stale_ms": 5000,
    "ping_interval_s": 10.0,
    "ping_timeout_s": 10.0,
    "reconnect_min_s": 0.1,
    "reconnect_max_s": 5.0,
    "snapshot_retry_s": 0.25,
    "snapshot_retry_max_s": 5.0,
    "attach_timeout_s": 5.0,
    "max_buffered": 10_000,
    "overflow_wait_ms": 20.0,
    "publish_ms": 50.0,
    "transport": "picows",
}


def market_of(instruments, options) -> str:
    if options.get("market"):
        return options["market"]
    venues = {i.venue for i in instruments}
    if len(venues) != 1:
        raise ValueError(f"binance feed: instruments of several venues {sorted(venues)}; give options['market']")
    v = venues.pop()
    return "usdm" if "usdm" in v or "futures" in v else "spot"


class BinanceFeed:
    """One combined-stream connection's worth of instruments, written to one md ring."""

    def __init__(self, ring, instruments, options: dict, stop=None):
        self.ring = ring
        self.opts = {**DEFAULTS, **options}
        self.market = market_of(instruments, self.opts)
        urls = DEFAULT_URLS[self.market]
        self.ws_url = self.opts.get("ws_url") or urls["ws"]
        self.rest_url = self.opts.get("rest_url") or urls["rest"]
        shared = self.opts.get("counters")
        self._shared = None
        if shared is not None:
            self._shared = shared.get_obj() if hasattr(shared, "get_obj") else shared
        self.c = Counters()
        self.out = MdBuffer(8192)
        self.dec = BinanceDecoder(instruments, self.market, self.out, self.c,
                                  depth_speed=self.opts.get("depth_speed"),
                                  max_buffered=int(self.opts["max_buffered"]))
        self.stop = stop
        self.seq = 1
        self._stopping = False
        self._last_msg = time.monotonic()
        self._ws = None
        self._fetching: set[str] = set()
        self._next_fetch: dict[str, float] = {}
        self._fetch_delay: dict[str, float] = {}
        self._http = None
        self._overflowing = False
        self._overflow_wait = float(self.opts["overflow_wait_ms"]) / 1000.0
        self._backoff = Backoff("backoff")

    def publish(self) -> None:
        """Copy the counters into the shared array the supervisor reads (if one was given)."""
        if self._shared is not None:
            self.c.publish(self._shared)

    # -- ring -------------------------------------------------------------------------------
    def flush(self) -> int:
        """Stamp ``seq`` and write the buffered records; on a full ring, count, mark GAP, resync."""
        out = self.out
        n = out.n
        if n == 0:
            return 0
        ring = self.ring
        k = out.write_to(ring, self.seq, 0)
        # a batch larger than the free space (a snapshot is thousands of levels) goes in pieces
        # while the consumer makes room; only when it makes none for overflow_wait does it drop.
        # Once overflowing, a batch waits only if the consumer is taking records again (k > 0):
        # against a stalled consumer the loop must go on reading the socket, answering pings.
        if k < n and (k > 0 or not self._overflowing):
            while k < n and ring.wait_writable(self._overflow_wait, 1, self._backoff):
                k += out.write_to(ring, self.seq + k, k)
        self.seq += k
        out.clear()
        if k < n:
            self._overflowing = True
            self.c.overflows += 1
            self.c.overflow_records += n - k
            # the book the consumer holds is now missing updates: GAP and resync every instrument
            self.dec.reset_all(time.time_ns(), FeedStatus.GAP, -1)
            self.publish()
        else:
            self._overflowing = False
        return k

    # -- snapshots --------------------------------------------------------------------------
    def _maybe_fetch(self) -> None:
        now = time.monotonic()
        for sym in self.dec.needing_snapshot():
            if sym in self._fetching or now < self._next_fetch.get(sym, 0.0):
                continue
            self._fetching.add(sym)
            asyncio.ensure_future(self._fetch(sym))

    async def _fetch(self, sym: str) -> None:
        import aiohttp

        delay = self._fetch_delay.get(sym, float(self.opts["snapshot_retry_s"]))
        try:
            if self._http is None:
                self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
            params = {"symbol": sym, "limit": str(self.opts["snapshot_limit"])}
            async with self._http.get(self.rest_url, params=params) as resp:
                body = await resp.read()
                ts = time.time_ns()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}: {body[:200]!r}")
            self.dec.on_snapshot(sym, body, ts)
            self.flush()
            sync = self.dec.syncs[sym.lower()]
            if sync.synced:
                self._fetch_delay[sym] = float(self.opts["snapshot_retry_s"])
                delay = 0.0
        except asyncio.CancelledError:
            raise
        except Exception as e:  # network or HTTP error: retry later
            self.c.add("snapshot_errors")
            log.warning("binance %s: snapshot %s?symbol=%s failed: %s", self.market, self.rest_url, sym, e)
        finally:
            self._fetching.discard(sym)
            if delay:
                self._next_fetch[sym] = time.monotonic() + delay
                self._fetch_delay[sym] = min(delay * 2, float(self.opts["snapshot_retry_max_s"]))

    # -- connection -------------------------------------------------------------------------
    def url(self) -> str:
        return f"{self.ws_url}?streams={'/'.join(self.dec.streams())}"

    async def _session(self) -> bool:
        """One websocket session; returns True if it received anything."""
        if self.opts["transport"] == "picows":
            return await self._session_picows()
        from websockets.asyncio.client import connect

        got = False
        async with connect(self.url(), ping_interval=None, compression=None, proxy=None,
                           max_size=1 << 24, max_queue=4096, open_timeout=10, close_timeout=2) as ws:
            self._ws = ws
            self.c.add("connects")
            now = time.time_ns()
            self._last_msg = time.monotonic()
            self.dec.reset_all(now)
            self.dec.status_all(now, FeedStatus.CONNECTED)
            self.flush()
            dec = self.dec
            recv = ws.recv
            sleep = asyncio.sleep
            k = 0
            try:
                while not self._stopping:
                    k += 1
                    if (k & 31) == 0:
                        # recv() does not suspend while frames are queued: give the watchdog,
                        # pings and snapshot requests their turn
                        await sleep(0)
                    msg = await recv(decode=False)
                    ts = time.time_ns()
                    self._last_msg = time.monotonic()
                    got = True
                    dec.on_message(msg, ts)
                    self.flush()
                    for s in dec.syncs.values():
                        if not s.synced:
                            self._maybe_fetch()
                            break
            finally:
                self._ws = None
        return got

    async def _session_picows(self) -> bool:
        """The same session over picows (``transport = "picows"``): frames handed to the decoder
        straight from the protocol callback, no per-message future or queue."""
        from livestack.feeds.ws_transport import WsSession

        feed = self
        dec = self.dec

        on_dec = dec.on_message

        def on_message(msg, ts):
            on_dec(msg, ts)

        def on_batch_end():
            feed._last_msg = time.monotonic()
            feed.flush()
            for s in dec.syncs.values():
                if not s.synced:
                    feed._maybe_fetch()
                    break

        async def on_open(sess):
            feed._ws = _PicowsHandle(sess)
            feed.c.add("connects")
            now = time.time_ns()
            feed._last_msg = time.monotonic()
            dec.reset_all(now)
            dec.status_all(now, FeedStatus.CONNECTED)
            feed.flush()

        sess = WsSession(self.url(), "picows", on_open, on_message, on_batch_end=on_batch_end,
                         listener_factory=_frame_listener(dec, on_message, on_batch_end))
        try:
            return await sess.run()
        finally:
            self._ws = None

    async def _watchdog(self) -> None:
        stale_s = float(self.opts["stale_ms"]) / 1000.0
        tick = min(stale_s / 4, 0.25, float(self.opts["publish_ms"]) / 1000.0)
        ping_every = float(self.opts["ping_interval_s"])
        ping_timeout = float(self.opts["ping_timeout_s"])
        last_ping = time.monotonic()
        last_publish = 0.0
        publish_s = float(self.opts["publish_ms"]) / 1000.0
        reported_malformed, last_report = 0, 0.0
        while not self._stopping:
            await asyncio.sleep(tick)
            m = self.c.malformed
            if m != reported_malformed and time.monotonic() - last_report >= 5.0:
                # malformed input is reported, rate-limited, with the latest sample
                last_report = time.monotonic()
                sample = self.dec.malformed_samples[-1] if self.dec.malformed_samples else None
                log.warning("binance %s: %d malformed messages so far (%s); latest: %s", self.market, m,
                            {k: v for k, v in self.c.as_dict().items() if k.startswith("malformed_") and v},
                            sample)
                reported_malformed = m
            if self.out.n:
                self.flush()  # records left behind by an overflow (GAP) when no message follows
            if time.monotonic() - last_publish >= publish_s:
                last_publish = time.monotonic()
                self.publish()
            if self.stop is not None and self.stop.is_set():
                self._stopping = True
                if self._ws is not None:
                    await self._ws.close()
                return
            ws = self._ws
            if ws is None:
                continue
            now = time.monotonic()
            silence = now - self._last_msg
            if silence > stale_s:
                self.c.add("stale")
                log.warning("binance %s: no message for %.1f s: stale, reconnecting", self.market, silence)
                self.dec.reset_all(time.time_ns(), FeedStatus.STALE, int(silence * 1e9))
                self.flush()
                self._last_msg = now
                asyncio.ensure_future(ws.close(code=1000, reason="stale"))
                continue
            if ping_every and now - last_ping >= ping_every:
                last_ping = now
                asyncio.ensure_future(self._ping(ws, ping_timeout))

    async def _ping(self, ws, timeout: float) -> None:
        try:
            waiter = await ws.ping()
            await asyncio.wait_for(waiter, timeout)
            self.c.add("pings")
        except asyncio.TimeoutError:
            log.warning("binance %s: no pong in %.1f s, reconnecting", self.market, timeout)
            await ws.close(code=1000, reason="pong timeout")
        except Exception:
            pass

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGTERM, self._on_sigterm)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
        dog = asyncio.ensure_future(self._watchdog())
        delay = float(self.opts["reconnect_min_s"])
        first = True
        try:
            while not self._stopping:
                if not first:
                    self.c.add("reconnects")
                first = False
                try:
                    got = await self._session()
                    if got:
                        delay = float(self.opts["reconnect_min_s"])
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    if not self._stopping:
                        log.warning("binance %s: connection to %s: %s", self.market, self.ws_url, e)
                if self._stopping:
                    break
                self.c.add("disconnects")
                self.dec.reset_all(time.time_ns(), FeedStatus.DISCONNECTED)
                self.flush()
                await self._sleep(delay)
                delay = min(delay * 2, float(self.opts["reconnect_max_s"]))
        finally:
            dog.cancel()
            for t in [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
                t.cancel()
            if self._http is not None:
                await self._http.close()
            self.dec.reset_all(time.time_ns(), FeedStatus.DISCONNECTED)
            self.flush()
            self.publish()

    async def _sleep(self, s: float) -> None:
        end = time.monotonic() + s
        while not self._stopping and time.monotonic() < end:
            await asyncio.sleep(min(0.05, end - time.monotonic()))

    def _on_sigterm(self) -> None:
        self._stopping = True
        if self._ws is not None:
            asyncio.ensure_future(self._ws.close())


def _frame_listener(dec, on_message, on_batch_end):
    """The C-level picows listener for ``dec`` (``_picows_binance``), or None (the Python one)
    when that extension is not built or does not load against the installed picows."""
    try:
        from livestack.feeds._picows_binance import BinanceFrameListener
    except (ImportError, ValueError) as e:  # e.g. a picows whose Cython layout differs from the build's
        log.warning("binance feed: C frame listener unavailable (%s); using the Python listener", e)
        return None
    return lambda sess: BinanceFrameListener(dec._fast, dec.out, on_message, on_batch_end, dec.c, sess)


class _PicowsHandle:
    """What the watchdog needs of a connection (``close``, ``ping``) over a picows session."""

    def __init__(self, sess):
        self.sess = sess

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.sess.close()

    async def ping(self):
        await self.sess.ping()
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)  # picows answers pings itself; a dead peer shows as stale
        return fut


def run_process(ring_name: str, instruments, options: dict, stop) -> None:
    """Feed process entry point (``spawn``): attach the md ring and run until ``stop`` or SIGTERM.

    Parameters
    ----------
    ring_name : str
        The md ring's segment name (created by the supervisor, 64-byte slots).
    instruments : list of Instrument
        All of one market (spot or USD-M); their ids go in the records.
    options : dict
        See the module docstring.
    stop : multiprocessing.Event
    """
    from livestack.ipc import Ring

    opts = {**DEFAULTS, **(options or {})}
    log.setLevel(opts.get("log_level", logging.WARNING))
    if not logging.getLogger().handlers:  # outside a supervisor (livestack.logs): a plain format
        logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s")
    ring = Ring.attach(ring_name, slot_size=64, timeout=float(opts["attach_timeout_s"]), role="producer")
    feed = BinanceFeed(ring, list(instruments), opts, stop)
    from livestack.telemetry import procmetrics  # its counters in /metrics (a mirror thread)

    metrics = procmetrics.start(ring_name, "feed.binance", procmetrics.feed_updater(feed.c), {"feed": "binance"})
    try:
        asyncio.run(feed.run())
    finally:
        log.info("binance %s feed stopped: %s", feed.market, feed.c)
        if metrics is not None:
            metrics.stop()
        ring.close()


__all__ = ["run_process", "BinanceFeed", "COUNTER_NAMES", "DEFAULTS", "market_of"]
