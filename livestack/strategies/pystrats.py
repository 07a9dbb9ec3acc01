"""Python flavour: plain classes with ``on_event(ctx)``; ``ctx`` is the context block as a numpy
int64 view. They run the same functions as the numba kernels (``kernels.py``), in the interpreter.
Slow (tens of microseconds a call) but with the same semantics: for prototyping."""

from __future__ import annotations

from livestack.strategies import kernels as K


class MarketMakerPy:
    param_names = K.MM_PARAM_NAMES
    param_defaults = K.MM_PARAM_DEFAULTS

    def on_event(self, ctx):
        K.mm_body(ctx)


class TakerPy:
    param_names = K.TAKER_PARAM_NAMES
    param_defaults = K.TAKER_PARAM_DEFAULTS

    def on_event(self, ctx):
        K.taker_body(ctx)
