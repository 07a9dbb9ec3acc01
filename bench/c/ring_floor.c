/* A reference for bench_ring.py: the same ping-pong as livestack's ring benchmark, through the
 * textbook SPSC ring in C (two processes over MAP_SHARED memory, 64-byte slots, acquire/release
 * positions on separate cache lines, no cached copies, release per record, no checks). NOT the
 * floor: every call touches the other side's line, so it is slower than bench/c/ring_fast.c.
 *
 *   usage: ring_floor N CPU_A CPU_B     prints one RTT in ns per line on stdout
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CAP 1024
typedef struct {
    volatile uint64_t tail; char pad1[120];
    volatile uint64_t head; char pad2[120];
    uint8_t slots[CAP][64];
} ring_t;

static inline int64_t now_ns(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
static inline void put(ring_t *r, const uint8_t *m) {
    uint64_t t = r->tail;
    while (t - __atomic_load_n(&r->head, __ATOMIC_ACQUIRE) >= CAP) __builtin_ia32_pause();
    memcpy(r->slots[t & (CAP - 1)], m, 64);
    __atomic_store_n(&r->tail, t + 1, __ATOMIC_RELEASE);
}
static inline void get(ring_t *r, uint8_t *m) {
    uint64_t h = r->head;
    while (__atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) == h) __builtin_ia32_pause();
    memcpy(m, r->slots[h & (CAP - 1)], 64);
    __atomic_store_n(&r->head, h + 1, __ATOMIC_RELEASE);
}
static void pin(int cpu) {
    if (cpu < 0) return;
    cpu_set_t s; CPU_ZERO(&s); CPU_SET(cpu, &s);
    sched_setaffinity(0, sizeof s, &s);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000;
    int ca = argc > 2 ? atoi(argv[2]) : -1, cb = argc > 3 ? atoi(argv[3]) : -1;
    ring_t *rings = mmap(NULL, 2 * sizeof(ring_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (rings == MAP_FAILED) { perror("mmap"); return 1; }
    memset(rings, 0, 2 * sizeof(ring_t));
    ring_t *ab = &rings[0], *ba = &rings[1];
    uint8_t m[64] = {0};
    pid_t pid = fork();
    if (pid == 0) {
        pin(cb);
        for (long i = 0; i < n; i++) { get(ab, m); put(ba, m); }
        _exit(0);
    }
    pin(ca);
    int64_t *rtt = malloc(n * sizeof *rtt);
    for (long i = 0; i < n; i++) {
        memcpy(m, &i, sizeof i);
        int64_t t0 = now_ns();
        put(ab, m);
        get(ba, m);
        rtt[i] = now_ns() - t0;
    }
    waitpid(pid, NULL, 0);
    for (long i = 0; i < n; i++) printf("%lld\n", (long long)rtt[i]);
    return 0;
}
