# cython: language_level=3
"""FIX tag=value codec: framing, checksum, parsing, encoding (ExecutionReport -> EXEC: decoder.pyx).

Layers (pyzmq style): C primitives in ``cext/ls_fix.h`` (framing, checksum, number/time formatting),
typed Cython here, and the session logic in plain Python (``session.py``), which only handles
session messages and hands application messages to the fast paths below.

* :class:`Framer` cuts a byte stream (arbitrary partial reads) into messages and reports what it
  threw away and why (garbage, bad BodyLength, bad CheckSum): the session needs to know.
* :class:`FixMessage` is a parsed message: tag/offset/length arrays over the raw bytes, with
  ``get``/``get_int``/``group`` for the session layer and tests.
* :class:`Encoder` writes messages with BodyLength and CheckSum computed; NewOrderSingle,
  OrderCancelRequest and OrderCancelReplaceRequest have C fast paths.
* :class:`ExecDecoder` (``decoder.pyx``, re-exported) turns ExecutionReport (35=8) and
  OrderCancelReject (35=9) straight into ``ls_exec_t`` records, strictly, prices and sizes as exact
  int64 fixed point (``ls_parse_fixed``).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

from livestack.schema.records cimport (
    LS_SIDE_BUY, LS_ORD_TYPE_MARKET, LS_TIME_IN_FORCE_IOC, LS_TIME_IN_FORCE_POST_ONLY, LS_TIME_IN_FORCE_DAY,
)

SOH = b"\x01"

#: Framer / frame() statuses
OK = 1
NEED_MORE = LS_FIX_NEED_MORE
GARBAGE = LS_FIX_GARBAGE
BAD_LENGTH = LS_FIX_BAD_LENGTH
BAD_CHECKSUM = LS_FIX_BAD_CHECKSUM
TOO_LONG = LS_FIX_TOO_LONG
STATUS_NAMES = {OK: "ok", NEED_MORE: "need_more", GARBAGE: "garbage", BAD_LENGTH: "bad_length",
                BAD_CHECKSUM: "bad_checksum", TOO_LONG: "too_long"}

cdef enum:
    C_MAX_BODY = 1 << 20

DEFAULT_MAX_BODY = C_MAX_BODY


class FixParseError(ValueError):
    """A framed message whose fields are not ``tag=value<SOH>`` or whose header is out of order."""


cdef inline const char *_ptr(object data, Py_ssize_t *n) except NULL:
    if not isinstance(data, bytes):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    n[0] = PyBytes_GET_SIZE(data)
    return PyBytes_AS_STRING(data)


def checksum(bytes data):
    """Byte sum of ``data`` modulo 256 (the FIX CheckSum of everything before ``10=``)."""
    return ls_fix_checksum(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))


def frame(bytes data, Py_ssize_t offset=0, Py_ssize_t max_body=DEFAULT_MAX_BODY):
    """Frame one message at ``data[offset:]``.

    Returns ``(status, n)``: ``(OK, length)`` for a whole valid message, ``(NEED_MORE, 0)``, or a
    negative status (GARBAGE, BAD_LENGTH, BAD_CHECKSUM, TOO_LONG) with the number of bytes to skip.
    """
    cdef size_t skip = 0, body = 0
    if offset < 0 or offset > PyBytes_GET_SIZE(data):
        raise ValueError("offset outside data")
    cdef ptrdiff_t r = ls_fix_frame(PyBytes_AS_STRING(data) + offset, PyBytes_GET_SIZE(data) - offset,
                                    max_body, &skip, &body)
    if r > 0:
        return OK, r
    return r, skip


cdef class Framer:
    """Cut a byte stream into FIX messages, whatever the read boundaries.

    ``feed(data)`` appends bytes; ``next()`` returns ``(OK, message_bytes)`` for the next valid
    message, ``(status, dropped_bytes)`` for bytes it had to throw away (status GARBAGE,
    BAD_LENGTH, BAD_CHECKSUM or TOO_LONG), or ``None`` when it needs more data. ``counters`` counts
    every status.
    """

    def __init__(self, Py_ssize_t max_body=DEFAULT_MAX_BODY):
        self._buf = bytearray()
        self._pos = 0
        self.max_body = max_body
        self.counters = {name: 0 for name in STATUS_NAMES.values() if name != "need_more"}

    def feed(self, data):
        if self._pos and self._pos * 2 >= len(self._buf):
            del self._buf[:self._pos]
            self._pos = 0
        self._buf += data

    def buffered(self):
        """Bytes fed and not yet returned."""
        return len(self._buf) - self._pos

    def clear(self):
        """Drop everything buffered (a new connection starts clean)."""
        self._buf = bytearray()
        self._pos = 0

    def next(self):
        cdef size_t skip = 0, body = 0
        cdef Py_ssize_t avail = len(self._buf) - self._pos
        if avail <= 0:
            return None
        cdef const unsigned char[::1] view = self._buf
        cdef const char *p = <const char *>&view[self._pos]
        cdef ptrdiff_t r = ls_fix_frame(p, avail, self.max_body, &skip, &body)
        if r == LS_FIX_NEED_MORE:
            return None
        if r > 0:
            out = bytes(self._buf[self._pos:self._pos + r])
            self._pos += r
            self.counters["ok"] += 1
            return OK, out
        dropped = bytes(self._buf[self._pos:self._pos + <Py_ssize_t>skip])
        self._pos += skip
        self.counters[STATUS_NAMES[r]] += 1
        return r, dropped

    def __iter__(self):
        while True:
            item = self.next()
            if item is None:
                return
            yield item


cdef class FixMessage:
    """A framed message parsed into tag/offset/length arrays over its raw bytes (no copies).

    Build with :func:`parse_message`. Repeated tags are kept in order; ``get`` returns the first.
    """

    def __cinit__(self):
        self._tags = NULL
        self._offs = NULL
        self._lens = NULL
        self._n = 0
        self._cap = 0

    def __dealloc__(self):
        free(self._tags)
        free(self._offs)
        free(self._lens)

    cdef int _parse(self) except -1:
        cdef Py_ssize_t n = PyBytes_GET_SIZE(self.raw)
        cdef const char *p = PyBytes_AS_STRING(self.raw)
        cdef size_t pos = 0, voff = 0, vlen = 0
        cdef int tag = 0, rc
        cdef Py_ssize_t cap = 32
        self._tags = <int32_t *>malloc(cap * sizeof(int32_t))
        self._offs = <int32_t *>malloc(cap * sizeof(int32_t))
        self._lens = <int32_t *>malloc(cap * sizeof(int32_t))
        if self._tags == NULL or self._offs == NULL or self._lens == NULL:
            raise MemoryError()
        self._cap = cap
        while True:
            rc = ls_fix_next_field(p, n, &pos, &tag, &voff, &vlen)
            if rc == 0:
                break
            if rc < 0:
                raise FixParseError(f"malformed field at byte {pos}")
            if self._n == self._cap:
                cap = self._cap * 2
                self._tags = <int32_t *>realloc(self._tags, cap * sizeof(int32_t))
                self._offs = <int32_t *>realloc(self._offs, cap * sizeof(int32_t))
                self._lens = <int32_t *>realloc(self._lens, cap * sizeof(int32_t))
                if self._tags == NULL or self._offs == NULL or self._lens == NULL:
                    raise MemoryError()
                self._cap = cap
            self._tags[self._n] = tag
            self._offs[self._n] = <int32_t>voff
            self._lens[self._n] = <int32_t>vlen
            self._n += 1
        if self._n < 4 or self._tags[0] != 8 or self._tags[1] != 9 or self._tags[2] != 35 \
                or self._tags[self._n - 1] != 10:
            raise FixParseError("header must start 8, 9, 35 and the message end with 10")
        return 0

    cdef Py_ssize_t _find(self, int tag) noexcept:
        cdef Py_ssize_t i
        for i in range(self._n):
            if self._tags[i] == tag:
                return i
        return -1

    def __len__(self):
        return self._n

    @property
    def msg_type(self):
        """MsgType (35) as bytes, e.g. ``b"8"``."""
        return self.raw[self._offs[2]:self._offs[2] + self._lens[2]]

    def has(self, int tag):
        return self._find(tag) >= 0

    def get(self, int tag, default=None):
        """Value of the first ``tag`` as bytes, or ``default``."""
        cdef Py_ssize_t i = self._find(tag)
        if i < 0:
            return default
        return self.raw[self._offs[i]:self._offs[i] + self._lens[i]]

    def get_str(self, int tag, default=None):
        v = self.get(tag)
        return default if v is None else v.decode("latin-1")

    def get_int(self, int tag, default=None):
        """Value of ``tag`` as a non-negative int; ``default`` when absent; ValueError if not one."""
        cdef Py_ssize_t i = self._find(tag)
        if i < 0:
            return default
        cdef int64_t v = ls_fix_parse_uint(PyBytes_AS_STRING(self.raw) + self._offs[i], self._lens[i])
        if v < 0:
            raise ValueError(f"tag {tag}: not an unsigned integer: {self.get(tag)!r}")
        return v

    def fields(self):
        """Every field in order as ``(tag, value_bytes)``."""
        return [(self._tags[i], self.raw[self._offs[i]:self._offs[i] + self._lens[i]]) for i in range(self._n)]

    def tag_at(self, Py_ssize_t i):
        return self._tags[i]

    def violation(self):
        """The first session-level structural fault, as ``(SessionRejectReason, tag)``, or None.

        * a field without a value: ``(4, tag)`` (373=4, tag specified without a value);
        * a tag appearing twice outside a repeating group: ``(13, tag)`` (373=13). Without a data
          dictionary the group boundaries are not known, so the rule is: a header field or the
          CheckSum may appear only once anywhere; any other tag may appear only once before the
          message's first NumInGroup field (:func:`is_group_counter`); after it, repeats may be
          group entries and are left to the message's own decoder.
        """
        cdef Py_ssize_t i
        cdef ls_fix_dup_t dup
        ls_fix_dup_init(&dup)
        for i in range(self._n):
            if self._lens[i] == 0:
                return (4, self._tags[i])
            if ls_fix_dup_add(&dup, self._tags[i]):
                return (13, self._tags[i])
        return None

    def group(self, int count_tag, int delim_tag, members=None):
        """Entries of the repeating group counted by ``count_tag``, each a list of ``(tag, value)``.

        An entry starts at ``delim_tag`` (the group's first field, as FIX requires). Entries end at
        the next ``delim_tag``; the last one ends at the first field not in ``members`` (when given)
        or at the trailer (CheckSum). Raises FixParseError when the number of entries found differs
        from the count, or the first field after ``count_tag`` is not ``delim_tag``.
        """
        cdef Py_ssize_t i = self._find(count_tag), j
        if i < 0:
            return []
        count = self.get_int(count_tag)
        entries = []
        cur = None
        j = i + 1
        if count == 0:
            return []
        if j >= self._n or self._tags[j] != delim_tag:
            raise FixParseError(f"group {count_tag}: first field is not the delimiter {delim_tag}")
        memberset = None if members is None else set(members) | {delim_tag}
        while j < self._n:
            t = self._tags[j]
            if t == 10 or t == 93 or t == 89:
                break
            if t == delim_tag:
                if len(entries) == count:
                    break
                cur = []
                entries.append(cur)
            elif memberset is not None and t not in memberset and len(entries) == count:
                break
            cur.append((t, self.raw[self._offs[j]:self._offs[j] + self._lens[j]]))
            j += 1
        if len(entries) != count:
            raise FixParseError(f"group {count_tag}: count {count}, found {len(entries)} entries")
        return entries

    def __repr__(self):
        return "FixMessage(" + self.raw.replace(b"\x01", b"|").decode("latin-1") + ")"


def is_group_counter(int tag):
    """Whether ``tag`` is a NumInGroup field (FIX 4.2 - 5.0; the list is ``ls_fix_group_counter``)."""
    return bool(ls_fix_group_counter(tag))


def parse_message(bytes raw):
    """Parse one framed message (as :class:`Framer` returns it). Raises FixParseError."""
    cdef FixMessage m = FixMessage.__new__(FixMessage)
    m.raw = raw
    m._parse()
    return m


cdef inline bytes _as_bytes(object v):
    if isinstance(v, bytes):
        return <bytes>v
    if isinstance(v, str):
        return (<str>v).encode("latin-1")
    if isinstance(v, bool):
        return b"Y" if v else b"N"
    if isinstance(v, int):
        return str(v).encode()
    raise TypeError(f"FIX field value of type {type(v).__name__}")


cdef class Encoder:
    """Writes FIX messages for one session: BeginString, SenderCompID, TargetCompID fixed.

    Every method returns the whole message as bytes with BodyLength and CheckSum filled in. Header
    order: 8, 9, 35, 34, 49, 52, 56, [43, 122]; then the body in the order given.
    """

    def __cinit__(self):
        self._buf = NULL
        self._cap = 0

    def __init__(self, begin_string="FIX.4.4", sender_comp_id="", target_comp_id="", handl_inst=None):
        self.begin_string = _as_bytes(begin_string)
        # HandlInst (21) on NewOrderSingle / OrderCancelReplaceRequest: required up to FIX 4.3
        # (QuickFIX's FIX42.xml rejects an order without it), optional in FIX 4.4 (not written).
        if handl_inst is None:
            handl_inst = b"1" if self.begin_string in (b"FIX.4.0", b"FIX.4.1", b"FIX.4.2", b"FIX.4.3") else b""
        handl_inst = _as_bytes(handl_inst)
        if handl_inst not in (b"", b"1", b"2", b"3"):
            raise ValueError(f"FIX encoder: HandlInst must be 1, 2, 3 or empty, not {handl_inst!r}")
        self.handl_inst = handl_inst[0] if handl_inst else 0
        self.sender_comp_id = _as_bytes(sender_comp_id)
        self.target_comp_id = _as_bytes(target_comp_id)
        if not self.sender_comp_id or not self.target_comp_id:
            raise ValueError("FIX encoder: SenderCompID and TargetCompID are required")
        if len(self.begin_string) > 16:
            raise ValueError("FIX encoder: BeginString too long")
        self._cap = 4096
        self._buf = <char *>malloc(self._cap)
        if self._buf == NULL:
            raise MemoryError()

    @property
    def handl_inst_value(self):
        """HandlInst written on orders (b"" when none)."""
        return bytes([self.handl_inst]) if self.handl_inst else b""

    def __dealloc__(self):
        free(self._buf)

    cdef int _reserve(self, Py_ssize_t n) except -1:
        cdef Py_ssize_t cap = self._cap
        if self._pos + n <= cap:
            return 0
        while self._pos + n > cap:
            cap *= 2
        cdef char *b = <char *>realloc(self._buf, cap)
        if b == NULL:
            raise MemoryError()
        self._buf = b
        self._cap = cap
        return 0

    cdef int _put_raw(self, const char *s, Py_ssize_t n) except -1:
        self._reserve(n)
        memcpy(self._buf + self._pos, s, n)
        self._pos += n
        return 0

    cdef int _put_tag(self, int tag) except -1:
        self._reserve(16)
        self._pos += ls_fix_format_int(self._buf + self._pos, tag)
        self._buf[self._pos] = b'='
        self._pos += 1
        return 0

    cdef int _put_str(self, int tag, const char *s, Py_ssize_t n) except -1:
        self._put_tag(tag)
        self._reserve(n + 1)
        memcpy(self._buf + self._pos, s, n)
        self._pos += n
        self._buf[self._pos] = 1
        self._pos += 1
        return 0

    cdef int _put_int(self, int tag, int64_t v) except -1:
        self._put_tag(tag)
        self._reserve(24)
        self._pos += ls_fix_format_int(self._buf + self._pos, v)
        self._buf[self._pos] = 1
        self._pos += 1
        return 0

    cdef int _put_fixed(self, int tag, int64_t v, int decimals) except -1:
        self._put_tag(tag)
        self._reserve(48)
        self._pos += ls_fix_format_fixed(self._buf + self._pos, v, decimals)
        self._buf[self._pos] = 1
        self._pos += 1
        return 0

    cdef int _put_time(self, int tag, int64_t ns) except -1:
        self._put_tag(tag)
        self._reserve(24)
        self._pos += ls_fix_format_time(self._buf + self._pos, ns)
        self._buf[self._pos] = 1
        self._pos += 1
        return 0

    cdef int _begin(self, const char *msg_type, Py_ssize_t tn, int64_t seq, int64_t now_ns,
                    bint poss_dup, int64_t orig_sending_ns) except -1:
        # leave 32 bytes in front for "8=<BeginString>|9=<len>|", written by _finish
        self._pos = 32
        self._put_str(35, msg_type, tn)
        self._put_int(34, seq)
        self._put_str(49, PyBytes_AS_STRING(self.sender_comp_id), PyBytes_GET_SIZE(self.sender_comp_id))
        self._put_time(52, now_ns)
        self._put_str(56, PyBytes_AS_STRING(self.target_comp_id), PyBytes_GET_SIZE(self.target_comp_id))
        if poss_dup:
            self._put_str(43, b"Y", 1)
            self._put_time(122, orig_sending_ns if orig_sending_ns else now_ns)
        return 0

    cdef bytes _finish(self):
        cdef char prefix[40]
        cdef Py_ssize_t body_len = self._pos - 32
        cdef Py_ssize_t k = 0
        cdef Py_ssize_t bl = PyBytes_GET_SIZE(self.begin_string)
        prefix[0] = b'8'
        prefix[1] = b'='
        memcpy(prefix + 2, PyBytes_AS_STRING(self.begin_string), bl)
        k = 2 + bl
        prefix[k] = 1
        prefix[k + 1] = b'9'
        prefix[k + 2] = b'='
        k += 3
        k += ls_fix_format_int(prefix + k, body_len)
        prefix[k] = 1
        k += 1
        cdef Py_ssize_t start = 32 - k
        memcpy(self._buf + start, prefix, k)
        self._reserve(7)
        cdef unsigned cs = ls_fix_checksum(self._buf + start, self._pos - start)
        cdef char *q = self._buf + self._pos
        q[0] = b'1'
        q[1] = b'0'
        q[2] = b'='
        q[3] = <char>(48 + cs // 100)
        q[4] = <char>(48 + cs // 10 % 10)
        q[5] = <char>(48 + cs % 10)
        q[6] = 1
        self._pos += 7
        return PyBytes_FromStringAndSize(self._buf + start, self._pos - start)

    def encode(self, msg_type, int64_t seq, int64_t now_ns, fields=(), bint poss_dup=False,
               int64_t orig_sending_ns=0):
        """Any message: ``fields`` is an iterable of ``(tag, value)`` with bytes, str or int values."""
        cdef bytes t = _as_bytes(msg_type)
        cdef bytes v
        self._begin(PyBytes_AS_STRING(t), PyBytes_GET_SIZE(t), seq, now_ns, poss_dup, orig_sending_ns)
        for tag, value in fields:
            v = _as_bytes(value)
            if b"\x01" in v:
                raise ValueError(f"tag {tag}: value contains SOH")
            self._put_str(tag, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v))
        return self._finish()

    # --- application messages (C fast paths) -------------------------------------------------
    cdef int _instrument_side(self, bytes symbol, int side) except -1:
        self._put_str(55, PyBytes_AS_STRING(symbol), PyBytes_GET_SIZE(symbol))
        self._put_str(54, b"1" if side == LS_SIDE_BUY else b"2", 1)
        return 0

    cdef int _handl_inst(self) except -1:
        if self.handl_inst:
            self._put_str(21, &self.handl_inst, 1)
        return 0

    cdef int _order_terms(self, int ord_type, int tif, int64_t price, int price_decimals) except -1:
        if ord_type == LS_ORD_TYPE_MARKET:
            self._put_str(40, b"1", 1)
        else:
            self._put_str(40, b"2", 1)
            self._put_fixed(44, price, price_decimals)
        if tif == LS_TIME_IN_FORCE_IOC:
            self._put_str(59, b"3", 1)
        elif tif == LS_TIME_IN_FORCE_DAY:
            self._put_str(59, b"0", 1)
        else:
            self._put_str(59, b"1", 1)
            if tif == LS_TIME_IN_FORCE_POST_ONLY:
                self._put_str(18, b"6", 1)  # ExecInst ParticipateDontInitiate: rest or reject
        return 0

    def new_order_single(self, int64_t seq, int64_t now_ns, bytes cl_ord_id, bytes symbol, int side,
                         int ord_type, int tif, int64_t price, int price_decimals, int64_t qty,
                         int qty_decimals):
        """NewOrderSingle (35=D). ``side``/``ord_type``/``tif`` are the livestack enums."""
        self._begin(b"D", 1, seq, now_ns, False, 0)
        self._put_str(11, PyBytes_AS_STRING(cl_ord_id), PyBytes_GET_SIZE(cl_ord_id))
        self._handl_inst()
        self._instrument_side(symbol, side)
        self._put_time(60, now_ns)
        self._put_fixed(38, qty, qty_decimals)
        self._order_terms(ord_type, tif, price, price_decimals)
        return self._finish()

    def order_cancel_request(self, int64_t seq, int64_t now_ns, bytes cl_ord_id, bytes orig_cl_ord_id,
                             bytes symbol, int side, int64_t qty, int qty_decimals, bytes order_id=None):
        """OrderCancelRequest (35=F)."""
        self._begin(b"F", 1, seq, now_ns, False, 0)
        self._put_str(41, PyBytes_AS_STRING(orig_cl_ord_id), PyBytes_GET_SIZE(orig_cl_ord_id))
        if order_id:
            self._put_str(37, PyBytes_AS_STRING(order_id), PyBytes_GET_SIZE(order_id))
        self._put_str(11, PyBytes_AS_STRING(cl_ord_id), PyBytes_GET_SIZE(cl_ord_id))
        self._instrument_side(symbol, side)
        self._put_time(60, now_ns)
        self._put_fixed(38, qty, qty_decimals)
        return self._finish()

    def order_status_request(self, int64_t seq, int64_t now_ns, bytes cl_ord_id, bytes symbol, int side,
                             bytes order_id=None):
        """OrderStatusRequest (35=H): the peer answers with an ExecutionReport ExecType I (issue 14)."""
        self._begin(b"H", 1, seq, now_ns, False, 0)
        if order_id:
            self._put_str(37, PyBytes_AS_STRING(order_id), PyBytes_GET_SIZE(order_id))
        self._put_str(11, PyBytes_AS_STRING(cl_ord_id), PyBytes_GET_SIZE(cl_ord_id))
        self._instrument_side(symbol, side)
        return self._finish()

    def order_cancel_replace_request(self, int64_t seq, int64_t now_ns, bytes cl_ord_id,
                                     bytes orig_cl_ord_id, bytes symbol, int side, int ord_type, int tif,
                                     int64_t price, int price_decimals, int64_t qty, int qty_decimals,
                                     bytes order_id=None):
        """OrderCancelReplaceRequest (35=G)."""
        self._begin(b"G", 1, seq, now_ns, False, 0)
        self._put_str(41, PyBytes_AS_STRING(orig_cl_ord_id), PyBytes_GET_SIZE(orig_cl_ord_id))
        if order_id:
            self._put_str(37, PyBytes_AS_STRING(order_id), PyBytes_GET_SIZE(order_id))
        self._put_str(11, PyBytes_AS_STRING(cl_ord_id), PyBytes_GET_SIZE(cl_ord_id))
        self._handl_inst()
        self._instrument_side(symbol, side)
        self._put_time(60, now_ns)
        self._put_fixed(38, qty, qty_decimals)
        self._order_terms(ord_type, tif, price, price_decimals)
        return self._finish()

    # --- session messages ----------------------------------------------------------------------
    def logon(self, int64_t seq, int64_t now_ns, int heart_bt_int, bint reset_seq_num=False,
              username=None, password=None):
        """Logon (35=A): EncryptMethod 0, HeartBtInt, optional ResetSeqNumFlag, Username, Password."""
        fields = [(98, 0), (108, heart_bt_int)]
        if reset_seq_num:
            fields.append((141, b"Y"))
        if username:
            fields.append((553, username))
        if password:
            fields.append((554, password))
        return self.encode(b"A", seq, now_ns, fields)

    def heartbeat(self, int64_t seq, int64_t now_ns, test_req_id=None):
        """Heartbeat (35=0), echoing TestReqID when answering a TestRequest."""
        return self.encode(b"0", seq, now_ns, [(112, test_req_id)] if test_req_id is not None else ())

    def test_request(self, int64_t seq, int64_t now_ns, test_req_id):
        return self.encode(b"1", seq, now_ns, [(112, test_req_id)])

    def resend_request(self, int64_t seq, int64_t now_ns, int64_t begin, int64_t end=0):
        """ResendRequest (35=2); ``end`` 0 means "everything after begin" (FIX 4.2+)."""
        return self.encode(b"2", seq, now_ns, [(7, begin), (16, end)])

    def sequence_reset(self, int64_t seq, int64_t now_ns, int64_t new_seq_no, bint gap_fill=True,
                       int64_t orig_sending_ns=0):
        """SequenceReset (35=4). A GapFill answers a ResendRequest: sent with PossDupFlag=Y and the
        MsgSeqNum of the first message it replaces; a Reset is sent with the next MsgSeqNum."""
        fields = [(123, b"Y"), (36, new_seq_no)] if gap_fill else [(36, new_seq_no)]
        return self.encode(b"4", seq, now_ns, fields, poss_dup=gap_fill, orig_sending_ns=orig_sending_ns)

    def logout(self, int64_t seq, int64_t now_ns, text=None):
        return self.encode(b"5", seq, now_ns, [(58, text)] if text else ())

    def reject(self, int64_t seq, int64_t now_ns, int64_t ref_seq_num, int reason=-1, ref_tag=None,
               ref_msg_type=None, text=None):
        """Session-level Reject (35=3) of message ``ref_seq_num``; ``reason`` is SessionRejectReason."""
        fields = [(45, ref_seq_num)]
        if ref_tag is not None:
            fields.append((371, ref_tag))
        if ref_msg_type:
            fields.append((372, ref_msg_type))
        if reason >= 0:
            fields.append((373, reason))
        if text:
            fields.append((58, text))
        return self.encode(b"3", seq, now_ns, fields)

    def business_message_reject(self, int64_t seq, int64_t now_ns, ref_seq_num, ref_msg_type, int reason,
                                text=None, ref_id=None):
        """BusinessMessageReject (35=j): RefSeqNum, RefMsgType, BusinessRejectRefID (when given),
        BusinessRejectReason, Text."""
        fields = [(45, ref_seq_num), (372, ref_msg_type)]
        if ref_id:
            fields.append((379, ref_id))
        fields.append((380, reason))
        if text:
            fields.append((58, text))
        return self.encode(b"j", seq, now_ns, fields)


def format_time(int64_t ns):
    """ns since the epoch -> FIX UTCTimestamp bytes with milliseconds."""
    cdef char out[24]
    cdef size_t k = ls_fix_format_time(out, ns)
    return PyBytes_FromStringAndSize(out, k)


def parse_time(bytes s):
    """FIX UTCTimestamp -> ns since the epoch; ValueError when malformed."""
    cdef int64_t v = ls_fix_parse_time(PyBytes_AS_STRING(s), PyBytes_GET_SIZE(s))
    if v < 0:
        raise ValueError(f"not a FIX UTCTimestamp: {s!r}")
    return v


def fix_id(bytes s):
    """One of OUR ids (ClOrdID ``<digits>`` / ``<digits>-C<seq>``) as int64: its leading digits,
    else a hash. Never for venue ids: see :func:`exec_id_words` and :func:`order_id_word`."""
    return ls_fix_id(PyBytes_AS_STRING(s), PyBytes_GET_SIZE(s))


def exec_id_words(bytes s):
    """An ExecID's identity ``(exec_id, exec_id_hi)`` computed in C (BLAKE2b-128, the same words as
    ``livestack.venues.execid.exec_id_words``). ValueError for an empty id or a control byte."""
    cdef int64_t lo = 0, hi = 0
    if ls_fix_exec_id_words(PyBytes_AS_STRING(s), PyBytes_GET_SIZE(s), &lo, &hi) != 0:
        raise ValueError(f"not an execution id: {s!r}")
    return lo, hi


def order_id_word(bytes s):
    """A venue OrderID as one int64 keeping its identity: a canonical decimal number is itself,
    anything else a 63-bit hash of its exact bytes with the sign bit set (never 0). ValueError when
    empty or holding a control byte."""
    cdef int64_t v = 0
    if ls_fix_order_id_word(PyBytes_AS_STRING(s), PyBytes_GET_SIZE(s), &v) != 0:
        raise ValueError(f"not an order id: {s!r}")
    return v


# ExecutionReport / OrderCancelReject -> EXEC lives in decoder.pyx; re-exported here
from livestack.venues.fix.decoder import (  # noqa: E402
    ExecDecoder, REJECTS, DECODED, SKIPPED, MISSING_FIELD, BAD_VALUE, UNKNOWN_SYMBOL, NOT_EXEC, DUPLICATE_TAG,
    VALUE_INCORRECT, EMPTY_VALUE, COND_MISSING,
)
