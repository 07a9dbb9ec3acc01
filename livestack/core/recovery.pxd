# Recovery and "nothing waits forever" (recovery.pyx): the RECOVER input of a restarted harness
# (RECOVERING, a STATUS command per open order, the venue's ORDER_STATUS answers), pending
# timeouts and reject storms on TIMER / EXEC inputs, and STOP_UNRESOLVED at the end of a stop.
# All of it is core state driven by journaled inputs: a replay reproduces it bit for bit.
from libc.stdint cimport uint8_t, int64_t
from livestack.core.core cimport Core
from livestack.schema.records cimport (ls_exec_t, ls_control_cmd_t, LS_DENY_REASON_INSTRUMENT_HALTED,
                                        LS_DENY_REASON_THROTTLE)

cdef enum:
    RECOVERY_EPOCH_SHIFT = 40   # client_order_id = epoch << 40 | sequence within the epoch
    CAUSE_RECOVERY = 6          # TRADING_STATE.cause of the changes recovery makes

cdef int recovery_init(Core c, int64_t recover_timeout_ns, int64_t pending_timeout_ns, int64_t reject_storm_n,
                       int64_t reject_storm_window_ns) except -1
cdef void recovery_free(Core c) noexcept
cdef void on_recover(Core c, const ls_control_cmd_t *command) noexcept nogil
cdef void on_stop_unresolved(Core c) noexcept nogil
cdef void on_order_status(Core c, const ls_exec_t *e) noexcept nogil
cdef void on_reject(Core c, int64_t i) noexcept nogil
cdef void recon_settled(Core c, int64_t s) noexcept nogil
cdef void recovery_timer(Core c) noexcept nogil

cdef inline int instrument_blocked(Core c, int64_t i) noexcept nogil:
    """0, or the DenyReason that keeps new orders off instrument index i (halted by a pending
    timeout / second reject storm, or throttled after a reject storm)."""
    if c.inst_halted[i]:
        return LS_DENY_REASON_INSTRUMENT_HALTED
    if c.now_ts < c.throttle_until[i]:
        return LS_DENY_REASON_THROTTLE
    return 0
