# cython: language_level=3
"""Execution control: trading state changes, loss limits, control commands (control.pxd)."""
from libc.string cimport memset, memmove
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from livestack.schema.records cimport *
from livestack.core.ctx cimport *
from livestack.core.core cimport Core, CORE_N_DENY, CORE_N_ANOMALY, CORE_N_LIMITS, LS_BOOK_LEVELS_PER_RECORD
from livestack.core.risk cimport limits_row, RISK_TOKEN
from livestack.core.dispatch cimport cancel_all
from livestack.core.emit cimport emit_record, emit_anomaly, flush_denial_runs
from livestack.core.recovery cimport on_recover, on_stop_unresolved

cdef int64_t TOKEN = RISK_TOKEN


cdef void set_trading_state(Core c, int state, int cause) noexcept nogil:
    """Change the trading state; a TRADING_STATE record for every change of (state, latch)."""
    cdef int prev = c.trading_state
    c.trading_state = state
    c.ctx_words[LS_CTX_TRADING_STATE] = state
    c.ctx_words[LS_CTX_KILL_LATCHED] = c.kill_latched
    cdef ls_trading_state_t *r = <ls_trading_state_t *>emit_record(c, 
        LS_RECORD_KIND_TRADING_STATE, LS_TRADING_STATE_VERSION, 0)
    r.hseq = c.hseq
    r.state = <uint8_t>state
    r.prev_state = <uint8_t>prev
    r.kill_latched = <uint8_t>c.kill_latched
    r.cause = <uint8_t>cause

# ---- client_order_id -> slot (open addressing, backward-shift deletion) --------------------


cdef void check_loss(Core c) noexcept nogil:
    if c.max_loss <= 0:
        return
    cdef int64_t loss = -c.pnl_total
    if c.max_loss_halt > 0 and loss >= c.max_loss_halt:
        if c.trading_state != LS_TRADING_STATE_HALTED:
            set_trading_state(c, LS_TRADING_STATE_HALTED, 2)
    elif loss >= c.max_loss and c.trading_state == LS_TRADING_STATE_ACTIVE:
        c.reducing_cause = LS_DENY_REASON_MAX_LOSS
        set_trading_state(c, LS_TRADING_STATE_REDUCING, 2)


