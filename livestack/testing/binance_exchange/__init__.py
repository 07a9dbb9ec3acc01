"""A protocol-faithful local Binance test exchange (spot + USD-M) on 127.0.0.1.

Stands in for Binance's spot REST ``/api/v3``, spot WebSocket API ``/ws-api/v3``, USD-M REST
``/fapi/v1`` (+ listenKey user stream, ``countdownCancelAll``), USD-M WebSocket API ``/ws-fapi/v1``
and the market-data streams, with signatures (HMAC-SHA256, Ed25519), timestamp / recvWindow,
rate limits (real headers, 429 + Retry-After, 418 ban), Binance's error codes and filters, and
orders matched against a replayed capture by livestack's shared matching engine. Binance's
official Python clients work against it unmodified (tests/integration/test_binance_exchange_sdk.py).
Not modelled: TLS, SBE, order lists / OCO, stop and algo orders, margin, self-trade prevention,
hedge mode, several symbols per market. See docs/binance-test-exchange.md.

Python API::

    from livestack.testing.binance_exchange import start_exchange
    ex = start_exchange(port=0)                # a thread serving on 127.0.0.1:<free port>
    ex.url            # http://127.0.0.1:P      (spot REST base and USD-M REST base)
    ex.ws_api_url     # ws://127.0.0.1:P/ws-api/v3
    ex.fws_api_url    # ws://127.0.0.1:P/ws-fapi/v1
    ex.ws_url         # ws://127.0.0.1:P        spot streams: /ws/<stream>, /stream?streams=
    ex.fstream_url    # ws://127.0.0.1:P/futures USD-M streams + /ws/<listenKey>
    ex.fault("drop_ack", n=1); ex.advance(2.0); ex.trades("usdm"); ex.state()
    ex.stop()

CLI: ``livestack testing binance-exchange [--port P] [--capture FILE] [--api-key K --api-secret S]
[--ed25519-pub FILE] [--fault KIND[:ARG]] ...``.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

#: the default HMAC key pair and Ed25519 API key name (test values, not secrets)
DEFAULT_API_KEY = "livestack-test-key"
DEFAULT_API_SECRET = "livestack-test-secret"
DEFAULT_ED25519_API_KEY = "livestack-test-ed25519-key"


def default_capture(market: str) -> str | None:
    """The shared capture of ``market`` (``$LIVESTACK_DATA`` or ../shared/data), if present."""
    names = {"spot": "spot-btcusdt-20240808.gz", "usdm": "usdm-btcusdt-20240808.gz"}
    roots = [os.environ.get("LIVESTACK_DATA"), Path(__file__).resolve().parents[3].parent / "shared" / "data"]
    for r in roots:
        if r:
            p = Path(r) / "binance" / names[market]
            if p.exists():
                return str(p)
    return None


def capture_market(path) -> str:
    """"usdm" when the capture's depth diffs carry ``pu`` (USD-M), else "spot"."""
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        for i, line in enumerate(f):
            if b"depthUpdate" in line:
                return "usdm" if b'"pu":' in line else "spot"
            if i > 2000:
                break
    return "spot"


