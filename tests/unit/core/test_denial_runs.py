"""Runs of one denial reason on one instrument are coalesced: the first is recorded at once, the
repeats are counted and written as one DENIAL (``count`` = repeats, fields of the last repeat) when
the run ends. A strategy re-asking every tick against a rate limit made more than half of a
10-minute session's records before this."""

from __future__ import annotations

from livestack.core import inputs as R
from livestack.schema import ControlCmdType, DenyReason, RecordKind

from tests.unit.core.helpers import BUY, INST, INST2, NEW, SELL, Driver

TOO_BIG = (NEW, 0, BUY, 99990, 50, 0, 0, 0)   # over max_position 20
OK = (NEW, 0, BUY, 99990, 5, 0, 0, 0)


def _denials(r):
    d = R.decode(r, "DENIAL")
    return [(DenyReason(int(x)).name, int(c), int(q)) for x, c, q in zip(d["reason"], d["count"], d["qty"])]


def _driver(**kw):
    return Driver(risk={"max_position": 20}, **kw)


def test_the_first_denial_of_a_run_is_recorded_and_repeats_wait_for_the_run_to_end():
    d = _driver()
    o, r = d.intents(*[TOO_BIG] * 5)
    assert len(o) == 0
    assert _denials(r) == [("MAX_POSITION", 1, 50)]
    assert d.core.counters()["denials_by_reason"]["MAX_POSITION"] == 5


def test_an_order_sent_on_the_instrument_writes_the_repeats_before_its_own_records():
    d = _driver()
    d.intents(*[TOO_BIG] * 5)
    # (Driver.intents runs through a timer input, which first writes the 4 pending repeats)
    o, r = d.intents((NEW, 0, BUY, 99990, 40, 0, 0, 0), OK)  # one more repeat (qty 40), then an order
    assert len(o) == 1
    assert _denials(r) == [("MAX_POSITION", 4, 50), ("MAX_POSITION", 1, 40)]
    kinds = r["kind"].tolist()
    assert kinds[:2] == [int(RecordKind.DENIAL)] * 2 and int(RecordKind.ORDER_STATE) in kinds[2:]
    # the run is over: the next denial is recorded at once again
    assert _denials(d.intents(TOO_BIG)[1]) == [("MAX_POSITION", 1, 50)]


def test_another_reason_ends_the_run():
    d = _driver()
    d.intents(OK)                            # resting buy at 999.90
    o, r = d.intents(TOO_BIG, TOO_BIG, TOO_BIG, (NEW, 0, SELL, 99990, 5, 0, 0, 0), TOO_BIG)
    assert _denials(r) == [("MAX_POSITION", 1, 50), ("MAX_POSITION", 2, 50), ("SELF_CROSS", 1, 5),
                           ("MAX_POSITION", 1, 50)]


def test_a_timer_writes_pending_repeats_and_the_run_goes_on():
    d = _driver()
    d.intents(*[TOO_BIG] * 3)
    r = d.feed(R.timer(d.ts))[1]
    assert _denials(r) == [("MAX_POSITION", 2, 50)]
    assert _denials(d.feed(R.timer(d.ts))[1]) == []          # nothing pending: nothing written
    assert _denials(d.intents(TOO_BIG)[1]) == []             # still the same run
    assert _denials(d.feed(R.timer(d.ts))[1]) == [("MAX_POSITION", 1, 50)]


def test_runs_are_per_instrument():
    d = Driver(risk={"max_position": 20}, instruments=(INST, INST2))
    other = (NEW, 1, BUY, 99990, 50, 0, 0, 0)
    o, r = d.intents(TOO_BIG, other, TOO_BIG, other, TOO_BIG)
    d2 = R.decode(r, "DENIAL")
    assert [(int(i), int(c)) for i, c in zip(d2["instrument"], d2["count"])] == [(INST.id, 1), (INST2.id, 1)]
    r = d.feed(R.timer(d.ts))[1]
    d2 = R.decode(r, "DENIAL")
    assert sorted((int(i), int(c)) for i, c in zip(d2["instrument"], d2["count"])) == [(INST.id, 2), (INST2.id, 1)]


def test_session_stop_writes_pending_repeats():
    d = _driver()
    d.intents(*[TOO_BIG] * 4)
    r = d.control(ControlCmdType.SESSION_STOP)[1]
    assert _denials(r) == [("MAX_POSITION", 3, 50)]


def test_every_denial_is_in_some_count():
    d = _driver()
    total = []
    for k in range(50):
        its = [TOO_BIG] * (k % 4) + ([OK] if k % 7 == 0 else [])
        total.append(d.intents(*its)[1])
    total.append(d.feed(R.timer(d.ts))[1])
    counted = sum(c for r in total for _, c, _ in _denials(r))
    assert counted == sum(d.core.counters()["denials_by_reason"].values()) > 0
