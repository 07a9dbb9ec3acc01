"""Every named pre-trade check: the intent is denied with its reason code, the counter moves,
nothing is sent; and the same intent passes when the condition is lifted."""

from __future__ import annotations

import pytest

from livestack.core import Core
from livestack.core import inputs as R
from livestack.schema import ControlCmdType, DenyReason, ExecType, FeedStatus, RiskLimit, TradingState

from tests.unit.core.helpers import BUY, INST, INST2, SELL, Driver, denials, states


def _denied(d, out, reason, repeat=False):
    """``repeat``: the denial repeats the instrument's current run of ``reason`` (no order sent
    since its first), so it is counted now and written (count 1) by the next timer."""
    o, r = out
    assert len(o) == 0, "a denied intent sends nothing"
    assert d.core.counters()["denials_by_reason"][reason.name] >= 1
    if repeat:
        assert denials(r) == []
        r = d.feed(R.timer(d.ts))[1]
    assert denials(r) == [reason]
    assert list(R.decode(r, "DENIAL")["count"]) == [1]


def test_order_passes_all_checks_and_is_dispatched():
    d = Driver()
    o, r = d.new(BUY, 99990, 10)
    assert len(o) == 1 and o[0]["client_order_id"] == 1 and o[0]["price"] == 99990 and o[0]["qty"] == 10
    assert denials(r) == []
    assert d.core.counters()["new_orders"] == 1


def test_unknown_instrument_is_denied():
    d = Driver()
    _denied(d, d.new(inst=5), DenyReason.UNKNOWN_INSTRUMENT)


def test_untradable_instrument_is_denied():
    d = Driver(risk={"tradable": False})
    _denied(d, d.new(), DenyReason.UNKNOWN_INSTRUMENT)


@pytest.mark.parametrize("price", [0, -10, 99995])
def test_price_not_positive_or_off_tick_is_denied(price):
    d = Driver()
    _denied(d, d.new(price=price), DenyReason.BAD_PRICE)


@pytest.mark.parametrize("qty", [0, -1])
def test_qty_not_positive_is_denied(qty):
    d = Driver()
    _denied(d, d.new(qty=qty), DenyReason.BAD_QTY)


def test_qty_off_lot_is_denied():
    d = Driver(instruments=(INST.__class__(1, "LOT5", lot=5),), risk={})
    _denied(d, d.new(qty=7, price=99990), DenyReason.BAD_QTY)


def test_max_order_qty():
    d = Driver(risk={"max_order_qty": 10})
    _denied(d, d.new(qty=11), DenyReason.MAX_ORDER_QTY)
    assert len(d.new(qty=10)[0]) == 1


def test_max_notional():
    # 999.90 * 0.100 = 99.99 quote -> 9999 price units
    d = Driver(risk={"max_notional": "99.98"})
    _denied(d, d.new(price=99990, qty=100), DenyReason.MAX_NOTIONAL)
    d.control(ControlCmdType.SET_LIMIT, arg0=int(RiskLimit.MAX_NOTIONAL), arg1=9999)
    assert len(d.new(price=99990, qty=100)[0]) == 1


def test_min_notional():
    # a venue's minimum order value (Binance MIN_NOTIONAL): 999.90 * 0.100 = 99.99 quote -> 9999 units
    d = Driver(risk={"min_notional": "100.00"})
    _denied(d, d.new(price=99990, qty=100), DenyReason.MIN_NOTIONAL)
    d.control(ControlCmdType.SET_LIMIT, arg0=int(RiskLimit.MIN_NOTIONAL), arg1=9999)
    assert len(d.new(price=99990, qty=100)[0]) == 1


def test_venue_filters_min_qty_and_price_range():
    # Binance LOT_SIZE minQty and PRICE_FILTER minPrice / maxPrice (loaded from exchangeInfo at session
    # start): an order Binance would refuse with -1013 is denied here, with its own reason
    d = Driver(risk={"min_order_qty": "0.005", "min_price": "999.00", "max_price": "1001.00"})
    _denied(d, d.new(price=99990, qty=4), DenyReason.MIN_ORDER_QTY)
    _denied(d, d.new(price=99890, qty=5), DenyReason.PRICE_FILTER)
    _denied(d, d.new(SELL, price=100110, qty=5), DenyReason.PRICE_FILTER, repeat=True)
    assert len(d.new(price=99990, qty=5)[0]) == 1
    assert d.core.risk_limits(1)["min_order_qty"] == 5 and d.core.risk_limits(1)["max_price"] == 100100
    d.control(ControlCmdType.SET_LIMIT, arg0=int(RiskLimit.MAX_PRICE), arg1=0)   # 0 = off
    assert len(d.new(SELL, price=100110, qty=5)[0]) == 1


