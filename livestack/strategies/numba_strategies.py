"""numba flavour of the examples: SDK ``NumbaStrategy`` classes whose hooks run ``kernels.py``;
``numba_sdk.build`` compiles each into one ``@cfunc("void(voidptr)")`` the core calls through a C
function pointer (no Python object touched per event). Compiled on first use (about a second per
kernel) and deliberately not cached on disk: the kernels bake the context layout into their
machine code as constants, and numba's cache is invalidated only when *this* file changes.
"""

from __future__ import annotations

from livestack.strategies import kernels as K
from livestack.strategies.sdk import NumbaStrategy


class MarketMakerNumba(NumbaStrategy):
    Params = K.MMParams

    @staticmethod
    def on_book(w, i, p):
        K.mm_body(w, i, p)

    @staticmethod
    def on_trade(w, i, p):
        K.mm_body(w, i, p)

    @staticmethod
    def on_fill(w, i, p):
        K.mm_body(w, i, p)

    @staticmethod
    def on_order_update(w, i, p):
        K.mm_body(w, i, p)


class TakerNumba(NumbaStrategy):
    Params = K.TakerParams

    @staticmethod
    def on_trade(w, i, p):
        K.taker_body(w, i, p)


_kernels: dict = {}


def _kernel(cls):
    if cls not in _kernels:
        from livestack.strategies import numba_sdk

        _kernels[cls] = numba_sdk.build(cls)
    return _kernels[cls]


def mm_kernel():
    """The market maker as a compiled ``void(voidptr)`` cfunc."""
    return _kernel(MarketMakerNumba)


def taker_kernel():
    """The taker as a compiled ``void(voidptr)`` cfunc."""
    return _kernel(TakerNumba)
