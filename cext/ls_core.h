/* The strategy context of the Core Runtime: one block of int64 words.
 *
 * Why one flat block of int64 and not a struct of pointers: the same memory is read by a Cython
 * strategy (through the helpers below), by a numba @cfunc (numba.carray over the block, word
 * indices as compile-time constants) and by a plain-Python strategy (a numpy int64 view). No
 * pointer ever has to cross into numba or Python, and the core's own state (book, orders,
 * positions) *is* this block, so nothing is copied before a strategy call.
 *
 *   word 0                                                         ctx[LS_CTX_INST_OFF]
 *   +--------------------------------------------------------------+--------------------------
 *   | header: LS_CTX_* (event info, trading state, layout offsets) | instrument 0 | instrument 1 ...
 *   +--------------------------------------------------------------+--------------------------
 *       each instrument block (LS_CTX_INST_STRIDE words):
 *       | LS_INST_* fixed fields | live order slots [LIVE_CAP] | bid_px[D] | bid_qty[D] | ask_px[D] | ask_qty[D] |
 *   ctx[LS_CTX_ORD_OFF]: order table, LS_CTX_MAX_ORDERS blocks of LS_ORD_WORDS (LS_ORD_*)
 *   ctx[LS_CTX_PARAM_OFF]: strategy parameters, LS_CTX_N_PARAMS words
 *   ctx[LS_CTX_INTENT_OFF]: intents buffer, LS_CTX_MAX_INTENTS blocks of LS_INTENT_WORDS
 *   ctx[LS_CTX_GUSER_OFF]: LS_CTX_N_GUSER words of strategy scratch state (kept between calls)
 *
 * Instruments are addressed by *index* (0 .. N_INST-1, config order), not by id. The arrays hold
 * the best LS_INST_DEPTH levels of the core's full (exact) book, best first: bids descending, asks
 * ascending; level k < N_BIDS is valid. Prices/sizes are the instrument's int64
 * fixed point. A strategy reads everything and writes only: the intents buffer (through
 * ls_ctx_push_intent or by writing the words and bumping LS_CTX_N_INTENTS), the per-instrument
 * LS_INST_USER words and the global user words.
 *
 * Strategy contract: state in, intents out. The core fills the header, calls the strategy, then
 * runs every intent in order through risk and execution control. Each intent:
 *   NEW:     inst, side, price, qty, tif, ord_type (order_id ignored: the core assigns the id)
 *   CANCEL:  order_id = client_order_id of a live order
 *   REPLACE: order_id = client_order_id of a live order, new price and qty
 */
#ifndef LS_CORE_H
#define LS_CORE_H

#include <stdint.h>

/* The context is the block itself: ctx[LS_CTX_TS] is the event time. */
typedef int64_t ls_strategy_ctx_t;

/* Header words. */
enum {
    LS_CTX_WORDS = 0,        /* total words in the block */
    LS_CTX_TS,               /* ts of the input being processed (ns): the core's "now" */
    LS_CTX_HSEQ,             /* harness sequence of the input */
    LS_CTX_EV_KIND,          /* RecordKind of the input (MD_LEVEL, MD_TRADE, MD_BBO, MD_STATUS, EXEC, TIMER, CONTROL_CMD) */
    LS_CTX_EV_INST,          /* instrument index of the input, -1 when none */
    LS_CTX_EV_FLAGS,         /* header.flags of the input */
    LS_CTX_EV_SIDE,          /* trade aggressor side / level side / exec side */
    LS_CTX_EV_PRICE,         /* trade price / level price / exec last_px */
    LS_CTX_EV_QTY,           /* trade qty / level qty / exec last_qty */
    LS_CTX_EV_STATUS,        /* MD_STATUS: FeedStatus; EXEC: ExecType */
    LS_CTX_EV_ORDER_ID,      /* EXEC: client_order_id, else 0 */
    LS_CTX_EV_ORDER_SLOT,    /* EXEC: order slot, -1 when unknown */
    LS_CTX_TRADING_STATE,    /* TradingState */
    LS_CTX_KILL_LATCHED,     /* 1 while the kill switch is latched */
    LS_CTX_N_INST,           /* instruments */
    LS_CTX_DEPTH,            /* D: room per side in each instrument's top-of-book arrays (the largest
                                per-instrument LS_INST_DEPTH) */
    LS_CTX_INST_OFF,         /* word offset of instrument 0 */
    LS_CTX_INST_STRIDE,      /* words per instrument block */
    LS_CTX_LIVE_CAP,         /* capacity of the per-instrument live order list */
    LS_CTX_INST_LIVE_OFF,    /* offsets inside an instrument block: live order slot list */
    LS_CTX_INST_BIDPX_OFF,   /* bid prices [D] */
    LS_CTX_INST_BIDQTY_OFF,  /* bid sizes [D] */
    LS_CTX_INST_ASKPX_OFF,   /* ask prices [D] */
    LS_CTX_INST_ASKQTY_OFF,  /* ask sizes [D] */
    LS_CTX_ORD_OFF,          /* word offset of order slot 0 */
    LS_CTX_MAX_ORDERS,       /* order slots */
    LS_CTX_PARAM_OFF,        /* word offset of the parameters */
    LS_CTX_N_PARAMS,         /* parameters */
    LS_CTX_INTENT_OFF,       /* word offset of the intents buffer */
    LS_CTX_MAX_INTENTS,      /* intents the buffer holds */
    LS_CTX_N_INTENTS,        /* intents appended so far (the strategy bumps it) */
    LS_CTX_GUSER_OFF,        /* word offset of the global user words */
    LS_CTX_N_GUSER,          /* global user words */
    LS_CTX_NEXT_ORDER_ID,    /* client_order_id the next accepted NEW/REPLACE gets */
    LS_CTX_HDR_WORDS         /* header size */
};

