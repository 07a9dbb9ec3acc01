"""The Binance test exchange's fault injection and protocol edges, over raw sockets.

Faults: dropped and delayed acks (the order exists though no answer came), duplicate, reordered
and dropped user-stream events, a stalled stream, disconnects, listenKey expiry; plus the market
streams (combined and raw), the 418 ban after ignored 429s, and malformed WS API requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import urllib.parse

import aiohttp
import orjson
import pytest

from livestack.testing.binance_exchange import DEFAULT_API_KEY, DEFAULT_API_SECRET, start_exchange

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def ex(datadir):
    h = start_exchange(port=0, spot_capture=str(datadir / "binance" / "spot-btcusdt-20240808.gz"),
                       usdm_capture=str(datadir / "binance" / "usdm-btcusdt-20240808.gz"), speed=1.0,
                       listen_key_ttl_s=1.5)
    yield h
    h.stop()


def _sign(params: dict) -> dict:
    p = dict(params, apiKey=DEFAULT_API_KEY, timestamp=int(time.time() * 1000))
    q = urllib.parse.urlencode(sorted((k, str(v)) for k, v in p.items()))
    p["signature"] = hmac.new(DEFAULT_API_SECRET.encode(), q.encode(), hashlib.sha256).hexdigest()
    return p


class WsApi:
    def __init__(self, ws):
        self.ws = ws
        self.n = 0
        self.answers = {}
        self.events = []
        self.task = asyncio.ensure_future(self._read())

    async def _read(self):
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            d = orjson.loads(msg.data)
            if "subscriptionId" in d and "event" in d:
                self.events.append(d["event"])
            else:
                self.answers[d.get("id")] = d

    async def send(self, method, params=None, signed=True, wait=True, timeout=10.0):
        self.n += 1
        rid = f"r{self.n}"
        p = _sign(params or {}) if signed else (params or {})
        await self.ws.send_str(orjson.dumps({"id": rid, "method": method, "params": p}).decode())
        if not wait:
            return rid
        await _wait(lambda: rid in self.answers, timeout)
        return self.answers[rid]


async def _wait(pred, timeout=10.0):
    t = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > t:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def _limit_params(ex, side="BUY", off=300.0, **kw):
    bid, ask = map(float, ex.best("spot"))
    px = bid - off if side == "BUY" else ask + off
    return {"symbol": "BTCUSDT", "side": side, "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01",
            "price": f"{px:.2f}", **kw}


def test_dropped_ack_order_exists_and_delayed_ack(ex):
    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(ex.ws_api_url) as ws:
            api = WsApi(ws)
            ex.fault("drop_ack", n=1)
            rid = await api.send("order.place", _limit_params(ex, newClientOrderId="lost-ack-1"), wait=False)
            q = None
            for _ in range(200):  # the order exists although its answer never came
                q = await api.send("order.status", {"symbol": "BTCUSDT", "origClientOrderId": "lost-ack-1"})
                if q["status"] == 200:
                    break
            assert q["result"]["status"] == "NEW"
            assert rid not in api.answers
            # the resend of the same clientOrderId is refused: no duplicate order
            dup = await api.send("order.place", _limit_params(ex, newClientOrderId="lost-ack-1"))
            assert dup["status"] == 400 and dup["error"]["code"] == -2010
            ex.fault("ack_delay", seconds=0.3)
            t0 = time.monotonic()
            r = await api.send("order.cancel", {"symbol": "BTCUSDT", "origClientOrderId": "lost-ack-1"})
            assert r["result"]["status"] == "CANCELED" and time.monotonic() - t0 >= 0.3
            ex.fault("ack_delay", seconds=0.0)
            api.task.cancel()

    asyncio.run(go())


def test_user_stream_duplicate_reorder_drop_and_stall(ex):
    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(ex.ws_api_url) as ws:
            api = WsApi(ws)
            sub = await api.send("userDataStream.subscribe.signature", {})
            assert sub["result"] == {"subscriptionId": 0}

            async def place_cancel(cid):
                await api.send("order.place", _limit_params(ex, newClientOrderId=cid))
                await api.send("order.cancel", {"symbol": "BTCUSDT", "origClientOrderId": cid})

            def reports(cid):
                return [e["x"] for e in api.events if e.get("e") == "executionReport" and e["c"] in (cid,)
                        or (e.get("e") == "executionReport" and e.get("C") == cid)]

            ex.fault("dup_event", n=1)
            await place_cancel("f-dup")
            await _wait(lambda: reports("f-dup").count("CANCELED") == 1)
            assert reports("f-dup") == ["NEW", "NEW", "CANCELED"]
            ex.fault("reorder_event", n=1)
            await place_cancel("f-reo")
            await _wait(lambda: len(reports("f-reo")) == 2)
            assert reports("f-reo") == ["CANCELED", "NEW"]
            ex.fault("drop_event", n=1)
            await place_cancel("f-drop")
            await _wait(lambda: "CANCELED" in reports("f-drop"))
            assert reports("f-drop") == ["CANCELED"]
            ex.fault("stall", seconds=0.6)
            t0 = time.monotonic()
            await place_cancel("f-stall")
            await _wait(lambda: len(reports("f-stall")) == 2)
            assert time.monotonic() - t0 >= 0.5  # held while stalled, delivered after, in order
            assert reports("f-stall") == ["NEW", "CANCELED"]
            api.task.cancel()

    asyncio.run(go())


def test_disconnect_and_malformed_requests(ex):
    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(ex.ws_api_url) as ws:
            await ws.send_str("this is not json")
            msg = orjson.loads((await ws.receive(timeout=10)).data)
            assert msg["status"] == 400 and msg["error"]["code"] == -1000
            await ws.send_str(orjson.dumps({"id": 7, "method": "order.place", "params": {"symbol": "BTCUSDT"}}).decode())
            msg = orjson.loads((await ws.receive(timeout=10)).data)
            assert msg["id"] == 7 and msg["error"]["code"] in (-2014, -1102)
            await ws.send_str(orjson.dumps({"id": 8, "method": "no.such", "params": {}}).decode())
            msg = orjson.loads((await ws.receive(timeout=10)).data)
            assert msg["id"] == 8 and msg["status"] == 400
            ex.fault("disconnect")
            msg = await ws.receive(timeout=10)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)

    asyncio.run(go())


def test_market_streams_combined_and_raw(ex):
    async def go():
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(ex.ws_url + "/stream?streams=btcusdt@trade/btcusdt@depth@100ms") as ws:
                seen = set()
                t = time.monotonic() + 20
                while len(seen) < 2 and time.monotonic() < t:
                    msg = await ws.receive(timeout=20)
                    seen.add(orjson.loads(msg.data)["stream"])
                assert seen == {"btcusdt@trade", "btcusdt@depth@100ms"}
            async with s.ws_connect(ex.fstream_url + "/ws") as ws:
                await ws.send_str(orjson.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@depth@0ms"], "id": 1}).decode())
                ans = orjson.loads((await ws.receive(timeout=10)).data)
                assert ans == {"result": None, "id": 1}
                d = orjson.loads((await ws.receive(timeout=20)).data)
                assert d["e"] == "depthUpdate" and "pu" in d  # raw: the event itself, USD-M diffs
            async with s.get(ex.url + "/fapi/v1/depth?symbol=BTCUSDT&limit=5") as r:
                body = await r.json()
                assert len(body["bids"]) == 5 and body["lastUpdateId"] > 0
                assert int(r.headers["X-MBX-USED-WEIGHT-1M"]) >= 2

    asyncio.run(go())


def test_listen_key_expiry_and_raw_user_stream(ex):
    async def go():
        async with aiohttp.ClientSession() as s:
            h = {"X-MBX-APIKEY": DEFAULT_API_KEY}
            async with s.post(ex.url + "/fapi/v1/listenKey", headers=h) as r:
                lk = (await r.json())["listenKey"]
            async with s.ws_connect(f"{ex.fstream_url}/ws/{lk}") as ws:
                msg = await ws.receive(timeout=10)  # no keep-alive: expires after 1.5 s
                ev = orjson.loads(msg.data)
                assert ev["e"] == "listenKeyExpired" and ev["listenKey"] == lk
            async with s.put(ex.url + "/fapi/v1/listenKey", headers=h) as r:
                assert r.status == 400 and (await r.json())["code"] == -1125
            async with s.post(ex.url + "/api/v3/userDataStream", headers=h) as r:
                assert r.status == 410  # spot listenKey endpoints are retired

    asyncio.run(go())


def test_ignored_429s_lead_to_418_ban(ex):
    async def go():
        ex.set_limits("usdm", "REQUEST_WEIGHT:1M=3")
        try:
            async with aiohttp.ClientSession() as s:
                codes = []
                for _ in range(12):
                    async with s.get(ex.url + "/fapi/v1/time") as r:
                        codes.append(r.status)
                        if r.status in (418, 429):
                            assert int(r.headers["Retry-After"]) >= 1
                            assert (await r.json())["code"] == -1003
                assert codes[:3] == [200, 200, 200] and codes[3] == 429 and codes[-1] == 418
        finally:
            ex.set_limits("usdm", "REQUEST_WEIGHT:1M=2400")

    asyncio.run(go())


def test_garbage_frames_rest_drop_ack_and_rest_fail(ex):
    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(ex.ws_api_url) as ws:
            ex.fault("garbage", n=3)
            frames = [(await ws.receive(timeout=10)).data for _ in range(3)]
            assert frames[0] == "this is not json" and all(isinstance(f, str) for f in frames)
            # the connection still works after the garbage
            api = WsApi(ws)
            assert (await api.send("time", signed=False))["status"] == 200
            api.task.cancel()
            # REST: a dropped ack closes the connection, the order exists
            ex.fault("drop_ack", n=1)
            bid, _ = map(float, ex.best("spot"))
            q = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01",
                 "price": f"{bid - 400:.2f}", "newClientOrderId": "rest-lost-ack", "timestamp": int(time.time() * 1000)}
            qs = urllib.parse.urlencode(q)
            qs += "&signature=" + hmac.new(DEFAULT_API_SECRET.encode(), qs.encode(), hashlib.sha256).hexdigest()
            h = {"X-MBX-APIKEY": DEFAULT_API_KEY}
            with pytest.raises(aiohttp.ClientError):
                async with s.post(ex.url + "/api/v3/order?" + qs, headers=h) as r:
                    await r.read()
            assert any(o["clientOrderId"] == "rest-lost-ack" and o["status"] == "NEW" for o in ex.orders("spot"))
            ex.fault("rest_fail", n=1)
            async with s.get(ex.url + "/api/v3/time") as r:
                assert r.status == 503
            async with s.get(ex.url + "/api/v3/time") as r:
                assert r.status == 200

    asyncio.run(go())


def test_market_stream_stall_holds_then_delivers_in_order(ex):
    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(ex.ws_url + "/ws/btcusdt@depth@100ms") as ws:
            first = orjson.loads((await ws.receive(timeout=20)).data)
            ex.fault("stall", seconds=1.0)
            t0 = time.monotonic()
            gap = 0.0
            last_u = first["u"]
            while time.monotonic() - t0 < 3.0:
                t = time.monotonic()
                d = orjson.loads((await ws.receive(timeout=20)).data)
                gap = max(gap, time.monotonic() - t)
                assert d["U"] == last_u + 1  # no diff lost across the stall
                last_u = d["u"]
            assert gap >= 0.8

    asyncio.run(go())


def test_usdm_ws_api_ed25519_session_logon_and_listen_key(ex):
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    priv = Ed25519PrivateKey.generate()
    ex.server.keys.add_ed25519("usdm-ed-key", priv.public_key())  # a dict insert: safe across threads

    def ed_signed(params):
        p = dict(params, apiKey="usdm-ed-key", timestamp=int(time.time() * 1000))
        q = urllib.parse.urlencode(sorted((k, str(v)) for k, v in p.items()))
        p["signature"] = base64.b64encode(priv.sign(q.encode())).decode()
        return p

    async def go():
        async with aiohttp.ClientSession() as s, s.ws_connect(ex.fws_api_url) as ws:
            api = WsApi(ws)
            hm = await api.send("session.logon", {})  # an HMAC key cannot log on
            assert hm["status"] == 400 and hm["error"]["code"] == -4056
            await ws.send_str(orjson.dumps({"id": "lo", "method": "session.logon", "params": ed_signed({})}).decode())
            await _wait(lambda: "lo" in api.answers)
            assert api.answers["lo"]["result"]["apiKey"] == "usdm-ed-key"
            # logged on: signed requests carry only a timestamp
            r = await api.send("v2/account.status", {"timestamp": int(time.time() * 1000)}, signed=False)
            assert r["status"] == 200 and "availableBalance" in r["result"]
            r = await api.send("v2/account.status", {}, signed=False)
            assert r["error"]["code"] == -1102  # still needs the timestamp
            lk = (await api.send("userDataStream.start", {"apiKey": "usdm-ed-key"}, signed=False))["result"]["listenKey"]
            assert (await api.send("userDataStream.ping", {"apiKey": "usdm-ed-key"}, signed=False))["status"] == 200
            async with s.ws_connect(f"{ex.fstream_url}/stream?streams={lk}") as us:
                bid, _ = map(float, ex.best("usdm"))
                r = await api.send("order.place", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                                   "timeInForce": "GTC", "quantity": "0.01",
                                                   "price": f"{bid - 200:.1f}", "timestamp": int(time.time() * 1000)},
                                   signed=False)
                assert r["result"]["status"] == "NEW"
                msg = orjson.loads((await us.receive(timeout=10)).data)
                assert msg["stream"] == lk and msg["data"]["e"] == "ORDER_TRADE_UPDATE"
                assert msg["data"]["o"]["i"] == r["result"]["orderId"]
            api.task.cancel()

    asyncio.run(go())
