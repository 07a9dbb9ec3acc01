"""The supervisor's side of the warm standby (livestack/node/standby.py): which standby takes
over a dead harness, and when the supervisor waits for one instead of spawning a fresh harness."""

from __future__ import annotations

import os
import signal
import uuid

import pytest

from livestack.harness import recovery
from livestack.harness import standby as hstandby
from livestack.node import standby
from livestack.node.supervisor import Managed, harness_pid_path


class FakeProc:
    def __init__(self, pid, alive=True, exitcode=None):
        self.pid, self.alive, self.exitcode = pid, alive, exitcode

    def is_alive(self):
        return self.alive


class FakeSup:
    def __init__(self, session):
        self.session = session
        self.procs = {}
        self.spawned = []
        self._recovery = recovery.parse({"standby_fork": False})

    def _spawn(self, m):
        m.proc = FakeProc(99_000 + len(self.spawned))
        self.spawned.append(m.name)


@pytest.fixture
def sup(monkeypatch):
    s = FakeSup(f"unit{uuid.uuid4().hex[:8]}")
    sent = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append((pid, sig)))
    s.sent = sent
    yield s
    for p in (harness_pid_path(s.session),) + tuple(hstandby.ready_path(s.session, pid) for pid in (11, 12, 13)):
        if os.path.exists(p):
            os.unlink(p)


def _standby(sup, name, pid, state):
    m = Managed(name, None, -1, ())
    m.proc = FakeProc(pid)
    sup.procs[name] = m
    if state:
        with open(hstandby.ready_path(sup.session, pid), "w") as f:
            f.write(str(pid) + (" warm" if state == "warm" else ""))
    return m


def _dead_harness(sup, exitcode=-9):
    h = Managed("harness", None, 1, ())
    h.proc = FakeProc(10, alive=False, exitcode=exitcode)
    sup.procs["harness"] = h
    return h


def test_a_warm_standby_is_promoted_first_and_replaced(sup):
    h = _dead_harness(sup)
    _standby(sup, "standby", 11, "ready")
    _standby(sup, "standby2", 12, "warm")
    assert standby.promote(sup, h) is True
    assert sup.sent == [(12, signal.SIGUSR1)] and h.proc.pid == 12
    assert sup.spawned == ["standby2"] and sup.procs["standby2"].proc.pid != 12
    assert standby.successor_text(sup) == f"a new standby is starting (standby2 pid {sup.procs['standby2'].proc.pid})"
    with open(harness_pid_path(sup.session)) as f:
        assert f.read() == "12"


def test_a_killed_harness_waits_for_a_starting_standby_then_gives_up(sup, monkeypatch):
    h = _dead_harness(sup)
    _standby(sup, "standby", 11, None)            # alive, still importing: no ready file
    assert standby.promote(sup, h) is None        # wait for it (it is ahead of a fresh harness)
    assert standby.promote(sup, h) is None and sup.sent == []
    monkeypatch.setattr(standby, "READY_WAIT_S", 0.0)
    sup._standby_wait_until = 0.0                 # the wait ran out
    assert standby.promote(sup, h) is False       # spawn a fresh harness


def test_a_harness_that_failed_by_itself_or_no_standby_alive_means_a_fresh_harness(sup):
    h = _dead_harness(sup, exitcode=1)
    _standby(sup, "standby", 11, None)
    assert standby.promote(sup, h) is False       # not killed: no waiting (crash-loop counting)
    h = _dead_harness(sup)
    sup.procs["standby"].proc.alive = False
    assert standby.promote(sup, h) is False


# -- the forked successor (``[recovery] standby_fork``): adopted by its ready file ---------------

def _forked(session, code=None):
    """A child of this process that announces itself as a standby (its ready file), then waits
    for a byte on the returned pipe and exits ``code`` leaving its status file (None: sleeps)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(w)
            with open(hstandby.ready_path(session, os.getpid()), "w") as f:
                f.write(f"{os.getpid()} warm")
            os.read(r, 1)
            if code is not None:
                with open(hstandby.exit_path(session, os.getpid()), "w") as f:
                    f.write(f"{code} RuntimeError: boom")
                os._exit(code)
            import time

            time.sleep(60)
        finally:
            os._exit(99)
    os.close(r)
    return pid, w


@pytest.fixture
def session():
    s = f"unit{uuid.uuid4().hex[:8]}"
    yield s
    from livestack.ipc import shm

    shm.remove_session(s)


def test_the_promoted_standby_s_forked_child_is_adopted_and_its_exit_status_read(session):
    sup = FakeSup(session)
    pid, go = _forked(session, code=3)
    try:
        child = standby._successor(sup, os.getpid(), wait_s=10.0)
        assert isinstance(child, standby.Adopted) and child.pid == pid
        assert child.is_alive() and child.exitcode is None
        assert hstandby.is_warm(session, pid)
        os.write(go, b"x")
        child.join(10.0)
        assert not child.is_alive()
        assert child.exitcode == 3 and child.why == "RuntimeError: boom"  # from its status file
        assert not os.path.exists(hstandby.exit_path(session, pid))
    finally:
        os.close(go)
        os.waitpid(pid, 0)


def test_an_adopted_process_killed_by_a_signal_reports_it(session):
    """No status file (SIGKILL): the kernel's exit code of the zombie, here -SIGKILL."""
    sup = FakeSup(session)
    pid, go = _forked(session)
    try:
        child = standby._successor(sup, os.getpid(), wait_s=10.0)
        child.kill()
        child.join(10.0)
        assert child.exitcode == -signal.SIGKILL
    finally:
        os.close(go)
        os.waitpid(pid, 0)


def test_only_a_live_child_of_the_promoted_standby_is_adopted(session, monkeypatch):
    """A ready file left by a dead or foreign process is not a successor: after the bounded wait
    the supervisor spawns a new standby instead."""
    sup = FakeSup(session)
    with open(hstandby.ready_path(session, 1), "w") as f:  # pid 1: alive, not our child
        f.write("1 warm")
    assert standby._successor(sup, os.getpid(), wait_s=0.05) is None
    sup._recovery = recovery.parse({"standby_fork": True})
    monkeypatch.setattr(standby, "SUCCESSOR_WAIT_S", 0.05)
    monkeypatch.setattr(os, "kill", lambda pid, sig: None)
    h = _dead_harness(sup)
    _standby(sup, "standby", 11, "warm")
    assert standby.promote(sup, h) is True and h.proc.pid == 11
    assert sup.spawned == ["standby"]
    os.unlink(hstandby.ready_path(session, 11))


def test_a_standby_whose_strategy_runs_threads_does_not_fork(monkeypatch, caplog):
    """A fork copies only the forking thread: the successor would run without the strategy's
    threads. Such a standby leaves its successor to the supervisor (a spawned standby)."""
    import threading

    monkeypatch.setattr(os, "fork", lambda: pytest.fail("forked with a strategy thread running"))
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, name="strategy-worker", daemon=True)
    t.start()
    try:
        with caplog.at_level("WARNING", logger="livestack.harness.standby"):
            hstandby._fork_successor(None, {}, None, None, "s", None, None, None)
    finally:
        stop.set()
        t.join()
    assert "strategy-worker" in caplog.text
