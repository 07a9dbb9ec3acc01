"""The Binance decoder's C fast path (in-sequence diffs of a synced book applied by the scanner) and
the C-level picows listener: same records and counters as the Python procedure, every time."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from livestack.config import BTCUSDT_SPOT, BTCUSDT_USDM
from livestack.feeds.binance import BinanceDecoder, Counters, MdBuffer
from livestack.feeds.capture import read_capture
from livestack.schema import FeedStatus, RecordKind

from .test_binance import BAD_LEVELS, SPOT, diff, snapshot, statuses, trade

picows = pytest.importorskip("picows")
from picows.picows import _make_test_ws_frame  # noqa: E402

from livestack.feeds._picows_binance import BinanceFrameListener  # noqa: E402

CAPTURES = {
    "spot": ("binance/spot-btcusdt-20240808.gz", dataclasses.replace(BTCUSDT_SPOT, qty_decimals=8)),
    "usdm": ("binance/usdm-btcusdt-20240808.gz", BTCUSDT_USDM),
}


def run(lines, inst, market, fast_path):
    dec = BinanceDecoder([inst], market, MdBuffer(1 << 12), Counters(), fast_path=fast_path)
    chunks = []
    for i, (ts, msg) in enumerate(lines):
        if msg[2] == 108:  # '{"l...': the REST snapshot line
            dec.on_snapshot(inst.symbol, msg, ts)
        else:
            dec.on_message(msg, ts)
        if (i & 127) == 127:
            chunks.append(dec.out.take().copy())
    chunks.append(dec.out.take().copy())
    return np.concatenate(chunks), dec


@pytest.mark.parametrize("market", sorted(CAPTURES))
def test_fast_path_writes_the_records_of_the_python_procedure_on_the_real_captures(datadir, market):
    rel, inst = CAPTURES[market]
    lines = read_capture(datadir / rel)
    fast, dfast = run(lines, inst, market, True)
    slow, dslow = run(lines, inst, market, False)
    assert len(fast) > 100_000
    assert fast.tobytes() == slow.tobytes()
    assert dfast.c.as_dict() == dslow.c.as_dict()
    assert dfast.syncs[inst.symbol.lower()].last_u == dslow.syncs[inst.symbol.lower()].last_u


def synced(fast_path):
    d = BinanceDecoder([SPOT], "spot", fast_path=fast_path)
    d.on_message(diff(95, 101, b=[("99.00", "1")]), 1)
    d.on_snapshot("BTCUSDT", snapshot(100), 2)
    d.on_message(diff(102, 103, b=[("99.00", "2")]), 3)  # the first diff after a snapshot: Python
    d.on_message(diff(104, 105, a=[("101.00", "3")]), 4)  # in sequence: the C path, when on
    d.out.clear()
    return d


def test_the_fast_path_continues_the_chain_and_hands_a_break_back_as_a_gap():
    for fp in (True, False):
        d = synced(fp)
        assert d.syncs["btcusdt"].last_u == 105
        d.on_message(diff(106, 106), 5)
        d.on_message(diff(104, 105), 6)  # old: dropped
        d.on_message(diff(110, 111), 7)  # expected U 107: a gap
        recs = d.out.take()
        assert statuses(recs) == [FeedStatus.GAP]
        assert d.c.diffs_dropped_old == 1 and d.c.gaps == 1 and not d.syncs["btcusdt"].synced


@pytest.mark.parametrize("reason,levels", BAD_LEVELS)
def test_malformed_levels_on_the_fast_path_are_handled_by_the_procedure(reason, levels):
    out = {}
    for fp in (True, False):
        d = synced(fp)
        msg = ('{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"U":106,"u":107,'
               '"b":[["99.00","1"]],"a":' + levels + '}}').encode()
        d.on_message(msg, 5)
        recs = d.out.take().copy()
        assert (recs["kind"] != RecordKind.MD_LEVEL).all()  # not even the good bid got out
        assert d.c.as_dict()[f"malformed_{reason}"] == 1
        out[fp] = (recs.tobytes(), d.c.as_dict(), d.syncs["btcusdt"].synced)
    assert out[True] == out[False]


def frames(msgs):
    return [_make_test_ws_frame(picows.WSMsgType.TEXT, m, True, False) for m in msgs]


class _Session:
    got = False


def test_the_c_listener_decodes_like_on_message_and_passes_the_rest_to_python():
    msgs = [diff(95, 101, b=[("99.00", "1")])]
    later = [diff(102, 103, b=[("99.00", "2")]), trade(True), diff(104, 105, a=[("101.00", "3")]),
             b'{"stream":"btcusdt@trade","data":[]}', trade(False, t=43), diff(106, 107)]
    ref = BinanceDecoder([SPOT], "spot")
    for m in msgs:
        ref.on_message(m, 0)
    ref.on_snapshot("BTCUSDT", snapshot(100), 0)
    dec = BinanceDecoder([SPOT], "spot")
    for m in msgs:
        dec.on_message(m, 0)
    dec.on_snapshot("BTCUSDT", snapshot(100), 0)
    python_path, batches = [], []
    sess = _Session()

    def on_message(m, ts):
        python_path.append(m)
        dec.on_message(m, ts)

    lst = BinanceFrameListener(dec._fast, dec.out, on_message, lambda: batches.append(dec.c.messages), dec.c, sess)
    for f in frames(later):
        lst.on_ws_frame(None, f)
    for m in later:
        ref.on_message(m, 0)
    got, want = dec.out.take().copy(), ref.out.take().copy()
    for a in (got, want):  # the receive time is the listener's clock
        a["ts"] = 0
    assert got.tobytes() == want.tobytes()
    assert sess.got
    # (the buffered diff that straddled the snapshot was the first after it:) only the malformed
    # message went through Python
    assert python_path == [later[3]]
    assert dec.c.as_dict() == ref.c.as_dict()
    assert dec.c.messages == len(msgs) + len(later)


def test_the_c_listener_reassembles_fragments_and_flushes_counts_at_each_read_end():
    dec = BinanceDecoder([SPOT], "spot")
    seen = []
    lst = BinanceFrameListener(dec._fast, dec.out, lambda m, ts: seen.append(m) or dec.on_message(m, ts),
                               None, dec.c, _Session())
    m = trade(True)
    lst.on_ws_frame(None, _make_test_ws_frame(picows.WSMsgType.TEXT, m[:10], False, False))
    lst.on_ws_frame(None, _make_test_ws_frame(picows.WSMsgType.CONTINUATION, m[10:], True, False))
    assert seen == [m] and dec.c.messages == 1
    assert len(dec.out.take()) == 1


def test_the_feed_runs_the_c_listener_when_it_is_built():
    from livestack.feeds import binance_ws

    dec = BinanceDecoder([SPOT], "spot")
    make = binance_ws._frame_listener(dec, dec.on_message, None)
    assert make is not None and isinstance(make(_Session()), BinanceFrameListener)
