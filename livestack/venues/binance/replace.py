"""Replace of the binance venue (a mixin of ``BinanceAdapter``): spot ``order.cancelReplace``
(STOP_ON_FAILURE: a new venue order under the new id's clientOrderId for qty - filled) and USD-M
``order.modify`` (the same venue order, renamed in the adapter's map). An answer that never comes
is resolved by querying the new order (spot) / the modified one (USD-M)."""

from __future__ import annotations

import asyncio

from livestack.schema import ExecType
from livestack.venues.binance import codec
from livestack.venues.binance.codec import Reject
from livestack.venues.binance.state import _VOrder
from livestack.venues.binance.transport import ApiError, NoAnswer


class ReplaceMixin:
    """Needs the adapter's ``_ws_call``, ``_rest_call``, ``_order_call``, ``_emit``, ``_terminal``,
    ``_local_reject``, ``_filter_reject``, ``_query_order``, ``_resolve``, ``_after_recv_window``."""

    async def _replace(self, cmd, inst) -> None:
        kind, new_cid, orig, inst_id, side, price, qty, tif, ord_type, _ = cmd
        old = self.core.get(orig)
        if old is None or old.terminal:
            self._local_reject(cmd, int(Reject.UNKNOWN_ORDER))
            return
        bad = self._filter_reject(inst, price, qty, ord_type)
        if bad:
            self._local_reject(cmd, bad)
            return
        if self.market == "usdm":
            params = {"symbol": inst.symbol, "origClientOrderId": old.clid, "side": "BUY" if old.side == 1 else "SELL",
                      "quantity": codec.fmt_fixed(qty, inst.qty_decimals),
                      "price": codec.fmt_fixed(price, inst.price_decimals)}
            asyncio.ensure_future(self._await_modify(old, orig, new_cid, price, qty, params))
        else:
            rest_qty = qty - old.cum
            if rest_qty <= 0:
                self._local_reject(cmd, int(Reject.REPLACE_QTY))
                return
            clid = codec.client_order_id(self.epoch, new_cid)
            try:
                p = codec.new_order_params("spot", inst.symbol, clid, old.side, ord_type, tif, price, rest_qty,
                                           inst.price_decimals, inst.qty_decimals)
            except ValueError:
                self._local_reject(cmd, int(Reject.BAD_COMMAND))
                return
            p.update({"cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrigClientOrderId": old.clid})
            nv = _VOrder(new_cid, inst, old.side, price, rest_qty, clid)
            nv.base = old.base + old.cum
            nv.pending_replace = orig
            old.replacing = True
            self.vorders[clid] = nv
            if (new_cid, orig) in self._resent_replaces:
                self._resent_replaces.discard((new_cid, orig))
                asyncio.ensure_future(self._resolve_replace(old, nv, resend=p))
            else:
                asyncio.ensure_future(self._await_cancel_replace(old, nv, p))
        await asyncio.sleep(0)

    async def _await_modify(self, v: _VOrder, orig: int, new_cid: int, price: int, qty: int, params) -> None:
        try:
            res = await self._order_call("order.modify", params, "PUT")
        except ApiError as e:
            if e.code != -5027:
                self._emit(ExecType.CANCEL_REJECTED, new_cid, v, reason=codec.reason_of(e.code), orig=orig)
                return
            # -5027 "No need to modify the order": it already has this price and quantity -- a
            # modify a killed predecessor sent and never reported (requeued), or a replace to the
            # same values. Checked by a query below; refusing it told the core "still the old
            # order" while Binance had the new one
            self.stats["modify_already_done"] += 1
            res, why = None, codec.reason_of(e.code)
        except NoAnswer:
            self.stats["unknown_outcomes"] += 1
            res, why = None, int(Reject.BAD_RESPONSE)
        if res is None:
            try:
                st = await self._query_order(v)
                ok = (codec.parse_fixed(st.get("price", "0"), v.inst.price_decimals) == price
                      and codec.parse_fixed(st.get("origQty", "0"), v.inst.qty_decimals) == qty)
            except (ApiError, NoAnswer, ValueError, AttributeError):
                ok = False
            if not ok:
                self._emit(ExecType.CANCEL_REJECTED, new_cid, v, reason=why, orig=orig)
                return
            res = {}
        if v.terminal:
            return  # filled / canceled meanwhile: the core ends the order; the rename is moot
        v.price, v.qty = price, qty
        self._renamed(v, orig, new_cid)
        self._emit(ExecType.REPLACED, new_cid, v, orig=orig,
                   ts_ms=res.get("updateTime") if isinstance(res, dict) else None)

    def _renamed(self, v: _VOrder, orig: int, new_cid: int) -> None:
        v.cid = new_cid
        self.core.pop(orig, None)
        self.core[new_cid] = v

    async def _await_cancel_replace(self, old: _VOrder, nv: _VOrder, params) -> None:
        try:
            res = await self._ws_call("order.cancelReplace", params) if (self.ws and self.ws.up) else \
                await self._rest_call("POST", "/api/v3/order/cancelReplace", list(params.items()))
        except ApiError as e:
            data = e.data if isinstance(e.data, dict) else {}
            old.replacing = False
            if data.get("cancelResult") == "SUCCESS":     # -2021: canceled, the new order failed
                old.retired = False
                if not old.terminal:
                    self._terminal(old, ExecType.CANCELED, 0)
            else:                                          # -2022 / a parameter error: nothing changed
                self._emit(ExecType.CANCEL_REJECTED, nv.cid, old, reason=codec.reason_of(e.code), orig=old.cid)
            self.vorders.pop(nv.clid, None)
            return
        except NoAnswer:
            self.stats["unknown_outcomes"] += 1
            await self._resolve_replace(old, nv)
            return
        new_res = res.get("newOrderResponse") if isinstance(res, dict) else None
        if isinstance(new_res, dict) and isinstance(new_res.get("orderId"), int):
            nv.order_id = new_res["orderId"]
        self._replaced(old, nv)

    def _replaced(self, old: _VOrder, nv: _VOrder) -> None:
        """The spot cancelReplace took: REPLACED(new, orig) once; the old venue order's late fills
        go to the new id (the same core order), its CANCELED is not news."""
        if not nv.pending_replace:
            return
        orig = nv.pending_replace
        nv.pending_replace = 0
        nv.acked = True
        old.retired = True
        old.replacing = False
        old.terminal = True
        old.cid = nv.cid
        self.core.pop(orig, None)
        self.core[nv.cid] = nv
        # the old order's retired line travels with REPLACED: journaled only once the ring took it.
        # Written here, a kill before REPLACED reached the core left the journal saying the
        # replace was answered with the new order unknown: the core's pending replace was then
        # answered "ended" and halted the instrument
        self._emit(ExecType.REPLACED, nv.cid, nv, orig=orig, journal_also=old)

    async def _resolve_replace(self, old: _VOrder, nv: _VOrder, resend=None) -> None:
        """A cancelReplace whose outcome is unknown: once Binance can no longer take it (recvWindow),
        ask for the new clientOrderId. There: REPLACED (and what the new order did since). Unknown
        (-2013): refused, or with ``resend`` -- the params of a cancelReplace a killed predecessor
        took and never answered -- sent now. (Sent blindly, STOP_ON_FAILURE failed on the already
        canceled old order and the core was told "refused" while the new order rested at Binance.)"""
        await self._after_recv_window(nv)
        try:
            await self._query_order(nv)
        except ApiError as e:
            if e.code == -2013 and resend is not None:
                await self._await_cancel_replace(old, nv, resend)
                return
            if e.code != -2013:
                self.stats["resolve_failures"] += 1
        except NoAnswer:
            self.stats["resolve_failures"] += 1
        else:
            if resend is not None:
                self.stats["resent_replaces_found"] += 1
            self._replaced(old, nv)
            await self._resolve(nv)
            return
        self.vorders.pop(nv.clid, None)
        old.replacing = False
        self._emit(ExecType.CANCEL_REJECTED, nv.cid, old, reason=int(Reject.NOT_DELIVERED), orig=old.cid)
        await self._resolve(old)
