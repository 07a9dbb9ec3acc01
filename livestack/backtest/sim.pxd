from libc.stdint cimport uint8_t, uint32_t, int64_t, uint64_t
from livestack.core.core cimport Core
from livestack.schema.records cimport ls_exec_t

cdef struct sim_order_t:
    int64_t id
    int64_t venue_id
    int64_t side
    int64_t price
    int64_t qty
    int64_t cum
    int64_t tif
    uint32_t instrument
    int64_t live

cdef class SimVenue:
    cdef sim_order_t *orders
    cdef int64_t cap
    cdef int64_t n
    cdef uint8_t *q          # EXEC records waiting for the next input (128-byte slots)
    cdef int64_t q_cap
    cdef int64_t q_n
    cdef uint8_t *q2         # swap buffer
    cdef int64_t next_exec_id
    cdef int64_t next_venue_id
    cdef readonly uint64_t fills
    cdef readonly uint64_t dropped
    cdef ls_exec_t *_ev(self, const sim_order_t *o, int64_t exec_type) noexcept nogil
    cdef void _fill(self, sim_order_t *o, int64_t px, int64_t q) noexcept nogil
    cdef sim_order_t *_find(self, int64_t id) noexcept nogil
    cdef void _compact(self) noexcept nogil
    cdef void on_command(self, Core core, const uint8_t *cmd) noexcept nogil
    cdef void on_md(self, Core core, const uint8_t *rec) noexcept nogil
