"""Named accessors over the context block for plain ``on_event(w)`` Python strategies (the form
before the Strategy SDK; new code: ``livestack.strategies.sdk.Strategy`` with hooks and typed params).

``on_event(w)`` receives the block as a numpy int64 array; wrap it once::

    class MyStrategy:
        param_names = ("size",)
        param_defaults = (10,)

        def on_event(self, w):
            ctx = Ctx(w)
            i = ctx.ev_inst
            if i >= 0 and ctx.kind == RecordKind.MD_TRADE and not ctx.live_orders(i):
                book = ctx.inst(i)
                ctx.new(i, Side.BUY, book.bid_px, ctx.param(0))

The view reads the same words the compiled flavours read (``livestack.core.ctx``) and appends
intents with the same helper (``kernels.push``): same semantics, interpreter speed.
"""

from __future__ import annotations

from livestack.core import ctx as C
from livestack.schema.dtypes import OrdType, OrderCmdType, TimeInForce
from livestack.strategies.intents import push

_INST_FIELDS = {n[5:].lower(): getattr(C, n) for n in C.NAMES
                if n.startswith("INST_") and n not in ("INST_FIXED_WORDS", "INST_USER_WORDS")}
_ORD_FIELDS = {n[4:].lower(): getattr(C, n) for n in C.NAMES
               if n.startswith("ORD_") and n not in ("ORD_WORDS", "ORD_EXEC_RING", "ORD_EXEC_IDS")}


class _Block:
    __slots__ = ("_w", "_base", "_fields")

    def __init__(self, w, base, fields):
        self._w, self._base, self._fields = w, base, fields

    def __getattr__(self, name):
        try:
            return int(self._w[self._base + self._fields[name]])
        except KeyError:
            raise AttributeError(name) from None

    def as_dict(self):
        return {k: int(self._w[self._base + v]) for k, v in self._fields.items()}


class Ctx:
    """Read access by name and intent helpers over the block ``w``."""

    __slots__ = ("w",)

    def __init__(self, w):
        self.w = w

    ts = property(lambda self: int(self.w[C.CTX_TS]))
    kind = property(lambda self: int(self.w[C.CTX_EV_KIND]))
    ev_inst = property(lambda self: int(self.w[C.CTX_EV_INST]))
    ev_side = property(lambda self: int(self.w[C.CTX_EV_SIDE]))
    ev_price = property(lambda self: int(self.w[C.CTX_EV_PRICE]))
    ev_qty = property(lambda self: int(self.w[C.CTX_EV_QTY]))
    trading_state = property(lambda self: int(self.w[C.CTX_TRADING_STATE]))
    n_inst = property(lambda self: int(self.w[C.CTX_N_INST]))

    def _inst_base(self, i):
        return int(self.w[C.CTX_INST_OFF] + i * self.w[C.CTX_INST_STRIDE])

    def inst(self, i):
        """Instrument i's fixed fields (``bid_px``, ``ask_px``, ``position``, ``healthy`` ...)."""
        return _Block(self.w, self._inst_base(i), _INST_FIELDS)

    def bids(self, i):
        b, w = self._inst_base(i), self.w
        px, q, n = b + w[C.CTX_INST_BIDPX_OFF], b + w[C.CTX_INST_BIDQTY_OFF], int(w[b + C.INST_N_BIDS])
        return [(int(w[px + k]), int(w[q + k])) for k in range(n)]

    def asks(self, i):
        b, w = self._inst_base(i), self.w
        px, q, n = b + w[C.CTX_INST_ASKPX_OFF], b + w[C.CTX_INST_ASKQTY_OFF], int(w[b + C.INST_N_ASKS])
        return [(int(w[px + k]), int(w[q + k])) for k in range(n)]

    def live_orders(self, i):
        """Own live orders of instrument i (creation order), as views with ``id``, ``side``,
        ``state``, ``price``, ``qty``, ``cum_qty``, ``leaves`` ..."""
        b, w = self._inst_base(i), self.w
        live = b + w[C.CTX_INST_LIVE_OFF]
        return [_Block(w, int(w[C.CTX_ORD_OFF] + w[live + k] * C.ORD_WORDS), _ORD_FIELDS)
                for k in range(int(w[b + C.INST_N_LIVE]))]

    def param(self, k):
        return int(self.w[self.w[C.CTX_PARAM_OFF] + k])

    def new(self, i, side, price, qty, tif=TimeInForce.GTC):
        push(self.w, int(OrderCmdType.NEW), i, int(side), price, qty, 0, int(tif), int(OrdType.LIMIT))

    def cancel(self, client_order_id):
        push(self.w, int(OrderCmdType.CANCEL), 0, 0, 0, 0, client_order_id, 0, 0)

    def replace(self, client_order_id, price, qty):
        push(self.w, int(OrderCmdType.REPLACE), 0, 0, price, qty, client_order_id, 0, 0)
