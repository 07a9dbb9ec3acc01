"""Python flavour of the examples: SDK ``Strategy`` classes whose hooks run the same functions as
the numba kernels (``kernels.py``), in the interpreter. Slow (tens of microseconds a call) but
with the same semantics: for prototyping."""

from __future__ import annotations

from livestack.strategies import intents as I
from livestack.strategies import kernels as K
from livestack.strategies.sdk import Strategy


class MarketMakerPy(Strategy):
    Params = K.MMParams

    def on_start(self, ctx):
        self.p = I.params(ctx.w, K.MM_DTYPE)   # a live view: SET_PARAM changes show

    def on_book(self, ctx, i):
        K.mm_body(ctx.w, i, self.p)

    on_trade = on_fill = on_order_update = on_book


class TakerPy(Strategy):
    Params = K.TakerParams

    def on_start(self, ctx):
        self.p = I.params(ctx.w, K.TAKER_DTYPE)

    def on_trade(self, ctx, i):
        K.taker_body(ctx.w, i, self.p)
