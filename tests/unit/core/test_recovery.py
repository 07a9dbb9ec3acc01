"""Recovery in the core (issue 14): RECOVER, STATUS / ORDER_STATUS, crash-safe ids, pending
timeouts, reject storms, STOP_UNRESOLVED. Each case states the allowed outcome up front."""

from __future__ import annotations

import numpy as np

from livestack.core import inputs as R
from livestack.schema import Anomaly, ControlCmdType, DenyReason, ExecType, OrderCmdType, OrderState, TradingState
from tests.unit.core.helpers import BUY, SELL, Driver, anomalies, denials, states

STATUS = int(OrderCmdType.STATUS)


def _recover(d, epoch=1, orders_pos=-1):
    return d.control(ControlCmdType.RECOVER, arg0=epoch, arg1=orders_pos)


def _status_answer(d, coid, reason=0, cum=0, venue_id=77):
    return d.exec(ExecType.ORDER_STATUS, coid, reason=reason, cum_qty=cum, venue_order_id=venue_id)


def test_recover_asks_status_of_every_open_order_and_goes_back_to_active_once_explained():
    d = Driver()
    o1, _ = d.new(BUY, 99990, 10)
    o2, _ = d.new(SELL, 100020, 10, dt=1)
    a, b = int(o1["client_order_id"][0]), int(o2["client_order_id"][0])
    d.exec(ExecType.ACCEPTED, a, venue_order_id=5)
    orders, recs = _recover(d)
    assert d.core.trading_state == int(TradingState.RECOVERING)
    assert sorted(orders["client_order_id"].tolist()) == sorted([a, b])
    assert set(orders["cmd"].tolist()) == {STATUS}
    st = states(recs)
    assert int(st["client_order_id"][0]) == b and int(st["state"][0]) == int(OrderState.UNKNOWN)  # sent, unacked
    # no new orders while RECOVERING
    _, r = d.new(BUY, 99980, 10, dt=1)
    assert denials(r) == [DenyReason.RECOVERING]
    _status_answer(d, a)                       # live at the venue, nothing filled: explained
    assert d.core.trading_state == int(TradingState.RECOVERING)
    _, r = _status_answer(d, b)                # the unacked one is live too: ACCEPTED now
    assert int(states(r)["state"][-1]) == int(OrderState.ACCEPTED)
    assert d.core.trading_state == int(TradingState.ACTIVE)
    assert len(anomalies(r)) == 0


def test_an_order_the_venue_never_received_ends_rejected_and_new_ids_use_the_new_epoch():
    d = Driver()
    o1, _ = d.new(BUY, 99990, 10)
    a = int(o1["client_order_id"][0])
    _recover(d, epoch=3)
    _, r = _status_answer(d, a, reason=1)      # unknown at the venue: never sent
    assert int(states(r)["state"][-1]) == int(OrderState.REJECTED)
    assert d.core.trading_state == int(TradingState.ACTIVE)
    o, _ = d.new(BUY, 99980, 10, dt=1)
    assert int(o["client_order_id"][0]) == (3 << 40) | 1


def test_a_fill_the_core_never_saw_halts_with_an_anomaly_and_is_never_applied():
    d = Driver()
    o1, _ = d.new(BUY, 99990, 10)
    a = int(o1["client_order_id"][0])
    d.exec(ExecType.ACCEPTED, a, venue_order_id=5)
    _recover(d)
    _, r = _status_answer(d, a, cum=4)         # the venue says 4 filled; no EXEC ever said so
    an = anomalies(r)
    assert [Anomaly(int(x)) for x in an["code"]] == [Anomaly.RECON_MISMATCH]
    assert int(an["client_order_id"][0]) == a
    assert d.core.trading_state == int(TradingState.HALTED)
    assert d.core.position(1)["net_qty"] == 0
    assert len(R.decode(r, "FILL")) == 0


