"""Test stand-in for a FIX venue's order-entry gateway: a small FIX 4.4 exchange on real QuickFIX
(``quickfix-py``), for tests and benchmarks only -- not part of the trading path.

How faithful: the session layer is a real, independent FIX engine (QuickFIX), so logon, sequence
numbers, resend/gap-fill and message validation are as strict as a real venue's; the "exchange"
behind it is a toy (no book, no matching between participants: fills happen when a test says so,
or at once for IOC orders). It runs a QuickFIX
``SocketAcceptor`` on 127.0.0.1 with data-dictionary validation on (QuickFIX's own ``FIX44.xml``),
so every message our initiator sends is checked by an independent FIX engine, and it answers
orders like a simple exchange:

* NewOrderSingle: ExecutionReport New (150=0), or Rejected (150=8) for an unknown symbol
  (103=1) or a non-positive quantity (103=13). IOC orders fill completely at their limit price
  right after the ack (150=F, 39=2).
* OrderCancelRequest: Canceled (150=4) for a live order, else OrderCancelReject (434=1, 102=1).
* OrderCancelReplaceRequest: Replaced (150=5) with the new price/quantity, else
  OrderCancelReject (434=2, 102=1).
* OrderMassStatusRequest (35=AF, toy flavor): one ExecutionReport 150=I per live order, 584 the
  request's id, 911 how many, 912=Y on the last; none live: one report for no order (911=0).
* RequestForPositions (35=AN, toy flavor): a PositionReport (35=AP) per symbol with a position
  (net of its fills: LongQty 704 / ShortQty 705), 727 how many; none: RequestForPositionsAck
  (35=AO) 728=2. ``position_skew`` (symbol -> qty) makes it report a drift (tests).
* :meth:`TestExchange.fill` sends a (partial) fill of a resting order -- also while our initiator
  is disconnected: QuickFIX stores it and resends it on our ResendRequest.

``flavor`` makes it answer like one of QuickFIX's C++ example acceptors instead:

* ``"executor"`` (examples/executor): every limit NewOrderSingle is filled completely at once, in
  one ExecutionReport (FIX 4.2: ExecType 2 Fill, 4.4: F Trade) at its price; any other OrdType is a
  session Reject (IncorrectTagValue 40). Cancels / replaces are not supported (BusinessMessageReject).
* ``"ordermatch"`` (examples/ordermatch): a limit order book per symbol; NewOrderSingle is acked
  (New) and matched against resting orders of the other side at the resting price; cancels work,
  replaces are not supported.

``begin_string`` is ``FIX.4.2`` or ``FIX.4.4`` (QuickFIX's ``FIX42.xml`` / ``FIX44.xml`` validate
what we send: a FIX 4.2 order without HandlInst is rejected "Required tag missing", as in the
examples); ``reset_on_logon`` is QuickFIX's ``ResetOnLogon``.

Also used by the tests: :meth:`session` (the QuickFIX ``Session``, e.g. to move its sequence
numbers), :attr:`received` (every application message the acceptor accepted), :attr:`admin_in`.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data_dictionary(begin_string: str = "FIX.4.4") -> str:
    import quickfix  # noqa: F401

    import sys

    name = begin_string.replace(".", "").replace("FIX", "FIX", 1) + ".xml"   # FIX.4.2 -> FIX42.xml
    cands = [os.path.join(sys.prefix, "share", "quickfix", name)]
    for c in cands:
        if os.path.exists(c):
            return c
    raise FileNotFoundError(f"{name} data dictionary of quickfix-py not found")


class _Order:
    def __init__(self, cl_ord_id, order_id, symbol, side, qty, price, tif):
        self.cl_ord_id = cl_ord_id
        self.order_id = order_id
        self.symbol = symbol
        self.side = side
        self.qty = qty
        self.price = price
        self.tif = tif
        self.cum = 0.0
        self.live = True


def _fmt(x: float) -> str:
    # rounded to 9 decimals: float arithmetic on quantities (0.01 - 0.001) must not put
    # 0.009000000000000001 on the wire
    s = repr(round(float(x), 9))
    return s[:-2] if s.endswith(".0") else s


class TestExchange:
    """QuickFIX acceptor + exchange logic. Use as a context manager; ``stop()`` always cleans up."""

    __test__ = False  # not a pytest test class

    def __init__(self, store_dir: str, port: int | None = None, symbols=("BTCUSDT",),
                 sender_comp_id="EXCHANGE", target_comp_id="LIVESTACK", heartbeat_s: int = 30,
                 auto_ack: bool = True, begin_string: str = "FIX.4.4", reset_on_logon: bool = False,
                 flavor: str = "toy", mass_status_hides=(), position_skew=None):
        import quickfix as fix

        if flavor not in ("toy", "executor", "ordermatch"):
            raise ValueError(f"unknown flavor {flavor!r}")
        self.begin = begin_string
        self.flavor = flavor
        self.mass_status_hides = set(mass_status_hides)  # ClOrdIDs an AF answer leaves out (tests)
        self.positions: dict[str, float] = {}             # symbol -> net filled qty (RequestForPositions)
        self.position_skew = dict(position_skew or {})    # added to a PositionReport's net (tests: a drift)

        self.fix = fix
        self.port = port or free_port()
        self.symbols = set(symbols)
        self.store_dir = store_dir
        self.sender = sender_comp_id
        self.target = target_comp_id
        self.auto_ack = auto_ack
        self.orders: dict[str, _Order] = {}
        self.received: list[tuple[str, dict]] = []
        self.admin_in: list[tuple[str, str]] = []  # (MsgType, message) of admin messages received
        self.logons = 0
        self.logouts = 0
        self.lock = threading.RLock()
        self._ids = itertools.count(1)
        os.makedirs(store_dir, exist_ok=True)
        cfg = os.path.join(store_dir, "acceptor.cfg")
        with open(cfg, "w") as f:
            f.write(f"""[DEFAULT]
