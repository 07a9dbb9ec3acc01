/* The fast floor for bench_ring.py: the fastest SPSC ring we could write in C, for the same
 * ping-pong and throughput runs as livestack's ring. Same layout rules as ls_ring.h (producer and
 * consumer positions 128 bytes apart, 64-byte slots), plus everything that makes a C ring fast and
 * nothing that makes it safe: each side keeps a private copy of the other side's position (re-read
 * only when the ring looks full / empty), positions live in registers between calls, the consumer
 * publishes its position once per batch (RELEASE_EVERY records, or when it finds the ring empty),
 * no kind/size checks, no bounds checks, compiled -O2 with everything inlined.
 *
 *   usage: ring_fast pingpong N CPU_A CPU_B     one RTT in ns per line on stdout
 *          ring_fast tput N CPU_A CPU_B BATCH   ns from the consumer's first record to its last
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

#define CAP (1 << 16)
#define SLOT 64
#define RELEASE_EVERY 64
typedef struct {
    _Alignas(128) volatile uint64_t tail;
    _Alignas(128) volatile uint64_t head;
    _Alignas(128) uint8_t slots[CAP][SLOT];
} ring_t;

typedef struct { ring_t *r; uint64_t tail, cached_head; } prod_t;        /* producer-private */
typedef struct { ring_t *r; uint64_t head, cached_tail, released; } cons_t; /* consumer-private */

static inline int64_t now_ns(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
/* write up to n records; returns how many fit */
static inline uint64_t put(prod_t *p, const uint8_t *m, uint64_t n) {
    uint64_t room = CAP - (p->tail - p->cached_head);
    if (room < n) {
        p->cached_head = __atomic_load_n(&p->r->head, __ATOMIC_ACQUIRE);
        room = CAP - (p->tail - p->cached_head);
        if (room < n) n = room;
    }
    for (uint64_t i = 0; i < n; i++) memcpy(p->r->slots[(p->tail + i) & (CAP - 1)], m + i * SLOT, SLOT);
    p->tail += n;
    __atomic_store_n(&p->r->tail, p->tail, __ATOMIC_RELEASE);
    return n;
}
/* read up to n records; returns how many were read */
static inline uint64_t get(cons_t *c, uint8_t *m, uint64_t n) {
    uint64_t avail = c->cached_tail - c->head;
    if (avail == 0) {
        if (c->released != c->head) {  /* about to wait: publish what we consumed */
            __atomic_store_n(&c->r->head, c->head, __ATOMIC_RELEASE);
            c->released = c->head;
        }
        c->cached_tail = __atomic_load_n(&c->r->tail, __ATOMIC_ACQUIRE);
        avail = c->cached_tail - c->head;
        if (avail == 0) return 0;
    }
    if (avail < n) n = avail;
    for (uint64_t i = 0; i < n; i++) memcpy(m + i * SLOT, c->r->slots[(c->head + i) & (CAP - 1)], SLOT);
    c->head += n;
    if (c->head - c->released >= RELEASE_EVERY) {
        __atomic_store_n(&c->r->head, c->head, __ATOMIC_RELEASE);
        c->released = c->head;
    }
    return n;
}
static void pin(int cpu) {
    if (cpu < 0) return;
    cpu_set_t s; CPU_ZERO(&s); CPU_SET(cpu, &s);
    sched_setaffinity(0, sizeof s, &s);
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: ring_fast pingpong|tput N CPU_A CPU_B [BATCH]\n"); return 2; }
    int tput = strcmp(argv[1], "tput") == 0;
    long n = atol(argv[2]);
    int ca = atoi(argv[3]), cb = atoi(argv[4]);
    uint64_t batch = argc > 5 ? (uint64_t)atol(argv[5]) : 1;
    ring_t *rings = mmap(NULL, 2 * sizeof(ring_t) + sizeof(int64_t), PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (rings == MAP_FAILED) { perror("mmap"); return 1; }
    memset(rings, 0, 2 * sizeof(ring_t));
    int64_t *result = (int64_t *)&rings[2];
    uint8_t *m = calloc(batch > 1 ? batch : 1, SLOT);
    pid_t pid = fork();
    if (pid == 0) {
        pin(cb);
        cons_t c = {&rings[0], 0, 0, 0};
        if (tput) {
            long got = 0;
            int64_t t0 = 0;
            while (got < n) {
                uint64_t k = get(&c, m, batch);
                if (k && got == 0) t0 = now_ns();
                got += k;
            }
            *result = now_ns() - t0;
        } else {
            prod_t p = {&rings[1], 0, 0};
            for (long i = 0; i < n; i++) {
                while (get(&c, m, 1) == 0) __builtin_ia32_pause();
                put(&p, m, 1);
            }
        }
        _exit(0);
    }
    pin(ca);
    prod_t p = {&rings[0], 0, 0};
    if (tput) {
        for (long done = 0; done < n;) {
            uint64_t want = (uint64_t)(n - done) < batch ? (uint64_t)(n - done) : batch;
            done += put(&p, m, want);
        }
        waitpid(pid, NULL, 0);
        printf("%lld\n", (long long)*result);
        return 0;
    }
    cons_t c = {&rings[1], 0, 0, 0};
    int64_t *rtt = malloc(n * sizeof *rtt);
    for (long i = 0; i < n; i++) {
        memcpy(m, &i, sizeof i);
        int64_t t0 = now_ns();
        put(&p, m, 1);
        while (get(&c, m, 1) == 0) __builtin_ia32_pause();
        rtt[i] = now_ns() - t0;
    }
    waitpid(pid, NULL, 0);
    for (long i = 0; i < n; i++) printf("%lld\n", (long long)rtt[i]);
    return 0;
}
