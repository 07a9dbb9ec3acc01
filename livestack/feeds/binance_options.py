"""``[feed.options]`` of ``feed.kind = "binance"`` (``livestack.feeds.binance_ws``)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

_Pos = Annotated[float, Meta(gt=0)]


class BinanceFeedOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    market: Literal["spot", "usdm"] | None = None  # default: from the instruments' venue
    ws_url: str | None = None            # default: Binance production for the market
    rest_url: str | None = None
    depth_speed: Literal["100ms", "0ms", "1000ms", ""] | None = None  # None: the market's default
    snapshot_limit: Annotated[int, Meta(ge=1)] = 1000
    stale_ms: _Pos = 5000
    ping_interval_s: _Pos = 10.0
    ping_timeout_s: _Pos = 10.0
    reconnect_min_s: _Pos = 0.1
    reconnect_max_s: _Pos = 5.0
    snapshot_retry_s: _Pos = 0.25
    snapshot_retry_max_s: _Pos = 5.0
    attach_timeout_s: _Pos = 5.0
    max_buffered: Annotated[int, Meta(ge=1)] = 10_000
    overflow_wait_ms: Annotated[float, Meta(ge=0)] = 20.0
    publish_ms: _Pos = 50.0
    log_level: str = "WARNING"
    transport: Literal["picows", "websockets"] = "picows"  # picows: fastest in bench/bench_feed.py

    def check(self):
        out = []
        for k in ("ws_url", "rest_url"):
            v = getattr(self, k)
            want = ("ws://", "wss://") if k == "ws_url" else ("http://", "https://")
            if v and not v.startswith(want):
                out.append((k, f"= {v!r}: expected a {' or '.join(want)} URL"))
        if self.reconnect_max_s < self.reconnect_min_s:
            out.append(("reconnect_max_s", f"must be >= reconnect_min_s ({self.reconnect_min_s})"))
        return out
