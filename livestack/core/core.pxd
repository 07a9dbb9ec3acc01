# The Core Runtime's surface for the harness (nogil, no allocation per event) and for Python.
cimport cython
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from livestack.core.ctx cimport ls_strategy_ctx_t
from livestack.schema.records cimport ls_exec_t, ls_control_cmd_t, ls_order_cmd_t
from livestack.core.strategy cimport Strategy, ls_strategy_fn
from livestack.core.book cimport BookSide
from livestack.core.denials cimport Denial, DenialRuns
from livestack.core.orders cimport OrderIndex

cdef enum:
    CORE_N_DENY = 32       # counters by DenyReason value
    CORE_N_ANOMALY = 32    # counters by Anomaly value
    CORE_N_LIMITS = 16     # per-instrument limits by RiskLimit value
    LS_BOOK_LEVELS_PER_RECORD = 5  # levels per BOOK_LEVELS record (spec.BOOK_LEVELS_PER_RECORD)

@cython.final
cdef class Core:
    # ---- outputs of the process() calls since clear_outputs() --------------------------------
    cdef uint8_t *out_orders          # ORDER_CMD, 64-byte slots
    cdef uint64_t n_out_orders
    cdef uint64_t cap_out_orders      # worst case of one input
    cdef uint8_t *out_records         # 128-byte slots (64-byte kinds in the first 64 bytes)
    cdef uint64_t n_out_records
    cdef uint64_t cap_out_records     # worst case of one input
    cdef public int64_t orders_budget # ORDER_CMDs the order ring takes; beyond it: BACKPRESSURE

    # ---- counters (monotonic; read by the harness into the telemetry block) -------------------
    cdef uint64_t c_events
    cdef uint64_t c_md
    cdef uint64_t c_exec
    cdef uint64_t c_control
    cdef uint64_t c_timer
    cdef uint64_t c_bad_records
    cdef uint64_t c_strategy_calls
    cdef uint64_t c_intents
    cdef uint64_t c_orders_sent
    cdef uint64_t c_news
    cdef uint64_t c_cancels
    cdef uint64_t c_replaces
    cdef uint64_t c_fills
    cdef uint64_t c_denials
    cdef uint64_t c_anomalies
    cdef uint64_t c_unknown_order_execs
    cdef uint64_t c_late_events          # cancel/replace rejects of orders that had already ended
    cdef uint64_t c_out_overflow
    cdef uint64_t c_deny[CORE_N_DENY]
    cdef uint64_t c_anomaly[CORE_N_ANOMALY]
    cdef readonly int64_t open_orders          # live orders now (gauge)

    # ---- state ---------------------------------------------------------------------------------
    cdef int64_t *w                   # the strategy context block: book, orders, positions, intents
    cdef int64_t n_words
    cdef int64_t n_inst
    cdef int64_t depth                # room per side of each instrument's top arrays in the context (max book_depth)
    cdef BookSide *bids               # [n_inst] the full bid book of each instrument (book.pyx)
    cdef BookSide *asks               # [n_inst] the full ask book
    cdef int64_t top_levels           # N of the BOOK_LEVELS records (0 = none)
    cdef int64_t top_chunks           # BOOK_LEVELS records per side: ceil(N / LS_BOOK_LEVELS_PER_RECORD)
    cdef uint8_t *top_changed         # [n_inst] the top N changed since the last BOOK_TOP
    cdef int64_t max_orders
    cdef int64_t live_cap
    cdef int64_t max_intents
    cdef int64_t n_params
    cdef uint32_t *inst_ids
    cdef int64_t *qty_scale
    cdef int64_t *limits              # [n_inst][CORE_N_LIMITS]
    cdef int64_t *sub_tokens          # submit bucket (1e9 = one token), per instrument
    cdef int64_t *sub_ts
    cdef int64_t *can_tokens
    cdef int64_t *can_ts
    cdef uint8_t *crossed
    cdef DenialRuns denials           # per instrument: the current run of denials (denials.pyx)
    cdef OrderIndex order_index       # client_order_id -> order slot (orders.pyx)
    cdef int64_t *free_slots
    cdef int64_t n_free
    cdef int64_t *grave               # FIFO of terminal slots kept for late events
    cdef int64_t grave_head
    cdef int64_t grave_n
    cdef readonly int trading_state
    cdef readonly int kill_latched
    cdef readonly int session_active
    cdef int reducing_cause           # DenyReason used while REDUCING (REDUCE_ONLY or MAX_LOSS)
    cdef int64_t max_loss
    cdef int64_t max_loss_halt
    cdef readonly int64_t pnl_total
    cdef int64_t now
    cdef uint64_t hseq
    cdef int64_t next_id
    cdef readonly Strategy strategy
    cdef int flavour
    cdef ls_strategy_fn strat_fn
    cdef object _view
    cdef object _instruments
    cdef object _risk

    cdef int process(self, const uint8_t *rec, uint64_t hseq) noexcept nogil
    cdef void clear_outputs(self) noexcept nogil
    cdef void records_overflow(self, uint64_t hseq) noexcept nogil

    # internals (declared here because Cython needs every cdef method in the .pxd)
    cdef int64_t _inst_index(self, uint32_t inst_id) noexcept nogil
    cdef int64_t *_lim(self, int64_t i) noexcept nogil
    cdef void _refill_full(self, int64_t i) noexcept nogil
    cdef uint8_t *_rec(self, uint16_t kind, uint8_t version, uint32_t inst) noexcept nogil
    cdef ls_order_cmd_t *_cmd(self, uint32_t inst) noexcept nogil
    cdef void _anomaly(self, uint16_t code, uint32_t inst, int64_t coid, int64_t detail, int64_t state,
                       int64_t exec_type) noexcept nogil
    cdef int _deny(self, uint16_t reason, int64_t i, int64_t intent, int64_t side, int64_t price,
                   int64_t qty, int64_t coid) noexcept nogil
    cdef void _deny_rec(self, int64_t i, const Denial *d) noexcept nogil
    cdef void _deny_flush(self, int64_t i) noexcept nogil
    cdef void _deny_end(self, int64_t i) noexcept nogil
    cdef void _deny_flush_all(self) noexcept nogil
    cdef void _venue_reset(self, const ls_exec_t *e) noexcept nogil
    cdef void _order_state(self, int64_t *o, int64_t prev, int64_t exec_type) noexcept nogil
    cdef void _set_trading(self, int state, int cause) noexcept nogil
    cdef int64_t _lookup(self, int64_t key) noexcept nogil
    cdef void _hput(self, int64_t key, int64_t slot) noexcept nogil
    cdef void _hdel(self, int64_t key) noexcept nogil
    cdef int64_t _alloc_slot(self) noexcept nogil
    cdef int64_t *_live_list(self, int64_t i) noexcept nogil
    cdef void _set_state(self, int64_t s, int64_t new, int64_t exec_type) noexcept nogil
    cdef int64_t _book_set(self, int64_t i, int64_t side, int64_t px, int64_t qty) noexcept nogil
    cdef void _book_clear(self, int64_t i) noexcept nogil
    cdef void _book_top_rec(self, int64_t i, int64_t ts_event) noexcept nogil
    cdef int64_t _reference(self, int64_t *I) noexcept nogil
    cdef void _mark(self, int64_t i) noexcept nogil
    cdef void _check_loss(self) noexcept nogil
    cdef void _apply_position(self, int64_t i, int64_t side, int64_t px, int64_t q) noexcept nogil
    cdef void _position_rec(self, int64_t i) noexcept nogil
    cdef void _run_strategy(self) noexcept nogil
    cdef void _intent(self, int64_t *p) noexcept nogil
    cdef bint _blocked(self) noexcept nogil
    cdef bint _bucket(self, int64_t *tokens, int64_t *ts, int64_t rate, int64_t burst, bint consume) noexcept nogil
    cdef int _check_order(self, int64_t i, int64_t side, int64_t px, int64_t qty, int64_t self_slot,
                          int64_t add_buy, int64_t add_sell) noexcept nogil
    cdef int _new(self, int64_t i, int64_t side, int64_t px, int64_t qty, int64_t tif, int64_t ord_type) noexcept nogil
    cdef int _cancel(self, int64_t coid, bint operator) noexcept nogil
    cdef int _replace(self, int64_t coid, int64_t px, int64_t qty) noexcept nogil
    cdef int64_t _cancel_all(self, int64_t only) noexcept nogil
    cdef bint _apply_fill(self, int64_t s, const ls_exec_t *e) noexcept nogil
    cdef void _on_exec(self, const ls_exec_t *e) noexcept nogil
    cdef void _on_control(self, const ls_control_cmd_t *c) noexcept nogil
