# cython: language_level=3
"""Backtest: the Core Runtime over a recorded capture with a simulated venue in the same process.

Fill model (deliberately simple, documented so results can be judged):

* **Latency**: every execution event the venue generates is delivered to the core just before the
  *next* market-data input (with that input's ``ts``): acks, fills and cancels arrive one input
  after the command or the market move that caused them.
* **NEW**: ACCEPTED. If the limit crosses the core's current book (buy >= best ask, sell <= best
  bid) it fills at once, completely, at the best opposite price (taker); POST_ONLY that would cross
  is REJECTED; IOC that does not cross is EXPIRED.
* **Resting limit orders** fill at their own price when a public trade prints *through* them
  (trade price < buy price, > sell price): PARTIALLY_FILLED / FILLED for min(leaves, trade qty);
  or completely when the book crosses them after a consistent update (best ask <= buy price, best
  bid >= sell price). Queue position is not modelled; our orders do not change the public book.
* **CANCEL** of a resting order: CANCELED; otherwise CANCEL_REJECTED. **REPLACE**: REPLACED with the
  new id, price and quantity (cumulative fill kept) when resting and the new quantity is above the
  filled quantity; otherwise CANCEL_REJECTED.

Everything is integer and input-ordered, so a run is bit-for-bit reproducible.
"""

from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memset, memcpy
from libc.stdint cimport uint8_t, uint32_t, int64_t, uint64_t

import numpy as np
cimport numpy as cnp

from livestack.schema.records cimport *
from livestack.core.ctx cimport *
from livestack.core.core cimport Core
from livestack.schema import DTYPES, SLOT128

cnp.import_array()


