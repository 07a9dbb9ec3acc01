# cython: language_level=3
"""Execution events: lifecycle transitions, fills (deduplicated on the 128-bit execution id),
venue resets (execution.pxd)."""
from libc.string cimport memset, memmove
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from livestack.schema.records cimport *
from livestack.core.ctx cimport *
from livestack.core.core cimport Core, CORE_N_DENY, CORE_N_ANOMALY, CORE_N_LIMITS, LS_BOOK_LEVELS_PER_RECORD
from livestack.core.lifecycle cimport *
from livestack.core.orders cimport order_index_get, order_index_remove
from livestack.core.positions cimport position_fill
from livestack.core.order_table cimport live_slots, set_order_state
from livestack.core.dispatch cimport cancel_order
from livestack.core.control cimport check_loss
from livestack.core.emit cimport emit_record, emit_anomaly, emit_order_state, emit_position
from livestack.core.recovery cimport on_order_status, on_reject, recon_settled


cdef bint apply_fill(Core c, int64_t s, const ls_exec_t *e) noexcept nogil:
    """Apply a fill once per venue execution id (exec_id, exec_id_hi). Returns 1 when applied.

    A fill without an id (both words 0) is rejected with ANOMALY BAD_EXEC_ID: it is neither
    applied nor remembered, so it can never deduplicate a real fill away."""
    cdef int64_t *order = ls_ctx_order(c.ctx_words, s)
    cdef int64_t i = order[LS_ORD_INST], k, dec
    cdef int64_t *inst_ctx = ls_ctx_inst(c.ctx_words, i)
    cdef int64_t *seen = order + LS_ORD_EXEC_IDS
    cdef int64_t q = e.last_qty, px = e.last_px
    cdef uint32_t inst = c.instrument_ids[i]
    if e.exec_id == 0 and e.exec_id_hi == 0:
        emit_anomaly(c, LS_ANOMALY_BAD_EXEC_ID, inst, order[LS_ORD_ID], 0, order[LS_ORD_STATE], e.exec_type)
        return 0
    if q <= 0 or px <= 0:
        emit_anomaly(c, LS_ANOMALY_BAD_RECORD, inst, order[LS_ORD_ID], e.exec_id, order[LS_ORD_STATE], e.exec_type)
        return 0
    for k in range(LS_ORD_EXEC_RING if order[LS_ORD_EXEC_POS] > LS_ORD_EXEC_RING else order[LS_ORD_EXEC_POS]):
        if seen[2 * k] == e.exec_id and seen[2 * k + 1] == e.exec_id_hi:
            emit_anomaly(c, LS_ANOMALY_DUPLICATE_EXEC, inst, order[LS_ORD_ID], e.exec_id, order[LS_ORD_STATE], e.exec_type)
            return 0
    k = order[LS_ORD_EXEC_POS] % LS_ORD_EXEC_RING
    seen[2 * k] = e.exec_id
    seen[2 * k + 1] = e.exec_id_hi
    order[LS_ORD_EXEC_POS] += 1
    if order[LS_ORD_CUM_QTY] + q > order[LS_ORD_QTY]:
        emit_anomaly(c, LS_ANOMALY_OVERFILL, inst, order[LS_ORD_ID], e.exec_id, order[LS_ORD_STATE], e.exec_type)
    order[LS_ORD_CUM_QTY] += q
    if is_live(order[LS_ORD_STATE]):
        dec = q if q < order[LS_ORD_LEAVES] else order[LS_ORD_LEAVES]
        order[LS_ORD_LEAVES] -= dec
        if order[LS_ORD_SIDE] == LS_SIDE_BUY:
            inst_ctx[LS_INST_OPEN_BUY_QTY] -= dec
        else:
            inst_ctx[LS_INST_OPEN_SELL_QTY] -= dec
    if order[LS_ORD_VENUE_ID] == 0:
        order[LS_ORD_VENUE_ID] = e.venue_order_id
    c.pnl_total += position_fill(inst_ctx, order[LS_ORD_SIDE], px, q)
    c.c_fills += 1
    cdef ls_fill_t *f = <ls_fill_t *>emit_record(c, LS_RECORD_KIND_FILL, LS_FILL_VERSION, inst)
    f.hseq = c.hseq
    f.ts_event = e.ts_event
    f.client_order_id = order[LS_ORD_ID]
    f.venue_order_id = order[LS_ORD_VENUE_ID]
    f.exec_id = e.exec_id
    f.exec_id_hi = e.exec_id_hi
    f.price = px
    f.qty = q
    f.position = inst_ctx[LS_INST_POSITION]
    f.realized_pnl = inst_ctx[LS_INST_REALIZED]
    f.side = <uint8_t>order[LS_ORD_SIDE]
    emit_position(c, i)
    return 1


