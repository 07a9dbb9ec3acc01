/* Shared-memory telemetry block: counters, gauges, latency histograms and a state snapshot.
 *
 * One POSIX shared-memory segment per session (`ls.<session>.telemetry`), created by the supervisor
 * (TelemetryBlock.create) and written by exactly one process, the harness, through the static
 * inline functions below: no locks, no allocation, no system calls, callable `nogil`. The
 * exceptions: the process table (every process writes its own slot: pid, heartbeat, errors, lag)
 * and the gauges marked "writer-owned" (the record writer's disk state; the harness only reads
 * them). Every field still has exactly one writer.
 * Readers (exporter, `livestack top`, the control process) never lock and never write.
 *
 * How readers get consistent values (two disciplines, chosen per section):
 *
 *   per-field atomics   counters, gauges, histogram buckets, ring gauges, process slots.
 *                       Each 64-bit value is written by one process with a relaxed atomic store
 *                       (a plain aligned MOV on x86-64) and read with an atomic load, so a single
 *                       value is never torn and counters never go backwards. Values of different
 *                       fields are NOT one consistent cut: a reader may see bucket[i] incremented
 *                       before `count`. Readers derive a histogram's count from its buckets (so
 *                       the +Inf bucket always equals the count they report); `sum_ns` may be one
 *                       in-flight sample ahead or behind.
 *   seqlock             each position entry and each open-order entry. The writer makes the entry's
 *                       `seq` odd, writes the fields, makes `seq` even again (release). A reader
 *                       copies the entry between two reads of `seq` and retries when `seq` was odd
 *                       or changed (a torn read), up to `tries` times, then returns -1 so the
 *                       caller can yield or sleep (the writer may be preempted mid-update) and
 *                       call again. Entries are small (64/128 bytes): a busy harness does not
 *                       starve a reader.
 *
 * Segment layout (offsets from the start of the mapping; every section is cache-line aligned):
 *
 *        0 +--------------------------------------------------------------------+
 *          | header: magic layout_version schema_version size creator_pid ...   |  256 bytes
 *      256 +--------------------------------------------------------------------+
 *          | counters[LS_TEL_MAX_COUNTERS]      u64, monotonic                  |
 *          | gauges[LS_TEL_MAX_GAUGES]          i64                             |
 *          | order_states[LS_TEL_MAX_CODES]     u64, transitions into OrderState|
 *          | denials[LS_TEL_MAX_CODES]          u64, by DenyReason              |
 *          | anomalies[LS_TEL_MAX_CODES]        u64, by Anomaly code            |
 *          +--------------------------------------------------------------------+
 *          | hist[LS_TEL_MAX_HISTS]   count sum_ns max_ns | buckets[816]        |  6592 bytes each
 *          +--------------------------------------------------------------------+
 *          | positions[LS_TEL_MAX_INSTRUMENTS]  128 bytes each, seqlock         |
 *          | orders[LS_TEL_MAX_ORDERS]          64 bytes each, seqlock          |
 *          | procs[LS_TEL_MAX_PROCS]            128 bytes each, own-slot writer |
 *          | rings[LS_TEL_MAX_RINGS]            64 bytes each                   |
 *          | strategies[LS_TEL_MAX_STRATEGIES]  64 bytes each (layout 2)        |
 *          +--------------------------------------------------------------------+
 *
 * Per strategy (layout 2): each position entry names the strategy that owns its instrument
 * (`strategy`, [[strategies]] index + 1) and counts the instrument's orders sent, fills and denials
 * (per-field atomics); the strategies table holds each strategy's name and its errors. A reader
 * sums a strategy's instruments for its position figures.
 *
 * Histograms: fixed log-linear buckets with two significant decimal digits from 10 ns to 10 s.
 * Bucket 0 holds v <= 10 ns; then, for each decade 10^k < v <= 10^(k+1) (k = 1..9), 90 buckets
 * (m*10^(k-1), (m+1)*10^(k-1)] for m = 10..99; the last bucket holds v > 10 s. Upper bounds are
 * inclusive, so the Prometheus 1-2-5 bounds (10 ns, 20 ns, 50 ns, 100 ns ... 10 s) are exact
 * bucket edges and the exporter's `le` buckets are exact sums. 812 buckets, relative width 1% at
 * the top of a decade and 10% at the bottom. Indexing is branch-light: clz, one table compare and
 * one 64x64->128 multiply (~2-3 ns).
 */
#ifndef LS_TELEMETRY_H
#define LS_TELEMETRY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ls_atomic.h"

#define LS_TEL_MAGIC 0x314d454c4554534cULL /* "LSTELEM1" little-endian */
#define LS_TEL_LAYOUT_VERSION 2   /* 2: per-instrument order/fill/denial counts, the strategies table */
#define LS_TEL_HEADER_SIZE 256
#define LS_TEL_NAME_LENGTH 32

#define LS_TEL_MAX_COUNTERS 64
#define LS_TEL_MAX_GAUGES 32
#define LS_TEL_MAX_CODES 64        /* per-code counter arrays (OrderState, DenyReason, Anomaly values) */
#define LS_TEL_MAX_HISTS 8
#define LS_TEL_MAX_INSTRUMENTS 64
#define LS_TEL_MAX_ORDERS 1024
#define LS_TEL_MAX_PROCS 32
#define LS_TEL_MAX_RINGS 32
#define LS_TEL_MAX_STRATEGIES 8