def test_min_price_above_max_price_is_a_config_error():
    with pytest.raises(ValueError, match="min_price"):
        Driver(risk={"min_price": "10.00", "max_price": "9.00"})


def test_reduce_only_order_is_flagged_and_denied_when_it_would_not_reduce():
    from livestack.core import ctx as C
    from livestack.schema import RecordFlag
    from tests.unit.core.helpers import NEW

    d = Driver()
    ro = int(C.INTENT_REDUCE_ONLY)
    _denied(d, d.intents((NEW, 0, SELL, 100010, 10, 0, ro, 0)), DenyReason.REDUCE_ONLY)   # flat: nothing to reduce
    o, _ = d.new(BUY, 100010, 10)
    d.exec(ExecType.ACCEPTED, int(o["client_order_id"][0]))
    d.exec(ExecType.FILLED, int(o["client_order_id"][0]), last_px=100010, last_qty=10, cum_qty=10)
    _denied(d, d.intents((NEW, 0, SELL, 100010, 11, 0, ro, 0)), DenyReason.REDUCE_ONLY)   # would flip to short
    o, _ = d.intents((NEW, 0, SELL, 100010, 10, 0, ro | 2, 0))                           # IOC, reduce-only
    assert len(o) == 1 and int(o["flags"][0]) & int(RecordFlag.REDUCE_ONLY) and int(o["tif"][0]) == 2
    o, _ = d.new(SELL, 100020, 5)                                                            # a plain order: no flag
    assert len(o) == 1 and int(o["flags"][0]) == 0



def test_sdk_place_reduce_only_clamps_and_flags_the_order():
    from livestack.schema import RecordFlag
    from livestack.strategies import intents as I
    d = Driver()
    o, _ = d.new(BUY, 100010, 10)
    d.exec(ExecType.ACCEPTED, int(o["client_order_id"][0]))
    d.exec(ExecType.FILLED, int(o["client_order_id"][0]), last_px=100010, last_qty=10, cum_qty=10)

    def reduce_on_timer(w):
        if w[I.C.CTX_EV_KIND] == 7:                        # TIMER
            I.place(w, 0, SELL, 100020, 25, 0, True)       # long 10: clamped to 10, marked reduce-only

    d.strat.on_event = reduce_on_timer
    o, _ = d.feed(R.timer(d.ts))
    assert list(o["qty"]) == [10] and int(o["flags"][0]) & int(RecordFlag.REDUCE_ONLY)


def test_max_position_counts_open_orders_worst_case():
    d = Driver(risk={"max_position": 100})
    assert len(d.new(BUY, 99990, 60)[0]) == 1
    _denied(d, d.new(BUY, 99980, 60), DenyReason.MAX_POSITION)
    # the other side is checked against its own worst case
    assert len(d.new(SELL, 100020, 100)[0]) == 1
    _denied(d, d.new(SELL, 100030, 1), DenyReason.MAX_POSITION)


def test_max_open_orders_per_instrument():
    d = Driver(risk={"max_open_orders": 2})
    d.new(BUY, 99990, 1)
    d.new(BUY, 99980, 1)
    _denied(d, d.new(BUY, 99970, 1), DenyReason.MAX_OPEN_ORDERS)


def test_submit_rate_token_bucket_refills_on_event_time():
    d = Driver(risk={"submit_rate": 2, "submit_burst": 2})
    assert len(d.new(BUY, 99990, 1)[0]) == 1
    assert len(d.new(BUY, 99980, 1)[0]) == 1
    _denied(d, d.new(BUY, 99970, 1), DenyReason.SUBMIT_RATE)
    assert len(d.new(BUY, 99970, 1, dt=500_000_000)[0]) == 1  # half a second: one token back


def test_cancel_rate():
    d = Driver(risk={"cancel_rate": 1, "cancel_burst": 1})
    d.new(BUY, 99990, 1)
    d.new(BUY, 99980, 1)
    d.exec(ExecType.ACCEPTED, 1)
    d.exec(ExecType.ACCEPTED, 2)
    assert len(d.cancel(1)[0]) == 1
    _denied(d, d.cancel(2), DenyReason.CANCEL_RATE)
    assert len(d.cancel(2, dt=1_000_000_000)[0]) == 1


