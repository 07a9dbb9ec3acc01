"""OrderStatusRequest (35=H) against a QuickFIX acceptor (issue 14): the FIX side of recovery.

The core's STATUS command becomes a 35=H; the peer's ExecutionReport ExecType I becomes an EXEC
ORDER_STATUS (reason 0 live with its cum_qty, 1 unknown, 2 ended), never a fill. A peer that does
not support 35=H (QuickFIX's ordermatch example: BusinessMessageReject) gets the configured policy
instead: ``status_unsupported = "cancel"`` cancels the order by ClOrdID.
"""

from __future__ import annotations

import pytest

from livestack.schema import ExecType, OrderCmdType

quickfix = pytest.importorskip("quickfix")
from livestack.testing.fix_exchange import ExchangeProcess  # noqa: E402
from tests.integration.test_fix_quickfix import Harness  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture
def made():
    out = []
    yield out
    for ex, hh in out:
        try:
            hh.ad.session._disconnect("teardown")
            hh.ad.session.store.close()
        except Exception:
            pass
        ex.stop()


def _start(tmp_path, made, **kw):
    ex = ExchangeProcess(str(tmp_path / "exchange"), **kw)
    hh = Harness(ex, tmp_path / "initiator", begin_string=kw.get("begin_string", "FIX.4.4"))
    made.append((ex, hh))
    hh.logon()
    return ex, hh


@pytest.mark.parametrize("begin", ["FIX.4.4", "FIX.4.2"])
def test_status_requests_report_live_filled_ended_and_unknown_orders(tmp_path, made, begin):
    ex, h = _start(tmp_path, made, begin_string=begin)
    h.cmd(OrderCmdType.NEW, 100, price=6183763, qty=2000)
    h.expect(1)
    h.cmd(OrderCmdType.STATUS, 100)
    s = h.expect(2)
    assert (s["exec_type"], s["client_order_id"], s["reason"], s["cum_qty"]) == (ExecType.ORDER_STATUS, 100, 0, 0)
    assert s["exec_id"] == 0 and s["exec_id_hi"] == 0 and s["last_qty"] == 0   # never a fill
    ex.fill("100", 0.5)
    h.expect(3)
    h.cmd(OrderCmdType.STATUS, 100)
    s = h.expect(4)
    assert (s["exec_type"], s["reason"], s["cum_qty"], s["leaves_qty"]) == (ExecType.ORDER_STATUS, 0, 500, 1500)
    h.cmd(OrderCmdType.CANCEL, 100)
    h.expect(5)
    h.cmd(OrderCmdType.STATUS, 100)
    s = h.expect(6)
    assert (s["exec_type"], s["reason"], s["cum_qty"]) == (ExecType.ORDER_STATUS, 2, 500)
    h.cmd(OrderCmdType.STATUS, 999)
    s = h.expect(7)
    assert (s["exec_type"], s["client_order_id"], s["reason"]) == (ExecType.ORDER_STATUS, 999, 1)
    assert [m for m, _ in ex.received].count("H") == 4
    assert h.ad.session.stats["rejects_in"] == 0


def test_a_peer_without_order_status_gets_the_order_canceled_by_clordid(tmp_path, made):
    ex, h = _start(tmp_path, made, flavor="ordermatch")
    h.cmd(OrderCmdType.NEW, 200, price=6183763, qty=2000)
    h.expect(1)
    h.cmd(OrderCmdType.STATUS, 200)
    c = h.expect(2)
    assert (c["exec_type"], c["client_order_id"]) == (ExecType.CANCELED, 200)
    assert [m for m, _ in ex.received] == ["D", "H", "F"]
    assert h.ad.stats["status_unsupported"] == 1
