"""FIX 4.4 (and 4.2) session layer: a TCP initiator driven by ``poll()`` from the venue process loop.

No threads: every call does a bounded amount of non-blocking socket I/O, runs the timers and
dispatches what arrived. The application (the adapter) gets callbacks.

States::

    DISCONNECTED --connect--> CONNECTING --TCP up, Logon sent--> LOGON_SENT --Logon in--> ACTIVE
         ^                                                                                 |
         +---- backoff (reconnect_min_s doubling to reconnect_max_s) <-- disconnect -------+
                                                                     LOGOUT_SENT <- logout()

Inbound rules (FIX 4.4 session protocol, Volume 2 "Session protocol" / "Message recovery"):

=============================================  =================================================
what arrives                                   what the session does
=============================================  =================================================
garbled: bad CheckSum, bad BodyLength,         ignored, MsgSeqNum not consumed (a later message
garbage bytes, unparseable fields              then shows the gap and a ResendRequest follows)
BeginString not ours                           Logout + disconnect
SenderCompID/TargetCompID not ours             Reject(373=9) + Logout + disconnect
MsgSeqNum missing                              Logout + disconnect
MsgSeqNum > expected                           ResendRequest(expected, 0) once; the message is
                                               queued and processed when the gap is filled
MsgSeqNum < expected, PossDupFlag=Y            ignored (duplicate); Reject(373=1) if
                                               OrigSendingTime is missing
MsgSeqNum < expected, no PossDupFlag           Logout("MsgSeqNum too low ...") + disconnect
Logon answer with MsgSeqNum < expected, no     the peer reset its numbers without saying so:
ResetSeqNumFlag                                ``on_seq_too_low`` "reset" follows it (and forgets
                                               the journal of what went out before: delivered);
                                               "logout" logs out, reconnects with backoff and
                                               after ``seq_too_low_retries`` in a row stops
Logon 141=Y (MsgSeqNum 1) while logged on      both sides to 1, answered with Logon 141=Y seq 1
resent (PossDupFlag=Y) in sequence             processed; Reject(373=1) without OrigSendingTime,
                                               Reject(373=10) + Logout if OrigSendingTime is
                                               later than SendingTime
first message not a Logon                      disconnect
SequenceReset-GapFill                          expected := NewSeqNo; Reject(373=5) if it would
                                               move backwards
SequenceReset-Reset (any MsgSeqNum)            expected := NewSeqNo; Reject(373=5) if lower
ResendRequest                                  one SequenceReset-GapFill (PossDupFlag=Y) over the
                                               whole range: admin messages are never resent and
                                               application messages are *not* resent either
                                               (a stale order must not reach the market late);
                                               every order command in the range is reported to
                                               the application as not delivered
TestRequest                                    Heartbeat with its TestReqID, at once -- also
                                               when it waits behind a gap (answered once)
required field missing / bad value             Reject(373=1 / 5 / 6) with RefTagID, consumed
unknown admin MsgType                          Reject(373=11)
Logout                                         Logout answered (unless we sent one), disconnect
no inbound for HeartBtInt * 1.2                TestRequest; any message answers it; none in
                                               ``test_request_timeout_s`` (HeartBtInt): disconnect
our ResendRequest's gap still open after       Logout + disconnect (reconnect with backoff)
``resend_timeout_s`` (2 * HeartBtInt)
=============================================  =================================================

Sequence numbers are persisted per session (``FileStore``: ``<store_dir>/<Begin>-<Sender>-<Target>``)
so a restarted process continues where it stopped; ``reset_on_logon`` starts both at 1 with
ResetSeqNumFlag instead.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import time

from livestack.venues.fix import codec
from livestack.venues.fix.store import FileStore

log = logging.getLogger("livestack.venues.fix")

DISCONNECTED, CONNECTING, LOGON_SENT, ACTIVE, LOGOUT_SENT = "DISCONNECTED", "CONNECTING", "LOGON_SENT", "ACTIVE", "LOGOUT_SENT"

#: messages held behind an unfilled gap before the session gives up (logout, reconnect, resend)
MAX_QUEUED = 100_000

ADMIN_TYPES = {b"0", b"1", b"2", b"3", b"4", b"5", b"A"}

# SessionRejectReason (373), FIX 4.4
REQUIRED_TAG_MISSING = 1
TAG_WITHOUT_VALUE = 4
VALUE_INCORRECT = 5
INCORRECT_DATA_FORMAT = 6
COMPID_PROBLEM = 9
SENDING_TIME_ACCURACY = 10
INVALID_MSGTYPE = 11
TAG_APPEARS_MORE_THAN_ONCE = 13

# BusinessRejectReason (380), FIX 4.4
UNKNOWN_ID = 1
UNKNOWN_SECURITY = 2
UNSUPPORTED_MESSAGE_TYPE = 3
CONDITIONALLY_REQUIRED_FIELD_MISSING = 5

SESSION_REJECT_NAMES = {1: "required_tag_missing", 4: "tag_without_value", 5: "value_incorrect",
                        6: "incorrect_data_format", 9: "compid_problem", 10: "sending_time_accuracy",
                        11: "invalid_msgtype", 13: "tag_appears_more_than_once"}
BUSINESS_REJECT_NAMES = {1: "unknown_id", 2: "unknown_security", 3: "unsupported_message_type",
                         5: "conditionally_required_field_missing"}


class BusinessReject(tuple):
    """What ``SessionApp.on_app_message`` returns to answer a BusinessMessageReject (35=j):
    ``BusinessReject(reason, text, ref_id=None)`` (380=reason, 58=text, 379=ref_id)."""

    def __new__(cls, reason: int, text: str, ref_id=None):
        return tuple.__new__(cls, (reason, text, ref_id))


class SessionOptions:
    """Options of a FIX session (see the package docstring for the table)."""

    def __init__(self, options: dict):
        o = dict(options or {})
        self.host = str(o.get("host", "127.0.0.1"))
        self.port = int(o.get("port", 9878))
        self.begin_string = str(o.get("begin_string", "FIX.4.4"))
        self.sender_comp_id = str(o.get("sender_comp_id", "LIVESTACK"))
        self.target_comp_id = str(o.get("target_comp_id", "EXCHANGE"))
        self.heartbeat_s = int(o.get("heartbeat_s", 30))
        self.store_dir = str(o.get("store_dir", "fix-store"))
        self.store_fsync = bool(o.get("store_fsync", False))
        self.username = o.get("username") or None
        self.password = o.get("password") or None
        self.reset_on_logon = bool(o.get("reset_on_logon", False))
        self.reconnect_min_s = float(o.get("reconnect_min_s", 0.5))
        self.reconnect_max_s = float(o.get("reconnect_max_s", 10.0))
        self.logon_timeout_s = float(o.get("logon_timeout_s", 5.0))
        self.logout_timeout_s = float(o.get("logout_timeout_s", 2.0))
        self.connect_timeout_s = float(o.get("connect_timeout_s", 5.0))
        self.test_request_factor = float(o.get("test_request_factor", 1.2))
        self.max_body = int(o.get("max_body", codec.DEFAULT_MAX_BODY))
        #: HandlInst (21) on orders: default "1" up to FIX 4.3 (required there), none in FIX 4.4
        self.handl_inst = o.get("handl_inst")
        #: a peer whose MsgSeqNum is lower than expected without PossDupFlag (it reset its numbers
        #: without saying so): "logout" -- Logout, count it, reconnect with backoff, and after
        #: ``seq_too_low_retries`` such logons in a row stop the session (it stays down, with the
        #: reason); "reset" -- take the peer's number as the next expected one and go on
        self.on_seq_too_low = str(o.get("on_seq_too_low", "logout"))
        self.seq_too_low_retries = int(o.get("seq_too_low_retries", 3))
        #: failed connects/logons in a row (since the last Logon) retried before the session gives
        #: up (``FixSession.gave_up``; the venue process then fails fatally); 0 = retry forever
        self.logon_retries = int(o.get("logon_retries", 5))
        #: silence before our TestRequest (HeartBtInt * test_request_factor), then how long its
        #: answer may take before the line is declared dead (default HeartBtInt)
        self.test_request_timeout_s = float(o.get("test_request_timeout_s", 0) or 0)
        #: a ResendRequest of ours not answered (the gap still open) after this long: Logout,
        #: disconnect, reconnect (default 2 * HeartBtInt)
        self.resend_timeout_s = float(o.get("resend_timeout_s", 0) or 0)
        if self.on_seq_too_low not in ("logout", "reset"):
            raise ValueError(f"fix: on_seq_too_low must be 'logout' or 'reset', not {self.on_seq_too_low!r}")
        if self.seq_too_low_retries < 1:
            raise ValueError("fix: seq_too_low_retries must be >= 1")
        if self.test_request_factor < 1.0:
            raise ValueError("fix: test_request_factor must be >= 1")
        if self.heartbeat_s <= 0:
            raise ValueError("fix: heartbeat_s must be > 0")
        if not self.sender_comp_id or not self.target_comp_id:
            raise ValueError("fix: sender_comp_id and target_comp_id are required")
        if self.reconnect_min_s <= 0 or self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("fix: 0 < reconnect_min_s <= reconnect_max_s")

    @property
    def session_id(self) -> str:
        return f"{self.begin_string}-{self.sender_comp_id}-{self.target_comp_id}"


class SessionApp:
    """Callbacks of :class:`FixSession` (the adapter implements them)."""

    def on_logon(self, session: "FixSession") -> None:
        pass

    def on_disconnect(self, session: "FixSession", reason: str) -> None:
        pass

    def on_app_message(self, session: "FixSession", msg: codec.FixMessage):
        """An application message in sequence. Return None when handled, ``(reason, tag, text)``
        to answer a session Reject (373=reason, 371=tag), a :class:`BusinessReject` for a
        BusinessMessageReject, or ``"unsupported"`` for BusinessMessageReject 380=3."""
        return None

    def on_session_reject(self, session: "FixSession", ref_seq: int, info, msg: codec.FixMessage) -> None:
        """The counterparty rejected our message ``ref_seq`` (``info`` from the journal, or None)."""

    def on_not_delivered(self, session: "FixSession", seq: int, info) -> None:
        """Order command ``seq`` was gap-filled in answer to a ResendRequest: never processed."""


class FixSession:
    """One FIX initiator session. Single-threaded: call :meth:`poll` often (every loop iteration)."""

    def __init__(self, options: dict | SessionOptions, app: SessionApp | None = None, store: FileStore | None = None,
                 wall_clock=time.time_ns, mono_clock=time.monotonic):
        self.opt = options if isinstance(options, SessionOptions) else SessionOptions(options)
        self.app = app or SessionApp()
        self.store = store or FileStore(self.opt.store_dir, self.opt.session_id, self.opt.store_fsync)
        self.enc = codec.Encoder(self.opt.begin_string, self.opt.sender_comp_id, self.opt.target_comp_id,
                                 self.opt.handl_inst)
        self._begin = self.opt.begin_string.encode()
        self._sender = self.opt.sender_comp_id.encode()
        self._target = self.opt.target_comp_id.encode()
        self.wall = wall_clock
        self.mono = mono_clock
        self.state = DISCONNECTED
        self.sock: socket.socket | None = None
        self.framer = codec.Framer(self.opt.max_body)
        self._out = bytearray()
        self.enabled = False
        self._backoff = self.opt.reconnect_min_s
        self._next_connect = 0.0
        self._state_since = 0.0
        self._last_recv = 0.0
        self._last_sent = 0.0
        self._test_req_id: bytes | None = None
        self._test_req_sent = 0.0
        self._test_req_n = 0
        self._queue: dict[int, codec.FixMessage] = {}
        self._resend_until = 0  # highest inbound seq a pending ResendRequest of ours covers (0: none)
        self._resend_sent = 0.0
        self._answered_test_requests: set[int] = set()
        self._too_low_in_a_row = 0  # logons refused by us for MsgSeqNum too low, since the last good one
        self._failed_logons = 0  # connects that ended before a Logon, since the last good one
        self._logged_on = False  # this connection reached ACTIVE
        #: why the session gave up (no more reconnects): logon retries exhausted, or a policy stop
        self.gave_up = ""
        self.heartbeat_s = self.opt.heartbeat_s
        self.last_disconnect_reason = ""
        self.stats = {k: 0 for k in (
            "connects", "logons", "disconnects", "msgs_in", "msgs_out", "garbled", "bad_checksum", "bad_length",
            "garbage", "too_long", "heartbeats_in", "heartbeats_out", "test_requests_in", "test_requests_out",
            "resend_requests_in", "resend_requests_out", "gap_fills_in", "gap_fills_out", "seq_resets_in",
            "rejects_in", "rejects_out", "logouts_in", "logouts_out", "poss_dup_ignored", "seq_too_low",
            "queued", "not_delivered", "errors", "seq_resets_by_logon", "seq_too_low_accepted",
            "test_request_timeouts", "resend_timeouts", "stopped_by_policy")}
        #: rejects we sent, per reason: "session.<name>" (35=3) and "business.<name>" (35=j)
        self.rejects_by_reason: dict[str, int] = {}

    # --- public ---------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.state == ACTIVE

    @property
    def next_out(self) -> int:
        return self.store.next_out

    @property
    def next_in(self) -> int:
        return self.store.next_in

    def start(self) -> None:
        """Enable the session: it connects (and reconnects) on the next polls."""
        self.enabled = True
        self._next_connect = 0.0

    def logout(self, text: str | None = None) -> None:
        """Begin an orderly logout; the session stays down (``start`` enables it again)."""
        self.enabled = False
        if self.state == ACTIVE:
            self._send_admin(lambda s, now: self.enc.logout(s, now, text))
            self.stats["logouts_out"] += 1
            self._set_state(LOGOUT_SENT)
        elif self.state != LOGOUT_SENT:
            self._disconnect("logout requested")

    def stop(self, timeout_s: float = 2.0) -> None:
        """Logout and wait (bounded) for the answer, then close everything."""
        self.logout()
        deadline = self.mono() + timeout_s
        while self.state != DISCONNECTED and self.mono() < deadline:
            self.poll()
            time.sleep(0.001)
        if self.state != DISCONNECTED:
            self._disconnect("stop")
        self.store.close()

    def send_app(self, build, msg_type: str, cl_ord_id: str, orig: str, instrument: int, side: int) -> int:
        """Send an application message built by ``build(seq, now_ns) -> bytes``; returns its
        MsgSeqNum, or 0 when the session is not ACTIVE (nothing sent, nothing consumed)."""
        if self.state != ACTIVE:
            return 0
        seq = self.store.next_out
        data = build(seq, self.wall())
        self.store.record_sent(seq, msg_type, cl_ord_id, orig, instrument, side)
        self.store.set_next_out(seq + 1)
        self._write(data)
        return seq

    def poll(self) -> int:
        """Do the session's work now: connect, read, dispatch, timers. Returns messages handled."""
        now = self.mono()
        n = 0
        if self.state == DISCONNECTED:
            if self.enabled and now >= self._next_connect:
                self._connect(now)
            return 0
        if self.state == CONNECTING:
            self._check_connected(now)
            return 0
        n = self._read()
        if self.sock is not None:
            self._flush()
            self._timers(self.mono())
        return n

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else -1

    # --- connection -----------------------------------------------------------------------------
    def _set_state(self, st: str) -> None:
        self.state = st
        self._state_since = self.mono()

    def _connect(self, now: float) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        self.stats["connects"] += 1
        self._logged_on = False
        rc = s.connect_ex((self.opt.host, self.opt.port))
        self.sock = s
        self.framer.clear()
        self._out.clear()
        self._queue.clear()
        self._resend_until = 0
        if rc in (0, errno.EISCONN):
            self._on_connected()
        elif rc in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
            self._set_state(CONNECTING)
        else:
            self._disconnect(f"connect failed: {os.strerror(rc)}")

    def _check_connected(self, now: float) -> None:
        import select

        _, w, _ = select.select([], [self.sock], [], 0)
        if w:
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._disconnect(f"connect failed: {os.strerror(err)}")
            else:
                self._on_connected()
        elif now - self._state_since > self.opt.connect_timeout_s:
            self._disconnect("connect timeout")

    def _on_connected(self) -> None:
        if self.opt.reset_on_logon:
            self.store.reset()
        self._set_state(LOGON_SENT)
        self._last_recv = self.mono()
        self._send_admin(lambda s, now: self.enc.logon(s, now, self.heartbeat_s, self.opt.reset_on_logon,
                                                       self.opt.username, self.opt.password))

    def _disconnect(self, reason: str) -> None:
        was = self.state
        if self.sock is not None:
            try:
                if self._out:
                    self.sock.setblocking(True)
                    self.sock.settimeout(0.05)
                    try:
                        self.sock.sendall(bytes(self._out))
                    except OSError:
                        pass
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self._out.clear()
        self._queue.clear()
        self._resend_until = 0
        self._test_req_id = None
        self._answered_test_requests.clear()
        self.last_disconnect_reason = reason
        self._set_state(DISCONNECTED)
        if was != DISCONNECTED:
            self.stats["disconnects"] += 1
            log.info("fix %s: disconnected (%s)", self.opt.session_id, reason)
            self.app.on_disconnect(self, reason)
        self._next_connect = self.mono() + self._backoff
        self._backoff = min(self._backoff * 2, self.opt.reconnect_max_s)
        if self.enabled and not self._logged_on:
            self._failed_logons += 1
            if self.opt.logon_retries and self._failed_logons > self.opt.logon_retries:
                self.enabled = False
                self.gave_up = (f"could not log on to {self.opt.host}:{self.opt.port} after {self._failed_logons} "
                                f"attempts (logon_retries = {self.opt.logon_retries}; last: {reason})")
                log.error("fix %s: %s", self.opt.session_id, self.gave_up)

    # --- I/O ------------------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        self._out += data
        self._last_sent = self.mono()
        self.stats["msgs_out"] += 1
        self._flush()

    def _flush(self) -> None:
        if not self._out or self.sock is None:
            return
        try:
            k = self.sock.send(self._out)
            del self._out[:k]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as e:
            self._disconnect(f"send failed: {e}")

    def _send_admin(self, build) -> int:
        seq = self.store.next_out
        data = build(seq, self.wall())
        self.store.set_next_out(seq + 1)
        self._write(data)
        return seq

    def _read(self) -> int:
        n = 0
        while self.sock is not None:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                self._disconnect(f"recv failed: {e}")
                return n
            if not data:
                self._drain_framer()
                self._disconnect("connection closed by peer")
                return n
            self._last_recv = self.mono()
            self.framer.feed(data)
            n += self._drain_framer()
            if len(data) < 65536:
                break
        return n

    def _drain_framer(self) -> int:
        n = 0
        while self.sock is not None:
            item = self.framer.next()
            if item is None:
                break
            status, data = item
            if status != codec.OK:
                self.stats["garbled"] += 1
                self.stats[codec.STATUS_NAMES[status]] += 1
                log.warning("fix %s: ignored %d inbound bytes (%s)", self.opt.session_id, len(data),
                            codec.STATUS_NAMES[status])
                continue
            try:
                msg = codec.parse_message(data)
            except codec.FixParseError as e:
                self.stats["garbled"] += 1
                log.warning("fix %s: ignored garbled message (%s)", self.opt.session_id, e)
                continue
            n += 1
            self.stats["msgs_in"] += 1
            try:
                self._on_message(msg)
            except Exception:  # a bug here must not take the venue process down: drop the line
                self.stats["errors"] += 1
                log.exception("fix %s: failed on inbound %r", self.opt.session_id, msg)
                if self.sock is not None:
                    self._disconnect("internal error on an inbound message")
        return n

    # --- timers ---------------------------------------------------------------------------------
    def _timers(self, now: float) -> None:
        if self.state == LOGON_SENT and now - self._state_since > self.opt.logon_timeout_s:
            self._disconnect("logon timeout")
            return
        if self.state == LOGOUT_SENT and now - self._state_since > self.opt.logout_timeout_s:
            self._disconnect("logout timeout")
            return
        if self.state != ACTIVE:
            return
        hb = self.heartbeat_s
        if self._resend_until and now - self._resend_sent > (self.opt.resend_timeout_s or 2 * hb):
            self.stats["resend_timeouts"] += 1
            self._logout_disconnect(f"gap at {self.store.next_in} not filled in time after our ResendRequest")
            return
        if self._test_req_id is not None:
            if now - self._test_req_sent > (self.opt.test_request_timeout_s or hb):
                self.stats["test_request_timeouts"] += 1
                self._disconnect("no answer to TestRequest")
                return
        elif now - self._last_recv > hb * self.opt.test_request_factor:
            self._test_req_n += 1
            self._test_req_id = b"TEST%d" % self._test_req_n
            self._test_req_sent = now
            tid = self._test_req_id
            self._send_admin(lambda s, t: self.enc.test_request(s, t, tid))
            self.stats["test_requests_out"] += 1
        if now - self._last_sent >= hb:
            self._send_admin(lambda s, t: self.enc.heartbeat(s, t))
            self.stats["heartbeats_out"] += 1

    # --- inbound --------------------------------------------------------------------------------
    def _count_reject(self, key: str) -> None:
        self.stats["rejects_out"] += 1
        self.rejects_by_reason[key] = self.rejects_by_reason.get(key, 0) + 1

    def _business_reject(self, ref_seq: int, msg_type: bytes, reason: int, text: str, ref_id=None) -> None:
        self._count_reject("business." + BUSINESS_REJECT_NAMES.get(reason, str(reason)))
        log.warning("fix %s: BusinessMessageReject of inbound %d: reason %s %s", self.opt.session_id, ref_seq,
                    reason, text)
        self._send_admin(lambda s, t: self.enc.business_message_reject(s, t, ref_seq, msg_type, reason, text, ref_id))

    def _reject(self, ref_seq: int, reason: int, tag=None, msg_type=None, text=None) -> None:
        self._count_reject("session." + SESSION_REJECT_NAMES.get(reason, str(reason)))
        log.warning("fix %s: Reject of inbound %d: reason %s tag %s %s", self.opt.session_id, ref_seq, reason, tag,
                    text or "")
        self._send_admin(lambda s, t: self.enc.reject(s, t, ref_seq, reason, tag, msg_type, text))

    def _logout_disconnect(self, text: str) -> None:
        log.error("fix %s: %s: logout and disconnect", self.opt.session_id, text)
        if self.sock is not None:
            self._send_admin(lambda s, t: self.enc.logout(s, t, text))
            self.stats["logouts_out"] += 1
        self._disconnect(text)

    def _on_message(self, msg: codec.FixMessage) -> None:
        if msg.get(8) != self._begin:
            self._logout_disconnect(f"BeginString {msg.get(8)!r} is not {self._begin!r}")
            return
        try:
            seq = msg.get_int(34)
        except ValueError:
            seq = None
        if seq is None or seq == 0:
            self._logout_disconnect("MsgSeqNum missing or malformed")
            return
        if msg.get(49) != self._target or msg.get(56) != self._sender:
            self._reject(seq, COMPID_PROBLEM, 49 if msg.get(49) != self._target else 56, msg.msg_type,
                         "CompID problem")
            self._logout_disconnect("CompID problem")
            return
        mt = msg.msg_type
        self._test_req_id = None  # any well-formed message of the peer proves the line alive
        if self.state == LOGON_SENT:
            if mt == b"5":  # refused (credentials, sequence numbers ...): say why, retry with backoff
                self.stats["logouts_in"] += 1
                text = msg.get_str(58, "")
                log.error("fix %s: logon refused: %s", self.opt.session_id, text)
                self._disconnect(f"logon refused: {text}")
                return
            if mt != b"A":
                self._disconnect(f"first message is 35={mt.decode('latin-1')}, not a Logon")
                return
            self._on_logon(msg, seq)
            return
        if mt == b"A" and msg.get(141) == b"Y":
            self._reset_by_logon(seq)
            return
        self._sequenced(msg, seq, mt)

    def _reset_by_logon(self, seq: int) -> None:
        """Logon with ResetSeqNumFlag while logged on (FIX 4.4 Vol. 2, "Sequence number reset"):
        both sides start again at 1 and we answer with our own Logon 141=Y, MsgSeqNum 1."""
        if seq != 1:
            self._logout_disconnect("ResetSeqNumFlag logon with MsgSeqNum != 1")
            return
        log.warning("fix %s: counterparty reset the sequence numbers (Logon 141=Y): both sides to 1",
                    self.opt.session_id)
        self.stats["seq_resets_by_logon"] += 1
        self.store.reset()
        self.store.set_next_in(2)
        self._queue.clear()
        self._resend_until = 0
        self._send_admin(lambda s, now: self.enc.logon(s, now, self.heartbeat_s, True, self.opt.username,
                                                       self.opt.password))

    def _on_logon(self, msg: codec.FixMessage, seq: int) -> None:
        try:
            hb = msg.get_int(108)
        except ValueError:
            hb = None
        if hb is None:
            self._logout_disconnect("Logon without HeartBtInt")
            return
        if msg.get(141) == b"Y":
            if seq != 1:
                self._logout_disconnect("ResetSeqNumFlag logon with MsgSeqNum != 1")
                return
            self.store.set_next_in(1)
            if not self.opt.reset_on_logon:
                # the counterparty reset: our side starts over at 1 as well (we already sent Logon)
                self.stats["seq_resets_by_logon"] += 1
                self.store.forget_sent_before(self.store.next_out)
                self.store.set_next_out(2)
        expected = self.store.next_in
        if seq < expected and msg.get(43) != b"Y":
            self.stats["seq_too_low"] += 1
            text = f"MsgSeqNum too low, expecting {expected} but received {seq}"
            if self.opt.on_seq_too_low == "reset":
                # policy: the peer reset without ResetSeqNumFlag; take its number and go on. What we
                # sent before this connection was delivered under the old numbering: a ResendRequest
                # of the reset peer must not report it as undelivered.
                log.warning("fix %s: %s: the peer reset its numbers; following it (on_seq_too_low=reset)",
                            self.opt.session_id, text)
                self.stats["seq_too_low_accepted"] += 1
                self.store.forget_sent_before(self.store.next_out - 1)
                self.store.set_next_in(seq)
                expected = seq
            else:
                self._too_low_in_a_row += 1
                if self._too_low_in_a_row >= self.opt.seq_too_low_retries:
                    self.stats["stopped_by_policy"] += 1
                    self.enabled = False
                    self.gave_up = (f"{text} ({self._too_low_in_a_row} logons in a row): session stopped; the peer "
                                    f"reset its sequence numbers -- set on_seq_too_low = 'reset' or reset_on_logon = true")
                    self._logout_disconnect(self.gave_up)
                else:
                    self._logout_disconnect(text)
                return
        self._too_low_in_a_row = 0
        self._failed_logons = 0
        self._logged_on = True
        self._set_state(ACTIVE)
        self._backoff = self.opt.reconnect_min_s
        self.stats["logons"] += 1
        log.info("fix %s: logged on (next out %d, next in %d, their seq %d)", self.opt.session_id,
                 self.store.next_out, expected, seq)
        if seq == expected:
            self.store.set_next_in(seq + 1)
        elif seq > expected:
            self._queue[seq] = msg  # consumed (as a no-op) when the gap before it is filled
            self._request_resend(expected, seq)
        self.app.on_logon(self)

    def _request_resend(self, expected: int, seen: int) -> None:
        if self._resend_until >= expected:
            self._resend_until = max(self._resend_until, seen)
            return
        self._resend_until = seen
        self._resend_sent = self.mono()
        self.stats["resend_requests_out"] += 1
        log.warning("fix %s: gap: expected %d, received %d: ResendRequest", self.opt.session_id, expected, seen)
        self._send_admin(lambda s, t: self.enc.resend_request(s, t, expected, 0))

    def _sequenced(self, msg: codec.FixMessage, seq: int, mt: bytes) -> None:
        expected = self.store.next_in
        if mt == b"4" and msg.get(123) != b"Y":
            self._sequence_reset(msg, seq, expected)
            return
        if seq > expected:
            if mt == b"5":
                self._on_logout(msg)
                return
            if mt == b"2":
                self._on_resend_request(msg, seq)
            elif mt == b"1" and msg.get(112) is not None:
                # answered now, not after the gap is filled: the peer's liveness check must not
                # wait on our recovery (it is answered once: the queued copy is not answered again)
                tid = msg.get(112)
                self._answered_test_requests.add(seq)
                self._send_admin(lambda s, t: self.enc.heartbeat(s, t, tid))
                self.stats["heartbeats_out"] += 1
            self._queue[seq] = msg
            self.stats["queued"] += 1
            if len(self._queue) > MAX_QUEUED:
                self._logout_disconnect(f"gap at {expected} not filled after {MAX_QUEUED} messages")
                return
            self._request_resend(expected, seq)
            return
        if seq < expected:
            if msg.get(43) == b"Y":
                if not msg.has(122):
                    self._reject(seq, REQUIRED_TAG_MISSING, 122, mt, "OrigSendingTime missing")
                self.stats["poss_dup_ignored"] += 1
                return
            self.stats["seq_too_low"] += 1
            self._logout_disconnect(f"MsgSeqNum too low, expecting {expected} but received {seq}")
            return
        if msg.get(43) == b"Y" and not self._poss_dup_ok(msg, seq, mt):
            return
        self._process(msg, seq, mt)
        # the gap may now be closed: process what waited behind it, in order
        while self.sock is not None:
            nxt = self.store.next_in
            for s in [s for s in self._queue if s < nxt]:
                del self._queue[s]
            m = self._queue.pop(nxt, None)
            if m is None:
                break
            self._process(m, nxt, m.msg_type)
        if self._resend_until and self.store.next_in > self._resend_until:
            self._resend_until = 0

    def _poss_dup_ok(self, msg: codec.FixMessage, seq: int, mt: bytes) -> bool:
        """A resent message (PossDupFlag=Y) in sequence: OrigSendingTime must be there (else Reject
        373=1, number consumed) and not later than SendingTime (else Reject 373=10, Logout)."""
        orig, sent = msg.get(122), msg.get(52)
        if orig is None:
            self.store.set_next_in(seq + 1)
            self._reject(seq, REQUIRED_TAG_MISSING, 122, mt, "OrigSendingTime missing")
            return False
        try:
            bad = sent is not None and codec.parse_time(orig) > codec.parse_time(sent)
        except ValueError:
            self.store.set_next_in(seq + 1)
            self._reject(seq, INCORRECT_DATA_FORMAT, 122, mt, "OrigSendingTime malformed")
            return False
        if bad:
            self.store.set_next_in(seq + 1)
            self._reject(seq, SENDING_TIME_ACCURACY, 122, mt, "OrigSendingTime later than SendingTime")
            self._logout_disconnect("OrigSendingTime later than SendingTime")
            return False
        return True

    def _sequence_reset(self, msg: codec.FixMessage, seq: int, expected: int) -> None:
        self.stats["seq_resets_in"] += 1
        try:
            new = msg.get_int(36)
        except ValueError:
            new = None
        if new is None:
            self._reject(seq, REQUIRED_TAG_MISSING, 36, b"4", "NewSeqNo missing")
            return
        if new < expected:
            self._reject(seq, VALUE_INCORRECT, 36, b"4", f"NewSeqNo {new} below expected {expected}")
            return
        log.warning("fix %s: SequenceReset-Reset: next inbound %d -> %d", self.opt.session_id, expected, new)
        self.store.set_next_in(new)
        for s in [s for s in self._queue if s < new]:
            del self._queue[s]
        if self._resend_until and new > self._resend_until:
            self._resend_until = 0

    def _process(self, msg: codec.FixMessage, seq: int, mt: bytes) -> None:
        """A message with seq == expected: consume its number, then act on it."""
        bad = msg.violation()
        if bad is not None:  # an empty value or a repeated tag: Reject, number consumed, not acted on
            self.store.set_next_in(seq + 1)
            reason, tag = bad
            self._reject(seq, reason, tag, mt, "Tag specified without a value" if reason == TAG_WITHOUT_VALUE
                         else "Tag appears more than once")
            return
        if mt == b"4":  # GapFill
            try:
                new = msg.get_int(36)
            except ValueError:
                new = None
            if new is None:
                self.store.set_next_in(seq + 1)
                self._reject(seq, REQUIRED_TAG_MISSING, 36, mt, "NewSeqNo missing")
                return
            if new <= seq:
                self.store.set_next_in(seq + 1)
                self._reject(seq, VALUE_INCORRECT, 36, mt, f"GapFill NewSeqNo {new} not above MsgSeqNum {seq}")
                return
            self.stats["gap_fills_in"] += 1
            self.store.set_next_in(new)
            return
        self.store.set_next_in(seq + 1)
        if mt == b"0":
            self.stats["heartbeats_in"] += 1
            if self._test_req_id is not None and msg.get(112) == self._test_req_id:
                self._test_req_id = None
        elif mt == b"1":
            self.stats["test_requests_in"] += 1
            tid = msg.get(112)
            if tid is None:
                self._reject(seq, REQUIRED_TAG_MISSING, 112, mt, "TestReqID missing")
            elif seq in self._answered_test_requests:
                self._answered_test_requests.discard(seq)
            else:
                self._send_admin(lambda s, t: self.enc.heartbeat(s, t, tid))
                self.stats["heartbeats_out"] += 1
        elif mt == b"2":
            self._on_resend_request(msg, seq)
        elif mt == b"5":
            self._on_logout(msg)
        elif mt == b"3":
            self.stats["rejects_in"] += 1
            try:
                ref = msg.get_int(45)
            except ValueError:
                ref = None
            log.warning("fix %s: counterparty rejected our %s: %s", self.opt.session_id, ref, msg.get_str(58, ""))
            if ref is not None:
                info = self.store.sent.get(ref)
                self.app.on_session_reject(self, ref, info, msg)
        elif mt == b"A":
            log.warning("fix %s: Logon while logged on ignored", self.opt.session_id)
        elif mt in ADMIN_TYPES:
            pass
        else:
            try:
                res = self.app.on_app_message(self, msg)
            except Exception as e:  # the application must never take the session down
                log.exception("fix %s: application failed on %r", self.opt.session_id, msg)
                res = (INCORRECT_DATA_FORMAT, None, f"not processed: {e}"[:100])
            if res == "unsupported":
                self._business_reject(seq, mt, UNSUPPORTED_MESSAGE_TYPE, "Unsupported Message Type")
            elif isinstance(res, BusinessReject):
                self._business_reject(seq, mt, res[0], res[1], res[2])
            elif res is not None:
                reason, tag, text = res
                self._reject(seq, reason, tag, mt, text)

    def _on_resend_request(self, msg: codec.FixMessage, seq: int) -> None:
        self.stats["resend_requests_in"] += 1
        try:
            begin, end = msg.get_int(7), msg.get_int(16)
        except ValueError:
            begin = end = None
        if begin is None or end is None:
            self._reject(seq, REQUIRED_TAG_MISSING, 7 if begin is None else 16, b"2", "BeginSeqNo/EndSeqNo missing")
            return
        last = self.store.next_out - 1
        if end == 0 or end > last:
            end = last
        if begin < 1 or begin > last:
            log.warning("fix %s: ResendRequest %d..%d outside what was sent (last %d)", self.opt.session_id,
                        begin, end, last)
            if begin > last:
                return
            begin = 1
        new_seq = end + 1
        log.warning("fix %s: ResendRequest %d..%d: gap-filled to %d (nothing resent)", self.opt.session_id,
                    begin, end, new_seq)
        self.stats["gap_fills_out"] += 1
        self._write(self.enc.sequence_reset(begin, self.wall(), new_seq, True))
        for s, info in self.store.sent_in(begin, end):
            self.stats["not_delivered"] += 1
            self.app.on_not_delivered(self, s, info)

    def _on_logout(self, msg: codec.FixMessage) -> None:
        self.stats["logouts_in"] += 1
        text = msg.get_str(58, "")
        if self.state != LOGOUT_SENT:
            log.warning("fix %s: counterparty logout: %s", self.opt.session_id, text)
            self._send_admin(lambda s, t: self.enc.logout(s, t))
            self.stats["logouts_out"] += 1
        self._disconnect(f"logout: {text}" if text else "logout")
