"""Matching through the Binance test exchange (replay stopped, moved by ``advance``): partial fills
across levels, IOC and FOK remainders, resting orders filled by the replayed market as maker, and
the user stream's fills equal to the exchange's trade list (ids, prices, quantities, fees)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import aiohttp
import orjson
import pytest

from livestack.testing.binance_exchange import start_exchange

from .test_binance_exchange_faults import WsApi, _wait

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def ex(datadir):
    h = start_exchange(port=0, spot_capture=str(datadir / "binance" / "spot-btcusdt-20240808.gz"),
                       usdm_capture=str(datadir / "binance" / "usdm-btcusdt-20240808.gz"), speed=0.0)
    yield h
    h.stop()


async def _depth(s, ex, path):
    async with s.get(ex.url + path + "?symbol=BTCUSDT&limit=5") as r:
        return await r.json()


def test_spot_sweep_ioc_fok_and_maker_fill(ex):
    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(ex.ws_api_url) as ws:
            api = WsApi(ws)
            assert (await api.send("userDataStream.subscribe.signature", {}))["status"] == 200
            book = await _depth(s, ex, "/api/v3/depth")
            a0, q0 = book["asks"][0][0], Decimal(book["asks"][0][1])
            qty = (q0 + Decimal("0.01")).quantize(Decimal("0.00001"))
            # a market buy larger than the best ask level: several fills, the first at the best ask
            r = await api.send("order.place", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET",
                                               "quantity": str(qty), "newOrderRespType": "FULL"})
            o = r["result"]
            assert o["status"] == "FILLED" and len(o["fills"]) >= 2 and o["fills"][0]["price"] == a0
            assert sum(Decimal(f["qty"]) for f in o["fills"]) == qty
            await _wait(lambda: sum(1 for e in api.events if e.get("x") == "TRADE" and e["i"] == o["orderId"])
                        == len(o["fills"]))
            fills = [e for e in api.events if e.get("x") == "TRADE" and e["i"] == o["orderId"]]
            assert [e["X"] for e in fills] == ["PARTIALLY_FILLED"] * (len(fills) - 1) + ["FILLED"]
            assert [(e["t"], e["L"], e["l"], e["n"], e["N"]) for e in fills] == \
                [(f["tradeId"], f["price"], f["qty"], f["commission"], f["commissionAsset"]) for f in o["fills"]]
            rows = [t for t in ex.trades("spot") if t["orderId"] == o["orderId"]]
            assert [(t["id"], t["price"], t["qty"], t["isMaker"]) for t in rows] == \
                [(f["tradeId"], f["price"], f["qty"], False) for f in o["fills"]]
            # IOC above the touch for more than is shown: partial fill, remainder EXPIRED
            book = await _depth(s, ex, "/api/v3/depth")
            bid0, bq0 = book["bids"][0][0], Decimal(book["bids"][0][1])
            r = await api.send("order.place", {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT",
                                               "timeInForce": "IOC", "price": bid0,
                                               "quantity": str((bq0 + 1).quantize(Decimal("0.00001")))})
            assert r["result"]["status"] == "EXPIRED" and Decimal(r["result"]["executedQty"]) > 0
            # FOK that cannot fill: EXPIRED, nothing executed
            r = await api.send("order.place", {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT",
                                               "timeInForce": "FOK", "price": bid0, "quantity": "1"})
            assert r["result"]["status"] == "EXPIRED" and Decimal(r["result"]["executedQty"]) == 0
            # a resting buy at the best bid is filled by the replayed market, as maker
            book = await _depth(s, ex, "/api/v3/depth")
            r = await api.send("order.place", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                               "timeInForce": "GTC", "price": book["bids"][0][0],
                                               "quantity": "0.001"})
            oid = r["result"]["orderId"]
            assert r["result"]["status"] == "NEW"
            for _ in range(120):
                st = await api.send("order.status", {"symbol": "BTCUSDT", "orderId": oid})
                if st["result"]["status"] == "FILLED":
                    break
                ex.advance(2.0)
            assert st["result"]["status"] == "FILLED", "the replay never reached the order"
            await _wait(lambda: any(e.get("x") == "TRADE" and e["i"] == oid for e in api.events))
            ev = [e for e in api.events if e.get("x") == "TRADE" and e["i"] == oid]
            assert all(e["m"] for e in ev)
            rows = [t for t in ex.trades("spot") if t["orderId"] == oid]
            assert [t["id"] for t in rows] == [e["t"] for e in ev] and all(t["isMaker"] for t in rows)
            api.task.cancel()

    asyncio.run(go())


def test_usdm_partial_fills_positions_and_trade_list(ex):
    async def go():
        async with aiohttp.ClientSession() as s:
            h = {"X-MBX-APIKEY": "livestack-test-key"}
            async with s.post(ex.url + "/fapi/v1/listenKey", headers=h) as r:
                lk = (await r.json())["listenKey"]
            events = []
            async with s.ws_connect(f"{ex.fstream_url}/ws/{lk}") as us, s.ws_connect(ex.fws_api_url) as ws:
                async def read():
                    async for m in us:
                        events.append(orjson.loads(m.data))
                reader = asyncio.ensure_future(read())
                api = WsApi(ws)
                book = await _depth(s, ex, "/fapi/v1/depth")
                qty = (Decimal(book["bids"][0][1]) + Decimal("0.005")).quantize(Decimal("0.001"))
                r = await api.send("order.place", {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET",
                                                   "quantity": str(qty), "newOrderRespType": "RESULT"})
                o = r["result"]
                assert o["status"] == "FILLED" and o["executedQty"] == str(qty)
                await _wait(lambda: any(e.get("e") == "ORDER_TRADE_UPDATE" and e["o"]["X"] == "FILLED"
                                        for e in events))
                ups = [e["o"] for e in events if e.get("e") == "ORDER_TRADE_UPDATE" and e["o"]["i"] == o["orderId"]]
                fills = [u for u in ups if u["x"] == "TRADE"]
                assert len(fills) >= 2 and [u["X"] for u in fills][-1] == "FILLED"
                assert all(u["X"] == "PARTIALLY_FILLED" for u in fills[:-1])
                rows = [t for t in ex.trades("usdm") if t["orderId"] == o["orderId"]]
                assert [(t["id"], t["price"], t["qty"], t["commission"]) for t in rows] == \
                    [(u["t"], u["L"], u["l"], u["n"]) for u in fills]
                assert sum(Decimal(u["l"]) for u in fills) == qty
                pos = (await api.send("account.position", {"symbol": "BTCUSDT"}))["result"]
                assert Decimal(pos[0]["positionAmt"]) == -qty
                t0 = time.monotonic()
                while not any(e.get("e") == "ACCOUNT_UPDATE" for e in events):
                    assert time.monotonic() - t0 < 10
                    await asyncio.sleep(0.02)
                api.task.cancel()
                reader.cancel()

    asyncio.run(go())
