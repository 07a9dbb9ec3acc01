"""The one shared-memory lifecycle (livestack.ipc.shm.Segment) that rings and the telemetry block use."""

import multiprocessing as mp
import os
import stat
import threading
import time

import pytest

from livestack.ipc import Ring, shm
from livestack.ipc.shm import Segment, SegmentMissing, pid_alive, segment_name
from livestack.telemetry.block import TelemetryBlock


def _mode(name):
    return stat.S_IMODE(os.stat(shm.SHM_DIR + name).st_mode)


def test_every_segment_is_created_0600_whoever_creates_it(session):
    """The trust boundary is the uid: rings, the telemetry block and raw segments alike."""
    seg = Segment.create(segment_name(session, "raw"), 4096)
    ring = Ring.create(segment_name(session, "ring"), 8, 64)
    tel = TelemetryBlock.create(segment_name(session, "telemetry"))
    try:
        assert {_mode(seg.name), _mode(ring.name), _mode(tel.name)} == {0o600}
    finally:
        seg.close()
        ring.close()
        tel.close()


def test_create_refuses_an_existing_name_and_attach_a_missing_one(session):
    name = segment_name(session, "x")
    seg = Segment.create(name, 64)
    try:
        with pytest.raises(FileExistsError, match=name):
            Segment.create(name, 64)
    finally:
        seg.close()
    with pytest.raises(SegmentMissing, match=segment_name(session, "nothing") + " does not exist"):
        Segment.attach(segment_name(session, "nothing"))


def test_attach_waits_for_the_creator_to_initialise_then_sees_its_bytes(session):
    name = segment_name(session, "late")

    def creator():
        time.sleep(0.2)
        seg = Segment.create(name, 64)
        time.sleep(0.2)
        seg.mm[0] = 42  # "initialised"
        seg.close()

    t = threading.Thread(target=creator)
    t.start()
    try:
        seg = Segment.attach(name, timeout=30, ready=lambda mm: mm[0] == 42)
        assert seg.mm[0] == 42 and not seg.owner
        seg.close()
    finally:
        t.join(30)


def test_attach_gives_up_after_its_timeout_naming_what_was_missing(session):
    name = segment_name(session, "never")
    seg = Segment.create(name, 64)
    try:
        with pytest.raises(SegmentMissing, match=f"{name} is not initialised after 0.1 s"):
            Segment.attach(name, timeout=0.1, ready=lambda mm: False)
    finally:
        seg.close()


def test_a_telemetry_attach_with_a_timeout_waits_for_the_block_like_a_ring_attach_does(session):
    name = segment_name(session, "telemetry")
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("blk", TelemetryBlock.attach(name, timeout=30)))
    t.start()
    time.sleep(0.1)
    blk = TelemetryBlock.create(name)
    try:
        t.join(30)
        assert out["blk"].creator_pid == os.getpid()
        out["blk"].close()
    finally:
        blk.close()


def test_role_locks_conflict_between_handles_and_go_with_close(session):
    a = Segment.create(segment_name(session, "locks"), 4096)
    b = Segment.attach(a.name)
    try:
        assert a.take_role(0) and not b.take_role(0)
        assert b.take_role(1)  # another byte: another role
        assert not a.role_free(1) and b.role_free(0) is False
        a.close()
        assert b.take_role(0)
    finally:
        a.close()
        b.close()


def test_close_and_unlink_are_idempotent(session):
    seg = Segment.create(segment_name(session, "twice"), 64)
    seg.close()
    seg.close()
    assert seg.closed
    assert seg.unlink() is True and seg.unlink() is False


def _exit_now():
    pass


def test_pid_alive_is_written_once_and_knows_dead_processes():
    assert pid_alive(os.getpid())
    assert not pid_alive(0) and not pid_alive(-1)
    p = mp.get_context("spawn").Process(target=_exit_now)
    p.start()
    p.join(30)
    assert not pid_alive(p.pid)


def test_remove_stale_unlinks_a_dead_sessions_segments_only(session):
    p = mp.get_context("spawn").Process(target=_exit_now)
    p.start()
    p.join(30)
    dead = shm.new_session_id(p.pid)
    stale = Segment.create(segment_name(dead, "md.x"), 64)
    live = Segment.create(segment_name(session, "md.x"), 64)
    try:
        removed = shm.remove_stale()
        assert stale.name in removed and live.name not in removed
        assert shm.list_segments(dead) == [] and shm.list_segments(session) == [live.name]
    finally:
        stale.close()
        live.close()
        shm.remove_session(dead)
