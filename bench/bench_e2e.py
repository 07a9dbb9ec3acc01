"""End to end, multi-process, zero loss: market-data events/s through the real harness with the real
writer and telemetry on, md from a feed process and orders to a venue process.

    feed process (Cython stand-in,           harness process (livestack.harness.loop, busy-spins,
    backoff: naps when the ring is full)     pinned; numba strategy: one IOC order per K trades)
      MD_TRADE ──md ring (64 B)─────────────▶ journal → Core → orders ──orders ring──▶ venue process
                                               ▲                                     (Cython stand-in,
                                               └──────────── exec ring ◀─ CANCELED ◀─ backoff)
                                               └─ records ring (128 B) ─▶ writer process (the real
                                                  journal + every output    RecordWriter → HDF5 file)

Rate = md events / (first md record written -> the harness has taken the last one AND the writer has
flushed and released every record). Zero loss: the harness's md count, the file's /md_trade rows
and its contiguous record seq are checked. Per-process CPU (user + system, % of one CPU) over the
run comes from /proc. ``--profile`` records the harness with ``perf`` and the writer with
``py-spy`` (``pip install .[bench]``) and prints their top frames.

    python bench/bench_e2e.py [--events 5000000] [--every 64,1] [--repeat 3] [--cpus 0,1] [--profile]

Prints a table and writes bench/results/e2e.json.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import psutil

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
from bench_tick_to_trade import INST, RISK, _kernel  # noqa: E402

from livestack.ipc import Ring, new_session_id, remove_session, segment_name  # noqa: E402
from livestack.schema import RecordKind  # noqa: E402

PRICE = 100_005
PROCS = ("harness", "feed", "venue", "writer")


def _harness(names, cpu, ready, q, every):
    from livestack.core import CfuncStrategy, Core
    from livestack.harness import loop
    from livestack.telemetry.block import TelemetryBlock

    loop.install_signal_handlers()
    os.sched_setaffinity(0, {cpu})
    core = Core([INST], RISK, CfuncStrategy(_kernel(every), "one_order_per_trade"))
    tel = TelemetryBlock.attach(names["telemetry"], timeout=10)
    rings = {k: Ring.attach(names[k], timeout=10, role="consumer" if k in ("md", "exec", "cmd") else "producer")
             for k in ("md", "exec", "cmd", "orders", "records", "reply", "events")}
    h = loop.Harness(core, [rings["md"]], rings["exec"], rings["cmd"], rings["orders"], rings["records"],
                     rings["reply"], rings["events"], timer_interval_ns=100_000_000, telemetry=tel)
    ready.set()
    h.run(0.0, 2.0, False)
    c = core.counters()
    q.put({"md_events": c["md_events"], "orders_sent": c["orders_sent"], "denials": c["denials"],
           "denials_by_reason": {k: v for k, v in c["denials_by_reason"].items() if v},
           "harness": h.counters()})


def _feed(md_name, cpu, go, q, n):
    from livestack.testing import _ringbench

    common.pin(cpu)
    md = Ring.attach(md_name, timeout=10, role="producer")
    from livestack.core import inputs as I

    for r in I.snapshot(INST.id, time.time_ns(), bids=[(100_000, 10)], asks=[(100_010, 10)]):
        assert md.write(r.tobytes()) == 0  # a book first: the strategy's orders need a market
    q.put({"snapshot": md.tail})
    go.wait(60)
    t0 = time.time_ns()
    full, ns = _ringbench.feed_run(md, n, INST.id, PRICE)
    q.put({"t0_ns": t0, "full_waits": full, "feed_ns": ns})


def _venue(orders_name, exec_name, cpu, stop):
    from livestack.ipc.wait import Backoff
    from livestack.testing import _ringbench

    common.pin(cpu)
    orders = Ring.attach(orders_name, timeout=10, role="consumer")
    execs = Ring.attach(exec_name, timeout=10, role="producer")
    b = Backoff("backoff", spins=50, yields=0, min_sleep_ns=20_000, max_sleep_ns=200_000)
    while not stop.is_set():
        if _ringbench.venue_poll(orders, execs):
            b.reset()
        else:
            b.idle()


def _writer(records_name, path, tel_name, harness_pid, cpu, stop):
    from livestack.records.writer_process import run_process

    common.pin(cpu)
    run_process(records_name, path, {"session": "bench-e2e"},
                {"quiet": True, "telemetry": tel_name, "harness_pid": harness_pid}, stop)


def _cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


def _profile(pids: dict, seconds: float, out: pathlib.Path) -> dict:
    """perf on the harness (C/Cython frames), py-spy on the writer (Python + native): top frames."""
    procs = {}
    if shutil.which("perf"):
        procs["harness"] = subprocess.Popen(["perf", "record", "-q", "-g", "-F", "999", "-p", str(pids["harness"]),
                                             "-o", str(out / "harness.perf"), "--", "sleep", f"{seconds:.1f}"],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    spy = shutil.which("py-spy") or str(pathlib.Path(sys.executable).with_name("py-spy"))
    if os.path.exists(spy):
        for who in ("writer", "feed", "venue"):
            procs[who] = subprocess.Popen([spy, "record", "-p", str(pids[who]), "-d", f"{seconds:.0f}", "-r", "500",
                                           "--native", "-f", "raw", "-o", str(out / f"{who}.txt")],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return procs


def _top_frames(out: pathlib.Path, who: str, k: int = 8) -> list[str]:
    """The k leaf functions with the most samples (py-spy raw output, or perf report for the harness)."""
    if who == "harness":
        f = out / "harness.perf"
        if not f.exists():
            return []
        rep = subprocess.run(["perf", "report", "-i", str(f), "--no-children", "--stdio", "--sort", "symbol",
                              "-g", "none", "--percent-limit", "2"], capture_output=True, text=True).stdout
        return [ln.strip() for ln in rep.splitlines() if ln.strip() and not ln.startswith("#")][:k]
    f = out / f"{who}.txt"
    if not f.exists():
        return []
    leaf: dict[str, int] = {}
    total = 0
    for ln in f.read_text().splitlines():
        stack, _, n = ln.rpartition(" ")
        if not n.isdigit():
            continue
        total += int(n)
        fn = stack.split(";")[-1]
        leaf[fn] = leaf.get(fn, 0) + int(n)
    return [f"{100 * v / total:5.1f}% {fn}" for fn, v in sorted(leaf.items(), key=lambda x: -x[1])[:k]]


def run_case(n: int, every: int, cpus, records_dir: str, profile: bool) -> dict:
    from livestack.records import open_session
    from livestack.telemetry.block import TelemetryBlock

    sid = new_session_id()
    path = os.path.join(records_dir, f"e2e-{sid}.h5")
    ctx = mp.get_context("spawn")
    procs = []
    try:
        mk = lambda name, cap, slot, kind=0: Ring.create(segment_name(sid, name), cap, slot, kind)  # noqa: E731
        rings = {"md": mk("md", 1 << 16, 64), "exec": mk("exec", 1 << 14, 128, RecordKind.EXEC),
                 "cmd": mk("cmd", 64, 128, RecordKind.CONTROL_CMD),
                 "orders": mk("orders", 1 << 14, 64, RecordKind.ORDER_CMD),
                 "records": mk("records", 1 << 21, 128), "reply": mk("reply", 64, 128, RecordKind.CONTROL_REPLY),
                 "events": mk("events", 1 << 12, 128)}
        tel = TelemetryBlock.create(segment_name(sid, "telemetry"))
        names = {k: r.name for k, r in rings.items()}
        names["telemetry"] = tel.name
        from livestack.ipc.stopflag import StopFlag

        ready, go, stop_writer, stop_venue = ctx.Event(), ctx.Event(), ctx.Event(), StopFlag(ctx)
        hq, fq = ctx.Queue(), ctx.Queue()
        harness = ctx.Process(target=_harness, args=(names, cpus[1], ready, hq, every))
        harness.start()
        procs.append(harness)
        if not ready.wait(120):
            raise RuntimeError("harness did not start")
        writer = ctx.Process(target=_writer, args=(names["records"], path, tel.name, harness.pid, cpus[0], stop_writer))
        venue = ctx.Process(target=_venue, args=(names["orders"], names["exec"], cpus[0], stop_venue))
        feed = ctx.Process(target=_feed, args=(names["md"], cpus[0], go, fq, n))
        for p in (writer, venue, feed):
            p.start()
            procs.append(p)
        snap = fq.get(timeout=60)["snapshot"]
        t_wait = time.monotonic() + 60
        while not os.path.exists(path) and time.monotonic() < t_wait:
            time.sleep(0.01)
        time.sleep(0.5)  # the writer has opened the file and waits on the ring
        ps = {k: psutil.Process(p.pid) for k, p in (("harness", harness), ("feed", feed), ("venue", venue),
                                                     ("writer", writer))}
        cpu0 = {k: _cpu(p) for k, p in ps.items()}
        prof_dir = pathlib.Path(tempfile.mkdtemp(prefix="lsbench-prof-"))
        w0 = time.monotonic()
        go.set()
        if profile:
            prof = _profile({k: p.pid for k, p in ps.items()}, 3.0, prof_dir)
        md, rec = rings["md"], rings["records"]
        deadline = time.monotonic() + 60 + n / 2e5
        while not (md.head >= n + snap and rec.head == rec.tail and rec.tail > n):
            if time.monotonic() > deadline or not all(p.is_alive() for p in (harness, writer)):
                raise RuntimeError(f"stalled: md {md.head:,}/{n:,}, records {rec.head:,}/{rec.tail:,}")
            time.sleep(0.0005)
        t_end_ns = time.time_ns()
        wall = time.monotonic() - w0
        cpu_s = {k: _cpu(p) - cpu0[k] for k, p in ps.items()}
        f = fq.get(timeout=30)
        if profile:
            for p in prof.values():
                p.wait(timeout=60)
        os.kill(harness.pid, signal.SIGTERM)
        hc = hq.get(timeout=60)
        harness.join(30)
        stop_venue.set()
        stop_writer.set()
        venue.join(30)
        writer.join(120)
        feed.join(30)
        counters = tel.counters()
        tel.close()
        with open_session(path) as s:
            rep = s.seq_report()
            md_rows = s.counts().get("md_trade", 0)
        out = {"events": n, "every": every, "seconds": (t_end_ns - f["t0_ns"]) / 1e9,
               "events_per_s": n / ((t_end_ns - f["t0_ns"]) / 1e9), "feed_events_per_s": n / (f["feed_ns"] / 1e9),
               "md_ring_full_waits": f["full_waits"], "orders": hc["orders_sent"], "denials": hc["denials"], "denials_by_reason": hc["denials_by_reason"],
               "harness_counters": hc["harness"],
               "harness_md": hc["md_events"], "file_md_rows": md_rows, "records": rep["records"],
               "records_contiguous": rep["contiguous"], "ring_overflows": counters.get("ring_overflows", 0),
               "lost": n - min(hc["md_events"] - snap, md_rows),
               "cpu_pct": {k: 100 * v / wall for k, v in cpu_s.items()},
               "cpu_ns_per_event": {k: v * 1e9 / n for k, v in cpu_s.items()}, "file_bytes": os.path.getsize(path)}
        if profile:
            out["profile"] = {k: _top_frames(prof_dir, k) for k in ("harness", "writer", "feed", "venue")}
        shutil.rmtree(prof_dir, ignore_errors=True)
        return out
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(5)
        remove_session(sid)
        for p in (path, path + ".lock"):
            if os.path.exists(p):
                os.remove(p)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--every", default="64,1", help="the strategy sends an order every K trades (list)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cpus", default="0,1", help="feed+venue+writer CPU, harness CPU")
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="where the records file goes (removed after)")
    ap.add_argument("--profile", action="store_true", help="perf (harness) + py-spy (others) on the first run")
    args = ap.parse_args(argv)
    cpus = [int(c) for c in args.cpus.split(",")]
    results = {}
    for every in (int(e) for e in args.every.split(",")):
        runs = [run_case(args.events, every, cpus, args.dir, args.profile and i == 0) for i in range(args.repeat)]
        med = sorted(runs, key=lambda r: r["events_per_s"])[len(runs) // 2]
        results[f"order every {every}"] = {"median": med, "runs": runs,
                                            "events_per_s_runs": [r["events_per_s"] for r in runs]}
    load = os.getloadavg()[0]
    print(f"End to end: feed process -> md ring -> harness (CPU {cpus[1]}, busy-spins, telemetry on) -> orders -> venue "
          f"process; records -> writer process -> HDF5 ({args.dir}); feed, venue and writer share CPU {cpus[0]}. "
          f"{args.events:,} md events a run, median of {args.repeat}; load average {load:.1f} at the end")
    rows = []
    for k, v in results.items():
        m = v["median"]
        rows.append([k, f"{m['events_per_s'] / 1e6:.2f}M",
                     " ".join(f"{x / 1e6:.2f}" for x in v["events_per_s_runs"]), f"{m['orders']:,}",
                     f"{m['denials']:,} {m['denials_by_reason'] or ''}",
                     m["lost"], "yes" if m["records_contiguous"] else "NO", f"{m['records']:,}",
                     f"{m['harness_counters']['records_backpressure']:,}",
                     " / ".join(f"{m['cpu_pct'][p]:.0f}" for p in PROCS),
                     " / ".join(f"{m['cpu_ns_per_event'][p]:.0f}" for p in PROCS)])
    print(common.table(rows, ["strategy", "md events/s", "runs (M/s)", "orders", "denials", "md lost",
                              "seq contiguous", "records written", "harness passes with the records ring full",
                              "CPU % harness / feed / venue / writer",
                              "CPU ns per md event (same order)"]))
    print("denials: the core's reasons (HALTED: trading halted while the records ring was full, i.e. the writer "
          "was behind; md is never dropped, the harness stops taking it); the events ring has no reader here (lossy "
          "by design)")
    for k, v in results.items():
        ns = v["median"]["cpu_ns_per_event"]
        shared = ns["feed"] + ns["venue"] + ns["writer"]
        print(f"{k}: CPU {cpus[0]} spends {shared:.0f} ns per md event (feed + venue + writer: at most "
              f"{1e3 / shared:.2f}M ev/s if it had that CPU to itself), the harness {ns['harness']:.0f} ns on CPU "
              f"{cpus[1]} (it spins: its CPU share says how much of CPU {cpus[1]} it got, "
              f"{v['median']['cpu_pct']['harness']:.0f}%)")
    for k, v in results.items():
        prof = v["runs"][0].get("profile")
        if prof:
            print(f"\nprofile, {k} (first run, 3 s; leaf frames):")
            for who, lines in prof.items():
                print(f"  {who}:")
                for ln in lines:
                    print(f"    {ln}")
    print("wrote", common.write_result("e2e", {"results": results, "cpus": cpus, "events": args.events,
                                              "load_average_1m": load}))


if __name__ == "__main__":
    main()
