# cython: language_level=3
"""nogil kernels for bench/bench_ring.py: ping-pong latency and streaming throughput through the
project's ring, exactly as the harness uses it (the C functions of ls_ring.h via ring.pxd)."""

import numpy as np
cimport numpy as cnp
from libc.stdint cimport uint8_t, uint64_t, int64_t
from libc.string cimport memset
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

from livestack.ipc.ring cimport (Ring, ls_ring_t, ls_ring_write, ls_ring_peek, ls_ring_release,
                                 ls_ring_read, ls_ring_write_batch, ls_cpu_relax)

cnp.import_array()


cdef inline int64_t now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000000000 + ts.tv_nsec


def ping(Ring tx, Ring rx, int64_t n, int64_t[::1] rtt_ns):
    """Send a record, spin until the echo returns; rtt_ns[i] = round trip of message i."""
    cdef uint8_t rec[128]
    cdef ls_ring_t *t = tx.ring
    cdef ls_ring_t *r = rx.ring
    cdef int64_t i, t0
    cdef const uint8_t *p
    memset(rec, 0, 128)
    with nogil:
        for i in range(n):
            (<int64_t *>(rec + 8))[0] = i
            t0 = now_ns()
            while ls_ring_write(t, rec) != 0:
                ls_cpu_relax()
            p = ls_ring_peek(r)
            while p == NULL:
                ls_cpu_relax()
                p = ls_ring_peek(r)
            ls_ring_release(r, 1)
            rtt_ns[i] = now_ns() - t0


def pong(Ring rx, Ring tx, int64_t n):
    """Echo n records from rx to tx, spinning."""
    cdef ls_ring_t *t = tx.ring
    cdef ls_ring_t *r = rx.ring
    cdef int64_t i
    cdef const uint8_t *p
    with nogil:
        for i in range(n):
            p = ls_ring_peek(r)
            while p == NULL:
                ls_cpu_relax()
                p = ls_ring_peek(r)
            while ls_ring_write(t, p) != 0:
                ls_cpu_relax()
            ls_ring_release(r, 1)


def produce_c(Ring tx, int64_t total, int64_t batch):
    """Write total records from C: one ls_ring_write each (batch == 1) or ls_ring_write_batch."""
    cdef ls_ring_t *t = tx.ring
    cdef uint8_t[::1] buf = np.zeros(batch * t.slot_size, dtype=np.uint8)
    cdef int64_t done = 0, k
    with nogil:
        if batch == 1:
            while done < total:
                if ls_ring_write(t, &buf[0]) == 0:
                    done += 1
                else:
                    ls_cpu_relax()
        else:
            while done < total:
                k = ls_ring_write_batch(t, &buf[0], min(batch, total - done))
                if k == 0:
                    ls_cpu_relax()
                done += k


def drain(Ring rx, int64_t total, int64_t batch=4096):
    """Read total records in batches, spinning; returns ns from the first record to the last."""
    cdef ls_ring_t *r = rx.ring
    cdef uint8_t[::1] buf = np.zeros(batch * r.slot_size, dtype=np.uint8)
    cdef int64_t done = 0, k, t0 = 0
    with nogil:
        while done < total:
            k = ls_ring_read(r, &buf[0], batch)
            if k and t0 == 0:
                t0 = now_ns()
            if k == 0:
                ls_cpu_relax()
            done += k
    return now_ns() - t0
