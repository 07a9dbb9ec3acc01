"""The API operations, one table shared by REST and the WebSocket API.

Each operation: ``(security, weight, orders, function)``. ``security`` is Binance's: NONE,
USER_STREAM (API key only) or SIGNED (TRADE / USER_DATA: key + signature + timestamp).
``weight`` is the request weight Binance documents (a callable of the params where it depends
on them), ``orders`` whether it counts on the ORDERS limits. REST routes and WebSocket API
method names map onto these operations (``REST_ROUTES``, ``WS_METHODS``).
"""

from __future__ import annotations

import secrets
import time

from livestack.testing.binance_exchange.exchange import now_ms
from livestack.testing.binance_exchange.protocol import SPOT_CANCEL_REPLACE_FAILED, BinanceError, invalid, missing


def _depth_weight(market):
    def w(p):
        try:
            limit = int(p.get("limit", 100 if market == "spot" else 500))
        except ValueError:
            limit = 100
        if market == "spot":
            return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
        return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20
    return w


def _limit(p, default, top):
    try:
        n = int(p.get("limit", default))
    except ValueError:
        raise invalid("limit")
    if n <= 0:
        raise invalid("limit")
    return min(n, top)


# -- operations ----------------------------------------------------------------------------------

def op_ping(srv, mk, p):
    return {}


def op_time(srv, mk, p):
    return {"serverTime": srv.server_ms()}


def op_exchange_info(srv, mk, p):
    sym = p.get("symbol")
    if sym and str(sym).upper() != srv.ex.markets[mk].symbol:
        raise BinanceError(-1121)
    return srv.ex.exchange_info(mk, srv.limiters[mk].limits)


def op_depth(srv, mk, p):
    m = srv.ex.market(mk, p.get("symbol"))
    import orjson

    return orjson.loads(m.depth_body(_limit(p, 100 if mk == "spot" else 500, 5000 if mk == "spot" else 1000)))


def op_order_place(srv, mk, p):
    o = srv.ex.place(mk, p)
    if mk == "spot":
        rt = str(p.get("newOrderRespType") or ("FULL" if o.type in ("LIMIT", "MARKET") else "ACK")).upper()
        return srv.ex.order_view(o, True, rt)
    v = srv.ex.order_view(o, True)
    rt = str(p.get("newOrderRespType") or "ACK").upper()
    if rt not in ("ACK", "RESULT"):
        raise invalid("newOrderRespType")
    if rt == "ACK":  # USD-M's default: the order as accepted; fills come on the user stream
        m = srv.ex.markets[mk]
        v.update({"status": "NEW", "executedQty": m.qty_str(0), "cumQty": m.qty_str(0), "cumQuote": "0.00000",
                  "avgPrice": "0.00", "updateTime": o.time})
    return v


def op_order_test(srv, mk, p):
    srv.ex.market(mk, p.get("symbol"))
    return {}


def op_order_cancel(srv, mk, p):
    o = srv.ex.cancel(mk, p)
    v = srv.ex.order_view(o, mk != "spot")
    if mk == "spot":
        v = {"symbol": o.symbol, "origClientOrderId": o.client_id, "orderId": o.order_id, "orderListId": -1,
             "clientOrderId": o.cancel_cid or o.client_id, "transactTime": now_ms(),
             **{k: v[k] for k in ("price", "origQty", "executedQty", "cummulativeQuoteQty", "status",
                                  "timeInForce", "type", "side")},
             "selfTradePreventionMode": o.stp}
    return v


def op_order_status(srv, mk, p):
    o = srv.ex.find(mk, p)
    if o is None:
        raise BinanceError(-2013)
    return srv.ex.order_view(o, False)


def op_order_modify(srv, mk, p):
    o = srv.ex.modify(mk, p)
    return srv.ex.order_view(o, True)


def op_open_orders(srv, mk, p):
    sym = p.get("symbol")
    if sym:
        srv.ex.market(mk, sym)
    return [srv.ex.order_view(o, False) for o in srv.ex.live[mk].values() if o.open]


def op_all_orders(srv, mk, p):
    srv.ex.market(mk, p.get("symbol"))
    rows = [srv.ex.order_view(o, False) for o in srv.ex.orders[mk].values()]
    return rows[-_limit(p, 500, 1000):]


