"""The exact book: mismatches against a reference over EVERY message of both Binance captures at
depths 1, 5, 32, 1000 (gaps and resyncs injected), and the cost of the design.

Reference: ``tests/realdata/book_reference.py`` (Binance's documented local-book procedure over
the raw JSON, dict + sorted price list, written apart from the feed and core). Design figures:

* where level updates land: distance from the best (after the update) on the full book: the
  sorted-array-with-best-at-the-end design moves only the levels better than the one updated;
* core events/s with no strategy over the decoded USD-M capture at each depth (Core.run_count).

    .venv/bin/python bench/bench_book.py [--data DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import table, write_result  # noqa: E402

from livestack.config import BTCUSDT_SPOT, BTCUSDT_USDM  # noqa: E402
from livestack.core import Core  # noqa: E402
from livestack.feeds.capture import decode_capture  # noqa: E402
from livestack.schema import DTYPES, RecordKind, Side  # noqa: E402
from tests.realdata.book_reference import check_capture  # noqa: E402

DEPTHS = (1, 5, 32, 1000)
CAPS = (("spot", "spot-btcusdt-20240808.gz", BTCUSDT_SPOT), ("usdm", "usdm-btcusdt-20240808.gz", BTCUSDT_USDM))


def distances(md) -> dict:
    """Distance from the best of every MD_LEVEL update, on a dict book (index in the sorted side)."""
    import bisect
    lv = md[md["kind"] == int(RecordKind.MD_LEVEL)].view(DTYPES["MD_LEVEL"])
    books = {1: [], 2: []}  # ascending prices
    qty = {1: {}, 2: {}}
    out = []
    for side, px, q in zip(lv["side"].tolist(), lv["price"].tolist(), lv["qty"].tolist()):
        p, d = books[side], qty[side]
        if q == 0:
            if px in d:
                i = bisect.bisect_left(p, px)
                out.append(len(p) - 1 - i if side == int(Side.BUY) else i)
                del p[i]
                del d[px]
            continue
        if px not in d:
            bisect.insort(p, px)
        d[px] = q
        i = bisect.bisect_left(p, px)
        out.append(len(p) - 1 - i if side == int(Side.BUY) else i)
    a = np.array(out)
    return {"updates": int(a.size), "p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "share_within_32": float((a < 32).mean()),
            "max_levels_seen": int(max(len(books[1]), len(books[2])))}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "binance"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    data = pathlib.Path(args.data)
    result = {"exact": {}, "distance": {}, "events_per_s": {}}
    rows = []
    for market, name, inst in CAPS:
        t = time.perf_counter()
        r = check_capture(data / name, inst, market, DEPTHS, gaps=True)
        r.pop("first_mismatch_line")
        result["exact"][market] = r
        rows.append([market, f"{r['lines']:,}", r["gaps_injected"], r["model_syncs"],
                     *[f"{r['mismatches'][d]} / {r['compared'][d]:,}" for d in DEPTHS], r["health_mismatches"],
                     f"{r['book_top_mismatches'] + r['book_top_missing']} / {r['book_top_rows']:,}",
                     f"{time.perf_counter() - t:.1f}"])
    print("Top N of the core vs the reference book after every line (mismatches / lines compared while synced)")
    print(table(rows, ["capture", "lines", "gaps", "syncs", *[f"depth {d}" for d in DEPTHS], "health", "book_top bad / rows", "s"]))

    md = decode_capture(data / "usdm-btcusdt-20240808.gz", BTCUSDT_USDM, "usdm")
    result["distance"]["usdm"] = dist = distances(md)
    print(f"\nUSD-M level updates: distance from the best p50 {dist['p50']:.0f}, p90 {dist['p90']:.0f}, "
          f"p99 {dist['p99']:.0f}; {dist['share_within_32']:.1%} within 32 levels; deepest side "
          f"{dist['max_levels_seen']:,} levels")
    risk = {"max_order_qty": 1, "max_position": 1}
    rows = []
    for d in DEPTHS:
        best = 0.0
        for _ in range(args.repeat):
            core = Core([BTCUSDT_USDM], risk, None, book_depth=d)
            t = time.perf_counter()
            core.run_count(md)
            best = max(best, len(md) / (time.perf_counter() - t))
        result["events_per_s"][d] = best
        rows.append([d, f"{best / 1e6:.1f}M"])
    print(f"\nCore, no strategy, {len(md):,} decoded USD-M records, best of {args.repeat}:")
    print(table(rows, ["depth", "events/s"]))
    path = write_result("book", result)
    print(f"wrote {path}")
    bad = sum(sum(r["mismatches"].values()) + r["health_mismatches"] + r["book_top_mismatches"] + r["book_top_missing"]
              for r in result["exact"].values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
