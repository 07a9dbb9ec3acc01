# The contract of the FIX codec: C primitives from cext/ls_fix.h (nogil, for Cython callers) and the
# extension types the session layer and the adapter use.
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from livestack.schema.records cimport ls_exec_t

cdef extern from "ls_fix.h" nogil:
    enum: LS_FIX_NEED_MORE
    enum: LS_FIX_GARBAGE
    enum: LS_FIX_BAD_LENGTH
    enum: LS_FIX_BAD_CHECKSUM
    enum: LS_FIX_TOO_LONG
    unsigned ls_fix_checksum(const char *p, size_t n)
    ptrdiff_t ls_fix_frame(const char *p, size_t n, size_t max_body, size_t *skip, size_t *body_off)
    int ls_fix_next_field(const char *p, size_t n, size_t *pos, int *tag, size_t *voff, size_t *vlen)
    int64_t ls_fix_parse_uint(const char *s, size_t n)
    int64_t ls_fix_id(const char *s, size_t n)
    int ls_fix_exec_id_words(const char *s, size_t n, int64_t *lo, int64_t *hi)
    int ls_fix_order_id_word(const char *s, size_t n, int64_t *out)
    void ls_blake2b_128(const char *data, size_t n, const char *person, size_t person_len, uint64_t *out)
    int ls_fix_valid_at(const char *p, size_t n, size_t max_body)
    int ls_fix_group_counter(int tag)
    int ls_fix_header_tag(int tag)
    ctypedef struct ls_fix_dup_t:
        int in_groups
    void ls_fix_dup_init(ls_fix_dup_t *d)
    int ls_fix_dup_add(ls_fix_dup_t *d, int tag)
    int64_t ls_fix_parse_time(const char *s, size_t n)
    size_t ls_fix_format_time(char *out, int64_t ns)
    size_t ls_fix_format_int(char *out, int64_t v)
    size_t ls_fix_format_fixed(char *out, int64_t v, int decimals)

cdef extern from "ls_fixed.h" nogil:
    int ls_parse_fixed(const char *s, size_t n, int decimals, int64_t *out)


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


cdef struct ls_fix_instrument_t:
    char symbol[32]
    int symbol_len
    uint32_t id
    int price_decimals
    int qty_decimals


cdef class ExecDecoder:
    cdef ls_fix_instrument_t *_instruments
    cdef int _n_instruments
    cdef int _decode(self, const char *p, size_t n, ls_exec_t *e, int *bad_tag) noexcept nogil
