"""Binance venue benchmarks over loopback.

    round-trip:   BinanceAdapter.submit(NEW) in this process --WS API order.place, 127.0.0.1-->
                  exchange (own process) --answer--> the adapter's I/O thread --> poll() returns
                  the ACCEPTED EXEC (this process waits with Backoff("backoff")). Signed (HMAC) and
                  checked by the exchange. One order in flight; each acked order is canceled after.
    user-stream:  the exchange pushes N executionReport TRADE events (spot: on the WS API session's
                  userDataStream subscription) as fast as its socket takes them; the adapter decodes
                  each (msgspec, typed), dedups its trade id, builds the FILL EXEC; measured from the
                  first push request to the N-th EXEC polled.

Exchange: ``--exchange stub`` (default): the adapter tests' Binance stand-in
(tests/unit/venues/binance/fake_binance.py) in its own process; ``--exchange bnx``: the product's
test exchange ``livestack.testing.binance_exchange`` when present.

    python bench/bench_binance_venue.py [--round-trips 2000] [--stream 20000] [--market spot]

Prints a table and writes bench/results/binance_venue_<exchange>_<market>.json (bnx: round trip only;
its exchange has no flood hook, so the user-stream rate is measured against the stub).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import pathlib
import sys
import time
import urllib.request

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
import common  # noqa: E402

from livestack.config import Instrument  # noqa: E402
from livestack.ipc import Backoff  # noqa: E402
from livestack.schema import DTYPES, ExecType, OrderCmdType, OrdType, Side, TimeInForce, new  # noqa: E402
from livestack.venues.binance import codec  # noqa: E402
from livestack.venues.binance.adapter import BinanceAdapter  # noqa: E402
from livestack.venues.binance.auth import Credentials  # noqa: E402


def _cmd(kind, cid, price, qty, side=Side.BUY):
    c = new("ORDER_CMD")
    c["cmd"], c["client_order_id"], c["side"], c["price"], c["qty"] = int(kind), cid, int(side), price, qty
    c["tif"], c["ord_type"], c["instrument"] = int(TimeInForce.GTC), int(OrdType.LIMIT), 1
    return c


def _backoff():
    # what the venue process loop does (its idle_max_sleep_ns, 200 us by default for binance), capped
    # lower here so the figure is the adapter's path, not the poller's sleep
    return Backoff("backoff", spins=100, yields=10, max_sleep_ns=20_000)


def _wait(ad, buf, pred, timeout=10.0):
    b = _backoff()
    end = time.monotonic() + timeout
    got = []
    while time.monotonic() < end:
        n = ad.poll(buf, 0)
        ad.delivered(n)  # as the process loop does once the exec ring took them
        if n:
            b.reset()
            for i in range(n):
                if pred(buf[i]):
                    return buf[i].copy(), got
                got.append(buf[i].copy())
        else:
            b.idle()
    raise TimeoutError(f"no answer; got {[(int(e['client_order_id']), int(e['exec_type']), int(e['reason'])) for e in got]}")


class _Done(Exception):
    pass


def serve_bnx(market: str, conn) -> None:
    """The product's test exchange (livestack.testing.binance_exchange) in this child process."""
    from livestack.testing.binance_exchange import start_exchange

    lim = "REQUEST_WEIGHT:1M=10000000,ORDERS:10S=10000000,ORDERS:1M=10000000,ORDERS:1D=100000000"
    ex = start_exchange(markets=(market,), loop=True, spot_limits=lim, usdm_limits=lim)
    conn.send(ex.port)
    ex.advance(5.0)
    for _ in range(200):
        bid = ex.best(market)[0]
        if bid:
            break
        time.sleep(0.05)
    conn.send(bid)
    try:
        conn.recv()
    except EOFError:
        pass
    ex.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--round-trips", type=int, default=2000)
    ap.add_argument("--stream", type=int, default=20000)
    ap.add_argument("--market", choices=("spot", "usdm"), default="spot")
    ap.add_argument("--exchange", choices=("stub", "bnx"), default="stub")
    a = ap.parse_args()
    sys.setswitchinterval(0.0002)  # as the venue process does (livestack.venues.binance.run_process)

    ctx = mp.get_context("spawn")
    from tests.unit.venues.binance.fake_binance import KEY, SECRET, FakeBinance, serve

    parent, child = ctx.Pipe()
    proc = ctx.Process(target=serve_bnx if a.exchange == "bnx" else serve, args=(a.market, child), daemon=True)
    proc.start()
    port = parent.recv()
    stub = FakeBinance(a.market)
    stub.port = port
    qd = 8 if a.market == "spot" else 3
    inst = Instrument(1, "BTCUSDT", "binance", price_decimals=2, qty_decimals=qd, tick=1 if qd == 8 else 10,
                      lot=1000 if qd == 8 else 1)
    opts = stub.options(request_timeout_s=5.0, recv_window_ms=5000)
    base_px = 5000000
    if a.exchange == "bnx":
        from livestack.testing.binance_exchange import DEFAULT_API_KEY as KEY, DEFAULT_API_SECRET as SECRET
        from livestack.venues.binance.codec import parse_fixed

        opts["ws_stream_url"] = f"ws://127.0.0.1:{port}/fstream/ws"
        bid = parent.recv()
        base_px = parse_fixed(bid, 2) * 97 // 100 // inst.tick * inst.tick   # 3 % below: rests
    ad = BinanceAdapter([inst], opts, creds=Credentials(KEY, SECRET))
    ad.start()
    buf = np.zeros(256, DTYPES["EXEC"])
    try:
        end = time.monotonic() + 15
        while not ad.up and time.monotonic() < end:
            time.sleep(0.01)
        one = 10 ** (qd - 3) * (1 if a.market == "spot" else 2)  # 0.001 BTC spot, 0.002 USD-M (> 100 USDT)
        lat = np.zeros(a.round_trips, dtype=np.int64)
        warm = 200
        for i in range(a.round_trips + warm):
            cid = 1 + i
            t0 = time.perf_counter_ns()
            ad.submit(_cmd(OrderCmdType.NEW, cid, base_px - (i % 50) * inst.tick, one))
            _wait(ad, buf, lambda e, c=cid: e["client_order_id"] == c and e["exec_type"] == ExecType.ACCEPTED)
            t1 = time.perf_counter_ns()
            if i >= warm:
                lat[i - warm] = t1 - t0
            ad.submit(_cmd(OrderCmdType.CANCEL, cid, 0, 0))
            _wait(ad, buf, lambda e, c=cid: e["client_order_id"] == c and e["exec_type"] in (
                ExecType.CANCELED, ExecType.CANCEL_REJECTED))
        rt = {"round_trips": a.round_trips, "warmup": warm, **common.percentiles(lat)}

        us = None
        if a.exchange == "bnx":
            raise _Done
        # user stream: one big resting order, N one-unit trades pushed at once
        big_cid = 10_000_000
        ad.submit(_cmd(OrderCmdType.NEW, big_cid, 5000000, 10 ** qd))  # 1 BTC
        _wait(ad, buf, lambda e: e["client_order_id"] == big_cid and e["exec_type"] == ExecType.ACCEPTED)
        clid = codec.client_order_id(ad.epoch, big_cid)
        unit = codec.fmt_fixed(1 if a.market == "spot" else 1, qd)
        fills0 = ad.stats["fills"]
        t0 = time.perf_counter()
        urllib.request.urlopen(f"http://127.0.0.1:{port}/_bench/flood?clid={clid}&n={a.stream}&qty={unit}",
                               timeout=120).read()
        got = 0
        b = _backoff()
        end = time.monotonic() + 120
        while got < a.stream and time.monotonic() < end:
            n = ad.poll(buf, 0)
            ad.delivered(n)
            got += int(np.count_nonzero((buf["exec_type"][:n] == ExecType.PARTIALLY_FILLED)
                                        | (buf["exec_type"][:n] == ExecType.FILLED)))
            if n:
                b.reset()
            else:
                b.idle()
        dt = time.perf_counter() - t0
        us = {"events": a.stream, "fills_emitted": ad.stats["fills"] - fills0, "seconds": dt,
              "per_s": a.stream / dt, "bad_messages": ad.stats["bad_messages"]}
    except _Done:
        pass
    finally:
        ad.stop()
        parent.close()
        proc.join(10)

    rows = [["round-trip", "submit NEW -> ACCEPTED polled (WS API, loopback, signed)",
             f"p50 {rt['p50_ns'] / 1e3:.0f} us", f"p99 {rt['p99_ns'] / 1e3:.0f} us"]]
    if us is not None:
        rows.append(["user-stream", "executionReport TRADE -> FILL EXEC polled", f"{us['per_s']:,.0f} msg/s",
                     f"{1e6 / us['per_s']:.1f} us/msg"])
    print(f"binance venue ({a.market}, exchange: {a.exchange}) on {common.machine()['cpu']}, "
          f"{common.machine()['cores']} cores; exchange in its own process")
    print(common.table(rows, ["case", "what", "figure", "figure"]))
    path = common.write_result(f"binance_venue_{a.exchange}_{a.market}", {"market": a.market, "exchange": a.exchange,
                                                 "round_trip": rt, "user_stream": us})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
