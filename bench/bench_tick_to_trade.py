"""Tick-to-trade through the real harness: from the feed writing a market-data record to the venue
reading the order the core dispatched for it.

    CPU a (busy-spinning stand-in, Cython)             CPU b (harness process, busy-spinning)
    feed:  MD_TRADE ──md ring──────────────────────▶  Harness: journal → Core (numba strategy:
    venue: ◀──orders ring── ORDER_CMD (ts = md ts)     one IOC order per trade) → orders ring
           ──exec ring──▶ CANCELED (IOC unfilled) ──▶  → exec handled → records ring (drained)

The strategy stays inside its risk limits: it sends only while its instrument has fewer live orders
than ``max_open_orders`` (the core's own count, from the context block), so the core denies nothing
and the table counts orders dispatched, trades skipped by the strategy, and denials (0 expected).

Latency per order = venue read time - the md record's *intended* send time (the core stamps the
input's ts on what it dispatches), so a feed that falls behind its schedule shows up as latency:
corrected for coordinated omission. Paced at the given rates; then unpaced for the highest
sustained rate with zero loss (the stand-in feed waits when the md ring is full; nothing dropped).

    python bench/bench_tick_to_trade.py [--rates 10000,100000] [--events 200000] [--cpus 0,1]

Each case is followed by the machine's floor for the same duration on the same CPUs: a pinned busy
loop per CPU (bench/c/hiccup.c) reading the clock back to back and counting gaps > 1 us, > 10 us and
the longest. A spinning process on those CPUs cannot see a tail shorter than that floor. The
per-stage breakdown comes from the harness's telemetry histograms (whole run, warm-up included):
ring_wait (md intended send time -> harness pickup: feed lateness + md ring), core (one input),
tick_to_trade (md time -> order written to the orders ring); the venue read is the bench's own
latency minus the telemetry tick_to_trade.

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
    inst_off, n_live, max_live = K.CTX_INST_OFF, K.INST_N_LIVE, RISK["max_open_orders"]

    @numba.cfunc(types.void(types.voidptr), nopython=True, no_cpython_wrapper=True)
    def one_order_per_trade(ptr):
        head = numba.carray(ptr, (1,), np.int64)
        w = numba.carray(ptr, (head[words],), np.int64)
        # one instrument (index 0): stay under max_open_orders, as a real strategy must
        if w[kind] == md_trade and w[price_i] % every == 0 and w[w[inst_off] + n_live] < max_live:
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
    q.put({"md_events": c["md_events"], "orders_sent": c["orders_sent"], "denials_total": c["denials"],
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
        hc["stages"] = {k: v for k, v in ((h, tel.histogram(h)) for h in ("ring_wait", "core", "tick_to_trade",
                                                                            "venue_rtt"))}
        for v in hc["stages"].values():
            v.pop("buckets", None)
        tel.close()
        os.sched_setaffinity(0, set(range(os.cpu_count())))
        hc["floor"] = floor(cpus, ns)  # the same CPUs, the same duration, right after
        lost = n + 4 - hc["md_events"]  # + the 4 snapshot records
        return lat[: min(got, n)], got, full, ns, lost, hc
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count())))
        remove_session(sid)


floor = common.hiccup_floor


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

    def extra(hc, lat):
        """Telemetry stages (median over the run's histograms) and the floor, for one run."""
        st = hc["stages"]
        t2t_p50 = st["tick_to_trade"]["p50_ns"] or 0
        return {"denials": hc["denials_total"], "floor": hc["floor"], "stages": st,
                "venue_read_p50_ns": float(np.median(lat)) - t2t_p50 if len(lat) else None}

    for rate in (int(r) for r in args.rates.split(",")):
        per_run = []
        for _ in range(args.repeat):
            lat, got, full, ns, lost, hc = run_case(int(1e9 / rate), args.events, cpus)
            warm = lat[len(lat) // 10:]  # first 10%: page faults, JIT, caches
            per_run.append((common.percentiles(warm), got, full, lost, extra(hc, warm)))
            hists[rate] = warm
        q = {k: float(np.median([r[0][k] for r in per_run])) for k in per_run[0][0]}
        results[f"{rate}/s"] = {**q, "orders": int(np.median([r[1] for r in per_run])),
                                "events": args.events, "md_ring_full_waits": int(max(r[2] for r in per_run)),
                                "lost": int(max(r[3] for r in per_run)),
                                "denials": int(max(r[4]["denials"] for r in per_run)),
                                "p99_runs_ns": [r[0]["p99_ns"] for r in per_run],
                                "runs": [r[4] for r in per_run]}
    for every in (1, 64):
        lat, got, full, ns, lost, hc = run_case(0, args.max_events, cpus, every)
        results[f"unpaced, an order per {every} trade(s)"] = {
            "events": args.max_events, "orders": got, "events_per_s": args.max_events / (ns / 1e9),
            # harness inputs: the md events plus one exec answer per order
            "inputs_per_s": (args.max_events + got) / (ns / 1e9), "md_ring_full_waits": full, "lost": lost,
            **common.percentiles(lat[len(lat) // 10:] if len(lat) > 10 else np.zeros(1, np.int64)),
            "runs": [extra(hc, lat[len(lat) // 10:])], "denials": hc["denials_total"]}
    print(f"Tick-to-trade, feed+venue stand-in on CPU {cpus[0]} -> harness (telemetry on; numba strategy, one IOC "
          f"order per trade while under max_open_orders) pinned on CPU {cpus[1]}; median of {args.repeat} runs, "
          f"first 10% dropped; load average {os.getloadavg()[0]:.1f}:")

    def fl(v):  # the floor of the median run: gaps > 1 us / > 10 us, longest, on the same CPUs, same duration
        f = v["runs"][len(v["runs"]) // 2]["floor"]
        return f"{f['over_1us']:,}/{f['over_10us']:,}/{f['max_ns'] / 1e3:.0f}"
    rows = [[k, f"{v['p50_ns'] / 1e3:.2f}", f"{v['p99_ns'] / 1e3:.2f}", f"{v['p99_9_ns'] / 1e3:.2f}",
             f"{v['max_ns'] / 1e3:.0f}", fl(v), f"{v['orders']:,}", v["denials"], v["lost"]] for k, v in results.items()
            if not k.startswith("unpaced")]
    print(common.table(rows, ["rate", "p50 us", "p99 us", "p99.9 us", "max us", "floor gaps >1us/>10us/max us",
                              "orders", "denials", "lost"]))
    print("\nPer stage (telemetry histograms of the median run, bucket upper bounds; us p50 / p99 / max):")
    srows = []
    for k, v in results.items():
        st = v["runs"][len(v["runs"]) // 2]["stages"]
        cell = lambda h: (f"{(h['p50_ns'] or 0) / 1e3:.2f} / {(h['p99_ns'] or 0) / 1e3:.2f} / "  # noqa: E731
                          f"{(h['max_ns'] or 0) / 1e3:.0f}")
        vr = v["runs"][len(v["runs"]) // 2]["venue_read_p50_ns"]
        srows.append([k.split(",")[0] if not k.startswith("unpaced") else k.replace("unpaced, an order per ", "unpaced 1/"),
                      cell(st["ring_wait"]), cell(st["core"]), cell(st["tick_to_trade"]),
                      f"{(vr or 0) / 1e3:.2f}", cell(st["venue_rtt"])])
    print(common.table(srows, ["run", "ring_wait (feed->pickup)", "core (1 input)", "md -> orders ring",
                               "bench p50 - t2t p50 (venue read)", "venue_rtt"]))
    for k, u in results.items():
        if k.startswith("unpaced"):
            print(f"{k}: {u['events']:,} md events at {u['events_per_s'] / 1e6:.2f}M md events/s end to end "
                  f"({u['orders']:,} orders, each answered by an exec event: {u['inputs_per_s'] / 1e6:.2f}M harness "
                  f"inputs/s), md records lost {u['lost']}, denials {u['denials']}")
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
    print("wrote", common.write_result("tick_to_trade", {"results": results, "cpus": cpus,
                                                          "load_average_1m": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
