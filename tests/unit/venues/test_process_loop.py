"""The generic venue process loop over real shared-memory rings, with a stand-in adapter.

``EchoVenue`` is a stand-in named as one: it answers every command with one ACCEPTED event.
The real adapter (the simulated exchange) runs through the same loop in
tests/integration/test_sim_venue.py, in its own process.
"""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import threading
import time

import numpy as np
import pytest

from livestack.ipc import Ring, segment_name
from livestack.schema import DTYPES, ExecType, OrderCmdType, RecordKind, Side, new
from livestack.venues import process as vp
from livestack.venues.base import VenueAdapter


class EchoVenue(VenueAdapter):
    """Stand-in adapter: ACCEPTED per command, CANCELED per live order on harness loss."""

    name = "echo"

    def __init__(self):
        self.queue = []
        self.live = []
        self.started = self.stopped = self.lost = False

    def start(self):
        self.started = True

    def stop(self):
        self.stopped = True

    def submit(self, cmds):
        for coid in cmds["client_order_id"].tolist():
            self.queue.append((coid, int(ExecType.ACCEPTED)))
            self.live.append(coid)

    def poll(self, out, now_ns):
        n = min(len(out), len(self.queue))
        for i in range(n):
            coid, et = self.queue.pop(0)
            out[i]["kind"] = RecordKind.EXEC
            out[i]["client_order_id"] = coid
            out[i]["exec_type"] = et
        return n

    def on_harness_lost(self):
        self.lost = True
        self.queue.extend((c, int(ExecType.CANCELED)) for c in self.live)
        self.live = []


@pytest.fixture
def rings(session):
    orders = Ring.create(segment_name(session, "orders.echo"), 1 << 10, 64, RecordKind.ORDER_CMD)
    execs = Ring.create(segment_name(session, "exec.echo"), 8, 128, RecordKind.EXEC)
    yield orders, execs
    for r in (orders, execs):
        r.close()
        r.unlink()


def start_loop(adapter, orders, execs, options=None, counters=None):
    stop = threading.Event()
    result = {}

    def target():
        result["counters"] = vp.run_loop(adapter, orders, execs, options or {}, stop, counters)

    th = threading.Thread(target=target, daemon=True)
    th.start()
    return stop, th, result


def send(orders, coids):
    cmds = new("ORDER_CMD", len(coids), cmd=OrderCmdType.NEW, side=Side.BUY, price=100, qty=1, instrument=1)
    cmds["client_order_id"] = coids
    assert orders.write_batch(cmds) == len(coids)


def read_execs(execs, n, timeout=10.0):
    out = np.zeros(256, dtype=DTYPES["EXEC"])
    got = []
    deadline = time.monotonic() + timeout
    while sum(len(g) for g in got) < n and time.monotonic() < deadline:
        k = execs.read(out)
        if k:
            got.append(out[:k].copy())
        else:
            time.sleep(0.001)
    return np.concatenate(got) if got else out[:0]


def test_commands_become_exec_records_with_contiguous_seq(rings):
    orders, execs = rings
    ad = EchoVenue()
    stop, th, res = start_loop(ad, orders, execs)
    try:
        send(orders, [1, 2, 3])
        got = read_execs(execs, 3)
    finally:
        stop.set()
        th.join(10)
    assert not th.is_alive()
    assert got["client_order_id"].tolist() == [1, 2, 3]
    assert got["seq"].tolist() == [1, 2, 3]
    c = res["counters"]
    assert c["commands"] == 3 and c["events"] == 3 and c["rejects"] == 0
    assert ad.started and ad.stopped


class ForgetfulEchoVenue(EchoVenue):
    """Stand-in like EchoVenue whose orders live in its process (as the simulated exchange's do)."""

    state_lost_on_restart = True