def test_price_band_in_ticks():
    d = Driver(risk={"price_band_ticks": 5})  # mid 100005 -> band 99955..100055
    _denied(d, d.new(BUY, 99950, 1), DenyReason.PRICE_BAND)
    assert len(d.new(BUY, 99960, 1)[0]) == 1


def test_price_band_in_bps():
    d = Driver(risk={"price_band_bps": 10})  # 10 bps of 100005 = 100.005
    _denied(d, d.new(BUY, 99900, 1), DenyReason.PRICE_BAND)
    assert len(d.new(BUY, 99910, 1)[0]) == 1


def test_price_band_without_reference_is_denied():
    d = Driver(risk={"price_band_ticks": 5}, book=False)
    d.feed(R.snapshot(1, d.ts, [], []))
    _denied(d, d.new(BUY, 99990, 1), DenyReason.NO_REFERENCE)


def test_feed_unhealthy_blocks_new_orders_until_resync():
    d = Driver()
    for status in (FeedStatus.GAP, FeedStatus.STALE, FeedStatus.DISCONNECTED):
        d.feed(R.md_status(1, d.ts, int(status)))
        _denied(d, d.new(), DenyReason.FEED_UNHEALTHY, repeat=status != FeedStatus.GAP)
        d.feed(R.snapshot(1, d.ts, [(100000, 5)], [(100010, 5)]))
    assert len(d.new()[0]) == 1


def test_book_before_first_snapshot_is_unhealthy():
    d = Driver(book=False)
    _denied(d, d.new(), DenyReason.FEED_UNHEALTHY)


def test_self_cross_is_denied():
    d = Driver()
    d.new(SELL, 100010, 5)
    _denied(d, d.new(BUY, 100010, 5), DenyReason.SELF_CROSS)
    assert len(d.new(BUY, 100000, 5)[0]) == 1
    _denied(d, d.new(SELL, 100000, 5), DenyReason.SELF_CROSS)


def test_duplicate_intent_in_flight_is_suppressed():
    d = Driver()
    d.new(BUY, 99990, 5)
    _denied(d, d.new(BUY, 99990, 5), DenyReason.DUPLICATE)
    d.exec(ExecType.ACCEPTED, 1)
    assert len(d.new(BUY, 99990, 5)[0]) == 1  # no longer in flight: a second order is intended


def test_duplicate_cancel_is_suppressed():
    d = Driver()
    d.new(BUY, 99990, 5)
    d.exec(ExecType.ACCEPTED, 1)
    d.cancel(1)
    _denied(d, d.cancel(1), DenyReason.DUPLICATE)


def test_throttle_on_orders_in_flight():
    d = Driver(risk={"max_in_flight": 1})
    d.new(BUY, 99990, 1)
    _denied(d, d.new(BUY, 99980, 1), DenyReason.THROTTLE)
    d.exec(ExecType.ACCEPTED, 1)
    assert len(d.new(BUY, 99980, 1)[0]) == 1


def test_halted_denies_new_orders_but_not_cancels():
    d = Driver()
    d.new(BUY, 99990, 1)
    d.exec(ExecType.ACCEPTED, 1)
    d.control(ControlCmdType.TRADING_DISABLE)
    _denied(d, d.new(BUY, 99980, 1), DenyReason.HALTED)
    assert len(d.cancel(1)[0]) == 1


def test_reduce_only_allows_only_reducing_orders():
    d = Driver()
    d.new(BUY, 99990, 10)
    d.exec(ExecType.FILLED, 1, last_px=99990, last_qty=10)
    d.control(ControlCmdType.REDUCE_ONLY)
    assert d.core.trading_state == TradingState.REDUCING
    _denied(d, d.new(BUY, 99980, 1), DenyReason.REDUCE_ONLY)
    _denied(d, d.new(SELL, 100020, 11), DenyReason.REDUCE_ONLY, repeat=True)  # would flip the position
    assert len(d.new(SELL, 100020, 10)[0]) == 1


