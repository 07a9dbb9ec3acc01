# cython: language_level=3
"""Hot path of the Binance decoder: MD records written in place into a numpy slot array.

Why Cython: a depth diff carries tens to hundreds of ``["price","qty"]`` pairs. Turning each into
Python strings and ints (json.loads, then parse_fixed per string) costs ~1 µs per level; here the
level array is kept as raw JSON bytes by msgspec (``msgspec.Raw``, already validated as JSON) and
parsed by a strict little scanner that converts each decimal string exactly (``ls_parse_fixed``)
straight into an ``ls_md_level_t`` slot. No Python object per level.

Record layout: ``livestack/schema/spec.py`` (MD_LEVEL, MD_TRADE, MD_BBO, MD_STATUS, 64 bytes).
"""

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from libc.string cimport memset

import numpy as np

from livestack.schema.records cimport (
    ls_md_level_t, ls_md_trade_t, ls_md_bbo_t, ls_md_status_t,
    LS_RECORD_KIND_MD_LEVEL, LS_RECORD_KIND_MD_TRADE, LS_RECORD_KIND_MD_BBO, LS_RECORD_KIND_MD_STATUS,
)
from livestack.schema.dtypes import SLOT64
from livestack.schema import spec as _spec

cdef extern from "ls_fixed.h" nogil:
    int ls_parse_fixed(const char *s, size_t n, int decimals, int64_t *out)

#: add_levels results below zero
LEVELS_SYNTAX = -1
LEVELS_DECIMAL = -2

cdef uint8_t V_LEVEL = _spec.RECORDS_BY_NAME["MD_LEVEL"].version
cdef uint8_t V_TRADE = _spec.RECORDS_BY_NAME["MD_TRADE"].version
cdef uint8_t V_BBO = _spec.RECORDS_BY_NAME["MD_BBO"].version
cdef uint8_t V_STATUS = _spec.RECORDS_BY_NAME["MD_STATUS"].version

cdef enum:
    SLOT = 64


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
    """
    cdef const unsigned char[::1] buf = raw
    cdef Py_ssize_t n = buf.shape[0], i
    if n < 2 or buf[0] != 34 or buf[n - 1] != 34:
        return -1
    for i in range(1, n - 1):
        if buf[i] == 92 or buf[i] == 34:
            return -1
    if ls_parse_fixed(<const char *>&buf[1], n - 2, decimals, out) != 0:
        return -2
    return 0


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
        cdef const unsigned char[::1] buf = raw
        cdef Py_ssize_t n = buf.shape[0]
        cdef const unsigned char *p
        cdef Py_ssize_t i, s0 = 0, s1 = 0, e0, e1, start_n = self.n, count = 0
        cdef int64_t price, qty
        cdef ls_md_level_t *rec
        if n == 0:
            return LEVELS_SYNTAX
        # the shortest level `["1","0"]` plus separator is 10 bytes
        self._reserve(n // 9 + 2)
        p = &buf[0]
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
            (self.base + (self.n - 1) * SLOT)[3] |= flags

    cpdef void truncate(self, Py_ssize_t n) noexcept:
        """Forget records from index ``n`` on (roll back a message that turned out malformed)."""
        if 0 <= n < self.n:
            self.n = n

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
