# cython: language_level=3
"""Order dispatch: NEW / CANCEL / REPLACE from intents and operator commands (dispatch.pxd)."""
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from livestack.schema.records cimport *
from livestack.core.ctx cimport *
from livestack.core.core cimport Core, CORE_N_DENY, CORE_N_ANOMALY, CORE_N_LIMITS, LS_BOOK_LEVELS_PER_RECORD
from livestack.core.lifecycle cimport is_live, is_pending
from livestack.core.orders cimport order_index_get, order_index_put
from livestack.core.order_table cimport live_slots, alloc_order_slot, set_order_state
from livestack.core.risk cimport limits_row, trading_blocked, blocked_reason, token_bucket, check_order
from livestack.core.recovery cimport instrument_blocked
from livestack.core.emit cimport emit_order_cmd, emit_anomaly, emit_order_state, deny_intent, end_denial_run


cdef void run_intent(Core c, int64_t *intent) noexcept nogil:
    """One intent the strategy appended (LS_INTENT_* words) -> new_order / cancel_order / replace_order."""
    c.c_intents += 1
    cdef int64_t t = intent[LS_INTENT_TYPE]
    if t == LS_ORDER_CMD_TYPE_NEW:
        new_order(c, intent[LS_INTENT_INST], intent[LS_INTENT_SIDE], intent[LS_INTENT_PRICE], intent[LS_INTENT_QTY],
                  intent[LS_INTENT_TIF] & ~(<int64_t>LS_INTENT_REDUCE_ONLY), intent[LS_INTENT_ORD_TYPE],
                  (intent[LS_INTENT_TIF] & LS_INTENT_REDUCE_ONLY) != 0)
    elif t == LS_ORDER_CMD_TYPE_CANCEL:
        cancel_order(c, intent[LS_INTENT_ORDER_ID], 0)
    elif t == LS_ORDER_CMD_TYPE_REPLACE:
        replace_order(c, intent[LS_INTENT_ORDER_ID], intent[LS_INTENT_PRICE], intent[LS_INTENT_QTY])
    else:
        emit_anomaly(c, LS_ANOMALY_BAD_RECORD, 0, 0, t, 0, 0)


