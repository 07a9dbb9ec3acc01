"""The example strategies on the SDK, as functions over the context block ``w`` (an int64 array),
its named views (``livestack.strategies.intents``: ``inst(w, i).bid_px``, ``order(w, s).state``)
and the params record ``p`` (``p.quote_qty``).

One source, two flavours: numba compiles these functions into the hooks of ``MarketMakerNumba`` /
``TakerNumba`` (``numba_strategies``, one ``@cfunc`` each), and the Python flavour (``pystrats``)
runs the very same functions in the interpreter. The Cython flavour (``mm.pyx``, ``taker.pyx``)
follows the same rules line by line; tests prove the outputs match.

Only integer arithmetic; ``tdiv`` truncates toward zero like C (Python's ``//`` floors).
"""

from __future__ import annotations

import msgspec
from numba.extending import register_jitable

from livestack.core.ctx import (CTX_EV_INST, CTX_EV_KIND, CTX_EV_SIDE, CTX_INST_OFF, CTX_WORDS,  # noqa: F401
                                INST_N_LIVE)  # (re-exported for benches and test helpers)
from livestack.schema.dtypes import OrderState, RecordKind, Side, TimeInForce, TradingState
from livestack.strategies.intents import (CANCEL, GTC, IOC, LIMIT, NEW, REPLACE, header, inst,  # noqa: F401
                                          live_slot, order, push)
from livestack.strategies.params import record_dtype

BUY = int(Side.BUY)
SELL = int(Side.SELL)
ACCEPTED = int(OrderState.ACCEPTED)
PARTIALLY_FILLED = int(OrderState.PARTIALLY_FILLED)
ACTIVE = int(TradingState.ACTIVE)
REDUCING = int(TradingState.REDUCING)
HALTED = int(TradingState.HALTED)
MD_TRADE = int(RecordKind.MD_TRADE)
GTC_ = int(TimeInForce.GTC)


class MMParams(msgspec.Struct, forbid_unknown_fields=True):
    half_spread_ticks: int = 2     # quote this many ticks either side of the (skewed) mid
    quote_qty: int = 10            # qty units per quote
    skew_ticks: int = 1            # ticks of skew per quote_qty of position
    requote_ticks: int = 2         # move a resting quote only when it is this far from target
    max_position: int = 50         # qty units; a side whose fill would pass it is not quoted


class TakerParams(msgspec.Struct, forbid_unknown_fields=True):
    decay_permille: int = 50       # trade-flow accumulator decay per public trade
    threshold: int = 500           # |accumulator| that triggers a take (qty units)
    take_qty: int = 10
    max_position: int = 50
    cooldown_ns: int = 1_000_000_000


MM_DTYPE = record_dtype(MMParams)
TAKER_DTYPE = record_dtype(TakerParams)
MM_PARAM_NAMES = MM_DTYPE.names
MM_PARAM_DEFAULTS = tuple(f.default for f in msgspec.structs.fields(MMParams))
TAKER_PARAM_NAMES = TAKER_DTYPE.names
TAKER_PARAM_DEFAULTS = tuple(f.default for f in msgspec.structs.fields(TakerParams))

# the taker's scratch words of an instrument (inst(w, i).user[...])
TK_ACC = 0        # decayed signed trade flow
TK_LAST_TS = 1    # ts of the last take
TK_ARMED = 2      # 1 once a take happened (the cooldown applies)


@register_jitable
def tdiv(a, b):
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


@register_jitable
def mm_manage(w, i, slot, want, target, side, qty, requote):
    if slot < 0:
        if want:
            push(w, NEW, i, side, target, qty, 0, GTC_, LIMIT)
        return
    o = order(w, slot)
    st = o.state
    if st != ACCEPTED and st != PARTIALLY_FILLED:
        return
    if not want:
        push(w, CANCEL, i, 0, 0, 0, o.id, 0, 0)
        return
    d = o.price - target
    if d < 0:
        d = -d
    if d >= requote:
        if st == PARTIALLY_FILLED:
            push(w, CANCEL, i, 0, 0, 0, o.id, 0, 0)
        else:
            push(w, REPLACE, i, side, target, qty, o.id, 0, 0)


