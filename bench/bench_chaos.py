"""Chaos: a seeded random SIGKILL loop over the default simulated stack (issue 14.6).

    Supervisor ── writer, harness (pinned), warm standby harness, sim venue (+ sim market), control
        SIGKILL: the harness (3 of 4 kills) or the venue / writer / control / standby process (every
        4th, when it has been up long enough not to count as a crash loop), every 0.3-1.0 s
        harness kill ──▶ supervisor promotes the warm standby (it runs the journal's tail only)
                         or, none ready, starts a fresh harness (it re-runs the whole journal) ──▶ RECOVERING
            ──▶ STATUS per open order ──▶ sim venue answers ──▶ ACTIVE   (measured: kill -> the
            TRADING_STATE record that ends the recovery seen in the session file, wall clock; an
            upper bound: the writer's 20 ms flush and a 10 ms poll are included)

After the stop: duplicate NewOrders, lost / double-applied fills, positions vs the venue's fills,
record-stream contiguity and ``replay --verify`` over the whole file (livestack/testing/chaos.py).

    python bench/bench_chaos.py [--kills 200] [--seed 14] [--max-minutes M] [--wait-standby] [--standby N]
                                [--venue sim|fix] [--mass-status]

The table splits the kill -> ACTIVE figures by path: takeovers by a warm standby, and recoveries
that found none ready (a standby is still being built after the previous takeover: the kills
come every 0.3-1.0 s). ``--wait-standby`` waits for a warm standby before each harness kill.

``--venue fix`` runs the same loop with the FIX venue against the QuickFIX test exchange
(``livestack.testing.chaos.FixPeer``), which fills resting orders between kills.

Prints a table and writes bench/results/chaos.json (chaos_fix.json with ``--venue fix``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
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
    ap.add_argument("--wait-standby", action="store_true",
                    help="before each harness kill wait until a warm standby is ready (every recovery a takeover)")
    ap.add_argument("--standby", type=int, default=1, help="[recovery] standby: warm standby harnesses (0: none)")
    ap.add_argument("--venue", choices=("sim", "fix"), default="sim",
                    help="fix: the FIX venue against the QuickFIX test exchange (needs quickfix), which fills "
                         "resting orders between kills")
    ap.add_argument("--mass-status", action="store_true", help="fix: recover with 35=AF and 35=AN")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    work = tempfile.mkdtemp(prefix="ls-chaos-")
    extra = {"recovery": {"recover_timeout_s": 10.0, "standby": args.standby}}
    with contextlib.ExitStack() as stack:
        on_gap = None
        if args.venue == "fix":
            from livestack.testing.chaos import FixPeer

            peer = stack.enter_context(FixPeer(work, mass=args.mass_status))
            extra.update(peer.config)
            on_gap = peer.fill_some
        res = run_chaos(os.path.join(work, "records"), args.kills, args.seed,
                        on_kill=lambda k, name: print(f"kill {k + 1}/{args.kills}: {name}", flush=True)
                        if (k + 1) % 20 == 0 else None, max_s=args.max_minutes * 60 or None,
                        wait_standby=args.wait_standby, extra_config=extra, on_gap=on_gap)
    wall = time.monotonic() - t0
    ms = np.array(res.recover_ms)
    via = np.array(res.via_standby, dtype=bool)
    warm = np.array(res.warm_at_kill, dtype=bool)

    def pct(x):
        return common.percentiles((x * 1e6).astype(np.int64)) if len(x) else {}

    q, q_standby, q_fresh = pct(ms), pct(ms[via]), pct(ms[~via])
    c = res.checks
    print(f"Chaos on the {'default simulated stack' if args.venue == 'sim' else 'FIX venue vs QuickFIX'}: "
          f"{sum(res.kills.values())} SIGKILLs ({res.kills}), seed {args.seed}, "
          f"{wall:.0f} s")
    rows = [[what, str(n), f"{x.get('p50_ns', 0) / 1e6:.0f}", f"{x.get('p99_ns', 0) / 1e6:.0f}",
             f"{x.get('max_ns', 0) / 1e6:.0f}"]
            for what, n, x in (("harness kill -> ACTIVE again (reconciled, seen in the file): all", len(ms), q),
                               ("  the warm standby took over", int(via.sum()), q_standby),
                               ("    it had run the whole journal when the kill came", int((via & warm).sum()),
                                pct(ms[via & warm])),
                               ("    it was still reading the journal (started at the last takeover)",
                                int((via & ~warm).sum()), pct(ms[via & ~warm])),
                               ("  no standby ready: a fresh harness re-ran the journal", int((~via).sum()), q_fresh))]
    print(common.table(rows, ["path", "kills", "p50 ms", "p99 ms", "max ms"]))
    print(common.table([[k, str(c.get(k))] for k in ("new_orders", "duplicate_orders", "venue_fills", "applied_fills",
                                                      "lost_fills", "double_fills", "exec_unconsumed", "exec_unconsumed_fills",
                                                      "exec_unconsumed_unexplained",
                                                      "positions_equal", "contiguous", "records", "journal_inputs",
                                                      "replay_verified",
                                                      "stop_rc")],
                       ["check", "value"]))
    print("wrote", common.write_result("chaos" if args.venue == "sim" else "chaos_fix", {
                                                 "venue": args.venue, "mass_status": args.mass_status,
                                                 "kills": res.kills, "seed": args.seed, "wall_s": wall,
                                                 "recover_ms": res.recover_ms, "via_standby": res.via_standby,
                                                 "warm_at_kill": res.warm_at_kill,
                                                 "wait_standby": args.wait_standby, "standby": args.standby,
                                                 "standby_p50_ns": q_standby.get("p50_ns"),
                                                 "standby_p99_ns": q_standby.get("p99_ns"),
                                                 "fresh_p50_ns": q_fresh.get("p50_ns"), "fresh_p99_ns": q_fresh.get("p99_ns"),
                                                 **q,
                                                 **{k: v for k, v in c.items() if k != "replay_divergence"}}))
    ok = (c.get("duplicate_orders") == 0 and c.get("lost_fills") == 0 and c.get("double_fills") == 0
          and c.get("positions_equal") and c.get("contiguous") and c.get("replay_verified")
          and c.get("exec_unconsumed_fills") == 0 and c.get("exec_unconsumed_unexplained") == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
