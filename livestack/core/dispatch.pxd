# Order dispatch (dispatch.pyx): a strategy intent or an operator command -> risk checks ->
# execution control (trading state, duplicates, throttle, rate, table room, ring budget) -> an
# ORDER_CMD in out_orders and the order table updated. Each returns 0 or the DenyReason.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from livestack.core.core cimport Core

cdef void run_intent(Core c, int64_t *intent) noexcept nogil
cdef int new_order(Core c, int64_t i, int64_t side, int64_t px, int64_t qty, int64_t tif, int64_t ord_type,
                   bint reduce_only) noexcept nogil
cdef int cancel_order(Core c, int64_t client_order_id, bint operator) noexcept nogil
cdef int replace_order(Core c, int64_t client_order_id, int64_t px, int64_t qty) noexcept nogil
cdef int64_t cancel_all(Core c, int64_t only) noexcept nogil