cdef int new_order(Core c, int64_t i, int64_t side, int64_t px, int64_t qty, int64_t tif, int64_t ord_type,
                   bint reduce_only) noexcept nogil:
    """A NEW on instrument index i: the checks in the order their DenyReasons are documented, then
    the order slot, the NewOrder command and its ORDER_STATE (PENDING_NEW). reduce_only: the
    order must not grow the position (REDUCE_ONLY flag on the command: Binance USD-M reduceOnly)."""
    cdef int64_t coid = c.next_client_order_id
    cdef int64_t intent = LS_ORDER_CMD_TYPE_NEW
    cdef int r, k
    cdef int64_t *inst_ctx
    cdef int64_t *limits
    cdef int64_t *order
    cdef int64_t s
    if trading_blocked(c):
        return deny_intent(c, blocked_reason(c), i, intent, side, px, qty, coid)
    if i < 0 or i >= c.n_instruments or limits_row(c, i)[LS_RISK_LIMIT_TRADABLE] == 0:
        return deny_intent(c, LS_DENY_REASON_UNKNOWN_INSTRUMENT, i, intent, side, px, qty, coid)
    if side != LS_SIDE_BUY and side != LS_SIDE_SELL:
        return deny_intent(c, LS_DENY_REASON_BAD_QTY, i, intent, side, px, qty, coid)
    r = instrument_blocked(c, i)   # halted by a pending timeout / reject storm, or throttled
    if r:
        return deny_intent(c, r, i, intent, side, px, qty, coid)
    if ord_type != 0 and ord_type != LS_ORD_TYPE_LIMIT:
        return deny_intent(c, LS_DENY_REASON_BAD_PRICE, i, intent, side, px, qty, coid)  # limit orders only
    if tif == 0:
        tif = LS_TIME_IN_FORCE_GTC
    if tif < LS_TIME_IN_FORCE_GTC or tif > LS_TIME_IN_FORCE_FOK:  # GTC, IOC, POST_ONLY, DAY, FOK
        return deny_intent(c, LS_DENY_REASON_BAD_PRICE, i, intent, side, px, qty, coid)
    r = check_order(c, i, side, px, qty, -1, qty if side == LS_SIDE_BUY else 0,
                          qty if side == LS_SIDE_SELL else 0, reduce_only)
    if r:
        return deny_intent(c, r, i, intent, side, px, qty, coid)
    inst_ctx = ls_ctx_inst(c.ctx_words, i)
    limits = limits_row(c, i)
    if inst_ctx[LS_INST_N_LIVE] >= limits[LS_RISK_LIMIT_MAX_OPEN_ORDERS] or inst_ctx[LS_INST_N_LIVE] >= c.live_cap:
        return deny_intent(c, LS_DENY_REASON_MAX_OPEN_ORDERS, i, intent, side, px, qty, coid)
    for k in range(inst_ctx[LS_INST_N_LIVE]):
        order = ls_ctx_order(c.ctx_words, live_slots(c, i)[k])
        if order[LS_ORD_STATE] == LS_ORDER_STATE_PENDING_NEW and order[LS_ORD_SIDE] == side and \
                order[LS_ORD_PRICE] == px and order[LS_ORD_QTY] == qty:
            return deny_intent(c, LS_DENY_REASON_DUPLICATE, i, intent, side, px, qty, coid)
    if limits[LS_RISK_LIMIT_MAX_IN_FLIGHT] > 0 and inst_ctx[LS_INST_IN_FLIGHT] >= limits[LS_RISK_LIMIT_MAX_IN_FLIGHT]:
        return deny_intent(c, LS_DENY_REASON_THROTTLE, i, intent, side, px, qty, coid)
    if not token_bucket(c.now_ts, &c.submit_tokens[i], &c.submit_refill_ts[i], limits[LS_RISK_LIMIT_SUBMIT_RATE],
                        limits[LS_RISK_LIMIT_SUBMIT_BURST], 0):
        return deny_intent(c, LS_DENY_REASON_SUBMIT_RATE, i, intent, side, px, qty, coid)
    if c.n_free_slots == 0 and c.n_terminal == 0:
        return deny_intent(c, LS_DENY_REASON_ORDER_TABLE_FULL, i, intent, side, px, qty, coid)
    if <int64_t>c.n_out_orders >= c.orders_budget:
        return deny_intent(c, LS_DENY_REASON_BACKPRESSURE, i, intent, side, px, qty, coid)
    # ---- dispatch ----
    token_bucket(c.now_ts, &c.submit_tokens[i], &c.submit_refill_ts[i], limits[LS_RISK_LIMIT_SUBMIT_RATE],
                 limits[LS_RISK_LIMIT_SUBMIT_BURST], 1)
    s = alloc_order_slot(c)
    c.next_client_order_id += 1
    c.ctx_words[LS_CTX_NEXT_ORDER_ID] = c.next_client_order_id
    order = ls_ctx_order(c.ctx_words, s)
    order[LS_ORD_ID] = coid
    order[LS_ORD_INST] = i
    order[LS_ORD_SIDE] = side
    order[LS_ORD_STATE] = LS_ORDER_STATE_PENDING_NEW
    order[LS_ORD_PRICE] = px
    order[LS_ORD_QTY] = qty
    order[LS_ORD_LEAVES] = qty
    order[LS_ORD_TIF] = tif
    order[LS_ORD_ORD_TYPE] = LS_ORD_TYPE_LIMIT
    order[LS_ORD_PRE_STATE] = LS_ORDER_STATE_PENDING_NEW
    order[LS_ORD_TS_SENT] = c.now_ts
    order[LS_ORD_FLAGS] = LS_INTENT_REDUCE_ONLY if reduce_only else 0
    order_index_put(&c.order_index, coid, s)
    live_slots(c, i)[inst_ctx[LS_INST_N_LIVE]] = s
    inst_ctx[LS_INST_N_LIVE] += 1
    inst_ctx[LS_INST_IN_FLIGHT] += 1
    if side == LS_SIDE_BUY:
        inst_ctx[LS_INST_OPEN_BUY_QTY] += qty
    else:
        inst_ctx[LS_INST_OPEN_SELL_QTY] += qty
    c.open_orders += 1
    end_denial_run(c, i)
    order[LS_ORD_NEW_POS] = <int64_t>c.c_orders_sent  # (every command goes to the orders ring)
    cdef ls_order_cmd_t *cmd = emit_order_cmd(c, c.instrument_ids[i])
    cmd.client_order_id = coid
    cmd.price = px
    cmd.qty = qty
    cmd.cmd = LS_ORDER_CMD_TYPE_NEW
    cmd.side = <uint8_t>side
    cmd.tif = <uint8_t>tif
    cmd.ord_type = LS_ORD_TYPE_LIMIT
    if reduce_only:
        cmd.flags = LS_RECORD_FLAG_REDUCE_ONLY
    c.c_news += 1
    emit_order_state(c, order, LS_ORDER_STATE_NONE, 0)
    return 0


