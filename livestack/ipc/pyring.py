"""A small pure-Python reference implementation of the SPSC ring, on the same segment layout.

It exists so the ring test-suite can run against two implementations and so prove that the tests
check behaviour, not one implementation's details. It is correct on x86-64 (total store order:
the slot stores it makes through numpy are visible before its later store of ``tail``) and much
slower than ``livestack.ipc.Ring``. Never use it on the hot path.
"""

from __future__ import annotations

import os
import time

import numpy as np

from livestack.ipc import shm as _shm
from livestack.schema import spec as _spec
from livestack.schema.dtypes import DTYPE_BY_KIND, slot_dtype

MAGIC = 0x31474E49524B534C
LAYOUT_VERSION = 2
HEADER_SIZE = 512
OK, FULL = 0, 1

# Field offsets of the segment header (see cext/ls_ring.h).
_MAGIC, _LAYOUT, _SCHEMA, _SLOT, _KIND, _CAP, _MASK, _PID, _CREATED, _NAME = 0, 8, 12, 16, 20, 24, 32, 40, 48, 56
_TAIL, _HEAD, _CACHED_TAIL = 128, 256, 264
_TAIL_OWN, _CACHED_HEAD, _PRODUCER_PID, _CONSUMER_PID = 384, 392, 400, 408  # the producer's own line
PRODUCER, CONSUMER = 1, 2  # role bits; the segment byte each locks is bit - 1 (as ring.pyx)
_ROLES = {"producer": PRODUCER, "consumer": CONSUMER}
_PID_AT = {PRODUCER: _PRODUCER_PID, CONSUMER: _CONSUMER_PID}


class RingError(Exception):
    pass


class RingRoleTaken(RingError):
    pass


