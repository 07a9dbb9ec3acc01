"""OKX and Kraken book decoders: the documented checksum strings, the book procedure on generated
sessions (lost message -> checksum mismatch / sequence break -> GAP, resync), exact decimals, and a
hypothesis fuzz per decoder (malformed input never raises, is counted)."""

from __future__ import annotations

import json
import os
import zlib
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from livestack.config import Instrument
from livestack.feeds import kraken, okx
from livestack.feeds.capture import book_from_records
from livestack.feeds.l2book import DecimalError, parse_fixed
from livestack.schema import DTYPE_BY_KIND, SLOT64, FeedStatus, RecordKind
from livestack.testing.l2_venue import kraken_session, okx_session

OKX_I = Instrument(7, "BTC-USDT", "okx", price_decimals=1, qty_decimals=8)
KR_I = Instrument(8, "BTC/USD", "kraken", price_decimals=1, qty_decimals=8)


def records(dec):
    return np.array(dec.out.arr[:dec.out.n], dtype=SLOT64, copy=True)


def statuses(recs):
    st_ = recs.view(DTYPE_BY_KIND[RecordKind.MD_STATUS])
    return [int(s) for k, s in zip(recs["kind"], st_["status"]) if k == int(RecordKind.MD_STATUS)]


# ---- documented examples -----------------------------------------------------------------

def test_okx_documented_checksum_string():
    # OKX API v5 docs, "Checksum": bids [3366.1,7],[3366,6]; asks [3366.8,9],[3368,8]
    bids = [("3366.1", "7"), ("3366", "6")]
    asks = [("3366.8", "9"), ("3368", "8")]
    s = okx.checksum_string(bids, asks)
    assert s == "3366.1:7:3366.8:9:3366:6:3368:8"
    # a side that runs out stops contributing (docs: "bid:ask:...:bid" when more bids)
    assert okx.checksum_string([("1", "2"), ("0.5", "3")], [("2", "1")]) == "1:2:2:1:0.5:3"
    v = okx.crc32_signed(s)
    assert -2**31 <= v < 2**31 and (v & 0xFFFFFFFF) == zlib.crc32(s.encode())


def test_kraken_documented_formatting():
    # Kraken v2 guide: "45285.2" -> "452852", "0.00100000" -> "100000"; v1 guide: 0.05000 + 0.00000304
    assert kraken.checksum_string([("45285.2", "0.00100000")], []) == "452852100000"
    assert kraken.checksum_string([("0.05000", "0.00000304")], []) == "5000304"
    # asks low->high first, then bids high->low, 10 each at most
    asks = [(f"{10 + i}.0", "1.0") for i in range(12)]
    bids = [(f"{9 - i}.0", "2.0") for i in range(3)]
    s = kraken.checksum_string(asks, bids)
    assert s == "".join(f"{10 + i}010" for i in range(10)) + "9020" + "8020" + "7020"


def test_parse_fixed_exact():
    assert parse_fixed("61800.30", 2) == 6180030
    assert parse_fixed("0.00000304", 8) == 304
    assert parse_fixed("1.500", 2) == 150
    assert parse_fixed("42", 3) == 42000
    for bad in ("1.234", "-1", "1e5", "", " 1", "0x1", "1.", ".5", None, 1.5):
        with pytest.raises(DecimalError):
            parse_fixed(bad, 2)


# ---- the book procedure on generated sessions --------------------------------------------

def _run(dec, msgs):
    for i, m in enumerate(msgs):
        dec.on_message(m, 1_000 + i)
    return records(dec)


def _reference_book(msgs, venue):
    """Top of book from the raw messages by plain Decimal arithmetic (no decoder code)."""
    bids, asks = {}, {}
    for m in msgs:
        d = json.loads(m, parse_float=str, parse_int=str)
        if venue == "okx":
            if "action" not in d:
                continue
            x = d["data"][0]
            if d["action"] == "snapshot":
                bids.clear(); asks.clear()
            for side, book in (("bids", bids), ("asks", asks)):
                for p, q, *_ in x[side]:
                    (book.pop(Decimal(p), None) if Decimal(q) == 0 else book.__setitem__(Decimal(p), Decimal(q)))
    return bids, asks


