# The strategy contract: state in (the context block), intents out (appended to the same block).
from libc.stdint cimport int64_t
from livestack.core.ctx cimport ls_strategy_ctx_t

ctypedef void (*ls_strategy_fn)(void *ctx) noexcept nogil

cdef enum StrategyFlavour:
    FLAVOUR_CYTHON = 1   # subclass of Strategy overriding on_event (vtable call)
    FLAVOUR_CFUNC = 2    # C function pointer (numba @cfunc "void(voidptr)"), called directly by the core
    FLAVOUR_PYTHON = 3   # plain Python object with on_event(ctx_view); the GIL is taken per call


cdef class Strategy:
    cdef readonly str name
    cdef readonly int flavour
    cdef readonly tuple param_names
    cdef readonly tuple param_defaults
    cdef ls_strategy_fn fn        # FLAVOUR_CFUNC only
    cdef void on_event(self, ls_strategy_ctx_t *ctx) noexcept nogil
    cdef void bind(self, ls_strategy_ctx_t *ctx, object ctx_view) except *


cdef class CfuncStrategy(Strategy):
    cdef readonly object cfunc    # keeps the compiled function alive


cdef class PyStrategy(Strategy):
    cdef readonly object impl
    cdef readonly object view
    cdef public object last_error
    cdef public long errors
