"""FIX session robustness against QuickFIX acceptors configured like QuickFIX's C++ ``executor``
and ``ordermatch`` examples (``livestack.testing.fix_exchange`` flavors), FIX 4.2 and 4.4, with
``ResetOnLogon`` Y and N (issue 14, item 4):

* orders carry what each version requires (FIX 4.2 HandlInst) and are accepted, not rejected;
* a peer that resets its sequence numbers on logon (QuickFIX ResetOnLogon=Y answers our Logon
  with MsgSeqNum 1 and no ResetSeqNumFlag) never makes the session loop: it follows
  ``on_seq_too_low`` ("reset": goes on; "logout": bounded retries, then stops with the reason);
* a silent peer (a black-holed TCP path) is detected by our TestRequest and the session reconnects;
* a reject storm is counted in the adapter's stats.

Every wait is bounded; acceptors, proxies and stores are cleaned up pass or fail.
"""

from __future__ import annotations

import socket
import threading

import pytest

from livestack.schema import ExecType, OrderCmdType, Side, TimeInForce
from livestack.venues.fix import adapter as fix_adapter

quickfix = pytest.importorskip("quickfix")
from livestack.testing.fix_exchange import ExchangeProcess  # noqa: E402

from tests.integration.test_fix_quickfix import Harness, no_session_rejects  # noqa: E402

pytestmark = pytest.mark.timeout(120)

VERSIONS = ("FIX.4.2", "FIX.4.4")


@pytest.fixture
def made(tmp_path):
    """Exchanges and harnesses made by a test, torn down pass or fail."""
    things = {"ex": [], "h": []}
    yield things
    for h in things["h"]:
        try:
            h.ad.session._disconnect("teardown")
            h.ad.session.store.close()
        except Exception:
            pass
    for e in things["ex"]:
        e.stop()


def exchange(made, tmp_path, **kw):
    e = ExchangeProcess(str(tmp_path / "exchange"), **kw)
    made["ex"].append(e)
    return e


def harness(made, ex, tmp_path, **opts):
    h = Harness(ex, tmp_path / "initiator", **opts)
    made["h"].append(h)
    return h


@pytest.mark.parametrize("reset", [True, False], ids=["ResetOnLogonY", "ResetOnLogonN"])
@pytest.mark.parametrize("begin", VERSIONS)
def test_executor_fills_our_orders_and_a_reconnect_does_not_loop(made, tmp_path, begin, reset):
    ex = exchange(made, tmp_path, begin_string=begin, reset_on_logon=reset, flavor="executor")
    a = harness(made, ex, tmp_path, begin_string=begin, on_seq_too_low="reset")
    a.logon()
    a.cmd(OrderCmdType.NEW, 1, price=6183763, qty=2000)
    f = a.expect(1)
    assert (f["exec_type"], f["client_order_id"], f["last_qty"], f["last_px"], f["cum_qty"]) == (
        ExecType.FILLED, 1, 2000, 6183763, 2000)
    d = ex.received[0][1]
    assert d.get(21) == ("1" if begin == "FIX.4.2" else None)
    no_session_rejects(a)
    a.ad.stop()
    assert ex.wait(lambda: not ex.logged_on(), 10)
    # a new process on the same store: our numbers continue, the peer's may have been reset
    b = harness(made, ex, tmp_path, begin_string=begin, on_seq_too_low="reset")
    b.logon()
    b.cmd(OrderCmdType.NEW, 2, price=100, qty=1000, side=Side.SELL)
    assert b.expect(1)["exec_type"] == ExecType.FILLED
    s = b.ad.session
    assert s.stats["disconnects"] == 0 and s.stats["logons"] == 1
    assert s.stats["seq_too_low_accepted"] == (1 if reset else 0)
    assert s.stats["not_delivered"] == 0                    # orders of the old session were delivered
    b.wait(lambda: ex.expected_nums() == (s.next_in, s.next_out))
    no_session_rejects(b)


