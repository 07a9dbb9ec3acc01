"""The price levels of the matching engine: the public book and the prices of our own orders.

Inline functions only (no ``book.pyx``): the engine's hot loops call them without a module call.

* ``me_ladder_t`` -- the public L2 book of one side: a hash ladder (below), O(1) per update.
* ``me_side_t`` -- a sorted array of levels, best LAST (bids ascending, asks descending), so changes
  near the touch move few entries; binary search finds a price. The engine keeps the prices of our
  resting orders in one per side (``qty`` = how many orders there): few entries, ordered walks.

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


cdef inline bint me_level_update(me_level_t *lv, int64_t qty, int64_t *old, int64_t *traded) noexcept nogil:
    """An existing level's update, the same for both book shapes: report its quantity before
    (``old``) and the public quantity traded there since its last update (``traded``, then reset);
    with ``qty`` > 0 set it and shrink the quantity we took with a decrease (never above the level,
    never below 0) and return True; with ``qty`` 0 return False: the caller removes the level."""
    old[0] = lv.qty
    traded[0] = lv.traded
    lv.traded = 0
    if qty <= 0:
        return False
    lv.qty = qty
    if lv.taken > 0:
        if qty < old[0]:
            lv.taken -= old[0] - qty
        if lv.taken > qty:
            lv.taken = qty
        if lv.taken < 0:
            lv.taken = 0
    return True


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
        if not me_level_update(lv, qty, old, traded):  # qty 0: remove it
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


# ------------------------------------------------------------------------------------------------
# The public book: a hash ladder (the shape of hftbacktest's HashMapMarketDepth). A real feed keeps
# thousands of levels per side (the USD-M capture: ~5,000) and updates them anywhere, so a sorted
# array moves ~100 KB per deep update; here every update is O(1): an open-addressing table keyed
# by price (linear probing, backward-shift deletion, empty slot = qty 0), plus the best price.
# When the best level goes, the next is found by stepping one tick at a time (a liquid book has
# levels a few ticks apart), falling back to one pass over the table after ME_SCAN_TICKS steps or
# when a price off the tick grid was ever seen.

from libc.stdint cimport uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memset

cdef enum:
    ME_SCAN_TICKS = 64


cdef struct me_ladder_t:
    me_level_t *slot   # open addressing by price; qty == 0: empty
    uint64_t mask      # table size - 1 (a power of two, at most half full)
    int64_t n          # levels
    int64_t tick
    int64_t best       # best price (valid when n > 0)
    int64_t offgrid    # levels whose price is not a multiple of tick (scans fall back to a pass)
    bint is_ask


cdef inline uint64_t me_px_hash(int64_t px) noexcept nogil:
    cdef uint64_t z = <uint64_t>px * <uint64_t>0x9E3779B97F4A7C15
    return z ^ (z >> 29)


cdef inline bint me_px_better(bint is_ask, int64_t a, int64_t b) noexcept nogil:
    """Price ``a`` strictly better than ``b`` on this side (closer to the touch)."""
    return a < b if is_ask else a > b


cdef inline int me_ladder_init(me_ladder_t *L, bint is_ask, int64_t tick, uint64_t size) noexcept nogil:
    L.slot = <me_level_t *>malloc(size * sizeof(me_level_t))
    if L.slot == NULL:
        return -1
    memset(L.slot, 0, size * sizeof(me_level_t))
    L.mask = size - 1
    L.n = 0
    L.tick = tick
    L.best = 0
    L.offgrid = 0
    L.is_ask = is_ask
    return 0


cdef inline void me_ladder_clear(me_ladder_t *L) noexcept nogil:
    memset(L.slot, 0, (L.mask + 1) * sizeof(me_level_t))
    L.n = 0
    L.offgrid = 0


cdef inline uint64_t me_ladder_probe(const me_ladder_t *L, int64_t px) noexcept nogil:
    """Slot of ``px``, or the empty slot where it would go."""
    cdef uint64_t i = me_px_hash(px) & L.mask
    while L.slot[i].qty != 0 and L.slot[i].px != px:
        i = (i + 1) & L.mask
    return i


cdef inline me_level_t *me_ladder_get(me_ladder_t *L, int64_t px) noexcept nogil:
    """The level at ``px`` or NULL."""
    cdef uint64_t i = me_ladder_probe(L, px)
    return &L.slot[i] if L.slot[i].qty != 0 else NULL


cdef inline int64_t me_ladder_next(me_ladder_t *L, int64_t px, bint *found) noexcept nogil:
    """The best price strictly worse than ``px`` (``found`` = 0 when there is none)."""
    cdef int64_t p = px, step = L.tick if L.is_ask else -L.tick, best = 0
    cdef int k
    cdef uint64_t i
    found[0] = 0
    if L.n == 0:
        return 0
    if L.offgrid == 0 and px % L.tick == 0:
        for k in range(ME_SCAN_TICKS):
            p += step
            if L.slot[me_ladder_probe(L, p)].qty != 0:
                found[0] = 1
                return p
    for i in range(L.mask + 1):
        if L.slot[i].qty != 0 and me_px_better(L.is_ask, px, L.slot[i].px):
            if not found[0] or me_px_better(L.is_ask, L.slot[i].px, best):
                best = L.slot[i].px
                found[0] = 1
    return best


cdef inline int me_ladder_grow(me_ladder_t *L) noexcept nogil:
    cdef uint64_t old_size = L.mask + 1, i, j
    cdef me_level_t *old = L.slot
    cdef me_level_t *tmp = <me_level_t *>malloc(2 * old_size * sizeof(me_level_t))
    if tmp == NULL:
        return -1
    memset(tmp, 0, 2 * old_size * sizeof(me_level_t))
    L.slot = tmp
    L.mask = 2 * old_size - 1
    for i in range(old_size):
        if old[i].qty != 0:
            j = me_ladder_probe(L, old[i].px)
            L.slot[j] = old[i]
    free(old)
    return 0


cdef inline void me_ladder_delete_at(me_ladder_t *L, uint64_t i) noexcept nogil:
    """Empty slot ``i``; later entries of its probe run shift back (no tombstones)."""
    cdef uint64_t m = L.mask, j = i, home
    while True:
        j = (j + 1) & m
        if L.slot[j].qty == 0:
            break
        home = me_px_hash(L.slot[j].px) & m
        if (home > i and home <= j) if i <= j else (home > i or home <= j):
            continue
        L.slot[i] = L.slot[j]
        i = j
    L.slot[i].qty = 0


cdef inline int me_ladder_set(me_ladder_t *L, int64_t px, int64_t qty, int64_t *old,
                              int64_t *traded) noexcept nogil:
    """Level ``px`` becomes ``qty`` (0 removes it); ``old`` / ``traded`` / taken as ``me_side_set``.
    Returns -1 when out of memory."""
    cdef uint64_t i = me_ladder_probe(L, px)
    cdef me_level_t *lv = &L.slot[i]
    cdef bint found
    old[0] = 0
    traded[0] = 0
    if lv.qty != 0:
        if me_level_update(lv, qty, old, traded):
            return 0
        me_ladder_delete_at(L, i)
        L.n -= 1
        if px % L.tick:
            L.offgrid -= 1
        if L.n and px == L.best:
            L.best = me_ladder_next(L, px, &found)
        return 0
    if qty <= 0:
        return 0
    if <uint64_t>(2 * (L.n + 1)) > L.mask + 1:
        if me_ladder_grow(L) < 0:
            return -1
        i = me_ladder_probe(L, px)
        lv = &L.slot[i]
    lv.px = px
    lv.qty = qty
    lv.taken = 0
    lv.traded = 0
    L.n += 1
    if px % L.tick:
        L.offgrid += 1
    if L.n == 1 or me_px_better(L.is_ask, px, L.best):
        L.best = px
    return 0