def op_cancel_all(srv, mk, p):
    orders = srv.ex.cancel_all(mk, p.get("symbol"))
    if mk == "spot":
        return [op_cancel_view(srv, o) for o in orders]
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def op_cancel_view(srv, o):
    v = srv.ex.order_view(o, False)
    return {"symbol": o.symbol, "origClientOrderId": o.client_id, "orderId": o.order_id, "orderListId": -1,
            "clientOrderId": o.client_id, "transactTime": now_ms(),
            **{k: v[k] for k in ("price", "origQty", "executedQty", "cummulativeQuoteQty", "status", "timeInForce",
                                 "type", "side")}, "selfTradePreventionMode": o.stp}


def op_cancel_replace(srv, mk, p):
    """Spot ``order/cancelReplace``: cancel then place; STOP_ON_FAILURE or ALLOW_FAILURE."""
    mode = str(p.get("cancelReplaceMode") or "")
    if not mode:
        raise missing("cancelReplaceMode")
    if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
        raise invalid("cancelReplaceMode")
    cp = {"symbol": p.get("symbol"), "orderId": p.get("cancelOrderId"),
          "origClientOrderId": p.get("cancelOrigClientOrderId")}
    if cp["orderId"] in (None, "") and cp["origClientOrderId"] in (None, ""):
        raise missing("cancelOrderId")
    srv.ex.market(mk, p.get("symbol"))
    cancel_resp = cancel_err = None
    try:
        o = srv.ex.cancel(mk, cp)
        cancel_resp = op_cancel_view(srv, o)
    except BinanceError as e:
        cancel_err = e
    new_p = {k: v for k, v in p.items() if k not in ("cancelReplaceMode", "cancelOrderId", "cancelOrigClientOrderId",
                                                      "cancelNewClientOrderId", "cancelRestrictions")}
    if cancel_err is not None and mode == "STOP_ON_FAILURE":
        raise BinanceError(-2022, SPOT_CANCEL_REPLACE_FAILED, data={
            "cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
            "cancelResponse": cancel_err.body(), "newOrderResponse": None})
    new_resp = new_err = None
    try:
        new_resp = op_order_place(srv, mk, new_p)
    except BinanceError as e:
        new_err = e
    if cancel_err is None and new_err is None:
        return {"cancelResult": "SUCCESS", "newOrderResult": "SUCCESS", "cancelResponse": cancel_resp,
                "newOrderResponse": new_resp}
    if cancel_err is not None and new_err is not None:
        raise BinanceError(-2022, SPOT_CANCEL_REPLACE_FAILED, data={
            "cancelResult": "FAILURE", "newOrderResult": "FAILURE",
            "cancelResponse": cancel_err.body(), "newOrderResponse": new_err.body()})
    raise BinanceError(-2021, data={
        "cancelResult": "FAILURE" if cancel_err else "SUCCESS",
        "newOrderResult": "FAILURE" if new_err else "SUCCESS",
        "cancelResponse": cancel_err.body() if cancel_err else cancel_resp,
        "newOrderResponse": new_err.body() if new_err else new_resp})


def op_account(srv, mk, p):
    return srv.ex.spot_account() if mk == "spot" else srv.ex.usdm_account()


def op_balance(srv, mk, p):
    a = srv.ex.usdm_account()
    x = a["assets"][0]
    return [{"accountAlias": "SgsR", "asset": x["asset"], "balance": x["walletBalance"],
             "crossWalletBalance": x["crossWalletBalance"], "crossUnPnl": x["crossUnPnl"],
             "availableBalance": x["availableBalance"], "maxWithdrawAmount": x["maxWithdrawAmount"],
             "marginAvailable": True, "updateTime": x["updateTime"]}]


def op_positions(srv, mk, p):
    return srv.ex.usdm_positions()


def op_my_trades(srv, mk, p):
    m = srv.ex.market(mk, p.get("symbol"))
    rows = [r for r in srv.ex.trades[mk] if r["symbol"] == m.symbol]
    if p.get("orderId") not in (None, ""):
        rows = [r for r in rows if r["orderId"] == int(p["orderId"])]
    if p.get("fromId") not in (None, ""):
        rows = [r for r in rows if r["id"] >= int(p["fromId"])]
    return rows[-_limit(p, 500, 1000):]


def op_countdown(srv, mk, p):
    ms = p.get("countdownTime")
    if ms in (None, ""):
        raise missing("countdownTime")
    srv.ex.set_countdown(p.get("symbol"), int(ms))
    return {"symbol": str(p.get("symbol")).upper(), "countdownTime": str(int(ms))}


def op_listen_key_new(srv, mk, p):
    return {"listenKey": srv.listen_keys.create()}


