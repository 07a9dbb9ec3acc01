# cython: language_level=3
"""Market maker, Cython flavour: quotes both sides around the mid with an inventory skew.

On each evaluation of instrument i (book update at LAST_IN_MSG, trade, BBO, status, own exec):

* cancel every own order when the feed is unhealthy, trading is HALTED or the book is one-sided;
* fair price = mid - skew, skew = trunc(position * skew_ticks / quote_qty) ticks;
  bid = floor(fair - half_spread_ticks * tick), ask = ceil(fair + half_spread_ticks * tick),
  both kept passive (bid < best ask, ask > best bid);
* one order per side: NEW when none, REPLACE when the resting price is requote_ticks or more away
  (CANCEL instead when it is partially filled), nothing while a command is in flight;
* a side whose fill would take |position| past max_position is not quoted (its order canceled);
  while REDUCING only the side that reduces the position is quoted, at most |position|.

Written on the Strategy SDK (``SdkStrategy`` hooks, named views ``ls_ctx_inst_view`` /
``ls_ctx_ord_view``, the params struct ``MMParams``). The numba and Python flavours
(``livestack.strategies.kernels.mm_body``) implement the same rules word for word; a test proves
the three produce identical outputs.
"""

from libc.stdint cimport int64_t
from livestack.core.ctx cimport *
from livestack.core.strategy cimport SdkStrategy
from livestack.schema.records cimport *
from livestack.strategies.cysdk cimport sdk_params

from livestack.strategies.kernels import MMParams

PARAM_NAMES = ("half_spread_ticks", "quote_qty", "skew_ticks", "requote_ticks", "max_position")
PARAM_DEFAULTS = (2, 10, 1, 2, 50)


ctypedef struct MMP:      # the params words, in the order of MMParams
    int64_t half_spread_ticks
    int64_t quote_qty
    int64_t skew_ticks
    int64_t requote_ticks
    int64_t max_position


cdef inline void _manage(ls_strategy_ctx_t *ctx, int64_t i, int64_t slot, bint want, int64_t target,
                         int64_t side, int64_t qty, int64_t requote) noexcept nogil:
    cdef ls_ctx_ord_t *o
    cdef int64_t st, d
    if slot < 0:
        if want:
            ls_ctx_push_intent(ctx, LS_ORDER_CMD_TYPE_NEW, i, side, target, qty, 0,
                               LS_TIME_IN_FORCE_GTC, LS_ORD_TYPE_LIMIT)
        return
    o = ls_ctx_ord_view(ctx, slot)
    st = o.state
    if st != LS_ORDER_STATE_ACCEPTED and st != LS_ORDER_STATE_PARTIALLY_FILLED:
        return
    if not want:
        ls_ctx_push_intent(ctx, LS_ORDER_CMD_TYPE_CANCEL, i, 0, 0, 0, o.id, 0, 0)
        return
    d = o.price - target
    if d < 0:
        d = -d
    if d >= requote:
        if st == LS_ORDER_STATE_PARTIALLY_FILLED:
            ls_ctx_push_intent(ctx, LS_ORDER_CMD_TYPE_CANCEL, i, 0, 0, 0, o.id, 0, 0)
        else:
            ls_ctx_push_intent(ctx, LS_ORDER_CMD_TYPE_REPLACE, i, side, target, qty, o.id, 0, 0)


