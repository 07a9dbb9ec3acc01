"""Per-strategy figures from the telemetry block: the harness registers the strategies and which one
owns each instrument; the block counts orders, fills and denials per instrument and errors per
strategy; ``per_strategy`` sums a strategy's instruments, and ``top`` and ``/metrics`` show them."""

import io

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from livestack.ipc import segment_name
from livestack.strategies.telemetry import per_strategy, strategy_map
from livestack.telemetry import top
from livestack.telemetry.block import TelemetryBlock
from livestack.telemetry.exporter import exposition


@pytest.fixture
def blk(session):
    b = TelemetryBlock.create(segment_name(session, "telemetry"))
    for slot, (iid, sym, pd, qd) in enumerate([(1, "BTCUSDT", 2, 3), (2, "ETHUSDT", 2, 4), (3, "SOLUSDT", 3, 1)]):
        b.register_instrument(slot, iid, sym, pd, qd)
    b.register_strategy(0, "alpha")
    b.register_strategy(1, "beta")
    b.set_instrument_strategy(0, 0)
    b.set_instrument_strategy(1, 0)
    b.set_instrument_strategy(2, 1)
    # alpha: BTC realized 10.00 USDT (1000 cents x 1.000 qty scale), ETH unrealized -2.50
    b.set_position(0, 2000, 0, 1000 * 1000, 0)
    b.set_position(1, -5000, 0, 0, -250 * 10000)
    b.set_position(2, 30, 0, 5 * 1000 * 10, 0)
    for slot, which, n in ((0, "orders_sent", 7), (1, "orders_sent", 3), (0, "fills", 2), (1, "denials", 4),
                           (2, "orders_sent", 1)):
        b.instrument_count(slot, which, n)
    b.strategy_error(1, stopped=False)
    b.strategy_error(1, stopped=True)
    yield b
    b.close()


def test_per_strategy_sums_its_instruments_and_keeps_its_errors(blk):
    rows = {r["name"]: r for r in per_strategy(blk.positions(), blk.strategies())}
    a, b = rows["alpha"], rows["beta"]
    assert a["instruments"] == ["BTCUSDT", "ETHUSDT"] and b["instruments"] == ["SOLUSDT"]
    assert (a["orders_sent"], a["fills"], a["denials"], a["errors"], a["stopped"]) == (10, 2, 4, 0, False)
    assert (b["orders_sent"], b["errors"], b["stopped"]) == (1, 2, True)
    assert a["realized_pnl"] == pytest.approx(10.0) and a["unrealized_pnl"] == pytest.approx(-2.5)
    assert a["pnl"] == pytest.approx(7.5) and b["realized_pnl"] == pytest.approx(5.0)
    assert a["positions"] == {"BTCUSDT": 2.0, "ETHUSDT": -0.5} and b["positions"] == {"SOLUSDT": 3.0}
    assert [p["strategy"] for p in blk.positions()] == [0, 0, 1]


def test_metrics_have_series_per_strategy_beside_the_per_instrument_ones(blk):
    s = {(x.name, tuple(sorted(x.labels.items()))): x.value
         for f in text_string_to_metric_families(exposition(blk)) for x in f.samples}
    assert s[("livestack_strategy_orders_sent_total", (("strategy", "alpha"),))] == 10
    assert s[("livestack_strategy_errors_total", (("strategy", "beta"),))] == 2
    assert s[("livestack_strategy_errors_total", (("strategy", "alpha"),))] == 0
    assert s[("livestack_strategy_stopped", (("strategy", "beta"),))] == 1
    assert s[("livestack_strategy_denials_total", (("strategy", "alpha"),))] == 4
    assert s[("livestack_strategy_pnl", (("strategy", "alpha"),))] == pytest.approx(7.5)
    assert s[("livestack_strategy_position", (("instrument", "ETHUSDT"), ("strategy", "alpha")))] == -0.5
    assert s[("livestack_position", (("instrument", "ETHUSDT"),))] == -0.5


def test_top_shows_a_row_per_strategy_with_its_errors(blk):
    out = io.StringIO()
    top.run(blk, interval=0.01, once=True, console=Console(file=out, width=200, color_system=None))
    lines = out.getvalue().splitlines()
    alpha = next(ln for ln in lines if "│ alpha " in ln)
    beta = next(ln for ln in lines if "│ beta " in ln)
    assert "BTCUSDT ETHUSDT" in alpha and "10" in alpha and "10.00" in alpha
    assert "2 stopped" in beta and "SOLUSDT" in beta


def test_a_block_without_strategies_shows_no_strategy_figures(session):
    with TelemetryBlock.create(segment_name(session, "telemetry")) as b:
        b.register_instrument(0, 1, "BTCUSDT", 2, 3)
        assert b.strategies() == [] and b.positions()[0]["strategy"] == -1
        assert "livestack_strategy_" not in exposition(b)


def test_the_session_file_strategy_attribute_maps_strategies_to_instruments():
    syms = ["AAA", "BBB"]
    assert strategy_map('{"ref": "mm_cy"}', syms) == [("mm_cy", ["AAA", "BBB"])]   # one owns all
    assert strategy_map('{"ref": "/x/q.py:Quoter", "name": "Quoter", "instruments": ["AAA", "BBB"]}', syms) == \
        [("Quoter", ["AAA", "BBB"])]
    assert strategy_map('[{"ref": "/x/q.py:Q", "name": "a", "instruments": ["AAA"]},'
                        ' {"ref": "mm_cy", "instruments": ["BBB"]}]', syms) == [("a", ["AAA"]), ("mm_cy", ["BBB"])]
    assert strategy_map('{"ref": "none"}', syms) == [] and strategy_map("", syms) == []


def test_the_harness_registers_one_strategy_as_owner_of_every_instrument_or_each_member_of_a_set(session):
    from livestack.config import Instrument
    from livestack.core import Core
    from livestack.strategies import loader
    from livestack.strategies.multi import StrategySet
    from livestack.strategies.telemetry import register_strategies

    insts = [Instrument(k, f"S{k}", "sim", price_decimals=2, qty_decimals=3, tick=1, lot=1) for k in (1, 2, 3)]
    risk = {"max_order_qty": 10, "max_position": 100}
    one = Core(insts, risk, loader.load("mm_cy", None, insts[0]))
    two = Core(insts, risk, StrategySet([(loader.load("mm_cy", None, insts[0], name="a"), "disable"),
                                         (loader.load("taker_cy", None, insts[1], name="b"), "halt")], {0: 0, 2: 1}))
    for core, names, owners in ((one, ["mm_cy"], [0, 0, 0]), (two, ["a", "b"], [0, -1, 1])):
        with TelemetryBlock.create(segment_name(session, "telemetry")) as b:
            for k, i in enumerate(insts):
                b.register_instrument(k, i.id, i.symbol, 2, 3)
            register_strategies(b, core)
            assert [s["name"] for s in b.strategies()] == names
            assert [p["strategy"] for p in b.positions()] == owners
