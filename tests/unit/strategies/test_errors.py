"""Strategy errors are visible in the records: every flavour (a Python exception, a numba
``error(w, code)``, a Cython ``sdk_error(ctx, code)``) makes the call fail the same way: its intents
dropped, ANOMALY STRATEGY_ERROR and next to it an ANOMALY_TEXT record with the message, the
strategy's on_error policy applied."""

from __future__ import annotations

import pytest

from livestack.config import Instrument
from livestack.core import Core
from livestack.core import inputs as R
from livestack.core.strategy import encode_text, exception_text, TEXT_LENGTH
from livestack.records.reader import to_frame
from livestack.schema import ExecType, RecordKind, Side, spec
from livestack.schema.dtypes import Anomaly, ErrorAction, TradingState
from livestack.strategies import loader

INST = Instrument(1, "TEST", "sim", price_decimals=2, qty_decimals=3, tick=10, lot=1)
RISK = {"max_order_qty": 1000, "max_position": 10000, "max_open_orders": 16}
TS = 1_000_000_000

PY = '''
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
        raise ValueError(f"bad book at bid {{b.bid_px}} for {{object()}}")
'''

NUMBA = '''
from livestack.strategies.intents import error, inst, quote
from livestack.strategies.sdk import NumbaStrategy

class Boom(NumbaStrategy):
    on_error = "{policy}"

    @staticmethod
    def on_book(w, i, p):
        b = inst(w, i)
        if b.bid_px <= 0:
            return
        if b.n_live == 0 and b.user[0] == 0:
            b.user[0] = 1
            quote(w, i, b.bid_px, b.ask_px, 1)
            return
        quote(w, i, b.bid_px - 10, b.ask_px + 10, 1)   # dropped: the call fails
        error(w, 42)
'''

CYTHON = '''
from livestack.core.strategy cimport SdkStrategy
from livestack.strategies.cysdk cimport *

cdef class Boom(SdkStrategy):
    cdef int placed

    cdef void on_book(self, ls_strategy_ctx_t *ctx, int64_t i) noexcept nogil:
        cdef ls_ctx_inst_t *b = ls_ctx_inst_view(ctx, i)
        if b.bid_px <= 0:
            return
        if b.n_live == 0 and not self.placed:
            self.placed = 1
            sdk_quote(ctx, i, b.bid_px, b.ask_px, 1)
            return
        sdk_error(ctx, 7)
'''


def _inputs():
    recs = [R.snapshot(1, TS, [(100000, 50)], [(100010, 50)]),
            [R.exec_(1, TS, ExecType.ACCEPTED, 1, venue_order_id=1)],
            [R.exec_(1, TS, ExecType.ACCEPTED, 2, venue_order_id=2)],
            [R.md_level(1, TS, int(Side.BUY), 99990, 5)], [R.md_level(1, TS, int(Side.BUY), 99980, 5)]]
    flat = []
    for r in recs:
        flat += r if isinstance(r, list) else [r]
    return R.slots(flat)


def _texts(records):
    t = R.decode(records[records["kind"] == int(RecordKind.ANOMALY_TEXT)], "ANOMALY_TEXT")
    return to_frame(t, spec.RECORDS_BY_NAME["ANOMALY_TEXT"], {1: {"symbol": "TEST"}})


def _run(tmp_path, source, suffix, policy):
    f = tmp_path / f"boom_{suffix}_{policy}{'.pyx' if suffix == 'cy' else '.py'}"
    f.write_text(source.format(policy=policy) if suffix != "cy" else source)
    strat = loader.load(f"{f}:Boom", None, INST, on_error=policy)
    core = Core([INST], RISK, strat)
    orders, records = core.process_array(_inputs(), hseq0=1)
    an = R.decode(records[records["kind"] == int(RecordKind.ANOMALY)], "ANOMALY")
    return core, orders, an[an["code"] == int(Anomaly.STRATEGY_ERROR)], _texts(records)


@pytest.mark.parametrize("policy", ["disable", "halt", "continue"])
def test_a_python_exception_is_an_anomaly_with_its_message_in_the_records(tmp_path, policy):
    core, orders, errs, texts = _run(tmp_path, PY, "py", policy)
    assert len(texts) == len(errs) == (2 if policy == "continue" else 1)
    first = texts.iloc[0]
    # the message, deterministic: an address in it is masked (a replay writes the same bytes)
    assert first.text == "ValueError: bad book at bid 100000 for <object object at 0x?>"
    assert first.code == "STRATEGY_ERROR" and first.strategy == 0 and first.error_code == 0
    assert first.action == policy.upper() and first.hseq == int(errs["hseq"][0]) and first.symbol == "TEST"
    assert core.trading_state == int(TradingState.HALTED if policy == "halt" else TradingState.ACTIVE)


