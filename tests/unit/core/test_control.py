"""Control commands: exactly one CONTROL_REPLY each (OK with hseq, or ERROR and nothing changed);
kill switch cancels everything and latches HALTED until KILL_RESET; trading-state transitions are
emitted as records."""

from __future__ import annotations

import numpy as np
import pytest

from livestack.core import inputs as R
from livestack.schema import (ControlCmdType as C, ControlError, ControlStatus, DenyReason,
                              ExecType, OrderCmdType, OrderState, RiskLimit, TradingState)

from tests.unit.core.helpers import BUY, INST, INST2, SELL, Driver, denials, replies


def _state(d):
    """Everything a refused command must leave untouched."""
    c = d.core
    return (c.trading_state, c.kill_latched, c.session_active, c.risk_limits(1), c.params(),
            [o["state"] for o in c.live_orders()])


def _reply(r):
    rep = replies(r)
    assert len(rep) == 1, "exactly one reply per command"
    return rep[0]


@pytest.mark.parametrize("cmd", list(C))
def test_every_command_gets_exactly_one_reply(cmd):
    d = Driver()
    o, r = d.control(cmd, request_id=42, arg0=1, arg1=1)
    rep = _reply(r)
    assert rep["request_id"] == 42 and rep["cmd"] == cmd and rep["hseq"] == d.hseq - 1


def test_status_reports_open_orders_and_state():
    d = Driver()
    d.new(BUY, 99990, 1)
    o, r = d.control(C.STATUS)
    rep = _reply(r)
    assert rep["status"] == ControlStatus.OK and rep["value0"] == 1 and rep["value1"] & 0xFF == TradingState.ACTIVE
    tel = R.decode(r, "TELEMETRY")
    assert len(tel) == 1 and tel["open_orders"][0] == 1 and tel["orders_sent"][0] == 1
    assert tel["events"][0] == d.core.counters()["events"] and tel["hseq"][0] == rep["hseq"]


def test_kill_cancels_every_open_order_and_latches_until_reset():
    d = Driver(instruments=(INST, INST2))
    for inst in (0, 1):
        d.new(BUY, 99990, 1, inst=inst)
        d.new(SELL, 100020, 1, inst=inst)
    d.exec(ExecType.ACCEPTED, 1)
    o, r = d.control(C.KILL)
    assert len(o) == 4 and set(o["cmd"]) == {OrderCmdType.CANCEL}
    assert _reply(r)["value0"] == 4
    ts = R.decode(r, "TRADING_STATE")
    assert ts["state"][-1] == TradingState.HALTED and ts["kill_latched"][-1] == 1
    assert d.core.kill_latched and d.core.trading_state == TradingState.HALTED
    assert denials(d.new(BUY, 99980, 1)[1]) == [DenyReason.HALTED]
    # enabling while latched is refused and changes nothing
    before = _state(d)
    rep = _reply(d.control(C.TRADING_ENABLE)[1])
    assert rep["status"] == ControlStatus.ERROR and rep["error"] == ControlError.NOT_ALLOWED
    assert _state(d) == before
    # reset releases the latch; state stays HALTED until enabled
    rep = _reply(d.control(C.KILL_RESET)[1])
    assert rep["status"] == ControlStatus.OK
    assert not d.core.kill_latched and d.core.trading_state == TradingState.HALTED
    assert _reply(d.control(C.TRADING_ENABLE)[1])["status"] == ControlStatus.OK
    assert d.core.trading_state == TradingState.ACTIVE


def test_kill_with_full_order_ring_denies_the_cancels_it_cannot_send_and_still_latches():
    d = Driver()
    d.new(BUY, 99990, 1)
    d.new(BUY, 99980, 1)
    d.core.orders_budget = 1
    o, r = d.control(C.KILL)
    assert len(o) == 1 and denials(r) == [DenyReason.BACKPRESSURE]
    assert d.core.kill_latched