ConnectionType=acceptor
SocketAcceptPort={self.port}
SocketAcceptHost=127.0.0.1
SocketReuseAddress=Y
StartTime=00:00:00
EndTime=00:00:00
FileStorePath={os.path.join(store_dir, 'store')}
FileLogPath={os.path.join(store_dir, 'log')}
UseDataDictionary=Y
DataDictionary={_data_dictionary(begin_string)}
ValidateUserDefinedFields=Y
ValidateFieldsOutOfOrder=Y
ValidateFieldsHaveValues=Y
CheckLatency=N
ResetOnLogon={"Y" if reset_on_logon else "N"}
ResetOnLogout=N
ResetOnDisconnect=N
PersistMessages=Y

[SESSION]
BeginString={begin_string}
SenderCompID={sender_comp_id}
TargetCompID={target_comp_id}
HeartBtInt={heartbeat_s}
""")
        self.settings = fix.SessionSettings(cfg)
        self.app = _make_app(self)
        self.store_factory = fix.FileStoreFactory(self.settings)
        self.log_factory = fix.FileLogFactory(self.settings)
        self.acceptor = fix.SocketAcceptor(self.app, self.store_factory, self.settings, self.log_factory)
        self.session_id = fix.SessionID(begin_string, sender_comp_id, target_comp_id)
        self._started = False

    # --- lifetime -----------------------------------------------------------------------------
    def start(self) -> "TestExchange":
        self.acceptor.start()
        self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            self._started = False
            try:
                self.acceptor.stop(True)
            except Exception:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def session(self):
        return self.fix.Session.lookupSession(self.session_id)

    def logged_on(self) -> bool:
        s = self.session()
        return bool(s and s.isLoggedOn())

    def wait(self, cond, timeout: float = 10.0, poll=None) -> bool:
        """Wait (bounded) for ``cond()``; ``poll()`` is called meanwhile (drive the initiator)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if poll is not None:
                poll()
            with self.lock:
                if cond():
                    return True
            time.sleep(0.002)
        with self.lock:
            return bool(cond())

    # --- exchange behaviour -------------------------------------------------------------------
    def _er(self, o: _Order, exec_type: str, ord_status: str, cl_ord_id=None, orig=None, last_qty=0.0,
            last_px=0.0, reason=None, text=None, extra=()):
        fix = self.fix
        m = fix.Message()
        h = m.getHeader()
        h.setField(fix.BeginString(self.begin))
        h.setField(fix.MsgType("8"))
        if self.begin == "FIX.4.2":
            m.setField(fix.StringField(20, "0"))              # ExecTransType New
            if exec_type == "F":                               # 4.2 has no Trade: Partial fill / Fill
                exec_type = "2" if ord_status == "2" else "1"
        m.setField(fix.OrderID(o.order_id))
        m.setField(fix.ClOrdID(cl_ord_id or o.cl_ord_id))
        if orig:
            m.setField(fix.OrigClOrdID(orig))
        m.setField(fix.ExecID(f"E{next(self._ids)}"))
        m.setField(fix.ExecType(exec_type))
        m.setField(fix.OrdStatus(ord_status))
        if reason is not None:
            m.setField(fix.OrdRejReason(reason))
        m.setField(fix.Symbol(o.symbol))
        m.setField(fix.Side(o.side))
        m.setField(fix.StringField(38, _fmt(o.qty)))
        if o.price:
            m.setField(fix.StringField(44, _fmt(o.price)))
        if last_qty:
            self.positions[o.symbol] = self.positions.get(o.symbol, 0.0) + (last_qty if o.side == "1" else -last_qty)
            m.setField(fix.StringField(32, _fmt(last_qty)))
            m.setField(fix.StringField(31, _fmt(last_px)))
        leaves = 0.0 if not o.live else max(o.qty - o.cum, 0.0)
        m.setField(fix.StringField(151, _fmt(leaves)))
        m.setField(fix.StringField(14, _fmt(o.cum)))
        m.setField(fix.StringField(6, _fmt(last_px if last_px else 0.0)))
        m.setField(fix.TransactTime())
        if text:
            m.setField(fix.Text(text))
        for tag, value in extra:
            m.setField(fix.StringField(tag, str(value)))
        fix.Session.sendToTarget(m, self.session_id)

    def _cxl_reject(self, cl_ord_id, orig, response_to: str, order_id="NONE", status="8"):
        fix = self.fix
        m = fix.Message()
        h = m.getHeader()
        h.setField(fix.BeginString(self.begin))
        h.setField(fix.MsgType("9"))
        m.setField(fix.OrderID(order_id))
        m.setField(fix.ClOrdID(cl_ord_id))
        m.setField(fix.OrigClOrdID(orig))
        m.setField(fix.OrdStatus(status))
        m.setField(fix.CxlRejResponseTo(response_to))
        m.setField(fix.CxlRejReason(1))
        fix.Session.sendToTarget(m, self.session_id)

    def fill(self, cl_ord_id: str, qty: float, px: float | None = None) -> None:
        """Fill ``qty`` of a resting order (partial unless it completes it)."""
        with self.lock:
            o = self.orders[cl_ord_id]
            qty = min(qty, o.qty - o.cum)
            o.cum += qty
            done = o.cum >= o.qty - 1e-12
            if done:
                o.live = False
            self._er(o, "F", "2" if done else "1", last_qty=qty, last_px=px if px is not None else o.price)

    def on_app(self, msg) -> None:
        fix = self.fix
        mt = msg.getHeader().getField(35)
        fields = {}
        for tag in (11, 41, 37, 55, 54, 38, 44, 40, 59, 18, 21, 584, 585, 710, 724, 1):
            if msg.isSetField(tag):
                fields[tag] = msg.getField(tag)
        with self.lock:
            self.received.append((mt, fields))
            if self.flavor != "toy":
                return self._example(mt, fields)
            if mt == "D":
                o = _Order(fields[11], f"O{next(self._ids)}", fields[55], fields[54], float(fields.get(38, "0")),
                           float(fields.get(44, "0")), fields.get(59, "1"))
                if o.symbol not in self.symbols or o.qty <= 0:
                    o.live = False
                    self._er(o, "8", "8", reason=1 if o.symbol not in self.symbols else 13, text="rejected")
                    return
                self.orders[o.cl_ord_id] = o
                if self.auto_ack:
                    self._er(o, "0", "0")
                if o.tif == "3":
                    o.cum = o.qty
                    o.live = False
                    self._er(o, "F", "2", last_qty=o.qty, last_px=o.price)
            elif mt == "F":
                o = self.orders.get(fields[41])
                if o is None or not o.live:
                    self._cxl_reject(fields[11], fields[41], "1", o.order_id if o else "NONE",
                                     "2" if o is not None else "8")
                    return
                o.live = False
                self._er(o, "4", "4", cl_ord_id=fields[11], orig=fields[41])
            elif mt == "G":
                o = self.orders.get(fields[41])
                if o is None or not o.live:
                    self._cxl_reject(fields[11], fields[41], "2", o.order_id if o else "NONE",
                                     "2" if o is not None else "8")
                    return
                del self.orders[fields[41]]
                o.cl_ord_id = fields[11]
                o.qty = float(fields.get(38, o.qty))
                o.price = float(fields.get(44, o.price))
                self.orders[o.cl_ord_id] = o
                self._er(o, "5", "1" if o.cum else "0", cl_ord_id=fields[11], orig=fields[41])
            elif mt == "AN":  # RequestForPositions (issue 14): a PositionReport per symbol held
                self._position_reports(fields[710], fields.get(1, ""))
            elif mt == "AF":  # OrderMassStatusRequest (issue 14): one ExecType I report per live order
                self._mass_status(fields[584])
            elif mt == "H":   # OrderStatusRequest (issue 14): ExecType I with the order's status
                o = self.orders.get(fields[11])
                if o is None:
                    o = _Order(fields[11], "NONE", fields[55], fields[54], 0.0, 0.0, "1")
                    o.live = False
                    self._er(o, "I", "8", text="unknown order")
                elif o.live:
                    self._er(o, "I", "1" if o.cum else "0")
                else:
                    self._er(o, "I", "2" if o.cum >= o.qty - 1e-12 else "4")


    def _mass_status(self, req_id: str) -> None:
        """ExecutionReports 150=I 584=req_id for every live order, 911 = how many, 912=Y on the
        last; none live: one report for no order (ClOrdID "NONE", 911=0, 912=Y)."""
        live = [o for o in self.orders.values() if o.live]
        if self.mass_status_hides:  # a test: the peer "forgets" orders (the initiator asks them by 35=H)
            live = [o for o in live if o.cl_ord_id not in self.mass_status_hides]
        if not live:
            o = _Order("NONE", "NONE", next(iter(self.symbols)), "1", 0.0, 0.0, "1")
            o.live = False
            self._er(o, "I", "8", extra=((584, req_id), (911, 0), (912, "Y")))
            return
        for k, o in enumerate(live):
            self._er(o, "I", "1" if o.cum else "0",
                     extra=((584, req_id), (911, len(live)), (912, "Y" if k == len(live) - 1 else "N")))

    def _position_reports(self, req_id: str, account: str) -> None:
        """PositionReport (35=AP) per symbol with a position (LongQty / ShortQty of its net
        fills), 727 how many; none: RequestForPositionsAck (35=AO) 728=2 (no positions found)."""
        fix = self.fix
        held = {s: q + self.position_skew.get(s, 0.0) for s, q in self.positions.items()}
        held.update({s: q for s, q in self.position_skew.items() if s not in held})
        held = {s: q for s, q in held.items() if abs(q) > 1e-12}
        base = ((710, req_id), (727, len(held)), (1, account or "NONE"), (581, "1"))
        if not held:
            self._send_app("AO", base + ((721, f"P{next(self._ids)}"), (728, "2"), (729, "0")))
            return
        day = time.strftime("%Y%m%d", time.gmtime())
        for sym, q in sorted(held.items()):
            self._send_app("AP", base + ((721, f"P{next(self._ids)}"), (728, "0"), (715, day), (55, sym),
                                         (730, "0"), (731, "1"), (734, "0"), (702, "1"), (703, "TQ"),
                                         (704, _fmt(max(q, 0.0))), (705, _fmt(max(-q, 0.0))), (753, "0")))

    def _send_app(self, msg_type: str, fields) -> None:
        fix = self.fix
        m = fix.Message()
        h = m.getHeader()
        h.setField(fix.BeginString(self.begin))
        h.setField(fix.MsgType(msg_type))
        for tag, value in fields:
            m.setField(fix.StringField(tag, str(value)))
        fix.Session.sendToTarget(m, self.session_id)

    def _example(self, mt: str, fields: dict):
        """The executor / ordermatch examples' behaviour (see the module docstring)."""
        fix = self.fix
        if mt not in ("D", "F") or (mt == "F" and self.flavor == "executor"):
            raise fix.UnsupportedMessageType()
        if mt == "D":
            if fields.get(40) != "2":
                raise fix.IncorrectTagValue(40)
            o = _Order(fields[11], f"O{next(self._ids)}", fields[55], fields[54], float(fields.get(38, "0")),
                       float(fields.get(44, "0")), fields.get(59, "0"))
            if self.flavor == "executor":
                o.cum, o.live = o.qty, False
                self._er(o, "F", "2", last_qty=o.qty, last_px=o.price)
                return
            self.orders[o.cl_ord_id] = o
            self._er(o, "0", "0")
            book = [r for r in self.orders.values() if r.live and r.symbol == o.symbol and r.side != o.side
                    and r is not o]
            book.sort(key=lambda r: r.price if o.side == "1" else -r.price)
            for r in book:
                if o.cum >= o.qty or (o.side == "1" and r.price > o.price) or (o.side == "2" and r.price < o.price):
                    break
                q = min(o.qty - o.cum, r.qty - r.cum)
                for x in (r, o):
                    x.cum += q
                    x.live = x.cum < x.qty - 1e-12
                    self._er(x, "F", "1" if x.live else "2", last_qty=q, last_px=r.price)
            return
        o = self.orders.get(fields[41])
        if o is None or not o.live:
            self._cxl_reject(fields[11], fields[41], "1", o.order_id if o else "NONE", "2" if o else "8")
            return
        o.live = False
        self._er(o, "4", "4", cl_ord_id=fields[11], orig=fields[41])


