"""Binance transports (asyncio, in the venue's I/O thread): signed REST, the WebSocket API with
request/answer matching, and a plain event stream (the USD-M user data stream).

Every frame is decoded defensively: malformed JSON, a non-object, an answer without an ``id`` or
with fields of the wrong type is counted in ``stats["bad_messages"]`` and dropped, never raised.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import orjson

from livestack.venues.binance.auth import Credentials, encode_params

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer with an error: ``status`` (HTTP or WS status), ``code`` (Binance code or None),
    ``msg``, ``retry_after`` (s, 429/418) and ``data`` (WS API error data)."""

    def __init__(self, status: int, code, msg: str, retry_after: float = 0.0, data=None):
        super().__init__(f"{status} {code} {msg}")
        self.status, self.code, self.msg, self.retry_after, self.data = status, code, msg, retry_after, data


class NoAnswer(Exception):
    """The request was sent (or may have been) but no answer came: its outcome is unknown."""


class NotSent(NoAnswer):
    """The request certainly never left: the connection was not open when it was to be sent."""


def _connect(url: str):
    try:
        from websockets.asyncio.client import connect
    except ImportError:  # websockets < 13
        from websockets import connect
    return connect(url, max_size=1 << 24, open_timeout=5, ping_interval=20, ping_timeout=20,
                   compression=None)


class Rest:
    """Signed REST calls through one ``aiohttp`` session."""

    def __init__(self, base: str, creds: Credentials | None, clock, stats, limiter=None, timeout_s: float = 5.0):
        self.base = base
        self.creds = creds
        self.clock = clock          # () -> server-time ms (offset corrected)
        self.stats = stats
        self.limiter = limiter
        self.timeout_s = timeout_s
        self._session = None

    async def _sess(self):
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        return self._session

    async def close(self):
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, method: str, path: str, params=(), signed: bool = False, key: bool = False,
                   recv_window: int = 5000):
        """JSON of the answer; raises ApiError / NoAnswer."""
        import aiohttp

        p = list(params)
        headers = {}
        if signed or key:
            headers["X-MBX-APIKEY"] = self.creds.api_key
        if signed:
            p += [("recvWindow", recv_window), ("timestamp", self.clock())]
            qs = self.creds.sign_rest(p)
        else:
            qs = encode_params(p)
        url = f"{self.base}{path}" + (f"?{qs}" if qs else "")
        s = await self._sess()
        self.stats["rest_requests"] += 1
        try:
            async with s.request(method, url, headers=headers) as r:
                body = await r.read()
                if self.limiter is not None:
                    self.limiter.from_headers(r.headers, self.clock() / 1000.0)
                status = r.status
                retry = r.headers.get("Retry-After")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            raise NoAnswer(f"{method} {path}: {type(e).__name__}") from None
        try:
            doc = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            self.stats["bad_messages"] += 1
            if status >= 400:
                raise ApiError(status, None, "unreadable error body", float(retry or 0)) from None
            raise NoAnswer(f"{method} {path}: malformed JSON") from None
        if status >= 400 or (isinstance(doc, dict) and isinstance(doc.get("code"), int) and doc["code"] < 0):
            code = doc.get("code") if isinstance(doc, dict) else None
            msg = doc.get("msg", "") if isinstance(doc, dict) else ""
            try:
                ra = float(retry) if retry else 0.0
            except ValueError:
                ra = 0.0
            raise ApiError(status, code, str(msg), ra)
        return doc


