"""Session-file bytes per million md events (schema 3 journal copies vs schema 4 index), and Parquet
export rows/s (issue 17).

::

    shared capture ──decode──▶ backtest (core + matching engine, journal=True)
        = the record stream a live harness sends the writer: each consumed input (flag JOURNAL)
          followed by the outputs it caused (order states, fills, book_levels …), seq 1..n
                 │
                 ├──▶ writer of schema 3 (git BASE:livestack/records/writer.py: /journal = 128-byte copies)
                 └──▶ writer of schema 4 (this tree: inputs in their kinds' datasets, /journal = 18-byte index)
                          │
                          └──▶ records export --parquet (rows/s over every table)

Usage: ``python bench/bench_records.py [--data FILE] [--market usdm|spot] [--base REV] [--repeat N]``.
Prints a table and writes bench/results/records.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import common  # noqa: E402


def _old_writer(base: str):
    """The RecordWriter of revision ``base`` (schema 3: 128-byte journal copies), loaded from git."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{base}:livestack/records/writer.py"],
                         check=True, capture_output=True, text=True).stdout
    d = tempfile.mkdtemp()
    p = os.path.join(d, "writer_v3.py")
    with open(p, "w") as f:
        f.write(src)
    spec = importlib.util.spec_from_file_location("livestack.records._writer_v3", p)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.RecordWriter


def _stream(data: str, market: str):
    from livestack.backtest import session as bs
    from livestack.feeds.capture import decode_capture
    from livestack.node import config as cfgmod

    info = bs.sniff_capture(data)
    cfg = bs.backtest_config(None, "mm_cy", market, info["symbol"])
    md = decode_capture(data, cfgmod.instruments(cfg)[0], market)
    out = bs.run(md, cfg, collect=True, journal=True)
    recs = out["records"]
    recs["seq"] = np.arange(1, len(recs) + 1, dtype=np.uint64)
    return cfg, recs, int(out["md_events"])


def _write(writer_cls, path: str, cfg, recs) -> int:
    from livestack.node import config as cfgmod

    attrs = {"session": "bench", "config": cfg, "instruments": [i.__dict__ for i in cfgmod.instruments(cfg)]}
    w = writer_cls(path, attrs, {"quiet": True})
    for a in range(0, len(recs), 1 << 16):
        w.write(recs[a:a + (1 << 16)])
    w.close()
    return os.path.getsize(path)


def _sizes(path: str) -> dict:
    import h5py

    with h5py.File(path, "r") as f:
        return {k: int(f[k].id.get_storage_size()) for k in f.keys() if f[k].shape[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = os.environ.get("LIVESTACK_DATA", str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--data", default=os.path.join(default, "binance", "usdm-btcusdt-20240808.gz"))
    ap.add_argument("--market", default="usdm")
    ap.add_argument("--base", default="489a534", help="git revision of the schema-3 writer (before)")
    ap.add_argument("--repeat", type=int, default=3, help="export passes (median rows/s)")
    args = ap.parse_args()
    from livestack.records.export import export_parquet
    from livestack.records.writer import RecordWriter

    cfg, recs, md_events = _stream(args.data, args.market)
    tmp = tempfile.mkdtemp(prefix="bench_records_")
    try:
        before = _write(_old_writer(args.base), os.path.join(tmp, "v3.h5"), cfg, recs)
        after = _write(RecordWriter, os.path.join(tmp, "v4.h5"), cfg, recs)
        sb, sa = _sizes(os.path.join(tmp, "v3.h5")), _sizes(os.path.join(tmp, "v4.h5"))
        rows = None
        walls = []
        for k in range(args.repeat):
            d = os.path.join(tmp, f"pq{k}")
            t0 = time.perf_counter()
            got = export_parquet(os.path.join(tmp, "v4.h5"), d)
            walls.append(time.perf_counter() - t0)
            rows = sum(v for n, v in got.items() if n != "instruments")
        pq_bytes = sum(p.stat().st_size for p in pathlib.Path(os.path.join(tmp, "pq0")).iterdir())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    per_m = lambda b: b / md_events * 1e6  # noqa: E731
    res = {
        "what": "session-file bytes per million md events, schema 3 (128-byte journal copies) vs schema 4 "
                "(inputs once in their kind's dataset + 18-byte journal index); Parquet export rows/s",
        "machine": common.machine(), "data": args.data, "market": args.market, "strategy": "mm_cy",
        "records": int(len(recs)), "md_events": md_events,
        "bytes_before": before, "bytes_after": after,
        "bytes_per_million_md_before": per_m(before), "bytes_per_million_md_after": per_m(after),
        "reduction": 1 - after / before,
        "datasets_before": sb, "datasets_after": sa,
        "export_rows": rows, "export_wall_s": walls, "export_rows_per_s_median": rows / statistics.median(walls),
        "parquet_bytes": pq_bytes, "parquet_bytes_per_million_md": per_m(pq_bytes),
    }
    print(f"{res['what']}\n  {args.data} ({md_events:,} md events, {len(recs):,} records, mm_cy backtest stream)\n")
    print(common.table([["schema 3 (before)", f"{before:,}", f"{per_m(before) / 2**20:,.1f} MiB"],
                        ["schema 4 (after)", f"{after:,}", f"{per_m(after) / 2**20:,.1f} MiB"],
                        ["parquet export", f"{pq_bytes:,}", f"{per_m(pq_bytes) / 2**20:,.1f} MiB"]],
                       ["layout", "file bytes", "per million md events"]))
    print(f"\n  {res['reduction']:.1%} smaller; export {rows:,} rows in {statistics.median(walls):.2f} s median "
          f"= {res['export_rows_per_s_median']:,.0f} rows/s")
    print("  datasets before: " + ", ".join(f"{k} {v:,}" for k, v in sorted(sb.items())))
    print("  datasets after:  " + ", ".join(f"{k} {v:,}" for k, v in sorted(sa.items())))
    out = common.write_result("records", res)
    print(f"  -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
