"""The records ring → :class:`~livestack.records.writer.RecordWriter` stage of the Execution Record
Writer: view the ring's new slots, write them, flush, and only then release them (the loss rules
are in :mod:`livestack.records.writer`'s docstring). The writer process
(:mod:`livestack.records.writer_process`) runs a :class:`RingWriter` until told to stop."""

from __future__ import annotations

import time

from livestack.records import diskspace
from livestack.records.writer import DEFAULT_OPTIONS, RecordWriter


class RingWriter:
    """Drives a :class:`RecordWriter` from a records ring: view → write → flush → release.

    ``step()`` does one pass and returns how many records it took; ``lag()`` gives the writer lag.
    ``writer`` None (the disk had no room at start) or a full disk makes it *stopped*: it then
    consumes the ring without writing and counts what it dropped (``lost``), so the harness never
    blocks on a records ring nobody drains.
    """

    def __init__(self, ring, writer: RecordWriter | None, options: dict | None = None):
        if ring.slot_size != 128:
            raise ValueError(f"writer: ring {ring.name} has {ring.slot_size}-byte slots, expected 128")
        self.ring = ring
        self.writer = writer
        o = dict(DEFAULT_OPTIONS, **(options or {}))
        self.batch = int(o["batch"])
        self.min_write = max(1, int(o["min_write"]))
        self.flush_interval = float(o["flush_interval_ms"]) / 1e3
        self.high_water = max(1, int(ring.capacity * float(o["high_water"])))
        self.pending = 0  # written to the file, not yet flushed and released
        self.next_flush = time.monotonic() + self.flush_interval
        self.fsync_interval = float(o["fsync_interval_ms"]) / 1e3
        self.next_fsync = time.monotonic() + self.fsync_interval
        self.disk_check_interval = float(o["disk_check_interval_ms"]) / 1e3
        self.next_disk_check = time.monotonic()
        self.stopped = writer is None  # disk full: nothing more is written
        self.lost = 0                  # records consumed and dropped while stopped
        self.end: dict = {}            # end attributes stamped at close
        #: called with each flushed batch (a view of the ring's slots, valid during the call) just
        #: before the ring releases it: the NATS JetStream publisher's spool (records/jetstream.py)
        self.on_flush = None

    @property
    def disk_state(self) -> int:
        if self.stopped:
            return diskspace.STOPPED
        return self.writer.disk.state

    def step(self, force: bool = False) -> int:
        """One pass: take up to ``batch`` new records, write them, flush + release when due.

        Records are left in the ring (where they are safe) until at least ``min_write`` have
        arrived or a flush is due, so a slow trickle costs one HDF5 write per flush interval
        instead of one per record. ``force`` takes whatever is there (drain).
        """
        if self.stopped:
            return self._discard()
        ring = self.ring
        now = time.monotonic()
        if now >= self.next_disk_check and self.writer.disk.enabled:
            self.next_disk_check = now + self.disk_check_interval
            if self.writer.disk.check() == diskspace.STOPPED:
                self.disk_stop(None)
                return 0
        v = ring.view(self.pending + self.batch)
        new = v[self.pending:]
        k = len(new)
        at_wrap = k == 0 and ring.size() > self.pending  # nothing more is viewable before a release
        if k and (force or k >= self.min_write or now >= self.next_flush):
            try:
                self.writer.write(new)
            except Exception as e:  # noqa: BLE001 - only a full disk is handled; anything else re-raised
                if not diskspace.is_enospc(e):
                    raise
                del v, new
                self.disk_stop(e)
                return 0
            self.pending += k
        else:
            k = 0
        del v, new
        if self.pending and (now >= self.next_flush or self.pending >= self.high_water or at_wrap):
            try:
                self.flush_release()
            except Exception as e:  # noqa: BLE001
                if not diskspace.is_enospc(e):
                    raise
                self.disk_stop(e)
        return k

    def flush_release(self) -> None:
        if self.stopped:
            return
        if self.pending:
            self.writer.flush()
            now = time.monotonic()
            if self.fsync_interval > 0 and now >= self.next_fsync and self.writer.fsync_async():
                self.next_fsync = now + self.fsync_interval
            if self.on_flush is not None:
                self.on_flush(self.ring.view(self.pending))
            self.ring.release(self.pending)
            self.pending = 0
        self.next_flush = time.monotonic() + self.flush_interval

    def disk_stop(self, exc: BaseException | None) -> None:
        """The disk is (about to be) full: keep what is flushed, close the file, stop writing.

        After a guard stop (``exc`` None or DiskFull) nothing of the refused batch was written and
        the file is healthy: the written-unflushed records are flushed and released, the file is
        closed with ``end_reason = "disk_full"``. After a real ENOSPC from HDF5 the flush may fail:
        then the unflushed records count as lost and the file is closed as far as it goes.
        """
        w = self.writer
        try:
            w.disk.free = diskspace.free_bytes(w.disk.directory)
        except OSError:
            pass
        w.disk.stop()
        w._say(f"{w.path}: records disk full ({w.disk.free / 2**20:.1f} MiB free"
               + (f"; {exc}" if exc is not None and not isinstance(exc, diskspace.DiskFull) else "")
               + "): closing the file; records from now on are counted, not written", loud=True)
        try:
            if exc is not None and not isinstance(exc, diskspace.DiskFull):
                # a real ENOSPC: the file ends at the last successful flush; the records written
                # since stay in the ring and are counted lost with what follows
                self.pending = 0
                w.rollback()
                w.flush()
            elif self.pending:
                w.flush()
                if self.on_flush is not None:
                    self.on_flush(self.ring.view(self.pending))
                self.ring.release(self.pending)
                self.pending = 0
        except Exception:  # noqa: BLE001 - the disk is full: what was not flushed is lost
            self.pending = 0
        self.end = dict(self.end, end_reason="disk_full", records_produced=int(self.ring.tail))
        try:
            w.close(end=self.end)
        except Exception as e:  # noqa: BLE001
            w._say(f"{w.path}: close after disk full failed ({e}); the file ends at its last flush", loud=True)
            try:
                w.abandon()
            except Exception:  # noqa: BLE001
                pass
        self.stopped = True

    def _discard(self) -> int:
        """Stopped: consume everything committed, count it as lost (the harness is HALTED)."""
        n = self.ring.size()
        if n:
            self.ring.release(n)
            self.lost += n
            if self.writer is not None:
                self.writer.counters["records_lost_disk_full"] = self.lost
        return n

    def drain(self) -> int:
        """Write everything committed to the ring now; flush and release. Returns records taken."""
        total = 0
        while True:
            k = self.step(force=True)
            total += k
            if k == 0 and self.ring.size() <= self.pending:
                break
        self.flush_release()
        return total

    def lag(self) -> dict:
        """Records in the ring not yet released (written-unflushed included) and the age of the oldest."""
        n = self.ring.size()
        age = 0
        if n:
            p = self.ring.peek()
            if p is not None:
                age = max(0, time.time_ns() - int(p["ts"][0]))
        return {"lag_records": int(n), "lag_ns": int(age)}
