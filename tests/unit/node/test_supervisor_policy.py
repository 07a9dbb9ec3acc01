"""Supervisor policies that need no processes: no restart of a writer that stopped at a full disk,
and the last-one-out removal of an orphaned session's shared memory."""

from __future__ import annotations

import io
import os

from livestack.ipc import shm
from livestack.node import config
from livestack.node.supervisor import Managed, Supervisor, alive_path, hold_alive, last_one_out
from livestack.records.diskspace import EXIT_DISK_FULL


class _Exited:
    def __init__(self, code):
        self.exitcode = code
        self.pid = 0

    def is_alive(self):
        return False


def test_a_writer_that_exited_for_a_full_disk_is_not_restarted():
    sup = Supervisor(config.validate({}), out=io.StringIO())
    sup.procs["writer"] = Managed("writer", None, -1, (), proc=_Exited(EXIT_DISK_FULL))
    for _ in range(3):
        assert sup.poll()
    w = sup.procs["writer"]
    assert not w.restart and w.restarts == 0 and w.next_restart == 0.0
    assert sum("records disk is full" in e for e in sup.events) == 1, sup.events


def test_a_writer_that_crashed_is_still_restarted():
    sup = Supervisor(config.validate({}), out=io.StringIO())
    sup.procs["writer"] = Managed("writer", None, -1, (), proc=_Exited(-9))
    assert sup.poll()
    assert sup.procs["writer"].next_restart > 0.0, sup.events


def test_the_last_process_out_removes_the_sessions_shared_memory():
    session = shm.new_session_id()
    seg, mm = shm.create_segment(shm.segment_name(session, "x"), 4096)
    mm.close()
    try:
        a, b = hold_alive(session), hold_alive(session)
        assert not last_one_out(session, a), "removed while another process still holds the session"
        assert shm.segment_name(session, "x") in shm.list_segments(session)
        assert last_one_out(session, b)
        assert shm.list_segments(session) == [] and not os.path.exists(alive_path(session))
    finally:
        shm.remove_session(session)


def test_a_new_session_spares_an_orphaned_session_that_is_still_stopping():
    from livestack.node.supervisor import remove_stale

    session = "999999999-abcdef"  # a pid that cannot be alive: the supervisor is dead
    seg, mm = shm.create_segment(shm.segment_name(session, "records"), 4096)
    mm.close()
    try:
        held = hold_alive(session)  # a child still stopping
        assert remove_stale() == [] or all(session not in n for n in remove_stale())
        assert shm.list_segments(session), "pulled the rings from under a stopping session"
        os.close(held)
        assert shm.segment_name(session, "records") in remove_stale()
        assert shm.list_segments(session) == []
    finally:
        shm.remove_session(session)


def test_restart_backoff_grows_with_the_crash_loop_only_not_with_every_restart_in_the_session():
    import time

    from livestack.node.supervisor import QUICK_FAIL_S, RESTART_DELAY_S

    sup = Supervisor(config.validate({}), out=io.StringIO())
    w = sup.procs["writer"] = Managed("writer", None, -1, (), proc=_Exited(-9), restarts=9)
    w.started = time.monotonic() - QUICK_FAIL_S - 1  # it ran long enough: killed after a healthy run
    t0 = time.monotonic()
    assert sup.poll()
    assert w.next_restart - t0 <= RESTART_DELAY_S + 0.5, (w.next_restart - t0, sup.events)  # not 10 s
    w.next_restart, w.started = 0.0, time.monotonic()  # then it fails right after each start: doubles
    waits = []
    for _ in range(3):
        t0 = time.monotonic()
        assert sup.poll()
        waits.append(w.next_restart - t0)
        w.next_restart, w.started = 0.0, time.monotonic()
    assert waits[1] > 1.5 * waits[0] and waits[2] > 1.5 * waits[1], waits