#define LS_TEL_HIST_BUCKETS 812     /* used buckets */
#define LS_TEL_HIST_SLOTS 816       /* buckets array length (cache-line multiple) */
#define LS_TEL_HIST_LOW_NS 10LL     /* bucket 0: v <= 10 ns */
#define LS_TEL_HIST_HIGH_NS 10000000000LL /* last bucket: v > 10 s */

/* ---- names: one list per kind, X-macros (the C enum, the name strings and help strings below and
 * the Python views in livestack/telemetry/block.pyx all come from these lists) ----------------- */

#define LS_TEL_COUNTERS(X)                                                                        \
    X(EVENTS, "events", "inputs processed by the core")                                           \
    X(MD_EVENTS, "md_events", "market-data inputs processed")                                     \
    X(EXEC_EVENTS, "exec_events", "execution-event inputs processed")                             \
    X(CONTROL_EVENTS, "control_events", "control-command inputs processed")                       \
    X(TIMER_EVENTS, "timer_events", "timer-tick inputs processed")                                \
    X(LOOPS, "loops", "harness loop iterations")                                                  \
    X(IDLE_LOOPS, "idle_loops", "harness loop iterations that found no input")                    \
    X(ORDERS_NEW, "orders_new", "NewOrder commands dispatched")                                   \
    X(ORDERS_CANCEL, "orders_cancel", "CancelOrder commands dispatched")                          \
    X(ORDERS_REPLACE, "orders_replace", "ReplaceOrder commands dispatched")                       \
    X(FILLS, "fills", "fills applied")                                                            \
    X(DENIALS, "denials", "intents denied (all reasons)")                                         \
    X(ANOMALIES, "anomalies", "anomalies recorded (all codes)")                                   \
    X(FEED_GAPS, "feed_gaps", "market-data gaps (MD_STATUS GAP)")                                 \
    X(FEED_STALE, "feed_stale", "market-data stale statuses")                                     \
    X(FEED_DISCONNECTS, "feed_disconnects", "market-data disconnects")                            \
    X(RING_OVERFLOWS, "ring_overflows", "ring writes that found the ring full (all rings)")       \
    X(ERRORS, "errors", "errors in the harness")                                                  \
    X(RECORDS, "records", "records written to the records ring")                                  \
    X(EVENTS_DROPPED, "events_dropped", "events not published because the events ring was full") \
    X(CONTROL_COMMANDS, "control_commands", "control commands answered")                          \
    X(CONTROL_ERRORS, "control_errors", "control commands answered with an error")

#define LS_TEL_GAUGES(X)                                                                          \
    X(HSEQ, "hseq", "harness input sequence of the last input processed")                         \
    X(TS_CORE, "ts_core", "ts of the last input processed (ns since the epoch)")                  \
    X(TRADING_STATE, "trading_state", "TradingState: 0 ACTIVE, 1 REDUCING, 2 HALTED")             \
    X(KILL_LATCHED, "kill_latched", "1 while the kill switch is latched")                        \
    X(SESSION_ACTIVE, "session_active", "1 between session start and stop")                      \
    X(CONFIG_VERSION, "config_version", "version of the last config update applied")             \
    X(OPEN_ORDERS, "open_orders", "open orders now")                                              \
    X(WRITER_LAG_RECORDS, "writer_lag_records", "records in the records ring not yet persisted")  \
    X(WRITER_LAG_NS, "writer_lag_ns", "age of the oldest unpersisted record (ns), if known")      \
    X(INSTRUMENTS, "instruments", "instruments configured")                                     \
    X(RSEQ, "rseq", "record seq of the last record the harness wrote to the records ring")      \
    X(HARNESS_DONE, "harness_done", "1 once the harness stopped (its last records are in the ring)") \
    X(WRITER_DISK_STATE, "writer_disk_state", "writer-owned: 0 ok, 1 low (REDUCING), 2 halt, 3 stopped writing") \
    X(WRITER_FREE_BYTES, "writer_free_bytes", "writer-owned: free bytes on the records filesystem") \
    X(RECORDS_LOST_DISK_FULL, "records_lost_disk_full", "writer-owned: records discarded after disk full")

#define LS_TEL_HISTS(X)                                                                           \
    X(RING_WAIT, "ring_wait", "input ts_recv to harness pickup")                                  \
    X(CORE, "core", "core processing of one input")                                               \
    X(TICK_TO_TRADE, "tick_to_trade", "market-data ts_recv to order command dispatched")          \
    X(VENUE_RTT, "venue_rtt", "order command dispatched to the venue's answer received")

#define LS_TEL_ENUM_(id, name, help) LS_TEL_C_##id,
enum { LS_TEL_COUNTERS(LS_TEL_ENUM_) LS_TEL_N_COUNTERS };
#undef LS_TEL_ENUM_
#define LS_TEL_ENUM_(id, name, help) LS_TEL_G_##id,
enum { LS_TEL_GAUGES(LS_TEL_ENUM_) LS_TEL_N_GAUGES };
#undef LS_TEL_ENUM_
#define LS_TEL_ENUM_(id, name, help) LS_TEL_H_##id,
enum { LS_TEL_HISTS(LS_TEL_ENUM_) LS_TEL_N_HISTS };
#undef LS_TEL_ENUM_

