"""The harness relays the record writer's disk state as a journaled DISK_HALT input (issue 12.6)."""

import time

import numpy as np

from livestack.core import Core
from livestack.harness.loop import Harness
from livestack.ipc import segment_name, shm
from livestack.schema import Anomaly, ControlCmdType, RecordFlag, RecordKind, TradingState
from livestack.telemetry.block import TelemetryBlock
from livestack import strategies
from tests.unit.harness.test_loop import INST, RISK, as_kind, book, drain, put, rig  # noqa: F401


def _step_past_gauges(h):
    time.sleep(0.002)  # gauges (and the disk-state read) run once a millisecond
    h.step()
    h.step()


def test_disk_low_then_full_goes_reducing_then_cancels_and_halts_and_replays(rig, session):
    rings, _ = rig
    name = segment_name(session, "telemetry")
    tel = TelemetryBlock.create(name)
    try:
        core = Core([INST], RISK, strategies.get("mm_cy"))
        h = Harness(core, [rings["md"]], rings["exec"], rings["cmd"], rings["orders"], rings["records"],
                    rings["reply"], rings["events"], timer_interval_ns=10**12, telemetry=tel)
        put(rings["md"], book(1_000))
        while h.step():
            pass
        assert core.trading_state == TradingState.ACTIVE and core.open_orders > 0
        _step_past_gauges(h)
        assert h.counters()["disk_halts"] == 0
        tel.set_gauge("writer_disk_state", 1)
        _step_past_gauges(h)
        assert core.trading_state == TradingState.REDUCING and core.open_orders > 0
        tel.set_gauge("writer_free_bytes", 12345)
        tel.set_gauge("writer_disk_state", 2)
        _step_past_gauges(h)
        assert core.trading_state == TradingState.HALTED
        assert h.counters()["disk_halts"] == 2
        _step_past_gauges(h)
        assert h.counters()["disk_halts"] == 2, "one input per worsening, not per pass"
        assert tel.gauge("rseq") == h.rseq
        recs = drain(rings["records"])
        orders = drain(rings["orders"])
        assert (orders["cmd"] == 2).sum() >= 1, "resting orders were not canceled"  # OrderCmdType.CANCEL
        journal = recs[(recs["flags"] & RecordFlag.JOURNAL) != 0]
        halts = as_kind(journal[journal["kind"] == RecordKind.CONTROL_CMD], "CONTROL_CMD")
        assert list(halts["cmd"]) == [ControlCmdType.DISK_HALT] * 2
        assert list(halts["arg0"]) == [1, 2] and int(halts["arg1"][1]) == 12345
        an = as_kind(recs[recs["kind"] == RecordKind.ANOMALY], "ANOMALY")
        assert list(an["code"]) == [Anomaly.DISK_FULL] * 2
        ts = as_kind(recs[recs["kind"] == RecordKind.TRADING_STATE], "TRADING_STATE")
        assert [(int(s), int(c)) for s, c in zip(ts["state"], ts["cause"])][-2:] == [
            (TradingState.REDUCING, 5), (TradingState.HALTED, 5)]
        # journaled: a replay of the journal makes the same dispatches and records
        replayed = Core([INST], RISK, strategies.get("mm_cy"))
        rep_orders, rep_out = replayed.process_array(journal.copy(), 1)
        assert replayed.trading_state == TradingState.HALTED
        assert len(rep_orders) == len(orders)
    finally:
        tel.close()
        shm.unlink_segment(name)


def test_stop_with_a_records_ring_nobody_drains_does_not_freeze(rig, session):
    """A writer gone for good (nobody releases the records ring): the stop gives up waiting for
    room after the drain timeout instead of spinning until SIGKILLed."""
    from livestack.ipc import Ring

    rings, _ = rig
    small = Ring.create(segment_name(session, "small"), 1 << 15, 128)
    try:
        core = Core([INST], RISK, None)
        h = Harness(core, [rings["md"]], rings["exec"], rings["cmd"], rings["orders"], small, rings["reply"],
                    rings["events"], timer_interval_ns=10**12)
        filler = np.zeros(small.capacity - 1, dtype=small.dtype)
        assert small.write_batch(filler) == len(filler)
        import threading

        t = threading.Thread(target=h.drain, args=(0.2,), daemon=True)
        t.start()
        t.join(timeout=60)  # a hard bound on the wait: the old loop spun here forever
        assert not t.is_alive(), "the stop froze on a full records ring"
        assert h.counters()["stop_inject_skipped"] == 1 and h.counters()["state"] == "stopped"
    finally:
        small.close()