/* Instrument block: fixed fields. */
enum {
    LS_INST_ID = 0,          /* instrument id (header.instrument) */
    LS_INST_HEALTHY,         /* 1 after SNAPSHOT_END until GAP/STALE/DISCONNECTED/SNAPSHOT_BEGIN */
    LS_INST_TICK,            /* price tick (price units) */
    LS_INST_LOT,             /* quantity step (qty units) */
    LS_INST_QTY_SCALE,       /* 10**qty_decimals: notional = price * qty / QTY_SCALE */
    LS_INST_BID_PX,          /* best bid of the L2 book (0 when empty) */
    LS_INST_BID_QTY,
    LS_INST_ASK_PX,          /* best ask of the L2 book (0 when empty) */
    LS_INST_ASK_QTY,
    LS_INST_N_BIDS,          /* valid bid levels */
    LS_INST_N_ASKS,          /* valid ask levels */
    LS_INST_BBO_BID_PX,      /* last MD_BBO */
    LS_INST_BBO_BID_QTY,
    LS_INST_BBO_ASK_PX,
    LS_INST_BBO_ASK_QTY,
    LS_INST_LAST_PX,         /* last public trade */
    LS_INST_LAST_QTY,
    LS_INST_LAST_SIDE,
    LS_INST_LAST_TS,
    LS_INST_POSITION,        /* net position (qty units, signed) */
    LS_INST_COST,            /* signed cost basis of the open position (price x qty units) */
    LS_INST_REALIZED,        /* realized PnL (price x qty units) */
    LS_INST_UNREALIZED,      /* unrealized PnL at the last mark (price x qty units) */
    LS_INST_OPEN_BUY_QTY,    /* sum of leaves of live buy orders */
    LS_INST_OPEN_SELL_QTY,   /* sum of leaves of live sell orders */
    LS_INST_N_LIVE,          /* live orders (entries in the live list) */
    LS_INST_IN_FLIGHT,       /* orders awaiting a venue answer (pending new/cancel/replace) */
    LS_INST_DEPTH,           /* levels per side this instrument exposes (its book_depth, <= LS_CTX_DEPTH);
                                the core holds the full book: N_BIDS/N_ASKS = min(levels held, DEPTH) */
    LS_INST_USER,            /* first of LS_INST_USER_WORDS strategy scratch words */
    LS_INST_FIXED_WORDS = LS_INST_USER + 16
};
#define LS_INST_USER_WORDS 16

/* Order slot. A slot is live from dispatch until a terminal state; terminal slots are kept for late
 * events until the slot is reused (oldest terminal first). */
enum {
    LS_ORD_ID = 0,           /* client_order_id (0: free slot) */
    LS_ORD_INST,             /* instrument index */
    LS_ORD_SIDE,             /* Side */
    LS_ORD_STATE,            /* OrderState */
    LS_ORD_PRICE,            /* limit price */
    LS_ORD_QTY,              /* order quantity */
    LS_ORD_CUM_QTY,          /* filled so far */
    LS_ORD_LEAVES,           /* open quantity (qty - cum_qty while live, 0 when terminal) */
    LS_ORD_VENUE_ID,         /* venue order id (0 until acknowledged) */
    LS_ORD_TIF,              /* TimeInForce */
    LS_ORD_ORD_TYPE,         /* OrdType */
    LS_ORD_PENDING_ID,       /* PENDING_REPLACE: the new client_order_id */
    LS_ORD_PENDING_PRICE,    /* PENDING_REPLACE: the new price */
    LS_ORD_PENDING_QTY,      /* PENDING_REPLACE: the new quantity */
    LS_ORD_PRE_STATE,        /* state to return to on CANCEL_REJECTED */
    LS_ORD_TS_SENT,          /* ts of the last command sent for it */
    LS_ORD_CANCEL_AFTER,     /* kill/cancel-all met a pending replace: cancel whichever id survives it */
    LS_ORD_NEW_POS,          /* orders-ring position of its NewOrder (commands sent before it) */
    LS_ORD_EXEC_POS,         /* next position in the exec-id ring */
    LS_ORD_EXEC_IDS,         /* LS_ORD_EXEC_RING (exec_id, exec_id_hi) pairs of applied fills (dedupe) */
    LS_ORD_WORDS = LS_ORD_EXEC_IDS + 2 * 8
};
#define LS_ORD_EXEC_RING 8

