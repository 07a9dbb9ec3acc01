"""book_top: the core's BOOK_LEVELS records, stored by the writer like every kind, read back as
rows (any N) in human units; a row cut short is marked incomplete, never invented."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from livestack.config import Instrument
from livestack.core import Core
from livestack.core import inputs as R
from livestack.records import booktop, open_session
from livestack.records.writer import RecordWriter
from livestack.schema import RecordKind, Side

BUY, SELL = int(Side.BUY), int(Side.SELL)
INST = Instrument(7, "T", price_decimals=2, qty_decimals=3, tick=1, lot=1)
RISK = {"max_order_qty": 1, "max_position": 1}


def _run(levels):
    """A core with BOOK_TOP N = levels over a small book: its outputs and the top after each message."""
    core = Core([INST], RISK, book_depth=2, book_top_levels=levels)
    msgs = [R.snapshot(7, 10, [(10000 - k, 1000 + k) for k in range(12)], [(10001 + k, 2000 + k) for k in range(3)]),
            [R.md_level(7, 20, BUY, 9999, 5)],                          # level 1 changes
            [R.md_level(7, 30, BUY, 9000, 5)],                          # far below every N: no row
            [R.md_level(7, 40, SELL, 10001, 0, flags=0), R.md_level(7, 40, BUY, 10000, 0)]]
    out, tops, hseq = [], [], 1
    for m in msgs:
        _, recs = core.process_array(R.slots(m), hseq0=hseq)
        hseq += len(m)
        out.append(recs)
        b, a = core.full_book(7)
        tops.append((b[:levels], a[:levels]))
    return out, tops


def _row_levels(row, side, levels):
    return [(int(row[f"{side}_px_{k}"]), int(row[f"{side}_qty_{k}"])) for k in range(levels) if row[f"{side}_px_{k}"]]


@pytest.mark.parametrize("levels", [5, 7, 10])
def test_core_emits_one_row_per_message_that_changed_its_top_n(levels):
    out, tops = _run(levels)
    per_row = 2 * ((levels + 4) // 5)
    counts = [int((r["kind"] == int(RecordKind.BOOK_LEVELS)).sum()) for r in out]
    assert counts == [per_row, per_row, 0, per_row]
    for recs, (b, a) in zip(out, tops):
        rows = booktop.records_to_rows(recs, levels)
        for row in rows:
            assert row["complete"]
            assert _row_levels(row, "bid", levels) == [tuple(x) for x in b.tolist()]
            assert _row_levels(row, "ask", levels) == [tuple(x) for x in a.tolist()]


def _stream(levels=7):
    out, _ = _run(levels)
    recs = np.concatenate(out)
    recs["seq"] = np.arange(1, len(recs) + 1, dtype=np.uint64)
    return recs


def test_session_file_book_top_rows_whatever_the_write_batches(tmp_path):
    recs = _stream()
    expect = booktop.records_to_rows(recs, 7)
    assert len(expect) == 3 and expect["complete"].all()
    for cut in (1, 3, 5, len(recs) - 1):
        p = str(tmp_path / f"s{cut}.h5")
        with RecordWriter(p, {"instruments": [INST]}, {"quiet": True}) as w:
            w.write(recs[:cut])
            w.write(recs[cut:])
        with h5py.File(p, "r") as f:
            assert np.array_equal(booktop.rows(f), expect), cut
            assert len(f["book_levels"]) == int((recs["kind"] == int(RecordKind.BOOK_LEVELS)).sum())


def test_book_top_frame_is_in_human_units(tmp_path):
    p = str(tmp_path / "s.h5")
    with RecordWriter(p, {"instruments": [INST]}, {"quiet": True}) as w:
        w.write(_stream(5))
    with open_session(p) as s:
        df = s["book_top"]
        assert "book_top" in s and "book_top" not in s.keys()
    assert list(df.columns[:7]) == ["time", "hseq", "ts", "ts_event", "instrument", "symbol", "complete"]
    assert df["bid_px_0"].iloc[0] == 100.00 and df["bid_qty_0"].iloc[0] == 1.0
    assert df["ask_px_0"].iloc[0] == 100.01 and df["ask_qty_4"].iloc[0] == 0.0  # 3 asks: the rest is 0
    assert len(df) == 3 and df["complete"].all()


def test_a_row_whose_records_are_cut_short_is_marked_incomplete():
    recs = _stream(5)
    bt = np.flatnonzero(recs["kind"] == int(RecordKind.BOOK_LEVELS))
    rows = booktop.records_to_rows(np.delete(recs, bt[3]), 5)   # the 2nd row lost its ask record
    assert rows["complete"].tolist() == [1, 0, 1]
    assert rows["ask_px_0"][1] == 0 and rows["bid_px_0"][1] == rows["bid_px_0"][0]
