"""Behaviour of the SPSC ring, run against the compiled ring and the pure-Python reference."""

import numpy as np
import pytest

from livestack.ipc import Backoff, Ring, RingError, segment_name
from livestack.ipc import pyring
from livestack.ipc.ring import FULL, OK
from livestack.schema import DTYPES, SLOT128, RecordKind, new

IMPLS = {"compiled": (Ring, RingError), "reference": (pyring.PyRing, pyring.RingError)}


@pytest.fixture(params=list(IMPLS))
def impl(request):
    return IMPLS[request.param]


@pytest.fixture
def make(impl, session):
    created = []

    def _make(capacity=8, slot=64, kind=RecordKind.MD_LEVEL, name="r"):
        r = impl[0].create(segment_name(session, f"{name}{len(created)}"), capacity, slot, kind)
        created.append(r)
        return r

    yield _make
    for r in created:
        r.close()


def recs(seqs):
    a = new("MD_LEVEL", len(seqs))
    a["seq"] = seqs
    a["price"] = np.asarray(seqs) * 3
    return a


def test_a_new_ring_is_empty(make):
    r = make()
    assert r.size() == 0 and r.free() == 8
    assert r.peek() is None
    out = new("MD_LEVEL", 4)
    assert r.read(out) == 0
    assert len(r.view()) == 0


def test_write_then_read_returns_the_same_records_in_order(make):
    r = make()
    for s in (1, 2, 3):
        assert r.write(recs([s])) == OK
    out = new("MD_LEVEL", 8)
    assert r.read(out) == 3
    assert list(out["seq"][:3]) == [1, 2, 3] and list(out["price"][:3]) == [3, 6, 9]
    assert r.size() == 0


def test_write_returns_full_when_ring_is_full_and_overwrites_nothing(make):
    r = make(capacity=4)
    assert r.write_batch(recs([1, 2, 3, 4])) == 4
    assert r.write(recs([5])) == FULL
    out = new("MD_LEVEL", 8)
    assert r.read(out) == 4
    assert list(out["seq"][:4]) == [1, 2, 3, 4]


def test_write_batch_writes_the_prefix_that_fits(make):
    r = make(capacity=4)
    assert r.write_batch(recs([1, 2])) == 2
    assert r.write_batch(recs([3, 4, 5, 6])) == 2
    out = new("MD_LEVEL", 8)
    assert r.read(out) == 4 and list(out["seq"][:4]) == [1, 2, 3, 4]


def test_write_batch_all_or_nothing_writes_nothing_when_it_does_not_fit(make):
    r = make(capacity=4)
    r.write_batch(recs([1, 2, 3]))
    assert r.write_batch(recs([4, 5]), all_or_nothing=True) == 0
    assert r.size() == 3


def test_records_survive_many_wraparounds(make):
    r = make(capacity=8)
    out = new("MD_LEVEL", 5)
    seq = 1
    expect = 1
    for _ in range(50):
        assert r.write_batch(recs(list(range(seq, seq + 5)))) == 5
        seq += 5
        assert r.read(out) == 5
        assert list(out["seq"]) == list(range(expect, expect + 5))
        expect += 5
    assert r.head == r.tail == 250


def test_read_across_the_wrap_point_copies_both_parts(make):
    r = make(capacity=8)
    r.write_batch(recs(list(range(1, 7))))
    out = new("MD_LEVEL", 6)
    r.read(out)
    r.write_batch(recs(list(range(7, 15))))  # slots 6,7,0..5
    out = new("MD_LEVEL", 8)
    assert r.read(out) == 8
    assert list(out["seq"]) == list(range(7, 15))


def test_claim_fill_commit_publishes_in_place(make):
    r = make(capacity=8)
    v = r.claim(3)
    assert len(v) == 3
    v["seq"] = [10, 11, 12]
    r.commit(2)
    assert r.size() == 2
    out = new("MD_LEVEL", 8)
    assert r.read(out) == 2 and list(out["seq"][:2]) == [10, 11]


