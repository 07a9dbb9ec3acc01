"""The backtest's virtual time: latencies from the [venue] table, the md timeline the sim venue
builds, and execution events reaching the core at their delivery times, in time order."""

from __future__ import annotations

import numpy as np
import pytest

from livestack import strategies
from livestack.backtest import load_config, venue_timeline
from livestack.backtest.sim import run
from livestack.core import Core
from livestack.feeds import sim as fsim
from livestack.matching import MatchingEngine
from livestack.schema import DTYPES, ExecType, RecordKind
from tests.unit.core.helpers import INST, RISK
from tests.unit.core.test_flavours import _synthetic


def _md64():
    slots = _synthetic(800)
    return np.frombuffer(np.ascontiguousarray(slots).tobytes(), dtype=np.uint8).reshape(len(slots), -1)[:, :64] \
        .copy().view(fsim.MD_OVERLAY).reshape(-1)


def test_unknown_venue_option_is_a_config_error(tmp_path):
    p = tmp_path / "bt.toml"
    p.write_text("[venue]\nlatency_ns = 5\n")
    with pytest.raises(ValueError, match="latency_ns"):
        load_config(p)


def test_the_md_timeline_is_the_sim_venues():
    md = _md64()
    _, out, eng = venue_timeline(md, [INST], {"md_latency_ns": 1000, "md_jitter_ns": 300, "seed": 3})
    assert (eng == np.maximum.accumulate(md["ts"])).all()
    assert (out["ts"] >= eng + 1000).all() and (out["ts"] <= np.maximum.accumulate(eng + 1300)).all()
    assert (np.diff(out["ts"]) >= 0).all() and (out["ts_event"] == eng).all()
    assert out["seq"].tolist() == list(range(1, len(md) + 1))
    _, again, _ = venue_timeline(md, [INST], {"md_latency_ns": 1000, "md_jitter_ns": 300, "seed": 3})
    assert again.tobytes() == out.tobytes()


def test_exec_events_reach_the_core_at_their_delivery_time_in_time_order():
    md = _md64()
    engine, delivered, eng = venue_timeline(md, [INST], {"order_latency_ns": 40_000, "order_jitter_ns": 0,
                                                         "response_latency_ns": 25_000, "response_jitter_ns": 0,
                                                         "md_latency_ns": 10_000, "md_jitter_ns": 0})
    core = Core([INST], dict(RISK, max_position=100000), strategies.get("mm_cy"))
    out = run(core, delivered, engine=engine, engine_ts=eng)
    ex = np.frombuffer(out["execs"].tobytes(), dtype=DTYPES["EXEC"])
    assert len(ex) > 20 and out["venue_fills"] > 0
    assert (ex["ts"] == ex["ts_event"] + 25_000).all()            # delivered after the response latency
    assert ex["seq"].tolist() == list(range(1, len(ex) + 1))
    orders = out["orders"]
    # every command was sent at the time of an input the core processed: an md delivery or an exec
    assert set(orders["ts"].tolist()) <= set(delivered["ts"].tolist()) | set(ex["ts"].tolist())
    # commands reach the engine after the order latency: no event happens before its command arrives
    first_sent = {}
    for o in orders:
        first_sent.setdefault(int(o["client_order_id"]), int(o["ts"]))
    acks = ex[ex["exec_type"] == ExecType.ACCEPTED]
    assert all(int(a["ts_event"]) >= first_sent[int(a["client_order_id"])] + 40_000 for a in acks)


def test_without_an_engine_the_backtest_matches_with_no_latency():
    md = _md64()
    core = Core([INST], dict(RISK, max_position=100000), strategies.get("mm_cy"))
    out = run(core, md)
    ex = np.frombuffer(out["execs"].tobytes(), dtype=DTYPES["EXEC"])
    assert isinstance(out["engine"], MatchingEngine) and len(ex) > 0
    assert (ex["ts"] == ex["ts_event"]).all()
    assert (ex["kind"] == RecordKind.EXEC).all() and ((ex["exec_id"] > 0) & (ex["exec_id_hi"] == 1)).all()
