# cython: language_level=3
"""Bench stand-ins (not the product): nogil kernels for bench/bench_ring.py and
bench/bench_tick_to_trade.py -- ping-pong latency, streaming throughput, and a busy-spinning feed +
venue for tick-to-trade -- through the project's ring exactly as the harness uses it (the C
functions of ls_ring.h via ring.pxd, after taking each ring's producer or consumer role)."""

import numpy as np
cimport numpy as cnp
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from libc.string cimport memset
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

from livestack.ipc.ring cimport (Ring, ROLE_PRODUCER, ROLE_CONSUMER, ls_ring_t, ls_ring_write, ls_ring_peek, ls_ring_release,
                                 ls_ring_read, ls_ring_write_batch, ls_cpu_relax)

cnp.import_array()


cdef inline int64_t now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1000000000 + ts.tv_nsec


def ping(Ring tx, Ring rx, int64_t n, int64_t[::1] rtt_ns):
    """Send a record, spin until the echo returns; rtt_ns[i] = round trip of message i."""
    tx._require(ROLE_PRODUCER)
    rx._require(ROLE_CONSUMER)
    cdef uint8_t rec[128]
    cdef ls_ring_t *t = tx.ring
    cdef ls_ring_t *r = rx.ring
    cdef int64_t i, t0
    cdef const uint8_t *p
    memset(rec, 0, 128)
    with nogil:
        for i in range(n):
            (<int64_t *>(rec + 8))[0] = i
            t0 = now_ns()
            while ls_ring_write(t, rec) != 0:
                ls_cpu_relax()
            p = ls_ring_peek(r)
            while p == NULL:
                ls_cpu_relax()
                p = ls_ring_peek(r)
            ls_ring_release(r, 1)
            rtt_ns[i] = now_ns() - t0


def pong(Ring rx, Ring tx, int64_t n):
    """Echo n records from rx to tx, spinning."""
    tx._require(ROLE_PRODUCER)
    rx._require(ROLE_CONSUMER)
    cdef ls_ring_t *t = tx.ring
    cdef ls_ring_t *r = rx.ring
    cdef int64_t i
    cdef const uint8_t *p
    with nogil:
        for i in range(n):
            p = ls_ring_peek(r)
            while p == NULL:
                ls_cpu_relax()
                p = ls_ring_peek(r)
            while ls_ring_write(t, p) != 0:
                ls_cpu_relax()
            ls_ring_release(r, 1)


def produce_c(Ring tx, int64_t total, int64_t batch):
    """Write total records from C: one ls_ring_write each (batch == 1) or ls_ring_write_batch."""
    tx._require(ROLE_PRODUCER)
    cdef ls_ring_t *t = tx.ring
    cdef uint8_t[::1] buf = np.zeros(batch * t.slot_size, dtype=np.uint8)
    cdef int64_t done = 0, k
    with nogil:
        if batch == 1:
            while done < total:
                if ls_ring_write(t, &buf[0]) == 0:
                    done += 1
                else:
                    ls_cpu_relax()
        else:
            while done < total:
                k = ls_ring_write_batch(t, &buf[0], min(batch, total - done))
                if k == 0:
                    ls_cpu_relax()
                done += k


def drain(Ring rx, int64_t total, int64_t batch=4096):
    """Read total records in batches, spinning; returns ns from the first record to the last."""
    rx._require(ROLE_CONSUMER)
    cdef ls_ring_t *r = rx.ring
    cdef uint8_t[::1] buf = np.zeros(batch * r.slot_size, dtype=np.uint8)
    cdef int64_t done = 0, k, t0 = 0
    with nogil:
        while done < total:
            k = ls_ring_read(r, &buf[0], batch)
            if k and t0 == 0:
                t0 = now_ns()
            if k == 0:
                ls_cpu_relax()
            done += k
    return now_ns() - t0


