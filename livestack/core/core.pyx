# cython: language_level=3
"""The Core Runtime: one pass per input record, no I/O, no clock, no randomness, no floats.

::

    input slot ──▶ intake ──▶ state derivation ──▶ strategy ──▶ risk ──▶ execution control ──▶ dispatch
    (MD_*, EXEC,    (kind)     book / top / last     (intents     (named     (trading state, kill     out_orders
     CONTROL_CMD,              trade / health /      in the ctx   checks,    latch, duplicates,       (ORDER_CMD)
     TIMER)                    orders / positions    block)       DENIAL)    throttle, lifecycle)     out_records

Everything the strategy can see lives in one int64 block (``cext/ls_core.h``); the core's own state
*is* that block, so a strategy call copies nothing. The harness calls :meth:`Core.process` (nogil)
per input and drains ``out_orders`` / ``out_records``; tests, backtest and replay call
:meth:`Core.process_array`, which runs the very same ``process``.

Time inside the core is the ``ts`` of the input being processed (token buckets refill on it).
The same input sequence gives bit-identical outputs.

This module composes the stages; each lives in its own module with a ``.pxd`` contract
(module-level ``nogil`` functions taking the Core): ``risk`` (checks, rate buckets), ``dispatch``
(NEW / CANCEL / REPLACE), ``execution`` (EXEC events, fills), ``control`` (trading state, control
commands), ``emit`` (output records, coalesced denials), ``order_table`` (slots, state changes),
``book`` / ``positions`` / ``lifecycle`` / ``orders`` / ``denials``. Intake, the book mirror in
the context and the strategy call stay here: they run on every market-data input.
"""

from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.string cimport memset, memcpy
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t, INT64_MAX

import numpy as np
cimport numpy as cnp

from livestack.schema.records cimport *
from livestack.core.ctx cimport *
from livestack.core.book cimport BookSide, book_side_init, book_side_free, book_side_clear, book_side_set
from livestack.core.strategy cimport FLAVOUR_CFUNC, ON_ERROR_DISABLE, ON_ERROR_HALT
from livestack.core.strategy import encode_text
from livestack.core.orders cimport order_index_init, order_index_free
from livestack.core.denials cimport denial_runs_init, denial_runs_free
from livestack.core.positions cimport position_mark
from livestack.core.order_table cimport live_slots
from livestack.core.risk cimport limits_row, RISK_TOKEN
from livestack.core.dispatch cimport run_intent, cancel_all
from livestack.core.execution cimport on_exec
from livestack.core.control cimport on_control, set_trading_state, check_loss
from livestack.core.emit cimport emit_record, emit_anomaly, emit_book_top, flush_denial_runs
from livestack.core.recovery cimport recovery_init, recovery_free, recovery_timer
from livestack.core.lifecycle import transition_table  # noqa: F401  (the lifecycle as data)
from livestack.core.risk_config import RISK_KEYS, GLOBAL_RISK_KEYS, REQUIRED_RISK_KEYS, parse_risk  # noqa: F401
from livestack.core.assembly import check_arguments, resolve_strategy, context_block
from livestack.core import pyapi
from livestack.schema import SLOT128, DenyReason, Anomaly, RiskLimit

cnp.import_array()


DENY_NAMES = {int(v): v.name for v in DenyReason}
ANOMALY_NAMES = {int(v): v.name for v in Anomaly}


