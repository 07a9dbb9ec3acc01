"""OKX and Kraken feed processes over a real websocket (``testing.ws_replay`` on 127.0.0.1) into a
shared-memory md ring, with both transports: the records equal the offline decode of the same
capture; a lost message -> GAP -> the feed resubscribes -> the venue's fresh snapshot makes the book
valid again."""

from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np
import pytest

from livestack.config import Instrument
from livestack.feeds import kraken, okx, venue_ws
from livestack.feeds.capture import book_from_records
from livestack.feeds.capture_formats import write_livestack
from livestack.ipc import Backoff, Ring, segment_name
from livestack.schema import DTYPE_BY_KIND, FeedStatus, RecordKind
from livestack.testing.l2_venue import kraken_session, okx_session
from livestack.testing.ws_replay import WsReplay

TIMEOUT = 60.0
OKX_I = Instrument(7, "BTC-USDT", "okx", price_decimals=1, qty_decimals=8)
KR_I = Instrument(8, "BTC/USD", "kraken", price_decimals=1, qty_decimals=8)


def _statuses(recs):
    st = recs.view(DTYPE_BY_KIND[RecordKind.MD_STATUS])
    return [int(s) for k, s in zip(recs["kind"], st["status"]) if k == int(RecordKind.MD_STATUS)]


def _run(session, procs, venue, inst, capture, resync=(), until=None, **options):
    ctx = mp.get_context("spawn")
    name = segment_name(session, f"md.{venue}")
    ring = Ring.create(name, 1 << 16, 64)
    stop = ctx.Event()
    mgr = ctx.Manager()
    counters = mgr.dict()
    entry = venue_ws.run_okx if venue == "okx" else venue_ws.run_kraken
    chunks = []
    buf = np.zeros(4096, dtype=ring.dtype)
    try:
        with WsReplay(capture, resync=resync) as srv:
            opts = dict(ws_url=srv.url, ping_interval_s=0, **options)
            p = ctx.Process(target=entry, args=(name, [inst], opts, stop, counters), daemon=True)
            procs.append(p)
            p.start()
            backoff = Backoff("backoff")
            deadline = time.monotonic() + TIMEOUT
            total = len(srv.messages) + len(resync)
            quiet_since = None
            while True:
                assert time.monotonic() < deadline, f"feed did not finish: sent {srv.sent}/{total}"
                assert p.is_alive(), f"feed process died: {p.exitcode}"
                k = ring.read(buf)
                if k:
                    chunks.append(buf[:k].copy())
                    backoff.reset()
                    quiet_since = None
                    continue
                if srv.sent >= total and (until is None or until(chunks)):
                    # everything sent: wait until the ring stays empty a moment (the feed drained it)
                    quiet_since = quiet_since or time.monotonic()
                    if time.monotonic() - quiet_since > 0.5:
                        break
                backoff.idle()
            stop.set()
            p.join(15)
            assert p.exitcode == 0, f"feed exit code {p.exitcode}"
            while (k := ring.read(buf)):
                chunks.append(buf[:k].copy())
            received = list(srv.received)
        c = dict(counters)
    finally:
        stop.set()
        ring.close()
        ring.unlink()
        mgr.shutdown()
    return np.concatenate(chunks), c, received


@pytest.mark.parametrize("transport", ["picows", "websockets"])
@pytest.mark.parametrize("venue", ["okx", "kraken"])
def test_feed_process_matches_offline_decode(tmp_path, session, procs, venue, transport):
    msgs = okx_session(seed=11, n=300) if venue == "okx" else kraken_session(seed=11, n=300)
    cap = tmp_path / f"{venue}.gz"
    write_livestack(cap, [(10**18 + i, m) for i, m in enumerate(msgs)])
    inst = OKX_I if venue == "okx" else KR_I
    recs, c, received = _run(session, procs, venue, inst, cap, transport=transport)
    dec = okx.OkxDecoder([inst]) if venue == "okx" else kraken.KrakenDecoder([inst])
    for m in msgs:
        dec.on_message(m, 0)
    ref = dec.out.arr[:dec.out.n]
    # the feed adds CONNECTED first and DISCONNECTED at stop; everything between is the decode
    assert _statuses(recs)[0] == int(FeedStatus.CONNECTED) and _statuses(recs)[-1] == int(FeedStatus.DISCONNECTED)
    body = recs[1:-1]
    assert len(body) == len(ref)
    for f in ("kind", "instrument", "flags"):
        assert np.array_equal(body[f], ref[f])
    lv = DTYPE_BY_KIND[RecordKind.MD_LEVEL]
    assert np.array_equal(body.view(lv)["price"], ref.view(lv)["price"])
    assert np.array_equal(body.view(lv)["qty"], ref.view(lv)["qty"])
    assert np.array_equal(recs["seq"], np.arange(1, len(recs) + 1))
    assert c["checksum_failed"] == 0 and c["gaps"] == 0 and c["checksum_ok"] >= 300
    assert b"subscribe" in received[0]
    _, _, valid = book_from_records(recs[:-1])
    assert valid


@pytest.mark.parametrize("venue", ["okx", "kraken"])
def test_lost_message_gap_resubscribe_resync(tmp_path, session, procs, venue):
    gen = okx_session if venue == "okx" else kraken_session
    msgs = gen(seed=12, n=200)
    books = [i for i, m in enumerate(msgs) if b"book" in m and b"snapshot" not in m and b'"as"' not in m and i > 3]
    lost = msgs[:books[50]] + msgs[books[50] + 1:]
    cap = tmp_path / "lost.gz"
    write_livestack(cap, [(10**18 + i, m) for i, m in enumerate(lost)])
    # the venue's answer to the resubscribe: a snapshot of its book now
    later = gen(seed=13, n=0, trades=False)
    snap = [m for m in later if b"snapshot" in m or b'"as"' in m]
    inst = OKX_I if venue == "okx" else KR_I
    recs, c, received = _run(session, procs, venue, inst, cap, resync=snap)
    assert c["gaps"] == 1 and c["resyncs"] == 1, c
    assert any(b"unsubscribe" in r for r in received)
    st = _statuses(recs)
    g = st.index(int(FeedStatus.GAP))
    assert int(FeedStatus.SNAPSHOT_END) in st[g:]  # valid again after the fresh snapshot
    _, _, valid = book_from_records(recs[:-1])
    assert valid
