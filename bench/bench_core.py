"""Core Runtime throughput and per-event latency on the real Binance USD-M capture.

What is measured (one process, one thread, the capture decoded to records beforehand; decoding
is not timed)::

    decoded USD-M records (532,667 MD_LEVEL/TRADE/BBO/STATUS)
         │
         ├─ A. core only:  for each record: Core.process(rec); clear_outputs()      (Core.run_count)
         │     = the harness's per-event work without the rings; orders are sent but no venue
         │       answers, so quotes stay in flight (little order churn).
         │
         ├─ B. backtest:   A + execution events from the in-process simulated venue fed back
         │     before the next record (acks, fills, cancels, replaces: real order churn)
         │
         └─ C. latency:    A with CLOCK_MONOTONIC read around every process() call, into a
               1-ns histogram (livestack.backtest.timing); the cost of the clock pair is measured
               on an empty interval and shown, not subtracted.

Each throughput figure is the best and the median of --repeat runs, taken round-robin over the
strategies (the machine is shared with other work: best = least disturbed). Strategies: no strategy, numba market maker (cfunc via C function pointer), Cython market
maker (vtable call), Python market maker (GIL taken per call), and the two takers.

    .venv/bin/python bench/bench_core.py [--data PATH] [--repeat 5] [--no-python] [--sdk | --sdk-only]
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import machine, table, write_result  # noqa: E402

from livestack import strategies  # noqa: E402
from livestack.backtest import DEFAULT_RISK  # noqa: E402
from livestack.backtest.sim import run as backtest_run  # noqa: E402
from livestack.backtest.timing import measure  # noqa: E402
from livestack.config import BTCUSDT_USDM  # noqa: E402
from livestack.core import Core  # noqa: E402

TARGET = 10_000_000


def _pct(hist, q):
    c = np.cumsum(hist)
    return int(np.searchsorted(c, q / 100.0 * c[len(c) - 1]))


def _core(name):
    return Core([BTCUSDT_USDM], DEFAULT_RISK, strategies.get(name))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "binance" / "usdm-btcusdt-20240808.gz"))
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--no-python", action="store_true", help="skip the (slow) Python market maker")
    ap.add_argument("--sdk", action="store_true",
                    help="also measure the Strategy SDK's overhead (bench/sdk_overhead.py): the SDK market maker "
                         "vs the pre-SDK one per flavour; writes bench/results/core_sdk.json")
    ap.add_argument("--sdk-only", action="store_true", help="only the SDK overhead section")
    args = ap.parse_args(argv)

    from livestack.feeds.capture import decode_capture

    t0 = time.perf_counter()
    md = decode_capture(args.data, BTCUSDT_USDM, "usdm")
    decode_s = time.perf_counter() - t0
    if args.sdk or args.sdk_only:
        import sdk_overhead

        sdk = sdk_overhead.run(md, BTCUSDT_USDM, DEFAULT_RISK, repeat=args.repeat, python=not args.no_python)
        print("\n".join(sdk_overhead.report(sdk)))
        path = write_result("core_sdk", {"data": args.data, "records": len(md), "repeat": args.repeat,
                                         "bounds_pct": sdk_overhead.BOUNDS, "results": sdk})
        print(f"  wrote {path}")
        if args.sdk_only:
            return 0
    names = ["none", "mm_numba", "mm_cy"] + ([] if args.no_python else ["mm_py"]) + ["taker_numba", "taker_cy"]
    for n in names:  # compile numba kernels before timing
        strategies.get(n)

    def core_only(name):
        c = _core(name)
        t0 = time.perf_counter()
        c.run_count(md)
        return len(md) / (time.perf_counter() - t0), c.counters()

    def backtest(name):
        c = _core(name)
        t0 = time.perf_counter()
        out = backtest_run(c, md, collect=False)
        return out["inputs"] / (time.perf_counter() - t0), c.counters()

    # round-robin: every strategy once per round, so a noisy neighbour spreads over all of them
    rates = {n: {"a": [], "b": []} for n in names}
    cnt = {}
    for r in range(args.repeat):
        for name in names:
            if name.endswith("_py") and r > 0:
                continue
            ra, cnt_a = core_only(name)
            rb, cnt_b = backtest(name)
            rates[name]["a"].append(ra)
            rates[name]["b"].append(rb)
            cnt[name] = (cnt_a, cnt_b)

    rows, results = [], {}
    for name in names:
        a, b = rates[name]["a"], rates[name]["b"]
        a_cnt, b_cnt = cnt[name]
        hist, over = measure(_core(name), md)
        lat = {"p50_ns": _pct(hist, 50), "p99_ns": _pct(hist, 99), "p99_9_ns": _pct(hist, 99.9),
               "max_ns_capped": int(np.nonzero(hist)[0].max()), "clock_pair_p50_ns": _pct(over, 50)}
        results[name] = {
            "core_only_events_per_s": max(a), "core_only_events_per_s_median": statistics.median(a),
            "core_only_strategy_calls": a_cnt["strategy_calls"], "core_only_orders": a_cnt["orders_sent"],
            "backtest_events_per_s": max(b), "backtest_events_per_s_median": statistics.median(b),
            "backtest_orders": b_cnt["orders_sent"], "backtest_fills": b_cnt["fills"],
            "latency": lat, "runs": len(a),
        }
        rows.append([name, f"{max(a) / 1e6:.1f}M", f"{statistics.median(a) / 1e6:.1f}M", f"{max(b) / 1e6:.1f}M",
                     f"{statistics.median(b) / 1e6:.1f}M", f"{b_cnt['orders_sent']:,}", f"{b_cnt['fills']:,}",
                     lat["p50_ns"], lat["p99_ns"], lat["p99_9_ns"], lat["clock_pair_p50_ns"]])

    m = machine()
    print(f"Core Runtime on {args.data}")
    print(f"  {len(md):,} decoded records (decode {decode_s:.2f} s, not timed); {args.repeat} runs round-robin "
          f"(Python MM: 1); one thread on {m['cpu']} ({m['cores']} cores, shared), {m['when']}")
    print(table(rows, ["strategy", "core best", "core median", "backtest best", "backtest median", "orders",
                       "fills", "p50 ns", "p99 ns", "p99.9 ns", "clock ns"]))
    print("  core ev/s: process()+clear_outputs() per record, no venue answers; backtest ev/s: + simulated")
    print("  venue execution events fed back (counted as events); latency: one process() call, clock pair included.")
    worst_median = min(results[n]["core_only_events_per_s_median"] for n in ("mm_numba", "mm_cy"))
    print(f"  target >= {TARGET / 1e6:.0f}M events/s with a compiled market maker: "
          f"{'met' if worst_median >= TARGET else 'NOT met'} by the median of both compiled flavours "
          f"(lowest median {worst_median / 1e6:.1f}M)")
    path = write_result("core", {"data": args.data, "records": len(md), "decode_s": decode_s,
                                 "repeat": args.repeat, "target_events_per_s": TARGET, "results": results})
    print(f"  wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
