"""Resolution and reconciliation of the binance venue (a mixin of ``BinanceAdapter``), and its timers.

* **resolve**: a request without an answer (or an answer we could not read) leaves the order's
  fate unknown. After ``recvWindow`` has passed (Binance can no longer accept that request) the
  order is queried: absent (-2013) -> REJECTED ``NOT_DELIVERED``; present -> its status and, when it
  has filled more than we reported, its trade list (each trade once, by trade id).
* **reconcile**: after every (re)connect -- the user stream had a gap -- each order we think live is
  resolved, and open orders of this session's epoch we never heard of (a restarted venue process)
  are adopted.
* **status**: the core's STATUS command (recovery after a harness restart, pending timeouts) is
  answered by querying the order: what the core has not been told (ack, fills by trade id, its end)
  first, then EXEC ``ORDER_STATUS`` (reason 0 live, 1 unknown to Binance, 2 ended; ``cum_qty`` =
  Binance's executed quantity, so a fill the core never got is a mismatch, never a guess).
* **positions** (``positions_request``, USD-M): after a burst of STATUS commands is answered, the
  account's position per instrument as EXEC ``ORDER_STATUS`` reason 3 (client order id 0), which
  the core compares with its own (``core/recovery.pyx``). The snapshot (``account.position``, else
  REST ``positionRisk``) comes on another channel than the fills (the user stream), so it may
  count a fill still on its way: it is reported only once the stream has brought a fill as new as
  its ``updateTime`` (the exec ring is FIFO: the core then has every fill it counts), or after
  ``position_settle_s`` (a trade this session never made: the core halts on the difference).
* **sweep**: every ``reconcile_interval_s`` one open-orders query finds what a lost user-stream
  event hid (Binance's user stream has no sequence numbers).
* **timers**: server-time offset, USD-M listenKey keep-alive, USD-M ``countdownCancelAll`` dead-man
  switch (refreshed only while the harness lives), cancel-all on harness loss.
"""

from __future__ import annotations

import asyncio
import logging
import time

from livestack.schema import ExecType
from livestack.venues.binance import codec
from livestack.venues.binance.codec import Reject
from livestack.venues.binance.state import _VOrder
from livestack.venues.binance.transport import ApiError, NoAnswer

log = logging.getLogger("livestack.venues.binance.adapter")