def test_kill_reset_when_not_latched_is_refused():
    d = Driver()
    before = _state(d)
    rep = _reply(d.control(C.KILL_RESET)[1])
    assert rep["status"] == ControlStatus.ERROR and rep["error"] == ControlError.NOT_ALLOWED
    assert _state(d) == before


def test_session_stop_cancels_and_halts_and_start_resumes():
    d = Driver()
    d.new(BUY, 99990, 1)
    o, r = d.control(C.SESSION_STOP)
    assert len(o) == 1 and o[0]["cmd"] == OrderCmdType.CANCEL
    ts = R.decode(r, "TRADING_STATE")
    assert ts["state"][-1] == TradingState.HALTED and ts["cause"][-1] == 4
    assert not d.core.session_active
    assert _reply(d.control(C.TRADING_ENABLE)[1])["error"] == ControlError.NOT_ALLOWED
    assert _reply(d.control(C.SESSION_START)[1])["status"] == ControlStatus.OK
    assert d.core.trading_state == TradingState.ACTIVE


def test_trading_disable_and_reduce_only_transitions_are_recorded():
    d = Driver()
    o, r = d.control(C.REDUCE_ONLY)
    ts = R.decode(r, "TRADING_STATE")
    assert (ts["prev_state"][0], ts["state"][0], ts["cause"][0]) == (TradingState.ACTIVE, TradingState.REDUCING, 1)
    o, r = d.control(C.TRADING_DISABLE)
    assert R.decode(r, "TRADING_STATE")["state"][0] == TradingState.HALTED


def test_cancel_all_per_instrument_and_unknown_instrument():
    d = Driver(instruments=(INST, INST2))
    d.new(BUY, 99990, 1, inst=0)
    d.new(BUY, 99990, 1, inst=1)
    o, r = d.control(C.CANCEL_ALL, inst=2)
    assert len(o) == 1 and o[0]["instrument"] == 2
    before = _state(d)
    rep = _reply(d.control(C.CANCEL_ALL, inst=99)[1])
    assert rep["error"] == ControlError.UNKNOWN_INSTRUMENT and _state(d) == before
    o, r = d.control(C.CANCEL_ALL)
    assert len(o) == 1 and o[0]["instrument"] == 1


def test_set_limit_applies_at_the_event_boundary():
    d = Driver()
    rep = _reply(d.control(C.SET_LIMIT, inst=1, arg0=int(RiskLimit.MAX_ORDER_QTY), arg1=5)[1])
    assert rep["status"] == ControlStatus.OK and rep["value0"] == 5
    assert d.core.risk_limits(1)["max_order_qty"] == 5
    assert denials(d.new(qty=6)[1]) == [DenyReason.MAX_ORDER_QTY]


@pytest.mark.parametrize("inst,arg0,arg1,err", [
    (1, 0, 5, ControlError.BAD_ARGUMENT),
    (1, 99, 5, ControlError.BAD_ARGUMENT),
    (1, int(RiskLimit.MAX_ORDER_QTY), -1, ControlError.BAD_ARGUMENT),
    (1, int(RiskLimit.TRADABLE), 2, ControlError.BAD_ARGUMENT),
    (1, int(RiskLimit.MAX_OPEN_ORDERS), 10_000, ControlError.BAD_ARGUMENT),
    (7, int(RiskLimit.MAX_ORDER_QTY), 5, ControlError.UNKNOWN_INSTRUMENT),
])
def test_bad_set_limit_is_refused_and_changes_nothing(inst, arg0, arg1, err):
    d = Driver()
    before = _state(d)
    rep = _reply(d.control(C.SET_LIMIT, inst=inst, arg0=arg0, arg1=arg1)[1])
    assert rep["status"] == ControlStatus.ERROR and rep["error"] == err
    assert _state(d) == before


