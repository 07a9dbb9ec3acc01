# The exact L2 book of one instrument side: every level the feed sent, none evicted (book.pyx).
from libc.stdint cimport int32_t, int64_t, uint32_t

cdef enum:
    BOOK_BEYOND_TOP = 1 << 30   # book_side_set: a change below the mirrored top (> any depth)
    BOOK_HINT_BITS = 14         # the price -> index hint table: 2**14 entries a side (128 KiB)

cdef struct BookHint:
    uint32_t tag        # the low 32 bits of a price the side held at some time
    int32_t from_best   # n - its index then (a deep insert moves it up one, and n with it)

cdef struct BookSide:
    int64_t *price      # prices, WORST first, BEST LAST (bids ascending, asks descending)
    int64_t *qty        # the level's quantity; 0 = a deleted level kept as a tombstone
    int64_t n           # entries held (live levels + tombstones)
    int64_t live        # live levels (qty > 0)
    int64_t capacity    # room in price/qty; doubled by realloc when full (rare: never per event)
    int64_t sign        # +1 bids, -1 asks: sign * price ascends with the index
    BookHint *hint      # [2**BOOK_HINT_BITS] by the price's grid step: where that price last was
    int64_t grid        # the price grid learnt from the prices (gcd of their differences; 0: none
                        # yet): the hint of (price - origin) / grid, so near prices share cache lines
    int64_t origin      # the first price the side held

cdef int book_side_init(BookSide *side, int64_t sign, int64_t capacity) except -1
cdef void book_side_free(BookSide *side) noexcept nogil
cdef void book_side_clear(BookSide *side) noexcept nogil
cdef int64_t book_side_set(BookSide *side, int64_t price, int64_t qty, int64_t *top_price,
                           int64_t *top_qty, int64_t top_depth) noexcept nogil
