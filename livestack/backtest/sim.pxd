from libc.stdint cimport uint8_t, uint64_t
from livestack.core.core cimport Core
from livestack.matching.engine cimport MatchingEngine

cdef struct acc_t:
    uint8_t *buf
    uint64_t n
    uint64_t cap
    uint64_t size
    int oom

cdef void _acc_add(acc_t *a, const uint8_t *src, uint64_t n) noexcept nogil
cdef void _drain(Core core, MatchingEngine engine, acc_t *ao, acc_t *ar, bint collect) noexcept nogil
