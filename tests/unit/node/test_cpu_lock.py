"""Per-CPU harness locks, the metrics-port preflight and the stdout that survives ``| head``."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys

import pytest

from livestack.node import supervisor as sv

HOLD = """
import os, sys, time
from livestack.node import supervisor as sv
sv.CPU_LOCK_DIR = sys.argv[1]
sv.take_cpu_lock(int(sys.argv[2]), "other-session")
print("locked", flush=True)
sys.stdin.read()  # hold it until the test closes our stdin
"""


@pytest.fixture
def lockdir(tmp_path, monkeypatch):
    monkeypatch.setattr(sv, "CPU_LOCK_DIR", str(tmp_path))
    return tmp_path


def test_a_cpu_held_by_a_live_harness_is_refused_naming_it(lockdir):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lockdir), "3"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=root))
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(sv.StartRefused, match=f"CPU 3 is taken .*session other-session pid {holder.pid}"):
            sv.check_cpu_free(3)
        with pytest.raises(sv.StartRefused, match="other-session"):
            sv.take_cpu_lock(3, "mine")
        sv.check_cpu_free(2)  # another CPU is free
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    sv.check_cpu_free(3)  # the kernel dropped the lock with its holder: no stale lock
    fd = sv.take_cpu_lock(3, "mine")
    os.close(fd)


def test_checks_do_not_refuse_each_other(lockdir):
    sv.check_cpu_free(5)
    sv.check_cpu_free(5)  # a check never leaves the CPU looking taken


def test_metrics_port_in_use_is_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(sv.StartRefused, match=f"metrics_port {port} is not free"):
            sv.check_port_free(port)


class _Closed(io.StringIO):
    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")


def test_safe_stream_turns_a_broken_pipe_into_a_flag():
    out = sv.SafeStream(_Closed())
    assert not out.broken
    print("status", file=out, flush=True)  # must not raise
    assert out.broken
    print("more", file=out, flush=True)


def test_run_help_documents_exit_codes():
    from livestack.cli import build_parser

    ap = build_parser()
    run = ap._subparsers._group_actions[0].choices["run"]
    text = run.format_help()
    assert "exit codes:" in text
    for code in (sv.EXIT_OK, sv.EXIT_FAILED, sv.EXIT_REFUSED, sv.EXIT_HANGUP, sv.EXIT_PIPE):
        assert f"\n  {code} " in text


def test_safe_stream_notices_a_closed_pipe_reader_without_writing():
    r, w = os.pipe()
    with os.fdopen(w, "w") as wf:
        out = sv.SafeStream(wf)
        assert not out.reader_gone()
        os.close(r)  # `head` exited
        assert out.reader_gone() and out.broken


def test_a_fatal_attribute_marks_a_child_error_fatal():
    """A process raising an exception with ``fatal = True`` (e.g. a venue that gave up logging on)
    exits EXIT_CHILD_FATAL with its reason on the report pipe: the supervisor stops the session."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    p = ctx.Process(target=sv._child, args=(_give_up, -1, (), {}, os.getpid(), "venue", "", 0, send))
    p.start()
    send.close()
    p.join(timeout=60)
    assert p.exitcode == sv.EXIT_CHILD_FATAL
    assert recv.recv() == "GaveUp: logon refused 5 times: giving up"


class GaveUp(RuntimeError):
    fatal = True


def _give_up():
    raise GaveUp("logon refused 5 times: giving up")
