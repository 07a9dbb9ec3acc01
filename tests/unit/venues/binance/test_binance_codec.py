"""Binance venue codecs: signing (documented example), decimals, order params, error reasons,
user-stream events (documented payloads), exchangeInfo filters, client order ids, rate limits."""

import os

import msgspec
import pytest

from livestack.schema import ExecType, OrdType, Side, TimeInForce
from livestack.venues.binance import codec
from livestack.venues.binance.auth import Credentials, KeyError_, read_secret
from livestack.venues.binance.codec import Reject
from livestack.venues.binance.config import load_options
from livestack.venues.binance.ratelimit import RateLimiter

# Binance's documented SIGNED-endpoint example (spot REST "SIGNED Endpoint Examples for POST /api/v3/order")
DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_QUERY = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
DOC_SIG = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def test_hmac_signature_matches_the_documented_example():
    c = Credentials(DOC_KEY, DOC_SECRET, "hmac")
    assert c.sign(DOC_QUERY) == DOC_SIG
    params = [tuple(kv.split("=")) for kv in DOC_QUERY.split("&")]
    assert c.sign_rest(params) == f"{DOC_QUERY}&signature={DOC_SIG}"


def test_ws_api_signature_is_over_the_params_sorted_by_name():
    c = Credentials(DOC_KEY, DOC_SECRET, "hmac")
    p = c.sign_ws({"symbol": "BTCUSDT", "side": "SELL", "timestamp": 1645423376532, "price": "52000.00"})
    assert p["apiKey"] == DOC_KEY
    payload = f"apiKey={DOC_KEY}&price=52000.00&side=SELL&symbol=BTCUSDT&timestamp=1645423376532"
    assert p["signature"] == c.sign(payload)


def test_ed25519_signature_verifies_with_the_public_key():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    import base64

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    c = Credentials("k", pem, "ed25519")
    sig = c.sign("a=1&b=2")
    key.public_key().verify(base64.b64decode(sig), b"a=1&b=2")  # raises if wrong
    with pytest.raises(KeyError_):
        Credentials("k", "not a pem", "ed25519")


def test_credentials_never_show_the_secret():
    c = Credentials(DOC_KEY, DOC_SECRET, "hmac")
    assert DOC_SECRET not in repr(c) and DOC_KEY not in repr(c) and DOC_SECRET not in str(c)


def test_key_file_must_be_0600(tmp_path, monkeypatch):
    f = tmp_path / "secret"
    f.write_text("s3cr3t\n")
    os.chmod(f, 0o644)
    with pytest.raises(KeyError_, match="readable by others") as ei:
        read_secret("", str(f), "API secret")
    assert "s3cr3t" not in str(ei.value)
    os.chmod(f, 0o600)
    assert read_secret("", str(f), "API secret") == "s3cr3t"
    monkeypatch.setenv("LS_TEST_BINANCE_KEY", "abc")
    assert read_secret("LS_TEST_BINANCE_KEY", "", "API key") == "abc"
    with pytest.raises(KeyError_, match=r"\$LS_TEST_NOPE"):
        read_secret("LS_TEST_NOPE", "", "API key")


def test_fixed_point_round_trips_exactly():
    assert codec.fmt_fixed(5000010, 2) == "50000.10"
    assert codec.fmt_fixed(1000, 8) == "0.00001000"
    assert codec.fmt_fixed(7, 0) == "7"
    assert codec.parse_fixed("0.00100000", 8) == 100000
    assert codec.parse_fixed("50000.1", 2) == 5000010
    assert codec.parse_fixed("0.00100000", 3) == 1            # trailing zeros beyond decimals are fine
    with pytest.raises(ValueError):
        codec.parse_fixed("0.0015", 3)                         # never rounded
    for bad in ("", "abc", "1.2.3", None, "1e5"):
        with pytest.raises(ValueError):
            codec.parse_fixed(bad, 2)


