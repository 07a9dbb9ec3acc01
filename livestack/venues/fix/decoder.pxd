# The contract of the ExecutionReport / OrderCancelReject decoder (C, nogil): the batch entry point
# decode_stream and the per-message _decode of the adapter's fast path.
from libc.stdint cimport uint32_t
from livestack.schema.records cimport ls_exec_t


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
