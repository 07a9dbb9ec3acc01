"""Binance decoding and BookSync: record conventions, the documented sync rules, gaps and malformed input."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import orjson
import pytest

from livestack.config import Instrument
from livestack.feeds.binance import COUNTER_NAMES, BinanceDecoder, Counters, MdBuffer, SharedCounters
from livestack.schema import DTYPE_BY_KIND, SLOT64, FeedStatus, RecordFlag, RecordKind, Side

SPOT = Instrument(7, "BTCUSDT", "binance", price_decimals=2, qty_decimals=8)
USDM = Instrument(9, "BTCUSDT", "binance-usdm", price_decimals=2, qty_decimals=3)
LAST = RecordFlag.LAST_IN_MSG
SNAP = RecordFlag.SNAPSHOT


def diff(U, u, b=(), a=(), pu=None, E=1_700_000_000_000, T=None, speed="100ms"):
    d = {"e": "depthUpdate", "E": E, "s": "BTCUSDT", "U": U, "u": u}
    if pu is not None:
        d["pu"] = pu
        d["T"] = T if T is not None else E - 1
    d["b"] = [list(x) for x in b]
    d["a"] = [list(x) for x in a]
    return orjson.dumps({"stream": f"btcusdt@depth@{speed}", "data": d})


def snapshot(L, bids=(("100.00", "1.0"),), asks=(("101.00", "2.0"),), E=None):
    body = {"lastUpdateId": L}
    if E:
        body["E"] = E
        body["T"] = E
    body["bids"] = [list(x) for x in bids]
    body["asks"] = [list(x) for x in asks]
    return orjson.dumps(body)


def trade(m, p="100.50", q="0.25", t=42, T=1_700_000_000_123):
    return orjson.dumps({"stream": "btcusdt@trade", "data": {"e": "trade", "E": T + 1, "T": T, "s": "BTCUSDT",
                                                             "t": t, "p": p, "q": q, "m": m}})


def spot_dec():
    return BinanceDecoder([SPOT], "spot")


def usdm_dec():
    return BinanceDecoder([USDM], "usdm")


def body(recs, kind):
    sel = np.ascontiguousarray(recs[recs["kind"] == kind])
    return sel.view(DTYPE_BY_KIND[kind])


def statuses(recs):
    return [int(s) for s in body(recs, RecordKind.MD_STATUS)["status"]]


# ------------------------------------------------------------------------------------------------
# record conventions
# ------------------------------------------------------------------------------------------------

def synced_spot(L=100):
    d = spot_dec()
    d.on_message(diff(L - 5, L + 1, b=[("99.00", "1")]), 1)
    d.on_snapshot("BTCUSDT", snapshot(L), 2)
    assert d.syncs["btcusdt"].synced
    d.out.clear()
    return d


def test_depth_diff_becomes_one_level_per_price_bids_first_last_flagged():
    d = synced_spot()
    n = d.on_message(diff(102, 105, b=[("100.00", "0.00000000"), ("99.50", "3.5")], a=[("101.25", "0.1")],
                          E=1_700_000_000_777), 1_000)
    recs = d.out.take()
    assert n == 3 and recs.dtype == SLOT64
    lv = body(recs, RecordKind.MD_LEVEL)
    assert list(lv["side"]) == [Side.BUY, Side.BUY, Side.SELL]
    assert list(lv["price"]) == [10000, 9950, 10125]
    assert list(lv["qty"]) == [0, 350_000_000, 10_000_000]  # qty 0 deletes
    assert (lv["update_id"] == 105).all()
    assert (lv["ts"] == 1_000).all() and (lv["ts_event"] == 1_700_000_000_777 * 1_000_000).all()
    assert list(lv["flags"] & LAST) == [0, 0, LAST]
    assert (lv["instrument"] == SPOT.id).all() and (lv["seq"] == 0).all()


def test_trade_aggressor_side_comes_from_buyer_is_maker():
    d = spot_dec()
    d.on_message(trade(True, t=1), 10)
    d.on_message(trade(False, t=2), 11)
    tr = body(d.out.take(), RecordKind.MD_TRADE)
    assert list(tr["side"]) == [Side.SELL, Side.BUY]  # m=true: buyer was maker, seller aggressed
    assert list(tr["trade_id"]) == [1, 2]
    assert (tr["price"] == 10050).all() and (tr["qty"] == 25_000_000).all()
    assert (tr["ts_event"] == 1_700_000_000_123 * 1_000_000).all()
    assert (tr["flags"] == LAST).all()


def test_book_ticker_spot_has_no_venue_time_usdm_has():
    d = spot_dec()
    d.on_message(b'{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"100.01","B":"1.5",'
                 b'"a":"100.02","A":"0.00000001"}}', 55)
    bbo = body(d.out.take(), RecordKind.MD_BBO)[0]
    assert (bbo["bid_px"], bbo["bid_qty"], bbo["ask_px"], bbo["ask_qty"]) == (10001, 150_000_000, 10002, 1)
    assert bbo["ts_event"] == 55 and bbo["flags"] == LAST
    u = usdm_dec()
    u.on_message(b'{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":1,"s":"BTCUSDT","b":"100.1",'
                 b'"B":"2.507","a":"100.2","A":"2.510","T":1723161256313,"E":1723161256314}}', 56)
    bbo = body(u.out.take(), RecordKind.MD_BBO)[0]
    assert bbo["ts_event"] == 1723161256313 * 1_000_000 and bbo["bid_qty"] == 2507


def test_streams_cover_depth_trade_and_book_ticker_per_symbol():
    assert spot_dec().streams() == ["btcusdt@depth@100ms", "btcusdt@trade", "btcusdt@bookTicker"]
    assert usdm_dec().streams()[0] == "btcusdt@depth@0ms"


# ------------------------------------------------------------------------------------------------
# the documented procedure
# ------------------------------------------------------------------------------------------------

def test_spot_buffers_until_snapshot_drops_contained_diffs_applies_the_straddler():
    d = spot_dec()
    d.on_message(diff(90, 95, b=[("90.00", "1")]), 1)      # u <= L: contained in the snapshot
    d.on_message(diff(96, 100, b=[("91.00", "1")]), 2)     # u == L: contained (spot drops u <= L)
    d.on_message(diff(101, 104, b=[("92.00", "1")]), 3)    # U <= L+1 <= u: the first applied
    assert len(d.out.view()) == 0  # nothing before the snapshot
    assert d.needing_snapshot() == ["BTCUSDT"]
    d.on_snapshot("BTCUSDT", snapshot(100), 10)
    recs = d.out.take()
    assert statuses(recs) == [FeedStatus.SNAPSHOT_BEGIN, FeedStatus.SNAPSHOT_END]
    lv = body(recs, RecordKind.MD_LEVEL)
    assert list(lv["price"]) == [10000, 10100, 9200]
    assert list(lv["flags"]) == [SNAP, SNAP, LAST]
    assert (lv["ts"][2]) == 10  # released at the snapshot's time: ts never goes back
    st = body(recs, RecordKind.MD_STATUS)
    assert list(st["update_id"]) == [100, 100] and st["flags"][1] == SNAP | LAST and st["detail"][1] == 2
    assert d.c.diffs_dropped_stale == 2 and d.c.snapshots == 1
    assert d.syncs["btcusdt"].last_u == 104 and not d.needing_snapshot()


def test_futures_keeps_the_diff_ending_at_last_update_id_and_follows_pu():
    d = usdm_dec()
    d.on_message(diff(80, 90, pu=79, b=[("90.0", "1")], speed="0ms"), 1)    # u < L: dropped
    d.on_message(diff(91, 100, pu=90, b=[("91.0", "1")], speed="0ms"), 2)   # U <= L <= u (u == L): applied
    d.on_message(diff(105, 110, pu=100, b=[("92.0", "1")], speed="0ms"), 3)  # pu == prev u
    d.on_snapshot("BTCUSDT", snapshot(100, E=1_700_000_000_000), 4)
    recs = d.out.take()
    lv = body(recs, RecordKind.MD_LEVEL)
    assert list(lv["price"][~(lv["flags"] & SNAP).astype(bool)]) == [9100, 9200]
    assert d.c.diffs_dropped_stale == 1 and d.syncs["btcusdt"].last_u == 110
    assert body(recs, RecordKind.MD_STATUS)["ts_event"][0] == 1_700_000_000_000 * 1_000_000


def test_snapshot_waits_for_a_straddling_diff_when_every_buffered_one_is_contained():
    d = spot_dec()
    d.on_message(diff(90, 95), 1)
    d.on_snapshot("BTCUSDT", snapshot(120), 2)
    assert len(d.out.view()) == 0 and not d.syncs["btcusdt"].synced
    assert not d.needing_snapshot()  # one is pending
    d.on_message(diff(96, 120), 3)   # contained
    d.on_message(diff(121, 125, a=[("101.00", "0")]), 4)  # straddles L+1 = 121
    assert d.syncs["btcusdt"].synced
    assert statuses(d.out.view()) == [FeedStatus.SNAPSHOT_BEGIN, FeedStatus.SNAPSHOT_END]


def test_snapshot_older_than_the_first_buffered_diff_is_discarded_and_refetched():
    d = spot_dec()
    d.on_message(diff(150, 160), 1)
    d.on_snapshot("BTCUSDT", snapshot(100), 2)  # 101 < 150: cannot straddle
    assert len(d.out.view()) == 0
    assert d.c.snapshot_refetch == 1 and d.needing_snapshot() == ["BTCUSDT"]
    d.on_snapshot("BTCUSDT", snapshot(155), 3)
    assert d.syncs["btcusdt"].synced


def test_spot_gap_emits_gap_and_resyncs_from_a_new_snapshot():
    d = synced_spot(100)  # last u = 101
    d.on_message(diff(102, 110, b=[("99.00", "2")]), 5)
    d.on_message(diff(115, 120, b=[("98.00", "2")]), 6)  # expected U 111
    recs = d.out.take()
    st = body(recs, RecordKind.MD_STATUS)
    assert list(st["status"]) == [FeedStatus.GAP]
    assert st["update_id"][0] == 110 and st["detail"][0] == 111 and st["flags"][0] == LAST
    assert d.c.gaps == 1 and not d.syncs["btcusdt"].synced
    assert d.needing_snapshot() == ["BTCUSDT"]  # the offending diff is buffered
    d.on_snapshot("BTCUSDT", snapshot(117), 7)
    recs = d.out.take()
    assert statuses(recs) == [FeedStatus.SNAPSHOT_BEGIN, FeedStatus.SNAPSHOT_END]
    assert body(recs, RecordKind.MD_LEVEL)["price"][-1] == 9800  # the buffered diff straddled 118
    assert d.c.snapshots == 2


def test_futures_broken_pu_chain_is_a_gap():
    d = usdm_dec()
    d.on_message(diff(91, 100, pu=90, speed="0ms", b=[("1.0", "1")]), 1)
    d.on_snapshot("BTCUSDT", snapshot(95), 2)
    d.out.clear()
    d.on_message(diff(101, 110, pu=100, speed="0ms", b=[("1.0", "2")]), 3)
    d.on_message(diff(120, 130, pu=115, speed="0ms", b=[("1.0", "3")]), 4)
    st = body(d.out.take(), RecordKind.MD_STATUS)
    assert list(st["status"]) == [FeedStatus.GAP] and st["detail"][0] == 110


def test_a_repeated_old_diff_is_dropped_not_a_gap():
    d = synced_spot(100)
    d.on_message(diff(102, 110, b=[("99.00", "2")]), 5)
    d.on_message(diff(102, 110, b=[("99.00", "2")]), 6)
    assert d.c.gaps == 0 and d.c.diffs_dropped_old == 1


def test_reset_forgets_the_book_and_reports_the_status():
    d = synced_spot(100)
    d.reset_all(9, FeedStatus.DISCONNECTED)
    st = body(d.out.take(), RecordKind.MD_STATUS)
    assert list(st["status"]) == [FeedStatus.DISCONNECTED] and st["ts"][0] == 9
    assert not d.syncs["btcusdt"].synced and not d.needing_snapshot()


def test_pre_snapshot_buffer_is_bounded():
    d = BinanceDecoder([SPOT], "spot", max_buffered=10)
    for i in range(25):
        d.on_message(diff(i * 10 + 1, i * 10 + 10), i)
    assert len(d.syncs["btcusdt"].buffered) == 10 and d.c.buffer_dropped == 15


# ------------------------------------------------------------------------------------------------
# malformed input: counted by reason, never crashes, never reaches the book
# ------------------------------------------------------------------------------------------------

MALFORMED = [
    ("json", b"not json at all"),
    ("json", b'{"stream":"btcusdt@trade","data":{"e":"trade"'),
    ("json", b"\xff\xfe\x00garbage"),
    ("json", b""),
    ("field", b'{"stream":"btcusdt@trade"}'),
    ("field", b'{"stream":"btcusdt@trade","data":{"T":1,"t":1,"p":"1.00","m":true}}'),
    ("field", b'{"stream":"btcusdt@trade","data":{"T":"x","t":1,"p":"1.00","q":"1","m":true}}'),
    ("field", b'{"stream":"btcusdt@depth@100ms","data":{"E":1,"U":1,"b":[],"a":[]}}'),
    ("field", b'[1,2,3]'),
    ("decimal", b'{"stream":"btcusdt@trade","data":{"T":1,"t":1,"p":"1.001","q":"1","m":true}}'),
    ("decimal", b'{"stream":"btcusdt@trade","data":{"T":1,"t":1,"p":"1e3","q":"1","m":true}}'),
    ("decimal", b'{"stream":"btcusdt@trade","data":{"T":1,"t":1,"p":"-5.00","q":"1","m":true}}'),
    ("decimal", b'{"stream":"btcusdt@trade","data":{"T":1,"t":1,"p":"99999999999999999999","q":"1","m":true}}'),
    ("decimal", b'{"stream":"btcusdt@bookTicker","data":{"b":"","B":"1","a":"2","A":"1"}}'),
    ("stream", b'{"stream":"btcusdt@aggTrade","data":{}}'),
    ("stream", b'{"stream":"ethusdt@trade","data":{}}'),
    ("stream", b'{"stream":"","data":{}}'),
]


@pytest.mark.parametrize("reason,msg", MALFORMED)
def test_malformed_message_is_counted_by_reason_and_produces_nothing(reason, msg):
    d = synced_spot()
    before = d.syncs["btcusdt"].last_u
    assert d.on_message(msg, 1) == 0
    assert len(d.out.view()) == 0
    assert d.c.as_dict()[f"malformed_{reason}"] == 1 and d.c.malformed == 1
    assert d.malformed_samples[-1][0] == reason
    assert d.syncs["btcusdt"].synced and d.syncs["btcusdt"].last_u == before
    # and the decoder goes on
    assert d.on_message(trade(True), 2) == 1


BAD_LEVELS = [
    ("json", '[["100.00","1"],]'),  # not JSON: the diff is unknown, the next one shows the gap
    ("levels", '[["100.00"]]'),
    ("levels", '[["100.00","1","x"]]'),
    ("levels", '[[100.00,"1"]]'),
    ("levels", '[["100.00","1"]'.replace("]", "]") + ',["1"]]'),
    ("field", '{"100.00":"1"}'),  # not an array: rejected at decode like a mistyped field
    ("levels", '[["10\\u0030.00","1"]]'),
    ("decimal", '[["100.001","1"]]'),
    ("decimal", '[["abc","1"]]'),
    ("decimal", '[["0","1"]]'),
    ("decimal", '[["100.00","-1"]]'),
    ("decimal", '[["100.00",""]]'),
]


@pytest.mark.parametrize("reason,levels", BAD_LEVELS)
def test_malformed_levels_never_reach_the_book_and_break_the_chain(reason, levels):
    d = synced_spot(100)
    msg = ('{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"U":102,"u":103,'
           '"b":[["99.00","1"]],"a":' + levels + '}}').encode()
    d.on_message(msg, 5)
    recs = d.out.take()
    assert (recs["kind"] != RecordKind.MD_LEVEL).all()  # not even the good bid got out
    assert d.c.as_dict()[f"malformed_{reason}"] == 1
    if reason in ("json", "field"):
        assert statuses(recs) == [] and d.syncs["btcusdt"].synced
        d.on_message(diff(104, 105), 6)
        assert statuses(d.out.take()) == [FeedStatus.GAP]
    else:
        assert statuses(recs) == [FeedStatus.GAP]  # the chain needed that diff
    assert not d.syncs["btcusdt"].synced


def test_malformed_snapshot_is_counted_and_refetched():
    d = spot_dec()
    d.on_message(diff(90, 105), 1)
    d.on_snapshot("BTCUSDT", b'{"lastUpdateId":"x"}', 2)
    assert d.c.malformed_snapshot == 1 and d.needing_snapshot() == ["BTCUSDT"]
    d.on_snapshot("BTCUSDT", snapshot(100, bids=[("1.001", "1")]), 3)
    assert d.c.malformed_snapshot == 2 and len(d.out.view()) == 0
    assert d.needing_snapshot() == ["BTCUSDT"]


def test_level_parser_accepts_json_whitespace_and_empty_sides():
    d = synced_spot(100)
    msg = (b'{ "stream" : "btcusdt@depth@100ms" , "data" : { "e":"depthUpdate","E":1,"U":102,"u":103,'
           b'"b" : [ [ "99.00" , "1" ] ,\n [ "98.00","2" ] ] , "a" : [ ] } }')
    assert d.on_message(msg, 1) == 2
    empty = b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"U":104,"u":105,"b":[],"a":[]}}'
    assert d.on_message(empty, 2) == 0
    assert d.syncs["btcusdt"].last_u == 105 and d.c.malformed == 0


# ------------------------------------------------------------------------------------------------
# buffers and counters
# ------------------------------------------------------------------------------------------------

def test_md_buffer_grows_and_keeps_records():
    b = MdBuffer(16)
    levels = orjson.dumps([[f"{100 + i}.00", "1"] for i in range(1000)])
    assert b.add_levels(levels, Side.BUY, 3, 1, 2, 4, 2, 3, 0) == 1000
    b.add_trade(3, 1, 2, 5, 6, 7, Side.SELL, LAST)
    recs = b.take()
    assert len(recs) == 1001 and b.n == 0
    assert body(recs, RecordKind.MD_LEVEL)["price"][-1] == 109900
    assert body(recs, RecordKind.MD_TRADE)["trade_id"][0] == 7


def test_counters_publish_into_a_shared_array_a_supervisor_reads():
    arr = mp.get_context("spawn").Array("q", len(COUNTER_NAMES))
    c = Counters()
    c.add("gaps")
    c.records += 5
    c.malformed_json += 2
    c.publish(arr.get_obj())
    assert arr[COUNTER_NAMES.index("gaps")] == 1 and arr[COUNTER_NAMES.index("records")] == 5
    view = SharedCounters(arr.get_obj())
    assert view.records == 5 and view.malformed == 2 and view.as_dict() == c.as_dict()


def test_md_buffer_writes_the_prefix_that_fits_into_a_ring_stamping_seq(session):
    from livestack.ipc import Ring, segment_name

    b = MdBuffer(16)
    for i in range(10):
        b.add_trade(3, i, i, 100 + i, 1, i, Side.BUY, LAST)
    with Ring.create(segment_name(session, "md.t"), 8, 64) as ring:
        assert b.write_to(ring, 41) == 8          # ring holds 8
        assert b.write_to(ring, 49, 8) == 0       # full: nothing more
        got = np.zeros(8, dtype=ring.dtype)
        assert ring.read(got) == 8
        assert list(got["seq"]) == list(range(41, 49))
        assert b.write_to(ring, 49, 8) == 2
        assert ring.read(got) == 2 and list(got["seq"][:2]) == [49, 50]
        assert list(body(got[:2], RecordKind.MD_TRADE)["trade_id"]) == [8, 9]


def test_one_connection_serves_several_symbols_each_with_its_own_book_sync():
    eth = Instrument(8, "ETHUSDT", "binance", price_decimals=2, qty_decimals=4)
    d = BinanceDecoder([SPOT, eth], "spot")
    assert d.streams() == ["btcusdt@depth@100ms", "btcusdt@trade", "btcusdt@bookTicker",
                           "ethusdt@depth@100ms", "ethusdt@trade", "ethusdt@bookTicker"]
    d.on_message(trade(True).replace(b"btcusdt@trade", b"ethusdt@trade"), 1)
    d.on_message(trade(False), 2)
    tr = body(d.out.take(), RecordKind.MD_TRADE)
    assert list(tr["instrument"]) == [eth.id, SPOT.id]
    assert list(tr["qty"]) == [2500, 25_000_000]  # each at its own scale
    d.on_message(diff(1, 5).replace(b"btcusdt@depth", b"ethusdt@depth"), 3)
    assert d.needing_snapshot() == ["ETHUSDT"]
    d.on_snapshot("ETHUSDT", snapshot(3), 4)
    assert d.syncs["ethusdt"].synced and not d.syncs["btcusdt"].synced
    st = body(d.out.take(), RecordKind.MD_STATUS)
    assert (st["instrument"] == eth.id).all()
