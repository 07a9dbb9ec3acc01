# cython: language_level=3
"""The bodies of Core's Python entry points that are not on any hot path: batch processing for
tests / replay (the same ``Core.process`` the harness calls) and views of the state (books,
instrument blocks, orders). ``Core``'s ``def`` methods are one-line calls of these (pyapi.pxd)."""

from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy
from libc.stdint cimport uint8_t, uint64_t, int64_t

import numpy as np
cimport numpy as cnp

from livestack.schema.records cimport *
from livestack.core.ctx cimport *
from livestack.core.core cimport Core
from livestack.core.book cimport BookSide
from livestack.core.orders cimport order_index_get
from livestack.core.order_table cimport live_slots

from livestack.schema import DTYPES, SLOT128

cnp.import_array()


def process_array(Core c, inputs, uint64_t hseq0=1):
    arr = np.ascontiguousarray(inputs)
    cdef Py_ssize_t size = arr.dtype.itemsize
    if size != 64 and size != 128:
        raise ValueError(f"inputs: slots of 64 or 128 bytes expected, got {size}")
    cdef const uint8_t *src = <const uint8_t *>cnp.PyArray_DATA(arr)
    cdef Py_ssize_t n = arr.shape[0], k
    cdef uint64_t no = 0, nr = 0, cap_o = 1024, cap_r = 4096
    cdef uint8_t *acc_o = <uint8_t *>malloc(cap_o * 64)
    cdef uint8_t *acc_r = <uint8_t *>malloc(cap_r * 128)
    cdef uint8_t *tmp
    cdef bint oom = 0
    if acc_o == NULL or acc_r == NULL:
        free(acc_o)
        free(acc_r)
        raise MemoryError()
    with nogil:
        for k in range(n):
            c.clear_outputs()
            c.process(src + k * size, hseq0 + k)
            if no + c.n_out_orders > cap_o:
                while no + c.n_out_orders > cap_o:
                    cap_o *= 2
                tmp = <uint8_t *>realloc(acc_o, cap_o * 64)
                if tmp == NULL:
                    oom = 1
                    break
                acc_o = tmp
            if nr + c.n_out_records > cap_r:
                while nr + c.n_out_records > cap_r:
                    cap_r *= 2
                tmp = <uint8_t *>realloc(acc_r, cap_r * 128)
                if tmp == NULL:
                    oom = 1
                    break
                acc_r = tmp
            memcpy(acc_o + no * 64, c.out_orders, c.n_out_orders * 64)
            memcpy(acc_r + nr * 128, c.out_records, c.n_out_records * 128)
            no += c.n_out_orders
            nr += c.n_out_records
        c.clear_outputs()
    if oom:
        free(acc_o)
        free(acc_r)
        raise MemoryError()
    orders = np.empty(no, dtype=DTYPES["ORDER_CMD"])
    records = np.empty(nr, dtype=SLOT128)
    if no:
        memcpy(cnp.PyArray_DATA(orders), acc_o, no * 64)
    if nr:
        memcpy(cnp.PyArray_DATA(records), acc_r, nr * 128)
    free(acc_o)
    free(acc_r)
    return orders, records


def full_book(Core c, instrument_id):
    cdef int64_t i = c._index(instrument_id)
    cdef BookSide *b = &c.bids[i]
    cdef BookSide *a = &c.asks[i]
    cdef int64_t k, m
    bids = np.empty((b.live, 2), dtype=np.int64)
    asks = np.empty((a.live, 2), dtype=np.int64)
    m = 0
    for k in range(b.n - 1, -1, -1):
        if b.qty[k] > 0:
            bids[m, 0] = b.price[k]
            bids[m, 1] = b.qty[k]
            m += 1
    m = 0
    for k in range(a.n - 1, -1, -1):
        if a.qty[k] > 0:
            asks[m, 0] = a.price[k]
            asks[m, 1] = a.qty[k]
            m += 1
    return bids, asks


def book(Core c, instrument_id):
    cdef int64_t i = c._index(instrument_id)
    cdef int64_t *inst_ctx = ls_ctx_inst(c.ctx_words, i)
    base = c.ctx_words[LS_CTX_INST_OFF] + i * c.ctx_words[LS_CTX_INST_STRIDE]
    D = c.ctx_book_depth
    v = c._ctx_array
    nb, na = inst_ctx[LS_INST_N_BIDS], inst_ctx[LS_INST_N_ASKS]
    bp = base + c.ctx_words[LS_CTX_INST_BIDPX_OFF]
    ap = base + c.ctx_words[LS_CTX_INST_ASKPX_OFF]
    bids = np.stack([v[bp:bp + nb], v[bp + D:bp + D + nb]], axis=1).copy()
    asks = np.stack([v[ap:ap + na], v[ap + D:ap + D + na]], axis=1).copy()
    return bids, asks


def instrument_state(Core c, instrument_id):
    from livestack.core import ctx as C
    cdef int64_t i = c._index(instrument_id)
    base = c.ctx_words[LS_CTX_INST_OFF] + i * c.ctx_words[LS_CTX_INST_STRIDE]
    return {name[5:].lower(): int(c._ctx_array[base + getattr(C, name)])
            for name in C.NAMES if name.startswith("INST_") and name not in ("INST_FIXED_WORDS", "INST_USER_WORDS", "INST_USER")}


def order(Core c, client_order_id):
    from livestack.core import ctx as C
    cdef int64_t s = order_index_get(&c.order_index, client_order_id)
    if s < 0:
        return None
    base = c.ctx_words[LS_CTX_ORD_OFF] + s * LS_ORD_WORDS
    d = {name[4:].lower(): int(c._ctx_array[base + getattr(C, name)])
         for name in C.NAMES if name.startswith("ORD_") and name not in ("ORD_WORDS", "ORD_EXEC_RING", "ORD_EXEC_IDS")}
    d["slot"] = s
    return d


def live_orders(Core c, instrument_id=None):
    out = []
    for i in range(c.n_instruments):
        if instrument_id is not None and c.instrument_ids[i] != instrument_id:
            continue
        inst_ctx = ls_ctx_inst(c.ctx_words, i)
        for k in range(inst_ctx[LS_INST_N_LIVE]):
            s = live_slots(c, i)[k]
            out.append(c.order(ls_ctx_order(c.ctx_words, s)[LS_ORD_ID]))
    return out
