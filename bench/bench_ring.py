"""Ring benchmarks: one-way latency (ping-pong between two pinned processes) through the project's
ring versus two C-only rings in the same run, interleaved, and throughput in records/s.

    fast C ring (bench/c/ring_fast.c): the fastest SPSC ring we could write - same 128-byte
        position separation, cached opposite index, batched release, no checks. THE floor: the
        ratio livestack / fast C ring is the figure (target <= 1.1).
    plain C ring (bench/c/ring_floor.c): the textbook ring (no cached index, release per record),
        for reference - it is slower than the fast one, so a ratio against it flatters.

    topology (latency):   ping process (CPU a) --ring ab--> pong process (CPU b)
                                               <--ring ba--
    one-way latency = round trip / 2, per message; percentiles over all messages.

    python bench/bench_ring.py [--messages 200000] [--records 20000000] [--cpus 0,1] [--repeat 5]

Prints tables and writes bench/results/ring.json.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402

from livestack.ipc import Ring, new_session_id, remove_session, segment_name  # noqa: E402
from livestack.testing import _ringbench as _bench  # noqa: E402
from livestack.schema import RecordKind, new  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent


def _pong(ab, ba, n, cpu):
    common.pin(cpu)
    rx = Ring.attach(ab, timeout=10, role="consumer")
    tx = Ring.attach(ba, timeout=10, role="producer")
    _bench.pong(rx, tx, n)


def ring_pingpong(n, cpu_a, cpu_b):
    sid = new_session_id()
    try:
        ab = Ring.create(segment_name(sid, "ab"), 1024, 64, RecordKind.MD_LEVEL)
        ba = Ring.create(segment_name(sid, "ba"), 1024, 64, RecordKind.MD_LEVEL)
        p = mp.get_context("spawn").Process(target=_pong, args=(ab.name, ba.name, n, cpu_b))
        p.start()
        common.pin(cpu_a)
        rtt = np.zeros(n, dtype=np.int64)
        _bench.ping(ab, ba, n, rtt)
        p.join(timeout=60)
        return rtt
    finally:
        remove_session(sid)


def c_pingpong(exe, n, cpu_a, cpu_b, *pre):
    out = subprocess.run([str(exe), *pre, str(n), str(cpu_a), str(cpu_b)], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    return np.array(out.split(), dtype=np.int64)


def c_throughput(exe, total, cpu_a, cpu_b, batch):
    out = subprocess.run([str(exe), "tput", str(total), str(cpu_a), str(cpu_b), str(batch)], check=True,
                         capture_output=True, text=True, timeout=300).stdout
    return total / (int(out) / 1e9)


def _drain(name, total, cpu, q):
    common.pin(cpu)
    r = Ring.attach(name, timeout=10, role="consumer")
    q.put(_bench.drain(r, total))


def throughput(mode, total, cpu_a, cpu_b):
    """records/s from the first record the consumer sees to the last; the consumer is a C drain."""
    sid = new_session_id()
    try:
        ring = Ring.create(segment_name(sid, "tp"), 1 << 16, 64, RecordKind.MD_LEVEL)
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        p = ctx.Process(target=_drain, args=(ring.name, total, cpu_b, q))
        p.start()
        common.pin(cpu_a)
        if mode == "python single write":
            one = new("MD_LEVEL", 1)
            w = ring.write
            done = 0
            while done < total:
                if w(one) == 0:
                    done += 1
        elif mode == "python batched write (1024)":
            batch = new("MD_LEVEL", 1024)
            wb = ring.write_batch
            done = 0
            while done < total:
                done += wb(batch[: min(1024, total - done)])
        elif mode == "C single write":
            _bench.produce_c(ring, total, 1)
        elif mode == "C batched write (1024)":
            _bench.produce_c(ring, total, 1024)
        ns = q.get(timeout=300)
        p.join(timeout=30)
        return total / (ns / 1e9)
    finally:
        remove_session(sid)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--records", type=int, default=20_000_000)
    ap.add_argument("--cpus", default="0,1")
    ap.add_argument("--repeat", type=int, default=5, help="latency runs; medians across runs are reported")
    args = ap.parse_args(argv)
    cpu_a, cpu_b = (int(c) for c in args.cpus.split(","))

    LS, FAST, PLAIN = "livestack ring (Cython nogil)", "fast C ring (floor)", "plain C ring (reference)"
    tmp = tempfile.TemporaryDirectory()
    plain = common.compile_c(HERE / "c" / "ring_floor.c", pathlib.Path(tmp.name) / "ring_floor")
    fast = common.compile_c(HERE / "c" / "ring_fast.c", pathlib.Path(tmp.name) / "ring_fast")
    runs = {LS: [], FAST: [], PLAIN: []}
    for _ in range(args.repeat):  # interleave so machine noise hits all alike
        runs[LS].append(common.percentiles(ring_pingpong(args.messages, cpu_a, cpu_b) / 2))
        runs[FAST].append(common.percentiles(c_pingpong(fast, args.messages, cpu_a, cpu_b, "pingpong") / 2))
        runs[PLAIN].append(common.percentiles(c_pingpong(plain, args.messages, cpu_a, cpu_b) / 2))
    lat = {k: {q: float(np.median([r[q] for r in v])) for q in v[0]} for k, v in runs.items()}
    ratio = lat[LS]["p50_ns"] / lat[FAST]["p50_ns"]
    ratio_runs = [a["p50_ns"] / b["p50_ns"] for a, b in zip(runs[LS], runs[FAST])]
    print(f"One-way latency, ping-pong of 64-byte records between processes pinned to CPUs {cpu_a} and {cpu_b},"
          f" {args.messages:,} messages x {args.repeat} runs (median of per-run percentiles):")
    print(common.table([[k, f"{v['p50_ns']:.0f}", f"{v['p99_ns']:.0f}", f"{v['p99_9_ns']:.0f}"] for k, v in lat.items()],
                       ["path", "p50 ns", "p99 ns", "p99.9 ns"]))
    print(f"ratio p50 livestack / fast C ring = {ratio:.2f} (per run {min(ratio_runs):.2f}-{max(ratio_runs):.2f}; "
          f"target <= 1.1: {'met' if ratio <= 1.1 else 'NOT met'}); livestack / plain C ring = "
          f"{lat[LS]['p50_ns'] / lat[PLAIN]['p50_ns']:.2f}\n")

    tput = {}
    for mode in ("python single write", "python batched write (1024)", "C single write", "C batched write (1024)"):
        n = args.records // 10 if mode == "python single write" else args.records
        rates = [throughput(mode, n, cpu_a, cpu_b) for _ in range(3)]
        tput[mode] = float(np.median(rates))
        if mode == "C batched write (1024)":  # the same batches through the fast C ring (C consumer reading up to 1024 at a time)
            tput["fast C ring, batched write (1024)"] = float(np.median(
                [c_throughput(fast, args.records, cpu_a, cpu_b, 1024) for _ in range(3)]))
    tmp.cleanup()
    tput_ratio = tput["C batched write (1024)"] / tput["fast C ring, batched write (1024)"]
    print(f"Throughput, producer on CPU {cpu_a} -> 64-byte records -> C drain consumer on CPU {cpu_b} (median of 3):")
    print(common.table([[k, f"{v / 1e6:.1f}"] for k, v in tput.items()], ["producer", "M records/s"]))
    print(f"throughput ratio livestack C batched / fast C ring = {tput_ratio:.2f}; load average "
          f"{os.getloadavg()[0]:.1f}")
    path = common.write_result("ring", {"latency_one_way": lat, "latency_ratio_p50": ratio,
                                        "latency_ratio_p50_runs": ratio_runs, "throughput_ratio": tput_ratio,
                                        "load_average_1m": os.getloadavg()[0],
                                        "throughput_records_per_s": tput, "messages": args.messages,
                                        "repeat": args.repeat})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