def test_client_order_id_is_deterministic_parseable_and_valid():
    import re

    s = codec.client_order_id(123456, 987654321)
    assert s == codec.client_order_id(123456, 987654321)
    assert re.fullmatch(r"[.A-Z:/a-z0-9_-]{1,36}", s)
    assert codec.parse_client_order_id(s, 123456) == 987654321
    assert codec.parse_client_order_id(s, 123457) is None      # another session's order
    assert codec.parse_client_order_id("web_abc", 123456) is None
    assert len(codec.client_order_id(0xFFFFFF, 2**63 - 1)) <= 36
    # the core's crash-safe ids (recovery epoch << 40 | n): a restarted harness's orders continue in a
    # new epoch, so no two orders of one session share a clientOrderId; a restarted venue process
    # (same ring name -> same session epoch) maps a resent command to the same clientOrderId, which
    # Binance refuses as a duplicate while the first is open (-2010 / -4116 -> resolved by a query)
    ids = [(e << 40) | n for e in range(4) for n in (1, 2, 2**40 - 1)]
    epoch = codec.session_epoch_of("/ls.123-abcdef.orders.binance")
    assert epoch == codec.session_epoch_of("/ls.123-abcdef.orders.binance")
    clids = [codec.client_order_id(epoch, c) for c in ids]
    assert len(set(clids)) == len(ids)
    assert all(re.fullmatch(r"[.A-Z:/a-z0-9_-]{1,36}", c) for c in clids)
    assert [codec.parse_client_order_id(c, epoch) for c in clids] == ids


def test_order_params_cover_limit_ioc_fok_post_only_market_and_reduce_only():
    p = codec.new_order_params("spot", "BTCUSDT", "c1", Side.BUY, OrdType.LIMIT, TimeInForce.GTC, 5000010, 1000, 2, 8)
    assert p["type"] == "LIMIT" and p["timeInForce"] == "GTC" and p["price"] == "50000.10"
    assert p["quantity"] == "0.00001000" and p["newClientOrderId"] == "c1" and p["side"] == "BUY"
    p = codec.new_order_params("spot", "BTCUSDT", "c1", Side.SELL, OrdType.LIMIT, TimeInForce.IOC, 1, 1, 2, 8)
    assert p["timeInForce"] == "IOC" and p["side"] == "SELL"
    p = codec.new_order_params("spot", "BTCUSDT", "c1", Side.SELL, OrdType.LIMIT, TimeInForce.POST_ONLY, 1, 1, 2, 8)
    assert p["type"] == "LIMIT_MAKER" and "timeInForce" not in p
    p = codec.new_order_params("usdm", "BTCUSDT", "c1", Side.SELL, OrdType.LIMIT, TimeInForce.POST_ONLY, 1, 1, 2, 3)
    assert p["type"] == "LIMIT" and p["timeInForce"] == "GTX"
    p = codec.new_order_params("usdm", "BTCUSDT", "c1", Side.BUY, OrdType.MARKET, 0, 0, 5, 2, 3, reduce_only=True)
    assert p["type"] == "MARKET" and p["reduceOnly"] == "true" and "price" not in p
    if hasattr(TimeInForce, "FOK"):
        p = codec.new_order_params("spot", "X", "c", Side.BUY, OrdType.LIMIT, TimeInForce.FOK, 1, 1, 2, 8)
        assert p["timeInForce"] == "FOK"
    with pytest.raises(ValueError):
        codec.new_order_params("spot", "X", "c", 0, OrdType.LIMIT, TimeInForce.GTC, 1, 1, 2, 8)


def test_error_codes_map_to_named_reasons_and_unknown_codes_stay_verbatim():
    assert codec.reason_of(-2010) == Reject.NEW_ORDER_REJECTED
    assert codec.reason_of(-1013) == Reject.INVALID_MESSAGE
    assert codec.reason_of(-4116) == Reject.DUPLICATE_CLIENT_ORDER_ID
    assert codec.reason_of(-4120) == Reject.USE_ALGO_ORDER_API
    assert codec.reason_of(-1021) == Reject.INVALID_TIMESTAMP
    assert codec.reason_of(-2011) == Reject.CANCEL_REJECTED and codec.reason_of(-2013) == Reject.NO_SUCH_ORDER
    assert codec.reason_of(-1003) == Reject.TOO_MANY_REQUESTS and codec.reason_of(-1015) == Reject.TOO_MANY_ORDERS
    assert codec.reason_of(-4999) == 4999 and codec.reason_name(4999) == "BINANCE_4999"
    assert codec.reason_of("junk") == Reject.UNEXPECTED_RESP
    assert all(0 < int(r) < 65536 for r in Reject)


