"""The harness loop over real shared-memory rings, driven one poll pass at a time in-process."""

import numpy as np
import pytest

from livestack.config import Instrument
from livestack.core import Core
from livestack.core import inputs as I
from livestack.harness.loop import Harness
from livestack.ipc import Ring, segment_name
from livestack.schema import (DTYPES, ControlCmdType, ExecType, OrderCmdType, RecordFlag, RecordKind, Side,
                              TradingState, new)
from livestack import strategies

INST = Instrument(1, "SIM", "sim", price_decimals=2, qty_decimals=3, tick=1, lot=1)
RISK = {"max_order_qty": 100_000, "max_position": 1_000_000}


@pytest.fixture
def rig(session):
    mk = lambda n, cap, slot, kind=0: Ring.create(segment_name(session, n), cap, slot, kind)  # noqa: E731
    rings = dict(md=mk("md", 1024, 64), exec=mk("exec", 256, 128, RecordKind.EXEC),
                 cmd=mk("cmd", 64, 128, RecordKind.CONTROL_CMD), orders=mk("orders", 256, 64, RecordKind.ORDER_CMD),
                 records=mk("records", 1 << 16, 128), reply=mk("reply", 64, 128, RecordKind.CONTROL_REPLY),
                 events=mk("events", 1024, 128))

    def build(strategy="mm_cy", risk=None, **kw):
        core = Core([INST], risk or RISK, strategies.get(strategy))
        return Harness(core, [rings["md"]], rings["exec"], rings["cmd"], rings["orders"], rings["records"],
                       rings["reply"], rings["events"], timer_interval_ns=10**12, **kw)

    yield rings, build
    for r in rings.values():
        r.close()


def put(ring, recs):
    for r in recs:
        arr = np.frombuffer(r.tobytes(), dtype=ring.dtype) if r.dtype.itemsize == ring.slot_size else None
        assert ring.write(arr if arr is not None else r.tobytes()) == 0


def drain(ring):
    out = np.zeros(ring.size(), dtype=ring.dtype)
    ring.read(out)
    return out


def as_kind(slots, name):
    """Decode SLOT128 records of one kind (64-byte kinds sit in the first half of the slot)."""
    dt = DTYPES[name]
    raw = slots.view(np.uint8).reshape(len(slots), -1)[:, :dt.itemsize]
    return np.ascontiguousarray(raw).view(dt).reshape(-1)


def book(ts):
    return I.snapshot(1, ts, bids=[(10000, 5000), (9990, 5000)], asks=[(10010, 5000), (10020, 5000)])


def test_every_input_is_journaled_with_a_contiguous_record_sequence(rig):
    rings, build = rig
    h = build()
    put(rings["md"], book(1_000))
    while h.step():
        pass
    recs = drain(rings["records"])
    assert list(recs["seq"]) == list(range(1, len(recs) + 1)), "record-stream seq must be contiguous from 1"
    journal = recs[(recs["flags"] & RecordFlag.JOURNAL) != 0]
    assert len(journal) == 6 and h.hseq == 6
    assert list(journal["kind"]) == [RecordKind.MD_STATUS] + [RecordKind.MD_LEVEL] * 4 + [RecordKind.MD_STATUS]
    assert rings["md"].size() == 0


def test_market_maker_orders_reach_the_orders_ring_and_the_records(rig):
    rings, build = rig
    h = build()
    put(rings["md"], book(1_000) + [I.md_trade(1, 2_000, Side.BUY, 10010, 10)])
    while h.step():
        pass
    orders = drain(rings["orders"])
    assert len(orders) > 0 and set(orders["cmd"]) <= {OrderCmdType.NEW, OrderCmdType.CANCEL, OrderCmdType.REPLACE}
    recs = drain(rings["records"])
    copies = recs[recs["kind"] == RecordKind.ORDER_CMD]
    assert np.array_equal(copies.view(np.uint8).reshape(-1, 128)[:, :64], orders.view(np.uint8).reshape(-1, 64))
    assert h.counters()["orders_sent"] == len(orders)


def test_control_command_gets_a_reply_with_the_hseq_it_took_effect_at(rig):
    rings, build = rig
    h = build(strategy="none")
    put(rings["cmd"], [I.control(5, ControlCmdType.KILL, request_id=77)])
    h.step()
    reply = drain(rings["reply"])
    assert len(reply) == 1 and reply["request_id"][0] == 77 and reply["status"][0] == 0
    assert reply["hseq"][0] == h.hseq == 1
    events = drain(rings["events"])
    ts = as_kind(events[events["kind"] == RecordKind.TRADING_STATE], "TRADING_STATE")
    assert len(ts) >= 1
    assert ts["state"][-1] == TradingState.HALTED and ts["kill_latched"][-1] == 1