_Static_assert(LS_TEL_N_COUNTERS <= LS_TEL_MAX_COUNTERS, "counter table");
_Static_assert(LS_TEL_N_GAUGES <= LS_TEL_MAX_GAUGES, "gauge table");
_Static_assert(LS_TEL_N_HISTS <= LS_TEL_MAX_HISTS, "histogram table");

#define LS_TEL_NAME_(id, name, help) name,
#define LS_TEL_HELP_(id, name, help) help,
static const char *const ls_tel_counter_names[] = {LS_TEL_COUNTERS(LS_TEL_NAME_)};
static const char *const ls_tel_counter_help[] = {LS_TEL_COUNTERS(LS_TEL_HELP_)};
static const char *const ls_tel_gauge_names[] = {LS_TEL_GAUGES(LS_TEL_NAME_)};
static const char *const ls_tel_gauge_help[] = {LS_TEL_GAUGES(LS_TEL_HELP_)};
static const char *const ls_tel_hist_names[] = {LS_TEL_HISTS(LS_TEL_NAME_)};
static const char *const ls_tel_hist_help[] = {LS_TEL_HISTS(LS_TEL_HELP_)};
#undef LS_TEL_NAME_
#undef LS_TEL_HELP_

static inline const char *ls_tel_counter_name(int i) { return ls_tel_counter_names[i]; }
static inline const char *ls_tel_counter_doc(int i) { return ls_tel_counter_help[i]; }
static inline const char *ls_tel_gauge_name(int i) { return ls_tel_gauge_names[i]; }
static inline const char *ls_tel_gauge_doc(int i) { return ls_tel_gauge_help[i]; }
static inline const char *ls_tel_hist_name(int i) { return ls_tel_hist_names[i]; }
static inline const char *ls_tel_hist_doc(int i) { return ls_tel_hist_help[i]; }

/* ---- layout ----------------------------------------------------------------------------- */

typedef struct ls_tel_hist {
    uint64_t count;   /* samples recorded */
    uint64_t sum_ns;  /* sum of the samples (negative samples count as 0) */
    uint64_t max_ns;  /* largest sample */
    uint64_t _pad[5];
    uint64_t buckets[LS_TEL_HIST_SLOTS];
} ls_tel_hist_t;

/* One instrument's position (seqlock). A slot is in use once `instrument` != 0. */
typedef struct ls_tel_position {
    uint64_t seq;            /* seqlock: odd while the harness writes the entry */
    uint32_t instrument;
    uint8_t price_decimals;
    uint8_t qty_decimals;
    uint16_t strategy;       /* 1 + index of the strategy owning the instrument; 0: none */
    int64_t net_qty;         /* qty units, signed */
    int64_t cost;            /* price units x qty units: signed cost basis of the open position */
    int64_t realized_pnl;    /* price units x qty units */
    int64_t unrealized_pnl;  /* price units x qty units, at mark_price */
    int64_t mark_price;      /* price units */
    int64_t ts;              /* ts_core of the last change (ns) */
    char symbol[LS_TEL_NAME_LENGTH];
    /* per-field atomics, not under the seqlock (monotonic counters, ls_tel_instrument_count) */
    uint64_t orders_sent;    /* order commands dispatched for the instrument (NEW, CANCEL, REPLACE) */
    uint64_t fills;          /* fills applied */
    uint64_t denials;        /* intents denied */
    uint8_t healthy;         /* 1: its feed's book is valid (LS_INST_HEALTHY: after SNAPSHOT_END, until GAP/STALE/...);
                                written outside the seqlock (ls_tel_position_health) */
    uint8_t _pad1[7];
} ls_tel_position_t;

enum { LS_TEL_I_ORDERS_SENT = 0, LS_TEL_I_FILLS = 1, LS_TEL_I_DENIALS = 2 };

/* One strategy of the session (registered by the harness at start; in use once in_use != 0). */
typedef struct ls_tel_strategy {
    uint64_t errors;         /* calls that failed (ANOMALY STRATEGY_ERROR of this strategy) */
    uint32_t stopped;        /* 1 once its on_error policy took it out (disable / halt) */
    uint32_t in_use;         /* store-release publishes the name */
    uint64_t _pad[2];
    char name[LS_TEL_NAME_LENGTH];
} ls_tel_strategy_t;

/* One open order (seqlock). A slot holds an order while `state` != 0 (OrderState NONE). */
typedef struct ls_tel_order {
    uint64_t seq;            /* seqlock: odd while the harness writes the entry */
    int64_t client_order_id;
    int64_t venue_order_id;
    int64_t price;           /* price units */
    int64_t qty;             /* qty units */
    int64_t cum_qty;         /* qty units filled */
    int64_t ts;              /* ts_core of the last change (ns) */
    uint32_t instrument;
    uint8_t state;           /* OrderState */
    uint8_t side;            /* Side */
    uint8_t _pad[2];
} ls_tel_order_t;

