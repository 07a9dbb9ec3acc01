"""Binance feed benchmarks: decode rate of the real captures, and the whole feed over a websocket.

    decode:     capture lines in memory --BinanceDecoder.on_message / on_snapshot--> MdBuffer
                (msgspec envelope + Cython level parser + BookSync; records taken every 256 messages)
    naive:      the same lines with orjson.loads + parse_fixed per price/qty string (no BookSync,
                no records): what a per-level-Python-object decoder costs, for comparison
    websocket:  ReplayServer (thread, pace max, 127.0.0.1) --ws--> feed process (binance_ws)
                --shm ring--> consumer (this process); rate = messages / (last record - first record)
                seen by the consumer. Server, feed and consumer share this machine's cores.

    python bench/bench_feed.py [--repeat 5] [--no-ws] [--data ../shared/data]

Prints a table and writes bench/results/feed.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import os
import pathlib
import sys
import time

import numpy as np
import orjson

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

from livestack.config import BTCUSDT_SPOT, BTCUSDT_USDM  # noqa: E402
from livestack.feeds import binance_ws  # noqa: E402
from livestack.feeds.binance import COUNTER_NAMES, BinanceDecoder, Counters, MdBuffer, SharedCounters  # noqa: E402
from livestack.feeds.capture import is_snapshot, read_capture  # noqa: E402
from livestack.ipc import Backoff, Ring, new_session_id, remove_session, segment_name  # noqa: E402
from livestack.schema import parse_fixed  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
# spot carries a few 6-decimal legacy quantities: 8 qty decimals hold every value exactly
CASES = {
    "spot": ("binance/spot-btcusdt-20240808.gz", dataclasses.replace(BTCUSDT_SPOT, qty_decimals=8)),
    "usdm": ("binance/usdm-btcusdt-20240808.gz", BTCUSDT_USDM),
}


def decode_once(lines, inst, market):
    dec = BinanceDecoder([inst], market, MdBuffer(1 << 16), Counters())
    sym = inst.symbol
    on_message, on_snapshot, out = dec.on_message, dec.on_snapshot, dec.out
    records = 0
    t0 = time.perf_counter_ns()
    for i, (ts, msg) in enumerate(lines):
        if msg[2] == 108:  # '{"l...': the REST snapshot line
            on_snapshot(sym, msg, ts)
        else:
            on_message(msg, ts)
        if (i & 255) == 255:
            records += len(out.take())
    records += len(out.take())
    dt = time.perf_counter_ns() - t0
    c = dec.c
    assert c.malformed == 0 and c.gaps == 0 and c.snapshots == 1, c
    return dt, records, c.messages


def naive_once(lines, inst):
    pd, qd = inst.price_decimals, inst.qty_decimals
    levels = 0
    t0 = time.perf_counter_ns()
    for ts, msg in lines:
        j = orjson.loads(msg)
        d = j.get("data", j)
        for key in ("b", "a", "bids", "asks"):
            v = d.get(key)
            if isinstance(v, list):
                for p, q in v:
                    parse_fixed(p, pd)
                    parse_fixed(q, qd)
                    levels += 1
    return time.perf_counter_ns() - t0, levels


def ws_once(path, inst, market):
    from livestack.feeds.replay_server import ReplayServer

    sid = new_session_id()
    ctx = mp.get_context("spawn")
    ring = Ring.create(segment_name(sid, "md.binance"), 1 << 16, 64)
    server = ReplayServer(path, market, "max").start_in_thread()
    stop = ctx.Event()
    shared = ctx.Array("q", len(COUNTER_NAMES))
    counters = SharedCounters(shared.get_obj())
    p = ctx.Process(target=binance_ws.run_process, daemon=True,
                    args=(ring.name, [inst], server.feed_options(counters=shared, snapshot_limit=1000), stop))
    buf = np.zeros(8192, dtype=ring.dtype)
    first = last = None
    n = 0
    try:
        p.start()
        v = server.venue
        b = Backoff("backoff")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            k = ring.read(buf)
            if k:
                now = time.perf_counter_ns()
                first = first or now
                last = now
                n += k
                b.reset()
                continue
            if v.cursor >= len(v.msgs) and counters.messages >= v.sent and ring.size() == 0:
                break
            b.idle()
        stop.set()
        p.join(10)
    finally:
        stop.set()
        if p.is_alive():
            p.kill()
        server.stop_thread()
        ring.close()
        remove_session(sid)
    return last - first, n, counters.messages, counters.as_dict()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-ws", action="store_true")
    ap.add_argument("--data", default=os.environ.get("LIVESTACK_DATA", str(HERE.parent.parent / "shared" / "data")))
    a = ap.parse_args(argv)
    data = pathlib.Path(a.data)
    rows, results = [], {}
    for market, (rel, inst) in CASES.items():
        path = data / rel
        if not path.exists():
            print(f"skip {market}: {path} missing")
            continue
        lines = read_capture(path)
        assert sum(is_snapshot(m) for _, m in lines) == 1
        runs = [decode_once(lines, inst, market) for _ in range(a.repeat)]
        dt, records, msgs = min(runs)
        ndt, nlevels = naive_once(lines, inst)
        r = {"messages": msgs, "records": records, "decode_best_s": dt / 1e9,
             "decode_msgs_per_s": msgs / (dt / 1e9), "decode_records_per_s": records / (dt / 1e9),
             "decode_ns_per_msg": dt / msgs, "decode_all_s": [x[0] / 1e9 for x in runs],
             "naive_levels": nlevels, "naive_s": ndt / 1e9, "naive_msgs_per_s": len(lines) / (ndt / 1e9)}
        rows.append([market, "decode (BinanceDecoder -> MdBuffer)", msgs, records, f"{dt / 1e6:.0f}",
                     f"{r['decode_msgs_per_s'] / 1e3:.0f}k", f"{r['decode_records_per_s'] / 1e6:.2f}M"])
        rows.append([market, "naive (orjson + parse_fixed per string)", len(lines), f"{nlevels} lv",
                     f"{ndt / 1e6:.0f}", f"{r['naive_msgs_per_s'] / 1e3:.0f}k", "-"])
        if not a.no_ws:
            wdt, wn, wmsgs, wc = ws_once(path, inst, market)
            r.update({"ws_messages": wmsgs, "ws_records": wn, "ws_s": wdt / 1e9,
                      "ws_msgs_per_s": wmsgs / (wdt / 1e9), "ws_records_per_s": wn / (wdt / 1e9),
                      "ws_counters": wc})
            rows.append([market, "websocket: server -> feed process -> ring", wmsgs, wn, f"{wdt / 1e6:.0f}",
                         f"{r['ws_msgs_per_s'] / 1e3:.0f}k", f"{r['ws_records_per_s'] / 1e6:.2f}M"])
        results[market] = r
    m = common.machine()
    print(f"Binance feed decode rate on {m['cpu']} ({m['cores']} cores), Python {m['python']}; "
          f"decode = best of {a.repeat} single-thread passes over the whole capture in memory")
    print(common.table(rows, ["capture", "what", "messages", "records", "ms", "msgs/s", "records/s"]))
    out = common.write_result("feed", {"repeat": a.repeat, "results": results,
                                       "note": "records = 64-byte MD records produced; decode in one thread, "
                                               "websocket figures include the server in the same machine"})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
