# The compiled core of the simulated market's order-flow model (livestack.feeds.sim): the same
# algorithm as the pure-Python reference ``PyMarketModel``, record for record, over C arrays.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from livestack.schema.records cimport ls_hdr_t

# One 64-byte market-data slot as the overlay dtype ``livestack.feeds.sim.MD_OVERLAY`` lays it out:
# the schema's record header, then ts_event and four generic words.
cdef struct md_rec_t:
    ls_hdr_t h
    int64_t ts_event
    int64_t a
    int64_t b
    int64_t c
    int64_t d


cdef class ModelCore:
    # parameters
    cdef readonly object instrument
    cdef readonly object params
    cdef uint32_t inst_id
    cdef int64_t tick, lot
    cdef int levels
    cdef double mean_gap, p_improve, fair_sigma, lean_k, pm, pl
    cdef double log_keep, log_qty, log_mqty
    cdef bint bbo
    # random draws: numpy blocks consumed from the end, like list.pop()
    cdef object rng
    cdef object _ua, _ga, _ea
    cdef double[::1] _u, _g, _e
    cdef Py_ssize_t _nu, _ng, _ne
    # book: quantities in lots over a circular window of ticks
    cdef int64_t[::1] _bq, _aq
    cdef object _bqa, _aqa
    cdef readonly int64_t best_bid, best_ask
    cdef readonly Py_ssize_t nb, na
    cdef int64_t tot_b, tot_a
    cdef readonly double fair
    cdef readonly int64_t update_id, trade_id, events, t_ns
    cdef int64_t _next_t
    cdef int64_t _top[4]
    cdef public bint snapshot_sent
    # output
    cdef object _dtype
    cdef object _out
    cdef md_rec_t *_rec
    cdef Py_ssize_t _n, _cap
    # changed levels of one market order
    cdef int64_t[::1] _chg_px, _chg_q
    cdef object _chga, _chgb

    cdef double _uni(self) except? -1.0
    cdef double _gauss(self) except? -1.0
    cdef double _expo(self) except? -1.0
    cdef int64_t _geom(self, double log_keep) except? -1
    cdef int _reserve(self, Py_ssize_t extra) except -1
    cdef void _emit(self, uint16_t kind, uint8_t flags, int64_t t, int64_t a, int64_t b, int64_t c, int64_t d) noexcept
    cdef void _level(self, int64_t t, bint buy, int64_t px, int64_t q, bint last) noexcept
    cdef int _limit(self, int64_t t, bint buy, double lean) except -1
    cdef int _cancel(self, int64_t t, bint buy) except -1
    cdef int _market(self, int64_t t, bint buy, int64_t qty) except -1
    cdef int _prune(self, int64_t t) except -1
    cdef int64_t _worst(self, bint buy) noexcept
