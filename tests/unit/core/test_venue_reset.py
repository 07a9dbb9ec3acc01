"""VENUE_RESET: a restarted venue process that lost its orders (the simulated exchange lives in
it) tells the core the orders-ring position it resumed at; every order whose NewOrder the old
process took ends CANCELED, orders whose NewOrder is still in the ring are left to the new one."""

from __future__ import annotations

from livestack.core import inputs as R
from livestack.schema import Anomaly, ExecType, OrderState

from tests.unit.core.helpers import BUY, INST, INST2, SELL, Driver, anomalies, states

E, S = ExecType, OrderState


def reset(d, cutoff, inst=0):
    return d.feed(R.exec_(inst, d.ts, int(E.VENUE_RESET), 0, venue_order_id=cutoff))


def test_orders_the_old_process_took_end_canceled_and_the_rest_are_left_alone():
    d = Driver()
    d.new(BUY, 99990, 10)                      # order 1: ring position 0
    d.exec(E.ACCEPTED, 1, venue_order_id=501)
    d.new(SELL, 100020, 4)                     # order 2: position 1
    d.exec(E.ACCEPTED, 2, venue_order_id=502)
    d.cancel(2)                                # position 2: still in the ring
    d.new(BUY, 99980, 3)                       # order 3: position 3, still in the ring
    assert d.core.open_orders == 3
    o, r = reset(d, 2)
    st = states(r)
    assert sorted(int(x) for x in st["client_order_id"]) == [1, 2]
    assert set(st["state"].tolist()) == {int(S.CANCELED)} and set(st["exec_type"].tolist()) == {int(E.VENUE_RESET)}
    an = anomalies(r)
    assert [Anomaly(int(c)) for c in an["code"]] == [Anomaly.VENUE_RESET] and int(an["detail"][0]) == 2
    assert d.core.order(3)["state"] == S.PENDING_NEW
    assert d.core.open_orders == 1
    inst = d.core.instrument_state(INST.id)
    assert inst["open_buy_qty"] == 3 and inst["open_sell_qty"] == 0 and inst["n_live"] == 1
    # the new venue answers what was still in the ring: the cancel of an order it never had is
    # refused (late: the order already ended), the new order is accepted
    _, r = d.exec(E.CANCEL_REJECTED, 2)
    assert len(anomalies(r)) == 0 and d.core.counters()["late_events"] == 1
    d.exec(E.ACCEPTED, 3, venue_order_id=1)
    assert d.core.order(3)["state"] == S.ACCEPTED and d.core.open_orders == 1


def test_a_replaced_order_is_dropped_by_the_position_of_its_first_new_order():
    d = Driver()
    d.new(BUY, 99990, 10)
    d.exec(E.ACCEPTED, 1, venue_order_id=7)
    d.replace(1, 99980, 10)                    # new id 2, position 1
    d.exec(E.REPLACED, 2, orig=1)
    _, r = reset(d, 1)
    assert [int(x) for x in states(r)["client_order_id"]] == [2]
    assert d.core.open_orders == 0


def test_a_pending_replace_whose_order_the_old_process_had_is_dropped_with_both_ids():
    d = Driver()
    d.new(BUY, 99990, 10)
    d.exec(E.ACCEPTED, 1, venue_order_id=7)
    d.replace(1, 99980, 10)                    # pending replace, id 2 waiting
    reset(d, 1)
    assert d.core.open_orders == 0
    _, r = d.exec(E.CANCEL_REJECTED, 2, orig=1)  # the new venue: unknown order
    assert len(anomalies(r)) == 0


def test_a_reset_with_nothing_taken_or_nothing_live_records_nothing():
    d = Driver()
    o, r = reset(d, 5)
    assert len(states(r)) == 0 and len(anomalies(r)) == 0
    d.new(BUY, 99990, 10)
    o, r = reset(d, 0)                         # the new order is position 1 >= 0: untouched
    assert len(states(r)) == 0 and len(anomalies(r)) == 0 and d.core.open_orders == 1


def test_a_reset_for_one_instrument_leaves_the_others():
    d = Driver(instruments=(INST, INST2))
    d.new(BUY, 99990, 10, inst=0)
    d.new(BUY, 99990, 10, inst=1)
    _, r = reset(d, 2, inst=INST2.id)
    assert [int(x) for x in states(r)["client_order_id"]] == [2]
    assert d.core.order(1)["state"] == S.PENDING_NEW
