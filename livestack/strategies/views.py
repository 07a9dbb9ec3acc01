"""Named views of the context block with no copy and no per-call array: ``(w, base)`` pairs whose
attributes read ``w[base + word]`` at a word index generated from ``livestack/schema/ctx_spec.py``
(``livestack.core.ctx.*_FIELDS``).

* Python: :class:`HdrView`, :class:`InstView`, :class:`OrderView` with a property per field.
* numba: the same names are numba types (a struct of the array and the base; every attribute is
  an ``@overload_attribute`` compiling to one load), so ``inst(w, i).bid_px`` in a numba hook is
  exactly ``w[base + LS_INST_BID_PX]`` in machine code, as fast as the raw offset.

``user`` (an instrument's scratch words) is a writable slice of the block in both.
"""

from __future__ import annotations

import numpy as np
from numba.core import cgutils, types
from numba.extending import intrinsic, make_attribute_wrapper, models, overload_attribute, register_model

from livestack.core import ctx as C

ARRAYS = {"INST": {"user": (C.INST_USER, C.INST_USER_WORDS)}, "ORD": {}, "HDR": {}}


def _py_view(name, fields, arrays):
    ns = {"__slots__": ("_w", "_b"), "FIELDS": fields}
    for f, word in fields.items():
        ns[f] = property(lambda self, word=word: int(self._w[self._b + word]))
    for f, (word, n) in arrays.items():
        ns[f] = property(lambda self, word=word, n=n: self._w[self._b + word:self._b + word + n])

    def __init__(self, w, b):
        self._w, self._b = w, int(b)

    def as_dict(self):
        return {f: int(self._w[self._b + word]) for f, word in fields.items()}

    def __repr__(self):
        return f"<{name} {self.as_dict()}>"

    ns.update(__init__=__init__, as_dict=as_dict, __repr__=__repr__)
    return type(name, (), ns)


HdrView = _py_view("HdrView", C.HDR_FIELDS, ARRAYS["HDR"])
InstView = _py_view("InstView", C.INST_FIELDS, ARRAYS["INST"])
OrderView = _py_view("OrderView", C.ORD_FIELDS, ARRAYS["ORD"])


def _nb_view(kind, fields, arrays, floats=()):
    class ViewType(types.Type):
        def __init__(self, arrty):
            self.arrty = arrty
            super().__init__(name=f"{kind}View({arrty})")

    @register_model(ViewType)
    class _Model(models.StructModel):
        def __init__(self, dmm, fe_type):
            super().__init__(dmm, fe_type, [("w", fe_type.arrty), ("b", types.int64)])

    make_attribute_wrapper(ViewType, "w", "_w")
    make_attribute_wrapper(ViewType, "b", "_b")

    @intrinsic
    def make(typingctx, w, b):
        sig = ViewType(w)(w, types.int64)

        def codegen(context, builder, sig, args):
            v = cgutils.create_struct_proxy(sig.return_type)(context, builder)
            v.w = args[0]
            v.b = args[1]
            context.nrt.incref(builder, sig.args[0], args[0])
            return v._getvalue()

        return sig, codegen

    def scalar(word):
        def typer(v):
            return lambda v: v._w[v._b + word]
        return typer

    def double(word):
        def typer(v):
            return lambda v: v._w[v._b + word:v._b + word + 1].view(np.float64)[0]
        return typer

    def array(word, n):
        def typer(v):
            return lambda v: v._w[v._b + word:v._b + word + n]
        return typer

    for f, word in fields.items():
        overload_attribute(ViewType, f)((double if f in floats else scalar)(word))
    for f, (word, n) in arrays.items():
        overload_attribute(ViewType, f)(array(word, n))
    return ViewType, make


HdrViewType, make_hdr = _nb_view("Hdr", C.HDR_FIELDS, ARRAYS["HDR"])
InstViewType, make_inst = _nb_view("Inst", C.INST_FIELDS, ARRAYS["INST"])
OrderViewType, make_order = _nb_view("Order", C.ORD_FIELDS, ARRAYS["ORD"])


_params_types: dict = {}


def params_view(dtype):
    """(numba view type, maker) for a params record ``dtype``: ``p.<name>`` is one load (float
    params read as doubles); built once per dtype."""
    if dtype not in _params_types:
        fields = {n: k for k, n in enumerate(dtype.names)}
        floats = tuple(n for n in dtype.names if dtype[n].kind == "f")
        _params_types[dtype] = _nb_view(f"Params{len(_params_types)}", fields, {}, floats)
    return _params_types[dtype]
