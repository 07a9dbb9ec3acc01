# cython: language_level=3
"""The Runtime Execution Harness loop: busy-polls the input rings in a fixed order, journals every
consumed input, runs the Core Runtime on it, and writes orders, records, replies and events.

Per input (the whole path is nogil, allocation-free and does no I/O):

    input ring ──peek──▶ hseq += 1 ──▶ journal copy ──▶ records ring (flag JOURNAL, seq = ++rseq)
                                   └─▶ core.process(rec, hseq) ──▶ ORDER_CMD ──▶ orders ring (+ records)
                                                                └─▶ records ──▶ records ring (seq = ++rseq)
                                                                     CONTROL_REPLY ──▶ reply ring
                                                                     FILL/TRADING_STATE/ANOMALY/ORDER_STATE ──▶ events ring
    release input

Poll order per pass: every venue's execution events (venue 0, 1, ... in config order), control
commands, then every feed's market-data ring (feed 0, 1, ...), at most ``batch`` records from each
ring. The cap makes the round fair: a busy feed or venue gets at most ``batch`` inputs before every
other ring is looked at, so none starves another (and venue feedback and commands are never
behind more than one round of market data). Timer ticks are injected when due (they are inputs
like any other: journaled, stamped). The interleaving is whatever the rings held; the journal
records it in the order consumed, so a replay of the journal is bit-identical whatever the number
of feeds and venues.

Several venues (issue 16): each ORDER_CMD goes to the orders ring of its instrument's venue (a
small instrument -> venue table given at construction, ``routes``; unknown instruments go to venue
0). The core is unchanged: it sees one order budget, the free space of the fullest orders ring, so
no orders ring can fill mid-dispatch.

Failure policy (ARCHITECTURE.md): the records ring must never drop. Before consuming an input the
harness checks it has room for the journal entry and the core's worst-case outputs; if not, it
consumes nothing (inputs stay in their rings), counts it, and once there is room for it injects a
TRADING_DISABLE command so trading goes HALTED. The orders ring never fills mid-dispatch: the core
is told its free space (``orders_budget``) and denies intents beyond it with BACKPRESSURE.

Records disk (issue 12.6): the writer publishes its disk state in the telemetry block
(``writer_disk_state``: 1 low, 2 halt, 3 stopped writing). The harness reads it with its gauges
(once a millisecond, a load from shared memory, no I/O) and, at the next pass, injects a journaled
DISK_HALT control input carrying the level: the core goes REDUCING at 1 and cancels every resting
order and goes HALTED at 2 or 3, with an ANOMALY DISK_FULL. Records made after the writer stopped
writing are consumed and counted by the writer (``records_lost_disk_full``), so the harness never
blocks on a full records ring; it keeps processing venue answers, halted.
"""

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from libc.string cimport memcpy, memset
from posix.time cimport clock_gettime, timespec, CLOCK_REALTIME, CLOCK_MONOTONIC

from livestack.ipc.ring cimport (Ring, ls_ring_t, ls_ring_peek, ls_ring_release, ls_ring_write,
                                 ls_ring_free, ls_ring_claim, ls_ring_commit, ls_ring_slot, ls_cpu_relax,
                                 ls_load_acquire_u64)
from livestack.core.core cimport Core
from livestack.core.ctx cimport (ls_ctx_inst, LS_INST_POSITION, LS_INST_COST, LS_INST_REALIZED,
                                 LS_INST_UNREALIZED, LS_INST_HEALTHY)
from livestack.core.positions cimport reference_price
from livestack.schema.records cimport *
from livestack.telemetry.block cimport *

cdef extern from *:
    """
    #include <signal.h>
    #include <string.h>
    static volatile sig_atomic_t ls_harness_stop_requested = 0;
    static void ls_harness_on_signal(int sig) { (void)sig; ls_harness_stop_requested = 1; }
    static void ls_harness_install_signals(void) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = ls_harness_on_signal;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
    }
    """
    volatile int ls_harness_stop_requested
    void ls_harness_install_signals() nogil

cdef enum:
    SOURCE_MD = 1
    SOURCE_EXEC = 2
    SOURCE_CMD = 3
    SOURCE_TIMER = 4
STATES = {HS_STARTING: "starting", HS_RUNNING: "running", HS_DRAINING: "draining", HS_STOPPED: "stopped"}

cdef inline int64_t realtime_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return ts.tv_sec * 1000000000 + ts.tv_nsec

DEF RTT_MASK = 4095       # venue round-trip table: client_order_id & RTT_MASK -> dispatch time
DEF GAUGE_PERIOD_NS = 1000000  # ring fill levels, gauges and heartbeat: once a millisecond


