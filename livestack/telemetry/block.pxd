# The contract of the shared-memory telemetry block: the C functions (static inline, nogil, for the
# harness's Cython code) and the TelemetryBlock extension type (create/attach/snapshot for Python).
#
# Harness usage (Cython):
#
#     from livestack.telemetry.block cimport TelemetryBlock, ls_tel_block_t, ls_tel_add, LS_TEL_C_EVENTS
#     blk = TelemetryBlock.attach(segment_name(session, "telemetry"))
#     cdef ls_tel_block_t *tel = blk.tel          # valid while blk is alive
#     with nogil:
#         ls_tel_add(tel, LS_TEL_C_EVENTS, 1)
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t

cdef extern from "ls_telemetry.h" nogil:
    const uint64_t LS_TEL_MAGIC
    enum: LS_TEL_LAYOUT_VERSION
    enum: LS_TEL_HEADER_SIZE
    enum: LS_TEL_NAME_LENGTH
    enum: LS_TEL_MAX_COUNTERS
    enum: LS_TEL_MAX_GAUGES
    enum: LS_TEL_MAX_CODES
    enum: LS_TEL_MAX_HISTS
    enum: LS_TEL_MAX_INSTRUMENTS
    enum: LS_TEL_MAX_ORDERS
    enum: LS_TEL_MAX_PROCS
    enum: LS_TEL_MAX_RINGS
    enum: LS_TEL_MAX_STRATEGIES
    enum:
        LS_TEL_I_ORDERS_SENT
        LS_TEL_I_FILLS
        LS_TEL_I_DENIALS
    enum: LS_TEL_HIST_BUCKETS
    enum: LS_TEL_HIST_SLOTS
    const long long LS_TEL_HIST_LOW_NS
    const long long LS_TEL_HIST_HIGH_NS

    enum:
        LS_TEL_C_EVENTS
        LS_TEL_C_MD_EVENTS
        LS_TEL_C_EXEC_EVENTS
        LS_TEL_C_CONTROL_EVENTS
        LS_TEL_C_TIMER_EVENTS
        LS_TEL_C_LOOPS
        LS_TEL_C_IDLE_LOOPS
        LS_TEL_C_ORDERS_NEW
        LS_TEL_C_ORDERS_CANCEL
        LS_TEL_C_ORDERS_REPLACE
        LS_TEL_C_FILLS
        LS_TEL_C_DENIALS
        LS_TEL_C_ANOMALIES
        LS_TEL_C_FEED_GAPS
        LS_TEL_C_FEED_STALE
        LS_TEL_C_FEED_DISCONNECTS
        LS_TEL_C_RING_OVERFLOWS
        LS_TEL_C_ERRORS
        LS_TEL_C_RECORDS
        LS_TEL_C_EVENTS_DROPPED
        LS_TEL_C_CONTROL_COMMANDS
        LS_TEL_C_CONTROL_ERRORS
        LS_TEL_N_COUNTERS
    enum:
        LS_TEL_G_HSEQ
        LS_TEL_G_TS_CORE
        LS_TEL_G_TRADING_STATE
        LS_TEL_G_KILL_LATCHED
        LS_TEL_G_SESSION_ACTIVE
        LS_TEL_G_CONFIG_VERSION
        LS_TEL_G_OPEN_ORDERS
        LS_TEL_G_WRITER_LAG_RECORDS
        LS_TEL_G_WRITER_LAG_NS
        LS_TEL_G_INSTRUMENTS
        LS_TEL_G_RSEQ
        LS_TEL_G_HARNESS_DONE
        LS_TEL_G_WRITER_DISK_STATE
        LS_TEL_G_WRITER_FREE_BYTES
        LS_TEL_G_RECORDS_LOST_DISK_FULL
        LS_TEL_N_GAUGES
    enum:
        LS_TEL_H_RING_WAIT
        LS_TEL_H_CORE
        LS_TEL_H_TICK_TO_TRADE
        LS_TEL_H_VENUE_RTT
        LS_TEL_N_HISTS

    ctypedef struct ls_tel_hist_t:
        uint64_t count
        uint64_t sum_ns
        uint64_t max_ns
        uint64_t buckets[816]
    ctypedef struct ls_tel_position_t:
        uint64_t seq
        uint32_t instrument
        uint8_t price_decimals
        uint8_t qty_decimals
        uint16_t strategy
        int64_t net_qty
        int64_t cost
        int64_t realized_pnl
        int64_t unrealized_pnl
        int64_t mark_price
        int64_t ts
        char symbol[32]
        uint64_t orders_sent
        uint64_t fills
        uint64_t denials
        uint8_t healthy
    ctypedef struct ls_tel_strategy_t:
        uint64_t errors
        uint32_t stopped
        uint32_t in_use
        char name[32]
    ctypedef struct ls_tel_order_t:
        uint64_t seq
        int64_t client_order_id
        int64_t venue_order_id
        int64_t price
        int64_t qty
        int64_t cum_qty
        int64_t ts
        uint32_t instrument
        uint8_t state
        uint8_t side
    ctypedef struct ls_tel_proc_t:
        int64_t pid
        int64_t started_ns
        int64_t heartbeat_ns
        uint64_t errors
        int64_t lag_ns
        char name[32]
    ctypedef struct ls_tel_ring_t:
        uint64_t capacity
        uint64_t fill
        uint64_t overflows
        char name[32]
    ctypedef struct ls_tel_block_t:
        uint64_t magic
        uint32_t layout_version
        uint32_t schema_version
        uint64_t size
        int64_t creator_pid
        int64_t created_ns
        uint32_t n_counters, n_gauges, n_hists, n_buckets
        uint32_t max_codes, max_instruments, max_orders, max_procs, max_rings, max_strategies
        uint64_t counters[64]
        int64_t gauges[32]
        uint64_t order_states[64]
        uint64_t denials[64]
        uint64_t anomalies[64]
        ls_tel_hist_t hists[8]
        ls_tel_position_t positions[64]
        ls_tel_order_t orders[1024]
        ls_tel_proc_t procs[32]
        ls_tel_ring_t rings[32]
        ls_tel_strategy_t strategies[8]

    size_t ls_tel_segment_size()
    void ls_tel_init(ls_tel_block_t *t, uint32_t schema_version, int64_t pid, int64_t now_ns)
    const char *ls_tel_counter_name(int i)
    const char *ls_tel_counter_doc(int i)
    const char *ls_tel_gauge_name(int i)
    const char *ls_tel_gauge_doc(int i)
    const char *ls_tel_hist_name(int i)
    const char *ls_tel_hist_doc(int i)
    uint32_t ls_tel_bucket_index(int64_t ns)
    int64_t ls_tel_bucket_upper(uint32_t i)

    # writer (harness)
    void ls_tel_add(ls_tel_block_t *t, int counter, uint64_t n)
    void ls_tel_set(ls_tel_block_t *t, int gauge, int64_t v)
    int64_t ls_tel_get(const ls_tel_block_t *t, int gauge)
    void ls_tel_order_state_count(ls_tel_block_t *t, uint32_t state)
    void ls_tel_denial(ls_tel_block_t *t, uint32_t reason, uint64_t n)
    void ls_tel_anomaly(ls_tel_block_t *t, uint32_t code)
    void ls_tel_record(ls_tel_block_t *t, int hist, int64_t ns)
    void ls_tel_instrument_register(ls_tel_block_t *t, uint32_t slot, uint32_t instrument, const char *symbol,
                                    uint8_t price_decimals, uint8_t qty_decimals)
    void ls_tel_position_health(ls_tel_block_t *t, uint32_t slot, uint8_t healthy)
    void ls_tel_position_set(ls_tel_block_t *t, uint32_t slot, int64_t net_qty, int64_t cost,
                             int64_t realized_pnl, int64_t unrealized_pnl, int64_t mark_price, int64_t ts)
    void ls_tel_order_set(ls_tel_block_t *t, uint32_t slot, uint32_t instrument, int64_t client_order_id,
                          int64_t venue_order_id, uint8_t side, uint8_t state, int64_t price, int64_t qty,
                          int64_t cum_qty, int64_t ts)
    void ls_tel_order_clear(ls_tel_block_t *t, uint32_t slot)
    void ls_tel_instrument_strategy(ls_tel_block_t *t, uint32_t slot, int k)
    void ls_tel_instrument_count(ls_tel_block_t *t, uint32_t slot, int which, uint64_t n)
    void ls_tel_strategy_register(ls_tel_block_t *t, uint32_t k, const char *name)
    void ls_tel_strategy_error(ls_tel_block_t *t, uint32_t k, int stopped)
    void ls_tel_ring_register(ls_tel_block_t *t, uint32_t slot, const char *name, uint64_t capacity)
    void ls_tel_ring_fill(ls_tel_block_t *t, uint32_t slot, uint64_t fill)
    void ls_tel_ring_overflow(ls_tel_block_t *t, uint32_t slot, uint64_t n)
    # process slots (each process its own)
    int ls_tel_proc_register(ls_tel_block_t *t, int64_t pid, const char *name, int64_t now_ns)
    void ls_tel_proc_heartbeat(ls_tel_block_t *t, int slot, int64_t now_ns)
    void ls_tel_proc_error(ls_tel_block_t *t, int slot, uint64_t n)
    void ls_tel_proc_lag(ls_tel_block_t *t, int slot, int64_t lag_ns)
    void ls_tel_proc_unregister(ls_tel_block_t *t, int slot)
    # reader
    int ls_tel_position_read(const ls_tel_block_t *t, uint32_t slot, ls_tel_position_t *out, int tries)
    int ls_tel_order_read(const ls_tel_block_t *t, uint32_t slot, ls_tel_order_t *out, int tries)
    void ls_tel_hist_read(const ls_tel_block_t *t, int hist, ls_tel_hist_t *out)


cdef class TelemetryBlock:
    cdef ls_tel_block_t *tel
    cdef object _seg              # livestack.ipc.shm.Segment (the one shm lifecycle, shared with rings)
    cdef readonly str name
    cdef readonly bint owner
    cdef int _check(self) except -1
