"""Binance request rules shared by REST and the WebSocket API: errors, keys and signatures,
timestamps and recvWindow, rate limits.

Error codes and messages are Binance's documented ones (spot "Error codes" and USD-M "Error
Code" pages); the HTTP status follows Binance's: 4XX for a bad request, 429 over a limit, 418 for
an IP banned after ignoring 429s (both with ``Retry-After``), 401 for a bad API key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from dataclasses import dataclass, field

# -- errors ------------------------------------------------------------------------------------

MSG = {
    -1000: "An unknown error occurred while processing the request.",
    -1002: "You are not authorized to execute this request.",
    -1003: "Too much request weight used; current limit is {limit} request weight per {interval}. "
           "Please use WebSocket Streams for live updates to avoid polling the API.",
    -1013: "Filter failure: {filter}",
    -1015: "Too many new orders; current limit is {limit} orders per {interval}.",
    -1021: "Timestamp for this request is outside of the recvWindow.",
    -1022: "Signature for this request is not valid.",
    -1100: "Illegal characters found in parameter '{param}'; legal range is '{legal}'.",
    -1101: "Duplicate values for a parameter detected.",
    -1102: "Mandatory parameter '{param}' was not sent, was empty/null, or malformed.",
    -1106: "Parameter '{param}' sent when not required.",
    -1111: "Precision is over the maximum defined for this asset.",
    -1116: "Invalid orderType.",
    -1117: "Invalid side.",
    -1121: "Invalid symbol.",
    -1125: "This listenKey does not exist.",
    -1130: "Data sent for parameter '{param}' is not valid.",
    -1131: "recvWindow must be less than 60000",
    -2010: "{reason}",
    -2011: "Unknown order sent.",
    -2013: "Order does not exist.",
    -2014: "API-key format invalid.",
    -2015: "Invalid API-key, IP, or permissions for action.",
    -2019: "Margin is insufficient.",
    -2021: "Order cancel-replace partially failed.",
    -2022: "ReduceOnly Order is rejected.",
    -4014: "Price not increased by tick size.",
    -4023: "Quantity not increased by step size.",
    -4024: "Limit price can't be lower than {limit}.",
    -4016: "Limit price can't be higher than {limit}.",
    -4116: "ClientOrderId is duplicated.",
    -4120: "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.",
    -4164: "Order's notional must be no smaller than {limit} (unless you choose reduce only).",
    -5021: "Due to the order could not be filled immediately, the FOK order has been rejected. "
           "The order will not be recorded in the order history",
    -5022: "Due to the order could not be executed as maker, the Post Only order will be rejected. "
           "The order will not be recorded in the order history",
    -5027: "No need to modify the order.",
}

#: spot -2022 is ORDER_CANCEL_REPLACE_FAILED (USD-M -2022 is REDUCE_ONLY_REJECT)
SPOT_CANCEL_REPLACE_FAILED = "Order cancel-replace failed."


class BinanceError(Exception):
    """A Binance error answer: ``{"code": code, "msg": msg}`` with HTTP ``status``."""

    def __init__(self, code: int, msg: str | None = None, status: int = 400, retry_after: int | None = None,
                 data=None, **fmt):
        if msg is None:
            msg = MSG.get(code, "An unknown error occurred while processing the request.").format(**fmt)
        super().__init__(f"{code} {msg}")
        self.code, self.msg, self.status, self.retry_after, self.data = code, msg, status, retry_after, data

    def body(self) -> dict:
        b = {"code": self.code, "msg": self.msg}
        if self.data is not None:
            b["data"] = self.data
        return b


def missing(param: str) -> BinanceError:
    return BinanceError(-1102, param=param)


def invalid(param: str) -> BinanceError:
    return BinanceError(-1130, param=param)


# -- keys and signatures -------------------------------------------------------------------------

@dataclass
class ApiKey:
    """One API key: ``kind`` "hmac" (``secret``) or "ed25519" (``public_key``, a cryptography key)."""

    key: str
    kind: str
    secret: str = ""
    public_key: object = None

    def verify(self, payload: str, signature: str) -> bool:
        if self.kind == "hmac":
            want = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
            return hmac.compare_digest(want, signature.lower())
        try:
            raw = base64.b64decode(signature, validate=False)
            self.public_key.verify(raw, payload.encode())
            return True
        except Exception:
            return False


def load_ed25519_public(path_or_pem) -> object:
    """An Ed25519 public key from a PEM file (or PEM bytes/str)."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    data = path_or_pem
    if isinstance(data, str) and not data.lstrip().startswith("-----BEGIN"):
        with open(data, "rb") as f:
            data = f.read()
    if isinstance(data, str):
        data = data.encode()
    key = load_pem_public_key(data)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


