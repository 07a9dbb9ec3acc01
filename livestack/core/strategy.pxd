# The strategy contract: state in (the context block), intents out (appended to the same block).
from libc.stdint cimport int64_t
from livestack.core.ctx cimport ls_strategy_ctx_t

ctypedef void (*ls_strategy_fn)(void *ctx) noexcept nogil

cdef enum StrategyFlavour:
    FLAVOUR_CYTHON = 1   # subclass of Strategy overriding on_event (vtable call)
    FLAVOUR_CFUNC = 2    # C function pointer (numba @cfunc "void(voidptr)"), called directly by the core
    FLAVOUR_PYTHON = 3   # plain Python object with on_event(ctx_view); the GIL is taken per call

cdef enum OnError:
    ON_ERROR_CONTINUE = 0   # record the error, drop that call's intents, keep calling
    ON_ERROR_DISABLE = 1    # stop calling the strategy and cancel its orders (the default)
    ON_ERROR_HALT = 2       # cancel every order and go HALTED (TRADING_STATE cause 6)


cdef class Strategy:
    # the error path (error_record: a Python exception, or a code a numba / Cython strategy reported
    # in the context's ERROR word): counted, reported (reporter: a log line), described for the
    # ANOMALY_TEXT record
    cdef public long errors
    cdef public object last_error
    cdef public object reporter   # called with (strategy, exception) on each error (the loader: logging)
    cdef public int err_member    # StrategySet: the member whose call failed
    cdef readonly str name
    cdef readonly int flavour
    cdef readonly tuple param_names
    cdef readonly tuple param_defaults
    cdef public int on_error      # OnError
    cdef public bint stop_hook    # call the strategy at SESSION_STOP (on_stop) before the core cancels
    cdef public object identity   # {"ref", "path", "sha256", "params"} when loaded by livestack.strategies.loader
    cdef public object typed_params
    cdef ls_strategy_fn fn        # FLAVOUR_CFUNC only
    cdef void on_event(self, ls_strategy_ctx_t *ctx) noexcept nogil
    cdef void bind(self, ls_strategy_ctx_t *ctx, object ctx_view) except *
    cpdef tuple error_record(self, int64_t code, int64_t ev_kind, int64_t ev_status)


cdef class CfuncStrategy(Strategy):
    cdef readonly object cfunc    # keeps the compiled function alive


cdef class PyStrategy(Strategy):
    cdef readonly object impl
    cdef readonly object view
    cdef public object first_traceback
    cdef public object message    # "Type: message" of the last exception (the ANOMALY_TEXT text)
    cpdef tuple error_record(self, int64_t code, int64_t ev_kind, int64_t ev_status)


cdef class SdkStrategy(Strategy):
    """Cython flavour of the SDK: override the hooks you need (all noexcept nogil)."""
    cdef bint started
    cdef void on_start(self, ls_strategy_ctx_t *ctx) noexcept nogil
    cdef void on_book(self, ls_strategy_ctx_t *ctx, int64_t i) noexcept nogil
    cdef void on_trade(self, ls_strategy_ctx_t *ctx, int64_t i) noexcept nogil
    cdef void on_fill(self, ls_strategy_ctx_t *ctx, int64_t i) noexcept nogil
    cdef void on_order_update(self, ls_strategy_ctx_t *ctx, int64_t i) noexcept nogil
    cdef void on_timer(self, ls_strategy_ctx_t *ctx) noexcept nogil
    cdef void on_stop(self, ls_strategy_ctx_t *ctx) noexcept nogil