class ReconcileMixin:
    """Needs the adapter's ``_ws_call``, ``_rest_call``, ``_emit``, ``_terminal``, ``_ack``, ``_fill``."""

    # --- resolution / reconciliation -----------------------------------------------------------
    async def _after_recv_window(self, v: _VOrder) -> None:
        """Wait until Binance can no longer accept a request we sent for ``v`` (recvWindow passed)."""
        left = v.sent_mono + self.opt.recv_window_ms / 1000.0 + 0.2 - time.monotonic()
        if left > 0:
            await asyncio.sleep(left)
        while not self.up and not self._stopping:
            await self._sleep_until_up(0.5)

    async def _query_order(self, v: _VOrder) -> dict:
        p = {"symbol": v.symbol, "origClientOrderId": v.clid}
        if self.opt.use_ws_api and self.ws is not None and self.ws.up:
            res = await self._ws_call("order.status", p)
        else:
            res = await self._rest_call("GET", self.paths["order"], list(p.items()))
        if not isinstance(res, dict) or not isinstance(res.get("orderId"), int) or not isinstance(res.get("status"), str):
            self.stats["bad_messages"] += 1
            raise NoAnswer("order status: malformed")
        return res

    async def _resolve_soon(self, v: _VOrder, delay: float) -> None:
        """Ask about ``v`` after ``delay`` unless the stream settled it meanwhile."""
        await asyncio.sleep(delay)
        if v.held is not None or not v.terminal:
            await self._resolve(v)

    async def _resolve(self, v: _VOrder, cancel_cid: int = 0) -> None:
        """Find out what happened to ``v`` by asking Binance; emit what the core has not seen."""
        if v.resolving and not cancel_cid:
            return
        v.resolving = True
        try:
            await self._resolve_once(v, cancel_cid)
        finally:
            v.resolving = False

    async def _ask(self, v: _VOrder):
        """``v``'s status at Binance, asked until it answers (20 tries): the status dict, None when
        Binance does not know the order (-2013); raises NoAnswer when it never answered (or we stop)."""
        for _ in range(20):
            if self._stopping:
                raise NoAnswer("stopping")
            try:
                return await self._query_order(v)
            except ApiError as e:
                if e.code == -2013:
                    return None
                await asyncio.sleep(0.5)
            except NoAnswer:
                await self._sleep_until_up(0.5)
        raise NoAnswer("order status: no answer")

    async def _resolve_once(self, v: _VOrder, cancel_cid: int) -> None:
        await self._after_recv_window(v)
        try:
            st = await self._ask(v)
        except NoAnswer:
            if not self._stopping:
                self.stats["resolve_failures"] += 1
            return
        if st is None:
            if not v.acked and not v.terminal:
                self._terminal(v, ExecType.REJECTED, int(Reject.NOT_DELIVERED))
            elif cancel_cid:
                self._emit(ExecType.CANCEL_REJECTED, cancel_cid, v, reason=int(Reject.NO_SUCH_ORDER))
            return
        await self._apply_status(v, st)
        if cancel_cid and not v.terminal:
            self._emit(ExecType.CANCEL_REJECTED, cancel_cid, v, reason=int(Reject.CANCEL_REJECTED))

    async def _answer_status(self, cmd, inst) -> None:
        """STATUS for the core's order ``cid``: query Binance, report what the core has not seen, then
        ORDER_STATUS. A NEW that may still be in flight is asked about only after ``recvWindow``
        (Binance can no longer take it then), so "unknown" (reason 1) is final."""
        cid, side, price, qty = cmd[1], cmd[4], cmd[5], cmd[6]
        self.stats["status_requests"] += 1
        v = self.core.get(cid)
        if v is None:
            clid = codec.client_order_id(self.epoch, cid)
            v = self.vorders.get(clid)
            if v is None:   # sent by a venue process before this one and never journaled (killed)
                v = _VOrder(cid, inst, side, price, qty, clid)
                v.sent_mono = 0.0
                self.vorders[clid] = v
                self.core[cid] = v
        await self._after_recv_window(v)
        try:
            st = await self._ask(v)
        except NoAnswer:
            if not self._stopping:
                self.stats["status_failures"] += 1   # the core's pending timeout halts the instrument
            return
        if st is None:
            v.terminal = True     # never reached Binance: the core ends it on reason 1
            self._emit(ExecType.ORDER_STATUS, cid, v, reason=1)
            return
        await self._apply_status(v, st)
        try:
            executed = codec.parse_fixed(st.get("executedQty", "0"), v.inst.qty_decimals)
        except ValueError:
            self.stats["bad_messages"] += 1
            return
        live = st["status"] in ("NEW", "PARTIALLY_FILLED")
        self._emit(ExecType.ORDER_STATUS, cid, v, reason=0 if live else 2, cum=v.base + executed)

    async def _apply_status(self, v: _VOrder, st: dict) -> None:
        v.order_id = st["orderId"]
        status = st["status"]
        try:
            executed = codec.parse_fixed(st.get("executedQty", "0"), v.inst.qty_decimals)
        except ValueError:
            self.stats["bad_messages"] += 1
            return
        if status in ("NEW", "PARTIALLY_FILLED") and not v.terminal:
            self._ack(v, st.get("updateTime"))
        if executed > v.cum:
            await self._fetch_fills(v, final=status == "FILLED")
        if not v.terminal and status in ("CANCELED", "EXPIRED", "EXPIRED_IN_MATCH", "REJECTED"):
            et = ExecType.CANCELED if status == "CANCELED" else (
                ExecType.REJECTED if status == "REJECTED" else ExecType.EXPIRED)
            v.held = None
            self._terminal(v, et, 0)
        elif not v.terminal and status == "FILLED" and v.cum >= executed and executed > 0:
            v.terminal = True   # every fill was reported; the last one said FILLED (or will via cum)

    async def _fetch_fills(self, v: _VOrder, final: bool) -> None:
        """Every trade of ``v`` (spot ``myTrades`` / USD-M ``userTrades``), applied once by trade id."""
        p = {"symbol": v.symbol, "orderId": v.order_id}
        try:
            if self.market == "spot" and self.ws is not None and self.ws.up and self.opt.use_ws_api:
                trades = await self._ws_call("myTrades", p)
            else:
                trades = await self._rest_call("GET", self.paths["trades"], list(p.items()))
        except (ApiError, NoAnswer) as e:
            log.warning("binance: trades of %s: %s", v.clid, e)
            self.stats["resolve_failures"] += 1
            return
        if not isinstance(trades, list):
            self.stats["bad_messages"] += 1
            return
        for t in sorted((t for t in trades if isinstance(t, dict) and isinstance(t.get("id"), int)),
                        key=lambda t: t["id"]):
            if t.get("orderId") not in (None, v.order_id):
                continue
            self._fill(v, t["id"], t.get("price"), t.get("qty"), str(t.get("commission", "0")),
                       str(t.get("commissionAsset", "")), int(t.get("time", 0) or 0) * 1_000_000, None)
        self.stats["fills_reconciled_queries"] += 1

    async def _reconcile(self) -> None:
        """After a (re)connect: every order not terminal is asked about (status, then its trades);
        open orders of this epoch we never heard of (a restarted venue process) are adopted."""
        self.stats["reconciles"] += 1
        for v in [v for v in self.vorders.values() if not v.terminal and not v.pending_replace]:
            try:
                st = await self._query_order(v)
            except ApiError as e:
                if e.code == -2013 and not v.acked and time.monotonic() - v.sent_mono > self.opt.recv_window_ms / 1000:
                    self._terminal(v, ExecType.REJECTED, int(Reject.NOT_DELIVERED))
                continue
            except NoAnswer:
                continue
            await self._apply_status(v, st)
        try:
            if self.market == "spot" and self.opt.use_ws_api:
                opens = await self._open_orders()
                acct = await self._ws_call("account.status", {"omitZeroBalances": "true"})
            else:
                opens = await self._open_orders(ws_ok=False)
                acct = (await self._ws_call("account.position", {})) if (self.market == "usdm" and self.opt.use_ws_api) \
                    else None
        except (ApiError, NoAnswer) as e:
            log.warning("binance: reconcile queries: %s", e)
            return
        if acct is not None:
            self.stats["account_queries"] += 1
        for o in opens if isinstance(opens, list) else ():
            if not isinstance(o, dict):
                continue
            clid, sym = o.get("clientOrderId"), o.get("symbol")
            cid = codec.parse_client_order_id(clid, self.epoch)
            if cid is None or clid in self.vorders or sym not in self.by_symbol:
                continue
            inst = self.by_symbol[sym]
            try:
                v = _VOrder(cid, inst, codec.SIDE_OF.get(o.get("side"), 0),
                            codec.parse_fixed(o.get("price", "0"), inst.price_decimals),
                            codec.parse_fixed(o.get("origQty", "0"), inst.qty_decimals), clid)
            except ValueError:
                self.stats["bad_messages"] += 1
                continue
            v.acked = True   # the core learned of it before this process started
            self.vorders[clid] = v
            self.core.setdefault(cid, v)
            self.stats["adopted_orders"] += 1
            if isinstance(o.get("orderId"), int):
                await self._apply_status(v, o)

    async def _report_positions(self) -> None:
        """The account's positions after the current STATUS burst (see the module docstring)."""
        await asyncio.sleep(0.05)   # the rest of the burst
        while self._status_tasks:
            await asyncio.gather(*list(self._status_tasks), return_exceptions=True)
        self.stats["positions_requests"] += 1
        try:
            if self.opt.use_ws_api and self.ws is not None and self.ws.up:
                got = await self._ws_call("account.position", {})
            else:
                got = await self._rest_call("GET", self.paths["account"], [])
        except (ApiError, NoAnswer) as e:
            log.warning("binance: positions query: %s (not compared)", e)
            self.stats["positions_failures"] += 1
            return
        try:
            net, newest = codec.positions(got, self.by_symbol)
        except ValueError as e:
            self.stats["bad_messages"] += 1
            log.warning("binance: positions answer: %s (not compared)", e)
            return
        deadline = time.monotonic() + self.opt.position_settle_s
        for sym in sorted(net):
            while self.last_fill_ms.get(sym, 0) < newest.get(sym, 0) and time.monotonic() < deadline \
                    and not self._stopping:
                await asyncio.sleep(0.01)
            if self.last_fill_ms.get(sym, 0) < newest.get(sym, 0):
                self.stats["positions_unsettled"] += 1   # reported anyway: a fill the core never got
            inst = self.by_symbol[sym]
            self._emit(ExecType.ORDER_STATUS, 0, None, reason=3, inst_id=int(inst.id), qty=net[sym])
            self.stats["positions_reported"] += 1

    # --- timers: time sync, listenKey keep-alive, dead-man switch ------------------------------
    async def _open_orders(self, ws_ok: bool = True):
        """The open orders of our instruments, one query per symbol: with a symbol the query costs
        weight 6 (spot) / 1 (USD-M), without one 80 / 40, which a 0.5 s sweep turns into a 429 storm
        and a 418 ban. WS API when it is up, else REST. A non-list answer is returned as it came."""
        out = []
        for sym in sorted({i.symbol for i in self.instruments.values()}):
            if ws_ok and self.opt.use_ws_api and self.ws is not None and self.ws.up:
                got = await self._ws_call("openOrders.status", {"symbol": sym})
            else:
                got = await self._rest_call("GET", self.paths["open"], [("symbol", sym)])
            if not isinstance(got, list):
                return got
            out.extend(got)
        return out

    async def _sweep(self) -> None:
        """Periodic reconciliation: Binance's user stream has no sequence numbers, so a lost event is
        only visible by asking. One open-orders query; every order we think live that is not open any
        more, or open with more filled than we reported, is resolved (status + trade list)."""
        live = [v for v in self.vorders.values()
                if v.acked and not v.terminal and not v.pending_replace and not v.replacing and not v.resolving]
        held = [v for v in self.vorders.values() if v.held is not None and not v.resolving]
        if not live and not held:
            return
        try:
            opens = await self._open_orders()
        except (ApiError, NoAnswer):
            return
        if not isinstance(opens, list):
            self.stats["bad_messages"] += 1
            return
        by = {o.get("clientOrderId"): o for o in opens if isinstance(o, dict)}
        self.stats["sweeps"] += 1
        for v in live + held:
            o = by.get(v.clid)
            gone = o is None
            try:
                behind = o is not None and codec.parse_fixed(o.get("executedQty", "0"), v.inst.qty_decimals) > v.cum
            except ValueError:
                behind = False
            if gone or behind or v.held is not None:
                if v.terminal and v.held is None:
                    continue
                self.stats["sweep_resolves"] += 1
                asyncio.ensure_future(self._resolve(v))

    async def _timers(self) -> None:
        next_sync = next_keep = next_count = next_sweep = time.monotonic()
        refresh = self.opt.countdown_refresh_s or self.opt.countdown_cancel_ms / 3000.0
        while True:
            await asyncio.sleep(0.05)
            if not self.up:
                continue
            now = time.monotonic()
            try:
                if now >= next_sync:
                    next_sync = now + self.opt.time_sync_interval_s
                    await self._sync_time()
                if self.opt.reconcile_interval_s > 0 and now >= next_sweep:
                    next_sweep = now + self.opt.reconcile_interval_s
                    await self._sweep()
                if self.market == "usdm" and now >= next_keep:
                    next_keep = now + self.opt.listen_key_keepalive_s
                    if self._listen_key:
                        await self.rest.call("PUT", self.paths["listen_key"], key=True)
                        self.stats["listen_key_keepalives"] += 1
                if self.market == "usdm" and self.opt.countdown_cancel_ms and self.harness_alive and now >= next_count:
                    next_count = now + refresh
                    await self._countdown(self.opt.countdown_cancel_ms)
            except (ApiError, NoAnswer) as e:
                log.warning("binance: timer request: %s", e)

    async def _countdown(self, ms: int) -> None:
        for inst in self.instruments.values():
            try:
                await self._rest_call("POST", self.paths["countdown"], [("symbol", inst.symbol), ("countdownTime", ms)])
                self.stats["countdown_refreshes"] += 1
            except (ApiError, NoAnswer) as e:
                log.warning("binance: countdownCancelAll %s: %s", inst.symbol, e)

    async def _cancel_all(self) -> None:
        for inst in self.instruments.values():
            try:
                if self.market == "usdm":
                    await self._rest_call("DELETE", self.paths["cancel_all"], [("symbol", inst.symbol)])
                elif self.ws is not None and self.ws.up:
                    await self._ws_call("openOrders.cancelAll", {"symbol": inst.symbol})
                else:
                    await self._rest_call("DELETE", self.paths["open"], [("symbol", inst.symbol)])
                self.stats["cancel_all"] += 1
            except (ApiError, NoAnswer) as e:
                if e.__class__ is ApiError and e.code == -2011:
                    continue  # nothing open
                log.warning("binance: cancel all %s: %s", inst.symbol, e)
