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

/* The word indices (LS_CTX_*, LS_INST_*, LS_ORD_*, LS_INTENT_*, LS_INST_USER_WORDS,
 * LS_ORD_EXEC_RING) are declared once in livestack/schema/ctx_spec.py and generated into
 * ls_ctx_words.h (with the Cython view livestack/core/ctx.pxd and the Python constants of
 * livestack/core/ctx.pyx), so C, Cython, numba and Python strategies index the block alike. */
#include "ls_ctx_words.h"

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