@pytest.mark.parametrize("policy", ["disable", "halt", "continue"])
def test_a_numba_error_code_goes_through_the_same_on_error_path(tmp_path, policy):
    core, orders, errs, texts = _run(tmp_path, NUMBA, "nb", policy)
    c = core.counters()
    assert list(texts.text) == ["error code 42 in on_book"] * (2 if policy == "continue" else 1)
    assert list(texts.error_code) == [42] * len(texts) and list(errs["detail"]) == list(range(1, len(texts) + 1))
    # the failed calls' intents were dropped: only the first two quotes (and, unless continue, their cancels)
    new = orders[orders["cmd"] == 1]
    assert len(new) == 2 and {int(p) for p in new["price"]} == {100000, 100010}
    if policy == "continue":
        assert c["strategy_disabled"] == 0 and c["cancels"] == 0
    else:
        assert c["strategy_disabled"] == 1 and c["cancels"] == 2
    assert core.trading_state == int(TradingState.HALTED if policy == "halt" else TradingState.ACTIVE)
    assert core.strategy.error_info()["last_error"] == "StrategyError: error code 42 in on_book"


def test_a_cython_strategy_reports_an_error_with_sdk_error(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVESTACK_STRATEGY_CACHE", str(tmp_path / "cache"))
    core, orders, errs, texts = _run(tmp_path, CYTHON, "cy", "disable")
    assert list(texts.text) == ["error code 7 in on_book"] and list(texts.action) == ["DISABLE"]
    assert len(errs) == 1 and core.counters()["strategy_disabled"] == 1 and core.counters()["cancels"] == 2


def test_a_failing_member_of_a_strategy_set_is_named_by_its_index(tmp_path):
    from livestack.strategies.multi import StrategySet

    f = tmp_path / "boom_member.py"
    f.write_text(PY.format(policy="disable"))
    inst2 = Instrument(2, "OTHER", "sim", price_decimals=2, qty_decimals=3, tick=10, lot=1)
    quiet, boom = loader.load("mm_cy", None, INST, name="quiet"), loader.load(f"{f}:Boom", None, inst2, name="boom")
    core = Core([INST, inst2], RISK, StrategySet([(quiet, "disable"), (boom, "halt")], {0: 0, 1: 1}))
    script = _inputs()
    script["instrument"] = 2
    orders, records = core.process_array(script, hseq0=1)
    texts = _texts(records)
    assert list(texts.strategy) == [1] and list(texts.action) == ["HALT"]
    assert texts.text.iloc[0].startswith("ValueError: bad book at bid 100000")
    assert core.trading_state == int(TradingState.HALTED)   # a member's halt halts trading
    info = core.strategy.error_info()
    assert info["errors"] == 1 and set(info["strategies"]) == {"boom"} and "ValueError" in info["first_traceback"]


def test_message_text_is_cut_to_the_record_at_a_character_boundary():
    assert TEXT_LENGTH == spec.ANOMALY_TEXT_LENGTH == 80
    b = encode_text("é" * 100)   # 2 bytes each: 40 fit
    assert b == ("é" * 40).encode() and len(b) == 80
    b = encode_text("a" + "é" * 100)   # 81 bytes would split a character: 79 kept
    assert b.decode() == "a" + "é" * 39
    assert exception_text(KeyError("x at 0x7f3a2b1c9d00")) == "KeyError: 'x at 0x?'"
    assert [m.name for m in ErrorAction] == ["CONTINUE", "DISABLE", "HALT"]


def test_the_same_inputs_give_the_same_error_records_in_a_replay(tmp_path):
    """Bit-exact replay: a fresh core and strategy on the same inputs writes the same ANOMALY_TEXT
    bytes (the exception's memory address is masked)."""
    runs = [_run(tmp_path, PY, "py", "continue") for _ in range(2)]
    a, b = (r[3] for r in runs)
    assert list(a.text) == list(b.text) and len(a) == 2
    f = tmp_path / "boom_py_continue.py"
    outs = []
    for _ in range(2):
        core = Core([INST], RISK, loader.load(f"{f}:Boom", None, INST, on_error="continue"))
        outs.append(core.process_array(_inputs(), hseq0=1)[1])
    assert outs[0].tobytes() == outs[1].tobytes()


def test_a_python_strategy_may_report_a_code_too(tmp_path):
    src = PY.replace('raise ValueError(f"bad book at bid {{b.bid_px}} for {{object()}}")', "ctx.error(9)")
    core, orders, errs, texts = _run(tmp_path, src, "pycode", "disable")
    assert list(texts.text) == ["error code 9 in on_book"] and list(texts.error_code) == [9] and len(errs) == 1
    assert core.counters()["strategy_disabled"] == 1
