# Positions and PnL of one instrument, on its context block words (positions.pyx explains).
# Inline: they run on every fill and every book change, and are pure arithmetic.
from libc.stdint cimport int64_t
from livestack.core.ctx cimport *
from livestack.schema.records cimport LS_SIDE_BUY

cdef inline int64_t reference_price(const int64_t *I) noexcept nogil:
    """Mid of the book when both sides exist, else the last trade, else 0."""
    if I[LS_INST_BID_PX] > 0 and I[LS_INST_ASK_PX] > 0:
        return (I[LS_INST_BID_PX] + I[LS_INST_ASK_PX]) // 2
    return I[LS_INST_LAST_PX]

cdef inline int64_t _abs(int64_t x) noexcept nogil:
    return -x if x < 0 else x

cdef inline int64_t position_fill(int64_t *I, int64_t side, int64_t px, int64_t q) noexcept nogil:
    """Apply a fill of ``q`` at ``px`` (average cost); re-mark. Returns the change of the
    instrument's total PnL (realized + unrealized)."""
    cdef int64_t pos = I[LS_INST_POSITION], cost = I[LS_INST_COST]
    cdef int64_t sq = q if side == LS_SIDE_BUY else -q
    cdef int64_t close, removed, sgn, rest, realized = 0
    if pos == 0 or (pos > 0) == (sq > 0):
        pos += sq
        cost += sq * px
    else:
        close = q if q < _abs(pos) else _abs(pos)
        sgn = 1 if pos > 0 else -1
        removed = ls_muldiv(cost, close, _abs(pos))
        realized = sgn * close * px - removed
        cost -= removed
        pos -= sgn * close
        rest = q - close
        if rest > 0:
            pos = -sgn * rest
            cost = -sgn * rest * px
    I[LS_INST_POSITION] = pos
    I[LS_INST_COST] = cost
    I[LS_INST_REALIZED] += realized
    # re-mark at the reference (or the fill price when there is none)
    cdef int64_t m = reference_price(I)
    if m <= 0:
        m = px
    cdef int64_t u = pos * m - cost
    cdef int64_t delta = realized + u - I[LS_INST_UNREALIZED]
    I[LS_INST_UNREALIZED] = u
    return delta

cdef inline bint position_mark(int64_t *I, int64_t *pnl_delta) noexcept nogil:
    """Re-mark the open position at the reference; 0 (nothing done) when flat and unmarked or
    without a reference. Adds the change of unrealized PnL to ``pnl_delta``."""
    if I[LS_INST_POSITION] == 0 and I[LS_INST_UNREALIZED] == 0:
        return 0
    cdef int64_t m = reference_price(I)
    if m <= 0:
        return 0
    cdef int64_t u = I[LS_INST_POSITION] * m - I[LS_INST_COST]
    pnl_delta[0] += u - I[LS_INST_UNREALIZED]
    I[LS_INST_UNREALIZED] = u
    return 1
