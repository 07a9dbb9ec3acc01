"""The exchange state: symbols and filters, the test account, orders, trades, user-stream events.

Transport-free: REST and the WebSocket API (``server.py``) parse a request into a dict of
parameters and call :class:`Exchange` methods, which raise :class:`BinanceError` or return the
response body Binance would (shapes of the spot "Trading endpoints" / USD-M "Trade" pages).

Matching is the shared engine's (``market.py``). What this layer adds, as Binance does:

* filters: PRICE_FILTER (tick), LOT_SIZE / MARKET_LOT_SIZE (step, min, max), NOTIONAL (spot) /
  MIN_NOTIONAL (USD-M), PERCENT_PRICE_BY_SIDE (spot) / PERCENT_PRICE (USD-M) against the mid;
* spot balances (free / locked, commission in the asset received) and USD-M one-way positions
  (entry price, realized PnL, commission in USDT, reduceOnly);
* FOK (checked against the displayed book before the engine sees it: spot EXPIRED, USD-M -5021),
  LIMIT_MAKER / GTX post-only (spot -2010, USD-M -5022), IOC and MARKET remainders EXPIRED;
* duplicate clientOrderId among open orders (spot -2010 "Duplicate order sent.", USD-M -4116);
* trade ids per symbol, maker/taker flag (a fill during the placing request is taker);
* events: spot ``executionReport`` + ``outboundAccountPosition``, USD-M ``ORDER_TRADE_UPDATE`` +
  ``ACCOUNT_UPDATE``, handed to :attr:`Exchange.emit` (the server's user streams).
"""

from __future__ import annotations

import itertools
import re
import logging
import time
from decimal import Decimal

import numpy as np

from livestack.schema import ExecType, OrderCmdType, OrdType, Side, TimeInForce
from livestack.schema import DTYPES
from livestack.testing.binance_exchange.protocol import BinanceError, invalid, missing

log = logging.getLogger(__name__)

SPOT_TYPES = ("LIMIT", "MARKET", "LIMIT_MAKER")
SPOT_ALGO_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
USDM_TYPES = ("LIMIT", "MARKET")
USDM_ALGO_TYPES = ("STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET")
TERMINAL = ("FILLED", "CANCELED", "EXPIRED", "REJECTED", "EXPIRED_IN_MATCH")

SPOT_FEE = Decimal("0.001")
USDM_MAKER_FEE = Decimal("0.0002")
USDM_TAKER_FEE = Decimal("0.0005")
USDM_LEVERAGE = 20


_DECIMAL = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _d8(x: Decimal) -> str:
    return f"{x:.8f}"


class Order:
    __slots__ = ("market", "symbol", "order_id", "client_id", "side", "type", "tif", "price", "qty", "executed",
                 "cum_quote", "status", "time", "update", "coid", "fills", "reduce_only", "cancel_requested",
                 "reject_reason", "locked", "stp", "orig_type", "expire_reason", "cancel_cid")

    def __init__(self, **kw):
        self.executed = 0
        self.cum_quote = Decimal(0)
        self.status = "NEW"
        self.fills = []
        self.reduce_only = False
        self.cancel_requested = False
        self.reject_reason = 0
        self.locked = Decimal(0)
        self.expire_reason = ""
        self.cancel_cid = ""
        for k, v in kw.items():
            setattr(self, k, v)

    @property
    def open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


class Account:
    """The one test account of a market (every API key trades it)."""

    def __init__(self, market: str, balances: dict):
        self.market = market
        self.balances = {a: [Decimal(str(v)), Decimal(0)] for a, v in balances.items()}  # asset -> [free, locked]
        self.position = Decimal(0)  # USD-M one-way position (base units, signed)
        self.position_time = 0      # ms of its last change (positionRisk's updateTime; 0: never)
        self.entry = Decimal(0)
        self.realized = Decimal(0)

    def free(self, asset: str) -> Decimal:
        return self.balances.setdefault(asset, [Decimal(0), Decimal(0)])[0]

    def add(self, asset: str, free: Decimal = Decimal(0), locked: Decimal = Decimal(0)) -> None:
        b = self.balances.setdefault(asset, [Decimal(0), Decimal(0)])
        b[0] += free
        b[1] += locked


