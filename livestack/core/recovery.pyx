# cython: language_level=3
"""Crash-only recovery and "nothing waits forever" (recovery.pxd).

::

    restarted harness: journal ──replay──▶ core (orders, positions, PnL, risk, kill latch, state)
                       RECOVER(epoch, orders-ring pos) ──▶ RECOVERING, PENDING_NEW -> UNKNOWN,
                                                         STATUS command per open order
    venue: EXEC ORDER_STATUS reason 3 (client_order_id 0) ──▶ its net position in the instrument
                                             == the core's? no: ANOMALY RECON_MISMATCH naming the
                                             instrument (detail = venue - core), HALTED
    venue: EXEC ORDER_STATUS per order ──▶ explained? (cum_qty agrees, state reachable)
                                             yes: UNKNOWN -> ACCEPTED / PARTIALLY_FILLED / REJECTED
                                             no:  ANOMALY RECON_MISMATCH (never a synthetic fill)
    last answer ──▶ the previous trading state (HALTED if anything was unexplained)
    TIMER: RECOVERING past recover_timeout -> ANOMALY RECON_TIMEOUT, HALTED;
           pending past pending_timeout -> STATUS; still pending as long again -> ANOMALY
           PENDING_TIMEOUT, the instrument halted (no new orders until TRADING_ENABLE)
    EXEC REJECTED: reject_storm_n in reject_storm_window -> ANOMALY REJECT_STORM, throttled for a
           window; the next storm on the instrument halts it
    STOP_UNRESOLVED (end of the stop drain): every order still open ends UNKNOWN, exec_type says why

Why a venue answer is trusted only this far: the exec ring is FIFO and survives the harness, so
every event the venue sent before its answer has been applied when the answer arrives. A fill
the venue reports in cum_qty that the core never saw as an EXEC is a contradiction to halt on,
not a fill to invent.
"""
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.string cimport memset
from libc.stdint cimport uint8_t, uint32_t, int64_t
from livestack.schema.records cimport *
from livestack.core.ctx cimport *
from livestack.core.core cimport Core
from livestack.core.lifecycle cimport is_live, is_pending
from livestack.core.orders cimport order_index_get
from livestack.core.order_table cimport live_slots, set_order_state
from livestack.core.control cimport set_trading_state
from livestack.core.emit cimport emit_order_cmd, emit_anomaly, emit_order_state


cdef int recovery_init(Core c, int64_t recover_timeout_ns, int64_t pending_timeout_ns, int64_t reject_storm_n,
                       int64_t reject_storm_window_ns) except -1:
    cdef int64_t n = c.n_instruments, m = c.max_orders
    c.recon_wait = <uint8_t *>PyMem_Malloc(m)
    c.ask_state = <uint8_t *>PyMem_Malloc(m)
    c.ask_ts = <int64_t *>PyMem_Malloc(m * sizeof(int64_t))
    c.rej_count = <int64_t *>PyMem_Malloc(n * sizeof(int64_t))
    c.rej_window_ts = <int64_t *>PyMem_Malloc(n * sizeof(int64_t))
    c.throttle_until = <int64_t *>PyMem_Malloc(n * sizeof(int64_t))
    c.inst_halted = <uint8_t *>PyMem_Malloc(n)
    c.storms = <uint8_t *>PyMem_Malloc(n)
    if (c.recon_wait == NULL or c.ask_state == NULL or c.ask_ts == NULL or c.rej_count == NULL
            or c.rej_window_ts == NULL or c.throttle_until == NULL or c.inst_halted == NULL or c.storms == NULL):
        raise MemoryError()
    memset(c.recon_wait, 0, m)
    memset(c.ask_state, 0, m)
    memset(c.ask_ts, 0, m * sizeof(int64_t))
    memset(c.rej_count, 0, n * sizeof(int64_t))
    memset(c.rej_window_ts, 0, n * sizeof(int64_t))
    memset(c.throttle_until, 0, n * sizeof(int64_t))
    memset(c.inst_halted, 0, n)
    memset(c.storms, 0, n)
    c.recon_outstanding = 0
    c.recon_prev_state = LS_TRADING_STATE_ACTIVE
    c.recon_failed = 0
    c.recon_started_ts = 0
    c.epoch = 0
    c.recover_timeout_ns = recover_timeout_ns
    c.pending_timeout_ns = pending_timeout_ns
    c.reject_storm_n = reject_storm_n
    c.reject_storm_window_ns = reject_storm_window_ns
    return 0


cdef void recovery_free(Core c) noexcept:
    PyMem_Free(c.recon_wait)
    PyMem_Free(c.ask_state)
    PyMem_Free(c.ask_ts)
    PyMem_Free(c.rej_count)
    PyMem_Free(c.rej_window_ts)
    PyMem_Free(c.throttle_until)
    PyMem_Free(c.inst_halted)
    PyMem_Free(c.storms)


