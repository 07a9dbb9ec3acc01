"""Execution Record Writer benchmarks: sustained records/s from the records ring into HDF5 with zero
loss, against the per-record high-level h5py append the writer avoids.

    topology (sustained):  producer process ──records ring (128-byte slots)──▶ writer process ──▶ .h5
                           (mixed kinds, 45% journaled   (shm, 2^20 slots)    (run_process: view →
                            inputs, seq 1..N)                                   route → H5Dwrite →
                                                                                flush → release)
        rate = N / (time from the first record committed to the last record flushed and released);
        then the file is opened and every seq 1..N is checked present exactly once (zero loss).
    drain:     the ring is filled first, then the writer process starts: its rate from first to last release.
    in-process: RecordWriter.write of 65,536-slot arrays + flush (no ring, no second process).
    high-level: h5py ``ds.resize(n+1); ds[n] = rec`` per record (SWMR file), and batched low-level
                writes of 100 records, for comparison.

    python bench/bench_writer.py [--records 4000000] [--dir /tmp] [--repeat 3]

Prints a table and writes bench/results/writer.json.
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

import h5py
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

from livestack.ipc import Ring, new_session_id, remove_session, segment_name  # noqa: E402
from livestack.records import open_session  # noqa: E402
from livestack.records import writer as wmod  # noqa: E402
from livestack.schema import DTYPES, SLOT128, RecordFlag, RecordKind  # noqa: E402

#: record mix by seq % len: (kind, journaled). Inputs (journaled) 9 of 20, core outputs the rest.
MIX = [
    (RecordKind.MD_LEVEL, True), (RecordKind.MD_LEVEL, True), (RecordKind.MD_LEVEL, True),
    (RecordKind.MD_TRADE, True), (RecordKind.EXEC, True), (RecordKind.TIMER, True),
    (RecordKind.ORDER_CMD, False), (RecordKind.ORDER_STATE, False), (RecordKind.ORDER_STATE, False),
    (RecordKind.FILL, False), (RecordKind.POSITION, False), (RecordKind.DENIAL, False),
    (RecordKind.TRADING_STATE, False), (RecordKind.TELEMETRY, False), (RecordKind.ANOMALY, False),
    (RecordKind.MD_LEVEL, True), (RecordKind.MD_BBO, True), (RecordKind.CONTROL_REPLY, False),
    (RecordKind.EXEC, True), (RecordKind.ORDER_STATE, False),
]
KIND_OF = np.array([int(k) for k, _ in MIX], dtype=np.uint16)
FLAGS_OF = np.array([int(RecordFlag.JOURNAL) if j else 0 for _, j in MIX], dtype=np.uint8)


def fill(view: np.ndarray, first: int) -> None:
    k = len(view)
    seqs = np.arange(first, first + k, dtype=np.uint64)
    ph = (seqs % np.uint64(len(MIX))).astype(np.intp)
    view["kind"] = KIND_OF[ph]
    view["version"] = 1
    view["flags"] = FLAGS_OF[ph]
    view["instrument"] = 1
    view["seq"] = seqs
    view["ts"] = seqs.astype(np.int64)


def produce(ring_name: str, total: int, cpu: int | None) -> None:
    from livestack.ipc.wait import Backoff

    common.pin(cpu)
    ring = Ring.attach(ring_name, slot_size=128, timeout=10)
    b = Backoff("backoff")
    seq = 1
    while seq <= total:
        v = ring.claim(min(8192, total - seq + 1))
        k = len(v)
        if k == 0:
            b.idle()
            continue
        b.reset()
        fill(v, seq)
        del v
        ring.commit(k)
        seq += k
    ring.close()


def writer_proc(ring_name, path, stop, cpu):
    common.pin(cpu)
    wmod.run_process(ring_name, path, {"session": "bench"}, {"quiet": True}, stop)


def _check(path: str, total: int) -> dict:
    with open_session(path) as s:
        rep = s.seq_report()
    assert rep["contiguous"] and rep["records"] == total, f"LOSS: {rep}"
    return rep


def ring_to_file(total: int, d: str, prefill: bool, cpus) -> dict:
    sid = new_session_id()
    path = os.path.join(d, f"w-{sid}.h5")
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    try:
        ring = Ring.create(segment_name(sid, "records"), 1 << 20 if not prefill else max(1 << 10, 1 << (total - 1).bit_length()),
                           128)
        prod = ctx.Process(target=produce, args=(ring.name, total, cpus[0]))
        w = ctx.Process(target=writer_proc, args=(ring.name, path, stop, cpus[1]))
        if prefill:
            prod.start()
            prod.join(timeout=600)
            w.start()
            while ring.head == 0:
                time.sleep(0.0005)
            t0 = time.perf_counter()
            first = ring.head
        else:
            w.start()
            while not os.path.exists(path):
                time.sleep(0.001)
            time.sleep(0.3)  # the writer has opened the file and waits on the ring
            prod.start()
            while ring.tail == 0:
                time.sleep(0.0002)
            t0 = time.perf_counter()
            first = 0
        while ring.head < total:
            time.sleep(0.0005)
            if not w.is_alive():
                raise RuntimeError(f"writer died ({w.exitcode})")
        t1 = time.perf_counter()
        stop.set()
        w.join(timeout=120)
        prod.join(timeout=120)
        ring.close()
        size = os.path.getsize(path)
        rep = _check(path, total)
        n = total - first
        return {"records": n, "seconds": t1 - t0, "records_per_s": n / (t1 - t0), "file_bytes": size,
                "mb_per_s": size * n / total / (t1 - t0) / 1e6, "seq_check": rep}
    finally:
        remove_session(sid)
        for p in (path, path + ".lock"):
            if os.path.exists(p):
                os.remove(p)


def in_process(total: int, d: str) -> dict:
    path = os.path.join(d, "inproc.h5")
    arr = np.zeros(65536, SLOT128)
    w = wmod.RecordWriter(path, {}, {"quiet": True})
    t0 = time.perf_counter()
    seq = 1
    while seq <= total:
        k = min(len(arr), total - seq + 1)
        fill(arr[:k], seq)
        w.write(arr[:k])
        w.flush()
        seq += k
    t1 = time.perf_counter()
    w.close()
    _check(path, total)
    os.remove(path)
    return {"records": total, "seconds": t1 - t0, "records_per_s": total / (t1 - t0)}


def high_level(n: int, d: str) -> dict:
    """Per-record ``resize + ds[i] = rec`` on a SWMR file (what the writer does NOT do)."""
    path = os.path.join(d, "hl.h5")
    rec = np.zeros(1, DTYPES["ORDER_STATE"])
    with h5py.File(path, "w", libver="latest") as f:
        ds = f.create_dataset("order_state", shape=(0,), maxshape=(None,), dtype=rec.dtype, chunks=(4096,))
        f.swmr_mode = True
        t0 = time.perf_counter()
        for i in range(n):
            rec["seq"] = i + 1
            ds.resize((i + 1,))
            ds[i] = rec[0]
        f.flush()
        t1 = time.perf_counter()
    os.remove(path)
    return {"records": n, "seconds": t1 - t0, "records_per_s": n / (t1 - t0)}


def low_level_batches(n: int, batch: int, d: str) -> dict:
    """The writer's own append (set_extent + hyperslab H5Dwrite) in batches of ``batch`` records."""
    path = os.path.join(d, "ll.h5")
    arr = np.zeros(batch, DTYPES["ORDER_STATE"])
    with h5py.File(path, "w", libver="latest") as f:
        ds = f.create_dataset("order_state", shape=(0,), maxshape=(None,), dtype=arr.dtype, chunks=(4096,))
        f.swmr_mode = True
        dsid, mtype = ds.id, ds.id.get_type()
        t0 = time.perf_counter()
        n0 = 0
        while n0 < n:
            arr["seq"] = np.arange(n0 + 1, n0 + batch + 1)
            dsid.set_extent((n0 + batch,))
            fs = dsid.get_space()
            fs.select_hyperslab((n0,), (batch,))
            dsid.write(h5py.h5s.create_simple((batch,)), fs, arr, mtype=mtype)
            n0 += batch
        f.flush()
        t1 = time.perf_counter()
    os.remove(path)
    return {"records": n0, "seconds": t1 - t0, "records_per_s": n0 / (t1 - t0)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=4_000_000)
    ap.add_argument("--dir", default=None, help="where the HDF5 files go (default: a temp dir under /tmp)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cpus", default="", help="producer,writer CPUs (default: unpinned)")
    ap.add_argument("--highlevel-records", type=int, default=20_000)
    a = ap.parse_args(argv)
    cpus = [int(c) for c in a.cpus.split(",")] if a.cpus else [None, None]
    base = a.dir or tempfile.gettempdir()
    d = tempfile.mkdtemp(prefix="bench_writer.", dir=base)
    try:
        res = {"sustained": [], "drain": [], "in_process": [], "setup": {
            "records": a.records, "dir": base, "ring_slots_sustained": 1 << 20, "slot_bytes": 128,
            "flush_interval_ms": wmod.DEFAULT_OPTIONS["flush_interval_ms"], "batch": wmod.DEFAULT_OPTIONS["batch"],
            "journaled_fraction": float((FLAGS_OF != 0).mean()), "kinds_in_mix": len(set(KIND_OF.tolist())),
            "h5py": h5py.version.version, "hdf5": h5py.version.hdf5_version, "cpus": a.cpus or "unpinned"}}
        for _ in range(a.repeat):
            res["sustained"].append(ring_to_file(a.records, d, False, cpus))
            res["drain"].append(ring_to_file(a.records, d, True, cpus))
            res["in_process"].append(in_process(a.records, d))
        res["high_level_per_record"] = high_level(a.highlevel_records, d)
        res["low_level_batch_100"] = low_level_batches(a.highlevel_records * 10, 100, d)
        best = {k: max(res[k], key=lambda r: r["records_per_s"]) for k in ("sustained", "drain", "in_process")}
        med = {k: float(np.median([r["records_per_s"] for r in res[k]])) for k in ("sustained", "drain", "in_process")}
        res["summary"] = {"sustained_median_rps": med["sustained"], "drain_median_rps": med["drain"],
                          "in_process_median_rps": med["in_process"],
                          "high_level_rps": res["high_level_per_record"]["records_per_s"],
                          "low_level_batch_100_rps": res["low_level_batch_100"]["records_per_s"],
                          "speedup_vs_high_level": med["sustained"] / res["high_level_per_record"]["records_per_s"],
                          "target_rps": 1_000_000, "meets_target": med["sustained"] >= 1_000_000,
                          "zero_loss": True}
        m = common.machine()
        print(f"Execution Record Writer: records ring -> HDF5, {a.records:,} records a run, {a.repeat} runs; "
              f"mix of {len(set(KIND_OF.tolist()))} kinds, {res['setup']['journaled_fraction']:.0%} journaled; "
              f"files in {base}")
        print(f"machine: {m['cpu']}, {m['cores']} cores, affinity {m['affinity']}, h5py {h5py.version.version} / "
              f"HDF5 {h5py.version.hdf5_version}; producer,writer CPUs: {a.cpus or 'unpinned'}")
        rows = []
        for k, what in (("sustained", "ring->file, producer running (2 processes)"),
                        ("drain", "ring->file, ring pre-filled (writer alone)"),
                        ("in_process", "RecordWriter.write 65,536-slot arrays + flush")):
            rs = [r["records_per_s"] for r in res[k]]
            rows.append([what, f"{med[k] / 1e6:.2f}M", f"{min(rs) / 1e6:.2f}M", f"{max(rs) / 1e6:.2f}M",
                         "yes" if k != "in_process" else "yes (checked)"])
        hl = res["high_level_per_record"]
        ll = res["low_level_batch_100"]
        rows.append([f"h5py high-level per record (resize + ds[i]=rec), {hl['records']:,} recs",
                     f"{hl['records_per_s'] / 1e3:.1f}k", "", "", "-"])
        rows.append([f"low-level hyperslab writes, batches of 100, {ll['records']:,} recs",
                     f"{ll['records_per_s'] / 1e6:.2f}M", "", "", "-"])
        print(common.table(rows, ["measured", "median rec/s", "min", "max", "zero loss"]))
        print(f"sustained / high-level per-record = {res['summary']['speedup_vs_high_level']:.0f}x; "
              f"target >= 1M records/s sustained: {'met' if res['summary']['meets_target'] else 'NOT met'}")
        out = common.write_result("writer", res)
        print(f"wrote {out}")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
