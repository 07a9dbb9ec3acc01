from libc.stdint cimport int64_t, uint8_t
from livestack.core.ctx cimport ls_strategy_ctx_t
from livestack.core.strategy cimport Strategy

cdef class StrategySet(Strategy):
    cdef Strategy s0, s1, s2, s3, s4, s5, s6, s7
    cdef readonly int n
    cdef int64_t param_off[8]
    cdef int64_t n_params[8]
    cdef int policy[8]
    cdef uint8_t disabled_[8]
    cdef uint8_t cancel_pending[8]
    cdef int64_t errors_[8]
    cdef int64_t owner[256]
    cdef readonly int64_t foreign
    cdef readonly list members
    cdef inline void _dispatch(self, int k, ls_strategy_ctx_t *ctx) noexcept nogil
    cdef void _call(self, int k, ls_strategy_ctx_t *ctx) noexcept nogil
    cpdef tuple error_record(self, int64_t code, int64_t ev_kind, int64_t ev_status)
