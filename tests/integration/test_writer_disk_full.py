"""A full records disk is a defined state (issue 12.6), on a real small tmpfs.

Allowed outcomes, stated up front:

* writer alone (ring → RingWriter → file on a tmpfs): it never raises; the file opens afterwards,
  its record seq is contiguous from 1 and ends at a batch it wrote whole, it says
  ``end_reason = disk_full``; every record after that is taken from the ring and counted
  (``lost``), so the producer never blocks. This holds for the guard's stop (free space below the
  floor before a batch) and for a real ENOSPC in the middle of a batch (guard blinded).
* whole stack (sim market + venue + market maker) with its records dir on a tmpfs that an
  outside process fills: trading goes REDUCING, then cancels every resting order and goes HALTED
  (ANOMALY DISK_FULL, cause 5), every order is terminal in the file; when the disk is full the
  writer closes the file and keeps consuming (``records_lost_disk_full`` on /metrics), the harness
  keeps running; nobody restarts the writer; stop needs no kill; the writer exits 28.

The tmpfs is mounted by the test (root; skipped where mount is not permitted) and always unmounted.
"""

from __future__ import annotations

import functools
import io
import os
import subprocess
import time
import uuid

import numpy as np
import pytest

from livestack.ipc import Ring, segment_name, shm
from livestack.records import diskspace
from tests.integration.test_writer_process import fill_slots
from tests.waiting import wait_for

pytestmark = pytest.mark.slow
MiB = 1 << 20


@pytest.fixture
def tmpfs(tmp_path):
    mounts = []

    def _mount(size_mb: int) -> str:
        d = tmp_path / f"tmpfs{len(mounts)}"
        d.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(d)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()})")
        mounts.append(d)
        return str(d)

    yield _mount
    for d in mounts:
        if subprocess.run(["umount", str(d)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(d)], capture_output=True)


def _fill_to(directory: str, free_target: int, name: str) -> None:
    """Allocate a ballast file so that about ``free_target`` bytes stay free (0: fill it up)."""
    path = os.path.join(directory, name)
    free = diskspace.free_bytes(directory)
    if free <= free_target:
        return
    with open(path, "ab", buffering=0) as f:  # unbuffered: no buffered tail to fail again at close
        try:
            os.posix_fallocate(f.fileno(), f.seek(0, 2), free - free_target)
        except OSError:
            pass
        if free_target == 0:
            block = b"\0" * 65536
            try:
                while True:
                    os.write(f.fileno(), block)
            except OSError:
                pass


def _ring(capacity=1 << 14):
    name = segment_name(f"{os.getpid()}-{uuid.uuid4().hex[:6]}", "records")
    return Ring.create(name, capacity, 128)


def _remove(ring) -> None:
    """Every segment of the ring's session: the ring, and the metrics block a writer process
    creates beside it (``ls.<session>.m.writer``)."""
    shm.remove_session(ring.name.lstrip("/").split(".")[1])


def _produce(ring, seq: int, n: int) -> int:
    v = ring.claim(n)
    k = len(v)
    fill_slots(v, seq)
    del v
    ring.commit(k)
    return seq + k


def _run_until_stopped(ring, rw, limit_records: int) -> int:
    seq = 1
    while not rw.stopped and seq < limit_records:
        if ring.free() >= 2048:
            seq = _produce(ring, seq, 2048)
        rw.step()
    for _ in range(5):  # stopped: what follows is consumed and counted, the producer never blocks
        seq = _produce(ring, seq, 2048)
        rw.step()
    return seq - 1


def _check_file(path: str, produced: int, lost: int) -> dict:
    from livestack.records.cli import summarize

    d = summarize(path)
    q, end = d["seq"], d["end"]
    assert q["contiguous"] and q["first"] == 1, q
    assert end["end_reason"] == "disk_full" and end["closed"], end
    assert q["last"] + lost == produced, (q, lost, produced)
    return d


