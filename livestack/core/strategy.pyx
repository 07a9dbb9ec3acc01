# cython: language_level=3
"""Strategy flavours behind one contract.

A strategy is called by the core with the context block (``cext/ls_core.h``): it reads state and
appends intents. Three ways to write one, the same semantics for each:

1. **Cython**: subclass :class:`Strategy` in a ``.pyx`` and override
   ``cdef void on_event(self, ls_strategy_ctx_t *ctx) noexcept nogil``. The core calls it through
   the vtable.
2. **numba**: a ``@numba.cfunc("void(voidptr)")`` taking the address of the block; read it with
   ``numba.carray(ptr, (n,), numpy.int64)`` and the word indices of :mod:`livestack.core.ctx`.
   Wrap it in :class:`CfuncStrategy`; the core calls ``cfunc.address`` as a C function pointer,
   with no Python in between.
3. **Python**: any object with ``on_event(ctx)`` where ``ctx`` is a ``numpy.int64`` view of the
   same block (named accessors: ``livestack.strategies.pyctx.Ctx``; raw word indices:
   :mod:`livestack.core.ctx`). Wrapped in
   :class:`PyStrategy`; the core takes the GIL for each call. An exception is caught, counted
   (``ANOMALY STRATEGY_ERROR``) and the intents of that call are dropped.

Parameters: a strategy declares ``param_names`` and ``param_defaults`` (int64 each); the core puts
them, overridden by the ``params`` dict it is given, in the block at ``ctx[CTX_PARAM_OFF]`` in
that order. ``SET_PARAM`` control commands change them by index.
"""

from libc.stdint cimport int64_t
from livestack.core.ctx cimport LS_CTX_N_INTENTS


cdef class Strategy:
    """Base class of every strategy. Subclass in Cython and override ``on_event``."""

    def __init__(self, name="strategy", param_names=(), param_defaults=()):
        if len(param_names) != len(param_defaults):
            raise ValueError("param_names and param_defaults differ in length")
        self.name = str(name)
        self.flavour = FLAVOUR_CYTHON
        self.param_names = tuple(str(n) for n in param_names)
        self.param_defaults = tuple(int(v) for v in param_defaults)
        self.fn = NULL

    cdef void on_event(self, ls_strategy_ctx_t *ctx) noexcept nogil:
        pass

    cdef void bind(self, ls_strategy_ctx_t *ctx, object ctx_view) except *:
        pass

    def set_defaults(self, values):
        """Replace the parameter defaults (same length as ``param_names``, ints)."""
        values = tuple(int(v) for v in values)
        if len(values) != len(self.param_names):
            raise ValueError(f"strategy {self.name!r}: {len(self.param_names)} parameters, got {len(values)} values")
        self.param_defaults = values

    def __repr__(self):
        return f"<{type(self).__name__} {self.name} flavour={self.flavour}>"


cdef class CfuncStrategy(Strategy):
    """A compiled function ``void fn(void *ctx)`` (numba ``@cfunc("void(voidptr)")``)."""

    def __init__(self, cfunc, name="cfunc", param_names=(), param_defaults=()):
        Strategy.__init__(self, name, param_names, param_defaults)
        cdef size_t addr = <size_t>int(cfunc.address)
        if addr == 0:
            raise ValueError("cfunc has no address")
        self.cfunc = cfunc
        self.fn = <ls_strategy_fn>addr
        self.flavour = FLAVOUR_CFUNC

    cdef void on_event(self, ls_strategy_ctx_t *ctx) noexcept nogil:
        self.fn(<void *>ctx)


cdef class PyStrategy(Strategy):
    """A plain Python object with ``on_event(ctx)``; ``ctx`` is the block as a numpy int64 view."""

    def __init__(self, impl, name="python", param_names=(), param_defaults=()):
        Strategy.__init__(self, name, param_names, param_defaults)
        if not callable(getattr(impl, "on_event", None)):
            raise ValueError("a Python strategy needs an on_event(ctx) method")
        self.impl = impl
        self.flavour = FLAVOUR_PYTHON
        self.errors = 0
        self.last_error = None

    cdef void bind(self, ls_strategy_ctx_t *ctx, object ctx_view) except *:
        self.view = ctx_view
        bind = getattr(self.impl, "bind", None)
        if bind is not None:
            bind(ctx_view)

    cdef void on_event(self, ls_strategy_ctx_t *ctx) noexcept nogil:
        with gil:
            try:
                self.impl.on_event(self.view)
            except BaseException as e:  # never let a strategy error unwind the core
                self.errors += 1
                self.last_error = e
                ctx[LS_CTX_N_INTENTS] = -1  # tells the core: drop this call's intents