cdef void on_exec(Core c, const ls_exec_t *e) noexcept nogil:
    cdef int64_t *ctx = c.ctx_words
    cdef int64_t s = order_index_get(&c.order_index, e.client_order_id)
    cdef int64_t *order
    cdef int64_t *inst_ctx
    cdef int64_t st, et = e.exec_type, new, i, old_id, new_leaves
    cdef int act
    if et == LS_EXEC_TYPE_VENUE_RESET:
        venue_reset(c, e)
        return
    if et == LS_EXEC_TYPE_ORDER_STATUS:   # an answer to a STATUS command, not a lifecycle event
        on_order_status(c, e)
        return
    if et == LS_EXEC_TYPE_FEE:            # a fill's fee: in the journal (/exec), not a lifecycle event
        return
    if s < 0 and e.orig_client_order_id != 0:
        s = order_index_get(&c.order_index, e.orig_client_order_id)
    ctx[LS_CTX_EV_INST] = c._inst_index(e.instrument)
    ctx[LS_CTX_EV_SIDE] = e.side
    ctx[LS_CTX_EV_PRICE] = e.last_px
    ctx[LS_CTX_EV_QTY] = e.last_qty
    ctx[LS_CTX_EV_STATUS] = et
    ctx[LS_CTX_EV_ORDER_ID] = e.client_order_id
    ctx[LS_CTX_EV_ORDER_SLOT] = s
    if s < 0:
        c.c_unknown_order_execs += 1
        emit_anomaly(c, LS_ANOMALY_UNKNOWN_ORDER, e.instrument, e.client_order_id, e.exec_id, 0, et)
        return
    order = ls_ctx_order(ctx, s)
    i = order[LS_ORD_INST]
    ctx[LS_CTX_EV_INST] = i
    inst_ctx = ls_ctx_inst(ctx, i)
    st = order[LS_ORD_STATE]
    act = lifecycle_action(st, et)
    if act == A_ILLEGAL:
        emit_anomaly(c, LS_ANOMALY_ILLEGAL_TRANSITION, c.instrument_ids[i], order[LS_ORD_ID], e.exec_id, st, et)
    elif act == A_LATE:
        c.c_late_events += 1
    elif act == A_ACCEPT:
        order[LS_ORD_VENUE_ID] = e.venue_order_id
        set_order_state(c, s, LS_ORDER_STATE_ACCEPTED, et)
    elif act == A_ACK_KEEP:
        order[LS_ORD_VENUE_ID] = e.venue_order_id
        if order[LS_ORD_PRE_STATE] == LS_ORDER_STATE_PENDING_NEW:
            order[LS_ORD_PRE_STATE] = LS_ORDER_STATE_ACCEPTED
        emit_order_state(c, order, st, et)
    elif act == A_REJECT:
        if st == LS_ORDER_STATE_PENDING_NEW or st == LS_ORDER_STATE_UNKNOWN or order[LS_ORD_PRE_STATE] == LS_ORDER_STATE_PENDING_NEW:
            set_order_state(c, s, LS_ORDER_STATE_REJECTED, et)
            on_reject(c, i)
        else:
            emit_anomaly(c, LS_ANOMALY_ILLEGAL_TRANSITION, c.instrument_ids[i], order[LS_ORD_ID], e.exec_id, st, et)
    elif act == A_FILL:
        if apply_fill(c, s, e):
            if et == LS_EXEC_TYPE_FILLED or order[LS_ORD_CUM_QTY] >= order[LS_ORD_QTY]:
                new = LS_ORDER_STATE_FILLED
            elif st == LS_ORDER_STATE_PENDING_CANCEL or st == LS_ORDER_STATE_PENDING_REPLACE:
                new = st
                if order[LS_ORD_PRE_STATE] == LS_ORDER_STATE_PENDING_NEW or order[LS_ORD_PRE_STATE] == LS_ORDER_STATE_ACCEPTED:
                    order[LS_ORD_PRE_STATE] = LS_ORDER_STATE_PARTIALLY_FILLED
            else:
                new = LS_ORDER_STATE_PARTIALLY_FILLED
            set_order_state(c, s, new, et)
            check_loss(c)
    elif act == A_FILL_TERMINAL:
        if apply_fill(c, s, e):
            emit_anomaly(c, LS_ANOMALY_FILL_AFTER_TERMINAL, c.instrument_ids[i], order[LS_ORD_ID], e.exec_id, st, et)
            check_loss(c)
    elif act == A_CANCELED:
        set_order_state(c, s, LS_ORDER_STATE_CANCELED, et)
    elif act == A_CANCEL_REJECT:
        if st == LS_ORDER_STATE_PENDING_REPLACE:
            order_index_remove(&c.order_index, order[LS_ORD_PENDING_ID])
            order[LS_ORD_PENDING_ID] = 0
        set_order_state(c, s, order[LS_ORD_PRE_STATE], et)
    elif act == A_REPLACED:
        old_id = order[LS_ORD_ID]
        order[LS_ORD_STATE] = LS_ORDER_STATE_REPLACED
        emit_order_state(c, order, st, et)          # the old id ends REPLACED
        order_index_remove(&c.order_index, old_id)
        order[LS_ORD_ID] = order[LS_ORD_PENDING_ID]
        order[LS_ORD_PENDING_ID] = 0
        order[LS_ORD_PRICE] = order[LS_ORD_PENDING_PRICE]
        order[LS_ORD_QTY] = order[LS_ORD_PENDING_QTY]
        if e.venue_order_id != 0:
            order[LS_ORD_VENUE_ID] = e.venue_order_id
        new_leaves = order[LS_ORD_QTY] - order[LS_ORD_CUM_QTY]
        if new_leaves < 0:
            new_leaves = 0
        if order[LS_ORD_SIDE] == LS_SIDE_BUY:
            inst_ctx[LS_INST_OPEN_BUY_QTY] += new_leaves - order[LS_ORD_LEAVES]
        else:
            inst_ctx[LS_INST_OPEN_SELL_QTY] += new_leaves - order[LS_ORD_LEAVES]
        order[LS_ORD_LEAVES] = new_leaves
        order[LS_ORD_STATE] = st                  # back to PENDING_REPLACE so set_order_state sees the exit
        set_order_state(c, s, LS_ORDER_STATE_PARTIALLY_FILLED if order[LS_ORD_CUM_QTY] > 0
                        else LS_ORDER_STATE_ACCEPTED, et)
        ctx[LS_CTX_EV_ORDER_ID] = order[LS_ORD_ID]
    elif act == A_EXPIRED:
        set_order_state(c, s, LS_ORDER_STATE_EXPIRED, et)
    if c.recon_outstanding:
        recon_settled(c, s)
    if order[LS_ORD_CANCEL_AFTER] and (act == A_REPLACED or act == A_CANCEL_REJECT):
        # a kill/cancel-all was waiting for this replace to resolve: cancel the surviving id now
        order[LS_ORD_CANCEL_AFTER] = 0
        if is_live(order[LS_ORD_STATE]):
            cancel_order(c, order[LS_ORD_ID], 1)


