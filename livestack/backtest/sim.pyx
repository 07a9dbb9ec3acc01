# cython: language_level=3
"""Backtest: the Core Runtime over a recorded capture with the matching engine in the same process.

The venue is :class:`livestack.matching.MatchingEngine` -- the same engine the simulated venue
process runs -- so its rules (price-time priority, queue position, partial fills, latency,
rejects) are documented once, in ``livestack/matching/engine.pyx``.

Virtual time
------------
Everything happens on one timeline, the capture's, as a discrete-event simulation. Market record
``k`` is applied to the engine at ``engine_ts[k]`` (its exchange time) and delivered to the core at
its header ``ts`` (``engine_ts[k]`` + market-data latency). Commands the core dispatches arrive at
the engine after the order latency; the engine's execution events reach the core after the
response latency (their header ``ts``). At each instant the next event is the earliest one, and on
equal times, in this order:

    0. a market record is applied to the engine
    1. commands arrive at the engine (and are matched)
    2. an execution event is delivered to the core
    3. a market record is delivered to the core

The simulated venue process in virtual time (``livestack.venues.virtual``) keeps the same order,
so both give the same fills (with order and response latency >= 1 ns; at 0 the backtest may
process a command the core sent on an event before the next event of the same instant, which a
process cannot know about yet).

Everything is integer and input-ordered, so a run is bit-for-bit reproducible.
"""

from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy, memset
from libc.stdint cimport uint8_t, int64_t, uint64_t, INT64_MAX

import numpy as np
cimport numpy as cnp

from livestack.schema.records cimport ls_hdr_t, ls_exec_t
from livestack.core.core cimport Core
from livestack.matching.engine cimport MatchingEngine
from livestack.schema import DTYPES, SLOT128

cnp.import_array()

cdef uint8_t JOURNAL_FLAG = 4  # RecordFlag.JOURNAL (checked against the schema at import below)
from livestack.schema import RecordFlag as _RecordFlag
assert int(_RecordFlag.JOURNAL) == JOURNAL_FLAG


cdef inline void _acc_add(acc_t *a, const uint8_t *src, uint64_t n) noexcept nogil:
    cdef uint8_t *tmp
    if a.buf == NULL or n == 0:
        return
    if a.n + n > a.cap:
        while a.n + n > a.cap:
            a.cap *= 2
        tmp = <uint8_t *>realloc(a.buf, a.cap * a.size)
        if tmp == NULL:
            a.oom = 1
            return
        a.buf = tmp
    memcpy(a.buf + a.n * a.size, src, n * a.size)
    a.n += n


cdef inline void _drain(Core core, MatchingEngine engine, acc_t *ao, acc_t *ar, bint collect) noexcept nogil:
    """The core's dispatched commands go to the engine (they arrive after the order latency)."""
    cdef uint64_t k
    for k in range(core.n_out_orders):
        engine.submit_cmd(core.out_orders + k * 64)
    if collect:
        _acc_add(ao, core.out_orders, core.n_out_orders)
        _acc_add(ar, core.out_records, core.n_out_records)
    core.clear_outputs()


cdef inline void _drain_journaled(Core core, MatchingEngine engine, acc_t *ao, acc_t *ar, uint8_t *slot) noexcept nogil:
    """``_drain`` for a session file's record stream: as the harness writes the records ring, each
    dispatched command (padded to 128 bytes) comes first, then the core's other records."""
    cdef uint64_t k
    for k in range(core.n_out_orders):
        engine.submit_cmd(core.out_orders + k * 64)
        memcpy(slot, core.out_orders + k * 64, 64)
        memset(slot + 64, 0, 64)
        _acc_add(ar, slot, 1)
    _acc_add(ao, core.out_orders, core.n_out_orders)
    _acc_add(ar, core.out_records, core.n_out_records)
    core.clear_outputs()


cdef inline void _journal(acc_t *ar, const uint8_t *rec, Py_ssize_t size, uint8_t *slot) noexcept nogil:
    """The harness's journal entry of a consumed input: the input in a 128-byte slot, flag JOURNAL
    (the records stream has the entry first, then the outputs the input caused)."""
    if size < 128:
        memset(slot + size, 0, 128 - size)
    memcpy(slot, rec, size)
    slot[3] |= JOURNAL_FLAG
    _acc_add(ar, slot, 1)


