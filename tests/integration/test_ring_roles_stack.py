"""Issue 12's ring attacks against a running stack: another process of the same user attaches to
the orders ring to send an order, and to the command ring to send a KILL.

Allowed outcomes: both are refused with RingRoleTaken naming the ring and the pid of the stack's
own end (the harness for orders, the control process for cmd); nothing reaches either ring; the
stack keeps trading and answering control; a restarted venue attaches its ends again.
"""

from __future__ import annotations

import functools
import io
import multiprocessing as mp
import os
import signal

import numpy as np
import pytest

from livestack.ipc import Ring
from livestack.ipc.ring import RingRoleTaken
from livestack.node import config
from livestack.node.supervisor import Supervisor
from livestack.schema import DTYPES, ControlCmdType, RecordKind
from tests.waiting import running, wait_for

pytestmark = pytest.mark.slow
_wait = functools.partial(wait_for, poll_s=0.05)


def _intruder(orders_ring, cmd_ring, q):
    """A foreign process: tries to write one order and one KILL the way a careless tool would."""
    out = {}
    for what, name, kind in (("orders", orders_ring, "ORDER_CMD"), ("cmd", cmd_ring, "CONTROL_CMD")):
        rec = np.zeros(1, dtype=DTYPES[kind])
        rec["kind"] = getattr(RecordKind, kind)
        if kind == "CONTROL_CMD":
            rec["cmd"] = ControlCmdType.KILL
        else:
            rec["qty"] = 1000
            rec["price"] = 1_000_000_000
        try:
            r = Ring.attach(name, timeout=10)
            n = r.write_batch(rec)
            out[what] = f"written {n}"
            r.close()
        except RingRoleTaken as e:
            out[what] = str(e)
    q.put(out)


@pytest.fixture
def stack(tmp_path):
    sup = Supervisor(config.validate({"session": {"records_dir": str(tmp_path / "rec"), "status_interval_s": 0.0}}),
                     out=io.StringIO())
    sup.start()
    yield sup
    sup.stop(timeout=20)


def test_a_foreign_process_cannot_send_orders_or_a_kill_into_a_running_stack(stack):
    from livestack.control.client import ControlClient

    sup = stack
    _wait(lambda: running(sup) and sup.status()["orders"] > 0, 60, "the market maker to send orders")
    orders, cmd = sup._owned(sup.rings["orders"]), sup._owned(sup.rings["cmd"])
    cmd_tail = cmd.tail
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_intruder, args=(sup.rings["orders"], sup.rings["cmd"], q), daemon=True)
    p.start()
    try:
        got = q.get(timeout=60)
    finally:
        p.join(30)
        if p.is_alive():
            p.kill()
    harness, control = sup.procs["harness"].proc.pid, sup.procs["control"].proc.pid
    assert got["orders"].startswith(f"ring {sup.rings['orders']}: already has a producer, held by pid {harness}")
    assert got["cmd"].startswith(f"ring {sup.rings['cmd']}: already has a producer, held by pid {control}")
    assert cmd.tail == cmd_tail, "the KILL reached the command ring"
    assert orders.holder("producer") == harness and orders.holder("consumer") == sup.procs["venue"].proc.pid
    c = ControlClient(sup.control_endpoint, timeout=10)
    try:
        st = c.status()["result"]
        assert st["trading_state"] == "ACTIVE" and st["kill_latched"] is False  # no KILL; control answers
    finally:
        c.close()


def test_a_restarted_venue_attaches_its_ring_ends_again(stack):
    sup = stack
    _wait(lambda: running(sup) and sup.status()["orders"] > 0, 60, "the market maker to send orders")
    old = sup.procs["venue"].proc.pid
    os.kill(old, signal.SIGKILL)
    _wait(lambda: running(sup) and sup.procs["venue"].restarts >= 1, 30, "venue restart")
    new = sup.procs["venue"].proc.pid
    orders, execs = sup._owned(sup.rings["orders"]), sup._owned(sup.rings["exec"])
    _wait(lambda: running(sup) and orders.holder("consumer") == new and execs.holder("producer") == new, 60,
          "the restarted venue to hold the orders consumer and exec producer roles")
    before = sup.status()["orders"]
    _wait(lambda: running(sup) and sup.status()["orders"] > before, 60, "orders flowing to the restarted venue")
