"""The writer process over a real shared-memory records ring, with real processes killed.

Topology (every box a spawned process; the test process owns the ring and checks the file)::

    producer ──records ring (128-byte slots, seq 1..N, mixed kinds, some JOURNAL)──▶ writer ──▶ file.h5
                                                                                        ▲
                                                              SWMR reader (follows) ────┘

Allowed outcome, stated up front: the file holds every seq 1..N exactly once (over all datasets),
each record in the dataset its kind/flags route it to, intact (kind, ts and a body word derived
from seq), in seq order within each dataset; the writer reports no hole. Nothing else.
"""

from __future__ import annotations

import functools
import json
import multiprocessing as mp
import os
import signal
import time

import h5py
import numpy as np
import pytest

from livestack.ipc.stopflag import StopFlag
from livestack.ipc import Ring, segment_name
from livestack.schema import RecordFlag, RecordKind, spec
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

#: the kind of record seq s is PATTERN[s % len(PATTERN)]; (kind, journaled)
PATTERN = [
    (RecordKind.MD_LEVEL, True), (RecordKind.ORDER_CMD, False), (RecordKind.ORDER_STATE, False),
    (RecordKind.EXEC, True), (RecordKind.FILL, False), (RecordKind.POSITION, False),
    (RecordKind.MD_TRADE, True), (RecordKind.DENIAL, False), (RecordKind.TRADING_STATE, False),
    (RecordKind.CONTROL_CMD, True), (RecordKind.CONTROL_REPLY, False), (RecordKind.TELEMETRY, False),
    (RecordKind.ANOMALY, False), (RecordKind.TIMER, True), (RecordKind.MD_BBO, True),
    (RecordKind.MD_STATUS, True), (RecordKind.MD_LEVEL, True), (RecordKind.MD_LEVEL, True),
]
KIND_OF = np.array([int(k) for k, _ in PATTERN], dtype=np.uint16)
FLAGS_OF = np.array([int(RecordFlag.JOURNAL) if j else 0 for _, j in PATTERN], dtype=np.uint8)
BODY_XOR = np.uint64(0x5A5A_1234_0F0F_7777)
INSTRUMENTS = [{"id": 1, "symbol": "AAA", "price_decimals": 2, "qty_decimals": 3},
               {"id": 2, "symbol": "BBB", "price_decimals": 4, "qty_decimals": 0}]


def fill_slots(view: np.ndarray, first_seq: int) -> None:
    """Make slots seq first_seq.. in place: kind/flags by PATTERN, ts = seq*1000, body word = seq^XOR."""
    k = len(view)
    seqs = np.arange(first_seq, first_seq + k, dtype=np.uint64)
    ph = (seqs % np.uint64(len(PATTERN))).astype(np.intp)
    view["kind"] = KIND_OF[ph]
    view["version"] = 1
    view["flags"] = FLAGS_OF[ph]
    view["instrument"] = 1 + (seqs % np.uint64(2)).astype(np.uint32)
    view["seq"] = seqs
    view["ts"] = seqs.astype(np.int64) * 1000
    view["body"][:, :8] = (seqs ^ BODY_XOR).view(np.uint8).reshape(k, 8)


def produce(ring_name: str, total: int, batch: int, pause_s: float) -> None:
    """Producer process: records seq 1..total into the ring, waiting (backoff) when it is full."""
    from livestack.ipc.wait import Backoff

    ring = Ring.attach(ring_name, slot_size=128, timeout=10)
    b = Backoff("backoff")
    seq = 1
    while seq <= total:
        v = ring.claim(min(batch, total - seq + 1))
        k = len(v)
        if k == 0:
            b.idle()
            continue
        b.reset()
        fill_slots(v, seq)
        del v
        ring.commit(k)
        seq += k
        if pause_s:
            time.sleep(pause_s)
    ring.close()


def follow(path: str, out_path: str, expect_rows: int, timeout_s: float) -> None:
    """SWMR reader process: follows the live file, checks every visible row, reports what it saw."""
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    f = None
    while f is None and time.monotonic() < deadline:
        try:
            f = h5py.File(path, "r", libver="latest", swmr=True)
        except OSError:
            time.sleep(0.02)
    sizes, errors = [], []
    names = [k for k in f.keys() if k != "journal"]  # (the journal indexes inputs stored in their kinds)
    while time.monotonic() < deadline:
        total = 0
        for name in names:
            ds = f[name]
            ds.refresh()
            n = ds.shape[0]
            total += n
            if n:
                seqs = ds["seq"][max(0, n - 2000):n]
                if len(seqs) > 1 and not (np.diff(seqs.astype(np.int64)) > 0).all():
                    errors.append(f"{name}: seq not increasing in visible rows")
        if not sizes or total != sizes[-1]:
            sizes.append(int(total))
        if total >= expect_rows:
            break
        time.sleep(0.02)
    f.close()
    with open(out_path, "w") as fh:
        json.dump({"sizes": sizes, "errors": errors}, fh)


