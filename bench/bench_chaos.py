"""Chaos: a seeded random SIGKILL loop over the default simulated stack (issue 14.6).

    Supervisor ── writer, harness (pinned), sim venue (+ sim market), control
        SIGKILL: the harness (3 of 4 kills) or the venue / writer / control process (every 4th,
        when it has been up long enough not to count as a crash loop), every 0.3-1.0 s
        harness kill ──▶ supervisor restarts it ──▶ core rebuilt from the journal ──▶ RECOVERING
            ──▶ STATUS per open order ──▶ sim venue answers ──▶ ACTIVE   (measured: kill -> the
            TRADING_STATE record that ends the recovery seen in the session file, wall clock; an
            upper bound: the writer's 20 ms flush and a 10 ms poll are included)

After the stop: duplicate NewOrders, lost / double-applied fills, positions vs the venue's fills,
record-stream contiguity and ``replay --verify`` over the whole file (livestack/testing/chaos.py).

    python bench/bench_chaos.py [--kills 200] [--seed 14]

Prints a table and writes bench/results/chaos.json.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

from livestack.testing.chaos import run_chaos  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--max-minutes", type=float, default=0.0, help="stop killing after this long (0: never)")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    res = run_chaos(tempfile.mkdtemp(prefix="ls-chaos-"), args.kills, args.seed,
                    on_kill=lambda k, name: print(f"kill {k + 1}/{args.kills}: {name}", flush=True)
                    if (k + 1) % 20 == 0 else None, max_s=args.max_minutes * 60 or None)
    wall = time.monotonic() - t0
    ms = np.array(res.recover_ms)
    q = common.percentiles((ms * 1e6).astype(np.int64)) if len(ms) else {}
    c = res.checks
    print(f"Chaos on the default simulated stack: {sum(res.kills.values())} SIGKILLs ({res.kills}), seed {args.seed}, "
          f"{wall:.0f} s")
    print(common.table([["harness kill -> ACTIVE again (reconciled, seen in the file)", f"{q.get('p50_ns', 0) / 1e6:.0f}",
                         f"{q.get('p99_ns', 0) / 1e6:.0f}", f"{q.get('max_ns', 0) / 1e6:.0f}"]],
                       ["path", "p50 ms", "p99 ms", "max ms"]))
    print(common.table([[k, str(c.get(k))] for k in ("new_orders", "duplicate_orders", "venue_fills", "applied_fills",
                                                      "lost_fills", "double_fills", "exec_unconsumed",
                                                      "positions_equal", "contiguous", "records", "journal_inputs",
                                                      "replay_verified",
                                                      "stop_rc")],
                       ["check", "value"]))
    print("wrote", common.write_result("chaos", {"kills": res.kills, "seed": args.seed, "wall_s": wall,
                                                 "recover_ms": res.recover_ms, **q,
                                                 **{k: v for k, v in c.items() if k != "replay_divergence"}}))
    ok = (c.get("duplicate_orders") == 0 and c.get("lost_fills") == 0 and c.get("double_fills") == 0
          and c.get("positions_equal") and c.get("contiguous") and c.get("replay_verified"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