/* Intent. */
enum {
    LS_INTENT_TYPE = 0,      /* OrderCmdType: NEW, CANCEL, REPLACE */
    LS_INTENT_INST,          /* instrument index (NEW); ignored for CANCEL/REPLACE (taken from the order) */
    LS_INTENT_SIDE,          /* Side (NEW) */
    LS_INTENT_PRICE,         /* limit price (NEW, REPLACE) */
    LS_INTENT_QTY,           /* quantity (NEW, REPLACE) */
    LS_INTENT_ORDER_ID,      /* target client_order_id (CANCEL, REPLACE) */
    LS_INTENT_TIF,           /* TimeInForce (NEW), 0 = GTC */
    LS_INTENT_ORD_TYPE,      /* OrdType (NEW), 0 = LIMIT */
    LS_INTENT_WORDS
};

static inline int64_t *ls_ctx_inst(ls_strategy_ctx_t *ctx, int64_t i) {
    return ctx + ctx[LS_CTX_INST_OFF] + i * ctx[LS_CTX_INST_STRIDE];
}

static inline int64_t *ls_ctx_order(ls_strategy_ctx_t *ctx, int64_t slot) {
    return ctx + ctx[LS_CTX_ORD_OFF] + slot * LS_ORD_WORDS;
}

/* Slot of the k-th live order of instrument i (creation order). */
static inline int64_t ls_ctx_live_slot(ls_strategy_ctx_t *ctx, int64_t i, int64_t k) {
    return ls_ctx_inst(ctx, i)[ctx[LS_CTX_INST_LIVE_OFF] + k];
}

static inline int64_t ls_ctx_bid_px(ls_strategy_ctx_t *ctx, int64_t i, int64_t k) {
    return ls_ctx_inst(ctx, i)[ctx[LS_CTX_INST_BIDPX_OFF] + k];
}
static inline int64_t ls_ctx_bid_qty(ls_strategy_ctx_t *ctx, int64_t i, int64_t k) {
    return ls_ctx_inst(ctx, i)[ctx[LS_CTX_INST_BIDQTY_OFF] + k];
}
static inline int64_t ls_ctx_ask_px(ls_strategy_ctx_t *ctx, int64_t i, int64_t k) {
    return ls_ctx_inst(ctx, i)[ctx[LS_CTX_INST_ASKPX_OFF] + k];
}
static inline int64_t ls_ctx_ask_qty(ls_strategy_ctx_t *ctx, int64_t i, int64_t k) {
    return ls_ctx_inst(ctx, i)[ctx[LS_CTX_INST_ASKQTY_OFF] + k];
}

static inline int64_t ls_ctx_param(ls_strategy_ctx_t *ctx, int64_t k) {
    return ctx[ctx[LS_CTX_PARAM_OFF] + k];
}

static inline int64_t *ls_ctx_guser(ls_strategy_ctx_t *ctx) {
    return ctx + ctx[LS_CTX_GUSER_OFF];
}

/* Append an intent; returns 0, or -1 when the buffer is full (the intent is dropped). */
static inline int ls_ctx_push_intent(ls_strategy_ctx_t *ctx, int64_t type, int64_t inst, int64_t side,
                                     int64_t price, int64_t qty, int64_t order_id, int64_t tif,
                                     int64_t ord_type) {
    int64_t n = ctx[LS_CTX_N_INTENTS];
    if (n >= ctx[LS_CTX_MAX_INTENTS])
        return -1;
    int64_t *w = ctx + ctx[LS_CTX_INTENT_OFF] + n * LS_INTENT_WORDS;
    w[LS_INTENT_TYPE] = type;
    w[LS_INTENT_INST] = inst;
    w[LS_INTENT_SIDE] = side;
    w[LS_INTENT_PRICE] = price;
    w[LS_INTENT_QTY] = qty;
    w[LS_INTENT_ORDER_ID] = order_id;
    w[LS_INTENT_TIF] = tif;
    w[LS_INTENT_ORD_TYPE] = ord_type;
    ctx[LS_CTX_N_INTENTS] = n + 1;
    return 0;
}

/* Division truncating toward zero, as C does; the numba and Python strategies use the same rule
 * (Python's // floors) so every flavour decides identically. */
static inline int64_t ls_tdiv(int64_t a, int64_t b) { return a / b; }

/* a * b / c with a 128-bit intermediate, truncating toward zero (cost-basis arithmetic). */
static inline int64_t ls_muldiv(int64_t a, int64_t b, int64_t c) {
    return (int64_t)(((__int128)a * (__int128)b) / (__int128)c);
}

#endif