def test_writer_stops_before_the_disk_is_full_and_counts_what_follows(tmpfs):
    from livestack.records.ringwriter import RingWriter
    from livestack.records.writer import RecordWriter

    d = tmpfs(64)
    ring = _ring()
    try:
        w = RecordWriter(os.path.join(d, "s.h5"), {"session": "s"}, {"min_free_mb": 32.0, "quiet": True})
        rw = RingWriter(ring, w, {"min_write": 1, "flush_interval_ms": 1.0})
        states = set()
        step = rw.step
        rw.step = lambda *a: (step(*a), states.add(rw.disk_state))[0]
        produced = _run_until_stopped(ring, rw, 10_000_000)
        assert rw.stopped and rw.lost > 0 and ring.size() == 0
        assert {diskspace.LOW, diskspace.HALT, diskspace.STOPPED} <= states, states
        assert diskspace.free_bytes(d) >= 8 * MiB, "the writer let the disk fill past its floor"
        assert not os.path.exists(os.path.join(d, "s.h5.reserve"))
        _check_file(os.path.join(d, "s.h5"), produced, rw.lost)
    finally:
        ring.close()
        _remove(ring)


def test_a_real_enospc_mid_batch_leaves_a_readable_contiguous_file(tmpfs):
    """The guard is blinded (another process filled the disk between its check and the write):
    HDF5 meets ENOSPC; the reserve is given back, the half-written batch rolled back, the file
    flushed and closed."""
    from livestack.records.ringwriter import RingWriter
    from livestack.records.writer import RecordWriter

    d = tmpfs(24)
    ring = _ring()
    try:
        w = RecordWriter(os.path.join(d, "s.h5"), {"session": "s"}, {"min_free_mb": 8.0, "quiet": True})
        w.disk.check = lambda need=0: w.disk.state  # blind
        w.disk.hold_tail = lambda fd, need=0: None  # and holding no room ahead: HDF5 meets ENOSPC
        rw = RingWriter(ring, w, {"min_write": 1, "flush_interval_ms": 1.0})
        produced = _run_until_stopped(ring, rw, 10_000_000)
        assert rw.stopped and rw.lost > 0
        _check_file(os.path.join(d, "s.h5"), produced, rw.lost)
    finally:
        ring.close()
        _remove(ring)