# Spot executionReport as documented ("User Data Stream" > "Order Update")
SPOT_REPORT = {
    "e": "executionReport", "E": 1499405658658, "s": "ETHBTC", "c": "mUvoqJxFIILMdfAW5iGSOW", "S": "BUY",
    "o": "LIMIT", "f": "GTC", "q": "1.00000000", "p": "0.10264410", "P": "0.00000000", "F": "0.00000000",
    "g": -1, "C": "", "x": "NEW", "X": "NEW", "r": "NONE", "i": 4293153, "l": "0.00000000",
    "z": "0.00000000", "L": "0.00000000", "n": "0", "N": None, "T": 1499405658657, "t": -1, "v": 3,
    "I": 8641984, "w": True, "m": False, "M": False, "O": 1499405658657, "Z": "0.00000000",
    "Y": "0.00000000", "Q": "0.00000000", "W": 1499405658657, "V": "NONE", "newFieldBinanceAddsLater": 1,
}

# USD-M ORDER_TRADE_UPDATE as documented
FUT_UPDATE = {
    "e": "ORDER_TRADE_UPDATE", "E": 1568879465651, "T": 1568879465650,
    "o": {"s": "BTCUSDT", "c": "TEST", "S": "SELL", "o": "TRAILING_STOP_MARKET", "f": "GTC", "q": "0.001",
          "p": "0", "ap": "0", "sp": "7103.04", "x": "TRADE", "X": "PARTIALLY_FILLED", "i": 8886774, "l": "0.001",
          "z": "0.001", "L": "7103.10", "N": "USDT", "n": "0.00284124", "T": 1568879465650, "t": 12345, "b": "0",
          "a": "9.91", "m": False, "R": False, "wt": "CONTRACT_PRICE", "ot": "TRAILING_STOP_MARKET", "ps": "LONG",
          "cp": False, "AP": "7476.89", "cr": "5.0", "pP": False, "si": 0, "ss": 0, "rp": "0", "V": "NONE",
          "pm": "NONE", "gtd": 0},
}


def test_spot_execution_report_decodes_and_ignores_unknown_fields():
    u = codec.update_from_spot(msgspec.convert(SPOT_REPORT, codec.SpotReport))
    assert (u.x, u.X, u.clid, u.order_id, u.symbol, u.side) == ("NEW", "NEW", "mUvoqJxFIILMdfAW5iGSOW", 4293153,
                                                                 "ETHBTC", Side.BUY)
    assert codec.exec_type_of(u) == ExecType.ACCEPTED
    trade = dict(SPOT_REPORT, x="TRADE", X="PARTIALLY_FILLED", l="0.5", z="0.5", L="0.1026", t=77, n="0.0001", N="BNB")
    u = codec.update_from_spot(msgspec.convert(trade, codec.SpotReport))
    assert codec.exec_type_of(u) == ExecType.PARTIALLY_FILLED and u.trade_id == 77 and u.fee_asset == "BNB"
    cxl = dict(SPOT_REPORT, x="CANCELED", X="CANCELED", c="cancelreq", C="mUvoqJxFIILMdfAW5iGSOW")
    u = codec.update_from_spot(msgspec.convert(cxl, codec.SpotReport))
    assert u.clid == "mUvoqJxFIILMdfAW5iGSOW" and codec.exec_type_of(u) == ExecType.CANCELED
    exp = dict(SPOT_REPORT, x="EXPIRED", X="EXPIRED")
    assert codec.exec_type_of(codec.update_from_spot(msgspec.convert(exp, codec.SpotReport))) == ExecType.EXPIRED


def test_wrong_types_in_an_event_are_a_validation_error_not_a_crash():
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(dict(SPOT_REPORT, i="not-an-int"), codec.SpotReport)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({k: v for k, v in SPOT_REPORT.items() if k != "x"}, codec.SpotReport)


def test_futures_order_trade_update_decodes():
    u = codec.update_from_futures(msgspec.convert(FUT_UPDATE, codec.FuturesUpdate))
    assert (u.x, u.X, u.clid, u.order_id, u.trade_id, u.fee, u.fee_asset) == (
        "TRADE", "PARTIALLY_FILLED", "TEST", 8886774, 12345, "0.00284124", "USDT")
    assert u.side == Side.SELL and codec.exec_type_of(u) == ExecType.PARTIALLY_FILLED
    assert codec.exec_id_text(u.symbol, u.trade_id) == "BTCUSDT-12345"


