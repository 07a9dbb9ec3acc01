"""The Core's constructor arguments, checked (plain Python: runs once, before any event).

``Core.__init__`` calls :func:`check_arguments` then :func:`resolve_strategy`; each raises
``ValueError`` naming the argument. The order of the checks is the order of the messages a caller
sees when several arguments are wrong.
"""

from __future__ import annotations

import numpy as np

from livestack.config import MAX_BOOK_DEPTH, Instrument
from livestack.core import ctx as C
from livestack.core.risk_config import parse_risk
from livestack.core.strategy import CfuncStrategy, PyStrategy, Strategy


def check_arguments(instruments, risk, max_orders, book_depth, book_top_levels, live_cap, max_intents):
    """Returns (instruments as a list, book_depth per instrument, per-instrument limits by
    RiskLimit, max_loss, max_loss_halt)."""
    instruments = list(instruments)
    if not instruments:
        raise ValueError("instruments: at least one instrument is needed")
    ids = set()
    for inst in instruments:
        if not isinstance(inst, Instrument):
            raise ValueError(f"instruments: expected Instrument, got {inst!r}")
        if inst.id in ids:
            raise ValueError(f"instruments: duplicate id {inst.id}")
        ids.add(inst.id)
    if max_orders < 1 or max_orders > (1 << 22):
        raise ValueError("max_orders: must be 1..4194304")
    if book_depth is not None and (isinstance(book_depth, bool) or not isinstance(book_depth, int)
                                   or not 1 <= book_depth <= MAX_BOOK_DEPTH):
        raise ValueError(f"book_depth: must be an integer 1..{MAX_BOOK_DEPTH}, got {book_depth!r}")
    depths = [book_depth if book_depth is not None else inst.book_depth for inst in instruments]
    if book_top_levels < 0 or book_top_levels > 1000:
        raise ValueError(f"book_top_levels: must be 0..1000, got {book_top_levels}")
    if live_cap < 1 or live_cap > 65536:
        raise ValueError("live_cap: must be 1..65536")
    if max_intents < 1 or max_intents > 65536:
        raise ValueError("max_intents: must be 1..65536")
    limits, max_loss, max_loss_halt = parse_risk(risk, instruments, live_cap)
    return instruments, depths, limits, max_loss, max_loss_halt


def resolve_strategy(strategy, params):
    """Wrap any strategy flavour in its ``Strategy``; returns (strategy or None, parameter names,
    parameter values: the defaults overridden by ``params``)."""
    if strategy is None:
        pass
    elif isinstance(strategy, Strategy):
        pass
    elif hasattr(strategy, "address") and hasattr(strategy, "native_name"):
        strategy = CfuncStrategy(strategy, name=getattr(strategy, "__name__", "cfunc"))
    elif callable(getattr(strategy, "on_event", None)):
        strategy = PyStrategy(strategy, name=type(strategy).__name__,
                              param_names=getattr(strategy, "param_names", ()),
                              param_defaults=getattr(strategy, "param_defaults", ()))
    else:
        raise ValueError(f"strategy: expected a Strategy, a numba cfunc or an object with on_event, got {strategy!r}")
    names = tuple(strategy.param_names) if strategy is not None else ()
    values = list(strategy.param_defaults) if strategy is not None else []
    for k, v in (params or {}).items():
        if k not in names:
            raise ValueError(f"param {k!r}: strategy {strategy.name if strategy else None!r} "
                             f"has no such parameter (known: {list(names)})")
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"param {k!r}: expected an integer, got {v!r}")
        values[names.index(k)] = int(v)
    return strategy, names, values


def context_block(instruments, depths, max_depth, live_cap, max_orders, max_intents, param_values):
    """The strategy context block (``cext/ls_core.h``) laid out and filled with everything fixed at
    construction: the header's offsets and sizes, the parameters, each instrument's identity.
    Returns the int64 numpy array the Core keeps (its state *is* this block)."""
    n_inst, n_params = len(instruments), len(param_values)
    inst_stride = C.INST_FIXED_WORDS + live_cap + 4 * max_depth
    inst_off = C.CTX_HDR_WORDS
    ord_off = inst_off + n_inst * inst_stride
    param_off = ord_off + max_orders * C.ORD_WORDS
    intent_off = param_off + max(1, n_params)
    guser_off = intent_off + max_intents * C.INTENT_WORDS
    n_guser = 256
    w = np.zeros(guser_off + n_guser, dtype=np.int64)
    header = {
        C.CTX_WORDS: len(w), C.CTX_EV_INST: -1, C.CTX_EV_ORDER_SLOT: -1, C.CTX_N_INST: n_inst,
        C.CTX_DEPTH: max_depth, C.CTX_INST_OFF: inst_off, C.CTX_INST_STRIDE: inst_stride,
        C.CTX_LIVE_CAP: live_cap, C.CTX_INST_LIVE_OFF: C.INST_FIXED_WORDS,
        C.CTX_INST_BIDPX_OFF: C.INST_FIXED_WORDS + live_cap,
        C.CTX_INST_BIDQTY_OFF: C.INST_FIXED_WORDS + live_cap + max_depth,
        C.CTX_INST_ASKPX_OFF: C.INST_FIXED_WORDS + live_cap + 2 * max_depth,
        C.CTX_INST_ASKQTY_OFF: C.INST_FIXED_WORDS + live_cap + 3 * max_depth,
        C.CTX_ORD_OFF: ord_off, C.CTX_MAX_ORDERS: max_orders, C.CTX_PARAM_OFF: param_off,
        C.CTX_N_PARAMS: n_params, C.CTX_INTENT_OFF: intent_off, C.CTX_MAX_INTENTS: max_intents,
        C.CTX_GUSER_OFF: guser_off, C.CTX_N_GUSER: n_guser, C.CTX_NEXT_ORDER_ID: 1,
    }
    for word, value in header.items():
        w[word] = value
    w[param_off:param_off + n_params] = param_values
    for k, inst in enumerate(instruments):
        base = inst_off + k * inst_stride
        w[base + C.INST_ID] = inst.id
        w[base + C.INST_TICK] = inst.tick
        w[base + C.INST_LOT] = inst.lot
        w[base + C.INST_QTY_SCALE] = 10 ** inst.qty_decimals
        w[base + C.INST_DEPTH] = depths[k]
    return w
