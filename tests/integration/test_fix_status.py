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


def test_a_burst_of_status_requests_is_one_mass_status_request_where_the_peer_supports_it(tmp_path, made):
    """``mass_status = true``: the STATUS commands of a recovery become one OrderMassStatusRequest
    (35=AF); the peer's reports answer the orders asked about (EXEC ORDER_STATUS, as for 35=H),
    and an asked order the answer does not list (here the peer leaves out 302, and 999 is unknown
    to it) gets its own 35=H, whose answer says what happened to it."""
    ex = ExchangeProcess(str(tmp_path / "exchange"), mass_status_hides=("302",))
    h = Harness(ex, tmp_path / "initiator", mass_status=True)
    made.append((ex, h))
    h.logon()
    for k, cid in enumerate((300, 301, 302)):
        h.cmd(OrderCmdType.NEW, cid, price=6183763, qty=2000)
        h.expect(k + 1)
    ex.fill("301", 0.5)
    h.expect(4)
    for cid in (300, 301, 302, 999):
        h.cmd(OrderCmdType.STATUS, cid)
    h.wait(lambda: len(h.events) >= 8)
    got = {int(e["client_order_id"]): (int(e["exec_type"]), int(e["reason"]), int(e["cum_qty"])) for e in h.events[4:]}
    os_ = int(ExecType.ORDER_STATUS)
    assert got == {300: (os_, 0, 0), 301: (os_, 0, 500), 302: (os_, 0, 0), 999: (os_, 1, 0)}, got
    sent = [m for m, _ in ex.received]
    assert sent.count("AF") == 1
    assert sorted(f[11] for m, f in ex.received if m == "H") == ["302", "999"]  # only what AF did not list
    assert h.ad.stats["mass_status_requests"] == 1 and h.ad.stats["mass_status_unlisted"] == 2
    assert h.ad.session.stats["rejects_in"] == 0 and h.ad.stats["exec_refused"] == 0


def test_a_peer_without_mass_status_gets_per_order_status_requests(tmp_path, made):
    ex = ExchangeProcess(str(tmp_path / "exchange"), flavor="ordermatch")   # AF: BusinessMessageReject
    h = Harness(ex, tmp_path / "initiator", mass_status=True, status_unsupported="none")
    made.append((ex, h))
    h.logon()
    h.cmd(OrderCmdType.NEW, 400, price=6183763, qty=2000)
    h.expect(1)
    h.cmd(OrderCmdType.STATUS, 400)
    h.wait(lambda: "H" in [m for m, _ in ex.received])
    assert [m for m, _ in ex.received] == ["D", "AF", "H"]
    assert h.ad.stats["mass_status_unsupported"] == 1 and h.ad.mass.enabled is False


def _positions(h):
    return {int(e["instrument"]): int(e["qty"]) for e in h.events
            if int(e["exec_type"]) == int(ExecType.ORDER_STATUS) and int(e["reason"]) == 3}


def test_status_requests_also_ask_the_venue_for_its_positions_where_it_supports_them(tmp_path, made):
    """``positions_request = true``: a STATUS burst also sends RequestForPositions (35=AN); the
    PositionReports (35=AP) become one EXEC ORDER_STATUS reason 3 per instrument of the venue,
    client_order_id 0, qty = the venue's net position (0 where it reports none): the core
    compares them with its own (core/recovery.pyx)."""
    ex = ExchangeProcess(str(tmp_path / "exchange"), symbols=("BTCUSDT", "ETHUSDT"))
    h = Harness(ex, tmp_path / "initiator", positions_request=True, account="ACC1")
    made.append((ex, h))
    h.logon()
    h.cmd(OrderCmdType.NEW, 500, price=6183763, qty=2000)
    h.expect(1)
    h.cmd(OrderCmdType.NEW, 501, price=6183763, qty=2000, side=2)
    h.expect(2)
    ex.fill("500", 1.5)
    ex.fill("501", 0.25)
    h.expect(4)
    h.cmd(OrderCmdType.STATUS, 500)
    h.cmd(OrderCmdType.STATUS, 501)
    h.wait(lambda: len(_positions(h)) == 2)
    assert _positions(h) == {1: 1250, 2: 0}      # BTC: 1.5 bought - 0.25 sold (3 decimals); ETH: none
    assert [e["client_order_id"] for e in h.events if e["reason"] == 3 and e["exec_type"] == ExecType.ORDER_STATUS] == [0, 0]
    ans = [f for m, f in ex.received if m == "AN"]
    assert len(ans) == 1 and ans[0][1] == "ACC1"   # one request for the burst
    assert h.ad.session.stats["rejects_in"] == 0


def test_a_venue_with_no_positions_reports_every_instrument_flat(tmp_path, made):
    ex = ExchangeProcess(str(tmp_path / "exchange"))
    h = Harness(ex, tmp_path / "initiator", positions_request=True)
    made.append((ex, h))
    h.logon()
    h.cmd(OrderCmdType.STATUS, 600)
    h.wait(lambda: len(_positions(h)) == 2)
    assert _positions(h) == {1: 0, 2: 0}