def test_max_loss_moves_to_reducing_then_halted():
    # long 1.000 at 1000.00; max_loss 50.00 quote = 50.00*1.000 -> 5000 * 1000 price x qty units
    d = Driver(risk={"max_loss": 5000 * 1000, "max_loss_halt": 10000 * 1000, "max_position": 5000})
    d.new(BUY, 99990, 1000)
    d.exec(ExecType.FILLED, 1, last_px=100000, last_qty=1000)
    assert d.core.trading_state == TradingState.ACTIVE
    # market drops 60.00: loss 60 > 50 -> REDUCING
    o, r = d.feed(R.snapshot(1, d.ts, [(94000, 5)], [(94010, 5)]))
    assert d.core.trading_state == TradingState.REDUCING
    ts = R.decode(r, "TRADING_STATE")
    assert list(ts["state"]) == [int(TradingState.REDUCING)] and ts["cause"][0] == 2
    _denied(d, d.new(BUY, 94000, 1), DenyReason.MAX_LOSS)
    assert len(d.new(SELL, 94010, 10)[0]) == 1
    # drop to 110 loss -> HALTED
    d.feed(R.snapshot(1, d.ts, [(88990, 5)], [(89010, 5)]))
    assert d.core.trading_state == TradingState.HALTED
    _denied(d, d.new(SELL, 89010, 10), DenyReason.HALTED)


def test_order_table_full():
    d = Driver(max_orders=2)
    d.new(BUY, 99990, 1)
    d.new(BUY, 99980, 1)
    _denied(d, d.new(BUY, 99970, 1), DenyReason.ORDER_TABLE_FULL)


def test_terminal_slots_are_reused():
    d = Driver(max_orders=2)
    for k in range(5):
        o, _ = d.new(BUY, 99990, 1)
        coid = int(o[0]["client_order_id"])
        d.exec(ExecType.REJECTED, coid)
    assert d.core.counters()["new_orders"] == 5


def test_backpressure_when_the_order_ring_is_full():
    d = Driver()
    d.core.orders_budget = 0
    _denied(d, d.new(), DenyReason.BACKPRESSURE)
    d.core.orders_budget = 1 << 40
    assert len(d.new()[0]) == 1


def test_cancel_or_replace_of_unknown_order():
    d = Driver()
    _denied(d, d.cancel(999), DenyReason.UNKNOWN_ORDER)
    _denied(d, d.replace(999, 99990, 1), DenyReason.UNKNOWN_ORDER)


def test_replace_checks_new_price_and_quantity():
    d = Driver(risk={"max_order_qty": 10})
    d.new(BUY, 99990, 5)
    d.exec(ExecType.ACCEPTED, 1)
    _denied(d, d.replace(1, 99990, 11), DenyReason.MAX_ORDER_QTY)
    _denied(d, d.replace(1, 99995, 5), DenyReason.BAD_PRICE)
    o, _ = d.replace(1, 99980, 6)
    assert len(o) == 1 and o[0]["orig_client_order_id"] == 1 and o[0]["client_order_id"] == 2


def test_denial_counters_by_reason_accumulate():
    d = Driver(risk={"max_order_qty": 1})
    for _ in range(3):
        d.new(qty=2)
    c = d.core.counters()
    assert c["denials_by_reason"] == {"MAX_ORDER_QTY": 3} and c["denials"] == 3


# ---- configuration ----------------------------------------------------------------------------

@pytest.mark.parametrize("risk,key", [
    ({"max_position": 1}, "max_order_qty"),
    ({"max_order_qty": 1}, "max_position"),
    ({"max_order_qty": 1, "max_position": 1, "max_oder_qty": 1}, "max_oder_qty"),
    ({"max_order_qty": -1, "max_position": 1}, "max_order_qty"),
    ({"max_order_qty": 1.5, "max_position": 1}, "max_order_qty"),
    ({"max_order_qty": 1, "max_position": 1, "max_open_orders": 1000}, "max_open_orders"),
    ({"max_order_qty": 1, "max_position": 1, "symbols": {"NOPE": {}}}, "NOPE"),
    ({"max_order_qty": 1, "max_position": 1, "symbols": {"TEST": {"bogus": 1}}}, "bogus"),
    ({"max_order_qty": 1, "max_position": 1, "max_loss": 10, "max_loss_halt": 5}, "max_loss_halt"),
])
def test_bad_risk_config_raises_naming_the_key(risk, key):
    with pytest.raises(ValueError, match=key):
        Core([INST], risk)


def test_per_symbol_overrides_and_decimal_strings():
    c = Core([INST, INST2], {"max_order_qty": "0.5", "max_position": 100,
                             "symbols": {"TEST2": {"max_order_qty": 7}}})
    assert c.risk_limits(1)["max_order_qty"] == 500
    assert c.risk_limits(2)["max_order_qty"] == 7