def _make_app(ex: TestExchange):
    import quickfix as fix

    class _App(fix.Application):
        def onCreate(self, sid):
            pass

        def onLogon(self, sid):
            with ex.lock:
                ex.logons += 1

        def onLogout(self, sid):
            with ex.lock:
                ex.logouts += 1

        def toAdmin(self, msg, sid):
            pass

        def fromAdmin(self, msg, sid):
            with ex.lock:
                ex.admin_in.append((msg.getHeader().getField(35), msg.toString()))

        def toApp(self, msg, sid):
            pass

        def fromApp(self, msg, sid):
            ex.on_app(msg)

    return _App()


class ExchangeProcess:
    """:class:`TestExchange` in a process of its own (``spawn``), driven over a pipe.

    QuickFIX calls Python from its own threads; keeping it out of the test (or benchmark) process
    keeps our initiator's timing and the interpreter free of it, like a real venue on the other
    end of a socket. The same API as ``TestExchange`` for what tests use: ``port``, ``fill``,
    ``received``, ``admin_in``, ``logons``, ``logouts``, ``logged_on()``, ``wait()``, plus
    ``expected_nums()`` -> (next MsgSeqNum it sends, next MsgSeqNum it expects from us) and
    ``set_next_sender(n)``. ``stop()`` is bounded and kills the process if it must.
    """

    __test__ = False

    def __init__(self, store_dir: str, timeout: float = 30.0, **kwargs):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, store_dir, kwargs), daemon=True,
                                name="fix-test-exchange")
        self.proc.start()
        child.close()
        if not self._conn.poll(timeout):
            self.stop()
            raise RuntimeError("test exchange process did not start")
        kind, value = self._conn.recv()
        if kind != "ready":
            self.stop()
            raise RuntimeError(f"test exchange failed to start: {value}")
        self.port = value

    def call(self, name: str, *args, timeout: float = 10.0):
        self._conn.send((name, args))
        if not self._conn.poll(timeout):
            raise TimeoutError(f"test exchange: no answer to {name}")
        kind, value = self._conn.recv()
        if kind == "err":
            raise RuntimeError(f"test exchange: {name}: {value}")
        return value

    def fill(self, cl_ord_id: str, qty: float, px: float | None = None) -> None:
        self.call("fill", cl_ord_id, qty, px)

    @property
    def received(self):
        return self.call("get", "received")

    @property
    def admin_in(self):
        return self.call("get", "admin_in")

    @property
    def logons(self):
        return self.call("get", "logons")

    @property
    def logouts(self):
        return self.call("get", "logouts")

    def logged_on(self) -> bool:
        return self.call("logged_on")

    def expected_nums(self) -> tuple[int, int]:
        return self.call("expected_nums")

    def set_next_sender(self, n: int) -> None:
        self.call("set_next_sender", n)

    def wait(self, cond, timeout: float = 10.0, poll=None) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if poll is not None:
                poll()
            if cond():
                return True
            time.sleep(0.002)
        return bool(cond())

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.is_alive():
                self.call("stop", timeout=10)
        except Exception:
            pass
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self._conn.close()
        self.proc = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _serve(conn, store_dir, kwargs) -> None:
    try:
        ex = TestExchange(store_dir, **kwargs).start()
    except Exception as e:  # report, don't hang the parent
        conn.send(("err", repr(e)))
        return
    conn.send(("ready", ex.port))
    while True:
        try:
            if not conn.poll(1.0):
                continue
            name, args = conn.recv()
        except (EOFError, OSError):
            break
        try:
            if name == "stop":
                time.sleep(0.2)  # let QuickFIX finish callbacks in flight (logout) before stopping
                ex.stop()
                conn.send(("ok", None))
                break
            elif name == "get":
                with ex.lock:
                    value = getattr(ex, args[0])
                    value = list(value) if isinstance(value, list) else value
            elif name == "expected_nums":
                s = ex.session()
                value = (s.getExpectedSenderNum(), s.getExpectedTargetNum())
            elif name == "set_next_sender":
                ex.session().setNextSenderMsgSeqNum(args[0])
                value = None
            else:
                value = getattr(ex, name)(*args)
            conn.send(("ok", value))
        except Exception as e:
            conn.send(("err", repr(e)))
    conn.close()
    os._exit(0)  # skip interpreter teardown under QuickFIX's threads
