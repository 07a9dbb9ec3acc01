"""exchangeInfo symbol filters into the session's config (livestack.venues.binance.exchange_info): the
instruments' tick/lot and [risk.symbols] get Binance's bounds, explicit stricter values stay, and
the core built from the merged config denies what Binance would refuse with -1013."""

from __future__ import annotations

import copy

import pytest

from livestack.node import config
from tests.unit.venues.binance.test_binance_codec import SPOT_SYMBOL
from livestack.venues.binance.exchange_info import load_filters_into_config, merge_filters

INFO = {"symbols": [SPOT_SYMBOL]}


def _cfg(risk=None, inst=None, **opts):
    raw = {"instruments": [{"id": 1, "symbol": "BTCUSDT", "venue": "binance", "price_decimals": 2,
                            "qty_decimals": 8, **(inst or {})}],
           "venue": {"kind": "binance", "options": {"market": "spot", **opts}},
           "risk": {"max_order_qty": "1.0", "max_position": "2.0", **(risk or {})}}
    return config.validate(raw)


def test_filters_fill_the_instrument_and_its_risk_keys():
    cfg = _cfg()
    before = copy.deepcopy(cfg)
    got = merge_filters(cfg, INFO)
    assert cfg == before                                     # a new dict: the input is not touched
    assert (got["instruments"][0]["tick"], got["instruments"][0]["lot"]) == (1, 1000)
    assert got["risk"]["symbols"]["BTCUSDT"] == {
        "min_price": 1, "max_price": 100000000, "min_order_qty": 1000,
        "max_order_qty": 100000000,                          # the config's 1.0 BTC: stricter than 9000
        "min_notional": 500, "max_notional": 900000000, "price_band_bps": 8000}


def test_explicit_values_stay_where_stricter():
    got = merge_filters(_cfg(risk={"min_notional": "10.00", "symbols": {"BTCUSDT": {"min_order_qty": 10}}},
                             inst={"tick": 5, "lot": 2000}), INFO)
    sym = got["risk"]["symbols"]["BTCUSDT"]
    assert sym["min_notional"] == 1000                        # 10 USDT > Binance's 5
    assert sym["min_order_qty"] == 1000                       # Binance's 0.00001 > the config's 10 units
    assert (got["instruments"][0]["tick"], got["instruments"][0]["lot"]) == (5, 2000)
    coarse = merge_filters(_cfg(inst={"tick": 3, "lot": 300}), {"symbols": [dict(SPOT_SYMBOL, filters=[
        {"filterType": "PRICE_FILTER", "minPrice": "0", "maxPrice": "0", "tickSize": "0.02"},
        {"filterType": "LOT_SIZE", "minQty": "0", "maxQty": "0", "stepSize": "0.00000500"}])]})
    assert (coarse["instruments"][0]["tick"], coarse["instruments"][0]["lot"]) == (6, 1500)   # lcm: on both grids


def test_merged_config_makes_the_core_deny_what_binance_would_refuse():
    from livestack.core import Core
    from livestack.core import inputs as R
    from livestack.schema import DenyReason
    from tests.unit.core.helpers import BUY, NEW, Scripted

    cfg = merge_filters(_cfg(), INFO)
    st = Scripted()
    core = Core(config.instruments(cfg), cfg["risk"], st)
    core.process_array(R.slots(R.snapshot(1, 1_000_000_000, [(6000000, 10**8)], [(6000100, 10**8)])), hseq0=1)
    st.pending = [(NEW, 0, BUY, 6000000, 500, 0, 0, 0),       # off the 0.00001 step
                  (NEW, 0, BUY, 6000000, 1000, 0, 0, 0),      # 60000.00 x 0.00001 = 0.6 USDT < 5
                  (NEW, 0, BUY, 6000000, 10000, 0, 0, 0)]     # 6 USDT: passes
    o, r = core.process_array(R.slots([R.timer(1_000_000_001)]), hseq0=2)
    assert [DenyReason(int(x)) for x in R.decode(r, "DENIAL")["reason"]] == [DenyReason.BAD_QTY,
                                                                              DenyReason.MIN_NOTIONAL]
    assert list(o["qty"]) == [10000]


def test_other_venues_and_load_filters_false_are_left_alone():
    calls = []
    cfg = _cfg(load_filters=False)
    assert load_filters_into_config(cfg, fetch=lambda o: calls.append(o)) is cfg
    sim = config.validate({})
    assert load_filters_into_config(sim, fetch=lambda o: calls.append(o)) is sim
    assert calls == []
    got = load_filters_into_config(_cfg(), fetch=lambda o: INFO)
    assert got["instruments"][0]["lot"] == 1000


def test_a_symbol_binance_does_not_list_is_an_error():
    with pytest.raises(ValueError, match="'BTCUSDT' is not in Binance's exchangeInfo"):
        merge_filters(_cfg(), {"symbols": [dict(SPOT_SYMBOL, symbol="ETHUSDT")]})


def test_unreachable_exchange_info_says_what_to_do():
    from livestack.venues.binance.exchange_info import fetch_exchange_info

    with pytest.raises(ValueError, match="load_filters = false"):
        fetch_exchange_info({"market": "spot", "rest_url": "http://127.0.0.1:9"}, timeout_s=2.0)