def test_exec_events_are_taken_before_market_data_in_a_pass(rig):
    rings, build = rig
    h = build(strategy="none")
    put(rings["md"], [I.md_trade(1, 10, Side.BUY, 100, 1)])
    put(rings["exec"], [I.exec_(1, 11, ExecType.ACCEPTED, 12345)])
    h.step()
    journal = drain(rings["records"])
    journal = journal[(journal["flags"] & RecordFlag.JOURNAL) != 0]
    assert list(journal["kind"][:2]) == [RecordKind.EXEC, RecordKind.MD_TRADE]


def test_records_ring_without_room_consumes_nothing_then_halts_trading(rig, session):
    rings, build = rig
    small = Ring.create(segment_name(session, "small"), 1 << 15, 128)
    core = Core([INST], RISK, None)
    h = Harness(core, [rings["md"]], rings["exec"], rings["cmd"], rings["orders"], small, rings["reply"],
                rings["events"], timer_interval_ns=10**12)
    reserve = h.records_reserve
    filler = np.zeros(small.capacity - reserve + 1, dtype=small.dtype)
    assert small.write_batch(filler) == len(filler)
    put(rings["md"], [I.md_trade(1, 10, Side.BUY, 100, 1)])
    assert h.step() == 0 and rings["md"].size() == 1, "must not consume while the records ring lacks room"
    assert h.counters()["records_backpressure"] >= 1
    small.read(np.zeros(len(filler), dtype=small.dtype))  # the writer catches up
    h.step()
    assert rings["md"].size() == 0
    assert core.trading_state == TradingState.HALTED
    recs = drain(small)
    assert RecordKind.ANOMALY in set(recs["kind"]) and RecordKind.TRADING_STATE in set(recs["kind"])
    # the halt is an input like any other: journaled, so a replay of the journal halts too
    journal = recs[(recs["flags"] & RecordFlag.JOURNAL) != 0]
    halt = as_kind(journal[journal["kind"] == RecordKind.CONTROL_CMD], "CONTROL_CMD")
    assert list(halt["cmd"]) == [ControlCmdType.RECORDS_HALT]
    replayed = Core([INST], RISK, None)
    _, out = replayed.process_array(journal.copy(), 1)
    assert TradingState.HALTED in set(as_kind(out[out["kind"] == RecordKind.TRADING_STATE], "TRADING_STATE")["state"])
    small.close()


def test_drain_cancels_open_orders_on_stop(rig):
    rings, build = rig
    h = build()
    put(rings["md"], book(1_000) + [I.md_trade(1, 2_000, Side.BUY, 10010, 10)])
    while h.step():
        pass
    sent = drain(rings["orders"])
    news = sent[sent["cmd"] == OrderCmdType.NEW]
    assert len(news) > 0
    # the venue accepts them all
    put(rings["exec"], [I.exec_(1, 3_000, ExecType.ACCEPTED, int(c), venue_order_id=int(c), side=int(s), price=int(p),
                                qty=int(q), leaves_qty=int(q))
                        for c, s, p, q in zip(news["client_order_id"], news["side"], news["price"], news["qty"])])
    while h.step():
        pass
    drain(rings["orders"])
    h.drain(timeout_s=0.2, cancel_on_stop=True)
    cancels = drain(rings["orders"])
    assert set(cancels["cmd"]) == {OrderCmdType.CANCEL}
    assert set(cancels["client_order_id"]) >= set(news["client_order_id"]) - set(sent[sent["cmd"] == OrderCmdType.CANCEL]["client_order_id"])
    assert h.counters()["state"] == "stopped"


def test_telemetry_and_records_count_every_denial_of_a_coalesced_run(rig, session):
    from livestack.telemetry.block import TelemetryBlock

    rings, build = rig
    tel = TelemetryBlock.create(segment_name(session, "telemetry"))
    try:
        # the market maker quotes 10 on each side against a 5 position limit: two MAX_POSITION
        # denials on every market-data event, one run
        h = build(risk={"max_order_qty": 100_000, "max_position": 5}, telemetry=tel)
        put(rings["md"], book(1_000) + [I.md_trade(1, 2_000 + k, Side.BUY, 10010, 1) for k in range(30)])
        while h.step():
            pass
        h.drain(timeout_s=0.2, cancel_on_stop=True)  # SESSION_STOP writes the run's pending repeats
        recs = drain(rings["records"])
        dn = as_kind(recs[recs["kind"] == RecordKind.DENIAL], "DENIAL")
        total = h.core.counters()["denials"]
        assert total >= 60
        assert len(dn) < total / 10, "a run of one reason is coalesced"
        assert int(dn["count"].sum()) == total
        assert tel.snapshot()["counters"]["denials"] == total
        assert {k: v for k, v in tel.snapshot()["denials"].items() if v} == {"MAX_POSITION": total}
    finally:
        tel.close()


def test_bad_ring_shapes_are_refused(rig):
    rings, build = rig
    core = Core([INST], RISK, None)
    with pytest.raises(ValueError, match="64-byte"):
        Harness(core, [rings["exec"]], rings["exec"], rings["cmd"], rings["orders"], rings["records"])
    with pytest.raises(ValueError, match="1..8"):
        Harness(core, [], rings["exec"], rings["cmd"], rings["orders"], rings["records"])
