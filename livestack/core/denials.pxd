# Coalescing of denials (denials.pyx): runs of one DenyReason on one instrument.
from libc.stdint cimport int64_t

cdef struct Denial:                 # one intent denied, as a DENIAL record carries it
    int64_t reason
    int64_t intent
    int64_t side
    int64_t price
    int64_t qty
    int64_t client_order_id
    int64_t count                   # denials this stands for

cdef struct DenialRuns:
    int64_t n_inst
    int64_t *run_reason             # [n_inst] DenyReason of the instrument's current run, -1 none
    int64_t *repeats                # [n_inst] repeats of that run not yet written
    Denial *last_repeat             # [n_inst] the last of those repeats
    int64_t pending                 # instruments with repeats > 0

cdef int denial_runs_init(DenialRuns *runs, int64_t n_inst) except -1
cdef void denial_runs_free(DenialRuns *runs) noexcept nogil
cdef bint denial_repeat(DenialRuns *runs, int64_t i, const Denial *d) noexcept nogil
cdef bint denial_take_repeats(DenialRuns *runs, int64_t i, Denial *out) noexcept nogil
cdef void denial_start_run(DenialRuns *runs, int64_t i, int64_t reason) noexcept nogil
cdef bint denial_end_run(DenialRuns *runs, int64_t i, Denial *out) noexcept nogil