class PyRing:
    """Same API and semantics as ``livestack.ipc.Ring`` (create/attach, write, write_batch,
    claim/commit, read, view/release, peek, size, free, and the exclusive producer/consumer roles
    taken at attach or at the first producer/consumer call)."""

    def __init__(self, name, seg, owner):
        self.name, self._seg, self._mm, self.owner = name, seg, seg.mm, owner
        self._u64 = np.frombuffer(self._mm, dtype=np.uint64, count=HEADER_SIZE // 8)
        self._u32 = np.frombuffer(self._mm, dtype=np.uint32, count=HEADER_SIZE // 4)
        self._i64 = np.frombuffer(self._mm, dtype=np.int64, count=HEADER_SIZE // 8)
        self._claimed = 0
        self._roles = 0

    # --- roles ----------------------------------------------------------------------------
    def acquire(self, role, timeout=0.0):
        bit = _ROLES[role]
        if self._roles & bit:
            return
        deadline = time.monotonic() + timeout
        while not self._seg.take_role(bit - 1):
            if time.monotonic() >= deadline:
                pid = int(self._i64[_PID_AT[bit] // 8])
                who = f"pid {pid}" if pid > 0 and _shm.pid_alive(pid) else "a process whose pid is unknown"
                raise RingRoleTaken(f"ring {self.name}: already has a {role}, held by {who}; a ring takes one "
                                    f"producer and one consumer at a time (the lock goes when that process exits)")
            time.sleep(0.005)
        self._roles |= bit
        self._i64[_PID_AT[bit] // 8] = os.getpid()

    @property
    def roles(self):
        return tuple(n for n, b in _ROLES.items() if self._roles & b)

    def _need(self, bit):
        if not self._roles & bit:
            self.acquire("producer" if bit == PRODUCER else "consumer")

    def _g(self, off):
        return int(self._u64[off // 8])

    def _s(self, off, v):
        self._u64[off // 8] = v

    @classmethod
    def create(cls, name, capacity, slot_size, record_kind=0, role=None):
        if capacity < 2 or capacity & (capacity - 1):
            raise ValueError(f"ring {name}: capacity {capacity} is not a power of two >= 2")
        if slot_size not in (64, 128):
            raise ValueError(f"ring {name}: slot size {slot_size} must be 64 or 128")
        seg = _shm.Segment.create(name, HEADER_SIZE + capacity * slot_size)
        r = cls(name, seg, True)
        mm = seg.mm
        r._u32[_LAYOUT // 4] = LAYOUT_VERSION
        r._u32[_SCHEMA // 4] = _spec.SCHEMA_VERSION
        r._u32[_SLOT // 4] = slot_size
        r._u32[_KIND // 4] = record_kind
        r._s(_CAP, capacity)
        r._s(_MASK, capacity - 1)
        r._s(_PID, os.getpid())
        r._s(_CREATED, time.time_ns())
        bname = name.encode()[:63]
        mm[_NAME:_NAME + len(bname)] = bname
        r._s(_MAGIC, MAGIC)
        r._finish()
        if role:
            r.acquire(role)
        return r

    @classmethod
    def attach(cls, name, slot_size=None, record_kind=None, timeout=0.0, role=None):
        try:
            seg = _shm.Segment.attach(name, timeout)
        except _shm.SegmentMissing as e:
            raise RingError(f"ring {name}: shared-memory segment does not exist") from e
        r = cls(name, seg, False)
        if r._g(_MAGIC) != MAGIC:
            raise RingError(f"ring {name}: bad magic")
        if r._u32[_LAYOUT // 4] != LAYOUT_VERSION:
            raise RingError(f"ring {name}: ring layout version {r._u32[_LAYOUT // 4]}")
        if r._u32[_SCHEMA // 4] != _spec.SCHEMA_VERSION:
            raise RingError(f"ring {name}: record schema version {r._u32[_SCHEMA // 4]}")
        if slot_size is not None and r._u32[_SLOT // 4] != slot_size:
            raise RingError(f"ring {name}: slot size {r._u32[_SLOT // 4]}, expected {slot_size}")
        if record_kind is not None and r._u32[_KIND // 4] != record_kind:
            raise RingError(f"ring {name}: record kind {r._u32[_KIND // 4]}, expected {record_kind}")
        r._finish()
        if role:
            r.acquire(role, timeout)
        return r

    def _finish(self):
        self.slot_size = int(self._u32[_SLOT // 4])
        self.record_kind = int(self._u32[_KIND // 4])
        self.capacity = self._g(_CAP)
        self.dtype = DTYPE_BY_KIND[self.record_kind] if self.record_kind else slot_dtype(self.slot_size)
        self._slots = np.frombuffer(self._mm, dtype=self.dtype, count=self.capacity, offset=HEADER_SIZE)

    head = property(lambda self: self._g(_HEAD))
    tail = property(lambda self: self._g(_TAIL))

    def size(self):
        return self._g(_TAIL) - self._g(_HEAD)

    def free(self):
        return self.capacity - self.size()

    def _check(self, arr):
        if arr.dtype.itemsize != self.slot_size:
            raise ValueError(f"ring {self.name}: array itemsize {arr.dtype.itemsize} != ring slot size {self.slot_size}")

    def write(self, rec):
        if not isinstance(rec, np.ndarray):
            rec = np.frombuffer(bytes(rec), dtype=self.dtype)
        self._check(rec)
        return OK if self.write_batch(rec[:1]) == 1 else FULL

    def write_batch(self, recs, all_or_nothing=False):
        self._need(PRODUCER)
        self._check(recs)
        n = len(recs)
        tail = self._g(_TAIL)
        free = self.capacity - (tail - self._g(_HEAD))
        if all_or_nothing and free < n:
            return 0
        k = min(n, free)
        raw = recs.view(np.uint8).reshape(n, self.slot_size)
        dst = self._slots.view(np.uint8).reshape(self.capacity, self.slot_size)
        for i in range(k):
            dst[(tail + i) % self.capacity] = raw[i]
        self._publish(tail + k)
        return k

    def _publish(self, tail):
        """The producer's own copy first, then the published tail (as ls_ring_commit)."""
        self._s(_TAIL_OWN, tail)
        self._s(_TAIL, tail)

    def claim(self, n):
        self._need(PRODUCER)
        tail = self._g(_TAIL)
        free = self.capacity - (tail - self._g(_HEAD))
        first = tail % self.capacity
        k = min(n, free, self.capacity - first)
        self._claimed = k
        return self._slots[first:first + k]

    def commit(self, n):
        self._need(PRODUCER)
        if n > self._claimed:
            raise ValueError(f"ring {self.name}: commit of {n} slots, only {self._claimed} claimed")
        self._publish(self._g(_TAIL) + n)
        self._claimed = 0

    def read(self, out, max_records=None):
        self._need(CONSUMER)
        self._check(out)
        n = len(out) if max_records is None else min(len(out), max_records)
        head = self._g(_HEAD)
        k = min(n, self._g(_TAIL) - head)
        raw = out.view(np.uint8).reshape(len(out), self.slot_size)
        src = self._slots.view(np.uint8).reshape(self.capacity, self.slot_size)
        for i in range(k):
            raw[i] = src[(head + i) % self.capacity]
        self._s(_HEAD, head + k)
        return k

    def view(self, max_records=2**64 - 1):
        self._need(CONSUMER)
        head = self._g(_HEAD)
        first = head % self.capacity
        k = min(max_records, self._g(_TAIL) - head, self.capacity - first)
        v = self._slots[first:first + k]
        v.flags.writeable = False
        return v

    def peek(self):
        v = self.view(1)
        return v if len(v) else None

    def release(self, n):
        self._need(CONSUMER)
        head = self._g(_HEAD)
        if n > self._g(_TAIL) - head:
            raise ValueError(f"ring {self.name}: release of {n} records, only {self._g(_TAIL) - head} readable")
        self._s(_HEAD, head + n)

    def close(self):
        for bit in (PRODUCER, CONSUMER):
            if self._roles & bit and self._i64[_PID_AT[bit] // 8] == os.getpid():
                self._i64[_PID_AT[bit] // 8] = 0
        self._roles = 0
        self._slots = self._u64 = self._u32 = self._i64 = self._mm = None
        self._seg.close()  # releases the role locks

    def unlink(self):
        _shm.unlink_segment(self.name)
