"""One contract, three flavours: the market maker in Cython, numba and Python produce identical
outputs on the same inputs (and so does the taker); the context layout is exported completely."""

from __future__ import annotations

import re

import numpy as np
import pytest

from livestack import strategies
from livestack.backtest.sim import run
from livestack.core import Core, ctx
from livestack.core import inputs as R
from livestack.schema import Side

from tests.conftest import ROOT
from tests.unit.core.helpers import INST, RISK


def _synthetic(n=3000, seed=7):
    """A random-walk book with trades, deterministic (numpy RNG only builds the test input)."""
    rng = np.random.default_rng(seed)
    recs = R.snapshot(1, 1, [(100000 - 10 * k, 50) for k in range(10)], [(100010 + 10 * k, 50) for k in range(10)])
    mid = 100005
    ts = 2
    bids = {100000 - 10 * k: 50 for k in range(10)}
    asks = {100010 + 10 * k: 50 for k in range(10)}
    for _ in range(n):
        ts += int(rng.integers(1, 5_000_000))
        mid += int(rng.integers(-2, 3)) * 10
        bid, ask = mid - 5, mid + 5
        if rng.random() < 0.3:
            side = int(rng.integers(1, 3))
            px = ask if side == Side.BUY else bid
            recs.append(R.md_trade(1, ts, side, px, int(rng.integers(1, 400))))
        else:
            msg = []
            for p in sorted(b for b in bids if b > bid):
                del bids[p]
                msg.append((Side.BUY, p, 0))
            for p in sorted(a for a in asks if a < ask):
                del asks[p]
                msg.append((Side.SELL, p, 0))
            bids[bid] = int(rng.integers(1, 90))
            asks[ask] = int(rng.integers(1, 90))
            msg += [(Side.BUY, bid, bids[bid]), (Side.SELL, ask, asks[ask])]
            for k, (sd, p, q) in enumerate(msg):
                recs.append(R.md_level(1, ts, sd, p, q, flags=R.LAST if k == len(msg) - 1 else 0))
    return R.slots(recs)


def _backtest(name, md, params=None):
    core = Core([INST], dict(RISK, max_position=100000), strategies.get(name, params))
    out = run(core, md)
    return out, core


@pytest.mark.parametrize("family,names", [("mm", ["mm_cy", "mm_numba", "mm_py"]),
                                          ("taker", ["taker_cy", "taker_numba", "taker_py"])])
def test_flavours_produce_identical_outputs(family, names):
    md = _synthetic()
    params = {"threshold": 300, "cooldown_ns": 10_000_000} if family == "taker" else None
    outs = [_backtest(n, md, params)[0] for n in names]
    ref = outs[0]
    assert len(ref["orders"]) > 10, "the strategy must actually trade for the comparison to mean something"
    assert ref["venue_fills"] > 0
    for o in outs[1:]:
        assert o["orders"].tobytes() == ref["orders"].tobytes()
        assert o["records"].tobytes() == ref["records"].tobytes()
        assert o["execs"].tobytes() == ref["execs"].tobytes()


def test_registry_names_and_param_validation():
    for name in strategies.NAMES:
        s = strategies.get(name)
        assert (s is None) == (name == "none")
    with pytest.raises(ValueError, match="unknown strategy"):
        strategies.get("nope")
    with pytest.raises(ValueError, match="quote_qtty"):
        strategies.get("mm_cy", {"quote_qtty": 1})
    s = strategies.get("mm_numba", {"quote_qty": 3})
    core = Core([INST], RISK, s, params={"half_spread_ticks": 5})
    assert core.params()["quote_qty"] == 3 and core.params()["half_spread_ticks"] == 5
    with pytest.raises(ValueError, match="nope"):
        Core([INST], RISK, strategies.get("mm_cy"), params={"nope": 1})


def test_numba_cfunc_can_be_passed_directly():
    from livestack.strategies.numba_strategies import mm_kernel
    core = Core([INST], RISK, mm_kernel())
    assert core.strategy.flavour == 2


def test_every_context_word_index_of_the_header_is_exported():
    src = (ROOT / "cext" / "ls_ctx_words.h").read_text()  # (generated from schema/ctx_spec.py)
    names = []
    for blk in re.findall(r"enum \{(.*?)\};", src, re.S):
        names += re.findall(r"^\s*LS_(\w+)", blk, re.M)
    assert names and set(names) <= set(ctx.NAMES)
    # values are sequential within each enum block as the header says
    assert ctx.CTX_WORDS == 0 and ctx.INST_ID == 0 and ctx.ORD_ID == 0 and ctx.INTENT_TYPE == 0
    assert ctx.ORD_WORDS == ctx.ORD_EXEC_IDS + 2 * ctx.ORD_EXEC_RING  # (exec_id, exec_id_hi) pairs


def test_chunked_processing_equals_one_pass_and_64_byte_slots_equal_128():
    md = _synthetic(800)
    whole = Core([INST], RISK, strategies.get("mm_cy"))
    o1, r1 = whole.process_array(md)
    parts = Core([INST], RISK, strategies.get("mm_cy"))
    outs = [parts.process_array(md[k:k + 97], hseq0=1 + k) for k in range(0, len(md), 97)]
    assert np.concatenate([o for o, _ in outs]).tobytes() == o1.tobytes()
    assert np.concatenate([r for _, r in outs]).tobytes() == r1.tobytes()
    from livestack.schema import SLOT64
    md64 = np.ascontiguousarray(md.view(np.uint8).reshape(len(md), 128)[:, :64]).view(SLOT64).reshape(len(md))
    o2, r2 = Core([INST], RISK, strategies.get("mm_cy")).process_array(md64)
    assert o2.tobytes() == o1.tobytes() and r2.tobytes() == r1.tobytes()
