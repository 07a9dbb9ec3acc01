from libc.stdint cimport uint8_t, uint16_t, uint32_t, int64_t, uint64_t
from livestack.schema.records cimport ls_exec_t, ls_order_cmd_t
from livestack.matching.book cimport me_level_t, me_side_t, me_ladder_t
from livestack.matching.orders cimport me_order_t, me_orders_t

cdef struct me_inst_t:
    uint32_t id
    int64_t tick
    int64_t lot
    me_ladder_t book[2]  # the public book: [0] bids, [1] asks
    me_side_t ours[2]  # prices of our resting orders per side, best last (qty = how many orders there)
    int64_t n_ours[2]  # our resting orders per side
    int64_t best_ours[2]  # best price among them (valid when n_ours > 0)

cdef struct me_pending_t:
    int64_t arrival
    ls_order_cmd_t cmd

cdef class MatchingEngine:
    cdef me_inst_t *insts
    cdef int64_t n_insts
    cdef me_orders_t live        # our live resting orders (orders.pxd)
    cdef me_pending_t *pend      # commands in flight to the engine (ring buffer, arrival order)
    cdef int64_t pend_head
    cdef int64_t pend_n
    cdef int64_t pend_cap
    cdef ls_exec_t *out          # execution events in flight to the stack (ring buffer, delivery order)
    cdef int64_t out_head
    cdef int64_t out_n
    cdef int64_t out_cap
    cdef readonly int64_t order_latency_ns
    cdef readonly int64_t order_jitter_ns
    cdef readonly int64_t response_latency_ns
    cdef readonly int64_t response_jitter_ns
    cdef readonly int64_t market_ts
    cdef readonly int64_t last_arrival
    cdef readonly int64_t last_deliver
    cdef readonly int64_t exec_epoch
    cdef readonly int64_t next_exec_id
    cdef readonly int64_t next_voi
    cdef uint64_t rng
    cdef readonly uint64_t n_commands
    cdef readonly uint64_t n_events
    cdef readonly uint64_t n_fills
    cdef readonly uint64_t n_rejects
    cdef readonly uint64_t n_md
    cdef int oom

    # nogil surface (the backtest drives these directly)
    cdef int submit_cmd(self, const uint8_t *cmd) noexcept nogil
    cdef int on_md(self, const uint8_t *rec, int64_t t) noexcept nogil
    cdef int advance_to(self, int64_t now) noexcept nogil
    cdef int64_t next_arrival(self) noexcept nogil
    cdef int64_t next_delivery(self) noexcept nogil
    cdef int pop_event(self, uint8_t *dst) noexcept nogil
    cdef int cancel_all(self, int64_t now) noexcept nogil

    # internals
    cdef uint64_t _rand(self) noexcept nogil
    cdef int64_t _inst_index(self, uint32_t id) noexcept nogil
    cdef int _set_level(self, int64_t ii, int side, int64_t px, int64_t qty, int64_t t) noexcept nogil
    cdef int _trade(self, int64_t ii, int aggressor, int64_t px, int64_t qty, int64_t t) noexcept nogil
    cdef int _cross(self, int64_t ii, int our_side, int64_t px, int64_t t) noexcept nogil
    cdef void _ours_add(self, me_inst_t *I, int s, int64_t px, int64_t delta) noexcept nogil
    cdef int64_t _find_order(self, int64_t coid) noexcept nogil
    cdef void _remove_at(self, int64_t k) noexcept nogil
    cdef int64_t _link(self, const me_order_t *o) noexcept nogil
    cdef int _rest(self, me_order_t *o) noexcept nogil
    cdef bint _crosses(self, int64_t ii, int side, int64_t price) noexcept nogil
    cdef int _take(self, me_order_t *o, int64_t t) noexcept nogil
    cdef int _fill(self, me_order_t *o, int64_t k, int64_t px, int64_t f, int64_t t) noexcept nogil
    cdef ls_exec_t *_slot(self) noexcept nogil
    cdef ls_exec_t *_blank(self, int et, int64_t t) noexcept nogil
    cdef ls_exec_t *_event(self, int et, int64_t t, const me_order_t *o) noexcept nogil
    cdef ls_exec_t *_reject(self, int et, int64_t t, const ls_order_cmd_t *c, uint16_t reason) noexcept nogil
    cdef int _process(self, const ls_order_cmd_t *c, int64_t t) noexcept nogil
    cdef int _new(self, const ls_order_cmd_t *c, int64_t t) noexcept nogil
    cdef int _cancel(self, const ls_order_cmd_t *c, int64_t t) noexcept nogil
    cdef int _replace(self, const ls_order_cmd_t *c, int64_t t) noexcept nogil
    cdef int _status(self, const ls_order_cmd_t *c, int64_t t) noexcept nogil
    cdef uint16_t _validate(self, int64_t ii, int64_t price, int64_t qty, int ord_type) noexcept nogil