def test_set_param_and_bad_index():
    d = Driver()
    rep = _reply(d.control(C.SET_PARAM, arg0=1, arg1=77)[1])
    assert rep["status"] == ControlStatus.OK and d.core.params()["p1"] == 77
    before = _state(d)
    rep = _reply(d.control(C.SET_PARAM, arg0=5, arg1=1)[1])
    assert rep["error"] == ControlError.BAD_ARGUMENT and _state(d) == before


def test_unknown_command_is_refused_and_changes_nothing():
    d = Driver()
    before = _state(d)
    rep = _reply(d.feed(R.control(d.ts, 999))[1])
    assert rep["status"] == ControlStatus.ERROR and rep["error"] == ControlError.UNKNOWN_COMMAND
    assert _state(d) == before


def test_inactive_core_waits_for_session_start():
    d = Driver(active=False)
    assert denials(d.new()[1]) == [DenyReason.HALTED]
    d.control(C.SESSION_START)
    assert len(d.new()[0]) == 1


def test_strategy_error_is_an_anomaly_not_a_crash():
    d = Driver()

    def boom(w):
        raise RuntimeError("boom")
    d.strat.on_event = boom
    o, r = d.feed(R.timer(d.ts))
    an = R.decode(r, "ANOMALY")
    assert len(an) == 1 and d.core.counters()["anomalies_by_code"] == {"STRATEGY_ERROR": 1}
    assert d.core.strategy.errors == 1


def test_outputs_fit_the_preallocated_worst_case():
    d = Driver(max_orders=64, live_cap=64, risk={"max_open_orders": 64})
    for k in range(64):
        d.new(BUY, 99000 - 10 * k, 1)
    o, r = d.control(C.KILL)
    assert len(o) == 64 and d.core.counters()["output_overflow"] == 0
    assert d.core.output_capacity[0] >= 64


def test_kill_while_a_replace_is_pending_cancels_the_new_id_once_the_venue_replaced_it():
    d = Driver()
    d.new(BUY, 99990, 5)
    d.exec(ExecType.ACCEPTED, 1)
    d.replace(1, 99980, 5)
    o, r = d.control(C.KILL)
    # a cancel now could name the wrong id: nothing is sent until the replace resolves
    assert len(o) == 0
    assert R.decode(r, "CONTROL_REPLY")["value0"][0] == 1  # one order being canceled
    o, r = d.exec(ExecType.REPLACED, 2, orig=1)  # the venue had already replaced it
    assert len(R.decode(r, "ANOMALY")) == 0
    assert len(o) == 1 and o[0]["cmd"] == OrderCmdType.CANCEL and o[0]["client_order_id"] == 2
    o, r = d.exec(ExecType.PARTIALLY_FILLED, 2, last_px=99980, last_qty=2, cum_qty=2, leaves_qty=3)
    assert d.core.position(1)["net_qty"] == 2, "a fill on the new id must reach the position"
    d.exec(ExecType.CANCELED, 2)
    assert d.core.counters()["open_orders"] == 0 and d.core.counters()["anomalies"] == 0


def test_kill_while_a_replace_is_pending_cancels_the_old_id_when_the_venue_refused_the_replace():
    d = Driver()
    d.new(BUY, 99990, 5)
    d.exec(ExecType.ACCEPTED, 1)
    d.replace(1, 99980, 5)
    o, _ = d.control(C.KILL)
    assert len(o) == 0
    o, r = d.exec(ExecType.CANCEL_REJECTED, 1, orig=1)  # the replace was refused
    assert len(o) == 1 and o[0]["cmd"] == OrderCmdType.CANCEL and o[0]["client_order_id"] == 1
    d.exec(ExecType.CANCELED, 1)
    assert d.core.counters()["open_orders"] == 0 and d.core.counters()["anomalies"] == 0


def test_records_ring_overflow_halts_trading():
    d = Driver()
    r = d.core.signal_records_overflow(d.hseq)
    ts = R.decode(r, "TRADING_STATE")
    assert ts["state"][0] == TradingState.HALTED and ts["cause"][0] == 3
    assert d.core.counters()["anomalies_by_code"] == {"RECORDS_FULL": 1}
