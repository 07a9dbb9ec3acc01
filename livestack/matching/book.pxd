"""One side of the public L2 book the matching engine replays: a sorted array of price levels.

Inline functions only (no ``book.pyx``): the engine's hot loops call them without a module call.
The array keeps the BEST level LAST -- bids by ascending price, asks by descending price -- so the
changes that dominate a real feed (near the touch) move few levels. A binary search finds a price.
Chosen over a price-indexed ladder (hftbacktest's ROI vector) because a replayed capture can move
anywhere and a sorted array needs no window; bench/bench_matching.py measures it on the real
USD-M capture.

    index   0            1        ...   n-1
            worst level                 best level (the touch)
"""

from libc.stdint cimport int64_t
from libc.stdlib cimport realloc
from libc.string cimport memmove


cdef struct me_level_t:
    int64_t px
    int64_t qty        # displayed public quantity
    int64_t taken      # displayed quantity our aggressive orders took (shrinks with the level)
    int64_t traded     # public quantity traded at this price since the level's last update


cdef struct me_side_t:
    me_level_t *lv     # best LAST (bids ascending, asks descending)
    int64_t n
    int64_t cap


cdef inline int64_t me_side_find(const me_side_t *s, bint is_ask, int64_t px, bint *found) noexcept nogil:
    """Index of the level at ``px``, or where it would be inserted (``found`` says which)."""
    cdef int64_t lo = 0, hi = s.n, mid, p
    while lo < hi:
        mid = (lo + hi) >> 1
        p = s.lv[mid].px
        if (p > px) if is_ask else (p < px):
            lo = mid + 1
        else:
            hi = mid
    found[0] = lo < s.n and s.lv[lo].px == px
    return lo


cdef inline me_level_t *me_side_get(me_side_t *s, bint is_ask, int64_t px) noexcept nogil:
    """The level at ``px`` or NULL."""
    cdef bint found
    cdef int64_t k = me_side_find(s, is_ask, px, &found)
    return &s.lv[k] if found else NULL


cdef inline me_level_t *me_side_best(me_side_t *s) noexcept nogil:
    """The touch, or NULL when the side is empty."""
    return &s.lv[s.n - 1] if s.n else NULL


cdef inline int me_side_set(me_side_t *s, bint is_ask, int64_t px, int64_t qty, int64_t *old,
                            int64_t *traded) noexcept nogil:
    """Level ``px`` becomes ``qty`` (0 removes it). ``old``: its quantity before (0 if absent);
    ``traded``: public quantity traded there since its last update (then reset). The quantity we
    took shrinks with a decrease and never exceeds the level. Returns -1 when out of memory."""
    cdef bint found
    cdef int64_t k = me_side_find(s, is_ask, px, &found)
    cdef me_level_t *lv
    cdef me_level_t *tmp
    old[0] = 0
    traded[0] = 0
    if found:
        lv = &s.lv[k]
        old[0] = lv.qty
        traded[0] = lv.traded
        lv.traded = 0
        if qty > 0:
            lv.qty = qty
            if lv.taken > 0:
                if qty < old[0]:
                    lv.taken -= old[0] - qty
                if lv.taken > qty:
                    lv.taken = qty
                if lv.taken < 0:
                    lv.taken = 0
        else:
            memmove(&s.lv[k], &s.lv[k + 1], (s.n - k - 1) * sizeof(me_level_t))
            s.n -= 1
    elif qty > 0:
        if s.n == s.cap:
            tmp = <me_level_t *>realloc(s.lv, 2 * s.cap * sizeof(me_level_t))
            if tmp == NULL:
                return -1
            s.lv = tmp
            s.cap *= 2
        memmove(&s.lv[k + 1], &s.lv[k], (s.n - k) * sizeof(me_level_t))
        s.n += 1
        lv = &s.lv[k]
        lv.px = px
        lv.qty = qty
        lv.taken = 0
        lv.traded = 0
    return 0
