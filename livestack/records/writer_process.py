"""The writer process: the entry point the supervisor spawns (``livestack.records.writer.run_process``
calls it). Attaches the records ring, opens the session file with :class:`RecordWriter`, runs
:class:`RingWriter` until told to stop, and closes the file with its end attributes."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

from livestack.records import diskspace
from livestack.records.ringwriter import RingWriter
from livestack.records.writer import DEFAULT_OPTIONS, RecordWriter

log = logging.getLogger("livestack.records.writer")


def run_process(records_ring: str, path: str, attrs: dict, options: dict, stop) -> None:
    """Writer process entry point (see docs/CONTRACTS.md); started with ``spawn`` by the supervisor.

    Parameters
    ----------
    records_ring : str
        Segment name of the session's records ring (128-byte slots), created by the supervisor.
    path : str
        The session file; created if missing, else resumed (a restart after a crash).
    attrs : dict
        Session attributes stored when the file is created: ``session``, ``config``, ``cpu``,
        ``instruments`` (see :class:`RecordWriter`).
    options : dict
        ``DEFAULT_OPTIONS`` keys: ``flush_interval_ms`` (100), ``fsync_interval_ms`` (1000), ``batch``, ``chunk_records``,
        ``journal_chunk_records``, ``high_water``, ``attach_timeout_s``, ``status_interval_s``
        (> 0: counters and lag to stderr), ``quiet``, ``min_free_mb`` / ``disk_check_interval_ms``
        (the disk guard), ``telemetry`` (segment name), ``harness_pid``, ``final_drain_timeout_s``.
    stop : multiprocessing.Event or None
        When set (or on SIGTERM) the writer keeps draining until the harness is done or gone and
        the ring is empty (at most ``final_drain_timeout_s``), flushes, stamps the stop time and
        the harness's last record seq, and returns. Exits ``EXIT_DISK_FULL`` if the disk filled.
    """
    from livestack.ipc import Ring
    from livestack.ipc.wait import Backoff

    o = dict(DEFAULT_OPTIONS, **(options or {}))
    term = []
    signal.signal(signal.SIGTERM, lambda *_: term.append(1))
    ring = Ring.attach(records_ring, slot_size=128, timeout=float(o["attach_timeout_s"]), role="consumer")
    tel = None
    if o["telemetry"]:
        try:
            from livestack.telemetry.block import TelemetryBlock

            tel = TelemetryBlock.attach(o["telemetry"], timeout=float(o["attach_timeout_s"]))
        except Exception as e:  # noqa: BLE001 - telemetry is optional: the file matters
            log.warning("no telemetry block (%s)", e)
    from livestack.records.harnesswatch import HarnessWatch

    harness = HarnessWatch(tel, int(o["harness_pid"] or 0))
    try:
        writer = RecordWriter(path, attrs, o)
    except diskspace.DiskFull as e:
        log.error("NOT WRITING: %s; trading is halted, records are counted and dropped", e)
        writer = None
    rw = RingWriter(ring, writer, o)
    from livestack.records import jetstream  # obs: /metrics (mirror thread) and [writer.nats] publishing

    extras = jetstream.WriterExtras(records_ring, rw, path, attrs, o.get("nats"))
    published = [None]

    def publish() -> None:
        if tel is None:
            return
        state = (rw.disk_state, writer.disk.free if writer is not None else -1, rw.lost)
        if state != published[0]:
            published[0] = state
            tel.set_gauge("writer_free_bytes", state[1])
            tel.set_gauge("records_lost_disk_full", state[2])
            tel.set_gauge("writer_disk_state", state[0])  # last: the harness acts on it

    if writer is None and tel is not None:
        tel.set_gauge("writer_free_bytes", diskspace.free_bytes(os.path.dirname(os.path.abspath(path))))
    backoff = Backoff("backoff")
    status_every = float(o["status_interval_s"])
    next_status = time.monotonic() + status_every if status_every > 0 else float("inf")
    try:
        while not term and not (stop is not None and stop.is_set()):
            if rw.step():
                backoff.reset()
            else:
                backoff.idle()
            publish()
            if time.monotonic() >= next_status:
                c = dict(writer.counters if writer else {}, lost=rw.lost, **rw.lag())
                log.info(" ".join(f"{k}={v}" for k, v in c.items()))
                next_status += status_every
        # the writer flushes last: keep draining until the harness has finished and the ring is empty
        deadline = time.monotonic() + float(o["final_drain_timeout_s"])
        while time.monotonic() < deadline and not harness.gone():
            if not rw.step(force=True):
                time.sleep(0.005)
        rw.drain()
        publish()
        rw.end.update(harness_last_seq=harness.last_seq(), records_produced=int(ring.tail),
                      records_lost_disk_full=rw.lost)
        if writer is not None:
            writer.counters["records_lost_disk_full"] = rw.lost
            if writer.file is not None:
                writer.close(end=rw.end)
        if rw.lost:
            log.warning("%s records dropped after the disk filled", f"{rw.lost:,}")
    except BaseException:
        if writer is not None:
            writer.abandon()
        raise
    finally:
        extras.close(float(o.get("nats_drain_timeout_s", 10.0)))
        harness.close()
        ring.close()
    if rw.stopped:
        sys.exit(diskspace.EXIT_DISK_FULL)