/* One process's slot, written only by that process (claimed by compare-and-swap on pid). */
typedef struct ls_tel_proc {
    int64_t pid;             /* 0: free */
    int64_t started_ns;
    int64_t heartbeat_ns;    /* last heartbeat (ns since the epoch) */
    uint64_t errors;         /* errors this process counted */
    int64_t lag_ns;          /* how far behind its input the process is, if it knows (writer lag) */
    uint64_t _pad0[3];
    char name[LS_TEL_NAME_LENGTH];
    uint8_t _pad1[128 - 64 - LS_TEL_NAME_LENGTH];
} ls_tel_proc_t;

/* One ring's fill gauge (registered by the harness at start; in use once capacity != 0). */
typedef struct ls_tel_ring {
    uint64_t capacity;       /* slots; store-release publishes the name */
    uint64_t fill;           /* records written and not yet consumed, last seen by the harness */
    uint64_t overflows;      /* writes that found the ring full */
    uint64_t _pad;
    char name[LS_TEL_NAME_LENGTH];
} ls_tel_ring_t;

typedef struct ls_tel_block {
    /* @0: header, immutable after ls_tel_init */
    uint64_t magic;
    uint32_t layout_version;
    uint32_t schema_version;
    uint64_t size;           /* bytes of the segment */
    int64_t creator_pid;
    int64_t created_ns;
    uint32_t n_counters, n_gauges, n_hists, n_buckets;
    uint32_t max_codes, max_instruments, max_orders, max_procs, max_rings, max_strategies;
    uint8_t _pad1[LS_TEL_HEADER_SIZE - 80];
    /* @256 */
    uint64_t counters[LS_TEL_MAX_COUNTERS];
    int64_t gauges[LS_TEL_MAX_GAUGES];
    uint64_t order_states[LS_TEL_MAX_CODES];
    uint64_t denials[LS_TEL_MAX_CODES];
    uint64_t anomalies[LS_TEL_MAX_CODES];
    ls_tel_hist_t hists[LS_TEL_MAX_HISTS];
    ls_tel_position_t positions[LS_TEL_MAX_INSTRUMENTS];
    ls_tel_order_t orders[LS_TEL_MAX_ORDERS];
    ls_tel_proc_t procs[LS_TEL_MAX_PROCS];
    ls_tel_ring_t rings[LS_TEL_MAX_RINGS];
    ls_tel_strategy_t strategies[LS_TEL_MAX_STRATEGIES];
} ls_tel_block_t;

_Static_assert(offsetof(ls_tel_block_t, counters) == LS_TEL_HEADER_SIZE, "telemetry header size");
_Static_assert(sizeof(ls_tel_hist_t) % LS_CACHE_LINE == 0, "histogram size");
_Static_assert(sizeof(ls_tel_position_t) == 128, "position entry size");
_Static_assert(sizeof(ls_tel_order_t) == 64, "order entry size");
_Static_assert(sizeof(ls_tel_proc_t) == 128, "process slot size");
_Static_assert(sizeof(ls_tel_ring_t) == 64, "ring entry size");
_Static_assert(sizeof(ls_tel_strategy_t) == 64, "strategy entry size");
_Static_assert(offsetof(ls_tel_block_t, hists) % LS_CACHE_LINE == 0, "histograms aligned");
_Static_assert(offsetof(ls_tel_block_t, positions) % LS_CACHE_LINE == 0, "positions aligned");
_Static_assert(offsetof(ls_tel_block_t, orders) % LS_CACHE_LINE == 0, "orders aligned");
_Static_assert(offsetof(ls_tel_block_t, procs) % LS_CACHE_LINE == 0, "procs aligned");
_Static_assert(offsetof(ls_tel_block_t, rings) % LS_CACHE_LINE == 0, "rings aligned");

static inline size_t ls_tel_segment_size(void) { return sizeof(ls_tel_block_t); }

/* Relaxed atomic access to a field of the block. Single writer per field, so a plain load + store
 * (no locked read-modify-write) is enough for counters. */
#define LS_TEL_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define LS_TEL_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

/* ---- seqlock (Boehm, "Can seqlocks get along with programming language memory models?") ---- */

/* Writer: seq odd, release fence (the odd seq is ordered before the field stores), fields. */
static inline void ls_tel_seq_write_begin(uint64_t *seq) {
    LS_TEL_STORE(seq, LS_TEL_LOAD(seq) + 1);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}
/* Writer: store-release of the even seq pairs with the reader's load-acquire in read_begin. */
static inline void ls_tel_seq_write_end(uint64_t *seq) {
    __atomic_store_n(seq, LS_TEL_LOAD(seq) + 1, __ATOMIC_RELEASE);
}
static inline uint64_t ls_tel_seq_read_begin(const uint64_t *seq) {
    return __atomic_load_n(seq, __ATOMIC_ACQUIRE); /* pairs with ls_tel_seq_write_end */
}
/* 1 when the fields copied since read_begin(s) form one consistent version. */
static inline int ls_tel_seq_read_ok(const uint64_t *seq, uint64_t s) {
    __atomic_thread_fence(__ATOMIC_ACQUIRE); /* the field loads above happen before the reload */
    return (s & 1) == 0 && LS_TEL_LOAD(seq) == s;
}

