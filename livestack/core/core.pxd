# The Core Runtime's surface for the harness (nogil, no allocation per event) and for Python.
cimport cython
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from livestack.core.ctx cimport ls_strategy_ctx_t
from livestack.schema.records cimport ls_exec_t, ls_control_cmd_t, ls_order_cmd_t, ls_anomaly_text_t
from livestack.core.strategy cimport Strategy, ls_strategy_fn
from livestack.core.book cimport BookSide
from livestack.core.denials cimport Denial, DenialRuns
from livestack.core.orders cimport OrderIndex

cdef enum:
    CORE_N_DENY = 32       # counters by DenyReason value
    CORE_N_ANOMALY = 32    # counters by Anomaly value
    CORE_N_LIMITS = 32     # per-instrument limits by RiskLimit value
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
    cdef readonly int64_t open_orders       # live orders now (gauge)

    # ---- state ---------------------------------------------------------------------------------
    cdef int64_t *ctx_words                 # the strategy context block: book, orders, positions, intents
    cdef int64_t n_ctx_words
    cdef int64_t n_instruments
    cdef int64_t ctx_book_depth             # room per side of each instrument's top arrays in the context (max book_depth)
    cdef BookSide *bids                     # [n_instruments] the full bid book of each instrument (book.pyx)
    cdef BookSide *asks                     # [n_instruments] the full ask book
    cdef int64_t book_top_levels            # N of the BOOK_LEVELS records (0 = none)
    cdef int64_t book_top_records_per_side  # BOOK_LEVELS records per side: ceil(N / LS_BOOK_LEVELS_PER_RECORD)
    cdef uint8_t *book_top_changed          # [n_instruments] the top N changed since the last BOOK_LEVELS
    cdef uint8_t *book_crossed              # [n_instruments] crossed after a complete message (ANOMALY once)
    cdef int64_t max_orders                 # order table slots
    cdef int64_t live_cap                   # live orders per instrument the context lists
    cdef int64_t max_intents                # intents per strategy call
    cdef int64_t n_params                   # strategy parameters in the context
    cdef uint32_t *instrument_ids           # [n_instruments] venue instrument id of each index
    cdef int64_t *qty_scale                 # [n_instruments] 10^qty_decimals
    cdef int64_t *limit_table               # [n_instruments][CORE_N_LIMITS] risk limits by RiskLimit (risk.pxd)
    cdef int64_t *submit_tokens             # [n_instruments] NEW+REPLACE bucket level (RISK_TOKEN = one token)
    cdef int64_t *submit_refill_ts          # [n_instruments] event time of its last refill
    cdef int64_t *cancel_tokens             # [n_instruments] strategy-cancel bucket level
    cdef int64_t *cancel_refill_ts          # [n_instruments] event time of its last refill
    cdef DenialRuns denial_runs             # per instrument: the current run of denials (denials.pyx)
    cdef OrderIndex order_index             # client_order_id -> order slot (orders.pyx)
    cdef int64_t *free_slots                # order slots never used (a stack)
    cdef int64_t n_free_slots
    cdef int64_t *terminal_fifo             # FIFO of terminal slots kept for late events, reused oldest first
    cdef int64_t terminal_head
    cdef int64_t n_terminal
    cdef readonly int trading_state         # TradingState
    cdef readonly int kill_latched
    cdef readonly int session_active
    cdef int reducing_cause                 # DenyReason used while REDUCING (REDUCE_ONLY or MAX_LOSS)
    cdef int64_t max_loss                   # account-wide, PnL units (0 = off)
    cdef int64_t max_loss_halt
    cdef readonly int64_t pnl_total         # realized + unrealized over every instrument
    cdef int64_t now_ts                     # ts of the input being processed (the core's only clock)
    cdef uint64_t hseq                      # harness sequence of that input
    cdef int64_t next_client_order_id
    cdef readonly Strategy strategy
    cdef int strategy_flavour               # 0 = none, FLAVOUR_CYTHON / CFUNC / PYTHON (strategy.pxd)
    cdef ls_strategy_fn strategy_fn         # the cfunc's address (FLAVOUR_CFUNC)
    cdef readonly int64_t strategy_errors   # calls that raised (ANOMALY STRATEGY_ERROR each)
    cdef readonly int strategy_disabled     # 1 once on_error = disable took it out
    cdef object _ctx_array                  # numpy int64 array owning ctx_words
    cdef object _instruments
    cdef object _risk

    # ---- recovery, pending timeouts, reject storms (recovery.pyx) ----------------------------
    cdef uint8_t *recon_wait                # [max_orders] 1: RECOVER asked the venue about this slot
    cdef uint8_t *ask_state                 # [max_orders] pending timeout: 0 none, 1 STATUS asked, 2 escalated
    cdef int64_t *ask_ts                    # [max_orders] when the STATUS went out
    cdef readonly int64_t recon_outstanding # RECOVER's STATUS requests not answered yet
    cdef int recon_prev_state               # trading state to go back to once everything is explained
    cdef int recon_failed                   # a mismatch was found: HALTED at the end, not the previous state
    cdef int64_t recon_started_ts
    cdef readonly int64_t epoch             # session epoch (RECOVER arg0); ids continue at epoch << 40
    cdef int64_t recover_timeout_ns         # RECOVERING longer than this: ANOMALY RECON_TIMEOUT, HALTED
    cdef int64_t pending_timeout_ns         # pending longer: STATUS; unexplained after as long again: instrument halted
    cdef int64_t reject_storm_n             # rejects in the window that make a storm (0 = off)
    cdef int64_t reject_storm_window_ns
    cdef int64_t *rej_count                 # [n_instruments] rejects in the current window
    cdef int64_t *rej_window_ts             # [n_instruments] start of the current window
    cdef int64_t *throttle_until            # [n_instruments] event time until which NEW is denied THROTTLE
    cdef uint8_t *inst_halted               # [n_instruments] halted until TRADING_ENABLE
    cdef uint8_t *storms                    # [n_instruments] reject storms seen
    cdef readonly uint64_t c_status_requests
    cdef readonly uint64_t c_recoveries

    cdef int process(self, const uint8_t *rec, uint64_t hseq) noexcept nogil
    cdef void clear_outputs(self) noexcept nogil
    cdef void records_overflow(self, uint64_t hseq) noexcept nogil

    # internals of the stages that stay here (the others: risk, dispatch, execution, control, emit,
    # order_table; module-level functions over this Core)
    cdef int64_t _inst_index(self, uint32_t inst_id) noexcept nogil
    cdef int64_t _book_set(self, int64_t i, int64_t side, int64_t px, int64_t qty) noexcept nogil
    cdef void _book_clear(self, int64_t i) noexcept nogil
    cdef void _mark(self, int64_t i) noexcept nogil
    cdef void _run_strategy(self) noexcept nogil
    cdef void _strategy_error(self, int64_t code) noexcept nogil
    cdef int _error_text(self, int64_t code, uint32_t inst) noexcept nogil
    cdef int _describe_error(self, ls_anomaly_text_t *r, int64_t code) noexcept
