"""Our live resting orders: stable slots, a time-priority list through them, and a hash index
on client_order_id (inline functions only, no ``orders.pyx``).

A command finds its order in O(1) (open addressing, linear probing, backward-shift deletion: no
tombstones), and an order keeps its slot while it lives, so the engine can fill or remove one
while walking the list (take ``next`` before the order goes).

    first ──▶ [slot 7] ──▶ [slot 2] ──▶ [slot 9] ──▶ -1        (oldest to newest: time priority)
"""

from libc.stdint cimport uint8_t, int64_t, uint64_t
from libc.stdlib cimport malloc, free


cdef struct me_order_t:
    int64_t coid
    int64_t voi
    int64_t price
    int64_t qty
    int64_t cum
    int64_t ahead      # public quantity ahead of us at our price (queue position)
    int64_t inst       # index into the engine's instruments
    uint8_t side
    uint8_t tif
    uint8_t ord_type
    int64_t prev       # time-priority list through the slots (-1: none)
    int64_t next


cdef struct me_orders_t:
    me_order_t *slot
    int64_t cap
    int64_t n          # live orders
    int64_t first      # oldest / newest slot (-1: none)
    int64_t last
    int64_t *free_slots
    int64_t n_free
    int64_t *hash_key  # client_order_id -> slot; hash_slot -1 = empty
    int64_t *hash_slot
    uint64_t hash_mask


cdef inline uint64_t me_coid_hash(int64_t key) noexcept nogil:
    cdef uint64_t z = <uint64_t>key * <uint64_t>0x9E3779B97F4A7C15
    z = (z ^ (z >> 32)) * <uint64_t>0xD6E8FEB86659FD93
    return z ^ (z >> 32)


cdef inline int me_orders_init(me_orders_t *T, int64_t cap) noexcept nogil:
    """A table of ``cap`` slots (index at most half full). Returns -1 when out of memory."""
    cdef uint64_t size = 16
    cdef int64_t k
    while size < <uint64_t>(2 * cap):
        size <<= 1
    T.slot = <me_order_t *>malloc(cap * sizeof(me_order_t))
    T.free_slots = <int64_t *>malloc(cap * sizeof(int64_t))
    T.hash_key = <int64_t *>malloc(size * sizeof(int64_t))
    T.hash_slot = <int64_t *>malloc(size * sizeof(int64_t))
    if T.slot == NULL or T.free_slots == NULL or T.hash_key == NULL or T.hash_slot == NULL:
        return -1
    T.cap = cap
    T.n = 0
    T.first = T.last = -1
    for k in range(cap):
        T.free_slots[k] = cap - 1 - k
    T.n_free = cap
    T.hash_mask = size - 1
    for k in range(<int64_t>size):
        T.hash_slot[k] = -1
    return 0


cdef inline void me_orders_free(me_orders_t *T) noexcept nogil:
    free(T.slot)
    free(T.free_slots)
    free(T.hash_key)
    free(T.hash_slot)


cdef inline int64_t me_orders_find(const me_orders_t *T, int64_t coid) noexcept nogil:
    """Slot of the live order ``coid``, or -1."""
    cdef uint64_t i = me_coid_hash(coid) & T.hash_mask
    while T.hash_slot[i] >= 0:
        if T.hash_key[i] == coid:
            return T.hash_slot[i]
        i = (i + 1) & T.hash_mask
    return -1


cdef inline void me_orders_index(me_orders_t *T, int64_t coid, int64_t slot) noexcept nogil:
    """Index ``coid`` (not indexed yet)."""
    cdef uint64_t i = me_coid_hash(coid) & T.hash_mask
    while T.hash_slot[i] >= 0:
        i = (i + 1) & T.hash_mask
    T.hash_key[i] = coid
    T.hash_slot[i] = slot


cdef inline void me_orders_unindex(me_orders_t *T, int64_t coid) noexcept nogil:
    """Unindex ``coid``; later entries of its probe run shift back."""
    cdef uint64_t m = T.hash_mask
    cdef uint64_t i = me_coid_hash(coid) & m, j, home
    while T.hash_slot[i] >= 0 and T.hash_key[i] != coid:
        i = (i + 1) & m
    if T.hash_slot[i] < 0:
        return
    j = i
    while True:
        j = (j + 1) & m
        if T.hash_slot[j] < 0:
            break
        home = me_coid_hash(T.hash_key[j]) & m
        # the entry at j may fill the hole at i unless its home lies cyclically in (i, j]
        if (home > i and home <= j) if i <= j else (home > i or home <= j):
            continue
        T.hash_key[i] = T.hash_key[j]
        T.hash_slot[i] = T.hash_slot[j]
        i = j
    T.hash_slot[i] = -1


cdef inline int64_t me_orders_link(me_orders_t *T, const me_order_t *o) noexcept nogil:
    """A copy of ``o`` becomes the newest live order (the caller checked ``n < cap``)."""
    cdef int64_t k = T.free_slots[T.n_free - 1]
    cdef me_order_t *s = &T.slot[k]
    T.n_free -= 1
    s[0] = o[0]
    s.prev = T.last
    s.next = -1
    if T.last >= 0:
        T.slot[T.last].next = k
    else:
        T.first = k
    T.last = k
    T.n += 1
    me_orders_index(T, o.coid, k)
    return k


cdef inline void me_orders_unlink(me_orders_t *T, int64_t k) noexcept nogil:
    """The order in slot ``k`` is no longer live (its data stays readable until the slot is reused)."""
    cdef me_order_t *o = &T.slot[k]
    if o.prev >= 0:
        T.slot[o.prev].next = o.next
    else:
        T.first = o.next
    if o.next >= 0:
        T.slot[o.next].prev = o.prev
    else:
        T.last = o.prev
    me_orders_unindex(T, o.coid)
    T.free_slots[T.n_free] = k
    T.n_free += 1
    T.n -= 1
