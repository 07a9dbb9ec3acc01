# cython: language_level=3
"""Per-event latency of ``Core.process`` into a fixed-bucket histogram (benchmarks only).

This module reads the monotonic clock around each ``process`` call; the core itself never does.
Buckets are 1 ns wide up to ``max_ns``; slower events go to the last bucket. The cost of the two
clock reads is measured on an empty interval and reported separately (not subtracted).
"""

from libc.stdint cimport uint8_t, uint64_t, int64_t
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

import numpy as np
cimport numpy as cnp

from livestack.core.core cimport Core

cnp.import_array()


cdef inline int64_t _now() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_MONOTONIC, &t)
    return t.tv_sec * 1000000000 + t.tv_nsec


def measure(Core core, inputs, int64_t max_ns=100000):
    """Process every input, timing each ``process`` call (outputs drained, as the harness would).

    Returns (histogram int64[max_ns + 1], clock_overhead histogram int64[max_ns + 1]).
    """
    arr = np.ascontiguousarray(inputs)
    cdef Py_ssize_t size = arr.dtype.itemsize
    cdef const uint8_t *src = <const uint8_t *>cnp.PyArray_DATA(arr)
    cdef Py_ssize_t n = arr.shape[0], k
    hist = np.zeros(max_ns + 1, dtype=np.int64)
    over = np.zeros(max_ns + 1, dtype=np.int64)
    cdef int64_t *h = <int64_t *>cnp.PyArray_DATA(hist)
    cdef int64_t *o = <int64_t *>cnp.PyArray_DATA(over)
    cdef int64_t t0, t1, d
    with nogil:
        for k in range(n):
            t0 = _now()
            core.process(src + k * size, k + 1)
            t1 = _now()
            core.clear_outputs()
            d = t1 - t0
            if d > max_ns:
                d = max_ns
            h[d] += 1
        for k in range(n):
            t0 = _now()
            t1 = _now()
            d = t1 - t0
            if d > max_ns:
                d = max_ns
            o[d] += 1
    return hist, over