cdef class SimVenue:
    """The in-process simulated venue of the backtest (see the module docstring for the model)."""

    def __cinit__(self, int64_t capacity=8192, int64_t queue=1 << 16):
        self.cap = capacity
        self.n = 0
        self.orders = <sim_order_t *>malloc(capacity * sizeof(sim_order_t))
        self.q_cap = queue
        self.q = <uint8_t *>malloc(queue * 128)
        self.q2 = <uint8_t *>malloc(queue * 128)
        self.q_n = 0
        self.next_exec_id = 1
        self.next_venue_id = 1
        if self.orders == NULL or self.q == NULL or self.q2 == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.orders)
        free(self.q)
        free(self.q2)

    cdef ls_exec_t *_ev(self, const sim_order_t *o, int64_t exec_type) noexcept nogil:
        cdef ls_exec_t *e
        if self.q_n >= self.q_cap:
            self.dropped += 1
            e = <ls_exec_t *>self.q2  # scratch (never delivered): counted in `dropped`
        else:
            e = <ls_exec_t *>(self.q + self.q_n * 128)
            self.q_n += 1
        memset(e, 0, 128)
        e.kind = LS_RECORD_KIND_EXEC
        e.version = LS_EXEC_VERSION
        e.instrument = o.instrument
        e.exec_type = <uint8_t>exec_type
        e.client_order_id = o.id
        e.venue_order_id = o.venue_id
        e.side = <uint8_t>o.side
        e.price = o.price
        e.qty = o.qty
        e.cum_qty = o.cum
        e.leaves_qty = o.qty - o.cum if o.live else 0
        return e

    cdef void _fill(self, sim_order_t *o, int64_t px, int64_t q) noexcept nogil:
        if q > o.qty - o.cum:
            q = o.qty - o.cum
        if q <= 0:
            return
        o.cum += q
        if o.cum >= o.qty:
            o.live = 0
        cdef ls_exec_t *e = self._ev(o, LS_EXEC_TYPE_FILLED if o.cum >= o.qty else LS_EXEC_TYPE_PARTIALLY_FILLED)
        e.last_px = px
        e.last_qty = q
        e.exec_id = self.next_exec_id
        self.next_exec_id += 1
        self.fills += 1

    cdef sim_order_t *_find(self, int64_t id) noexcept nogil:
        cdef int64_t k
        for k in range(self.n):
            if self.orders[k].id == id and self.orders[k].live:
                return &self.orders[k]
        return NULL

    cdef void _compact(self) noexcept nogil:
        cdef int64_t k, j = 0
        for k in range(self.n):
            if self.orders[k].live:
                if j != k:
                    self.orders[j] = self.orders[k]
                j += 1
        self.n = j

    cdef void on_command(self, Core core, const uint8_t *rec) noexcept nogil:
        cdef const ls_order_cmd_t *c = <const ls_order_cmd_t *>rec
        cdef sim_order_t *o
        cdef sim_order_t tmp
        cdef int64_t i, bid, ask
        cdef int64_t *I
        cdef ls_exec_t *e
        cdef bint crosses
        i = core._inst_index(c.instrument)
        I = ls_ctx_inst(core.w, i)
        bid = I[LS_INST_BID_PX]
        ask = I[LS_INST_ASK_PX]
        if c.cmd == LS_ORDER_CMD_TYPE_NEW:
            if self.n >= self.cap:
                self._compact()
            memset(&tmp, 0, sizeof(tmp))
            tmp.id = c.client_order_id
            tmp.venue_id = self.next_venue_id
            self.next_venue_id += 1
            tmp.side = c.side
            tmp.price = c.price
            tmp.qty = c.qty
            tmp.tif = c.tif
            tmp.instrument = c.instrument
            tmp.live = 1
            crosses = (c.side == LS_SIDE_BUY and ask > 0 and ask <= c.price) or \
                (c.side == LS_SIDE_SELL and bid > 0 and bid >= c.price)
            if c.tif == LS_TIME_IN_FORCE_POST_ONLY and crosses or self.n >= self.cap:
                tmp.live = 0
                self._ev(&tmp, LS_EXEC_TYPE_REJECTED)
                return
            self._ev(&tmp, LS_EXEC_TYPE_ACCEPTED)
            if crosses:
                self._fill(&tmp, ask if c.side == LS_SIDE_BUY else bid, tmp.qty)
            elif c.tif == LS_TIME_IN_FORCE_IOC:
                tmp.live = 0
                self._ev(&tmp, LS_EXEC_TYPE_EXPIRED)
            if tmp.live:
                if self.n >= self.cap:
                    self._compact()
                self.orders[self.n] = tmp
                self.n += 1
        elif c.cmd == LS_ORDER_CMD_TYPE_CANCEL:
            o = self._find(c.client_order_id)
            if o == NULL:
                memset(&tmp, 0, sizeof(tmp))
                tmp.id = c.client_order_id
                tmp.instrument = c.instrument
                tmp.side = c.side
                self._ev(&tmp, LS_EXEC_TYPE_CANCEL_REJECTED)
            else:
                o.live = 0
                self._ev(o, LS_EXEC_TYPE_CANCELED)
                self._compact()
        elif c.cmd == LS_ORDER_CMD_TYPE_REPLACE:
            o = self._find(c.orig_client_order_id)
            if o == NULL or c.qty <= o.cum:
                memset(&tmp, 0, sizeof(tmp))
                tmp.id = c.client_order_id
                tmp.instrument = c.instrument
                tmp.side = c.side
                e = self._ev(&tmp, LS_EXEC_TYPE_CANCEL_REJECTED)
                e.orig_client_order_id = c.orig_client_order_id
            else:
                o.id = c.client_order_id
                o.price = c.price
                o.qty = c.qty
                e = self._ev(o, LS_EXEC_TYPE_REPLACED)
                e.orig_client_order_id = c.orig_client_order_id
                if (o.side == LS_SIDE_BUY and ask > 0 and ask <= o.price) or \
                        (o.side == LS_SIDE_SELL and bid > 0 and bid >= o.price):
                    self._fill(o, o.price, o.qty - o.cum)

    cdef void on_md(self, Core core, const uint8_t *rec) noexcept nogil:
        cdef const ls_hdr_t *h = <const ls_hdr_t *>rec
        cdef const ls_md_trade_t *t
        cdef sim_order_t *o
        cdef int64_t k, i, bid, ask
        cdef int64_t *I
        cdef bint any_filled = 0
        if self.n == 0:
            return
        if h.kind == LS_RECORD_KIND_MD_TRADE:
            t = <const ls_md_trade_t *>rec
            for k in range(self.n):
                o = &self.orders[k]
                if not o.live or o.instrument != h.instrument:
                    continue
                if (o.side == LS_SIDE_BUY and t.price < o.price) or (o.side == LS_SIDE_SELL and t.price > o.price):
                    self._fill(o, o.price, t.qty)
                    any_filled = 1
        elif (h.kind == LS_RECORD_KIND_MD_LEVEL and (h.flags & LS_RECORD_FLAG_LAST_IN_MSG)) or \
                h.kind == LS_RECORD_KIND_MD_BBO:
            i = core._inst_index(h.instrument)
            if i < 0:
                return
            I = ls_ctx_inst(core.w, i)
            if not I[LS_INST_HEALTHY]:
                return
            bid = I[LS_INST_BID_PX]
            ask = I[LS_INST_ASK_PX]
            for k in range(self.n):
                o = &self.orders[k]
                if not o.live or o.instrument != h.instrument:
                    continue
                if (o.side == LS_SIDE_BUY and ask > 0 and ask <= o.price) or \
                        (o.side == LS_SIDE_SELL and bid > 0 and bid >= o.price):
                    self._fill(o, o.price, o.qty - o.cum)
                    any_filled = 1
        if any_filled:
            self._compact()


