"""Tick-to-trade through the real harness: from the feed writing a market-data record to the venue
reading the order the core dispatched for it.

    CPU a (busy-spinning stand-in, Cython)             CPU b (harness process, busy-spinning)
    feed:  MD_TRADE ──md ring──────────────────────▶  Harness: journal → Core (numba strategy:
    venue: ◀──orders ring── ORDER_CMD (ts = md ts)     one IOC order per trade) → orders ring
           ──exec ring──▶ CANCELED (IOC unfilled) ──▶  → exec handled → records ring (drained)

Latency per order = venue read time - the md record's *intended* send time (the core stamps the
input's ts on what it dispatches), so a feed that falls behind its schedule shows up as latency:
corrected for coordinated omission. Paced at the given rates; then unpaced for the highest
sustained rate with zero loss (the stand-in feed waits when the md ring is full; nothing dropped).

    python bench/bench_tick_to_trade.py [--rates 10000,100000] [--events 200000] [--cpus 0,1]

Prints a table, writes bench/results/tick_to_trade.json and bench/results/tick_to_trade.png.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import pathlib
import signal
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

from livestack.config import Instrument  # noqa: E402
from livestack.ipc import Ring, new_session_id, remove_session, segment_name  # noqa: E402
from livestack.testing import _ringbench as _bench  # noqa: E402
from livestack.schema import RecordKind  # noqa: E402

INST = Instrument(1, "BENCH", "bench", price_decimals=2, qty_decimals=0, tick=1, lot=1)
RISK = {"max_order_qty": 10, "max_position": 10**12, "max_open_orders": 64}


def _kernel(every: int = 1):
    import numba
    from numba import types

    from livestack.strategies import kernels as K

    push = numba.njit(K.push, inline="always")
    words, kind, inst_i, side_i, price_i = K.CTX_WORDS, K.CTX_EV_KIND, K.CTX_EV_INST, K.CTX_EV_SIDE, 0
    from livestack.core import ctx as C
    price_i = C.CTX_EV_PRICE
    md_trade, new, ioc, limit = K.MD_TRADE, K.NEW, K.IOC, K.LIMIT

    @numba.cfunc(types.void(types.voidptr), nopython=True, no_cpython_wrapper=True)
    def one_order_per_trade(ptr):
        head = numba.carray(ptr, (1,), np.int64)
        w = numba.carray(ptr, (head[words],), np.int64)
        if w[kind] == md_trade and w[price_i] % every == 0:
            push(w, new, w[inst_i], w[side_i], w[price_i], 1, 0, ioc, limit)

    return one_order_per_trade


def _harness(names, cpu, ready, q, every=1):
    from livestack.core import CfuncStrategy, Core
    from livestack.harness import loop

    loop.install_signal_handlers()
    os.sched_setaffinity(0, {cpu})
    strat = CfuncStrategy(_kernel(every), "one_order_per_trade")
    core = Core([INST], RISK, strat)
    from livestack.telemetry.block import TelemetryBlock

    tel = TelemetryBlock.attach(names.pop("telemetry"), timeout=10)  # as in production: histograms on
    # the harness's ends, as harness/process.py takes them: it consumes md, exec and cmd
    rings = {k: Ring.attach(v, timeout=10, role="consumer" if k in ("md", "exec", "cmd") else "producer")
             for k, v in names.items()}
    h = loop.Harness(core, [rings["md"]], rings["exec"], rings["cmd"], rings["orders"], rings["records"],
                     rings["reply"], rings["events"], timer_interval_ns=10**9, telemetry=tel)
    ready.set()
    h.run(0.0, 0.5, False)
    c = core.counters()
    q.put({"md_events": c["md_events"], "orders_sent": c["orders_sent"],
           "denials": {k: v for k, v in c["denials_by_reason"].items() if v}})


def _snapshot(md):
    from livestack.core import inputs as I

    for r in I.snapshot(INST.id, time.time_ns(), bids=[(100_000, 10)], asks=[(100_010, 10)]):
        assert md.write(r.tobytes()) == 0


def run_case(period_ns, n, cpus, every=1):
    sid = new_session_id()
    try:
        mk = lambda name, cap, slot, kind=0: Ring.create(segment_name(sid, name), cap, slot, kind)  # noqa: E731
        rings = {"md": mk("md", 1 << 16, 64), "exec": mk("exec", 1 << 14, 128, RecordKind.EXEC),
                 "cmd": mk("cmd", 64, 128, RecordKind.CONTROL_CMD), "orders": mk("orders", 1 << 14, 64, RecordKind.ORDER_CMD),
                 "records": mk("records", 1 << 21, 128), "reply": mk("reply", 64, 128, RecordKind.CONTROL_REPLY),
                 "events": mk("events", 1 << 12, 128)}
        from livestack.telemetry.block import TelemetryBlock

        tel = TelemetryBlock.create(segment_name(sid, "telemetry"))
        ctx = mp.get_context("spawn")
        ready = ctx.Event()
        q = ctx.Queue()
        names = {k: r.name for k, r in rings.items()}
        names["telemetry"] = tel.name
        p = ctx.Process(target=_harness, args=(names, cpus[1], ready, q, every))
        p.start()
        if not ready.wait(60):
            raise RuntimeError("harness did not start")
        os.sched_setaffinity(0, {cpus[0]})
        _snapshot(rings["md"])
        lat = np.zeros(n, dtype=np.int64)
        got, full, ns = _bench.t2t_drive(rings["md"], rings["orders"], rings["exec"], rings["records"], n, period_ns,
                                          lat, INST.id, 100_005)
        os.kill(p.pid, signal.SIGTERM)
        hc = q.get(timeout=30)
        p.join(timeout=30)
        if hc["denials"]:
            print(f"  (denied by the core: {hc['denials']})")
        lost = n + 4 - hc["md_events"]  # + the 4 snapshot records
        return lat[: min(got, n)], got, full, ns, lost
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count())))
        remove_session(sid)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="10000,100000")
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--max-events", type=int, default=2_000_000, help="events of the unpaced run")
    ap.add_argument("--cpus", default="0,1")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    cpus = [int(c) for c in args.cpus.split(",")]
    results, hists = {}, {}
    for rate in (int(r) for r in args.rates.split(",")):
        per_run = []
        for _ in range(args.repeat):
            lat, got, full, ns, lost = run_case(int(1e9 / rate), args.events, cpus)
            warm = lat[len(lat) // 10:]  # first 10%: page faults, JIT, caches
            per_run.append((common.percentiles(warm), got, full, lost))
            hists[rate] = warm
        q = {k: float(np.median([r[0][k] for r in per_run])) for k in per_run[0][0]}
        results[f"{rate}/s"] = {**q, "orders": int(np.median([r[1] for r in per_run])),
                                "events": args.events, "md_ring_full_waits": int(max(r[2] for r in per_run)),
                                "lost": int(max(r[3] for r in per_run))}
    for every in (1, 64):
        lat, got, full, ns, lost = run_case(0, args.max_events, cpus, every)
        results[f"unpaced, an order per {every} trade(s)"] = {
            "events": args.max_events, "orders": got, "events_per_s": args.max_events / (ns / 1e9),
            # harness inputs: the md events plus one exec answer per order
            "inputs_per_s": (args.max_events + got) / (ns / 1e9), "md_ring_full_waits": full, "lost": lost,
            **common.percentiles(lat[len(lat) // 10:] if len(lat) > 10 else np.zeros(1, np.int64))}
    print(f"Tick-to-trade, feed+venue stand-in on CPU {cpus[0]} -> harness (telemetry on; numba strategy, one IOC "
          f"order per trade) pinned on CPU {cpus[1]}; median of {args.repeat} runs, first 10% dropped:")
    rows = [[k, f"{v['p50_ns'] / 1e3:.2f}", f"{v['p99_ns'] / 1e3:.2f}", f"{v['p99_9_ns'] / 1e3:.2f}",
             f"{v['max_ns'] / 1e3:.0f}", f"{v['orders']:,}", v["lost"]] for k, v in results.items()
            if not k.startswith("unpaced")]
    print(common.table(rows, ["rate", "p50 us", "p99 us", "p99.9 us", "max us", "orders", "lost"]))
    for k, u in results.items():
        if k.startswith("unpaced"):
            print(f"{k}: {u['events']:,} md events at {u['events_per_s'] / 1e6:.2f}M md events/s end to end "
                  f"({u['orders']:,} orders, each answered by an exec event: {u['inputs_per_s'] / 1e6:.2f}M harness "
                  f"inputs/s), md records lost {u['lost']}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(8, 4))
        for rate, v in hists.items():
            ax.hist(v / 1e3, bins=np.logspace(-1, 4, 150), histtype="step", label=f"{rate:,}/s")
        ax.set_xscale("log"), ax.set_yscale("log"), ax.set_xlabel("tick-to-trade us"), ax.set_ylabel("orders")
        ax.legend(), ax.set_title("livestack tick-to-trade (CO-corrected)")
        common.RESULTS.mkdir(exist_ok=True)
        fig.savefig(common.RESULTS / "tick_to_trade.png", dpi=100)
    except Exception as e:  # noqa: BLE001
        print(f"(no plot: {e})")
    print("wrote", common.write_result("tick_to_trade", {"results": results, "cpus": cpus}))


if __name__ == "__main__":
    main()
