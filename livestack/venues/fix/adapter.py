"""FixAdapter: ORDER_CMD records -> FIX 4.4 / 4.2 order messages, FIX execution messages -> EXEC records.

=====================  =====================================================================
ORDER_CMD              FIX
=====================  =====================================================================
NEW                    NewOrderSingle (D): ClOrdID = client_order_id, Symbol from the
                       instrument, Side, OrderQty/Price as exact decimals (Instrument decimals),
                       OrdType 2 limit / 1 market, TimeInForce 1 GTC / 3 IOC / 0 DAY; POST_ONLY =
                       GTC + ExecInst 6 (participate, don't initiate); HandlInst 21=1 up
                       to FIX 4.3 (option ``handl_inst``)
CANCEL                 OrderCancelRequest (F): OrigClOrdID = client_order_id, ClOrdID =
                       ``<client_order_id>-C<MsgSeqNum>`` (unique, and its digits still name
                       the order), OrderID when known
REPLACE                OrderCancelReplaceRequest (G): ClOrdID = client_order_id (the new id),
                       OrigClOrdID = orig_client_order_id
=====================  =====================================================================

Inbound: ExecutionReport / OrderCancelReject through ``codec.ExecDecoder`` (its docstring has the
ExecType/OrdStatus table and what it refuses). A refused message is never forwarded: the venue gets
the session Reject (35=3) or BusinessMessageReject (35=j) that ``codec.REJECTS`` names, and
``stats["exec_refused.<reason>"]`` counts it. Every EXEC carries the ExecID's 128-bit identity
(``exec_id``/``exec_id_hi``); the adapter keeps the ExecID strings it has seen and refuses (380=1)
an ExecID whose identity another string already had. BusinessMessageReject and session Reject of one of our order messages
become REJECTED (NEW) or CANCEL_REJECTED (CANCEL/REPLACE) for that order.

``EXEC.reason``: the venue's OrdRejReason (103) / CxlRejReason (102); ``1000 + SessionRejectReason``
for a session Reject, ``2000 + BusinessRejectReason`` for a BusinessMessageReject; local reasons:

* 3001 ``NOT_DELIVERED`` -- the venue asked for the message again (ResendRequest) and we gap-filled
  over it instead of sending a stale order late: it never reached the venue.
* 3002 ``STALE`` -- the command waited for the session to come up longer than ``stale_order_s``.
* 3003 ``UNKNOWN_INSTRUMENT`` -- not one of the configured instruments.
* 3004 ``UNKNOWN_ORDER`` -- cancel/replace of an order this adapter does not know (nor its journal
  of sent orders) and whose side the command does not say.
* 3005 ``BAD_COMMAND`` -- a NEW without a side, or an unknown command.

Reject storm: every REJECTED event (the venue's, or one of ours a session/business reject turned
into REJECTED) is counted; ``reject_storm_count`` (default 20) of them within
``reject_storm_window_s`` (default 5 s) is a storm. ``stats``: ``rejects`` (all),
``reject_storms`` (storms begun), ``reject_storm_active`` (1 while the window holds at least the
threshold, 0 again once it drains). The adapter only reports it; throttling or halting trading on
it is the core's decision.

Commands that arrive while the session is down wait (in order) and go out after the next Logon,
unless older than ``stale_order_s``: never dropped silently, never sent stale.
"""

from __future__ import annotations

import collections
import logging
import time

import numpy as np

from livestack.schema import DTYPES, ExecType, OrderCmdType, OrdType, Side, TimeInForce, new
from livestack.venues.base import VenueAdapter
from livestack.venues.fix import codec
from livestack.venues.fix import session as session_mod
from livestack.venues.fix.mass_status import MassStatus
from livestack.venues.fix.positions import Positions
from livestack.venues.fix.session import FixSession, SessionApp, SessionOptions

log = logging.getLogger("livestack.venues.fix")

NOT_DELIVERED = 3001
STALE = 3002
UNKNOWN_INSTRUMENT = 3003
UNKNOWN_ORDER = 3004
BAD_COMMAND = 3005
SESSION_REJECT_BASE = 1000
BUSINESS_REJECT_BASE = 2000