/* ---- creation ----------------------------------------------------------------------------- */

/* Initialise a zeroed mapping; the magic is stored last with release semantics so an attacher
 * that load-acquires it sees a fully initialised header. */
static inline void ls_tel_init(ls_tel_block_t *t, uint32_t schema_version, int64_t pid, int64_t now_ns) {
    t->layout_version = LS_TEL_LAYOUT_VERSION;
    t->schema_version = schema_version;
    t->size = sizeof(ls_tel_block_t);
    t->creator_pid = pid;
    t->created_ns = now_ns;
    t->n_counters = LS_TEL_N_COUNTERS;
    t->n_gauges = LS_TEL_N_GAUGES;
    t->n_hists = LS_TEL_N_HISTS;
    t->n_buckets = LS_TEL_HIST_BUCKETS;
    t->max_codes = LS_TEL_MAX_CODES;
    t->max_instruments = LS_TEL_MAX_INSTRUMENTS;
    t->max_orders = LS_TEL_MAX_ORDERS;
    t->max_procs = LS_TEL_MAX_PROCS;
    t->max_rings = LS_TEL_MAX_RINGS;
    t->max_strategies = LS_TEL_MAX_STRATEGIES;
    ls_store_release_u64((volatile uint64_t *)&t->magic, LS_TEL_MAGIC);
}

/* ---- histogram buckets ---------------------------------------------------------------------- */

static const uint64_t ls_tel_pow10[20] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL, 100000000ULL,
    1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL,
    100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
    1000000000000000000ULL, 10000000000000000000ULL};

/* ceil(2^64 / 10^(d-1)) for d = 2..9: x / 10^(d-1) == (x * r) >> 64 exactly for x < 2^34, because
 * the error x * (r - 2^64/p) / 2^64 < 2^-30 is below 1/p (p <= 10^8 < 2^27). */
#define LS_TEL_RECIP_(p) (UINT64_MAX / (p) + 1)
static const uint64_t ls_tel_recip[10] = {
    0, 0, LS_TEL_RECIP_(10ULL), LS_TEL_RECIP_(100ULL), LS_TEL_RECIP_(1000ULL), LS_TEL_RECIP_(10000ULL),
    LS_TEL_RECIP_(100000ULL), LS_TEL_RECIP_(1000000ULL), LS_TEL_RECIP_(10000000ULL), LS_TEL_RECIP_(100000000ULL)};
#undef LS_TEL_RECIP_

/* Bucket of a sample of ns nanoseconds (0 .. LS_TEL_HIST_BUCKETS-1). */
static inline uint32_t ls_tel_bucket_index(int64_t ns) {
    if (ns <= LS_TEL_HIST_LOW_NS)
        return 0;
    if (LS_UNLIKELY(ns > LS_TEL_HIST_HIGH_NS))
        return LS_TEL_HIST_BUCKETS - 1;
    uint64_t x = (uint64_t)ns - 1; /* v in (a, b]  <=>  v - 1 in [a, b) for integers */
    uint32_t t = (uint32_t)(((64 - __builtin_clzll(x)) * 1233) >> 12);
    uint32_t d = t - (x < ls_tel_pow10[t]); /* floor(log10(x)): 1..9 */
    uint64_t m = d == 1 ? x : (uint64_t)(((unsigned __int128)x * ls_tel_recip[d]) >> 64); /* 10..99 */
    return 1 + (d - 1) * 90 + (uint32_t)(m - 10);
}

/* Inclusive upper bound of bucket i in ns; INT64_MAX for the overflow bucket. */
static inline int64_t ls_tel_bucket_upper(uint32_t i) {
    if (i == 0)
        return LS_TEL_HIST_LOW_NS;
    if (i >= LS_TEL_HIST_BUCKETS - 1)
        return INT64_MAX;
    uint32_t d = (i - 1) / 90 + 1;
    uint64_t m = (i - 1) % 90 + 10;
    return (int64_t)((m + 1) * ls_tel_pow10[d - 1]);
}

/* ==== writer API: the harness (single writer) ============================================== */

/* counter += n */
static inline void ls_tel_add(ls_tel_block_t *t, int counter, uint64_t n) {
    uint64_t *p = &t->counters[counter];
    LS_TEL_STORE(p, LS_TEL_LOAD(p) + n);
}

/* gauge = v */
static inline void ls_tel_set(ls_tel_block_t *t, int gauge, int64_t v) {
    LS_TEL_STORE(&t->gauges[gauge], v);
}

/* gauge, as last stored (the harness reads the writer-owned disk-state gauge this way) */
static inline int64_t ls_tel_get(const ls_tel_block_t *t, int gauge) {
    return LS_TEL_LOAD(&t->gauges[gauge]);
}

/* One order entered OrderState `state` (orders by status). */
static inline void ls_tel_order_state_count(ls_tel_block_t *t, uint32_t state) {
    uint64_t *p = &t->order_states[state < LS_TEL_MAX_CODES ? state : LS_TEL_MAX_CODES - 1];
    LS_TEL_STORE(p, LS_TEL_LOAD(p) + 1);
}