cdef int cancel_order(Core c, int64_t coid, bint operator) noexcept nogil:
    """Cancel a live order. operator=1 (kill, cancel-all, session stop) skips the cancel rate."""
    cdef int64_t s = order_index_get(&c.order_index, coid)
    cdef int64_t *order
    cdef int64_t i, st
    cdef int64_t intent = LS_ORDER_CMD_TYPE_CANCEL
    if s < 0:
        return deny_intent(c, LS_DENY_REASON_UNKNOWN_ORDER, -1, intent, 0, 0, 0, coid)
    order = ls_ctx_order(c.ctx_words, s)
    i = order[LS_ORD_INST]
    st = order[LS_ORD_STATE]
    if not is_live(st) or order[LS_ORD_ID] != coid:
        return deny_intent(c, LS_DENY_REASON_UNKNOWN_ORDER, i, intent, order[LS_ORD_SIDE], order[LS_ORD_PRICE], order[LS_ORD_QTY], coid)
    if st == LS_ORDER_STATE_PENDING_CANCEL or st == LS_ORDER_STATE_PENDING_REPLACE:
        return deny_intent(c, LS_DENY_REASON_DUPLICATE, i, intent, order[LS_ORD_SIDE], order[LS_ORD_PRICE], order[LS_ORD_QTY], coid)
    cdef int64_t *limits = limits_row(c, i)
    if not operator and not token_bucket(c.now_ts, &c.cancel_tokens[i], &c.cancel_refill_ts[i], limits[LS_RISK_LIMIT_CANCEL_RATE],
                                         limits[LS_RISK_LIMIT_CANCEL_BURST], 0):
        return deny_intent(c, LS_DENY_REASON_CANCEL_RATE, i, intent, order[LS_ORD_SIDE], order[LS_ORD_PRICE], order[LS_ORD_QTY], coid)
    if <int64_t>c.n_out_orders >= c.orders_budget:
        return deny_intent(c, LS_DENY_REASON_BACKPRESSURE, i, intent, order[LS_ORD_SIDE], order[LS_ORD_PRICE], order[LS_ORD_QTY], coid)
    if not operator:
        token_bucket(c.now_ts, &c.cancel_tokens[i], &c.cancel_refill_ts[i], limits[LS_RISK_LIMIT_CANCEL_RATE],
                     limits[LS_RISK_LIMIT_CANCEL_BURST], 1)
    order[LS_ORD_PRE_STATE] = st
    order[LS_ORD_TS_SENT] = c.now_ts
    end_denial_run(c, i)
    cdef ls_order_cmd_t *cmd = emit_order_cmd(c, c.instrument_ids[i])
    cmd.client_order_id = coid
    cmd.price = order[LS_ORD_PRICE]
    cmd.qty = order[LS_ORD_QTY]
    cmd.cmd = LS_ORDER_CMD_TYPE_CANCEL
    cmd.side = <uint8_t>order[LS_ORD_SIDE]
    cmd.tif = <uint8_t>order[LS_ORD_TIF]
    cmd.ord_type = <uint8_t>order[LS_ORD_ORD_TYPE]
    c.c_cancels += 1
    set_order_state(c, s, LS_ORDER_STATE_PENDING_CANCEL, 0)
    return 0


