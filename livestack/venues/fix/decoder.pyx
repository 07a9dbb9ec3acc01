# cython: language_level=3
"""ExecutionReport (35=8) and OrderCancelReject (35=9) -> EXEC records, strictly, in C.

Kept apart from ``codec`` (framing, parsing, encoding) because it is the one place that turns
venue bytes into the core's input: its refusals are the FIX rejects listed in :data:`REJECTS`.
``codec`` re-exports everything here, so ``codec.ExecDecoder`` keeps working.
"""

cimport numpy as cnp
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint16_t, uint32_t
from libc.stdlib cimport free, realloc
from libc.string cimport memcmp, memcpy, memset

from livestack.schema.records cimport (
    ls_exec_t, LS_RECORD_KIND_EXEC, LS_EXEC_VERSION, LS_EXEC_TYPE_ACCEPTED, LS_EXEC_TYPE_REJECTED,
    LS_EXEC_TYPE_PARTIALLY_FILLED, LS_EXEC_TYPE_FILLED, LS_EXEC_TYPE_CANCELED,
    LS_EXEC_TYPE_CANCEL_REJECTED, LS_EXEC_TYPE_REPLACED, LS_EXEC_TYPE_EXPIRED, LS_EXEC_TYPE_ORDER_STATUS,
    LS_SIDE_BUY, LS_SIDE_SELL,
)
from livestack.venues.fix._ls_fix cimport *

cnp.import_array()

cdef enum:
    C_MAX_BODY = 1 << 20
    C_DECODED = 1
    C_SKIPPED = 0
    C_MISSING_FIELD = -1
    C_BAD_VALUE = -2
    C_UNKNOWN_SYMBOL = -3
    C_NOT_EXEC = -4
    C_DUPLICATE_TAG = -5
    C_VALUE_INCORRECT = -6
    C_EMPTY_VALUE = -7
    C_COND_MISSING = -8

#: ExecDecoder.decode results
DECODED = C_DECODED
SKIPPED = C_SKIPPED
MISSING_FIELD = C_MISSING_FIELD
BAD_VALUE = C_BAD_VALUE
UNKNOWN_SYMBOL = C_UNKNOWN_SYMBOL
NOT_EXEC = C_NOT_EXEC
DUPLICATE_TAG = C_DUPLICATE_TAG
VALUE_INCORRECT = C_VALUE_INCORRECT
EMPTY_VALUE = C_EMPTY_VALUE
COND_MISSING = C_COND_MISSING

#: How FIX answers each refusal of ExecDecoder.decode: ``code -> (kind, reason, name)``; ``kind``
#: "session" is a Reject (35=3) with SessionRejectReason (373) ``reason`` and RefTagID (371) the
#: offending tag; "business" a BusinessMessageReject (35=j) with BusinessRejectReason (380).
#: Reasons as in FIX 4.4 Volume 1 (373: 1 required tag missing, 4 tag specified without a value,
#: 5 value is incorrect (out of range) for this tag, 6 incorrect data format for value, 13 tag
#: appears more than once; 380: 2 unknown security, 5 conditionally required field missing).
REJECTS = {
    C_MISSING_FIELD: ("session", 1, "required_tag_missing"),
    C_EMPTY_VALUE: ("session", 4, "tag_without_value"),
    C_VALUE_INCORRECT: ("session", 5, "value_incorrect"),
    C_BAD_VALUE: ("session", 6, "incorrect_data_format"),
    C_DUPLICATE_TAG: ("session", 13, "tag_appears_more_than_once"),
    C_UNKNOWN_SYMBOL: ("business", 2, "unknown_security"),
    C_COND_MISSING: ("business", 5, "conditionally_required_field_missing"),
}



cdef enum:
    S_MSGTYPE = 0
    S_CLORDID
    S_ORIG
    S_ORDERID
    S_EXECID
    S_EXECTYPE
    S_ORDSTATUS
    S_SIDE
    S_SYMBOL
    S_PRICE
    S_ORDERQTY
    S_LASTPX
    S_LASTQTY
    S_CUMQTY
    S_LEAVES
    S_TRANSACT
    S_SENDING
    S_ORDREJ
    S_CXLREJ
    S_RESPTO
    S_AVGPX
    S_SEQNUM
    S_SENDER
    S_TARGET
    S_COUNT