def install_signal_handlers():
    """SIGTERM/SIGINT set a C flag the nogil loop polls (a Python handler would never run there)."""
    ls_harness_install_signals()


def stop_requested():
    return bool(ls_harness_stop_requested)


def request_stop():
    global ls_harness_stop_requested
    ls_harness_stop_requested = 1


cdef class Harness:
    """Runs one Core over a session's rings. Build it in the harness process; call :meth:`run`.

    Parameters
    ----------
    core : livestack.core.Core
    md_rings : list of Ring            market data in (one per feed), 64-byte slots
    exec_ring : Ring or list of Ring   execution events in (128), one per venue
    cmd_ring : Ring                    control commands (128) in
    orders_ring : Ring or list of Ring ORDER_CMD out (64), one per venue (same order as exec_ring)
    records_ring : Ring                journal + every core output out (128), to the writer
    reply_ring, events_ring : Ring     CONTROL_REPLY out; FILL/TRADING_STATE/ANOMALY/ORDER_STATE out (lossy)
    timer_interval_ns : int            timer tick period
    batch : int                        max records taken from one ring before polling the next
    records_reserve : int              free records slots required before consuming an input
    routes : dict                      instrument id -> venue index (several venues; absent: venue 0)
    """

    def __init__(self, Core core, list md_rings, exec_ring, Ring cmd_ring, orders_ring,
                 Ring records_ring, Ring reply_ring=None, Ring events_ring=None, *,
                 int64_t timer_interval_ns=100_000_000, uint64_t batch=64, uint64_t records_reserve=0,
                 telemetry=None, routes=None):
        if not md_rings or len(md_rings) > MAX_MD_RINGS:
            raise ValueError(f"harness: 1..{MAX_MD_RINGS} market-data rings, got {len(md_rings)}")
        if timer_interval_ns <= 0 or batch < 1:
            raise ValueError("harness: timer_interval_ns > 0 and batch >= 1")
        # one venue: exec_ring and orders_ring are Rings; several: lists of the same length
        exec_rings = list(exec_ring) if isinstance(exec_ring, (list, tuple)) else [exec_ring]
        orders_rings = list(orders_ring) if isinstance(orders_ring, (list, tuple)) else [orders_ring]
        if not 1 <= len(exec_rings) <= MAX_VENUES or len(orders_rings) != len(exec_rings):
            raise ValueError(f"harness: 1..{MAX_VENUES} venues, each with one exec and one orders ring; got "
                             f"{len(exec_rings)} exec and {len(orders_rings)} orders rings")
        self.core = core
        self._rings = [md_rings, exec_rings, cmd_ring, orders_rings, records_ring, reply_ring, events_ring]
        self.n_md = len(md_rings)
        cdef Ring r
        for i, r in enumerate(md_rings):
            if r.slot_size != 64:
                raise ValueError(f"harness: market-data ring {r.name} must have 64-byte slots")
            self.md[i] = r.ring
        checks = [(x, 128, "exec") for x in exec_rings] + [(x, 64, "orders") for x in orders_rings]
        for r, size, what in checks + [(cmd_ring, 128, "cmd"), (records_ring, 128, "records")]:
            if r.slot_size != size:
                raise ValueError(f"harness: {what} ring {r.name} must have {size}-byte slots")
        self.n_venues = len(exec_rings)
        for i in range(self.n_venues):
            self.exec_rings[i] = (<Ring>exec_rings[i]).ring
            self.orders_rings[i] = (<Ring>orders_rings[i]).ring
        routes = dict(routes or {})
        if len(routes) > MAX_ROUTES or any(not 0 <= v < self.n_venues for v in routes.values()):
            raise ValueError(f"harness: routes map at most {MAX_ROUTES} instrument ids to venues 0..{self.n_venues - 1}")
        self.n_routes = 0
        for inst_id, v in sorted(routes.items()):
            self.route_inst[self.n_routes] = inst_id
            self.route_venue[self.n_routes] = v
            self.n_routes += 1
        self.exec_ring = self.exec_rings[0]
        self.cmd_ring = cmd_ring.ring
        self.orders_ring = self.orders_rings[0]
        self.records_ring = records_ring.ring
        self.reply_ring = (<Ring>reply_ring).ring if reply_ring is not None else NULL
        self.events_ring = (<Ring>events_ring).ring if events_ring is not None else NULL
        self.timer_interval_ns = timer_interval_ns
        self.next_timer_ns = 0
        self.batch = batch
        self.records_reserve = records_reserve or (1 + core.cap_out_records + core.cap_out_orders)
        if self.records_reserve >= records_ring.capacity:
            raise ValueError(f"harness: records ring {records_ring.name} ({records_ring.capacity} slots) is smaller "
                             f"than the worst case of one input ({self.records_reserve})")
        self.hseq = 0
        self.rseq = 0
        self.rpend = 0
        self.state = HS_STARTING
        self.take_md = True
        self.halted_for_records = False
        self.disk_level = 0
        self.disk_pending = 0
        memset(&self.c, 0, sizeof(self.c))
        memset(self.rtt_coid, 0, sizeof(self.rtt_coid))
        self.telemetry = telemetry
        self.tel = NULL
        self.tel_proc = -1
        self.next_gauge_ns = 0
        self.t_chain = 0
        self.n_inst = 0
        self.n_tel_rings = 0
        if telemetry is not None:
            self._attach_telemetry(telemetry, list(md_rings) + exec_rings + [cmd_ring] + orders_rings
                                   + [records_ring, reply_ring, events_ring])

    def _attach_telemetry(self, TelemetryBlock telemetry, rings):
        import os
        self.tel = telemetry.tel
        cdef Ring r
        for r in [x for x in rings if x is not None][:MAX_TEL_RINGS]:
            # the slot's name: the segment name without "ls.<session>." (md.spot, orders.a, ...)
            ls_tel_ring_register(self.tel, self.n_tel_rings, r.name.split(".", 2)[2].encode()[:31], r.capacity)
            self.tel_rings[self.n_tel_rings] = r.ring
            self.n_tel_rings += 1
        for i, inst in enumerate(self.core._instruments[:64]):
            ls_tel_instrument_register(self.tel, i, inst.id, inst.symbol.encode()[:31], inst.price_decimals,
                                       inst.qty_decimals)
            self.inst_ids[i] = inst.id
            self.n_inst = i + 1
        ls_tel_set(self.tel, LS_TEL_G_INSTRUMENTS, self.n_inst)
        from livestack.strategies.telemetry import register_strategies
        register_strategies(telemetry, self.core)   # per-strategy figures: names, instrument owners
        self.tel_proc = ls_tel_proc_register(self.tel, os.getpid(), b"harness", realtime_ns())

    cdef int venue_of(self, uint32_t instrument) noexcept nogil:
        """The venue index of ``instrument`` (a linear scan of <= 64 ids: once per dispatched order)."""
        cdef int i
        for i in range(self.n_routes):
            if self.route_inst[i] == instrument:
                return self.route_venue[i]
        return 0

    cdef int64_t orders_room(self) noexcept nogil:
        """The core's order budget: the free slots of the fullest orders ring."""
        cdef int64_t room = <int64_t>ls_ring_free(self.orders_rings[0], self.orders_rings[0].capacity)
        cdef int64_t f
        cdef int i
        for i in range(1, self.n_venues):
            f = <int64_t>ls_ring_free(self.orders_rings[i], self.orders_rings[i].capacity)
            if f < room:
                room = f
        return room

    # ---------------------------------------------------------------------------------------
    cdef void journal(self, const uint8_t *rec, uint32_t slot_size) noexcept nogil:
        # Written, not committed: the journal entry and every output of the input become visible
        # to the writer in ONE commit (emit_outputs), before any order leaves. A harness killed
        # in between leaves either the input with all it caused, or nothing (the input is then
        # still in its ring: a restarted harness takes it again). (issue 14: crash-only recovery)
        cdef uint64_t pos
        ls_ring_claim(self.records_ring, self.rpend + 1, &pos)  # room guaranteed by the reserve check
        pos += self.rpend
        self.rpend += 1
        cdef uint8_t *slot = ls_ring_slot(self.records_ring, pos)
        memcpy(slot, rec, slot_size)
        if slot_size < 128:
            memset(slot + slot_size, 0, 128 - slot_size)
        cdef ls_hdr_t *h = <ls_hdr_t *>slot
        h.flags = h.flags | LS_RECORD_FLAG_JOURNAL
        self.rseq += 1
        h.seq = self.rseq

    cdef void emit_outputs(self, const uint8_t *rec, int64_t t_in, int64_t now) noexcept nogil:
        cdef uint64_t i, pos
        cdef uint8_t *slot
        cdef const uint8_t *o
        cdef ls_hdr_t *h
        cdef uint16_t kind
        # dispatches: orders ring (room promised by orders_budget) and a copy on the records ring
        cdef ls_tel_block_t *tel = self.tel
        cdef const ls_order_cmd_t *oc
        cdef uint64_t j, pos0, n_ord = self.core.n_out_orders, n_rec = self.core.n_out_records
        ls_ring_claim(self.records_ring, 1, &pos0)
        pos0 += self.rpend      # the journal entry (uncommitted) comes first
        # 1. every output into the records ring, uncommitted (room: the reserve check)
        for i in range(n_ord):
            # the records-ring copy: it gets the record-stream seq, and the venue sees the same
            # 64 bytes (so a dispatch can be matched to its record by seq)
            slot = ls_ring_slot(self.records_ring, pos0 + i)
            memcpy(slot, self.core.out_orders + i * 64, 64)
            memset(slot + 64, 0, 64)
            self.rseq += 1
            (<ls_hdr_t *>slot).seq = self.rseq
        for i in range(n_rec):
            slot = ls_ring_slot(self.records_ring, pos0 + n_ord + i)
            memcpy(slot, self.core.out_records + i * 128, 128)
            self.rseq += 1
            (<ls_hdr_t *>slot).seq = self.rseq
        # 2. one commit: the input and everything it caused are recorded together
        ls_ring_commit(self.records_ring, self.rpend + n_ord + n_rec)
        self.rpend = 0
        # 3. only now do orders leave (a crash before this: recorded, never sent -> UNKNOWN,
        #    resolved by the venue's status answer after a restart)
        for i in range(n_ord):
            slot = ls_ring_slot(self.records_ring, pos0 + i)
            o = slot
            if ls_ring_write(self.orders_rings[self.venue_of((<const ls_hdr_t *>o).instrument)], slot) != 0:
                self.c.orders_ring_full += 1  # cannot happen unless the budget was wrong
            self.c.orders_sent += 1
            if tel != NULL:
                oc = <const ls_order_cmd_t *>o
                if oc.cmd == LS_ORDER_CMD_TYPE_NEW:
                    ls_tel_add(tel, LS_TEL_C_ORDERS_NEW, 1)
                elif oc.cmd == LS_ORDER_CMD_TYPE_CANCEL:
                    ls_tel_add(tel, LS_TEL_C_ORDERS_CANCEL, 1)
                else:
                    ls_tel_add(tel, LS_TEL_C_ORDERS_REPLACE, 1)
                ls_tel_instrument_count(tel, self._inst_slot(oc.instrument), LS_TEL_I_ORDERS_SENT, 1)
                self.rtt_coid[oc.client_order_id & RTT_MASK] = oc.client_order_id
                self.rtt_ts[oc.client_order_id & RTT_MASK] = now
                if t_in and i == 0:
                    # tick-to-trade inside the stack: input's receive stamp -> order in the ring
                    ls_tel_record(tel, LS_TEL_H_TICK_TO_TRADE, now - (<const ls_hdr_t *>rec).ts)
        for i in range(n_rec):
            slot = ls_ring_slot(self.records_ring, pos0 + n_ord + i)
            h = <ls_hdr_t *>slot
            kind = h.kind
            if tel != NULL:
                self._tally_record(slot, now)
            if kind == LS_RECORD_KIND_CONTROL_REPLY:
                if self.reply_ring == NULL or ls_ring_write(self.reply_ring, slot) != 0:
                    self.c.replies_dropped += 1
            elif (kind == LS_RECORD_KIND_FILL or kind == LS_RECORD_KIND_TRADING_STATE
                  or kind == LS_RECORD_KIND_ANOMALY or kind == LS_RECORD_KIND_ORDER_STATE
                  or kind == LS_RECORD_KIND_ANOMALY_TEXT):
                if self.events_ring != NULL and ls_ring_write(self.events_ring, slot) != 0:
                    self.c.events_dropped += 1
        self.c.records_out += self.core.n_out_orders + self.core.n_out_records
        if tel != NULL:
            ls_tel_add(tel, LS_TEL_C_RECORDS, 1 + self.core.n_out_orders + self.core.n_out_records)
        self.core.clear_outputs()

    cdef void _tally_record(self, const uint8_t *slot, int64_t now) noexcept nogil:
        cdef ls_tel_block_t *tel = self.tel
        cdef const ls_hdr_t *h = <const ls_hdr_t *>slot
        cdef const ls_order_state_t *os_
        cdef const ls_position_t *p
        cdef int k
        cdef uint16_t kind = h.kind
        if kind == LS_RECORD_KIND_FILL:
            ls_tel_add(tel, LS_TEL_C_FILLS, 1)
            ls_tel_instrument_count(tel, self._inst_slot(h.instrument), LS_TEL_I_FILLS, 1)
        elif kind == LS_RECORD_KIND_DENIAL:
            ls_tel_denial(tel, (<const ls_denial_t *>slot).reason, (<const ls_denial_t *>slot).count)
            ls_tel_instrument_count(tel, self._inst_slot(h.instrument), LS_TEL_I_DENIALS,
                                    (<const ls_denial_t *>slot).count)
        elif kind == LS_RECORD_KIND_ANOMALY_TEXT:
            ls_tel_strategy_error(tel, (<const ls_anomaly_text_t *>slot).strategy,
                                  (<const ls_anomaly_text_t *>slot).action != LS_ERROR_ACTION_CONTINUE)
        elif kind == LS_RECORD_KIND_ANOMALY:
            ls_tel_anomaly(tel, (<const ls_anomaly_t *>slot).code)
        elif kind == LS_RECORD_KIND_ORDER_STATE:
            os_ = <const ls_order_state_t *>slot
            ls_tel_order_state_count(tel, os_.state)
            k = <int>(os_.client_order_id & (LS_TEL_MAX_ORDERS - 1))
            if (os_.state == LS_ORDER_STATE_FILLED or os_.state == LS_ORDER_STATE_CANCELED
                    or os_.state == LS_ORDER_STATE_REJECTED or os_.state == LS_ORDER_STATE_EXPIRED
                    or os_.state == LS_ORDER_STATE_REPLACED):
                ls_tel_order_clear(tel, k)
            else:
                ls_tel_order_set(tel, k, h.instrument, os_.client_order_id, os_.venue_order_id, os_.side,
                                 os_.state, os_.price, os_.qty, os_.cum_qty, h.ts)
            if os_.exec_type != 0 and self.rtt_coid[os_.client_order_id & RTT_MASK] == os_.client_order_id:
                # first venue answer to a dispatch of ours: venue round trip
                ls_tel_record(tel, LS_TEL_H_VENUE_RTT, now - self.rtt_ts[os_.client_order_id & RTT_MASK])
                self.rtt_coid[os_.client_order_id & RTT_MASK] = 0
        elif kind == LS_RECORD_KIND_POSITION:
            p = <const ls_position_t *>slot
            for k in range(self.n_inst):
                if self.inst_ids[k] == h.instrument:
                    ls_tel_position_set(tel, k, p.net_qty, p.cost, p.realized_pnl, p.unrealized_pnl,
                                        reference_price(ls_ctx_inst(self.core.ctx_words, k)), h.ts)
                    break

    cdef uint32_t _inst_slot(self, uint32_t instrument) noexcept nogil:
        """Telemetry slot of an instrument id (LS_TEL_MAX_INSTRUMENTS when it has none)."""
        cdef int k
        for k in range(self.n_inst):
            if self.inst_ids[k] == instrument:
                return k
        return LS_TEL_MAX_INSTRUMENTS

    cdef void tally(self, const uint8_t *rec, int source, int64_t t_in, int64_t t_core0,
                    int64_t t_core1) noexcept nogil:
        cdef ls_tel_block_t *tel = self.tel
        cdef const ls_hdr_t *h = <const ls_hdr_t *>rec
        cdef const ls_md_status_t *st
        ls_tel_add(tel, LS_TEL_C_EVENTS, 1)
        ls_tel_record(tel, LS_TEL_H_CORE, t_core1 - t_core0)
        if t_in:
            ls_tel_record(tel, LS_TEL_H_RING_WAIT, t_in - h.ts)
        if source == SOURCE_MD:
            ls_tel_add(tel, LS_TEL_C_MD_EVENTS, 1)
            if h.kind == LS_RECORD_KIND_MD_STATUS:
                st = <const ls_md_status_t *>rec
                if st.status == LS_FEED_STATUS_GAP:
                    ls_tel_add(tel, LS_TEL_C_FEED_GAPS, 1)
                elif st.status == LS_FEED_STATUS_STALE:
                    ls_tel_add(tel, LS_TEL_C_FEED_STALE, 1)
                elif st.status == LS_FEED_STATUS_DISCONNECTED:
                    ls_tel_add(tel, LS_TEL_C_FEED_DISCONNECTS, 1)
        elif source == SOURCE_EXEC:
            ls_tel_add(tel, LS_TEL_C_EXEC_EVENTS, 1)
        elif source == SOURCE_CMD:
            ls_tel_add(tel, LS_TEL_C_CONTROL_EVENTS, 1)
        else:
            ls_tel_add(tel, LS_TEL_C_TIMER_EVENTS, 1)

    cdef void gauges(self, int64_t now) noexcept nogil:
        """Once a millisecond: gauges, ring fill levels, heartbeat."""
        cdef ls_tel_block_t *tel = self.tel
        cdef int i
        cdef int64_t *inst
        if tel == NULL:
            return
        # positions with their mark (the core's reference price: mid, else last trade): the mark
        # moves with every book change, not only with fills (POSITION records)
        for i in range(self.n_inst):
            inst = ls_ctx_inst(self.core.ctx_words, i)
            ls_tel_position_set(tel, i, inst[LS_INST_POSITION], inst[LS_INST_COST], inst[LS_INST_REALIZED],
                                inst[LS_INST_UNREALIZED], reference_price(inst), now)
            ls_tel_position_health(tel, i, inst[LS_INST_HEALTHY] != 0)  # per feed: ctl status, /metrics
        ls_tel_set(tel, LS_TEL_G_HSEQ, <int64_t>self.hseq)
        ls_tel_set(tel, LS_TEL_G_RSEQ, <int64_t>self.rseq)
        cdef int64_t disk = ls_tel_get(tel, LS_TEL_G_WRITER_DISK_STATE)
        if disk > self.disk_level:  # the writer's disk got worse: relay it at the next pass
            self.disk_level = disk
            self.disk_pending = disk
        elif disk < self.disk_level:  # room again (a restarted writer): react to the next worsening
            self.disk_level = disk
        ls_tel_set(tel, LS_TEL_G_TRADING_STATE, self.core.trading_state)
        ls_tel_set(tel, LS_TEL_G_KILL_LATCHED, self.core.kill_latched)
        ls_tel_set(tel, LS_TEL_G_SESSION_ACTIVE, self.core.session_active)
        ls_tel_set(tel, LS_TEL_G_OPEN_ORDERS, self.core.open_orders)
        cdef uint64_t rhead = ls_load_acquire_u64(&self.records_ring.head)
        ls_tel_set(tel, LS_TEL_G_WRITER_LAG_RECORDS, <int64_t>(self.records_ring.tail - rhead))
        # the oldest record the writer has not released yet: how far behind the file is
        ls_tel_set(tel, LS_TEL_G_WRITER_LAG_NS, now - (<ls_hdr_t *>ls_ring_slot(self.records_ring, rhead)).ts
                   if self.records_ring.tail != rhead else 0)
        for i in range(self.n_tel_rings):
            ls_tel_ring_fill(tel, i, self.tel_rings[i].tail - self.tel_rings[i].head)
        if self.tel_proc >= 0:
            ls_tel_proc_heartbeat(tel, self.tel_proc, now)

    cdef void consume(self, ls_ring_t *ring, const uint8_t *rec, int source) noexcept nogil:
        """Journal, process and emit one input that sits in ``ring`` (released here)."""
        # clock reads with telemetry only: pickup (= start of core work; the journal copy between
        # them is a few ns) and end of core work (= dispatch time). An input that follows one that
        # emitted nothing, in the same pass, starts at that one's end: one clock read per input
        # instead of two (at 5M inputs/s a read is 10-20% of the budget); its pickup and core time
        # then include the few ns of the previous release and this peek.
        cdef int64_t t0 = 0, t1 = 0
        cdef bint quiet
        if self.tel != NULL:
            t0 = self.t_chain if self.t_chain else realtime_ns()
        self.hseq += 1
        self.journal(rec, ring.slot_size)
        self.core.orders_budget = self.orders_room()
        self.core.process(rec, self.hseq)
        quiet = self.core.n_out_orders == 0 and self.core.n_out_records == 0
        if self.tel != NULL:
            t1 = realtime_ns()
            self.tally(rec, source, t0, t0, t1)
        self.emit_outputs(rec, t0, t1)
        # released last: the slot stays ours while rec is read, and a producer that sees its
        # record released knows everything the record caused is already in the output rings
        # (the simulated venue's virtual-time lock step relies on it)
        ls_ring_release(ring, 1)
        self.c.inputs += 1
        self.t_chain = t1 if quiet else 0

    cdef void inject(self, const uint8_t *rec) noexcept nogil:
        """Process a record the harness made itself (timer tick, halt on records backpressure)."""
        cdef int64_t t0 = 0, t1 = 0
        if self.tel != NULL:
            t0 = realtime_ns()
        self.hseq += 1
        self.journal(rec, 128)
        self.core.orders_budget = self.orders_room()
        self.core.process(rec, self.hseq)
        if self.tel != NULL:
            t1 = realtime_ns()
            self.tally(rec, SOURCE_TIMER, 0, t0, t1)
        self.emit_outputs(rec, 0, t1)
        self.c.inputs += 1
        self.t_chain = 0

    cdef int poll_once(self) noexcept nogil:
        """One pass over every input ring; returns the number of inputs consumed."""
        self.t_chain = 0  # clock reads chain within a pass only (see consume)
        if self.tel != NULL:
            ls_tel_add(self.tel, LS_TEL_C_LOOPS, 1)
        cdef int done = 0
        cdef uint64_t k
        cdef int i
        cdef const uint8_t *p
        cdef int64_t now
        cdef ls_timer_t *t
        cdef ls_control_cmd_t *cc
        self.c.loops += 1
        if ls_ring_free(self.records_ring, self.records_reserve) < self.records_reserve:
            self.c.records_backpressure += 1
            self.halted_for_records = True
            return 0
        if self.halted_for_records:
            # first pass with room again after a backpressure episode: a journaled RECORDS_HALT
            # input makes the core halt trading and record it (ANOMALY RECORDS_FULL + TRADING_STATE
            # HALTED, cause 3); an operator must re-enable trading. Inputs waited in their rings
            # meanwhile: nothing was dropped, and a replay of the journal sees the same halt.
            self.halted_for_records = False
            memset(self.scratch, 0, 128)
            cc = <ls_control_cmd_t *>self.scratch
            cc.kind = LS_RECORD_KIND_CONTROL_CMD
            cc.version = LS_CONTROL_CMD_VERSION
            cc.ts = realtime_ns()
            cc.cmd = LS_CONTROL_CMD_TYPE_RECORDS_HALT
            self.inject(self.scratch)
            done += 1
        if self.disk_pending:
            # the record writer's disk is low or full: a journaled DISK_HALT input (arg0 = level,
            # arg1 = free bytes) makes the core go REDUCING, or cancel all and HALT; replay agrees
            memset(self.scratch, 0, 128)
            cc = <ls_control_cmd_t *>self.scratch
            cc.kind = LS_RECORD_KIND_CONTROL_CMD
            cc.version = LS_CONTROL_CMD_VERSION
            cc.ts = realtime_ns()
            cc.cmd = LS_CONTROL_CMD_TYPE_DISK_HALT
            cc.arg0 = self.disk_pending
            cc.arg1 = ls_tel_get(self.tel, LS_TEL_G_WRITER_FREE_BYTES) if self.tel != NULL else 0
            self.disk_pending = 0
            self.inject(self.scratch)
            self.c.disk_halts += 1
            done += 1
        # 1. execution events, venue by venue
        for i in range(self.n_venues):
            k = 0
            while k < self.batch:
                p = ls_ring_peek(self.exec_rings[i])
                if p == NULL:
                    break
                if ls_ring_free(self.records_ring, self.records_reserve) < self.records_reserve:
                    self.halted_for_records = True
                    return done
                self.consume(self.exec_rings[i], p, SOURCE_EXEC)
                self.c.execs += 1
                k += 1
            done += k
        # 2. control commands
        k = 0
        while k < self.batch:
            p = ls_ring_peek(self.cmd_ring)
            if p == NULL:
                break
            if ls_ring_free(self.records_ring, self.records_reserve) < self.records_reserve:
                self.halted_for_records = True
                return done
            self.consume(self.cmd_ring, p, SOURCE_CMD)
            self.c.cmds += 1
            k += 1
        done += k
        # 3. market data
        if self.take_md:
            for i in range(self.n_md):
                k = 0
                while k < self.batch:
                    p = ls_ring_peek(self.md[i])
                    if p == NULL:
                        break
                    if ls_ring_free(self.records_ring, self.records_reserve) < self.records_reserve:
                        self.halted_for_records = True
                        return done
                    self.consume(self.md[i], p, SOURCE_MD)
                    self.c.md += 1
                    k += 1
                done += k
        # 4. timer tick when due; gauges once a millisecond
        now = realtime_ns()
        if now >= self.next_gauge_ns:
            self.gauges(now)
            self.next_gauge_ns = now + GAUGE_PERIOD_NS
        if now >= self.next_timer_ns:
            if self.next_timer_ns != 0:
                memset(self.scratch, 0, 128)
                t = <ls_timer_t *>self.scratch
                t.kind = LS_RECORD_KIND_TIMER
                t.version = LS_TIMER_VERSION
                t.ts = now
                t.interval = self.timer_interval_ns
                self.inject(self.scratch)
                self.c.timers += 1
                done += 1
            self.next_timer_ns = now + self.timer_interval_ns
        return done

    # ---------------------------------------------------------------------------------------
    def run(self, double duration_s=0.0, double drain_timeout_s=2.0, bint cancel_on_stop=True):
        """Busy-poll until SIGTERM/SIGINT (or ``duration_s``), then drain and stop.

        Draining: market data is no longer taken; with ``cancel_on_stop`` a SESSION_STOP command
        is injected (the core cancels every open order and halts); execution events and control
        commands keep being processed until the venue has answered or ``drain_timeout_s`` passes.
        """
        global ls_harness_stop_requested
        cdef int64_t deadline = realtime_ns() + <int64_t>(duration_s * 1e9) if duration_s > 0 else 0
        self.state = HS_RUNNING
        with nogil:
            while not ls_harness_stop_requested:
                if self.poll_once() == 0:
                    ls_cpu_relax()
                    if deadline and realtime_ns() >= deadline:
                        break
        self.drain(drain_timeout_s, cancel_on_stop)

    def drain(self, double timeout_s=2.0, bint cancel_on_stop=True):
        cdef ls_control_cmd_t *cc
        cdef int64_t room_deadline
        self.state = HS_DRAINING
        self.take_md = False
        if cancel_on_stop:
            memset(self.scratch, 0, 128)
            cc = <ls_control_cmd_t *>self.scratch
            cc.kind = LS_RECORD_KIND_CONTROL_CMD
            cc.version = LS_CONTROL_CMD_VERSION
            cc.ts = realtime_ns()
            cc.cmd = LS_CONTROL_CMD_TYPE_SESSION_STOP
            room_deadline = realtime_ns() + <int64_t>(timeout_s * 1e9)
            with nogil:
                # bounded: a records ring nobody drains (writer gone) must not freeze the stop
                while (ls_ring_free(self.records_ring, self.records_reserve) < self.records_reserve
                       and realtime_ns() < room_deadline):
                    ls_cpu_relax()
                if ls_ring_free(self.records_ring, self.records_reserve) >= self.records_reserve:
                    self.inject(self.scratch)
                else:
                    self.c.stop_inject_skipped += 1
        cdef int64_t deadline = realtime_ns() + <int64_t>(timeout_s * 1e9)
        while realtime_ns() < deadline:
            with nogil:
                self.poll_once()
            if self.core.open_orders == 0:
                break
        if self.core.open_orders > 0 and cancel_on_stop:
            # orders the venue did not answer for in time: a journaled STOP_UNRESOLVED makes each
            # end UNKNOWN (exec_type STOP_UNRESOLVED) in the records: nothing is left non-terminal
            self.inject_command(LS_CONTROL_CMD_TYPE_STOP_UNRESOLVED, 0, 0, timeout_s)
        self.state = HS_STOPPED
        if self.tel != NULL:
            # last gauges: the final record seq, then "done" (the writer stamps them into the file)
            self.gauges(realtime_ns())
            ls_tel_set(self.tel, LS_TEL_G_HARNESS_DONE, 1)

    def resume(self, uint64_t hseq):
        """Continue a session after a harness restart: ``hseq`` inputs are in the journal (the core
        was rebuilt from them); the record stream continues at the records ring's position."""
        self.hseq = hseq
        self.rseq = self.records_ring.tail
        self.rpend = 0

    def inject_command(self, int cmd, int64_t arg0=0, int64_t arg1=0, double room_timeout_s=2.0):
        """Journal and process a CONTROL_CMD the harness makes itself (RECOVER, STOP_UNRESOLVED);
        waits (bounded) for records-ring room. Returns False when there was no room."""
        cdef ls_control_cmd_t *cc
        cdef int64_t deadline = realtime_ns() + <int64_t>(room_timeout_s * 1e9)
        memset(self.scratch, 0, 128)
        cc = <ls_control_cmd_t *>self.scratch
        cc.kind = LS_RECORD_KIND_CONTROL_CMD
        cc.version = LS_CONTROL_CMD_VERSION
        cc.ts = realtime_ns()
        cc.cmd = <uint16_t>cmd
        cc.arg0 = arg0
        cc.arg1 = arg1
        cdef bint ok = False
        with nogil:
            while (ls_ring_free(self.records_ring, self.records_reserve) < self.records_reserve
                   and realtime_ns() < deadline):
                ls_cpu_relax()
            if ls_ring_free(self.records_ring, self.records_reserve) >= self.records_reserve:
                self.inject(self.scratch)
                ok = True
        return ok

    def step(self):
        """One poll pass (for tests and single-threaded drivers); returns inputs consumed."""
        self.state = HS_RUNNING
        with nogil:
            n = self.poll_once()
        return n

    def counters(self):
        d = dict(self.c)
        d.update(hseq=self.hseq, rseq=self.rseq, state=STATES[self.state])
        return d