def op_listen_key_keepalive(srv, mk, p):
    key = p.get("listenKey") or srv.listen_keys.current
    if not srv.listen_keys.keepalive(key):
        raise BinanceError(-1125)
    return {"listenKey": key}


def op_listen_key_close(srv, mk, p):
    key = p.get("listenKey") or srv.listen_keys.current
    srv.listen_keys.close(key)
    return {}


def op_retired(srv, mk, p):
    raise BinanceError(-1000, "The spot listenKey endpoints are retired: subscribe with userDataStream.subscribe "
                              "on the WebSocket API.", status=410)


# name -> (security, weight, orders, function)
OPS = {
    "ping": ("NONE", 1, False, op_ping),
    "time": ("NONE", 1, False, op_time),
    "exchangeInfo": ("NONE", {"spot": 20, "usdm": 1}, False, op_exchange_info),
    "depth": ("NONE", {"spot": _depth_weight("spot"), "usdm": _depth_weight("usdm")}, False, op_depth),
    "order.place": ("SIGNED", {"spot": 1, "usdm": 0}, True, op_order_place),
    "order.test": ("SIGNED", 1, False, op_order_test),
    "order.cancel": ("SIGNED", 1, False, op_order_cancel),
    "order.status": ("SIGNED", {"spot": 4, "usdm": 1}, False, op_order_status),
    "order.modify": ("SIGNED", 1, True, op_order_modify),
    "order.cancelReplace": ("SIGNED", 1, True, op_cancel_replace),
    "openOrders.status": ("SIGNED", {"spot": lambda p: 6 if p.get("symbol") else 80,
                                     "usdm": lambda p: 1 if p.get("symbol") else 40}, False, op_open_orders),
    "openOrders.cancelAll": ("SIGNED", 1, False, op_cancel_all),
    "allOrders": ("SIGNED", {"spot": 20, "usdm": 5}, False, op_all_orders),
    "account.status": ("SIGNED", {"spot": 20, "usdm": 5}, False, op_account),
    "account.balance": ("SIGNED", 5, False, op_balance),
    "account.position": ("SIGNED", 5, False, op_positions),
    "myTrades": ("SIGNED", {"spot": 20, "usdm": 5}, False, op_my_trades),
    "countdownCancelAll": ("SIGNED", 10, False, op_countdown),
    "userDataStream.start": ("USER_STREAM", {"spot": 2, "usdm": 1}, False, op_listen_key_new),
    "userDataStream.ping": ("USER_STREAM", {"spot": 2, "usdm": 1}, False, op_listen_key_keepalive),
    "userDataStream.stop": ("USER_STREAM", {"spot": 2, "usdm": 1}, False, op_listen_key_close),
    "retired": ("NONE", 1, False, op_retired),
}


def weight_of(op: str, market: str, params: dict) -> int:
    w = OPS[op][1]
    if isinstance(w, dict):
        w = w[market]
    return w(params) if callable(w) else int(w)


