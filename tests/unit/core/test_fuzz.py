"""Whatever arrives, the core never crashes and its bookkeeping stays consistent: random mixes of
market data, execution events (any type, any id, duplicates), control commands and timers."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from livestack import strategies
from livestack.core import Core
from livestack.core import inputs as R

from tests.unit.core.helpers import INST, RISK

md = st.tuples(st.just("md"), st.integers(1, 2), st.integers(9990, 10010), st.integers(0, 30), st.booleans())
trade = st.tuples(st.just("trade"), st.integers(0, 2), st.integers(9990, 10010), st.integers(1, 30), st.just(0))
ex = st.tuples(st.just("exec"), st.integers(0, 9), st.integers(0, 12), st.integers(-2, 12), st.integers(0, 4))
ctl = st.tuples(st.just("ctl"), st.integers(0, 12), st.integers(0, 15), st.integers(-1, 20), st.integers(0, 2))
status = st.tuples(st.just("status"), st.integers(0, 7), st.just(0), st.just(0), st.just(0))
timer = st.tuples(st.just("timer"), st.just(0), st.just(0), st.just(0), st.just(0))
events = st.lists(st.one_of(md, md, md, trade, ex, ex, ctl, status, timer), max_size=120)


def _records(evs):
    out = R.snapshot(1, 1, [(100000, 5)], [(100010, 5)])
    ts = 2
    exec_id = 0
    for kind, a, b, c, d in evs:
        ts += 1000
        if kind == "md":
            out.append(R.md_level(1, ts, a, b * 10, c, flags=R.LAST if d else 0))
        elif kind == "trade":
            out.append(R.md_trade(1, ts, a, b * 10, c))
        elif kind == "exec":
            exec_id += 1
            out.append(R.exec_(1, ts, a, b, orig=b - 1 if d == 1 else 0, exec_id=exec_id if d != 2 else 7,
                               last_px=100000, last_qty=c, venue_order_id=b))
        elif kind == "ctl":
            out.append(R.control(ts, a, arg0=b, arg1=c, inst=d))
        elif kind == "status":
            out.append(R.md_status(1, ts, a))
        else:
            out.append(R.timer(ts))
    return R.slots(out)


@settings(max_examples=300, deadline=None)
@given(events)
def test_random_inputs_never_crash_and_bookkeeping_stays_consistent(evs):
    core = Core([INST], dict(RISK, max_open_orders=4), strategies.get("mm_cy", {"quote_qty": 5}),
                max_orders=8, live_cap=4)
    orders, records = core.process_array(_records(evs))
    c = core.counters()
    live = core.live_orders()
    assert c["open_orders"] == len(live) >= 0
    s = core.instrument_state(INST.id)
    assert s["n_live"] == len(live)
    assert s["open_buy_qty"] == sum(o["leaves"] for o in live if o["side"] == 1)
    assert s["open_sell_qty"] == sum(o["leaves"] for o in live if o["side"] == 2)
    assert s["in_flight"] == sum(1 for o in live if o["state"] in (1, 5, 7))
    assert all(o["leaves"] >= 0 for o in live)
    assert c["orders_sent"] == len(orders) and c["output_overflow"] == 0
    # one reply per control command
    assert (records["kind"] == 9).sum() == sum(1 for e in evs if e[0] == "ctl")
