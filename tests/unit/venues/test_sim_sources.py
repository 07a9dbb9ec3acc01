"""The simulated venue's market sources and market-data timing, without files or rings:
the capture source over synthetic decoded records, md latency restamping, paced hand-out."""

from __future__ import annotations

import numpy as np
import pytest

from livestack.config import Instrument
from livestack.feeds import sim as fsim
from livestack.schema import RecordKind
from livestack.venues import sim

INST = Instrument(1, "SIM")


def fake_capture(n_msgs=50, per_msg=3, t0=1_700_000_000_000_000_000, gap=1_000_000):
    """n_msgs messages of per_msg MD_LEVEL records each, the last LAST_IN_MSG, 1 ms apart."""
    recs = fsim.md_records(n_msgs * per_msg)
    recs["kind"] = RecordKind.MD_LEVEL
    recs["version"] = 1
    recs["instrument"] = 1
    recs["ts"] = t0 + np.repeat(np.arange(n_msgs) * gap, per_msg)
    recs["ts_event"] = recs["ts"] - 5
    recs["a"] = 10_000 + np.arange(len(recs))
    recs["b"] = 1
    recs["d"] = 1
    recs["flags"][per_msg - 1::per_msg] = fsim.F_LAST
    return recs


@pytest.fixture
def capture_source(monkeypatch):
    from livestack.feeds import capture

    recs = fake_capture()
    monkeypatch.setattr(capture, "decode_capture", lambda path, inst, market: recs.copy())

    def make(**kw):
        return sim.CaptureSource("fake.gz", INST, "usdm", t0_ns=10**18, **kw)
    return make, recs


def test_capture_source_retimes_to_t0_and_never_splits_a_message(capture_source):
    make, recs = capture_source
    src = make()
    out = src.generate(2)  # ~4 records an event, extended to the end of the message: 9
    assert len(out) == 9 and out["flags"][-1] & fsim.F_LAST
    assert out["ts"][0] == 10**18 and (out["ts_event"] == out["ts"]).all()
    rest = src.generate(10**6)
    assert len(out) + len(rest) == len(recs) and src.done
    assert (rest["a"] == recs["a"][9:]).all()


def test_capture_source_hands_out_by_time_and_speed_scales_it(capture_source):
    make, _ = capture_source
    src = make()
    out = src.generate(10**6, until_ns=10**18 + 10_000_000)  # messages at 0..10 ms
    assert len(out) == 11 * 3
    fast = make(speed=2.0)
    out = fast.generate(10**6, until_ns=10**18 + 10_000_000)  # twice as fast: 0..20 ms of capture
    assert len(out) == 21 * 3


def test_capture_source_loops_when_asked(capture_source):
    make, recs = capture_source
    src = make(loop=True)
    first = src.generate(10**6)
    second = src.generate(10**6)
    assert len(first) == len(second) == len(recs) and not src.done
    assert second["ts"][0] > first["ts"][-1]


def test_capture_market_through_the_exchange(capture_source, monkeypatch):
    make, recs = capture_source
    ex = sim.SimExchange([INST], {"market": "capture", "capture_path": "fake.gz", "pace": False,
                                  "md_latency_ns": 100, "md_jitter_ns": 0})
    total = 0
    while not ex.source.done:
        ex.service(0)
        got = ex.take_md()
        total += 0 if got is None else len(got)
    assert total == len(recs)
    assert len(ex.books[1].bids) == len(recs)
    assert ex.now_ns() >= ex.market_ts  # replay over: everything queued is due


def test_md_is_restamped_with_latency_and_jitter_and_stays_monotonic():
    ex = sim.SimExchange([INST], {"market": "model", "pace": False, "start_ns": 10**18,
                                  "md_latency_ns": 20_000, "md_jitter_ns": 5_000, "seed": 4})
    ex.service(0)
    md = ex.take_md()
    lat = md["ts"] - md["ts_event"]
    assert (lat >= 20_000).all() and (np.diff(md["ts"]) >= 0).all()
    assert lat.min() < 25_001 and len(np.unique(lat)) > 10


def test_paced_venue_holds_market_data_until_its_latency_has_passed():
    ex = sim.SimExchange([INST], {"market": "model", "pace": True, "md_latency_ns": 10**9, "md_jitter_ns": 0})
    now = ex.now_ns() + 50_000_000  # 50 ms of market
    drawn = ex.service(now)
    assert drawn > 0
    assert ex.take_md(now) is None  # a second of md latency: nothing is due yet
    got = ex.take_md(now + 10**9)
    assert got is not None and len(got) == drawn
    assert (got["ts"] == got["ts_event"] + 10**9).all()


def test_bad_options_are_errors():
    with pytest.raises(ValueError, match="market"):
        sim.SimExchange([INST], {"market": "nasdaq"})
    with pytest.raises(ValueError, match="capture_path"):
        sim.SimExchange([INST], {"market": "capture"})
    with pytest.raises(ValueError, match=">= 0"):
        sim.SimExchange([INST], {"market": "none", "order_latency_ns": -1})
