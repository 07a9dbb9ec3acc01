"""The telemetry block: layout checks on attach, writers and readers, histogram buckets and quantiles."""

import math
import os

import pytest

from livestack.ipc import segment_name
from livestack.schema import Anomaly, DenyReason, OrderState, TradingState
from livestack.telemetry import block as tb
from livestack.telemetry.block import TelemetryBlock, TelemetryError


@pytest.fixture
def blk(session):
    b = TelemetryBlock.create(segment_name(session, "telemetry"))
    yield b
    b.close()


def ref_index(v):
    """Two significant decimal digits, buckets (a, b], 10 ns .. 10 s: the documented scheme."""
    if v <= 10:
        return 0
    if v > 10**10:
        return tb.N_BUCKETS - 1
    x = v - 1
    d = len(str(x)) - 1
    return 1 + (d - 1) * 90 + (x // 10 ** (d - 1) - 10)


def test_bucket_index_matches_the_documented_two_digit_scheme_at_every_edge():
    values = [-5, 0, 1, 9, 10, 11, 12, 99, 100, 101, 109, 110, 111, 999, 1000, 1001, 10**10, 10**10 + 1, 2**62]
    for k in range(1, 11):
        for m in range(10, 101):
            e = m * 10 ** (k - 1)
            values += [e - 1, e, e + 1]
    for v in values:
        i = tb.bucket_index(v)
        assert i == ref_index(v), v
        assert v <= tb.BUCKET_UPPER_NS[i]
        if i > 0:
            assert v > tb.BUCKET_UPPER_NS[i - 1]


def test_bucket_index_matches_reference_on_random_values():
    import random

    rnd = random.Random(7)
    for _ in range(20000):
        v = int(10 ** rnd.uniform(0, 10.5))
        assert tb.bucket_index(v) == ref_index(v), v


def test_prometheus_1_2_5_bounds_are_exact_bucket_edges():
    edges = set(tb.BUCKET_UPPER_NS)
    for k in range(1, 11):
        for m in (1, 2, 5):
            if m * 10**k <= 10**10:
                assert m * 10**k in edges


def test_quantiles_come_from_bucket_upper_bounds_clamped_to_the_max(blk):
    blk.record_many("core", [100] * 90 + [1000] * 9 + [123456])
    h = blk.histogram("core")
    assert h["count"] == 100 and h["sum_ns"] == 9000 + 9000 + 123456 and h["max_ns"] == 123456
    assert h["p50_ns"] == 100 and h["p90_ns"] == 100 and h["p99_ns"] == 1000 and h["p999_ns"] == 123456
    assert tb.quantile([0] * tb.N_BUCKETS, 0.5) is None


def test_counters_gauges_and_codes_read_back(blk):
    blk.add("events", 3)
    blk.add("fills")
    blk.set_gauge("trading_state", TradingState.HALTED)
    blk.denial(DenyReason.MAX_POSITION)
    blk.denial(DenyReason.MAX_POSITION)
    blk.anomaly(Anomaly.OVERFILL)
    blk.order_state(OrderState.FILLED)
    s = blk.snapshot()
    assert s["counters"]["events"] == 3 and s["counters"]["fills"] == 1
    assert s["counters"]["denials"] == 2 and s["counters"]["anomalies"] == 1
    assert s["denials"]["MAX_POSITION"] == 2 and s["denials"]["BAD_PRICE"] == 0
    assert s["anomalies"]["OVERFILL"] == 1 and s["order_states"]["FILLED"] == 1
    assert s["trading_state"] == "HALTED"
    with pytest.raises(TelemetryError, match="unknown counter"):
        blk.add("nope")


def test_every_schema_code_fits_the_per_code_tables():
    for enum in (OrderState, DenyReason, Anomaly):
        assert max(enum) < tb.MAX_CODES


def test_positions_orders_rings_and_processes(blk):
    blk.register_instrument(0, 7, "BTCUSDT", 2, 3)
    blk.set_position(0, 1500, -150000000, 2500, -100, 100000, 123)
    blk.set_order(5, 7, 42, 9001, 1, OrderState.ACCEPTED, 100000, 1000, 0, 55)
    blk.set_order(6, 7, 43, 9002, 2, OrderState.ACCEPTED, 100100, 1000, 0, 56)
    blk.clear_order(6)
    blk.register_ring(0, "md.sim", 1024)
    blk.ring_fill(0, 256)
    blk.ring_overflow(0, 2)
    slot = blk.register_process("harness")
    blk.heartbeat(slot)
    blk.process_lag(slot, 77)
    s = blk.snapshot()
    (p,) = s["positions"]
    assert (p["instrument"], p["symbol"], p["net_qty"], p["realized_pnl"], p["qty_decimals"]) == (7, "BTCUSDT", 1500, 2500, 3)
    (o,) = s["orders"]
    assert (o["slot"], o["client_order_id"], o["side"], o["state"]) == (5, 42, "BUY", "ACCEPTED")
    (r,) = s["rings"]
    assert (r["name"], r["fill"], r["fill_ratio"], r["overflows"]) == ("md.sim", 256, 0.25, 2)
    assert s["counters"]["ring_overflows"] == 2
    (pr,) = s["processes"]
    assert pr["pid"] == os.getpid() and pr["name"] == "harness" and pr["alive"] and pr["lag_ns"] == 77
    assert blk.register_process("harness") == slot  # same pid: same slot
    blk.unregister_process(slot)
    assert blk.snapshot()["processes"] == []


def test_attach_sees_what_the_creator_wrote_and_checks_the_segment(blk, session):
    blk.add("events", 5)
    other = TelemetryBlock.attach(blk.name)
    assert other.counter("events") == 5 and other.creator_pid == os.getpid()
    other.close()
    with pytest.raises(TelemetryError, match="does not exist"):
        TelemetryBlock.attach(segment_name(session, "nothing"))


def test_attach_refuses_a_segment_that_is_not_a_telemetry_block(session):
    from livestack.ipc import Ring

    with Ring.create(segment_name(session, "ring"), 8, 64) as r:
        with pytest.raises(TelemetryError):
            TelemetryBlock.attach(r.name)


def test_histogram_overflow_bucket_reports_the_max():
    assert tb.BUCKET_UPPER_NS[-1] == math.inf
    assert tb.quantile([0] * (tb.N_BUCKETS - 1) + [3], 0.5, max_ns=20_000_000_000) == 20_000_000_000


def test_a_dead_process_and_a_stale_heartbeat_show_as_unhealthy(blk):
    import time

    dead = blk.register_process("crashed", pid=2**22 + 12345)  # no such pid (above pid_max default)
    stale = blk.register_process("stuck")
    blk.heartbeat(stale, now_ns=time.time_ns() - int(60e9))
    procs = {p["name"]: p for p in blk.processes()}
    assert procs["crashed"]["running"] is False and procs["crashed"]["alive"] is False
    assert procs["stuck"]["running"] is True and procs["stuck"]["alive"] is False
    assert procs["stuck"]["heartbeat_age_s"] > 50
    blk.unregister_process(dead)
    blk.unregister_process(stale)


def test_denial_and_anomaly_totals_come_from_the_per_code_tables(blk):
    blk.add("denials")  # a caller that also bumps the plain counter must not double the total
    blk.denial(DenyReason.HALTED)
    blk.add("anomalies")
    blk.anomaly(Anomaly.BAD_RECORD)
    s = blk.snapshot()
    assert s["counters"]["denials"] == 1 and s["counters"]["anomalies"] == 1


def test_a_full_process_table_reclaims_the_slots_of_dead_processes(blk):
    """Issue 14: a session whose processes are restarted again and again never runs out of slots."""
    for k in range(32):
        blk.register_process(f"dead{k}", pid=2**22 + 1000 + k)   # no such pids
    slot = blk.register_process("alive")
    assert 0 <= slot < 32
    assert {p["name"] for p in blk.processes()} == {"alive"}
