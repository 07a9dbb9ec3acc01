# cython: language_level=3
"""The order lifecycle: one table over every (OrderState, ExecType) pair, with names, not numbers.

Rows are order states, columns execution events, cells the action the core takes
(``lifecycle.pxd``: ``Action``). A pair missing from the table is an error at import, so the
table is complete by construction; ``transition_table()`` gives it as data for tests and docs.
VENUE_RESET is not per order (the core handles it apart) and has no column.
"""

from libc.stdint cimport int64_t, uint8_t

from livestack.schema import ExecType as E, OrderState as S

ACTION_NAMES = {A_ILLEGAL: "ILLEGAL", A_ACCEPT: "ACCEPT", A_ACK_KEEP: "ACK_KEEP", A_REJECT: "REJECT",
                A_FILL: "FILL", A_CANCELED: "CANCELED", A_CANCEL_REJECT: "CANCEL_REJECT",
                A_REPLACED: "REPLACED", A_EXPIRED: "EXPIRED", A_FILL_TERMINAL: "FILL_TERMINAL", A_LATE: "LATE"}

_I, _ACC, _KEEP, _REJ = A_ILLEGAL, A_ACCEPT, A_ACK_KEEP, A_REJECT
_FILL, _CXL, _CREJ, _REPL = A_FILL, A_CANCELED, A_CANCEL_REJECT, A_REPLACED
_EXP, _FT, _LATE = A_EXPIRED, A_FILL_TERMINAL, A_LATE

COLUMNS = (E.ACCEPTED, E.REJECTED, E.PARTIALLY_FILLED, E.FILLED, E.CANCELED, E.CANCEL_REJECTED,
           E.REPLACED, E.EXPIRED)
TABLE = {
    #                    ACCEPTED REJECTED PART_FILL FILLED CANCELED CANCEL_REJ REPLACED EXPIRED
    S.NONE:             (_I,      _I,      _I,       _I,    _I,      _I,        _I,      _I),
    S.PENDING_NEW:      (_ACC,    _REJ,    _FILL,    _FILL, _CXL,    _I,        _I,      _EXP),
    S.ACCEPTED:         (_I,      _I,      _FILL,    _FILL, _CXL,    _I,        _I,      _EXP),
    S.PARTIALLY_FILLED: (_I,      _I,      _FILL,    _FILL, _CXL,    _I,        _I,      _EXP),
    S.FILLED:           (_I,      _I,      _FT,      _FT,   _I,      _LATE,     _I,      _I),
    S.PENDING_CANCEL:   (_KEEP,   _REJ,    _FILL,    _FILL, _CXL,    _CREJ,     _I,      _EXP),
    S.CANCELED:         (_I,      _I,      _FT,      _FT,   _I,      _LATE,     _I,      _I),
    S.PENDING_REPLACE:  (_KEEP,   _REJ,    _FILL,    _FILL, _CXL,    _CREJ,     _REPL,   _EXP),
    S.REPLACED:         (_I,      _I,      _FT,      _FT,   _I,      _I,        _I,      _I),
    S.REJECTED:         (_I,      _I,      _FT,      _FT,   _I,      _I,        _I,      _I),
    S.EXPIRED:          (_I,      _I,      _FT,      _FT,   _I,      _LATE,     _I,      _I),
    # sent before a harness restart, not yet explained (recovery.pyx): answered like PENDING_NEW
    S.UNKNOWN:          (_ACC,    _REJ,    _FILL,    _FILL, _CXL,    _I,        _I,      _EXP),
}

cdef enum:
    N_STATES = 16      # room for OrderState values
    N_EVENTS = 16      # room for ExecType values
cdef uint8_t _ACTIONS[N_STATES][N_EVENTS]   # zero (ILLEGAL) outside the table

for _s in S:
    if _s not in TABLE:
        raise RuntimeError(f"lifecycle table: no row for OrderState.{_s.name}")
for _s, _row in TABLE.items():
    if len(_row) != len(COLUMNS):
        raise RuntimeError(f"lifecycle table: row OrderState.{_s.name} has {len(_row)} cells, not {len(COLUMNS)}")
    for _e, _a in zip(COLUMNS, _row):
        _ACTIONS[int(_s)][int(_e)] = _a


cdef int lifecycle_action(int64_t state, int64_t exec_type) noexcept nogil:
    """The Action of ``exec_type`` on an order in ``state`` (ILLEGAL for anything unknown)."""
    if state < 0 or state >= N_STATES or exec_type < 0 or exec_type >= N_EVENTS:
        return A_ILLEGAL
    return _ACTIONS[state][exec_type]


def transition_table():
    """``{(OrderState, ExecType): action name}`` for every pair of the table: the lifecycle as data."""
    return {(int(s), int(e)): ACTION_NAMES[a] for s, row in TABLE.items() for e, a in zip(COLUMNS, row)}
