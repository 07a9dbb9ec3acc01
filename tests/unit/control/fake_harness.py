"""STAND-IN for the harness, for control-surface tests and ``bench/bench_control.py`` only.

This is not the harness (``livestack.harness``): it answers the ``cmd`` ring the way the Core
Runtime's control handler does (one CONTROL_REPLY per CONTROL_CMD, increasing ``hseq``, ``value1``
= trading state | kill latched << 8 | session active << 9, ``value0`` = orders canceled or open
orders for STATUS) and keeps a tiny trading state, an open-order table and risk limits, mirrored
into the telemetry block. It exists so the control process can be tested before and apart from the
real harness; the real harness is tested end to end with the whole stack.

Rules it applies (same as the core): SESSION_START refused while the kill switch is latched;
TRADING_ENABLE and REDUCE_ONLY refused while latched or before session start; KILL cancels every
open order, latches, HALTED; KILL_RESET refused when not latched, state stays HALTED; CANCEL_ALL
of an unknown instrument -> UNKNOWN_INSTRUMENT; SET_LIMIT / SET_PARAM validated and stored.
"""

from __future__ import annotations

import time

import numpy as np

from livestack.ipc import Backoff, Ring
from livestack.schema import DTYPES, ControlCmdType as C, ControlError as E, OrderState, RiskLimit, TradingState, spec
from livestack.telemetry.block import TelemetryBlock

KIND_REPLY = spec.RECORDS_BY_NAME["CONTROL_REPLY"].kind
KIND_TS = spec.RECORDS_BY_NAME["TRADING_STATE"].kind


class FakeHarness:
    """The stand-in's state machine (usable in-process for unit tests)."""

    def __init__(self, instruments=(1,), n_params=3, open_orders=0, telemetry: TelemetryBlock | None = None):
        self.instruments = list(instruments)
        self.params = [0] * n_params
        self.limits: dict[tuple[int, int], int] = {}
        self.state = TradingState.HALTED
        self.kill = 0
        self.session = 0
        self.hseq = 0
        self.config_version = 0
        self.tel = telemetry
        self.journal: list[tuple] = []  # (hseq, cmd, instrument, arg0, arg1, arg2) of every command applied
        self.orders: dict[int, int] = {}  # client_order_id -> instrument
        for k in range(open_orders):
            self.add_order(1000 + k, self.instruments[k % len(self.instruments)])
        self.events_out: list[np.ndarray] = []
        if self.tel is not None:
            for slot, inst in enumerate(self.instruments):
                self.tel.register_instrument(slot, inst, f"SIM{inst}", 2, 3)
                self.tel.set_position(slot, 1500 * (slot + 1), 1500 * (slot + 1) * 10000, 250, -50, 10000, 0)
            self._publish()

    def add_order(self, cid: int, inst: int) -> None:
        self.orders[cid] = inst
        if self.tel is not None:
            self.tel.set_order(cid % 1024, inst, cid, cid + 5000, 1, OrderState.ACCEPTED, 10000 + cid, 1000, 0, 0)
            self.tel.order_state(OrderState.ACCEPTED)

    def _cancel(self, inst: int | None) -> int:
        gone = [cid for cid, i in self.orders.items() if inst is None or i == inst]
        for cid in gone:
            del self.orders[cid]
            if self.tel is not None:
                self.tel.clear_order(cid % 1024)
                self.tel.order_state(OrderState.CANCELED)
        return len(gone)

    def _set_state(self, new: TradingState, cause: int = 1) -> None:
        prev = self.state
        self.state = new
        ev = np.zeros(1, dtype=DTYPES["TRADING_STATE"])
        ev["kind"] = KIND_TS
        ev["version"] = 1
        ev["seq"] = self.hseq
        ev["ts"] = time.time_ns()
        ev["hseq"] = self.hseq
        ev["state"] = int(new)
        ev["prev_state"] = int(prev)
        ev["kill_latched"] = self.kill
        ev["cause"] = cause
        self.events_out.append(ev)

    def _publish(self) -> None:
        t = self.tel
        if t is None:
            return
        t.set_gauge("hseq", self.hseq)
        t.set_gauge("trading_state", int(self.state))
        t.set_gauge("kill_latched", self.kill)
        t.set_gauge("session_active", self.session)
        t.set_gauge("config_version", self.config_version)
        t.set_gauge("open_orders", len(self.orders))

    def apply(self, c) -> np.ndarray:
        """One CONTROL_CMD record in, its CONTROL_REPLY out (a 1-element array)."""
        self.hseq += 1
        cmd, inst, a0, a1, a2 = int(c["cmd"]), int(c["instrument"]), int(c["arg0"]), int(c["arg1"]), int(c["arg2"])
        err, v0 = E.NONE, 0
        if cmd == C.STATUS:
            v0 = len(self.orders)
        elif cmd == C.SESSION_START:
            if self.kill:
                err = E.NOT_ALLOWED
            else:
                self.session = 1
                self._set_state(TradingState.ACTIVE)
        elif cmd == C.SESSION_STOP:
            v0 = self._cancel(None)
            self.session = 0
            self._set_state(TradingState.HALTED, 4)
        elif cmd == C.TRADING_ENABLE:
            if self.kill or not self.session:
                err = E.NOT_ALLOWED
            else:
                self._set_state(TradingState.ACTIVE)
        elif cmd == C.TRADING_DISABLE:
            self._set_state(TradingState.HALTED)
        elif cmd == C.REDUCE_ONLY:
            if self.kill or not self.session:
                err = E.NOT_ALLOWED
            else:
                self._set_state(TradingState.REDUCING)
        elif cmd == C.KILL:
            self.kill = 1
            v0 = self._cancel(None)
            self._set_state(TradingState.HALTED)
        elif cmd == C.KILL_RESET:
            if not self.kill:
                err = E.NOT_ALLOWED
            else:
                self.kill = 0
                self._set_state(TradingState.HALTED)
        elif cmd == C.CANCEL_ALL:
            if inst and inst not in self.instruments:
                err = E.UNKNOWN_INSTRUMENT
            else:
                v0 = self._cancel(inst or None)
        elif cmd == C.SET_LIMIT:
            if inst and inst not in self.instruments:
                err = E.UNKNOWN_INSTRUMENT
            elif a0 not in RiskLimit._value2member_map_ or a1 < 0:
                err = E.BAD_ARGUMENT
            else:
                self.limits[(inst, a0)] = a1
                self.config_version = max(self.config_version, a2)
                v0 = a1
        elif cmd == C.SET_PARAM:
            if not 0 <= a0 < len(self.params):
                err = E.BAD_ARGUMENT
            else:
                self.params[a0] = a1
                self.config_version = max(self.config_version, a2)
                v0 = a1
        else:
            err = E.UNKNOWN_COMMAND
        if err == E.NONE:
            self.journal.append((self.hseq, cmd, inst, a0, a1, a2))
        r = np.zeros(1, dtype=DTYPES["CONTROL_REPLY"])
        r["kind"] = KIND_REPLY
        r["version"] = 1
        r["instrument"] = inst
        r["seq"] = self.hseq
        r["ts"] = time.time_ns()
        r["request_id"] = c["request_id"]
        r["hseq"] = self.hseq
        r["value0"] = v0
        r["value1"] = int(self.state) | (self.kill << 8) | (self.session << 9)
        r["cmd"] = cmd
        r["status"] = 0 if err == E.NONE else 1
        r["error"] = int(err)
        if self.tel is not None:
            self.tel.add("control_events")
            self.tel.add("events")
            self._publish()
        return r