cdef struct acc_t:
    uint8_t *buf
    uint64_t n
    uint64_t cap
    uint64_t size
    int oom


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


cdef inline void _drain(Core core, SimVenue venue, acc_t *ao, acc_t *ar, bint collect) noexcept nogil:
    cdef uint64_t k
    for k in range(core.n_out_orders):
        venue.on_command(core, core.out_orders + k * 64)
    if collect:
        _acc_add(ao, core.out_orders, core.n_out_orders)
        _acc_add(ar, core.out_records, core.n_out_records)
    core.clear_outputs()


def run(Core core, md, bint collect=True, SimVenue venue=None):
    """Run ``core`` over the market-data records ``md`` (64- or 128-byte slots) with a
    :class:`SimVenue`.

    Returns a dict: ``orders`` (ORDER_CMD array) and ``records`` (SLOT128 array) of every core
    output in order and ``execs`` (SLOT128) of every execution event fed back (when ``collect``),
    plus ``inputs`` (md + exec events processed), ``md_events``, ``exec_events``.
    """
    arr = np.ascontiguousarray(md)
    cdef Py_ssize_t size = arr.dtype.itemsize
    if size != 64 and size != 128:
        raise ValueError(f"md: slots of 64 or 128 bytes expected, got {size}")
    if venue is None:
        venue = SimVenue()
    cdef const uint8_t *src = <const uint8_t *>cnp.PyArray_DATA(arr)
    cdef Py_ssize_t n = arr.shape[0], k
    cdef int64_t j, nq
    cdef uint64_t hseq = 1, n_exec = 0
    cdef acc_t ao, ar, ae
    cdef uint8_t *swap
    cdef ls_hdr_t *eh
    cdef const ls_hdr_t *mh
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
        for k in range(n):
            mh = <const ls_hdr_t *>(src + k * size)
            # 1. execution events generated since the last input arrive now
            if venue.q_n:
                swap = venue.q
                nq = venue.q_n
                venue.q = venue.q2
                venue.q2 = swap
                venue.q_n = 0
                for j in range(nq):
                    eh = <ls_hdr_t *>(swap + j * 128)
                    eh.ts = mh.ts
                    eh.seq = n_exec + 1
                    core.process(swap + j * 128, hseq)
                    hseq += 1
                    n_exec += 1
                    if collect:
                        _acc_add(&ae, swap + j * 128, 1)
                    _drain(core, venue, &ao, &ar, collect)
            # 2. the market-data input
            core.process(src + k * size, hseq)
            hseq += 1
            _drain(core, venue, &ao, &ar, collect)
            # 3. the venue matches its resting orders against it
            venue.on_md(core, src + k * size)
    if ao.oom or ar.oom or ae.oom:
        free(ao.buf)
        free(ar.buf)
        free(ae.buf)
        raise MemoryError()
    out = {"inputs": int(hseq - 1), "md_events": int(n), "exec_events": int(n_exec),
           "venue_fills": int(venue.fills), "venue_dropped": int(venue.dropped)}
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
