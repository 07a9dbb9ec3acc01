# cython: language_level=3
"""The shared-memory telemetry block: Python API over the C block in ``cext/ls_telemetry.h``.

The harness writes the block through the ``nogil`` C functions declared in ``block.pxd``; this
class creates and attaches segments, offers the same writers to Python processes (stand-ins, tests,
per-process heartbeats) and reads a consistent :meth:`TelemetryBlock.snapshot` for the exporter,
``livestack top`` and the control process. Readers never lock: see the header comment of
``ls_telemetry.h`` for which sections are per-field atomic and which are seqlocked.
"""

import math
import os
import time

from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from libc.string cimport memset

from livestack.ipc import shm as _shm
from livestack.schema import spec as _spec
from livestack.schema.dtypes import Anomaly, DenyReason, OrderState, Side, TradingState

MAGIC = LS_TEL_MAGIC
LAYOUT_VERSION = LS_TEL_LAYOUT_VERSION
SEGMENT_SIZE = ls_tel_segment_size()
MAX_INSTRUMENTS = LS_TEL_MAX_INSTRUMENTS
MAX_ORDERS = LS_TEL_MAX_ORDERS
MAX_PROCS = LS_TEL_MAX_PROCS
MAX_RINGS = LS_TEL_MAX_RINGS
MAX_STRATEGIES = LS_TEL_MAX_STRATEGIES
#: per-instrument counters of a position entry (``instrument_count``)
INSTRUMENT_COUNTS = ("orders_sent", "fills", "denials")
MAX_CODES = LS_TEL_MAX_CODES
N_BUCKETS = LS_TEL_HIST_BUCKETS
HIST_LOW_NS = LS_TEL_HIST_LOW_NS
HIST_HIGH_NS = LS_TEL_HIST_HIGH_NS

#: counter names, in C enum order (index = LS_TEL_C_*)
COUNTERS = tuple(ls_tel_counter_name(i).decode() for i in range(LS_TEL_N_COUNTERS))
COUNTER_HELP = {COUNTERS[i]: ls_tel_counter_doc(i).decode() for i in range(LS_TEL_N_COUNTERS)}
#: gauge names, in C enum order (index = LS_TEL_G_*)
GAUGES = tuple(ls_tel_gauge_name(i).decode() for i in range(LS_TEL_N_GAUGES))
GAUGE_HELP = {GAUGES[i]: ls_tel_gauge_doc(i).decode() for i in range(LS_TEL_N_GAUGES)}
#: histogram (latency stage) names, in C enum order (index = LS_TEL_H_*)
HISTOGRAMS = tuple(ls_tel_hist_name(i).decode() for i in range(LS_TEL_N_HISTS))
HISTOGRAM_HELP = {HISTOGRAMS[i]: ls_tel_hist_doc(i).decode() for i in range(LS_TEL_N_HISTS)}
#: inclusive upper bound of every histogram bucket in ns (the last is +inf)
BUCKET_UPPER_NS = tuple(ls_tel_bucket_upper(i) if i < LS_TEL_HIST_BUCKETS - 1 else math.inf
                        for i in range(LS_TEL_HIST_BUCKETS))
#: heartbeat older than this marks a process unhealthy in snapshots
HEARTBEAT_STALE_S = 5.0


class TelemetryError(Exception):
    """The telemetry segment is missing, is not a telemetry block of this build, or an argument is out of range."""


def bucket_index(int64_t ns):
    """Histogram bucket of a sample of ``ns`` nanoseconds (what the harness's ``ls_tel_record`` uses)."""
    return ls_tel_bucket_index(ns)


def quantile(buckets, double q, max_ns=None):
    """The ``q`` quantile (0..1) of a bucket-count list, as the bucket's upper bound in ns.

    Clamped to ``max_ns`` when given (so p100 is the true maximum and an overflow-bucket answer is
    finite). None when the histogram is empty.
    """
    total = sum(buckets)
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    cum = 0
    for i, c in enumerate(buckets):
        cum += c
        if cum >= rank:
            up = BUCKET_UPPER_NS[i]
            if max_ns is not None and (up == math.inf or up > max_ns):
                return int(max_ns)
            return int(up) if up != math.inf else None
    return None


