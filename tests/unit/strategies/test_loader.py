"""User strategies loaded by reference in all three flavours (scaffolded into a temp dir outside
the package), the same hooks and intents in each, identity, typed params, and errors made visible."""

from __future__ import annotations

import pytest

from livestack.config import Instrument
from livestack.core import Core
from livestack.core import inputs as R
from livestack.schema import ControlCmdType, ExecType, RecordKind, Side
from livestack.schema.dtypes import Anomaly, TradingState
from livestack.strategies import loader
from livestack.strategies.cli import scaffold

INST = Instrument(1, "TEST", "sim", price_decimals=2, qty_decimals=3, tick=10, lot=1)
RISK = {"max_order_qty": 1000, "max_position": 10000, "max_open_orders": 16}


def _script():
    ts = 1_000_000_000
    recs = [R.snapshot(1, ts, [(100000, 50), (99990, 50)], [(100010, 50), (100020, 50)])]
    recs.append([R.md_level(1, ts, int(Side.BUY), 100005 - 5, 70)])
    recs.append([R.exec_(1, ts, ExecType.ACCEPTED, 1, venue_order_id=11)])
    recs.append([R.exec_(1, ts, ExecType.ACCEPTED, 2, venue_order_id=12)])
    recs.append([R.md_level(1, ts, int(Side.SELL), 100010, 0)])     # best ask moves to 100020
    recs.append([R.timer(ts)])
    recs.append([R.md_trade(1, ts, int(Side.SELL), 100000, 5)])
    recs.append([R.timer(ts)])
    recs.append([R.control(ts, int(ControlCmdType.SESSION_STOP))])
    out = []
    for r in recs:
        out += r if isinstance(r, list) else [r]
    arr = R.slots(out)
    for k in range(len(arr)):
        arr[k]["ts"] = ts + k
    return arr


def _run(strategy):
    core = Core([INST], RISK, strategy)
    return core, *core.process_array(_script(), hseq0=1)


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory):
    d = tmp_path_factory.mktemp("user_strategies")
    return {fl: scaffold(f"join_{fl}", fl, d) for fl in ("py", "numba", "cython")}


def test_the_three_scaffolded_flavours_send_identical_orders(scaffolded):
    outs = {}
    for fl, s in scaffolded.items():
        strat = loader.load(s["ref"], {"qty": "0.002"}, INST)
        assert strat.identity["flavour"] == {"py": "python"}.get(fl, fl)
        assert strat.param_names == ("half_spread", "qty", "max_position")
        assert strat.param_defaults == (0, 2, 10)
        core, orders, records = _run(strat)
        outs[fl] = orders
        assert core.counters()["strategy_errors"] == 0
    assert len(outs["py"]) >= 3  # two NEWs, then a REPLACE of the ask, then the stop's cancels
    assert outs["py"].tobytes() == outs["numba"].tobytes() == outs["cython"].tobytes()


def test_identity_names_the_file_its_hash_and_params(scaffolded):
    s = scaffolded["py"]
    strat = loader.load(s["ref"], {"qty": "0.002"}, INST)
    ident = strat.identity
    assert ident["ref"] == s["ref"] and ident["path"] == s["module"]
    assert ident["sha256"] == loader.sha256_file(s["module"]) and ident["params"] == {"qty": "0.002"}


@pytest.mark.parametrize("ref, msg", [
    ("nosuch_pkg_xyz.mod:Cls", "import failed: ModuleNotFoundError"),
    ("/nonexistent/dir/x.py:Cls", "no such file"),
    ("livestack.strategies.sdk:NoSuchClass", "has no attribute 'NoSuchClass'"),
    ("livestack.strategies.sdk:HOOKS", "is not a strategy"),
    ("no_colon_name", "unknown strategy"),
])
def test_a_strategy_that_cannot_load_says_why(ref, msg):
    with pytest.raises(loader.StrategyLoadError, match=msg):
        loader.load(ref, None, INST)


def test_a_bad_param_names_strategy_param_and_type(scaffolded):
    with pytest.raises(loader.StrategyLoadError, match=r"param 'qty'.*not exact"):
        loader.load(scaffolded["numba"]["ref"], {"qty": "0.0001"}, INST)
    with pytest.raises(loader.StrategyLoadError, match=r"param 'max_position': expected a decimal quantity"):
        loader.load(scaffolded["cython"]["ref"], {"max_position": [1]}, INST)