class ExchangeHandle:
    """A running exchange in a daemon thread (see :func:`start_exchange`)."""

    def __init__(self, server, loop, thread, stop_event):
        self.server = server
        self._loop = loop
        self._thread = thread
        self._stop = stop_event

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.server.host}:{self.server.port}"

    @property
    def ws_api_url(self) -> str:
        return f"{self.ws_url}/ws-api/v3"

    @property
    def fws_api_url(self) -> str:
        return f"{self.ws_url}/ws-fapi/v1"

    @property
    def fstream_url(self) -> str:
        return f"{self.ws_url}/futures"

    def urls(self) -> dict:
        """Endpoints in the shape of ``livestack.venues.binance_presets`` presets."""
        allu = {"spot": {"rest": self.url, "ws_api": self.ws_api_url, "streams": self.ws_url},
                "usdm": {"rest": self.url, "ws_api": self.fws_api_url, "streams": self.fstream_url}}
        return {k: v for k, v in allu.items() if k in self.server.ex.markets}

    def _call(self, fn, timeout=10.0):
        async def run():
            r = fn()
            if asyncio.iscoroutine(r):
                r = await r
            return r
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def fault(self, kind: str, n: int = 1, seconds: float = 1.0) -> None:
        """Inject a fault now: ack_delay (seconds), drop_ack (n), disconnect, dup_event (n),
        reorder_event (n), drop_event (n), stall (seconds), time_offset (n = ms), rest_fail (n),
        garbage (n malformed frames now on every WS API connection and USD-M user stream)."""
        self._call(lambda: self.server.inject(kind, n, seconds))

    def advance(self, seconds: float) -> None:
        """Move the replay clock forward by ``seconds`` of capture time now."""
        def go():
            next(iter(self.server.ex.markets.values())).clock.advance(seconds)
            self.server._queue_md(self.server.ex.step())
        self._call(go)

    def foreign_position(self, qty: str) -> None:
        """A USD-M position change this session did not make (a trade by hand on the same account):
        ``qty`` base units added to the position, without a trade or a user-stream event."""
        import time
        from decimal import Decimal

        def go():
            acct = self.server.ex.accounts["usdm"]
            acct.position += Decimal(qty)
            acct.position_time = int(time.time() * 1000)
        self._call(go)

    def trades(self, market: str) -> list:
        """The exchange's trade list (myTrades rows) of ``market``: the fills it made."""
        return self._call(lambda: [dict(r) for r in self.server.ex.trades[market]])

    def orders(self, market: str) -> list:
        return self._call(lambda: [self.server.ex.order_view(o, False) for o in self.server.ex.orders[market].values()])

    def best(self, market: str) -> tuple:
        """(best bid, best ask) as decimal strings."""
        def get():
            m = self.server.ex.markets[market]
            b, a = m.best()
            return (m.px_str(b) if b else None), (m.px_str(a) if a else None)
        return self._call(get)

    def state(self) -> dict:
        return self._call(self.server.state)

    def set_limits(self, market: str, spec: str) -> None:
        """Change rate limits now, e.g. ``set_limits("spot", "REQUEST_WEIGHT:1M=50,ORDERS:10S=3")``;
        counts and any ban are reset."""
        from livestack.testing.binance_exchange.protocol import parse_limits

        def go():
            lim = self.server.limiters[market]
            lim.limits = parse_limits(spec, lim.limits)
            lim.counts = [0] * len(lim.limits)
            lim.windows = [-1] * len(lim.limits)
            lim.banned_until = 0.0
            lim.limited_hits = 0
        self._call(go)

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def build_server(port: int = 0, host: str = "127.0.0.1", spot_capture=None, usdm_capture=None,
                 markets=("spot", "usdm"), speed: float = 1.0, loop: bool = False,
                 api_key: str = DEFAULT_API_KEY, api_secret: str = DEFAULT_API_SECRET,
                 ed25519_pub=None, ed25519_api_key: str = DEFAULT_ED25519_API_KEY, faults=(),
                 spot_limits: str = "", usdm_limits: str = "", ban_after: int = 5, ban_s: float = 120.0,
                 listen_key_ttl_s: float = 3600.0, tick_s: float = 0.02, balances: dict | None = None,
                 usdm_balance: float = 100_000.0):
    """The exchange's :class:`server.Server` (not started). See :func:`start_exchange`."""
    from livestack.testing.binance_exchange.exchange import Exchange
    from livestack.testing.binance_exchange.market import Clock, Market
    from livestack.testing.binance_exchange.protocol import (SPOT_LIMITS, USDM_LIMITS, KeyRing, RateLimiter,
                                                             load_ed25519_public, parse_limits)
    from livestack.testing.binance_exchange.server import Faults, Server

    clock = Clock(speed)
    ms = {}
    for name in markets:
        path = spot_capture if name == "spot" else usdm_capture
        path = path or default_capture(name)
        if not path:
            raise FileNotFoundError(f"binance test exchange: no {name} capture (pass one, or set LIVESTACK_DATA)")
        ms[name] = Market(path, name, clock, loop=loop)
    clock.wall0 = __import__("time").monotonic_ns()  # the replay starts now, not while the captures load
    keys = KeyRing()
    if api_key and api_secret:
        keys.add_hmac(api_key, api_secret)
    if ed25519_pub is not None:
        keys.add_ed25519(ed25519_api_key, load_ed25519_public(ed25519_pub) if isinstance(ed25519_pub, (str, bytes))
                         else ed25519_pub)
    limiters = {"spot": RateLimiter(parse_limits(spot_limits, SPOT_LIMITS), ban_after, ban_s),
                "usdm": RateLimiter(parse_limits(usdm_limits, USDM_LIMITS), ban_after, ban_s)}
    ex = Exchange(ms, balances=balances, usdm_balance=usdm_balance)
    fl = Faults()
    for f in faults:
        kind, n, sec = Faults.parse(f) if isinstance(f, str) else f
        if kind != "disconnect":
            fl.apply(kind, n, sec)
    return Server(ex, keys, limiters, fl, host, port, tick_s, listen_key_ttl_s)


def start_exchange(port: int = 0, timeout: float = 120.0, **kw) -> ExchangeHandle:
    """Start the exchange in a daemon thread with its own event loop; returns once listening.

    Keyword arguments (all optional): ``host``; ``spot_capture``, ``usdm_capture`` (default: the
    shared captures); ``markets`` (("spot", "usdm")); ``speed`` (replay speed, 1.0 = recorded
    pace, 0 = stopped until :meth:`ExchangeHandle.advance`); ``loop`` (restart the capture at its
    end); ``api_key`` / ``api_secret`` (HMAC pair, default DEFAULT_API_KEY / DEFAULT_API_SECRET);
    ``ed25519_pub`` (PEM path, PEM text or key object) with ``ed25519_api_key``; ``faults``
    (["drop_ack:1", ...] applied at start); ``spot_limits`` / ``usdm_limits``
    ("REQUEST_WEIGHT:1M=50,ORDERS:10S=5"); ``ban_after`` / ``ban_s`` (418 after that many requests
    while limited); ``listen_key_ttl_s``; ``balances`` (spot, asset -> amount); ``usdm_balance``.
    """
    server = build_server(port=port, **kw)
    ready = threading.Event()
    err = []
    box = {}

    def main():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        stop_event = asyncio.Event()
        box["loop"], box["stop"] = loop, stop_event
        try:
            loop.run_until_complete(server.start())
        except Exception as e:
            err.append(e)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_until_complete(stop_event.wait())
            loop.run_until_complete(server.stop())
        finally:
            loop.close()

    t = threading.Thread(target=main, name="binance-test-exchange", daemon=True)
    t.start()
    if not ready.wait(timeout):
        raise TimeoutError("binance test exchange did not start")
    if err:
        raise err[0]
    return ExchangeHandle(server, box["loop"], t, box["stop"])


__all__ = ["start_exchange", "build_server", "ExchangeHandle", "DEFAULT_API_KEY", "DEFAULT_API_SECRET",
           "DEFAULT_ED25519_API_KEY", "default_capture"]