from livestack.schema.records cimport (ls_md_trade_t, ls_order_cmd_t, ls_exec_t, LS_RECORD_KIND_MD_TRADE,
                                       LS_MD_TRADE_VERSION, LS_RECORD_KIND_EXEC, LS_EXEC_VERSION,
                                       LS_EXEC_TYPE_CANCELED, LS_ORDER_CMD_TYPE_NEW, LS_RECORD_FLAG_LAST_IN_MSG)
from livestack.ipc.ring cimport ls_ring_free, ls_ring_available_fresh
from posix.time cimport CLOCK_REALTIME


cdef inline int64_t wall_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline int64_t drain_orders(ls_ring_t *o, ls_ring_t *e, int64_t[::1] lat, int64_t nlat,
                                 int64_t *k, uint8_t *ex) noexcept nogil:
    """Read every ORDER_CMD: latency = now - cmd.ts (the md record's intended send time, which
    the core stamps on what it dispatches); answer each NEW with CANCELED (IOC, unfilled)."""
    cdef const uint8_t *p = ls_ring_peek(o)
    cdef const ls_order_cmd_t *c
    cdef ls_exec_t *x = <ls_exec_t *>ex
    cdef int64_t got = 0, now
    while p != NULL:
        now = wall_ns()
        c = <const ls_order_cmd_t *>p
        if k[0] < nlat:
            lat[k[0]] = now - c.ts
            k[0] += 1
        if c.cmd == LS_ORDER_CMD_TYPE_NEW:
            memset(ex, 0, 128)
            x.kind = LS_RECORD_KIND_EXEC
            x.version = LS_EXEC_VERSION
            x.instrument = c.instrument
            x.ts = now
            x.ts_event = now
            x.client_order_id = c.client_order_id
            x.venue_order_id = c.client_order_id
            x.exec_type = LS_EXEC_TYPE_CANCELED
            x.side = c.side
            x.price = c.price
            x.qty = c.qty
            while ls_ring_write(e, ex) != 0:
                ls_cpu_relax()
        ls_ring_release(o, 1)
        got += 1
        p = ls_ring_peek(o)
    return got


def t2t_drive(Ring md, Ring orders, Ring execs, Ring records, int64_t n, int64_t period_ns, int64_t[::1] lat,
              uint32_t instrument, int64_t price):
    """Feed + venue stand-in for bench_tick_to_trade.py, busy-spinning on its own CPU.

    Writes ``n`` MD_TRADE records at ``period_ns`` spacing (0: as fast as the md ring takes them,
    waiting when it is full, never dropping). Each record's ``ts`` is its *intended* send time, so
    a late send shows up as latency (coordinated-omission correction). Meanwhile reads the
    harness's orders and answers them. Returns (orders read, md ring full waits, ns elapsed).
    """
    md._require(ROLE_PRODUCER)
    orders._require(ROLE_CONSUMER)
    execs._require(ROLE_PRODUCER)
    records._require(ROLE_CONSUMER)
    cdef uint8_t rec[64]
    cdef uint8_t ex[128]
    cdef ls_md_trade_t *t = <ls_md_trade_t *>rec
    cdef int64_t i = 0, k = 0, full = 0, got = 0, t0, due, now
    cdef int64_t nlat = lat.shape[0]
    cdef ls_ring_t *rr = records.ring
    memset(rec, 0, 64)
    t.kind = LS_RECORD_KIND_MD_TRADE
    t.version = LS_MD_TRADE_VERSION
    t.flags = LS_RECORD_FLAG_LAST_IN_MSG
    t.instrument = instrument
    t.qty = 1
    with nogil:
        t0 = wall_ns()
        while i < n:
            due = t0 + i * period_ns
            now = wall_ns()
            if period_ns and now < due:
                got += drain_orders(orders.ring, execs.ring, lat, nlat, &k, ex)
                continue
            t.seq = i + 1
            t.ts = due if period_ns else now
            t.ts_event = t.ts
            t.price = price + (i & 65535)   # a distinct price per trade: no duplicate intents
            t.trade_id = i + 1
            t.side = 1
            if ls_ring_write(md.ring, rec) != 0:
                full += 1
                got += drain_orders(orders.ring, execs.ring, lat, nlat, &k, ex)
                continue
            i += 1
            got += drain_orders(orders.ring, execs.ring, lat, nlat, &k, ex)
            if (i & 255) == 0:  # stand-in for the writer: free the records ring
                ls_ring_release(rr, ls_ring_available_fresh(rr))
        # the last orders
        due = wall_ns() + 200000000
        while wall_ns() < due and got < n:
            got += drain_orders(orders.ring, execs.ring, lat, nlat, &k, ex)
    return got, full, wall_ns() - t0


