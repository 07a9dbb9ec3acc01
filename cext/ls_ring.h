/* Single-producer single-consumer ring of fixed-size slots in shared memory.
 *
 * Segment layout (all offsets from the start of the mapping):
 *
 *   0    +-----------------------------------------------------------------+
 *        | magic | layout_version | schema_version | slot_size | kind      |  immutable after
 *        | capacity | mask | creator_pid | created_ns | name[64]            |  ls_ring_create
 *   128  +-----------------------------------------------------------------+
 *        | tail (producer position, published)                             |  producer stores, consumer polls
 *   256  +-----------------------------------------------------------------+
 *        | head (consumer position)  | cached_tail (consumer's copy)       |  written by consumer only
 *   384  +-----------------------------------------------------------------+
 *        | tail_own | cached_head (producer's copies) | producer_pid |     |  the producer's own line;
 *        | consumer_pid | (reserved)                                       |  role holders, for reports
 *   512  +-----------------------------------------------------------------+
 *        | slot 0 | slot 1 | ... | slot capacity-1                         |  slot_size bytes each
 *        +-----------------------------------------------------------------+
 *
 * Positions are monotonic 64-bit counters (they never wrap in practice: 2^64 records); the slot of
 * position p is p & mask. The ring holds tail - head records. A producer never writes the slot of
 * a position the consumer has not released, so a write to a full ring returns LS_RING_FULL and
 * never overwrites unread data. Producer and consumer positions sit 128 bytes apart (no false
 * sharing, adjacent-line prefetch included). Both live in shared memory, so a consumer that is
 * killed and restarted resumes from `head`: every released record is read exactly once.
 *
 * The cached copies avoid touching the other side's cache line on every call: the producer
 * re-reads `head` only when its cached copy says the ring is full, the consumer re-reads `tail`
 * only when its cached copy says the ring is empty. Both are conservative (never ahead of the real
 * value), so stale copies left by a killed process are safe.
 *
 * The producer never loads from the tail line, it only stores to it: its own position and its copy
 * of head live on a line of their own (tail_own, cached_head). The consumer polls the tail line,
 * and a load by the producer first pulled the line back from the consumer's cache (a cross-core
 * transfer the store alone does not wait for): ~30 ns more per record one way, measured by
 * bench/bench_ring.py against bench/c/ring_fast.c. tail_own equals tail except inside a commit;
 * a process taking the producer role sets it from tail (ls_ring_producer_resume), so a producer
 * killed mid-commit leaves nothing half-published behind.
 *
 * One producer, one consumer: enforced outside this header. A process attaching as producer or
 * consumer takes an exclusive lock on byte 0 (producer) or byte 1 (consumer) of the segment
 * (livestack/ipc/shm.py, Segment.take_role); the kernel drops it when the process dies. The
 * holder then stores its pid in producer_pid / consumer_pid, only so that a refused second
 * attacher can name it: the lock, not the pid, is what decides.
 */
#ifndef LS_RING_H
#define LS_RING_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "ls_atomic.h"

#define LS_RING_MAGIC 0x31474e49524b534cULL /* "LSKRING1" little-endian */
#define LS_RING_LAYOUT_VERSION 2
#define LS_RING_HEADER_SIZE 512
#define LS_RING_NAME_LENGTH 64

#define LS_RING_OK 0
#define LS_RING_FULL 1

typedef struct ls_ring {
    /* @0: immutable after creation */
    uint64_t magic;
    uint32_t layout_version;
    uint32_t schema_version;
    uint32_t slot_size;
    uint32_t record_kind;      /* 0: mixed kinds (the header's kind field tells each record) */
    uint64_t capacity;         /* power of two */
    uint64_t mask;             /* capacity - 1 */
    int64_t creator_pid;
    int64_t created_ns;
    char name[LS_RING_NAME_LENGTH];
    uint8_t _pad0[LS_FALSE_SHARING_RANGE - 56 - LS_RING_NAME_LENGTH];
    /* @128: the published producer position: the producer only stores here, the consumer polls */
    volatile uint64_t tail;        /* next position to write; store-release pairs with the consumer's load-acquire */
    uint8_t _pad1[LS_FALSE_SHARING_RANGE - 8];
    /* @256: consumer line */
    volatile uint64_t head;        /* next position to read; store-release pairs with the producer's load-acquire */
    uint64_t cached_tail;          /* consumer's copy of tail, refreshed only when the ring looks empty */
    uint8_t _pad2[LS_FALSE_SHARING_RANGE - 16];
    /* @384: the producer's own line (the consumer touches it only to record its pid at attach) */
    uint64_t tail_own;             /* the producer's copy of tail: what it claims from and commits */
    uint64_t cached_head;          /* producer's copy of head, refreshed only when the ring looks full */
    /* who holds the roles (informative; 0 = none or unknown) */
    int64_t producer_pid;
    int64_t consumer_pid;
    uint8_t _reserved[LS_RING_HEADER_SIZE - 3 * LS_FALSE_SHARING_RANGE - 32];
    /* @512: slots */
} ls_ring_t;