class WsApi:
    """One WebSocket API connection: ``request(method, params) -> result`` matched by ``id``; frames
    that are not answers (user-data events of a subscription) go to ``on_event(doc)``."""

    def __init__(self, url: str, stats, on_event, on_rate_limits=None):
        self.url = url
        self.stats = stats
        self.on_event = on_event
        self.on_rate_limits = on_rate_limits
        self.ws = None
        self._ids = itertools.count(1)
        self._waiting: dict[str, asyncio.Future] = {}
        self._reader = None
        self.closed = asyncio.Event()

    @property
    def up(self) -> bool:
        return self.ws is not None and not self.closed.is_set()

    async def open(self) -> None:
        self.closed.clear()
        self.ws = await _connect(self.url)
        self._reader = asyncio.ensure_future(self._read())

    async def close(self) -> None:
        if self.ws is not None:
            try:
                await self.ws.close()
            except Exception:  # noqa: BLE001 - closing a broken socket
                pass
        if self._reader is not None:
            self._reader.cancel()
        self._fail_all()

    def _fail_all(self) -> None:
        self.closed.set()
        for f in self._waiting.values():
            if not f.done():
                f.set_exception(NoAnswer("connection lost"))
        self._waiting.clear()

    async def send(self, method: str, params: dict | None) -> asyncio.Future:
        """Send one request; returns the future of its answer (result, or ApiError / NoAnswer)."""
        rid = str(next(self._ids))
        fut = asyncio.get_running_loop().create_future()
        state = getattr(getattr(self.ws, "state", None), "name", "OPEN")
        if not self.up or state != "OPEN":
            fut.set_exception(NotSent("not connected"))
            return fut
        self._waiting[rid] = fut
        msg = {"id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        try:
            await self.ws.send(orjson.dumps(msg).decode())
        except Exception as e:  # noqa: BLE001 - any send failure: outcome unknown
            self._waiting.pop(rid, None)
            if not fut.done():
                fut.set_exception(NoAnswer(f"send: {type(e).__name__}"))
        self.stats["ws_requests"] += 1
        return fut

    def forget(self, fut) -> None:
        for k, f in list(self._waiting.items()):
            if f is fut:
                del self._waiting[k]

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                self._frame(frame)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - connection closed / broken
            log.warning("binance: WS API connection lost: %s", type(e).__name__)
        finally:
            self._fail_all()

    def _frame(self, frame) -> None:
        self.stats["ws_frames"] += 1
        try:
            doc = orjson.loads(frame)
        except orjson.JSONDecodeError:
            self.stats["bad_messages"] += 1
            return
        if not isinstance(doc, dict):
            self.stats["bad_messages"] += 1
            return
        if "event" in doc and "id" not in doc:
            try:
                self.on_event(doc["event"])
            except Exception:  # noqa: BLE001 - a bad event never kills the reader
                self.stats["bad_messages"] += 1
                log.exception("binance: user-data event not handled")
            return
        rid = doc.get("id")
        fut = self._waiting.pop(str(rid), None) if rid is not None else None
        rl = doc.get("rateLimits")
        if rl is not None and self.on_rate_limits is not None:
            self.on_rate_limits(rl)
        if fut is None:
            self.stats["bad_messages" if rid is None else "unmatched_answers"] += 1
            return
        if fut.done():
            return
        status = doc.get("status")
        if status == 200 and "result" in doc:
            fut.set_result(doc["result"])
            return
        err = doc.get("error")
        if not isinstance(status, int) or not isinstance(err, dict):
            self.stats["bad_messages"] += 1
            fut.set_exception(NoAnswer("malformed answer"))
            return
        data = err.get("data")
        retry = 0.0
        if isinstance(data, dict) and isinstance(data.get("retryAfter"), (int, float)):
            retry = max(0.0, data["retryAfter"] / 1000.0 - time.time())
        fut.set_exception(ApiError(status, err.get("code"), str(err.get("msg", "")), retry, data))


class EventStream:
    """A read-only stream of JSON events (USD-M ``<ws_stream>/<listenKey>``)."""

    def __init__(self, url: str, stats, on_event):
        self.url = url
        self.stats = stats
        self.on_event = on_event
        self.ws = None
        self.closed = asyncio.Event()
        self._reader = None

    async def open(self) -> None:
        self.closed.clear()
        self.ws = await _connect(self.url)
        self._reader = asyncio.ensure_future(self._read())

    async def close(self) -> None:
        if self.ws is not None:
            try:
                await self.ws.close()
            except Exception:  # noqa: BLE001
                pass
        if self._reader is not None:
            self._reader.cancel()
        self.closed.set()

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                self.stats["ws_frames"] += 1
                try:
                    doc = orjson.loads(frame)
                except orjson.JSONDecodeError:
                    self.stats["bad_messages"] += 1
                    continue
                if isinstance(doc, dict) and "data" in doc and "stream" in doc:
                    doc = doc["data"]  # combined-stream envelope
                if not isinstance(doc, dict):
                    self.stats["bad_messages"] += 1
                    continue
                try:
                    self.on_event(doc)
                except Exception:  # noqa: BLE001
                    self.stats["bad_messages"] += 1
                    log.exception("binance: user-stream event not handled")
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001
            log.warning("binance: user stream lost: %s", type(e).__name__)
        finally:
            self.closed.set()
