"""Intent helpers and named reads over the context block ``w`` (an int64 array), for numba and Python.

The same functions serve both flavours: ``register_jitable`` leaves them plain Python functions when
called from Python (``livestack.strategies.sdk.Context`` wraps them) and lets numba compile them
into a numba strategy's kernel. The Cython flavour has the same helpers in ``cysdk.pxd``.

=====================================  ===============================================================
``quote(w, i, bid_px, ask_px, qty)``   one resting order per side at these prices: NEW when none,
                                       REPLACE when price or open qty differ (CANCEL when partially
                                       filled), CANCEL of extra orders; a price or qty <= 0 cancels
                                       that side; nothing while a command on that side is in flight
``place(w, i, side, px, qty, tif,      one NEW (LIMIT); reduce_only clamps qty to what reduces the
reduce_only)``                         position (nothing when it would not) and marks it reduce-only
``cancel(w, client_order_id)``         CANCEL
``cancel_all(w, i)``                   CANCEL every cancellable own order of instrument i (-1: all)
``modify(w, client_order_id, px,       REPLACE
qty)``
``error(w, code)``                     report an error (numba cannot raise into the core): the call
                                       fails as if it raised: its intents are dropped, ANOMALY
                                       STRATEGY_ERROR + ANOMALY_TEXT ("error code N in on_book")
                                       are recorded, on_error applies. ``code`` nonzero (0 reads 1)
=====================================  ===============================================================

Named reads: ``header(w).ts``, ``inst(w, i).bid_px``, ``order(w, slot).state``,
``live_order(w, i, k)`` — numpy record views (``livestack.core.ctx.*_DTYPE``, generated from
``livestack/schema/ctx_spec.py``) over the block's own words, writable, no copy.
"""

from __future__ import annotations

import numpy as np
from numba.extending import overload, register_jitable

from livestack.core import ctx as C
from livestack.strategies import views as V
from livestack.schema.dtypes import OrdType, OrderCmdType, OrderState, Side, TimeInForce

HDR_DTYPE = C.HDR_DTYPE
INST_DTYPE = C.INST_DTYPE
ORD_DTYPE = C.ORD_DTYPE
HDR_WORDS = C.CTX_HDR_WORDS
INST_FIXED_WORDS = C.INST_FIXED_WORDS
ORD_WORDS = C.ORD_WORDS
INTENT_WORDS = C.INTENT_WORDS
CTX_INST_OFF = C.CTX_INST_OFF
CTX_INST_STRIDE = C.CTX_INST_STRIDE
CTX_INST_LIVE_OFF = C.CTX_INST_LIVE_OFF
CTX_ORD_OFF = C.CTX_ORD_OFF
CTX_N_INST = C.CTX_N_INST
CTX_INTENT_OFF = C.CTX_INTENT_OFF
CTX_MAX_INTENTS = C.CTX_MAX_INTENTS
CTX_N_INTENTS = C.CTX_N_INTENTS
CTX_GUSER_OFF = C.CTX_GUSER_OFF
CTX_ERROR = C.CTX_ERROR
CTX_N_GUSER = C.CTX_N_GUSER
INST_N_LIVE = C.INST_N_LIVE
INST_POSITION = C.INST_POSITION
INTENT_TYPE = C.INTENT_TYPE
INTENT_INST = C.INTENT_INST
INTENT_SIDE = C.INTENT_SIDE
INTENT_PRICE = C.INTENT_PRICE
INTENT_QTY = C.INTENT_QTY
INTENT_ORDER_ID = C.INTENT_ORDER_ID
INTENT_TIF = C.INTENT_TIF
INTENT_ORD_TYPE = C.INTENT_ORD_TYPE
REDUCE_ONLY = C.INTENT_REDUCE_ONLY
ORD_ID = C.ORD_ID
ORD_SIDE = C.ORD_SIDE
ORD_STATE = C.ORD_STATE
ORD_PRICE = C.ORD_PRICE
ORD_LEAVES = C.ORD_LEAVES

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


# Named views (livestack.strategies.views): in Python small objects with a property per field; in
# numba (the @overload twins) a struct of the array and the base whose attributes compile to one
# load each -- no copy, no per-call array either way.

def header(w):
    """The header words by name (``ts``, ``ev_kind``, ``ev_inst``, ``trading_state`` ...)."""
    return V.HdrView(w, 0)


def inst(w, i):
    """Instrument i's fixed words by name (``bid_px``, ``ask_px``, ``position``, ``healthy``,
    ``tick``, ``n_live``; ``user``: its scratch words, writable)."""
    return V.InstView(w, w[CTX_INST_OFF] + i * w[CTX_INST_STRIDE])


def order(w, slot):
    """Order slot ``slot`` by name (``id``, ``side``, ``state``, ``price``, ``qty``, ``leaves`` ...)."""
    return V.OrderView(w, w[CTX_ORD_OFF] + slot * ORD_WORDS)


_params_views: dict = {}


def params(w, dtype):
    """The params words by name, a live view (``SET_PARAM`` changes show) laid out as ``dtype``
    (``livestack.strategies.params.record_dtype``; float fields read as doubles). Python side."""
    cls = _params_views.get(dtype)
    if cls is None:
        ns = {"__slots__": ("_w", "_b")}
        for k, name in enumerate(dtype.names):
            if dtype[name].kind == "f":
                ns[name] = property(lambda self, k=k: float(self._w[self._b + k:self._b + k + 1].view(np.float64)[0]))
            else:
                ns[name] = property(lambda self, k=k: int(self._w[self._b + k]))

        def __init__(self, w, b):
            self._w, self._b = w, b

        ns["__init__"] = __init__
        cls = _params_views[dtype] = type("ParamsView", (), ns)
    return cls(w, int(w[C.CTX_PARAM_OFF]))


