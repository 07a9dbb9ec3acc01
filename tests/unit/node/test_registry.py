"""The host's stacks registry (``livestack ls``): entries, liveness, lookup by session or name."""

import os
import subprocess
import sys

import pytest

from livestack.node import registry
from livestack.node.supervisor import alive_path, hold_alive


@pytest.fixture
def reg(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVESTACK_STACKS_DIR", str(tmp_path / "stacks"))
    return tmp_path / "stacks"


def test_a_live_stack_is_listed_and_found_by_session_or_name(reg, session):
    fd = hold_alive(session)
    try:
        registry.register({"session": session, "name": "desk-a", "supervisor_pid": os.getpid(), "started_at": 1.0})
        assert [e["session"] for e in registry.stacks()] == [session]
        assert registry.find()["name"] == "desk-a"
        assert registry.find("desk-a")["session"] == session
        assert registry.find(session[:6])["session"] == session
        with pytest.raises(LookupError, match="no running stack named 'desk-z'; running: "):
            registry.find("desk-z")
        assert oct(os.stat(reg).st_mode & 0o777) == "0o700"
    finally:
        os.close(fd)
        os.unlink(alive_path(session))


def test_a_dead_supervisor_s_entry_is_stale_and_removed(reg, session):
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait(timeout=30)
    registry.register({"session": session, "name": "x", "supervisor_pid": p.pid, "started_at": 1.0})
    assert registry.stacks() == []
    assert not list(reg.glob("*.json"))
    with pytest.raises(LookupError, match="no livestack stack is running"):
        registry.find()


def test_a_reused_pid_is_not_the_supervisor(reg, session):
    fd = hold_alive(session)
    try:
        path = registry.register({"session": session, "supervisor_pid": os.getpid(), "started_at": 1.0})
        import json

        e = json.load(open(path))
        e["supervisor_start"] += 1  # another process that got our pid later
        json.dump(e, open(path, "w"))
        assert registry.stacks() == []
    finally:
        os.close(fd)
        os.unlink(alive_path(session))
