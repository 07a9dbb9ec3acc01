# cython: language_level=3
"""Taker, Cython flavour: trade-flow imbalance crossing the spread.

On every public trade of instrument i: acc = acc - trunc(acc * decay_permille / 1000) + signed qty
(buyer-initiated +, seller-initiated -), kept in the instrument's user word 0. When |acc| reaches
threshold, nothing of ours is live, the cooldown since the last take has passed, trading is ACTIVE
and the feed healthy: send an IOC limit order of take_qty at the opposite best price (buy at the
ask when acc > 0, sell at the bid when acc < 0) unless it would take |position| past max_position;
acc is then reset to 0. Same rules in ``livestack.strategies.numba_strategies.taker_kernel``.
"""

from libc.stdint cimport int64_t
from livestack.core.ctx cimport *
from livestack.core.strategy cimport Strategy
from livestack.schema.records cimport *

PARAM_NAMES = ("decay_permille", "threshold", "take_qty", "max_position", "cooldown_ns")
PARAM_DEFAULTS = (50, 500, 10, 50, 1000000000)


cdef class Taker(Strategy):
    def __init__(self, name="taker_cy"):
        Strategy.__init__(self, name, PARAM_NAMES, PARAM_DEFAULTS)

    cdef void on_event(self, ls_strategy_ctx_t *ctx) noexcept nogil:
        if ctx[LS_CTX_EV_KIND] != LS_RECORD_KIND_MD_TRADE:
            return
        cdef int64_t i = ctx[LS_CTX_EV_INST]
        cdef int64_t *I = ls_ctx_inst(ctx, i)
        cdef int64_t *U = I + LS_INST_USER
        cdef int64_t decay = ls_ctx_param(ctx, 0), thr = ls_ctx_param(ctx, 1), tq = ls_ctx_param(ctx, 2)
        cdef int64_t maxpos = ls_ctx_param(ctx, 3), cooldown = ls_ctx_param(ctx, 4)
        cdef int64_t side = ctx[LS_CTX_EV_SIDE], q = ctx[LS_CTX_EV_QTY], signed = 0
        if side == LS_SIDE_BUY:
            signed = q
        elif side == LS_SIDE_SELL:
            signed = -q
        cdef int64_t acc = U[0]
        acc = acc - ls_tdiv(acc * decay, 1000) + signed
        U[0] = acc
        cdef int64_t bid = I[LS_INST_BID_PX], ask = I[LS_INST_ASK_PX], pos = I[LS_INST_POSITION]
        cdef int64_t now = ctx[LS_CTX_TS]
        if I[LS_INST_HEALTHY] == 0 or ctx[LS_CTX_TRADING_STATE] != LS_TRADING_STATE_ACTIVE or \
                ctx[LS_CTX_KILL_LATCHED] != 0 or bid <= 0 or ask <= bid or thr <= 0:
            return
        if I[LS_INST_N_LIVE] > 0:
            return
        if U[2] != 0 and now - U[1] < cooldown:
            return
        if acc >= thr and pos + tq <= maxpos:
            ls_ctx_push_intent(ctx, LS_ORDER_CMD_TYPE_NEW, i, LS_SIDE_BUY, ask, tq, 0,
                               LS_TIME_IN_FORCE_IOC, LS_ORD_TYPE_LIMIT)
        elif acc <= -thr and pos - tq >= -maxpos:
            ls_ctx_push_intent(ctx, LS_ORDER_CMD_TYPE_NEW, i, LS_SIDE_SELL, bid, tq, 0,
                               LS_TIME_IN_FORCE_IOC, LS_ORD_TYPE_LIMIT)
        else:
            return
        U[0] = 0
        U[1] = now
        U[2] = 1