@pytest.mark.parametrize("reset", [True, False], ids=["ResetOnLogonY", "ResetOnLogonN"])
@pytest.mark.parametrize("begin", VERSIONS)
def test_ordermatch_accepts_matches_and_cancels(made, tmp_path, begin, reset):
    ex = exchange(made, tmp_path, begin_string=begin, reset_on_logon=reset, flavor="ordermatch")
    h = harness(made, ex, tmp_path, begin_string=begin)
    h.logon()
    h.cmd(OrderCmdType.NEW, 10, price=10000, qty=2000, tif=TimeInForce.DAY)
    assert h.expect(1)["exec_type"] == ExecType.ACCEPTED
    h.cmd(OrderCmdType.NEW, 11, price=9900, qty=500, side=Side.SELL)   # crosses: fills at 100.00
    h.expect(4)
    fills = {int(e["client_order_id"]): e for e in h.events[1:] if e["exec_type"] != ExecType.ACCEPTED}
    assert fills[10]["exec_type"] == ExecType.PARTIALLY_FILLED and fills[10]["last_px"] == 10000
    assert fills[11]["exec_type"] == ExecType.FILLED and fills[11]["last_qty"] == 500
    h.cmd(OrderCmdType.CANCEL, 10)
    c = h.expect(5)
    assert (c["exec_type"], c["client_order_id"]) == (ExecType.CANCELED, 10)
    d = ex.received[0][1]
    assert d[59] == "0"                                             # Day
    assert d.get(21) == ("1" if begin == "FIX.4.2" else None)
    no_session_rejects(h)


@pytest.mark.parametrize("begin", VERSIONS)
def test_peer_reset_on_logon_with_policy_logout_stops_instead_of_looping(made, tmp_path, begin):
    ex = exchange(made, tmp_path, begin_string=begin, reset_on_logon=True, flavor="ordermatch")
    a = harness(made, ex, tmp_path, begin_string=begin)
    a.logon()
    a.cmd(OrderCmdType.NEW, 1, price=100, qty=1000)
    a.expect(1)
    a.ad.stop()
    assert ex.wait(lambda: not ex.logged_on(), 10)
    b = harness(made, ex, tmp_path, begin_string=begin, seq_too_low_retries=3)   # default: "logout"
    b.ad.start()
    s = b.ad.session
    b.wait(lambda: s.stats["stopped_by_policy"] == 1 and s.state == "DISCONNECTED")
    b.ex.wait(lambda: False, 0.5, b.pump)                          # and it stays down: no loop
    assert s.stats["connects"] == 3 and s.stats["seq_too_low"] == 3 and s.stats["logons"] == 0
    assert not s.enabled and "on_seq_too_low" in s.last_disconnect_reason
    status = b.ad.status_counters()
    assert (status["session_stopped"], status["session_active"], status["seq_too_low"]) == (1, 0, 3)
    s.store.close()
    made["h"].remove(b)
    # the operator's way out: reset both sides on logon
    c = harness(made, ex, tmp_path, begin_string=begin, reset_on_logon=True)
    c.logon()
    c.cmd(OrderCmdType.NEW, 2, price=100, qty=1000)
    assert c.expect(1)["exec_type"] == ExecType.ACCEPTED
    no_session_rejects(c)


class BlackHoleProxy:
    """TCP proxy 127.0.0.1:port -> upstream; ``freeze()`` makes the connections open now silent
    in both directions (bytes read and dropped: a black-holed path), later connections work."""

    def __init__(self, upstream_port: int):
        self.up = upstream_port
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.srv.settimeout(0.2)
        self.port = self.srv.getsockname()[1]
        self.frozen: set[int] = set()
        self.conns: list[tuple[socket.socket, socket.socket, int]] = []
        self.running = True
        self._n = 0
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while self.running:
            try:
                c, _ = self.srv.accept()
            except (socket.timeout, OSError):
                continue
            u = socket.create_connection(("127.0.0.1", self.up), timeout=5)
            self._n += 1
            cid = self._n
            self.conns.append((c, u, cid))
            for src, dst in ((c, u), (u, c)):
                t = threading.Thread(target=self._pump, args=(src, dst, cid), daemon=True)
                t.start()
                self.threads.append(t)

    def _pump(self, src, dst, cid):
        src.settimeout(0.2)
        while self.running:
            try:
                data = src.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            if cid not in self.frozen:
                try:
                    dst.sendall(data)
                except OSError:
                    break
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def freeze(self):
        self.frozen.update(cid for _, _, cid in self.conns)

    def stop(self):
        self.running = False
        for c, u, _ in self.conns:
            c.close()
            u.close()
        self.srv.close()
        for t in self.threads:
            t.join(2)