cdef void send_status(Core c, int64_t s) noexcept nogil:
    """A STATUS command (OrderStatusRequest) for order slot s: its live id, price, qty, side."""
    cdef int64_t *order = ls_ctx_order(c.ctx_words, s)
    cdef ls_order_cmd_t *cmd = emit_order_cmd(c, c.instrument_ids[order[LS_ORD_INST]])
    cmd.client_order_id = order[LS_ORD_ID]
    cmd.orig_client_order_id = order[LS_ORD_PENDING_ID]   # a pending replace's new id, else 0
    cmd.price = order[LS_ORD_PRICE]
    cmd.qty = order[LS_ORD_QTY]
    cmd.cmd = LS_ORDER_CMD_TYPE_STATUS
    cmd.side = <uint8_t>order[LS_ORD_SIDE]
    cmd.tif = <uint8_t>order[LS_ORD_TIF]
    cmd.ord_type = <uint8_t>order[LS_ORD_ORD_TYPE]
    c.c_status_requests += 1


cdef void _finish_recovery(Core c) noexcept nogil:
    if c.trading_state != LS_TRADING_STATE_RECOVERING:
        return  # an operator (or a halt) already moved the state: keep theirs
    set_trading_state(c, LS_TRADING_STATE_HALTED if c.recon_failed else c.recon_prev_state, CAUSE_RECOVERY)


cdef void on_recover(Core c, const ls_control_cmd_t *command) noexcept nogil:
    """RECOVER: a restarted harness rebuilt this core from the journal. New ids in the new epoch,
    the orders-ring position the venue really has (commands of the crashed input may never have
    reached the ring), RECOVERING, and a STATUS for every open order (PENDING_NEW ones are UNKNOWN
    now: sent, never answered, maybe never sent)."""
    cdef int64_t *ctx = c.ctx_words
    cdef int64_t i, k, s, n = 0
    cdef int64_t *order
    c.c_recoveries += 1
    if command.arg0 > c.epoch:
        c.epoch = command.arg0
        c.next_client_order_id = (command.arg0 << RECOVERY_EPOCH_SHIFT) | 1
        ctx[LS_CTX_NEXT_ORDER_ID] = c.next_client_order_id
    if command.arg1 >= 0:
        c.c_orders_sent = <uint64_t>command.arg1
    if c.trading_state != LS_TRADING_STATE_RECOVERING:
        c.recon_prev_state = c.trading_state
        set_trading_state(c, LS_TRADING_STATE_RECOVERING, CAUSE_RECOVERY)
    c.recon_failed = 0
    c.recon_started_ts = c.now_ts
    c.recon_outstanding = 0
    for i in range(c.n_instruments):
        for k in range(ls_ctx_inst(ctx, i)[LS_INST_N_LIVE]):
            s = live_slots(c, i)[k]
            order = ls_ctx_order(ctx, s)
            if order[LS_ORD_STATE] == LS_ORDER_STATE_PENDING_NEW:
                set_order_state(c, s, LS_ORDER_STATE_UNKNOWN, 0)   # live list unchanged (still live)
            send_status(c, s)
            if not c.recon_wait[s]:
                c.recon_wait[s] = 1
                c.recon_outstanding += 1
            n += 1
    if c.recon_outstanding == 0:
        _finish_recovery(c)


cdef void _explained(Core c, int64_t s) noexcept nogil:
    if c.recon_wait[s]:
        c.recon_wait[s] = 0
        c.recon_outstanding -= 1
        if c.recon_outstanding == 0 and c.trading_state == LS_TRADING_STATE_RECOVERING:
            _finish_recovery(c)


cdef void recon_settled(Core c, int64_t s) noexcept nogil:
    """An order RECOVER asked about ended through an ordinary event (its CANCELED, FILLED ...:
    e.g. the cancel a FIX peer without OrderStatusRequest got instead): explained."""
    if c.recon_wait[s] and not is_live(ls_ctx_order(c.ctx_words, s)[LS_ORD_STATE]):
        _explained(c, s)


cdef void _mismatch(Core c, int64_t s, const ls_exec_t *e) noexcept nogil:
    """The venue contradicts the core: ANOMALY naming the order, HALTED (at once outside recovery,
    at its end inside it). Nothing is applied."""
    cdef int64_t *order = ls_ctx_order(c.ctx_words, s)
    emit_anomaly(c, LS_ANOMALY_RECON_MISMATCH, c.instrument_ids[order[LS_ORD_INST]], order[LS_ORD_ID],
                 e.cum_qty, order[LS_ORD_STATE], e.exec_type)
    if c.trading_state == LS_TRADING_STATE_RECOVERING:
        c.recon_failed = 1
    elif c.trading_state != LS_TRADING_STATE_HALTED:
        set_trading_state(c, LS_TRADING_STATE_HALTED, CAUSE_RECOVERY)