def run_fake_harness(cmd_ring: str, reply_ring: str, events_ring: str | None, telemetry: str | None, stop,
                     options: dict | None = None) -> None:
    """Process entry point of the STAND-IN harness (see the module docstring).

    options: ``instruments`` (ids, default [1]), ``n_params`` (3), ``open_orders`` (0), ``wait``
    ("backoff" default; "spin" for the benchmark, where it plays the pinned harness's part).
    """
    opts = dict(options or {})
    cmd = Ring.attach(cmd_ring, timeout=10)
    reply = Ring.attach(reply_ring, timeout=10)
    events = Ring.attach(events_ring, timeout=10) if events_ring else None
    tel = TelemetryBlock.attach(telemetry, timeout=10) if telemetry else None
    slot = tel.register_process("harness") if tel is not None else -1
    fake = FakeHarness(opts.get("instruments", (1,)), opts.get("n_params", 3), opts.get("open_orders", 0), tel)
    from livestack.control.server import set_timer_slack_ns

    set_timer_slack_ns(1000)
    wait = Backoff(opts.get("wait", "backoff"), spins=20, yields=0, min_sleep_ns=5000,
                   max_sleep_ns=int(opts.get("max_sleep_ns", 200_000)))
    buf = np.zeros(16, dtype=DTYPES["CONTROL_CMD"])
    next_hb = 0.0
    checks = 0
    try:
        while True:
            n = cmd.read(buf)
            for i in range(n):
                r = fake.apply(buf[i])
                while reply.write(r) != 0:  # the control process drains replies; never drop one
                    if stop.is_set():
                        return
                    time.sleep(0.0001)
                if events is not None:
                    for ev in fake.events_out:
                        slot128 = np.zeros(128, dtype=np.uint8)
                        slot128[:64] = np.frombuffer(ev.tobytes(), dtype=np.uint8)
                        events.write(slot128.tobytes())
                fake.events_out.clear()
            if n:
                wait.reset()
                continue
            checks += 1
            if checks & 0xFF == 0:
                if stop.is_set():
                    return
                now = time.monotonic()
                if tel is not None and now >= next_hb:
                    tel.heartbeat(slot)
                    next_hb = now + 0.2
            wait.idle()
    finally:
        if tel is not None:
            tel.unregister_process(slot)
            tel.close()
