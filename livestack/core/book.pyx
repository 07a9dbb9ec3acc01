# cython: language_level=3
"""The exact L2 book: one side of one instrument, every level kept, the top N mirrored best first.

Why this layout (measured on the real Binance captures, see ``bench/bench_book.py``): a diff
touches a level near the touch far more often than a deep one, so each side is ONE sorted array
with the best level at the END::

    index   0 ............................................. n-1
    price   worst ──────────────────────────────────────────▶ best      (bids ascending,
                                                 ▲                         asks descending)
                                  insert/delete here moves only the levels between it and the best

A binary search finds the level (O(log n)); inserting or deleting moves only the levels *better*
than it (``memmove`` of the array's tail), which for near-touch updates is a handful of words.
Nothing is ever evicted: a level that falls out of the top N is still held and comes back into
the top N, exactly, when the levels above it go. The arrays grow by doubling (``realloc``), so
after warm-up no event allocates.

The strategy context exposes the best ``top_depth`` levels best first (``top_price[k]``,
``top_qty[k]``, k = 0 is the touch). :func:`book_side_set` keeps that mirror in step in the same
call: it shifts only the part of the mirror at and below the changed level and refills its last
slot from the full array when a level leaves the top.
"""

from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memmove
from libc.stdint cimport int64_t


cdef int book_side_init(BookSide *side, int64_t sign, int64_t capacity) except -1:
    if capacity < 16:
        capacity = 16
    side.price = <int64_t *>malloc(capacity * sizeof(int64_t))
    side.qty = <int64_t *>malloc(capacity * sizeof(int64_t))
    if side.price == NULL or side.qty == NULL:
        free(side.price)
        free(side.qty)
        side.price = NULL
        side.qty = NULL
        raise MemoryError()
    side.n = 0
    side.capacity = capacity
    side.sign = sign
    return 0


cdef void book_side_free(BookSide *side) noexcept nogil:
    free(side.price)
    free(side.qty)
    side.price = NULL
    side.qty = NULL
    side.n = 0
    side.capacity = 0


cdef void book_side_clear(BookSide *side) noexcept nogil:
    side.n = 0


cdef bint _grow(BookSide *side) noexcept nogil:
    cdef int64_t cap = side.capacity * 2
    cdef int64_t *p = <int64_t *>realloc(side.price, cap * sizeof(int64_t))
    if p == NULL:
        return 0
    side.price = p
    p = <int64_t *>realloc(side.qty, cap * sizeof(int64_t))
    if p == NULL:
        return 0
    side.qty = p
    side.capacity = cap
    return 1


cdef int64_t book_side_set(BookSide *side, int64_t price, int64_t qty, int64_t *top_price,
                           int64_t *top_qty, int64_t top_depth) noexcept nogil:
    """Set the level at ``price`` to ``qty`` (0 deletes it); keep the best-first mirror in step.

    Returns the changed level's distance from the best (0 = the touch; before a delete, after an
    insert), -1 when nothing changed (a delete of an absent level, the same quantity again), -2
    when the side could not grow (out of memory: the level is NOT held; the caller reports it).
    """
    cdef int64_t *P = side.price
    cdef int64_t *Q = side.qty
    cdef int64_t n = side.n, lo = 0, hi = n, mid, k, top_n, last
    cdef int64_t key = side.sign * price
    while lo < hi:               # first index whose sign*price >= key
        mid = (lo + hi) >> 1
        if side.sign * P[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    if lo < n and P[lo] == price:
        k = n - 1 - lo
        if qty > 0:
            if Q[lo] == qty:
                return -1
            Q[lo] = qty
            if k < top_depth:
                top_qty[k] = qty
            return k
        # delete: the better levels (lo+1 .. n-1) move down one slot
        memmove(P + lo, P + lo + 1, (n - lo - 1) * sizeof(int64_t))
        memmove(Q + lo, Q + lo + 1, (n - lo - 1) * sizeof(int64_t))
        n -= 1
        side.n = n
        if k < top_depth:
            top_n = n + 1 if n + 1 < top_depth else top_depth    # mirror entries before the delete
            memmove(top_price + k, top_price + k + 1, (top_n - k - 1) * sizeof(int64_t))
            memmove(top_qty + k, top_qty + k + 1, (top_n - k - 1) * sizeof(int64_t))
            if n >= top_depth:   # the level at distance top_depth-1 comes (back) into the top
                top_price[top_depth - 1] = P[n - top_depth]
                top_qty[top_depth - 1] = Q[n - top_depth]
        return k
    if qty <= 0:
        return -1
    if n == side.capacity:
        if not _grow(side):
            return -2
        P = side.price
        Q = side.qty
    memmove(P + lo + 1, P + lo, (n - lo) * sizeof(int64_t))
    memmove(Q + lo + 1, Q + lo, (n - lo) * sizeof(int64_t))
    P[lo] = price
    Q[lo] = qty
    side.n = n + 1
    k = n - lo                   # distance from the best after the insert
    if k < top_depth:
        top_n = n if n < top_depth else top_depth                 # mirror entries before the insert
        last = top_n if top_n < top_depth else top_depth - 1      # the mirror's last kept index
        memmove(top_price + k + 1, top_price + k, (last - k) * sizeof(int64_t))
        memmove(top_qty + k + 1, top_qty + k, (last - k) * sizeof(int64_t))
        top_price[k] = price
        top_qty[k] = qty
    return k
