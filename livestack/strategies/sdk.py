"""The Strategy SDK: write a strategy in Python, numba or Cython with the same hooks and helpers.

Hooks (define the ones you need; same names in every flavour):
``on_start`` (before the first event), ``on_book`` (book changed: MD_LEVEL at the end of a venue
message, MD_BBO, MD_STATUS), ``on_trade`` (public trade), ``on_fill`` (own fill),
``on_order_update`` (any other execution event of an own order), ``on_timer`` (idle timer tick),
``on_stop`` (SESSION_STOP, before the core cancels everything).

Intents: ``quote(bid_px, ask_px, qty)``, ``place(side, px, qty, tif, reduce_only)``, ``cancel(id)``,
``cancel_all()``, ``modify(id, px, qty)``. Prices and quantities are int64 fixed point in the
instrument's units (``Price``/``Qty`` params arrive already converted).

Python::

    class JoinBid(Strategy):
        Params = JoinParams            # a msgspec.Struct or dataclass (livestack.strategies.params)
        on_error = "disable"           # | "halt" | "continue"

        def on_book(self, ctx, i):
            b = ctx.inst(i)
            ctx.quote(b.bid_px, b.ask_px, self.params.qty)

numba (hooks are compiled with ``numba.njit`` into one ``@cfunc`` the core calls through a C
function pointer; ``w`` is the block, ``p`` the params record)::

    class JoinBidNumba(NumbaStrategy):
        Params = JoinParams

        @staticmethod
        def on_book(w, i, p):
            b = inst(w, i)
            quote(w, i, b.bid_px, b.ask_px, p.qty)

Cython: ``cdef class X(SdkStrategy)`` (``livestack.core.strategy``) and ``from
livestack.strategies.cysdk cimport *`` — see ``docs/strategies.md``.

Load any of them with ``[strategy] name = "pkg.mod:Class"`` or ``"path/file.py:Class"`` (``.pyx``
for Cython; compiled on first use): ``livestack.strategies.loader``.
"""

from __future__ import annotations

from livestack.core import ctx as C
from livestack.schema.dtypes import ExecType, RecordKind, Side, TimeInForce, TradingState  # noqa: F401
from livestack.strategies import intents as I
from livestack.strategies.intents import (cancel, cancel_all, error, header, inst, live_order,  # noqa: F401
                                          live_slot, modify, order, place, quote)
from livestack.strategies.params import ParamError, Price, Qty  # noqa: F401

HOOKS = ("on_start", "on_book", "on_trade", "on_fill", "on_order_update", "on_timer", "on_stop")
BUY, SELL = int(Side.BUY), int(Side.SELL)
GTC, IOC = int(TimeInForce.GTC), int(TimeInForce.IOC)

_MD_BOOK = (int(RecordKind.MD_LEVEL), int(RecordKind.MD_BBO), int(RecordKind.MD_STATUS))
_MD_TRADE = int(RecordKind.MD_TRADE)
_EXEC = int(RecordKind.EXEC)
_TIMER = int(RecordKind.TIMER)
_CONTROL = int(RecordKind.CONTROL_CMD)
_FILLS = (int(ExecType.PARTIALLY_FILLED), int(ExecType.FILLED))


class Strategy:
    """Base of a Python strategy: override hooks; ``self.params`` is the typed Params instance."""

    Params = None
    on_error = "disable"

    def __init__(self, params=None):
        self.params = params

    def on_start(self, ctx):
        pass

    def on_book(self, ctx, i):
        pass

    def on_trade(self, ctx, i):
        pass

    def on_fill(self, ctx, i):
        pass

    def on_order_update(self, ctx, i):
        pass

    def on_timer(self, ctx):
        pass

    def on_stop(self, ctx):
        pass


class NumbaStrategy:
    """Base of a numba strategy: define hooks as ``@staticmethod`` functions of ``(w, i, p)``
    (``on_timer``, ``on_start``, ``on_stop``: ``(w, p)``), written in numba's nopython subset with
    the helpers of :mod:`livestack.strategies.intents`. The loader compiles them into one cfunc."""

    Params = None
    on_error = "disable"   # applies to error(w, code): numba code cannot raise into the core