# exchangeInfo symbol entry (spot, documented filter shapes)
SPOT_SYMBOL = {"symbol": "BTCUSDT", "filters": [
    {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
    {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
    {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True, "maxNotional": "9000000.00000000",
     "applyMaxToMarket": False, "avgPriceMins": 5},
    {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5", "bidMultiplierDown": "0.2",
     "askMultiplierUp": "5", "askMultiplierDown": "0.2", "avgPriceMins": 5},
]}


def test_exchange_info_filters_load_and_check():
    f = codec.parse_filters(SPOT_SYMBOL, 2, 8)
    assert (f.min_price, f.tick, f.min_qty, f.step) == (1, 1, 1000, 1000)
    assert f.min_notional == 500 and f.pct_up == 5.0 and f.pct_down == 0.2
    assert codec.instrument_fields(f) == {"tick": 1, "lot": 1000}
    ok_px, ok_qty = 5000000, 100000  # 50000.00 x 0.001 = 50 USDT
    assert codec.check_filters(f, ok_px, ok_qty, 8, True) == 0
    assert codec.check_filters(f, ok_px, 1500, 8, True) == Reject.FILTER_LOT          # off step
    assert codec.check_filters(f, 0, ok_qty, 8, True) == Reject.FILTER_PRICE
    assert codec.check_filters(f, 100, 1000, 8, True) == Reject.FILTER_NOTIONAL        # 1.00 x 0.00001
    assert codec.check_filters(f, ok_px, ok_qty, 8, True, ref_price=100000) == Reject.FILTER_PERCENT_PRICE
    fu = codec.parse_filters({"filters": [{"filterType": "MIN_NOTIONAL", "notional": "100"},
                                          {"filterType": "PERCENT_PRICE", "multiplierUp": "1.05",
                                           "multiplierDown": "0.95", "multiplierDecimal": "4"}]}, 2, 3)
    assert fu.min_notional == 10000 and fu.pct_up == 1.05


def test_rate_limiter_throttles_before_the_limit_and_follows_reported_counts_never_below_its_own():
    rl = RateLimiter(safety=0.9)
    rl.load([{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 100},
             {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 10},
             {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000}])
    now = 1_000_000.0   # a 10 s window starts here
    for _ in range(9):
        assert rl.delay(1, True, now) == 0
        rl.spend(1, True, now)
    assert rl.delay(1, True, now + 1) == pytest.approx(9.0)     # 10th order would pass 90 %: wait for the window
    assert rl.delay(1, False, now + 1) == 0                     # a cancel does not count as an order
    assert rl.delay(1, True, now + 10) == 0                     # next window
    rl.from_headers({"X-MBX-USED-WEIGHT-1M": "95", "Content-Type": "x"}, now + 10)
    assert rl.delay(1, False, now + 10) > 0
    ws3 = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 100, "count": 3}]
    rl.from_ws(ws3, now + 10)
    assert rl.delay(1, False, now + 10) > 0     # lower than counted in this window: answers lag our requests
    rl.from_ws(ws3, now + 70)                   # the next minute's count is taken
    assert rl.delay(1, False, now + 70) == 0
    rl.back_off(2.0, now + 70)
    assert rl.delay(1, False, now + 70) == pytest.approx(2.0)
    rl.ban(now + 100)
    assert rl.banned(now + 50) and not rl.banned(now + 101)


def test_options_struct_refuses_unknown_keys_and_bad_values():
    assert load_options({}).market == "spot"
    assert load_options({"market": "usdm", "countdown_cancel_ms": 10000}).countdown_cancel_ms == 10000
    with pytest.raises(ValueError, match="api_secret"):
        load_options({"api_secret": "x"})          # secrets are never options
    with pytest.raises(ValueError):
        load_options({"market": "coinm"})
    with pytest.raises(ValueError):
        load_options({"countdown_cancel_ms": 1000})  # spot has no countdown
    with pytest.raises(ValueError):
        load_options({"recv_window_ms": 70000})