# ---- bench/bench_e2e.py: a feed process and a venue process that share a CPU (never spin) ----------
from posix.time cimport nanosleep
from livestack.ipc.ring cimport ls_ring_claim, ls_ring_commit, ls_ring_slot


cdef inline void nap(int64_t ns) noexcept nogil:
    cdef timespec ts
    ts.tv_sec = ns // 1000000000
    ts.tv_nsec = ns % 1000000000
    nanosleep(&ts, NULL)


def feed_run(Ring md, int64_t n, uint32_t instrument, int64_t price, int64_t batch=512, int64_t nap_ns=20000,
             int64_t max_nap_ns=320000):
    """Feed stand-in for bench_e2e.py: ``n`` MD_TRADE records, written in place into the md ring in
    batches as fast as it takes them (``ts`` = the batch's wall time); while the ring has no room
    for a whole batch it sleeps, ``nap_ns`` doubling up to ``max_nap_ns`` (it shares a CPU with
    the venue and the writer: it never spins, and each wake-up costs that CPU). Nothing is
    dropped. Returns (full waits, ns from the first write to the last)."""
    md._require(ROLE_PRODUCER)
    cdef ls_ring_t *r = md.ring
    cdef ls_md_trade_t *t
    cdef uint64_t pos, k, j, want
    cdef int64_t i = 0, full = 0, t0, now, sleep_ns = nap_ns
    with nogil:
        t0 = wall_ns()
        while i < n:
            want = <uint64_t>min(batch, n - i)
            if ls_ring_free(r, want) < want:
                full += 1
                nap(sleep_ns)
                sleep_ns = min(sleep_ns * 2, max_nap_ns)
                continue
            sleep_ns = nap_ns
            k = ls_ring_claim(r, want, &pos)
            now = wall_ns()
            for j in range(k):
                t = <ls_md_trade_t *>ls_ring_slot(r, pos + j)
                memset(t, 0, 64)
                t.kind = LS_RECORD_KIND_MD_TRADE
                t.version = LS_MD_TRADE_VERSION
                t.flags = LS_RECORD_FLAG_LAST_IN_MSG
                t.instrument = instrument
                t.seq = i + 1
                t.ts = now
                t.ts_event = now
                t.price = price + (i & 65535)  # a distinct price per trade: no duplicate intents
                t.qty = 1
                t.trade_id = i + 1
                t.side = 1
                i += 1
            ls_ring_commit(r, k)
    return full, wall_ns() - t0


def venue_poll(Ring orders, Ring execs):
    """Venue stand-in for bench_e2e.py: answer every ORDER_CMD readable now (NEW -> CANCELED, an
    unfilled IOC); returns how many were read (call again after a backoff when 0)."""
    orders._require(ROLE_CONSUMER)
    execs._require(ROLE_PRODUCER)
    cdef uint8_t ex[128]
    cdef int64_t k = 0, got
    cdef int64_t[::1] nolat = np.zeros(1, dtype=np.int64)
    with nogil:
        got = drain_orders(orders.ring, execs.ring, nolat, 0, &k, ex)
    return got
