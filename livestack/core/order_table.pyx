# cython: language_level=3
"""The order table: slot allocation (free slots, then the oldest terminal one) and order state
changes with their bookkeeping (order_table.pxd)."""
from libc.string cimport memset, memmove
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from livestack.schema.records cimport *
from livestack.core.ctx cimport *
from livestack.core.core cimport Core, CORE_N_DENY, CORE_N_ANOMALY, CORE_N_LIMITS, LS_BOOK_LEVELS_PER_RECORD
from livestack.core.lifecycle cimport is_live, is_pending
from livestack.core.orders cimport order_index_remove
from livestack.core.emit cimport emit_order_state


cdef int64_t alloc_order_slot(Core c) noexcept nogil:
    cdef int64_t s
    cdef int64_t *order
    if c.n_free_slots > 0:
        c.n_free_slots -= 1
        s = c.free_slots[c.n_free_slots]
    elif c.n_terminal > 0:
        s = c.terminal_fifo[c.terminal_head]
        c.terminal_head = (c.terminal_head + 1) % c.max_orders
        c.n_terminal -= 1
        order = ls_ctx_order(c.ctx_words, s)
        order_index_remove(&c.order_index, order[LS_ORD_ID])
    else:
        return -1
    memset(ls_ctx_order(c.ctx_words, s), 0, LS_ORD_WORDS * sizeof(int64_t))
    c.recon_wait[s] = 0   # (a reused slot was terminal: nothing outstanding; recovery.pyx)
    c.ask_state[s] = 0
    return s


cdef void set_order_state(Core c, int64_t s, int64_t new, int64_t exec_type) noexcept nogil:
    """Move order slot s to state new; keep in-flight/open counts and live lists; record it."""
    cdef int64_t *order = ls_ctx_order(c.ctx_words, s)
    cdef int64_t prev = order[LS_ORD_STATE], k, n
    cdef int64_t i = order[LS_ORD_INST]
    cdef int64_t *inst_ctx = ls_ctx_inst(c.ctx_words, i)
    cdef int64_t *live
    inst_ctx[LS_INST_IN_FLIGHT] += (<int64_t>is_pending(new)) - (<int64_t>is_pending(prev))
    order[LS_ORD_STATE] = new
    if is_live(prev) and not is_live(new):
        if order[LS_ORD_SIDE] == LS_SIDE_BUY:
            inst_ctx[LS_INST_OPEN_BUY_QTY] -= order[LS_ORD_LEAVES]
        else:
            inst_ctx[LS_INST_OPEN_SELL_QTY] -= order[LS_ORD_LEAVES]
        order[LS_ORD_LEAVES] = 0
        live = live_slots(c, i)
        n = inst_ctx[LS_INST_N_LIVE]
        for k in range(n):
            if live[k] == s:
                memmove(live + k, live + k + 1, (n - k - 1) * sizeof(int64_t))
                break
        inst_ctx[LS_INST_N_LIVE] = n - 1
        c.open_orders -= 1
        if order[LS_ORD_PENDING_ID] != 0:
            order_index_remove(&c.order_index, order[LS_ORD_PENDING_ID])
            order[LS_ORD_PENDING_ID] = 0
        c.terminal_fifo[(c.terminal_head + c.n_terminal) % c.max_orders] = s
        c.n_terminal += 1
    emit_order_state(c, order, prev, exec_type)
