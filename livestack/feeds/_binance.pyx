# cython: language_level=3
"""Hot path of the Binance decoder: MD records written in place into a numpy slot array.

Why Cython: a depth diff carries tens to hundreds of ``["price","qty"]`` pairs. Turning each into
Python strings and ints (json.loads, then parse_fixed per string) costs ~1 µs per level; here the
level array is kept as raw JSON bytes by msgspec (``msgspec.Raw``, already validated as JSON) and
parsed by a strict little scanner that converts each decimal string exactly (``ls_parse_fixed``)
straight into an ``ls_md_level_t`` slot. No Python object per level.

Record layout: ``livestack/schema/spec.py`` (MD_LEVEL, MD_TRADE, MD_BBO, MD_STATUS, 64 bytes).
"""

cimport cython
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from libc.string cimport memcmp, memset
from libc.stdlib cimport calloc, free
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE

import numpy as np

from livestack.ipc.ring cimport Ring, ls_ring_write_batch
from livestack.schema.records cimport (
    ls_hdr_t, ls_md_level_t, ls_md_trade_t, ls_md_bbo_t, ls_md_status_t,
    LS_RECORD_KIND_MD_LEVEL, LS_RECORD_KIND_MD_TRADE, LS_RECORD_KIND_MD_BBO, LS_RECORD_KIND_MD_STATUS,
    LS_MD_LEVEL_SIZE, LS_MD_TRADE_SIZE, LS_MD_BBO_SIZE, LS_MD_STATUS_SIZE,
    LS_MD_LEVEL_VERSION, LS_MD_TRADE_VERSION, LS_MD_BBO_VERSION, LS_MD_STATUS_VERSION,
    LS_SIDE_BUY, LS_SIDE_SELL, LS_RECORD_FLAG_LAST_IN_MSG,
)
from livestack.schema.dtypes import SLOT64

cdef extern from "ls_fixed.h" nogil:
    int ls_parse_fixed(const char *s, size_t n, int decimals, int64_t *out)

#: add_levels results below zero
LEVELS_SYNTAX = -1
LEVELS_DECIMAL = -2

cdef uint8_t V_LEVEL = LS_MD_LEVEL_VERSION
cdef uint8_t V_TRADE = LS_MD_TRADE_VERSION
cdef uint8_t V_BBO = LS_MD_BBO_VERSION
cdef uint8_t V_STATUS = LS_MD_STATUS_VERSION

# Every MD record fills one slot of this size (the generated header asserts each struct's size);
# the buffer's dtype is the schema's 64-byte slot, checked at import below.
cdef enum:
    SLOT = LS_MD_LEVEL_SIZE

if not (LS_MD_TRADE_SIZE == LS_MD_BBO_SIZE == LS_MD_STATUS_SIZE == SLOT == SLOT64.itemsize):
    raise ImportError("livestack.feeds._binance: MD record sizes differ from the 64-byte slot; rebuild")


