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

Errors, every flavour: a Python exception, or a nonzero code a numba / Cython strategy writes into
the context's ``ERROR`` word (``intents.error(w, code)``, ``cysdk.sdk_error(ctx, code)``), makes the
call fail: the core drops its intents, records ``ANOMALY STRATEGY_ERROR`` and, next to it, an
``ANOMALY_TEXT`` record with the message (:meth:`Strategy.error_record`: ``"Type: message"`` of the
exception, or ``"error code N in on_book"``), then applies the strategy's ``on_error`` policy.

Parameters: a strategy declares ``param_names`` and ``param_defaults`` (int64 each); the core puts
them, overridden by the ``params`` dict it is given, in the block at ``ctx[CTX_PARAM_OFF]`` in
that order. ``SET_PARAM`` control commands change them by index.
"""

import re
import traceback

from libc.stdint cimport int64_t
from livestack.core.ctx cimport *
from livestack.schema.records cimport *

ON_ERROR = {"continue": ON_ERROR_CONTINUE, "disable": ON_ERROR_DISABLE, "halt": ON_ERROR_HALT}
#: bytes of message an ANOMALY_TEXT record holds (spec.ANOMALY_TEXT_LENGTH)
TEXT_LENGTH = sizeof((<ls_anomaly_text_t *>NULL).text)
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


class StrategyError(Exception):
    """The error a numba or Cython strategy reported with a code (``error(w, code)``)."""


def hook_name(int64_t ev_kind, int64_t ev_status):
    """The SDK hook an input of this kind goes to (what an error message names)."""
    if ev_kind == LS_RECORD_KIND_MD_LEVEL or ev_kind == LS_RECORD_KIND_MD_BBO or ev_kind == LS_RECORD_KIND_MD_STATUS:
        return "on_book"
    if ev_kind == LS_RECORD_KIND_MD_TRADE:
        return "on_trade"
    if ev_kind == LS_RECORD_KIND_EXEC:
        return "on_fill" if ev_status in (LS_EXEC_TYPE_PARTIALLY_FILLED, LS_EXEC_TYPE_FILLED) else "on_order_update"
    if ev_kind == LS_RECORD_KIND_TIMER:
        return "on_timer"
    if ev_kind == LS_RECORD_KIND_CONTROL_CMD:
        return "on_stop"
    return "on_event"


def exception_text(e):
    """``"Type: message"``; memory addresses (``0x7f...`` in a repr) masked, so the same inputs give
    the same text in a replay."""
    return _ADDRESS.sub("0x?", f"{type(e).__name__}: {e}")


def encode_text(str text):
    """The message as it goes into ANOMALY_TEXT.text: utf-8, cut to TEXT_LENGTH bytes at a
    character boundary."""
    b = text.encode("utf-8", "replace")
    if len(b) > TEXT_LENGTH:
        b = b[:TEXT_LENGTH].decode("utf-8", "ignore").encode("utf-8")
    return b


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
        self.on_error = ON_ERROR_DISABLE
        self.stop_hook = False
        self.identity = None
        self.typed_params = None
        self.errors = 0
        self.last_error = None
        self.err_member = 0

    cdef void on_event(self, ls_strategy_ctx_t *ctx) noexcept nogil:
        pass

    cdef void bind(self, ls_strategy_ctx_t *ctx, object ctx_view) except *:
        pass

    cpdef tuple error_record(self, int64_t code, int64_t ev_kind, int64_t ev_status):
        """The failed call as (strategy index, ErrorAction, message): called by the core (with the
        GIL, on the error path only) for the ANOMALY_TEXT record. Here: a code the strategy
        reported (``error(w, code)``); counted and reported like an exception."""
        text = f"error code {code} in {hook_name(ev_kind, ev_status)}"
        e = StrategyError(text)
        self.errors += 1
        self.last_error = e
        if self.reporter is not None:
            self.reporter(self, e)
        return (0, self.on_error, text)

    def error_info(self):
        """{"errors", "last_error", "first_traceback"} (None when it never failed; the traceback:
        Python strategies only)."""
        if not self.errors:
            return None
        return {"errors": self.errors, "last_error": exception_text(self.last_error),
                "first_traceback": getattr(self, "first_traceback", None)}

    def set_defaults(self, values):
        """Replace the parameter defaults (same length as ``param_names``, ints)."""
        values = tuple(int(v) for v in values)
        if len(values) != len(self.param_names):
            raise ValueError(f"strategy {self.name!r}: {len(self.param_names)} parameters, got {len(values)} values")
        self.param_defaults = values

    def configure(self, name=None, param_names=None, param_defaults=None, on_error=None):
        """Set what the loader decided: name, parameter names and values (int64 words), the
        on_error policy ("continue" | "disable" | "halt")."""
        if name is not None:
            self.name = str(name)
        if param_names is not None:
            values = tuple(int(v) for v in param_defaults)
            if len(values) != len(param_names):
                raise ValueError("param_names and param_defaults differ in length")
            self.param_names = tuple(str(n) for n in param_names)
            self.param_defaults = values
        if on_error is not None:
            if on_error not in ON_ERROR:
                raise ValueError(f"strategy {self.name!r}: on_error = {on_error!r}: expected one of {list(ON_ERROR)}")
            self.on_error = ON_ERROR[on_error]
        return self

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
                self._report(e)
                ctx[LS_CTX_N_INTENTS] = -1  # tells the core: drop this call's intents
                ctx[LS_CTX_ERROR] = -1

    def _report(self, e):
        # the error path only (the core records ANOMALY STRATEGY_ERROR and applies on_error): the
        # first traceback kept; ``reporter(strategy, exc)`` (set by livestack.strategies.loader: a
        # log line) called -- the core itself does no I/O
        if self.first_traceback is None:
            self.first_traceback = "".join(traceback.format_exception(e))
        self.message = exception_text(e)
        if self.reporter is not None:
            self.reporter(self, e)

    cpdef tuple error_record(self, int64_t code, int64_t ev_kind, int64_t ev_status):
        if code == -1 and self.message is not None:  # the exception on_event caught
            return (0, self.on_error, self.message)
        return Strategy.error_record(self, code, ev_kind, ev_status)



cdef class SdkStrategy(Strategy):
    """Cython flavour of the SDK: subclass, override the hooks you need::

        cdef class MyStrategy(SdkStrategy):
            cdef void on_book(self, ls_strategy_ctx_t *ctx, int64_t i) noexcept nogil:
                cdef ls_ctx_inst_t *I = ls_ctx_inst_view(ctx, i)
                sdk_quote(ctx, i, I.bid_px, I.ask_px, 1)

    The core calls ``on_event``, which dispatches on the input's kind: book inputs (MD_LEVEL at the
    end of a venue message, MD_BBO, MD_STATUS) -> ``on_book``, MD_TRADE -> ``on_trade``, EXEC with a
    fill -> ``on_fill``, other EXEC -> ``on_order_update``, TIMER -> ``on_timer``, SESSION_STOP ->
    ``on_stop``; ``on_start`` before the first of them. Intent helpers: ``livestack/strategies/sdk.pxd``.
    """

    def __init__(self, name=None, param_names=(), param_defaults=()):
        Strategy.__init__(self, name or type(self).__name__, param_names, param_defaults)
        self.stop_hook = True
        self.started = 0

    cdef void on_event(self, ls_strategy_ctx_t *ctx) noexcept nogil:
        cdef int64_t kind = ctx[LS_CTX_EV_KIND], i = ctx[LS_CTX_EV_INST], st
        if not self.started:
            self.started = 1
            self.on_start(ctx)
        if kind == LS_RECORD_KIND_MD_LEVEL or kind == LS_RECORD_KIND_MD_BBO or kind == LS_RECORD_KIND_MD_STATUS:
            self.on_book(ctx, i)
        elif kind == LS_RECORD_KIND_MD_TRADE:
            self.on_trade(ctx, i)
        elif kind == LS_RECORD_KIND_EXEC:
            st = ctx[LS_CTX_EV_STATUS]
            if st == LS_EXEC_TYPE_PARTIALLY_FILLED or st == LS_EXEC_TYPE_FILLED:
                self.on_fill(ctx, i)
            else:
                self.on_order_update(ctx, i)
        elif kind == LS_RECORD_KIND_TIMER:
            self.on_timer(ctx)
        elif kind == LS_RECORD_KIND_CONTROL_CMD:
            self.on_stop(ctx)

    cdef void on_start(self, ls_strategy_ctx_t *ctx) noexcept nogil:
        pass

    cdef void on_book(self, ls_strategy_ctx_t *ctx, int64_t i) noexcept nogil:
        pass

    cdef void on_trade(self, ls_strategy_ctx_t *ctx, int64_t i) noexcept nogil:
        pass

    cdef void on_fill(self, ls_strategy_ctx_t *ctx, int64_t i) noexcept nogil:
        pass

    cdef void on_order_update(self, ls_strategy_ctx_t *ctx, int64_t i) noexcept nogil:
        pass

    cdef void on_timer(self, ls_strategy_ctx_t *ctx) noexcept nogil:
        pass

    cdef void on_stop(self, ls_strategy_ctx_t *ctx) noexcept nogil:
        pass
