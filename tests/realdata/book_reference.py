"""A reference local order book for the Binance captures, written apart from the feed and the core.

It reads the raw JSON lines itself (stdlib ``json``, no livestack decoder) and follows Binance's
documented procedure ("How to manage a local order book correctly", spot and USD-M):

1. buffer the depth diffs; 2. take the REST snapshot (``lastUpdateId`` = L);
3. drop buffered diffs with ``u <= L`` (spot) / ``u < L`` (USD-M);
4. the first diff kept must straddle the snapshot: ``U <= L + 1 <= u`` (spot) / ``U <= L <= u``
   (USD-M), else the snapshot is too old and another is needed;
5. apply it and every later diff; a diff is in sequence when ``U == last u + 1`` (spot; ``u <= last
   u`` is old and ignored) / ``pu == last u`` (USD-M). Out of sequence: the book is invalid, start
   again at 1 (the diff that broke the chain is the first one buffered).

The book is two dicts (price -> qty, int fixed point) with a sorted price list per side kept by
``bisect`` so that the top N is a slice. :func:`check_capture` drives the livestack feed decoder and
one Core per depth with the same lines and counts, after every line, the depths at which the
core's exposed top N differs from this model's (or the core is healthy while the model has no
valid book, or the other way round). ``bench/bench_book.py`` reports the counts over every message;
``tests/realdata/test_book_exact.py`` asserts they are 0.
"""

from __future__ import annotations

import bisect
import gzip
import json

_FIXED_CACHE: dict = {}


def fixed(s: str, decimals: int) -> int:
    """Decimal string -> int with ``decimals`` digits after the point (exact; refuses to round)."""
    key = (s, decimals)
    v = _FIXED_CACHE.get(key)
    if v is None:
        whole, _, frac = s.partition(".")
        if frac[decimals:].strip("0"):
            raise ValueError(f"{s!r} has more than {decimals} decimals")
        v = int(whole + (frac + "0" * decimals)[:decimals])
        _FIXED_CACHE[key] = v
    return v


def text(v: int, decimals: int) -> str:
    """int fixed point -> decimal string (what a REST snapshot would carry)."""
    return f"{v // 10 ** decimals}.{v % 10 ** decimals:0{decimals}d}" if decimals else str(v)


def read_lines(path) -> list[tuple[int, bytes]]:
    """``(receive ns, raw message)`` per line of a capture."""
    out = []
    with gzip.open(path, "rb") as f:
        for line in f:
            line = line.strip()
            if line:
                ts, _, msg = line.partition(b" ")
                out.append((int(ts), msg))
    return out


class Side:
    def __init__(self, best_is_high: bool):
        self.qty: dict[int, int] = {}
        self.prices: list[int] = []      # ascending
        self.best_is_high = best_is_high

    def set(self, px: int, q: int) -> None:
        if q == 0:
            if self.qty.pop(px, None) is not None:
                del self.prices[bisect.bisect_left(self.prices, px)]
        else:
            if px not in self.qty:
                bisect.insort(self.prices, px)
            self.qty[px] = q

    def clear(self) -> None:
        self.qty.clear()
        self.prices.clear()

    def top(self, n: int) -> list[int]:
        """Prices of the best n levels, best first."""
        p = self.prices
        return p[:-n - 1:-1] if self.best_is_high else p[:n]


