"""One producer and one consumer per ring, enforced by an exclusive lock per role.

Allowed outcomes, stated up front: a handle asking for a role another open handle holds (in this
process or another) is refused with RingRoleTaken naming the ring and, when known, the holder's
pid; nothing it tried to write is written, nothing it tried to read is consumed. A role whose
holder closed its handle or died (SIGKILL included) can be taken again.
"""

import multiprocessing as mp
import os
import signal

import numpy as np
import pytest

from livestack.ipc import Ring, pyring, segment_name
from livestack.ipc.ring import RingRoleTaken
from livestack.schema import RecordKind, new
from tests.waiting import wait_for

IMPLS = {"compiled": (Ring, RingRoleTaken), "reference": (pyring.PyRing, pyring.RingRoleTaken)}


@pytest.fixture(params=list(IMPLS))
def impl(request):
    return IMPLS[request.param]


@pytest.fixture
def ring(impl, session):
    r = impl[0].create(segment_name(session, "roles"), 8, 64, RecordKind.MD_LEVEL)
    yield r
    r.close()


def recs(seqs):
    a = new("MD_LEVEL", len(seqs))
    a["seq"] = seqs
    return a


def test_the_creator_holds_no_role_so_the_supervisor_never_blocks_an_end(ring):
    assert ring.roles == ()


@pytest.mark.parametrize("role", ["producer", "consumer"])
def test_a_second_handle_cannot_take_a_held_role_and_the_error_names_ring_and_holder(impl, ring, role):
    a = impl[0].attach(ring.name, role=role)
    try:
        assert a.roles == (role,)
        with pytest.raises(impl[1], match=rf"ring {ring.name}: already has a {role}, held by .*pid {os.getpid()}"):
            impl[0].attach(ring.name, role=role)
    finally:
        a.close()


def test_producer_and_consumer_roles_are_independent(impl, ring):
    p = impl[0].attach(ring.name, role="producer")
    c = impl[0].attach(ring.name, role="consumer")
    try:
        assert p.write_batch(recs([1, 2])) == 2
        out = new("MD_LEVEL", 4)
        assert c.read(out) == 2 and list(out["seq"][:2]) == [1, 2]
    finally:
        p.close()
        c.close()


def test_a_handle_attached_without_a_role_takes_it_at_its_first_write_and_is_refused_when_held(impl, ring):
    """The attack of issue 12: attach without saying anything, then write into a producer's ring."""
    p = impl[0].attach(ring.name, role="producer")
    foreign = impl[0].attach(ring.name)
    try:
        with pytest.raises(impl[1], match="already has a producer"):
            foreign.write_batch(recs([666]))
        assert ring.size() == 0  # nothing written
        assert p.write_batch(recs([1])) == 1
        with pytest.raises(impl[1], match="already has a producer"):
            foreign.claim(1)
    finally:
        foreign.close()
        p.close()


def test_a_handle_attached_without_a_role_is_refused_at_its_first_read_when_a_consumer_holds_it(impl, ring):
    c = impl[0].attach(ring.name, role="consumer")
    foreign = impl[0].attach(ring.name)
    try:
        p = impl[0].attach(ring.name, role="producer")
        p.write_batch(recs([1, 2, 3]))
        p.close()
        out = new("MD_LEVEL", 4)
        with pytest.raises(impl[1], match="already has a consumer"):
            foreign.read(out)
        with pytest.raises(impl[1], match="already has a consumer"):
            foreign.view()
        assert ring.size() == 3  # nothing consumed
        assert c.read(out) == 3
    finally:
        foreign.close()
        c.close()


def test_closing_a_handle_gives_its_roles_back(impl, ring):
    a = impl[0].attach(ring.name, role="producer")
    a.close()
    b = impl[0].attach(ring.name, role="producer")
    assert b.roles == ("producer",)
    b.close()


def test_the_compiled_ring_and_the_reference_share_the_same_locks(session):
    r = Ring.create(segment_name(session, "x"), 8, 64, RecordKind.MD_LEVEL, role="producer")
    try:
        with pytest.raises(pyring.RingRoleTaken, match="already has a producer"):
            pyring.PyRing.attach(r.name, role="producer")
        p = pyring.PyRing.attach(r.name, role="consumer")
        with pytest.raises(RingRoleTaken, match="already has a consumer"):
            Ring.attach(r.name, role="consumer")
        p.close()
    finally:
        r.close()


def test_an_unknown_role_is_a_value_error(session):
    r = Ring.create(segment_name(session, "u"), 8, 64)
    try:
        with pytest.raises(ValueError, match="role 'writer'"):
            Ring.attach(r.name, role="writer")
    finally:
        r.close()