/* `n` intents denied with DenyReason `reason` (also counts LS_TEL_C_DENIALS): a DENIAL record's
 * `count` (a run's repeats are written as one record). */
static inline void ls_tel_denial(ls_tel_block_t *t, uint32_t reason, uint64_t n) {
    uint64_t *p = &t->denials[reason < LS_TEL_MAX_CODES ? reason : LS_TEL_MAX_CODES - 1];
    LS_TEL_STORE(p, LS_TEL_LOAD(p) + n);
    ls_tel_add(t, LS_TEL_C_DENIALS, n);
}

/* One anomaly with Anomaly `code` (also counts LS_TEL_C_ANOMALIES). */
static inline void ls_tel_anomaly(ls_tel_block_t *t, uint32_t code) {
    uint64_t *p = &t->anomalies[code < LS_TEL_MAX_CODES ? code : LS_TEL_MAX_CODES - 1];
    LS_TEL_STORE(p, LS_TEL_LOAD(p) + 1);
    ls_tel_add(t, LS_TEL_C_ANOMALIES, 1);
}

/* Record one latency sample of histogram `hist` (LS_TEL_H_*), in ns. Bucket first, then count, so
 * a reader summing buckets never sees fewer samples than `count` minus one. */
static inline void ls_tel_record(ls_tel_block_t *t, int hist, int64_t ns) {
    ls_tel_hist_t *h = &t->hists[hist];
    uint64_t *b = &h->buckets[ls_tel_bucket_index(ns)];
    uint64_t v = ns > 0 ? (uint64_t)ns : 0;
    LS_TEL_STORE(b, LS_TEL_LOAD(b) + 1);
    LS_TEL_STORE(&h->count, LS_TEL_LOAD(&h->count) + 1);
    LS_TEL_STORE(&h->sum_ns, LS_TEL_LOAD(&h->sum_ns) + v);
    if (v > LS_TEL_LOAD(&h->max_ns))
        LS_TEL_STORE(&h->max_ns, v);
}

/* Register instrument `instrument` in position slot `slot` (at start, before any position update). */
static inline void ls_tel_instrument_register(ls_tel_block_t *t, uint32_t slot, uint32_t instrument,
                                              const char *symbol, uint8_t price_decimals, uint8_t qty_decimals) {
    ls_tel_position_t *e = &t->positions[slot];
    ls_tel_seq_write_begin(&e->seq);
    memset(e->symbol, 0, LS_TEL_NAME_LENGTH);
    strncpy(e->symbol, symbol, LS_TEL_NAME_LENGTH - 1);
    LS_TEL_STORE(&e->price_decimals, price_decimals);
    LS_TEL_STORE(&e->qty_decimals, qty_decimals);
    LS_TEL_STORE(&e->instrument, instrument);
    ls_tel_seq_write_end(&e->seq);
}

/* Feed health of the instrument in `slot` (one byte: no seqlock needed; issue 16, per-feed health). */
static inline void ls_tel_position_health(ls_tel_block_t *t, uint32_t slot, uint8_t healthy) {
    LS_TEL_STORE(&t->positions[slot].healthy, healthy);
}

/* Position of the instrument in `slot` after a fill or a mark change. */
static inline void ls_tel_position_set(ls_tel_block_t *t, uint32_t slot, int64_t net_qty, int64_t cost,
                                       int64_t realized_pnl, int64_t unrealized_pnl, int64_t mark_price,
                                       int64_t ts) {
    ls_tel_position_t *e = &t->positions[slot];
    ls_tel_seq_write_begin(&e->seq);
    LS_TEL_STORE(&e->net_qty, net_qty);
    LS_TEL_STORE(&e->cost, cost);
    LS_TEL_STORE(&e->realized_pnl, realized_pnl);
    LS_TEL_STORE(&e->unrealized_pnl, unrealized_pnl);
    LS_TEL_STORE(&e->mark_price, mark_price);
    LS_TEL_STORE(&e->ts, ts);
    ls_tel_seq_write_end(&e->seq);
}

/* The strategy owning the instrument in `slot` (index k < LS_TEL_MAX_STRATEGIES; -1: none). */
static inline void ls_tel_instrument_strategy(ls_tel_block_t *t, uint32_t slot, int k) {
    ls_tel_position_t *e = &t->positions[slot];
    ls_tel_seq_write_begin(&e->seq);
    LS_TEL_STORE(&e->strategy, (uint16_t)(k >= 0 && k < LS_TEL_MAX_STRATEGIES ? k + 1 : 0));
    ls_tel_seq_write_end(&e->seq);
}

/* Count n for the instrument in `slot`: which = LS_TEL_I_ORDERS_SENT | LS_TEL_I_FILLS | LS_TEL_I_DENIALS. */
static inline void ls_tel_instrument_count(ls_tel_block_t *t, uint32_t slot, int which, uint64_t n) {
    if (LS_UNLIKELY(slot >= LS_TEL_MAX_INSTRUMENTS))
        return;
    ls_tel_position_t *e = &t->positions[slot];
    uint64_t *c = which == LS_TEL_I_ORDERS_SENT ? &e->orders_sent : which == LS_TEL_I_FILLS ? &e->fills : &e->denials;
    LS_TEL_STORE(c, LS_TEL_LOAD(c) + n);
}