def test_okx_session_all_checksums_pass_and_book_exact():
    msgs = okx_session(seed=5, n=400)
    dec = okx.OkxDecoder([OKX_I])
    recs = _run(dec, msgs)
    assert dec.c.checksum_ok == 401 and dec.c.checksum_failed == 0 and dec.c.gaps == 0
    assert dec.c.malformed == 0 and dec.c.trades == 80
    b, a, valid = book_from_records(recs)
    rb, ra = _reference_book(msgs, "okx")
    assert valid
    assert b == {int(p * 10): int(q * 10**8) for p, q in rb.items()}
    assert a == {int(p * 10): int(q * 10**8) for p, q in ra.items()}
    lv = recs.view(DTYPE_BY_KIND[RecordKind.MD_LEVEL])[recs["kind"] == int(RecordKind.MD_LEVEL)]
    assert (lv["update_id"][-1]) == json.loads(msgs[-2] if b'"trades"' in msgs[-1] else msgs[-1])["data"][0]["seqId"]


def test_okx_lost_message_is_a_gap_then_resync_on_snapshot():
    msgs = okx_session(seed=6, n=100, trades=False)
    lost = msgs[:30] + msgs[31:]  # update 30 never arrives
    dec = okx.OkxDecoder([OKX_I])
    _run(dec, lost[:60])
    assert dec.c.seq_breaks == 1 and dec.c.gaps == 1
    assert dec.take_resyncs() == ["BTC-USDT"] and dec.take_resyncs() == []
    assert dec.c.dropped_unsynced == 60 - 31  # updates after the break wait for a snapshot
    # the resubscribe answers with a fresh snapshot: the decoder is in sync again
    snap = okx_session(seed=6, n=0, trades=False)[0]
    dec.on_message(snap, 10**6)
    recs = records(dec)
    assert statuses(recs).count(int(FeedStatus.GAP)) == 1
    assert statuses(recs)[-1] == int(FeedStatus.SNAPSHOT_END)


def test_okx_checksum_mismatch_without_seq_ids_is_a_gap():
    # pre-2022 captures carry no seqId: only the checksum sees the loss
    msgs = []
    for m in okx_session(seed=7, n=50, trades=False):
        d = json.loads(m)
        for x in d["data"]:
            del x["seqId"], x["prevSeqId"]
        msgs.append(json.dumps(d).encode())
    dec = okx.OkxDecoder([OKX_I])
    _run(dec, msgs[:20] + msgs[21:])
    assert dec.c.checksum_failed == 1 and dec.c.gaps == 1 and dec.c.seq_breaks == 0


@pytest.mark.parametrize("v2", [True, False])
def test_kraken_session_checksums_and_lost_message(v2):
    msgs = kraken_session(seed=9, n=300, v2=v2)
    dec = kraken.KrakenDecoder([KR_I])
    recs = _run(dec, msgs)
    assert dec.c.checksum_failed == 0 and dec.c.gaps == 0 and dec.c.malformed == 0
    assert dec.c.checksum_ok == (301 if v2 else 300)
    b, a, valid = book_from_records(recs)
    assert valid and len(b) <= 10 and len(a) <= 10  # truncated to the subscribed depth, deletes emitted
    # one update lost: the next checksum fails (Kraken has no sequence numbers)
    books = [i for i, m in enumerate(msgs) if b"book" in m and b"snapshot" not in m and b'"as"' not in m]
    dec2 = kraken.KrakenDecoder([KR_I])
    _run(dec2, msgs[:books[40]] + msgs[books[40] + 1:])
    assert dec2.c.checksum_failed >= 1 and dec2.c.gaps == 1 and dec2.take_resyncs() == ["BTC/USD"]