cdef int replace_order(Core c, int64_t coid, int64_t px, int64_t qty) noexcept nogil:
    cdef int64_t s = order_index_get(&c.order_index, coid)
    cdef int64_t intent = LS_ORDER_CMD_TYPE_REPLACE
    cdef int64_t *order
    cdef int64_t *inst_ctx
    cdef int64_t *limits
    cdef int64_t i, st, side, new_leaves, add, new_id
    cdef int r
    if s < 0:
        return deny_intent(c, LS_DENY_REASON_UNKNOWN_ORDER, -1, intent, 0, px, qty, coid)
    order = ls_ctx_order(c.ctx_words, s)
    i = order[LS_ORD_INST]
    st = order[LS_ORD_STATE]
    side = order[LS_ORD_SIDE]
    if not is_live(st) or order[LS_ORD_ID] != coid:
        return deny_intent(c, LS_DENY_REASON_UNKNOWN_ORDER, i, intent, side, px, qty, coid)
    if trading_blocked(c):
        return deny_intent(c, blocked_reason(c), i, intent, side, px, qty, coid)
    if limits_row(c, i)[LS_RISK_LIMIT_TRADABLE] == 0:
        return deny_intent(c, LS_DENY_REASON_UNKNOWN_INSTRUMENT, i, intent, side, px, qty, coid)
    r = instrument_blocked(c, i)
    if r:
        return deny_intent(c, r, i, intent, side, px, qty, coid)
    if is_pending(st):
        return deny_intent(c, LS_DENY_REASON_DUPLICATE, i, intent, side, px, qty, coid)
    if qty <= order[LS_ORD_CUM_QTY]:
        return deny_intent(c, LS_DENY_REASON_BAD_QTY, i, intent, side, px, qty, coid)
    new_leaves = qty - order[LS_ORD_CUM_QTY]
    add = new_leaves - order[LS_ORD_LEAVES]
    if add < 0:
        add = 0  # until the venue confirms, the old (larger) leaves stay the worst case
    r = check_order(c, i, side, px, qty, s, add if side == LS_SIDE_BUY else 0,
                          add if side == LS_SIDE_SELL else 0, (order[LS_ORD_FLAGS] & LS_INTENT_REDUCE_ONLY) != 0)
    if r:
        return deny_intent(c, r, i, intent, side, px, qty, coid)
    inst_ctx = ls_ctx_inst(c.ctx_words, i)
    limits = limits_row(c, i)
    if limits[LS_RISK_LIMIT_MAX_IN_FLIGHT] > 0 and inst_ctx[LS_INST_IN_FLIGHT] >= limits[LS_RISK_LIMIT_MAX_IN_FLIGHT]:
        return deny_intent(c, LS_DENY_REASON_THROTTLE, i, intent, side, px, qty, coid)
    if not token_bucket(c.now_ts, &c.submit_tokens[i], &c.submit_refill_ts[i], limits[LS_RISK_LIMIT_SUBMIT_RATE],
                        limits[LS_RISK_LIMIT_SUBMIT_BURST], 0):
        return deny_intent(c, LS_DENY_REASON_SUBMIT_RATE, i, intent, side, px, qty, coid)
    if <int64_t>c.n_out_orders >= c.orders_budget:
        return deny_intent(c, LS_DENY_REASON_BACKPRESSURE, i, intent, side, px, qty, coid)
    token_bucket(c.now_ts, &c.submit_tokens[i], &c.submit_refill_ts[i], limits[LS_RISK_LIMIT_SUBMIT_RATE],
                 limits[LS_RISK_LIMIT_SUBMIT_BURST], 1)
    new_id = c.next_client_order_id
    c.next_client_order_id += 1
    c.ctx_words[LS_CTX_NEXT_ORDER_ID] = c.next_client_order_id
    order[LS_ORD_PENDING_ID] = new_id
    order[LS_ORD_PENDING_PRICE] = px
    order[LS_ORD_PENDING_QTY] = qty
    order[LS_ORD_PRE_STATE] = st
    order[LS_ORD_TS_SENT] = c.now_ts
    order_index_put(&c.order_index, new_id, s)
    end_denial_run(c, i)
    cdef ls_order_cmd_t *cmd = emit_order_cmd(c, c.instrument_ids[i])
    cmd.client_order_id = new_id
    cmd.orig_client_order_id = coid
    cmd.price = px
    cmd.qty = qty
    cmd.cmd = LS_ORDER_CMD_TYPE_REPLACE
    cmd.side = <uint8_t>side
    cmd.tif = <uint8_t>order[LS_ORD_TIF]
    cmd.ord_type = <uint8_t>order[LS_ORD_ORD_TYPE]
    if order[LS_ORD_FLAGS] & LS_INTENT_REDUCE_ONLY:
        cmd.flags = LS_RECORD_FLAG_REDUCE_ONLY
    c.c_replaces += 1
    set_order_state(c, s, LS_ORDER_STATE_PENDING_REPLACE, 0)
    return 0


cdef int64_t cancel_all(Core c, int64_t only) noexcept nogil:
    """Cancel every live order (of instrument index only, or all when -1); returns how many
    CancelOrder commands went out. Orders already pending cancel are skipped."""
    cdef int64_t i, k, n, sent = 0
    cdef int64_t *order
    cdef int64_t *inst_ctx
    for i in range(c.n_instruments):
        if only >= 0 and i != only:
            continue
        inst_ctx = ls_ctx_inst(c.ctx_words, i)
        n = inst_ctx[LS_INST_N_LIVE]
        for k in range(n):  # cancels keep orders live: the list does not move under us
            order = ls_ctx_order(c.ctx_words, live_slots(c, i)[k])
            if order[LS_ORD_STATE] == LS_ORDER_STATE_PENDING_CANCEL:
                continue
            if order[LS_ORD_STATE] == LS_ORDER_STATE_PENDING_REPLACE:
                # The venue may have replaced it already: a cancel of the old id would then be
                # refused, and the order would live on under the new id unseen. Cancel whichever
                # id survives as soon as the venue answers the replace (REPLACED or its reject).
                if not order[LS_ORD_CANCEL_AFTER]:
                    order[LS_ORD_CANCEL_AFTER] = 1
                    sent += 1
                continue
            if cancel_order(c, order[LS_ORD_ID], 1) == 0:
                sent += 1
    return sent