def test_filters_map_onto_instrument_fields_and_core_risk_keys():
    inst, risk = codec.config_from_filters(codec.parse_filters(SPOT_SYMBOL, 2, 8))
    assert inst == {"tick": 1, "lot": 1000}
    assert risk["min_notional"] == 500 and risk["max_order_qty"] == 900000000000
    assert risk["price_band_bps"] == 8000          # 0.2 down / 5 up: the tighter side, 80 %
    fu = codec.parse_filters({"filters": [{"filterType": "PERCENT_PRICE", "multiplierUp": "1.05",
                                           "multiplierDown": "0.95"}]}, 2, 3)
    assert codec.config_from_filters(fu)[1] == {"price_band_bps": 500}


def test_endpoints_come_from_the_presets_unless_given():
    o = load_options({"market": "usdm", "environment": "testnet"})
    assert o.url("rest") == "https://testnet.binancefuture.com"
    assert o.url("ws_api") == "wss://testnet.binancefuture.com/ws-fapi/v1"
    assert o.url("ws_stream") == "wss://fstream.binancefuture.com/ws"
    assert load_options({}).url("ws_api") == "wss://ws-api.binance.com:443/ws-api/v3"
    assert load_options({"rest_url": "http://127.0.0.1:1/"}).url("rest") == "http://127.0.0.1:1"
    with pytest.raises(ValueError):
        load_options({"environment": "staging"})


def test_rate_limit_usage_feeds_the_venue_rate_limit_gauge():
    """The windows loaded from exchangeInfo report (used, limit) per window, a rolled-over window
    reads 0, and the venue's metrics updater turns them into livestack_venue_rate_limit_used_ratio."""
    from livestack.telemetry import procmetrics
    from livestack.venues.binance.ratelimit import RateLimiter

    rl = RateLimiter()
    rl.load([{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
             {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100}])
    now = 1_000_020.0
    for _ in range(25):
        rl.spend(2, True, now)
    use = rl.usage(now)
    assert use["ORDERS_10s"][1] == 100 and use["REQUEST_WEIGHT_60s"] == (50, 6000)
    assert 0 < use["ORDERS_10s"][0] <= 50
    assert rl.usage(now + 3600)["REQUEST_WEIGHT_60s"] == (0, 6000)

    class _Counters:
        def as_dict(self):
            return {}

    class _Adapter:
        def rate_limits(self):
            return rl.usage(now)

    got = {}

    class _Metric:
        def __init__(self, labels):
            self.labels = labels

        def set(self, v):
            got[(self.labels or {}).get("limit")] = v

    class _Block:
        def counter(self, name, doc, labels=None, scale=1.0):
            return _Metric(labels)

        gauge = counter

    procmetrics.venue_updater(_Counters(), _Adapter())(_Block())
    assert got.get("REQUEST_WEIGHT_60s") == int(1e6 * 50 / 6000)


def test_usdm_positions_answer_to_fixed_point_net_positions():
    """``account.position`` / ``positionRisk`` rows (documented shape): the net per symbol of ours
    (hedge mode LONG + SHORT, SHORT negative), 0 for a symbol the answer leaves out, the newest
    updateTime; a malformed answer is an error, never a position of 0."""
    from livestack.node.config import Instrument

    ours = {"BTCUSDT": Instrument(1, "BTCUSDT", "binance", price_decimals=2, qty_decimals=3, tick=10, lot=1),
            "ETHUSDT": Instrument(2, "ETHUSDT", "binance", price_decimals=2, qty_decimals=3, tick=1, lot=1)}
    rows = [{"symbol": "BTCUSDT", "positionSide": "LONG", "positionAmt": "0.010", "updateTime": 1720000000100},
            {"symbol": "BTCUSDT", "positionSide": "SHORT", "positionAmt": "-0.004", "updateTime": 1720000000200},
            {"symbol": "SOLUSDT", "positionSide": "BOTH", "positionAmt": "3", "updateTime": 1}]
    net, newest = codec.positions(rows, ours)
    assert net == {"BTCUSDT": 6, "ETHUSDT": 0}
    assert newest == {"BTCUSDT": 1720000000200, "ETHUSDT": 0}
    for bad in ({"code": -1000}, [{"positionAmt": "1"}], [{"symbol": "BTCUSDT", "positionAmt": "x", "updateTime": 1}],
                [{"symbol": "BTCUSDT", "positionAmt": "0.0001", "updateTime": 1}],   # finer than the lot's decimals
                [{"symbol": "BTCUSDT", "positionAmt": "1", "updateTime": "1"}]):
        with pytest.raises(ValueError):
            codec.positions(bad, ours)