cdef enum:
    STATUS_POSITION = 3    # ORDER_STATUS.reason of a venue position report (client_order_id 0)


cdef void on_position_status(Core c, const ls_exec_t *e) noexcept nogil:
    """EXEC ORDER_STATUS reason 3: the venue's net position in ``e.instrument`` is ``e.qty`` (a
    FIX PositionReport, venue option ``positions_request``). The exec ring is FIFO, so every fill
    the venue counted in it reached the core first: a difference is unexplained. ANOMALY
    RECON_MISMATCH naming the instrument (detail = venue - core), HALTED (at the end of a
    recovery, at once outside one). Nothing is applied."""
    cdef int64_t i = c._inst_index(e.instrument)
    cdef int64_t mine
    if i < 0:
        c.c_unknown_order_execs += 1
        emit_anomaly(c, LS_ANOMALY_UNKNOWN_ORDER, e.instrument, 0, e.qty, 0, e.exec_type)
        return
    mine = ls_ctx_inst(c.ctx_words, i)[LS_INST_POSITION]
    if e.qty == mine:
        return
    emit_anomaly(c, LS_ANOMALY_RECON_MISMATCH, e.instrument, 0, e.qty - mine, c.trading_state, e.exec_type)
    if c.trading_state == LS_TRADING_STATE_RECOVERING:
        c.recon_failed = 1
    elif c.trading_state != LS_TRADING_STATE_HALTED:
        set_trading_state(c, LS_TRADING_STATE_HALTED, CAUSE_RECOVERY)


cdef void on_order_status(Core c, const ls_exec_t *e) noexcept nogil:
    """EXEC ORDER_STATUS: the venue's answer to a STATUS command (reason 0: live there with this
    cum_qty; 1: unknown there; 2: ended there with this cum_qty), or (reason 3, no order) its
    position in an instrument (:func:`on_position_status`)."""
    if e.reason == STATUS_POSITION and e.client_order_id == 0:
        on_position_status(c, e)
        return
    cdef int64_t s = order_index_get(&c.order_index, e.client_order_id)
    cdef int64_t *order
    cdef int64_t st, cum
    if s < 0 and e.orig_client_order_id != 0:
        s = order_index_get(&c.order_index, e.orig_client_order_id)
    if s < 0:
        c.c_unknown_order_execs += 1
        emit_anomaly(c, LS_ANOMALY_UNKNOWN_ORDER, e.instrument, e.client_order_id, 0, 0, e.exec_type)
        return
    order = ls_ctx_order(c.ctx_words, s)
    st = order[LS_ORD_STATE]
    cum = order[LS_ORD_CUM_QTY]
    if c.ask_state[s] == 1:
        c.ask_state[s] = 0 if not is_pending(st) else 1
    if not is_live(st):
        # ended in the core meanwhile (its final event was ahead of the answer in the exec ring)
        if e.reason == 0 and st != LS_ORDER_STATE_REPLACED:
            _mismatch(c, s, e)     # the venue still has an order the core saw end
        elif e.cum_qty > cum:
            _mismatch(c, s, e)
        _explained(c, s)
        return
    if e.cum_qty != cum:
        _mismatch(c, s, e)         # fills the core never received (or more than the venue knows)
        _explained(c, s)
        return
    if e.reason == 0:
        if order[LS_ORD_VENUE_ID] == 0:
            order[LS_ORD_VENUE_ID] = e.venue_order_id
        if st == LS_ORDER_STATE_UNKNOWN or st == LS_ORDER_STATE_PENDING_NEW:
            order[LS_ORD_PRE_STATE] = LS_ORDER_STATE_ACCEPTED
            set_order_state(c, s, LS_ORDER_STATE_PARTIALLY_FILLED if cum > 0 else LS_ORDER_STATE_ACCEPTED,
                            LS_EXEC_TYPE_ORDER_STATUS)
    elif st == LS_ORDER_STATE_UNKNOWN or st == LS_ORDER_STATE_PENDING_NEW:
        # the NewOrder never reached the venue (the harness died between recording and sending)
        # or the venue refused it without telling: it is not live anywhere
        set_order_state(c, s, LS_ORDER_STATE_REJECTED, LS_EXEC_TYPE_ORDER_STATUS)
    elif st == LS_ORDER_STATE_PENDING_CANCEL:
        set_order_state(c, s, LS_ORDER_STATE_CANCELED, LS_EXEC_TYPE_ORDER_STATUS)
    else:
        _mismatch(c, s, e)         # resting in the core, gone at the venue, no event said so
    _explained(c, s)


