# The contract of the FIX codec: the extension types the session layer and the adapter use (C
# primitives of cext/ls_fix.h come from _ls_fix.pxd; ExecutionReport decoding is decoder.pxd).
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t

from livestack.venues.fix._ls_fix cimport *


cdef class Framer:
    cdef bytearray _buf
    cdef Py_ssize_t _pos
    cdef readonly Py_ssize_t max_body
    cdef readonly object counters


cdef class FixMessage:
    cdef readonly bytes raw
    cdef int32_t *_tags
    cdef int32_t *_offs
    cdef int32_t *_lens
    cdef Py_ssize_t _n
    cdef Py_ssize_t _cap
    cdef int _parse(self) except -1
    cdef Py_ssize_t _find(self, int tag) noexcept


cdef class Encoder:
    cdef char *_buf
    cdef Py_ssize_t _cap
    cdef Py_ssize_t _pos
    cdef readonly bytes begin_string
    cdef readonly bytes sender_comp_id
    cdef readonly bytes target_comp_id
    cdef char handl_inst
    cdef int _handl_inst(self) except -1
    cdef int _reserve(self, Py_ssize_t n) except -1
    cdef int _put_raw(self, const char *s, Py_ssize_t n) except -1
    cdef int _put_tag(self, int tag) except -1
    cdef int _put_str(self, int tag, const char *s, Py_ssize_t n) except -1
    cdef int _put_int(self, int tag, int64_t v) except -1
    cdef int _put_fixed(self, int tag, int64_t v, int decimals) except -1
    cdef int _put_time(self, int tag, int64_t ns) except -1
    cdef int _begin(self, const char *msg_type, Py_ssize_t tn, int64_t seq, int64_t now_ns,
                    bint poss_dup, int64_t orig_sending_ns) except -1
    cdef bytes _finish(self)
    cdef int _instrument_side(self, bytes symbol, int side) except -1
    cdef int _order_terms(self, int ord_type, int tif, int64_t price, int price_decimals) except -1
