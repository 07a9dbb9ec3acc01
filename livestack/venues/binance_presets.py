"""Endpoint presets of Binance spot and USD-M futures: production, testnet, demo, and the local test exchange.

A preset names the three endpoints a venue needs: ``rest`` (base URL; paths ``/api/v3/...`` for
spot, ``/fapi/v1/...`` for USD-M), ``ws_api`` (the WebSocket API: orders, queries, and on spot the
user data stream via ``userDataStream.subscribe``) and ``streams`` (market data: ``<streams>/ws/<name>``
or ``<streams>/stream?streams=a/b``; on USD-M also the listenKey user stream ``<streams>/ws/<listenKey>``).

The URLs are those of Binance's official connectors (``binance_common.constants`` of
binance-sdk-spot 13.x / binance-sdk-derivatives-trading-usds-futures 18.x). Production and testnet
cannot be reached from the build machine; docs/binance-test-exchange.md says how to try the
testnets with testnet keys. ``local(url)`` gives the presets of a running
``livestack testing binance-exchange`` (or ``start_exchange().url``).

Use: ``preset("usdm", "testnet")`` -> ``BinanceEndpoints(rest=..., ws_api=..., streams=...)``.
"""

from __future__ import annotations

from typing import NamedTuple


class BinanceEndpoints(NamedTuple):
    rest: str
    ws_api: str
    streams: str


PRESETS: dict[str, dict[str, BinanceEndpoints]] = {
    "spot": {
        "production": BinanceEndpoints("https://api.binance.com", "wss://ws-api.binance.com:443/ws-api/v3",
                                       "wss://stream.binance.com:9443"),
        "testnet": BinanceEndpoints("https://testnet.binance.vision", "wss://ws-api.testnet.binance.vision/ws-api/v3",
                                    "wss://stream.testnet.binance.vision"),
        "demo": BinanceEndpoints("https://demo-api.binance.com", "wss://demo-ws-api.binance.com/ws-api/v3",
                                 "wss://demo-stream.binance.com:9443"),
    },
    "usdm": {
        "production": BinanceEndpoints("https://fapi.binance.com", "wss://ws-fapi.binance.com/ws-fapi/v1",
                                       "wss://fstream.binance.com"),
        "testnet": BinanceEndpoints("https://testnet.binancefuture.com", "wss://testnet.binancefuture.com/ws-fapi/v1",
                                    "wss://fstream.binancefuture.com"),
    },
}

ENVIRONMENTS = ("production", "testnet", "demo", "local")


def local(url: str = "http://127.0.0.1:9443") -> dict[str, BinanceEndpoints]:
    """Presets of the local test exchange at ``url`` (its http base, e.g. ``start_exchange().url``)."""
    base = url.rstrip("/")
    ws = "ws" + base[4:] if base.startswith("http") else base
    return {"spot": BinanceEndpoints(base, f"{ws}/ws-api/v3", ws),
            "usdm": BinanceEndpoints(base, f"{ws}/ws-fapi/v1", f"{ws}/futures")}


def preset(market: str, environment: str = "production", local_url: str | None = None) -> BinanceEndpoints:
    """The endpoints of ``market`` ("spot" | "usdm") in ``environment`` (production | testnet |
    demo | local); ``local`` uses ``local_url`` (default http://127.0.0.1:9443)."""
    if market not in ("spot", "usdm"):
        raise ValueError(f"binance preset: market {market!r}: expected 'spot' or 'usdm'")
    if environment == "local":
        return local(local_url or "http://127.0.0.1:9443")[market]
    try:
        return PRESETS[market][environment]
    except KeyError:
        known = sorted(PRESETS[market]) + ["local"]
        raise ValueError(f"binance preset: no {environment!r} environment for {market}; known: {known}") from None
