# Pre-trade risk checks (risk.pyx), over each instrument's row of limits (Core.limit_table,
# indexed by RiskLimit) and its context block. The limits are parsed and validated in
# risk_config.py; SET_LIMIT changes them (control.pyx).
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from livestack.core.core cimport Core
from livestack.core.core cimport CORE_N_LIMITS
from livestack.schema.records cimport (LS_TRADING_STATE_HALTED, LS_TRADING_STATE_RECOVERING, LS_DENY_REASON_HALTED,
                                        LS_DENY_REASON_RECOVERING)

cdef enum:
    RISK_TOKEN = 1000000000     # one token of a rate bucket (rate tokens/s = rate units per ns)

cdef inline int64_t *limits_row(Core c, int64_t i) noexcept nogil:
    """Instrument i's limits, indexed by RiskLimit."""
    return c.limit_table + i * CORE_N_LIMITS

cdef inline bint trading_blocked(Core c) noexcept nogil:
    """No new exposure at all: HALTED, the kill latch, or no session."""
    return c.trading_state == LS_TRADING_STATE_HALTED or c.kill_latched or not c.session_active \
        or c.trading_state == LS_TRADING_STATE_RECOVERING

cdef inline int blocked_reason(Core c) noexcept nogil:
    """The DenyReason of a trading_blocked() denial."""
    return LS_DENY_REASON_RECOVERING if c.trading_state == LS_TRADING_STATE_RECOVERING else LS_DENY_REASON_HALTED

cdef bint token_bucket(int64_t now, int64_t *tokens, int64_t *refill_ts, int64_t rate, int64_t burst,
                       bint consume) noexcept nogil
cdef int check_order(Core c, int64_t i, int64_t side, int64_t px, int64_t qty, int64_t self_slot,
                     int64_t add_buy, int64_t add_sell, bint reduce_only) noexcept nogil
