"""What a careless operator does to ``livestack run``, and what it now does (issue 18, items 2 and 5).

Each case starts the real ``livestack run`` as a subprocess (unique session, short ``--duration``,
hard timeouts) and asserts the exit code, the reason on stderr, and that no shared-memory segment
and no process of the session is left behind. CPU locks go to a per-test directory
(``LIVESTACK_CPU_LOCK_DIR``) so concurrent stacks of other tests never collide with these.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading

import pytest

from livestack.ipc import shm
from livestack.node import supervisor as sv
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = """
[session]
records_dir = "{records}"
status_interval_s = {status}
[rings]
records_capacity = 65536
md_capacity = 16384
[writer]
min_free_mb = 16.0
"""


def _config(tmp_path, extra: str = "", status: float = 0.0, name: str = "stack.toml") -> str:
    p = tmp_path / name
    p.write_text(BASE.format(records=tmp_path / "records", status=status) + extra)
    return str(p)


def _env(tmp_path) -> dict:
    return dict(os.environ, PYTHONPATH=ROOT, LIVESTACK_CPU_LOCK_DIR=str(tmp_path))


def _cmd(config: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "livestack.cli", "run", config, *args]


def _run(tmp_path, config: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(config, *args), cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True,
                          timeout=timeout)


class Live:
    """A running ``livestack run`` whose stdout and stderr are collected by threads."""

    def __init__(self, tmp_path, config: str, *args: str, stdout_pipe: bool = True):
        self.proc = subprocess.Popen(_cmd(config, *args), cwd=ROOT, env=_env(tmp_path), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(s, l), daemon=True)
                         for s, l in ((self.proc.stderr, self.err),) + (((self.proc.stdout, self.out),)
                                                                         if stdout_pipe else ())]
        for t in self._readers:
            t.start()

    @staticmethod
    def _read(stream, lines):
        for line in stream:
            lines.append(line.rstrip("\n"))

    def started(self) -> str | None:
        return _started(self.out)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def _started(lines) -> str | None:
    for ln in list(lines):
        if "livestack: session " in ln and " started: " in ln:
            return ln
    return None


def _session_and_pids(line: str) -> tuple[str, list[int]]:
    session = line.split("livestack: session ", 1)[1].split()[0]
    return session, [int(p) for p in re.findall(r" pid (\d+)", line)]


def _assert_nothing_left(session: str, pids: list[int]) -> None:
    assert [n for n in shm.list_segments() if f"{shm.PREFIX}{session}." in n] == []
    assert not os.path.exists(sv.alive_path(session))
    for pid in pids:  # the children were waited for by the supervisor: they are gone, not zombies of it
        wait_for(lambda pid=pid: not shm.pid_alive(pid), timeout=30, what=f"process {pid} gone")


def test_clean_stop_after_duration_exits_0(tmp_path):
    cfg = _config(tmp_path)
    with open(cfg) as f:
        text = f.read().replace("[session]\n", '[session]\nname = "desk-a"\n')
    with open(cfg, "w") as f:
        f.write(text)
    r = _run(tmp_path, cfg, "--duration", "1")
    assert r.returncode == sv.EXIT_OK, r.stdout + r.stderr
    session, pids = _session_and_pids(_started(r.stdout.splitlines()))
    _assert_nothing_left(session, pids)
    # where things are, said at start (issue 18.4)
    records = tmp_path / "records"
    assert re.search(rf"^  session   desk-a \(id {session}\)$", r.stdout, re.M), r.stdout
    assert re.search(rf"^  records   {re.escape(str(records))}/.*/desk-a-{session}\.h5$", r.stdout, re.M)
    assert re.search(r"^  control   ipc://.*control\.sock$", r.stdout, re.M)
    assert len(list(records.glob(f"*/desk-a-{session}.h5"))) == 1  # the session name is in the file name
    assert "  metrics   off (telemetry.metrics_port = 0)" in r.stdout
    assert re.search(r"^  processes .*harness pid \d+ CPU \d+", r.stdout, re.M)
    assert "  feed      sim   venue sim   strategy mm_cy   instruments SIM" in r.stdout


def test_strategy_that_cannot_load_is_refused_before_anything_starts(tmp_path):
    r = _run(tmp_path, _config(tmp_path, '[strategy]\nname = "mystrat.JoinBid"\n'), "--duration", "1")
    assert r.returncode == sv.EXIT_REFUSED
    assert "'strategy.name' = 'mystrat.JoinBid': unknown strategy" in r.stderr
    assert "started" not in r.stdout


def test_strategy_param_typo_is_refused_before_anything_starts(tmp_path):
    # it used to start everything and then the harness died building the strategy (exit 1); the
    # schema now knows the strategy's parameters (a harness that dies at start: the SIGKILL case)
    r = _run(tmp_path, _config(tmp_path, '[strategy]\nname = "mm_cy"\nparams = {half_spred_ticks = 1}\n'),
             "--duration", "20", "--quiet")
    assert r.returncode == sv.EXIT_REFUSED, r.stdout + r.stderr
    assert "unknown key 'strategy.params.half_spred_ticks' for strategy 'mm_cy' (did you mean 'half_spread_ticks'?" in r.stderr
    assert "started" not in r.stdout


def test_sigkilled_harness_fails_the_session(tmp_path):
    # the policy without harness restarts (issue 14 restarts it by default: test_recovery_chaos.py)
    live = Live(tmp_path, _config(tmp_path, "\n[recovery]\nrestart_harness = false\n"), "--duration", "60")
    try:
        wait_for(live.started, timeout=60, what="stack started")
        session, pids = _session_and_pids(live.started())
        harness = int(re.search(r"harness pid (\d+)", live.started()).group(1))
        os.kill(harness, signal.SIGKILL)
        assert live.proc.wait(timeout=90) == sv.EXIT_FAILED
        for t in live._readers:
            t.join(timeout=10)
        assert any("harness killed by SIGKILL" in ln for ln in live.err), live.err
        _assert_nothing_left(session, pids)
    finally:
        live.kill()


def test_metrics_port_in_use_is_refused(tmp_path):
    with socket.socket() as other:  # another program (or stack) serves the port
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        r = _run(tmp_path, _config(tmp_path, f"[telemetry]\nmetrics_port = {port}\n"), "--duration", "5")
    assert r.returncode == sv.EXIT_REFUSED, r.stdout + r.stderr
    assert f"telemetry.metrics_port {port} is not free" in r.stderr
    assert "started" not in r.stdout


def test_second_stack_on_the_same_harness_cpu_is_refused_and_sighup_stops_in_order(tmp_path):
    first = Live(tmp_path, _config(tmp_path, "[cpu]\nharness = 0\n"), "--duration", "60")
    try:
        wait_for(first.started, timeout=60, what="first stack started")
        session, pids = _session_and_pids(first.started())
        harness = int(re.search(r"harness pid (\d+)", first.started()).group(1))
        r = _run(tmp_path, _config(tmp_path, "[cpu]\nharness = 0\n", name="second.toml"), "--duration", "5")
        assert r.returncode == sv.EXIT_REFUSED, r.stdout + r.stderr
        assert "CPU 0 is taken by another livestack harness" in r.stderr
        assert f"session {session} pid {harness}" in r.stderr  # names the other session and its harness
        first.proc.send_signal(signal.SIGHUP)  # the terminal went away: stop in order
        assert first.proc.wait(timeout=90) == sv.EXIT_HANGUP
        _assert_nothing_left(session, pids)
    finally:
        first.kill()


def test_stdout_closed_by_head_stops_in_order(tmp_path):
    """``livestack run --quiet | head -1``: the reader goes away after the first line, and the stack
    (no status lines: it writes nothing more) notices without a write."""
    proc = subprocess.Popen(_cmd(_config(tmp_path, status=0.0), "--duration", "60", "--quiet"), cwd=ROOT, env=_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        while line and " started: " not in line:
            line = proc.stdout.readline()
        session, pids = _session_and_pids(line)
        proc.stdout.close()  # head exits
        err = proc.stderr.read()  # until the supervisor exits
        assert proc.wait(timeout=90) == sv.EXIT_PIPE, err
        assert "stopped: stdout was closed" in err
        assert "Traceback" not in err and "BrokenPipe" not in err, err
        _assert_nothing_left(session, pids)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
