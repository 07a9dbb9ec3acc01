# cython: language_level=3
"""Exact decimal string <-> int64 fixed point (C in cext/ls_fixed.h)."""

from libc.stdint cimport int64_t

cdef extern from "ls_fixed.h" nogil:
    enum: LS_FIXED_OK
    enum: LS_FIXED_MALFORMED
    enum: LS_FIXED_OVERFLOW
    enum: LS_FIXED_PRECISION
    enum: LS_FIXED_MAX_DECIMALS
    int ls_parse_fixed(const char *s, size_t n, int decimals, int64_t *out)

MAX_DECIMALS = LS_FIXED_MAX_DECIMALS


class FixedPointError(ValueError):
    """A decimal string that is malformed, out of int64 range, or not exact at the scale."""


cpdef int64_t parse_fixed(s, int decimals) except? -1:
    """Parse a decimal string (str or bytes) to an int64 with ``decimals`` implied decimals.

    ``parse_fixed("61837.63000000", 2) == 6183763``. Raises FixedPointError for a malformed
    string, a value outside int64, or non-zero digits beyond ``decimals`` (not exact).
    """
    cdef bytes b
    cdef const char *p
    cdef Py_ssize_t n
    cdef int64_t out = 0
    cdef int rc
    if isinstance(s, str):
        b = (<str>s).encode("ascii", "replace")
    elif isinstance(s, bytes):
        b = <bytes>s
    else:
        raise FixedPointError(f"fixed point: expected a decimal string, got {type(s).__name__}")
    p = b
    n = len(b)
    rc = ls_parse_fixed(p, n, decimals, &out)
    if rc == LS_FIXED_OK:
        return out
    if decimals < 0 or decimals > LS_FIXED_MAX_DECIMALS:
        raise FixedPointError(f"fixed point: decimals {decimals} outside 0..{LS_FIXED_MAX_DECIMALS}")
    if rc == LS_FIXED_OVERFLOW:
        raise FixedPointError(f"fixed point: {s!r} at {decimals} decimals is outside int64")
    if rc == LS_FIXED_PRECISION:
        raise FixedPointError(f"fixed point: {s!r} has non-zero digits beyond {decimals} decimals")
    raise FixedPointError(f"fixed point: {s!r} is not a decimal number")


def format_fixed(int64_t v, int decimals):
    """The exact decimal string of ``v`` with ``decimals`` implied decimals (``6183763, 2 -> '61837.63'``)."""
    if decimals < 0 or decimals > LS_FIXED_MAX_DECIMALS:
        raise FixedPointError(f"fixed point: decimals {decimals} outside 0..{LS_FIXED_MAX_DECIMALS}")
    neg = v < 0
    s = str(-v if neg else v)
    if decimals:
        s = s.rjust(decimals + 1, "0")
        s = s[:-decimals] + "." + s[-decimals:]
    return ("-" if neg else "") + s