@register_jitable
def mm_body(w, i, p):
    """Market maker (rules: ``livestack/strategies/mm.pyx``); every event of instrument i."""
    if i < 0:
        return
    b = inst(w, i)
    hs = p.half_spread_ticks
    qq = p.quote_qty
    bid_slot = -1
    ask_slot = -1
    for k in range(b.n_live):
        s = live_slot(w, i, k)
        o = order(w, s)
        st = o.state
        if o.side == BUY:
            if bid_slot < 0:
                bid_slot = s
            elif st == ACCEPTED or st == PARTIALLY_FILLED:
                push(w, CANCEL, i, 0, 0, 0, o.id, 0, 0)
        else:
            if ask_slot < 0:
                ask_slot = s
            elif st == ACCEPTED or st == PARTIALLY_FILLED:
                push(w, CANCEL, i, 0, 0, 0, o.id, 0, 0)
    h = header(w)
    ts = h.trading_state
    bid = b.bid_px
    ask = b.ask_px
    pos = b.position
    tick = b.tick
    quoting = (b.healthy != 0 and ts != HALTED and h.kill_latched == 0 and bid > 0 and ask > bid and qq > 0)
    if not quoting:
        mm_manage(w, i, bid_slot, False, 0, BUY, 0, 0)
        mm_manage(w, i, ask_slot, False, 0, SELL, 0, 0)
        return
    skew = tdiv(pos * p.skew_ticks, qq)
    num_b = bid + ask - 2 * (skew + hs) * tick
    num_a = bid + ask - 2 * (skew - hs) * tick
    bid_t = (num_b // (2 * tick)) * tick if num_b > 0 else 0
    ask_t = ((num_a + 2 * tick - 1) // (2 * tick)) * tick if num_a > 0 else 0
    if bid_t >= ask:
        bid_t = ask - tick
    if ask_t <= bid:
        ask_t = bid + tick
    maxpos = p.max_position
    want_bid = (ts == ACTIVE or (ts == REDUCING and pos < 0)) and pos + qq <= maxpos and bid_t > 0
    want_ask = (ts == ACTIVE or (ts == REDUCING and pos > 0)) and pos - qq >= -maxpos
    qty_b = qq
    qty_a = qq
    if ts == REDUCING:
        if -pos < qty_b:
            qty_b = -pos
        if pos < qty_a:
            qty_a = pos
    mm_manage(w, i, bid_slot, want_bid, bid_t, BUY, qty_b, p.requote_ticks * tick)
    mm_manage(w, i, ask_slot, want_ask, ask_t, SELL, qty_a, p.requote_ticks * tick)


@register_jitable
def taker_body(w, i, p):
    """Trade-flow imbalance taker (rules: ``livestack/strategies/taker.pyx``); public trades only."""
    b = inst(w, i)
    h = header(w)
    side = h.ev_side
    q = h.ev_qty
    signed = 0
    if side == BUY:
        signed = q
    elif side == SELL:
        signed = -q
    acc = b.user[TK_ACC]
    acc = acc - tdiv(acc * p.decay_permille, 1000) + signed
    b.user[TK_ACC] = acc
    bid = b.bid_px
    ask = b.ask_px
    pos = b.position
    now = h.ts
    thr = p.threshold
    tq = p.take_qty
    maxpos = p.max_position
    if (b.healthy == 0 or h.trading_state != ACTIVE or h.kill_latched != 0
            or bid <= 0 or ask <= bid or thr <= 0):
        return
    if b.n_live > 0:
        return
    if b.user[TK_ARMED] != 0 and now - b.user[TK_LAST_TS] < p.cooldown_ns:
        return
    if acc >= thr and pos + tq <= maxpos:
        push(w, NEW, i, BUY, ask, tq, 0, IOC, LIMIT)
    elif acc <= -thr and pos - tq >= -maxpos:
        push(w, NEW, i, SELL, bid, tq, 0, IOC, LIMIT)
    else:
        return
    b.user[TK_ACC] = 0
    b.user[TK_LAST_TS] = now
    b.user[TK_ARMED] = 1
