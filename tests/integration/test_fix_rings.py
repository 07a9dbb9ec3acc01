"""End to end through real shared-memory rings: ORDER_CMD records into ``orders.fix`` -> the FIX venue
process (``livestack.venues.fix.run_process``, spawned) -> QuickFIX test exchange (own process) ->
EXEC records out of ``exec.fix``."""

from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np
import pytest

from livestack.config import Instrument
from livestack.ipc import Ring, shm
from livestack.schema import DTYPES, ExecType, OrderCmdType, OrdType, RecordKind, Side, TimeInForce
from livestack.venues import fix

pytest.importorskip("quickfix")
from livestack.testing.fix_exchange import ExchangeProcess  # noqa: E402

pytestmark = pytest.mark.timeout(120)

BTC = Instrument(1, "BTCUSDT", "fix", price_decimals=2, qty_decimals=3)


def _cmds(specs):
    c = np.zeros(len(specs), DTYPES["ORDER_CMD"])
    for i, (cmd, cid, price, qty, side, tif) in enumerate(specs):
        c[i]["kind"], c[i]["version"], c[i]["instrument"], c[i]["seq"] = RecordKind.ORDER_CMD, 1, 1, i + 1
        c[i]["client_order_id"], c[i]["price"], c[i]["qty"], c[i]["cmd"] = cid, price, qty, cmd
        c[i]["side"], c[i]["tif"], c[i]["ord_type"] = side, tif, OrdType.LIMIT
    return c


def _read_until(ring, n, timeout=20.0):
    buf = np.zeros(64, DTYPES["EXEC"])
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        k = ring.read(buf)
        got.extend(buf[:k].copy())
        if not k:
            time.sleep(0.005)
    return got


@pytest.fixture
def setup(tmp_path, session, procs):
    ex = ExchangeProcess(str(tmp_path / "exchange"))
    rings = []

    def _start(exec_capacity=256, **opts):
        orders = Ring.create(shm.segment_name(session, "orders.fix"), 256, 64, RecordKind.ORDER_CMD)
        execs = Ring.create(shm.segment_name(session, "exec.fix"), exec_capacity, 128, RecordKind.EXEC)
        rings.extend([orders, execs])
        stop = mp.get_context("spawn").Event()
        options = dict(port=ex.port, sender_comp_id="LIVESTACK", target_comp_id="EXCHANGE",
                       store_dir=str(tmp_path / "initiator"), heartbeat_s=30, reconnect_min_s=0.05)
        options.update(opts)
        p = mp.get_context("spawn").Process(target=fix.run_process,
                                            args=(orders.name, execs.name, [BTC], options, stop), daemon=True)
        p.start()
        procs.append(p)
        assert ex.wait(ex.logged_on, 20), "venue process did not log on"
        return orders, execs, stop, p
    yield ex, _start
    ex.stop()
    for r in rings:
        r.close()


def test_orders_ring_to_quickfix_to_exec_ring(setup):
    ex, start = setup
    orders, execs, stop, p = start()
    orders.write_batch(_cmds([
        (OrderCmdType.NEW, 1, 6183763, 2000, Side.BUY, TimeInForce.GTC),
        (OrderCmdType.NEW, 2, 6183900, 1000, Side.SELL, TimeInForce.IOC),
    ]))
    got = _read_until(execs, 3)
    by = [(int(e["client_order_id"]), int(e["exec_type"])) for e in got]
    assert sorted(by) == [(1, ExecType.ACCEPTED), (2, ExecType.ACCEPTED), (2, ExecType.FILLED)]
    ex.fill("1", 2.0)
    orders.write(_cmds([(OrderCmdType.CANCEL, 1, 0, 0, Side.BUY, TimeInForce.GTC)]))  # too late: filled
    got += _read_until(execs, 2)
    assert [(int(e["client_order_id"]), int(e["exec_type"])) for e in got[3:]] == [
        (1, ExecType.FILLED), (1, ExecType.CANCEL_REJECTED)]
    assert [int(e["seq"]) for e in got] == [1, 2, 3, 4, 5]               # the exec ring's own sequence
    assert all(e["kind"] == RecordKind.EXEC and e["instrument"] == 1 for e in got)
    fill = got[3]
    assert (fill["last_px"], fill["last_qty"], fill["cum_qty"], fill["leaves_qty"]) == (6183763, 2000, 2000, 0)
    stop.set()
    p.join(20)
    assert p.exitcode == 0
    assert ex.wait(lambda: ex.logouts >= 1 and not ex.logged_on(), 10)   # orderly logout on stop


def test_a_full_exec_ring_makes_the_venue_wait_and_nothing_is_lost(setup):
    ex, start = setup
    orders, execs, stop, p = start(exec_capacity=4, heartbeat_s=1)
    n = 20
    orders.write_batch(_cmds([(OrderCmdType.NEW, 100 + i, 100, 1000, Side.BUY, TimeInForce.IOC) for i in range(n)]))
    assert ex.wait(lambda: len(ex.received) == n, 20)
    hb_before = len([t for t, _ in ex.admin_in if t == "0"])
    time.sleep(2.5)                                  # the venue sits on a full ring for 2.5 heartbeats
    assert execs.size() == 4
    # ... and its session stayed alive meanwhile: heartbeats went out, no logout
    assert len([t for t, _ in ex.admin_in if t == "0"]) >= hb_before + 2 and ex.logged_on() and ex.logouts == 0
    got = _read_until(execs, 2 * n)
    assert len(got) == 2 * n
    assert [int(e["seq"]) for e in got] == list(range(1, 2 * n + 1))
    for i in range(n):
        kinds = [int(e["exec_type"]) for e in got if e["client_order_id"] == 100 + i]
        assert kinds == [ExecType.ACCEPTED, ExecType.FILLED]
    stop.set()
    p.join(20)
    assert p.exitcode == 0
