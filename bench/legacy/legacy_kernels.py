"""The example strategies as plain functions over the context block ``w`` (an int64 array).

One source, two flavours: numba compiles these functions into the ``@cfunc`` kernels the core
calls through a C function pointer (``numba_strategies``), and the Python flavour (``pystrats``)
runs the very same functions in the interpreter on a numpy view of the block. The Cython flavour
(``mm.pyx``, ``taker.pyx``) follows the same rules line by line; tests prove the outputs match.

Only integer arithmetic; ``tdiv`` truncates toward zero like C (Python's ``//`` floors).
``register_jitable`` leaves each function a plain Python function when called from Python and
lets numba compile it when called from jitted code.
"""

from __future__ import annotations

from numba.extending import register_jitable

from livestack.core import ctx as C
from livestack.schema.dtypes import (OrdType, OrderCmdType, OrderState, RecordKind, Side,
                                     TimeInForce, TradingState)

# plain ints (compile-time constants for numba)
CTX_WORDS = C.CTX_WORDS
CTX_TS = C.CTX_TS
CTX_EV_KIND = C.CTX_EV_KIND
CTX_EV_INST = C.CTX_EV_INST
CTX_EV_SIDE = C.CTX_EV_SIDE
CTX_EV_QTY = C.CTX_EV_QTY
CTX_TRADING_STATE = C.CTX_TRADING_STATE
CTX_KILL_LATCHED = C.CTX_KILL_LATCHED
CTX_INST_OFF = C.CTX_INST_OFF
CTX_INST_STRIDE = C.CTX_INST_STRIDE
CTX_INST_LIVE_OFF = C.CTX_INST_LIVE_OFF
CTX_ORD_OFF = C.CTX_ORD_OFF
CTX_PARAM_OFF = C.CTX_PARAM_OFF
CTX_INTENT_OFF = C.CTX_INTENT_OFF
CTX_MAX_INTENTS = C.CTX_MAX_INTENTS
CTX_N_INTENTS = C.CTX_N_INTENTS
INST_HEALTHY = C.INST_HEALTHY
INST_TICK = C.INST_TICK
INST_BID_PX = C.INST_BID_PX
INST_ASK_PX = C.INST_ASK_PX
INST_POSITION = C.INST_POSITION
INST_N_LIVE = C.INST_N_LIVE
INST_USER = C.INST_USER
ORD_WORDS = C.ORD_WORDS
ORD_ID = C.ORD_ID
ORD_SIDE = C.ORD_SIDE
ORD_STATE = C.ORD_STATE
ORD_PRICE = C.ORD_PRICE
INTENT_WORDS = C.INTENT_WORDS
INTENT_TYPE = C.INTENT_TYPE
INTENT_INST = C.INTENT_INST
INTENT_SIDE = C.INTENT_SIDE
INTENT_PRICE = C.INTENT_PRICE
INTENT_QTY = C.INTENT_QTY
INTENT_ORDER_ID = C.INTENT_ORDER_ID
INTENT_TIF = C.INTENT_TIF
INTENT_ORD_TYPE = C.INTENT_ORD_TYPE

NEW = int(OrderCmdType.NEW)
CANCEL = int(OrderCmdType.CANCEL)
REPLACE = int(OrderCmdType.REPLACE)
BUY = int(Side.BUY)
SELL = int(Side.SELL)
GTC = int(TimeInForce.GTC)
IOC = int(TimeInForce.IOC)
LIMIT = int(OrdType.LIMIT)
ACCEPTED = int(OrderState.ACCEPTED)
PARTIALLY_FILLED = int(OrderState.PARTIALLY_FILLED)
ACTIVE = int(TradingState.ACTIVE)
REDUCING = int(TradingState.REDUCING)
HALTED = int(TradingState.HALTED)
MD_TRADE = int(RecordKind.MD_TRADE)

MM_PARAM_NAMES = ("half_spread_ticks", "quote_qty", "skew_ticks", "requote_ticks", "max_position")
MM_PARAM_DEFAULTS = (2, 10, 1, 2, 50)
TAKER_PARAM_NAMES = ("decay_permille", "threshold", "take_qty", "max_position", "cooldown_ns")
TAKER_PARAM_DEFAULTS = (50, 500, 10, 50, 1000000000)


@register_jitable
def tdiv(a, b):
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


@register_jitable
def push(w, typ, inst, side, price, qty, oid, tif, ord_type):
    n = w[CTX_N_INTENTS]
    if n >= w[CTX_MAX_INTENTS]:
        return
    b = w[CTX_INTENT_OFF] + n * INTENT_WORDS
    w[b + INTENT_TYPE] = typ
    w[b + INTENT_INST] = inst
    w[b + INTENT_SIDE] = side
    w[b + INTENT_PRICE] = price
    w[b + INTENT_QTY] = qty
    w[b + INTENT_ORDER_ID] = oid
    w[b + INTENT_TIF] = tif
    w[b + INTENT_ORD_TYPE] = ord_type
    w[CTX_N_INTENTS] = n + 1


