# cython: language_level=3
"""Shared-memory SPSC ring: the Python API (batched, numpy) over the C ring in ``cext/ls_ring.h``.

Feeds, venues and the writer use this class; the harness uses the C functions declared in
``ring.pxd`` directly, without the GIL. Both see the same segment.
"""

import os
import time

import numpy as np
cimport numpy as cnp
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from libc.string cimport memcpy

from livestack.ipc import shm as _shm
from livestack.schema import spec as _spec
from livestack.schema.dtypes import DTYPE_BY_KIND, slot_dtype

cnp.import_array()

OK = LS_RING_OK
FULL = LS_RING_FULL
HEADER_SIZE = LS_RING_HEADER_SIZE
MAGIC = LS_RING_MAGIC
LAYOUT_VERSION = LS_RING_LAYOUT_VERSION


class RingError(Exception):
    """A ring segment is missing or is not the ring the caller expected; the message says which."""


class RingRoleTaken(RingError):
    """The ring already has a producer (or consumer): a ring takes one of each at a time."""


#: role name -> ROLE_* bit; the segment byte each role locks is ``bit - 1``
ROLES = {"producer": ROLE_PRODUCER, "consumer": ROLE_CONSUMER}
_ROLE_NAMES = {ROLE_PRODUCER: "producer", ROLE_CONSUMER: "consumer"}


def _role_bits(role):
    if role is None:
        return 0
    try:
        return ROLES[role]
    except (KeyError, TypeError):
        raise ValueError(f"role {role!r}: expected 'producer', 'consumer' or None") from None


cdef inline uint8_t *_array_ptr(cnp.ndarray arr, uint32_t slot_size, str what) except NULL:
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr):
        raise ValueError(f"{what}: array must be C-contiguous")
    if cnp.PyArray_ITEMSIZE(arr) != slot_size:
        raise ValueError(f"{what}: array itemsize {cnp.PyArray_ITEMSIZE(arr)} != ring slot size {slot_size}")
    return <uint8_t *>cnp.PyArray_DATA(arr)


def _initialised(mm):
    """Attach readiness: the header is there and the creator has published the magic."""
    if len(mm) < LS_RING_HEADER_SIZE:
        return False
    cdef const uint8_t[::1] v = mm
    return ls_load_acquire_u64(<const uint64_t *>&v[0]) == LS_RING_MAGIC