@pytest.mark.parametrize("begin", VERSIONS)
def test_silent_peer_is_detected_by_test_request_and_the_session_reconnects(made, tmp_path, begin):
    ex = exchange(made, tmp_path, begin_string=begin, flavor="ordermatch")
    proxy = BlackHoleProxy(ex.port)
    try:
        h = harness(made, ex, tmp_path, begin_string=begin, port=proxy.port, heartbeat_s=1)
        h.logon()
        s = h.ad.session
        proxy.freeze()
        h.wait(lambda: s.stats["test_request_timeouts"] == 1, 20)
        assert s.stats["test_requests_out"] >= 1 and s.last_disconnect_reason == "no answer to TestRequest"
        h.wait(lambda: s.active and s.stats["logons"] == 2 and ex.logged_on(), 20)
        h.cmd(OrderCmdType.NEW, 1, price=100, qty=1000)
        assert h.expect(1)["exec_type"] == ExecType.ACCEPTED
    finally:
        proxy.stop()


def test_reject_storm_is_counted(made, tmp_path):
    # the case: FIX 4.2 orders without HandlInst, every one rejected by QuickFIX
    ex = exchange(made, tmp_path, begin_string="FIX.4.2", flavor="ordermatch")
    h = harness(made, ex, tmp_path, begin_string="FIX.4.2", handl_inst="", reject_storm_count=5,
                reject_storm_window_s=60)
    h.logon()
    st = h.ad.stats
    for i in range(4):
        h.cmd(OrderCmdType.NEW, 100 + i, price=100, qty=1000)
    h.expect(4)
    assert all(int(e["exec_type"]) == ExecType.REJECTED and int(e["reason"]) == fix_adapter.SESSION_REJECT_BASE + 1
               for e in h.events)                                   # 373=1 required tag missing
    assert (st["rejects"], st["reject_storms"], st["reject_storm_active"]) == (4, 0, 0)
    for i in range(3):
        h.cmd(OrderCmdType.NEW, 200 + i, price=100, qty=1000)
    h.expect(7)
    assert (st["rejects"], st["reject_storms"], st["reject_storm_active"]) == (7, 1, 1)
    status = h.ad.status_counters()
    assert (status["reject_storms"], status["reject_storm_active"], status["session_active"]) == (1, 1, 1)


@pytest.mark.parametrize("flavor", ["executor", "ordermatch"])
def test_a_burst_of_fix42_orders_is_accepted_not_rejected(made, tmp_path, flavor):
    # the run: against the executor / ordermatch examples every FIX 4.2 order was
    # rejected "Required tag missing"; now a burst of 300 goes through with no reject at all
    ex = exchange(made, tmp_path, begin_string="FIX.4.2", flavor=flavor)
    h = harness(made, ex, tmp_path, begin_string="FIX.4.2")
    h.logon()
    n = 300
    for i in range(n):
        h.cmd(OrderCmdType.NEW, 1000 + i, price=100 + i, qty=1000, side=Side.BUY)
    h.expect(n, 60)
    want = ExecType.FILLED if flavor == "executor" else ExecType.ACCEPTED
    assert sum(int(e["exec_type"]) == want for e in h.events) == n
    assert h.ad.stats["rejects"] == 0
    no_session_rejects(h)
