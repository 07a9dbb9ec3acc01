# The contract of the market-data record buffer the Binance decoder fills: a growable array of
# 64-byte MD slots (dtype livestack.schema.SLOT64) written in place from C, plus the strict parser
# of Binance price-level arrays ([["price","qty"], ...]) straight into MD_LEVEL records.
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from livestack.ipc.ring cimport Ring

cimport cython


@cython.final
cdef class MdBuffer:
    cdef readonly object arr
    cdef uint8_t *base
    cdef readonly Py_ssize_t n
    cdef readonly Py_ssize_t cap

    cdef int _reserve(self, Py_ssize_t extra) except -1
    cpdef Py_ssize_t add_levels(self, object raw, uint8_t side, uint32_t instrument, int64_t ts,
                                int64_t ts_event, int64_t update_id, int price_decimals,
                                int qty_decimals, uint8_t flags) except -3
    cpdef void add_level(self, uint32_t instrument, int64_t ts, int64_t ts_event, int64_t price,
                         int64_t qty, int64_t update_id, uint8_t side, uint8_t flags) except *
    cpdef void add_trade(self, uint32_t instrument, int64_t ts, int64_t ts_event, int64_t price,
                         int64_t qty, int64_t trade_id, uint8_t side, uint8_t flags) except *
    cdef Py_ssize_t _levels(self, const unsigned char *p, Py_ssize_t n, uint8_t side,
                            uint32_t instrument, int64_t ts, int64_t ts_event, int64_t update_id,
                            int price_decimals, int qty_decimals, uint8_t flags) except -3
    cpdef int add_trade_raw(self, uint32_t instrument, int64_t ts, int64_t ts_event, object raw_price,
                            object raw_qty, int64_t trade_id, uint8_t side, int price_decimals,
                            int qty_decimals, uint8_t flags) except -3
    cpdef int add_bbo_raw(self, uint32_t instrument, int64_t ts, int64_t ts_event, object raw_bid_px,
                          object raw_bid_qty, object raw_ask_px, object raw_ask_qty, int price_decimals,
                          int qty_decimals, uint8_t flags) except -3
    cpdef void add_bbo(self, uint32_t instrument, int64_t ts, int64_t ts_event, int64_t bid_px,
                       int64_t bid_qty, int64_t ask_px, int64_t ask_qty, uint8_t flags) except *
    cpdef void add_status(self, uint32_t instrument, int64_t ts, int64_t ts_event, uint8_t status,
                          int64_t update_id, int64_t detail, uint8_t flags) except *
    cpdef Py_ssize_t write_to(self, Ring ring, uint64_t first_seq, Py_ssize_t start=*) except -1
    cpdef void flag_last(self, uint8_t flags) noexcept
    cpdef void truncate(self, Py_ssize_t n) noexcept


cdef struct Span:
    Py_ssize_t start
    Py_ssize_t end


cdef struct Fields:
    int64_t E, T, U, u, pu, t
    int have
    int m
    int type_err
    Span b, a, B, A, p, q


cdef class Diff:
    cdef public int64_t E, T, U, u, pu
    cdef public object b, a


@cython.final
cdef class SyncState:
    cdef int64_t *last_u
    cdef uint8_t *synced
    cdef uint8_t *first
    cdef readonly Py_ssize_t n

    cdef Py_ssize_t _at(self, Py_ssize_t i) except -1


# The combined-stream scanner; ``_decode`` is what a C-level websocket listener calls with the
# frame's payload pointer (livestack/feeds/_picows_binance.pyx).
@cython.final
cdef class FastDecoder:
    cdef MdBuffer out
    cdef dict routes
    cdef SyncState state
    cdef public Diff diff
    cdef public int slot

    cdef int _apply_in_sequence(self, const unsigned char *p, Fields *f, int slot, uint32_t inst, int pd,
                                int qd, bint futures, int64_t ts) except -100
    cpdef int decode(self, object msg, int64_t ts) except -100
    cdef int _decode(self, object msg, const unsigned char *p, Py_ssize_t n, int64_t ts) except -100
