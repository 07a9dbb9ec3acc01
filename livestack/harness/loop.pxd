from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from livestack.ipc.ring cimport ls_ring_t
from livestack.core.core cimport Core
from livestack.telemetry.block cimport ls_tel_block_t

cdef enum:
    MAX_MD_RINGS = 8
    MAX_VENUES = 8
    MAX_ROUTES = 64
    MAX_TEL_RINGS = 32

cdef enum HarnessState:
    HS_STARTING = 0
    HS_RUNNING = 1
    HS_DRAINING = 2
    HS_STOPPED = 3

cdef struct harness_counters_t:
    uint64_t inputs
    uint64_t md
    uint64_t execs
    uint64_t cmds
    uint64_t timers
    uint64_t orders_sent
    uint64_t records_out
    uint64_t records_backpressure
    uint64_t events_dropped
    uint64_t replies_dropped
    uint64_t orders_ring_full
    uint64_t loops
    uint64_t disk_halts
    uint64_t stop_inject_skipped


cdef class Harness:
    cdef readonly Core core
    cdef object _rings
    cdef object telemetry
    cdef ls_tel_block_t *tel
    cdef int tel_proc
    cdef uint32_t inst_ids[64]
    cdef int n_inst
    cdef int64_t rtt_coid[4096]
    cdef int64_t rtt_ts[4096]
    cdef int64_t next_gauge_ns
    cdef int64_t t_chain                 # end of the last input's core work when it emitted nothing (0: none)
    cdef ls_ring_t *md[8]
    cdef int n_md
    cdef ls_ring_t *exec_ring             # venue 0's (the only one without [[venues]])
    cdef ls_ring_t *cmd_ring
    cdef ls_ring_t *orders_ring           # venue 0's
    cdef ls_ring_t *exec_rings[8]         # one orders/exec pair per venue ([[venues]], issue 16)
    cdef ls_ring_t *orders_rings[8]
    cdef int n_venues
    cdef uint32_t route_inst[64]          # instrument id -> index of its venue (default 0)
    cdef uint8_t route_venue[64]
    cdef int n_routes
    cdef ls_ring_t *tel_rings[32]         # telemetry ring slots, in registration order
    cdef int n_tel_rings
    cdef ls_ring_t *records_ring
    cdef ls_ring_t *reply_ring
    cdef ls_ring_t *events_ring
    cdef readonly uint64_t hseq
    cdef readonly uint64_t rseq
    cdef uint64_t rpend                  # records written into the records ring, not yet committed
    cdef int64_t timer_interval_ns
    cdef int64_t next_timer_ns
    cdef uint64_t batch
    cdef readonly uint64_t records_reserve
    cdef readonly int state
    cdef bint take_md
    cdef bint halted_for_records
    cdef int64_t disk_level
    cdef int64_t disk_pending
    cdef harness_counters_t c
    cdef uint8_t scratch[128]

    cdef int poll_once(self) noexcept nogil
    cdef int venue_of(self, uint32_t instrument) noexcept nogil
    cdef int64_t orders_room(self) noexcept nogil
    cdef void consume(self, ls_ring_t *ring, const uint8_t *rec, int source) noexcept nogil
    cdef void inject(self, const uint8_t *rec) noexcept nogil
    cdef void emit_outputs(self, const uint8_t *rec, int64_t t_in, int64_t now) noexcept nogil
    cdef void journal(self, const uint8_t *rec, uint32_t slot_size) noexcept nogil
    cdef void tally(self, const uint8_t *rec, int source, int64_t t_in, int64_t t_core0, int64_t t_core1) noexcept nogil
    cdef void gauges(self, int64_t now) noexcept nogil
    cdef void _tally_record(self, const uint8_t *slot, int64_t now) noexcept nogil
    cdef uint32_t _inst_slot(self, uint32_t instrument) noexcept nogil