cdef class MarketMaker(SdkStrategy):
    Params = MMParams

    def __init__(self, name="mm_cy"):
        SdkStrategy.__init__(self, name, PARAM_NAMES, PARAM_DEFAULTS)

    cdef void on_book(self, ls_strategy_ctx_t *ctx, int64_t i) noexcept nogil:
        self.quote(ctx, i)

    cdef void on_trade(self, ls_strategy_ctx_t *ctx, int64_t i) noexcept nogil:
        self.quote(ctx, i)

    cdef void on_fill(self, ls_strategy_ctx_t *ctx, int64_t i) noexcept nogil:
        self.quote(ctx, i)

    cdef void on_order_update(self, ls_strategy_ctx_t *ctx, int64_t i) noexcept nogil:
        self.quote(ctx, i)

    cdef inline void quote(self, ls_strategy_ctx_t *ctx, int64_t i) noexcept nogil:
        if i < 0:
            return
        cdef ls_ctx_inst_t *I = ls_ctx_inst_view(ctx, i)
        cdef ls_ctx_hdr_t *H = ls_ctx_hdr(ctx)
        cdef MMP *p = <MMP *>sdk_params(ctx)
        cdef int64_t hs = p.half_spread_ticks, qq = p.quote_qty
        cdef int64_t bid_slot = -1, ask_slot = -1, k, s, st
        cdef ls_ctx_ord_t *o
        for k in range(I.n_live):
            s = ls_ctx_live_slot(ctx, i, k)
            o = ls_ctx_ord_view(ctx, s)
            st = o.state
            if o.side == LS_SIDE_BUY:
                if bid_slot < 0:
                    bid_slot = s
                elif st == LS_ORDER_STATE_ACCEPTED or st == LS_ORDER_STATE_PARTIALLY_FILLED:
                    ls_ctx_push_intent(ctx, LS_ORDER_CMD_TYPE_CANCEL, i, 0, 0, 0, o.id, 0, 0)
            else:
                if ask_slot < 0:
                    ask_slot = s
                elif st == LS_ORDER_STATE_ACCEPTED or st == LS_ORDER_STATE_PARTIALLY_FILLED:
                    ls_ctx_push_intent(ctx, LS_ORDER_CMD_TYPE_CANCEL, i, 0, 0, 0, o.id, 0, 0)
        cdef int64_t ts = H.trading_state
        cdef int64_t bid = I.bid_px, ask = I.ask_px, pos = I.position, tick = I.tick
        cdef bint quoting = I.healthy != 0 and ts != LS_TRADING_STATE_HALTED and \
            H.kill_latched == 0 and bid > 0 and ask > bid and qq > 0
        if not quoting:
            _manage(ctx, i, bid_slot, 0, 0, LS_SIDE_BUY, 0, 0)
            _manage(ctx, i, ask_slot, 0, 0, LS_SIDE_SELL, 0, 0)
            return
        cdef int64_t skew = ls_tdiv(pos * p.skew_ticks, qq)
        cdef int64_t num_b = bid + ask - 2 * (skew + hs) * tick
        cdef int64_t num_a = bid + ask - 2 * (skew - hs) * tick
        cdef int64_t bid_t = (num_b // (2 * tick)) * tick if num_b > 0 else 0
        cdef int64_t ask_t = ((num_a + 2 * tick - 1) // (2 * tick)) * tick if num_a > 0 else 0
        if bid_t >= ask:
            bid_t = ask - tick
        if ask_t <= bid:
            ask_t = bid + tick
        cdef int64_t maxpos = p.max_position
        cdef bint want_bid = (ts == LS_TRADING_STATE_ACTIVE or (ts == LS_TRADING_STATE_REDUCING and pos < 0)) \
            and pos + qq <= maxpos and bid_t > 0
        cdef bint want_ask = (ts == LS_TRADING_STATE_ACTIVE or (ts == LS_TRADING_STATE_REDUCING and pos > 0)) \
            and pos - qq >= -maxpos
        cdef int64_t qty_b = qq, qty_a = qq
        if ts == LS_TRADING_STATE_REDUCING:
            if -pos < qty_b:
                qty_b = -pos
            if pos < qty_a:
                qty_a = pos
        _manage(ctx, i, bid_slot, want_bid, bid_t, LS_SIDE_BUY, qty_b, p.requote_ticks * tick)
        _manage(ctx, i, ask_slot, want_ask, ask_t, LS_SIDE_SELL, qty_a, p.requote_ticks * tick)
