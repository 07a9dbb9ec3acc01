# cython: language_level=3
"""The order table's index: client_order_id -> slot of the context block's order table.

Open addressing with linear probing over at least 4 buckets per key (a slot holds at most two ids:
its own and a pending replace's), Fibonacci hashing, and backward-shift deletion (no tombstones,
so a long session never degrades). Sized once at construction: nothing allocates per event.
The order lifecycle itself is the named table of ``lifecycle.pyx``.
"""

from libc.stdlib cimport malloc, free
from libc.string cimport memset
from libc.stdint cimport int64_t, uint64_t


cdef inline uint64_t _bucket(const OrderIndex *index, int64_t key) noexcept nogil:
    return ((<uint64_t>key * <uint64_t>11400714819323198485ULL) >> 24) & index.mask


cdef int order_index_init(OrderIndex *index, int64_t max_keys) except -1:
    cdef uint64_t cap = 16
    while cap < <uint64_t>(2 * max_keys):
        cap <<= 1
    index.mask = cap - 1
    index.ids = <int64_t *>malloc(cap * sizeof(int64_t))
    index.slots = <int64_t *>malloc(cap * sizeof(int64_t))
    if index.ids == NULL or index.slots == NULL:
        order_index_free(index)
        raise MemoryError()
    memset(index.ids, 0, cap * sizeof(int64_t))
    return 0


cdef void order_index_free(OrderIndex *index) noexcept nogil:
    free(index.ids)
    free(index.slots)
    index.ids = NULL
    index.slots = NULL


cdef int64_t order_index_get(const OrderIndex *index, int64_t key) noexcept nogil:
    """The slot of ``key``, or -1."""
    if key <= 0:
        return -1
    cdef uint64_t i = _bucket(index, key)
    while index.ids[i] != 0:
        if index.ids[i] == key:
            return index.slots[i]
        i = (i + 1) & index.mask
    return -1


cdef void order_index_put(OrderIndex *index, int64_t key, int64_t slot) noexcept nogil:
    cdef uint64_t i = _bucket(index, key)
    while index.ids[i] != 0 and index.ids[i] != key:
        i = (i + 1) & index.mask
    index.ids[i] = key
    index.slots[i] = slot


cdef void order_index_remove(OrderIndex *index, int64_t key) noexcept nogil:
    if key <= 0:
        return
    cdef uint64_t i = _bucket(index, key), j, k
    while index.ids[i] != key:
        if index.ids[i] == 0:
            return
        i = (i + 1) & index.mask
    j = i
    while True:   # backward shift: move later keys of the probe chain into the hole
        j = (j + 1) & index.mask
        if index.ids[j] == 0:
            break
        k = _bucket(index, index.ids[j])
        if (i <= j and i < k <= j) or (i > j and (i < k or k <= j)):
            continue
        index.ids[i] = index.ids[j]
        index.slots[i] = index.slots[j]
        i = j
    index.ids[i] = 0