#: Python views with attribute names, generated from the same declaration as the C structs
from livestack.strategies.views import HdrView, InstView, OrderView  # noqa: E402,F401


class Context:
    """What a Python hook gets: the header by name (``ctx.ts``, ``ctx.ev_kind``, ``ctx.ev_inst``,
    ``ctx.trading_state`` ...), ``inst(i)``, ``bids(i)``/``asks(i)``, ``orders(i)``, and the intent
    helpers (instrument: the event's unless ``inst=`` is given)."""

    __slots__ = ("w",)

    def __init__(self, w):
        self.w = w

    def _i(self, i):
        return int(self.w[C.CTX_EV_INST]) if i is None else i

    def inst(self, i=None) -> InstView:
        return InstView(self.w, int(I.inst_base(self.w, self._i(i))))

    def bids(self, i=None):
        """[(px, qty)] best first."""
        i = self._i(i)
        w, b = self.w, int(I.inst_base(self.w, i))
        px, q = b + int(w[C.CTX_INST_BIDPX_OFF]), b + int(w[C.CTX_INST_BIDQTY_OFF])
        return [(int(w[px + k]), int(w[q + k])) for k in range(int(w[b + C.INST_N_BIDS]))]

    def asks(self, i=None):
        i = self._i(i)
        w, b = self.w, int(I.inst_base(self.w, i))
        px, q = b + int(w[C.CTX_INST_ASKPX_OFF]), b + int(w[C.CTX_INST_ASKQTY_OFF])
        return [(int(w[px + k]), int(w[q + k])) for k in range(int(w[b + C.INST_N_ASKS]))]

    def orders(self, i=None):
        """Own live orders of instrument i (creation order)."""
        i = self._i(i)
        w = self.w
        return [OrderView(w, int(w[C.CTX_ORD_OFF] + I.live_slot(w, i, k) * C.ORD_WORDS))
                for k in range(int(w[int(I.inst_base(w, i)) + C.INST_N_LIVE]))]

    def user(self, i=None):
        """Instrument i's scratch words (a writable numpy view)."""
        b = int(I.inst_base(self.w, self._i(i))) + C.INST_USER
        return self.w[b:b + C.INST_USER_WORDS]

    # intents
    def quote(self, bid_px, ask_px, qty, inst=None):
        I.quote(self.w, self._i(inst), int(bid_px), int(ask_px), int(qty))

    def place(self, side, px, qty, tif=GTC, reduce_only=False, inst=None):
        return I.place(self.w, self._i(inst), int(side), int(px), int(qty), int(tif), bool(reduce_only))

    def cancel(self, client_order_id):
        return I.cancel(self.w, int(client_order_id))

    def cancel_all(self, inst=-1):
        return I.cancel_all(self.w, int(inst))

    def modify(self, client_order_id, px, qty):
        return I.modify(self.w, int(client_order_id), int(px), int(qty))

    def error(self, code):
        """Fail this call with an error code (as the numba and Cython flavours do; raising works too)."""
        I.error(self.w, int(code))


for _f, _word in C.HDR_FIELDS.items():
    if _f not in Context.__dict__:  # ``error`` is the intent (the ERROR word reads as header(w).error)
        setattr(Context, _f, property(lambda self, _word=_word: int(self.w[_word])))


class PyHooks:
    """Adapter the core's ``PyStrategy`` calls: ``on_event(w)`` -> the user's hooks."""

    def __init__(self, impl):
        self.impl = impl
        self.ctx = None
        self.started = False
        self.stop_hook = True

    def bind(self, w):
        self.ctx = Context(w)

    def on_event(self, w):
        impl, ctx = self.impl, self.ctx
        if not self.started:
            self.started = True
            impl.on_start(ctx)
        kind = int(w[C.CTX_EV_KIND])
        i = int(w[C.CTX_EV_INST])
        if kind in _MD_BOOK:
            impl.on_book(ctx, i)
        elif kind == _MD_TRADE:
            impl.on_trade(ctx, i)
        elif kind == _EXEC:
            if int(w[C.CTX_EV_STATUS]) in _FILLS:
                impl.on_fill(ctx, i)
            else:
                impl.on_order_update(ctx, i)
        elif kind == _TIMER:
            impl.on_timer(ctx)
        elif kind == _CONTROL:
            impl.on_stop(ctx)