def test_recovery_that_is_never_answered_times_out_to_halted():
    d = Driver(recover_timeout_ns=1_000_000_000)
    o1, _ = d.new(BUY, 99990, 10)
    _recover(d)
    d.feed(R.timer(d.ts), dt=500_000_000)
    assert d.core.trading_state == int(TradingState.RECOVERING)
    _, r = d.feed(R.timer(d.ts), dt=600_000_000)
    assert [Anomaly(int(x)) for x in anomalies(r)["code"]] == [Anomaly.RECON_TIMEOUT]
    assert d.core.trading_state == int(TradingState.HALTED)


def test_recover_with_no_open_orders_returns_at_once_and_replay_is_identical():
    d = Driver()
    _recover(d)
    assert d.core.trading_state == int(TradingState.ACTIVE)


def test_pending_new_past_the_timeout_gets_a_status_request_then_halts_the_instrument():
    d = Driver(pending_timeout_ns=1_000_000_000)
    o1, _ = d.new(BUY, 99990, 10)
    a = int(o1["client_order_id"][0])
    o, _ = d.feed(R.timer(d.ts), dt=500_000_000)
    assert len(o) == 0
    o, _ = d.feed(R.timer(d.ts), dt=600_000_000)
    assert o["cmd"].tolist() == [STATUS] and int(o["client_order_id"][0]) == a
    o, r = d.feed(R.timer(d.ts), dt=1_100_000_000)   # no answer as long again: escalate
    an = anomalies(r)
    assert [Anomaly(int(x)) for x in an["code"]] == [Anomaly.PENDING_TIMEOUT]
    assert int(an["client_order_id"][0]) == a
    _, r = d.new(BUY, 99980, 10, dt=1)
    assert denials(r) == [DenyReason.INSTRUMENT_HALTED]
    d.control(ControlCmdType.TRADING_ENABLE)
    o, r = d.new(BUY, 99970, 10, dt=1)
    assert len(o) == 1


def test_a_pending_new_answered_by_a_status_is_accepted_and_nothing_escalates():
    d = Driver(pending_timeout_ns=1_000_000_000)
    o1, _ = d.new(BUY, 99990, 10)
    a = int(o1["client_order_id"][0])
    d.feed(R.timer(d.ts), dt=1_100_000_000)
    _, r = _status_answer(d, a)
    assert int(states(r)["state"][-1]) == int(OrderState.ACCEPTED)
    _, r = d.feed(R.timer(d.ts), dt=5_000_000_000)
    assert len(anomalies(r)) == 0


def test_a_reject_storm_throttles_then_the_next_one_halts_the_instrument():
    d = Driver(reject_storm_n=3, reject_storm_window_ns=1_000_000_000, risk={"max_open_orders": 16})
    ids = []
    for k in range(3):
        o, _ = d.new(BUY, 99990 - 10 * k, 10, dt=1)
        ids.append(int(o["client_order_id"][0]))
    rs = [d.exec(ExecType.REJECTED, c)[1] for c in ids]
    assert [Anomaly(int(x)) for x in anomalies(rs[-1])["code"]] == [Anomaly.REJECT_STORM]
    _, r = d.new(BUY, 99900, 10, dt=1)
    assert denials(r) == [DenyReason.THROTTLE]
    ids = []
    for k in range(3):   # after the throttle window: a second storm halts
        o, _ = d.new(BUY, 99990 - 10 * k, 10, dt=1_100_000_000 if k == 0 else 1)
        ids.append(int(o["client_order_id"][0]))
    for c in ids:
        d.exec(ExecType.REJECTED, c)
    _, r = d.new(BUY, 99900, 10, dt=2_000_000_000)
    assert denials(r) == [DenyReason.INSTRUMENT_HALTED]