class LocalBook:
    """Binance's local order-book procedure over raw JSON (see the module docstring)."""

    def __init__(self, futures: bool, price_decimals: int, qty_decimals: int):
        self.futures = futures
        self.pd, self.qd = price_decimals, qty_decimals
        self.bids, self.asks = Side(True), Side(False)
        self.synced = False
        self.buffer: list[dict] = []
        self.snapshot: dict | None = None
        self.last_u = 0
        self.gaps = 0
        self.syncs = 0

    def on_line(self, msg: bytes) -> str:
        """Feed one raw line; returns what it was: 'snapshot', 'depth', or 'other'."""
        j = json.loads(msg)
        if "lastUpdateId" in j:
            if not self.synced:
                self.snapshot = j
                self._try_sync()
            return "snapshot"
        d = j.get("data", j)
        if d.get("e") != "depthUpdate":
            return "other"
        if self.synced:
            self._apply_in_sequence(d)
        else:
            self.buffer.append(d)
            if self.snapshot is not None:
                self._try_sync()
        return "depth"

    def _try_sync(self) -> None:
        L = self.snapshot["lastUpdateId"]
        buf = self.buffer
        if self.futures:
            buf[:] = [d for d in buf if d["u"] >= L]
        else:
            buf[:] = [d for d in buf if d["u"] > L]
        if not buf:
            return
        first = buf[0]
        ok = first["U"] <= L <= first["u"] if self.futures else first["U"] <= L + 1 <= first["u"]
        if not ok:
            self.snapshot = None        # too old: wait for another
            return
        self.bids.clear()
        self.asks.clear()
        for px, q in self.snapshot["bids"]:
            self.bids.set(fixed(px, self.pd), fixed(q, self.qd))
        for px, q in self.snapshot["asks"]:
            self.asks.set(fixed(px, self.pd), fixed(q, self.qd))
        self.snapshot = None
        self.synced = True
        self.syncs += 1
        self.last_u = L
        pending, self.buffer = buf, []
        self._apply(pending[0])          # the straddling diff: no continuity check
        for d in pending[1:]:
            if not self.synced:
                self.buffer.append(d)
            else:
                self._apply_in_sequence(d)

    def _apply_in_sequence(self, d: dict) -> None:
        if self.futures:
            ok = d["pu"] == self.last_u
        else:
            if d["u"] <= self.last_u:
                return                   # old: already in the book
            ok = d["U"] == self.last_u + 1
        if not ok:
            self.gaps += 1
            self.synced = False
            self.bids.clear()
            self.asks.clear()
            self.buffer = [d]
            return
        self._apply(d)

    def _apply(self, d: dict) -> None:
        for px, q in d["b"]:
            self.bids.set(fixed(px, self.pd), fixed(q, self.qd))
        for px, q in d["a"]:
            self.asks.set(fixed(px, self.pd), fixed(q, self.qd))
        self.last_u = d["u"]

    def full(self) -> tuple[dict, dict]:
        return dict(self.bids.qty), dict(self.asks.qty)


def inject_gaps(lines, futures: bool, price_decimals: int, qty_decimals: int, at=(0.3, 0.7)):
    """The capture with, at each fraction of its depth diffs: one diff dropped (a gap), then a
    REST snapshot of the true book two diffs later, delivered three diffs after that (so the
    buffered diffs straddle it, as a real resync does). Returns (lines, injected gaps)."""
    depth_idx = [k for k, (_, m) in enumerate(lines) if b"depthUpdate" in m]
    drops = sorted({depth_idx[int(f * len(depth_idx))] for f in at})
    # the true book along the original stream: snapshots of it at the chosen diffs
    want = {}
    for k in drops:
        pos = depth_idx.index(k)
        want[depth_idx[pos + 2]] = depth_idx[pos + 5]   # book after this diff, delivered after that one
    truth = LocalBook(futures, price_decimals, qty_decimals)
    snaps = {}
    for k, (ts, m) in enumerate(lines):
        truth.on_line(m)
        if k in want:
            assert truth.synced
            b, a = truth.full()
            d = json.loads(m)["data"]
            snap = {"lastUpdateId": d["u"], "E": d["E"], "T": d.get("T", d["E"]),
                    "bids": [[text(p, price_decimals), text(b[p], qty_decimals)] for p in sorted(b, reverse=True)],
                    "asks": [[text(p, price_decimals), text(a[p], qty_decimals)] for p in sorted(a)]}
            if not futures:
                del snap["E"], snap["T"]
            snaps[want[k]] = (ts, json.dumps(snap, separators=(",", ":")).encode())
    out = []
    for k, line in enumerate(lines):
        if k not in drops:
            out.append(line)
        if k in snaps:
            out.append(snaps[k])
    return out, len(drops)


