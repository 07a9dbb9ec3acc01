# The contract of the shared-memory SPSC ring: the C functions (nogil, for the harness and other
# Cython code) and the Ring extension type (for Python processes: feeds, venues, writer).
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t

cdef extern from "ls_ring.h" nogil:
    const uint64_t LS_RING_MAGIC
    enum: LS_RING_LAYOUT_VERSION
    enum: LS_RING_HEADER_SIZE
    enum: LS_RING_NAME_LENGTH
    enum: LS_RING_OK
    enum: LS_RING_FULL
    ctypedef struct ls_ring_t:
        uint64_t magic
        uint32_t layout_version
        uint32_t schema_version
        uint32_t slot_size
        uint32_t record_kind
        uint64_t capacity
        uint64_t mask
        int64_t creator_pid
        int64_t created_ns
        char name[64]
        uint64_t tail
        uint64_t tail_own
        uint64_t cached_head
        uint64_t head
        uint64_t cached_tail
        int64_t producer_pid
        int64_t consumer_pid
    size_t ls_ring_segment_size(uint64_t capacity, uint32_t slot_size)
    uint8_t *ls_ring_slot(ls_ring_t *r, uint64_t pos)
    void ls_ring_init(ls_ring_t *r, uint64_t capacity, uint32_t slot_size, uint32_t record_kind,
                      uint32_t schema_version, int64_t pid, int64_t now_ns, const char *name)
    void ls_ring_producer_resume(ls_ring_t *r)
    uint64_t ls_ring_free(ls_ring_t *r, uint64_t want)
    uint64_t ls_ring_claim(ls_ring_t *r, uint64_t n, uint64_t *pos)
    uint64_t ls_ring_claim_contiguous(ls_ring_t *r, uint64_t n, uint64_t *pos)
    void ls_ring_commit(ls_ring_t *r, uint64_t n)
    int ls_ring_write(ls_ring_t *r, const void *rec)
    uint64_t ls_ring_write_batch(ls_ring_t *r, const void *recs, uint64_t n)
    uint64_t ls_ring_available(ls_ring_t *r)
    uint64_t ls_ring_available_fresh(ls_ring_t *r)
    const uint8_t *ls_ring_peek(ls_ring_t *r)
    void ls_ring_release(ls_ring_t *r, uint64_t n)
    uint64_t ls_ring_read(ls_ring_t *r, void *dst, uint64_t max)
    uint64_t ls_ring_view(ls_ring_t *r, uint64_t max, uint64_t *pos)
    uint64_t ls_load_acquire_u64(const uint64_t *p)
    void ls_store_release_u64(uint64_t *p, uint64_t v)
    void ls_cpu_relax()


# Roles a handle can hold (bit flags of Ring.roles); each is an exclusive lock on the segment.
cdef enum:
    ROLE_PRODUCER = 1
    ROLE_CONSUMER = 2


cdef class Ring:
    cdef ls_ring_t *ring
    cdef object _seg              # livestack.ipc.shm.Segment: mapping, descriptor, role locks
    cdef object _slots
    cdef uint64_t _claimed
    cdef uint64_t _viewed
    cdef int _roles               # ROLE_* held by this handle
    cdef readonly object dtype
    cdef readonly str name
    cdef readonly bint owner
    cdef _map(self)
    cdef _finish(self)
    cdef int _check(self) except -1
    # Take ``role`` if this handle does not hold it yet (C users of ``ring`` call this first:
    # the Python producer/consumer methods do it themselves).
    cdef int _require(self, int role) except -1
    cdef int64_t *_holder_pid(self, int bit) noexcept