def test_claim_stops_at_the_wrap_point_and_when_full(make):
    r = make(capacity=8)
    r.write_batch(recs(list(range(1, 7))))
    r.read(new("MD_LEVEL", 6))
    v = r.claim(5)
    assert len(v) == 2  # slots 6 and 7, then wrap
    v["seq"] = [7, 8]
    r.commit(2)
    v = r.claim(10)
    assert len(v) == 6  # the rest of the ring
    r.commit(0)
    r.write_batch(recs(list(range(9, 15))))
    assert len(r.claim(1)) == 0


def test_commit_of_more_than_claimed_is_an_error(make):
    r = make()
    r.claim(2)
    with pytest.raises(ValueError, match="only 2 claimed"):
        r.commit(3)


def test_view_is_zero_copy_and_release_frees_slots(make):
    r = make(capacity=4)
    r.write_batch(recs([1, 2, 3, 4]))
    v = r.view(3)
    assert list(v["seq"]) == [1, 2, 3]
    assert not v.flags.writeable
    assert r.free() == 0  # nothing released yet
    r.release(3)
    assert r.free() == 3 and r.size() == 1
    assert list(r.view()["seq"]) == [4]


def test_release_of_more_than_readable_is_an_error(make):
    r = make()
    r.write_batch(recs([1]))
    with pytest.raises(ValueError, match="only 1 readable"):
        r.release(2)


def test_peek_shows_the_next_record_without_consuming_it(make):
    r = make()
    r.write_batch(recs([5, 6]))
    p = r.peek()
    assert p["seq"][0] == 5 and r.size() == 2
    r.release(1)
    assert r.peek()["seq"][0] == 6


def test_read_respects_max_records(make):
    r = make()
    r.write_batch(recs([1, 2, 3]))
    out = new("MD_LEVEL", 8)
    assert r.read(out, max_records=2) == 2
    assert r.size() == 1


def test_wrong_itemsize_is_refused(make):
    r = make(slot=64)
    with pytest.raises(ValueError, match="itemsize"):
        r.write_batch(np.zeros(2, dtype=SLOT128))
    with pytest.raises(ValueError, match="itemsize"):
        r.read(np.zeros(2, dtype=SLOT128))


def test_bytes_records_of_the_slot_size_are_accepted(make):
    r = make()
    assert r.write(recs([42]).tobytes()) == OK
    with pytest.raises(ValueError):
        r.write(b"short")
    assert r.peek()["seq"][0] == 42


def test_a_mixed_kind_ring_exposes_the_raw_slot_dtype(make):
    r = make(slot=128, kind=0)
    e = new("EXEC", 1, client_order_id=7)
    r.write(e)
    v = r.peek()
    assert v["kind"][0] == RecordKind.EXEC
    assert v.view(DTYPES["EXEC"])["client_order_id"][0] == 7


def test_attach_sees_the_creators_records_and_positions(make, impl, session):
    r = make(capacity=8)
    r.write_batch(recs([1, 2, 3]))
    a = impl[0].attach(r.name, slot_size=64, record_kind=RecordKind.MD_LEVEL)
    try:
        out = new("MD_LEVEL", 8)
        assert a.read(out) == 3 and list(out["seq"][:3]) == [1, 2, 3]
        assert r.head == 3
    finally:
        a.close()


def test_attach_to_a_missing_segment_names_it(impl, session):
    name = segment_name(session, "nope")
    with pytest.raises(impl[1], match=f"ring {name}: shared-memory segment does not exist"):
        impl[0].attach(name)


@pytest.mark.parametrize("kwargs,match", [
    ({"slot_size": 128}, "slot size 64, expected 128"),
    ({"record_kind": RecordKind.EXEC}, "record kind 1, expected 5"),
])
def test_attach_with_the_wrong_expectation_says_what_differs(make, impl, kwargs, match):
    r = make()
    with pytest.raises(impl[1], match=match):
        impl[0].attach(r.name, **kwargs)


def test_attach_refuses_a_segment_that_is_not_a_ring(impl, session):
    from livestack.ipc import shm
    name = segment_name(session, "junk")
    seg, mm = shm.create_segment(name, 4096)
    mm[:8] = b"garbage!"
    mm.close()
    with pytest.raises(impl[1], match="magic"):
        impl[0].attach(name)