_Static_assert(offsetof(ls_ring_t, tail) == 128, "producer line");
_Static_assert(offsetof(ls_ring_t, head) == 256, "consumer line");
_Static_assert(offsetof(ls_ring_t, tail_own) == 384, "producer's own line");
_Static_assert(offsetof(ls_ring_t, producer_pid) == 400, "role holders");
_Static_assert(sizeof(ls_ring_t) == LS_RING_HEADER_SIZE, "ring header size");

static inline size_t ls_ring_segment_size(uint64_t capacity, uint32_t slot_size) {
    return LS_RING_HEADER_SIZE + (size_t)capacity * slot_size;
}

static inline uint8_t *ls_ring_slot(ls_ring_t *r, uint64_t pos) {
    return (uint8_t *)r + LS_RING_HEADER_SIZE + (size_t)(pos & r->mask) * r->slot_size;
}

/* Initialise a zeroed mapping. The magic is stored last with release semantics so an attacher
 * that load-acquires the magic sees a fully initialised header. */
static inline void ls_ring_init(ls_ring_t *r, uint64_t capacity, uint32_t slot_size, uint32_t record_kind,
                                uint32_t schema_version, int64_t pid, int64_t now_ns, const char *name) {
    r->layout_version = LS_RING_LAYOUT_VERSION;
    r->schema_version = schema_version;
    r->slot_size = slot_size;
    r->record_kind = record_kind;
    r->capacity = capacity;
    r->mask = capacity - 1;
    r->creator_pid = pid;
    r->created_ns = now_ns;
    strncpy(r->name, name, LS_RING_NAME_LENGTH - 1);
    r->tail = 0;
    r->tail_own = 0;
    r->cached_head = 0;
    r->head = 0;
    r->cached_tail = 0;
    r->producer_pid = 0;
    r->consumer_pid = 0;
    ls_store_release_u64((volatile uint64_t *)&r->magic, LS_RING_MAGIC);
}

/* ---- producer side ---------------------------------------------------------------------- */

/* Taking the producer role: resume from the published position (a producer killed inside a commit
 * left tail_own ahead of tail; those slots are written again) and re-read head. */
static inline void ls_ring_producer_resume(ls_ring_t *r) {
    r->tail_own = ls_load_acquire_u64(&r->tail);
    r->cached_head = ls_load_acquire_u64(&r->head);
}

/* Free slots as seen by the producer, refreshing its cached head only when needed. */
static inline uint64_t ls_ring_free(ls_ring_t *r, uint64_t want) {
    uint64_t tail = r->tail_own; /* our own position, from our own line */
    uint64_t free_slots = r->capacity - (tail - r->cached_head);
    if (free_slots < want) {
        /* load-acquire pairs with the consumer's store-release in ls_ring_release: once we see
         * the new head, the consumer has finished reading those slots and we may overwrite them. */
        r->cached_head = ls_load_acquire_u64(&r->head);
        free_slots = r->capacity - (tail - r->cached_head);
    }
    return free_slots;
}

/* Claim up to n slots starting at *pos (the current tail). Returns how many may be filled
 * (0 when full). Fill them with ls_ring_slot(r, *pos + i), then ls_ring_commit. */
static inline uint64_t ls_ring_claim(ls_ring_t *r, uint64_t n, uint64_t *pos) {
    uint64_t free_slots = ls_ring_free(r, n);
    *pos = r->tail_own;
    return free_slots < n ? free_slots : n;
}

/* Claim up to n slots that are contiguous in memory (stops at the wrap point). */
static inline uint64_t ls_ring_claim_contiguous(ls_ring_t *r, uint64_t n, uint64_t *pos) {
    uint64_t k = ls_ring_claim(r, n, pos);
    uint64_t to_end = r->capacity - (*pos & r->mask);
    return k < to_end ? k : to_end;
}

