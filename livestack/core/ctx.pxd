# Cython view of cext/ls_core.h: the strategy context block (see the header for the layout).
from libc.stdint cimport int64_t

cdef extern from "ls_core.h" nogil:
    ctypedef int64_t ls_strategy_ctx_t
    enum: LS_CTX_WORDS
    enum: LS_CTX_TS
    enum: LS_CTX_HSEQ
    enum: LS_CTX_EV_KIND
    enum: LS_CTX_EV_INST
    enum: LS_CTX_EV_FLAGS
    enum: LS_CTX_EV_SIDE
    enum: LS_CTX_EV_PRICE
    enum: LS_CTX_EV_QTY
    enum: LS_CTX_EV_STATUS
    enum: LS_CTX_EV_ORDER_ID
    enum: LS_CTX_EV_ORDER_SLOT
    enum: LS_CTX_TRADING_STATE
    enum: LS_CTX_KILL_LATCHED
    enum: LS_CTX_N_INST
    enum: LS_CTX_DEPTH
    enum: LS_CTX_INST_OFF
    enum: LS_CTX_INST_STRIDE
    enum: LS_CTX_LIVE_CAP
    enum: LS_CTX_INST_LIVE_OFF
    enum: LS_CTX_INST_BIDPX_OFF
    enum: LS_CTX_INST_BIDQTY_OFF
    enum: LS_CTX_INST_ASKPX_OFF
    enum: LS_CTX_INST_ASKQTY_OFF
    enum: LS_CTX_ORD_OFF
    enum: LS_CTX_MAX_ORDERS
    enum: LS_CTX_PARAM_OFF
    enum: LS_CTX_N_PARAMS
    enum: LS_CTX_INTENT_OFF
    enum: LS_CTX_MAX_INTENTS
    enum: LS_CTX_N_INTENTS
    enum: LS_CTX_GUSER_OFF
    enum: LS_CTX_N_GUSER
    enum: LS_CTX_NEXT_ORDER_ID
    enum: LS_CTX_HDR_WORDS
    enum: LS_INST_ID
    enum: LS_INST_HEALTHY
    enum: LS_INST_TICK
    enum: LS_INST_LOT
    enum: LS_INST_QTY_SCALE
    enum: LS_INST_BID_PX
    enum: LS_INST_BID_QTY
    enum: LS_INST_ASK_PX
    enum: LS_INST_ASK_QTY
    enum: LS_INST_N_BIDS
    enum: LS_INST_N_ASKS
    enum: LS_INST_BBO_BID_PX
    enum: LS_INST_BBO_BID_QTY
    enum: LS_INST_BBO_ASK_PX
    enum: LS_INST_BBO_ASK_QTY
    enum: LS_INST_LAST_PX
    enum: LS_INST_LAST_QTY
    enum: LS_INST_LAST_SIDE
    enum: LS_INST_LAST_TS
    enum: LS_INST_POSITION
    enum: LS_INST_COST
    enum: LS_INST_REALIZED
    enum: LS_INST_UNREALIZED
    enum: LS_INST_OPEN_BUY_QTY
    enum: LS_INST_OPEN_SELL_QTY
    enum: LS_INST_N_LIVE
    enum: LS_INST_IN_FLIGHT
    enum: LS_INST_DEPTH
    enum: LS_INST_USER
    enum: LS_INST_FIXED_WORDS
    enum: LS_ORD_ID
    enum: LS_ORD_INST
    enum: LS_ORD_SIDE
    enum: LS_ORD_STATE
    enum: LS_ORD_PRICE
    enum: LS_ORD_QTY
    enum: LS_ORD_CUM_QTY
    enum: LS_ORD_LEAVES
    enum: LS_ORD_VENUE_ID
    enum: LS_ORD_TIF
    enum: LS_ORD_ORD_TYPE
    enum: LS_ORD_PENDING_ID
    enum: LS_ORD_PENDING_PRICE
    enum: LS_ORD_PENDING_QTY
    enum: LS_ORD_PRE_STATE
    enum: LS_ORD_TS_SENT
    enum: LS_ORD_CANCEL_AFTER
    enum: LS_ORD_NEW_POS
    enum: LS_ORD_EXEC_POS
    enum: LS_ORD_EXEC_IDS
    enum: LS_ORD_WORDS
    enum: LS_INTENT_TYPE
    enum: LS_INTENT_INST
    enum: LS_INTENT_SIDE
    enum: LS_INTENT_PRICE
    enum: LS_INTENT_QTY
    enum: LS_INTENT_ORDER_ID
    enum: LS_INTENT_TIF
    enum: LS_INTENT_ORD_TYPE
    enum: LS_INTENT_WORDS
    enum: LS_INST_USER_WORDS
    enum: LS_ORD_EXEC_RING
    int64_t *ls_ctx_inst(ls_strategy_ctx_t *ctx, int64_t i)
    int64_t *ls_ctx_order(ls_strategy_ctx_t *ctx, int64_t slot)
    int64_t ls_ctx_live_slot(ls_strategy_ctx_t *ctx, int64_t i, int64_t k)
    int64_t ls_ctx_bid_px(ls_strategy_ctx_t *ctx, int64_t i, int64_t k)
    int64_t ls_ctx_bid_qty(ls_strategy_ctx_t *ctx, int64_t i, int64_t k)
    int64_t ls_ctx_ask_px(ls_strategy_ctx_t *ctx, int64_t i, int64_t k)
    int64_t ls_ctx_ask_qty(ls_strategy_ctx_t *ctx, int64_t i, int64_t k)
    int64_t ls_ctx_param(ls_strategy_ctx_t *ctx, int64_t k)
    int64_t *ls_ctx_guser(ls_strategy_ctx_t *ctx)
    int ls_ctx_push_intent(ls_strategy_ctx_t *ctx, int64_t type, int64_t inst, int64_t side, int64_t price, int64_t qty, int64_t order_id, int64_t tif, int64_t ord_type)
    int64_t ls_tdiv(int64_t a, int64_t b)
    int64_t ls_muldiv(int64_t a, int64_t b, int64_t c)
