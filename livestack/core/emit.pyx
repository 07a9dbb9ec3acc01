# cython: language_level=3
"""Record emission: output slots, ANOMALY / ORDER_STATE / POSITION / BOOK_LEVELS records and the
coalesced DENIAL records (runs from denials.pyx). Module functions over the Core (emit.pxd)."""
from libc.string cimport memset, memmove
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from livestack.schema.records cimport *
from livestack.core.ctx cimport *
from livestack.core.core cimport Core, CORE_N_DENY, CORE_N_ANOMALY, CORE_N_LIMITS, LS_BOOK_LEVELS_PER_RECORD
from livestack.core.denials cimport (Denial, denial_repeat, denial_take_repeats, denial_start_run,
                                     denial_end_run)
from livestack.core.book cimport BookSide


cdef uint8_t *emit_record(Core c, uint16_t kind, uint8_t version, uint32_t inst) noexcept nogil:
    cdef uint8_t *p
    if c.n_out_records < c.cap_out_records:
        p = c.out_records + c.n_out_records * 128
        c.n_out_records += 1
    else:
        c.c_out_overflow += 1
        p = c.out_records + c.cap_out_records * 128  # scratch slot
    memset(p, 0, 128)
    cdef ls_hdr_t *h = <ls_hdr_t *>p
    h.kind = kind
    h.version = version
    h.instrument = inst
    h.ts = c.now_ts
    return p


cdef ls_order_cmd_t *emit_order_cmd(Core c, uint32_t inst) noexcept nogil:
    cdef uint8_t *p
    if c.n_out_orders < c.cap_out_orders:
        p = c.out_orders + c.n_out_orders * 64
        c.n_out_orders += 1
    else:
        c.c_out_overflow += 1
        p = c.out_orders + c.cap_out_orders * 64
    memset(p, 0, 64)
    cdef ls_order_cmd_t *cmd = <ls_order_cmd_t *>p
    cmd.kind = LS_RECORD_KIND_ORDER_CMD
    cmd.version = LS_ORDER_CMD_VERSION
    cmd.instrument = inst
    cmd.ts = c.now_ts
    c.c_orders_sent += 1
    return cmd


cdef void emit_anomaly(Core c, uint16_t code, uint32_t inst, int64_t coid, int64_t detail, int64_t state,
                   int64_t exec_type) noexcept nogil:
    cdef ls_anomaly_t *a = <ls_anomaly_t *>emit_record(c, LS_RECORD_KIND_ANOMALY, LS_ANOMALY_VERSION, inst)
    a.hseq = c.hseq
    a.client_order_id = coid
    a.detail = detail
    a.code = code
    a.state = <uint8_t>state
    a.exec_type = <uint8_t>exec_type
    c.c_anomalies += 1
    if code < CORE_N_ANOMALY:
        c.c_anomaly[code] += 1


cdef int deny_intent(Core c, uint16_t reason, int64_t i, int64_t intent, int64_t side, int64_t price,
               int64_t qty, int64_t coid) noexcept nogil:
    """Deny an intent: count it, and record it unless it repeats the instrument's current run.

    A run is consecutive denials of one reason on one instrument (a strategy re-asking every
    tick against a rate limit makes millions). Its first denial is recorded at once
    (count 1); the repeats are counted and written as one DENIAL carrying the last repeat's
    fields and ``count`` = the repeats, when the run ends (:func:`end_denial_run`: an order sent on
    the instrument, or a denial for another reason) or at a timer tick or session stop
    (:func:`flush_denial_runs`). Every denial is in a ``count``; the counters see each one.
    """
    c.c_denials += 1
    if reason < CORE_N_DENY:
        c.c_deny[reason] += 1
    cdef Denial d
    d.reason, d.intent, d.side, d.price, d.qty, d.client_order_id, d.count = reason, intent, side, price, qty, coid, 1
    if 0 <= i < c.n_instruments:
        if denial_repeat(&c.denial_runs, i, &d):
            return reason
        flush_denial_run(c, i)
        denial_start_run(&c.denial_runs, i, reason)
    emit_denial(c, i, &d)
    return reason


cdef void emit_denial(Core c, int64_t i, const Denial *d) noexcept nogil:
    cdef uint32_t inst = c.instrument_ids[i] if 0 <= i < c.n_instruments else 0
    cdef ls_denial_t *r = <ls_denial_t *>emit_record(c, LS_RECORD_KIND_DENIAL, LS_DENIAL_VERSION, inst)
    r.client_order_id = d.client_order_id
    r.price = d.price
    r.qty = d.qty
    r.reason = <uint16_t>d.reason
    r.side = <uint8_t>d.side
    r.intent = <uint8_t>d.intent
    r.count = <uint32_t>d.count