/* Publish n claimed slots. Store-release pairs with the consumer's load-acquire of tail in
 * ls_ring_available: the slot contents written before this are visible once tail is. The tail
 * line is only stored to (see the top of this file). */
static inline void ls_ring_commit(ls_ring_t *r, uint64_t n) {
    uint64_t t = r->tail_own + n;
    r->tail_own = t;
    ls_store_release_u64(&r->tail, t);
}

/* Copy one record in. LS_RING_OK or LS_RING_FULL (nothing written). */
static inline int ls_ring_write(ls_ring_t *r, const void *rec) {
    if (LS_UNLIKELY(ls_ring_free(r, 1) == 0))
        return LS_RING_FULL;
    memcpy(ls_ring_slot(r, r->tail_own), rec, r->slot_size);
    ls_ring_commit(r, 1);
    return LS_RING_OK;
}

/* Copy up to n records in; returns how many were written (all or a prefix, never a torn one). */
static inline uint64_t ls_ring_write_batch(ls_ring_t *r, const void *recs, uint64_t n) {
    uint64_t pos;
    uint64_t k = ls_ring_claim(r, n, &pos);
    if (k == 0)
        return 0;
    const uint8_t *src = (const uint8_t *)recs;
    uint64_t first = pos & r->mask;
    uint64_t to_end = r->capacity - first;
    uint64_t a = k < to_end ? k : to_end;
    memcpy(ls_ring_slot(r, pos), src, (size_t)a * r->slot_size);
    if (k > a)
        memcpy(ls_ring_slot(r, pos + a), src + (size_t)a * r->slot_size, (size_t)(k - a) * r->slot_size);
    ls_ring_commit(r, k);
    return k;
}

/* ---- consumer side ---------------------------------------------------------------------- */

/* Records ready to read, refreshing the cached tail only when the cached copy says empty. */
static inline uint64_t ls_ring_available(ls_ring_t *r) {
    uint64_t head = r->head; /* our own position */
    uint64_t n = r->cached_tail - head;
    if (n == 0) {
        /* load-acquire pairs with the producer's store-release in ls_ring_commit: slots below the
         * tail we see are fully written. */
        r->cached_tail = ls_load_acquire_u64(&r->tail);
        n = r->cached_tail - head;
    }
    return n;
}

/* Records ready to read, always re-reading tail (for size reports and batch drains). */
static inline uint64_t ls_ring_available_fresh(ls_ring_t *r) {
    r->cached_tail = ls_load_acquire_u64(&r->tail); /* pairs with ls_ring_commit */
    return r->cached_tail - r->head;
}

/* Pointer to the next unread record, or NULL when empty. Call ls_ring_release(r, 1) when done. */
static inline const uint8_t *ls_ring_peek(ls_ring_t *r) {
    if (ls_ring_available(r) == 0)
        return NULL;
    return ls_ring_slot(r, r->head);
}

/* Release n read slots back to the producer. Store-release pairs with the producer's
 * load-acquire of head in ls_ring_free: our reads of those slots happen before it may reuse them. */
static inline void ls_ring_release(ls_ring_t *r, uint64_t n) {
    ls_store_release_u64(&r->head, r->head + n);
}

/* Copy up to max records out and release them. Returns the number copied. */
static inline uint64_t ls_ring_read(ls_ring_t *r, void *dst, uint64_t max) {
    uint64_t n = ls_ring_available(r);
    if (n < max)
        n = ls_ring_available_fresh(r);
    uint64_t k = n < max ? n : max;
    if (k == 0)
        return 0;
    uint64_t head = r->head;
    uint64_t first = head & r->mask;
    uint64_t to_end = r->capacity - first;
    uint64_t a = k < to_end ? k : to_end;
    uint8_t *out = (uint8_t *)dst;
    memcpy(out, ls_ring_slot(r, head), (size_t)a * r->slot_size);
    if (k > a)
        memcpy(out + (size_t)a * r->slot_size, ls_ring_slot(r, head + a), (size_t)(k - a) * r->slot_size);
    ls_ring_release(r, k);
    return k;
}

/* Up to max records readable in place, contiguous in memory (stops at the wrap point). */
static inline uint64_t ls_ring_view(ls_ring_t *r, uint64_t max, uint64_t *pos) {
    uint64_t n = ls_ring_available_fresh(r);
    uint64_t k = n < max ? n : max;
    *pos = r->head;
    uint64_t to_end = r->capacity - (*pos & r->mask);
    return k < to_end ? k : to_end;
}

#endif