_EXEC = DTYPES["EXEC"]
_TERMINAL = {int(ExecType.FILLED), int(ExecType.CANCELED), int(ExecType.REJECTED), int(ExecType.EXPIRED)}


class LogonFailed(ConnectionError):
    """The FIX session gave up logging on (``logon_retries`` exhausted, or a policy stop): raised
    from the venue process loop; ``fatal`` makes the supervisor stop the session (exit 1)."""

    fatal = True

class _Order:
    __slots__ = ("instrument", "side", "price", "qty", "ord_type", "tif", "order_id")

    def __init__(self, instrument, side, price, qty, ord_type, tif):
        self.instrument = instrument
        self.side = side
        self.price = price
        self.qty = qty
        self.ord_type = ord_type
        self.tif = tif
        self.order_id = None


class FixAdapter(VenueAdapter, SessionApp):
    """A FIX 4.4 venue (see the package docstring for ``options``)."""

    name = "fix"

    def __init__(self, instruments, options: dict | None = None, wall_clock=time.time_ns):
        options = dict(options or {})
        self.opt = SessionOptions(options)
        self.stale_order_s = float(options.get("stale_order_s", 5.0))
        self.status_unsupported = str(options.get("status_unsupported", "cancel"))
        if self.status_unsupported not in ("cancel", "none"):
            raise ValueError(f"fix: status_unsupported = {self.status_unsupported!r}: expected 'cancel' or 'none'")
        self.reject_storm_count = int(options.get("reject_storm_count", 20))
        self.reject_storm_window_s = float(options.get("reject_storm_window_s", 5.0))
        if self.reject_storm_count < 1 or self.reject_storm_window_s <= 0:
            raise ValueError("fix: reject_storm_count >= 1 and reject_storm_window_s > 0 required")
        self._reject_times: collections.deque = collections.deque()
        self.instruments = {int(i.id): i for i in instruments}
        self._symbols = {i.id: i.symbol.encode() for i in instruments}
        self.decoder = codec.ExecDecoder()
        for i in instruments:
            self.decoder.add_instrument(i.symbol, i.id, i.price_decimals, i.qty_decimals)
        self.session = FixSession(self.opt, self)
        self.mass = MassStatus(self) if options.get("mass_status") else None
        self.positions = (Positions(self, str(options.get("account") or self.opt.sender_comp_id))
                          if options.get("positions_request") else None)
        self.enc = self.session.enc
        self.wall = wall_clock
        self.orders: dict[int, _Order] = {}
        # orders that reached a terminal state: instrument/side for late events (cancel rejects ...)
        self._done: collections.OrderedDict[int, tuple[int, int]] = collections.OrderedDict()
        self.pending: collections.deque = collections.deque()  # (mono time, ORDER_CMD record copy)
        self.events: collections.deque = collections.deque()   # EXEC records (np.void) not yet polled
        self._row = np.zeros(1, dtype=_EXEC)
        self.stats = collections.Counter()
        self.stats["rejects"] = self.stats["reject_storms"] = self.stats["reject_storm_active"] = 0
        # ExecID identity -> the exact ExecID bytes first seen with it (collision check)
        self._exec_ids: dict[tuple[int, int], bytes] = {}

    # --- VenueAdapter ---------------------------------------------------------------------------
    def start(self) -> None:
        self.session.start()
        self.session.poll()

    def submit(self, cmds: np.ndarray) -> None:
        for i in range(len(cmds)):
            cmd = cmds[i].copy()
            if self.session.active and not self.pending:
                self._send(cmd)
            else:
                self.pending.append((time.monotonic(), cmd))
        if self.pending and self.session.active:
            self._flush_pending()

    def service(self, now_ns: int) -> int:
        """Session I/O and timers, called by the venue process loop every iteration -- also while
        the exec ring is full and ``poll`` is not called -- so heartbeats keep going and the
        session stays up (events wait in order in ``events``). Returns messages handled."""
        n = self.session.poll()
        if self.session.gave_up:
            raise LogonFailed(self.session.gave_up)
        if self._reject_times:
            self._reject_window(self.session.mono())
        if self.pending:
            self._expire_pending()
            if self.session.active:
                self._flush_pending()
        return n

    def poll(self, out: np.ndarray, now_ns: int) -> int:
        self.session.poll()
        if self._reject_times:
            self._reject_window(self.session.mono())
        if self.pending:
            self._expire_pending()
            if self.session.active:
                self._flush_pending()
        n = 0
        cap = len(out)
        ev = self.events
        while ev and n < cap:
            out[n] = ev.popleft()
            n += 1
        return n

    def on_harness_lost(self) -> None:
        """Cancel every order we believe is live (cancel-on-disconnect)."""
        cmd = new("ORDER_CMD")[0]
        for oid, o in list(self.orders.items()):
            cmd["instrument"] = o.instrument
            cmd["client_order_id"] = oid
            cmd["cmd"] = int(OrderCmdType.CANCEL)
            cmd["side"] = o.side
            cmd["qty"] = o.qty
            if self.session.active:
                self._send(cmd.copy())
            else:
                self.pending.append((time.monotonic(), cmd.copy()))

    def stop(self) -> None:
        self.session.stop(self.opt.logout_timeout_s)

    def status_counters(self) -> dict[str, int]:
        """The venue status a supervisor or the core may watch, as int counters (cheap: no I/O):
        ``session_active`` (0/1), ``session_stopped`` (1 when a policy stopped the session: it
        will not reconnect by itself), ``logons``, ``disconnects``, ``seq_too_low``,
        ``seq_resets`` (peer resets followed: Logon 141=Y, SequenceReset-Reset, on_seq_too_low
        reset), ``test_request_timeouts``, ``resend_timeouts``, ``rejects``, ``reject_storms``,
        ``reject_storm_active`` (0/1)."""
        st = self.session.stats
        return {
            "session_active": int(self.session.active),
            "session_stopped": int(st["stopped_by_policy"] > 0 and not self.session.enabled),
            "logons": st["logons"], "disconnects": st["disconnects"], "seq_too_low": st["seq_too_low"],
            "seq_resets": st["seq_resets_in"] + st["seq_resets_by_logon"] + st["seq_too_low_accepted"],
            "test_request_timeouts": st["test_request_timeouts"], "resend_timeouts": st["resend_timeouts"],
            "rejects": self.stats["rejects"], "reject_storms": self.stats["reject_storms"],
            "reject_storm_active": self.stats["reject_storm_active"],
        }

    # --- outbound -------------------------------------------------------------------------------
    def _expire_pending(self) -> None:
        now = time.monotonic()
        while self.pending and now - self.pending[0][0] > self.stale_order_s:
            _, cmd = self.pending.popleft()
            log.warning("fix: order command for %d stale while the session was down: rejected locally",
                        int(cmd["client_order_id"]))
            self._local_reject(cmd, STALE)

    def _flush_pending(self) -> None:
        self._expire_pending()
        while self.pending and self.session.active:
            _, cmd = self.pending.popleft()
            self._send(cmd)

    def _send(self, cmd) -> None:
        if not self.session.active:  # never lose a command: it waits for the next Logon
            self.pending.append((time.monotonic(), cmd))
            return
        kind = int(cmd["cmd"])
        inst_id = int(cmd["instrument"])
        inst = self.instruments.get(inst_id)
        cid = int(cmd["client_order_id"])
        if inst is None:
            self._local_reject(cmd, UNKNOWN_INSTRUMENT)
            return
        sym = self._symbols[inst_id]
        side = int(cmd["side"])
        enc = self.enc
        if kind == OrderCmdType.NEW:
            if side not in (Side.BUY, Side.SELL):
                self._local_reject(cmd, BAD_COMMAND)
                return
            o = _Order(inst_id, side, int(cmd["price"]), int(cmd["qty"]), int(cmd["ord_type"]) or int(OrdType.LIMIT),
                       int(cmd["tif"]) or int(TimeInForce.GTC))
            self.orders[cid] = o
            clid = str(cid).encode()
            self.session.send_app(
                lambda seq, now: enc.new_order_single(seq, now, clid, sym, side, o.ord_type, o.tif, o.price,
                                                      inst.price_decimals, o.qty, inst.qty_decimals),
                "D", str(cid), "", inst_id, side)
        elif kind == OrderCmdType.CANCEL:
            o = self.orders.get(cid)
            if o is None and side not in (Side.BUY, Side.SELL):
                side = self._side_from_journal(cid)
            if o is None and side not in (Side.BUY, Side.SELL):
                self._local_reject(cmd, UNKNOWN_ORDER)
                return
            if o is not None:
                side = o.side
            qty = o.qty if o is not None else int(cmd["qty"])
            oid = o.order_id if o is not None else None
            orig = str(cid).encode()
            self.session.send_app(
                lambda seq, now: enc.order_cancel_request(seq, now, b"%d-C%d" % (cid, seq), orig, sym, side, qty,
                                                          inst.qty_decimals, oid),
                "F", str(cid), str(cid), inst_id, side)
        elif kind == OrderCmdType.REPLACE:
            orig_id = int(cmd["orig_client_order_id"])
            old = self.orders.get(orig_id)
            if old is None and side not in (Side.BUY, Side.SELL):
                side = self._side_from_journal(orig_id)
            if old is None and side not in (Side.BUY, Side.SELL):
                self._local_reject(cmd, UNKNOWN_ORDER)
                return
            if old is not None:
                side = old.side
            o = _Order(inst_id, side, int(cmd["price"]), int(cmd["qty"]),
                       int(cmd["ord_type"]) or (old.ord_type if old else int(OrdType.LIMIT)),
                       int(cmd["tif"]) or (old.tif if old else int(TimeInForce.GTC)))
            o.order_id = old.order_id if old is not None else None
            self.orders[cid] = o
            clid, origb, oid = str(cid).encode(), str(orig_id).encode(), o.order_id
            self.session.send_app(
                lambda seq, now: enc.order_cancel_replace_request(seq, now, clid, origb, sym, side, o.ord_type, o.tif,
                                                                  o.price, inst.price_decimals, o.qty,
                                                                  inst.qty_decimals, oid),
                "G", str(cid), str(orig_id), inst_id, side)
        elif kind == OrderCmdType.STATUS:
            # OrderStatusRequest (35=H) for the live id, or one OrderMassStatusRequest (35=AF) for a
            # burst of them (option ``mass_status``, mass_status.py); a peer that refuses 35=H gets
            # the configured policy instead (on_session_reject / 35=j: ``status_unsupported``)
            o = self.orders.get(cid)
            if o is not None:
                side = o.side
            if side not in (Side.BUY, Side.SELL):
                side = self._side_from_journal(cid)
            if self.mass is None or not self.mass.ask(cid, inst_id, side):
                self._status_request(cid, inst_id, side)
            if self.positions is not None:
                self.positions.request()   # and the venue's positions (positions.py), once per burst
        else:
            self._local_reject(cmd, BAD_COMMAND)

    def _status_request(self, cid: int, inst_id: int, side: int) -> None:
        """One OrderStatusRequest (35=H)."""
        o = self.orders.get(cid)
        oid = o.order_id if o is not None else None
        clid, sym = str(cid).encode(), self._symbols[inst_id]
        self.stats["status_requests"] += 1
        self.session.send_app(
            lambda seq, now: self.enc.order_status_request(seq, now, clid, sym, side, oid),
            "H", str(cid), "", inst_id, side)

    def _side_from_journal(self, cid: int) -> int:
        """Side of an order this adapter does not track (e.g. sent before a venue-process restart),
        from the store's journal of sent order messages; 0 when not there."""
        key = str(cid)
        for info in reversed(list(self.session.store.sent.values())):
            if info[0] in ("D", "G") and info[1] == key:
                return int(info[4])
        return 0

    # --- events ---------------------------------------------------------------------------------
    def _event(self, exec_type, client_order_id, instrument, side, reason=0, orig=0):
        r = new("EXEC")[0]
        r["ts"] = self.wall()
        r["ts_event"] = r["ts"]
        r["instrument"] = instrument
        r["client_order_id"] = client_order_id
        r["orig_client_order_id"] = orig
        r["exec_type"] = int(exec_type)
        r["side"] = side
        r["reason"] = reason
        o = self.orders.get(client_order_id)
        if o is not None:
            r["price"] = o.price
            r["qty"] = o.qty
            if o.order_id:
                r["venue_order_id"] = codec.order_id_word(o.order_id)
        self.events.append(r)
        self.stats["events"] += 1
        if int(exec_type) == ExecType.REJECTED:
            self._count_reject()
        if int(exec_type) in _TERMINAL:
            self._retire(client_order_id)

    def _local_reject(self, cmd, reason: int) -> None:
        kind = int(cmd["cmd"])
        cid = int(cmd["client_order_id"])
        if kind == OrderCmdType.NEW:
            self._event(ExecType.REJECTED, cid, int(cmd["instrument"]), int(cmd["side"]), reason)
        elif kind == OrderCmdType.REPLACE:
            self._event(ExecType.CANCEL_REJECTED, cid, int(cmd["instrument"]), int(cmd["side"]), reason,
                        int(cmd["orig_client_order_id"]))
            self.orders.pop(cid, None)
        else:
            self._event(ExecType.CANCEL_REJECTED, cid, int(cmd["instrument"]), int(cmd["side"]), reason)

    def _journal_reject(self, info, reason: int) -> None:
        msg_type, clid, orig, instrument, side = info
        cid = codec.fix_id(clid.encode())
        if msg_type == "D":
            self._event(ExecType.REJECTED, cid, instrument, side, reason)
        elif msg_type == "G":
            self._event(ExecType.CANCEL_REJECTED, cid, instrument, side, reason, codec.fix_id(orig.encode()))
            self.orders.pop(cid, None)
        elif msg_type == "F":
            self._event(ExecType.CANCEL_REJECTED, cid, instrument, side, reason)
        elif msg_type == "AN" and self.positions is not None:
            self.positions.refused()  # no RequestForPositions there
        elif msg_type == "AF" and self.mass is not None:
            self.mass.refused()      # no OrderMassStatusRequest there: 35=H per order instead
        elif msg_type == "H":
            # the peer does not support OrderStatusRequest: follow ``status_unsupported``
            # ("cancel": cancel the order by ClOrdID -- its CANCELED or cancel reject explains it;
            # "none": nothing, the core's recovery / pending timeout escalates)
            self.stats["status_unsupported"] += 1
            if self.status_unsupported == "cancel":
                cmd = np.zeros(1, dtype=DTYPES["ORDER_CMD"])[0]
                cmd["cmd"], cmd["client_order_id"] = int(OrderCmdType.CANCEL), cid
                cmd["instrument"], cmd["side"] = instrument, side
                o = self.orders.get(cid)
                cmd["qty"] = o.qty if o is not None else 0
                self._send(cmd)

    # --- SessionApp -----------------------------------------------------------------------------
    def on_logon(self, session) -> None:
        self._flush_pending()

    def on_not_delivered(self, session, seq, info) -> None:
        log.warning("fix: order message %d (%s %s) gap-filled, not delivered", seq, info[0], info[1])
        self._journal_reject(info, NOT_DELIVERED)

    def on_session_reject(self, session, ref_seq, info, msg) -> None:
        if info is None:
            return
        try:
            reason = msg.get_int(373, 99)
        except ValueError:
            reason = 99
        self._journal_reject(info, SESSION_REJECT_BASE + min(reason, 999))

    def on_app_message(self, session, msg):
        mt = msg.msg_type
        if mt == b"8" or mt == b"9":
            return self._on_exec(msg)
        if (mt == b"AP" or mt == b"AO") and self.positions is not None:
            return self.positions.on_message(msg)
        if mt == b"j":
            self.stats["business_rejects"] += 1
            try:
                ref = msg.get_int(45)
                reason = msg.get_int(380, 0)
            except ValueError:
                return (session_mod.INCORRECT_DATA_FORMAT, 45, "RefSeqNum/BusinessRejectReason")
            info = session.store.sent.get(ref) if ref is not None else None
            if info is None and msg.get(379):
                cid = codec.fix_id(msg.get(379))
                o = self.orders.get(cid)
                if o is not None:
                    info = ("D" if msg.get(372) == b"D" else msg.get_str(372, "F"), str(cid), "-", o.instrument, o.side)
            if info is not None:
                self._journal_reject(info, BUSINESS_REJECT_BASE + min(reason, 999))
            return None
        return "unsupported"

    def _on_exec(self, msg):
        if self.mass is not None and msg.has(584):  # a report answering our OrderMassStatusRequest
            return self.mass.on_report(msg)
        return self._decode_forward(msg)

    def _decode_forward(self, msg):
        row = self._row
        rc, tag = self.decoder.decode(msg, row, 0)
        if rc == codec.SKIPPED:
            self._learn_order_id(msg)
            return None
        if rc != codec.DECODED:
            return self._refuse(msg, rc, tag)
        if row[0]["exec_id"] or row[0]["exec_id_hi"]:
            # two distinct ExecIDs must never share an identity: check against the kept string
            words = (int(row[0]["exec_id"]), int(row[0]["exec_id_hi"]))
            raw = msg.get(17)
            seen = self._exec_ids.setdefault(words, raw)
            if seen != raw:
                log.error("fix: ExecIDs %r and %r share the identity %s: refused", seen, raw, words)
                self.stats["exec_id_collisions"] += 1
                return session_mod.BusinessReject(session_mod.UNKNOWN_ID, "ExecID identity collision", raw)
        r = row[0].copy()
        r["ts"] = self.wall()
        cid = int(r["client_order_id"])
        et = int(r["exec_type"])
        o = self.orders.get(cid)
        if et == ExecType.REPLACED:
            old = self.orders.pop(int(r["orig_client_order_id"]), None)
            if o is None and old is not None:
                o = self.orders[cid] = old
        if o is None and cid in self._done and not r["instrument"]:
            r["instrument"], side = self._done[cid]
            if not r["side"]:
                r["side"] = side
        if o is not None:
            if not r["instrument"]:
                r["instrument"] = o.instrument
            if not r["side"]:
                r["side"] = o.side
            if msg.has(37) and et != ExecType.CANCEL_REJECTED:
                o.order_id = msg.get(37)
            if msg.has(44):
                o.price = int(r["price"])
            else:
                r["price"] = o.price
            if msg.has(38):
                o.qty = int(r["qty"])
            else:
                r["qty"] = o.qty
        self.events.append(r)
        self.stats["events"] += 1
        if et == ExecType.REJECTED:
            self._count_reject()
        if et in _TERMINAL:
            self._retire(cid)
        elif et == ExecType.CANCEL_REJECTED and r["orig_client_order_id"]:
            # a rejected replace: the new id never lived (the original order stays as it was)
            self.orders.pop(cid, None)
        return None

    def _refuse(self, msg, rc: int, tag: int):
        """A malformed ExecutionReport / OrderCancelReject: never forwarded; counted per reason and
        answered as FIX says (``codec.REJECTS``)."""
        if rc not in codec.REJECTS:
            return "unsupported"
        kind, reason, name = codec.REJECTS[rc]
        self.stats["exec_refused"] += 1
        self.stats["exec_refused." + name] += 1
        log.warning("fix: refused 35=%s (%s, tag %s): %r", msg.msg_type.decode("latin-1"), name, tag, msg)
        if kind == "business":
            ref = msg.get(17) or msg.get(11)
            return session_mod.BusinessReject(reason, f"{name} (tag {tag})", ref)
        return (reason, tag or None, name)

    def _count_reject(self) -> None:
        now = self.session.mono()
        self.stats["rejects"] += 1
        self._reject_times.append(now)
        self._reject_window(now)
        if len(self._reject_times) >= self.reject_storm_count and not self.stats["reject_storm_active"]:
            self.stats["reject_storms"] += 1
            self.stats["reject_storm_active"] = 1
            log.error("fix: reject storm: %d rejects within %.1f s", len(self._reject_times),
                      self.reject_storm_window_s)

    def _reject_window(self, now: float) -> None:
        q = self._reject_times
        while q and now - q[0] > self.reject_storm_window_s:
            q.popleft()
        if self.stats["reject_storm_active"] and len(q) < self.reject_storm_count:
            self.stats["reject_storm_active"] = 0

    def _retire(self, cid: int) -> None:
        o = self.orders.pop(cid, None)
        if o is not None:
            self._done[cid] = (o.instrument, o.side)
            if len(self._done) > 100_000:
                self._done.popitem(last=False)

    def _learn_order_id(self, msg) -> None:
        cid = msg.get(11)
        if cid is not None:
            o = self.orders.get(codec.fix_id(cid))
            if o is not None and msg.has(37):
                o.order_id = msg.get(37)