cdef void on_control(Core c, const ls_control_cmd_t *command) noexcept nogil:
    cdef int err = LS_CONTROL_ERROR_NONE
    cdef int64_t v0 = 0, i = -1, k, lim, val
    cdef uint16_t cmd = command.cmd
    if cmd == LS_CONTROL_CMD_TYPE_STATUS:
        v0 = c.open_orders
    elif cmd == LS_CONTROL_CMD_TYPE_SESSION_START:
        if c.kill_latched:
            err = LS_CONTROL_ERROR_NOT_ALLOWED
        else:
            c.session_active = 1
            c.reducing_cause = LS_DENY_REASON_REDUCE_ONLY
            set_trading_state(c, LS_TRADING_STATE_ACTIVE, 1)
    elif cmd == LS_CONTROL_CMD_TYPE_SESSION_STOP:
        flush_denial_runs(c)
        v0 = cancel_all(c, -1)
        c.session_active = 0
        set_trading_state(c, LS_TRADING_STATE_HALTED, 4)
    elif cmd == LS_CONTROL_CMD_TYPE_TRADING_ENABLE:
        if c.kill_latched or not c.session_active:
            err = LS_CONTROL_ERROR_NOT_ALLOWED
        else:
            memset(c.inst_halted, 0, c.n_instruments)   # instruments halted by timeouts / reject storms
            c.reducing_cause = LS_DENY_REASON_REDUCE_ONLY
            set_trading_state(c, LS_TRADING_STATE_ACTIVE, 1)
    elif cmd == LS_CONTROL_CMD_TYPE_TRADING_DISABLE:
        set_trading_state(c, LS_TRADING_STATE_HALTED, 1)
    elif cmd == LS_CONTROL_CMD_TYPE_RECORDS_HALT:
        c.records_overflow(c.hseq)
    elif cmd == LS_CONTROL_CMD_TYPE_DISK_HALT:
        # the harness relays the record writer's disk state (journaled, so replay agrees):
        # low -> REDUCING; halt / writer stopped -> cancel every resting order, HALTED (cause 5)
        emit_anomaly(c, LS_ANOMALY_DISK_FULL, 0, 0, command.arg0, c.trading_state, 0)
        if command.arg0 >= 2:
            flush_denial_runs(c)
            v0 = cancel_all(c, -1)
            if c.trading_state != LS_TRADING_STATE_HALTED:
                set_trading_state(c, LS_TRADING_STATE_HALTED, 5)
        elif c.trading_state == LS_TRADING_STATE_ACTIVE:
            c.reducing_cause = LS_DENY_REASON_REDUCE_ONLY
            set_trading_state(c, LS_TRADING_STATE_REDUCING, 5)
    elif cmd == LS_CONTROL_CMD_TYPE_REDUCE_ONLY:
        if c.kill_latched or not c.session_active:
            err = LS_CONTROL_ERROR_NOT_ALLOWED
        else:
            c.reducing_cause = LS_DENY_REASON_REDUCE_ONLY
            set_trading_state(c, LS_TRADING_STATE_REDUCING, 1)
    elif cmd == LS_CONTROL_CMD_TYPE_KILL:
        c.kill_latched = 1
        v0 = cancel_all(c, -1)
        set_trading_state(c, LS_TRADING_STATE_HALTED, 1)
    elif cmd == LS_CONTROL_CMD_TYPE_KILL_RESET:
        if not c.kill_latched:
            err = LS_CONTROL_ERROR_NOT_ALLOWED
        else:
            c.kill_latched = 0
            set_trading_state(c, LS_TRADING_STATE_HALTED, 1)
    elif cmd == LS_CONTROL_CMD_TYPE_CANCEL_ALL:
        if command.instrument != 0:
            i = c._inst_index(command.instrument)
            if i < 0:
                err = LS_CONTROL_ERROR_UNKNOWN_INSTRUMENT
        if err == 0:
            v0 = cancel_all(c, i)
    elif cmd == LS_CONTROL_CMD_TYPE_SET_LIMIT:
        lim = command.arg0
        val = command.arg1
        if command.instrument != 0:
            i = c._inst_index(command.instrument)
        if command.instrument != 0 and i < 0:
            err = LS_CONTROL_ERROR_UNKNOWN_INSTRUMENT
        elif lim < 1 or lim > LS_RISK_LIMIT_MAX_PRICE or val < 0:
            err = LS_CONTROL_ERROR_BAD_ARGUMENT
        elif lim == LS_RISK_LIMIT_TRADABLE and val > 1:
            err = LS_CONTROL_ERROR_BAD_ARGUMENT
        elif lim == LS_RISK_LIMIT_MAX_OPEN_ORDERS and val > c.live_cap:
            err = LS_CONTROL_ERROR_BAD_ARGUMENT
        elif (lim == LS_RISK_LIMIT_SUBMIT_BURST or lim == LS_RISK_LIMIT_CANCEL_BURST) and val < 1:
            err = LS_CONTROL_ERROR_BAD_ARGUMENT
        elif lim == LS_RISK_LIMIT_MAX_LOSS:
            if c.max_loss_halt > 0 and val > c.max_loss_halt:
                err = LS_CONTROL_ERROR_BAD_ARGUMENT
            else:
                c.max_loss = val
        elif lim == LS_RISK_LIMIT_MAX_LOSS_HALT:
            if val > 0 and val < c.max_loss:
                err = LS_CONTROL_ERROR_BAD_ARGUMENT
            else:
                c.max_loss_halt = val
        else:
            for k in range(c.n_instruments):
                if i < 0 or k == i:
                    limits_row(c, k)[lim] = val
                    if lim == LS_RISK_LIMIT_SUBMIT_BURST and c.submit_tokens[k] > val * TOKEN:
                        c.submit_tokens[k] = val * TOKEN
                    if lim == LS_RISK_LIMIT_CANCEL_BURST and c.cancel_tokens[k] > val * TOKEN:
                        c.cancel_tokens[k] = val * TOKEN
        if err == 0:
            v0 = val
            check_loss(c)
    elif cmd == LS_CONTROL_CMD_TYPE_SET_PARAM:
        if command.arg0 < 0 or command.arg0 >= c.n_params:
            err = LS_CONTROL_ERROR_BAD_ARGUMENT
        else:
            c.ctx_words[c.ctx_words[LS_CTX_PARAM_OFF] + command.arg0] = command.arg1
            v0 = command.arg1
    elif cmd == LS_CONTROL_CMD_TYPE_RECOVER:
        on_recover(c, command)
        v0 = c.recon_outstanding
    elif cmd == LS_CONTROL_CMD_TYPE_STOP_UNRESOLVED:
        v0 = c.open_orders
        on_stop_unresolved(c)
    else:
        err = LS_CONTROL_ERROR_UNKNOWN_COMMAND
    cdef ls_telemetry_t *t
    if cmd == LS_CONTROL_CMD_TYPE_STATUS or cmd == LS_CONTROL_CMD_TYPE_SESSION_STOP:
        # a counters snapshot in the record stream (on demand and at the end of a session)
        t = <ls_telemetry_t *>emit_record(c, LS_RECORD_KIND_TELEMETRY, LS_TELEMETRY_VERSION, 0)
        t.hseq = c.hseq
        t.events = c.c_events
        t.md_events = c.c_md
        t.exec_events = c.c_exec
        t.orders_sent = c.c_orders_sent
        t.fills = c.c_fills
        t.denials = c.c_denials
        t.anomalies = c.c_anomalies
        t.open_orders = <uint64_t>c.open_orders
    cdef ls_control_reply_t *r = <ls_control_reply_t *>emit_record(c, 
        LS_RECORD_KIND_CONTROL_REPLY, LS_CONTROL_REPLY_VERSION, command.instrument)
    r.request_id = command.request_id
    r.hseq = c.hseq
    r.value0 = v0
    r.value1 = c.trading_state | (c.kill_latched << 8) | (c.session_active << 9)
    r.cmd = cmd
    r.status = LS_CONTROL_STATUS_OK if err == 0 else LS_CONTROL_STATUS_ERROR
    r.error = <uint8_t>err