cdef class Core:
    """The Core Runtime.

    Parameters
    ----------
    instruments : list[Instrument]
        Tradable instruments; strategies address them by index in this order.
    risk : dict
        Risk limits (see :func:`parse_risk` and ``RISK_KEYS``): global defaults, optional
        ``symbols`` overrides, ``max_loss`` / ``max_loss_halt`` account-wide.
    strategy : Strategy, numba cfunc, Python object with ``on_event(ctx)``, or None
        ``None`` runs state derivation, risk and control only.
    params : dict, optional
        Strategy parameters overriding the strategy's defaults (names from ``param_names``).
    max_orders : int
        Order table slots (live + recently terminal); sizes the output buffers for a kill.
    book_depth : int, optional
        Levels per side the strategy context exposes for EVERY instrument (the backtest's
        ``--book-depth``); by default each instrument's own ``Instrument.book_depth``. The core
        always keeps the full book (nothing is evicted), so the exposed top is exact at any depth.
    book_top_levels : int
        N > 0: after every market-data input that changed an instrument's top N levels (at the
        end of a venue message, and at SNAPSHOT_END) put BOOK_LEVELS records with them in the record
        stream (the session file's ``book_top``); 0 = none. Taken from the full book, whatever
        ``book_depth`` is.
    live_cap : int
        Live orders per instrument the context lists (upper bound of ``max_open_orders``).
    max_intents : int
        Intents a strategy may append per call.
    active : bool
        Start with the session started and trading ACTIVE (else HALTED until SESSION_START).
    recover_timeout_ns, pending_timeout_ns, reject_storm_n, reject_storm_window_ns : int
        Recovery and "nothing waits forever" (``recovery.pyx``; 0 = off): RECOVERING longer than
        recover_timeout_ns -> HALTED; an order pending longer than pending_timeout_ns gets a STATUS
        request, and as long again unexplained halts its instrument; reject_storm_n venue rejects
        within reject_storm_window_ns throttle the instrument, the next storm halts it.
    """

    def __cinit__(self):
        self.bids = NULL
        self.asks = NULL
        self.ctx_words = NULL
        self.recon_wait = NULL
        self.out_orders = NULL
        self.out_records = NULL

    def __init__(self, instruments, risk, strategy=None, params=None, *, int max_orders=4096,
                 book_depth=None, int book_top_levels=0, int live_cap=64, int max_intents=64,
                 bint active=True, int64_t recover_timeout_ns=5_000_000_000, int64_t pending_timeout_ns=0,
                 int64_t reject_storm_n=0, int64_t reject_storm_window_ns=1_000_000_000):
        instruments, depths, lims, max_loss, halt = check_arguments(
            instruments, risk, max_orders, book_depth, book_top_levels, live_cap, max_intents)
        # the context's top arrays mirror max(book_depth, book_top_levels) levels of the full
        # book (the BOOK_LEVELS records read them); a strategy sees its book_depth of them
        cdef int64_t max_depth = max(max(depths), book_top_levels)
        self.strategy, pnames, pvals = resolve_strategy(strategy, params)
        self.strategy_flavour = 0

        self._instruments = instruments
        self._risk = dict(risk)
        self.n_instruments = len(instruments)
        self.ctx_book_depth = max_depth
        self.book_top_levels = book_top_levels
        self.book_top_records_per_side = (book_top_levels + LS_BOOK_LEVELS_PER_RECORD - 1) // LS_BOOK_LEVELS_PER_RECORD
        self.max_orders = max_orders
        self.live_cap = live_cap
        self.max_intents = max_intents
        self.n_params = len(pnames)
        self.max_loss = max_loss
        self.max_loss_halt = halt

        self._ctx_array = context_block(instruments, depths, max_depth, live_cap, max_orders, max_intents, pvals)
        self.n_ctx_words = len(self._ctx_array)
        self.ctx_words = <int64_t *>cnp.PyArray_DATA(self._ctx_array)
        ctx = self.ctx_words

        self.instrument_ids = <uint32_t *>PyMem_Malloc(self.n_instruments * sizeof(uint32_t))
        self.qty_scale = <int64_t *>PyMem_Malloc(self.n_instruments * sizeof(int64_t))
        self.limit_table = <int64_t *>PyMem_Malloc(self.n_instruments * CORE_N_LIMITS * sizeof(int64_t))
        self.submit_tokens = <int64_t *>PyMem_Malloc(self.n_instruments * sizeof(int64_t))
        self.submit_refill_ts = <int64_t *>PyMem_Malloc(self.n_instruments * sizeof(int64_t))
        self.cancel_tokens = <int64_t *>PyMem_Malloc(self.n_instruments * sizeof(int64_t))
        self.cancel_refill_ts = <int64_t *>PyMem_Malloc(self.n_instruments * sizeof(int64_t))
        self.book_crossed = <uint8_t *>PyMem_Malloc(self.n_instruments)
        self.book_top_changed = <uint8_t *>PyMem_Malloc(self.n_instruments)
        denial_runs_init(&self.denial_runs, self.n_instruments)
        self.bids = <BookSide *>PyMem_Malloc(self.n_instruments * sizeof(BookSide))
        self.asks = <BookSide *>PyMem_Malloc(self.n_instruments * sizeof(BookSide))
        if self.bids == NULL or self.asks == NULL:
            raise MemoryError()
        memset(self.bids, 0, self.n_instruments * sizeof(BookSide))
        memset(self.asks, 0, self.n_instruments * sizeof(BookSide))
        for k, inst in enumerate(instruments):
            self.instrument_ids[k] = inst.id
            self.qty_scale[k] = 10 ** inst.qty_decimals
            # the full book: room for a Binance 1,000-level snapshot (or the depth) before any growth
            book_side_init(&self.bids[k], 1, max(1024, 2 * depths[k]))
            book_side_init(&self.asks[k], -1, max(1024, 2 * depths[k]))
            for j in range(CORE_N_LIMITS):
                self.limit_table[k * CORE_N_LIMITS + j] = lims[k].get(j, 0)
            self.book_crossed[k] = 0
            self.book_top_changed[k] = 0
            self.submit_tokens[k] = limits_row(self, k)[LS_RISK_LIMIT_SUBMIT_BURST] * RISK_TOKEN   # buckets start full
            self.cancel_tokens[k] = limits_row(self, k)[LS_RISK_LIMIT_CANCEL_BURST] * RISK_TOKEN
            self.submit_refill_ts[k] = 0
            self.cancel_refill_ts[k] = 0

        # client_order_id -> slot (orders.pyx): at most 2 ids per slot (its own + a pending replace)
        order_index_init(&self.order_index, 2 * max_orders)
        self.free_slots = <int64_t *>PyMem_Malloc(max_orders * sizeof(int64_t))
        self.terminal_fifo = <int64_t *>PyMem_Malloc(max_orders * sizeof(int64_t))
        for k in range(max_orders):
            self.free_slots[k] = max_orders - 1 - k
        self.n_free_slots = max_orders
        self.terminal_head = 0
        self.n_terminal = 0

        # outputs: room for the worst case of one input (+1 scratch slot each)
        self.cap_out_orders = max_orders + max_intents
        # (+ a coalesced DENIAL written ahead of each intent's own records, and one per instrument
        # when a timer or session stop writes every pending run)
        self.cap_out_records = 2 * max_orders + 7 * max_intents + self.n_instruments + 16 + 2 * self.book_top_records_per_side
        self.out_orders = <uint8_t *>PyMem_Malloc((self.cap_out_orders + 1) * 64)
        self.out_records = <uint8_t *>PyMem_Malloc((self.cap_out_records + 1) * 128)
        if self.out_orders == NULL or self.out_records == NULL:
            raise MemoryError()
        self.n_out_orders = 0
        self.n_out_records = 0
        self.orders_budget = INT64_MAX

        self.session_active = 1 if active else 0
        self.trading_state = LS_TRADING_STATE_ACTIVE if active else LS_TRADING_STATE_HALTED
        self.kill_latched = 0
        self.reducing_cause = LS_DENY_REASON_REDUCE_ONLY
        self.pnl_total = 0
        self.next_client_order_id = 1
        recovery_init(self, recover_timeout_ns, pending_timeout_ns, reject_storm_n, reject_storm_window_ns)
        ctx[LS_CTX_TRADING_STATE] = self.trading_state
        self.open_orders = 0
        memset(self.c_deny, 0, sizeof(self.c_deny))
        memset(self.c_anomaly, 0, sizeof(self.c_anomaly))

        if self.strategy is not None:
            self.strategy_flavour = self.strategy.flavour
            self.strategy_fn = self.strategy.fn
            self.strategy.bind(self.ctx_words, self._ctx_array)

    def __dealloc__(self):
        cdef int64_t k
        if self.bids != NULL:
            for k in range(self.n_instruments):
                book_side_free(&self.bids[k])
        if self.asks != NULL:
            for k in range(self.n_instruments):
                book_side_free(&self.asks[k])
        PyMem_Free(self.bids)
        PyMem_Free(self.asks)
        PyMem_Free(self.instrument_ids)
        PyMem_Free(self.qty_scale)
        PyMem_Free(self.limit_table)
        PyMem_Free(self.submit_tokens)
        PyMem_Free(self.submit_refill_ts)
        PyMem_Free(self.cancel_tokens)
        PyMem_Free(self.cancel_refill_ts)
        PyMem_Free(self.book_crossed)
        PyMem_Free(self.book_top_changed)
        denial_runs_free(&self.denial_runs)
        order_index_free(&self.order_index)
        PyMem_Free(self.free_slots)
        PyMem_Free(self.terminal_fifo)
        PyMem_Free(self.out_orders)
        PyMem_Free(self.out_records)
        if self.recon_wait != NULL:
            recovery_free(self)

    # ============================================================================================
    # small helpers
    # ============================================================================================

    cdef int64_t _inst_index(self, uint32_t inst_id) noexcept nogil:
        cdef int64_t k
        for k in range(self.n_instruments):
            if self.instrument_ids[k] == inst_id:
                return k
        return -1

    # ============================================================================================
    # state derivation: book, marks, positions
    # ============================================================================================

    cdef int64_t _book_set(self, int64_t i, int64_t side, int64_t px, int64_t qty) noexcept nogil:
        """Set one level of the full book (book.pyx) and its best-first mirror in the context.

        Returns the changed level's distance from the best, -1 when nothing changed."""
        cdef int64_t *inst_ctx = ls_ctx_inst(self.ctx_words, i)
        cdef int64_t depth = inst_ctx[LS_INST_DEPTH]
        cdef int64_t mirrored = depth if depth > self.book_top_levels else self.book_top_levels   # levels mirrored
        cdef bint bid = side == LS_SIDE_BUY
        cdef int64_t *top_px = inst_ctx + (self.ctx_words[LS_CTX_INST_BIDPX_OFF] if bid else self.ctx_words[LS_CTX_INST_ASKPX_OFF])
        cdef int64_t *top_qty = top_px + self.ctx_book_depth
        cdef BookSide *b = &self.bids[i] if bid else &self.asks[i]
        cdef int64_t k = book_side_set(b, px, qty, top_px, top_qty, mirrored)
        if k == -2:   # the full book could not grow: the level is not held, the book is not exact
            inst_ctx[LS_INST_HEALTHY] = 0
            emit_anomaly(self, LS_ANOMALY_BOOK_NO_MEMORY, self.instrument_ids[i], 0, px, 0, 0)
            return -1
        if k < 0:
            return -1
        cdef int64_t n = b.live if b.live < depth else depth
        if bid:
            inst_ctx[LS_INST_N_BIDS] = n
            if k == 0:
                inst_ctx[LS_INST_BID_PX] = top_px[0] if n > 0 else 0
                inst_ctx[LS_INST_BID_QTY] = top_qty[0] if n > 0 else 0
        else:
            inst_ctx[LS_INST_N_ASKS] = n
            if k == 0:
                inst_ctx[LS_INST_ASK_PX] = top_px[0] if n > 0 else 0
                inst_ctx[LS_INST_ASK_QTY] = top_qty[0] if n > 0 else 0
        return k

    cdef void _book_clear(self, int64_t i) noexcept nogil:
        cdef int64_t *inst_ctx = ls_ctx_inst(self.ctx_words, i)
        book_side_clear(&self.bids[i])
        book_side_clear(&self.asks[i])
        inst_ctx[LS_INST_N_BIDS] = 0
        inst_ctx[LS_INST_N_ASKS] = 0
        inst_ctx[LS_INST_BID_PX] = 0
        inst_ctx[LS_INST_BID_QTY] = 0
        inst_ctx[LS_INST_ASK_PX] = 0
        inst_ctx[LS_INST_ASK_QTY] = 0
        self.book_crossed[i] = 0

    cdef void _mark(self, int64_t i) noexcept nogil:
        if position_mark(ls_ctx_inst(self.ctx_words, i), &self.pnl_total):
            check_loss(self)

    # ============================================================================================
    # strategy evaluation and intents
    # ============================================================================================

    cdef void _run_strategy(self) noexcept nogil:
        if self.strategy_flavour == 0:
            return
        cdef int64_t *ctx = self.ctx_words
        cdef int64_t n, k, err
        ctx[LS_CTX_N_INTENTS] = 0
        self.c_strategy_calls += 1
        if self.strategy_flavour == FLAVOUR_CFUNC:
            self.strategy_fn(<void *>ctx)
        else:
            self.strategy.on_event(ctx)
        n = ctx[LS_CTX_N_INTENTS]
        err = ctx[LS_CTX_ERROR]
        ctx[LS_CTX_N_INTENTS] = 0
        if n < 0 or err != 0:
            ctx[LS_CTX_ERROR] = 0
            self._strategy_error(err if err != 0 else -1)
            return
        if n > self.max_intents:
            emit_anomaly(self, LS_ANOMALY_INTENTS_OVERFLOW, 0, 0, n, 0, 0)
            n = self.max_intents
        for k in range(n):
            run_intent(self, ctx + ctx[LS_CTX_INTENT_OFF] + k * LS_INTENT_WORDS)

    cdef void _strategy_error(self, int64_t code) noexcept nogil:
        """The strategy failed (raised: code -1; or reported ``code``; its intents of this call are
        dropped): ANOMALY STRATEGY_ERROR (instrument of the input, detail = errors so far) and
        ANOMALY_TEXT (the message), then its on_error policy: disable (never called again, its
        orders canceled) or halt (the same, and HALTED cause 6). A StrategySet applies its
        members' policies itself; a member's halt still halts trading here."""
        cdef int64_t i = self.ctx_words[LS_CTX_EV_INST]
        cdef uint32_t inst = self.instrument_ids[i] if i >= 0 else 0
        self.strategy_errors += 1
        emit_anomaly(self, LS_ANOMALY_STRATEGY_ERROR, inst, 0, self.strategy_errors, self.trading_state, 0)
        cdef int action = self._error_text(code, inst)
        if self.strategy.on_error == ON_ERROR_DISABLE or self.strategy.on_error == ON_ERROR_HALT:
            self.strategy_flavour = 0
            self.strategy_disabled = 1
            flush_denial_runs(self)
            cancel_all(self, -1)
        if action == ON_ERROR_HALT and self.trading_state != LS_TRADING_STATE_HALTED:
            set_trading_state(self, LS_TRADING_STATE_HALTED, 6)

    cdef int _error_text(self, int64_t code, uint32_t inst) noexcept nogil:
        """The ANOMALY_TEXT record of a strategy error (the error path only: takes the GIL to ask
        the strategy for its message); returns the ErrorAction its policy takes."""
        cdef ls_anomaly_text_t *r = <ls_anomaly_text_t *>emit_record(
            self, LS_RECORD_KIND_ANOMALY_TEXT, LS_ANOMALY_TEXT_VERSION, inst)
        r.hseq = self.hseq
        r.code = LS_ANOMALY_STRATEGY_ERROR
        r.error_code = code if code != -1 else 0
        with gil:
            return self._describe_error(r, code)

    cdef int _describe_error(self, ls_anomaly_text_t *r, int64_t code) noexcept:
        cdef bytes text
        cdef int action = self.strategy.on_error
        try:
            member, action, msg = self.strategy.error_record(
                code, self.ctx_words[LS_CTX_EV_KIND], self.ctx_words[LS_CTX_EV_STATUS])
            text = encode_text(str(msg))
        except BaseException as e:  # the error path must not fail: say so in the record
            member, text = 0, encode_text(f"(no message: {type(e).__name__}: {e})")
        r.strategy = <uint8_t>member
        r.action = <uint8_t>action
        r.length = <uint8_t>len(text)
        memcpy(r.text, <const char *>text, len(text))
        return action

    # ============================================================================================
    # the per-input entry point
    # ============================================================================================

    cdef void clear_outputs(self) noexcept nogil:
        self.n_out_orders = 0
        self.n_out_records = 0

    cdef void records_overflow(self, uint64_t hseq) noexcept nogil:
        """The harness could not write records: trading goes HALTED (cause 3), recorded."""
        self.hseq = hseq
        emit_anomaly(self, LS_ANOMALY_RECORDS_FULL, 0, 0, 0, 0, 0)
        if self.trading_state != LS_TRADING_STATE_HALTED:
            set_trading_state(self, LS_TRADING_STATE_HALTED, 3)

    cdef int process(self, const uint8_t *rec, uint64_t hseq) noexcept nogil:
        """Process one input slot; outputs are appended to out_orders / out_records.

        Returns 0, or -1 for a record the core does not take (recorded as ANOMALY BAD_RECORD).
        """
        cdef const ls_hdr_t *h = <const ls_hdr_t *>rec
        cdef int64_t *ctx = self.ctx_words
        cdef int64_t i, changed
        cdef int64_t *inst_ctx
        cdef uint16_t kind = h.kind
        cdef const ls_md_level_t *lv
        cdef const ls_md_trade_t *tr
        cdef const ls_md_bbo_t *bb
        cdef const ls_md_status_t *st
        self.now_ts = h.ts
        self.hseq = hseq
        self.c_events += 1
        ctx[LS_CTX_TS] = h.ts
        ctx[LS_CTX_HSEQ] = <int64_t>hseq
        ctx[LS_CTX_EV_KIND] = kind
        ctx[LS_CTX_EV_FLAGS] = h.flags
        ctx[LS_CTX_EV_ORDER_ID] = 0
        ctx[LS_CTX_EV_ORDER_SLOT] = -1
        if kind == LS_RECORD_KIND_MD_LEVEL:
            self.c_md += 1
            lv = <const ls_md_level_t *>rec
            i = self._inst_index(h.instrument)
            if i < 0:
                return 0
            if lv.qty < 0 or (lv.side != LS_SIDE_BUY and lv.side != LS_SIDE_SELL):
                emit_anomaly(self, LS_ANOMALY_BAD_RECORD, h.instrument, 0, kind, 0, 0)
            else:
                changed = self._book_set(i, lv.side, lv.price, lv.qty)   # distance from the best, -1: none
                if 0 <= changed < self.book_top_levels:
                    self.book_top_changed[i] = 1
            if (h.flags & LS_RECORD_FLAG_LAST_IN_MSG) and not (h.flags & LS_RECORD_FLAG_SNAPSHOT):
                if self.book_top_changed[i]:
                    emit_book_top(self, i, lv.ts_event)
                inst_ctx = ls_ctx_inst(ctx, i)
                if inst_ctx[LS_INST_N_BIDS] > 0 and inst_ctx[LS_INST_N_ASKS] > 0 and inst_ctx[LS_INST_BID_PX] >= inst_ctx[LS_INST_ASK_PX]:
                    if not self.book_crossed[i]:
                        self.book_crossed[i] = 1
                        emit_anomaly(self, LS_ANOMALY_CROSSED_BOOK, h.instrument, 0, inst_ctx[LS_INST_BID_PX], 0, 0)
                else:
                    self.book_crossed[i] = 0
                self._mark(i)
                ctx[LS_CTX_EV_INST] = i
                ctx[LS_CTX_EV_SIDE] = lv.side
                ctx[LS_CTX_EV_PRICE] = lv.price
                ctx[LS_CTX_EV_QTY] = lv.qty
                ctx[LS_CTX_EV_STATUS] = 0
                self._run_strategy()
        elif kind == LS_RECORD_KIND_MD_TRADE:
            self.c_md += 1
            tr = <const ls_md_trade_t *>rec
            i = self._inst_index(h.instrument)
            if i < 0:
                return 0
            inst_ctx = ls_ctx_inst(ctx, i)
            inst_ctx[LS_INST_LAST_PX] = tr.price
            inst_ctx[LS_INST_LAST_QTY] = tr.qty
            inst_ctx[LS_INST_LAST_SIDE] = tr.side
            inst_ctx[LS_INST_LAST_TS] = h.ts
            self._mark(i)
            ctx[LS_CTX_EV_INST] = i
            ctx[LS_CTX_EV_SIDE] = tr.side
            ctx[LS_CTX_EV_PRICE] = tr.price
            ctx[LS_CTX_EV_QTY] = tr.qty
            ctx[LS_CTX_EV_STATUS] = 0
            self._run_strategy()
        elif kind == LS_RECORD_KIND_MD_BBO:
            self.c_md += 1
            bb = <const ls_md_bbo_t *>rec
            i = self._inst_index(h.instrument)
            if i < 0:
                return 0
            inst_ctx = ls_ctx_inst(ctx, i)
            inst_ctx[LS_INST_BBO_BID_PX] = bb.bid_px
            inst_ctx[LS_INST_BBO_BID_QTY] = bb.bid_qty
            inst_ctx[LS_INST_BBO_ASK_PX] = bb.ask_px
            inst_ctx[LS_INST_BBO_ASK_QTY] = bb.ask_qty
            ctx[LS_CTX_EV_INST] = i
            ctx[LS_CTX_EV_SIDE] = 0
            ctx[LS_CTX_EV_PRICE] = 0
            ctx[LS_CTX_EV_QTY] = 0
            ctx[LS_CTX_EV_STATUS] = 0
            self._run_strategy()
        elif kind == LS_RECORD_KIND_MD_STATUS:
            self.c_md += 1
            st = <const ls_md_status_t *>rec
            i = self._inst_index(h.instrument)
            if i < 0:
                return 0
            inst_ctx = ls_ctx_inst(ctx, i)
            if st.status == LS_FEED_STATUS_SNAPSHOT_BEGIN:
                self._book_clear(i)
                inst_ctx[LS_INST_HEALTHY] = 0
            elif st.status == LS_FEED_STATUS_SNAPSHOT_END:
                inst_ctx[LS_INST_HEALTHY] = 1
                if self.book_top_levels:
                    emit_book_top(self, i, st.ts_event)
                self._mark(i)
            elif st.status == LS_FEED_STATUS_GAP or st.status == LS_FEED_STATUS_STALE or \
                    st.status == LS_FEED_STATUS_DISCONNECTED or st.status == LS_FEED_STATUS_CONNECTED:
                inst_ctx[LS_INST_HEALTHY] = 0
            else:
                emit_anomaly(self, LS_ANOMALY_BAD_RECORD, h.instrument, 0, st.status, 0, 0)
                return -1
            ctx[LS_CTX_EV_INST] = i
            ctx[LS_CTX_EV_SIDE] = 0
            ctx[LS_CTX_EV_PRICE] = 0
            ctx[LS_CTX_EV_QTY] = 0
            ctx[LS_CTX_EV_STATUS] = st.status
            self._run_strategy()
        elif kind == LS_RECORD_KIND_EXEC:
            self.c_exec += 1
            on_exec(self, <const ls_exec_t *>rec)
            self._run_strategy()              # every EXEC reaches the strategy (unknown orders too)
        elif kind == LS_RECORD_KIND_CONTROL_CMD:
            self.c_control += 1
            if self.strategy_flavour != 0 and self.strategy.stop_hook and \
                    (<const ls_control_cmd_t *>rec).cmd == LS_CONTROL_CMD_TYPE_SESSION_STOP:
                ctx[LS_CTX_EV_INST] = -1        # on_stop: before the core cancels everything
                ctx[LS_CTX_EV_SIDE] = 0
                ctx[LS_CTX_EV_PRICE] = 0
                ctx[LS_CTX_EV_QTY] = 0
                ctx[LS_CTX_EV_STATUS] = (<const ls_control_cmd_t *>rec).cmd
                self._run_strategy()
            on_control(self, <const ls_control_cmd_t *>rec)
        elif kind == LS_RECORD_KIND_TIMER:
            self.c_timer += 1
            if self.denial_runs.pending:
                flush_denial_runs(self)
            recovery_timer(self)
            ctx[LS_CTX_EV_INST] = -1
            ctx[LS_CTX_EV_SIDE] = 0
            ctx[LS_CTX_EV_PRICE] = 0
            ctx[LS_CTX_EV_QTY] = 0
            ctx[LS_CTX_EV_STATUS] = 0
            self._run_strategy()
        else:
            self.c_bad_records += 1
            emit_anomaly(self, LS_ANOMALY_BAD_RECORD, h.instrument, 0, kind, 0, 0)
            return -1
        return 0

    # ============================================================================================
    # Python API (tests, backtest, replay, control queries)
    # ============================================================================================

    def process_array(self, inputs, uint64_t hseq0=1):
        """Run every input through :meth:`process` (the same code the harness calls).

        Parameters
        ----------
        inputs : numpy.ndarray
            Records in 128-byte slots (``SLOT128``; 64-byte kinds in the first 64 bytes) or a
            64-byte-slot array of market-data records.
        hseq0 : int
            Harness sequence of the first input (the k-th gets ``hseq0 + k``).

        Returns
        -------
        (orders, records) : ``ORDER_CMD`` array and ``SLOT128`` array of every output, in order.
        """
        return pyapi.process_array(self, inputs, hseq0)

    def run_count(self, inputs, uint64_t hseq0=1):
        """Process every input and discard the outputs (as a harness that drains them would);
        returns (orders, records) counts. For benchmarks: no Python and no copies per event."""
        arr = np.ascontiguousarray(inputs)
        cdef Py_ssize_t size = arr.dtype.itemsize
        if size != 64 and size != 128:
            raise ValueError(f"inputs: slots of 64 or 128 bytes expected, got {size}")
        cdef const uint8_t *src = <const uint8_t *>cnp.PyArray_DATA(arr)
        cdef Py_ssize_t n = arr.shape[0], k
        cdef uint64_t no = 0, nr = 0
        with nogil:
            for k in range(n):
                self.clear_outputs()
                self.process(src + k * size, hseq0 + k)
                no += self.n_out_orders
                nr += self.n_out_records
            self.clear_outputs()
        return int(no), int(nr)

    def signal_records_overflow(self, uint64_t hseq):
        """Python entry of :meth:`records_overflow` (tests, replay); returns the outputs."""
        self.clear_outputs()
        self.records_overflow(hseq)
        records = np.empty(self.n_out_records, dtype=SLOT128)
        if self.n_out_records:
            memcpy(cnp.PyArray_DATA(records), self.out_records, self.n_out_records * 128)
        self.clear_outputs()
        return records

    def counters(self):
        """Per-stage counters as a dict (denials and anomalies by name, non-zero only)."""
        return {
            "events": self.c_events, "md_events": self.c_md, "exec_events": self.c_exec,
            "control_events": self.c_control, "timer_events": self.c_timer,
            "bad_records": self.c_bad_records, "strategy_calls": self.c_strategy_calls, "strategy_errors": self.strategy_errors,
            "strategy_disabled": self.strategy_disabled,
            "intents": self.c_intents, "orders_sent": self.c_orders_sent, "new_orders": self.c_news,
            "cancels": self.c_cancels, "replaces": self.c_replaces, "fills": self.c_fills,
            "denials": self.c_denials, "anomalies": self.c_anomalies,
            "unknown_order_execs": self.c_unknown_order_execs, "late_events": self.c_late_events, "output_overflow": self.c_out_overflow,
            "open_orders": self.open_orders, "status_requests": self.c_status_requests,
            "recoveries": self.c_recoveries, "epoch": self.epoch,
            "denials_by_reason": {DENY_NAMES.get(k, str(k)): self.c_deny[k] for k in range(CORE_N_DENY) if self.c_deny[k]},
            "anomalies_by_code": {ANOMALY_NAMES.get(k, str(k)): self.c_anomaly[k] for k in range(CORE_N_ANOMALY) if self.c_anomaly[k]},
        }

    def _index(self, instrument_id):
        cdef int64_t i = self._inst_index(instrument_id)
        if i < 0:
            raise KeyError(f"unknown instrument {instrument_id}")
        return i

    def full_book(self, instrument_id):
        """Every level the core holds: (bids, asks) as int64 arrays of shape (n, 2), best first."""
        return pyapi.full_book(self, instrument_id)

    def book(self, instrument_id):
        """The top ``book_depth`` levels the strategy context exposes: (bids, asks) as int64 arrays
        of shape (n, 2): price, qty; best first (exact: the core holds the full book)."""
        return pyapi.book(self, instrument_id)

    def instrument_state(self, instrument_id):
        """The instrument block's fixed fields as a dict (top of book, last trade, position ...)."""
        return pyapi.instrument_state(self, instrument_id)

    def position(self, instrument_id):
        s = self.instrument_state(instrument_id)
        return {"net_qty": s["position"], "cost": s["cost"], "realized_pnl": s["realized"],
                "unrealized_pnl": s["unrealized"]}

    def order(self, client_order_id):
        """The order slot of a client_order_id (live or recently terminal) as a dict, or None."""
        return pyapi.order(self, client_order_id)

    def live_orders(self, instrument_id=None):
        """Live orders (creation order per instrument) as dicts."""
        return pyapi.live_orders(self, instrument_id)

    def risk_limits(self, instrument_id):
        """Current per-instrument limits by lower-case RiskLimit name (plus account-wide loss limits)."""
        cdef int64_t i = self._index(instrument_id)
        d = {RiskLimit(k).name.lower(): limits_row(self, i)[k] for k in range(1, CORE_N_LIMITS)
             if k in RiskLimit._value2member_map_ and k not in (LS_RISK_LIMIT_MAX_LOSS, LS_RISK_LIMIT_MAX_LOSS_HALT)}
        d["max_loss"] = self.max_loss
        d["max_loss_halt"] = self.max_loss_halt
        return d

    def params(self):
        off = self.ctx_words[LS_CTX_PARAM_OFF]
        names = self.strategy.param_names if self.strategy is not None else ()
        return {n: int(self._ctx_array[off + k]) for k, n in enumerate(names)}

    @property
    def ctx(self):
        """The context block as a numpy int64 array (live view: do not write)."""
        return self._ctx_array

    @property
    def instruments(self):
        return list(self._instruments)

    @property
    def output_capacity(self):
        """(ORDER_CMD slots, record slots) one input can produce at most."""
        return int(self.cap_out_orders), int(self.cap_out_records)