cdef inline Py_ssize_t _ws(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    while i < n and (p[i] == 32 or p[i] == 9 or p[i] == 10 or p[i] == 13):
        i += 1
    return i


cdef inline Py_ssize_t _string(const unsigned char *p, Py_ssize_t i, Py_ssize_t n,
                               Py_ssize_t *start) noexcept nogil:
    """At p[i] == '"': find the closing quote; returns the index after it, or -1."""
    if i >= n or p[i] != 34:
        return -1
    i += 1
    start[0] = i
    while i < n and p[i] != 34:
        if p[i] == 92:  # backslash: no escapes in a decimal string
            return -1
        i += 1
    if i >= n:
        return -1
    return i + 1


cdef int _raw_fixed(object raw, int decimals, int64_t *out) except -3:
    """A raw JSON string value (``"61800.30"``, quotes included) to fixed point.

    0 on success, -1 when ``raw`` is not a plain JSON string, -2 when it is not an exact decimal.
    (A bare Py_buffer, not a typed memoryview: acquiring a memoryview costs ~10x more.)
    """
    cdef Py_buffer view
    cdef const unsigned char *p
    cdef Py_ssize_t n, i
    cdef int rc = 0
    PyObject_GetBuffer(raw, &view, PyBUF_SIMPLE)
    try:
        p = <const unsigned char *>view.buf
        n = view.len
        if n < 2 or p[0] != 34 or p[n - 1] != 34:
            return -1
        for i in range(1, n - 1):
            if p[i] == 92 or p[i] == 34:
                return -1
        if ls_parse_fixed(<const char *>(p + 1), n - 2, decimals, out) != 0:
            return -2
        return 0
    finally:
        PyBuffer_Release(&view)


@cython.final
cdef class MdBuffer:
    """Growable array of 64-byte MD slots (``livestack.schema.SLOT64``) filled in place.

    ``arr[:n]`` are the records added so far; :meth:`take` hands them out as a view and empties
    the buffer (the view is valid until the next ``add_*``). Slot ``seq`` is left 0: the ring
    writer stamps it.
    """

    def __init__(self, Py_ssize_t capacity=4096):
        if capacity < 16:
            capacity = 16
        self.arr = np.zeros(capacity, dtype=SLOT64)
        self.base = <uint8_t *><size_t>self.arr.ctypes.data
        self.cap = capacity
        self.n = 0

    cdef int _reserve(self, Py_ssize_t extra) except -1:
        cdef Py_ssize_t need = self.n + extra
        cdef Py_ssize_t cap = self.cap
        if need <= cap:
            return 0
        while cap < need:
            cap *= 2
        new = np.zeros(cap, dtype=SLOT64)
        new[:self.n] = self.arr[:self.n]
        self.arr = new
        self.base = <uint8_t *><size_t>self.arr.ctypes.data
        self.cap = cap
        return 0

    cpdef Py_ssize_t add_levels(self, object raw, uint8_t side, uint32_t instrument, int64_t ts,
                                int64_t ts_event, int64_t update_id, int price_decimals,
                                int qty_decimals, uint8_t flags) except -3:
        """Parse a JSON level array ``[["price","qty"], ...]`` into MD_LEVEL records.

        Returns the number of records added, ``LEVELS_SYNTAX`` (-1) when the array is not exactly a
        list of two-string lists, or ``LEVELS_DECIMAL`` (-2) when a string is not an exact
        non-negative decimal at the instrument's scale (price must be > 0). On error nothing is
        added.
        """
        cdef Py_buffer view
        PyObject_GetBuffer(raw, &view, PyBUF_SIMPLE)
        try:
            return self._levels(<const unsigned char *>view.buf, view.len, side, instrument, ts,
                                ts_event, update_id, price_decimals, qty_decimals, flags)
        finally:
            PyBuffer_Release(&view)

    cdef Py_ssize_t _levels(self, const unsigned char *p, Py_ssize_t n, uint8_t side,
                            uint32_t instrument, int64_t ts, int64_t ts_event, int64_t update_id,
                            int price_decimals, int qty_decimals, uint8_t flags) except -3:
        cdef Py_ssize_t i, s0 = 0, s1 = 0, e0, e1, start_n = self.n, count = 0
        cdef int64_t price, qty
        cdef ls_md_level_t *rec
        if n == 0:
            return LEVELS_SYNTAX
        # the shortest level `["1","0"]` plus separator is 10 bytes
        self._reserve(n // 9 + 2)
        i = _ws(p, 0, n)
        if i >= n or p[i] != 91:  # [
            return LEVELS_SYNTAX
        i = _ws(p, i + 1, n)
        if i < n and p[i] == 93:  # ]
            i = _ws(p, i + 1, n)
            return 0 if i == n else LEVELS_SYNTAX
        while True:
            if i >= n or p[i] != 91:
                self.n = start_n
                return LEVELS_SYNTAX
            i = _ws(p, i + 1, n)
            e0 = _string(p, i, n, &s0)
            if e0 < 0:
                self.n = start_n
                return LEVELS_SYNTAX
            i = _ws(p, e0, n)
            if i >= n or p[i] != 44:  # ,
                self.n = start_n
                return LEVELS_SYNTAX
            i = _ws(p, i + 1, n)
            e1 = _string(p, i, n, &s1)
            if e1 < 0:
                self.n = start_n
                return LEVELS_SYNTAX
            i = _ws(p, e1, n)
            if i >= n or p[i] != 93:
                self.n = start_n
                return LEVELS_SYNTAX
            if (ls_parse_fixed(<const char *>(p + s0), e0 - 1 - s0, price_decimals, &price) != 0
                    or ls_parse_fixed(<const char *>(p + s1), e1 - 1 - s1, qty_decimals, &qty) != 0
                    or price <= 0 or qty < 0):
                self.n = start_n
                return LEVELS_DECIMAL
            rec = <ls_md_level_t *>(self.base + self.n * SLOT)
            memset(rec, 0, SLOT)
            rec.kind = LS_RECORD_KIND_MD_LEVEL
            rec.version = V_LEVEL
            rec.flags = flags
            rec.instrument = instrument
            rec.ts = ts
            rec.ts_event = ts_event
            rec.price = price
            rec.qty = qty
            rec.update_id = update_id
            rec.side = side
            self.n += 1
            count += 1
            i = _ws(p, i + 1, n)
            if i < n and p[i] == 44:
                i = _ws(p, i + 1, n)
                continue
            if i < n and p[i] == 93:
                i = _ws(p, i + 1, n)
                if i != n:
                    self.n = start_n
                    return LEVELS_SYNTAX
                return count
            self.n = start_n
            return LEVELS_SYNTAX

    cpdef void add_level(self, uint32_t instrument, int64_t ts, int64_t ts_event, int64_t price,
                         int64_t qty, int64_t update_id, uint8_t side, uint8_t flags) except *:
        """Append one MD_LEVEL from fixed-point values (the OKX / Kraken / DBN books)."""
        self._reserve(1)
        cdef ls_md_level_t *rec = <ls_md_level_t *>(self.base + self.n * SLOT)
        memset(rec, 0, SLOT)
        rec.kind = LS_RECORD_KIND_MD_LEVEL
        rec.version = V_LEVEL
        rec.flags = flags
        rec.instrument = instrument
        rec.ts = ts
        rec.ts_event = ts_event
        rec.price = price
        rec.qty = qty
        rec.update_id = update_id
        rec.side = side
        self.n += 1

    cpdef void add_trade(self, uint32_t instrument, int64_t ts, int64_t ts_event, int64_t price,
                         int64_t qty, int64_t trade_id, uint8_t side, uint8_t flags) except *:
        """Append one MD_TRADE."""
        self._reserve(1)
        cdef ls_md_trade_t *rec = <ls_md_trade_t *>(self.base + self.n * SLOT)
        memset(rec, 0, SLOT)
        rec.kind = LS_RECORD_KIND_MD_TRADE
        rec.version = V_TRADE
        rec.flags = flags
        rec.instrument = instrument
        rec.ts = ts
        rec.ts_event = ts_event
        rec.price = price
        rec.qty = qty
        rec.trade_id = trade_id
        rec.side = side
        self.n += 1

    cpdef int add_trade_raw(self, uint32_t instrument, int64_t ts, int64_t ts_event, object raw_price,
                            object raw_qty, int64_t trade_id, uint8_t side, int price_decimals,
                            int qty_decimals, uint8_t flags) except -3:
        """Append one MD_TRADE from raw JSON strings; 0, or -1 (not strings) / -2 (bad decimal, or
        price/qty not positive) and nothing added."""
        cdef int64_t px = 0, qty = 0
        cdef int rc = _raw_fixed(raw_price, price_decimals, &px)
        if rc == 0:
            rc = _raw_fixed(raw_qty, qty_decimals, &qty)
        if rc != 0:
            return rc
        if px <= 0 or qty <= 0:
            return LEVELS_DECIMAL
        self.add_trade(instrument, ts, ts_event, px, qty, trade_id, side, flags)
        return 0

    cpdef int add_bbo_raw(self, uint32_t instrument, int64_t ts, int64_t ts_event, object raw_bid_px,
                          object raw_bid_qty, object raw_ask_px, object raw_ask_qty, int price_decimals,
                          int qty_decimals, uint8_t flags) except -3:
        """Append one MD_BBO from raw JSON strings; 0, or -1 / -2 as :meth:`add_trade_raw`
        (values must be >= 0) and nothing added."""
        cdef int64_t bp = 0, bq = 0, ap = 0, aq = 0
        cdef int rc = _raw_fixed(raw_bid_px, price_decimals, &bp)
        if rc == 0:
            rc = _raw_fixed(raw_bid_qty, qty_decimals, &bq)
        if rc == 0:
            rc = _raw_fixed(raw_ask_px, price_decimals, &ap)
        if rc == 0:
            rc = _raw_fixed(raw_ask_qty, qty_decimals, &aq)
        if rc != 0:
            return rc
        if bp < 0 or bq < 0 or ap < 0 or aq < 0:
            return LEVELS_DECIMAL
        self.add_bbo(instrument, ts, ts_event, bp, bq, ap, aq, flags)
        return 0

    cpdef void add_bbo(self, uint32_t instrument, int64_t ts, int64_t ts_event, int64_t bid_px,
                       int64_t bid_qty, int64_t ask_px, int64_t ask_qty, uint8_t flags) except *:
        """Append one MD_BBO."""
        self._reserve(1)
        cdef ls_md_bbo_t *rec = <ls_md_bbo_t *>(self.base + self.n * SLOT)
        memset(rec, 0, SLOT)
        rec.kind = LS_RECORD_KIND_MD_BBO
        rec.version = V_BBO
        rec.flags = flags
        rec.instrument = instrument
        rec.ts = ts
        rec.ts_event = ts_event
        rec.bid_px = bid_px
        rec.bid_qty = bid_qty
        rec.ask_px = ask_px
        rec.ask_qty = ask_qty
        self.n += 1

    cpdef void add_status(self, uint32_t instrument, int64_t ts, int64_t ts_event, uint8_t status,
                          int64_t update_id, int64_t detail, uint8_t flags) except *:
        """Append one MD_STATUS."""
        self._reserve(1)
        cdef ls_md_status_t *rec = <ls_md_status_t *>(self.base + self.n * SLOT)
        memset(rec, 0, SLOT)
        rec.kind = LS_RECORD_KIND_MD_STATUS
        rec.version = V_STATUS
        rec.flags = flags
        rec.instrument = instrument
        rec.ts = ts
        rec.ts_event = ts_event
        rec.update_id = update_id
        rec.detail = detail
        rec.status = status
        self.n += 1

    cpdef void flag_last(self, uint8_t flags) noexcept:
        """OR ``flags`` into the last record (LAST_IN_MSG closes a message)."""
        if self.n > 0:
            (<ls_hdr_t *>(self.base + (self.n - 1) * SLOT)).flags |= flags

    cpdef void truncate(self, Py_ssize_t n) noexcept:
        """Forget records from index ``n`` on (roll back a message that turned out malformed)."""
        if 0 <= n < self.n:
            self.n = n

    cpdef Py_ssize_t write_to(self, Ring ring, uint64_t first_seq, Py_ssize_t start=0) except -1:
        """Stamp ``seq`` (``first_seq``, +1 ...) on records ``start:n`` and write the prefix that
        fits into ``ring`` (64-byte slots); returns how many were written. No numpy on this path."""
        cdef Py_ssize_t i
        cdef uint64_t k
        if ring.ring == NULL:
            raise ValueError("write_to: ring is closed")
        if ring.ring.slot_size != SLOT:
            raise ValueError(f"write_to: ring {ring.name} has {ring.ring.slot_size}-byte slots, MD records are 64")
        if start >= self.n:
            return 0
        for i in range(start, self.n):
            (<ls_hdr_t *>(self.base + i * SLOT)).seq = first_seq + <uint64_t>(i - start)
        with nogil:
            k = ls_ring_write_batch(ring.ring, self.base + start * SLOT, <uint64_t>(self.n - start))
        return <Py_ssize_t>k

    def view(self):
        """``arr[:n]``: the records added so far (a view, valid until the next add)."""
        return self.arr[:self.n]

    def take(self):
        """The records added so far as a view, and empty the buffer."""
        v = self.arr[:self.n]
        self.n = 0
        return v

    def clear(self):
        self.n = 0

    def __len__(self):
        return self.n


# Message scanner: one pass over a combined-stream message, strict JSON (_binance_scan.pxi)
include "_binance_scan.pxi"


cdef class Diff:
    """A depth diff as the BookSync needs it (level arrays kept as raw JSON bytes)."""

    def __repr__(self):
        return f"Diff(U={self.U}, u={self.u}, pu={self.pu}, E={self.E})"


@cython.final
cdef class SyncState:
    """The book-sync state of ``n`` instruments (synced, first diff after a snapshot, last update
    id), kept in C so that :class:`FastDecoder` can apply an in-sequence depth diff of a synced
    book itself. ``binance.BookSync`` reads and writes its state here (properties), so the Python
    procedure and the C fast path never disagree.
    """

    def __cinit__(self, Py_ssize_t n):
        if n < 1:
            raise ValueError(f"SyncState: n must be >= 1, got {n}")
        self.n = n
        self.last_u = <int64_t *>calloc(n, sizeof(int64_t))
        self.synced = <uint8_t *>calloc(n, 1)
        self.first = <uint8_t *>calloc(n, 1)
        if self.last_u == NULL or self.synced == NULL or self.first == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.last_u)
        free(self.synced)
        free(self.first)

    cdef Py_ssize_t _at(self, Py_ssize_t i) except -1:
        if i < 0 or i >= self.n:
            raise IndexError(f"SyncState: slot {i} not in 0..{self.n - 1}")
        return i

    def get_last_u(self, Py_ssize_t i):
        return self.last_u[self._at(i)]

    def set_last_u(self, Py_ssize_t i, int64_t v):
        self.last_u[self._at(i)] = v

    def get_synced(self, Py_ssize_t i):
        return bool(self.synced[self._at(i)])

    def set_synced(self, Py_ssize_t i, bint v):
        self.synced[self._at(i)] = v

    def get_first(self, Py_ssize_t i):
        return bool(self.first[self._at(i)])

    def set_first(self, Py_ssize_t i, bint v):
        self.first[self._at(i)] = v


@cython.final
cdef class FastDecoder:
    """Scans combined-stream messages; writes trade / bookTicker records itself, hands depth diffs back.

    ``routes``: ``{stream name: (kind, slot, instrument id, price decimals, qty decimals, futures)}``.
    :meth:`decode` returns DONE, DEPTH (then :attr:`diff` and :attr:`slot` are set) or an ERR_*.

    With a ``state`` (:class:`SyncState`, one entry per slot), a depth diff for a synced book that
    continues its update-id chain (USD-M: ``pu`` equals the last ``u``; spot: ``U <= last + 1 < u + 1``)
    is applied here and DONE returned, with exactly the records ``BookSync._apply`` writes. Anything
    else (not synced, first diff after a snapshot, a break in the chain, an old diff, a malformed
    level array) goes back as DEPTH to the Python procedure, which handles it as before.
    """

    def __init__(self, MdBuffer out, dict routes, SyncState state=None):
        self.out = out
        self.routes = {k.encode() if isinstance(k, str) else k: v for k, v in routes.items()}
        self.state = state
        self.diff = None
        self.slot = -1
        if state is not None:
            for v in routes.values():
                if not 0 <= v[1] < state.n:
                    raise ValueError(f"FastDecoder: route slot {v[1]} outside the state's 0..{state.n - 1}")

    cdef int _apply_in_sequence(self, const unsigned char *p, Fields *f, int slot, uint32_t inst, int pd,
                                int qd, bint futures, int64_t ts) except -100:
        """The synced-book fast path: 1 applied (DONE), 0 not applicable here (Python decides)."""
        cdef SyncState st = self.state
        cdef int64_t last, tev
        cdef Py_ssize_t start, nb, na
        cdef MdBuffer out = self.out
        if st is None or not st.synced[slot] or st.first[slot]:
            return 0
        last = st.last_u[slot]
        if futures:
            if f.pu != last:
                return 0
        elif f.u <= last or f.U > last + 1:
            return 0
        tev = (f.T if futures and (f.have & F_T) and f.T > 0 else f.E) * 1000000
        start = out.n
        nb = out._levels(p + f.b.start, f.b.end - f.b.start, LS_SIDE_BUY, inst, ts, tev, f.u, pd, qd, 0)
        na = out._levels(p + f.a.start, f.a.end - f.a.start, LS_SIDE_SELL, inst, ts, tev, f.u, pd, qd, 0) if nb >= 0 else nb
        if nb < 0 or na < 0:
            out.truncate(start)
            return 0
        if nb + na:
            out.flag_last(LS_RECORD_FLAG_LAST_IN_MSG)
        st.last_u[slot] = f.u
        return 1

    cpdef int decode(self, object msg, int64_t ts) except -100:
        cdef Py_buffer view
        PyObject_GetBuffer(msg, &view, PyBUF_SIMPLE)
        try:
            return self._decode(msg, <const unsigned char *>view.buf, view.len, ts)
        finally:
            PyBuffer_Release(&view)

    cdef int _decode(self, object msg, const unsigned char *p, Py_ssize_t n, int64_t ts) except -100:
        cdef Fields f
        cdef Py_ssize_t i, k0, k1, s0 = -1, s1 = -1
        cdef bint plain, have_data = False, bad = False
        cdef int kind, slot, pd, qd, rc
        cdef uint32_t inst
        cdef int64_t px = 0, qty = 0, bp = 0, bq = 0, ap = 0, aq = 0, tev
        memset(&f, 0, sizeof(Fields))
        f.m = -1
        f.b.start = f.a.start = f.B.start = f.A.start = f.p.start = f.q.start = -1
        i = _ws(p, 0, n)
        if i >= n:
            return C_ERR_JSON
        if p[i] != 123:
            i = _skip_value(p, i, n, 0)
            if i < 0 or _ws(p, i, n) != n:
                return C_ERR_JSON
            return C_ERR_FIELD
        i = _ws(p, i + 1, n)
        if i < n and p[i] == 125:
            i += 1
        else:
            while True:
                if i >= n or p[i] != 34:
                    return C_ERR_JSON
                k0 = i + 1
                i = _skip_str(p, i, n, &plain)
                if i < 0:
                    return C_ERR_JSON
                k1 = i - 1
                i = _ws(p, i, n)
                if i >= n or p[i] != 58:
                    return C_ERR_JSON
                i = _ws(p, i + 1, n)
                if plain and k1 - k0 == 6 and memcmp(p + k0, b"stream", 6) == 0:
                    if i < n and p[i] == 34:
                        s0 = i + 1
                        i = _skip_str(p, i, n, &plain)
                        s1 = i - 1
                        if not plain:
                            bad = True
                    else:
                        i = _skip_value(p, i, n, 1)
                        bad = True
                elif plain and k1 - k0 == 4 and memcmp(p + k0, b"data", 4) == 0:
                    if i < n and p[i] == 123:
                        i = _data(p, i, n, &f)
                        have_data = True
                    else:
                        i = _skip_value(p, i, n, 1)
                        bad = True
                else:
                    i = _skip_value(p, i, n, 1)
                if i < 0:
                    return C_ERR_JSON
                i = _ws(p, i, n)
                if i < n and p[i] == 44:
                    i = _ws(p, i + 1, n)
                    continue
                if i < n and p[i] == 125:
                    i += 1
                    break
                return C_ERR_JSON
        if _ws(p, i, n) != n:
            return C_ERR_JSON
        if bad or f.type_err or s0 < 0 or not have_data:
            return C_ERR_FIELD
        route = self.routes.get((<const char *>p + s0)[:s1 - s0])
        if route is None:
            return C_ERR_STREAM
        kind, slot, inst, pd, qd, futures = route
        out = self.out
        if kind == C_KIND_TRADE:
            if (f.have & (F_T | F_t)) != (F_T | F_t) or f.m < 0 or not _ms_ok(f.T):
                return C_ERR_FIELD
            rc = _str_fixed(p, f.p, pd, &px)
            if rc == 0:
                rc = _str_fixed(p, f.q, qd, &qty)
            if rc != 0:
                return rc
            if px <= 0 or qty <= 0:
                return C_ERR_DECIMAL
            # buyer is the maker: the aggressor sold
            out.add_trade(inst, ts, f.T * 1000000, px, qty, f.t, LS_SIDE_SELL if f.m else LS_SIDE_BUY,
                          LS_RECORD_FLAG_LAST_IN_MSG)
            return C_DONE
        if kind == C_KIND_BBO:
            rc = _str_fixed(p, f.b, pd, &bp)
            if rc == 0:
                rc = _str_fixed(p, f.B, qd, &bq)
            if rc == 0:
                rc = _str_fixed(p, f.a, pd, &ap)
            if rc == 0:
                rc = _str_fixed(p, f.A, qd, &aq)
            if rc != 0:
                return rc
            if bp < 0 or bq < 0 or ap < 0 or aq < 0:
                return C_ERR_DECIMAL
            if ((f.have & F_T) and not _ms_ok(f.T)) or ((f.have & F_E) and not _ms_ok(f.E)):
                return C_ERR_FIELD
            if (f.have & F_T) and f.T > 0:
                tev = f.T * 1000000
            elif (f.have & F_E) and f.E > 0:
                tev = f.E * 1000000
            else:
                tev = ts
            out.add_bbo(inst, ts, tev, bp, bq, ap, aq, LS_RECORD_FLAG_LAST_IN_MSG)
            return C_DONE
        # depth
        if (f.have & (F_E | F_U | F_u)) != (F_E | F_U | F_u) or f.b.start < 0 or f.a.start < 0:
            return C_ERR_FIELD
        if not _ms_ok(f.E) or ((f.have & F_T) and not _ms_ok(f.T)):
            return C_ERR_FIELD
        if p[f.b.start] != 91 or p[f.a.start] != 91:
            return C_ERR_FIELD
        if futures and not (f.have & F_pu):
            return C_ERR_FIELD
        if self._apply_in_sequence(p, &f, slot, inst, pd, qd, futures, ts):
            return C_DONE
        d = Diff.__new__(Diff)
        d.E = f.E
        d.T = f.T if (f.have & F_T) else 0
        d.U = f.U
        d.u = f.u
        d.pu = f.pu if (f.have & F_pu) else -1
        d.b = (<const char *>p + f.b.start)[:f.b.end - f.b.start]
        d.a = (<const char *>p + f.a.start)[:f.a.end - f.a.start]
        self.diff = d
        self.slot = slot
        return C_DEPTH