@pytest.mark.parametrize("pending", [False, True])
def test_the_disk_filled_by_someone_else_to_0_before_the_close_leaves_a_readable_file(tmpfs, pending):
    """The race of the stack test, made deterministic: another process fills the disk to 0 between
    the writer's last check and its close, and takes every byte the writer gives back (the moment
    the writer frees anything, the filler takes it). The close must still land: the file opens and
    ends where the writer stopped."""
    from livestack.records.ringwriter import RingWriter
    from livestack.records.writer import RecordWriter

    d = tmpfs(40)
    ring = _ring()
    try:
        w = RecordWriter(os.path.join(d, "s.h5"), {"session": "s"}, {"min_free_mb": 8.0, "quiet": True})
        rw = RingWriter(ring, w, {"min_write": 1, "flush_interval_ms": 1e6})
        seq = 1
        for _ in range(3):  # 3,000 records: below the high water, nothing flushed yet
            seq = _produce(ring, seq, 1000)
            rw.step(force=True)
        if not pending:
            rw.flush_release()
        assert (rw.pending > 0) == pending
        n = 0
        _fill_to(d, 0, f"ballast{n}")
        assert diskspace.free_bytes(d) < 64 << 10
        release = w.disk.release_reserve

        def release_then_refill():  # the filler wins every byte given back
            nonlocal n
            release()
            n += 1
            _fill_to(d, 0, f"ballast{n}")
        w.disk.release_reserve = release_then_refill
        rw.disk_stop(None)
        assert rw.stopped and w.file is None
        for _ in range(3):
            seq = _produce(ring, seq, 2048)
            rw.step()
        _check_file(os.path.join(d, "s.h5"), seq - 1, rw.lost)
        r = subprocess.run([os.path.join(os.path.dirname(os.sys.executable), "livestack"), "records", "summary",
                            os.path.join(d, "s.h5")], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "THE RECORDS DISK FILLED" in r.stdout, r.stdout + r.stderr
    finally:
        ring.close()
        _remove(ring)


# ---------------------------------------------------------------------------------------------
# the whole stack


@pytest.fixture
def stack():
    started = []

    def _start(records_dir: str, min_free_mb: float):
        from livestack.node import config
        from livestack.node.supervisor import Supervisor

        raw = {"session": {"records_dir": records_dir, "status_interval_s": 0.0},
               "rings": {"records_capacity": 1 << 16, "md_capacity": 1 << 14},
               "writer": {"min_free_mb": min_free_mb, "flush_interval_ms": 20.0}}
        sup = Supervisor(config.validate(raw), out=io.StringIO())
        started.append(sup)
        sup.start()
        return sup

    yield _start
    for sup in started:
        sup.stop(timeout=20)
        assert shm.list_segments(sup.session) == [], "segments left behind"


_wait = functools.partial(wait_for, poll_s=0.05)


def _gauges(sup):
    return (sup.status().get("telemetry") or {}).get("gauges", {})


def _polling(sup, pred):
    def f():
        assert sup.poll(), sup.events
        return pred(_gauges(sup))
    return f


@pytest.mark.xfail(strict=False, reason="timing-dependent under CI load (failed in 2 of 4 clean-clone runs on "
                   "2026-12-02; which of its stages reaches the file depends on the writer's batches): open, see "
                   "the closing note of stop 22; kept running so a fix shows up as XPASS")
def test_stack_on_a_filling_disk_halts_trading_records_it_and_stops_cleanly(tmpfs, stack):
    # room to spare at each stage: a batch that touches kinds with no chunk yet needs a whole chunk
    # (up to 512 KiB) for each, and the writer stops *before* a batch that would leave less than
    # min_free / 4; with min_free 16 MiB the REDUCING batch (anomaly, trading state, control command,
    # ... all new) could already cross that floor and close the file before HALTED was recorded
    d = tmpfs(80)
    sup = stack(d, 32.0)
    _wait(_polling(sup, lambda g: g.get("open_orders", 0) > 0 and g.get("trading_state") == 0), 60,
          "resting orders, trading ACTIVE")
    _fill_to(d, 30 * MiB, "ballast1")  # below min_free_mb (32): REDUCING
    # >= 1: records keep growing the file, so a busy machine may see HALTED first (the file's
    # TRADING_STATE records below still must say REDUCING, then HALTED)
    _wait(_polling(sup, lambda g: g.get("trading_state", 0) >= 1), 60, "trading REDUCING")
    _fill_to(d, 15 * MiB, "ballast2")  # below half of it: cancel everything, HALTED (the floor: 8)
    _wait(_polling(sup, lambda g: g.get("trading_state") == 2 and g.get("open_orders") == 0), 30,
          "trading HALTED with no open order")
    _wait(_polling(sup, lambda g: g.get("writer_lag_records", 1) < 64), 30, "the writer to catch up")
    _fill_to(d, 0, "ballast3")         # full: the writer closes the file, then counts
    _wait(_polling(sup, lambda g: g.get("writer_disk_state") == 3 and g.get("records_lost_disk_full", 0) > 0), 30,
          "the writer to stop writing and count what follows")
    hseq = _gauges(sup)["hseq"]
    _wait(_polling(sup, lambda g: g["hseq"] > hseq + 20), 30, "the harness to keep running (not frozen)")
    writer = sup.procs["writer"]
    assert writer.proc.is_alive() and writer.restarts == 0
    metrics = sup.status()["telemetry"]
    lost_live = metrics["gauges"]["records_lost_disk_full"]
    assert metrics["anomalies"].get("DISK_FULL", 0) >= 2
    assert sup.stop(timeout=20) == 0, sup.events  # nothing had to be killed
    assert writer.proc.exitcode == diskspace.EXIT_DISK_FULL
    assert not any("restart" in e for e in sup.events), sup.events

    from livestack.records import open_session
    from livestack.records.cli import summarize

    r = subprocess.run([os.path.join(os.path.dirname(os.sys.executable), "livestack"), "records", "summary",
                        sup.records_path], capture_output=True, text=True, timeout=60)
    assert "THE RECORDS DISK FILLED" in r.stdout, r.stdout + r.stderr
    s = summarize(sup.records_path)
    assert s["seq"]["contiguous"], s["seq"]
    # the file says where it ended and why; whether records were still unwritten at the moment the
    # writer closed it (missing_tail > 0) depends on timing: it may have caught up first, and the
    # records lost after that are counted live (records_lost_disk_full, checked above), not in the file
    assert s["end"]["end_reason"] == "disk_full" and s["end"]["closed"], s["end"]
    assert s["end"]["missing_tail"] == max(0, s["end"]["harness_last_seq"] - s["end"]["file_last_seq"]), s["end"]
    assert s["anomalies"].get("DISK_FULL", 0) >= 2
    with open_session(sup.records_path) as f:
        ts = f["trading_state"]
        disk = ts[ts.cause == 5]
        assert list(disk.state) == ["REDUCING", "HALTED"], ts
        last = f["order_state"].groupby("client_order_id").state.last()
        assert last.isin(["FILLED", "CANCELED", "REJECTED", "EXPIRED", "REPLACED"]).all(), last.value_counts()
        cmds = f["journal_control_cmd"]
        assert list(cmds[cmds.cmd == "DISK_HALT"].arg0)[:2] == [1, 2]
    from livestack.records.replay import replay

    r = replay(sup.records_path, verify=True)  # DISK_HALT is a journaled input: replay agrees
    assert r.verified or (r.divergence.get("recorded", 0) is None
                          and r.divergence["index"] == r.divergence["recorded_total"]), r.divergence
    print(f"\ndisk full: file ends at seq {s['seq']['last']:,} (contiguous), REDUCING then HALTED recorded, "
          f"{len(last)} orders terminal, {lost_live:,}+ records counted lost after the disk filled, "
          f"writer exit {writer.proc.exitcode}, restarts 0, stop rc 0")


def test_stack_without_room_at_start_refuses_to_start(tmpfs, tmp_path):
    from livestack.node import config
    from livestack.node.supervisor import Supervisor

    d = tmpfs(8)
    cfg = config.validate({"session": {"records_dir": d}, "writer": {"min_free_mb": 16.0}})
    sup = Supervisor(cfg, out=io.StringIO())
    with pytest.raises(diskspace.DiskFull, match="records disk too full to start"):
        sup.start()
    assert sup.procs == {} and shm.list_segments(sup.session) == []
    r = subprocess.run([os.path.join(os.path.dirname(os.sys.executable), "livestack"), "run",
                        str(_toml(tmp_path, d))], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "records disk too full to start" in r.stderr, r.stderr


def _toml(tmp_path, records_dir):
    p = tmp_path / "full.toml"
    p.write_text(f'[session]\nrecords_dir = "{records_dir}"\n[writer]\nmin_free_mb = 16.0\n')
    return p


def _writer_proc(ring_name, path, stop):
    from livestack.records import writer

    writer.run_process(ring_name, path, {"session": "s"}, {"min_free_mb": 16.0, "quiet": True}, stop)


def test_writer_process_without_room_writes_nothing_drops_and_counts_and_exits_28(tmpfs):
    """A writer (re)started on a full disk: no file, the ring keeps draining, exit EXIT_DISK_FULL."""
    import multiprocessing as mp

    from livestack.ipc.stopflag import StopFlag

    d = tmpfs(8)
    ring = _ring()
    ctx = mp.get_context("spawn")
    stop = StopFlag(ctx)
    p = ctx.Process(target=_writer_proc, args=(ring.name, os.path.join(d, "s.h5"), stop))
    p.start()
    try:
        seq = 1
        for _ in range(20):
            wait_for(lambda: ring.free() >= 2048, 30, "the writer to drain the ring")
            seq = _produce(ring, seq, 2048)
        wait_for(lambda: ring.size() == 0, 30, "the writer to drain the ring")
        stop.set()
        p.join(timeout=30)
        assert p.exitcode == diskspace.EXIT_DISK_FULL
        assert not os.path.exists(os.path.join(d, "s.h5"))
    finally:
        if p.is_alive():
            p.kill()
            p.join(timeout=10)
        ring.close()
        _remove(ring)
