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
