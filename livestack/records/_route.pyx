# cython: language_level=3
"""The writer's routing pass: one sweep over a batch of 128-byte record slots.

:meth:`livestack.records.writer.RecordWriter.write` sends each slot to the dataset of its kind and
indexes every consumed input (flag JOURNAL) in ``/journal``. Done with numpy that is a pass per
field (seq, kind, flags), a sort by kind, a gather per kind and a gather for the journal: each
pass reads the batch's slots again, and a batch (4 MiB of header lines at 65,536 slots) does not
stay in the L2 cache between passes, so most of those reads came from the other core's cache or
L3, across the ring. ``route`` reads each slot once and, in that one visit, checks the seq,
copies the bytes the kind's dataset stores into that kind's buffer and writes the journal entry.

It handles the common case only and says when it does not apply; the caller then takes the
general numpy path, which also reports what this pass refuses:

* the seq is not ``expect, expect+1, ...`` (a hole, a step back, a restart catch-up);
* a slot's kind is not in the schema (kept in ``/unknown`` and reported by the general path).

The pass copies only, in ring order, so its output is exactly the general path's.
"""

from libc.stdint cimport int64_t, uint8_t, uint16_t, uint64_t
from libc.string cimport memcpy

cdef enum:
    NKEYS = 257         # routing keys: 0 the journal, 1..255 the record kinds, 256 unknown kinds (writer.py)
    R_SEQ_BREAK = -1
    R_UNKNOWN_KIND = -2
    R_NEED_BUFFER = -3

#: ``route`` results besides the journal count
SEQ_BREAK = R_SEQ_BREAK        # the seq is not contiguous from ``expect``
UNKNOWN_KIND = R_UNKNOWN_KIND  # a slot of a kind the schema does not know
NEED_BUFFER = R_NEED_BUFFER    # a kind without a buffer of ``n`` rows: ``need[0]`` says which; allocate, call again


cdef packed struct JEntry:  # spec.JOURNAL_INDEX: seq u8, row u8, kind u2 (18 bytes, no padding)
    uint64_t seq
    uint64_t row
    uint16_t kind


def route(const uint8_t[:, ::1] raw, uint64_t expect, uint8_t journal_bit, const int64_t[::1] size_of, list bufs,
          int64_t[::1] count, const int64_t[::1] base_row, uint8_t[::1] journal, int64_t[::1] need):
    """Route ``raw`` (n × 128 slots) into per-kind buffers and journal entries in one pass.

    A slot is a consumed input (indexed in the journal) when its header flags hold ``journal_bit``.

    ``size_of[kind]``: bytes the kind's dataset stores (0: not in the schema). ``bufs[kind]``: a
    writable uint8 array of at least ``n * size_of[kind]`` bytes, or None. ``count`` (257, zeroed
    by this call) receives the rows per kind; ``base_row[kind]`` is the row the kind's first slot
    lands in (its dataset's size), for the journal entries; ``journal`` has room for ``n`` 18-byte
    entries. Returns the number of journal entries, or SEQ_BREAK / UNKNOWN_KIND / NEED_BUFFER
    (``need[0]`` = the kind) when the batch is not the common case: nothing is then meaningful.
    """
    cdef Py_ssize_t n = raw.shape[0], i
    cdef uint8_t *ptr[NKEYS]
    cdef int64_t size[NKEYS]
    cdef int64_t k
    cdef uint8_t[::1] mv
    if raw.shape[1] != 128:
        raise ValueError(f"route: slots of {raw.shape[1]} bytes, expected 128")
    if size_of.shape[0] != NKEYS or count.shape[0] != NKEYS or base_row.shape[0] != NKEYS or len(bufs) != NKEYS:
        raise ValueError("route: the per-kind tables need 257 entries")
    if journal.shape[0] < n * <Py_ssize_t> sizeof(JEntry):
        raise ValueError("route: the journal buffer is smaller than n entries")
    for k in range(NKEYS):
        count[k] = 0
        size[k] = size_of[k]
        ptr[k] = NULL
        b = bufs[k]
        if b is not None and size[k] > 0:
            mv = b
            if mv.shape[0] >= n * size[k]:
                ptr[k] = &mv[0]
    if n == 0:
        return 0
    cdef int64_t r = _route(&raw[0, 0], n, expect, journal_bit, size, ptr, &count[0], &base_row[0],
                            <JEntry *> &journal[0], &need[0])
    return r


cdef int64_t _route(const uint8_t *raw, Py_ssize_t n, uint64_t expect, uint8_t journal_bit, const int64_t *size,
                    uint8_t **ptr,
                    int64_t *count, const int64_t *base_row, JEntry *jout, int64_t *need) noexcept nogil:
    cdef Py_ssize_t i
    cdef const uint8_t *s
    cdef uint16_t kind
    cdef uint64_t seq
    cdef int64_t c, sz, j = 0
    for i in range(n):
        s = raw + i * 128
        seq = (<const uint64_t *> (s + 8))[0]   # header: kind u2 @0, version u1 @2, flags u1 @3, seq u8 @8
        if seq != expect + <uint64_t> i:
            return R_SEQ_BREAK
        kind = (<const uint16_t *> s)[0]
        if kind >= NKEYS - 1 or size[kind] == 0:
            return R_UNKNOWN_KIND
        if ptr[kind] == NULL:
            need[0] = kind
            return R_NEED_BUFFER
        c = count[kind]
        sz = size[kind]
        memcpy(ptr[kind] + c * sz, s, sz)
        if s[3] & journal_bit:  # a consumed input
            jout[j].seq = seq
            jout[j].row = <uint64_t> (base_row[kind] + c)
            jout[j].kind = kind
            j += 1
        count[kind] = c + 1
    return j
