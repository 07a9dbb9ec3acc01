# cython: language_level=3
"""Positions and PnL (the functions are inline, in ``positions.pxd``): int64 fixed point.

``cost`` is the signed cost of the open position; closing ``c`` of ``|position|`` removes
``cost * c / |position|`` (128-bit, truncated toward zero) and realizes the difference, so
``realized - cost == -sum(signed qty * price)`` exactly. Unrealized = position * reference - cost,
the reference being the book's mid, else the last trade. PnL units: price units x qty units.
"""

from libc.stdint cimport int64_t


def apply_fills(fills, int64_t bid_px=0, int64_t ask_px=0, int64_t last_px=0):
    """Python entry for tests: apply ``[(side, price, qty), ...]`` to a fresh instrument block
    with that book; returns (position, cost, realized, unrealized, total PnL change)."""
    cdef int64_t I[64]
    cdef int64_t k, total = 0
    for k in range(64):
        I[k] = 0
    I[LS_INST_BID_PX], I[LS_INST_ASK_PX], I[LS_INST_LAST_PX] = bid_px, ask_px, last_px
    for side, px, q in fills:
        total += position_fill(I, side, px, q)
    return I[LS_INST_POSITION], I[LS_INST_COST], I[LS_INST_REALIZED], I[LS_INST_UNREALIZED], total
