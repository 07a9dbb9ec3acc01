"""The ``nats`` feed's subscriber over a real shm ring, no server: relay-seq gaps become MD_STATUS
GAP for every instrument, overlaps (a retried publish) are dropped, a full ring drops and marks GAP."""

import numpy as np
import pytest

from livestack.feeds import nats as natsfeed
from livestack.ipc import Ring, segment_name
from livestack.schema import DTYPES, SLOT64, FeedStatus, RecordKind


def _msg(first, n):
    r = np.zeros(n, dtype=SLOT64)
    r["kind"] = int(RecordKind.MD_TRADE)
    r["seq"] = np.arange(first, first + n)
    return r.tobytes()


@pytest.fixture
def ring(session):
    r = Ring.create(segment_name(session, "md.nats"), 64, 64)
    yield r
    r.close()


def _drain(ring):
    v = ring.view()
    out = np.array(v, copy=True)
    del v
    ring.release(len(out))
    return out


def test_contiguous_messages_pass_through_and_overlap_is_dropped(ring):
    s = natsfeed.Subscriber(ring, [1, 2], natsfeed.options({}))
    s.on_message(1, _msg(1, 5))
    s.on_message(4, _msg(4, 4))      # 4,5 again (a retry cut differently): only 6,7 are new
    s.on_message(8, _msg(8, 2))
    got = _drain(ring)
    assert got["seq"].tolist() == list(range(1, 10))
    assert s.c["duplicates_dropped"] == 2 and s.c["gaps"] == 0


def test_a_relay_seq_gap_marks_every_instrument_gap_then_continues(ring):
    s = natsfeed.Subscriber(ring, [1, 2], natsfeed.options({}))
    s.on_message(1, _msg(1, 3))
    s.on_message(10, _msg(10, 2))
    got = _drain(ring)
    assert s.c["gaps"] == 1
    st = got[got["kind"] == int(RecordKind.MD_STATUS)].view(DTYPES["MD_STATUS"])
    assert st["instrument"].tolist() == [1, 2]
    assert set(st["status"].tolist()) == {int(FeedStatus.GAP)} and st["detail"].tolist() == [4, 4]
    assert got["seq"][got["kind"] == int(RecordKind.MD_TRADE)].tolist() == [1, 2, 3, 10, 11]


def test_a_full_local_ring_drops_counts_and_marks_gap(ring):
    s = natsfeed.Subscriber(ring, [1], natsfeed.options({"overflow_wait_ms": 1.0}))
    s.on_message(1, _msg(1, 63))
    s.on_message(64, _msg(64, 10))   # 1 slot left: 9 dropped, and the GAP status itself finds no room
    assert s.c["overflow_records"] >= 9 and s.c["gaps"] >= 1


def test_options_are_checked():
    with pytest.raises(ValueError, match="nats"):
        natsfeed.options({"deliver": "sometimes"})
    with pytest.raises(ValueError, match="nats"):
        natsfeed.options({"bogus": 1})
