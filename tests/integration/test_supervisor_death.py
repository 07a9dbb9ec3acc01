"""A SIGKILLed supervisor: its children stop in order and lose nothing (issue 12.7, issue 14.5).

The stack runs as ``livestack run`` (sim market + sim venue + market maker + control + writer)
under ``reaper.py``, a child subreaper: when the supervisor is SIGKILLed its children are
re-parented to the reaper, which exits only once every one of them has exited. Allowed outcome,
for every run: every child exits by itself with status 0 (nothing is left to kill), the session's
shared memory is gone, and the session file's record seq is contiguous from 1 up to the harness's
last record, holding the harness's stop-cancels and its final TRADING_STATE (HALTED by the
session stop), with every order the session placed ending terminal.
"""

from __future__ import annotations

import glob
import os
import re
import signal
import subprocess
import sys
import threading

import pytest

from livestack.ipc import shm
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REAPER = os.path.join(ROOT, "tests", "integration", "reaper.py")
TERMINAL = {"FILLED", "CANCELED", "REJECTED", "EXPIRED", "REPLACED"}

CONFIG = """
[session]
records_dir = "{records}"
status_interval_s = 0.0
[rings]
records_capacity = 65536
md_capacity = 16384
[writer]
min_free_mb = 16.0
"""


class Stack:
    """``reaper.py livestack run CONFIG`` with its output collected by a thread."""

    def __init__(self, tmp_path):
        self.records = tmp_path / "records"
        cfg = tmp_path / "stack.toml"
        cfg.write_text(CONFIG.format(records=self.records))
        env = dict(os.environ, PYTHONPATH=ROOT, REAPER_LIMIT_S="120")
        cmd = [sys.executable, REAPER, sys.executable, "-c",
               "import sys; from livestack.cli import main; sys.exit(main(sys.argv[1:]))", "run", str(cfg)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.session = self.supervisor = None

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines[-60:])

    def started(self) -> bool:
        for ln in list(self.lines):  # searched, not matched at the start: processes share the pipe
            if m := re.search(r"reaper: child (\d+)", ln):
                self.supervisor = int(m.group(1))
            if m := re.search(r"livestack: session (\S+) started: ", ln):
                self.session = m.group(1)
        return self.session is not None and self.supervisor is not None

    def exits(self) -> dict[int, int]:
        out = {}
        for ln in list(self.lines):
            for m in re.finditer(r"reaper: exited (\d+) (-?\d+)", ln):
                out[int(m.group(1))] = int(m.group(2))
        return out

    def kill(self):
        """Teardown: the reaper SIGKILLs every descendant and exits once none is left (a
        SIGKILLed reaper would leave them to PID 1, still holding the harness CPU's lock)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own process group, the last resort
                self.proc.wait(timeout=30)


@pytest.fixture
def stack(tmp_path):
    s = Stack(tmp_path)
    yield s
    s.kill()
    if s.session:
        shm.remove_session(s.session)


def _telemetry(session):
    from livestack.telemetry.block import TelemetryBlock

    return TelemetryBlock.attach(shm.segment_name(session, "telemetry"), timeout=10.0)


@pytest.mark.parametrize("run", range(3))
def test_sigkilled_supervisor_children_stop_in_order_and_lose_nothing(stack, run):
    wait_for(stack.started, 60, "the session to start", poll_s=0.05)
    _wait_trading(stack)
    _kill_supervisor_and_check(stack, run)


def _wait_trading(stack, rseq_above: int = 2000) -> int:
    tel = _telemetry(stack.session)
    try:
        wait_for(lambda: tel.gauge("open_orders") > 0 and tel.gauge("trading_state") == 0
                 and tel.gauge("rseq") > rseq_above, 60, "the market maker to have resting orders", poll_s=0.05)
        return int(tel.gauge("rseq"))
    finally:
        del tel


def test_sigkilled_supervisor_after_a_takeover_stops_the_forked_standby_too(stack):
    """After a harness kill the harness is the promoted standby and the standby is its forked
    successor (not the supervisor's child: it watches the supervisor by pidfd). A SIGKILLed
    supervisor then still leaves no process behind: both stop by themselves with status 0."""
    from livestack.node.supervisor import harness_pid_path

    wait_for(stack.started, 60, "the session to start", poll_s=0.05)
    rseq = _wait_trading(stack)
    with open(harness_pid_path(stack.session)) as f:
        first = int(f.read())
    os.kill(first, signal.SIGKILL)

    def successor():
        for ln in list(stack.lines):
            m = re.search(r"its forked successor is the standby \(standby pid (\d+)\)", ln)
            if m:
                return int(m.group(1))
        return None

    wait_for(lambda: successor() is not None, 60, "the takeover and its forked successor", poll_s=0.05)
    _wait_trading(stack, rseq + 1000)
    with open(harness_pid_path(stack.session)) as f:
        promoted = int(f.read())
    assert promoted != first
    exits = _kill_supervisor_and_check(stack, "after a takeover")
    assert exits.get(successor()) == 0 and exits.get(promoted) == 0, (successor(), promoted, exits)


def _kill_supervisor_and_check(stack, run) -> dict:
    import time

    from livestack.records import open_session
    from livestack.records.cli import summarize

    os.kill(stack.supervisor, signal.SIGKILL)
    killed_at = time.monotonic()
    try:
        rc = stack.proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("children still running 90 s after the supervisor died:\n" + stack.output())
    stack.reader.join(timeout=10)
    assert rc == 0, "the reaper had to kill leftovers:\n" + stack.output()
    exits = stack.exits()
    assert exits.pop(stack.supervisor) == signal.SIGKILL, stack.output()
    assert len(exits) >= 4, f"expected writer, harness, venue, control: {exits}\n{stack.output()}"
    assert all(st == 0 for st in exits.values()), f"a child did not stop cleanly: {exits}\n{stack.output()}"
    assert shm.list_segments(stack.session) == [], "shared memory left behind"

    [path] = glob.glob(str(stack.records / "*" / f"{stack.session}.h5"))
    d = summarize(path)
    q, end = d["seq"], d["end"]
    assert q["contiguous"], q
    assert end["known"] and end["closed"], end
    assert end["missing_tail"] == 0 and q["last"] == end["harness_last_seq"], (q, end)
    assert d["trading_state"]["final"] == "HALTED", d["trading_state"]
    with open_session(path) as s:
        ts = s["trading_state"]
        assert int(ts.cause.iloc[-1]) == 4, "the last TRADING_STATE is not the session stop's"
        cmds = s["journal_control_cmd"]
        assert "SESSION_STOP" in set(cmds.cmd), "the harness's stop input is not in the journal"
        orders = s["order_state"]
        last = orders.groupby("client_order_id").state.last()
        open_left = last[~last.isin(TERMINAL)]
        assert open_left.empty, f"orders not terminal in the file: {open_left.to_dict()}"
        sent = s["order_cmd"]
        assert set(sent[sent.cmd == "NEW"].client_order_id) <= set(last.index), "an order without its states"
        cancels = int((orders.exec_type == "CANCELED").sum())
    from livestack.records.replay import replay

    r = replay(path, verify=True)
    assert r.verified, r.divergence  # the journal replays bit-identical: nothing the harness consumed is missing
    print(f"\nsupervisor SIGKILL run {run}: all {len(exits)} children exited 0 within "
          f"{time.monotonic() - killed_at:.1f} s; records 1..{q['last']:,} contiguous, harness's last "
          f"{end['harness_last_seq']:,}, missing tail {end['missing_tail']}; {len(last)} orders all terminal "
          f"({cancels} canceled); final state HALTED; shm segments left 0")
    return exits
