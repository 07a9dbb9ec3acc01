"""Binance rate limits, tracked locally and corrected from what the exchange reports.

Limits come from ``exchangeInfo.rateLimits`` (``REQUEST_WEIGHT`` per minute, ``ORDERS`` per 10 s
and per day, ...). Windows are fixed and aligned to the interval, as Binance counts them. Our
count of a window is replaced by the exchange's whenever it reports one (REST headers
``X-MBX-USED-WEIGHT-<n><u>`` / ``X-MBX-ORDER-COUNT-<n><u>``, WS API ``rateLimits[].count``).

``delay(cost_weight, is_order, now)`` says how long to wait before the next request so every
window stays under ``safety * limit`` (0: send now): we throttle ourselves before Binance does.
429 (``-1003``) -> :meth:`back_off` until ``Retry-After``; 418 (IP banned) -> :meth:`ban`: the
adapter goes HALTED (every new order rejected locally, reason BANNED) until it passes.
"""

from __future__ import annotations

import re

_UNIT_S = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400, "S": 1, "M": 60, "H": 3600, "D": 86400}
_HDR = re.compile(r"x-mbx-(used-weight|order-count)-(\d+)([smhd])", re.IGNORECASE)


class Window:
    __slots__ = ("kind", "length_s", "limit", "start", "count")

    def __init__(self, kind: str, length_s: int, limit: int):
        self.kind = kind          # "REQUEST_WEIGHT" | "ORDERS"
        self.length_s = length_s
        self.limit = limit
        self.start = 0.0
        self.count = 0

    def roll(self, now: float) -> None:
        start = now - (now % self.length_s)
        if start != self.start:
            self.start = start
            self.count = 0


class RateLimiter:
    """Windows by ``(kind, length_s)``. ``now`` is the server time in seconds (the caller corrects
    its clock by the server-time offset)."""

    def __init__(self, safety: float = 0.9):
        self.safety = safety
        self.windows: dict[tuple[str, int], Window] = {}
        self.blocked_until = 0.0   # 429: no request before this
        self.banned_until = 0.0    # 418
        self.stats = {"throttled": 0, "backoffs": 0, "bans": 0, "header_updates": 0}

    def load(self, rate_limits: list) -> None:
        """``exchangeInfo.rateLimits``."""
        for rl in rate_limits or ():
            try:
                kind = str(rl["rateLimitType"])
                length = _UNIT_S[str(rl["interval"])] * int(rl["intervalNum"])
                limit = int(rl["limit"])
            except (KeyError, TypeError, ValueError):
                continue
            if kind in ("REQUEST_WEIGHT", "ORDERS") and length > 0 and limit > 0:
                self.windows[(kind, length)] = Window(kind, length, limit)

    def usage(self, now: float) -> dict[str, tuple[int, int]]:
        """``{"<KIND>_<length>s": (used, limit)}`` of every window at server time ``now`` (a window
        that has rolled over reads 0): the venue's rate-limit gauges in /metrics."""
        out = {}
        for (kind, length), w in list(self.windows.items()):
            used = w.count if now - (now % w.length_s) == w.start else 0
            out[f"{kind}_{length}s"] = (int(used), int(w.limit))
        return out

    def delay(self, weight: int, is_order: bool, now: float) -> float:
        """Seconds to wait before sending a request of ``weight`` (and one order if ``is_order``)."""
        wait = max(0.0, self.blocked_until - now, self.banned_until - now)
        for w in self.windows.values():
            w.roll(now)
            cost = weight if w.kind == "REQUEST_WEIGHT" else (1 if is_order else 0)
            if cost and w.count + cost > w.limit * self.safety:
                wait = max(wait, w.start + w.length_s - now)
        if wait > 0:
            self.stats["throttled"] += 1
        return wait

    def spend(self, weight: int, is_order: bool, now: float) -> None:
        for w in self.windows.values():
            w.roll(now)
            w.count += weight if w.kind == "REQUEST_WEIGHT" else (1 if is_order else 0)

    def _set(self, kind: str, length: int, count: int, now: float, limit: int | None = None) -> None:
        w = self.windows.get((kind, length))
        if w is None:
            if limit is None:
                return
            w = self.windows[(kind, length)] = Window(kind, length, limit)
        w.roll(now)
        # never below what we spent ourselves in this window: an answer's count lags the requests
        # sent after it (six orders sent at once: the first answer said 1 while 4 were out, the
        # limiter believed it and let the 6th through to a -1015)
        w.count = max(w.count, count)
        if limit:
            w.limit = limit
        self.stats["header_updates"] += 1

    def from_headers(self, headers, now: float) -> None:
        """REST response headers."""
        for k, v in headers.items():
            m = _HDR.fullmatch(k)
            if not m:
                continue
            try:
                count = int(v)
            except ValueError:
                continue
            kind = "REQUEST_WEIGHT" if m.group(1).lower() == "used-weight" else "ORDERS"
            self._set(kind, int(m.group(2)) * _UNIT_S[m.group(3).upper()], count, now)

    def from_ws(self, rate_limits, now: float) -> None:
        """WS API ``rateLimits`` of an answer."""
        if not isinstance(rate_limits, list):
            return
        for rl in rate_limits:
            try:
                kind = str(rl["rateLimitType"])
                length = _UNIT_S[str(rl["interval"])] * int(rl["intervalNum"])
                self._set(kind, length, int(rl["count"]), now, int(rl["limit"]))
            except (KeyError, TypeError, ValueError):
                continue

    def back_off(self, retry_after_s: float, now: float) -> None:
        self.stats["backoffs"] += 1
        self.blocked_until = max(self.blocked_until, now + max(retry_after_s, 1.0))

    def ban(self, until_s: float) -> None:
        self.stats["bans"] += 1
        self.banned_until = max(self.banned_until, until_s)

    def banned(self, now: float) -> bool:
        return now < self.banned_until
