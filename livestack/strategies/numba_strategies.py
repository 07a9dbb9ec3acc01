"""numba flavour: the kernels of ``kernels.py`` compiled to ``@cfunc("void(voidptr)")``.

Signature: ``void kernel(void *ctx)`` where ``ctx`` is the context block (``cext/ls_core.h``);
the kernel views it with ``numba.carray(ctx, (ctx[0],), int64)`` (word 0 holds the block size)
and appends intents in place. The core calls ``kernel.address`` as a C function pointer: no
Python object is touched per event. Compiled when this module is first imported (cached on disk
by numba afterwards).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types

from livestack.strategies import kernels as K

SIGNATURE = types.void(types.voidptr)


@numba.cfunc(SIGNATURE, nopython=True, cache=True)
def mm_cfunc(ptr):
    head = numba.carray(ptr, (1,), np.int64)
    w = numba.carray(ptr, (head[0],), np.int64)
    K.mm_body(w)


@numba.cfunc(SIGNATURE, nopython=True, cache=True)
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
