"""numba flavour: the kernels of ``kernels.py`` compiled to ``@cfunc("void(voidptr)")``.

Signature: ``void kernel(void *ctx)`` where ``ctx`` is the context block (``cext/ls_core.h``);
the kernel views it with ``numba.carray(ctx, (ctx[0],), int64)`` (word 0 holds the block size)
and appends intents in place. The core calls ``kernel.address`` as a C function pointer: no
Python object is touched per event. Compiled when this module is first imported (about a
second per kernel). Deliberately *not* cached on disk: the kernels bake the context layout
(``cext/ls_core.h`` offsets, read through ``livestack.core.ctx``) into their machine code as
constants, and numba's cache is invalidated only when *this* file changes, so a cached kernel
would silently keep an old layout after the core's changed.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types

import legacy_kernels as K

SIGNATURE = types.void(types.voidptr)


@numba.cfunc(SIGNATURE, nopython=True)
def mm_cfunc(ptr):
    head = numba.carray(ptr, (1,), np.int64)
    w = numba.carray(ptr, (head[0],), np.int64)
    K.mm_body(w)


@numba.cfunc(SIGNATURE, nopython=True)
def taker_cfunc(ptr):
    head = numba.carray(ptr, (1,), np.int64)
    w = numba.carray(ptr, (head[0],), np.int64)
    K.taker_body(w)


def mm_kernel():
    """The market maker as a compiled ``void(voidptr)`` cfunc."""
    return mm_cfunc


def taker_kernel():
    """The taker as a compiled ``void(voidptr)`` cfunc."""
    return taker_cfunc
