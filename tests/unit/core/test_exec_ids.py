"""Fills are applied once per venue execution id: the id's full 128-bit identity (exec_id,
exec_id_hi), never a truncation of it; a fill without an id is rejected, not deduplicated."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from livestack.core import inputs as R
from livestack.schema import Anomaly, ExecType
from livestack.venues.execid import exec_id_words

from tests.unit.core.helpers import BUY, Driver, anomalies

E = ExecType
A = Anomaly
QTY = 100


def _open_order():
    d = Driver()
    d.new(BUY, 99990, QTY)
    d.exec(E.ACCEPTED, 1)
    return d


def _fill(d, exec_id, exec_id_hi=0, qty=1):
    return d.exec(E.PARTIALLY_FILLED, 1, last_px=99990, last_qty=qty, exec_id=exec_id, exec_id_hi=exec_id_hi)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=12))
def test_two_distinct_exec_id_strings_are_two_fills(a, b):
    d = _open_order()
    _fill(d, a)
    _fill(d, b)
    expect = 1 if a == b else 2
    assert d.core.counters()["fills"] == expect
    assert d.core.position(1)["net_qty"] == expect


def test_collisions_of_the_old_integer_ids_are_distinct_fills():
    # FIX "777-1", "777-2" and "00777" all used to become 777
    d = _open_order()
    outs = [_fill(d, s)[1] for s in ("777-1", "777-2", "00777")]
    assert d.core.counters()["fills"] == 3 and d.core.position(1)["net_qty"] == 3
    for s, r in zip(("777-1", "777-2", "00777"), outs):
        f = R.decode(r, "FILL")
        assert (int(f["exec_id"][0]), int(f["exec_id_hi"][0])) == exec_id_words(s)


def test_ids_that_differ_only_in_the_high_word_are_two_fills():
    d = _open_order()
    _fill(d, 5, 1)
    _fill(d, 5, 2)
    o, r = _fill(d, 5, 1)
    assert [A(x) for x in anomalies(r)["code"]] == [A.DUPLICATE_EXEC]
    assert d.core.counters()["fills"] == 2


def test_the_same_string_again_is_a_duplicate():
    d = _open_order()
    _fill(d, "T-42")
    o, r = _fill(d, "T-42")
    assert [A(x) for x in anomalies(r)["code"]] == [A.DUPLICATE_EXEC]
    assert d.core.position(1)["net_qty"] == 1


def test_a_fill_without_an_exec_id_is_rejected_and_never_remembered():
    d = _open_order()
    o, r = _fill(d, 0, 0, qty=3)
    assert [A(x) for x in anomalies(r)["code"]] == [A.BAD_EXEC_ID]
    assert d.core.counters()["fills"] == 0 and d.core.position(1)["net_qty"] == 0
    assert len(R.decode(r, "FILL")) == 0
    o, r = _fill(d, 0, 0, qty=3)  # again: rejected again, not a "duplicate"
    assert [A(x) for x in anomalies(r)["code"]] == [A.BAD_EXEC_ID]
    o, r = _fill(d, "X1", qty=3)  # a real id afterwards is applied
    assert d.core.counters()["fills"] == 1 and d.core.position(1)["net_qty"] == 3


def test_dedup_remembers_the_last_eight_fills_of_an_order():
    d = _open_order()
    for k in range(8):
        _fill(d, f"F{k}")
    for k in range(8):
        o, r = _fill(d, f"F{k}")
        assert [A(x) for x in anomalies(r)["code"]] == [A.DUPLICATE_EXEC]
    assert d.core.counters()["fills"] == 8