# --- across processes ----------------------------------------------------------------------

def _hold(name, role, ready, stop):
    """Child: take ``role`` on ring ``name``, say so, write one record if producer, wait to be told."""
    r = Ring.attach(name, timeout=10, role=role)
    if role == "producer":
        r.write_batch(recs([os.getpid()]))
    ready.set()
    stop.wait(60)
    r.close()


def _start_holder(ctx, name, role, procs):
    ready, stop = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold, args=(name, role, ready, stop), daemon=True)
    procs.append(p)
    p.start()
    assert ready.wait(30), "holder process did not take its role"
    return p, stop


@pytest.mark.parametrize("role", ["producer", "consumer"])
def test_a_second_attach_in_another_process_fails_then_succeeds_after_the_holder_is_sigkilled(session, procs, role):
    ctx = mp.get_context("spawn")
    ring = Ring.create(segment_name(session, "x"), 8, 64, RecordKind.MD_LEVEL)
    try:
        holder, _ = _start_holder(ctx, ring.name, role, procs)
        with pytest.raises(RingRoleTaken, match=rf"already has a {role}, held by pid {holder.pid}"):
            Ring.attach(ring.name, role=role)
        other = "consumer" if role == "producer" else "producer"
        Ring.attach(ring.name, role=other).close()  # the other end is free
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
        assert holder.exitcode == -signal.SIGKILL
        # the kernel released the dead holder's lock: a restarted process takes the role again
        again, stop = _start_holder(ctx, ring.name, role, procs)
        stop.set()
        again.join(30)
        assert again.exitcode == 0
    finally:
        ring.close()


def test_an_attach_with_a_timeout_waits_for_a_dying_holder(session, procs):
    """A restarted process may attach while its predecessor is still exiting: it waits (bounded)."""
    ctx = mp.get_context("spawn")
    ring = Ring.create(segment_name(session, "x"), 8, 64, RecordKind.MD_LEVEL)
    try:
        holder, stop = _start_holder(ctx, ring.name, "producer", procs)
        stop.set()  # the holder closes and exits on its own while we wait
        p = Ring.attach(ring.name, role="producer", timeout=30)
        assert p.roles == ("producer",)
        holder.join(30)
        p.close()
        out = new("MD_LEVEL", 4)
        assert ring.read(out) == 1 and out["seq"][0] == holder.pid  # the holder's record arrived whole
    finally:
        ring.close()


def test_a_foreign_process_cannot_write_into_a_ring_whose_producer_is_alive(session, procs):
    ctx = mp.get_context("spawn")
    ring = Ring.create(segment_name(session, "orders"), 8, 64, RecordKind.MD_LEVEL)
    try:
        holder, stop = _start_holder(ctx, ring.name, "producer", procs)
        q = ctx.Queue()
        intruder = ctx.Process(target=_intrude, args=(ring.name, q), daemon=True)
        procs.append(intruder)
        intruder.start()
        intruder.join(30)
        assert intruder.exitcode == 0
        err = q.get(timeout=5)
        assert f"ring {ring.name}: already has a producer, held by pid {holder.pid}" in err
        out = new("MD_LEVEL", 8)
        assert ring.read(out) == 1 and out["seq"][0] == holder.pid  # only the holder's record
        stop.set()
        holder.join(30)
    finally:
        ring.close()


def _intrude(name, q):
    r = Ring.attach(name, timeout=10)
    try:
        r.write_batch(recs([666]))
        q.put("written")
    except RingRoleTaken as e:
        q.put(str(e))
    r.close()


def test_holder_reports_the_pid_recorded_by_a_live_holder_only(session, procs):
    ctx = mp.get_context("spawn")
    ring = Ring.create(segment_name(session, "x"), 8, 64, RecordKind.MD_LEVEL)
    try:
        holder, _ = _start_holder(ctx, ring.name, "consumer", procs)
        assert ring.holder("consumer") == holder.pid and ring.holder("producer") == 0
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
        wait_for(lambda: ring.holder("consumer") == 0, 10, "the dead holder's pid to be reported gone")
    finally:
        ring.close()


def test_views_outliving_close_keep_their_data_but_the_role_is_free(session):
    ring = Ring.create(segment_name(session, "v"), 8, 64, RecordKind.MD_LEVEL)
    c = Ring.attach(ring.name, role="consumer")
    ring.write_batch(recs([7]))
    v = c.view()
    c.close()
    assert v["seq"][0] == 7
    Ring.attach(ring.name, role="consumer").close()
    del v
    ring.close()
