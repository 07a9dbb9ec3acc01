"""Example strategies and the registry that selects a flavour by name.

==============  ========  ==========================================================
name            flavour   what
==============  ========  ==========================================================
``mm_cy``       Cython    market maker (``mm.pyx``)
``mm_numba``    numba     the same market maker, ``@cfunc`` through a C function pointer
``mm_py``       Python    the same market maker in the interpreter
``taker_cy``    Cython    trade-flow imbalance taker (``taker.pyx``)
``taker_numba`` numba     the same taker
``taker_py``    Python    the same taker
``none``        -         no strategy (state derivation, risk and control only)
==============  ========  ==========================================================

All six are written on the Strategy SDK (``livestack.strategies.sdk``, ``docs/strategies.md``):
the same hooks and named views a user strategy has. ``get`` also takes a user reference
(``pkg.mod:Class``, ``path/file.py:Class``), loaded by ``livestack.strategies.loader``.

``get(name, params)`` returns a :class:`livestack.core.Strategy` whose parameter defaults are
overridden by ``params`` (names checked, ints only); pass it to ``livestack.core.Core``.
"""

from __future__ import annotations

from livestack.core.strategy import CfuncStrategy, PyStrategy, Strategy
from livestack.strategies import kernels as K

NAMES = ("mm_cy", "mm_numba", "mm_py", "taker_cy", "taker_numba", "taker_py", "none")


def get(name: str, params: dict | None = None) -> Strategy | None:
    """A strategy by registry name, parameters applied; ``"none"`` gives ``None``."""
    if ":" in name:  # a user strategy reference: livestack.strategies.loader
        from livestack.strategies import loader

        return loader.load(loader.normalize(name), params)
    if name == "none":
        if params:
            raise ValueError("strategy 'none' takes no parameters")
        return None
    if name == "mm_cy":
        from livestack.strategies.mm import MarketMaker
        s = MarketMaker(name)
    elif name == "taker_cy":
        from livestack.strategies.taker import Taker
        s = Taker(name)
    elif name == "mm_numba":
        from livestack.strategies.numba_strategies import mm_kernel
        s = CfuncStrategy(mm_kernel(), name, K.MM_PARAM_NAMES, K.MM_PARAM_DEFAULTS)
    elif name == "taker_numba":
        from livestack.strategies.numba_strategies import taker_kernel
        s = CfuncStrategy(taker_kernel(), name, K.TAKER_PARAM_NAMES, K.TAKER_PARAM_DEFAULTS)
    elif name == "mm_py":
        from livestack.strategies.pystrats import MarketMakerPy
        from livestack.strategies.sdk import PyHooks
        s = PyStrategy(PyHooks(MarketMakerPy()), name, K.MM_PARAM_NAMES, K.MM_PARAM_DEFAULTS)
    elif name == "taker_py":
        from livestack.strategies.pystrats import TakerPy
        from livestack.strategies.sdk import PyHooks
        s = PyStrategy(PyHooks(TakerPy()), name, K.TAKER_PARAM_NAMES, K.TAKER_PARAM_DEFAULTS)
    else:
        import difflib

        near = difflib.get_close_matches(name, NAMES, n=1)
        raise ValueError(f"unknown strategy {name!r}" + (f" (did you mean {near[0]!r}?)" if near else "")
                         + f"; known: {', '.join(NAMES)}, or a reference package.module:Class / path/file.py:Class")
    if params:
        return with_params(s, params)
    return s


def with_params(s: Strategy, params: dict) -> Strategy:
    """Apply ``params`` to the defaults of ``s`` (validated; returns ``s``)."""
    defaults = list(s.param_defaults)
    for k, v in params.items():
        if k not in s.param_names:
            raise ValueError(f"strategy {s.name!r}: unknown parameter {k!r} (known: {list(s.param_names)})")
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"strategy {s.name!r}: parameter {k!r} must be an integer, got {v!r}")
        defaults[s.param_names.index(k)] = int(v)
    s.set_defaults(tuple(defaults))
    return s