def test_kraken_v2_numbers_kept_as_text():
    # 0.10000000 as a JSON number: a float would print 0.1 and break the checksum
    snap = (b'{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[{"price":45283.5,'
            b'"qty":0.10000000}],"asks":[{"price":45285.2,"qty":0.00100000}],"checksum":%d}]}')
    cs = zlib.crc32(b"452852100000" + b"45283510000000")
    dec = kraken.KrakenDecoder([KR_I])
    dec.on_message(snap % cs, 1)
    assert dec.c.checksum_ok == 1
    lv = records(dec).view(DTYPE_BY_KIND[RecordKind.MD_LEVEL])
    assert sorted(lv["qty"][1:3].tolist()) == [100_000, 10_000_000]


# ---- real captures (cryptofeed's sample_data), when present ------------------------------

CF = os.environ.get("LIVESTACK_CRYPTOFEED_SAMPLES")


@pytest.mark.realdata
@pytest.mark.skipif(not CF, reason="set LIVESTACK_CRYPTOFEED_SAMPLES to cryptofeed's sample_data folder")
@pytest.mark.parametrize("name,venue,ok", [("OKX.ws.1.0", "okx", 290), ("KRAKEN.ws.50.0", "kraken", 4269)])
def test_real_cryptofeed_captures_verify(name, venue, ok):
    from livestack.feeds.capture_cli import verify

    r = verify(Path(CF) / name, venue)
    assert r["checksum_ok"] == ok and r["checksum_failed"] == 0 and r["gaps"] == 0 and r["malformed"] == 0


# ---- fuzz: malformed input never raises, every message is counted ------------------------

def _mutations(base: list[bytes]):
    return st.tuples(st.sampled_from(base), st.integers(0, 400), st.binary(max_size=6),
                     st.sampled_from(["cut", "insert", "replace"]))


def _mutate(t):
    m, i, ins, how = t
    i = min(i, len(m))
    if how == "cut":
        return m[:i]
    if how == "insert":
        return m[:i] + ins + m[i:]
    return m[:i] + ins + m[i + len(ins):]


_OKX_BASE = okx_session(seed=2, n=5)
_KR_BASE = kraken_session(seed=2, n=5) + kraken_session(seed=2, n=5, v2=False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.binary(max_size=80), _mutations(_OKX_BASE).map(_mutate)), max_size=20))
def test_fuzz_okx(blobs):
    dec = okx.OkxDecoder([OKX_I])
    for m in _OKX_BASE[:1] + blobs:
        dec.on_message(m, 5)
    c = dec.c
    assert c.messages == len(blobs) + 1
    assert c.malformed + c.control + c.ignored + c.book_messages + c.trades >= 0
    bad = c.malformed_json + c.malformed_field + c.malformed_decimal + c.malformed_stream
    assert bad <= c.messages


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.binary(max_size=80), _mutations(_KR_BASE).map(_mutate)), max_size=20))
def test_fuzz_kraken(blobs):
    dec = kraken.KrakenDecoder([KR_I])
    for m in _KR_BASE[:2] + blobs:
        dec.on_message(m, 5)
    assert dec.c.messages == len(blobs) + 2
    # nothing malformed reaches the book: whatever was applied still matches the records
    b, a, _ = book_from_records(records(dec))
    st_ = dec.states["BTC/USD"]
    assert {lv[0]: lv[1] for lv in st_.book.bids.levels.values()} == b or not st_.synced


def test_a_timestamp_or_sequence_beyond_int64_ns_is_a_malformed_field_not_a_crash():
    # found by test_fuzz_kraken: a v1 level time of 10,700,000,000 s does not fit int64 ns
    dec = kraken.KrakenDecoder([KR_I])
    for m in _KR_BASE[:2]:
        dec.on_message(m, 5)
    before = dec.c.malformed_field
    dec.on_message(b'[42, {"a": [["45287.7", "2.73303505", "10700000000.158383"]], "c": "508169693"}, '
                   b'"book-10", "BTC/USD"]', 6)
    assert dec.c.malformed_field == before + 1
    dec = okx.OkxDecoder([OKX_I])
    dec.on_message(_OKX_BASE[0], 5)
    before = dec.c.malformed_field
    m = json.loads(_OKX_BASE[1])
    m["data"][0]["ts"] = "99999999999999999999"
    dec.on_message(json.dumps(m).encode(), 6)
    assert dec.c.malformed_field == before + 1
