"""``records summary`` / ``records report`` / ``records export`` per strategy: a session of two
strategies (the file's ``strategy`` attribute maps each to its instruments), one of which fails; the
figures are the sums over each one's instruments and the failing one's message is shown."""

from __future__ import annotations

import json

import numpy as np
import pytest

from livestack.cli import main as cli_main
from livestack.config import Instrument
from livestack.core import Core
from livestack.core import inputs as R
from livestack.records.cli import summarize
from livestack.records.writer import RecordWriter
from livestack.schema import ExecType, RecordFlag, SLOT128, Side
from livestack.strategies import loader
from livestack.strategies.multi import StrategySet

A = Instrument(1, "AAA", "sim", price_decimals=2, qty_decimals=3, tick=10, lot=1)
B = Instrument(2, "BBB", "sim", price_decimals=2, qty_decimals=3, tick=10, lot=1)
RISK = {"max_order_qty": 1000, "max_position": 10000, "max_open_orders": 16}
TS = 1_000_000_000
N_INPUTS = 10

BOOM = '''
from livestack.strategies.sdk import Strategy

class Boom(Strategy):
    def on_book(self, ctx, i):
        b = ctx.inst(i)
        if b.bid_px <= 0:
            return
        if b.n_live == 0 and not getattr(self, "placed", False):
            self.placed = True
            ctx.quote(b.bid_px, b.ask_px, 1)
            return
        raise ZeroDivisionError("boom on BBB")
'''


@pytest.fixture
def session_file(tmp_path):
    f = tmp_path / "boom.py"
    f.write_text(BOOM)
    quiet = loader.load("mm_cy", {"quote_qty": 2}, A, name="quiet")
    boom = loader.load(f"{f}:Boom", None, B, name="boom")
    core = Core([A, B], RISK, StrategySet([(quiet, "disable"), (boom, "disable")], {0: 0, 1: 1}))
    inputs = list(R.snapshot(1, TS, [(100000, 50)], [(100010, 50)])) + list(R.snapshot(2, TS, [(200000, 50)],
                                                                                            [(200010, 50)]))
    inputs += [R.exec_(2, TS, ExecType.ACCEPTED, 3, venue_order_id=3), R.md_level(2, TS, int(Side.BUY), 199990, 5)]
    assert len(inputs) == N_INPUTS   # the last one makes boom raise
    out = []
    for k, rec in enumerate(inputs):
        orders, records = core.process_array(R.slots([rec]), hseq0=k + 1)
        j = R.slots([rec])
        j["flags"] |= int(RecordFlag.JOURNAL)
        out += [j, R.slots(list(orders)), records]
    allrecs = np.concatenate([x for x in out if len(x)]).astype(SLOT128)
    allrecs["seq"] = np.arange(1, len(allrecs) + 1)
    path = str(tmp_path / "s.h5")
    ident = [{"ref": "mm_cy", "name": "quiet", "instruments": ["AAA"]},
             {"ref": f"{f}:Boom", "name": "boom", "instruments": ["BBB"]}]
    insts = [{"id": i.id, "symbol": i.symbol, "price_decimals": 2, "qty_decimals": 3} for i in (A, B)]
    with RecordWriter(path, {"session": "two", "instruments": insts, "strategy": json.dumps(ident)}, {"quiet": True}) as w:
        w.write(allrecs)
    return path


def test_summary_has_a_row_per_strategy_and_the_error_message(session_file, capsys):
    d = summarize(session_file)
    rows = {r["name"]: r for r in d["strategies"]}
    assert rows["quiet"]["instruments"] == ["AAA"] and rows["boom"]["instruments"] == ["BBB"]
    assert rows["quiet"]["orders"] == 2 and rows["quiet"]["errors"] == 0 and not rows["quiet"]["stopped"]
    # boom: its two quotes, then (disabled) the cancels of its orders on the next input
    assert rows["boom"]["errors"] == 1 and rows["boom"]["stopped"] and rows["boom"]["orders"] >= 2
    assert d["strategy_errors"] == [{"strategy": "boom", "message": "ZeroDivisionError: boom on BBB", "count": 1,
                                     "first_hseq": N_INPUTS, "action": "DISABLE", "error_code": 0}]
    assert d["counts"]["anomaly_text"] == 1
    assert cli_main(["records", "summary", session_file]) in (0, 1)
    text = capsys.readouterr().out
    assert "per strategy" in text and "ZeroDivisionError: boom on BBB" in text and "1 (stopped)" in text


def test_report_and_export_carry_the_message(session_file, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from livestack.records.report import analyse

    r = analyse(session_file)
    assert [x["name"] for x in r["per_strategy"]] == ["quiet", "boom"]
    assert r["strategy_errors"][0]["message"] == "ZeroDivisionError: boom on BBB"
    assert cli_main(["records", "export", session_file, "--parquet", str(tmp_path / "pq")]) == 0
    t = pq.read_table(tmp_path / "pq" / "anomaly_texts.parquet")
    assert t.column("text").to_pylist() == ["ZeroDivisionError: boom on BBB"]
    assert t.column("strategy").to_pylist() == [1] and t.column("action").to_pylist() == ["DISABLE"]
