"""BinanceAdapter: ORDER_CMD records -> Binance WebSocket API (REST fallback), user data stream -> EXEC.

::

    process loop thread                      I/O thread (asyncio)
    submit(cmds) ──inbox (deque)──▶ _commands: rate limit → order.place / order.cancel /
                                               order.cancelReplace (spot) / order.modify (USD-M)
                                    _answer:   result → ACCEPTED / REPLACED / CANCELED,
                                               error  → REJECTED / CANCEL_REJECTED (reason = abs(code)),
                                               none   → unknown: resolved by a status query
                                    user data stream (spot: userDataStream.subscribe.signature on the
                                    WS API session; USD-M: listenKey stream + keep-alive) → fills
    poll(out)  ◀──events (deque)──  (EXEC records: trade ids as exec ids, 128-bit identities; each fill
                                    followed by its EXEC FEE: commission and asset)

Venue orders (:class:`_VOrder`) are keyed by the Binance clientOrderId; a core order id maps to its
current venue order. A replace is ``order.cancelReplace`` on spot (a new venue order under the new
id's clientOrderId; the old venue order's late fills are reported under the new id, which names the
same core order) and ``order.modify`` on USD-M (same venue order, renamed in our map).

Exactly-once: a command is sent once, never resent (except after -1021, whose request Binance never
took); a request without an answer is resolved by querying the order (``order.status``/REST) after
``recvWindow`` has passed, so Binance can no longer accept it: absent -> REJECTED NOT_DELIVERED.
Fills are emitted once per trade id (the adapter's set, and the core's exec-id dedup behind it);
after every (re)connect and user-stream gap each live order is reconciled (status + trade list).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time

import msgspec
import numpy as np

from livestack.schema import ExecType, OrderCmdType, OrdType, RecordFlag, new
from livestack.venues.base import VenueAdapter
from livestack.venues.binance import codec
from livestack.venues.binance.codec import Reject
from livestack.venues.binance.config import BinanceVenueOptions, load_options
from livestack.venues.binance.ratelimit import RateLimiter
from livestack.venues.binance.reconcile import ReconcileMixin
from livestack.venues.binance.replace import ReplaceMixin
from livestack.venues.binance.state import _VOrder
from livestack.venues.binance.transport import ApiError, EventStream, NoAnswer, NotSent, Rest, WsApi
from livestack.venues.execid import ExecIdCollision, ExecIdRegistry
from livestack.venues.fees import FEE_DECIMALS, asset_code

log = logging.getLogger(__name__)

_REDUCE_ONLY = int(RecordFlag.REDUCE_ONLY)
_TERMINAL_STATUS = ("CANCELED", "EXPIRED", "EXPIRED_IN_MATCH", "REJECTED", "FILLED")
_PATHS = {
    "spot": {"time": "/api/v3/time", "info": "/api/v3/exchangeInfo", "order": "/api/v3/order",
             "trades": "/api/v3/myTrades", "open": "/api/v3/openOrders", "account": "/api/v3/account"},
    "usdm": {"time": "/fapi/v1/time", "info": "/fapi/v1/exchangeInfo", "order": "/fapi/v1/order",
             "trades": "/fapi/v1/userTrades", "open": "/fapi/v1/openOrders", "account": "/fapi/v3/positionRisk",
             "listen_key": "/fapi/v1/listenKey", "countdown": "/fapi/v1/countdownCancelAll",
             "cancel_all": "/fapi/v1/allOpenOrders"},
}


class BinanceAdapter(ReplaceMixin, ReconcileMixin, VenueAdapter):
    """Binance spot / USD-M venue (options: :class:`~livestack.venues.binance.config.BinanceVenueOptions`)."""

    name = "binance"
    state_lost_on_restart = False

    def __init__(self, instruments, options, creds=None, ring_name: str = ""):
        self.opt: BinanceVenueOptions = options if isinstance(options, BinanceVenueOptions) else load_options(options)
        self.market = self.opt.market
        self.paths = _PATHS[self.market]
        self.instruments = {int(i.id): i for i in instruments}
        self.by_symbol = {i.symbol: i for i in instruments}
        self.epoch = self.opt.session_epoch or codec.session_epoch_of(ring_name or "binance")
        if creds is None:
            from livestack.venues.binance.auth import Credentials

            creds = Credentials.from_options(self.opt)
        self.creds = creds
        self.stats: collections.Counter = collections.Counter()
        self.events: collections.deque = collections.deque()   # EXEC records not yet polled
        self._resent_replaces: set = set()   # (new id, orig id) of REPLACEs a killed predecessor took
        self._undelivered: list = []   # journal lines (or None) of the polled records the ring has not taken
        self._inbox: collections.deque = collections.deque()   # (mono, cmd tuple)
        self.vorders: dict[str, _VOrder] = {}                  # clientOrderId -> venue order
        self.core: dict[int, _VOrder] = {}                     # core cid -> its current venue order
        self.filters: dict[int, codec.SymbolFilters] = {}
        self.limiter = RateLimiter(self.opt.rate_limit_safety)
        self.exec_ids = ExecIdRegistry()
        self.offset_ms = 0
        self.up = False
        self.halted = False
        self.harness_alive = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._started = threading.Event()
        self._fills_log = None
        self.ws: WsApi | None = None
        self.stream: EventStream | None = None
        self.rest: Rest | None = None
        self._listen_key = ""
        self._spot_dec = msgspec.json.Decoder(codec.SpotReport)
        self._up_event: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self.journal = None
        self._status_tasks: set = set()          # STATUS answers in flight (positions wait for them)
        self._positions_task = None              # the position report of the current STATUS burst
        self.last_fill_ms: dict[str, int] = {}   # symbol -> exchange time of the last fill forwarded

    # --- VenueAdapter (process-loop thread) -----------------------------------------------------
    def start(self) -> None:
        if self.opt.store_dir:
            from livestack.venues.binance.journal import Journal

            self.journal = Journal(self.opt.store_dir, self.epoch)
            orders, execs, taken = self.journal.load(self.instruments)
            for clid, v in orders.items():
                self.vorders[clid] = v
                if not v.terminal and not v.retired:
                    self.core[v.cid] = v
            for text in execs:
                self.exec_ids.words(text)
            self._requeue(taken)
            if orders:
                log.info("binance: journal: %d orders (%d live), %d fills already reported", len(orders),
                         len(self.core), len(execs))
        if self.opt.fills_log:
            from livestack.secrets import open_private

            self._fills_log = open_private(self.opt.fills_log, "a")
        self._thread = threading.Thread(target=self._run, name="binance-io", daemon=True)
        self._thread.start()
        self._started.wait(5.0)

    def _requeue(self, taken: list) -> None:
        """The CANCEL / REPLACE commands a killed predecessor took from the ring and never answered
        (:meth:`Journal.load`), for orders still live: sent again. A cancel never creates an order
        (-2011 for one gone meanwhile is resolved by a query); a replace reuses its deterministic
        clientOrderId, and on spot asks Binance for the new order before it is sent again
        (:meth:`_resolve_replace` with ``resend``)."""
        now = time.monotonic()
        for cmd in taken:
            self._inbox.append((now, cmd))
            if cmd[0] == OrderCmdType.REPLACE:
                self._resent_replaces.add((cmd[1], cmd[2]))
            self.stats["commands_resent_after_restart"] += 1

    def submit(self, cmds: np.ndarray) -> None:
        """Take commands from the orders ring. With a journal, NEW / CANCEL / REPLACE are journaled
        here, in the ring's thread, before anything else: a process killed with them still queued
        leaves a trace, and its successor resolves the NEW (never reached Binance -> REJECTED
        NOT_DELIVERED) and sends the CANCEL / REPLACE again (:meth:`_requeue`)."""
        now = time.monotonic()
        lines = []
        for i in range(len(cmds)):
            c = cmds[i]
            cmd = (int(c["cmd"]), int(c["client_order_id"]), int(c["orig_client_order_id"]), int(c["instrument"]),
                   int(c["side"]), int(c["price"]), int(c["qty"]), int(c["tif"]), int(c["ord_type"]),
                   bool(int(c["flags"]) & _REDUCE_ONLY))
            self._inbox.append((now, cmd))
            inst = self.instruments.get(cmd[3])
            if self.journal is not None and inst is not None:
                if cmd[0] == OrderCmdType.NEW:
                    lines.append(self.journal.line(_VOrder(cmd[1], inst, cmd[4], cmd[5], cmd[6],
                                                           codec.client_order_id(self.epoch, cmd[1]))))
                elif cmd[0] in (OrderCmdType.CANCEL, OrderCmdType.REPLACE):
                    lines.append(self.journal.command_line(cmd))
        if lines:
            self.journal.write_lines(lines)
        self.stats["commands"] += len(cmds)
        self._kick()

    def poll(self, out: np.ndarray, now_ns: int) -> int:
        """The EXEC records made since the last call. Their journal lines wait for
        :meth:`delivered`: a record counts as reported only once the exec ring took it."""
        n, cap, ev, held = 0, len(out), self.events, self._undelivered
        while ev and n < cap:
            r, line = ev.popleft()
            out[n] = r
            held.append(line)
            n += 1
        return n

    def delivered(self, k: int) -> None:
        """The exec ring took the first ``k`` records :meth:`poll` handed out: journal them now.
        Journaled at poll (as before), a kill before the ring write, or while the ring was full,
        lost them for good: the restarted venue read them as reported. Now a kill before this
        makes the successor report them again (its reconciliation finds them; the core applies a
        fill once by exec id)."""
        held = self._undelivered
        lines = [line for line in held[:k] if line is not None]
        del held[:k]
        if lines and self.journal is not None:
            self.journal.write_lines(lines)

    def on_harness_lost(self) -> None:
        """Stop refreshing the dead-man switch and cancel every open order of ours."""
        self.harness_alive = False
        if self._loop is not None:
            fut = asyncio.run_coroutine_threadsafe(self._cancel_all(), self._loop)
            try:
                fut.result(timeout=self.opt.request_timeout_s)
            except Exception as e:  # noqa: BLE001 - best effort; the countdown fires anyway on USD-M
                log.warning("binance: cancel-on-disconnect incomplete: %s", type(e).__name__)

    def stop(self) -> None:
        self._stopping = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(lambda: None)
        if self._thread is not None:
            self._thread.join(timeout=10.0)
        if self._fills_log is not None:
            self._fills_log.close()
            self._fills_log = None
        if self.journal is not None:
            self.journal.close()
        log.info("binance: venue stats %s", " ".join(f"{k}={v}" for k, v in sorted(self.status_counters().items())))

    def status_counters(self) -> dict[str, int]:
        """Venue status as int counters: ``connected``, ``halted`` (418 ban), ``bad_messages``,
        ``disconnects``, ``reconciles``, ``throttled``, ``backoffs``, ``bans``, ``time_resyncs``, ..."""
        d = dict(self.stats)
        d.update({"connected": int(self.up), "halted": int(self.halted)})
        d.update({f"rate_{k}": v for k, v in self.limiter.stats.items()})
        return d

    # --- I/O thread ----------------------------------------------------------------------------
    def _kick(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # loop closed at stop
                pass

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except Exception:  # noqa: BLE001 - the I/O thread must report, never vanish silently
            log.exception("binance: I/O thread failed")
            self.stats["io_thread_failures"] += 1
        finally:
            loop.close()

    def rate_limits(self) -> dict[str, tuple[int, int]]:
        """``{"<KIND>_<length>s": (used, limit)}`` of Binance's rate-limit windows as tracked here
        (exchangeInfo, X-MBX-* headers, WS rateLimits): livestack_venue_rate_limit_used_ratio."""
        return self.limiter.usage(self.server_ms() / 1000.0)

    def server_ms(self) -> int:
        return int(time.time() * 1000) + self.offset_ms

    async def _main(self) -> None:
        self._wake = asyncio.Event()
        self._up_event = asyncio.Event()
        self.rest = Rest(self.opt.url("rest"), self.creds, self.server_ms, self.stats, self.limiter,
                         self.opt.request_timeout_s)
        self._started.set()
        tasks = [asyncio.ensure_future(t) for t in (self._session(), self._commands(), self._timers())]
        try:
            while not self._stopping:
                await asyncio.sleep(0.02)
                for t in tasks:
                    if t.done() and not t.cancelled() and t.exception() is not None:
                        raise t.exception()
        finally:
            if self.market == "usdm" and self.opt.countdown_cancel_ms and self.up:
                await self._countdown(0)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.ws is not None:
                await self.ws.close()
            if self.stream is not None:
                await self.stream.close()
            await self.rest.close()

    # --- connection ----------------------------------------------------------------------------
    async def _sync_time(self) -> None:
        t0 = time.time()
        doc = await self.rest.call("GET", self.paths["time"])
        t1 = time.time()
        st = doc.get("serverTime") if isinstance(doc, dict) else None
        if not isinstance(st, int):
            self.stats["bad_messages"] += 1
            raise NoAnswer("time: no serverTime")
        self.offset_ms = int(st - (t0 + t1) * 500)
        self.stats["time_syncs"] += 1

    async def _load_info(self) -> None:
        syms = [i.symbol for i in self.instruments.values()]
        doc = await self.rest.call("GET", self.paths["info"])
        if not isinstance(doc, dict):
            self.stats["bad_messages"] += 1
            return
        self.limiter.load(doc.get("rateLimits", []))
        for s in doc.get("symbols", []) or []:
            if not isinstance(s, dict) or s.get("symbol") not in syms:
                continue
            inst = self.by_symbol[s["symbol"]]
            try:
                f = codec.parse_filters(s, inst.price_decimals, inst.qty_decimals)
            except (ValueError, TypeError, ArithmeticError):
                self.stats["bad_messages"] += 1
                continue
            self.filters[int(inst.id)] = f
            if (f.tick and inst.tick % f.tick) or (f.step and inst.lot % f.step):
                self.stats["filter_mismatch"] += 1
                log.error("binance: %s: configured tick/lot %d/%d are not multiples of exchangeInfo's %d/%d",
                          inst.symbol, inst.tick, inst.lot, f.tick, f.step)

    async def _connect(self) -> None:
        self.ws = WsApi(self.opt.url("ws_api"), self.stats, self._on_event, self._on_rate_limits)
        await self.ws.open()
        if self.market == "spot":
            if self.creds.key_type == "ed25519":
                # an Ed25519 key can authenticate the session: session.logon, then userDataStream.subscribe
                await self._ws_call("session.logon", {})
                self.stats["session_logons"] += 1
                res = await self._ws_call("userDataStream.subscribe", {}, signed=False)
            else:   # HMAC keys cannot log a session on: the signed subscription
                res = await self._ws_call("userDataStream.subscribe.signature", {})
            self.stats["user_stream_subscriptions"] += 1
            log.info("binance: user data stream subscribed (subscriptionId %s)",
                     res.get("subscriptionId") if isinstance(res, dict) else "?")
        else:
            doc = await self.rest.call("POST", self.paths["listen_key"], key=True)
            lk = doc.get("listenKey") if isinstance(doc, dict) else None
            if not isinstance(lk, str) or not lk:
                self.stats["bad_messages"] += 1
                raise NoAnswer("listenKey missing")
            self._listen_key = lk
            self.stream = EventStream(f"{self.opt.url('ws_stream')}/{lk}", self.stats, self._on_event)
            await self.stream.open()

    async def _session(self) -> None:
        delay = self.opt.reconnect_min_s
        info = False
        while not self._stopping:
            try:
                await self._sync_time()
                if not info:
                    await self._load_info()
                    info = True
                await self._connect()
                self.up = True
                self._up_event.set()
                self._wake.set()
                self.stats["connects"] += 1
                delay = self.opt.reconnect_min_s
                await self._reconcile()
                waits = [asyncio.ensure_future(self.ws.closed.wait())]
                if self.stream is not None:
                    waits.append(asyncio.ensure_future(self.stream.closed.wait()))
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    w.cancel()
            except asyncio.CancelledError:
                raise
            except (ApiError, NoAnswer, OSError, asyncio.TimeoutError) as e:
                log.warning("binance: session: %s", e)
            except Exception as e:  # noqa: BLE001 - e.g. websockets InvalidStatus: retry with backoff
                log.warning("binance: session: %s: %s", type(e).__name__, e)
            if self.up:
                self.stats["disconnects"] += 1
            self.up = False
            self._up_event.clear()
            for c in (self.ws, self.stream):
                if c is not None:
                    await c.close()
            self.stream = None
            if self._stopping:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.opt.reconnect_max_s)

    def _on_rate_limits(self, rl) -> None:
        self.limiter.from_ws(rl, self.server_ms() / 1000.0)

    async def _ws_call(self, method: str, params: dict, signed: bool = True, timeout: float | None = None):
        """One WS API request and its answer (resync + one retry on -1021)."""
        for attempt in (0, 1):
            p = dict(params)
            if signed:
                p["timestamp"] = self.server_ms()
                p["recvWindow"] = self.opt.recv_window_ms
                p = self.creds.sign_ws(p)
            fut = await self.ws.send(method, p)
            try:
                return await asyncio.wait_for(fut, timeout or self.opt.request_timeout_s)
            except asyncio.TimeoutError:
                self.ws.forget(fut)
                raise NoAnswer(f"{method}: no answer") from None
            except ApiError as e:
                self._api_error(e)
                if e.code == -1021 and attempt == 0:
                    self.stats["time_resyncs"] += 1
                    await self._sync_time()
                    continue
                raise
        raise AssertionError("unreachable")

    async def _rest_call(self, method: str, path: str, params, weight: int = 1):
        for attempt in (0, 1):
            try:
                return await self.rest.call(method, path, params, signed=True, recv_window=self.opt.recv_window_ms)
            except ApiError as e:
                self._api_error(e)
                if e.code == -1021 and attempt == 0:
                    self.stats["time_resyncs"] += 1
                    await self._sync_time()
                    continue
                raise
        raise AssertionError("unreachable")

    def _api_error(self, e: ApiError) -> None:
        self.stats[f"error.{e.code}"] += 1
        now = self.server_ms() / 1000.0
        if e.status == 418:
            self.limiter.ban(now + max(e.retry_after, 60.0))
            if not self.halted:
                log.error("binance: HTTP 418: IP banned for %.0f s: venue HALTED", max(e.retry_after, 60.0))
            self.halted = True
        elif e.status == 429 or e.code == -1003:
            self.limiter.back_off(e.retry_after or 1.0, now)

    # --- commands ------------------------------------------------------------------------------
    async def _commands(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._inbox:
                t0, cmd = self._inbox[0]
                if time.monotonic() - t0 > self.opt.stale_order_s:
                    self._inbox.popleft()
                    self._local_reject(cmd, int(Reject.STALE))
                    continue
                if self.halted and self.limiter.banned(self.server_ms() / 1000.0):
                    self._inbox.popleft()
                    self._local_reject(cmd, int(Reject.BANNED))
                    continue
                self.halted = False
                if not self.up:
                    await self._sleep_until_up(0.05)
                    continue
                wait = self.limiter.delay(1, cmd[0] != OrderCmdType.CANCEL, self.server_ms() / 1000.0)
                if wait > 0:
                    await asyncio.sleep(min(wait, 0.25))
                    continue
                self._inbox.popleft()
                self.limiter.spend(1, cmd[0] != OrderCmdType.CANCEL, self.server_ms() / 1000.0)
                try:
                    await self._dispatch(cmd)
                except Exception:  # noqa: BLE001 - one bad command never stops the venue
                    log.exception("binance: command %s failed", cmd)
                    self.stats["command_errors"] += 1
            # wake up again for stale checks while commands wait
            if self._inbox:
                self._wake.set()
                await asyncio.sleep(0.01)

    async def _sleep_until_up(self, t: float) -> None:
        try:
            await asyncio.wait_for(self._up_event.wait(), t)
        except asyncio.TimeoutError:
            pass

    def _local_reject(self, cmd, reason: int) -> None:
        kind, cid, orig, inst_id, side = cmd[0], cmd[1], cmd[2], cmd[3], cmd[4]
        inst = self.instruments.get(inst_id)
        new_order = kind == OrderCmdType.NEW
        v = _VOrder(cid, inst, side, cmd[5], cmd[6], codec.client_order_id(self.epoch, cid) if new_order else "") \
            if inst is not None else None
        if v is not None and new_order:
            v.terminal = True   # journaled as ended: a restarted process does not ask about it
        et = ExecType.REJECTED if new_order else ExecType.CANCEL_REJECTED
        # a refused CANCEL / REPLACE is answered: its order's line follows the command in the journal,
        # so a restarted venue does not send again what the core already saw refused
        target = None if new_order else self.core.get(cid if kind == OrderCmdType.CANCEL else orig)
        self._emit(et, cid, v, reason=reason, orig=orig if kind == OrderCmdType.REPLACE else 0, inst_id=inst_id,
                   side=side, journal_also=target if target is not None and target.clid else None)

    async def _dispatch(self, cmd) -> None:
        kind, cid, orig, inst_id, side, price, qty, tif, ord_type, reduce_only = cmd
        inst = self.instruments.get(inst_id)
        if inst is None:
            self._local_reject(cmd, int(Reject.UNKNOWN_INSTRUMENT))
            return
        if kind == OrderCmdType.NEW:
            await self._new(cmd, inst)
        elif kind == OrderCmdType.CANCEL:
            await self._cancel(cmd, inst)
        elif kind == OrderCmdType.REPLACE:
            await self._replace(cmd, inst)
        elif kind == OrderCmdType.STATUS:
            task = asyncio.ensure_future(self._answer_status(cmd, inst))
            if self.opt.positions_request:
                self._status_tasks.add(task)
                task.add_done_callback(self._status_tasks.discard)
                if self._positions_task is None or self._positions_task.done():
                    self._positions_task = asyncio.ensure_future(self._report_positions())
            await asyncio.sleep(0)
        else:
            self._local_reject(cmd, int(Reject.BAD_COMMAND))

    def _filter_reject(self, inst, price, qty, ord_type) -> int:
        f = self.filters.get(int(inst.id))
        if f is None or not self.opt.check_filters:
            return 0
        return codec.check_filters(f, price, qty, inst.qty_decimals, (ord_type or OrdType.LIMIT) == OrdType.LIMIT)

    async def _new(self, cmd, inst) -> None:
        kind, cid, orig, inst_id, side, price, qty, tif, ord_type, reduce_only = cmd
        clid = codec.client_order_id(self.epoch, cid)
        try:
            params = codec.new_order_params(self.market, inst.symbol, clid, side, ord_type, tif, price, qty,
                                            inst.price_decimals, inst.qty_decimals,
                                            self.market == "usdm" and (self.opt.reduce_only or reduce_only))
        except ValueError:
            self._local_reject(cmd, int(Reject.BAD_COMMAND))
            return
        bad = self._filter_reject(inst, price, qty, ord_type)
        if bad:
            self._local_reject(cmd, bad)
            return
        v = _VOrder(cid, inst, side, price, qty, clid)
        self.vorders[clid] = v
        self.core[cid] = v
        if self.journal is not None:
            self.journal.write(v)       # before it is sent: a restarted process knows to ask about it
        asyncio.ensure_future(self._await_new(v, params))
        await asyncio.sleep(0)  # let the request go out before the next command (order preserved)

    async def _order_call(self, method: str, params: dict, rest_method: str):
        """An order request over the WS API (or REST when ``use_ws_api`` is off / the WS API is down)."""
        if self.opt.use_ws_api and self.ws is not None and self.ws.up:
            return await self._ws_call(method, params)
        return await self._rest_call(rest_method, self.paths["order"], list(params.items()))

    async def _await_new(self, v: _VOrder, params: dict) -> None:
        first = v.sent_mono
        while True:
            try:
                res = await self._order_call("order.place", params, "POST")
                break
            except NotSent:   # never left: send it when the session is back (no duplicate possible)
                if time.monotonic() - first > self.opt.stale_order_s:
                    self._terminal(v, ExecType.REJECTED, int(Reject.STALE))
                    return
                self.stats["resent_not_sent"] += 1
                await asyncio.sleep(0.05)
                await self._sleep_until_up(0.5)
                v.sent_mono = time.monotonic()
            except (ApiError, NoAnswer) as e:
                res = e
                break
        try:
            if isinstance(res, Exception):
                raise res
        except ApiError as e:
            if e.code in (-4116, -2010) and "uplicate" in e.msg:
                self.stats["duplicate_client_order_id"] += 1
                await self._resolve(v)        # the first one got there: ask, never guess
                return
            if not v.acked and not v.terminal:
                self._terminal(v, ExecType.REJECTED, codec.reason_of(e.code))
            return
        except NoAnswer:
            self.stats["unknown_outcomes"] += 1
            await self._resolve(v)
            return
        oid = res.get("orderId") if isinstance(res, dict) else None
        if not isinstance(oid, int):
            self.stats["bad_messages"] += 1
            await self._resolve(v)
            return
        v.order_id = oid
        self._ack(v, res.get("transactTime") or res.get("updateTime"))

    async def _cancel(self, cmd, inst) -> None:
        kind, cid, orig, inst_id, side, price, qty, tif, ord_type, _ = cmd
        v = self.core.get(cid)
        if v is None:  # not ours in this process (sent before a restart): cancel by its deterministic id
            v = _VOrder(cid, inst, side, price, qty, codec.client_order_id(self.epoch, cid))
            self.vorders.setdefault(v.clid, v)
            v = self.vorders[v.clid]
            self.core[cid] = v
        v.cancel_sent = True
        asyncio.ensure_future(self._await_cancel(v, cid))
        await asyncio.sleep(0)

    async def _await_cancel(self, v: _VOrder, cid: int) -> None:
        """A cancel can be sent again safely (it never creates an order): without an answer it is
        retried once the session is back; a -2011 after a retry is checked against the order's status."""
        params = {"symbol": v.symbol, "origClientOrderId": v.clid}
        for attempt in range(5):
            try:
                res = await self._order_call("order.cancel", params, "DELETE")
            except ApiError as e:
                if attempt and e.code == -2011:
                    await self._resolve(v, cancel_cid=cid)
                    return
                self._emit(ExecType.CANCEL_REJECTED, cid, v, reason=codec.reason_of(e.code))
                return
            except NoAnswer:
                self.stats["unknown_outcomes"] += 1
                self.stats["cancel_retries"] += 1
                if v.terminal:
                    return
                await asyncio.sleep(0.1 * (attempt + 1))
                while not self.up and not self._stopping:
                    await self._sleep_until_up(0.5)
                continue
            self._after_cancel_answer(v, res, cid)
            return
        await self._resolve(v, cancel_cid=cid)

    def _after_cancel_answer(self, v: _VOrder, res, cid: int) -> None:
        if not isinstance(res, dict):
            self.stats["bad_messages"] += 1
            return
        try:
            executed = codec.parse_fixed(res.get("executedQty", "0"), v.inst.qty_decimals)
        except ValueError:
            self.stats["bad_messages"] += 1
            return
        if executed > v.cum:
            # fills still on their way in the user stream: its CANCELED ends the order after them; if
            # the stream lost them, the status query a moment later finds them
            asyncio.ensure_future(self._resolve_soon(v, 1.0))
            return
        if not v.terminal:
            self._terminal(v, ExecType.CANCELED, 0, res.get("updateTime") or res.get("transactTime"))

    # --- user data stream ----------------------------------------------------------------------
    def _on_event(self, doc) -> None:
        if not isinstance(doc, dict):
            self.stats["bad_messages"] += 1
            return
        e = doc.get("e")
        self.stats["user_events"] += 1
        if e == "executionReport":
            try:
                u = codec.update_from_spot(msgspec.convert(doc, codec.SpotReport))
            except msgspec.ValidationError:
                self.stats["bad_messages"] += 1
                return
            self._on_update(u)
        elif e == "ORDER_TRADE_UPDATE":
            try:
                u = codec.update_from_futures(msgspec.convert(doc, codec.FuturesUpdate))
            except msgspec.ValidationError:
                self.stats["bad_messages"] += 1
                return
            self._on_update(u)
        elif e in ("listenKeyExpired", "eventStreamTerminated"):
            self.stats["user_stream_ends"] += 1
            log.warning("binance: user stream ended (%s): reconnecting", e)
            for c in (self.ws, self.stream):  # the session loop reconnects and reconciles
                if c is not None:
                    asyncio.ensure_future(c.close())

    def _on_update(self, u: codec.Update) -> None:
        v = self.vorders.get(u.clid)
        if v is None:
            cid = codec.parse_client_order_id(u.clid, self.epoch)
            inst = self.by_symbol.get(u.symbol)
            if cid is None or inst is None:
                self.stats["foreign_events"] += 1
                return
            try:
                v = _VOrder(cid, inst, u.side, codec.parse_fixed(u.price, inst.price_decimals),
                            codec.parse_fixed(u.qty, inst.qty_decimals), u.clid)
            except ValueError:
                self.stats["bad_messages"] += 1
                return
            self.vorders[u.clid] = v
            self.core.setdefault(cid, v)
            self.stats["adopted_orders"] += 1
        if v.order_id == 0:
            v.order_id = u.order_id
        x = u.x
        if v.pending_replace and x in ("NEW", "TRADE", "CANCELED", "EXPIRED"):
            old = self.core.get(v.pending_replace)
            if old is not None:
                self._replaced(old, v)   # the new order exists: the cancel went through first
        if x == "NEW":
            self._ack(v, u.ts_ns // 1_000_000)
        elif x == "TRADE":
            self._fill(v, u.trade_id, u.last_px, u.last_qty, u.fee, u.fee_asset, u.ts_ns, u.X == "FILLED")
        elif x in ("CANCELED", "EXPIRED", "REJECTED", "TRADE_PREVENTION"):
            et = codec.exec_type_of(u)
            if et is None or v.terminal:
                return
            if v.retired or v.replacing:
                return  # our cancelReplace's cancel: the answer decides (REPLACED, or CANCELED on -2021)
            reason = int(Reject.NEW_ORDER_REJECTED) if et == ExecType.REJECTED else 0
            try:
                cum = codec.parse_fixed(u.cum_qty, v.inst.qty_decimals)
            except ValueError:
                cum = v.cum
            if cum > v.cum:   # fills the stream has not delivered (reordered or lost): they come first
                self.stats["terminal_held"] += 1
                v.held = (et, reason, u.ts_ns // 1_000_000, cum)
                asyncio.ensure_future(self._resolve_soon(v, 1.0))
                return
            self._terminal(v, et, reason, u.ts_ns // 1_000_000)

    # --- events --------------------------------------------------------------------------------
    def _ack(self, v: _VOrder, ts_ms=None) -> None:
        if v.acked or v.terminal or v.pending_replace:
            return
        v.acked = True
        self._emit(ExecType.ACCEPTED, v.cid, v, ts_ms=ts_ms)

    def _terminal(self, v: _VOrder, et, reason: int, ts_ms=None) -> None:
        if v.terminal:
            return
        v.terminal = True
        self._emit(et, v.cid, v, reason=reason, ts_ms=ts_ms)

    def _fill(self, v: _VOrder, trade_id, px, qty, fee: str, fee_asset: str, ts_ns: int, final) -> None:
        if not isinstance(trade_id, int) or trade_id < 0:
            self.stats["bad_messages"] += 1
            return
        text = codec.exec_id_text(v.symbol, trade_id)
        try:
            last_px = codec.parse_fixed(px, v.inst.price_decimals)
            last_qty = codec.parse_fixed(qty, v.inst.qty_decimals)
        except ValueError:
            self.stats["bad_messages"] += 1
            return
        if ts_ns:  # forwarded now or before (a duplicate): the core has it (position reports wait for it)
            self.last_fill_ms[v.symbol] = max(self.last_fill_ms.get(v.symbol, 0), ts_ns // 1_000_000)
        n = len(self.exec_ids)
        try:
            words = self.exec_ids.words(text)
        except ExecIdCollision:
            self.stats["exec_id_collisions"] += 1
            log.error("binance: exec id collision on %s: fill not forwarded", text)
            return
        if len(self.exec_ids) == n:
            self.stats["duplicate_fills"] += 1   # seen already (stream + reconciliation): once only
            return
        if not v.acked and not v.pending_replace:
            self._ack(v)
        v.cum += last_qty
        done = final if final is not None else v.cum >= v.qty
        et = ExecType.FILLED if done else ExecType.PARTIALLY_FILLED
        if done and not v.retired:
            v.terminal = True
        self.stats["fills"] += 1
        self._emit(et, v.cid, v, last_px=last_px, last_qty=last_qty, words=words, ts_ns=ts_ns)
        self._emit_fee(v, words, fee, fee_asset, ts_ns, text)   # journals the fill as reported
        if v.held is not None and v.cum >= v.held[3]:
            het, hreason, hts, _ = v.held
            v.held = None
            if not v.terminal:
                self._terminal(v, het, hreason, hts)
        if self._fills_log is not None:
            import orjson

            self._fills_log.write(orjson.dumps({
                "exec_id": text, "client_order_id": v.cid, "clientOrderId": v.clid, "orderId": v.order_id,
                "symbol": v.symbol, "side": v.side, "price": px, "qty": qty, "fee": fee, "fee_asset": fee_asset,
                "ts_ns": ts_ns}).decode() + "\n")
            self._fills_log.flush()

    def _emit_fee(self, v: _VOrder, words, fee: str, fee_asset: str, ts_ns: int, exec_text: str) -> None:
        """EXEC FEE right after the fill (``livestack.venues.fees``): Binance's commission ``n`` and
        its asset ``N``. Its journal line marks the fill reported (a process killed between the two
        reports both again; the core applies the fill once). A fee that is not a decimal of at most
        8 places is counted and sent as 0."""
        try:
            amount = codec.parse_fixed(fee or "0", FEE_DECIMALS)
        except ValueError:
            self.stats["bad_fees"] += 1
            amount = 0
        self._emit(ExecType.FEE, v.cid, v, last_qty=amount, words=words, ts_ns=ts_ns, orig=asset_code(fee_asset),
                   exec_text=exec_text)

    def _emit(self, et, cid: int, v: _VOrder | None, reason: int = 0, orig: int = 0, last_px: int = 0,
              last_qty: int = 0, words=(0, 0), ts_ms=None, ts_ns: int = 0, inst_id: int = 0, side: int = 0,
              exec_text: str = "", cum: int | None = None, journal_also: _VOrder | None = None,
              qty: int | None = None) -> None:
        """Queue an EXEC for the ring; its journal line (``v``'s state now, and ``journal_also``'s:
        the order a spot replace retired) is written once the ring took it (:meth:`delivered`)."""
        r = new("EXEC")[0]
        now = time.time_ns()
        r["ts"] = now
        r["ts_event"] = ts_ns or (int(ts_ms) * 1_000_000 if isinstance(ts_ms, int) and ts_ms > 0 else now)
        r["client_order_id"] = cid
        r["orig_client_order_id"] = orig
        r["exec_type"] = int(et)
        r["reason"] = min(int(reason), 65535)
        if v is not None and v.inst is not None:
            r["instrument"] = int(v.inst.id)
            r["side"] = v.side
            r["venue_order_id"] = v.order_id
            r["price"] = v.price
            r["qty"] = v.qty
            r["cum_qty"] = v.cum if cum is None else cum
            r["leaves_qty"] = 0 if v.terminal else max(v.qty - v.cum, 0)
        else:
            r["instrument"] = inst_id
            r["side"] = side
            r["qty"] = qty or 0      # a position report (ORDER_STATUS reason 3): the venue's net position
        r["last_px"] = last_px
        r["last_qty"] = last_qty
        r["exec_id"], r["exec_id_hi"] = words
        line = self.journal.line(v, exec_text) if self.journal is not None and v is not None and v.clid else None
        if journal_also is not None and self.journal is not None:
            line = self.journal.line(journal_also) + (line or b"")
        self.events.append((r, line))
        self.stats["events"] += 1
        if int(et) in (int(ExecType.REJECTED), int(ExecType.CANCEL_REJECTED)):
            self.stats["rejects." + codec.reason_name(int(reason))] += 1