class Exchange:
    """Orders and accounts over the replayed markets (see the module docstring).

    Parameters
    ----------
    markets : dict market name ("spot"/"usdm") -> market.Market
    emit : callable(market, event dict) -> None
        Where user-stream events go (set by the server).
    balances : initial spot balances; ``usdm_balance``: USD-M wallet (USDT).
    """

    def __init__(self, markets: dict, emit=None, balances: dict | None = None, usdm_balance: float = 100_000.0):
        self.markets = markets
        self.emit = emit or (lambda market, ev: None)
        self.accounts = {}
        for name, m in markets.items():
            if name == "spot":
                b = balances or {m.quote_asset: 1_000_000, m.base_asset: 10}
                self.accounts[name] = Account(name, b)
            else:
                self.accounts[name] = Account(name, {m.quote_asset: usdm_balance})
        self.orders: dict[str, dict[int, Order]] = {n: {} for n in markets}  # order_id -> Order
        self.live: dict[str, dict[int, Order]] = {n: {} for n in markets}  # open orders, order_id -> Order
        self.by_client: dict[str, dict[str, Order]] = {n: {} for n in markets}  # clientOrderId -> latest Order
        self.by_coid: dict[str, dict[int, Order]] = {n: {} for n in markets}  # engine coid -> Order
        self.trades: dict[str, list] = {n: [] for n in markets}  # myTrades rows
        self._order_ids = itertools.count(1_000_001)
        self._coids = itertools.count(1)
        self._trade_ids = {n: itertools.count(5_000_001) for n in markets}
        self._cmd = np.zeros(1, dtype=DTYPES["ORDER_CMD"])
        self.countdowns: dict[tuple, float] = {}  # (market, symbol) -> monotonic deadline
        self.counters = {"orders": 0, "rejects": 0, "fills": 0, "cancels": 0, "events": 0}

    # -- helpers ------------------------------------------------------------------------------
    def market(self, name: str, symbol) -> "object":
        m = self.markets.get(name)
        if symbol is None or symbol == "":
            raise missing("symbol")
        if m is None or str(symbol).upper() != m.symbol:
            raise BinanceError(-1121)
        return m

    def step(self, now: int | None = None) -> list:
        """Advance every market to the clock; apply the engine's events (maker fills). Returns
        the new raw market messages per market: {name: [(stream, text)]}."""
        out = {}
        for name, m in self.markets.items():
            t = m.now() if now is None else now
            out[name] = m.step(t)
            self._drain(name, m, t, taker=False)
        self._countdowns()
        return out

    def _drain(self, name, m, t, taker: bool) -> None:
        for rec in m.poll_events(t):
            self._on_exec(name, m, rec, taker)

    def _submit(self, name, m, cmd_type, o: Order, engine_tif=None, orig_coid=0, new_coid=0, price=None,
                qty=None) -> None:
        c = self._cmd
        c[:] = 0
        t = max(m.now(), m.engine.market_ts)
        c["ts"] = t
        c["kind"] = 6
        c["instrument"] = m.instrument.id
        c["client_order_id"] = new_coid or o.coid
        c["orig_client_order_id"] = orig_coid
        c["price"] = o.price if price is None else price
        c["qty"] = o.qty if qty is None else qty
        c["cmd"] = cmd_type
        c["side"] = Side.BUY if o.side == "BUY" else Side.SELL
        c["tif"] = engine_tif or TimeInForce.GTC
        c["ord_type"] = OrdType.MARKET if o.type == "MARKET" else OrdType.LIMIT
        m.engine.submit(c)
        self._drain(name, m, t, taker=True)

    # -- parameters ---------------------------------------------------------------------------
    def _decimal_param(self, p, name, required=True):
        v = p.get(name)
        if v is None or v == "":
            if required:
                raise missing(name)
            return None
        if not _DECIMAL.match(str(v)):
            raise BinanceError(-1100, param=name, legal=_DECIMAL.pattern)
        return Decimal(str(v))

    def _filters(self, name, m, price_units, qty_units, is_market, reduce_only=False) -> None:
        """Binance's filters, in its order; spot raises -1013 'Filter failure: X', USD-M its codes."""
        spot = name == "spot"
        inst = m.instrument
        if not is_market:
            if price_units <= 0:
                raise BinanceError(-1013, filter="PRICE_FILTER") if spot else BinanceError(-4014)
            if price_units % inst.tick:
                raise BinanceError(-1013, filter="PRICE_FILTER") if spot else BinanceError(-4014)
        if qty_units <= 0 or qty_units % inst.lot:
            raise BinanceError(-1013, filter="LOT_SIZE") if spot else BinanceError(-4023)
        max_qty = 9000 * m.qty_scale if spot else (1000 if is_market else 1000) * m.qty_scale
        if qty_units > max_qty:
            raise BinanceError(-1013, filter="MARKET_LOT_SIZE" if is_market else "LOT_SIZE") if spot \
                else BinanceError(-1013, filter="LOT_SIZE")
        bid, ask = m.best()
        ref = None
        if bid is not None and ask is not None:
            ref = (bid + ask) / 2
        elif m.last_trade_px:
            ref = m.last_trade_px
        px = price_units if not is_market else (ref or 0)
        notional = m.px_dec(int(px)) * m.qty_dec(qty_units) if px else None
        if notional is not None:
            if spot and notional < 5:
                raise BinanceError(-1013, filter="NOTIONAL")
            if not spot and notional < 100 and not reduce_only:
                raise BinanceError(-4164, limit="100")
        if ref and not is_market:
            up, down = (Decimal(5), Decimal("0.2")) if spot else (Decimal("1.05"), Decimal("0.95"))
            r = Decimal(price_units) / Decimal(ref)
            if r > up or r < down:
                if spot:
                    raise BinanceError(-1013, filter="PERCENT_PRICE_BY_SIDE")
                if r > up:
                    raise BinanceError(-4016, limit=m.px_str(int(Decimal(ref) * up)))
                raise BinanceError(-4024, limit=m.px_str(int(Decimal(ref) * down)))

    def _fillable(self, m, side, price_units, qty_units, is_market) -> bool:
        """Whether the displayed book holds ``qty`` at or better than ``price`` (FOK)."""
        bids, asks = m.book()
        levels = asks if side == "BUY" else bids
        need = qty_units
        for px, q in levels:
            if not is_market and ((side == "BUY" and px > price_units) or (side == "SELL" and px < price_units)):
                break
            need -= q
            if need <= 0:
                return True
        return False

    def _crosses(self, m, side, price_units) -> bool:
        bid, ask = m.best()
        return (side == "BUY" and ask is not None and price_units >= ask) or \
               (side == "SELL" and bid is not None and price_units <= bid)

    # -- orders -------------------------------------------------------------------------------
    def place(self, name: str, p: dict) -> Order:
        """Validate and place a new order; returns the Order after the engine processed it (its
        immediate fills included). Raises BinanceError for a rejected request."""
        m = self.market(name, p.get("symbol"))
        spot = name == "spot"
        side = str(p.get("side") or "").upper()
        if not side:
            raise missing("side")
        if side not in ("BUY", "SELL"):
            raise invalid("side")
        otype = str(p.get("type") or "").upper()
        if not otype:
            raise missing("type")
        if not spot and otype in USDM_ALGO_TYPES:
            raise BinanceError(-4120)
        if otype not in (SPOT_TYPES if spot else USDM_TYPES):
            if spot and otype in SPOT_ALGO_TYPES:
                raise BinanceError(-2010, reason="Stop orders are not supported by this test exchange.")
            raise BinanceError(-1116)
        is_market = otype == "MARKET"
        tif = str(p.get("timeInForce") or "").upper()
        if otype == "LIMIT" and not tif:
            raise missing("timeInForce")
        if otype in ("MARKET", "LIMIT_MAKER") and tif:
            if spot:
                raise BinanceError(-1106, param="timeInForce")
            tif = ""
        if tif and tif not in (("GTC", "IOC", "FOK") if spot else ("GTC", "IOC", "FOK", "GTX")):
            raise invalid("timeInForce")
        reduce_only = str(p.get("reduceOnly", "false")).lower() == "true"
        if spot and "reduceOnly" in p:
            raise BinanceError(-1106, param="reduceOnly")
        if is_market and spot and p.get("quoteOrderQty") not in (None, ""):
            q_quote = self._decimal_param(p, "quoteOrderQty")
            bid, ask = m.best()
            ref = ask if side == "BUY" else bid
            if not ref:
                raise BinanceError(-2010, reason="Market is closed.")
            qd = (q_quote / m.px_dec(ref)).quantize(m.qty_dec(m.instrument.lot), rounding="ROUND_DOWN")
            qty_units = m.qty_units(str(qd))
        else:
            qty = self._decimal_param(p, "quantity")
            try:
                qty_units = m.qty_units(str(qty))
            except ValueError:
                raise BinanceError(-1111)
        price_units = 0
        if not is_market:
            price = self._decimal_param(p, "price")
            try:
                price_units = m.px_units(str(price))
            except ValueError:
                raise BinanceError(-1111)
        elif p.get("price") not in (None, ""):
            if spot:
                raise BinanceError(-1106, param="price")
        self._filters(name, m, price_units, qty_units, is_market, reduce_only)
        client_id = str(p.get("newClientOrderId") or "")
        if client_id:
            if len(client_id) > 36:
                raise invalid("newClientOrderId")
            prev = self.by_client[name].get(client_id)
            if prev is not None and prev.open:
                self.counters["rejects"] += 1
                raise BinanceError(-2010, reason="Duplicate order sent.") if spot else BinanceError(-4116)
        else:
            client_id = ("web_" if spot else "") + f"ls{next(self._coids):012d}x"
        acct = self.accounts[name]
        # post-only / FOK decided on the displayed book, as Binance does before the order rests
        if otype == "LIMIT_MAKER" or tif == "GTX":
            if self._crosses(m, side, price_units):
                self.counters["rejects"] += 1
                raise BinanceError(-2010, reason="Order would immediately match and take.") if spot \
                    else BinanceError(-5022)
        fok_fail = tif == "FOK" and not self._fillable(m, side, price_units, qty_units, is_market)
        if fok_fail and not spot:
            self.counters["rejects"] += 1
            raise BinanceError(-5021)
        if not spot and reduce_only:
            if (side == "SELL" and acct.position <= 0) or (side == "BUY" and acct.position >= 0):
                self.counters["rejects"] += 1
                raise BinanceError(-2022)
        # funds
        locked = Decimal(0)
        if spot:
            if side == "BUY":
                px = m.px_dec(price_units) if not is_market else m.px_dec(m.best()[1] or 0) * Decimal("1.05")
                need = px * m.qty_dec(qty_units)
                if acct.free(m.quote_asset) < need:
                    self.counters["rejects"] += 1
                    raise BinanceError(-2010, reason="Account has insufficient balance for requested action.")
                if not is_market:
                    locked = need
                    acct.add(m.quote_asset, -need, need)
            else:
                need = m.qty_dec(qty_units)
                if acct.free(m.base_asset) < need:
                    self.counters["rejects"] += 1
                    raise BinanceError(-2010, reason="Account has insufficient balance for requested action.")
                if not is_market:
                    locked = need
                    acct.add(m.base_asset, -need, need)
        else:
            px = m.px_dec(price_units) if not is_market else m.px_dec(m.best()[1 if side == "BUY" else 0] or 0)
            grows = not reduce_only and ((side == "BUY" and acct.position >= 0) or (side == "SELL" and acct.position <= 0))
            if grows and px * m.qty_dec(qty_units) / USDM_LEVERAGE > self._usdm_available(m):
                self.counters["rejects"] += 1
                raise BinanceError(-2019)
        t = now_ms()
        o = Order(market=name, symbol=m.symbol, order_id=next(self._order_ids), client_id=client_id, side=side,
                  type=otype, tif=tif or ("GTC" if not spot else ""), price=price_units, qty=qty_units, time=t,
                  update=t, coid=next(self._coids), reduce_only=reduce_only, locked=locked,
                  stp=str(p.get("selfTradePreventionMode") or ("EXPIRE_MAKER" if spot else "EXPIRE_MAKER")),
                  orig_type=otype)
        if spot and otype == "MARKET":
            o.tif = "GTC"
        self.orders[name][o.order_id] = o
        self.by_coid[name][o.coid] = o
        self.by_client[name][client_id] = o
        self.live[name][o.order_id] = o
        self.counters["orders"] += 1
        if fok_fail:  # spot FOK that cannot fill: NEW then EXPIRED, no fill
            self._event(name, m, o, "NEW")
            self._finish(name, m, o, "EXPIRED")
            return o
        engine_tif = {"IOC": TimeInForce.IOC, "FOK": TimeInForce.IOC, "GTX": TimeInForce.POST_ONLY}.get(
            tif, TimeInForce.POST_ONLY if otype == "LIMIT_MAKER" else TimeInForce.GTC)
        self._submit(name, m, OrderCmdType.NEW, o, engine_tif)
        if o.status == "REJECTED":
            del self.orders[name][o.order_id]
            self.live[name].pop(o.order_id, None)
            if self.by_client[name].get(o.client_id) is o:
                del self.by_client[name][o.client_id]
            self._release(name, m, o)
            reason = o.reject_reason
            if reason == 100:
                raise BinanceError(-2010, reason="Order would immediately match and take.") if spot \
                    else BinanceError(-5022)
            raise BinanceError(-2010, reason=f"Order rejected by the matching engine (reason {reason}).")
        return o

    def _usdm_available(self, m) -> Decimal:
        acct = self.accounts["usdm"]
        wallet = acct.free(m.quote_asset)
        used = abs(acct.position) * (acct.entry or 0) / USDM_LEVERAGE
        for o in self.live["usdm"].values():
            if o.open:
                used += m.px_dec(o.price) * m.qty_dec(o.qty - o.executed) / USDM_LEVERAGE
        return wallet - used

    def find(self, name: str, p: dict, orig_key: str = "origClientOrderId") -> Order:
        m = self.market(name, p.get("symbol"))
        oid = p.get("orderId")
        cid = p.get(orig_key)
        if oid in (None, "") and cid in (None, ""):
            raise BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        o = None
        if oid not in (None, ""):
            try:
                o = self.orders[name].get(int(oid))
            except ValueError:
                raise invalid("orderId")
        else:
            o = self.by_client[name].get(str(cid))
        if o is None or o.symbol != m.symbol:
            return None
        return o

    def cancel(self, name: str, p: dict) -> Order:
        o = self.find(name, p)
        if o is None or not o.open:
            self.counters["rejects"] += 1
            raise BinanceError(-2011)
        m = self.markets[name]
        o.cancel_requested = True
        if name == "spot":  # the cancel's own id: executionReport "c" (the order's id goes in "C")
            o.cancel_cid = str(p.get("newClientOrderId") or f"web_cx{next(self._coids):012d}")
        self._submit(name, m, OrderCmdType.CANCEL, o)
        if o.open:  # the engine had no such order: should not happen
            raise BinanceError(-2011)
        self.counters["cancels"] += 1
        return o

    def cancel_all(self, name: str, symbol) -> list:
        m = self.market(name, symbol)
        out = []
        for o in list(self.live[name].values()):
            if o.open and o.symbol == m.symbol:
                o.cancel_requested = True
                self._submit(name, m, OrderCmdType.CANCEL, o)
                out.append(o)
        return out

    def modify(self, name: str, p: dict) -> Order:
        """USD-M order modify (PUT /fapi/v1/order, ``order.modify``): a LIMIT order's price and/or
        quantity; keeps orderId and clientOrderId; priority kept only for a pure quantity decrease."""
        o = self.find(name, p)
        if o is None:
            raise BinanceError(-2013)
        if not o.open:
            raise BinanceError(-2013)
        m = self.markets[name]
        side = str(p.get("side") or "").upper()
        if not side:
            raise missing("side")
        if side != o.side:
            raise invalid("side")
        qty = self._decimal_param(p, "quantity")
        price = self._decimal_param(p, "price")
        try:
            q, px = m.qty_units(str(qty)), m.px_units(str(price))
        except ValueError:
            raise BinanceError(-1111)
        if q == o.qty and px == o.price:
            raise BinanceError(-5027)
        self._filters(name, m, px, q, False, o.reduce_only)
        if q <= o.executed:
            raise BinanceError(-4023)
        new_coid = next(self._coids)
        old = o.coid
        self.by_coid[name][new_coid] = o
        self._submit(name, m, OrderCmdType.REPLACE, o, orig_coid=old, new_coid=new_coid, price=px, qty=q)
        return o

    # -- engine events ------------------------------------------------------------------------
    def _on_exec(self, name, m, rec, taker: bool) -> None:
        o = self._apply_exec(name, m, rec, taker)
        if o is not None and not o.open:
            self.live[name].pop(o.order_id, None)

    def _apply_exec(self, name, m, rec, taker: bool):
        et = int(rec["exec_type"])
        o = self.by_coid[name].get(int(rec["client_order_id"]))
        if et == ExecType.REPLACED:
            o = self.by_coid[name].get(int(rec["client_order_id"]))
            if o is None:
                return
            self.by_coid[name].pop(int(rec["orig_client_order_id"]), None)
            o.coid = int(rec["client_order_id"])
            o.price = int(rec["price"])
            o.qty = int(rec["qty"])
            o.update = now_ms()
            self._event(name, m, o, "AMENDMENT")
            return o
        if o is None:
            return None
        if et == ExecType.ACCEPTED:
            o.status = "NEW"
            self._event(name, m, o, "NEW")
        elif et == ExecType.REJECTED:
            o.status = "REJECTED"
            o.reject_reason = int(rec["reason"])
        elif et in (ExecType.PARTIALLY_FILLED, ExecType.FILLED):
            self._fill(name, m, o, int(rec["last_px"]), int(rec["last_qty"]), maker=not taker)
            o.status = "FILLED" if et == ExecType.FILLED else "PARTIALLY_FILLED"
            if o.status == "FILLED":
                self._release(name, m, o)
            self._event(name, m, o, "TRADE")
            self._account_event(name, m)
            if o.status == "FILLED":
                self.by_coid[name].pop(o.coid, None)
        elif et == ExecType.CANCELED:
            user = o.cancel_requested
            self._finish(name, m, o, "CANCELED" if user else "EXPIRED")
        elif et == ExecType.EXPIRED:
            self._finish(name, m, o, "EXPIRED")
        elif et == ExecType.CANCEL_REJECTED:
            o.cancel_requested = False
        return o

    def _finish(self, name, m, o, status) -> None:
        o.status = status
        self.live[name].pop(o.order_id, None)
        o.update = now_ms()
        self._release(name, m, o)
        self.by_coid[name].pop(o.coid, None)
        self._event(name, m, o, "CANCELED" if status == "CANCELED" else "EXPIRED")
        if name == "spot":
            self._account_event(name, m)

    def _release(self, name, m, o) -> None:
        """Unlock what a spot order still holds (its unfilled part)."""
        if name != "spot" or not o.locked:
            return
        acct = self.accounts[name]
        asset = m.quote_asset if o.side == "BUY" else m.base_asset
        acct.add(asset, o.locked, -o.locked)
        o.locked = Decimal(0)

    def _fill(self, name, m, o, px_u, q_u, maker: bool) -> None:
        px, q = m.px_dec(px_u), m.qty_dec(q_u)
        quote = px * q
        acct = self.accounts[name]
        o.executed += q_u
        o.cum_quote += quote
        o.update = now_ms()
        m.last_trade_px = px_u
        trade_id = next(self._trade_ids[name])
        if name == "spot":
            if o.side == "BUY":
                if o.type != "MARKET":
                    hold = m.px_dec(o.price) * q
                    o.locked -= hold
                    acct.add(m.quote_asset, hold - quote, -hold)
                else:
                    acct.add(m.quote_asset, -quote)
                fee, fee_asset = (q * SPOT_FEE).quantize(Decimal("1e-8")), m.base_asset
                acct.add(m.base_asset, q - fee)
            else:
                if o.type != "MARKET":
                    o.locked -= q
                    acct.add(m.base_asset, Decimal(0), -q)
                else:
                    acct.add(m.base_asset, -q)
                fee, fee_asset = (quote * SPOT_FEE).quantize(Decimal("1e-8")), m.quote_asset
                acct.add(m.quote_asset, quote - fee)
            realized = Decimal(0)
        else:
            rate = USDM_MAKER_FEE if maker else USDM_TAKER_FEE
            fee, fee_asset = (quote * rate).quantize(Decimal("1e-8")), m.quote_asset
            signed = q if o.side == "BUY" else -q
            realized = Decimal(0)
            pos = acct.position
            if pos == 0 or (pos > 0) == (signed > 0):
                acct.entry = (abs(pos) * acct.entry + q * px) / (abs(pos) + q)
                acct.position = pos + signed
            else:
                closed = min(abs(pos), q)
                realized = (px - acct.entry) * closed * (1 if pos > 0 else -1)
                acct.position = pos + signed
                if acct.position == 0:
                    acct.entry = Decimal(0)
                elif (acct.position > 0) != (pos > 0):
                    acct.entry = px
            acct.realized += realized
            acct.position_time = o.update
            acct.add(m.quote_asset, realized - fee)
        fill = {"price": m.px_str(px_u), "qty": m.qty_str(q_u), "commission": _d8(fee),
                "commissionAsset": fee_asset, "tradeId": trade_id}
        o.fills.append(fill)
        self.counters["fills"] += 1
        row = {"symbol": m.symbol, "id": trade_id, "orderId": o.order_id, "price": fill["price"],
               "qty": fill["qty"], "quoteQty": _d8(quote), "commission": fill["commission"],
               "commissionAsset": fee_asset, "time": o.update, "isBuyer": o.side == "BUY", "isMaker": maker}
        if name == "spot":
            row.update({"orderListId": -1, "isBestMatch": True})
        else:
            row.update({"side": o.side, "realizedPnl": _d8(realized), "marginAsset": m.quote_asset,
                        "positionSide": "BOTH", "buyer": o.side == "BUY", "maker": maker})
            for k in ("isBuyer", "isMaker"):
                row.pop(k)
        self.trades[name].append(row)
        self._last_fill = (o.order_id, px_u, q_u, fee, fee_asset, trade_id, maker, realized)

    # -- countdownCancelAll -------------------------------------------------------------------
    def set_countdown(self, symbol, ms: int) -> None:
        m = self.market("usdm", symbol)
        if ms <= 0:
            self.countdowns.pop(("usdm", m.symbol), None)
        else:
            self.countdowns[("usdm", m.symbol)] = time.monotonic() + ms / 1000.0

    def _countdowns(self) -> None:
        if not self.countdowns:
            return
        t = time.monotonic()
        for key, deadline in list(self.countdowns.items()):
            if t >= deadline:
                del self.countdowns[key]
                log.info("countdownCancelAll fired for %s", key)
                self.cancel_all(key[0], key[1])

    # -- views --------------------------------------------------------------------------------
    def order_view(self, o: Order, full: bool = True, resp_type: str = "RESULT") -> dict:
        m = self.markets[o.market]
        if o.market == "spot":
            if resp_type == "ACK":
                return {"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1,
                        "clientOrderId": o.client_id, "transactTime": o.time}
            d = {"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1, "clientOrderId": o.client_id,
                 "price": m.px_str(o.price), "origQty": m.qty_str(o.qty), "executedQty": m.qty_str(o.executed),
                 "cummulativeQuoteQty": _d8(o.cum_quote), "status": o.status, "timeInForce": o.tif,
                 "type": o.type, "side": o.side}
            if full:  # order placement answer
                d = {"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1, "clientOrderId": o.client_id,
                     "transactTime": o.time, **{k: d[k] for k in list(d)[4:]},
                     "workingTime": o.time, "selfTradePreventionMode": o.stp}
                d["origQuoteOrderQty"] = "0.00000000"
                if resp_type == "FULL":
                    d["fills"] = list(o.fills)
            else:  # query answer
                d.update({"stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": o.time,
                          "updateTime": o.update, "isWorking": o.open, "workingTime": o.time,
                          "origQuoteOrderQty": "0.00000000", "selfTradePreventionMode": o.stp})
            return d
        avg = (o.cum_quote / m.qty_dec(o.executed)) if o.executed else Decimal(0)
        d = {"orderId": o.order_id, "symbol": o.symbol, "status": o.status, "clientOrderId": o.client_id,
             "price": m.px_str(o.price), "avgPrice": f"{avg:.5f}", "origQty": m.qty_str(o.qty),
             "executedQty": m.qty_str(o.executed), "cumQty": m.qty_str(o.executed),
             "cumQuote": f"{o.cum_quote:.5f}", "timeInForce": o.tif, "type": o.type, "reduceOnly": o.reduce_only,
             "closePosition": False, "side": o.side, "positionSide": "BOTH", "stopPrice": "0.00",
             "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": o.orig_type,
             "priceMatch": "NONE", "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0,
             "updateTime": o.update}
        if not full:
            d["time"] = o.time
        return d

    def _event(self, name, m, o: Order, x: str) -> None:
        """Emit the order's user-stream event for execution type ``x``."""
        t = now_ms()
        last = getattr(self, "_last_fill", None) if x == "TRADE" else None
        lp = lq = 0
        fee, fee_asset, trade_id, maker, realized = Decimal(0), None, -1, False, Decimal(0)
        if last is not None and last[0] == o.order_id:
            _, lp, lq, fee, fee_asset, trade_id, maker, realized = last
        if name == "spot":
            canceled = x == "CANCELED"
            ev = {"e": "executionReport", "E": t, "s": o.symbol,
                  "c": (o.cancel_cid or o.client_id) if canceled else o.client_id, "S": o.side, "o": o.type,
                  "f": o.tif, "q": m.qty_str(o.qty), "p": m.px_str(o.price), "P": "0.00000000",
                  "F": "0.00000000", "g": -1, "C": o.client_id if canceled else "", "x": x,
                  "X": o.status, "r": "NONE", "i": o.order_id, "l": m.qty_str(lq), "z": m.qty_str(o.executed),
                  "L": m.px_str(lp), "n": _d8(fee), "N": fee_asset, "T": o.update, "t": trade_id, "I": 0,
                  "w": o.open and o.type != "MARKET", "m": maker, "M": False, "O": o.time,
                  "Z": _d8(o.cum_quote), "Y": _d8(m.px_dec(lp) * m.qty_dec(lq)), "Q": "0.00000000",
                  "W": o.time, "V": o.stp}
        else:
            avg = (o.cum_quote / m.qty_dec(o.executed)) if o.executed else Decimal(0)
            ev = {"e": "ORDER_TRADE_UPDATE", "E": t, "T": o.update, "o": {
                "s": o.symbol, "c": o.client_id, "S": o.side, "o": o.type, "f": o.tif, "q": m.qty_str(o.qty),
                "p": m.px_str(o.price), "ap": f"{avg:.5f}", "sp": "0", "x": x, "X": o.status, "i": o.order_id,
                "l": m.qty_str(lq), "z": m.qty_str(o.executed), "L": m.px_str(lp), "N": fee_asset or "USDT",
                "n": _d8(fee), "T": o.update, "t": trade_id if trade_id > 0 else 0, "b": "0", "a": "0",
                "m": maker, "R": o.reduce_only, "wt": "CONTRACT_PRICE", "ot": o.orig_type, "ps": "BOTH",
                "cp": False, "rp": _d8(realized), "pP": False, "si": 0, "ss": 0, "V": "EXPIRE_MAKER",
                "pm": "NONE", "gtd": 0}}
        self.counters["events"] += 1
        self.emit(name, ev)

    def _account_event(self, name, m) -> None:
        t = now_ms()
        acct = self.accounts[name]
        if name == "spot":
            ev = {"e": "outboundAccountPosition", "E": t, "u": t,
                  "B": [{"a": a, "f": _d8(b[0]), "l": _d8(b[1])} for a, b in sorted(acct.balances.items())]}
        else:
            wb = acct.free(m.quote_asset)
            ev = {"e": "ACCOUNT_UPDATE", "E": t, "T": t, "a": {
                "m": "ORDER", "B": [{"a": m.quote_asset, "wb": _d8(wb), "cw": _d8(wb), "bc": "0"}],
                "P": [{"s": m.symbol, "pa": m.qty_str(int(acct.position * m.qty_scale)),
                       "ep": f"{acct.entry:.8f}", "bep": f"{acct.entry:.8f}", "cr": _d8(acct.realized),
                       "up": _d8(self._unrealized(m)), "mt": "cross", "iw": "0", "ps": "BOTH"}]}}
        self.counters["events"] += 1
        self.emit(name, ev)

    def _unrealized(self, m) -> Decimal:
        acct = self.accounts["usdm"]
        if acct.position == 0:
            return Decimal(0)
        bid, ask = m.best()
        if bid is None or ask is None:
            return Decimal(0)
        mark = m.px_dec((bid + ask) // 2)
        return (mark - acct.entry) * acct.position

    def spot_account(self) -> dict:
        acct = self.accounts["spot"]
        t = now_ms()
        return {"makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
                "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000",
                                    "seller": "0.00000000"},
                "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
                "requireSelfTradePrevention": False, "preventSor": False, "updateTime": t,
                "accountType": "SPOT", "balances": [{"asset": a, "free": _d8(b[0]), "locked": _d8(b[1])}
                                                    for a, b in sorted(acct.balances.items())],
                "permissions": ["SPOT"], "uid": 354937868}

    def usdm_positions(self) -> list:
        m = self.markets["usdm"]
        acct = self.accounts["usdm"]
        bid, ask = m.best()
        mark = m.px_dec((bid + ask) // 2) if bid and ask else Decimal(0)
        return [{"symbol": m.symbol, "positionSide": "BOTH", "positionAmt": m.qty_str(int(acct.position * m.qty_scale)),
                 "entryPrice": f"{acct.entry:.8f}", "breakEvenPrice": f"{acct.entry:.8f}",
                 "markPrice": f"{mark:.8f}", "unRealizedProfit": _d8(self._unrealized(m)),
                 "liquidationPrice": "0", "isolatedMargin": "0", "notional": _d8(acct.position * mark),
                 "marginAsset": m.quote_asset, "isolatedWallet": "0", "initialMargin": _d8(abs(acct.position * mark) / USDM_LEVERAGE),
                 "maintMargin": "0", "positionInitialMargin": _d8(abs(acct.position * mark) / USDM_LEVERAGE),
                 "openOrderInitialMargin": "0", "adl": 0, "bidNotional": "0", "askNotional": "0",
                 "leverage": str(USDM_LEVERAGE), "marginType": "cross", "isAutoAddMargin": "false",
                 "maxNotionalValue": "1000000000", "updateTime": acct.position_time}]

    def usdm_account(self) -> dict:
        m = self.markets["usdm"]
        acct = self.accounts["usdm"]
        wb = acct.free(m.quote_asset)
        up = self._unrealized(m)
        avail = self._usdm_available(m)
        pos = self.usdm_positions()[0]
        return {"totalInitialMargin": pos["initialMargin"], "totalMaintMargin": "0", "totalWalletBalance": _d8(wb),
                "totalUnrealizedProfit": _d8(up), "totalMarginBalance": _d8(wb + up),
                "totalPositionInitialMargin": pos["initialMargin"], "totalOpenOrderInitialMargin": "0",
                "totalCrossWalletBalance": _d8(wb), "totalCrossUnPnl": _d8(up), "availableBalance": _d8(avail),
                "maxWithdrawAmount": _d8(avail), "canTrade": True, "canDeposit": True, "canWithdraw": True,
                "feeTier": 0, "multiAssetsMargin": False, "tradeGroupId": -1, "updateTime": 0,
                "assets": [{"asset": m.quote_asset, "walletBalance": _d8(wb), "unrealizedProfit": _d8(up),
                            "marginBalance": _d8(wb + up), "maintMargin": "0", "initialMargin": pos["initialMargin"],
                            "positionInitialMargin": pos["initialMargin"], "openOrderInitialMargin": "0",
                            "crossWalletBalance": _d8(wb), "crossUnPnl": _d8(up), "availableBalance": _d8(avail),
                            "maxWithdrawAmount": _d8(avail), "marginAvailable": True, "updateTime": now_ms()}],
                "positions": [{"symbol": m.symbol, "positionSide": "BOTH", "positionAmt": pos["positionAmt"],
                               "unrealizedProfit": pos["unRealizedProfit"], "isolatedMargin": "0",
                               "notional": pos["notional"], "isolatedWallet": "0", "initialMargin": pos["initialMargin"],
                               "maintMargin": "0", "updateTime": pos["updateTime"], "leverage": "20",
                               "entryPrice": pos["entryPrice"], "isolated": False, "maxNotional": "1000000000",
                               "positionInitialMargin": pos["initialMargin"], "openOrderInitialMargin": "0",
                               "bidNotional": "0", "askNotional": "0"}]}

    def exchange_info(self, name: str, limits) -> dict:
        m = self.markets[name]
        t = now_ms()
        if name == "spot":
            sym = {"symbol": m.symbol, "status": "TRADING", "baseAsset": m.base_asset, "baseAssetPrecision": 8,
                   "quoteAsset": m.quote_asset, "quotePrecision": 8, "quoteAssetPrecision": 8,
                   "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
                   "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"], "icebergAllowed": False, "ocoAllowed": False,
                   "otoAllowed": False, "opoAllowed": False, "quoteOrderQtyMarketAllowed": True,
                   "allowTrailingStop": False, "cancelReplaceAllowed": True, "amendAllowed": False,
                   "pegInstructionsAllowed": False, "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
                   "filters": [
                       {"filterType": "PRICE_FILTER", "minPrice": m.px_str(m.instrument.tick),
                        "maxPrice": "1000000.00000000", "tickSize": m.px_str(m.instrument.tick)},
                       {"filterType": "LOT_SIZE", "minQty": m.qty_str(m.instrument.lot), "maxQty": "9000.00000000",
                        "stepSize": m.qty_str(m.instrument.lot)},
                       {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "9000.00000000",
                        "stepSize": "0.00000000"},
                       {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
                        "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
                       {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5", "bidMultiplierDown": "0.2",
                        "askMultiplierUp": "5", "askMultiplierDown": "0.2", "avgPriceMins": 5},
                       {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200}],
                   "permissions": [], "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                   "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"]}
            return {"timezone": "UTC", "serverTime": t, "rateLimits": [x.as_info() for x in limits],
                    "exchangeFilters": [], "symbols": [sym]}
        sym = {"symbol": m.symbol, "pair": m.symbol, "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
               "onboardDate": 1569398400000, "status": "TRADING", "maintMarginPercent": "2.5000",
               "requiredMarginPercent": "5.0000", "baseAsset": m.base_asset, "quoteAsset": m.quote_asset,
               "marginAsset": m.quote_asset, "pricePrecision": 2, "quantityPrecision": 3, "baseAssetPrecision": 8,
               "quotePrecision": 8, "underlyingType": "COIN", "underlyingSubType": [], "settlePlan": 0,
               "triggerProtect": "0.0500", "liquidationFee": "0.012500", "marketTakeBound": "0.05",
               "maxMoveOrderLimit": 10000,
               "filters": [
                   {"filterType": "PRICE_FILTER", "minPrice": "0.10", "maxPrice": "1000000", "tickSize": "0.10"},
                   {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
                   {"filterType": "MARKET_LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
                   {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                   {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                   {"filterType": "MIN_NOTIONAL", "notional": "100"},
                   {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
                    "multiplierDecimal": "4"}],
               "orderTypes": ["LIMIT", "MARKET"], "timeInForce": ["GTC", "IOC", "FOK", "GTX"]}
        return {"timezone": "UTC", "serverTime": t, "futuresType": "U_MARGINED",
                "rateLimits": [x.as_info() for x in limits], "exchangeFilters": [],
                "assets": [{"asset": m.quote_asset, "marginAvailable": True, "autoAssetExchange": "-10000"}],
                "symbols": [sym]}