@dataclass
class KeyRing:
    keys: dict = field(default_factory=dict)

    def add_hmac(self, key: str, secret: str) -> None:
        self.keys[key] = ApiKey(key, "hmac", secret=secret)

    def add_ed25519(self, key: str, public_key) -> None:
        self.keys[key] = ApiKey(key, "ed25519", public_key=public_key)

    def get(self, key: str | None) -> ApiKey:
        if not key:
            raise BinanceError(-2014, status=401)
        k = self.keys.get(key)
        if k is None:
            raise BinanceError(-2015, status=401)
        return k


def strip_signature(raw: str) -> tuple[str, str | None]:
    """(the raw url-encoded string without its ``signature=`` pair, the signature or None)."""
    if not raw:
        return "", None
    parts = raw.split("&")
    sig = None
    keep = []
    for p in parts:
        if p.startswith("signature="):
            sig = urllib.parse.unquote_plus(p[10:])
        else:
            keep.append(p)
    return "&".join(keep), sig


def check_rest_signature(key: ApiKey, raw_query: str, raw_body: str) -> None:
    """Binance's rule: the signature is over ``totalParams`` = the query string concatenated with
    the request body (``signature`` itself excluded), in the bytes sent. A client that repeats
    the body's parameters in the query (signing the query) is accepted too."""
    q, sq = strip_signature(raw_query)
    b, sb = strip_signature(raw_body)
    sig = sq or sb
    if not sig:
        raise missing("signature")
    for payload in (q + b, q, b):
        if payload and key.verify(payload, sig):
            return
    raise BinanceError(-1022)


def ws_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def check_ws_signature(key: ApiKey, params: dict) -> None:
    """WebSocket API rule: every parameter but ``signature``, sorted by name, as ``name=value``
    joined by ``&`` (values percent-encoded as the official clients do; unencoded accepted)."""
    sig = params.get("signature")
    if not sig:
        raise missing("signature")
    items = sorted((k, ws_value(v)) for k, v in params.items() if k != "signature")
    for payload in (urllib.parse.urlencode(items), "&".join(f"{k}={v}" for k, v in items)):
        if key.verify(payload, str(sig)):
            return
    raise BinanceError(-1022)


def check_timestamp(params: dict, server_ms: int) -> None:
    """``timestamp`` required; ``recvWindow`` (default 5000, max 60000, may have 3 decimals) checked."""
    ts = params.get("timestamp")
    if ts is None or ts == "":
        raise missing("timestamp")
    try:
        ts = int(ts)
    except (TypeError, ValueError):
        raise invalid("timestamp")
    rw = params.get("recvWindow", 5000)
    try:
        rw = float(rw)
    except (TypeError, ValueError):
        raise invalid("recvWindow")
    if rw > 60000 or rw <= 0:
        raise BinanceError(-1131)
    if ts >= server_ms + 1000:
        raise BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if server_ms - ts > rw:
        raise BinanceError(-1021)


# -- rate limits ---------------------------------------------------------------------------------

_UNIT = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}
_LETTER = {"SECOND": "S", "MINUTE": "M", "HOUR": "H", "DAY": "D"}


@dataclass
class Limit:
    kind: str  # REQUEST_WEIGHT | ORDERS | RAW_REQUESTS
    interval: str  # SECOND | MINUTE | DAY
    num: int
    limit: int

    @property
    def seconds(self) -> int:
        return _UNIT[self.interval] * self.num

    def header(self) -> str:
        tag = "USED-WEIGHT" if self.kind == "REQUEST_WEIGHT" else "ORDER-COUNT"
        return f"X-MBX-{tag}-{self.num}{_LETTER[self.interval]}"

    def as_info(self) -> dict:
        return {"rateLimitType": self.kind, "interval": self.interval, "intervalNum": self.num, "limit": self.limit}

    def per(self) -> str:
        return f"{self.num} {self.interval}" if self.num != 1 else self.interval


SPOT_LIMITS = (Limit("REQUEST_WEIGHT", "MINUTE", 1, 6000), Limit("ORDERS", "SECOND", 10, 100),
               Limit("ORDERS", "DAY", 1, 200000), Limit("RAW_REQUESTS", "MINUTE", 5, 300000))
USDM_LIMITS = (Limit("REQUEST_WEIGHT", "MINUTE", 1, 2400), Limit("ORDERS", "MINUTE", 1, 1200),
               Limit("ORDERS", "SECOND", 10, 300))


