"""Shared helpers of the core tests: a scripted strategy and a small driver."""

from __future__ import annotations

import numpy as np

from livestack.config import Instrument
from livestack.core import Core
from livestack.core import inputs as R
from livestack.schema import ControlCmdType, DenyReason, ExecType, OrderCmdType, RecordKind, Side
from livestack.strategies import kernels as K

INST = Instrument(1, "TEST", "sim", price_decimals=2, qty_decimals=3, tick=10, lot=1)
INST2 = Instrument(2, "TEST2", "sim", price_decimals=2, qty_decimals=3, tick=10, lot=1)
RISK = {"max_order_qty": 1000, "max_position": 10000, "max_open_orders": 16}

BUY, SELL = int(Side.BUY), int(Side.SELL)
NEW, CANCEL, REPLACE = int(OrderCmdType.NEW), int(OrderCmdType.CANCEL), int(OrderCmdType.REPLACE)


class Scripted:
    """A Python strategy that appends the intents queued in ``pending`` on the next TIMER."""

    param_names = ("p0", "p1")
    param_defaults = (0, 0)

    def __init__(self):
        self.pending = []
        self.calls = 0

    def on_event(self, w):
        self.calls += 1
        if w[K.CTX_EV_KIND] != int(RecordKind.TIMER):
            return
        for it in self.pending:
            K.push(w, *it)
        self.pending = []


class Driver:
    """A Core with a Scripted strategy, a clock and helpers that return each step's outputs."""

    def __init__(self, risk=None, instruments=(INST,), book=True, **kw):
        self.strat = Scripted()
        self.core = Core(list(instruments), dict(RISK, **(risk or {})), self.strat, **kw)
        self.ts = 1_000_000_000
        self.hseq = 1
        self.exec_id = 1000
        if book:
            for inst in instruments:
                self.feed(R.snapshot(inst.id, self.ts, [(100000, 50), (99990, 50)], [(100010, 50), (100020, 50)]))

    def feed(self, recs, dt=0):
        self.ts += dt
        recs = recs if isinstance(recs, list) else [recs]
        arr = R.slots(recs)
        for k in range(len(arr)):
            arr[k]["ts"] = self.ts
        o, r = self.core.process_array(arr, hseq0=self.hseq)
        self.hseq += len(arr)
        return o, r

    def intents(self, *its, dt=0):
        """Run intents (tuples for kernels.push without the ctx) through risk; returns outputs."""
        self.strat.pending = list(its)
        return self.feed(R.timer(self.ts), dt=dt)

    def new(self, side=BUY, price=99990, qty=10, inst=0, tif=0, dt=0):
        return self.intents((NEW, inst, side, price, qty, 0, tif, 0), dt=dt)

    def cancel(self, coid, dt=0):
        return self.intents((CANCEL, 0, 0, 0, 0, coid, 0, 0), dt=dt)

    def replace(self, coid, price, qty, dt=0):
        return self.intents((REPLACE, 0, 0, price, qty, coid, 0, 0), dt=dt)

    def exec(self, exec_type, coid, inst=1, **kw):
        if exec_type in (ExecType.PARTIALLY_FILLED, ExecType.FILLED) and "exec_id" not in kw:
            self.exec_id += 1
            kw["exec_id"] = self.exec_id
        return self.feed(R.exec_(inst, self.ts, int(exec_type), coid, **kw))

    def control(self, cmd, **kw):
        return self.feed(R.control(self.ts, int(cmd), **kw))


def denials(records):
    d = R.decode(records, "DENIAL")
    return [DenyReason(int(x)) for x in d["reason"]]


def states(records):
    return R.decode(records, "ORDER_STATE")


def replies(records):
    return R.decode(records, "CONTROL_REPLY")


def anomalies(records):
    return R.decode(records, "ANOMALY")