def _index(names, key, what):
    if isinstance(key, str):
        try:
            return names.index(key)
        except ValueError:
            raise TelemetryError(f"unknown {what} {key!r} (known: {', '.join(names)})") from None
    k = int(key)
    if not 0 <= k < len(names):
        raise TelemetryError(f"{what} index {k} out of range 0..{len(names) - 1}")
    return k


def _enum_name(enum, int v):
    try:
        return enum(v).name
    except ValueError:
        return str(v)


def _initialised(mm):
    """Attach readiness: the header is mapped and the creator has published the magic."""
    if len(mm) < LS_TEL_HEADER_SIZE:
        return False
    cdef const unsigned char[::1] v = mm
    return __atomic_magic(<const ls_tel_block_t *>&v[0]) == LS_TEL_MAGIC


cdef inline bytes _b(str s):
    return s.encode()[:LS_TEL_NAME_LENGTH - 1]


cdef class TelemetryBlock:
    """The telemetry block of a session in a POSIX shared-memory segment.

    The supervisor creates it (:meth:`create`); the harness attaches it and writes it through the C
    API (``blk.tel`` from Cython, or the Python writers below); readers attach and call
    :meth:`snapshot`. Exactly one process (the harness) writes counters, gauges, histograms,
    positions, orders and ring gauges; each process writes only its own process slot.
    """

    def __cinit__(self):
        self.tel = NULL

    @staticmethod
    def create(str name):
        """Create and initialise the block in a new segment ``name`` (must not exist)."""
        cdef TelemetryBlock self = TelemetryBlock.__new__(TelemetryBlock)
        self._seg = _shm.Segment.create(name, SEGMENT_SIZE)
        self.name = name
        self.owner = True
        cdef unsigned char[::1] view = self._seg.mm
        self.tel = <ls_tel_block_t *>&view[0]
        ls_tel_init(self.tel, _spec.SCHEMA_VERSION, os.getpid(), time.time_ns())
        return self

    @staticmethod
    def attach(str name, double timeout=0.0):
        """Attach to an existing block, checking magic, layout and schema version and size.

        Raises TelemetryError naming the segment and what differs. With ``timeout`` > 0 waits that
        long for the segment to appear and be initialised.
        """
        cdef TelemetryBlock self = TelemetryBlock.__new__(TelemetryBlock)
        cdef unsigned char[::1] view
        try:
            self._seg = _shm.Segment.attach(name, timeout, _initialised)
        except _shm.SegmentMissing:
            raise TelemetryError(f"telemetry block {name}: segment does not exist or is not initialised") from None
        view = self._seg.mm
        self.tel = <ls_tel_block_t *>&view[0]
        self.name = name
        self.owner = False
        t = self.tel
        problem = None
        if t.layout_version != LS_TEL_LAYOUT_VERSION:
            problem = f"layout version {t.layout_version}, this build expects {LS_TEL_LAYOUT_VERSION}"
        elif t.schema_version != _spec.SCHEMA_VERSION:
            problem = f"record schema version {t.schema_version}, this build expects {_spec.SCHEMA_VERSION}"
        elif t.size != SEGMENT_SIZE or <size_t>len(self._seg.mm) < SEGMENT_SIZE:
            problem = f"size {t.size} (mapping {len(self._seg.mm)}), this build expects {SEGMENT_SIZE}"
        elif (t.n_counters != LS_TEL_N_COUNTERS or t.n_gauges != LS_TEL_N_GAUGES or t.n_hists != LS_TEL_N_HISTS
              or t.n_buckets != LS_TEL_HIST_BUCKETS):
            problem = "counter/gauge/histogram tables differ from this build"
        if problem:
            self.close()
            raise TelemetryError(f"telemetry block {name}: {problem}")
        return self

    cdef int _check(self) except -1:
        if self.tel == NULL:
            raise TelemetryError(f"telemetry block {self.name}: closed")
        return 0

    @property
    def address(self):
        """Address of the mapped ``ls_tel_block_t`` (for C code in another extension)."""
        self._check()
        return <size_t>self.tel

    @property
    def creator_pid(self):
        self._check()
        return self.tel.creator_pid

    @property
    def created_ns(self):
        self._check()
        return self.tel.created_ns

    # --- writers (harness-equivalent; Python processes and stand-ins) ------------------------
    def add(self, counter, uint64_t n=1):
        """counter += n (``counter``: name from COUNTERS or its index)."""
        self._check()
        ls_tel_add(self.tel, _index(COUNTERS, counter, "counter"), n)

    def set_gauge(self, gauge, int64_t value):
        self._check()
        ls_tel_set(self.tel, _index(GAUGES, gauge, "gauge"), value)

    def record(self, hist, int64_t ns):
        """Record one latency sample (ns) into histogram ``hist``."""
        self._check()
        ls_tel_record(self.tel, _index(HISTOGRAMS, hist, "histogram"), ns)

    def record_many(self, hist, samples):
        """Record every sample of an iterable of ns values."""
        self._check()
        cdef int h = _index(HISTOGRAMS, hist, "histogram")
        for v in samples:
            ls_tel_record(self.tel, h, <int64_t>v)

    def order_state(self, uint32_t state):
        """One order entered OrderState ``state``."""
        self._check()
        ls_tel_order_state_count(self.tel, state)

    def denial(self, uint32_t reason, uint64_t n=1):
        """``n`` intents denied with DenyReason ``reason``."""
        self._check()
        ls_tel_denial(self.tel, reason, n)

    def anomaly(self, uint32_t code):
        self._check()
        ls_tel_anomaly(self.tel, code)

    def register_instrument(self, uint32_t slot, uint32_t instrument, str symbol, uint8_t price_decimals,
                            uint8_t qty_decimals):
        self._check()
        if slot >= LS_TEL_MAX_INSTRUMENTS:
            raise TelemetryError(f"instrument slot {slot} >= {LS_TEL_MAX_INSTRUMENTS}")
        ls_tel_instrument_register(self.tel, slot, instrument, _b(symbol), price_decimals, qty_decimals)

    def set_position(self, uint32_t slot, int64_t net_qty, int64_t cost, int64_t realized_pnl,
                     int64_t unrealized_pnl, int64_t mark_price=0, int64_t ts=0):
        self._check()
        if slot >= LS_TEL_MAX_INSTRUMENTS:
            raise TelemetryError(f"instrument slot {slot} >= {LS_TEL_MAX_INSTRUMENTS}")
        ls_tel_position_set(self.tel, slot, net_qty, cost, realized_pnl, unrealized_pnl, mark_price, ts)

    def set_instrument_strategy(self, uint32_t slot, int k):
        """The strategy (index, -1: none) owning the instrument in ``slot``."""
        self._check()
        if slot >= LS_TEL_MAX_INSTRUMENTS:
            raise TelemetryError(f"instrument slot {slot} >= {LS_TEL_MAX_INSTRUMENTS}")
        ls_tel_instrument_strategy(self.tel, slot, k)

    def instrument_count(self, uint32_t slot, str which, uint64_t n=1):
        """Add ``n`` to one of the instrument's counters (INSTRUMENT_COUNTS)."""
        self._check()
        ls_tel_instrument_count(self.tel, slot, _index(INSTRUMENT_COUNTS, which, "instrument counter"), n)

    def register_strategy(self, uint32_t k, str name):
        self._check()
        if k >= LS_TEL_MAX_STRATEGIES:
            raise TelemetryError(f"strategy {k} >= {LS_TEL_MAX_STRATEGIES}")
        ls_tel_strategy_register(self.tel, k, _b(name))

    def strategy_error(self, uint32_t k, bint stopped=False):
        self._check()
        ls_tel_strategy_error(self.tel, k, stopped)

    def set_order(self, uint32_t slot, uint32_t instrument, int64_t client_order_id, int64_t venue_order_id,
                  uint8_t side, uint8_t state, int64_t price, int64_t qty, int64_t cum_qty=0, int64_t ts=0):
        self._check()
        if slot >= LS_TEL_MAX_ORDERS:
            raise TelemetryError(f"order slot {slot} >= {LS_TEL_MAX_ORDERS}")
        ls_tel_order_set(self.tel, slot, instrument, client_order_id, venue_order_id, side, state, price, qty,
                         cum_qty, ts)

    def clear_order(self, uint32_t slot):
        self._check()
        if slot >= LS_TEL_MAX_ORDERS:
            raise TelemetryError(f"order slot {slot} >= {LS_TEL_MAX_ORDERS}")
        ls_tel_order_clear(self.tel, slot)

    def register_ring(self, uint32_t slot, str name, uint64_t capacity):
        self._check()
        if slot >= LS_TEL_MAX_RINGS:
            raise TelemetryError(f"ring slot {slot} >= {LS_TEL_MAX_RINGS}")
        ls_tel_ring_register(self.tel, slot, _b(name), capacity)

    def ring_fill(self, uint32_t slot, uint64_t fill):
        self._check()
        if slot >= LS_TEL_MAX_RINGS:
            raise TelemetryError(f"ring slot {slot} >= {LS_TEL_MAX_RINGS}")
        ls_tel_ring_fill(self.tel, slot, fill)

    def ring_overflow(self, uint32_t slot, uint64_t n=1):
        self._check()
        if slot >= LS_TEL_MAX_RINGS:
            raise TelemetryError(f"ring slot {slot} >= {LS_TEL_MAX_RINGS}")
        ls_tel_ring_overflow(self.tel, slot, n)

    # --- process slots (every process its own) -------------------------------------------
    def reclaim_dead_processes(self):
        """Free the slots of processes that no longer exist (a session whose processes are
        restarted again and again -- issue 14's chaos runs -- would fill the table); returns how
        many were freed."""
        self._check()
        cdef int i, n = 0
        cdef int64_t pid
        for i in range(LS_TEL_MAX_PROCS):
            pid = self.tel.procs[i].pid
            if pid > 0:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    ls_tel_proc_unregister(self.tel, i)
                    n += 1
                except PermissionError:
                    pass
        return n

    def register_process(self, str name, pid=None):
        """Claim this process's slot (compare-and-swap on pid); returns the slot index."""
        self._check()
        cdef int slot = ls_tel_proc_register(self.tel, pid or os.getpid(), _b(name), time.time_ns())
        if slot < 0 and self.reclaim_dead_processes():
            slot = ls_tel_proc_register(self.tel, pid or os.getpid(), _b(name), time.time_ns())
        if slot < 0:
            raise TelemetryError(f"telemetry block {self.name}: process table full ({LS_TEL_MAX_PROCS} slots)")
        return slot

    def heartbeat(self, int slot, now_ns=None):
        self._check()
        _check_proc(slot)
        ls_tel_proc_heartbeat(self.tel, slot, time.time_ns() if now_ns is None else now_ns)

    def process_error(self, int slot, uint64_t n=1):
        self._check()
        _check_proc(slot)
        ls_tel_proc_error(self.tel, slot, n)

    def process_lag(self, int slot, int64_t lag_ns):
        self._check()
        _check_proc(slot)
        ls_tel_proc_lag(self.tel, slot, lag_ns)

    def unregister_process(self, int slot):
        self._check()
        _check_proc(slot)
        ls_tel_proc_unregister(self.tel, slot)

    # --- readers -------------------------------------------------------------------------
    def counter(self, name):
        self._check()
        return __load_u64(&self.tel.counters[_index(COUNTERS, name, "counter")])

    def gauge(self, name):
        self._check()
        return __load_i64(&self.tel.gauges[_index(GAUGES, name, "gauge")])

    def counters(self):
        self._check()
        return {COUNTERS[i]: __load_u64(&self.tel.counters[i]) for i in range(LS_TEL_N_COUNTERS)}

    def gauges(self):
        self._check()
        return {GAUGES[i]: __load_i64(&self.tel.gauges[i]) for i in range(LS_TEL_N_GAUGES)}

    def histogram(self, hist):
        """One histogram: count (= sum of buckets), sum_ns, max_ns, buckets, mean and quantiles."""
        self._check()
        cdef ls_tel_hist_t h
        ls_tel_hist_read(self.tel, _index(HISTOGRAMS, hist, "histogram"), &h)
        buckets = [h.buckets[i] for i in range(LS_TEL_HIST_BUCKETS)]
        count = sum(buckets)
        max_ns = h.max_ns
        out = {"count": count, "sum_ns": h.sum_ns, "max_ns": max_ns if count else None, "buckets": buckets,
               "mean_ns": (h.sum_ns / count) if count else None}
        for label, q in (("p50_ns", 0.5), ("p90_ns", 0.9), ("p99_ns", 0.99), ("p999_ns", 0.999)):
            out[label] = quantile(buckets, q, max_ns) if count else None
        return out

    def histograms(self):
        return {name: self.histogram(i) for i, name in enumerate(HISTOGRAMS)}

    def order_states(self):
        """Transitions into each OrderState (orders by status)."""
        self._check()
        return _codes(self.tel.order_states, OrderState)

    def denials(self):
        """Denials by DenyReason name."""
        self._check()
        return _codes(self.tel.denials, DenyReason)

    def anomalies(self):
        self._check()
        return _codes(self.tel.anomalies, Anomaly)

    def positions(self):
        """Registered instruments' positions (each entry one consistent seqlock read)."""
        self._check()
        cdef ls_tel_position_t p
        cdef int i
        out = []
        for i in range(LS_TEL_MAX_INSTRUMENTS):
            _read_position(self, i, &p)
            if p.instrument == 0:
                continue
            out.append({"slot": i, "instrument": p.instrument, "symbol": p.symbol.decode(errors="replace"),
                        "price_decimals": p.price_decimals, "qty_decimals": p.qty_decimals,
                        "net_qty": p.net_qty, "cost": p.cost, "realized_pnl": p.realized_pnl,
                        "unrealized_pnl": p.unrealized_pnl, "mark_price": p.mark_price, "ts": p.ts,
                        "strategy": p.strategy - 1, "orders_sent": p.orders_sent, "fills": p.fills,
                        "denials": p.denials,
                        # one byte written outside the seqlock (ls_tel_position_health): read as is
                        "healthy": bool(self.tel.positions[i].healthy), "version": p.seq})
        return out

    def strategies(self):
        """Registered strategies, by index: name, errors, stopped (its on_error policy took it out)."""
        self._check()
        cdef ls_tel_strategy_t *e
        cdef int k
        out = []
        for k in range(LS_TEL_MAX_STRATEGIES):
            e = &self.tel.strategies[k]
            if not __load_u32_acquire(&e.in_use):
                continue
            out.append({"index": k, "name": e.name.decode(errors="replace"), "errors": __load_u64(&e.errors),
                        "stopped": bool(__load_u32(&e.stopped))})
        return out

    def orders(self):
        """Open orders (entries with a state other than NONE), each one consistent seqlock read."""
        self._check()
        cdef ls_tel_order_t o
        cdef int i
        out = []
        for i in range(LS_TEL_MAX_ORDERS):
            if __load_u64(&self.tel.orders[i].seq) == 0:
                continue  # never written
            _read_order(self, i, &o)
            if o.state == 0:
                continue
            out.append({"slot": i, "instrument": o.instrument, "client_order_id": o.client_order_id,
                        "venue_order_id": o.venue_order_id, "side": _enum_name(Side, o.side),
                        "state": _enum_name(OrderState, o.state), "price": o.price, "qty": o.qty,
                        "cum_qty": o.cum_qty, "ts": o.ts, "version": o.seq})
        return out

    def processes(self, now_ns=None):
        """Registered processes: pid, name, heartbeat age, alive (pid exists and heartbeat fresh)."""
        self._check()
        now = time.time_ns() if now_ns is None else now_ns
        out = []
        cdef ls_tel_proc_t *p
        cdef int i
        for i in range(LS_TEL_MAX_PROCS):
            p = &self.tel.procs[i]
            pid = __load_i64(&p.pid)
            if pid == 0:
                continue
            hb = __load_i64_acquire(&p.heartbeat_ns)
            age = (now - hb) / 1e9
            exists = _shm.pid_alive(pid)
            out.append({"slot": i, "pid": pid, "name": p.name.decode(errors="replace"),
                        "started_ns": __load_i64(&p.started_ns), "heartbeat_ns": hb, "heartbeat_age_s": age,
                        "running": exists, "alive": exists and age < HEARTBEAT_STALE_S,
                        "errors": __load_u64(&p.errors), "lag_ns": __load_i64(&p.lag_ns)})
        return out

    def rings(self):
        """Registered rings: capacity, fill (as last seen by the harness), fill ratio, overflows."""
        self._check()
        out = []
        cdef ls_tel_ring_t *r
        cdef int i
        for i in range(LS_TEL_MAX_RINGS):
            r = &self.tel.rings[i]
            cap = __load_u64_acquire(&r.capacity)
            if cap == 0:
                continue
            fill = __load_u64(&r.fill)
            out.append({"slot": i, "name": r.name.decode(errors="replace"), "capacity": cap, "fill": fill,
                        "fill_ratio": fill / cap, "overflows": __load_u64(&r.overflows)})
        return out

    def snapshot(self):
        """Everything in the block as a plain dict (see the module docstring of livestack.telemetry)."""
        self._check()
        now = time.time_ns()
        gauges = self.gauges()
        ts = gauges["trading_state"]
        counters = self.counters()
        denials = self.denials()
        anomalies = self.anomalies()
        # the per-code tables are the source of truth for these totals (whatever else bumped the
        # plain counters, e.g. a caller that also did ls_tel_add(DENIALS) next to ls_tel_denial)
        counters["denials"] = sum(denials.values())
        counters["anomalies"] = sum(anomalies.values())
        return {
            "name": self.name,
            "ts_ns": now,
            "created_ns": self.tel.created_ns,
            "creator_pid": self.tel.creator_pid,
            "counters": counters,
            "gauges": gauges,
            "trading_state": _enum_name(TradingState, ts),
            "order_states": self.order_states(),
            "denials": denials,
            "anomalies": anomalies,
            "histograms": self.histograms(),
            "positions": self.positions(),
            "orders": self.orders(),
            "processes": self.processes(now),
            "rings": self.rings(),
            "strategies": self.strategies(),
        }

    # --- lifetime ------------------------------------------------------------------------
    def close(self):
        self.tel = NULL
        if self._seg is not None:
            self._seg.close()

    def unlink(self):
        _shm.unlink_segment(self.name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        owner = self.owner
        self.close()
        if owner:
            self.unlink()

    def __repr__(self):
        return f"<TelemetryBlock {self.name}{' closed' if self.tel == NULL else ''}>"


#: seqlock reads: tries per C call, then yield/sleep (the writer may be preempted mid-update), for
#: at most READ_DEADLINE_S before giving up with TelemetryError
READ_TRIES = 200
READ_DEADLINE_S = 2.0


cdef int _read_position(TelemetryBlock b, uint32_t slot, ls_tel_position_t *out) except -1:
    if ls_tel_position_read(b.tel, slot, out, READ_TRIES) == 0:
        return 0
    deadline = time.monotonic() + READ_DEADLINE_S
    pause = 1e-6
    while ls_tel_position_read(b.tel, slot, out, READ_TRIES) != 0:
        if time.monotonic() > deadline:
            raise TelemetryError(f"telemetry block {b.name}: position slot {slot} stayed mid-update for {READ_DEADLINE_S} s")
        time.sleep(pause)
        pause = min(pause * 2, 1e-3)
    return 0


cdef int _read_order(TelemetryBlock b, uint32_t slot, ls_tel_order_t *out) except -1:
    if ls_tel_order_read(b.tel, slot, out, READ_TRIES) == 0:
        return 0
    deadline = time.monotonic() + READ_DEADLINE_S
    pause = 1e-6
    while ls_tel_order_read(b.tel, slot, out, READ_TRIES) != 0:
        if time.monotonic() > deadline:
            raise TelemetryError(f"telemetry block {b.name}: order slot {slot} stayed mid-update for {READ_DEADLINE_S} s")
        time.sleep(pause)
        pause = min(pause * 2, 1e-3)
    return 0


cdef dict _codes(uint64_t *arr, enum):
    out = {}
    cdef int i
    for i in range(LS_TEL_MAX_CODES):
        v = __load_u64(&arr[i])
        if v or i in enum._value2member_map_:
            out[_enum_name(enum, i)] = v
    return out


def _check_proc(int slot):
    if not 0 <= slot < LS_TEL_MAX_PROCS:
        raise TelemetryError(f"process slot {slot} out of range 0..{LS_TEL_MAX_PROCS - 1}")


cdef extern from *:
    """
    static inline uint64_t __ls_tel_magic(const ls_tel_block_t *t) { return __atomic_load_n(&t->magic, __ATOMIC_ACQUIRE); }
    static inline uint64_t __ls_load_u64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
    static inline int64_t __ls_load_i64(const int64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
    static inline uint64_t __ls_load_u64_acquire(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline int64_t __ls_load_i64_acquire(const int64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline uint32_t __ls_load_u32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
    static inline uint32_t __ls_load_u32_acquire(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    """
    uint64_t __atomic_magic "__ls_tel_magic"(const ls_tel_block_t *t) nogil
    uint64_t __load_u64 "__ls_load_u64"(const uint64_t *p) nogil
    int64_t __load_i64 "__ls_load_i64"(const int64_t *p) nogil
    uint64_t __load_u64_acquire "__ls_load_u64_acquire"(const uint64_t *p) nogil
    int64_t __load_i64_acquire "__ls_load_i64_acquire"(const int64_t *p) nogil
    uint32_t __load_u32 "__ls_load_u32"(const uint32_t *p) nogil
    uint32_t __load_u32_acquire "__ls_load_u32_acquire"(const uint32_t *p) nogil


def _stress_write(TelemetryBlock blk, uint64_t iterations, uint32_t order_slots=8):
    """Test helper: write self-checking patterns through the C API as fast as it goes (no GIL).

    Iteration k leaves position slot 0 = (net k, cost -k, realized 2k, unrealized 3k, mark k, ts k),
    order slot k % order_slots = (every id/price/qty/ts field k), adds 0x100000001 to ``events``
    (so a torn 64-bit read would show different halves) and records k % 100000 ns into ``core``.
    A reader that ever sees an entry break its pattern has seen a torn read.
    """
    blk._check()
    cdef ls_tel_block_t *t = blk.tel
    cdef uint64_t k
    cdef int64_t v
    ls_tel_instrument_register(t, 0, 7, b"STRESS", 2, 3)
    with nogil:
        for k in range(1, iterations + 1):
            v = <int64_t>k
            ls_tel_position_set(t, 0, v, -v, 2 * v, 3 * v, v, v)
            ls_tel_order_set(t, <uint32_t>(k % order_slots), 7, v, v, 1, 2, v, v, v, v)
            ls_tel_add(t, LS_TEL_C_EVENTS, 0x100000001)
            ls_tel_record(t, LS_TEL_H_CORE, v % 100000)
            ls_tel_set(t, LS_TEL_G_HSEQ, v)