def verify_file(path: str, total: int) -> None:
    """Check the allowed outcome (module docstring) on a finished file."""
    from livestack.records import open_session

    with open_session(path) as s:
        rep = s.seq_report()
        assert rep == {"records": total, "first": 1, "last": total, "missing": 0, "duplicates": 0,
                       "contiguous": True}, rep
        f = s.file
        from livestack.records.replay import consumed_inputs

        idx = f["journal"][()]
        assert (idx["kind"] == KIND_OF[(idx["seq"] % np.uint64(len(PATTERN))).astype(np.intp)]).all()
        j = np.concatenate(list(consumed_inputs(f)))  # the inputs, from their kinds' datasets
        j["flags"] |= np.uint8(RecordFlag.JOURNAL)
        seq = j["seq"]
        ph = (seq % np.uint64(len(PATTERN))).astype(np.intp)
        assert (FLAGS_OF[ph] != 0).all(), "non-journal record in /journal"
        assert (j["kind"] == KIND_OF[ph]).all()
        assert (j["flags"] == FLAGS_OF[ph]).all()
        assert (j["ts"] == seq.astype(np.int64) * 1000).all()
        assert (j["body"][:, :8].copy().view(np.uint64).ravel() == (seq ^ BODY_XOR)).all()
        assert (np.diff(seq.astype(np.int64)) > 0).all()
        for rec in spec.RECORDS:
            ds = f[rec.name.lower()][()]
            if len(ds) == 0:
                continue
            seq = ds["seq"]
            ph = (seq % np.uint64(len(PATTERN))).astype(np.intp)
            assert (KIND_OF[ph] == rec.kind).all() and (ds["flags"] == FLAGS_OF[ph]).all(), rec.name
            assert (ds["kind"] == rec.kind).all()
            assert (ds["ts"] == seq.astype(np.int64) * 1000).all()
            body = ds.view(np.uint8).reshape(len(ds), -1)[:, 24:32].copy().view(np.uint64).ravel()
            assert (body == (seq ^ BODY_XOR)).all(), rec.name
            assert (np.diff(seq.astype(np.int64)) > 0).all()
        counters = s.attrs.get("writer_counters", {})
        assert counters.get("holes", 0) == 0 and counters.get("seq_regressions", 0) == 0, counters


def check_crashed_file(path: str, released: int) -> None:
    """A file whose writer was just SIGKILLed opens (SWMR read, flags left set), holds every record
    the writer had released (1..released, each once) and no duplicate. Records past ``released``
    may be partly there (a kill between two datasets' flushes): the restarted writer completes them."""
    from livestack.records import open_session

    with open_session(path) as s:
        seqs = np.sort(np.concatenate([s.file[k]["seq"][()] for k in s.datasets() if k != "journal"]))
    assert (np.diff(seqs.astype(np.int64)) > 0).all(), "duplicate seq in a crashed file"
    assert len(seqs) >= released and (seqs[:released] == np.arange(1, released + 1)).all()


_wait_for = functools.partial(wait_for, poll_s=0.005)


def _writer(ctx, ring_name, path, stop, flush_ms=20.0):
    from livestack.records import writer

    p = ctx.Process(target=writer.run_process,
                    args=(ring_name, path, {"session": "it", "instruments": INSTRUMENTS},
                          {"flush_interval_ms": flush_ms, "quiet": True}, stop),
                    name="livestack-writer")
    p.start()
    return p


def _state(what, ring, w, prod, total, tmp_path) -> str:
    import shutil

    return (f"{what}: ring head {ring.head:,} tail {ring.tail:,} of {total:,}; writer pid {w.pid} alive "
            f"{w.is_alive()}, producer alive {prod.is_alive()}; {shutil.disk_usage(tmp_path).free >> 20} MiB free")


