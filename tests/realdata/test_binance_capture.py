"""The real Binance captures decode completely through the same BookSync the live feed runs, and the
book rebuilt from the records equals a brute-force book rebuilt from the raw JSON."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import orjson
import pytest

from livestack.config import BTCUSDT_SPOT, BTCUSDT_USDM
from livestack.feeds.binance import Counters
from livestack.feeds.capture import decode_capture, is_snapshot, read_capture
from livestack.schema import DTYPE_BY_KIND, SLOT64, FeedStatus, RecordFlag, RecordKind, Side

# Binance spot still carries a few legacy resting orders with 6-decimal quantities far from the
# touch (e.g. 25.426189 BTC at 200000.00): 5 size decimals cannot hold them exactly, so spot keeps 8.
SPOT = BTCUSDT_SPOT  # spot sizes keep 8 decimals: see livestack/config.py
USDM = BTCUSDT_USDM

CASES = {
    "spot": ("binance/spot-btcusdt-20240808.gz", SPOT, 3),
    "usdm": ("binance/usdm-btcusdt-20240808.gz", USDM, 6),
}


def _bodies(recs, kind):
    sel = recs[recs["kind"] == kind]
    return np.ascontiguousarray(sel).view(DTYPE_BY_KIND[kind])


def _book_from_records(recs):
    """Apply MD records the way a consumer would: SNAPSHOT_BEGIN clears, levels set/delete."""
    books = {Side.BUY: {}, Side.SELL: {}}
    lv = DTYPE_BY_KIND[RecordKind.MD_LEVEL]
    st = DTYPE_BY_KIND[RecordKind.MD_STATUS]
    kinds = recs["kind"]
    valid = False
    for i in range(len(recs)):
        k = kinds[i]
        if k == RecordKind.MD_LEVEL:
            r = recs[i:i + 1].view(lv)[0]
            b = books[int(r["side"])]
            if r["qty"] == 0:
                b.pop(int(r["price"]), None)
            else:
                b[int(r["price"])] = int(r["qty"])
        elif k == RecordKind.MD_STATUS:
            s = int(recs[i:i + 1].view(st)[0]["status"])
            if s == FeedStatus.SNAPSHOT_BEGIN:
                books[Side.BUY].clear()
                books[Side.SELL].clear()
            elif s == FeedStatus.SNAPSHOT_END:
                valid = True
            elif s in (FeedStatus.GAP, FeedStatus.STALE, FeedStatus.DISCONNECTED):
                valid = False
    return books, valid


def _fixed(s: str, dec: int) -> int:
    v = Decimal(s) * (10 ** dec)
    assert v == v.to_integral_value()
    return int(v)


def _brute_force(lines, market, inst):
    """Snapshot, then every diff the snapshot does not already contain, straight from the JSON."""
    snap = next(orjson.loads(m) for _, m in lines if is_snapshot(m))
    L = snap["lastUpdateId"]
    pd, qd = inst.price_decimals, inst.qty_decimals
    books = {Side.BUY: {}, Side.SELL: {}}
    for side, key in ((Side.BUY, "bids"), (Side.SELL, "asks")):
        for p, q in snap[key]:
            books[side][_fixed(p, pd)] = _fixed(q, qd)
    stats = {"levels": 2 * 0 + len(snap["bids"]) + len(snap["asks"]), "diffs": 0, "trades": 0, "bbo": 0,
             "buffered": 0, "straddling": 0, "snapshot_levels": len(snap["bids"]) + len(snap["asks"])}
    seen_snapshot = False
    prev_u = None
    for _, m in lines:
        if is_snapshot(m):
            seen_snapshot = True
            continue
        j = orjson.loads(m)
        d = j["data"]
        if "@trade" in j["stream"]:
            stats["trades"] += 1
            continue
        if "@bookTicker" in j["stream"]:
            stats["bbo"] += 1
            continue
        stats["diffs"] += 1
        if not seen_snapshot:
            stats["buffered"] += 1
        # chain check straight from the documentation
        if prev_u is not None:
            if market == "usdm":
                assert d["pu"] == prev_u
            else:
                assert d["U"] == prev_u + 1
        prev_u = d["u"]
        contained = d["u"] < L if market == "usdm" else d["u"] <= L
        if contained:
            continue
        lo = L if market == "usdm" else L + 1
        if d["U"] <= lo <= d["u"]:
            stats["straddling"] += 1
        for side, key in ((Side.BUY, "b"), (Side.SELL, "a")):
            for p, q in d[key]:
                stats["levels"] += 1
                px, qty = _fixed(p, pd), _fixed(q, qd)
                if qty == 0:
                    books[side].pop(px, None)
                else:
                    books[side][px] = qty
    return books, stats


@pytest.fixture(scope="module", params=sorted(CASES))
def decoded(request, datadir):
    rel, inst, _ = CASES[request.param]
    path = datadir / rel
    if not path.exists():
        pytest.skip(f"{path} missing")
    counters = Counters()
    recs = decode_capture(path, inst, request.param, counters=counters)
    lines = read_capture(path)
    return request.param, path, inst, recs, counters, lines, _brute_force(lines, request.param, inst)


def test_every_message_decodes_without_malformed_or_gap(decoded):
    market, path, inst, recs, c, lines, (expect, stats) = decoded
    assert c.messages == len(lines) - 1  # every line but the REST snapshot is a stream message
    assert c.malformed == 0
    assert c.gaps == 0
    assert c.snapshots == 1
    assert c.snapshot_refetch == 0
    assert recs.dtype == SLOT64 and recs.itemsize == 64
    assert np.array_equal(recs["seq"], np.arange(1, len(recs) + 1))
    assert (recs["flags"] & RecordFlag.REPLAYED).all()
    assert (np.diff(recs["ts"]) >= 0).all()
    assert (recs["instrument"] == inst.id).all()


def test_buffered_diffs_before_the_snapshot_and_one_straddles(decoded):
    market, path, inst, recs, c, lines, (expect, stats) = decoded
    _, _, n_buffered = CASES[market]
    assert stats["buffered"] == n_buffered
    assert stats["straddling"] == 1
    # the buffered diffs the snapshot already contains were dropped, the straddling one applied
    assert c.diffs_dropped_stale == (n_buffered - 2 if market == "usdm" else n_buffered - 1)
    st = _bodies(recs, RecordKind.MD_STATUS)
    statuses = list(st["status"])
    assert statuses == [FeedStatus.CONNECTED, FeedStatus.SNAPSHOT_BEGIN, FeedStatus.SNAPSHOT_END]
    snap_end = st[st["status"] == FeedStatus.SNAPSHOT_END][0]
    assert snap_end["detail"] == stats["snapshot_levels"]
    assert snap_end["flags"] & RecordFlag.LAST_IN_MSG and snap_end["flags"] & RecordFlag.SNAPSHOT


def test_record_counts_match_the_json(decoded):
    market, path, inst, recs, c, lines, (expect, stats) = decoded
    kinds = recs["kind"]
    assert (kinds == RecordKind.MD_LEVEL).sum() == stats["levels"]
    assert (kinds == RecordKind.MD_TRADE).sum() == stats["trades"]
    assert (kinds == RecordKind.MD_BBO).sum() == stats["bbo"]
    lv = _bodies(recs, RecordKind.MD_LEVEL)
    assert ((lv["flags"] & RecordFlag.SNAPSHOT) != 0).sum() == stats["snapshot_levels"]
    assert (lv["price"] > 0).all() and (lv["qty"] >= 0).all()


def test_final_book_matches_brute_force_reconstruction(decoded):
    market, path, inst, recs, c, lines, (expect, stats) = decoded
    books, valid = _book_from_records(recs)
    assert valid
    assert books[Side.BUY] == expect[Side.BUY]
    assert books[Side.SELL] == expect[Side.SELL]
    # and the book is sane: not crossed
    assert max(books[Side.BUY]) < min(books[Side.SELL])


def test_trades_carry_aggressor_side_and_venue_time(decoded):
    market, path, inst, recs, c, lines, (expect, stats) = decoded
    tr = _bodies(recs, RecordKind.MD_TRADE)
    raw = [orjson.loads(m)["data"] for _, m in lines
           if not is_snapshot(m) and b"@trade" in m[:40]]
    assert len(raw) == len(tr)
    for r, j in zip(tr[:500], raw[:500]):
        assert r["trade_id"] == j["t"]
        assert r["side"] == (Side.SELL if j["m"] else Side.BUY)
        assert r["ts_event"] == j["T"] * 1_000_000
        assert r["price"] == _fixed(j["p"], inst.price_decimals)
        assert r["flags"] & RecordFlag.LAST_IN_MSG


def test_last_in_msg_closes_every_message(decoded):
    market, path, inst, recs, c, lines, (expect, stats) = decoded
    lv_idx = np.flatnonzero(recs["kind"] == RecordKind.MD_LEVEL)
    lv = _bodies(recs, RecordKind.MD_LEVEL)
    diff = (lv["flags"] & RecordFlag.SNAPSHOT) == 0
    # within the diff records, LAST_IN_MSG sits exactly where update_id changes (or at the end)
    ids = lv["update_id"][diff]
    last = (lv["flags"][diff] & RecordFlag.LAST_IN_MSG) != 0
    change = np.append(ids[1:] != ids[:-1], True)
    assert np.array_equal(last, change)
    assert lv_idx.size == len(lv)
