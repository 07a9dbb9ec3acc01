"""Benchmark of the matching engine (livestack.matching.MatchingEngine), one process, no rings.

Measures, on this machine:

  commands (batch)     MatchingEngine.run_commands: one nogil call over an array of ORDER_CMD
                       records, each matched at once and its EXEC records drained -- the rate of
                       the matching itself. Mix per order: NEW (passive, 1 in 10 an IOC that crosses),
                       REPLACE (new price), CANCEL; against a 1,000-level book per side, with
                       ``--resting`` (and 256) other orders of ours resting throughout (orders are
                       found by a hash index on client_order_id; our prices per side are kept
                       sorted, so neither costs a scan of the live orders).
  commands (latency)   MatchingEngine.submit + poll in batches of 4,096: the path the simulated
                       venue process takes (commands queued with the order latency, EXEC records
                       handed out by delivery time).
  capture md           MatchingEngine.on_market over the decoded real USD-M capture (if present),
                       with 0 and 20 of our orders resting near the touch.

Prints a table and writes bench/results/matching.json.

    .venv/bin/python bench/bench_matching.py [--commands N] [--resting K]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import write_result  # noqa: E402
from livestack.config import BTCUSDT_USDM, Instrument  # noqa: E402
from livestack.feeds import sim as fsim  # noqa: E402
from livestack.matching import MatchingEngine  # noqa: E402
from livestack.schema import DTYPES, OrderCmdType, Side, TimeInForce, new  # noqa: E402

INST = Instrument(1, "SIM")
BID, ASK = 100_000, 100_001
LEVELS = 1000


def engine(resting: int, **lat) -> MatchingEngine:
    e = MatchingEngine([INST], **lat)
    bids = [(BID - i, 1_000_000) for i in range(LEVELS)]
    asks = [(ASK + i, 1_000_000) for i in range(LEVELS)]
    e.on_market(fsim.snapshot_records(1, bids, asks, 1, 1))
    if resting:
        c = new("ORDER_CMD", resting, cmd=int(OrderCmdType.NEW), qty=1, instrument=1, tif=int(TimeInForce.GTC),
                ord_type=1)
        c["client_order_id"] = 10**12 + np.arange(resting)
        c["side"] = np.where(np.arange(resting) % 2, int(Side.BUY), int(Side.SELL))
        off = 20 + np.arange(resting) // 2
        c["price"] = np.where(c["side"] == int(Side.BUY), BID - off, ASK + off)
        c["ts"] = 1
        e.run_commands(c)
    return e


def command_mix(n: int) -> np.ndarray:
    k = n // 3
    cmds = new("ORDER_CMD", 3 * k, instrument=1, qty=1, tif=int(TimeInForce.GTC), ord_type=1, side=int(Side.BUY))
    i = np.arange(k)
    coid = 1 + 2 * i
    cmds["cmd"][0::3] = int(OrderCmdType.NEW)
    cmds["client_order_id"][0::3] = coid
    cmds["price"][0::3] = np.where(i % 10 == 0, ASK, BID - (i % 5))
    cmds["tif"][0::3] = np.where(i % 10 == 0, int(TimeInForce.IOC), int(TimeInForce.GTC))
    cmds["cmd"][1::3] = int(OrderCmdType.REPLACE)
    cmds["client_order_id"][1::3] = coid + 1
    cmds["orig_client_order_id"][1::3] = coid
    cmds["price"][1::3] = BID - 1 - (i % 3)
    cmds["cmd"][2::3] = int(OrderCmdType.CANCEL)
    cmds["client_order_id"][2::3] = coid + 1
    cmds["ts"] = 2
    return cmds


def best(fn, repeat=3):
    runs = [fn() for _ in range(repeat)]
    return max(runs, key=lambda r: r["rate_per_s"])


def bench_batch(cmds, resting):
    def run():
        e = engine(resting)
        t = time.perf_counter()
        ev = e.run_commands(cmds)
        dt = time.perf_counter() - t
        return {"commands": len(cmds), "seconds": dt, "rate_per_s": len(cmds) / dt, "exec_events": ev,
                "resting": resting}
    return best(run)


def bench_latency_path(cmds, resting):
    def run():
        e = engine(resting, order_latency_ns=50_000, response_latency_ns=50_000)
        out = np.zeros(16384, dtype=DTYPES["EXEC"])
        ev = 0
        t = time.perf_counter()
        for j in range(0, len(cmds), 4096):
            e.submit(cmds[j:j + 4096])
            while True:
                m = e.poll(out, 2**62)
                ev += m
                if m < len(out):
                    break
        dt = time.perf_counter() - t
        return {"commands": len(cmds), "seconds": dt, "rate_per_s": len(cmds) / dt, "exec_events": ev,
                "resting": resting}
    return best(run)


def bench_capture(resting):
    path = None
    for cand in [os.environ.get("LIVESTACK_DATA"), str(ROOT.parent / "shared" / "data")]:
        if cand and os.path.exists(os.path.join(cand, "binance", "usdm-btcusdt-20240808.gz")):
            path = os.path.join(cand, "binance", "usdm-btcusdt-20240808.gz")
    if path is None:
        return None
    from livestack.feeds.capture import decode_capture

    recs = decode_capture(path, BTCUSDT_USDM, "usdm")
    times = np.maximum.accumulate(recs["ts"].astype(np.int64))

    def run():
        e = MatchingEngine([BTCUSDT_USDM])
        first = len(recs) // 50
        e.on_market(recs[:first], times[:first])
        if resting:
            bids, asks = e.book(BTCUSDT_USDM.id)
            c = new("ORDER_CMD", resting, cmd=int(OrderCmdType.NEW), qty=BTCUSDT_USDM.lot, instrument=BTCUSDT_USDM.id,
                    tif=int(TimeInForce.GTC), ord_type=1)
            c["client_order_id"] = np.arange(1, resting + 1)
            c["side"] = np.where(np.arange(resting) % 2, int(Side.BUY), int(Side.SELL))
            off = (np.arange(resting) // 2) * BTCUSDT_USDM.tick
            c["price"] = np.where(c["side"] == int(Side.BUY), bids[0][0] - off, asks[0][0] + off)
            c["ts"] = times[first - 1]
            e.run_commands(c)
        t = time.perf_counter()
        e.on_market(recs[first:], times[first:])
        dt = time.perf_counter() - t
        n = len(recs) - first
        return {"records": n, "seconds": dt, "rate_per_s": n / dt, "resting": resting,
                "fills": e.counters()["fills"]}
    return best(run, 2)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commands", type=int, default=3_000_000)
    ap.add_argument("--resting", type=int, default=16, help="other orders of ours resting during the command runs")
    args = ap.parse_args(argv)
    cmds = command_mix(args.commands)
    res = {
        "commands_batch": bench_batch(cmds, 0),
        "commands_batch_resting": bench_batch(cmds, args.resting),
        "commands_batch_resting_256": bench_batch(cmds, 256),
        "commands_latency_path": bench_latency_path(cmds, args.resting),
        "capture_md": bench_capture(0),
        "capture_md_resting": bench_capture(20),
        "baseline_python_engine_commands_per_s": "0.2-0.35M (bench/bench_sim.py 'matching' before this engine)",
    }
    print("bench_matching: livestack.matching.MatchingEngine, one process, best of 3")
    print(f"{'what':<58}{'units':>12}{'seconds':>10}{'rate/s':>14}")
    rows = [("commands, nogil batch (new/replace/cancel, 0 resting)", res["commands_batch"]),
            (f"commands, nogil batch ({args.resting} resting)", res["commands_batch_resting"]),
            ("commands, nogil batch (256 resting)", res["commands_batch_resting_256"]),
            (f"commands, submit+poll with latency ({args.resting} resting)", res["commands_latency_path"])]
    if res["capture_md"]:
        rows += [("USD-M capture md records applied (0 resting)", res["capture_md"]),
                 ("USD-M capture md records applied (20 resting)", res["capture_md_resting"])]
    for name, r in rows:
        units = r.get("commands", r.get("records"))
        print(f"{name:<58}{units:>12,}{r['seconds']:>10.3f}{r['rate_per_s']:>14,.0f}")
    b = res["commands_batch"]
    print(f"{b['exec_events'] / b['commands']:.2f} EXEC records per command")
    path = write_result("matching", res)
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
