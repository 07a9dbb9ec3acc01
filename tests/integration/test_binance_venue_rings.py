"""The binance venue as a process over real shared-memory rings: ORDER_CMD into ``orders.binance`` ->
``livestack.venues.binance.run_process`` (spawned; keys from environment variables) -> the in-test
Binance stand-in over real sockets -> EXEC records out of ``exec.binance``. Also: the venue process
keeps running through malformed frames and a dropped connection, and its harness-death
cancel-on-disconnect cancels what rests."""

from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np
import pytest

from livestack.config import Instrument
from livestack.ipc import Ring, shm
from livestack.schema import DTYPES, ExecType, OrderCmdType, OrdType, RecordKind, Side, TimeInForce
from livestack.venues import binance
from livestack.venues.binance import codec

from tests.unit.venues.binance.fake_binance import KEY, SECRET, FakeBinance

pytestmark = pytest.mark.timeout(120)

BTC = Instrument(1, "BTCUSDT", "binance", price_decimals=2, qty_decimals=8, tick=1, lot=1000)


def _cmds(specs):
    c = np.zeros(len(specs), DTYPES["ORDER_CMD"])
    for i, (cmd, cid, price, qty, side) in enumerate(specs):
        c[i]["kind"], c[i]["version"], c[i]["instrument"], c[i]["seq"] = RecordKind.ORDER_CMD, 1, 1, i + 1
        c[i]["client_order_id"], c[i]["price"], c[i]["qty"], c[i]["cmd"] = cid, price, qty, cmd
        c[i]["side"], c[i]["tif"], c[i]["ord_type"] = side, TimeInForce.GTC, OrdType.LIMIT
    return c


def _read_until(ring, pred, got, timeout=20.0):
    buf = np.zeros(64, DTYPES["EXEC"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        k = ring.read(buf)
        got.extend(buf[:k].copy())
        if any(pred(e) for e in got):
            return got
        if not k:
            time.sleep(0.005)
    raise AssertionError(f"timed out; got {[(int(e['client_order_id']), int(e['exec_type'])) for e in got]}")


@pytest.fixture
def venue(session, procs, monkeypatch):
    fake = FakeBinance("spot").start()
    monkeypatch.setenv("LS_TEST_BNV_KEY", KEY)
    monkeypatch.setenv("LS_TEST_BNV_SECRET", SECRET)
    orders = Ring.create(shm.segment_name(session, "orders.binance"), 256, 64, RecordKind.ORDER_CMD)
    execs = Ring.create(shm.segment_name(session, "exec.binance"), 256, 128, RecordKind.EXEC)
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    counters = ctx.Array("q", 16)

    def start(**kw):
        opts = fake.options(api_key_env="LS_TEST_BNV_KEY", secret_env="LS_TEST_BNV_SECRET", **kw)
        opts["counters"] = counters
        p = ctx.Process(target=binance.run_process, args=(orders.name, execs.name, [BTC], opts, stop), daemon=True)
        p.start()
        procs.append(p)
        return p
    try:
        yield fake, orders, execs, stop, start
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=10)
        fake.stop()
        orders.close()
        execs.close()


def test_orders_ring_to_binance_to_exec_ring(venue, capfd):
    fake, orders, execs, stop, start = venue
    p = start(log_level="DEBUG")
    orders.write_batch(_cmds([(OrderCmdType.NEW, 1, 5000000, 100000, Side.BUY),
                              (OrderCmdType.NEW, 2, 5000100, 100000, Side.SELL)]))
    got = []
    _read_until(execs, lambda e: e["client_order_id"] == 2 and e["exec_type"] == ExecType.ACCEPTED, got)
    _read_until(execs, lambda e: e["client_order_id"] == 1 and e["exec_type"] == ExecType.ACCEPTED, got)
    cl1 = codec.client_order_id(77, 1)
    wait_s = time.monotonic() + 10
    while cl1 not in fake.orders and time.monotonic() < wait_s:
        time.sleep(0.01)
    t = fake.trade(cl1, "0.00100000")
    fake.garbage = 2                                    # junk frames on the next requests: counted, not fatal
    fake.kick()                                         # the connection drops: reconnect + reconcile
    orders.write_batch(_cmds([(OrderCmdType.CANCEL, 2, 0, 0, Side.SELL)]))
    _read_until(execs, lambda e: e["client_order_id"] == 1 and e["exec_type"] == ExecType.FILLED, got)
    _read_until(execs, lambda e: e["client_order_id"] == 2 and e["exec_type"] == ExecType.CANCELED, got)
    fills = [e for e in got if e["exec_type"] in (ExecType.PARTIALLY_FILLED, ExecType.FILLED)]
    assert len(fills) == 1 and int(fills[0]["last_qty"]) == 100000
    from livestack.venues.execid import exec_id_words
    assert (int(fills[0]["exec_id"]), int(fills[0]["exec_id_hi"])) == exec_id_words(f"BTCUSDT-{t['id']}")
    seqs = [int(e["seq"]) for e in got]
    assert seqs == list(range(1, len(got) + 1))
    assert p.is_alive()
    assert sum(m == "order.place" for m, _ in fake.requests) == 2
    stop.set()
    p.join(timeout=15)
    assert p.exitcode == 0
    out = capfd.readouterr()
    assert "venue stats" in out.err
    assert SECRET not in out.out + out.err and KEY not in out.out + out.err   # keys never reach a log


def test_harness_death_cancels_resting_orders(venue):
    fake, orders, execs, stop, start = venue
    ctx = mp.get_context("spawn")
    harness = ctx.Process(target=time.sleep, args=(60,), daemon=True)
    harness.start()
    try:
        p = start(harness_pid=harness.pid)
        orders.write_batch(_cmds([(OrderCmdType.NEW, 7, 5000000, 100000, Side.BUY)]))
        got = []
        _read_until(execs, lambda e: e["client_order_id"] == 7 and e["exec_type"] == ExecType.ACCEPTED, got)
        harness.kill()
        harness.join(5)
        p.join(timeout=20)
        assert p.exitcode == 0
        assert fake.orders[codec.client_order_id(77, 7)]["status"] == "CANCELED"
        assert any(m == "openOrders.cancelAll" for m, _ in fake.requests)
    finally:
        if harness.is_alive():
            harness.kill()
