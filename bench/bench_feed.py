"""Binance feed benchmarks: decode rate of the real captures, and the whole feed over a websocket.

    decode:     capture lines in memory --BinanceDecoder.on_message / on_snapshot--> MdBuffer
                (C scanner + C level parser + BookSync; records taken every 256 messages).
                Rates are per CPU-second of this process (time.process_time) and per wall second:
                on a shared 2-core machine the wall figure moves with the neighbours' load.
    naive:      the same lines with orjson.loads + parse_fixed per price/qty string (no BookSync,
                no records): what a per-level-Python-object decoder costs, for comparison
    websocket:  ReplayServer (thread, pace max, 127.0.0.1) --ws--> feed process (binance_ws)
                --shm ring--> consumer (this process); rate = messages / (last record - first record)
                seen by the consumer. Server, feed and consumer share this machine's cores and the
                pure-Python aiohttp server is the slowest stage, so this wall rate is the server's;
                the feed process's own cost is its CPU time (/proc) from the first record to the last
                (the first messages are decoded a little before the first record shows: a slight
                undercount of the feed's CPU, at 10 ms /proc resolution).

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
    c0 = time.process_time_ns()
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
    cpu = time.process_time_ns() - c0
    c = dec.c
    assert c.malformed == 0 and c.gaps == 0 and c.snapshots == 1, c
    return cpu, dt, records, c.messages


def naive_once(lines, inst):
    pd, qd = inst.price_decimals, inst.qty_decimals
    levels = 0
    t0 = time.process_time_ns()
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
    return time.process_time_ns() - t0, levels


def _cpu_s(pid: int) -> float:
    """utime + stime of a process from /proc (seconds)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ws_once(path, inst, market):
    from livestack.testing.replay_server import ReplayServer

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
    cpu0 = 0.0
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
                if first is None:
                    first = now
                    cpu0 = _cpu_s(p.pid)
                last = now
                n += k
                b.reset()
                continue
            if v.cursor >= len(v.msgs) and counters.messages >= v.sent and ring.size() == 0:
                break
            b.idle()
        feed_cpu = _cpu_s(p.pid) - cpu0
        stop.set()
        p.join(10)
    finally:
        stop.set()
        if p.is_alive():
            p.kill()
        server.stop_thread()
        ring.close()
        remove_session(sid)
    return last - first, n, counters.messages, counters.as_dict(), feed_cpu


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-ws", action="store_true")
    ap.add_argument("--no-transports", action="store_true",
                    help="skip websockets vs picows side by side (bench/feed_transports.py) and the OKX/Kraken decoders")
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
        cpu, wall, records, msgs = min(runs)
        ndt, nlevels = naive_once(lines, inst)
        r = {"messages": msgs, "records": records, "decode_cpu_s": cpu / 1e9, "decode_wall_s": wall / 1e9,
             "decode_msgs_per_cpu_s": msgs / (cpu / 1e9), "decode_records_per_cpu_s": records / (cpu / 1e9),
             "decode_msgs_per_wall_s": msgs / (wall / 1e9), "decode_records_per_wall_s": records / (wall / 1e9),
             "decode_cpu_ns_per_msg": cpu / msgs, "decode_runs_cpu_s": [x[0] / 1e9 for x in runs],
             "naive_levels": nlevels, "naive_cpu_s": ndt / 1e9, "naive_msgs_per_cpu_s": len(lines) / (ndt / 1e9)}
        rows.append([market, "decode, per CPU second", msgs, records, f"{cpu / 1e6:.0f}",
                     f"{r['decode_msgs_per_cpu_s'] / 1e3:.0f}k", f"{r['decode_records_per_cpu_s'] / 1e6:.2f}M"])
        rows.append([market, "decode, per wall second", msgs, records, f"{wall / 1e6:.0f}",
                     f"{r['decode_msgs_per_wall_s'] / 1e3:.0f}k", f"{r['decode_records_per_wall_s'] / 1e6:.2f}M"])
        rows.append([market, "naive orjson + parse_fixed/string, per CPU s", len(lines), f"{nlevels} lv",
                     f"{ndt / 1e6:.0f}", f"{r['naive_msgs_per_cpu_s'] / 1e3:.0f}k", "-"])
        if not a.no_ws:
            wdt, wn, wmsgs, wc, fcpu = ws_once(path, inst, market)
            r.update({"ws_messages": wmsgs, "ws_records": wn, "ws_s": wdt / 1e9,
                      "ws_msgs_per_s": wmsgs / (wdt / 1e9), "ws_records_per_s": wn / (wdt / 1e9),
                      "ws_feed_cpu_s": fcpu, "ws_msgs_per_feed_cpu_s": wmsgs / fcpu if fcpu else None,
                      "ws_counters": wc})
            rows.append([market, "websocket: server -> feed proc -> ring, wall", wmsgs, wn, f"{wdt / 1e6:.0f}",
                         f"{r['ws_msgs_per_s'] / 1e3:.0f}k", f"{r['ws_records_per_s'] / 1e6:.2f}M"])
            rows.append([market, "websocket: per feed-process CPU s", wmsgs, wn, f"{fcpu * 1e3:.0f}",
                         f"{wmsgs / fcpu / 1e3:.0f}k", f"{wn / fcpu / 1e6:.2f}M"])
        results[market] = r
    tr = decs = None
    if not a.no_transports:
        import feed_transports

        usdm = data / CASES["usdm"][0]
        tr = feed_transports.bench_transports(usdm, repeat=min(a.repeat, 3)) if usdm.exists() else None
        decs = feed_transports.bench_decoders(repeat=min(a.repeat, 3))
        rows += [[c, w, n, "", "", r, ""] for c, w, n, r in feed_transports.rows(tr, decs)]
        results["transports"] = tr
        results["venue_decoders"] = decs
    m = common.machine()
    print(f"Binance feed decode rate on {m['cpu']} ({m['cores']} cores), Python {m['python']}; "
          f"decode = best of {a.repeat} single-thread passes over the whole capture in memory; "
          f"load average now {os.getloadavg()[0]:.1f}")
    print(common.table(rows, ["capture", "what", "messages", "records", "ms", "msgs/s", "records/s"]))
    out = common.write_result("feed", {"repeat": a.repeat, "results": results, "loadavg": os.getloadavg(),
                                       "note": "records = 64-byte MD records produced; decode in one thread, "
                                               "websocket figures include the server in the same machine"})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