def test_a_broken_cython_strategy_fails_at_load_with_the_compiler_error(tmp_path):
    bad = tmp_path / "broken_cy.pyx"
    bad.write_text("cdef class X:\n    cdef int f(self) nogil:\n        return undefined_name\n")
    with pytest.raises(loader.StrategyLoadError, match="Cython build failed"):
        loader.load(f"{bad}:X", None, INST)


RAISING = '''
from livestack.strategies.sdk import Strategy

class Boom(Strategy):
    on_error = "{policy}"

    def on_book(self, ctx, i):
        b = ctx.inst(i)
        if b.bid_px <= 0:
            return
        if b.n_live == 0 and not getattr(self, "placed", False):
            self.placed = True
            ctx.quote(b.bid_px, b.ask_px, 1)
            return
        raise RuntimeError("deliberate failure in on_book")
'''


@pytest.mark.parametrize("policy", ["disable", "halt", "continue"])
def test_an_exception_is_an_anomaly_and_the_on_error_policy_applies(tmp_path, policy, caplog):
    f = tmp_path / f"boom_{policy}.py"
    f.write_text(RAISING.format(policy=policy))
    strat = loader.load(f"{f}:Boom", None, INST)
    core = Core([INST], RISK, strat)
    ts = 1_000_000_000
    recs = [R.snapshot(1, ts, [(100000, 50)], [(100010, 50)]),
            [R.exec_(1, ts, ExecType.ACCEPTED, 1, venue_order_id=1)],
            [R.exec_(1, ts, ExecType.ACCEPTED, 2, venue_order_id=2)],
            [R.md_level(1, ts, int(Side.BUY), 99990, 5)], [R.md_level(1, ts, int(Side.BUY), 99980, 5)]]
    flat = []
    for r in recs:
        flat += r if isinstance(r, list) else [r]
    with caplog.at_level("ERROR"):
        orders, records = core.process_array(R.slots(flat), hseq0=1)
    an = R.decode(records[records["kind"] == int(RecordKind.ANOMALY)], "ANOMALY")
    errs = an[an["code"] == int(Anomaly.STRATEGY_ERROR)]
    c = core.counters()
    assert "deliberate failure in on_book" in caplog.text
    assert strat.error_info()["first_traceback"].rstrip().endswith("RuntimeError: deliberate failure in on_book")
    if policy == "continue":
        assert len(errs) == 2 and list(errs["detail"]) == [1, 2] and c["strategy_disabled"] == 0
    else:
        assert len(errs) == 1 and errs["detail"][0] == 1
        assert c["cancels"] == 2  # both quotes canceled by the core
    if policy == "disable":
        assert c["strategy_disabled"] == 1 and core.trading_state == int(TradingState.ACTIVE)
    if policy == "halt":
        assert c["strategy_disabled"] == 1
    if policy == "halt":
        assert core.trading_state == int(TradingState.HALTED)


NUMBA_FLOAT = '''
import dataclasses
from livestack.strategies.intents import inst, place
from livestack.strategies.sdk import BUY, GTC, NumbaStrategy

@dataclasses.dataclass
class P:
    scale: float = 0.5
    base: int = 2

class F(NumbaStrategy):
    Params = P

    @staticmethod
    def on_book(w, i, p):
        b = inst(w, i)
        if b.bid_px > 0 and b.n_live == 0:
            place(w, i, BUY, b.bid_px, int(p.base * p.scale * 4.0), GTC, False)
'''


def test_numba_params_are_named_and_floats_read_as_doubles(tmp_path):
    f = tmp_path / "nbfloat.py"
    f.write_text(NUMBA_FLOAT)
    strat = loader.load(f"{f}:F", {"scale": 1.5}, INST)
    core = Core([INST], RISK, strat)
    orders, _ = core.process_array(R.slots(R.snapshot(1, 1, [(100000, 5)], [(100010, 5)])), hseq0=1)
    assert len(orders) == 1 and orders[0]["qty"] == 12 and orders[0]["price"] == 100000
