"""The aiohttp server: REST, WebSocket API, market-data and user-data streams, faults, control.

Paths (one port, 127.0.0.1)::

    /api/v3/...                 spot REST              /fapi/v1/..., /fapi/v2/..., /fapi/v3/...  USD-M REST
    /ws-api/v3                  spot WebSocket API     /ws-fapi/v1                               USD-M WebSocket API
    /ws, /ws/<stream>, /stream  spot market streams    /futures/{ws,stream,market/stream,public/stream,
                                                       private/stream}, /futures/ws/<listenKey>  USD-M streams
    /_control/{state,fault,advance,trades}             test control (not Binance)
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse

import orjson
from aiohttp import WSMsgType, web

from livestack.testing.binance_exchange.ops import OPS, REST_ROUTES, WS_METHODS, ListenKeys, weight_of
from livestack.testing.binance_exchange.protocol import (BinanceError, check_rest_signature, check_timestamp,
                                                         check_ws_signature)

log = logging.getLogger(__name__)

FAULT_KINDS = ("ack_delay", "drop_ack", "disconnect", "dup_event", "reorder_event", "drop_event", "stall",
               "time_offset", "rest_fail", "garbage")

#: malformed frames of the ``garbage`` fault, cycled: not JSON, wrong types, unknown ids and events
GARBAGE_WSAPI = (
    "this is not json",
    '{"id":"no-such-request","status":200,"result":{"orderId":1}}',
    '{"id":null,"status":"200","result":{"orderId":"not-a-number"}}',
    '{"subscriptionId":0,"event":{"e":"executionReport","E":"soon","s":"BTCUSDT","i":"x","X":17}}',
    '{"subscriptionId":0,"event":{"e":"somethingNew","E":1}}',
    '[1,2,3]',
)
GARBAGE_STREAM = (
    "this is not json",
    '{"e":"ORDER_TRADE_UPDATE","E":"soon","T":1,"o":{"s":"BTCUSDT","i":"bad","X":17}}',
    '{"e":"somethingNew","E":1}',
    '{"e":"ACCOUNT_UPDATE","E":1,"a":null}',
    '[1,2,3]',
)


class Faults:
    """Fault-injection knobs (see docs/binance-test-exchange.md)."""

    def __init__(self):
        self.ack_delay_s = 0.0      # every order-entry answer (REST and WS API) waits this long
        self.drop_ack = 0           # next N order-entry requests are executed but never answered
        self.dup_event = 0          # next N user-stream events are sent twice
        self.reorder_event = 0      # next N user-stream events are held and sent after the one that follows
        self.drop_event = 0         # next N user-stream events are lost
        self.stall_until = 0.0      # market and user streams send nothing until then (monotonic)
        self.time_offset_ms = 0     # server clock skew (timestamps checked against server time)
        self.rest_fail = 0          # next N REST requests answer HTTP 503

    def apply(self, kind: str, n: int = 1, seconds: float = 1.0) -> None:
        if kind == "ack_delay":
            self.ack_delay_s = float(seconds)
        elif kind == "drop_ack":
            self.drop_ack += n
        elif kind == "dup_event":
            self.dup_event += n
        elif kind == "reorder_event":
            self.reorder_event += n
        elif kind == "drop_event":
            self.drop_event += n
        elif kind == "stall":
            self.stall_until = time.monotonic() + float(seconds)
        elif kind == "time_offset":
            self.time_offset_ms = int(n)
        elif kind == "rest_fail":
            self.rest_fail += n
        elif kind not in ("disconnect", "garbage"):
            raise ValueError(f"fault {kind!r}: expected one of {', '.join(FAULT_KINDS)}")

    @staticmethod
    def parse(spec: str) -> tuple:
        """``kind[:arg]``: ``drop_ack:2``, ``stall:1.5``, ``ack_delay:0.2``, ``time_offset:-3000``."""
        kind, _, arg = spec.partition(":")
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault {kind!r}: expected one of {', '.join(FAULT_KINDS)}")
        if kind in ("stall", "ack_delay"):
            return kind, 1, float(arg or 1.0)
        return kind, int(arg or 1), 1.0


class Sink:
    """One user-data subscriber: a websocket and how events are framed for it."""

    def __init__(self, ws, market: str, mode: str, tag=None):
        self.ws, self.market, self.mode, self.tag = ws, market, mode, tag
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task = None

    def frame(self, ev: dict) -> str:
        if self.mode == "wsapi":
            return orjson.dumps({"subscriptionId": self.tag, "event": ev}).decode()
        if self.mode == "combined":
            return orjson.dumps({"stream": self.tag, "data": ev}).decode()
        return orjson.dumps(ev).decode()


class StreamConn:
    """A market-data (and, USD-M, listenKey) stream connection."""

    def __init__(self, ws, market: str, combined: bool, streams=()):
        self.ws, self.market, self.combined = ws, market, combined
        self.streams: set = set(streams)


def _base(stream: str) -> str:
    """``btcusdt@depth@100ms`` -> ``btcusdt@depth`` (the update speed is not a separate stream here)."""
    parts = stream.split("@")
    if len(parts) == 3 and parts[2].endswith("ms"):
        return "@".join(parts[:2])
    return stream


class Server:
    def __init__(self, ex, keys, limiters, faults: Faults, host="127.0.0.1", port=0, tick_s=0.02,
                 listen_key_ttl_s=3600.0):
        self.ex = ex
        self.keys = keys
        self.limiters = limiters
        self.faults = faults
        self.host, self.port = host, port
        self.tick_s = tick_s
        self.listen_keys = ListenKeys(listen_key_ttl_s)
        self.listen_keys.on_expire = self._listen_key_gone
        self.sinks: list[Sink] = []
        self.streams: list[StreamConn] = []
        self.wsapi_conns: set = set()
        self._held = {}  # market -> (event, deadline) for reorder_event
        self._md_backlog = {}  # market -> [(stream, text)] not yet broadcast (held during a stall)
        self._runner = None
        self._pump_task = None
        self.ex.emit = self.dispatch
        self.garbage_sent = 0
        self.stats = {"rest": 0, "ws_requests": 0, "events_sent": 0, "md_sent": 0, "errors": 0}

    # -- time ---------------------------------------------------------------------------------
    def server_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.faults.time_offset_ms

    # -- lifetime -----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        for (method, path) in REST_ROUTES:
            app.router.add_route(method, path, self._rest)
        app.router.add_get("/ws-api/v3", self._wsapi_spot)
        app.router.add_get("/ws-fapi/v1", self._wsapi_usdm)
        for prefix, market in (("", "spot"), ("/futures", "usdm")):
            for path in ("/ws", "/stream", "/market/stream", "/public/stream", "/private/stream",
                         "/market/ws", "/public/ws", "/private/ws"):
                app.router.add_get(prefix + path, self._stream_handler(market))
            app.router.add_get(prefix + "/ws/{name}", self._stream_handler(market))
        app.router.add_route("*", "/_control/fault", self._ctl_fault)
        app.router.add_route("*", "/_control/advance", self._ctl_advance)
        app.router.add_get("/_control/state", self._ctl_state)
        app.router.add_get("/_control/trades", self._ctl_trades)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._pump_task = asyncio.ensure_future(self._pump())

    async def stop(self) -> None:
        if self._pump_task:
            self._pump_task.cancel()
        for ws in [s.ws for s in self.streams] + list(self.wsapi_conns):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _pump(self) -> None:
        while True:
            try:
                new = self.ex.step()
                for k, v in new.items():
                    if v:
                        self._md_backlog.setdefault(k, []).extend(v)
                if time.monotonic() >= self.faults.stall_until and self._md_backlog:
                    backlog, self._md_backlog = self._md_backlog, {}
                    await self._broadcast(backlog)  # after a stall: the held messages, in order
                self.listen_keys.expire_due()
                self._flush_held(force=False)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("binance test exchange: pump")
            await asyncio.sleep(self.tick_s)

    async def _broadcast(self, new: dict) -> None:
        for conn in list(self.streams):
            msgs = new.get(conn.market) or ()
            if not msgs or not conn.streams or conn.ws.closed:
                continue
            bases = {_base(s): s for s in conn.streams}
            for stream, text in msgs:
                sub = bases.get(_base(stream))
                if sub is None:
                    continue
                i = text.find('"data":')
                if conn.combined:
                    out = text if sub == stream else '{"stream":"%s",%s' % (sub, text[i:])
                else:
                    out = text[i + 7:-1]
                try:
                    await conn.ws.send_str(out)
                    self.stats["md_sent"] += 1
                except (ConnectionResetError, RuntimeError):
                    break

    def _queue_md(self, new: dict) -> None:
        """Market messages passed outside the pump (advance): broadcast by the pump's next round."""
        for k, v in new.items():
            if v:
                self._md_backlog.setdefault(k, []).extend(v)

    # -- user-stream events -------------------------------------------------------------------
    def dispatch(self, market: str, ev: dict) -> None:
        f = self.faults
        if f.drop_event:
            f.drop_event -= 1
            return
        copies = 1
        if f.dup_event:
            f.dup_event -= 1
            copies = 2
        if f.reorder_event and market not in self._held:
            f.reorder_event -= 1
            self._held[market] = (ev, time.monotonic() + 1.0)
            return
        for _ in range(copies):
            self._enqueue(market, ev)
        held = self._held.pop(market, None)
        if held is not None:
            self._enqueue(market, held[0])

    def _flush_held(self, force: bool) -> None:
        t = time.monotonic()
        for market, (ev, deadline) in list(self._held.items()):
            if force or t >= deadline:
                del self._held[market]
                self._enqueue(market, ev)

    def _enqueue(self, market: str, ev: dict) -> None:
        for s in self.sinks:
            if s.market == market:
                s.queue.put_nowait(s.frame(ev))

    def _add_sink(self, sink: Sink) -> Sink:
        self.sinks.append(sink)
        sink.task = asyncio.ensure_future(self._sink_writer(sink))
        return sink

    def _drop_sink(self, sink: Sink) -> None:
        if sink in self.sinks:
            self.sinks.remove(sink)
        if sink.task:
            sink.task.cancel()

    async def _sink_writer(self, sink: Sink) -> None:
        try:
            while True:
                text = await sink.queue.get()
                while time.monotonic() < self.faults.stall_until:
                    await asyncio.sleep(min(0.05, self.faults.stall_until - time.monotonic() + 0.001))
                if sink.ws.closed:
                    return
                await sink.ws.send_str(text)
                self.stats["events_sent"] += 1
        except (asyncio.CancelledError, ConnectionResetError, RuntimeError):
            pass

    def _listen_key_gone(self, key: str) -> None:
        ev = {"e": "listenKeyExpired", "E": self.server_ms(), "listenKey": key}
        for s in list(self.sinks):
            if s.market == "usdm" and s.mode != "wsapi" and s.tag == key:
                s.queue.put_nowait(s.frame(ev))
                self.sinks.remove(s)
                asyncio.ensure_future(self._close_after_drain(s))

    async def _close_after_drain(self, s: Sink) -> None:
        for _ in range(100):
            if s.queue.empty():
                break
            await asyncio.sleep(0.01)
        if s.task:
            s.task.cancel()
        if s.mode == "raw":
            await s.ws.close()

    # -- the common request path --------------------------------------------------------------
    def _authorize(self, market, op, params, api_key_header, session_key, rest_raw=None):
        security = OPS[op][0]
        if security == "NONE":
            return None
        key_name = params.get("apiKey") or api_key_header
        if security == "USER_STREAM":
            return self.keys.get(key_name or (session_key.key if session_key else None))
        if session_key is not None and not params.get("signature") and not params.get("apiKey"):
            check_timestamp(params, self.server_ms())
            return session_key
        key = self.keys.get(key_name)
        if rest_raw is not None:
            check_rest_signature(key, *rest_raw)
        else:
            check_ws_signature(key, params)
        check_timestamp(params, self.server_ms())
        return key

    def execute(self, market, op, params, api_key_header=None, session_key=None, rest_raw=None):
        """Rate limit, authorize, run; returns the result or raises BinanceError."""
        lim = self.limiters[market]
        orders = 1 if OPS[op][2] else 0
        lim.charge(weight_of(op, market, params), 0)
        self._authorize(market, op, params, api_key_header, session_key, rest_raw)
        if orders:
            lim.charge(0, orders)
        return OPS[op][3](self, market, params)

    # -- REST ---------------------------------------------------------------------------------
    async def _rest(self, request: web.Request):
        self.stats["rest"] += 1
        market, op = REST_ROUTES[(request.method, request.path)]
        lim = self.limiters[market]
        orders = OPS[op][2]
        raw_q = request.query_string
        raw_b = (await request.text()) if request.can_read_body else ""
        if self.faults.rest_fail:
            self.faults.rest_fail -= 1
            return web.Response(status=503, text="binance test exchange: fault rest_fail")
        params = {}
        try:
            for src in (raw_q, raw_b):
                for k, v in urllib.parse.parse_qsl(src, keep_blank_values=True):
                    if k in params and params[k] != v:
                        raise BinanceError(-1101)
                    params[k] = v
            result = self.execute(market, op, params, request.headers.get("X-MBX-APIKEY"), None, (raw_q, raw_b))
            status, body, retry = 200, result, None
        except BinanceError as e:
            self.stats["errors"] += 1
            status, body, retry = e.status, e.body(), e.retry_after
        except Exception as e:  # a bug here must still answer like a server
            log.exception("binance test exchange: %s %s", request.method, request.path)
            status, body, retry = 500, {"code": -1000, "msg": f"internal error: {e}"}, None
        if orders and op != "order.test":
            if self.faults.ack_delay_s:
                await asyncio.sleep(self.faults.ack_delay_s)
            if self.faults.drop_ack:
                self.faults.drop_ack -= 1
                request.transport.close()  # executed, never answered
                return web.Response(status=500)
        headers = lim.headers(with_orders=orders)
        if retry is not None:
            headers["Retry-After"] = str(retry)
        return web.Response(status=status, body=orjson.dumps(body), content_type="application/json",
                            headers=headers)

    # -- WebSocket API ------------------------------------------------------------------------
    async def _wsapi_spot(self, request):
        return await self._wsapi(request, "spot")

    async def _wsapi_usdm(self, request):
        return await self._wsapi(request, "usdm")

    async def _wsapi(self, request: web.Request, market: str):
        ws = web.WebSocketResponse(heartbeat=None, autoping=True, max_msg_size=1 << 20)
        await ws.prepare(request)
        self.wsapi_conns.add(ws)
        conn = {"key": None, "since": self.server_ms(), "logon_at": None, "subs": {}, "next_sub": 0,
                "rl": request.query.get("returnRateLimits", "true") != "false"}
        try:
            self.limiters[market].charge(2 if market == "spot" else 5, 0)
        except BinanceError:
            pass
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                        break
                    continue
                await self._ws_request(ws, market, conn, msg.data)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.wsapi_conns.discard(ws)
            for sink in conn["subs"].values():
                self._drop_sink(sink)
        return ws

    async def _ws_request(self, ws, market, conn, data: str) -> None:
        self.stats["ws_requests"] += 1
        rid = None
        lim = self.limiters[market]
        try:
            req = orjson.loads(data)
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except Exception:
            await ws.send_str(orjson.dumps({"id": None, "status": 400, "error": {
                "code": -1000, "msg": "Malformed request: not a JSON object."}}).decode())
            return
        rid = req.get("id")
        method = req.get("method")
        params = req.get("params") or {}
        if not isinstance(params, dict):
            params = {}
        rl = conn["rl"] and str(params.get("returnRateLimits", "true")).lower() != "false"
        # returnRateLimits stays in params: it is signed like any other parameter
        is_order = False
        retry = None
        try:
            if not isinstance(method, str) or not method:
                raise BinanceError(-1102, param="method")
            if method.startswith("session."):
                result = self._ws_session(market, conn, method, params)
            elif method.startswith("userDataStream.subscribe") or method == "userDataStream.unsubscribe":
                result = self._ws_user_subscribe(ws, market, conn, method, params)
            else:
                op = WS_METHODS[market].get(method)
                if op is None:
                    raise BinanceError(-1000 if market == "spot" else -1000, f"Unknown method '{method}'.")
                is_order = OPS[op][2] or op in ("order.cancel",)
                result = self.execute(market, op, params, None, conn["key"])
            status, body = 200, {"id": rid, "status": 200, "result": result}
        except BinanceError as e:
            self.stats["errors"] += 1
            status = e.status
            retry = e.retry_after
            body = {"id": rid, "status": status, "error": e.body()}
        except Exception as e:
            log.exception("binance test exchange: ws %s", method)
            body = {"id": rid, "status": 500, "error": {"code": -1000, "msg": f"internal error: {e}"}}
        if retry is not None and "error" in body:
            body["error"]["data"] = {"serverTime": self.server_ms(), "retryAfter": self.server_ms() + retry * 1000}
        if rl:
            body["rateLimits"] = lim.ws_rate_limits(with_orders=is_order)
        if is_order:
            if self.faults.ack_delay_s:
                await asyncio.sleep(self.faults.ack_delay_s)
            if self.faults.drop_ack:
                self.faults.drop_ack -= 1
                return
        try:
            await ws.send_str(orjson.dumps(body).decode())
        except (ConnectionResetError, RuntimeError):
            pass

    def _session_view(self, conn) -> dict:
        k = conn["key"]
        return {"apiKey": k.key if k else None, "authorizedSince": conn["logon_at"],
                "connectedSince": conn["since"], "returnRateLimits": conn["rl"], "serverTime": self.server_ms(),
                "userDataStream": any(s.tag is not None for s in conn["subs"].values())}

    def _ws_session(self, market, conn, method, params) -> dict:
        self.limiters[market].charge(2, 0)
        if method == "session.logon":
            key = self.keys.get(params.get("apiKey"))
            if key.kind != "ed25519":
                raise BinanceError(-4056 if market == "usdm" else -1002,
                                   "HMAC_SHA256 API key is not supported." if market == "usdm" else None)
            check_ws_signature(key, params)
            check_timestamp(params, self.server_ms())
            conn["key"] = key
            conn["logon_at"] = self.server_ms()
            return self._session_view(conn)
        if method == "session.status":
            return self._session_view(conn)
        if method == "session.logout":
            conn["key"] = None
            conn["logon_at"] = None
            for sid, sink in list(conn["subs"].items()):
                if sink.mode == "wsapi" and getattr(sink, "logon_sub", False):
                    self._drop_sink(sink)
                    del conn["subs"][sid]
            return self._session_view(conn)
        raise BinanceError(-1000, f"Unknown method '{method}'.")

    def _ws_user_subscribe(self, ws, market, conn, method, params):
        if market != "spot":
            raise BinanceError(-1000, f"Unknown method '{method}'.")
        self.limiters[market].charge(2, 0)
        if method == "userDataStream.unsubscribe":
            sid = params.get("subscriptionId")
            for k in list(conn["subs"]):
                if sid is None or str(k) == str(sid):
                    self._drop_sink(conn["subs"].pop(k))
            return {}
        if method == "userDataStream.subscribe":
            if conn["key"] is None:
                raise BinanceError(-2015, status=401) if False else BinanceError(
                    -1002, "This method requires an authenticated session: session.logon first.")
            if any(getattr(s, "logon_sub", False) for s in conn["subs"].values()):
                raise BinanceError(-1000, "User Data Stream subscription already active.")
        else:  # userDataStream.subscribe.signature
            key = self.keys.get(params.get("apiKey"))
            check_ws_signature(key, params)
            check_timestamp(params, self.server_ms())
        sid = conn["next_sub"]
        conn["next_sub"] += 1
        sink = Sink(ws, market, "wsapi", sid)
        sink.logon_sub = method == "userDataStream.subscribe"
        conn["subs"][sid] = self._add_sink(sink)
        return {"subscriptionId": sid}

    # -- streams ------------------------------------------------------------------------------
    def _stream_handler(self, market):
        async def handler(request):
            return await self._stream(request, market)
        return handler

    async def _stream(self, request: web.Request, market: str):
        path = request.path
        combined = path.endswith("/stream")
        name = request.match_info.get("name")
        streams = set()
        if "streams" in request.query:
            streams = {s for s in request.query["streams"].split("/") if s}
        elif name:
            streams = {name}
        elif "listenKey" in request.query:
            streams = {request.query["listenKey"]}
        for s in list(streams):  # a listenKey on the path must be valid before the upgrade
            if market == "usdm" and "@" not in s and not self.listen_keys.valid(s):
                if name:
                    return web.json_response({"code": -1125, "msg": "This listenKey does not exist."}, status=400)
                streams.discard(s)
        ws = web.WebSocketResponse(heartbeat=None, autoping=True)
        await ws.prepare(request)
        conn = StreamConn(ws, market, combined)
        self.streams.append(conn)
        user_sinks = {}

        def subscribe(names):
            for s in names:
                if "@" in s:
                    conn.streams.add(s)
                elif market == "usdm" and self.listen_keys.valid(s) and s not in user_sinks:
                    user_sinks[s] = self._add_sink(Sink(ws, market, "combined" if combined else "raw", s))

        subscribe(streams)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                        break
                    continue
                try:
                    req = orjson.loads(msg.data)
                    method, rid = req.get("method"), req.get("id")
                    names = [str(x) for x in (req.get("params") or [])]
                except Exception:
                    await ws.send_str(orjson.dumps({"error": {"code": 3, "msg": "Invalid JSON"}, "id": None}).decode())
                    continue
                if method == "SUBSCRIBE":
                    subscribe(names)
                    await ws.send_str(orjson.dumps({"result": None, "id": rid}).decode())
                elif method == "UNSUBSCRIBE":
                    for s in names:
                        conn.streams.discard(s)
                        if s in user_sinks:
                            self._drop_sink(user_sinks.pop(s))
                    await ws.send_str(orjson.dumps({"result": None, "id": rid}).decode())
                elif method == "LIST_SUBSCRIPTIONS":
                    await ws.send_str(orjson.dumps({"result": sorted(conn.streams | set(user_sinks)),
                                                    "id": rid}).decode())
                else:
                    await ws.send_str(orjson.dumps({"error": {"code": 2, "msg": "Invalid request"},
                                                    "id": rid}).decode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            if conn in self.streams:
                self.streams.remove(conn)
            for s in user_sinks.values():
                self._drop_sink(s)
        return ws

    # -- control ------------------------------------------------------------------------------
    async def send_garbage(self, n: int) -> None:
        """``n`` malformed frames on every WS API connection and USD-M user stream, now."""
        targets = [(ws, GARBAGE_WSAPI) for ws in self.wsapi_conns]
        targets += [(s.ws, GARBAGE_STREAM) for s in self.sinks if s.mode != "wsapi"]
        for ws, frames in targets:
            for i in range(n):
                try:
                    await ws.send_str(frames[(self.garbage_sent + i) % len(frames)])
                except (ConnectionResetError, RuntimeError):
                    break
        self.garbage_sent += n

    async def disconnect_all(self) -> None:
        for ws in [s.ws for s in self.streams] + list(self.wsapi_conns):
            await ws.close(code=1001, message=b"binance test exchange: fault disconnect")

    async def inject(self, kind: str, n: int = 1, seconds: float = 1.0) -> None:
        self.faults.apply(kind, n, seconds)
        if kind == "disconnect":
            await self.disconnect_all()
        elif kind == "garbage":
            await self.send_garbage(n)

    async def _ctl_fault(self, request):
        q = request.query
        try:
            await self.inject(q.get("kind", ""), int(q.get("n", "1")), float(q.get("seconds", "1.0")))
        except ValueError as e:
            return web.json_response({"ok": False, "error": str(e)}, status=400)
        return web.json_response({"ok": True})

    async def _ctl_advance(self, request):
        self.ex.markets[next(iter(self.ex.markets))].clock.advance(float(request.query.get("seconds", "1")))
        self._queue_md(self.ex.step())
        return web.json_response({"ok": True})

    async def _ctl_state(self, request):
        return web.json_response(self.state())

    async def _ctl_trades(self, request):
        market = request.query.get("market", "spot")
        return web.json_response(self.ex.trades.get(market, []))

    def state(self) -> dict:
        return {"port": self.port, "stats": dict(self.stats), "counters": dict(self.ex.counters),
                "markets": {n: {"symbol": m.symbol, "msg_pos": m.msg_pos, "messages": len(m.venue.msgs),
                                "loops": m.loops, "engine": m.engine.counters()} for n, m in self.ex.markets.items()},
                "sinks": len(self.sinks), "streams": len(self.streams), "wsapi": len(self.wsapi_conns),
                "listen_keys": len(self.listen_keys.keys),
                "rate_limits": {n: {"counts": list(l.counts), "n_429": l.n_429, "n_418": l.n_418}
                                for n, l in self.limiters.items()}}
