# The Strategy SDK for Cython strategies: named views and the intent helpers (inline, nogil).
#
#     from livestack.core.strategy cimport SdkStrategy
#     from livestack.strategies.cysdk cimport *
#
#     cdef class JoinBid(SdkStrategy):
#         cdef void on_book(self, ls_strategy_ctx_t *ctx, int64_t i) noexcept nogil:
#             cdef ls_ctx_inst_t *b = ls_ctx_inst_view(ctx, i)
#             sdk_quote(ctx, i, b.bid_px, b.ask_px, (<JoinParams *>sdk_params(ctx)).qty)
#
# Semantics are those of livestack/strategies/intents.py (numba and Python): same rules, same intents.
from libc.stdint cimport int64_t
from livestack.core.ctx cimport *
from livestack.schema.records cimport *


cdef inline int64_t *sdk_params(ls_strategy_ctx_t *ctx) noexcept nogil:
    """The params words: cast to a struct of int64 (and double) fields in the order of Params."""
    return ctx + ctx[LS_CTX_PARAM_OFF]


cdef inline void sdk_error(ls_strategy_ctx_t *ctx, int64_t code) noexcept nogil:
    """Fail this call with ``code`` (nonzero; 0 reads 1): the hooks are ``noexcept nogil`` and cannot
    raise, so this is how a Cython strategy reports an error. The core drops the call's intents,
    records ANOMALY STRATEGY_ERROR + ANOMALY_TEXT ("error code N in on_book") and applies on_error.
    Return from the hook after it."""
    ctx[LS_CTX_ERROR] = code if code != 0 else 1


cdef inline int sdk_place(ls_strategy_ctx_t *ctx, int64_t i, int64_t side, int64_t px, int64_t qty,
                          int64_t tif, bint reduce_only) noexcept nogil:
    """NEW LIMIT order; 0 when appended, -1 when not (intent buffer full, or nothing to reduce)."""
    cdef int64_t pos, room = 0
    if reduce_only:
        pos = ls_ctx_inst(ctx, i)[LS_INST_POSITION]
        if side == LS_SIDE_BUY and pos < 0:
            room = -pos
        elif side == LS_SIDE_SELL and pos > 0:
            room = pos
        if qty > room:
            qty = room
        if qty <= 0:
            return -1
        tif = tif | LS_INTENT_REDUCE_ONLY   # the venue is told too (ORDER_CMD flag REDUCE_ONLY)
    return ls_ctx_push_intent(ctx, LS_ORDER_CMD_TYPE_NEW, i, side, px, qty, 0, tif, LS_ORD_TYPE_LIMIT)


cdef inline int sdk_cancel(ls_strategy_ctx_t *ctx, int64_t client_order_id) noexcept nogil:
    return ls_ctx_push_intent(ctx, LS_ORDER_CMD_TYPE_CANCEL, 0, 0, 0, 0, client_order_id, 0, 0)


cdef inline int sdk_modify(ls_strategy_ctx_t *ctx, int64_t client_order_id, int64_t px, int64_t qty) noexcept nogil:
    return ls_ctx_push_intent(ctx, LS_ORDER_CMD_TYPE_REPLACE, 0, 0, px, qty, client_order_id, 0, 0)


cdef inline bint sdk_cancellable(ls_ctx_ord_t *o) noexcept nogil:
    return o.state == LS_ORDER_STATE_ACCEPTED or o.state == LS_ORDER_STATE_PARTIALLY_FILLED


cdef inline int64_t sdk_cancel_all(ls_strategy_ctx_t *ctx, int64_t i) noexcept nogil:
    cdef int64_t j, k, n = 0, lo = i, hi = i + 1
    cdef ls_ctx_ord_t *o
    if i < 0:
        lo = 0
        hi = ctx[LS_CTX_N_INST]
    for j in range(lo, hi):
        for k in range(ls_ctx_inst_view(ctx, j).n_live):
            o = ls_ctx_ord_view(ctx, ls_ctx_live_slot(ctx, j, k))
            if sdk_cancellable(o):
                if ls_ctx_push_intent(ctx, LS_ORDER_CMD_TYPE_CANCEL, j, 0, 0, 0, o.id, 0, 0) == 0:
                    n += 1
    return n


cdef inline void _sdk_quote_side(ls_strategy_ctx_t *ctx, int64_t i, int64_t slot, int64_t side, int64_t px,
                                 int64_t qty) noexcept nogil:
    cdef ls_ctx_ord_t *o
    if slot < 0:
        if px > 0 and qty > 0:
            ls_ctx_push_intent(ctx, LS_ORDER_CMD_TYPE_NEW, i, side, px, qty, 0, LS_TIME_IN_FORCE_GTC, LS_ORD_TYPE_LIMIT)
        return
    o = ls_ctx_ord_view(ctx, slot)
    if not sdk_cancellable(o):
        return
    if px <= 0 or qty <= 0:
        ls_ctx_push_intent(ctx, LS_ORDER_CMD_TYPE_CANCEL, i, 0, 0, 0, o.id, 0, 0)
    elif o.price != px or o.leaves != qty:
        if o.state == LS_ORDER_STATE_PARTIALLY_FILLED:
            ls_ctx_push_intent(ctx, LS_ORDER_CMD_TYPE_CANCEL, i, 0, 0, 0, o.id, 0, 0)
        else:
            ls_ctx_push_intent(ctx, LS_ORDER_CMD_TYPE_REPLACE, i, side, px, qty, o.id, 0, 0)


cdef inline void sdk_quote(ls_strategy_ctx_t *ctx, int64_t i, int64_t bid_px, int64_t ask_px,
                           int64_t qty) noexcept nogil:
    cdef int64_t k, s, bid_slot = -1, ask_slot = -1
    cdef ls_ctx_ord_t *o
    for k in range(ls_ctx_inst_view(ctx, i).n_live):
        s = ls_ctx_live_slot(ctx, i, k)
        o = ls_ctx_ord_view(ctx, s)
        if o.side == LS_SIDE_BUY:
            if bid_slot < 0:
                bid_slot = s
            elif sdk_cancellable(o):
                ls_ctx_push_intent(ctx, LS_ORDER_CMD_TYPE_CANCEL, i, 0, 0, 0, o.id, 0, 0)
        else:
            if ask_slot < 0:
                ask_slot = s
            elif sdk_cancellable(o):
                ls_ctx_push_intent(ctx, LS_ORDER_CMD_TYPE_CANCEL, i, 0, 0, 0, o.id, 0, 0)
    _sdk_quote_side(ctx, i, bid_slot, LS_SIDE_BUY, bid_px, qty)
    _sdk_quote_side(ctx, i, ask_slot, LS_SIDE_SELL, ask_px, qty)