cdef class Ring:
    """One SPSC ring in a POSIX shared-memory segment.

    Create with :meth:`create` (the creator owns the segment and unlinks it) or attach with
    :meth:`attach`. **One producer and one consumer at a time**, enforced: a handle takes the
    producer or consumer role -- an exclusive lock on the segment (``livestack.ipc.shm``) that the
    kernel releases when the process dies -- when it attaches with ``role=`` or, failing that, at
    its first producer call (write, write_batch, claim, commit) or consumer call (read, view,
    peek, release). A second handle asking for a held role gets :class:`RingRoleTaken` naming the
    ring and the holder's pid. Observers (size, head, tail, free) take no role. C code that uses
    ``ring`` directly must hold the role first (attach with ``role=``, or ``_require``).

    Parameters of the numpy API: arrays must be C-contiguous with ``itemsize == slot_size``; the
    ring's ``dtype`` is the record dtype for single-kind rings, else the raw slot dtype whose
    header fields can be read and whose body is decoded by ``kind``.
    """

    def __cinit__(self):
        self.ring = NULL
        self._roles = 0

    @staticmethod
    def create(str name, uint64_t capacity, uint32_t slot_size, uint32_t record_kind=0, role=None):
        """Create and initialise a ring segment.

        Parameters
        ----------
        name : str
            Segment name (see ``livestack.ipc.shm.segment_name``); must not exist.
        capacity : int
            Number of slots, a power of two.
        slot_size : int
            64 or 128 (a record slot of the schema).
        record_kind : int
            0 for mixed kinds, else the only RecordKind carried.
        role : {None, "producer", "consumer"}
            Take this role now (the supervisor takes none: it creates and observes).
        """
        if capacity < 2 or capacity & (capacity - 1):
            raise ValueError(f"ring {name}: capacity {capacity} is not a power of two >= 2")
        if slot_size not in (64, 128):
            raise ValueError(f"ring {name}: slot size {slot_size} must be 64 or 128")
        if record_kind and record_kind not in _spec.RECORDS_BY_KIND:
            raise ValueError(f"ring {name}: unknown record kind {record_kind}")
        if record_kind and _spec.RECORDS_BY_KIND[record_kind].size != slot_size:
            raise ValueError(f"ring {name}: record kind {record_kind} is {_spec.RECORDS_BY_KIND[record_kind].size} bytes, not {slot_size}")
        bits = _role_bits(role)
        cdef Ring self = Ring.__new__(Ring)
        size = ls_ring_segment_size(capacity, slot_size)
        self._seg = _shm.Segment.create(name, size)
        self.name = name
        self.owner = True
        self._map()
        bname = name.encode()[:LS_RING_NAME_LENGTH - 1]
        ls_ring_init(self.ring, capacity, slot_size, record_kind, _spec.SCHEMA_VERSION,
                     os.getpid(), time.time_ns(), bname)
        self._finish()
        if bits:
            self.acquire(role)
        return self

    @staticmethod
    def attach(str name, slot_size=None, record_kind=None, double timeout=0.0, role=None):
        """Attach to an existing ring, checking it is the ring expected, and take ``role``.

        Raises RingError naming the segment and what differs (missing, magic, layout or schema
        version, slot size, record kind), or RingRoleTaken when ``role`` ("producer" or
        "consumer") is held by another handle. With ``timeout`` > 0, waits that long for the
        segment to appear and be initialised, and for the role to be free (a restarted process
        may attach while the kernel is still closing its predecessor).
        """
        bits = _role_bits(role)
        cdef Ring self = Ring.__new__(Ring)
        deadline = time.monotonic() + timeout
        try:
            self._seg = _shm.Segment.attach(name, timeout, _initialised if timeout > 0 else None)
        except _shm.SegmentMissing as e:
            what = "is not an initialised ring" if "not initialised" in str(e) else "does not exist"
            raise RingError(f"ring {name}: shared-memory segment {what}"
                            + (f" (waited {timeout:g} s)" if timeout > 0 else "")) from None
        self.name = name
        self.owner = False
        if len(self._seg.mm) < LS_RING_HEADER_SIZE:
            self.close()
            raise RingError(f"ring {name}: segment of {len(self._seg.mm)} bytes is smaller than a ring header")
        self._map()
        r = self.ring
        magic = ls_load_acquire_u64(&r.magic)
        if magic != LS_RING_MAGIC:
            self.close()
            raise RingError(f"ring {name}: bad magic {magic:#x} (expected {LS_RING_MAGIC:#x}): not a livestack ring or not initialised")
        if r.layout_version != LS_RING_LAYOUT_VERSION:
            v = r.layout_version
            self.close()
            raise RingError(f"ring {name}: ring layout version {v}, this build expects {LS_RING_LAYOUT_VERSION}")
        if r.schema_version != _spec.SCHEMA_VERSION:
            v = r.schema_version
            self.close()
            raise RingError(f"ring {name}: record schema version {v}, this build expects {_spec.SCHEMA_VERSION}")
        if slot_size is not None and r.slot_size != slot_size:
            v = r.slot_size
            self.close()
            raise RingError(f"ring {name}: slot size {v}, expected {slot_size}")
        if record_kind is not None and r.record_kind != record_kind:
            v = r.record_kind
            self.close()
            raise RingError(f"ring {name}: record kind {v}, expected {record_kind}")
        if <size_t>len(self._seg.mm) < ls_ring_segment_size(r.capacity, r.slot_size):
            self.close()
            raise RingError(f"ring {name}: segment shorter than its header says")
        self._finish()
        if bits:
            try:
                self.acquire(role, max(0.0, deadline - time.monotonic()))
            except BaseException:
                self.close()
                raise
        return self

    # --- roles ---------------------------------------------------------------------------
    def acquire(self, role, double timeout=0.0):
        """Take ``role`` ("producer" or "consumer") for this handle, waiting up to ``timeout`` s
        for a holder to go; RingRoleTaken naming the ring and the holder when it stays taken."""
        self._check()
        cdef int bit = _role_bits(role)
        if not bit:
            raise ValueError(f"ring {self.name}: acquire needs a role, got {role!r}")
        if self._roles & bit:
            return
        deadline = time.monotonic() + timeout
        pause = 0.001
        while not self._seg.take_role(bit - 1):
            if time.monotonic() >= deadline:
                raise RingRoleTaken(self._taken_message(bit))
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        self._roles |= bit
        if bit == ROLE_PRODUCER:
            ls_ring_producer_resume(self.ring)  # claim from the published tail (a killed producer's commit)
        # informative only (the lock decides): who holds it, for the next attacher's error
        ls_store_release_u64(<uint64_t *>self._holder_pid(bit), <uint64_t>os.getpid())

    def release_role(self, role):
        """Give ``role`` back (close does this for every role held)."""
        cdef int bit = _role_bits(role)
        if not (self._roles & bit):
            return
        if self.ring != NULL and self._holder_pid(bit)[0] == os.getpid():
            ls_store_release_u64(<uint64_t *>self._holder_pid(bit), 0)
        self._seg.release_role(bit - 1)
        self._roles &= ~bit

    @property
    def roles(self):
        """The roles this handle holds, e.g. ``("producer",)``."""
        return tuple(n for b, n in _ROLE_NAMES.items() if self._roles & b)

    def holder(self, role):
        """Pid recorded by the holder of ``role`` (0 when none recorded or it is gone)."""
        self._check()
        cdef int bit = _role_bits(role)
        if not bit:
            raise ValueError(f"ring {self.name}: holder needs a role, got {role!r}")
        pid = self._holder_pid(bit)[0]
        return pid if pid > 0 and _shm.pid_alive(pid) else 0

    cdef int _require(self, int role) except -1:
        if self._roles & role:
            return 0
        self._check()
        self.acquire(_ROLE_NAMES[role])
        return 0

    cdef int64_t *_holder_pid(self, int bit) noexcept:
        return &self.ring.producer_pid if bit == ROLE_PRODUCER else &self.ring.consumer_pid

    def _taken_message(self, int bit):
        what = _ROLE_NAMES[bit]
        pid = self._holder_pid(bit)[0]
        if pid > 0 and pid == os.getpid():
            who = f"another handle in this process (pid {pid})"
        elif pid > 0 and _shm.pid_alive(pid):
            who = f"pid {pid}"
        else:
            who = "a process whose pid is unknown"
        return (f"ring {self.name}: already has a {what}, held by {who}; a ring takes one producer and one "
                f"consumer at a time (the lock goes when that process exits)")

    cdef _map(self):
        cdef unsigned char[::1] view = self._seg.mm
        self.ring = <ls_ring_t *>&view[0]

    cdef _finish(self):
        r = self.ring
        self.dtype = DTYPE_BY_KIND[r.record_kind] if r.record_kind else slot_dtype(r.slot_size)
        self._slots = np.frombuffer(self._seg.mm, dtype=self.dtype, count=r.capacity, offset=LS_RING_HEADER_SIZE)
        self._claimed = 0
        self._viewed = 0

    cdef int _check(self) except -1:
        if self.ring == NULL:
            raise RingError(f"ring {self.name}: closed")
        return 0

    # --- properties ----------------------------------------------------------------------
    @property
    def capacity(self):
        self._check()
        return self.ring.capacity

    @property
    def slot_size(self):
        self._check()
        return self.ring.slot_size

    @property
    def record_kind(self):
        self._check()
        return self.ring.record_kind

    @property
    def head(self):
        """Consumer position: records released so far."""
        self._check()
        return ls_load_acquire_u64(&self.ring.head)

    @property
    def tail(self):
        """Producer position: records committed so far."""
        self._check()
        return ls_load_acquire_u64(&self.ring.tail)

    @property
    def creator_pid(self):
        self._check()
        return self.ring.creator_pid

    def size(self):
        """Records written and not yet released."""
        self._check()
        return ls_load_acquire_u64(&self.ring.tail) - ls_load_acquire_u64(&self.ring.head)

    def free(self):
        """Slots a write could use now."""
        self._check()
        return self.ring.capacity - self.size()

    # --- producer ------------------------------------------------------------------------
    def write(self, rec):
        """Copy one record in. Returns OK (0) or FULL (1); never blocks, never overwrites.

        ``rec`` is a 1-element (or longer: the first element is written) numpy array with the
        ring's slot size, or a bytes-like object of exactly ``slot_size`` bytes.
        """
        self._check()
        if not (self._roles & ROLE_PRODUCER):
            self._require(ROLE_PRODUCER)
        cdef const uint8_t[::1] buf
        cdef uint8_t *p
        if isinstance(rec, cnp.ndarray):
            if cnp.PyArray_SIZE(rec) < 1:
                raise ValueError(f"ring {self.name}: write of an empty array")
            p = _array_ptr(rec, self.ring.slot_size, f"ring {self.name}")
            return ls_ring_write(self.ring, p)
        buf = bytes(rec) if not isinstance(rec, (bytes, bytearray, memoryview)) else rec
        if buf.shape[0] != self.ring.slot_size:
            raise ValueError(f"ring {self.name}: record of {buf.shape[0]} bytes, slot size is {self.ring.slot_size}")
        return ls_ring_write(self.ring, &buf[0])

    def write_batch(self, cnp.ndarray recs, bint all_or_nothing=False):
        """Copy as many of ``recs`` in as fit; returns how many were written (a prefix).

        With ``all_or_nothing`` writes either every record or none (returns 0).
        """
        self._check()
        if not (self._roles & ROLE_PRODUCER):
            self._require(ROLE_PRODUCER)
        cdef uint64_t n = cnp.PyArray_SIZE(recs)
        cdef uint8_t *p = _array_ptr(recs, self.ring.slot_size, f"ring {self.name}")
        if all_or_nothing and ls_ring_free(self.ring, n) < n:
            return 0
        cdef uint64_t k
        with nogil:
            k = ls_ring_write_batch(self.ring, p, n)
        return k

    def claim(self, uint64_t n):
        """Claim up to ``n`` free slots, contiguous in memory, as a writable numpy view.

        Fill the view in place and call :meth:`commit` with how many to publish. The view may be
        shorter than ``n`` (ring nearly full, or the wrap point); empty when the ring is full.
        """
        self._check()
        if not (self._roles & ROLE_PRODUCER):
            self._require(ROLE_PRODUCER)
        cdef uint64_t pos
        cdef uint64_t k = ls_ring_claim_contiguous(self.ring, n, &pos)
        self._claimed = k
        cdef uint64_t first = pos & self.ring.mask
        return self._slots[first:first + k]

    def commit(self, uint64_t n):
        """Publish ``n`` slots filled after :meth:`claim` (n <= claimed)."""
        self._check()
        if not (self._roles & ROLE_PRODUCER):
            self._require(ROLE_PRODUCER)
        if n > self._claimed:
            raise ValueError(f"ring {self.name}: commit of {n} slots, only {self._claimed} claimed")
        ls_ring_commit(self.ring, n)
        self._claimed = 0

    # --- consumer ------------------------------------------------------------------------
    def read(self, cnp.ndarray out, max_records=None):
        """Copy up to ``len(out)`` records into ``out`` and release them; returns the count."""
        self._check()
        if not (self._roles & ROLE_CONSUMER):
            self._require(ROLE_CONSUMER)
        cdef uint64_t n = cnp.PyArray_SIZE(out)
        if max_records is not None and max_records < n:
            n = max_records
        cdef uint8_t *p = _array_ptr(out, self.ring.slot_size, f"ring {self.name}")
        cdef uint64_t k
        with nogil:
            k = ls_ring_read(self.ring, p, n)
        return k

    def view(self, uint64_t max_records=0xffffffffffffffff):
        """Zero-copy read-only view of up to ``max_records`` readable records (stops at the wrap).

        Nothing is released: call :meth:`release` when done with them. Until then the producer
        cannot overwrite them.
        """
        self._check()
        if not (self._roles & ROLE_CONSUMER):
            self._require(ROLE_CONSUMER)
        cdef uint64_t pos
        cdef uint64_t k = ls_ring_view(self.ring, max_records, &pos)
        self._viewed = k
        cdef uint64_t first = pos & self.ring.mask
        v = self._slots[first:first + k]
        v.flags.writeable = False
        return v

    def peek(self):
        """The next readable record as a 1-element read-only view, or None when empty."""
        self._check()
        if not (self._roles & ROLE_CONSUMER):
            self._require(ROLE_CONSUMER)
        if ls_ring_available(self.ring) == 0:
            return None
        cdef uint64_t first = self.ring.head & self.ring.mask
        self._viewed = 1 if self._viewed < 1 else self._viewed
        v = self._slots[first:first + 1]
        v.flags.writeable = False
        return v

    def release(self, uint64_t n):
        """Give ``n`` viewed records back to the producer."""
        self._check()
        if not (self._roles & ROLE_CONSUMER):
            self._require(ROLE_CONSUMER)
        cdef uint64_t avail = ls_load_acquire_u64(&self.ring.tail) - self.ring.head
        if n > avail:
            raise ValueError(f"ring {self.name}: release of {n} records, only {avail} readable")
        ls_ring_release(self.ring, n)
        self._viewed = 0

    def wait_readable(self, double timeout, backoff=None):
        """Wait until at least one record is readable; True, or False after ``timeout`` seconds."""
        return _wait(self, timeout, backoff, True)

    def wait_writable(self, double timeout, uint64_t n=1, backoff=None):
        """Wait until ``n`` slots are free; True, or False after ``timeout`` seconds."""
        return _wait(self, timeout, backoff, False, n)

    # --- lifetime ------------------------------------------------------------------------
    def close(self):
        """Unmap and give back the roles held (views handed out keep the mapping alive until they
        are gone)."""
        if self._roles and self.ring != NULL:
            for bit in (ROLE_PRODUCER, ROLE_CONSUMER):
                if self._roles & bit and self._holder_pid(bit)[0] == os.getpid():
                    ls_store_release_u64(<uint64_t *>self._holder_pid(bit), 0)
        self.ring = NULL
        self._slots = None
        self._roles = 0
        if self._seg is not None:
            self._seg.close()  # closing the descriptor releases the role locks

    @property
    def closed(self):
        return self.ring == NULL

    def unlink(self):
        """Remove the segment name (the creator does this at shutdown)."""
        _shm.unlink_segment(self.name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        owner = self.owner
        self.close()
        if owner:
            self.unlink()

    def __repr__(self):
        if self.ring == NULL:
            return f"<Ring {self.name} closed>"
        return (f"<Ring {self.name} capacity={self.ring.capacity} slot={self.ring.slot_size} "
                f"kind={self.ring.record_kind} head={self.head} tail={self.tail}>")


def _wait(Ring ring, double timeout, backoff, bint readable, uint64_t n=1):
    from livestack.ipc.wait import Backoff
    cdef object b = backoff if backoff is not None else Backoff("backoff")
    deadline = time.monotonic() + timeout
    b.reset()
    while True:
        ring._check()
        if readable:
            if ls_ring_available(ring.ring) > 0:
                return True
        elif ls_ring_free(ring.ring, n) >= n:
            return True
        if time.monotonic() >= deadline:
            return False
        b.idle()
