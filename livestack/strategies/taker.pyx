# cython: language_level=3
"""Taker, Cython flavour: trade-flow imbalance crossing the spread.

On every public trade of instrument i: acc = acc - trunc(acc * decay_permille / 1000) + signed qty
(buyer-initiated +, seller-initiated -), kept in the instrument's user word 0. When |acc| reaches
threshold, nothing of ours is live, the cooldown since the last take has passed, trading is ACTIVE
and the feed healthy: send an IOC limit order of take_qty at the opposite best price (buy at the
ask when acc > 0, sell at the bid when acc < 0) unless it would take |position| past max_position;
acc is then reset to 0. Same rules in ``livestack.strategies.kernels.taker_body`` (numba and Python). Written on the
Strategy SDK: the ``on_trade`` hook, named views, the params struct ``TakerP``.
"""

from libc.stdint cimport int64_t
from livestack.core.ctx cimport *
from livestack.core.strategy cimport SdkStrategy
from livestack.schema.records cimport *
from livestack.strategies.cysdk cimport sdk_params

from livestack.strategies.kernels import TakerParams

PARAM_NAMES = ("decay_permille", "threshold", "take_qty", "max_position", "cooldown_ns")
PARAM_DEFAULTS = (50, 500, 10, 50, 1000000000)

# the instrument's scratch words it keeps (as kernels.TK_*)
cdef enum:
    TK_ACC = 0
    TK_LAST_TS = 1
    TK_ARMED = 2


ctypedef struct TakerP:   # the params words, in the order of TakerParams
    int64_t decay_permille
    int64_t threshold
    int64_t take_qty
    int64_t max_position
    int64_t cooldown_ns


cdef class Taker(SdkStrategy):
    Params = TakerParams

    def __init__(self, name="taker_cy"):
        SdkStrategy.__init__(self, name, PARAM_NAMES, PARAM_DEFAULTS)

    cdef void on_trade(self, ls_strategy_ctx_t *ctx, int64_t i) noexcept nogil:
        cdef ls_ctx_inst_t *I = ls_ctx_inst_view(ctx, i)
        cdef ls_ctx_hdr_t *H = ls_ctx_hdr(ctx)
        cdef TakerP *p = <TakerP *>sdk_params(ctx)
        cdef int64_t thr = p.threshold, tq = p.take_qty, maxpos = p.max_position
        cdef int64_t side = H.ev_side, q = H.ev_qty, signed = 0
        if side == LS_SIDE_BUY:
            signed = q
        elif side == LS_SIDE_SELL:
            signed = -q
        cdef int64_t acc = I.user[TK_ACC]
        acc = acc - ls_tdiv(acc * p.decay_permille, 1000) + signed
        I.user[TK_ACC] = acc
        cdef int64_t bid = I.bid_px, ask = I.ask_px, pos = I.position
        cdef int64_t now = H.ts
        if I.healthy == 0 or H.trading_state != LS_TRADING_STATE_ACTIVE or \
                H.kill_latched != 0 or bid <= 0 or ask <= bid or thr <= 0:
            return
        if I.n_live > 0:
            return
        if I.user[TK_ARMED] != 0 and now - I.user[TK_LAST_TS] < p.cooldown_ns:
            return
        if acc >= thr and pos + tq <= maxpos:
            ls_ctx_push_intent(ctx, LS_ORDER_CMD_TYPE_NEW, i, LS_SIDE_BUY, ask, tq, 0,
                               LS_TIME_IN_FORCE_IOC, LS_ORD_TYPE_LIMIT)
        elif acc <= -thr and pos - tq >= -maxpos:
            ls_ctx_push_intent(ctx, LS_ORDER_CMD_TYPE_NEW, i, LS_SIDE_SELL, bid, tq, 0,
                               LS_TIME_IN_FORCE_IOC, LS_ORD_TYPE_LIMIT)
        else:
            return
        I.user[TK_ACC] = 0
        I.user[TK_LAST_TS] = now
        I.user[TK_ARMED] = 1
