"""Benchmark of the simulated market and the simulated exchange (single process, no rings).

Measures, on this machine:

  model          MarketModel.generate: seeded order-flow events drawn -> 64-byte MD records
  venue+model    SimExchange.service: model events drawn AND applied to the matching book
                 (queue bookkeeping for our resting orders included), with N resting orders
  capture apply  SimExchange.on_market over the decoded real USD-M capture (if the data is present)
  matching       SimExchange.submit + poll: ORDER_CMD in -> EXEC out, a new/replace/cancel mix
                 against the model book, zero latency
  process        the sim venue process (livestack.venues.sim.run_process, pace=False) publishing
                 the model into a real shm md ring that this process drains, for --seconds:
                 md records/s delivered through the ring, nothing dropped (default md_chunk/md_lead)

      [venue process: model -> matching book -> md ring] ==shm 64B slots==> [this process: read,
                                                                             100 us sleeps when empty]

Prints a table and writes bench/results/sim.json.

    .venv/bin/python bench/bench_sim.py [--events N]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from livestack.config import BTCUSDT_USDM, Instrument  # noqa: E402
from livestack.feeds import sim as fsim  # noqa: E402
from livestack.schema import DTYPES, OrdType, OrderCmdType as C, Side, TimeInForce as T, new  # noqa: E402
from livestack.venues import sim  # noqa: E402

INST = Instrument(1, "SIM")
ZERO = {"order_latency_ns": 0, "order_jitter_ns": 0, "md_latency_ns": 0, "md_jitter_ns": 0}


def best(fn, repeat=3):
    """Best of ``repeat`` runs of fn() -> (units, seconds); returns (units, seconds, rate)."""
    runs = [fn() for _ in range(repeat)]
    u, s = max(runs, key=lambda r: r[0] / r[1])
    return u, s, u / s


def bench_model(n):
    def run():
        m = fsim.MarketModel(INST, seed=1)
        t = time.perf_counter()
        recs = m.generate(n)
        dt = time.perf_counter() - t
        run.records = len(recs)
        return n, dt
    u, s, r = best(run)
    return {"events": u, "seconds": s, "events_per_s": r, "records_per_event": run.records / n}


def bench_venue_model(n, resting):
    def run():
        ex = sim.SimExchange([INST], dict(ZERO, pace=False, start_ns=10**18, md_chunk=1024))
        ex.service(0)
        b = ex.books[1]
        bb, ba = max(b.bids), min(b.asks)
        cmds = new("ORDER_CMD", resting, cmd=C.NEW, qty=1, instrument=1, tif=T.GTC, ord_type=OrdType.LIMIT)
        cmds["client_order_id"] = np.arange(1, resting + 1)
        cmds["side"] = np.where(np.arange(resting) % 2, Side.BUY, Side.SELL)
        off = np.arange(resting) // 2 % 10
        cmds["price"] = np.where(cmds["side"] == 1, bb - off, ba + off)
        cmds["ts"] = ex.market_ts
        ex.submit(cmds)
        out = np.zeros(4096, dtype=DTYPES["EXEC"])
        ex.poll(out, ex.market_ts)
        t = time.perf_counter()
        ev = 0
        while ev < n:
            ev += ex.service(0)
            ex.take_md()
            ex.poll(out, ex.market_ts)
        dt = time.perf_counter() - t
        return ex.source.models[0].events, dt
    u, s, r = best(run)
    return {"events": u, "seconds": s, "events_per_s": r, "resting_orders": resting}


def bench_capture():
    path = None
    for cand in [os.environ.get("LIVESTACK_DATA"), str(ROOT.parent / "shared" / "data")]:
        if cand and os.path.exists(os.path.join(cand, "binance", "usdm-btcusdt-20240808.gz")):
            path = os.path.join(cand, "binance", "usdm-btcusdt-20240808.gz")
    if path is None:
        return None
    from livestack.feeds.capture import decode_capture

    recs = decode_capture(path, BTCUSDT_USDM, "usdm")

    def run():
        ex = sim.SimExchange([BTCUSDT_USDM], dict(ZERO, market="none"))
        t = time.perf_counter()
        for i in range(0, len(recs), 4096):
            ex.on_market(recs[i:i + 4096])
        return len(recs), time.perf_counter() - t
    u, s, r = best(run, 2)
    return {"records": u, "seconds": s, "records_per_s": r}


def bench_matching(n):
    def run():
        ex = sim.SimExchange([INST], dict(ZERO, pace=False, start_ns=10**18))
        ex.service(0)
        b = ex.books[1]
        bb, ba = max(b.bids), min(b.asks)
        # per order: NEW (passive), REPLACE (new price), CANCEL; every 10th NEW is an IOC that crosses
        k = n // 3
        cmds = new("ORDER_CMD", 3 * k, instrument=1, qty=1, tif=T.GTC, ord_type=OrdType.LIMIT, side=Side.BUY)
        i = np.arange(k)
        coid = 1 + 2 * i
        cmds["cmd"][0::3] = C.NEW
        cmds["client_order_id"][0::3] = coid
        cmds["price"][0::3] = np.where(i % 10 == 0, ba, bb - (i % 5))
        cmds["tif"][0::3] = np.where(i % 10 == 0, T.IOC, T.GTC)
        cmds["cmd"][1::3] = C.REPLACE
        cmds["client_order_id"][1::3] = coid + 1
        cmds["orig_client_order_id"][1::3] = coid
        cmds["price"][1::3] = bb - 1 - (i % 3)
        cmds["cmd"][2::3] = C.CANCEL
        cmds["client_order_id"][2::3] = coid + 1
        cmds["ts"] = ex.market_ts
        out = np.zeros(4096, dtype=DTYPES["EXEC"])
        t = time.perf_counter()
        nev = 0
        for j in range(0, len(cmds), 255):
            ex.submit(cmds[j:j + 255])
            while True:
                m = ex.poll(out, ex.market_ts)
                nev += m
                if m < len(out):
                    break
        dt = time.perf_counter() - t
        run.events = nev
        return len(cmds), dt
    u, s, r = best(run)
    return {"commands": u, "seconds": s, "commands_per_s": r, "exec_events": run.events}


def bench_process(seconds):
    import multiprocessing as mp

    from livestack.ipc import Ring, new_session_id, remove_session, segment_name
    from livestack.schema import RecordKind
    from livestack.venues import process as vp

    ctx = mp.get_context("spawn")
    session = new_session_id()
    names = {k: segment_name(session, n) for k, n in (("orders", "orders.sim"), ("exec", "exec.sim"), ("md", "md.sim"))}
    rings = [Ring.create(names["orders"], 1 << 10, 64, RecordKind.ORDER_CMD),
             Ring.create(names["exec"], 1 << 10, 128, RecordKind.EXEC),
             Ring.create(names["md"], 1 << 16, 64)]
    stop = ctx.Event()
    counters = ctx.Array("q", len(vp.COUNTERS))
    p = ctx.Process(target=sim.run_process, args=(names["orders"], names["exec"], [INST],
                                                  {"pace": False, "counters": counters}, stop),
                    kwargs={"md_ring": names["md"]})
    p.start()
    buf = np.zeros(8192, dtype=fsim.MD_OVERLAY)
    got = 0
    try:
        while rings[2].read(buf) == 0 and p.is_alive():  # wait for the first records
            time.sleep(0.001)
        t = time.perf_counter()
        end = t + seconds
        while time.perf_counter() < end:
            n = rings[2].read(buf)
            if n:
                got += n
            else:
                time.sleep(0.0001)
        dt = time.perf_counter() - t
    finally:
        stop.set()
        p.join(20)
        if p.is_alive():
            p.kill()
        c = vp.VenueCounters(counters).as_dict()
        for r in rings:
            r.close()
        remove_session(session)
    return {"records": got, "seconds": dt, "records_per_s": got / dt, "md_overflow": c["md_overflow"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--seconds", type=float, default=3.0, help="duration of the process measurement")
    args = ap.parse_args(argv)
    res = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count()},
        "model": bench_model(args.events),
        "venue_model": bench_venue_model(args.events, 0),
        "venue_model_resting": bench_venue_model(args.events, 100),
        "capture_apply": bench_capture(),
        "matching": bench_matching(args.events // 2),
        "process": bench_process(args.seconds),
        "model_impl": type(fsim.MarketModel(INST)).__name__,
    }
    print(f"bench_sim: simulated market and exchange, one process, best of 3, Python {res['machine']['python']}, "
          f"{res['machine']['cores']} cores")
    print(f"{'what':<48}{'units':>12}{'seconds':>10}{'rate/s':>14}")
    rows = [
        ("model: events drawn -> MD records", res["model"]["events"], res["model"]["seconds"], res["model"]["events_per_s"]),
        ("venue: model events drawn + applied (0 resting)", res["venue_model"]["events"], res["venue_model"]["seconds"],
         res["venue_model"]["events_per_s"]),
        ("venue: model events drawn + applied (100 rest.)", res["venue_model_resting"]["events"],
         res["venue_model_resting"]["seconds"], res["venue_model_resting"]["events_per_s"]),
    ]
    if res["capture_apply"]:
        c = res["capture_apply"]
        rows.append(("venue: USD-M capture records applied", c["records"], c["seconds"], c["records_per_s"]))
    m = res["matching"]
    rows.append(("matching: commands in -> EXEC out (new/repl/cxl)", m["commands"], m["seconds"], m["commands_per_s"]))
    pr = res["process"]
    rows.append(("process: md records through the shm ring", pr["records"], pr["seconds"], pr["records_per_s"]))
    for name, u, s, r in rows:
        print(f"{name:<48}{u:>12,}{s:>10.3f}{r:>14,.0f}")
    print(f"model: {res['model']['records_per_event']:.2f} MD records per event; matching: "
          f"{m['exec_events'] / m['commands']:.2f} EXEC records per command; model implementation "
          f"{res['model_impl']}; process run dropped {pr['md_overflow']} md records")
    out = ROOT / "bench" / "results" / "sim.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