# (HTTP method, path) -> (market, op)
REST_ROUTES = {
    ("GET", "/api/v3/ping"): ("spot", "ping"),
    ("GET", "/api/v3/time"): ("spot", "time"),
    ("GET", "/api/v3/exchangeInfo"): ("spot", "exchangeInfo"),
    ("GET", "/api/v3/depth"): ("spot", "depth"),
    ("POST", "/api/v3/order"): ("spot", "order.place"),
    ("POST", "/api/v3/order/test"): ("spot", "order.test"),
    ("DELETE", "/api/v3/order"): ("spot", "order.cancel"),
    ("GET", "/api/v3/order"): ("spot", "order.status"),
    ("POST", "/api/v3/order/cancelReplace"): ("spot", "order.cancelReplace"),
    ("GET", "/api/v3/openOrders"): ("spot", "openOrders.status"),
    ("DELETE", "/api/v3/openOrders"): ("spot", "openOrders.cancelAll"),
    ("GET", "/api/v3/allOrders"): ("spot", "allOrders"),
    ("GET", "/api/v3/account"): ("spot", "account.status"),
    ("GET", "/api/v3/myTrades"): ("spot", "myTrades"),
    ("POST", "/api/v3/userDataStream"): ("spot", "retired"),
    ("PUT", "/api/v3/userDataStream"): ("spot", "retired"),
    ("DELETE", "/api/v3/userDataStream"): ("spot", "retired"),
    ("GET", "/fapi/v1/ping"): ("usdm", "ping"),
    ("GET", "/fapi/v1/time"): ("usdm", "time"),
    ("GET", "/fapi/v1/exchangeInfo"): ("usdm", "exchangeInfo"),
    ("GET", "/fapi/v1/depth"): ("usdm", "depth"),
    ("POST", "/fapi/v1/order"): ("usdm", "order.place"),
    ("POST", "/fapi/v1/order/test"): ("usdm", "order.test"),
    ("DELETE", "/fapi/v1/order"): ("usdm", "order.cancel"),
    ("GET", "/fapi/v1/order"): ("usdm", "order.status"),
    ("PUT", "/fapi/v1/order"): ("usdm", "order.modify"),
    ("GET", "/fapi/v1/openOrders"): ("usdm", "openOrders.status"),
    ("DELETE", "/fapi/v1/allOpenOrders"): ("usdm", "openOrders.cancelAll"),
    ("GET", "/fapi/v1/allOrders"): ("usdm", "allOrders"),
    ("GET", "/fapi/v2/account"): ("usdm", "account.status"),
    ("GET", "/fapi/v3/account"): ("usdm", "account.status"),
    ("GET", "/fapi/v2/balance"): ("usdm", "account.balance"),
    ("GET", "/fapi/v3/balance"): ("usdm", "account.balance"),
    ("GET", "/fapi/v2/positionRisk"): ("usdm", "account.position"),
    ("GET", "/fapi/v3/positionRisk"): ("usdm", "account.position"),
    ("GET", "/fapi/v1/userTrades"): ("usdm", "myTrades"),
    ("POST", "/fapi/v1/countdownCancelAll"): ("usdm", "countdownCancelAll"),
    ("POST", "/fapi/v1/listenKey"): ("usdm", "userDataStream.start"),
    ("PUT", "/fapi/v1/listenKey"): ("usdm", "userDataStream.ping"),
    ("DELETE", "/fapi/v1/listenKey"): ("usdm", "userDataStream.stop"),
}

# WebSocket API method -> op (per market); session.* and userDataStream.subscribe* are the server's
WS_METHODS = {
    "spot": {"ping": "ping", "time": "time", "exchangeInfo": "exchangeInfo", "depth": "depth",
             "order.place": "order.place", "order.test": "order.test", "order.cancel": "order.cancel",
             "order.status": "order.status", "order.cancelReplace": "order.cancelReplace",
             "openOrders.status": "openOrders.status", "openOrders.cancelAll": "openOrders.cancelAll",
             "allOrders": "allOrders", "account.status": "account.status", "myTrades": "myTrades"},
    "usdm": {"ping": "ping", "time": "time", "exchangeInfo": "exchangeInfo", "depth": "depth",
             "order.place": "order.place", "order.cancel": "order.cancel", "order.status": "order.status",
             "order.modify": "order.modify", "openOrders.status": "openOrders.status",
             "account.position": "account.position", "v2/account.position": "account.position",
             "account.status": "account.status", "v2/account.status": "account.status",
             "account.balance": "account.balance", "v2/account.balance": "account.balance",
             "userDataStream.start": "userDataStream.start", "userDataStream.ping": "userDataStream.ping",
             "userDataStream.stop": "userDataStream.stop"},
}


class ListenKeys:
    """USD-M listenKeys: one active key per account (a POST while one is active returns it and
    extends it), valid ``ttl_s`` after the last keep-alive."""

    def __init__(self, ttl_s: float = 3600.0):
        self.ttl_s = ttl_s
        self.keys: dict[str, float] = {}  # key -> monotonic expiry
        self.current: str | None = None
        self.on_expire = lambda key: None

    def create(self) -> str:
        if self.current and self.current in self.keys:
            self.keys[self.current] = time.monotonic() + self.ttl_s
            return self.current
        key = secrets.token_hex(32)
        self.keys[key] = time.monotonic() + self.ttl_s
        self.current = key
        return key

    def keepalive(self, key) -> bool:
        if key not in self.keys:
            return False
        self.keys[key] = time.monotonic() + self.ttl_s
        return True

    def close(self, key) -> None:
        if self.keys.pop(key, None) is not None:
            self.on_expire(key)
        if key == self.current:
            self.current = None

    def valid(self, key) -> bool:
        return key in self.keys

    def expire_due(self) -> list:
        t = time.monotonic()
        gone = [k for k, e in self.keys.items() if e <= t]
        for k in gone:
            del self.keys[k]
            if k == self.current:
                self.current = None
            self.on_expire(k)
        return gone