def check_capture(path, instrument, market: str, depths=(1, 5, 32, 1000), *, gaps=True,
                  sample_every: dict | None = None) -> dict:
    """Run the capture (with injected gaps and resyncs when ``gaps``) through the livestack feed
    decoder and one Core per depth, and through :class:`LocalBook`; after every line compare.

    ``sample_every`` = {depth: k} compares that depth at every k-th line only (to bound test time;
    the bench passes nothing: every line, every depth). Returns counts: lines, compared per depth,
    mismatches per depth, health mismatches, gaps injected, the model's resyncs.
    """
    from livestack.core import Core
    from livestack.core import ctx as C
    from livestack.feeds.binance import BinanceDecoder, Counters, MdBuffer

    futures = market == "usdm"
    lines = read_lines(path)
    n_gaps = 0
    if gaps:
        lines, n_gaps = inject_gaps(lines, futures, instrument.price_decimals, instrument.qty_decimals)
    ref = LocalBook(futures, instrument.price_decimals, instrument.qty_decimals)
    dec = BinanceDecoder([instrument], market, MdBuffer(1 << 16), Counters())
    risk = {"max_order_qty": 1, "max_position": 1}
    # the depth-5 core also emits BOOK_TOP records (N = 5): each row must be the model's top 5 at
    # that line, and a line that changed the model's top 5 must have produced one
    TOPN = 5
    cores = {d: Core([instrument], risk, None, book_depth=d, book_top_levels=TOPN if d == TOPN else 0)
             for d in depths}
    from livestack.records.booktop import records_to_rows

    prev_top = None
    book_top_rows = book_top_bad = book_top_missing = 0
    views = {}
    for d, core in cores.items():
        v = core.ctx
        base = int(v[C.CTX_INST_OFF])
        D = int(v[C.CTX_DEPTH])
        views[d] = (v, base, base + int(v[C.CTX_INST_BIDPX_OFF]), base + int(v[C.CTX_INST_ASKPX_OFF]), D)
    top = max(depths)
    every = sample_every or {}
    mism = {d: 0 for d in depths}
    compared = {d: 0 for d in depths}
    health = 0
    first_mismatch = {}
    sym = instrument.symbol
    hseq = 1
    for k, (ts, msg) in enumerate(lines):
        if msg.startswith(b'{"lastUpdateId"'):
            dec.on_snapshot(sym, msg, ts)
        else:
            dec.on_message(msg, ts)
        recs = dec.out.take()
        if len(recs):
            for d, core in cores.items():
                if d == TOPN:
                    _, out = core.process_array(recs, hseq0=hseq)
                else:
                    core.run_count(recs, hseq)
            hseq += len(recs)
        else:
            out = None
        ref.on_line(msg)
        rb = ref.bids.top(top)
        ra = ref.asks.top(top)
        bq, aq = ref.bids.qty, ref.asks.qty
        rbq = [bq[p] for p in rb]
        raq = [aq[p] for p in ra]
        if TOPN in cores:
            rows = records_to_rows(out, TOPN) if out is not None and len(out) else []
            top5 = (rb[:TOPN], rbq[:TOPN], ra[:TOPN], raq[:TOPN]) if ref.synced else None
            if len(rows):
                book_top_rows += len(rows)
                r = rows[-1]
                got = tuple([int(r[f"{s}_{f}_{i}"]) for i in range(TOPN) if r[f"{s}_px_{i}"]]
                            for s, f in (("bid", "px"), ("bid", "qty"), ("ask", "px"), ("ask", "qty")))
                if top5 is None or got != top5:
                    book_top_bad += 1
                    first_mismatch.setdefault("book_top", k)
            elif top5 is not None and top5 != prev_top:
                book_top_missing += 1
                first_mismatch.setdefault("book_top_missing", k)
            prev_top = top5
        for d in depths:
            if d in every and k % every[d]:
                continue
            v, base, bp, ap, D = views[d]
            healthy = bool(v[base + C.INST_HEALTHY])
            if healthy != ref.synced:
                health += 1
                first_mismatch.setdefault(("health", d), k)
                continue
            if not ref.synced:
                continue
            compared[d] += 1
            nb, na = int(v[base + C.INST_N_BIDS]), int(v[base + C.INST_N_ASKS])
            if (v[bp:bp + nb].tolist() != rb[:d] or v[bp + D:bp + D + nb].tolist() != rbq[:d]
                    or v[ap:ap + na].tolist() != ra[:d] or v[ap + D:ap + D + na].tolist() != raq[:d]):
                mism[d] += 1
                first_mismatch.setdefault(d, k)
    return {"lines": len(lines), "compared": compared, "mismatches": mism, "health_mismatches": health,
            "book_top_rows": book_top_rows, "book_top_mismatches": book_top_bad,
            "book_top_missing": book_top_missing, "gaps_injected": n_gaps, "model_gaps": ref.gaps, "model_syncs": ref.syncs,
            "first_mismatch_line": first_mismatch}
