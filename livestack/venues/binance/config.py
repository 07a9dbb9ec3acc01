"""Options of the ``binance`` venue (``[venue.options]`` when ``venue.kind = "binance"``).

The config contract: these options are declared here as a ``msgspec.Struct`` (typed, defaults,
unknown keys refused) and validated by the venue process's entry point with :func:`load_options`;
the lead wires the Struct into the whole-config schema. Secrets are never options: ``api_key_env``
/ ``api_key_file`` and ``secret_env`` / ``secret_file`` name WHERE the key material lives (an
environment variable, or a file that must be 0600), never the material itself.
"""

from __future__ import annotations

from typing import Literal

import msgspec

class BinanceVenueOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[venue.options]`` of ``venue.kind = "binance"``."""

    market: Literal["spot", "usdm"] = "spot"
    environment: Literal["production", "testnet", "demo", "local"] = "production"  # endpoint preset
    local_url: str = ""                # environment "local": the test exchange's http base
    rest_url: str = ""                 # "" = the preset's (livestack.venues.binance_presets)
    ws_api_url: str = ""               # "" = the preset's WebSocket API
    ws_stream_url: str = ""            # USD-M listenKey stream base ("" = the preset's streams + "/ws")
    key_type: Literal["hmac", "ed25519"] = "hmac"
    api_key_env: str = "BINANCE_API_KEY"       # env var holding the API key ...
    api_key_file: str = ""                     # ... or a 0600 file (wins when set)
    secret_env: str = "BINANCE_API_SECRET"     # HMAC secret, or Ed25519 private key PEM
    secret_file: str = ""                      # 0600 file (wins when set)
    recv_window_ms: int = 5000
    time_sync_interval_s: float = 60.0  # server-time offset refresh period
    use_ws_api: bool = True             # False: orders over REST only
    request_timeout_s: float = 5.0      # a WS API / REST answer later than this: the order is unknown,
                                        # resolved by a status query (never resent)
    stale_order_s: float = 5.0          # a command that waited this long (venue down / throttled): rejected
                                        # locally, reason STALE
    reduce_only: bool = False           # USD-M: every NEW carries reduceOnly=true
    session_epoch: int = 0              # clientOrderId prefix; 0 = derived from the orders ring name
    rate_limit_safety: float = 0.9      # throttle at this fraction of each exchangeInfo limit
    countdown_cancel_ms: int = 0        # USD-M dead-man switch (countdownCancelAll); 0 = off
    countdown_refresh_s: float = 0.0    # 0 = countdown_cancel_ms / 3
    listen_key_keepalive_s: float = 1800.0
    reconnect_min_s: float = 0.2
    reconnect_max_s: float = 5.0
    reconcile_interval_s: float = 2.0   # open-orders sweep: finds user-stream events that never came
                                        # (0 = only after reconnects)
    check_filters: bool = True          # pre-send check of exchangeInfo symbol filters (local reject)
    load_filters: bool = True           # at session start, exchangeInfo filters into the instruments and
                                        # [risk.symbols] (livestack.venues.binance.exchange_info)
    positions_request: bool = False     # USD-M: after each burst of the core's STATUS commands (a recovery)
                                        # report the account's position per instrument; the core compares
                                        # it with its own (an account only this session trades)
    position_settle_s: float = 5.0      # a position snapshot newer than the last fill the user stream
                                        # brought waits this long for the stream before it is reported
    fills_log: str = ""                 # JSONL of every fill with fee + fee asset ("" = none)
    store_dir: str = ""                 # the venue's journal (0700 dir, 0600 file): a restarted venue
                                        # process reports only what is new ("" = none)
    log_level: str = "INFO"
    # process-loop options (livestack.venues.process.run_loop); accepted here so one table validates
    harness_pid: int | None = None
    harness_check_s: float = 0.05
    batch: int = 256
    lost_flush_s: float = 1.0
    idle_spins: int = 100
    idle_yields: int = 10
    idle_max_sleep_ns: int = 200_000
    attach_timeout_s: float = 10.0

    def check(self) -> list[tuple[str, str]]:
        """Cross-field rules as (key, message) pairs (the config schema, livestack.node.schema, calls it)."""
        out = []
        if self.recv_window_ms <= 0 or self.recv_window_ms > 60000:
            out.append(("recv_window_ms", "must be in 1..60000"))
        if not 0 < self.rate_limit_safety <= 1:
            out.append(("rate_limit_safety", "must be in (0, 1]"))
        if self.countdown_cancel_ms and self.market != "usdm":
            out.append(("countdown_cancel_ms", "is a USD-M feature (market = \"usdm\")"))
        if self.positions_request and self.market != "usdm":
            out.append(("positions_request", "is a USD-M feature (market = \"usdm\"): spot has balances, not positions"))
        if self.position_settle_s < 0:
            out.append(("position_settle_s", "must be >= 0"))
        if self.reduce_only and self.market != "usdm":
            out.append(("reduce_only", "is a USD-M feature (market = \"usdm\")"))
        return out

    def url(self, which: str) -> str:
        """``rest`` / ``ws_api`` / ``ws_stream``: the explicit option, else the environment's preset."""
        own = {"rest": self.rest_url, "ws_api": self.ws_api_url, "ws_stream": self.ws_stream_url}[which]
        if own:
            return own.rstrip("/")
        from livestack.venues.binance_presets import preset

        p = preset(self.market, self.environment, self.local_url or None)
        return {"rest": p.rest, "ws_api": p.ws_api, "ws_stream": p.streams.rstrip("/") + "/ws"}[which].rstrip("/")


def load_options(options: dict) -> BinanceVenueOptions:
    """Validate ``options`` (a dict from the config, minus runtime-only keys such as ``counters``)."""
    raw = {k: v for k, v in dict(options or {}).items() if k != "counters"}
    try:
        opt = msgspec.convert(raw, BinanceVenueOptions, strict=False)
    except msgspec.ValidationError as e:
        raise ValueError(f"venue.options (binance): {e}") from None
    problems = opt.check()
    if problems:
        key, msg = problems[0]
        raise ValueError(f"venue.options (binance): {key} {msg}")
    return opt
