# The order lifecycle as a named transition table (lifecycle.pyx): what an execution event does to
# an order in a given state. The core (core.pyx) carries the actions out.
from libc.stdint cimport int64_t
from livestack.schema.records cimport *

cdef enum Action:
    A_ILLEGAL = 0        # ANOMALY ILLEGAL_TRANSITION, nothing changes
    A_ACCEPT = 1         # PENDING_NEW -> ACCEPTED
    A_ACK_KEEP = 2       # late ack while a cancel/replace is pending: record the venue id, keep the state
    A_REJECT = 3         # the new order was rejected -> REJECTED
    A_FILL = 4           # apply the fill once per exec id -> PARTIALLY_FILLED / FILLED (pending states kept)
    A_CANCELED = 5       # -> CANCELED (solicited or not)
    A_CANCEL_REJECT = 6  # cancel/replace refused -> back to the state before the request
    A_REPLACED = 7       # -> old id REPLACED, the order lives on under the new id
    A_EXPIRED = 8        # -> EXPIRED
    A_FILL_TERMINAL = 9  # fill on a terminal order: applied to the position once, ANOMALY FILL_AFTER_TERMINAL
    A_LATE = 10          # cancel/replace refused because the order already ended (it filled or was canceled
                         # first): the expected race, counted as a late event, nothing changes, no anomaly

cdef int lifecycle_action(int64_t state, int64_t exec_type) noexcept nogil

cdef inline bint is_live(int64_t st) noexcept nogil:
    return st == LS_ORDER_STATE_PENDING_NEW or st == LS_ORDER_STATE_ACCEPTED or \
        st == LS_ORDER_STATE_PARTIALLY_FILLED or st == LS_ORDER_STATE_PENDING_CANCEL or \
        st == LS_ORDER_STATE_PENDING_REPLACE or st == LS_ORDER_STATE_UNKNOWN

cdef inline bint is_pending(int64_t st) noexcept nogil:
    return st == LS_ORDER_STATE_PENDING_NEW or st == LS_ORDER_STATE_PENDING_CANCEL or \
        st == LS_ORDER_STATE_PENDING_REPLACE or st == LS_ORDER_STATE_UNKNOWN