@pytest.mark.parametrize("cap,slot", [(3, 64), (0, 64), (8, 96)])
def test_create_validates_capacity_and_slot_size(impl, session, cap, slot):
    with pytest.raises(ValueError):
        impl[0].create(segment_name(session, "bad"), cap, slot, 0)


def test_create_refuses_an_existing_name(make, impl):
    r = make()
    with pytest.raises(FileExistsError, match=r.name):
        impl[0].create(r.name, 8, 64, 0)


def test_positions_persist_in_the_segment_across_consumers(make, impl):
    """A new consumer attaching to the same segment resumes at the released position."""
    r = make(capacity=16)
    r.write_batch(recs(list(range(1, 11))))
    c1 = impl[0].attach(r.name)
    out = new("MD_LEVEL", 4)
    c1.read(out)
    c1.view(2)  # viewed, not released: must be read again by the next consumer
    c1.close()
    c2 = impl[0].attach(r.name)
    try:
        out = new("MD_LEVEL", 16)
        n = c2.read(out)
        assert list(out["seq"][:n]) == list(range(5, 11))
    finally:
        c2.close()


def test_the_two_implementations_interoperate(session):
    r = Ring.create(segment_name(session, "x"), 8, 64, RecordKind.MD_LEVEL)
    p = pyring.PyRing.attach(r.name, role="producer")
    try:
        p.write_batch(recs([1, 2, 3]))
        out = new("MD_LEVEL", 8)
        assert r.read(out) == 3 and list(out["seq"][:3]) == [1, 2, 3]
        p.close()  # the reference producer goes; the compiled handle produces, a reference one consumes
        r.write_batch(recs([4]))
        r.release_role("consumer")
        p = pyring.PyRing.attach(r.name, role="consumer")
        assert p.read(out) == 1 and out["seq"][0] == 4
    finally:
        p.close()
        r.close()


def test_a_new_producer_resumes_from_the_published_tail_after_one_killed_mid_commit(session):
    """The producer keeps its own copy of tail on its own line (ls_ring.h). One killed between
    updating that copy and publishing tail leaves the copy ahead: the next producer must start
    from the published tail, or the consumer would read slots nobody finished."""
    r = Ring.create(segment_name(session, "k"), 8, 64, RecordKind.MD_LEVEL)
    raw = pyring.PyRing.attach(r.name)  # no role: only pokes the header, as a crash would leave it
    try:
        p = Ring.attach(r.name, role="producer")
        p.write_batch(recs([1, 2]))
        assert raw._g(pyring._TAIL_OWN) == raw._g(pyring._TAIL) == 2
        raw._s(pyring._TAIL_OWN, 4)  # its own copy moved on, the publish never happened
        p.close()
        q = Ring.attach(r.name, role="producer")
        q.write_batch(recs([3]))
        out = new("MD_LEVEL", 8)
        assert r.read(out) == 3 and list(out["seq"][:3]) == [1, 2, 3]
        q.close()
    finally:
        raw.close()
        r.close()


def test_wait_readable_times_out_then_sees_data(session):
    r = Ring.create(segment_name(session, "w"), 8, 64, RecordKind.MD_LEVEL)
    try:
        assert r.wait_readable(0.01) is False
        r.write(recs([1]))
        assert r.wait_readable(1.0) is True
        r.write_batch(recs(list(range(2, 9))))
        assert r.wait_writable(0.01) is False
    finally:
        r.close()


def test_closed_ring_raises_instead_of_crashing(session):
    r = Ring.create(segment_name(session, "c"), 8, 64, RecordKind.MD_LEVEL)
    r.close()
    with pytest.raises(RingError, match="closed"):
        r.size()


def test_backoff_rejects_unknown_policy():
    with pytest.raises(ValueError, match="wait policy"):
        Backoff("sleepy")
    b = Backoff("backoff", spins=1, yields=1, min_sleep_ns=1000, max_sleep_ns=2000)
    for _ in range(5):
        b.idle()
    b.reset()