cdef void flush_denial_run(Core c, int64_t i) noexcept nogil:
    """Write instrument i's uncounted repeats as one DENIAL (the run goes on)."""
    cdef Denial d
    if denial_take_repeats(&c.denial_runs, i, &d):
        emit_denial(c, i, &d)


cdef void end_denial_run(Core c, int64_t i) noexcept nogil:
    """An order goes out on instrument i: its run of denials is over."""
    cdef Denial d
    if denial_end_run(&c.denial_runs, i, &d):
        emit_denial(c, i, &d)


cdef void flush_denial_runs(Core c) noexcept nogil:
    cdef int64_t i
    for i in range(c.n_instruments):
        if c.denial_runs.pending == 0:
            return
        flush_denial_run(c, i)


cdef void emit_order_state(Core c, int64_t *order, int64_t prev, int64_t exec_type) noexcept nogil:
    cdef ls_order_state_t *r = <ls_order_state_t *>emit_record(c, 
        LS_RECORD_KIND_ORDER_STATE, LS_ORDER_STATE_VERSION, c.instrument_ids[order[LS_ORD_INST]])
    r.hseq = c.hseq
    r.client_order_id = order[LS_ORD_ID]
    r.venue_order_id = order[LS_ORD_VENUE_ID]
    r.price = order[LS_ORD_PRICE]
    r.qty = order[LS_ORD_QTY]
    r.cum_qty = order[LS_ORD_CUM_QTY]
    r.state = <uint8_t>order[LS_ORD_STATE]
    r.prev_state = <uint8_t>prev
    r.side = <uint8_t>order[LS_ORD_SIDE]
    r.exec_type = <uint8_t>exec_type


cdef void emit_position(Core c, int64_t i) noexcept nogil:
    cdef int64_t *inst_ctx = ls_ctx_inst(c.ctx_words, i)
    cdef ls_position_t *r = <ls_position_t *>emit_record(c, LS_RECORD_KIND_POSITION, LS_POSITION_VERSION,
                                                       c.instrument_ids[i])
    r.net_qty = inst_ctx[LS_INST_POSITION]
    r.cost = inst_ctx[LS_INST_COST]
    r.realized_pnl = inst_ctx[LS_INST_REALIZED]
    r.unrealized_pnl = inst_ctx[LS_INST_UNREALIZED]


cdef void emit_book_top(Core c, int64_t i, int64_t ts_event) noexcept nogil:
    """BOOK_LEVELS records: the top ``top_levels`` of each side from the full book, in chunks
    of LS_BOOK_LEVELS_PER_RECORD levels, bids then asks (readers join them into a book_top row)."""
    cdef int64_t *inst_ctx = ls_ctx_inst(c.ctx_words, i)
    cdef BookSide *b
    cdef ls_book_levels_t *r
    cdef int64_t chunk, k, lvl, s
    cdef int64_t *px
    cdef int64_t *qty
    cdef int64_t *top_px
    cdef int64_t *top_qty
    c.book_top_changed[i] = 0
    for s in range(2):
        b = &c.bids[i] if s == 0 else &c.asks[i]
        top_px = inst_ctx + (c.ctx_words[LS_CTX_INST_BIDPX_OFF] if s == 0 else c.ctx_words[LS_CTX_INST_ASKPX_OFF])
        top_qty = top_px + c.ctx_book_depth
        for chunk in range(c.book_top_records_per_side):
            r = <ls_book_levels_t *>emit_record(c, LS_RECORD_KIND_BOOK_LEVELS, LS_BOOK_LEVELS_VERSION, c.instrument_ids[i])
            r.hseq = c.hseq
            r.ts_event = ts_event
            r.levels = <uint16_t>c.book_top_levels
            r.first = <uint16_t>(chunk * LS_BOOK_LEVELS_PER_RECORD)
            r.side = LS_SIDE_BUY if s == 0 else LS_SIDE_SELL
            px = &r.px_0
            qty = &r.qty_0
            for k in range(LS_BOOK_LEVELS_PER_RECORD):
                lvl = chunk * LS_BOOK_LEVELS_PER_RECORD + k
                if lvl >= c.book_top_levels or lvl >= b.live:
                    break
                px[2 * k] = top_px[lvl]      # px_k, qty_k interleave in the record
                qty[2 * k] = top_qty[lvl]
                r.count += 1
