"""Compile a :class:`livestack.strategies.sdk.NumbaStrategy` into one ``@cfunc("void(voidptr)")``.

The kernel views the block (``numba.carray``), the params through a view type of the strategy's
own params (``views.params_view``: ``p.<name>`` is one load), and dispatches on the input's kind to the
njit-compiled hooks, exactly as ``SdkStrategy.on_event`` (Cython) and ``sdk.PyHooks`` (Python) do.
``on_start`` runs once: the SDK keeps its flag in the last global user word (``intents.sdk_word``).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.core.registry import CPUDispatcher

from livestack.core import ctx as C
from livestack.schema.dtypes import ExecType, RecordKind
from livestack.strategies import intents as I
from livestack.strategies import views
from livestack.strategies.params import record_dtype
from livestack.strategies.sdk import HOOKS

SIGNATURE = types.void(types.voidptr)

CTX_EV_KIND = C.CTX_EV_KIND
CTX_EV_INST = C.CTX_EV_INST
CTX_EV_STATUS = C.CTX_EV_STATUS
CTX_PARAM_OFF = C.CTX_PARAM_OFF
MD_LEVEL = int(RecordKind.MD_LEVEL)
MD_BBO = int(RecordKind.MD_BBO)
MD_STATUS = int(RecordKind.MD_STATUS)
MD_TRADE = int(RecordKind.MD_TRADE)
EXEC = int(RecordKind.EXEC)
TIMER = int(RecordKind.TIMER)
CONTROL_CMD = int(RecordKind.CONTROL_CMD)
PARTIALLY_FILLED = int(ExecType.PARTIALLY_FILLED)
FILLED = int(ExecType.FILLED)


@numba.njit
def _noop_i(w, i, p):
    pass


@numba.njit
def _noop(w, p):
    pass


def _hook(cls, name):
    f = cls.__dict__.get(name)
    if f is None:
        for base in cls.__mro__[1:]:
            f = base.__dict__.get(name)
            if f is not None:
                break
    if f is None:
        return _noop if name in ("on_start", "on_timer", "on_stop") else _noop_i
    if isinstance(f, staticmethod):
        f = f.__func__
    if isinstance(f, CPUDispatcher):
        return f
    if not callable(f):
        raise TypeError(f"{cls.__name__}.{name} is not a function")
    return numba.njit(f)


def build(cls):
    """The cfunc of ``cls`` (a NumbaStrategy subclass). Compiles now (about a second)."""
    unknown = [n for n in vars(cls) if n.startswith("on_") and n not in HOOKS and n != "on_error"]
    if unknown:
        raise TypeError(f"{cls.__name__}: unknown hook(s) {unknown} (hooks: {', '.join(HOOKS)})")
    on_start, on_book, on_trade, on_fill, on_order_update, on_timer, on_stop = (_hook(cls, n) for n in HOOKS)
    PD = record_dtype(getattr(cls, "Params", None))
    make_params = views.params_view(PD)[1]

    def kernel(ptr):
        head = numba.carray(ptr, (1,), np.int64)
        w = numba.carray(ptr, (head[0],), np.int64)
        p = make_params(w, w[CTX_PARAM_OFF])
        s = I.sdk_word(w)
        if w[s] == 0:
            w[s] = 1
            on_start(w, p)
        kind = w[CTX_EV_KIND]
        i = w[CTX_EV_INST]
        if kind == MD_LEVEL or kind == MD_BBO or kind == MD_STATUS:
            on_book(w, i, p)
        elif kind == MD_TRADE:
            on_trade(w, i, p)
        elif kind == EXEC:
            st = w[CTX_EV_STATUS]
            if st == PARTIALLY_FILLED or st == FILLED:
                on_fill(w, i, p)
            else:
                on_order_update(w, i, p)
        elif kind == TIMER:
            on_timer(w, p)
        elif kind == CONTROL_CMD:
            on_stop(w, p)

    return numba.cfunc(SIGNATURE, nopython=True)(kernel)