def test_stop_unresolved_leaves_every_order_with_a_final_state_in_the_records():
    d = Driver()
    o1, _ = d.new(BUY, 99990, 10)
    o2, _ = d.new(SELL, 100020, 10, dt=1)
    d.exec(ExecType.ACCEPTED, int(o1["client_order_id"][0]), venue_order_id=5)
    d.control(ControlCmdType.SESSION_STOP)      # cancels go out; the venue never answers
    _, r = d.control(ControlCmdType.STOP_UNRESOLVED)
    st = states(r)
    assert sorted(st["client_order_id"].tolist()) == sorted([int(o1["client_order_id"][0]), int(o2["client_order_id"][0])])
    assert set(st["state"].tolist()) == {int(OrderState.UNKNOWN)}
    assert set(st["exec_type"].tolist()) == {int(ExecType.STOP_UNRESOLVED)}
    assert [Anomaly(int(x)) for x in anomalies(r)["code"]] == [Anomaly.STOP_UNRESOLVED]


def test_recovery_replays_bit_identically():
    """The same inputs through a fresh core give the same outputs (recovery is core state)."""
    def run():
        d = Driver(pending_timeout_ns=1_000_000_000)
        out = []
        o1, _ = d.new(BUY, 99990, 10)
        a = int(o1["client_order_id"][0])
        out.append(_recover(d, epoch=2))
        out.append(_status_answer(d, a))
        out.append(d.new(BUY, 99980, 10, dt=1))
        out.append(d.feed(R.timer(d.ts), dt=2_000_000_000))
        return out

    x, y = run(), run()
    for (o1, r1), (o2, r2) in zip(x, y):
        assert np.array_equal(o1, o2) and np.array_equal(r1, r2)


def test_an_order_that_ends_by_an_ordinary_event_during_recovery_is_explained():
    """A FIX peer without OrderStatusRequest gets a cancel by ClOrdID instead: its CANCELED explains it."""
    d = Driver()
    o1, _ = d.new(BUY, 99990, 10)
    a = int(o1["client_order_id"][0])
    d.exec(ExecType.ACCEPTED, a, venue_order_id=5)
    _recover(d)
    assert d.core.trading_state == int(TradingState.RECOVERING)
    d.exec(ExecType.CANCELED, a)
    assert d.core.trading_state == int(TradingState.ACTIVE)


def _position_answer(d, qty, inst=1):
    return d.exec(ExecType.ORDER_STATUS, 0, inst=inst, reason=3, qty=qty)


def test_a_venue_position_equal_to_the_core_s_is_explained_and_a_different_one_halts_naming_the_instrument():
    """ORDER_STATUS reason 3, no order (a FIX PositionReport): the venue's net position. Allowed:
    equal -> nothing recorded, recovery ends as usual; different -> ANOMALY RECON_MISMATCH naming
    the instrument (detail = venue - core), HALTED at the end of the recovery; never applied."""
    d = Driver()
    o1, _ = d.new(BUY, 99990, 10)
    a = int(o1["client_order_id"][0])
    d.exec(ExecType.ACCEPTED, a, venue_order_id=5)
    d.exec(ExecType.PARTIALLY_FILLED, a, last_qty=4, last_px=99990, cum_qty=4, leaves_qty=6)
    _recover(d)
    _, r = _position_answer(d, 4)
    assert len(anomalies(r)) == 0 and d.core.trading_state == int(TradingState.RECOVERING)
    _, r = _position_answer(d, 7)                  # the venue holds 3 more than the core knows of
    an = anomalies(r)
    assert [Anomaly(int(x)) for x in an["code"]] == [Anomaly.RECON_MISMATCH]
    assert int(an["instrument"][0]) == 1 and int(an["detail"][0]) == 3 and int(an["client_order_id"][0]) == 0
    assert d.core.position(1)["net_qty"] == 4      # nothing applied
    _status_answer(d, a, cum=4)
    assert d.core.trading_state == int(TradingState.HALTED)


def test_a_different_venue_position_outside_a_recovery_halts_at_once():
    d = Driver()
    _, r = _position_answer(d, -2)
    assert [Anomaly(int(x)) for x in anomalies(r)["code"]] == [Anomaly.RECON_MISMATCH]
    assert d.core.trading_state == int(TradingState.HALTED)