@register_jitable
def mm_manage(w, i, slot, want, target, side, qty, requote):
    if slot < 0:
        if want:
            push(w, NEW, i, side, target, qty, 0, GTC, LIMIT)
        return
    o = w[CTX_ORD_OFF] + slot * ORD_WORDS
    st = w[o + ORD_STATE]
    if st != ACCEPTED and st != PARTIALLY_FILLED:
        return
    if not want:
        push(w, CANCEL, i, 0, 0, 0, w[o + ORD_ID], 0, 0)
        return
    d = w[o + ORD_PRICE] - target
    if d < 0:
        d = -d
    if d >= requote:
        if st == PARTIALLY_FILLED:
            push(w, CANCEL, i, 0, 0, 0, w[o + ORD_ID], 0, 0)
        else:
            push(w, REPLACE, i, side, target, qty, w[o + ORD_ID], 0, 0)


@register_jitable
def mm_body(w):
    """Market maker (rules: ``livestack/strategies/mm.pyx``)."""
    i = w[CTX_EV_INST]
    if i < 0:
        return
    base = w[CTX_INST_OFF] + i * w[CTX_INST_STRIDE]
    p = w[CTX_PARAM_OFF]
    hs = w[p]
    qq = w[p + 1]
    skew_t = w[p + 2]
    requote = w[p + 3]
    maxpos = w[p + 4]
    bid_slot = -1
    ask_slot = -1
    live = base + w[CTX_INST_LIVE_OFF]
    for k in range(w[base + INST_N_LIVE]):
        s = w[live + k]
        o = w[CTX_ORD_OFF] + s * ORD_WORDS
        st = w[o + ORD_STATE]
        if w[o + ORD_SIDE] == BUY:
            if bid_slot < 0:
                bid_slot = s
            elif st == ACCEPTED or st == PARTIALLY_FILLED:
                push(w, CANCEL, i, 0, 0, 0, w[o + ORD_ID], 0, 0)
        else:
            if ask_slot < 0:
                ask_slot = s
            elif st == ACCEPTED or st == PARTIALLY_FILLED:
                push(w, CANCEL, i, 0, 0, 0, w[o + ORD_ID], 0, 0)
    ts = w[CTX_TRADING_STATE]
    bid = w[base + INST_BID_PX]
    ask = w[base + INST_ASK_PX]
    pos = w[base + INST_POSITION]
    tick = w[base + INST_TICK]
    quoting = (w[base + INST_HEALTHY] != 0 and ts != HALTED and w[CTX_KILL_LATCHED] == 0
               and bid > 0 and ask > bid and qq > 0)
    if not quoting:
        mm_manage(w, i, bid_slot, False, 0, BUY, 0, 0)
        mm_manage(w, i, ask_slot, False, 0, SELL, 0, 0)
        return
    skew = tdiv(pos * skew_t, qq)
    num_b = bid + ask - 2 * (skew + hs) * tick
    num_a = bid + ask - 2 * (skew - hs) * tick
    bid_t = (num_b // (2 * tick)) * tick if num_b > 0 else 0
    ask_t = ((num_a + 2 * tick - 1) // (2 * tick)) * tick if num_a > 0 else 0
    if bid_t >= ask:
        bid_t = ask - tick
    if ask_t <= bid:
        ask_t = bid + tick
    want_bid = (ts == ACTIVE or (ts == REDUCING and pos < 0)) and pos + qq <= maxpos and bid_t > 0
    want_ask = (ts == ACTIVE or (ts == REDUCING and pos > 0)) and pos - qq >= -maxpos
    qty_b = qq
    qty_a = qq
    if ts == REDUCING:
        if -pos < qty_b:
            qty_b = -pos
        if pos < qty_a:
            qty_a = pos
    mm_manage(w, i, bid_slot, want_bid, bid_t, BUY, qty_b, requote * tick)
    mm_manage(w, i, ask_slot, want_ask, ask_t, SELL, qty_a, requote * tick)


@register_jitable
def taker_body(w):
    """Trade-flow imbalance taker (rules: ``livestack/strategies/taker.pyx``)."""
    if w[CTX_EV_KIND] != MD_TRADE:
        return
    i = w[CTX_EV_INST]
    base = w[CTX_INST_OFF] + i * w[CTX_INST_STRIDE]
    u = base + INST_USER
    p = w[CTX_PARAM_OFF]
    decay = w[p]
    thr = w[p + 1]
    tq = w[p + 2]
    maxpos = w[p + 3]
    cooldown = w[p + 4]
    side = w[CTX_EV_SIDE]
    q = w[CTX_EV_QTY]
    signed = 0
    if side == BUY:
        signed = q
    elif side == SELL:
        signed = -q
    acc = w[u]
    acc = acc - tdiv(acc * decay, 1000) + signed
    w[u] = acc
    bid = w[base + INST_BID_PX]
    ask = w[base + INST_ASK_PX]
    pos = w[base + INST_POSITION]
    now = w[CTX_TS]
    if (w[base + INST_HEALTHY] == 0 or w[CTX_TRADING_STATE] != ACTIVE or w[CTX_KILL_LATCHED] != 0
            or bid <= 0 or ask <= bid or thr <= 0):
        return
    if w[base + INST_N_LIVE] > 0:
        return
    if w[u + 2] != 0 and now - w[u + 1] < cooldown:
        return
    if acc >= thr and pos + tq <= maxpos:
        push(w, NEW, i, BUY, ask, tq, 0, IOC, LIMIT)
    elif acc <= -thr and pos - tq >= -maxpos:
        push(w, NEW, i, SELL, bid, tq, 0, IOC, LIMIT)
    else:
        return
    w[u] = 0
    w[u + 1] = now
    w[u + 2] = 1