/* Register strategy k (at start). */
static inline void ls_tel_strategy_register(ls_tel_block_t *t, uint32_t k, const char *name) {
    if (LS_UNLIKELY(k >= LS_TEL_MAX_STRATEGIES))
        return;
    ls_tel_strategy_t *e = &t->strategies[k];
    memset(e->name, 0, LS_TEL_NAME_LENGTH);
    strncpy(e->name, name, LS_TEL_NAME_LENGTH - 1);
    __atomic_store_n(&e->in_use, (uint32_t)1, __ATOMIC_RELEASE);
}

/* Strategy k failed; `stopped`: its on_error policy took it out. */
static inline void ls_tel_strategy_error(ls_tel_block_t *t, uint32_t k, int stopped) {
    if (LS_UNLIKELY(k >= LS_TEL_MAX_STRATEGIES))
        return;
    ls_tel_strategy_t *e = &t->strategies[k];
    LS_TEL_STORE(&e->errors, LS_TEL_LOAD(&e->errors) + 1);
    if (stopped)
        LS_TEL_STORE(&e->stopped, (uint32_t)1);
}

/* Open-order snapshot: the harness mirrors its order table slot by slot (slot = its own table
 * index, < LS_TEL_MAX_ORDERS). A terminal order is removed with ls_tel_order_clear. */
static inline void ls_tel_order_set(ls_tel_block_t *t, uint32_t slot, uint32_t instrument, int64_t client_order_id,
                                    int64_t venue_order_id, uint8_t side, uint8_t state, int64_t price,
                                    int64_t qty, int64_t cum_qty, int64_t ts) {
    if (LS_UNLIKELY(slot >= LS_TEL_MAX_ORDERS))
        return;
    ls_tel_order_t *e = &t->orders[slot];
    ls_tel_seq_write_begin(&e->seq);
    LS_TEL_STORE(&e->client_order_id, client_order_id);
    LS_TEL_STORE(&e->venue_order_id, venue_order_id);
    LS_TEL_STORE(&e->price, price);
    LS_TEL_STORE(&e->qty, qty);
    LS_TEL_STORE(&e->cum_qty, cum_qty);
    LS_TEL_STORE(&e->ts, ts);
    LS_TEL_STORE(&e->instrument, instrument);
    LS_TEL_STORE(&e->side, side);
    LS_TEL_STORE(&e->state, state);
    ls_tel_seq_write_end(&e->seq);
}

static inline void ls_tel_order_clear(ls_tel_block_t *t, uint32_t slot) {
    if (LS_UNLIKELY(slot >= LS_TEL_MAX_ORDERS))
        return;
    ls_tel_order_t *e = &t->orders[slot];
    ls_tel_seq_write_begin(&e->seq);
    LS_TEL_STORE(&e->state, (uint8_t)0);
    ls_tel_seq_write_end(&e->seq);
}

/* Register ring `name` in ring slot `slot` (at start). */
static inline void ls_tel_ring_register(ls_tel_block_t *t, uint32_t slot, const char *name, uint64_t capacity) {
    ls_tel_ring_t *e = &t->rings[slot];
    memset(e->name, 0, LS_TEL_NAME_LENGTH);
    strncpy(e->name, name, LS_TEL_NAME_LENGTH - 1);
    /* store-release pairs with the reader's load-acquire of capacity: the name is complete */
    __atomic_store_n(&e->capacity, capacity, __ATOMIC_RELEASE);
}

/* Ring fill level (records written, not yet consumed) as the harness last saw it. */
static inline void ls_tel_ring_fill(ls_tel_block_t *t, uint32_t slot, uint64_t fill) {
    LS_TEL_STORE(&t->rings[slot].fill, fill);
}

/* A write to ring `slot` found it full (also counts LS_TEL_C_RING_OVERFLOWS). */
static inline void ls_tel_ring_overflow(ls_tel_block_t *t, uint32_t slot, uint64_t n) {
    uint64_t *p = &t->rings[slot].overflows;
    LS_TEL_STORE(p, LS_TEL_LOAD(p) + n);
    ls_tel_add(t, LS_TEL_C_RING_OVERFLOWS, n);
}

/* ==== process slots: every process writes only its own ===================================== */

/* Claim a free slot for process `pid` (compare-and-swap, safe against concurrent registrations).
 * Returns the slot or -1 when the table is full. A process registering again gets its old slot. */
