"""Fidelity: Binance's official Python clients, unmodified, against the local test exchange.

binance-sdk-spot (REST, WebSocket API, user data stream), binance-sdk-derivatives-trading-usds-
futures (REST, WebSocket API, listenKey user stream) and the legacy binance-connector: place,
cancel, query, modify, user-stream flows, HMAC and Ed25519 keys, and Binance's errors as the
clients map them. Anything an official client cannot do against the exchange is a fidelity bug.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

pytest.importorskip("binance_sdk_spot")
pytest.importorskip("binance_sdk_derivatives_trading_usds_futures")

from binance_common.configuration import (ConfigurationRestAPI, ConfigurationWebSocketAPI,  # noqa: E402
                                          ConfigurationWebSocketStreams)
from binance_common.errors import BadRequestError, TooManyRequestsError, UnauthorizedError  # noqa: E402
from binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures import \
    DerivativesTradingUsdsFutures  # noqa: E402
from binance_sdk_spot.spot import Spot  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from livestack.testing.binance_exchange import (DEFAULT_API_KEY, DEFAULT_API_SECRET,  # noqa: E402
                                                DEFAULT_ED25519_API_KEY, start_exchange)

pytestmark = pytest.mark.realdata

HMAC = dict(api_key=DEFAULT_API_KEY, api_secret=DEFAULT_API_SECRET)


@pytest.fixture(scope="module")
def keypair():
    priv = Ed25519PrivateKey.generate()
    pem = priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    pub = priv.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, pub


@pytest.fixture(scope="module")
def ex(datadir, keypair):
    h = start_exchange(port=0, spot_capture=str(datadir / "binance" / "spot-btcusdt-20240808.gz"),
                       usdm_capture=str(datadir / "binance" / "usdm-btcusdt-20240808.gz"), speed=1.0,
                       ed25519_pub=keypair[1])
    yield h
    h.stop()


async def _wait(pred, timeout=10.0):
    t = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > t:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def _px(x: float, tick: float) -> float:
    return round(round(x / tick) * tick, 2)


# -- spot ----------------------------------------------------------------------------------------

def test_spot_rest_hmac_place_query_cancel_fill(ex):
    from binance_sdk_spot.rest_api.models import NewOrderSideEnum as S, NewOrderTimeInForceEnum as TIF, \
        NewOrderTypeEnum as T

    c = Spot(config_rest_api=ConfigurationRestAPI(base_path=ex.url, retries=0, **HMAC)).rest_api
    assert abs(c.time().data().server_time - time.time() * 1000) < 5000
    info = c.exchange_info(symbol="BTCUSDT").data()
    assert info.symbols[0].symbol == "BTCUSDT"
    bid, ask = map(float, ex.best("spot"))
    r = c.new_order(symbol="BTCUSDT", side=S.BUY, type=T.LIMIT, time_in_force=TIF.GTC, quantity=0.01,
                    price=_px(bid - 200, 0.01), new_client_order_id="sdk-spot-1")
    o = r.data()
    assert o.status == "NEW" and o.client_order_id == "sdk-spot-1"
    kinds = {(x.rateLimitType, x.interval, x.intervalNum) for x in r.rate_limits}
    assert ("REQUEST_WEIGHT", "MINUTE", 1) in kinds and ("ORDERS", "SECOND", 10) in kinds
    assert c.get_order(symbol="BTCUSDT", orig_client_order_id="sdk-spot-1").data().order_id == o.order_id
    assert [x.order_id for x in c.get_open_orders(symbol="BTCUSDT").data()] == [o.order_id]
    with pytest.raises(BadRequestError) as e:  # duplicate clientOrderId among open orders
        c.new_order(symbol="BTCUSDT", side=S.BUY, type=T.LIMIT, time_in_force=TIF.GTC, quantity=0.01,
                    price=_px(bid - 200, 0.01), new_client_order_id="sdk-spot-1")
    assert e.value.status_code == -2010
    assert c.delete_order(symbol="BTCUSDT", order_id=o.order_id).data().status == "CANCELED"
    with pytest.raises(BadRequestError) as e:
        c.delete_order(symbol="BTCUSDT", order_id=o.order_id)
    assert e.value.status_code == -2011
    m = c.new_order(symbol="BTCUSDT", side=S.BUY, type=T.MARKET, quantity=0.002).data()
    assert m.status == "FILLED" and m.fills and m.fills[0].commission_asset == "BTC"
    trades = c.my_trades(symbol="BTCUSDT", order_id=m.order_id).data()
    assert [t.id for t in trades] == [f.trade_id for f in m.fills]
    assert {t["id"] for t in ex.trades("spot")} >= {t.id for t in trades}
    # filters: off tick, below min notional
    with pytest.raises(BadRequestError) as e:
        c.new_order(symbol="BTCUSDT", side=S.BUY, type=T.LIMIT, time_in_force=TIF.GTC, quantity=0.01,
                    price=bid - 200.005)
    assert e.value.status_code in (-1013, -1111)
    with pytest.raises(BadRequestError) as e:
        c.new_order(symbol="BTCUSDT", side=S.BUY, type=T.LIMIT, time_in_force=TIF.GTC, quantity=0.0001,
                    price=40000.0)
    assert e.value.status_code == -1013 and "NOTIONAL" in str(e.value)
    with pytest.raises(BadRequestError) as e:  # the client sends str(1e-05) = "1e-05": Binance's regex refuses it
        c.new_order(symbol="BTCUSDT", side=S.BUY, type=T.LIMIT, time_in_force=TIF.GTC, quantity=0.00001,
                    price=_px(bid - 200, 0.01))
    assert e.value.status_code == -1100
    # LIMIT_MAKER that would take
    with pytest.raises(BadRequestError) as e:
        c.new_order(symbol="BTCUSDT", side=S.BUY, type=T.LIMIT_MAKER, quantity=0.01, price=_px(ask + 50, 0.01))
    assert e.value.status_code == -2010


def test_spot_cancel_replace_and_errors(ex):
    from binance_sdk_spot.rest_api.models import NewOrderSideEnum as S, NewOrderTimeInForceEnum as TIF, \
        NewOrderTypeEnum as T, OrderCancelReplaceCancelReplaceModeEnum as M, OrderCancelReplaceSideEnum as RS, \
        OrderCancelReplaceTimeInForceEnum as RTIF, OrderCancelReplaceTypeEnum as RT

    c = Spot(config_rest_api=ConfigurationRestAPI(base_path=ex.url, retries=0, **HMAC)).rest_api
    bid, _ = map(float, ex.best("spot"))
    o = c.new_order(symbol="BTCUSDT", side=S.BUY, type=T.LIMIT, time_in_force=TIF.GTC, quantity=0.01,
                    price=_px(bid - 300, 0.01)).data()
    r = c.order_cancel_replace(symbol="BTCUSDT", side=RS.BUY, type=RT.LIMIT, cancel_replace_mode=M.STOP_ON_FAILURE,
                               time_in_force=RTIF.GTC, quantity=0.02, price=_px(bid - 310, 0.01),
                               cancel_order_id=o.order_id).data()
    assert r.cancel_result == "SUCCESS" and r.new_order_result == "SUCCESS"
    assert r.cancel_response.status == "CANCELED" and r.new_order_response.orig_qty == "0.02000000"
    c.delete_open_orders(symbol="BTCUSDT")
    assert c.get_open_orders(symbol="BTCUSDT").data() == []
    bad = Spot(config_rest_api=ConfigurationRestAPI(base_path=ex.url, retries=0, api_key=DEFAULT_API_KEY,
                                                    api_secret="wrong")).rest_api
    with pytest.raises(BadRequestError) as e:
        bad.get_account()
    assert e.value.status_code == -1022
    nokey = Spot(config_rest_api=ConfigurationRestAPI(base_path=ex.url, retries=0, api_key="nobody",
                                                      api_secret="x")).rest_api
    with pytest.raises(UnauthorizedError):
        nokey.get_account()
    ex.fault("time_offset", n=-10_000)  # the server's clock 10 s behind: the client is "ahead"
    try:
        with pytest.raises(BadRequestError) as e:
            c.get_account()
        assert e.value.status_code == -1021
    finally:
        ex.fault("time_offset", n=0)


def test_spot_rest_ed25519_and_rate_limit_429(ex, keypair):
    c = Spot(config_rest_api=ConfigurationRestAPI(base_path=ex.url, retries=0, api_key=DEFAULT_ED25519_API_KEY,
                                                  private_key=keypair[0])).rest_api
    assert any(b.asset == "USDT" for b in c.get_account().data().balances)
    ex.set_limits("spot", "REQUEST_WEIGHT:1M=45")
    try:
        c.get_account()  # 20
        c.get_account()  # 40
        with pytest.raises(TooManyRequestsError) as e:
            c.get_account()
        assert e.value.status_code == -1003 and e.value.retry_after and e.value.retry_after >= 1
    finally:
        ex.set_limits("spot", "REQUEST_WEIGHT:1M=6000")


def test_spot_ws_api_ed25519_session_and_user_stream(ex, keypair):
    from binance_sdk_spot.websocket_api.models import OrderPlaceSideEnum as S, OrderPlaceTimeInForceEnum as TIF, \
        OrderPlaceTypeEnum as T

    async def go():
        cfg = ConfigurationWebSocketAPI(api_key=DEFAULT_ED25519_API_KEY, private_key=keypair[0],
                                        stream_url=ex.ws_api_url)
        api = Spot(config_ws_api=cfg).websocket_api
        conn = await api.create_connection()
        try:
            logon = (await conn.session_logon()).data().result
            assert logon.api_key == DEFAULT_ED25519_API_KEY
            events = []
            sub = await conn.user_data_stream_subscribe()
            sub.stream.on("message", lambda e: events.append(e.actual_instance))
            bid, ask = map(float, ex.best("spot"))
            r = await conn.order_place(symbol="BTCUSDT", side=S.SELL, type=T.LIMIT, time_in_force=TIF.GTC,
                                       quantity=0.01, price=_px(ask + 150, 0.01))
            o = r.data().result
            assert o.status == "NEW" and r.rate_limits
            assert (await conn.order_status(symbol="BTCUSDT", order_id=o.order_id)).data().result.status == "NEW"
            assert len((await conn.open_orders_status(symbol="BTCUSDT")).data().result) == 1
            assert (await conn.order_cancel(symbol="BTCUSDT", order_id=o.order_id)).data().result.status == "CANCELED"
            m = (await conn.order_place(symbol="BTCUSDT", side=S.SELL, type=T.MARKET, quantity=0.003)).data().result
            assert m.status == "FILLED"
            await _wait(lambda: sum(1 for e in events if getattr(e, "x", None) == "TRADE") >= len(m.fills))
            reports = [e for e in events if type(e).__name__ == "ExecutionReport"]
            assert [(e.i, e.x) for e in reports][:2] == [(o.order_id, "NEW"), (o.order_id, "CANCELED")]
            # a cancel's report carries the cancel's own id in "c" and the order's in "C"
            assert reports[1].C == o.client_order_id and reports[1].c not in ("", o.client_order_id)
            fills = [e for e in reports if e.x == "TRADE"]
            assert [e.t for e in fills] == [f.trade_id for f in m.fills]
            assert all(e.N == "USDT" and float(e.n) > 0 for e in fills)
            assert any(type(e).__name__ == "OutboundAccountPosition" for e in events)
            acct = (await conn.account_status()).data().result
            assert any(b.asset == "BTC" for b in acct.balances)
            from binance_sdk_spot.websocket_api.models import OrderCancelReplaceCancelReplaceModeEnum as M, \
                OrderCancelReplaceSideEnum as RS, OrderCancelReplaceTimeInForceEnum as RTIF, \
                OrderCancelReplaceTypeEnum as RT
            o2 = (await conn.order_place(symbol="BTCUSDT", side=S.SELL, type=T.LIMIT, time_in_force=TIF.GTC,
                                         quantity=0.01, price=_px(ask + 160, 0.01))).data().result
            cr = (await conn.order_cancel_replace(symbol="BTCUSDT", cancel_replace_mode=M.STOP_ON_FAILURE,
                                                  side=RS.SELL, type=RT.LIMIT, time_in_force=RTIF.GTC,
                                                  cancel_order_id=o2.order_id, quantity=0.02,
                                                  price=_px(ask + 170, 0.01))).data().result
            assert cr.cancel_result == "SUCCESS" and cr.new_order_result == "SUCCESS"
            bad = await conn.order_cancel_replace(symbol="BTCUSDT", cancel_replace_mode=M.STOP_ON_FAILURE,
                                                  side=RS.SELL, type=RT.LIMIT, time_in_force=RTIF.GTC,
                                                  cancel_order_id=o2.order_id, quantity=0.02,
                                                  price=_px(ask + 170, 0.01))
            assert "-2022" in str(bad.data())  # the cancel failed: nothing placed
            await conn.open_orders_cancel_all(symbol="BTCUSDT")
        finally:
            await api.close_connection()

    asyncio.run(go())


def test_spot_ws_api_hmac_signature_subscription(ex):
    from binance_sdk_spot.websocket_api.models import OrderPlaceSideEnum as S, OrderPlaceTypeEnum as T

    async def go():
        api = Spot(config_ws_api=ConfigurationWebSocketAPI(stream_url=ex.ws_api_url, return_rate_limits=False,
                                                           **HMAC)).websocket_api
        conn = await api.create_connection()
        try:
            events = []
            sub = await conn.user_data_stream_subscribe_signature()
            sub.stream.on("message", lambda e: events.append(e.actual_instance))
            r = await conn.order_place(symbol="BTCUSDT", side=S.BUY, type=T.MARKET, quantity=0.002)
            m = r.data().result  # signed with returnRateLimits=false among the params
            assert m.status == "FILLED" and r.rate_limits == []
            await _wait(lambda: any(getattr(e, "x", None) == "TRADE" and e.i == m.order_id for e in events))
        finally:
            await api.close_connection()

    asyncio.run(go())


def test_legacy_binance_connector_spot(ex):
    spot = pytest.importorskip("binance.spot")
    c = spot.Spot(api_key=DEFAULT_API_KEY, api_secret=DEFAULT_API_SECRET, base_url=ex.url)
    bid, _ = map(float, ex.best("spot"))
    o = c.new_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity=0.01,
                    price=f"{bid - 250:.2f}")
    assert c.get_order("BTCUSDT", orderId=o["orderId"])["status"] == "NEW"
    assert c.cancel_order("BTCUSDT", orderId=o["orderId"])["status"] == "CANCELED"
    assert "balances" in c.account()


# -- USD-M ---------------------------------------------------------------------------------------

def test_usdm_rest_and_listen_key_user_stream(ex):
    from binance_sdk_derivatives_trading_usds_futures.rest_api.models import ModifyOrderSideEnum as MS, \
        NewOrderNewOrderRespTypeEnum, NewOrderSideEnum as S, NewOrderTimeInForceEnum as TIF, NewOrderTypeEnum as T

    c = DerivativesTradingUsdsFutures(config_rest_api=ConfigurationRestAPI(base_path=ex.url, retries=0,
                                                                           **HMAC)).rest_api

    async def go():
        lk = c.start_user_data_stream().data().listen_key
        assert c.keepalive_user_data_stream().data().listen_key == lk
        sapi = DerivativesTradingUsdsFutures(
            config_ws_streams=ConfigurationWebSocketStreams(stream_url=ex.fstream_url)).websocket_streams
        conn = await sapi.create_connection()
        try:
            events = []
            h = await conn.user_data(lk)
            h.on("message", lambda e: events.append(e.actual_instance))
            await asyncio.sleep(0.2)  # the SUBSCRIBE is sent after a short delay by the client
            bid, ask = map(float, ex.best("usdm"))
            o = c.new_order(symbol="BTCUSDT", side=S.BUY, type=T.LIMIT, time_in_force=TIF.GTC, quantity=0.01,
                            price=_px(bid - 100, 0.1), new_client_order_id="sdk-usdm-1").data()
            assert o.status == "NEW"
            mo = c.modify_order(symbol="BTCUSDT", side=MS.BUY, quantity=0.02, price=_px(bid - 90, 0.1),
                                order_id=o.order_id).data()
            assert mo.orig_qty == "0.020" and mo.client_order_id == "sdk-usdm-1"
            with pytest.raises(BadRequestError) as e:  # -4116: duplicate clientOrderId
                c.new_order(symbol="BTCUSDT", side=S.BUY, type=T.LIMIT, time_in_force=TIF.GTC, quantity=0.01,
                            price=_px(bid - 100, 0.1), new_client_order_id="sdk-usdm-1")
            assert e.value.status_code == -4116
            assert c.query_order(symbol="BTCUSDT", orig_client_order_id="sdk-usdm-1").data().status == "NEW"
            assert c.cancel_order(symbol="BTCUSDT", order_id=o.order_id).data().status == "CANCELED"
            with pytest.raises(BadRequestError) as e:  # GTX that would take: -5022
                c.new_order(symbol="BTCUSDT", side=S.BUY, type=T.LIMIT, time_in_force=TIF.GTX, quantity=0.01,
                            price=_px(ask + 20, 0.1))
            assert e.value.status_code == -5022
            with pytest.raises(BadRequestError) as e:  # FOK that cannot fill: -5021
                c.new_order(symbol="BTCUSDT", side=S.BUY, type=T.LIMIT, time_in_force=TIF.FOK, quantity=500,
                            price=_px(ask, 0.1))
            assert e.value.status_code == -5021
            ioc = c.new_order(symbol="BTCUSDT", side=S.BUY, type=T.LIMIT, time_in_force=TIF.IOC, quantity=0.01,
                              price=_px(bid - 100, 0.1), new_order_resp_type=NewOrderNewOrderRespTypeEnum.RESULT).data()
            assert ioc.status == "EXPIRED" and ioc.executed_qty == "0.000"
            with pytest.raises(BadRequestError) as e:  # reduceOnly with no position to reduce
                c.new_order(symbol="BTCUSDT", side=S.SELL, type=T.MARKET, quantity=0.01, reduce_only="true")
            assert e.value.status_code == -2022
            with pytest.raises(BadRequestError) as e:  # conditional orders moved to the algo API
                c.new_order(symbol="BTCUSDT", side=S.SELL, type=T.STOP_MARKET, quantity=0.01)
            assert e.value.status_code == -4120
            ack = c.new_order(symbol="BTCUSDT", side=S.BUY, type=T.MARKET, quantity=0.005).data()
            assert ack.status == "NEW" and ack.executed_qty == "0.000"  # USD-M's default ACK answer
            m = c.new_order(symbol="BTCUSDT", side=S.BUY, type=T.MARKET, quantity=0.005,
                            new_order_resp_type=NewOrderNewOrderRespTypeEnum.RESULT).data()
            assert m.status == "FILLED"
            await _wait(lambda: any(type(e).__name__ == "AccountUpdate" for e in events))
            upd = [e for e in events if type(e).__name__ == "OrderTradeUpdate"]
            assert [(u.o.i, u.o.x) for u in upd][:3] == [(o.order_id, "NEW"), (o.order_id, "AMENDMENT"),
                                                         (o.order_id, "CANCELED")]
            trades = c.account_trade_list(symbol="BTCUSDT", order_id=m.order_id).data()
            fills = [u.o for u in upd if u.o.x == "TRADE" and u.o.i == m.order_id]
            assert [f.t for f in fills] == [t.id for t in trades] and all(f.N == "USDT" for f in fills)
            pos = c.position_information_v3(symbol="BTCUSDT").data()
            assert float(pos[0].position_amt) == pytest.approx(0.01)
            # reduce-only close
            r = c.new_order(symbol="BTCUSDT", side=S.SELL, type=T.MARKET, quantity=0.01, reduce_only="true",
                            new_order_resp_type=NewOrderNewOrderRespTypeEnum.RESULT).data()
            assert r.status == "FILLED" and r.reduce_only
            # the dead-man switch cancels open orders when it runs out
            c.new_order(symbol="BTCUSDT", side=S.BUY, type=T.LIMIT, time_in_force=TIF.GTC, quantity=0.01,
                        price=_px(bid - 150, 0.1))
            c.auto_cancel_all_open_orders(symbol="BTCUSDT", countdown_time=300)
            t_end = time.monotonic() + 10
            while c.current_all_open_orders(symbol="BTCUSDT").data():
                assert time.monotonic() < t_end, "countdownCancelAll did not fire"
                await asyncio.sleep(0.05)
            c.close_user_data_stream()
        finally:
            await sapi.close_connection()

    asyncio.run(go())


def test_usdm_ws_api(ex):
    from binance_sdk_derivatives_trading_usds_futures.websocket_api.models import ModifyOrderSideEnum as MS, \
        NewOrderSideEnum as S, NewOrderTimeInForceEnum as TIF, NewOrderTypeEnum as T

    async def go():
        api = DerivativesTradingUsdsFutures(config_ws_api=ConfigurationWebSocketAPI(
            stream_url=ex.fws_api_url, **HMAC)).websocket_api
        conn = await api.create_connection()
        try:
            bid, _ = map(float, ex.best("usdm"))
            r = await conn.new_order(symbol="BTCUSDT", side=S.BUY, type=T.LIMIT, time_in_force=TIF.GTC,
                                     quantity=0.01, price=_px(bid - 120, 0.1))
            o = r.data().result
            assert o.status == "NEW"
            assert {x.rateLimitType for x in r.rate_limits} == {"REQUEST_WEIGHT", "ORDERS"}
            m = (await conn.modify_order(symbol="BTCUSDT", side=MS.BUY, quantity=0.03, price=_px(bid - 110, 0.1),
                                         order_id=o.order_id)).data().result
            assert m.orig_qty == "0.030"
            assert (await conn.query_order(symbol="BTCUSDT", order_id=o.order_id)).data().result.status == "NEW"
            assert (await conn.cancel_order(symbol="BTCUSDT", order_id=o.order_id)).data().result.status == "CANCELED"
            pos = (await conn.position_information_v2(symbol="BTCUSDT")).data().result
            assert pos[0].symbol == "BTCUSDT"
            bad = await conn.query_order(symbol="BTCUSDT", order_id=1)
            assert "-2013" in str(bad.data())
        finally:
            await api.close_connection()

    logging.getLogger().setLevel(logging.WARNING)
    asyncio.run(go())
