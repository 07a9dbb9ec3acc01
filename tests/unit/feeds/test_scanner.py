"""The C message scanner (FastDecoder) against the standard library's json as the reference parser, on real message
shapes and thousands of seeded random mutations of them (jcstress style: every outcome checked)."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import orjson
import pytest

from livestack.feeds.binance import (
    DEPTH, DONE, ERR_JSON, KIND_BBO, KIND_DEPTH, KIND_TRADE, FastDecoder, MdBuffer,
)
from livestack.schema import DTYPE_BY_KIND, RecordKind

SAMPLES = [
    b'{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1723161256352,"T":1723161256352,"s":"BTCUSDT",'
    b'"U":5123107837801,"u":5123107842679,"pu":5123107837557,"b":[["1000.00","606.675"],["5000.00","2.321"]],'
    b'"a":[["61800.30","2.305"],["61801.10","0.000"]]}}',
    b'{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5123107839020,"s":"BTCUSDT","b":"61800.20",'
    b'"B":"2.507","a":"61800.30","A":"2.510","T":1723161256313,"E":1723161256313}}',
    b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256322,"T":1723161256322,"s":"BTCUSDT",'
    b'"t":5266583935,"p":"61800.30","q":"0.006","X":"MARKET","m":false}}',
]
ROUTES = {
    "btcusdt@depth@0ms": (KIND_DEPTH, 0, 5, 2, 3, True),
    "btcusdt@trade": (KIND_TRADE, 0, 5, 2, 3, True),
    "btcusdt@bookTicker": (KIND_BBO, 0, 5, 2, 3, True),
}
ALPHABET = b'{}[]":,.-0123456789eE \\tfnrul"abAB'


def fixed(s, dec):
    v = Decimal(s) * 10 ** dec
    return int(v) if v == v.to_integral_value() else None


def mutate(rng: random.Random, msg: bytes) -> bytes:
    b = bytearray(msg)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(4)
        i = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(i, len(b) - 1)] = rng.choice(ALPHABET)
        elif op == 1:
            b[i:i] = bytes([rng.choice(ALPHABET)])
        elif op == 2 and b:
            del b[min(i, len(b) - 1)]
        else:
            b = b[:i]
    return bytes(b)


def check(msg: bytes):
    out = MdBuffer(64)
    fast = FastDecoder(out, ROUTES)
    rc = fast.decode(msg, 99)
    try:
        ref = json.loads(msg)  # stdlib: plain RFC 8259 (orjson also rejects numbers beyond a double)
    except ValueError:
        ref = None
    if ref is None:
        assert rc == ERR_JSON, (msg, rc)
        return rc
    assert rc != ERR_JSON, (msg, rc)
    if rc == DONE:
        assert out.n == 1
        d = ref["data"]
        rec = out.view()
        if rec["kind"][0] == RecordKind.MD_TRADE:
            t = rec.view(DTYPE_BY_KIND[RecordKind.MD_TRADE])[0]
            assert ref["stream"] == "btcusdt@trade"
            assert (t["price"], t["qty"], t["trade_id"]) == (fixed(d["p"], 2), fixed(d["q"], 3), d["t"])
            assert t["side"] == (2 if d["m"] else 1) and t["ts_event"] == d["T"] * 1_000_000
        else:
            q = rec.view(DTYPE_BY_KIND[RecordKind.MD_BBO])[0]
            assert ref["stream"] == "btcusdt@bookTicker"
            assert (q["bid_px"], q["bid_qty"], q["ask_px"], q["ask_qty"]) == (
                fixed(d["b"], 2), fixed(d["B"], 3), fixed(d["a"], 2), fixed(d["A"], 3))
    elif rc == DEPTH:
        d = ref["data"]
        diff = fast.diff
        assert (diff.U, diff.u, diff.pu, diff.E) == (d["U"], d["u"], d["pu"], d["E"])
        assert orjson.loads(diff.b) == d["b"] and orjson.loads(diff.a) == d["a"]
    else:
        assert out.n == 0
    return rc


@pytest.mark.parametrize("msg", SAMPLES)
def test_real_message_shapes_decode(msg):
    assert check(msg) in (DONE, DEPTH)


def test_random_mutations_agree_with_the_reference_on_what_is_json_and_on_every_value():
    rng = random.Random(20240808)
    outcomes = {}
    for _ in range(6000):
        m = mutate(rng, rng.choice(SAMPLES))
        rc = check(m)
        outcomes[rc] = outcomes.get(rc, 0) + 1
    # the mutations exercise every outcome, not just "not JSON"
    assert outcomes.get(ERR_JSON, 0) > 1000 and outcomes.get(DONE, 0) > 50 and len(outcomes) >= 5, outcomes


@pytest.mark.parametrize("text", [
    b'{"stream":"btcusdt@trade","data":{"T":1,"t":1,"p":"1.00","q":"1","m":true}}  \n',
    b' {"data":{"T":1,"t":1,"p":"1.00","q":"1","m":true},"stream":"btcusdt@trade"}',
    b'{"stream":"btcusdt@trade","x":[1,{"y":[true,false,null,-0.5e+3,"\\u00e9\\n"]}],'
    b'"data":{"T":1,"t":1,"p":"1.00","q":"1","m":true,"extra":{"deep":[[[]]]}}}',
])
def test_key_order_whitespace_and_unknown_values_are_fine(text):
    assert check(text) == DONE


@pytest.mark.parametrize("text", [
    b'{"stream":"btcusdt@trade","data":{"T":1,"t":1,"p":"1.00","q":"1","m":true}} x',
    b'{"stream":"btcusdt@trade","data":{"T":01,"t":1,"p":"1.00","q":"1","m":true}}',
    b'{"stream":"btcusdt@trade","data":{"T":1,"t":1,"p":"1.00","q":"1","m":tru}}',
    b'{"stream":"btcusdt@trade","data":{"T":1,"t":1,"p":"1.00\x01","q":"1","m":true}}',
    b'{"stream":"btcusdt@trade","data":{"T":1,"t":1,"p":"\\x","q":"1","m":true}}',
    b'{"stream":"btcusdt@trade","data":{"T":1,"t":1,"p":"1.00","q":"1","m":true}',
    b'{"stream":"btcusdt@trade","data":{"T":1.,"t":1,"p":"1.00","q":"1","m":true}}',
    b'[' * 100 + b']' * 100,
])
def test_not_json_is_a_json_error(text):
    out = MdBuffer(16)
    assert FastDecoder(out, ROUTES).decode(text, 1) == ERR_JSON and out.n == 0
