"""[[strategies]]: several strategies in one core, each with its own instruments, params, risk
and error policy; an instrument belongs to at most one."""

from __future__ import annotations

import pytest

from livestack.core import Core
from livestack.core import inputs as R
from livestack.node import config
from livestack.schema import RecordKind, Side
from livestack.schema.dtypes import Anomaly

INSTS = [{"id": 1, "symbol": "AAA", "venue": "sim", "price_decimals": 2, "qty_decimals": 3, "tick": 10, "lot": 1},
         {"id": 2, "symbol": "BBB", "venue": "sim", "price_decimals": 2, "qty_decimals": 3, "tick": 10, "lot": 1}]

JOIN = '''
import dataclasses
from livestack.strategies.sdk import Strategy, Qty

@dataclasses.dataclass
class P:
    qty: Qty = "0.001"
    boom: bool = False

class Join(Strategy):
    Params = P

    def on_book(self, ctx, i):
        b = ctx.inst(i)
        if self.params.boom and b.n_live > 0:
            raise RuntimeError("boom")
        if b.bid_px > 0:
            ctx.quote(b.bid_px, b.ask_px, self.params.qty)
            ctx.place(Side.BUY, b.bid_px, 1, inst=1 - i)   # someone else's instrument: dropped

from livestack.schema import Side
'''


def _cfg(tmp_path, **over):
    f = tmp_path / "join.py"
    f.write_text(JOIN)
    raw = {"instruments": INSTS,
           "strategies": [{"name": f"{f}:Join", "instruments": ["AAA"], "params": {"qty": "0.002"},
                           "risk": {"max_order_qty": 5}},
                          {"name": f"{f}:Join", "instruments": ["BBB"], "params": {"qty": "0.003", "boom": True}}]}
    raw.update(over)
    return config.validate(raw)


def test_each_strategy_trades_only_its_instruments_with_its_params_and_risk(tmp_path):
    from livestack.harness.process import build_core

    cfg = _cfg(tmp_path)
    assert cfg["risk"]["symbols"]["AAA"]["max_order_qty"] == 5
    core = build_core(cfg)
    recs = (R.snapshot(1, 1, [(100000, 5)], [(100010, 5)]) + R.snapshot(2, 1, [(200000, 5)], [(200010, 5)]))
    orders, records = core.process_array(R.slots(recs), hseq0=1)
    got = {(int(o["instrument"]), int(o["side"]), int(o["qty"])) for o in orders}
    assert got == {(1, int(Side.BUY), 2), (1, int(Side.SELL), 2), (2, int(Side.BUY), 3), (2, int(Side.SELL), 3)}
    assert core.strategy.foreign == 2   # the cross-instrument NEWs
    # BBB's strategy raises on its next book event: only it is disabled, AAA's keeps quoting
    orders, records = core.process_array(R.slots([R.md_level(2, 2, int(Side.BUY), 199990, 5),
                                                  R.md_level(1, 2, int(Side.BUY), 99990, 5)]), hseq0=100)
    an = R.decode(records[records["kind"] == int(RecordKind.ANOMALY)], "ANOMALY")
    assert list(an["code"]) == [int(Anomaly.STRATEGY_ERROR)] and int(an["instrument"][0]) == 2
    assert [m["disabled"] for m in core.strategy.member_state()] == [False, True]
    assert core.counters()["strategy_disabled"] == 0   # the set itself runs on


def test_an_instrument_belongs_to_one_strategy(tmp_path):
    f = tmp_path / "join.py"
    f.write_text(JOIN)
    with pytest.raises(config.ConfigError, match="instrument 'AAA' already belongs to"):
        config.validate({"instruments": INSTS, "strategies": [
            {"name": f"{f}:Join", "instruments": ["AAA"]}, {"name": f"{f}:Join", "instruments": ["AAA", "BBB"]}]})
    with pytest.raises(config.ConfigError, match="unknown instrument 'CCC'"):
        config.validate({"instruments": INSTS, "strategies": [{"name": f"{f}:Join", "instruments": ["CCC"]}]})
    with pytest.raises(config.ConfigError, match="not both"):
        config.validate({"instruments": INSTS, "strategy": {"name": "mm_cy"},
                         "strategies": [{"name": f"{f}:Join", "instruments": ["AAA"]}]})
    with pytest.raises(config.ConfigError, match=r"\[\[strategies\]\]\[0\]: strategy .*param 'qty'"):
        config.validate({"instruments": INSTS, "strategies": [
            {"name": f"{f}:Join", "instruments": ["AAA"], "params": {"qty": "0.0001"}}]})
