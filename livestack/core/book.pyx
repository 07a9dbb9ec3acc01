# cython: language_level=3
"""The exact L2 book: one side of one instrument, every level kept, the top N mirrored best first.

Each side is ONE sorted array with the best level at the END::

    index   0 ............................................. n-1
    price   worst ──────────────────────────────────────────▶ best      (bids ascending,
                                                                         asks descending)

A level is found from a *hint* (below), else by a binary search (O(log n)). A delete does not
move anything: the level stays as a *tombstone* (qty 0) and comes back to life in place when its price is set again; a new price is
inserted by moving only the entries better than it (``memmove`` of the array's tail). The
tombstones are compacted in one pass when they outnumber the live levels. Why (measured on the
real USD-M capture, ``bench/bench_book.py``): the median update is ~230 levels from the best,
35% of updates are deletes or inserts, and 80% of inserts revive a price deleted earlier; with
tombstones only ~4% of updates move memory.

The hint table (2**BOOK_HINT_BITS entries of 8 bytes a side) remembers, for a price (the low
32 bits of it), where it last was: its distance from the best end. A deep insert moves every
better level up one slot and n with it, so that distance still finds such a level in one probe; a
level moved otherwise (a tombstone absorbing an insert nearby, a compaction) is found by an
exponential search from there. The slot of a price is its index on the price grid the side
learnt (the gcd of the price differences seen; a grid of 1 or over 2**32 falls back to a
multiplicative hash) modulo the table, so the busy prices near the best share a few cache lines. A hint is only where the search starts: a level is taken only
when ``price[i] == price`` (prices are unique in the array), so a stale, colliding or
misplaced hint costs time, never exactness. On the USD-M capture this took the core from
~70 to ~43 ns a record (depth 32; bench/bench_core.py, bench/bench_book.py).

Why not a price-indexed ladder (one slot per tick): the captures hold levels far from the touch
(USD-M bids from 560 to 74,613, asks to 621,368: millions of 0.1 ticks; spot bids over 4.6M
0.01 ticks), so a ladder needs a window plus an exact overflow, and the hint table already gives
the ladder's O(1) lookup near the touch while the one sorted array stays what readers walk
(``Core.full_book``).

Nothing is ever evicted: a level below the exposed top is still held and comes back into the
top, exactly, when the levels above it go. The arrays grow by doubling (``realloc``), so after
warm-up no event allocates.

The strategy context exposes the best ``top_depth`` live levels best first (``top_price[k]``,
``top_qty[k]``, k = 0 is the touch). :func:`book_side_set` keeps that mirror in step in the same
call: it decides whether a change is inside the mirror by price (better than the mirror's last
level, or the mirror not full), shifts only the mirror's part at and below it, and refills the
mirror's last slot from the full array when a level leaves the top.
"""

from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memmove
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memset


cdef int book_side_init(BookSide *side, int64_t sign, int64_t capacity) except -1:
    if capacity < 16:
        capacity = 16
    side.price = <int64_t *>malloc(capacity * sizeof(int64_t))
    side.qty = <int64_t *>malloc(capacity * sizeof(int64_t))
    side.hint = <BookHint *>malloc((1 << BOOK_HINT_BITS) * sizeof(BookHint))
    if side.price == NULL or side.qty == NULL or side.hint == NULL:
        free(side.price)
        free(side.qty)
        free(side.hint)
        side.price = NULL
        side.qty = NULL
        side.hint = NULL
        raise MemoryError()
    memset(side.hint, 0, (1 << BOOK_HINT_BITS) * sizeof(BookHint))
    side.grid = 0
    side.origin = 0
    side.n = 0
    side.live = 0
    side.capacity = capacity
    side.sign = sign
    return 0


cdef void book_side_free(BookSide *side) noexcept nogil:
    free(side.price)
    free(side.qty)
    free(side.hint)
    side.price = NULL
    side.qty = NULL
    side.hint = NULL
    side.n = 0
    side.live = 0
    side.capacity = 0


cdef void book_side_clear(BookSide *side) noexcept nogil:
    side.n = 0
    side.live = 0


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