class RateLimiter:
    """Fixed-window counters per limit (Binance's windows start at interval boundaries).

    ``charge(weight, orders)`` counts a request; over a limit it raises 429 (-1003 weight, -1015
    orders) with ``Retry-After`` = seconds to the window's end. A client that sends ``ban_after``
    requests while limited is banned (418) for ``ban_s`` seconds.
    """

    def __init__(self, limits, ban_after: int = 5, ban_s: float = 120.0, clock=time.time):
        self.limits = list(limits)
        self.counts = [0] * len(self.limits)
        self.windows = [-1] * len(self.limits)
        self.ban_after = ban_after
        self.ban_s = ban_s
        self.clock = clock
        self.limited_hits = 0
        self.banned_until = 0.0
        self.n_429 = 0
        self.n_418 = 0

    def _roll(self, now: float) -> None:
        for i, lim in enumerate(self.limits):
            w = int(now // lim.seconds)
            if w != self.windows[i]:
                self.windows[i] = w
                self.counts[i] = 0

    def charge(self, weight: int, orders: int = 0) -> None:
        now = self.clock()
        if now < self.banned_until:
            self.n_418 += 1
            until = int(self.banned_until * 1000)
            raise BinanceError(-1003, f"Way too much request weight used; IP banned until {until}. "
                               "Please use WebSocket Streams for live updates to avoid bans.",
                               status=418, retry_after=max(1, int(self.banned_until - now + 0.999)))
        self._roll(now)
        for i, lim in enumerate(self.limits):
            add = weight if lim.kind == "REQUEST_WEIGHT" else orders if lim.kind == "ORDERS" else 1
            if add and self.counts[i] + add > lim.limit:
                self.limited_hits += 1
                self.n_429 += 1
                retry = max(1, int((self.windows[i] + 1) * lim.seconds - now + 0.999))
                if self.limited_hits > self.ban_after:
                    self.banned_until = now + self.ban_s
                    self.limited_hits = 0
                if lim.kind == "ORDERS":
                    # the request weight is still used (Binance counts rejected order requests)
                    self._add(weight, 0)
                    raise BinanceError(-1015, status=429, retry_after=retry, limit=lim.limit, interval=lim.per())
                raise BinanceError(-1003, status=429, retry_after=retry, limit=lim.limit, interval=lim.per())
        self.limited_hits = 0
        self._add(weight, orders)

    def _add(self, weight: int, orders: int) -> None:
        for i, lim in enumerate(self.limits):
            self.counts[i] += weight if lim.kind == "REQUEST_WEIGHT" else orders if lim.kind == "ORDERS" else 1

    def headers(self, with_orders: bool) -> dict:
        self._roll(self.clock())
        h = {}
        for i, lim in enumerate(self.limits):
            if lim.kind == "REQUEST_WEIGHT" or (lim.kind == "ORDERS" and with_orders):
                h[lim.header()] = str(self.counts[i])
        return h

    def ws_rate_limits(self, with_orders: bool) -> list:
        self._roll(self.clock())
        out = []
        for i, lim in enumerate(self.limits):
            if lim.kind == "REQUEST_WEIGHT" or (lim.kind == "ORDERS" and with_orders):
                d = lim.as_info()
                d["count"] = self.counts[i]
                out.append(d)
        return out


def parse_limits(spec: str, defaults) -> list:
    """``REQUEST_WEIGHT:1M=50,ORDERS:10S=5`` overrides the matching defaults' limit numbers."""
    lims = [Limit(x.kind, x.interval, x.num, x.limit) for x in defaults]
    if not spec:
        return lims
    letters = {v: k for k, v in _LETTER.items()}
    for part in spec.split(","):
        name, _, n = part.partition("=")
        kind, _, iv = name.partition(":")
        try:
            num, unit, n = int(iv[:-1]), letters[iv[-1].upper()], int(n)
            if kind.upper() not in ("REQUEST_WEIGHT", "ORDERS", "RAW_REQUESTS") or num <= 0 or n <= 0:
                raise ValueError
        except (ValueError, KeyError, IndexError):
            raise ValueError(f"rate limit {part!r}: expected KIND:<n><S|M|H|D>=<limit>, KIND one of "
                             "REQUEST_WEIGHT, ORDERS, RAW_REQUESTS (e.g. ORDERS:10S=5)") from None
        for x in lims:
            if x.kind == kind.upper() and x.interval == unit and x.num == num:
                x.limit = int(n)
                break
        else:
            lims.append(Limit(kind.upper(), unit, num, int(n)))
    return lims