static inline int ls_tel_proc_register(ls_tel_block_t *t, int64_t pid, const char *name, int64_t now_ns) {
    for (int i = 0; i < LS_TEL_MAX_PROCS; i++) {
        ls_tel_proc_t *p = &t->procs[i];
        int64_t expected = 0;
        if (__atomic_load_n(&p->pid, __ATOMIC_ACQUIRE) == pid
            || __atomic_compare_exchange_n(&p->pid, &expected, pid, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            memset(p->name, 0, LS_TEL_NAME_LENGTH);
            strncpy(p->name, name, LS_TEL_NAME_LENGTH - 1);
            LS_TEL_STORE(&p->errors, (uint64_t)0);
            LS_TEL_STORE(&p->lag_ns, (int64_t)0);
            LS_TEL_STORE(&p->started_ns, now_ns);
            /* store-release: a reader that sees this heartbeat sees the name and start time */
            __atomic_store_n(&p->heartbeat_ns, now_ns, __ATOMIC_RELEASE);
            return i;
        }
    }
    return -1;
}

static inline void ls_tel_proc_heartbeat(ls_tel_block_t *t, int slot, int64_t now_ns) {
    __atomic_store_n(&t->procs[slot].heartbeat_ns, now_ns, __ATOMIC_RELEASE);
}

static inline void ls_tel_proc_error(ls_tel_block_t *t, int slot, uint64_t n) {
    uint64_t *p = &t->procs[slot].errors;
    LS_TEL_STORE(p, LS_TEL_LOAD(p) + n);
}

static inline void ls_tel_proc_lag(ls_tel_block_t *t, int slot, int64_t lag_ns) {
    LS_TEL_STORE(&t->procs[slot].lag_ns, lag_ns);
}

/* Give the slot back (orderly exit). A crashed process's slot stays: readers see its pid dead. */
static inline void ls_tel_proc_unregister(ls_tel_block_t *t, int slot) {
    __atomic_store_n(&t->procs[slot].pid, (int64_t)0, __ATOMIC_RELEASE);
}

/* ==== reader API ============================================================================ */

/* Copy a position entry consistently (seqlock). 0 on success, -1 after `tries` torn reads. */
static inline int ls_tel_position_read(const ls_tel_block_t *t, uint32_t slot, ls_tel_position_t *out, int tries) {
    const ls_tel_position_t *e = &t->positions[slot];
    for (int i = 0; i < tries; i++) {
        uint64_t s = ls_tel_seq_read_begin(&e->seq);
        if (s & 1) {
            ls_cpu_relax();
            continue;
        }
        out->instrument = LS_TEL_LOAD(&e->instrument);
        out->price_decimals = LS_TEL_LOAD(&e->price_decimals);
        out->qty_decimals = LS_TEL_LOAD(&e->qty_decimals);
        out->net_qty = LS_TEL_LOAD(&e->net_qty);
        out->cost = LS_TEL_LOAD(&e->cost);
        out->realized_pnl = LS_TEL_LOAD(&e->realized_pnl);
        out->unrealized_pnl = LS_TEL_LOAD(&e->unrealized_pnl);
        out->mark_price = LS_TEL_LOAD(&e->mark_price);
        out->ts = LS_TEL_LOAD(&e->ts);
        out->strategy = LS_TEL_LOAD(&e->strategy);
        out->orders_sent = LS_TEL_LOAD(&e->orders_sent);
        out->fills = LS_TEL_LOAD(&e->fills);
        out->denials = LS_TEL_LOAD(&e->denials);
        for (int k = 0; k < LS_TEL_NAME_LENGTH; k++)
            out->symbol[k] = LS_TEL_LOAD(&e->symbol[k]);
        if (ls_tel_seq_read_ok(&e->seq, s)) {
            out->seq = s;
            out->symbol[LS_TEL_NAME_LENGTH - 1] = 0;
            return 0;
        }
    }
    return -1;
}

/* Copy an order entry consistently (seqlock). 0 on success, -1 after `tries` torn reads. */
static inline int ls_tel_order_read(const ls_tel_block_t *t, uint32_t slot, ls_tel_order_t *out, int tries) {
    const ls_tel_order_t *e = &t->orders[slot];
    for (int i = 0; i < tries; i++) {
        uint64_t s = ls_tel_seq_read_begin(&e->seq);
        if (s & 1) {
            ls_cpu_relax();
            continue;
        }
        out->client_order_id = LS_TEL_LOAD(&e->client_order_id);
        out->venue_order_id = LS_TEL_LOAD(&e->venue_order_id);
        out->price = LS_TEL_LOAD(&e->price);
        out->qty = LS_TEL_LOAD(&e->qty);
        out->cum_qty = LS_TEL_LOAD(&e->cum_qty);
        out->ts = LS_TEL_LOAD(&e->ts);
        out->instrument = LS_TEL_LOAD(&e->instrument);
        out->state = LS_TEL_LOAD(&e->state);
        out->side = LS_TEL_LOAD(&e->side);
        if (ls_tel_seq_read_ok(&e->seq, s)) {
            out->seq = s;
            return 0;
        }
    }
    return -1;
}

/* Copy a histogram (per-field atomic loads; see the header comment). */
static inline void ls_tel_hist_read(const ls_tel_block_t *t, int hist, ls_tel_hist_t *out) {
    const ls_tel_hist_t *h = &t->hists[hist];
    out->count = LS_TEL_LOAD(&h->count);
    out->sum_ns = LS_TEL_LOAD(&h->sum_ns);
    out->max_ns = LS_TEL_LOAD(&h->max_ns);
    for (int i = 0; i < LS_TEL_HIST_BUCKETS; i++)
        out->buckets[i] = LS_TEL_LOAD(&h->buckets[i]);
}

#endif
