"""SDK overhead (issue 13): the built-in market maker written on the Strategy SDK (hooks, named
views, typed params) against the same market maker as it was before the SDK (raw word offsets,
one ``on_event``; kept verbatim in ``bench/legacy/``), per flavour, on the same decoded capture.

    legacy  (bench/legacy)              SDK (livestack.strategies)
    legacy_mm.pyx  -> compiled by the   mm_cy     (SdkStrategy.on_event -> on_book/... vtable)
                      strategy loader
    legacy_numba.mm_kernel (cfunc)      mm_numba  (numba_sdk: one cfunc, hooks njit-inlined)
    legacy_kernels.mm_body via on_event mm_py     (PyHooks -> on_book -> kernels.mm_body)

Figures: core-only events/s (``Core.run_count``: process()+clear_outputs() per record; no venue
answers, so quotes stay in flight) and backtest events/s (+ the in-process simulated venue's
execution events: acks, fills, replaces -- the order-churn path), medians of ``repeat`` runs taken
round-robin (legacy and SDK alternate, so a noisy neighbour hits both).
Called by ``bench/bench_core.py --sdk``.
"""

from __future__ import annotations

import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
LEGACY = ROOT / "bench" / "legacy"


def _legacy():
    sys.path.insert(0, str(LEGACY))
    import legacy_kernels as LK
    import legacy_numba

    from livestack.core.strategy import CfuncStrategy, PyStrategy
    from livestack.strategies import loader

    mod = loader._import_file(loader.build_pyx(LEGACY / "legacy_mm.pyx"))

    class LegacyPy:
        def on_event(self, w):
            LK.mm_body(w)

    return {
        "cython": lambda: mod.MarketMaker("legacy_mm_cy"),
        "numba": lambda: CfuncStrategy(legacy_numba.mm_kernel(), "legacy_mm_numba", LK.MM_PARAM_NAMES,
                                       LK.MM_PARAM_DEFAULTS),
        "python": lambda: PyStrategy(LegacyPy(), "legacy_mm_py", LK.MM_PARAM_NAMES, LK.MM_PARAM_DEFAULTS),
    }


def run(md, instrument, risk, repeat=7, python=True, python_records=100_000):
    """{flavour: {legacy/sdk events/s medians, overhead}}; Python on the first ``python_records``."""
    from livestack import strategies
    from livestack.core import Core

    legacy = _legacy()
    sdk = {"cython": lambda: strategies.get("mm_cy"), "numba": lambda: strategies.get("mm_numba"),
           "python": lambda: strategies.get("mm_py")}
    flavours = ["cython", "numba"] + (["python"] if python else [])
    from livestack.backtest.sim import run as backtest_run

    rates = {f: {"legacy": [], "sdk": [], "legacy_bt": [], "sdk_bt": []} for f in flavours}
    counts = {}
    for r in range(repeat):
        for f in flavours:
            if f == "python" and r >= 3:
                continue
            data = md[:python_records] if f == "python" else md
            order = ("legacy", "sdk") if r % 2 == 0 else ("sdk", "legacy")
            for which in order:
                c = Core([instrument], risk, (legacy if which == "legacy" else sdk)[f]())
                t0 = time.perf_counter()
                c.run_count(data)
                rates[f][which].append(len(data) / (time.perf_counter() - t0))
                counts[(f, which)] = c.counters()["orders_sent"]
                c = Core([instrument], risk, (legacy if which == "legacy" else sdk)[f]())
                t0 = time.perf_counter()
                o = backtest_run(c, data, collect=False)
                rates[f][which + "_bt"].append(o["inputs"] / (time.perf_counter() - t0))
                counts[(f, which, "bt")] = c.counters()["orders_sent"]
    out = {}
    for f in flavours:
        lg, sd = statistics.median(rates[f]["legacy"]), statistics.median(rates[f]["sdk"])
        assert counts[(f, "legacy")] == counts[(f, "sdk")], f"{f}: legacy and SDK sent different orders"
        assert counts[(f, "legacy", "bt")] == counts[(f, "sdk", "bt")], f"{f}: backtest orders differ"
        lgb, sdb = statistics.median(rates[f]["legacy_bt"]), statistics.median(rates[f]["sdk_bt"])
        # overhead: median over rounds of the paired ratio (legacy and SDK ran back to back in each
        # round), robust to the load drifting between rounds on a shared machine
        paired = statistics.median(s_ / l_ for s_, l_ in zip(rates[f]["sdk"], rates[f]["legacy"]))
        paired_bt = statistics.median(s_ / l_ for s_, l_ in zip(rates[f]["sdk_bt"], rates[f]["legacy_bt"]))
        out[f] = {"backtest_legacy_events_per_s_median": lgb, "backtest_sdk_events_per_s_median": sdb,
                  "backtest_overhead_pct": 100.0 * (1.0 - paired_bt),
                  "overhead_of_medians_pct": 100.0 * (lg - sd) / lg,
                  "backtest_orders_sent": counts[(f, "sdk", "bt")],"legacy_events_per_s_median": lg, "sdk_events_per_s_median": sd,
                  "overhead_pct": 100.0 * (1.0 - paired), "runs": len(rates[f]["sdk"]),
                  "legacy_runs_events_per_s": rates[f]["legacy"], "sdk_runs_events_per_s": rates[f]["sdk"],
                  "orders_sent": counts[(f, "sdk")],
                  "records": python_records if f == "python" else len(md)}
    return out


BOUNDS = {"cython": 5.0, "numba": 10.0}


def report(out) -> list[str]:
    lines = ["SDK overhead: built-in market maker on the SDK vs the same MM before the SDK (core-only ev/s medians;",
             "overhead = 1 - median over rounds of sdk/legacy, the two run back to back in each round)"]
    for f, r in out.items():
        bound = BOUNDS.get(f)
        verdict = "" if bound is None else (f"  bound {bound:.0f}%: {'met' if r['overhead_pct'] <= bound else 'NOT met'}")
        lines.append(f"  {f:7s} legacy {r['legacy_events_per_s_median'] / 1e6:7.2f}M  sdk {r['sdk_events_per_s_median'] / 1e6:7.2f}M"
                     f"  overhead {r['overhead_pct']:+6.1f}%  ({r['runs']} runs, {r['records']:,} records, "
                     f"{r['orders_sent']:,} orders){verdict}")
        lines.append(f"  {'':7s} backtest: legacy {r['backtest_legacy_events_per_s_median'] / 1e6:5.2f}M  sdk "
                     f"{r['backtest_sdk_events_per_s_median'] / 1e6:5.2f}M  overhead {r['backtest_overhead_pct']:+6.1f}%  "
                     f"({r['backtest_orders_sent']:,} orders: venue answers, order churn)")
    return lines