cdef inline int _slot(int tag) noexcept nogil:
    if tag == 35: return S_MSGTYPE
    elif tag == 11: return S_CLORDID
    elif tag == 41: return S_ORIG
    elif tag == 37: return S_ORDERID
    elif tag == 17: return S_EXECID
    elif tag == 150: return S_EXECTYPE
    elif tag == 39: return S_ORDSTATUS
    elif tag == 54: return S_SIDE
    elif tag == 55: return S_SYMBOL
    elif tag == 44: return S_PRICE
    elif tag == 38: return S_ORDERQTY
    elif tag == 31: return S_LASTPX
    elif tag == 32: return S_LASTQTY
    elif tag == 14: return S_CUMQTY
    elif tag == 151: return S_LEAVES
    elif tag == 60: return S_TRANSACT
    elif tag == 52: return S_SENDING
    elif tag == 103: return S_ORDREJ
    elif tag == 102: return S_CXLREJ
    elif tag == 434: return S_RESPTO
    elif tag == 6: return S_AVGPX
    elif tag == 34: return S_SEQNUM
    elif tag == 49: return S_SENDER
    elif tag == 56: return S_TARGET
    return -1


cdef int[24] _SLOT_TAGS
_SLOT_TAGS[:] = [35, 11, 41, 37, 17, 150, 39, 54, 55, 44, 38, 31, 32, 14, 151, 60, 52, 103, 102, 434, 6, 34, 49, 56]
# Required fields (as slots). OrderCancelReject: OrderID, ClOrdID, OrigClOrdID, OrdStatus,
# CxlRejResponseTo (FIX 4.2 and 4.4). ExecutionReport: OrderID, ExecID, ExecType, OrdStatus, Side,
# Symbol (Instrument), LeavesQty, CumQty, AvgPx (FIX 4.2 and 4.4), and ClOrdID (optional in FIX, but
# an EXEC without it cannot be matched to one of our orders).
cdef int[5] _REQ_CXL_REJ
_REQ_CXL_REJ[:] = [S_ORDERID, S_CLORDID, S_ORIG, S_ORDSTATUS, S_RESPTO]
cdef int[10] _REQ_EXEC
_REQ_EXEC[:] = [S_ORDERID, S_EXECID, S_EXECTYPE, S_ORDSTATUS, S_SIDE, S_SYMBOL, S_LEAVES, S_CUMQTY, S_AVGPX,
                S_CLORDID]


cdef inline bint _one_of(const char *p, size_t *off, size_t *ln, int s, const char *allowed) noexcept nogil:
    """The value of slot ``s`` is exactly one character, one of ``allowed``."""
    cdef const char *a = allowed
    if ln[s] != 1:
        return False
    while a[0] != 0:
        if a[0] == p[off[s]]:
            return True
        a += 1
    return False


cdef inline int _fixed(const char *p, size_t *off, size_t *ln, int s, int dec, int64_t lowest, int64_t *out,
                       int *bad_tag) noexcept nogil:
    """Slot ``s`` as exact fixed point into ``out`` (0 when absent): C_BAD_VALUE when not a decimal
    exact at ``dec`` decimals, C_VALUE_INCORRECT when below ``lowest``; else 0."""
    if ln[s] == <size_t>-1:
        out[0] = 0
        return 0
    if p[off[s]] == b'+' or ls_parse_fixed(p + off[s], ln[s], dec, out) != 0:  # FIX has no '+' sign
        bad_tag[0] = _SLOT_TAGS[s]
        return C_BAD_VALUE
    if out[0] < lowest or (lowest >= 0 and p[off[s]] == b'-'):  # "-0" is a sign where none may be
        bad_tag[0] = _SLOT_TAGS[s]
        return C_VALUE_INCORRECT
    return 0


cdef inline bint _nonneg_decimal(const char *s, size_t n) noexcept nogil:
    """``s`` is a FIX float without a sign: digits with at most one '.', at least one digit."""
    cdef size_t i
    cdef int digits = 0, dots = 0
    for i in range(n):
        if b'0' <= s[i] <= b'9':
            digits += 1
        elif s[i] == b'.':
            dots += 1
        else:
            return False
    return digits > 0 and dots <= 1


