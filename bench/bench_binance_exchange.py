"""Binance test exchange benchmarks over loopback (the exchange in its own process, as the CLI runs it).

    ws-place:     spot WS API order.place (LIMIT GTC far from the touch, HMAC-signed) -> answer;
                  one request in flight. Then order.cancel -> answer (ws-cancel).
    rest-place:   spot REST POST /api/v3/order -> answer (keep-alive connection), then DELETE.
    user-stream:  K orders placed and canceled back to back (pipelined on the WS API connection)
                  with a userDataStream.subscribe.signature subscription: executionReport events
                  received per second, from the first send to the last event.

The exchange runs `livestack testing binance-exchange --market spot --speed 0` (replay stopped:
the book does not move, so no order fills) in a subprocess; the client is aiohttp in this process.
Both share this machine's cores, so the figures include the scheduling noise of a busy host.

    python bench/bench_binance_exchange.py [--round-trips 2000] [--rest 500] [--burst 2000]

Prints a table and writes bench/results/binance_exchange.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.parse

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

import aiohttp  # noqa: E402
import orjson  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
KEY, SECRET = "livestack-test-key", "livestack-test-secret"


def signed(params: dict) -> dict:
    p = dict(params, apiKey=KEY, timestamp=int(time.time() * 1000))
    q = urllib.parse.urlencode(sorted((k, str(v)) for k, v in p.items()))
    p["signature"] = hmac.new(SECRET.encode(), q.encode(), hashlib.sha256).hexdigest()
    return p


def rest_query(params: dict) -> str:
    q = urllib.parse.urlencode(dict(params, timestamp=int(time.time() * 1000)))
    return q + "&signature=" + hmac.new(SECRET.encode(), q.encode(), hashlib.sha256).hexdigest()


async def run(a, base: str, ws_base: str) -> dict:
    res = {}
    async with aiohttp.ClientSession() as s:
        async with s.get(base + "/api/v3/depth?symbol=BTCUSDT&limit=5") as r:
            bid = float((await r.json())["bids"][0][0])
        price = f"{bid - 1000:.2f}"
        async with s.ws_connect(ws_base + "/ws-api/v3?returnRateLimits=false") as ws:
            place, cancel = [], []
            for i in range(a.round_trips + 100):
                p = signed({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                            "quantity": "0.001", "price": price, "newClientOrderId": f"b{i}",
                            "newOrderRespType": "ACK"})
                t0 = time.perf_counter_ns()
                await ws.send_str(orjson.dumps({"id": i, "method": "order.place", "params": p}).decode())
                ans = orjson.loads((await ws.receive()).data)
                t1 = time.perf_counter_ns()
                assert ans["status"] == 200, ans
                c = signed({"symbol": "BTCUSDT", "origClientOrderId": f"b{i}"})
                t2 = time.perf_counter_ns()
                await ws.send_str(orjson.dumps({"id": -i - 1, "method": "order.cancel", "params": c}).decode())
                ans = orjson.loads((await ws.receive()).data)
                t3 = time.perf_counter_ns()
                assert ans["status"] == 200, ans
                if i >= 100:
                    place.append(t1 - t0)
                    cancel.append(t3 - t2)
            res["ws_place"] = common.percentiles(np.array(place))
            res["ws_cancel"] = common.percentiles(np.array(cancel))
            # user stream throughput
            await ws.send_str(orjson.dumps({"id": "sub", "method": "userDataStream.subscribe.signature",
                                            "params": signed({})}).decode())
            assert orjson.loads((await ws.receive()).data)["status"] == 200
            n = a.burst
            t0 = time.perf_counter_ns()
            for i in range(n):
                p = signed({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                            "quantity": "0.001", "price": price, "newClientOrderId": f"u{i}",
                            "newOrderRespType": "ACK"})
                await ws.send_str(orjson.dumps({"id": f"p{i}", "method": "order.place", "params": p}).decode())
                c = signed({"symbol": "BTCUSDT", "origClientOrderId": f"u{i}"})
                await ws.send_str(orjson.dumps({"id": f"c{i}", "method": "order.cancel", "params": c}).decode())
            events = answers = 0
            while events < 2 * n or answers < 2 * n:
                d = orjson.loads((await ws.receive(timeout=60)).data)
                if "event" in d:
                    events += d["event"].get("e") == "executionReport"
                else:
                    answers += 1
            dt = (time.perf_counter_ns() - t0) / 1e9
            res["user_stream"] = {"orders": n, "events": events, "seconds": dt, "events_per_s": events / dt,
                                  "requests_per_s": 2 * n / dt}
        rest = []
        for i in range(a.rest + 20):
            q = rest_query({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                            "quantity": "0.001", "price": price, "newClientOrderId": f"r{i}"})
            t0 = time.perf_counter_ns()
            async with s.post(base + "/api/v3/order?" + q, headers={"X-MBX-APIKEY": KEY}) as r:
                await r.read()
                assert r.status == 200
            t1 = time.perf_counter_ns()
            async with s.delete(base + "/api/v3/order?" + rest_query({"symbol": "BTCUSDT", "origClientOrderId": f"r{i}"}),
                                headers={"X-MBX-APIKEY": KEY}) as r:
                await r.read()
            if i >= 20:
                rest.append(t1 - t0)
        res["rest_place"] = common.percentiles(np.array(rest))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--round-trips", type=int, default=2000)
    ap.add_argument("--rest", type=int, default=500)
    ap.add_argument("--burst", type=int, default=2000)
    a = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "livestack.cli", "testing", "binance-exchange", "--market", "spot",
                             "--speed", "0", "--spot-limits", "REQUEST_WEIGHT:1M=100000000,ORDERS:10S=100000000,"
                             "ORDERS:1D=100000000"], stdout=subprocess.PIPE, env=env,
                            cwd=ROOT, text=True)
    try:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("the exchange did not start")
        urls = json.loads(line)["spot"]
        res = asyncio.run(run(a, urls["rest"], urls["streams"]))
    finally:
        proc.terminate()
        proc.wait(10)
    rows = [["ws-place", "WS API order.place -> answer", f"p50 {res['ws_place']['p50_ns'] / 1e3:.0f} us",
             f"p99 {res['ws_place']['p99_ns'] / 1e3:.0f} us"],
            ["ws-cancel", "WS API order.cancel -> answer", f"p50 {res['ws_cancel']['p50_ns'] / 1e3:.0f} us",
             f"p99 {res['ws_cancel']['p99_ns'] / 1e3:.0f} us"],
            ["rest-place", "REST POST /api/v3/order -> answer", f"p50 {res['rest_place']['p50_ns'] / 1e3:.0f} us",
             f"p99 {res['rest_place']['p99_ns'] / 1e3:.0f} us"],
            ["user-stream", f"{res['user_stream']['events']} executionReports",
             f"{res['user_stream']['events_per_s']:.0f} events/s",
             f"{res['user_stream']['requests_per_s']:.0f} requests/s"]]
    m = common.machine()
    print(f"Binance test exchange over loopback on {m['cpu']} ({m['cores']} cores), Python {m['python']}")
    print(common.table(rows, ["case", "what", "median / rate", "p99 / rate"]))
    print(f"wrote {common.write_result('binance_exchange', {'params': vars(a), **res})}")


if __name__ == "__main__":
    main()