cdef void on_reject(Core c, int64_t i) noexcept nogil:
    """A venue REJECTED on instrument index i: reject_storm_n within reject_storm_window_ns (event
    time) is a storm: ANOMALY REJECT_STORM and new orders THROTTLE-denied for a window; the next
    storm halts the instrument."""
    if c.reject_storm_n <= 0 or i < 0:
        return
    if c.rej_count[i] == 0 or c.now_ts - c.rej_window_ts[i] > c.reject_storm_window_ns:
        c.rej_window_ts[i] = c.now_ts
        c.rej_count[i] = 0
    c.rej_count[i] += 1
    if c.rej_count[i] < c.reject_storm_n:
        return
    emit_anomaly(c, LS_ANOMALY_REJECT_STORM, c.instrument_ids[i], 0, c.rej_count[i], c.storms[i] + 1, LS_EXEC_TYPE_REJECTED)
    c.rej_count[i] = 0
    if c.storms[i] < 255:
        c.storms[i] += 1
    if c.storms[i] == 1:
        c.throttle_until[i] = c.now_ts + c.reject_storm_window_ns
    else:
        c.inst_halted[i] = 1


cdef void recovery_timer(Core c) noexcept nogil:
    """TIMER: recovery timeout, pending timeouts (event time only: the TIMER input's ts)."""
    cdef int64_t *ctx = c.ctx_words
    cdef int64_t i, k, s, first = 0
    cdef int64_t *order
    if c.trading_state == LS_TRADING_STATE_RECOVERING and c.recover_timeout_ns > 0 and \
            c.now_ts - c.recon_started_ts > c.recover_timeout_ns:
        for i in range(c.n_instruments):
            for k in range(ls_ctx_inst(ctx, i)[LS_INST_N_LIVE]):
                s = live_slots(c, i)[k]
                if c.recon_wait[s] and first == 0:
                    first = ls_ctx_order(ctx, s)[LS_ORD_ID]
        emit_anomaly(c, LS_ANOMALY_RECON_TIMEOUT, 0, first, c.recon_outstanding, c.trading_state, 0)
        set_trading_state(c, LS_TRADING_STATE_HALTED, CAUSE_RECOVERY)
    if c.pending_timeout_ns <= 0:
        return
    for i in range(c.n_instruments):
        for k in range(ls_ctx_inst(ctx, i)[LS_INST_N_LIVE]):
            s = live_slots(c, i)[k]
            order = ls_ctx_order(ctx, s)
            if not is_pending(order[LS_ORD_STATE]):
                c.ask_state[s] = 0
                continue
            if c.ask_state[s] and c.ask_ts[s] < order[LS_ORD_TS_SENT]:
                c.ask_state[s] = 0      # a new request since the last STATUS: a new episode
            if c.ask_state[s] == 0 and not c.recon_wait[s]:
                if c.now_ts - order[LS_ORD_TS_SENT] >= c.pending_timeout_ns:
                    send_status(c, s)
                    c.ask_state[s] = 1
                    c.ask_ts[s] = c.now_ts
            elif c.ask_state[s] == 1 and c.now_ts - c.ask_ts[s] >= c.pending_timeout_ns:
                c.ask_state[s] = 2
                emit_anomaly(c, LS_ANOMALY_PENDING_TIMEOUT, c.instrument_ids[i], order[LS_ORD_ID],
                             c.now_ts - order[LS_ORD_TS_SENT], order[LS_ORD_STATE], 0)
                c.inst_halted[i] = 1


cdef void on_stop_unresolved(Core c) noexcept nogil:
    """End of the stop drain: every order still open ends UNKNOWN with exec_type STOP_UNRESOLVED
    (the session file then holds a final state for every order); one ANOMALY with the count."""
    cdef int64_t *ctx = c.ctx_words
    cdef int64_t i, k, s, n = 0
    cdef int64_t *order
    for i in range(c.n_instruments):
        for k in range(ls_ctx_inst(ctx, i)[LS_INST_N_LIVE]):
            s = live_slots(c, i)[k]
            order = ls_ctx_order(ctx, s)
            n += 1
            if order[LS_ORD_STATE] == LS_ORDER_STATE_UNKNOWN:
                emit_order_state(c, order, LS_ORDER_STATE_UNKNOWN, LS_EXEC_TYPE_STOP_UNRESOLVED)
            else:
                set_order_state(c, s, LS_ORDER_STATE_UNKNOWN, LS_EXEC_TYPE_STOP_UNRESOLVED)
    if n:
        emit_anomaly(c, LS_ANOMALY_STOP_UNRESOLVED, 0, 0, n, c.trading_state, LS_EXEC_TYPE_STOP_UNRESOLVED)
