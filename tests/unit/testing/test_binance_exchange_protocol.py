"""Binance request rules of the test exchange, without a server: signatures (HMAC, Ed25519, REST
totalParams and WS API sorted params), timestamp / recvWindow, fixed-window rate limits with
429 + Retry-After then a 418 ban, fault specs; and the endpoint presets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse

import pytest

from livestack.testing.binance_exchange.protocol import (SPOT_LIMITS, BinanceError, KeyRing, RateLimiter,
                                                         check_rest_signature, check_timestamp, check_ws_signature,
                                                         parse_limits)
from livestack.testing.binance_exchange.server import Faults
from livestack.venues.binance_presets import PRESETS, local, preset


def _hmac(secret, payload):
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def test_rest_signature_total_params_query_plus_body():
    ring = KeyRing()
    ring.add_hmac("k", "s")
    key = ring.get("k")
    q, b = "symbol=BTCUSDT&side=BUY", "quantity=1&timestamp=5"
    check_rest_signature(key, q, b + "&signature=" + _hmac("s", q + b))  # Binance's documented example form
    check_rest_signature(key, q + "&signature=" + _hmac("s", q), "")
    with pytest.raises(BinanceError) as e:
        check_rest_signature(key, q + "&signature=" + _hmac("t", q), "")
    assert e.value.code == -1022
    with pytest.raises(BinanceError) as e:
        check_rest_signature(key, q, "")
    assert e.value.code == -1102
    with pytest.raises(BinanceError) as e:
        ring.get("nobody")
    assert e.value.code == -2015 and e.value.status == 401
    with pytest.raises(BinanceError) as e:
        ring.get(None)
    assert e.value.code == -2014


def test_ws_signature_sorted_params_and_ed25519():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    priv = Ed25519PrivateKey.generate()
    ring = KeyRing()
    ring.add_ed25519("e", priv.public_key())
    params = {"timestamp": 10, "symbol": "BTCUSDT", "apiKey": "e", "quantity": "0.01", "reduceOnly": True}
    payload = urllib.parse.urlencode(sorted((k, "true" if v is True else str(v)) for k, v in params.items()))
    params["signature"] = base64.b64encode(priv.sign(payload.encode())).decode()
    check_ws_signature(ring.get("e"), params)
    params["quantity"] = "0.02"
    with pytest.raises(BinanceError) as e:
        check_ws_signature(ring.get("e"), params)
    assert e.value.code == -1022


def test_timestamp_and_recv_window():
    check_timestamp({"timestamp": "1000"}, 5000)
    with pytest.raises(BinanceError) as e:
        check_timestamp({"timestamp": "1000"}, 7000)
    assert e.value.code == -1021 and "recvWindow" in e.value.msg
    check_timestamp({"timestamp": "1000", "recvWindow": "10000"}, 7000)
    with pytest.raises(BinanceError) as e:
        check_timestamp({"timestamp": "9000"}, 7000)
    assert e.value.code == -1021 and "ahead" in e.value.msg
    with pytest.raises(BinanceError) as e:
        check_timestamp({"timestamp": "1000", "recvWindow": "70000"}, 7000)
    assert e.value.code == -1131
    with pytest.raises(BinanceError) as e:
        check_timestamp({}, 7000)
    assert e.value.code == -1102


def test_rate_limiter_429_retry_after_then_418():
    now = [120.5]
    lim = RateLimiter(parse_limits("REQUEST_WEIGHT:1M=10,ORDERS:10S=2", SPOT_LIMITS), ban_after=2, ban_s=60,
                      clock=lambda: now[0])
    lim.charge(6)
    lim.charge(4, 1)
    assert lim.headers(True)["X-MBX-USED-WEIGHT-1M"] == "10"
    assert lim.headers(True)["X-MBX-ORDER-COUNT-10S"] == "1"
    with pytest.raises(BinanceError) as e:
        lim.charge(1)
    assert e.value.status == 429 and e.value.code == -1003 and e.value.retry_after == 60  # to 180 s
    with pytest.raises(BinanceError):
        lim.charge(1)
    with pytest.raises(BinanceError) as e:
        lim.charge(1)  # the third request while limited: banned
    assert e.value.status == 429
    with pytest.raises(BinanceError) as e:
        lim.charge(1)
    assert e.value.status == 418 and e.value.retry_after >= 59
    now[0] += 61  # the ban and the window are over
    lim.charge(1, 1)
    lim.charge(1, 0)
    with pytest.raises(BinanceError) as e:
        lim.charge(1, 2)
    assert e.value.code == -1015 and e.value.status == 429
    info = lim.ws_rate_limits(True)
    assert {(x["rateLimitType"], x["interval"], x["intervalNum"]) for x in info} >= {
        ("REQUEST_WEIGHT", "MINUTE", 1), ("ORDERS", "SECOND", 10)}


def test_bad_limit_specs_are_clear_errors():
    for bad in ("ORDERS=5", "ORDERS:10X=5", "FOO:1M=5", "ORDERS:10S=x", "ORDERS:10S=0"):
        with pytest.raises(ValueError, match="rate limit"):
            parse_limits(bad, SPOT_LIMITS)
    assert [x.limit for x in parse_limits("ORDERS:10S=7", SPOT_LIMITS) if x.num == 10] == [7]


def test_fault_specs():
    assert Faults.parse("drop_ack:2") == ("drop_ack", 2, 1.0)
    assert Faults.parse("stall:1.5") == ("stall", 1, 1.5)
    with pytest.raises(ValueError):
        Faults.parse("explode:1")
    f = Faults()
    f.apply("dup_event", 3)
    f.apply("time_offset", -500)
    assert f.dup_event == 3 and f.time_offset_ms == -500


def test_presets():
    assert preset("spot").rest == "https://api.binance.com"
    assert preset("usdm", "testnet").ws_api == "wss://testnet.binancefuture.com/ws-fapi/v1"
    assert preset("spot", "testnet").streams == "wss://stream.testnet.binance.vision"
    loc = local("http://127.0.0.1:1234")
    assert loc["usdm"].ws_api == "ws://127.0.0.1:1234/ws-fapi/v1" and loc["usdm"].streams == "ws://127.0.0.1:1234/futures"
    assert preset("spot", "local", "http://127.0.0.1:9").ws_api == "ws://127.0.0.1:9/ws-api/v3"
    with pytest.raises(ValueError):
        preset("usdm", "demo")
    with pytest.raises(ValueError):
        preset("coinm")
    for market in PRESETS.values():
        for ep in market.values():
            assert ep.rest.startswith("https://") and ep.ws_api.startswith("wss://") and ep.streams.startswith("wss://")


def test_ed25519_public_key_from_file_or_text(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from livestack.testing.binance_exchange.protocol import load_ed25519_public

    priv = Ed25519PrivateKey.generate()
    pem = priv.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    f = tmp_path / "k.pub"
    f.write_bytes(pem)
    for src in (str(f), pem, pem.decode()):
        key = load_ed25519_public(src)
        key.verify(priv.sign(b"x"), b"x")
    rsa_like = tmp_path / "not.pem"
    rsa_like.write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ValueError):
        load_ed25519_public(str(rsa_like))
