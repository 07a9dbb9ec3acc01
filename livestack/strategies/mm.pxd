from libc.stdint cimport int64_t
from livestack.core.ctx cimport ls_strategy_ctx_t
from livestack.core.strategy cimport SdkStrategy

cdef class MarketMaker(SdkStrategy):
    cdef inline void quote(self, ls_strategy_ctx_t *ctx, int64_t i) noexcept nogil