def run(Core core, md, bint collect=True, MatchingEngine engine=None, engine_ts=None, bint journal=False,
        progress=None, Py_ssize_t progress_every=1 << 16):
    """Run ``core`` over the market-data records ``md`` (64- or 128-byte slots) with ``engine``.

    Parameters
    ----------
    core : Core
    md : ndarray
        Market-data records in delivery order; header ``ts`` = when the core sees each one.
    collect : bool
        Keep every output (``orders``, ``records``, ``execs`` in the result).
    engine : MatchingEngine, optional
        Default: one over the core's instruments with no latency.
    engine_ts : int64 array, optional
        When each record is applied to the engine (non-decreasing, <= its ``ts``); default ``ts``.

    journal : bool
        With ``collect``: ``records`` also holds each consumed input (flag JOURNAL) just before the
        outputs it caused, the dispatched commands first (as 128-byte slots), as the harness sends
        them to the writer: a session file's record stream.
    progress : callable, optional
        ``progress(md_delivered, inputs)`` every ``progress_every`` market records (and at the end);
        an exception it raises (KeyboardInterrupt) stops the run and is re-raised.

    Returns a dict: ``orders`` (ORDER_CMD array) and ``records`` (SLOT128 array) of every core
    output in order and ``execs`` (SLOT128) of every execution event fed back (when ``collect``),
    plus ``inputs`` (md + exec events processed), ``md_events``, ``exec_events``, ``venue_fills``,
    ``engine``.
    """
    arr = np.ascontiguousarray(md)
    cdef Py_ssize_t size = arr.dtype.itemsize
    if size != 64 and size != 128:
        raise ValueError(f"md: slots of 64 or 128 bytes expected, got {size}")
    if engine is None:
        engine = MatchingEngine(core.instruments)
    cdef Py_ssize_t n = arr.shape[0]
    ts_view = np.ascontiguousarray(arr.view(np.uint8).reshape(n, size)[:, 16:24]).view(np.int64).reshape(n) \
        if n else np.zeros(0, dtype=np.int64)
    if engine_ts is None:
        eng = ts_view
    else:
        eng = np.ascontiguousarray(engine_ts, dtype=np.int64)
        if eng.shape[0] != n:
            raise ValueError("engine_ts: one time per record")
        if n and ((np.diff(eng) < 0).any() or (eng > ts_view).any()):
            raise ValueError("engine_ts must be non-decreasing and <= each record's ts")
    cdef const int64_t *E = <const int64_t *>cnp.PyArray_DATA(eng)
    cdef const uint8_t *src = <const uint8_t *>cnp.PyArray_DATA(arr)
    cdef Py_ssize_t ka = 0, kd = 0
    cdef uint64_t hseq = 1, n_exec = 0
    cdef int64_t ta, tc, te, td
    cdef acc_t ao, ar, ae
    cdef uint8_t ev[128]
    cdef uint8_t jslot[128]
    cdef bint jr = collect and journal
    cdef bint has_progress = progress is not None
    cdef Py_ssize_t next_progress = progress_every if progress_every > 0 else n + 1
    err = None
    ao.size = 64
    ar.size = 128
    ae.size = 128
    ao.cap = ar.cap = ae.cap = 4096
    ao.n = ar.n = ae.n = 0
    ao.oom = ar.oom = ae.oom = 0
    ao.buf = ar.buf = ae.buf = NULL
    if collect:
        ao.buf = <uint8_t *>malloc(ao.cap * 64)
        ar.buf = <uint8_t *>malloc(ar.cap * 128)
        ae.buf = <uint8_t *>malloc(ae.cap * 128)
    core.orders_budget = 1 << 40
    with nogil:
        core.clear_outputs()
        while True:
            ta = E[ka] if ka < n else INT64_MAX
            tc = engine.next_arrival()
            te = engine.next_delivery()
            td = (<const ls_hdr_t *>(src + kd * size)).ts if kd < n else INT64_MAX
            if ka < n and ta <= tc and ta <= te and ta <= td:
                # 0. the market moves at the venue
                engine.on_md(src + ka * size, ta)
                ka += 1
            elif tc != INT64_MAX and tc <= te and tc <= td:
                # 1. commands arrive at the venue
                engine.advance_to(tc)
            elif te != INT64_MAX and te <= td:
                # 2. an execution event reaches the core
                engine.pop_event(ev)
                n_exec += 1
                (<ls_exec_t *>ev).seq = n_exec
                if jr:
                    _journal(&ar, ev, 128, jslot)
                core.process(ev, hseq)
                hseq += 1
                if collect:
                    _acc_add(&ae, ev, 1)
                if jr:
                    _drain_journaled(core, engine, &ao, &ar, jslot)
                else:
                    _drain(core, engine, &ao, &ar, collect)
            elif kd < n:
                # 3. a market record reaches the core
                if jr:
                    _journal(&ar, src + kd * size, size, jslot)
                core.process(src + kd * size, hseq)
                hseq += 1
                kd += 1
                if jr:
                    _drain_journaled(core, engine, &ao, &ar, jslot)
                else:
                    _drain(core, engine, &ao, &ar, collect)
                if has_progress and kd >= next_progress:
                    next_progress += progress_every
                    with gil:
                        try:
                            progress(kd, hseq - 1)
                        except BaseException as e:  # Ctrl-C: stop, free, re-raise below
                            err = e
                    if err is not None:
                        break
            else:
                break
    if err is not None:
        free(ao.buf)
        free(ar.buf)
        free(ae.buf)
        raise err
    if has_progress:
        progress(kd, hseq - 1)
    if ao.oom or ar.oom or ae.oom:
        free(ao.buf)
        free(ar.buf)
        free(ae.buf)
        raise MemoryError()
    engine._check()
    out = {"inputs": int(hseq - 1), "md_events": int(n), "exec_events": int(n_exec),
           "venue_fills": int(engine.n_fills), "engine": engine}
    if collect:
        orders = np.empty(ao.n, dtype=DTYPES["ORDER_CMD"])
        records = np.empty(ar.n, dtype=SLOT128)
        execs = np.empty(ae.n, dtype=SLOT128)
        if ao.n:
            memcpy(cnp.PyArray_DATA(orders), ao.buf, ao.n * 64)
        if ar.n:
            memcpy(cnp.PyArray_DATA(records), ar.buf, ar.n * 128)
        if ae.n:
            memcpy(cnp.PyArray_DATA(execs), ae.buf, ae.n * 128)
        out.update(orders=orders, records=records, execs=execs)
    free(ao.buf)
    free(ar.buf)
    free(ae.buf)
    return out
