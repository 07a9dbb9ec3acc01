"""A small Binance stand-in for the adapter's unit tests (NOT the test exchange of the product:
that is ``livestack.testing.binance_exchange``). It speaks just enough of the real protocols, on
real sockets, for the adapter's logic to be checked: REST ``time`` / ``exchangeInfo`` / ``order``
/ ``myTrades`` / ``listenKey`` / ``countdownCancelAll``; the WS API (``order.place``,
``order.cancel``, ``order.cancelReplace``, ``order.modify``, ``order.status``, ``openOrders.status``,
``account.status``, ``account.position``, ``myTrades``, ``userDataStream.subscribe.signature``) with
HMAC signatures verified; user-data events on the WS API session (spot) or a listenKey stream
(USD-M). Orders rest until the test trades them (``trade``). Faults: ``drop_answers`` (the next n
order answers are never sent: the order still happens), ``garbage`` (frames of junk), ``kick``
(close every connection).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import threading
import time

import orjson
from aiohttp import web

KEY, SECRET = "test-key", "test-secret"


class FakeBinance:
    def __init__(self, market: str = "spot", symbol: str = "BTCUSDT", tick="0.01", step="0.00001"):
        self.market = market
        self.symbol = symbol
        self.tick, self.step = tick, step
        self.orders: dict[str, dict] = {}      # clientOrderId -> order
        self.trades: list[dict] = []
        self.ids = itertools.count(1000)
        self.trade_ids = itertools.count(1)
        self.sessions: set = set()             # spot WS API sessions subscribed to the user stream
        self.streams: set = set()              # USD-M listenKey streams
        self.requests: list[tuple[str, dict]] = []
        self.drop_answers = 0
        self.garbage = 0
        self.time_skew_ms = 0
        self.fail_1021_once = False
        self.countdowns = 0
        self.order_limit = 100                  # exchangeInfo ORDERS per 10 s
        self.ban_next = 0                       # the next n order requests answer 418 (IP banned)
        self.loop = None
        self.port = 0
        self._runner = None
        self._thread = None
        self._ready = threading.Event()

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> "FakeBinance":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def _run(self):
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._serve())
        self.loop.run_forever()

    async def _serve(self):
        app = web.Application()
        pre = "/api/v3" if self.market == "spot" else "/fapi/v1"
        app.router.add_get(f"{pre}/time", self._time)
        app.router.add_get(f"{pre}/exchangeInfo", self._info)
        app.router.add_route("*", f"{pre}/order", self._rest_order)
        app.router.add_get(f"{pre}/myTrades" if self.market == "spot" else f"{pre}/userTrades", self._rest_trades)
        app.router.add_get(f"{pre}/openOrders", self._rest_open)
        app.router.add_route("*", "/fapi/v1/listenKey", self._listen_key)
        app.router.add_post("/fapi/v1/countdownCancelAll", self._countdown)
        app.router.add_delete("/fapi/v1/allOpenOrders", self._rest_cancel_all)
        app.router.add_get("/ws-api/v3", self._ws_api)
        app.router.add_get("/ws-fapi/v1", self._ws_api)
        app.router.add_get("/ws/{key}", self._stream)
        app.router.add_get("/_bench/flood", self._flood)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()

    def stop(self):
        async def _down():
            for ws in list(self.sessions | self.streams):
                try:   # a client already gone never answers the close: do not wait for it
                    await asyncio.wait_for(ws.close(), 1.0)
                except (asyncio.TimeoutError, OSError, RuntimeError):
                    pass
            try:  # a handler still busy on a loaded machine: the stand-in stops with its loop anyway
                await asyncio.wait_for(self._runner.cleanup(), 30)
            except asyncio.TimeoutError:
                pass
        if self.loop is not None:
            asyncio.run_coroutine_threadsafe(_down(), self.loop).result(60)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    def options(self, **kw) -> dict:
        base = f"http://127.0.0.1:{self.port}"
        ws = f"ws://127.0.0.1:{self.port}"
        o = {"market": self.market, "rest_url": base,
             "ws_api_url": ws + ("/ws-api/v3" if self.market == "spot" else "/ws-fapi/v1"),
             "ws_stream_url": ws + "/ws", "recv_window_ms": 500, "request_timeout_s": 1.0,
             "reconnect_min_s": 0.05, "reconnect_max_s": 0.2, "session_epoch": 77}
        o.update(kw)
        return o

    def call(self, fn, *a):
        """Run ``fn(*a)`` on the server loop and return its result."""
        async def _c():
            r = fn(*a)
            if asyncio.iscoroutine(r):
                r = await r
            return r
        return asyncio.run_coroutine_threadsafe(_c(), self.loop).result(10)

    # --- auth ------------------------------------------------------------------------------------
    @staticmethod
    def _check_ws_sig(p: dict) -> bool:
        sig = p.get("signature")
        payload = "&".join(f"{k}={p[k]}" for k in sorted(p) if k != "signature")
        return sig == hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest() and p.get("apiKey") == KEY

    @staticmethod
    def _check_rest_sig(qs: str) -> bool:
        body, _, sig = qs.rpartition("&signature=")
        return sig == hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()

    # --- REST ------------------------------------------------------------------------------------
    async def _time(self, req):
        return web.json_response({"serverTime": int(time.time() * 1000) + self.time_skew_ms})

    async def _info(self, req):
        return web.json_response({
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                           {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                            "limit": self.order_limit}],
            "symbols": [{"symbol": self.symbol, "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": self.tick, "maxPrice": "1000000", "tickSize": self.tick},
                {"filterType": "LOT_SIZE", "minQty": self.step, "maxQty": "9000", "stepSize": self.step},
                {"filterType": "NOTIONAL", "minNotional": "5"}]}]})

    def _signed(self, req):
        qs = req.query_string
        if not self._check_rest_sig(qs):
            raise web.HTTPBadRequest(text='{"code":-1022,"msg":"Signature for this request is not valid."}',
                                     content_type="application/json")
        return dict(req.query)

    async def _rest_order(self, req):
        p = self._signed(req)
        if req.method == "GET":
            o = self.orders.get(p.get("origClientOrderId"))
            if o is None:
                return web.json_response({"code": -2013, "msg": "Order does not exist."}, status=400)
            return web.json_response(self._view(o))
        res, err = self._do("order.place" if req.method == "POST" else "order.cancel", p)
        if err:
            return web.json_response(err, status=400)
        return web.json_response(res)

    async def _rest_trades(self, req):
        p = self._signed(req)
        return web.json_response([t for t in self.trades if t["orderId"] == int(p["orderId"])])

    async def _rest_open(self, req):
        self._signed(req)
        return web.json_response([self._view(o) for o in self.orders.values() if o["status"] in ("NEW", "PARTIALLY_FILLED")])

    async def _rest_cancel_all(self, req):
        self._signed(req)
        for o in list(self.orders.values()):
            if o["status"] in ("NEW", "PARTIALLY_FILLED"):
                self._set(o, "CANCELED", "CANCELED")
        return web.json_response({"code": 200, "msg": "The operation of cancel all open order is done."})

    async def _listen_key(self, req):
        return web.json_response({"listenKey": "lk-test"} if req.method == "POST" else {})

    async def _countdown(self, req):
        self._signed(req)
        self.countdowns += 1
        return web.json_response({"symbol": self.symbol, "countdownTime": req.query.get("countdownTime")})

    async def _flood(self, req):
        """Push ``n`` one-unit TRADE events of order ``clid`` as fast as the sockets take them (bench)."""
        clid, n, unit = req.query["clid"], int(req.query["n"]), req.query.get("qty", "0.00001")
        for i in range(n):
            self._trade(clid, unit, None, True)
            if i % 256 == 255:
                await asyncio.sleep(0)
        return web.json_response({"pushed": n})

    async def _stream(self, req):
        ws = web.WebSocketResponse()
        await ws.prepare(req)
        self.streams.add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            self.streams.discard(ws)
        return ws

    # --- WS API ----------------------------------------------------------------------------------
    async def _ws_api(self, req):
        ws = web.WebSocketResponse()
        await ws.prepare(req)
        try:
            async for msg in ws:
                doc = orjson.loads(msg.data)
                method, p, rid = doc["method"], doc.get("params", {}), doc["id"]
                self.requests.append((method, p))
                if self.garbage:
                    self.garbage -= 1
                    await ws.send_str("{not json")
                    await ws.send_str('{"id": null, "status": "weird"}')
                    await ws.send_str("[1,2,3]")
                if "signature" in p and not self._check_ws_sig(p):
                    await ws.send_str(orjson.dumps({"id": rid, "status": 400, "error": {
                        "code": -1022, "msg": "Signature for this request is not valid."}}).decode())
                    continue
                if self.ban_next and method.startswith("order."):
                    self.ban_next -= 1
                    until = int(time.time() * 1000) + 3000
                    await ws.send_str(orjson.dumps({"id": rid, "status": 418, "error": {
                        "code": -1003, "msg": f"Way too much request weight used; IP banned until {until}.",
                        "data": {"serverTime": until - 3000, "retryAfter": until}}}).decode())
                    continue
                if self.fail_1021_once and method.startswith("order."):
                    self.fail_1021_once = False
                    await ws.send_str(orjson.dumps({"id": rid, "status": 400, "error": {
                        "code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}}).decode())
                    continue
                if method == "userDataStream.subscribe.signature":
                    self.sessions.add(ws)
                    res, err = {"subscriptionId": 0}, None
                else:
                    res, err = self._do(method, p)
                drop = method in ("order.place", "order.cancel", "order.cancelReplace", "order.modify") and self.drop_answers
                if drop:
                    self.drop_answers -= 1
                    continue
                rl = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000, "count": 5}]
                out = {"id": rid, "status": 200, "result": res, "rateLimits": rl} if err is None else \
                    {"id": rid, "status": 400, "error": err, "rateLimits": rl}
                await ws.send_str(orjson.dumps(out).decode())
        finally:
            self.sessions.discard(ws)
        return ws

    # --- the "exchange" --------------------------------------------------------------------------
    def _view(self, o):
        return {k: o[k] for k in ("symbol", "orderId", "clientOrderId", "price", "origQty", "executedQty", "status",
                                  "side", "type", "timeInForce", "updateTime")}

    def _do(self, method, p):
        if method == "order.place":
            clid = p["newClientOrderId"]
            if clid in self.orders and self.orders[clid]["status"] in ("NEW", "PARTIALLY_FILLED"):
                return None, {"code": -2010, "msg": "Duplicate order sent."}
            if p.get("price") == "1.00":  # a price the test uses to get a venue reject
                return None, {"code": -2010, "msg": "Account has insufficient balance for requested action."}
            o = {"symbol": p["symbol"], "orderId": next(self.ids), "clientOrderId": clid, "price": p.get("price", "0"),
                 "origQty": p["quantity"], "executedQty": "0", "status": "NEW", "side": p["side"], "type": p["type"],
                 "timeInForce": p.get("timeInForce", "GTC"), "updateTime": int(time.time() * 1000)}
            self.orders[clid] = o
            self._push(o, "NEW")
            return self._view(o), None
        if method in ("order.cancel", "order.status"):
            o = self.orders.get(p.get("origClientOrderId"))
            if o is None:
                return None, {"code": -2013 if method == "order.status" else -2011, "msg": "Unknown order sent."}
            if method == "order.status":
                return self._view(o), None
            if o["status"] not in ("NEW", "PARTIALLY_FILLED"):
                return None, {"code": -2011, "msg": "Unknown order sent."}
            self._set(o, "CANCELED", "CANCELED")
            return self._view(o), None
        if method == "order.cancelReplace":
            old = self.orders.get(p["cancelOrigClientOrderId"])
            if old is None or old["status"] not in ("NEW", "PARTIALLY_FILLED"):
                return None, {"code": -2022, "msg": "Order cancel-replace failed.", "data": {
                    "cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED"}}
            self._set(old, "CANCELED", "CANCELED")
            q = {k: v for k, v in p.items() if k not in ("cancelReplaceMode", "cancelOrigClientOrderId")}
            res, err = self._do("order.place", q)
            return {"cancelResult": "SUCCESS", "newOrderResult": "SUCCESS", "cancelResponse": self._view(old),
                    "newOrderResponse": res}, None
        if method == "order.modify":
            o = self.orders.get(p["origClientOrderId"])
            if o is None or o["status"] not in ("NEW", "PARTIALLY_FILLED"):
                return None, {"code": -2013, "msg": "Order does not exist."}
            o["price"], o["origQty"] = p["price"], p["quantity"]
            self._push(o, "AMENDMENT")
            return self._view(o), None
        if method == "openOrders.cancelAll":
            done = []
            for o in list(self.orders.values()):
                if o["status"] in ("NEW", "PARTIALLY_FILLED") and o["symbol"] == p.get("symbol"):
                    self._set(o, "CANCELED", "CANCELED")
                    done.append(self._view(o))
            return (done, None) if done else (None, {"code": -2011, "msg": "Unknown order sent."})
        if method == "openOrders.status":
            return [self._view(o) for o in self.orders.values() if o["status"] in ("NEW", "PARTIALLY_FILLED")], None
        if method in ("account.status", "account.position"):
            return ({"balances": []} if method == "account.status" else []), None
        if method == "myTrades":
            return [t for t in self.trades if t["orderId"] == int(p["orderId"])], None
        return None, {"code": -1020, "msg": "This operation is not supported."}

    def _set(self, o, status, x):
        o["status"] = status
        self._push(o, x)

    def trade(self, clid: str, qty: str, px: str | None = None, push: bool = True) -> dict:
        """Fill ``qty`` of order ``clid`` (decimal strings); returns the trade. Thread-safe."""
        return self.call(self._trade, clid, qty, px, push)

    def _trade(self, clid, qty, px, push):
        from decimal import Decimal
        o = self.orders[clid]
        ex = Decimal(o["executedQty"]) + Decimal(qty)
        o["executedQty"] = str(ex)
        o["status"] = "FILLED" if ex >= Decimal(o["origQty"]) else "PARTIALLY_FILLED"
        t = {"symbol": o["symbol"], "id": next(self.trade_ids), "orderId": o["orderId"], "price": px or o["price"],
             "qty": qty, "commission": "0.001", "commissionAsset": "BNB", "time": int(time.time() * 1000)}
        self.trades.append(t)
        if push:
            self._push(o, "TRADE", t)
        return t

    def _push(self, o, x, t=None):
        T = int(time.time() * 1000)
        if self.market == "spot":
            ev = {"e": "executionReport", "E": T, "s": o["symbol"], "c": o["clientOrderId"], "S": o["side"],
                  "o": o["type"], "f": o["timeInForce"], "q": o["origQty"], "p": o["price"], "x": x, "X": o["status"],
                  "r": "NONE", "i": o["orderId"], "l": t["qty"] if t else "0", "z": o["executedQty"],
                  "L": t["price"] if t else "0", "n": t["commission"] if t else "0", "N": t["commissionAsset"] if t else None,
                  "T": T, "t": t["id"] if t else -1, "C": ""}
            if x == "CANCELED":  # spot: c is the cancel request's own id, C the canceled order's
                ev["c"], ev["C"] = "web_cxl_%d" % o["orderId"], o["clientOrderId"]
            frame = orjson.dumps({"subscriptionId": 0, "event": ev}).decode()
            targets = self.sessions
        else:
            ev = {"e": "ORDER_TRADE_UPDATE", "E": T, "T": T, "o": {
                "s": o["symbol"], "c": o["clientOrderId"], "S": o["side"], "o": o["type"], "f": o["timeInForce"],
                "q": o["origQty"], "p": o["price"], "x": x, "X": o["status"], "i": o["orderId"],
                "l": t["qty"] if t else "0", "z": o["executedQty"], "L": t["price"] if t else "0",
                "n": t["commission"] if t else "0", "N": "USDT", "T": T, "t": t["id"] if t else 0, "R": False}}
            frame = orjson.dumps(ev).decode()
            targets = self.streams
        for ws in list(targets):
            asyncio.ensure_future(ws.send_str(frame))

    def kick(self):
        async def _k():
            for ws in list(self.sessions | self.streams):
                try:
                    await asyncio.wait_for(ws.close(), 1.0)
                except (asyncio.TimeoutError, OSError, RuntimeError):
                    pass
        self.call(_k)


def serve(market: str, conn) -> None:
    """Run a FakeBinance in this (child) process: sends its port over ``conn``, stops when ``conn`` closes."""
    fake = FakeBinance(market, step="0.00001" if market == "spot" else "0.001")
    fake.order_limit = 1_000_000
    fake.start()
    conn.send(fake.port)
    try:
        conn.recv()
    except EOFError:
        pass
    fake.stop()
