/* Acquire/release atomics for the shared-memory rings and telemetry block.
 *
 * Names say their ordering. Every call site comments the access it pairs with: a release store
 * publishes everything written before it to the thread that performs the matching acquire load.
 * x86-64 gives these for free (plain MOV) but the compiler barrier is still needed; on ARM they
 * become LDAR/STLR.
 */
#ifndef LS_ATOMIC_H
#define LS_ATOMIC_H

#include <stdint.h>

#define LS_CACHE_LINE 64
/* Positions written by different processes sit this far apart: two lines, because the adjacent-line
 * prefetcher on Intel pulls cache lines in pairs. */
#define LS_FALSE_SHARING_RANGE 128

#define LS_LIKELY(x) __builtin_expect(!!(x), 1)
#define LS_UNLIKELY(x) __builtin_expect(!!(x), 0)

static inline uint64_t ls_load_acquire_u64(const volatile uint64_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void ls_store_release_u64(volatile uint64_t *p, uint64_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline uint64_t ls_load_relaxed_u64(const volatile uint64_t *p) {
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void ls_store_relaxed_u64(volatile uint64_t *p, uint64_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}
static inline uint64_t ls_fetch_add_relaxed_u64(volatile uint64_t *p, uint64_t v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
static inline void ls_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif
