# cython: language_level=3
"""Pre-trade risk checks shared by NEW and REPLACE, and the token buckets of the rate limits
(risk.pxd). Each check returns a DenyReason; 0 passes."""
from libc.string cimport memset, memmove
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from livestack.schema.records cimport *
from livestack.core.ctx cimport *
from livestack.core.core cimport Core, CORE_N_DENY, CORE_N_ANOMALY, CORE_N_LIMITS, LS_BOOK_LEVELS_PER_RECORD
from livestack.core.positions cimport reference_price
from livestack.core.order_table cimport live_slots

cdef int64_t TOKEN = RISK_TOKEN


cdef inline int64_t _abs(int64_t x) noexcept nogil:
    return -x if x < 0 else x


cdef bint token_bucket(int64_t now, int64_t *tokens, int64_t *ts, int64_t rate, int64_t burst, bint consume) noexcept nogil:
    """Token bucket on event time: rate tokens per second, burst tokens deep. 0 rate = off."""
    if rate <= 0:
        return True
    cdef int64_t cap = burst * TOKEN
    cdef int64_t dt = now - ts[0]
    cdef int64_t level
    if dt < 0:
        dt = 0
    if dt >= cap // rate + 1:
        level = cap
    else:
        level = tokens[0] + dt * rate
        if level > cap:
            level = cap
    tokens[0] = level
    ts[0] = now
    if level < TOKEN:
        return False
    if consume:
        tokens[0] = level - TOKEN
    return True


cdef int check_order(Core c, int64_t i, int64_t side, int64_t px, int64_t qty, int64_t self_slot,
                      int64_t add_buy, int64_t add_sell, bint reduce_only) noexcept nogil:
    """Checks shared by NEW and REPLACE; returns a DenyReason (0 = pass). add_* is the change of
    open quantity the order would cause on each side (worst case); reduce_only: the order carries
    the REDUCE_ONLY flag (its worst case must not grow the position)."""
    cdef int64_t *inst_ctx = ls_ctx_inst(c.ctx_words, i)
    cdef int64_t *limits = limits_row(c, i)
    cdef int64_t tick = inst_ctx[LS_INST_TICK], lot = inst_ctx[LS_INST_LOT]
    cdef int64_t ref, band, pos, k, s, n
    cdef int64_t *order
    if px <= 0 or px % tick != 0:
        return LS_DENY_REASON_BAD_PRICE
    if qty <= 0 or qty % lot != 0:
        return LS_DENY_REASON_BAD_QTY
    # the venue's own filters (Binance PRICE_FILTER / LOT_SIZE, loaded into the config at session start)
    if px < limits[LS_RISK_LIMIT_MIN_PRICE] or (limits[LS_RISK_LIMIT_MAX_PRICE] > 0 and px > limits[LS_RISK_LIMIT_MAX_PRICE]):
        return LS_DENY_REASON_PRICE_FILTER
    if qty < limits[LS_RISK_LIMIT_MIN_ORDER_QTY]:
        return LS_DENY_REASON_MIN_ORDER_QTY
    if not inst_ctx[LS_INST_HEALTHY]:
        return LS_DENY_REASON_FEED_UNHEALTHY
    if qty > limits[LS_RISK_LIMIT_MAX_ORDER_QTY]:
        return LS_DENY_REASON_MAX_ORDER_QTY
    if limits[LS_RISK_LIMIT_MAX_NOTIONAL] > 0 and ls_muldiv(px, qty, c.qty_scale[i]) > limits[LS_RISK_LIMIT_MAX_NOTIONAL]:
        return LS_DENY_REASON_MAX_NOTIONAL
    if limits[LS_RISK_LIMIT_MIN_NOTIONAL] > 0 and ls_muldiv(px, qty, c.qty_scale[i]) < limits[LS_RISK_LIMIT_MIN_NOTIONAL]:
        return LS_DENY_REASON_MIN_NOTIONAL
    if limits[LS_RISK_LIMIT_PRICE_BAND_TICKS] > 0 or limits[LS_RISK_LIMIT_PRICE_BAND_BPS] > 0:
        ref = reference_price(inst_ctx)
        if ref <= 0:
            return LS_DENY_REASON_NO_REFERENCE
        if limits[LS_RISK_LIMIT_PRICE_BAND_TICKS] > 0 and _abs(px - ref) > limits[LS_RISK_LIMIT_PRICE_BAND_TICKS] * tick:
            return LS_DENY_REASON_PRICE_BAND
        if limits[LS_RISK_LIMIT_PRICE_BAND_BPS] > 0 and _abs(px - ref) * 10000 > limits[LS_RISK_LIMIT_PRICE_BAND_BPS] * ref:
            return LS_DENY_REASON_PRICE_BAND
    pos = inst_ctx[LS_INST_POSITION]
    if reduce_only:   # a reduce-only order: it, with the open orders of its side, must not flip the position
        if side == LS_SIDE_BUY:
            if not (pos < 0 and inst_ctx[LS_INST_OPEN_BUY_QTY] + add_buy <= -pos):
                return LS_DENY_REASON_REDUCE_ONLY
        elif not (pos > 0 and inst_ctx[LS_INST_OPEN_SELL_QTY] + add_sell <= pos):
            return LS_DENY_REASON_REDUCE_ONLY
    if c.trading_state == LS_TRADING_STATE_REDUCING:
        if side == LS_SIDE_BUY:
            if not (pos < 0 and inst_ctx[LS_INST_OPEN_BUY_QTY] + add_buy <= -pos):
                return c.reducing_cause
        else:
            if not (pos > 0 and inst_ctx[LS_INST_OPEN_SELL_QTY] + add_sell <= pos):
                return c.reducing_cause
    if pos + inst_ctx[LS_INST_OPEN_BUY_QTY] + add_buy > limits[LS_RISK_LIMIT_MAX_POSITION] or \
            inst_ctx[LS_INST_OPEN_SELL_QTY] + add_sell - pos > limits[LS_RISK_LIMIT_MAX_POSITION]:
        return LS_DENY_REASON_MAX_POSITION
    # self-cross: would this order trade against one of our own resting orders?
    n = inst_ctx[LS_INST_N_LIVE]
    for k in range(n):
        s = live_slots(c, i)[k]
        if s == self_slot:
            continue
        order = ls_ctx_order(c.ctx_words, s)
        if order[LS_ORD_SIDE] == side:
            continue
        if side == LS_SIDE_BUY:
            if order[LS_ORD_PRICE] <= px or (order[LS_ORD_PENDING_ID] != 0 and order[LS_ORD_PENDING_PRICE] <= px):
                return LS_DENY_REASON_SELF_CROSS
        else:
            if order[LS_ORD_PRICE] >= px or (order[LS_ORD_PENDING_ID] != 0 and order[LS_ORD_PENDING_PRICE] >= px):
                return LS_DENY_REASON_SELF_CROSS
    return 0
