"""Backtest and simulated venue process give the same fills on the same capture.

The same first ~40k records (``LIVESTACK_IDENTITY_RECORDS``) of the real Binance USD-M capture, the
same strategy (the market maker; the taker) and the same latency settings (order 50 us + jitter, md
20 us + jitter, seeded; or slower) run twice:

* ``livestack backtest`` in one process (``run_backtest``), and
* the simulated venue as a real process on virtual time (``virtual_time=True``: the capture's
  timestamps, not the wall clock) over real shared-memory rings, with a real ``Harness`` (the same
  Cython core) driven in this process.

Allowed outcome: the execution events the core received and the FILL records it produced are
identical field by field (except the ring sequence numbers the harness restamps), and there are
fills to compare.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time

import numpy as np
import pytest

from livestack.backtest import build_core, run_backtest
from livestack.config import BTCUSDT_USDM
from livestack.harness.loop import Harness
from livestack.ipc import Ring, segment_name
from livestack.ipc.stopflag import StopFlag
from livestack.schema import DTYPES, SLOT128, RecordFlag, RecordKind
from livestack.venues import process as vp
from livestack.venues import sim

CTX = mp.get_context("spawn")
#: records of the capture compared (LIVESTACK_IDENTITY_RECORDS=0: the whole capture, ~1 min)
LIMIT = int(os.environ.get("LIVESTACK_IDENTITY_RECORDS", 40_000)) or 10**9
LATENCY = {"order_latency_ns": 50_000, "order_jitter_ns": 10_000, "md_latency_ns": 20_000,
           "md_jitter_ns": 5_000, "seed": 7}
SLOW = {"order_latency_ns": 200_000, "response_latency_ns": 80_000, "seed": 9}  # default jitters
CASES = [("mm_cy", LATENCY, 30),     # passive quotes: queue position, partial fills, replaces
         ("taker_cy", SLOW, 5)]      # IOC orders taking liquidity
EXEC_FIELDS = [f for f in DTYPES["EXEC"].names if f not in ("seq", "flags") and not f.startswith("_")]
FILL_FIELDS = [f for f in DTYPES["FILL"].names if f not in ("seq", "flags") and not f.startswith("_")]


@pytest.fixture(scope="module")
def capture(datadir):
    path = datadir / "binance" / "usdm-btcusdt-20240808.gz"
    if not path.exists():
        pytest.skip(f"{path} missing")
    return str(path)


def _of_kind(slots, kind, dtype):
    recs = slots[slots["kind"] == int(kind)] if len(slots) else slots
    return np.frombuffer(recs.tobytes(), dtype=dtype) if len(recs) else np.zeros(0, dtype=dtype)


def _rows(recs, fields):
    return [tuple(r) for r in recs[fields].tolist()]


@pytest.mark.parametrize("strategy,latency,min_fills", CASES, ids=[c[0] for c in CASES])
def test_backtest_and_virtual_time_venue_process_give_identical_fills(capture, session, procs, strategy, latency,
                                                                      min_fills):
    from livestack.feeds.capture import decode_capture

    md = decode_capture(capture, BTCUSDT_USDM, "usdm")
    md = md[:sim.capture_cut(md, LIMIT)]
    cfg = {"venue": latency}

    # 1. the backtest
    bt = run_backtest(md, strategy, BTCUSDT_USDM, cfg)
    bt_execs = _of_kind(bt["execs"], RecordKind.EXEC, DTYPES["EXEC"])
    bt_fills = _of_kind(bt["records"], RecordKind.FILL, DTYPES["FILL"])

    # 2. the venue process on virtual time + a harness over real rings
    mk = lambda n, cap, slot, kind=0: Ring.create(segment_name(session, n), cap, slot, kind)  # noqa: E731
    rings = dict(md=mk("md.sim", 1 << 14, 64), exec=mk("exec.sim", 1 << 12, 128, RecordKind.EXEC),
                 cmd=mk("cmd", 64, 128, RecordKind.CONTROL_CMD),
                 orders=mk("orders.sim", 1 << 12, 64, RecordKind.ORDER_CMD),
                 records=mk("records", 1 << 16, 128), reply=mk("reply", 64, 128, RecordKind.CONTROL_REPLY),
                 events=mk("events", 1 << 14, 128))
    core = build_core(strategy, BTCUSDT_USDM, cfg)
    harness = Harness(core, [rings["md"]], rings["exec"], rings["cmd"], rings["orders"], rings["records"],
                      rings["reply"], rings["events"], timer_interval_ns=10**15)  # no wall-clock timer ticks
    stop = StopFlag(CTX)
    counters = CTX.Array("q", len(vp.COUNTERS))
    opts = dict(latency, market="capture", capture_path=capture, capture_market="usdm", capture_limit=LIMIT,
                virtual_time=True, start_ns=int(md["ts"][0]), counters=counters, harness_pid=os.getpid(),
                idle_max_sleep_ns=100_000)
    p = CTX.Process(target=sim.run_process,
                    args=(segment_name(session, "orders.sim"), segment_name(session, "exec.sim"), [BTCUSDT_USDM],
                          opts, stop), kwargs={"md_ring": segment_name(session, "md.sim")})
    procs.append(p)
    p.start()
    got = []
    buf = np.zeros(4096, dtype=SLOT128)
    ev_buf = np.zeros(4096, dtype=DTYPES["EXEC"])

    def drain():
        n = rings["records"].read(buf)
        if n:
            got.append(buf[:n].copy())
        while rings["events"].read(ev_buf):
            pass
        return n

    deadline = time.monotonic() + 300
    try:
        while not vp.VenueCounters(counters)["replay_done"]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"virtual-time replay not done: venue counters {vp.VenueCounters(counters).as_dict()}")
            if not p.is_alive():
                raise AssertionError(f"venue process died (exit {p.exitcode})")
            if harness.step() == 0 and drain() == 0:
                time.sleep(0.00005)
        while harness.step() or drain():
            pass
        at_end = vp.VenueCounters(counters).as_dict()
    finally:
        stop.set()
        p.join(10)
    assert p.exitcode == 0
    slots = np.concatenate(got)
    journal = (slots["flags"] & int(RecordFlag.JOURNAL)) != 0  # the inputs the core processed
    journaled = slots[journal]
    vp_execs = _of_kind(journaled, RecordKind.EXEC, DTYPES["EXEC"])
    vp_fills = _of_kind(slots[~journal], RecordKind.FILL, DTYPES["FILL"])

    assert at_end["md_records"] == len(md) and at_end["md_overflow"] == 0
    assert len(bt_fills) >= min_fills, "the strategy must trade for the comparison to mean something"
    print(f"compared {len(md):,} md records: {len(bt_execs):,} exec events, {len(bt_fills):,} fills")
    assert _rows(vp_execs, EXEC_FIELDS) == _rows(bt_execs, EXEC_FIELDS)
    assert _rows(vp_fills, FILL_FIELDS) == _rows(bt_fills, FILL_FIELDS)
    assert harness.counters()["inputs"] == bt["inputs"]