cdef void venue_reset(Core c, const ls_exec_t *e) noexcept nogil:
    """A venue process restarted without its order state (the simulated exchange lives in it).

    The commands the previous process took are exactly the orders-ring positions below
    ``e.venue_order_id`` (the core is the ring's only writer, so an order's NEW_POS is its
    position). An order whose NewOrder the previous process took is gone: it ends CANCELED
    (exec type VENUE_RESET), whatever it was waiting for. An order whose NewOrder is still in
    the ring will be answered by the new process: untouched. Later answers about the dropped
    orders (cancel rejects for unknown ids) find them terminal and count as late events.
    """
    cdef int64_t *ctx = c.ctx_words
    cdef int64_t cutoff = <int64_t>e.venue_order_id
    cdef int64_t i, k, s, dropped = 0
    cdef int64_t *inst_ctx
    cdef int64_t *live
    for i in range(c.n_instruments):
        if e.instrument != 0 and c.instrument_ids[i] != e.instrument:
            continue
        inst_ctx = ls_ctx_inst(ctx, i)
        live = live_slots(c, i)
        k = 0
        while k < inst_ctx[LS_INST_N_LIVE]:
            s = live[k]
            if ls_ctx_order(ctx, s)[LS_ORD_NEW_POS] < cutoff:
                set_order_state(c, s, LS_ORDER_STATE_CANCELED, LS_EXEC_TYPE_VENUE_RESET)  # leaves the live list
                dropped += 1
                if c.recon_outstanding:
                    recon_settled(c, s)
            else:
                k += 1
    if dropped:
        emit_anomaly(c, LS_ANOMALY_VENUE_RESET, e.instrument, 0, dropped, 0, LS_EXEC_TYPE_VENUE_RESET)
    ctx[LS_CTX_EV_INST] = -1
    ctx[LS_CTX_EV_SIDE] = 0
    ctx[LS_CTX_EV_PRICE] = 0
    ctx[LS_CTX_EV_QTY] = 0
    ctx[LS_CTX_EV_STATUS] = LS_EXEC_TYPE_VENUE_RESET
    ctx[LS_CTX_EV_ORDER_ID] = 0
    ctx[LS_CTX_EV_ORDER_SLOT] = -1
