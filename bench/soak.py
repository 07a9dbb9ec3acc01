"""Soak: run the default stack (simulated market + exchange + market maker) for a long time at a
paced market-data rate and sample every process's resident memory; it must stay flat after
warm-up and the run must lose nothing.

    python bench/soak.py [--minutes 10] [--rate 100000] [--sample-s 5]

"Flat" = the RSS growth from the end of warm-up (first 20% of the run) to the end is below
--max-growth-mib per process. "Loses nothing" = no ring overflow counted and the records file
holds a contiguous record-stream sequence. Prints a table, writes bench/results/soak.json and a
PNG of RSS over time.
"""

from __future__ import annotations

import argparse
import io
import pathlib
import sys
import time

import numpy as np
import psutil

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

from livestack.node import config  # noqa: E402
from livestack.node.supervisor import Supervisor  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=int, default=100_000, help="market-data events/s from the simulated venue")
    ap.add_argument("--sample-s", type=float, default=5.0)
    ap.add_argument("--max-growth-mib", type=float, default=8.0)
    ap.add_argument("--records-dir", default="/tmp/livestack-soak")
    args = ap.parse_args(argv)

    cfg = config.validate({
        "session": {"records_dir": args.records_dir, "status_interval_s": 0.0},
        "venue": {"kind": "sim", "options": {"events_per_s": float(args.rate)}},
    })
    sup = Supervisor(cfg, out=io.StringIO())
    sup.start()
    samples = []  # (t, {name: rss})
    t0 = time.monotonic()
    end = t0 + args.minutes * 60
    try:
        while time.monotonic() < end:
            if not sup.poll():
                raise SystemExit("soak: the harness died: " + "; ".join(sup.events))
            row = {}
            for name, m in sup.procs.items():
                try:
                    row[name] = psutil.Process(m.proc.pid).memory_info().rss
                except psutil.NoSuchProcess:
                    row[name] = float("nan")
            samples.append((time.monotonic() - t0, row, sup.status()))
            time.sleep(args.sample_s)
    finally:
        sup.stop()

    names = list(samples[0][1])
    ts = np.array([s[0] for s in samples])
    warm = ts >= 0.2 * ts[-1]
    rows, growth = [], {}
    for n in names:
        rss = np.array([s[1][n] for s in samples]) / 2**20
        w = rss[warm]
        growth[n] = float(w[-1] - w[0])
        rows.append([n, f"{rss[0]:.1f}", f"{w[0]:.1f}", f"{w[-1]:.1f}", f"{growth[n]:+.1f}",
                     "flat" if growth[n] < args.max_growth_mib else "GROWING"])
    last = samples[-1][2]
    # "loses nothing": the session file's record stream, checked row by row (streaming)
    from livestack.records import open_session

    with open_session(sup.records_path) as sess:
        seq = sess.seq_report()
        counts = sess.counts()
    print(f"Soak: default stack, simulated market at {args.rate:,} events/s for {args.minutes} min, "
          f"RSS sampled every {args.sample_s}s:")
    print(common.table(rows, ["process", "start MiB", "after warm-up", "end", "growth", "verdict"]))
    print(f"market-data records consumed by the harness: {last['md']:,}; orders {last['orders']:,}; "
          f"records produced {last['records']:,}, written {last['records_written']:,}")
    tel = (last.get("telemetry") or {}).get("counters", {})
    overflow = {k: v for k, v in tel.items() if ("overflow" in k or k == "events_dropped") and v}
    # (the last sample predates the stop: the file must hold at least what was produced by then)
    lost = not seq["contiguous"] or seq["records"] < last["records"] or bool(overflow)
    print(f"records file {sup.records_path}: {seq['records']:,} records, seq {seq['first']:,}..{seq['last']:,}, "
          f"{seq['missing']:,} missing, {seq['duplicates']:,} duplicated; journal {counts.get('journal', 0):,} "
          f"inputs; ring overflows {overflow or 'none counted'} -> "
          + ("LOST RECORDS" if lost else "lost nothing"))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(8, 4))
        for n in names:
            ax.plot(ts, [s[1][n] / 2**20 for s in samples], label=n)
        ax.set_xlabel("s"), ax.set_ylabel("RSS MiB"), ax.legend(), ax.set_title("livestack soak: RSS per process")
        fig.savefig(common.RESULTS / "soak_rss.png", dpi=100)
    except Exception as e:  # noqa: BLE001 - the plot is a convenience
        print(f"(no plot: {e})")
    common.write_result("soak", {"minutes": args.minutes, "rate": args.rate, "growth_mib": growth,
                                 "rss_mib": {n: [s[1][n] / 2**20 for s in samples] for n in names},
                                 "t_s": ts.tolist(), "records_file": seq,
                                 "lost_nothing": not lost, "final": {k: v for k, v in last.items() if k != "telemetry"}})


    return 0 if not lost and all(g < args.max_growth_mib for g in growth.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
