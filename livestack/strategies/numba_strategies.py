"""numba flavour: the kernels of ``kernels.py`` compiled to ``@cfunc("void(voidptr)")``.

Signature: ``void kernel(void *ctx)`` where ``ctx`` is the context block (``cext/ls_core.h``);
the kernel views it with ``numba.carray(ctx, (ctx[0],), int64)`` (word 0 holds the block size)
and appends intents in place. The core calls ``kernel.address`` as a C function pointer: no
Python object is touched per event. Compiled on first use (about a second each).
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import types

from livestack.strategies import kernels as K

_HDR = K.CTX_WORDS  # word 0: total words


def _compile(body):
    tdiv = numba.njit(K.tdiv, inline="always")
    g = dict(vars(K))
    g["tdiv"] = tdiv
    push = numba.njit(_rebind(K.push, g), inline="always")
    g["push"] = push
    manage = numba.njit(_rebind(K.mm_manage, g), inline="always")
    g["mm_manage"] = manage
    jbody = numba.njit(_rebind(body, g))

    @numba.cfunc(types.void(types.voidptr), nopython=True, no_cpython_wrapper=True)
    def kernel(ptr):
        head = numba.carray(ptr, (1,), np.int64)
        w = numba.carray(ptr, (head[_HDR],), np.int64)
        jbody(w)

    return kernel


def _rebind(fn, g):
    """The same function with globals ``g`` (so helpers resolve to their jitted versions)."""
    import types as pytypes
    return pytypes.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__, fn.__closure__)


@functools.cache
def mm_kernel():
    """The market maker as a compiled ``void(voidptr)`` cfunc."""
    return _compile(K.mm_body)


@functools.cache
def taker_kernel():
    """The taker as a compiled ``void(voidptr)`` cfunc."""
    return _compile(K.taker_body)
