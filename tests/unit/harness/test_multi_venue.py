"""The harness with two feeds and two venues (issue 16.1): orders go to their instrument's venue,
every venue's execution events and every feed's market data are taken in a fair round, and the
journal replays to the same outputs."""

import numpy as np
import pytest

from livestack.config import Instrument
from livestack.core import Core
from livestack.core import inputs as I
from livestack.harness.loop import Harness
from livestack.ipc import Ring, segment_name
from livestack.schema import ExecType, OrderCmdType, RecordFlag, RecordKind, Side
from livestack import strategies

from tests.unit.harness.test_loop import drain, put

A = Instrument(1, "BTCUSDT", "a", price_decimals=2, qty_decimals=3, feed="spot")
B = Instrument(2, "BTCUSDT", "b", price_decimals=2, qty_decimals=3, feed="usdm")
RISK = {"max_order_qty": 100_000, "max_position": 1_000_000}


@pytest.fixture
def rig(session):
    made = []

    def mk(n, cap, slot, kind=0):
        made.append(Ring.create(segment_name(session, n), cap, slot, kind))
        return made[-1]

    r = dict(md=[mk("md.spot", 1024, 64), mk("md.usdm", 1024, 64)],
             exec=[mk("exec.a", 256, 128, RecordKind.EXEC), mk("exec.b", 256, 128, RecordKind.EXEC)],
             orders=[mk("orders.a", 256, 64, RecordKind.ORDER_CMD), mk("orders.b", 256, 64, RecordKind.ORDER_CMD)],
             cmd=mk("cmd", 64, 128, RecordKind.CONTROL_CMD), records=mk("records", 1 << 16, 128))

    def build(strategy="mm_cy", **kw):
        core = Core([A, B], RISK, strategies.get(strategy))
        return Harness(core, r["md"], r["exec"], r["cmd"], r["orders"], r["records"], timer_interval_ns=10**12,
                       routes={1: 0, 2: 1}, **kw)

    yield r, build
    for ring in made:
        ring.close()


def book(inst, ts, mid):
    return I.snapshot(inst, ts, bids=[(mid - 5, 5000)], asks=[(mid + 5, 5000)])


def test_orders_go_to_the_orders_ring_of_their_instruments_venue(rig):
    r, build = rig
    h = build()
    put(r["md"][0], book(1, 1_000, 10000) + [I.md_trade(1, 2_000, Side.BUY, 10005, 10)])
    put(r["md"][1], book(2, 1_000, 20000) + [I.md_trade(2, 2_000, Side.BUY, 20005, 10)])
    while h.step():
        pass
    a, b = drain(r["orders"][0]), drain(r["orders"][1])
    assert len(a) > 0 and len(b) > 0
    assert set(a["instrument"]) == {1} and set(b["instrument"]) == {2}
    assert h.counters()["orders_sent"] == len(a) + len(b)


def test_each_venues_exec_events_are_taken_and_journaled_in_the_order_consumed(rig):
    r, build = rig
    h = build()
    put(r["md"][0], book(1, 1_000, 10000))
    put(r["md"][1], book(2, 1_000, 20000))
    while h.step():
        pass
    a, b = drain(r["orders"][0]), drain(r["orders"][1])
    na, nb = a[a["cmd"] == OrderCmdType.NEW], b[b["cmd"] == OrderCmdType.NEW]
    assert len(na) and len(nb)
    acks = lambda news, inst: [I.exec_(inst, 3_000, ExecType.ACCEPTED, int(c), venue_order_id=int(c), side=int(s),  # noqa: E731
                                       price=int(p), qty=int(q), leaves_qty=int(q))
                               for c, s, p, q in zip(news["client_order_id"], news["side"], news["price"], news["qty"])]
    put(r["exec"][1], acks(nb, 2))   # venue b answers first: still taken venue a's first in a round
    put(r["exec"][0], acks(na, 1))
    h.step()
    assert r["exec"][0].size() == 0 and r["exec"][1].size() == 0
    recs = drain(r["records"])
    journal = recs[(recs["flags"] & RecordFlag.JOURNAL) != 0]
    ex = journal[journal["kind"] == RecordKind.EXEC]
    assert list(ex["instrument"]) == [1] * len(na) + [2] * len(nb)
    assert h.core.open_orders == len(na) + len(nb)
    # the journal alone replays to the same outputs (what `livestack replay --verify` checks)
    replayed = Core([A, B], RISK, strategies.get("mm_cy"))
    orders, out = replayed.process_array(journal.copy(), 1)
    live = recs[(recs["flags"] & RecordFlag.JOURNAL) == 0]
    sent = live[live["kind"] == RecordKind.ORDER_CMD].view(np.uint8).reshape(-1, 128)[:, :64]
    assert np.array_equal(orders.view(np.uint8).reshape(-1, 64)[:, 16:], sent[:, 16:])  # past kind/seq
    assert np.array_equal(out["kind"], live["kind"][live["kind"] != RecordKind.ORDER_CMD])
    assert replayed.open_orders == h.core.open_orders


def test_a_busy_feed_does_not_starve_the_other(rig):
    r, build = rig
    h = build(strategy="none", batch=8)
    put(r["md"][0], [I.md_trade(1, 10 + k, Side.BUY, 100, 1) for k in range(100)])
    put(r["md"][1], [I.md_trade(2, 10 + k, Side.BUY, 100, 1) for k in range(3)])
    h.step()
    assert r["md"][1].size() == 0, "the quiet feed's records are taken in the first round"
    assert r["md"][0].size() == 100 - 8


def test_routes_must_name_a_configured_venue(rig):
    r, _ = rig
    core = Core([A, B], RISK, None)
    with pytest.raises(ValueError, match="routes"):
        Harness(core, r["md"], r["exec"], r["cmd"], r["orders"], r["records"], routes={1: 2})
    with pytest.raises(ValueError, match="venues"):
        Harness(core, r["md"], r["exec"], r["cmd"], r["orders"][:1], r["records"])
