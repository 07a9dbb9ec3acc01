# The order table (order_table.pyx): order slots in the context block, each instrument's live
# list, and every state change of an order (open quantities, in-flight counts, the FIFO of terminal
# slots kept for late events, the ORDER_STATE record). The lifecycle itself: lifecycle.pyx.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from livestack.core.core cimport Core
from livestack.core.ctx cimport ls_ctx_inst, LS_INST_FIXED_WORDS

cdef inline int64_t *live_slots(Core c, int64_t i) noexcept nogil:
    """Instrument i's live order slots, in creation order (LS_INST_N_LIVE of them)."""
    return ls_ctx_inst(c.ctx_words, i) + LS_INST_FIXED_WORDS

cdef int64_t alloc_order_slot(Core c) noexcept nogil
cdef void set_order_state(Core c, int64_t slot, int64_t new_state, int64_t exec_type) noexcept nogil
