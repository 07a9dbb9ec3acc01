# The order table's index: client_order_id -> order slot (orders.pyx).
from libc.stdint cimport int64_t, uint64_t

cdef struct OrderIndex:
    int64_t *ids                    # client_order_id per bucket, 0 = empty (ids are > 0)
    int64_t *slots                  # the order slot of that id
    uint64_t mask                   # buckets - 1 (a power of two)

cdef int order_index_init(OrderIndex *index, int64_t max_keys) except -1
cdef void order_index_free(OrderIndex *index) noexcept nogil
cdef int64_t order_index_get(const OrderIndex *index, int64_t client_order_id) noexcept nogil
cdef void order_index_put(OrderIndex *index, int64_t client_order_id, int64_t slot) noexcept nogil
cdef void order_index_remove(OrderIndex *index, int64_t client_order_id) noexcept nogil