@overload(header)
def _header_nb(w):
    def impl(w):
        return V.make_hdr(w, 0)
    return impl


@overload(inst)
def _inst_nb(w, i):
    def impl(w, i):
        return V.make_inst(w, w[CTX_INST_OFF] + i * w[CTX_INST_STRIDE])
    return impl


@overload(order)
def _order_nb(w, slot):
    def impl(w, slot):
        return V.make_order(w, w[CTX_ORD_OFF] + slot * ORD_WORDS)
    return impl


@register_jitable
def inst_base(w, i):
    return w[CTX_INST_OFF] + i * w[CTX_INST_STRIDE]


@register_jitable
def live_slot(w, i, k):
    """The order slot of instrument i's k-th live order (0 <= k < inst(w, i).n_live)."""
    return w[w[CTX_INST_OFF] + i * w[CTX_INST_STRIDE] + w[CTX_INST_LIVE_OFF] + k]


def live_order(w, i, k):
    return order(w, live_slot(w, i, k))


@overload(live_order)
def _live_order_nb(w, i, k):
    def impl(w, i, k):
        return order(w, live_slot(w, i, k))
    return impl


@register_jitable
def push(w, typ, i, side, price, qty, oid, tif, ord_type):
    """Append one intent; False when the buffer is full (the core then records INTENTS_OVERFLOW)."""
    n = w[CTX_N_INTENTS]
    if n >= w[CTX_MAX_INTENTS]:
        return False
    b = w[CTX_INTENT_OFF] + n * INTENT_WORDS
    w[b + INTENT_TYPE] = typ
    w[b + INTENT_INST] = i
    w[b + INTENT_SIDE] = side
    w[b + INTENT_PRICE] = price
    w[b + INTENT_QTY] = qty
    w[b + INTENT_ORDER_ID] = oid
    w[b + INTENT_TIF] = tif
    w[b + INTENT_ORD_TYPE] = ord_type
    w[CTX_N_INTENTS] = n + 1
    return True


@register_jitable
def place(w, i, side, px, qty, tif, reduce_only):
    if reduce_only:
        pos = w[w[CTX_INST_OFF] + i * w[CTX_INST_STRIDE] + INST_POSITION]
        room = 0
        if side == BUY and pos < 0:
            room = -pos
        elif side == SELL and pos > 0:
            room = pos
        if qty > room:
            qty = room
        if qty <= 0:
            return False
        tif = tif | REDUCE_ONLY   # the venue is told too (ORDER_CMD flag REDUCE_ONLY: Binance reduceOnly)
    return push(w, NEW, i, side, px, qty, 0, tif, LIMIT)


@register_jitable
def cancel(w, client_order_id):
    return push(w, CANCEL, 0, 0, 0, 0, client_order_id, 0, 0)


@register_jitable
def modify(w, client_order_id, px, qty):
    return push(w, REPLACE, 0, 0, px, qty, client_order_id, 0, 0)


@register_jitable
def cancel_all(w, i):
    n = 0
    lo = i
    hi = i + 1
    if i < 0:
        lo = 0
        hi = w[CTX_N_INST]
    for j in range(lo, hi):
        b = w[CTX_INST_OFF] + j * w[CTX_INST_STRIDE]
        live = b + w[CTX_INST_LIVE_OFF]
        for k in range(w[b + INST_N_LIVE]):
            o = w[CTX_ORD_OFF] + w[live + k] * ORD_WORDS
            st = w[o + ORD_STATE]
            if st == ACCEPTED or st == PARTIALLY_FILLED:
                if push(w, CANCEL, j, 0, 0, 0, w[o + ORD_ID], 0, 0):
                    n += 1
    return n


@register_jitable
def _quote_side(w, i, slot, side, px, qty):
    if slot < 0:
        if px > 0 and qty > 0:
            push(w, NEW, i, side, px, qty, 0, GTC, LIMIT)
        return
    o = w[CTX_ORD_OFF] + slot * ORD_WORDS
    st = w[o + ORD_STATE]
    if st != ACCEPTED and st != PARTIALLY_FILLED:
        return  # a command is in flight for it: wait for the venue's answer
    if px <= 0 or qty <= 0:
        push(w, CANCEL, i, 0, 0, 0, w[o + ORD_ID], 0, 0)
    elif w[o + ORD_PRICE] != px or w[o + ORD_LEAVES] != qty:
        if st == PARTIALLY_FILLED:
            push(w, CANCEL, i, 0, 0, 0, w[o + ORD_ID], 0, 0)
        else:
            push(w, REPLACE, i, side, px, qty, w[o + ORD_ID], 0, 0)


@register_jitable
def quote(w, i, bid_px, ask_px, qty):
    b = w[CTX_INST_OFF] + i * w[CTX_INST_STRIDE]
    live = b + w[CTX_INST_LIVE_OFF]
    bid_slot = -1
    ask_slot = -1
    for k in range(w[b + INST_N_LIVE]):
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
    _quote_side(w, i, bid_slot, BUY, bid_px, qty)
    _quote_side(w, i, ask_slot, SELL, ask_px, qty)


@register_jitable
def error(w, code):
    """Fail this call with ``code`` (nonzero; see the table above). Return from the hook after it."""
    w[CTX_ERROR] = code if code != 0 else 1


@register_jitable
def sdk_word(w):
    """The word the numba SDK keeps its own state in (the last global user word: 1 once on_start ran)."""
    return w[CTX_GUSER_OFF] + w[CTX_N_GUSER] - 1