cdef inline int64_t _lower_bound(const BookSide *side, int64_t price) noexcept nogil:
    """First index whose sign * price >= sign * ``price``."""
    cdef int64_t lo = 0, hi = side.n, mid
    cdef int64_t key = side.sign * price
    while lo < hi:
        mid = (lo + hi) >> 1
        if side.sign * side.price[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef inline uint64_t _hash(const BookSide *side, int64_t price) noexcept nogil:
    """The hint slot of ``price``: its grid index modulo the table (neighbouring prices in
    neighbouring slots: the busy top of the book stays in a few cache lines)."""
    if side.grid > 0:
        return <uint64_t>(<int64_t>(<uint64_t>price - <uint64_t>side.origin) / side.grid) \
            & ((1 << BOOK_HINT_BITS) - 1)
    return (<uint64_t>price * <uint64_t>0x9E3779B97F4A7C15ULL) >> (64 - BOOK_HINT_BITS)


cdef inline uint64_t _gcd(uint64_t a, uint64_t b) noexcept nogil:
    cdef uint64_t t
    while b != 0:
        t = a % b
        a = b
        b = t
    return a


cdef inline void _learn_grid(BookSide *side, int64_t price) noexcept nogil:
    """A new price refines the grid (a gcd only shrinks: after warm-up, nothing changes; a
    change leaves old hints in the wrong slots, where they are merely not found)."""
    cdef uint64_t d, g
    if side.grid < 0:
        return
    if side.origin == 0 and side.grid == 0:
        side.origin = price
        return
    d = <uint64_t>price - <uint64_t>side.origin   # (unsigned: no overflow whatever the prices)
    if <int64_t>d < 0:
        d = -d
    g = <uint64_t>side.grid if side.grid > 0 else 0
    if d != 0 and (g == 0 or d % g != 0):
        g = _gcd(g, d) if g > 0 else d
        side.grid = <int64_t>g if <int64_t>g > 0 else -1      # -1: no grid (the plain hash)


cdef inline int64_t _gallop(const BookSide *side, int64_t price, int64_t i) noexcept nogil:
    """:func:`_lower_bound` by an exponential search outward from index ``i`` (0 <= i < n):
    O(log d) for an answer d entries away."""
    cdef const int64_t *P = side.price
    cdef int64_t n = side.n, sign = side.sign, key = side.sign * price
    cdef int64_t lo, hi, mid, step = 1
    if sign * P[i] < key:            # the answer is above i
        lo = i + 1
        while True:
            hi = lo + step - 1
            if hi >= n:
                hi = n
                break
            if sign * P[hi] >= key:
                break
            lo = hi + 1
            step <<= 1
    else:                            # the answer is at or below i
        hi = i
        while True:
            lo = hi - step
            if lo < 0:
                lo = 0
                break
            if sign * P[lo] < key:
                lo += 1
                break
            hi = lo
            step <<= 1
    while lo < hi:                   # the answer is in [lo, hi]
        mid = (lo + hi) >> 1
        if sign * P[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef inline int64_t _find(BookSide *side, int64_t price) noexcept nogil:
    """:func:`_lower_bound`, usually in a step or two: the hint table remembers where ``price``
    was, and a memmove or a compaction moves a level only a little (or the search widens).

    Exact whatever the hint holds: the hint only chooses where the search starts."""
    cdef BookHint *h = &side.hint[_hash(side, price)]
    cdef int64_t n = side.n
    cdef int64_t i = n - h.from_best
    if h.tag != <uint32_t>price or i < 0 or i >= n:
        i = _lower_bound(side, price)
    elif side.price[i] == price:
        return i
    else:
        i = _gallop(side, price, i)
    if i < n and side.price[i] == price:
        h.tag = <uint32_t>price
        h.from_best = <int32_t>(n - i)
    return i


cdef inline void _remember(BookSide *side, int64_t price, int64_t i) noexcept nogil:
    cdef BookHint *h = &side.hint[_hash(side, price)]
    h.tag = <uint32_t>price
    h.from_best = <int32_t>(side.n - i)


cdef inline int64_t _mirror_pos(const BookSide *side, int64_t price, const int64_t *top_price,
                                int64_t top_n) noexcept nogil:
    """Entries of the best-first mirror strictly better than ``price``."""
    cdef int64_t lo = 0, hi = top_n, mid
    cdef int64_t key = side.sign * price
    while lo < hi:
        mid = (lo + hi) >> 1
        if side.sign * top_price[mid] > key:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef void _compact(BookSide *side) noexcept nogil:
    cdef int64_t r, w = 0
    for r in range(side.n):
        if side.qty[r] > 0:
            side.price[w] = side.price[r]
            side.qty[w] = side.qty[r]
            w += 1
    side.n = w


cdef enum:
    NEAR_TOMBSTONE = 32   # entries searched each way for a tombstone to absorb an insert


cdef int64_t _make_room(BookSide *side, int64_t lo) noexcept nogil:
    """Free the entry a new price goes to, between index lo - 1 and lo; return its index.

    A tombstone within NEAR_TOMBSTONE entries absorbs the insert: only the entries between it
    and lo move one step (a deep new price would otherwise move every better level). Else the
    better levels move up by one (the array grows by doubling when full). -1: out of memory."""
    cdef int64_t *P = side.price
    cdef int64_t *Q = side.qty
    cdef int64_t n = side.n, t, stop
    if n - side.live > 0:
        stop = lo + NEAR_TOMBSTONE if lo + NEAR_TOMBSTONE < n else n
        t = lo
        while t < stop and Q[t] > 0:
            t += 1
        if t < stop:              # P[lo..t-1] up one step onto the tombstone at t
            memmove(P + lo + 1, P + lo, (t - lo) * sizeof(int64_t))
            memmove(Q + lo + 1, Q + lo, (t - lo) * sizeof(int64_t))
            return lo
        stop = lo - NEAR_TOMBSTONE if lo - NEAR_TOMBSTONE > 0 else 0
        t = lo - 1
        while t >= stop and Q[t] > 0:
            t -= 1
        if t >= stop:             # P[t+1..lo-1] down one step onto the tombstone at t
            memmove(P + t, P + t + 1, (lo - 1 - t) * sizeof(int64_t))
            memmove(Q + t, Q + t + 1, (lo - 1 - t) * sizeof(int64_t))
            return lo - 1
    if n == side.capacity:
        if not _grow(side):
            return -1
        P = side.price
        Q = side.qty
    memmove(P + lo + 1, P + lo, (n - lo) * sizeof(int64_t))
    memmove(Q + lo + 1, Q + lo, (n - lo) * sizeof(int64_t))
    side.n = n + 1
    return lo


cdef int64_t book_side_set(BookSide *side, int64_t price, int64_t qty, int64_t *top_price,
                           int64_t *top_qty, int64_t top_depth) noexcept nogil:
    """Set the level at ``price`` to ``qty`` (0 deletes it); keep the best-first mirror in step.

    Returns the changed level's distance from the best when it is inside the mirror (0 = the
    touch), ``BOOK_BEYOND_TOP`` for a change below it, -1 when nothing changed (a delete of an
    absent level, the same quantity again), -2 when the side could not grow (out of memory: the
    level is NOT held; the caller reports it).
    """
    cdef int64_t *P = side.price
    cdef int64_t *Q = side.qty
    cdef int64_t n = side.n, lo, k, j, top_n, last, anchor
    cdef bint live
    lo = _find(side, price)
    live = lo < n and P[lo] == price and Q[lo] > 0
    top_n = side.live if side.live < top_depth else top_depth       # mirror entries before the change
    if live:
        if qty > 0:
            if Q[lo] == qty:
                return -1
            Q[lo] = qty
            if top_n == top_depth and side.sign * price < side.sign * top_price[top_n - 1]:
                return BOOK_BEYOND_TOP   # below the full mirror's last level (the common case)
            k = _mirror_pos(side, price, top_price, top_n)
            if k < top_n:                # (the level is live: it is in the mirror iff at k)
                top_qty[k] = qty
                return k
            return BOOK_BEYOND_TOP
        # delete: keep a tombstone
        Q[lo] = 0
        side.live -= 1
        if top_n == top_depth and side.sign * price < side.sign * top_price[top_n - 1]:
            k = top_n                    # below the full mirror's last level
        else:
            k = _mirror_pos(side, price, top_price, top_n)
        if k < top_n:
            memmove(top_price + k, top_price + k + 1, (top_n - k - 1) * sizeof(int64_t))
            memmove(top_qty + k, top_qty + k + 1, (top_n - k - 1) * sizeof(int64_t))
            if side.live >= top_depth:   # the next live level comes (back) into the top
                anchor = _find(side, top_price[top_n - 2]) if top_n >= 2 else lo
                j = anchor - 1
                while Q[j] <= 0:         # (a live level below the anchor exists: live >= depth)
                    j -= 1
                top_price[top_depth - 1] = P[j]
                top_qty[top_depth - 1] = Q[j]
        else:
            k = BOOK_BEYOND_TOP
        if side.n - side.live > side.live and side.n - side.live > 64:
            _compact(side)
        return k
    if qty <= 0:
        return -1
    if not (lo < n and P[lo] == price):  # a new price (a tombstone of it is revived in place)
        lo = _make_room(side, lo)
        if lo < 0:
            return -2
        P = side.price
        Q = side.qty
        P[lo] = price
        _learn_grid(side, price)
        _remember(side, price, lo)
    Q[lo] = qty
    side.live += 1
    if top_n < top_depth or side.sign * price > side.sign * top_price[top_n - 1]:
        k = _mirror_pos(side, price, top_price, top_n)
        last = top_n if top_n < top_depth else top_depth - 1     # the mirror's last kept index
        memmove(top_price + k + 1, top_price + k, (last - k) * sizeof(int64_t))
        memmove(top_qty + k + 1, top_qty + k, (last - k) * sizeof(int64_t))
        top_price[k] = price
        top_qty[k] = qty
        return k
    return BOOK_BEYOND_TOP
