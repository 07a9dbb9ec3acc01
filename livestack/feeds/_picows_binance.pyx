# cython: language_level=3
"""A picows listener that hands Binance frames to the C scanner without a Python call per message.

The Python listener of ``ws_transport.WsSession`` costs, per message: a Python ``on_ws_frame``
call, a ``bytes`` copy of the payload, ``time.time_ns()``, the feed's ``on_message`` closure and
``BinanceDecoder.on_message``. Here picows calls ``on_ws_frame`` from C (a ``cpdef`` override of
its Cython ``WSListener``), and a complete text frame goes straight from picows's read buffer to
``FastDecoder._decode`` with a ``clock_gettime`` receive time. What the scanner finishes itself
(trades, bookTickers, in-sequence diffs of a synced book: nearly every message once a book is in
sync) costs no Python at all; everything else (a diff of a book that is not in sync, a malformed
message, a fragmented message) is handed to the feed's Python ``on_message`` as before, which
decodes it again through ``BinanceDecoder.on_message`` (the first pass changed nothing: see
``FastDecoder``). Message and record counts of the C path are added to the feed's counters at the
end of each socket read, before ``on_batch_end`` flushes the records to the ring.

Built against picows's ``picows.pxd`` (pinned in pyproject.toml: the layout of its ``WSFrame`` is
compiled in).
"""

cimport cython
from libc.stdint cimport int64_t
from posix.time cimport clock_gettime, timespec, CLOCK_REALTIME

from picows.picows cimport WSFrame, WSListener, WSMsgType, WSTransport

from livestack.feeds._binance cimport FastDecoder, MdBuffer


cdef inline int64_t _now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


@cython.final
cdef class BinanceFrameListener(WSListener):
    """``on_message(payload: bytes, ts)``: the Python path for what the scanner does not finish.
    ``on_batch_end()``: after the last frame of a socket read. ``counters``: an object with int
    ``messages`` and ``records`` attributes (``binance.Counters``). ``session``: gets ``got = True``
    on the first message (``WsSession``)."""
    cdef FastDecoder fast
    cdef MdBuffer out
    cdef object on_message
    cdef object on_batch_end
    cdef object counters
    cdef object session
    cdef list parts
    cdef Py_ssize_t messages
    cdef Py_ssize_t records

    def __init__(self, FastDecoder fast, MdBuffer out, on_message, on_batch_end, counters, session):
        self.fast = fast
        self.out = out
        self.on_message = on_message
        self.on_batch_end = on_batch_end
        self.counters = counters
        self.session = session
        self.parts = None
        self.messages = 0
        self.records = 0

    cdef void _flush_counts(self) except *:
        if self.messages:
            c = self.counters
            c.messages += self.messages
            c.records += self.records
            self.messages = 0
            self.records = 0

    cdef void _batch_end(self) except *:
        self._flush_counts()
        if self.on_batch_end is not None:
            self.on_batch_end()

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        cdef WSMsgType t = frame.msg_type
        cdef int64_t ts
        cdef Py_ssize_t n0
        cdef int rc
        if (t == WSMsgType.TEXT or t == WSMsgType.BINARY) and frame.fin and self.parts is None:
            ts = _now_ns()
            if not self.session.got:
                self.session.got = True
            n0 = self.out.n
            rc = self.fast._decode(None, <const unsigned char *>frame.payload_ptr, frame.payload_size, ts)
            if rc == 0:  # DONE: records written by the scanner
                self.messages += 1
                self.records += self.out.n - n0
            else:
                self._flush_counts()  # keep the counters in message order for the Python path
                self.on_message(frame.get_payload_as_bytes(), ts)
            if frame.last_in_buffer:
                self._batch_end()
        elif t == WSMsgType.TEXT or t == WSMsgType.BINARY or t == WSMsgType.CONTINUATION:
            if self.parts is None:
                self.parts = []
            self.parts.append(frame.get_payload_as_bytes())
            if frame.fin:
                data = b"".join(self.parts)
                self.parts = None
                self.session.got = True
                self._flush_counts()
                self.on_message(data, _now_ns())
                if frame.last_in_buffer:
                    self._batch_end()
        elif t == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    cpdef on_ws_disconnected(self, WSTransport transport):
        self._flush_counts()
