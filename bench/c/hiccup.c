/* The machine's own floor for bench_tick_to_trade.py: a busy loop pinned on one CPU that reads the
 * monotonic clock back to back for a given duration and records every gap between two reads (a
 * gap is time the loop did not run: an interrupt, a preemption, a VM exit, SMI...). Whatever a
 * busy-spinning process pinned on that CPU sees as a tail, this loop sees too.
 *
 *   usage: hiccup CPU DURATION_NS     prints one JSON line:
 *   {"cpu":..,"duration_ns":..,"reads":..,"over_1us":..,"over_10us":..,"over_100us":..,
 *    "max_ns":..,"lost_ns":..,"p50_gap_ns":..}   (lost_ns: total time in gaps > 1 us)
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline int64_t now_ns(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: hiccup CPU DURATION_NS\n"); return 2; }
    int cpu = atoi(argv[1]);
    int64_t dur = atoll(argv[2]);
    cpu_set_t s; CPU_ZERO(&s); CPU_SET(cpu, &s);
    if (sched_setaffinity(0, sizeof s, &s) != 0) { perror("sched_setaffinity"); return 1; }
    uint64_t small[1024] = {0};  /* gaps < 1024 ns, 1 ns buckets: for the median gap */
    int64_t reads = 0, o1 = 0, o10 = 0, o100 = 0, mx = 0, lost = 0;
    int64_t t0 = now_ns(), prev = t0, end = t0 + dur;
    while (prev < end) {
        int64_t t = now_ns(), d = t - prev;
        prev = t;
        reads++;
        if (d < 1024) { small[d]++; continue; }
        if (d > mx) mx = d;
        if (d > 1000) { o1++; lost += d; }
        if (d > 10000) o10++;
        if (d > 100000) o100++;
    }
    int64_t half = reads / 2, cum = 0, p50 = 1024;
    for (int i = 0; i < 1024; i++) { cum += small[i]; if (cum >= half) { p50 = i; break; } }
    for (int i = 1023; i >= 0 && mx == 0; i--) if (small[i]) mx = i;
    printf("{\"cpu\":%d,\"duration_ns\":%lld,\"reads\":%lld,\"over_1us\":%lld,\"over_10us\":%lld,"
           "\"over_100us\":%lld,\"max_ns\":%lld,\"lost_ns\":%lld,\"p50_gap_ns\":%lld}\n",
           cpu, (long long)(prev - t0), (long long)reads, (long long)o1, (long long)o10, (long long)o100,
           (long long)mx, (long long)lost, (long long)p50);
    return 0;
}