def _kill_restart_run(session, procs, tmp_path, total, fractions, seed):
    rng = np.random.default_rng(seed)
    ring = Ring.create(segment_name(session, "records"), 1 << 17, 128)
    path = str(tmp_path / "s.h5")
    ctx = mp.get_context("spawn")
    stop = StopFlag(ctx)  # not mp.Event: a SIGKILLed reader could leave its lock held
    w = _writer(ctx, ring.name, path, stop)
    procs.append(w)
    prod = ctx.Process(target=produce, args=(ring.name, total, 4096, 0.001))  # at most ~4M records/s
    procs.append(prod)
    prod.start()
    released = 0
    kills = 0
    for fraction in fractions:
        # kill each writer only once it has released records itself: it is mid-stream, not starting up
        _wait_for(lambda: (ring.head >= fraction * total and ring.head > released) or ring.head == total
                  or not w.is_alive(), 120, functools.partial(_state, f"writer past {fraction:.0%}", ring, w, prod,
                                                              total, tmp_path))
        if ring.head == total:
            break  # everything is written already: no stream left to kill the writer in
        assert w.is_alive(), f"writer exited early ({w.exitcode})"
        time.sleep(rng.uniform(0.0, 0.05))  # land anywhere: mid-route, mid-write, mid-flush
        os.kill(w.pid, signal.SIGKILL)
        w.join(timeout=10)
        kills += 1
        released = ring.head
        check_crashed_file(path, released)
        w = _writer(ctx, ring.name, path, stop)
        procs.append(w)
    prod.join(timeout=120)
    assert prod.exitcode == 0
    _wait_for(lambda: ring.head == total or not w.is_alive(), 120, "writer to release every record")
    stop.set()
    w.join(timeout=60)
    assert w.exitcode == 0
    assert ring.tail == ring.head == total
    ring.close()
    verify_file(path, total)
    with h5py.File(path, "r") as f:  # closed cleanly: opens without SWMR too
        assert int(f.attrs["writer_starts"]) == kills + 1
        assert int(f.attrs["stop_time_ns"]) > 0
    assert kills >= min(2, len(fractions)), f"only {kills} kills landed while records were flowing"


def test_writer_sigkilled_and_restarted_twice_loses_and_duplicates_nothing(session, procs, tmp_path):
    _kill_restart_run(session, procs, tmp_path, 2_000_000, (0.25, 0.6), seed=1)


def test_writer_sigkilled_eight_times_at_random_points_loses_and_duplicates_nothing(session, procs, tmp_path):
    _kill_restart_run(session, procs, tmp_path, 2_000_000, (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8), seed=2)


def test_producer_killed_everything_committed_reaches_the_file(session, procs, tmp_path):
    ring = Ring.create(segment_name(session, "records"), 1 << 16, 128)
    path = str(tmp_path / "s.h5")
    ctx = mp.get_context("spawn")
    stop = StopFlag(ctx)  # not mp.Event: a SIGKILLed reader could leave its lock held
    w = _writer(ctx, ring.name, path, stop)
    procs.append(w)
    prod = ctx.Process(target=produce, args=(ring.name, 10**12, 1000, 0.0))  # "forever"
    procs.append(prod)
    prod.start()
    _wait_for(lambda: ring.tail >= 400_000 or not prod.is_alive(), 120, "producer to commit 400k records")
    os.kill(prod.pid, signal.SIGKILL)
    prod.join(timeout=10)
    committed = ring.tail
    _wait_for(lambda: ring.head == committed or not w.is_alive(), 120, "writer to catch up")
    stop.set()
    w.join(timeout=60)
    assert w.exitcode == 0
    ring.close()
    verify_file(path, committed)


def test_swmr_reader_follows_the_file_while_it_is_written(session, procs, tmp_path):
    total = 120_000
    ring = Ring.create(segment_name(session, "records"), 1 << 16, 128)
    path = str(tmp_path / "s.h5")
    report = str(tmp_path / "reader.json")
    ctx = mp.get_context("spawn")
    stop = StopFlag(ctx)  # not mp.Event: a SIGKILLed reader could leave its lock held
    w = _writer(ctx, ring.name, path, stop, flush_ms=20.0)
    procs.append(w)
    _wait_for(lambda: os.path.exists(path) and not os.path.exists(path + ".tmp"), 30, "file created")
    time.sleep(0.3)  # let the writer switch to SWMR before the reader opens
    reader = ctx.Process(target=follow, args=(path, report, total, 90.0))
    procs.append(reader)
    reader.start()
    prod = ctx.Process(target=produce, args=(ring.name, total, 500, 0.005))  # ~100k records/s, ~1.2 s
    procs.append(prod)
    prod.start()
    prod.join(timeout=120)
    reader.join(timeout=120)
    assert prod.exitcode == 0 and reader.exitcode == 0
    stop.set()
    w.join(timeout=60)
    assert w.exitcode == 0
    ring.close()
    with open(report) as fh:
        seen = json.load(fh)
    assert seen["errors"] == []
    assert seen["sizes"][-1] == total
    growth = [s for s in seen["sizes"] if 0 < s < total]
    assert len(growth) >= 3, f"reader saw the file grow only through {seen['sizes']}"
    assert seen["sizes"] == sorted(seen["sizes"])
    verify_file(path, total)