@pytest.mark.parametrize("forgetful", [True, False])
def test_a_restarted_venue_that_lost_its_orders_says_so_first_and_seq_continues(rings, forgetful):
    orders, execs = rings
    ad = EchoVenue()
    stop, th, _ = start_loop(ad, orders, execs)
    try:
        send(orders, [1, 2, 3])
        assert read_execs(execs, 3)["seq"].tolist() == [1, 2, 3]
    finally:
        stop.set()
        th.join(10)
    send(orders, [4])  # sent while no venue process runs: still in the ring for the next one
    ad2 = ForgetfulEchoVenue() if forgetful else EchoVenue()
    stop, th, res = start_loop(ad2, orders, execs)
    try:
        got = read_execs(execs, 2 if forgetful else 1)
    finally:
        stop.set()
        th.join(10)
    if forgetful:
        reset, rest = got[0], got[1:]
        assert reset["exec_type"] == ExecType.VENUE_RESET and reset["client_order_id"] == 0
        assert reset["venue_order_id"] == 3 and reset["instrument"] == 0   # positions 0..2 were taken
        assert res["counters"]["venue_resets"] == 1
    else:
        rest = got
        assert res["counters"]["venue_resets"] == 0
    assert rest["client_order_id"].tolist() == [4]
    assert got["seq"].tolist() == list(range(4, 4 + len(got)))  # the exec ring's own sequence goes on


def test_a_first_start_sends_no_reset(rings):
    orders, execs = rings
    stop, th, res = start_loop(ForgetfulEchoVenue(), orders, execs)
    try:
        send(orders, [1])
        got = read_execs(execs, 1)
    finally:
        stop.set()
        th.join(10)
    assert got["exec_type"].tolist() == [ExecType.ACCEPTED] and res["counters"]["venue_resets"] == 0


def test_full_exec_ring_makes_the_loop_wait_and_nothing_is_dropped(rings):
    orders, execs = rings  # exec ring of 8 slots
    ad = EchoVenue()
    stop, th, res = start_loop(ad, orders, execs)
    try:
        send(orders, list(range(1, 101)))
        deadline = time.monotonic() + 10
        while execs.size() < 8 and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.05)  # the loop now finds the ring full over and over
        got = read_execs(execs, 100)
    finally:
        stop.set()
        th.join(10)
    assert got["client_order_id"].tolist() == list(range(1, 101))
    assert got["seq"].tolist() == list(range(1, 101))
    assert res["counters"]["exec_full_waits"] > 0 and res["counters"]["events"] == 100


def test_dead_harness_triggers_cancel_on_disconnect_then_the_loop_stops(rings):
    orders, execs = rings
    child = subprocess.Popen(["sleep", "30"])
    ad = EchoVenue()
    stop, th, res = start_loop(ad, orders, execs, {"harness_pid": child.pid, "harness_check_s": 0.01})
    try:
        send(orders, [7, 8])
        assert read_execs(execs, 2)["exec_type"].tolist() == [ExecType.ACCEPTED] * 2
        assert th.is_alive()
        child.kill()  # not reaped yet: a zombie counts as dead too
        th.join(10)
        assert not th.is_alive()
    finally:
        stop.set()
        th.join(10)
        child.wait(10)
    assert ad.lost and ad.stopped
    got = read_execs(execs, 2)
    assert got["client_order_id"].tolist() == [7, 8]
    assert (got["exec_type"] == ExecType.CANCELED).all()
    assert got["seq"].tolist() == [3, 4]
    assert res["counters"]["harness_lost"] == 1


def test_harness_that_never_existed_is_lost_at_once(rings):
    orders, execs = rings
    child = subprocess.Popen(["true"])
    child.wait(10)  # reaped: the pid is gone
    ad = EchoVenue()
    stop, th, res = start_loop(ad, orders, execs, {"harness_pid": child.pid})
    th.join(10)
    stop.set()
    assert not th.is_alive() and ad.lost


def test_counters_can_live_in_shared_memory_the_parent_reads(rings):
    orders, execs = rings
    arr = mp.get_context("spawn").Array("q", len(vp.COUNTERS))
    counters = vp.VenueCounters(arr)
    ad = EchoVenue()
    stop, th, res = start_loop(ad, orders, execs, counters=counters)
    try:
        send(orders, [1, 2])
        read_execs(execs, 2)
        deadline = time.monotonic() + 10
        while vp.VenueCounters(arr)["events"] < 2 and time.monotonic() < deadline:
            time.sleep(0.001)
        view = vp.VenueCounters(arr).as_dict()
    finally:
        stop.set()
        th.join(10)
    assert view["commands"] == 2 and view["events"] == 2 and view["loops"] > 0
    assert set(view) == set(vp.COUNTERS)
