# C declarations of cext/ls_fix.h and cext/ls_fixed.h (nogil) for the FIX Cython modules (codec,
# decoder). Declarations only: no module of its own.
from libc.stdint cimport int64_t, uint64_t

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