# Valid FIX 4.2/4.4 values (a value outside these is a session Reject 373=5):
#   ExecType 150: 0-9 and A-I (1/2 are FIX 4.2's partial fill/fill, F is 4.4's Trade)
#   OrdStatus 39: 0-9 and A-E
#   CxlRejResponseTo 434: 1 (cancel), 2 (cancel/replace)
# Side 54 is narrower than FIX's list on purpose: 1 Buy, 3 Buy minus -> BUY; 2 Sell, 4 Sell plus,
# 5 Sell short, 6 Sell short exempt -> SELL; the rest (7 Undisclosed, 8 Cross, 9 Cross short, A-G)
# cannot be the side of one of our orders, so they are rejected as out of range rather than guessed.
cdef const char *_EXEC_TYPES = b"0123456789ABCDEFGHI"
cdef const char *_ORD_STATUSES = b"0123456789ABCDE"
cdef const char *_SIDES = b"123456"
cdef const char *_RESPONSE_TO = b"12"


cdef class ExecDecoder:
    """ExecutionReport (35=8) and OrderCancelReject (35=9) -> ``ls_exec_t``, in C, strictly.

    Instruments are looked up by Symbol (55) to get their decimals. Mapping:

    ========================  ==========================================================
    FIX                       EXEC
    ========================  ==========================================================
    ExecType 0 New            ACCEPTED
    ExecType F/1/2 Trade      FILLED if OrdStatus 2 or LeavesQty 0, else PARTIALLY_FILLED
    ExecType 4 Canceled       CANCELED (client_order_id = OrigClOrdID when present)
    ExecType 5 Replaced       REPLACED (client = ClOrdID, orig = OrigClOrdID)
    ExecType 8 Rejected       REJECTED (reason = OrdRejReason 103)
    ExecType C Expired / 3    EXPIRED
    ExecType I Order status   ORDER_STATUS (no exec id; reason 0 live, 1 OrdStatus 8 unknown, 2 ended)
    other valid ExecTypes     skipped (pending new/cancel/replace, restated ...)
    35=9 OrderCancelReject    CANCEL_REJECTED (reason = CxlRejReason 102); a cancel's reject
                              carries the order (OrigClOrdID) as client_order_id, a
                              replace's reject the new id with orig = OrigClOrdID
    ========================  ==========================================================

    ids: ``exec_id``/``exec_id_hi`` are the 128-bit identity of the exact ExecID bytes
    (``livestack.venues.execid.exec_id_words``, computed here in C); ``venue_order_id`` is the
    OrderID when it is a canonical decimal number, else a 63-bit hash with the sign bit set
    (:func:`order_id_word`); ClOrdID/OrigClOrdID are ours (:func:`fix_id`). ``ts_event`` from
    TransactTime (60), else SendingTime (52). The header's ``ts``, ``seq`` are left 0 for the caller.

    Refused, never decoded (``decode`` returns the code and the offending tag; :data:`REJECTS`
    says which FIX reject answers it): a field without a value (373=4), a tag of the header or of
    the fields read here appearing twice (373=13; none of them is a member of an ExecutionReport
    repeating group), a missing required field (373=1), a value that is not a number / timestamp
    / identifier (373=6), an ExecType/OrdStatus/Side/CxlRejResponseTo value outside the table above,
    OrderQty <= 0 (< 0 in a Rejected report, which echoes the order), a negative Price/LastPx/AvgPx/LastQty/CumQty/LeavesQty, or a trade with
    LastQty 0 (373=5), a trade without LastQty/LastPx (BusinessMessageReject 380=5, conditionally
    required), a Symbol not configured (380=2, unknown security).
    """

    def __cinit__(self):
        self._instruments = NULL
        self._n_instruments = 0

    def __dealloc__(self):
        free(self._instruments)

    def add_instrument(self, symbol, uint32_t instrument_id, int price_decimals, int qty_decimals):
        cdef bytes s = symbol.encode("latin-1") if isinstance(symbol, str) else bytes(symbol)
        if len(s) == 0 or len(s) >= 32:
            raise ValueError(f"symbol {symbol!r}: 1..31 bytes")
        cdef ls_fix_instrument_t *a = <ls_fix_instrument_t *>realloc(
            self._instruments, (self._n_instruments + 1) * sizeof(ls_fix_instrument_t))
        if a == NULL:
            raise MemoryError()
        self._instruments = a
        cdef ls_fix_instrument_t *it = &a[self._n_instruments]
        memset(it, 0, sizeof(ls_fix_instrument_t))
        memcpy(it.symbol, PyBytes_AS_STRING(s), len(s))
        it.symbol_len = len(s)
        it.id = instrument_id
        it.price_decimals = price_decimals
        it.qty_decimals = qty_decimals
        self._n_instruments += 1

    cdef int _decode(self, const char *p, size_t n, ls_exec_t *e, int *bad_tag) noexcept nogil:
        cdef size_t off[S_COUNT]
        cdef size_t ln[S_COUNT]
        cdef size_t pos = 0, voff = 0, vlen = 0
        cdef int tag = 0, rc, s, i
        cdef char mt, et, st, sd
        cdef bint trade
        cdef ls_fix_instrument_t *inst = NULL
        cdef int pdec = 0, qdec = 0
        cdef ls_fix_dup_t dup
        ls_fix_dup_init(&dup)
        for i in range(S_COUNT):
            ln[i] = <size_t>-1
        bad_tag[0] = 0
        while True:
            rc = ls_fix_next_field(p, n, &pos, &tag, &voff, &vlen)
            if rc == 0:
                break
            if rc < 0:
                return C_BAD_VALUE
            if vlen == 0:
                bad_tag[0] = tag
                return C_EMPTY_VALUE
            if ls_fix_dup_add(&dup, tag):
                bad_tag[0] = tag
                return C_DUPLICATE_TAG
            s = _slot(tag)
            if s >= 0:
                if ln[s] != <size_t>-1:
                    bad_tag[0] = tag
                    return C_DUPLICATE_TAG
                off[s] = voff
                ln[s] = vlen
        if ln[S_MSGTYPE] != 1:
            return C_NOT_EXEC
        mt = p[off[S_MSGTYPE]]
        if mt != b'8' and mt != b'9':
            return C_NOT_EXEC
        memset(e, 0, sizeof(ls_exec_t))
        e.kind = LS_RECORD_KIND_EXEC
        e.version = LS_EXEC_VERSION
        if ln[S_TRANSACT] != <size_t>-1:
            e.ts_event = ls_fix_parse_time(p + off[S_TRANSACT], ln[S_TRANSACT])
            if e.ts_event < 0:
                bad_tag[0] = 60
                return C_BAD_VALUE
        elif ln[S_SENDING] != <size_t>-1:
            e.ts_event = ls_fix_parse_time(p + off[S_SENDING], ln[S_SENDING])
            if e.ts_event < 0:
                e.ts_event = 0
        if mt == b'9':
            for i in range(5):
                s = _REQ_CXL_REJ[i]
                if ln[s] == <size_t>-1:
                    bad_tag[0] = _SLOT_TAGS[s]
                    return C_MISSING_FIELD
            if not _one_of(p, off, ln, S_ORDSTATUS, _ORD_STATUSES):
                bad_tag[0] = 39
                return C_VALUE_INCORRECT
            if not _one_of(p, off, ln, S_RESPTO, _RESPONSE_TO):
                bad_tag[0] = 434
                return C_VALUE_INCORRECT
            if ls_fix_order_id_word(p + off[S_ORDERID], ln[S_ORDERID], &e.venue_order_id) != 0:
                bad_tag[0] = 37
                return C_BAD_VALUE
            e.exec_type = LS_EXEC_TYPE_CANCEL_REJECTED
            if p[off[S_RESPTO]] == b'2':
                e.client_order_id = ls_fix_id(p + off[S_CLORDID], ln[S_CLORDID])
                e.orig_client_order_id = ls_fix_id(p + off[S_ORIG], ln[S_ORIG])
            else:
                e.client_order_id = ls_fix_id(p + off[S_ORIG], ln[S_ORIG])
            if ln[S_CXLREJ] != <size_t>-1:
                rc = <int>ls_fix_parse_uint(p + off[S_CXLREJ], ln[S_CXLREJ])
                if rc < 0 or rc > 65535:
                    bad_tag[0] = 102
                    return C_BAD_VALUE
                e.reason = <uint16_t>rc
            return C_DECODED
        for i in range(10):
            s = _REQ_EXEC[i]
            if ln[s] == <size_t>-1:
                bad_tag[0] = _SLOT_TAGS[s]
                return C_MISSING_FIELD
        if not _one_of(p, off, ln, S_EXECTYPE, _EXEC_TYPES):
            bad_tag[0] = 150
            return C_VALUE_INCORRECT
        if not _one_of(p, off, ln, S_ORDSTATUS, _ORD_STATUSES):
            bad_tag[0] = 39
            return C_VALUE_INCORRECT
        if not _one_of(p, off, ln, S_SIDE, _SIDES):
            bad_tag[0] = 54
            return C_VALUE_INCORRECT
        et = p[off[S_EXECTYPE]]
        st = p[off[S_ORDSTATUS]]
        sd = p[off[S_SIDE]]
        e.side = LS_SIDE_BUY if sd == b'1' or sd == b'3' else LS_SIDE_SELL
        if ls_fix_exec_id_words(p + off[S_EXECID], ln[S_EXECID], &e.exec_id, &e.exec_id_hi) != 0:
            bad_tag[0] = 17
            return C_BAD_VALUE
        if ls_fix_order_id_word(p + off[S_ORDERID], ln[S_ORDERID], &e.venue_order_id) != 0:
            bad_tag[0] = 37
            return C_BAD_VALUE
        for i in range(self._n_instruments):
            if self._instruments[i].symbol_len == <int>ln[S_SYMBOL] and \
                    memcmp(self._instruments[i].symbol, p + off[S_SYMBOL], ln[S_SYMBOL]) == 0:
                inst = &self._instruments[i]
                break
        if inst == NULL:
            bad_tag[0] = 55
            return C_UNKNOWN_SYMBOL
        e.instrument = inst.id
        pdec = inst.price_decimals
        qdec = inst.qty_decimals
        rc = _fixed(p, off, ln, S_PRICE, pdec, 0, &e.price, bad_tag)
        # OrderQty > 0, except in a Rejected report: it echoes the order as sent (e.g. a quantity of 0
        # is the very reason for the reject, 103=13)
        if rc == 0: rc = _fixed(p, off, ln, S_ORDERQTY, qdec, 0 if et == b'8' or et == b'I' else 1, &e.qty, bad_tag)
        if rc == 0: rc = _fixed(p, off, ln, S_LASTPX, pdec, 0, &e.last_px, bad_tag)
        if rc == 0: rc = _fixed(p, off, ln, S_LASTQTY, qdec, 0, &e.last_qty, bad_tag)
        if rc == 0: rc = _fixed(p, off, ln, S_CUMQTY, qdec, 0, &e.cum_qty, bad_tag)
        if rc == 0: rc = _fixed(p, off, ln, S_LEAVES, qdec, 0, &e.leaves_qty, bad_tag)
        if rc != 0:
            return rc
        if not _nonneg_decimal(p + off[S_AVGPX], ln[S_AVGPX]):  # any precision: AvgPx is not kept
            bad_tag[0] = 6
            return C_VALUE_INCORRECT if p[off[S_AVGPX]] == b'-' else C_BAD_VALUE
        trade = et == b'F' or et == b'1' or et == b'2'
        if trade:
            if ln[S_LASTQTY] == <size_t>-1 or ln[S_LASTPX] == <size_t>-1:
                bad_tag[0] = 32 if ln[S_LASTQTY] == <size_t>-1 else 31
                return C_COND_MISSING
            if e.last_qty == 0:
                bad_tag[0] = 32
                return C_VALUE_INCORRECT
        e.client_order_id = ls_fix_id(p + off[S_CLORDID], ln[S_CLORDID])
        if et == b'0':
            e.exec_type = LS_EXEC_TYPE_ACCEPTED
        elif trade:
            if st == b'2' or e.leaves_qty == 0:
                e.exec_type = LS_EXEC_TYPE_FILLED
            else:
                e.exec_type = LS_EXEC_TYPE_PARTIALLY_FILLED
        elif et == b'4':
            e.exec_type = LS_EXEC_TYPE_CANCELED
            if ln[S_ORIG] != <size_t>-1:
                e.client_order_id = ls_fix_id(p + off[S_ORIG], ln[S_ORIG])
        elif et == b'5':
            e.exec_type = LS_EXEC_TYPE_REPLACED
            if ln[S_ORIG] != <size_t>-1:
                e.orig_client_order_id = ls_fix_id(p + off[S_ORIG], ln[S_ORIG])
        elif et == b'8':
            e.exec_type = LS_EXEC_TYPE_REJECTED
            if ln[S_ORDREJ] != <size_t>-1:
                rc = <int>ls_fix_parse_uint(p + off[S_ORDREJ], ln[S_ORDREJ])
                if rc < 0 or rc > 65535:
                    bad_tag[0] = 103
                    return C_BAD_VALUE
                e.reason = <uint16_t>rc
        elif et == b'C' or et == b'3':
            e.exec_type = LS_EXEC_TYPE_EXPIRED
        elif et == b'I':
            # answer to our OrderStatusRequest (issue 14): never a fill, so no exec id; reason 0 =
            # live at the venue, 1 = the venue does not know it (OrdStatus 8), 2 = it ended there
            e.exec_type = LS_EXEC_TYPE_ORDER_STATUS
            e.exec_id = 0
            e.exec_id_hi = 0
            if st == b'0' or st == b'1' or st == b'5' or st == b'6' or st == b'A' or st == b'E' or st == b'D':
                e.reason = 0
            elif st == b'8':
                e.reason = 1
            else:
                e.reason = 2
        else:
            return C_SKIPPED
        return C_DECODED

    def decode(self, msg, cnp.ndarray out, Py_ssize_t i=0):
        """Decode one message (FixMessage or bytes) into ``out[i]`` (EXEC dtype).

        Returns ``(code, bad_tag)``: DECODED, SKIPPED (an ExecType with no EXEC), MISSING_FIELD /
        BAD_VALUE / UNKNOWN_SYMBOL with the offending tag, or NOT_EXEC.
        """
        cdef bytes raw = msg if isinstance(msg, bytes) else msg.raw  # bytes or a codec.FixMessage
        if cnp.PyArray_ITEMSIZE(out) != sizeof(ls_exec_t) or not cnp.PyArray_IS_C_CONTIGUOUS(out):
            raise ValueError("out must be a C-contiguous EXEC array")
        if i < 0 or i >= cnp.PyArray_SIZE(out):
            raise IndexError(i)
        cdef ls_exec_t *e = (<ls_exec_t *>cnp.PyArray_DATA(out)) + i
        cdef int bad = 0
        cdef int rc = self._decode(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), e, &bad)
        return rc, bad

    def decode_stream(self, bytes data, cnp.ndarray out):
        """Frame every message of ``data`` (checksums verified) and decode the 35=8/35=9 ones into
        ``out`` until it is full. Returns ``(messages_framed, records_written, bad_frames)``.

        The benchmark's batch entry point: no Python object per message.
        """
        if cnp.PyArray_ITEMSIZE(out) != sizeof(ls_exec_t) or not cnp.PyArray_IS_C_CONTIGUOUS(out):
            raise ValueError("out must be a C-contiguous EXEC array")
        cdef const char *p = PyBytes_AS_STRING(data)
        cdef size_t n = PyBytes_GET_SIZE(data)
        cdef size_t pos = 0, skip = 0, body = 0
        cdef ptrdiff_t r
        cdef ls_exec_t *e = <ls_exec_t *>cnp.PyArray_DATA(out)
        cdef Py_ssize_t cap = cnp.PyArray_SIZE(out), k = 0, msgs = 0, bad = 0
        cdef int bt = 0, rc
        with nogil:
            while pos < n and k < cap:
                r = ls_fix_frame(p + pos, n - pos, C_MAX_BODY, &skip, &body)
                if r == 0:
                    break
                if r < 0:
                    bad += 1
                    pos += skip
                    continue
                msgs += 1
                rc = self._decode(p + pos, <size_t>r, e + k, &bt)
                if rc == C_DECODED:
                    k += 1
                pos += <size_t>r
        return msgs, k, bad
