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
"""

from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memset, memcpy, memmove
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t, INT64_MAX, UINT32_MAX

import numpy as np
cimport numpy as cnp

from livestack.schema.records cimport *
from livestack.core.ctx cimport *
from livestack.core.book cimport BookSide, book_side_init, book_side_free, book_side_clear, book_side_set
from livestack.core.strategy cimport Strategy, CfuncStrategy, PyStrategy, FLAVOUR_CYTHON, FLAVOUR_CFUNC, FLAVOUR_PYTHON

from livestack.config import Instrument, MAX_BOOK_DEPTH
from livestack.schema import DTYPES, SLOT128, parse_fixed, DenyReason, Anomaly, RiskLimit

cnp.import_array()

from livestack.core.lifecycle cimport *
from livestack.core.orders cimport order_index_init, order_index_free, order_index_get, order_index_put, order_index_remove
from livestack.core.denials cimport Denial, denial_runs_init, denial_runs_free, denial_repeat, denial_take_repeats, denial_start_run, denial_end_run
from livestack.core.positions cimport position_fill, position_mark, reference_price
from livestack.core.lifecycle import transition_table  # noqa: F401  (the lifecycle as data)


cdef inline int64_t _abs(int64_t x) noexcept nogil:
    return -x if x < 0 else x

from livestack.core.risk_config import RISK_KEYS, GLOBAL_RISK_KEYS, REQUIRED_RISK_KEYS, parse_risk  # noqa: F401


DENY_NAMES = {int(v): v.name for v in DenyReason}
ANOMALY_NAMES = {int(v): v.name for v in Anomaly}

cdef int64_t TOKEN = 1000000000    # one token in bucket units (rate tokens/s refill rate units per ns)


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
    """

    def __cinit__(self):
        self.bids = NULL
        self.asks = NULL
        self.w = NULL
        self.out_orders = NULL
        self.out_records = NULL

    def __init__(self, instruments, risk, strategy=None, params=None, *, int max_orders=4096,
                 book_depth=None, int book_top_levels=0, int live_cap=64, int max_intents=64,
                 bint active=True):
        instruments = list(instruments)
        if not instruments:
            raise ValueError("instruments: at least one instrument is needed")
        ids = set()
        for inst in instruments:
            if not isinstance(inst, Instrument):
                raise ValueError(f"instruments: expected Instrument, got {inst!r}")
            if inst.id in ids:
                raise ValueError(f"instruments: duplicate id {inst.id}")
            ids.add(inst.id)
        if max_orders < 1 or max_orders > (1 << 22):
            raise ValueError("max_orders: must be 1..4194304")
        if book_depth is not None and (isinstance(book_depth, bool) or not isinstance(book_depth, int)
                                       or not 1 <= book_depth <= MAX_BOOK_DEPTH):
            raise ValueError(f"book_depth: must be an integer 1..{MAX_BOOK_DEPTH}, got {book_depth!r}")
        depths = [book_depth if book_depth is not None else inst.book_depth for inst in instruments]
        if book_top_levels < 0 or book_top_levels > 1000:
            raise ValueError(f"book_top_levels: must be 0..1000, got {book_top_levels}")
        # the context's top arrays mirror max(book_depth, book_top_levels) levels of the full
        # book (the BOOK_LEVELS records read them); a strategy sees its book_depth of them
        cdef int64_t max_depth = max(max(depths), book_top_levels)
        if live_cap < 1 or live_cap > 65536:
            raise ValueError("live_cap: must be 1..65536")
        if max_intents < 1 or max_intents > 65536:
            raise ValueError("max_intents: must be 1..65536")
        lims, max_loss, halt = parse_risk(risk, instruments, live_cap)

        # strategy
        if strategy is None:
            self.strategy = None
            self.flavour = 0
        elif isinstance(strategy, Strategy):
            self.strategy = strategy
        elif hasattr(strategy, "address") and hasattr(strategy, "native_name"):
            self.strategy = CfuncStrategy(strategy, name=getattr(strategy, "__name__", "cfunc"))
        elif callable(getattr(strategy, "on_event", None)):
            self.strategy = PyStrategy(strategy, name=type(strategy).__name__,
                                       param_names=getattr(strategy, "param_names", ()),
                                       param_defaults=getattr(strategy, "param_defaults", ()))
        else:
            raise ValueError(f"strategy: expected a Strategy, a numba cfunc or an object with on_event, got {strategy!r}")
        pnames = tuple(self.strategy.param_names) if self.strategy is not None else ()
        pvals = list(self.strategy.param_defaults) if self.strategy is not None else []
        for k, v in (params or {}).items():
            if k not in pnames:
                raise ValueError(f"param {k!r}: strategy {self.strategy.name if self.strategy else None!r} "
                                 f"has no such parameter (known: {list(pnames)})")
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"param {k!r}: expected an integer, got {v!r}")
            pvals[pnames.index(k)] = int(v)

        self._instruments = instruments
        self._risk = dict(risk)
        self.n_inst = len(instruments)
        self.depth = max_depth
        self.top_levels = book_top_levels
        self.top_chunks = (book_top_levels + LS_BOOK_LEVELS_PER_RECORD - 1) // LS_BOOK_LEVELS_PER_RECORD
        self.max_orders = max_orders
        self.live_cap = live_cap
        self.max_intents = max_intents
        self.n_params = len(pnames)
        self.max_loss = max_loss
        self.max_loss_halt = halt

        # ---- the context block ----
        cdef int64_t inst_stride = LS_INST_FIXED_WORDS + live_cap + 4 * max_depth
        cdef int64_t inst_off = LS_CTX_HDR_WORDS
        cdef int64_t ord_off = inst_off + self.n_inst * inst_stride
        cdef int64_t param_off = ord_off + max_orders * LS_ORD_WORDS
        cdef int64_t intent_off = param_off + max(1, self.n_params)
        cdef int64_t guser_off = intent_off + max_intents * LS_INTENT_WORDS
        cdef int64_t n_guser = 256
        self.n_words = guser_off + n_guser
        self._view = np.zeros(self.n_words, dtype=np.int64)
        self.w = <int64_t *>cnp.PyArray_DATA(self._view)
        w = self.w
        w[LS_CTX_WORDS] = self.n_words
        w[LS_CTX_EV_INST] = -1
        w[LS_CTX_EV_ORDER_SLOT] = -1
        w[LS_CTX_N_INST] = self.n_inst
        w[LS_CTX_DEPTH] = max_depth
        w[LS_CTX_INST_OFF] = inst_off
        w[LS_CTX_INST_STRIDE] = inst_stride
        w[LS_CTX_LIVE_CAP] = live_cap
        w[LS_CTX_INST_LIVE_OFF] = LS_INST_FIXED_WORDS
        w[LS_CTX_INST_BIDPX_OFF] = LS_INST_FIXED_WORDS + live_cap
        w[LS_CTX_INST_BIDQTY_OFF] = LS_INST_FIXED_WORDS + live_cap + max_depth
        w[LS_CTX_INST_ASKPX_OFF] = LS_INST_FIXED_WORDS + live_cap + 2 * max_depth
        w[LS_CTX_INST_ASKQTY_OFF] = LS_INST_FIXED_WORDS + live_cap + 3 * max_depth
        w[LS_CTX_ORD_OFF] = ord_off
        w[LS_CTX_MAX_ORDERS] = max_orders
        w[LS_CTX_PARAM_OFF] = param_off
        w[LS_CTX_N_PARAMS] = self.n_params
        w[LS_CTX_INTENT_OFF] = intent_off
        w[LS_CTX_MAX_INTENTS] = max_intents
        w[LS_CTX_GUSER_OFF] = guser_off
        w[LS_CTX_N_GUSER] = n_guser
        for k in range(self.n_params):
            w[param_off + k] = pvals[k]

        self.inst_ids = <uint32_t *>PyMem_Malloc(self.n_inst * sizeof(uint32_t))
        self.qty_scale = <int64_t *>PyMem_Malloc(self.n_inst * sizeof(int64_t))
        self.limits = <int64_t *>PyMem_Malloc(self.n_inst * CORE_N_LIMITS * sizeof(int64_t))
        self.sub_tokens = <int64_t *>PyMem_Malloc(self.n_inst * sizeof(int64_t))
        self.sub_ts = <int64_t *>PyMem_Malloc(self.n_inst * sizeof(int64_t))
        self.can_tokens = <int64_t *>PyMem_Malloc(self.n_inst * sizeof(int64_t))
        self.can_ts = <int64_t *>PyMem_Malloc(self.n_inst * sizeof(int64_t))
        self.crossed = <uint8_t *>PyMem_Malloc(self.n_inst)
        self.top_changed = <uint8_t *>PyMem_Malloc(self.n_inst)
        denial_runs_init(&self.denials, self.n_inst)
        self.bids = <BookSide *>PyMem_Malloc(self.n_inst * sizeof(BookSide))
        self.asks = <BookSide *>PyMem_Malloc(self.n_inst * sizeof(BookSide))
        if self.bids == NULL or self.asks == NULL:
            raise MemoryError()
        memset(self.bids, 0, self.n_inst * sizeof(BookSide))
        memset(self.asks, 0, self.n_inst * sizeof(BookSide))
        cdef int64_t *I
        for k, inst in enumerate(instruments):
            self.inst_ids[k] = inst.id
            self.qty_scale[k] = 10 ** inst.qty_decimals
            I = ls_ctx_inst(w, k)
            I[LS_INST_ID] = inst.id
            I[LS_INST_TICK] = inst.tick
            I[LS_INST_LOT] = inst.lot
            I[LS_INST_QTY_SCALE] = 10 ** inst.qty_decimals
            I[LS_INST_DEPTH] = depths[k]
            # the full book: room for a Binance 1,000-level snapshot (or the depth) before any growth
            book_side_init(&self.bids[k], 1, max(1024, 2 * depths[k]))
            book_side_init(&self.asks[k], -1, max(1024, 2 * depths[k]))
            for j in range(CORE_N_LIMITS):
                self.limits[k * CORE_N_LIMITS + j] = lims[k].get(j, 0)
            self.crossed[k] = 0
            self.top_changed[k] = 0
            self._refill_full(k)

        # client_order_id -> slot (orders.pyx): at most 2 ids per slot (its own + a pending replace)
        order_index_init(&self.order_index, 2 * max_orders)
        self.free_slots = <int64_t *>PyMem_Malloc(max_orders * sizeof(int64_t))
        self.grave = <int64_t *>PyMem_Malloc(max_orders * sizeof(int64_t))
        for k in range(max_orders):
            self.free_slots[k] = max_orders - 1 - k
        self.n_free = max_orders
        self.grave_head = 0
        self.grave_n = 0

        # outputs: room for the worst case of one input (+1 scratch slot each)
        self.cap_out_orders = max_orders + max_intents
        # (+ a coalesced DENIAL written ahead of each intent's own records, and one per instrument
        # when a timer or session stop writes every pending run)
        self.cap_out_records = 2 * max_orders + 7 * max_intents + self.n_inst + 16 + 2 * self.top_chunks
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
        self.next_id = 1
        w[LS_CTX_NEXT_ORDER_ID] = 1
        w[LS_CTX_TRADING_STATE] = self.trading_state
        self.open_orders = 0
        memset(self.c_deny, 0, sizeof(self.c_deny))
        memset(self.c_anomaly, 0, sizeof(self.c_anomaly))

        if self.strategy is not None:
            self.flavour = self.strategy.flavour
            self.strat_fn = self.strategy.fn
            self.strategy.bind(self.w, self._view)

    def __dealloc__(self):
        cdef int64_t k
        if self.bids != NULL:
            for k in range(self.n_inst):
                book_side_free(&self.bids[k])
        if self.asks != NULL:
            for k in range(self.n_inst):
                book_side_free(&self.asks[k])
        PyMem_Free(self.bids)
        PyMem_Free(self.asks)
        PyMem_Free(self.inst_ids)
        PyMem_Free(self.qty_scale)
        PyMem_Free(self.limits)
        PyMem_Free(self.sub_tokens)
        PyMem_Free(self.sub_ts)
        PyMem_Free(self.can_tokens)
        PyMem_Free(self.can_ts)
        PyMem_Free(self.crossed)
        PyMem_Free(self.top_changed)
        denial_runs_free(&self.denials)
        order_index_free(&self.order_index)
        PyMem_Free(self.free_slots)
        PyMem_Free(self.grave)
        PyMem_Free(self.out_orders)
        PyMem_Free(self.out_records)

    # ============================================================================================
    # small helpers
    # ============================================================================================

    cdef int64_t _inst_index(self, uint32_t inst_id) noexcept nogil:
        cdef int64_t k
        for k in range(self.n_inst):
            if self.inst_ids[k] == inst_id:
                return k
        return -1

    cdef int64_t *_lim(self, int64_t i) noexcept nogil:
        return self.limits + i * CORE_N_LIMITS

    cdef void _refill_full(self, int64_t i) noexcept nogil:
        cdef int64_t *L = self._lim(i)
        self.sub_tokens[i] = L[LS_RISK_LIMIT_SUBMIT_BURST] * TOKEN
        self.can_tokens[i] = L[LS_RISK_LIMIT_CANCEL_BURST] * TOKEN
        self.sub_ts[i] = 0
        self.can_ts[i] = 0

    cdef uint8_t *_rec(self, uint16_t kind, uint8_t version, uint32_t inst) noexcept nogil:
        cdef uint8_t *p
        if self.n_out_records < self.cap_out_records:
            p = self.out_records + self.n_out_records * 128
            self.n_out_records += 1
        else:
            self.c_out_overflow += 1
            p = self.out_records + self.cap_out_records * 128  # scratch slot
        memset(p, 0, 128)
        cdef ls_hdr_t *h = <ls_hdr_t *>p
        h.kind = kind
        h.version = version
        h.instrument = inst
        h.ts = self.now
        return p

    cdef ls_order_cmd_t *_cmd(self, uint32_t inst) noexcept nogil:
        cdef uint8_t *p
        if self.n_out_orders < self.cap_out_orders:
            p = self.out_orders + self.n_out_orders * 64
            self.n_out_orders += 1
        else:
            self.c_out_overflow += 1
            p = self.out_orders + self.cap_out_orders * 64
        memset(p, 0, 64)
        cdef ls_order_cmd_t *c = <ls_order_cmd_t *>p
        c.kind = LS_RECORD_KIND_ORDER_CMD
        c.version = LS_ORDER_CMD_VERSION
        c.instrument = inst
        c.ts = self.now
        self.c_orders_sent += 1
        return c

    cdef void _anomaly(self, uint16_t code, uint32_t inst, int64_t coid, int64_t detail, int64_t state,
                       int64_t exec_type) noexcept nogil:
        cdef ls_anomaly_t *a = <ls_anomaly_t *>self._rec(LS_RECORD_KIND_ANOMALY, LS_ANOMALY_VERSION, inst)
        a.hseq = self.hseq
        a.client_order_id = coid
        a.detail = detail
        a.code = code
        a.state = <uint8_t>state
        a.exec_type = <uint8_t>exec_type
        self.c_anomalies += 1
        if code < CORE_N_ANOMALY:
            self.c_anomaly[code] += 1

    cdef int _deny(self, uint16_t reason, int64_t i, int64_t intent, int64_t side, int64_t price,
                   int64_t qty, int64_t coid) noexcept nogil:
        """Deny an intent: count it, and record it unless it repeats the instrument's current run.

        A run is consecutive denials of one reason on one instrument (a strategy re-asking every
        tick against a rate limit makes millions). Its first denial is recorded at once
        (count 1); the repeats are counted and written as one DENIAL carrying the last repeat's
        fields and ``count`` = the repeats, when the run ends (:meth:`_deny_end`: an order sent on
        the instrument, or a denial for another reason) or at a timer tick or session stop
        (:meth:`_deny_flush_all`). Every denial is in a ``count``; the counters see each one.
        """
        self.c_denials += 1
        if reason < CORE_N_DENY:
            self.c_deny[reason] += 1
        cdef Denial d
        d.reason, d.intent, d.side, d.price, d.qty, d.client_order_id, d.count = reason, intent, side, price, qty, coid, 1
        if 0 <= i < self.n_inst:
            if denial_repeat(&self.denials, i, &d):
                return reason
            self._deny_flush(i)
            denial_start_run(&self.denials, i, reason)
        self._deny_rec(i, &d)
        return reason

    cdef void _deny_rec(self, int64_t i, const Denial *d) noexcept nogil:
        cdef uint32_t inst = self.inst_ids[i] if 0 <= i < self.n_inst else 0
        cdef ls_denial_t *r = <ls_denial_t *>self._rec(LS_RECORD_KIND_DENIAL, LS_DENIAL_VERSION, inst)
        r.client_order_id = d.client_order_id
        r.price = d.price
        r.qty = d.qty
        r.reason = <uint16_t>d.reason
        r.side = <uint8_t>d.side
        r.intent = <uint8_t>d.intent
        r.count = <uint32_t>d.count

    cdef void _deny_flush(self, int64_t i) noexcept nogil:
        """Write instrument i's uncounted repeats as one DENIAL (the run goes on)."""
        cdef Denial d
        if denial_take_repeats(&self.denials, i, &d):
            self._deny_rec(i, &d)

    cdef void _deny_end(self, int64_t i) noexcept nogil:
        """An order goes out on instrument i: its run of denials is over."""
        cdef Denial d
        if denial_end_run(&self.denials, i, &d):
            self._deny_rec(i, &d)

    cdef void _deny_flush_all(self) noexcept nogil:
        cdef int64_t i
        for i in range(self.n_inst):
            if self.denials.pending == 0:
                return
            self._deny_flush(i)

    cdef void _order_state(self, int64_t *o, int64_t prev, int64_t exec_type) noexcept nogil:
        cdef ls_order_state_t *r = <ls_order_state_t *>self._rec(
            LS_RECORD_KIND_ORDER_STATE, LS_ORDER_STATE_VERSION, self.inst_ids[o[LS_ORD_INST]])
        r.hseq = self.hseq
        r.client_order_id = o[LS_ORD_ID]
        r.venue_order_id = o[LS_ORD_VENUE_ID]
        r.price = o[LS_ORD_PRICE]
        r.qty = o[LS_ORD_QTY]
        r.cum_qty = o[LS_ORD_CUM_QTY]
        r.state = <uint8_t>o[LS_ORD_STATE]
        r.prev_state = <uint8_t>prev
        r.side = <uint8_t>o[LS_ORD_SIDE]
        r.exec_type = <uint8_t>exec_type

    cdef void _set_trading(self, int state, int cause) noexcept nogil:
        """Change the trading state; a TRADING_STATE record for every change of (state, latch)."""
        cdef int prev = self.trading_state
        self.trading_state = state
        self.w[LS_CTX_TRADING_STATE] = state
        self.w[LS_CTX_KILL_LATCHED] = self.kill_latched
        cdef ls_trading_state_t *r = <ls_trading_state_t *>self._rec(
            LS_RECORD_KIND_TRADING_STATE, LS_TRADING_STATE_VERSION, 0)
        r.hseq = self.hseq
        r.state = <uint8_t>state
        r.prev_state = <uint8_t>prev
        r.kill_latched = <uint8_t>self.kill_latched
        r.cause = <uint8_t>cause

    # ---- client_order_id -> slot (open addressing, backward-shift deletion) --------------------

    cdef int64_t _lookup(self, int64_t key) noexcept nogil:
        return order_index_get(&self.order_index, key)

    cdef void _hput(self, int64_t key, int64_t slot) noexcept nogil:
        order_index_put(&self.order_index, key, slot)

    cdef void _hdel(self, int64_t key) noexcept nogil:
        order_index_remove(&self.order_index, key)

    # ---- order slots ------------------------------------------------------------------------

    cdef int64_t _alloc_slot(self) noexcept nogil:
        cdef int64_t s
        cdef int64_t *o
        if self.n_free > 0:
            self.n_free -= 1
            s = self.free_slots[self.n_free]
        elif self.grave_n > 0:
            s = self.grave[self.grave_head]
            self.grave_head = (self.grave_head + 1) % self.max_orders
            self.grave_n -= 1
            o = ls_ctx_order(self.w, s)
            self._hdel(o[LS_ORD_ID])
        else:
            return -1
        memset(ls_ctx_order(self.w, s), 0, LS_ORD_WORDS * sizeof(int64_t))
        return s

    cdef int64_t *_live_list(self, int64_t i) noexcept nogil:
        return ls_ctx_inst(self.w, i) + LS_INST_FIXED_WORDS

    cdef void _set_state(self, int64_t s, int64_t new, int64_t exec_type) noexcept nogil:
        """Move order slot s to state new; keep in-flight/open counts and live lists; record it."""
        cdef int64_t *o = ls_ctx_order(self.w, s)
        cdef int64_t prev = o[LS_ORD_STATE], k, n
        cdef int64_t i = o[LS_ORD_INST]
        cdef int64_t *I = ls_ctx_inst(self.w, i)
        cdef int64_t *L
        I[LS_INST_IN_FLIGHT] += (<int64_t>is_pending(new)) - (<int64_t>is_pending(prev))
        o[LS_ORD_STATE] = new
        if is_live(prev) and not is_live(new):
            if o[LS_ORD_SIDE] == LS_SIDE_BUY:
                I[LS_INST_OPEN_BUY_QTY] -= o[LS_ORD_LEAVES]
            else:
                I[LS_INST_OPEN_SELL_QTY] -= o[LS_ORD_LEAVES]
            o[LS_ORD_LEAVES] = 0
            L = self._live_list(i)
            n = I[LS_INST_N_LIVE]
            for k in range(n):
                if L[k] == s:
                    memmove(L + k, L + k + 1, (n - k - 1) * sizeof(int64_t))
                    break
            I[LS_INST_N_LIVE] = n - 1
            self.open_orders -= 1
            if o[LS_ORD_PENDING_ID] != 0:
                self._hdel(o[LS_ORD_PENDING_ID])
                o[LS_ORD_PENDING_ID] = 0
            self.grave[(self.grave_head + self.grave_n) % self.max_orders] = s
            self.grave_n += 1
        self._order_state(o, prev, exec_type)

    # ============================================================================================
    # state derivation: book, marks, positions
    # ============================================================================================

    cdef int64_t _book_set(self, int64_t i, int64_t side, int64_t px, int64_t qty) noexcept nogil:
        """Set one level of the full book (book.pyx) and its best-first mirror in the context.

        Returns the changed level's distance from the best, -1 when nothing changed."""
        cdef int64_t *I = ls_ctx_inst(self.w, i)
        cdef int64_t D = I[LS_INST_DEPTH]
        cdef int64_t M = D if D > self.top_levels else self.top_levels   # levels mirrored
        cdef bint bid = side == LS_SIDE_BUY
        cdef int64_t *P = I + (self.w[LS_CTX_INST_BIDPX_OFF] if bid else self.w[LS_CTX_INST_ASKPX_OFF])
        cdef int64_t *Q = P + self.depth
        cdef BookSide *b = &self.bids[i] if bid else &self.asks[i]
        cdef int64_t k = book_side_set(b, px, qty, P, Q, M)
        if k == -2:   # the full book could not grow: the level is not held, the book is not exact
            I[LS_INST_HEALTHY] = 0
            self._anomaly(LS_ANOMALY_BOOK_NO_MEMORY, self.inst_ids[i], 0, px, 0, 0)
            return -1
        if k < 0:
            return -1
        cdef int64_t n = b.live if b.live < D else D
        if bid:
            I[LS_INST_N_BIDS] = n
            if k == 0:
                I[LS_INST_BID_PX] = P[0] if n > 0 else 0
                I[LS_INST_BID_QTY] = Q[0] if n > 0 else 0
        else:
            I[LS_INST_N_ASKS] = n
            if k == 0:
                I[LS_INST_ASK_PX] = P[0] if n > 0 else 0
                I[LS_INST_ASK_QTY] = Q[0] if n > 0 else 0
        return k

    cdef void _book_clear(self, int64_t i) noexcept nogil:
        cdef int64_t *I = ls_ctx_inst(self.w, i)
        book_side_clear(&self.bids[i])
        book_side_clear(&self.asks[i])
        I[LS_INST_N_BIDS] = 0
        I[LS_INST_N_ASKS] = 0
        I[LS_INST_BID_PX] = 0
        I[LS_INST_BID_QTY] = 0
        I[LS_INST_ASK_PX] = 0
        I[LS_INST_ASK_QTY] = 0
        self.crossed[i] = 0

    cdef void _book_top_rec(self, int64_t i, int64_t ts_event) noexcept nogil:
        """BOOK_LEVELS records: the top ``top_levels`` of each side from the full book, in chunks
        of LS_BOOK_LEVELS_PER_RECORD levels, bids then asks (readers join them into a book_top row)."""
        cdef int64_t *I = ls_ctx_inst(self.w, i)
        cdef BookSide *b
        cdef ls_book_levels_t *r
        cdef int64_t c, k, lvl, s
        cdef int64_t *px
        cdef int64_t *qty
        cdef int64_t *top_px
        cdef int64_t *top_qty
        self.top_changed[i] = 0
        for s in range(2):
            b = &self.bids[i] if s == 0 else &self.asks[i]
            top_px = I + (self.w[LS_CTX_INST_BIDPX_OFF] if s == 0 else self.w[LS_CTX_INST_ASKPX_OFF])
            top_qty = top_px + self.depth
            for c in range(self.top_chunks):
                r = <ls_book_levels_t *>self._rec(LS_RECORD_KIND_BOOK_LEVELS, LS_BOOK_LEVELS_VERSION, self.inst_ids[i])
                r.hseq = self.hseq
                r.ts_event = ts_event
                r.levels = <uint16_t>self.top_levels
                r.first = <uint16_t>(c * LS_BOOK_LEVELS_PER_RECORD)
                r.side = LS_SIDE_BUY if s == 0 else LS_SIDE_SELL
                px = &r.px_0
                qty = &r.qty_0
                for k in range(LS_BOOK_LEVELS_PER_RECORD):
                    lvl = c * LS_BOOK_LEVELS_PER_RECORD + k
                    if lvl >= self.top_levels or lvl >= b.live:
                        break
                    px[2 * k] = top_px[lvl]      # px_k, qty_k interleave in the record
                    qty[2 * k] = top_qty[lvl]
                    r.count += 1

    cdef int64_t _reference(self, int64_t *I) noexcept nogil:
        return reference_price(I)

    cdef void _mark(self, int64_t i) noexcept nogil:
        if position_mark(ls_ctx_inst(self.w, i), &self.pnl_total):
            self._check_loss()

    cdef void _check_loss(self) noexcept nogil:
        if self.max_loss <= 0:
            return
        cdef int64_t loss = -self.pnl_total
        if self.max_loss_halt > 0 and loss >= self.max_loss_halt:
            if self.trading_state != LS_TRADING_STATE_HALTED:
                self._set_trading(LS_TRADING_STATE_HALTED, 2)
        elif loss >= self.max_loss and self.trading_state == LS_TRADING_STATE_ACTIVE:
            self.reducing_cause = LS_DENY_REASON_MAX_LOSS
            self._set_trading(LS_TRADING_STATE_REDUCING, 2)

    cdef void _apply_position(self, int64_t i, int64_t side, int64_t px, int64_t q) noexcept nogil:
        """Average-cost accounting (positions.pxd) on the instrument's block."""
        self.pnl_total += position_fill(ls_ctx_inst(self.w, i), side, px, q)

    cdef void _position_rec(self, int64_t i) noexcept nogil:
        cdef int64_t *I = ls_ctx_inst(self.w, i)
        cdef ls_position_t *r = <ls_position_t *>self._rec(LS_RECORD_KIND_POSITION, LS_POSITION_VERSION,
                                                           self.inst_ids[i])
        r.net_qty = I[LS_INST_POSITION]
        r.cost = I[LS_INST_COST]
        r.realized_pnl = I[LS_INST_REALIZED]
        r.unrealized_pnl = I[LS_INST_UNREALIZED]

    # ============================================================================================
    # strategy evaluation and intents
    # ============================================================================================

    cdef void _run_strategy(self) noexcept nogil:
        if self.flavour == 0:
            return
        cdef int64_t *w = self.w
        cdef int64_t n, k
        w[LS_CTX_N_INTENTS] = 0
        self.c_strategy_calls += 1
        if self.flavour == FLAVOUR_CFUNC:
            self.strat_fn(<void *>w)
        else:
            self.strategy.on_event(w)
        n = w[LS_CTX_N_INTENTS]
        w[LS_CTX_N_INTENTS] = 0
        if n < 0:
            self._anomaly(LS_ANOMALY_STRATEGY_ERROR, 0, 0, 0, 0, 0)
            return
        if n > self.max_intents:
            self._anomaly(LS_ANOMALY_INTENTS_OVERFLOW, 0, 0, n, 0, 0)
            n = self.max_intents
        for k in range(n):
            self._intent(w + w[LS_CTX_INTENT_OFF] + k * LS_INTENT_WORDS)

    cdef void _intent(self, int64_t *p) noexcept nogil:
        self.c_intents += 1
        cdef int64_t t = p[LS_INTENT_TYPE]
        if t == LS_ORDER_CMD_TYPE_NEW:
            self._new(p[LS_INTENT_INST], p[LS_INTENT_SIDE], p[LS_INTENT_PRICE], p[LS_INTENT_QTY],
                      p[LS_INTENT_TIF], p[LS_INTENT_ORD_TYPE])
        elif t == LS_ORDER_CMD_TYPE_CANCEL:
            self._cancel(p[LS_INTENT_ORDER_ID], 0)
        elif t == LS_ORDER_CMD_TYPE_REPLACE:
            self._replace(p[LS_INTENT_ORDER_ID], p[LS_INTENT_PRICE], p[LS_INTENT_QTY])
        else:
            self._anomaly(LS_ANOMALY_BAD_RECORD, 0, 0, t, 0, 0)

    cdef bint _blocked(self) noexcept nogil:
        return self.trading_state == LS_TRADING_STATE_HALTED or self.kill_latched or not self.session_active

    cdef bint _bucket(self, int64_t *tokens, int64_t *ts, int64_t rate, int64_t burst, bint consume) noexcept nogil:
        """Token bucket on event time: rate tokens per second, burst tokens deep. 0 rate = off."""
        if rate <= 0:
            return True
        cdef int64_t cap = burst * TOKEN
        cdef int64_t dt = self.now - ts[0]
        cdef int64_t level
        if dt < 0:
            dt = 0
        if dt >= cap // rate + 1:
            level = cap
        else:
            level = tokens[0] + dt * rate
            if level > cap:
                level = cap
        tokens[0] = level
        ts[0] = self.now
        if level < TOKEN:
            return False
        if consume:
            tokens[0] = level - TOKEN
        return True

    cdef int _check_order(self, int64_t i, int64_t side, int64_t px, int64_t qty, int64_t self_slot,
                          int64_t add_buy, int64_t add_sell) noexcept nogil:
        """Checks shared by NEW and REPLACE; returns a DenyReason (0 = pass). add_* is the change of
        open quantity the order would cause on each side (worst case)."""
        cdef int64_t *I = ls_ctx_inst(self.w, i)
        cdef int64_t *L = self._lim(i)
        cdef int64_t tick = I[LS_INST_TICK], lot = I[LS_INST_LOT]
        cdef int64_t ref, band, pos, k, s, n
        cdef int64_t *o
        if px <= 0 or px % tick != 0:
            return LS_DENY_REASON_BAD_PRICE
        if qty <= 0 or qty % lot != 0:
            return LS_DENY_REASON_BAD_QTY
        if not I[LS_INST_HEALTHY]:
            return LS_DENY_REASON_FEED_UNHEALTHY
        if qty > L[LS_RISK_LIMIT_MAX_ORDER_QTY]:
            return LS_DENY_REASON_MAX_ORDER_QTY
        if L[LS_RISK_LIMIT_MAX_NOTIONAL] > 0 and ls_muldiv(px, qty, self.qty_scale[i]) > L[LS_RISK_LIMIT_MAX_NOTIONAL]:
            return LS_DENY_REASON_MAX_NOTIONAL
        if L[LS_RISK_LIMIT_PRICE_BAND_TICKS] > 0 or L[LS_RISK_LIMIT_PRICE_BAND_BPS] > 0:
            ref = self._reference(I)
            if ref <= 0:
                return LS_DENY_REASON_NO_REFERENCE
            if L[LS_RISK_LIMIT_PRICE_BAND_TICKS] > 0 and _abs(px - ref) > L[LS_RISK_LIMIT_PRICE_BAND_TICKS] * tick:
                return LS_DENY_REASON_PRICE_BAND
            if L[LS_RISK_LIMIT_PRICE_BAND_BPS] > 0 and _abs(px - ref) * 10000 > L[LS_RISK_LIMIT_PRICE_BAND_BPS] * ref:
                return LS_DENY_REASON_PRICE_BAND
        pos = I[LS_INST_POSITION]
        if self.trading_state == LS_TRADING_STATE_REDUCING:
            if side == LS_SIDE_BUY:
                if not (pos < 0 and I[LS_INST_OPEN_BUY_QTY] + add_buy <= -pos):
                    return self.reducing_cause
            else:
                if not (pos > 0 and I[LS_INST_OPEN_SELL_QTY] + add_sell <= pos):
                    return self.reducing_cause
        if pos + I[LS_INST_OPEN_BUY_QTY] + add_buy > L[LS_RISK_LIMIT_MAX_POSITION] or \
                I[LS_INST_OPEN_SELL_QTY] + add_sell - pos > L[LS_RISK_LIMIT_MAX_POSITION]:
            return LS_DENY_REASON_MAX_POSITION
        # self-cross: would this order trade against one of our own resting orders?
        n = I[LS_INST_N_LIVE]
        for k in range(n):
            s = self._live_list(i)[k]
            if s == self_slot:
                continue
            o = ls_ctx_order(self.w, s)
            if o[LS_ORD_SIDE] == side:
                continue
            if side == LS_SIDE_BUY:
                if o[LS_ORD_PRICE] <= px or (o[LS_ORD_PENDING_ID] != 0 and o[LS_ORD_PENDING_PRICE] <= px):
                    return LS_DENY_REASON_SELF_CROSS
            else:
                if o[LS_ORD_PRICE] >= px or (o[LS_ORD_PENDING_ID] != 0 and o[LS_ORD_PENDING_PRICE] >= px):
                    return LS_DENY_REASON_SELF_CROSS
        return 0

    cdef int _new(self, int64_t i, int64_t side, int64_t px, int64_t qty, int64_t tif, int64_t ord_type) noexcept nogil:
        cdef int64_t coid = self.next_id
        cdef int64_t intent = LS_ORDER_CMD_TYPE_NEW
        cdef int r, k
        cdef int64_t *I
        cdef int64_t *L
        cdef int64_t *o
        cdef int64_t s
        if self._blocked():
            return self._deny(LS_DENY_REASON_HALTED, i, intent, side, px, qty, coid)
        if i < 0 or i >= self.n_inst or self._lim(i)[LS_RISK_LIMIT_TRADABLE] == 0:
            return self._deny(LS_DENY_REASON_UNKNOWN_INSTRUMENT, i, intent, side, px, qty, coid)
        if side != LS_SIDE_BUY and side != LS_SIDE_SELL:
            return self._deny(LS_DENY_REASON_BAD_QTY, i, intent, side, px, qty, coid)
        if ord_type != 0 and ord_type != LS_ORD_TYPE_LIMIT:
            return self._deny(LS_DENY_REASON_BAD_PRICE, i, intent, side, px, qty, coid)  # limit orders only
        if tif == 0:
            tif = LS_TIME_IN_FORCE_GTC
        if tif < LS_TIME_IN_FORCE_GTC or tif > LS_TIME_IN_FORCE_DAY:  # GTC, IOC, POST_ONLY, DAY
            return self._deny(LS_DENY_REASON_BAD_PRICE, i, intent, side, px, qty, coid)
        r = self._check_order(i, side, px, qty, -1, qty if side == LS_SIDE_BUY else 0,
                              qty if side == LS_SIDE_SELL else 0)
        if r:
            return self._deny(r, i, intent, side, px, qty, coid)
        I = ls_ctx_inst(self.w, i)
        L = self._lim(i)
        if I[LS_INST_N_LIVE] >= L[LS_RISK_LIMIT_MAX_OPEN_ORDERS] or I[LS_INST_N_LIVE] >= self.live_cap:
            return self._deny(LS_DENY_REASON_MAX_OPEN_ORDERS, i, intent, side, px, qty, coid)
        for k in range(I[LS_INST_N_LIVE]):
            o = ls_ctx_order(self.w, self._live_list(i)[k])
            if o[LS_ORD_STATE] == LS_ORDER_STATE_PENDING_NEW and o[LS_ORD_SIDE] == side and \
                    o[LS_ORD_PRICE] == px and o[LS_ORD_QTY] == qty:
                return self._deny(LS_DENY_REASON_DUPLICATE, i, intent, side, px, qty, coid)
        if L[LS_RISK_LIMIT_MAX_IN_FLIGHT] > 0 and I[LS_INST_IN_FLIGHT] >= L[LS_RISK_LIMIT_MAX_IN_FLIGHT]:
            return self._deny(LS_DENY_REASON_THROTTLE, i, intent, side, px, qty, coid)
        if not self._bucket(&self.sub_tokens[i], &self.sub_ts[i], L[LS_RISK_LIMIT_SUBMIT_RATE],
                            L[LS_RISK_LIMIT_SUBMIT_BURST], 0):
            return self._deny(LS_DENY_REASON_SUBMIT_RATE, i, intent, side, px, qty, coid)
        if self.n_free == 0 and self.grave_n == 0:
            return self._deny(LS_DENY_REASON_ORDER_TABLE_FULL, i, intent, side, px, qty, coid)
        if <int64_t>self.n_out_orders >= self.orders_budget:
            return self._deny(LS_DENY_REASON_BACKPRESSURE, i, intent, side, px, qty, coid)
        # ---- dispatch ----
        self._bucket(&self.sub_tokens[i], &self.sub_ts[i], L[LS_RISK_LIMIT_SUBMIT_RATE],
                     L[LS_RISK_LIMIT_SUBMIT_BURST], 1)
        s = self._alloc_slot()
        self.next_id += 1
        self.w[LS_CTX_NEXT_ORDER_ID] = self.next_id
        o = ls_ctx_order(self.w, s)
        o[LS_ORD_ID] = coid
        o[LS_ORD_INST] = i
        o[LS_ORD_SIDE] = side
        o[LS_ORD_STATE] = LS_ORDER_STATE_PENDING_NEW
        o[LS_ORD_PRICE] = px
        o[LS_ORD_QTY] = qty
        o[LS_ORD_LEAVES] = qty
        o[LS_ORD_TIF] = tif
        o[LS_ORD_ORD_TYPE] = LS_ORD_TYPE_LIMIT
        o[LS_ORD_PRE_STATE] = LS_ORDER_STATE_PENDING_NEW
        o[LS_ORD_TS_SENT] = self.now
        self._hput(coid, s)
        self._live_list(i)[I[LS_INST_N_LIVE]] = s
        I[LS_INST_N_LIVE] += 1
        I[LS_INST_IN_FLIGHT] += 1
        if side == LS_SIDE_BUY:
            I[LS_INST_OPEN_BUY_QTY] += qty
        else:
            I[LS_INST_OPEN_SELL_QTY] += qty
        self.open_orders += 1
        self._deny_end(i)
        o[LS_ORD_NEW_POS] = <int64_t>self.c_orders_sent  # (every command goes to the orders ring)
        cdef ls_order_cmd_t *c = self._cmd(self.inst_ids[i])
        c.client_order_id = coid
        c.price = px
        c.qty = qty
        c.cmd = LS_ORDER_CMD_TYPE_NEW
        c.side = <uint8_t>side
        c.tif = <uint8_t>tif
        c.ord_type = LS_ORD_TYPE_LIMIT
        self.c_news += 1
        self._order_state(o, LS_ORDER_STATE_NONE, 0)
        return 0

    cdef int _cancel(self, int64_t coid, bint operator) noexcept nogil:
        """Cancel a live order. operator=1 (kill, cancel-all, session stop) skips the cancel rate."""
        cdef int64_t s = self._lookup(coid)
        cdef int64_t *o
        cdef int64_t i, st
        cdef int64_t intent = LS_ORDER_CMD_TYPE_CANCEL
        if s < 0:
            return self._deny(LS_DENY_REASON_UNKNOWN_ORDER, -1, intent, 0, 0, 0, coid)
        o = ls_ctx_order(self.w, s)
        i = o[LS_ORD_INST]
        st = o[LS_ORD_STATE]
        if not is_live(st) or o[LS_ORD_ID] != coid:
            return self._deny(LS_DENY_REASON_UNKNOWN_ORDER, i, intent, o[LS_ORD_SIDE], o[LS_ORD_PRICE], o[LS_ORD_QTY], coid)
        if st == LS_ORDER_STATE_PENDING_CANCEL or st == LS_ORDER_STATE_PENDING_REPLACE:
            return self._deny(LS_DENY_REASON_DUPLICATE, i, intent, o[LS_ORD_SIDE], o[LS_ORD_PRICE], o[LS_ORD_QTY], coid)
        cdef int64_t *L = self._lim(i)
        if not operator and not self._bucket(&self.can_tokens[i], &self.can_ts[i], L[LS_RISK_LIMIT_CANCEL_RATE],
                                             L[LS_RISK_LIMIT_CANCEL_BURST], 0):
            return self._deny(LS_DENY_REASON_CANCEL_RATE, i, intent, o[LS_ORD_SIDE], o[LS_ORD_PRICE], o[LS_ORD_QTY], coid)
        if <int64_t>self.n_out_orders >= self.orders_budget:
            return self._deny(LS_DENY_REASON_BACKPRESSURE, i, intent, o[LS_ORD_SIDE], o[LS_ORD_PRICE], o[LS_ORD_QTY], coid)
        if not operator:
            self._bucket(&self.can_tokens[i], &self.can_ts[i], L[LS_RISK_LIMIT_CANCEL_RATE],
                         L[LS_RISK_LIMIT_CANCEL_BURST], 1)
        o[LS_ORD_PRE_STATE] = st
        o[LS_ORD_TS_SENT] = self.now
        self._deny_end(i)
        cdef ls_order_cmd_t *c = self._cmd(self.inst_ids[i])
        c.client_order_id = coid
        c.price = o[LS_ORD_PRICE]
        c.qty = o[LS_ORD_QTY]
        c.cmd = LS_ORDER_CMD_TYPE_CANCEL
        c.side = <uint8_t>o[LS_ORD_SIDE]
        c.tif = <uint8_t>o[LS_ORD_TIF]
        c.ord_type = <uint8_t>o[LS_ORD_ORD_TYPE]
        self.c_cancels += 1
        self._set_state(s, LS_ORDER_STATE_PENDING_CANCEL, 0)
        return 0

    cdef int _replace(self, int64_t coid, int64_t px, int64_t qty) noexcept nogil:
        cdef int64_t s = self._lookup(coid)
        cdef int64_t intent = LS_ORDER_CMD_TYPE_REPLACE
        cdef int64_t *o
        cdef int64_t *I
        cdef int64_t *L
        cdef int64_t i, st, side, new_leaves, add, new_id
        cdef int r
        if s < 0:
            return self._deny(LS_DENY_REASON_UNKNOWN_ORDER, -1, intent, 0, px, qty, coid)
        o = ls_ctx_order(self.w, s)
        i = o[LS_ORD_INST]
        st = o[LS_ORD_STATE]
        side = o[LS_ORD_SIDE]
        if not is_live(st) or o[LS_ORD_ID] != coid:
            return self._deny(LS_DENY_REASON_UNKNOWN_ORDER, i, intent, side, px, qty, coid)
        if self._blocked():
            return self._deny(LS_DENY_REASON_HALTED, i, intent, side, px, qty, coid)
        if self._lim(i)[LS_RISK_LIMIT_TRADABLE] == 0:
            return self._deny(LS_DENY_REASON_UNKNOWN_INSTRUMENT, i, intent, side, px, qty, coid)
        if is_pending(st):
            return self._deny(LS_DENY_REASON_DUPLICATE, i, intent, side, px, qty, coid)
        if qty <= o[LS_ORD_CUM_QTY]:
            return self._deny(LS_DENY_REASON_BAD_QTY, i, intent, side, px, qty, coid)
        new_leaves = qty - o[LS_ORD_CUM_QTY]
        add = new_leaves - o[LS_ORD_LEAVES]
        if add < 0:
            add = 0  # until the venue confirms, the old (larger) leaves stay the worst case
        r = self._check_order(i, side, px, qty, s, add if side == LS_SIDE_BUY else 0,
                              add if side == LS_SIDE_SELL else 0)
        if r:
            return self._deny(r, i, intent, side, px, qty, coid)
        I = ls_ctx_inst(self.w, i)
        L = self._lim(i)
        if L[LS_RISK_LIMIT_MAX_IN_FLIGHT] > 0 and I[LS_INST_IN_FLIGHT] >= L[LS_RISK_LIMIT_MAX_IN_FLIGHT]:
            return self._deny(LS_DENY_REASON_THROTTLE, i, intent, side, px, qty, coid)
        if not self._bucket(&self.sub_tokens[i], &self.sub_ts[i], L[LS_RISK_LIMIT_SUBMIT_RATE],
                            L[LS_RISK_LIMIT_SUBMIT_BURST], 0):
            return self._deny(LS_DENY_REASON_SUBMIT_RATE, i, intent, side, px, qty, coid)
        if <int64_t>self.n_out_orders >= self.orders_budget:
            return self._deny(LS_DENY_REASON_BACKPRESSURE, i, intent, side, px, qty, coid)
        self._bucket(&self.sub_tokens[i], &self.sub_ts[i], L[LS_RISK_LIMIT_SUBMIT_RATE],
                     L[LS_RISK_LIMIT_SUBMIT_BURST], 1)
        new_id = self.next_id
        self.next_id += 1
        self.w[LS_CTX_NEXT_ORDER_ID] = self.next_id
        o[LS_ORD_PENDING_ID] = new_id
        o[LS_ORD_PENDING_PRICE] = px
        o[LS_ORD_PENDING_QTY] = qty
        o[LS_ORD_PRE_STATE] = st
        o[LS_ORD_TS_SENT] = self.now
        self._hput(new_id, s)
        self._deny_end(i)
        cdef ls_order_cmd_t *c = self._cmd(self.inst_ids[i])
        c.client_order_id = new_id
        c.orig_client_order_id = coid
        c.price = px
        c.qty = qty
        c.cmd = LS_ORDER_CMD_TYPE_REPLACE
        c.side = <uint8_t>side
        c.tif = <uint8_t>o[LS_ORD_TIF]
        c.ord_type = <uint8_t>o[LS_ORD_ORD_TYPE]
        self.c_replaces += 1
        self._set_state(s, LS_ORDER_STATE_PENDING_REPLACE, 0)
        return 0

    cdef int64_t _cancel_all(self, int64_t only) noexcept nogil:
        """Cancel every live order (of instrument index only, or all when -1); returns how many
        CancelOrder commands went out. Orders already pending cancel are skipped."""
        cdef int64_t i, k, n, sent = 0
        cdef int64_t *o
        cdef int64_t *I
        for i in range(self.n_inst):
            if only >= 0 and i != only:
                continue
            I = ls_ctx_inst(self.w, i)
            n = I[LS_INST_N_LIVE]
            for k in range(n):  # cancels keep orders live: the list does not move under us
                o = ls_ctx_order(self.w, self._live_list(i)[k])
                if o[LS_ORD_STATE] == LS_ORDER_STATE_PENDING_CANCEL:
                    continue
                if o[LS_ORD_STATE] == LS_ORDER_STATE_PENDING_REPLACE:
                    # The venue may have replaced it already: a cancel of the old id would then be
                    # refused, and the order would live on under the new id unseen. Cancel whichever
                    # id survives as soon as the venue answers the replace (REPLACED or its reject).
                    if not o[LS_ORD_CANCEL_AFTER]:
                        o[LS_ORD_CANCEL_AFTER] = 1
                        sent += 1
                    continue
                if self._cancel(o[LS_ORD_ID], 1) == 0:
                    sent += 1
        return sent

    # ============================================================================================
    # execution events
    # ============================================================================================

    cdef bint _apply_fill(self, int64_t s, const ls_exec_t *e) noexcept nogil:
        """Apply a fill once per venue execution id (exec_id, exec_id_hi). Returns 1 when applied.

        A fill without an id (both words 0) is rejected with ANOMALY BAD_EXEC_ID: it is neither
        applied nor remembered, so it can never deduplicate a real fill away."""
        cdef int64_t *o = ls_ctx_order(self.w, s)
        cdef int64_t i = o[LS_ORD_INST], k, dec
        cdef int64_t *I = ls_ctx_inst(self.w, i)
        cdef int64_t *seen = o + LS_ORD_EXEC_IDS
        cdef int64_t q = e.last_qty, px = e.last_px
        cdef uint32_t inst = self.inst_ids[i]
        if e.exec_id == 0 and e.exec_id_hi == 0:
            self._anomaly(LS_ANOMALY_BAD_EXEC_ID, inst, o[LS_ORD_ID], 0, o[LS_ORD_STATE], e.exec_type)
            return 0
        if q <= 0 or px <= 0:
            self._anomaly(LS_ANOMALY_BAD_RECORD, inst, o[LS_ORD_ID], e.exec_id, o[LS_ORD_STATE], e.exec_type)
            return 0
        for k in range(LS_ORD_EXEC_RING if o[LS_ORD_EXEC_POS] > LS_ORD_EXEC_RING else o[LS_ORD_EXEC_POS]):
            if seen[2 * k] == e.exec_id and seen[2 * k + 1] == e.exec_id_hi:
                self._anomaly(LS_ANOMALY_DUPLICATE_EXEC, inst, o[LS_ORD_ID], e.exec_id, o[LS_ORD_STATE], e.exec_type)
                return 0
        k = o[LS_ORD_EXEC_POS] % LS_ORD_EXEC_RING
        seen[2 * k] = e.exec_id
        seen[2 * k + 1] = e.exec_id_hi
        o[LS_ORD_EXEC_POS] += 1
        if o[LS_ORD_CUM_QTY] + q > o[LS_ORD_QTY]:
            self._anomaly(LS_ANOMALY_OVERFILL, inst, o[LS_ORD_ID], e.exec_id, o[LS_ORD_STATE], e.exec_type)
        o[LS_ORD_CUM_QTY] += q
        if is_live(o[LS_ORD_STATE]):
            dec = q if q < o[LS_ORD_LEAVES] else o[LS_ORD_LEAVES]
            o[LS_ORD_LEAVES] -= dec
            if o[LS_ORD_SIDE] == LS_SIDE_BUY:
                I[LS_INST_OPEN_BUY_QTY] -= dec
            else:
                I[LS_INST_OPEN_SELL_QTY] -= dec
        if o[LS_ORD_VENUE_ID] == 0:
            o[LS_ORD_VENUE_ID] = e.venue_order_id
        self._apply_position(i, o[LS_ORD_SIDE], px, q)
        self.c_fills += 1
        cdef ls_fill_t *f = <ls_fill_t *>self._rec(LS_RECORD_KIND_FILL, LS_FILL_VERSION, inst)
        f.hseq = self.hseq
        f.ts_event = e.ts_event
        f.client_order_id = o[LS_ORD_ID]
        f.venue_order_id = o[LS_ORD_VENUE_ID]
        f.exec_id = e.exec_id
        f.exec_id_hi = e.exec_id_hi
        f.price = px
        f.qty = q
        f.position = I[LS_INST_POSITION]
        f.realized_pnl = I[LS_INST_REALIZED]
        f.side = <uint8_t>o[LS_ORD_SIDE]
        self._position_rec(i)
        return 1

    cdef void _on_exec(self, const ls_exec_t *e) noexcept nogil:
        cdef int64_t *w = self.w
        cdef int64_t s = self._lookup(e.client_order_id)
        cdef int64_t *o
        cdef int64_t *I
        cdef int64_t st, et = e.exec_type, new, i, old_id, new_leaves
        cdef int act
        if et == LS_EXEC_TYPE_VENUE_RESET:
            self._venue_reset(e)
            return
        if s < 0 and e.orig_client_order_id != 0:
            s = self._lookup(e.orig_client_order_id)
        w[LS_CTX_EV_INST] = self._inst_index(e.instrument)
        w[LS_CTX_EV_SIDE] = e.side
        w[LS_CTX_EV_PRICE] = e.last_px
        w[LS_CTX_EV_QTY] = e.last_qty
        w[LS_CTX_EV_STATUS] = et
        w[LS_CTX_EV_ORDER_ID] = e.client_order_id
        w[LS_CTX_EV_ORDER_SLOT] = s
        if s < 0:
            self.c_unknown_order_execs += 1
            self._anomaly(LS_ANOMALY_UNKNOWN_ORDER, e.instrument, e.client_order_id, e.exec_id, 0, et)
            self._run_strategy()
            return
        o = ls_ctx_order(w, s)
        i = o[LS_ORD_INST]
        w[LS_CTX_EV_INST] = i
        I = ls_ctx_inst(w, i)
        st = o[LS_ORD_STATE]
        act = lifecycle_action(st, et)
        if act == A_ILLEGAL:
            self._anomaly(LS_ANOMALY_ILLEGAL_TRANSITION, self.inst_ids[i], o[LS_ORD_ID], e.exec_id, st, et)
        elif act == A_LATE:
            self.c_late_events += 1
        elif act == A_ACCEPT:
            o[LS_ORD_VENUE_ID] = e.venue_order_id
            self._set_state(s, LS_ORDER_STATE_ACCEPTED, et)
        elif act == A_ACK_KEEP:
            o[LS_ORD_VENUE_ID] = e.venue_order_id
            if o[LS_ORD_PRE_STATE] == LS_ORDER_STATE_PENDING_NEW:
                o[LS_ORD_PRE_STATE] = LS_ORDER_STATE_ACCEPTED
            self._order_state(o, st, et)
        elif act == A_REJECT:
            if st == LS_ORDER_STATE_PENDING_NEW or o[LS_ORD_PRE_STATE] == LS_ORDER_STATE_PENDING_NEW:
                self._set_state(s, LS_ORDER_STATE_REJECTED, et)
            else:
                self._anomaly(LS_ANOMALY_ILLEGAL_TRANSITION, self.inst_ids[i], o[LS_ORD_ID], e.exec_id, st, et)
        elif act == A_FILL:
            if self._apply_fill(s, e):
                if et == LS_EXEC_TYPE_FILLED or o[LS_ORD_CUM_QTY] >= o[LS_ORD_QTY]:
                    new = LS_ORDER_STATE_FILLED
                elif st == LS_ORDER_STATE_PENDING_CANCEL or st == LS_ORDER_STATE_PENDING_REPLACE:
                    new = st
                    if o[LS_ORD_PRE_STATE] == LS_ORDER_STATE_PENDING_NEW or o[LS_ORD_PRE_STATE] == LS_ORDER_STATE_ACCEPTED:
                        o[LS_ORD_PRE_STATE] = LS_ORDER_STATE_PARTIALLY_FILLED
                else:
                    new = LS_ORDER_STATE_PARTIALLY_FILLED
                self._set_state(s, new, et)
                self._check_loss()
        elif act == A_FILL_TERMINAL:
            if self._apply_fill(s, e):
                self._anomaly(LS_ANOMALY_FILL_AFTER_TERMINAL, self.inst_ids[i], o[LS_ORD_ID], e.exec_id, st, et)
                self._check_loss()
        elif act == A_CANCELED:
            self._set_state(s, LS_ORDER_STATE_CANCELED, et)
        elif act == A_CANCEL_REJECT:
            if st == LS_ORDER_STATE_PENDING_REPLACE:
                self._hdel(o[LS_ORD_PENDING_ID])
                o[LS_ORD_PENDING_ID] = 0
            self._set_state(s, o[LS_ORD_PRE_STATE], et)
        elif act == A_REPLACED:
            old_id = o[LS_ORD_ID]
            o[LS_ORD_STATE] = LS_ORDER_STATE_REPLACED
            self._order_state(o, st, et)          # the old id ends REPLACED
            self._hdel(old_id)
            o[LS_ORD_ID] = o[LS_ORD_PENDING_ID]
            o[LS_ORD_PENDING_ID] = 0
            o[LS_ORD_PRICE] = o[LS_ORD_PENDING_PRICE]
            o[LS_ORD_QTY] = o[LS_ORD_PENDING_QTY]
            if e.venue_order_id != 0:
                o[LS_ORD_VENUE_ID] = e.venue_order_id
            new_leaves = o[LS_ORD_QTY] - o[LS_ORD_CUM_QTY]
            if new_leaves < 0:
                new_leaves = 0
            if o[LS_ORD_SIDE] == LS_SIDE_BUY:
                I[LS_INST_OPEN_BUY_QTY] += new_leaves - o[LS_ORD_LEAVES]
            else:
                I[LS_INST_OPEN_SELL_QTY] += new_leaves - o[LS_ORD_LEAVES]
            o[LS_ORD_LEAVES] = new_leaves
            o[LS_ORD_STATE] = st                  # back to PENDING_REPLACE so _set_state sees the exit
            self._set_state(s, LS_ORDER_STATE_PARTIALLY_FILLED if o[LS_ORD_CUM_QTY] > 0
                            else LS_ORDER_STATE_ACCEPTED, et)
            w[LS_CTX_EV_ORDER_ID] = o[LS_ORD_ID]
        elif act == A_EXPIRED:
            self._set_state(s, LS_ORDER_STATE_EXPIRED, et)
        if o[LS_ORD_CANCEL_AFTER] and (act == A_REPLACED or act == A_CANCEL_REJECT):
            # a kill/cancel-all was waiting for this replace to resolve: cancel the surviving id now
            o[LS_ORD_CANCEL_AFTER] = 0
            if is_live(o[LS_ORD_STATE]):
                self._cancel(o[LS_ORD_ID], 1)
        self._run_strategy()

    cdef void _venue_reset(self, const ls_exec_t *e) noexcept nogil:
        """A venue process restarted without its order state (the simulated exchange lives in it).

        The commands the previous process took are exactly the orders-ring positions below
        ``e.venue_order_id`` (the core is the ring's only writer, so an order's NEW_POS is its
        position). An order whose NewOrder the previous process took is gone: it ends CANCELED
        (exec type VENUE_RESET), whatever it was waiting for. An order whose NewOrder is still in
        the ring will be answered by the new process: untouched. Later answers about the dropped
        orders (cancel rejects for unknown ids) find them terminal and count as late events.
        """
        cdef int64_t *w = self.w
        cdef int64_t cutoff = <int64_t>e.venue_order_id
        cdef int64_t i, k, s, dropped = 0
        cdef int64_t *I
        cdef int64_t *L
        for i in range(self.n_inst):
            if e.instrument != 0 and self.inst_ids[i] != e.instrument:
                continue
            I = ls_ctx_inst(w, i)
            L = self._live_list(i)
            k = 0
            while k < I[LS_INST_N_LIVE]:
                s = L[k]
                if ls_ctx_order(w, s)[LS_ORD_NEW_POS] < cutoff:
                    self._set_state(s, LS_ORDER_STATE_CANCELED, LS_EXEC_TYPE_VENUE_RESET)  # leaves L
                    dropped += 1
                else:
                    k += 1
        if dropped:
            self._anomaly(LS_ANOMALY_VENUE_RESET, e.instrument, 0, dropped, 0, LS_EXEC_TYPE_VENUE_RESET)
        w[LS_CTX_EV_INST] = -1
        w[LS_CTX_EV_SIDE] = 0
        w[LS_CTX_EV_PRICE] = 0
        w[LS_CTX_EV_QTY] = 0
        w[LS_CTX_EV_STATUS] = LS_EXEC_TYPE_VENUE_RESET
        w[LS_CTX_EV_ORDER_ID] = 0
        w[LS_CTX_EV_ORDER_SLOT] = -1
        self._run_strategy()

    # ============================================================================================
    # control commands: exactly one CONTROL_REPLY each
    # ============================================================================================

    cdef void _on_control(self, const ls_control_cmd_t *c) noexcept nogil:
        cdef int err = LS_CONTROL_ERROR_NONE
        cdef int64_t v0 = 0, i = -1, k, lim, val
        cdef uint16_t cmd = c.cmd
        if cmd == LS_CONTROL_CMD_TYPE_STATUS:
            v0 = self.open_orders
        elif cmd == LS_CONTROL_CMD_TYPE_SESSION_START:
            if self.kill_latched:
                err = LS_CONTROL_ERROR_NOT_ALLOWED
            else:
                self.session_active = 1
                self.reducing_cause = LS_DENY_REASON_REDUCE_ONLY
                self._set_trading(LS_TRADING_STATE_ACTIVE, 1)
        elif cmd == LS_CONTROL_CMD_TYPE_SESSION_STOP:
            self._deny_flush_all()
            v0 = self._cancel_all(-1)
            self.session_active = 0
            self._set_trading(LS_TRADING_STATE_HALTED, 4)
        elif cmd == LS_CONTROL_CMD_TYPE_TRADING_ENABLE:
            if self.kill_latched or not self.session_active:
                err = LS_CONTROL_ERROR_NOT_ALLOWED
            else:
                self.reducing_cause = LS_DENY_REASON_REDUCE_ONLY
                self._set_trading(LS_TRADING_STATE_ACTIVE, 1)
        elif cmd == LS_CONTROL_CMD_TYPE_TRADING_DISABLE:
            self._set_trading(LS_TRADING_STATE_HALTED, 1)
        elif cmd == LS_CONTROL_CMD_TYPE_RECORDS_HALT:
            self.records_overflow(self.hseq)
        elif cmd == LS_CONTROL_CMD_TYPE_DISK_HALT:
            # the harness relays the record writer's disk state (journaled, so replay agrees):
            # low -> REDUCING; halt / writer stopped -> cancel every resting order, HALTED (cause 5)
            self._anomaly(LS_ANOMALY_DISK_FULL, 0, 0, c.arg0, self.trading_state, 0)
            if c.arg0 >= 2:
                self._deny_flush_all()
                v0 = self._cancel_all(-1)
                if self.trading_state != LS_TRADING_STATE_HALTED:
                    self._set_trading(LS_TRADING_STATE_HALTED, 5)
            elif self.trading_state == LS_TRADING_STATE_ACTIVE:
                self.reducing_cause = LS_DENY_REASON_REDUCE_ONLY
                self._set_trading(LS_TRADING_STATE_REDUCING, 5)
        elif cmd == LS_CONTROL_CMD_TYPE_REDUCE_ONLY:
            if self.kill_latched or not self.session_active:
                err = LS_CONTROL_ERROR_NOT_ALLOWED
            else:
                self.reducing_cause = LS_DENY_REASON_REDUCE_ONLY
                self._set_trading(LS_TRADING_STATE_REDUCING, 1)
        elif cmd == LS_CONTROL_CMD_TYPE_KILL:
            self.kill_latched = 1
            v0 = self._cancel_all(-1)
            self._set_trading(LS_TRADING_STATE_HALTED, 1)
        elif cmd == LS_CONTROL_CMD_TYPE_KILL_RESET:
            if not self.kill_latched:
                err = LS_CONTROL_ERROR_NOT_ALLOWED
            else:
                self.kill_latched = 0
                self._set_trading(LS_TRADING_STATE_HALTED, 1)
        elif cmd == LS_CONTROL_CMD_TYPE_CANCEL_ALL:
            if c.instrument != 0:
                i = self._inst_index(c.instrument)
                if i < 0:
                    err = LS_CONTROL_ERROR_UNKNOWN_INSTRUMENT
            if err == 0:
                v0 = self._cancel_all(i)
        elif cmd == LS_CONTROL_CMD_TYPE_SET_LIMIT:
            lim = c.arg0
            val = c.arg1
            if c.instrument != 0:
                i = self._inst_index(c.instrument)
            if c.instrument != 0 and i < 0:
                err = LS_CONTROL_ERROR_UNKNOWN_INSTRUMENT
            elif lim < 1 or lim > LS_RISK_LIMIT_MAX_LOSS_HALT or val < 0:
                err = LS_CONTROL_ERROR_BAD_ARGUMENT
            elif lim == LS_RISK_LIMIT_TRADABLE and val > 1:
                err = LS_CONTROL_ERROR_BAD_ARGUMENT
            elif lim == LS_RISK_LIMIT_MAX_OPEN_ORDERS and val > self.live_cap:
                err = LS_CONTROL_ERROR_BAD_ARGUMENT
            elif (lim == LS_RISK_LIMIT_SUBMIT_BURST or lim == LS_RISK_LIMIT_CANCEL_BURST) and val < 1:
                err = LS_CONTROL_ERROR_BAD_ARGUMENT
            elif lim == LS_RISK_LIMIT_MAX_LOSS:
                if self.max_loss_halt > 0 and val > self.max_loss_halt:
                    err = LS_CONTROL_ERROR_BAD_ARGUMENT
                else:
                    self.max_loss = val
            elif lim == LS_RISK_LIMIT_MAX_LOSS_HALT:
                if val > 0 and val < self.max_loss:
                    err = LS_CONTROL_ERROR_BAD_ARGUMENT
                else:
                    self.max_loss_halt = val
            else:
                for k in range(self.n_inst):
                    if i < 0 or k == i:
                        self._lim(k)[lim] = val
                        if lim == LS_RISK_LIMIT_SUBMIT_BURST and self.sub_tokens[k] > val * TOKEN:
                            self.sub_tokens[k] = val * TOKEN
                        if lim == LS_RISK_LIMIT_CANCEL_BURST and self.can_tokens[k] > val * TOKEN:
                            self.can_tokens[k] = val * TOKEN
            if err == 0:
                v0 = val
                self._check_loss()
        elif cmd == LS_CONTROL_CMD_TYPE_SET_PARAM:
            if c.arg0 < 0 or c.arg0 >= self.n_params:
                err = LS_CONTROL_ERROR_BAD_ARGUMENT
            else:
                self.w[self.w[LS_CTX_PARAM_OFF] + c.arg0] = c.arg1
                v0 = c.arg1
        else:
            err = LS_CONTROL_ERROR_UNKNOWN_COMMAND
        cdef ls_telemetry_t *t
        if cmd == LS_CONTROL_CMD_TYPE_STATUS or cmd == LS_CONTROL_CMD_TYPE_SESSION_STOP:
            # a counters snapshot in the record stream (on demand and at the end of a session)
            t = <ls_telemetry_t *>self._rec(LS_RECORD_KIND_TELEMETRY, LS_TELEMETRY_VERSION, 0)
            t.hseq = self.hseq
            t.events = self.c_events
            t.md_events = self.c_md
            t.exec_events = self.c_exec
            t.orders_sent = self.c_orders_sent
            t.fills = self.c_fills
            t.denials = self.c_denials
            t.anomalies = self.c_anomalies
            t.open_orders = <uint64_t>self.open_orders
        cdef ls_control_reply_t *r = <ls_control_reply_t *>self._rec(
            LS_RECORD_KIND_CONTROL_REPLY, LS_CONTROL_REPLY_VERSION, c.instrument)
        r.request_id = c.request_id
        r.hseq = self.hseq
        r.value0 = v0
        r.value1 = self.trading_state | (self.kill_latched << 8) | (self.session_active << 9)
        r.cmd = cmd
        r.status = LS_CONTROL_STATUS_OK if err == 0 else LS_CONTROL_STATUS_ERROR
        r.error = <uint8_t>err

    # ============================================================================================
    # the per-input entry point
    # ============================================================================================

    cdef void clear_outputs(self) noexcept nogil:
        self.n_out_orders = 0
        self.n_out_records = 0

    cdef void records_overflow(self, uint64_t hseq) noexcept nogil:
        """The harness could not write records: trading goes HALTED (cause 3), recorded."""
        self.hseq = hseq
        self._anomaly(LS_ANOMALY_RECORDS_FULL, 0, 0, 0, 0, 0)
        if self.trading_state != LS_TRADING_STATE_HALTED:
            self._set_trading(LS_TRADING_STATE_HALTED, 3)

    cdef int process(self, const uint8_t *rec, uint64_t hseq) noexcept nogil:
        """Process one input slot; outputs are appended to out_orders / out_records.

        Returns 0, or -1 for a record the core does not take (recorded as ANOMALY BAD_RECORD).
        """
        cdef const ls_hdr_t *h = <const ls_hdr_t *>rec
        cdef int64_t *w = self.w
        cdef int64_t i, changed
        cdef int64_t *I
        cdef uint16_t kind = h.kind
        cdef const ls_md_level_t *lv
        cdef const ls_md_trade_t *tr
        cdef const ls_md_bbo_t *bb
        cdef const ls_md_status_t *st
        self.now = h.ts
        self.hseq = hseq
        self.c_events += 1
        w[LS_CTX_TS] = h.ts
        w[LS_CTX_HSEQ] = <int64_t>hseq
        w[LS_CTX_EV_KIND] = kind
        w[LS_CTX_EV_FLAGS] = h.flags
        w[LS_CTX_EV_ORDER_ID] = 0
        w[LS_CTX_EV_ORDER_SLOT] = -1
        if kind == LS_RECORD_KIND_MD_LEVEL:
            self.c_md += 1
            lv = <const ls_md_level_t *>rec
            i = self._inst_index(h.instrument)
            if i < 0:
                return 0
            if lv.qty < 0 or (lv.side != LS_SIDE_BUY and lv.side != LS_SIDE_SELL):
                self._anomaly(LS_ANOMALY_BAD_RECORD, h.instrument, 0, kind, 0, 0)
            else:
                changed = self._book_set(i, lv.side, lv.price, lv.qty)   # distance from the best, -1: none
                if 0 <= changed < self.top_levels:
                    self.top_changed[i] = 1
            if (h.flags & LS_RECORD_FLAG_LAST_IN_MSG) and not (h.flags & LS_RECORD_FLAG_SNAPSHOT):
                if self.top_changed[i]:
                    self._book_top_rec(i, lv.ts_event)
                I = ls_ctx_inst(w, i)
                if I[LS_INST_N_BIDS] > 0 and I[LS_INST_N_ASKS] > 0 and I[LS_INST_BID_PX] >= I[LS_INST_ASK_PX]:
                    if not self.crossed[i]:
                        self.crossed[i] = 1
                        self._anomaly(LS_ANOMALY_CROSSED_BOOK, h.instrument, 0, I[LS_INST_BID_PX], 0, 0)
                else:
                    self.crossed[i] = 0
                self._mark(i)
                w[LS_CTX_EV_INST] = i
                w[LS_CTX_EV_SIDE] = lv.side
                w[LS_CTX_EV_PRICE] = lv.price
                w[LS_CTX_EV_QTY] = lv.qty
                w[LS_CTX_EV_STATUS] = 0
                self._run_strategy()
        elif kind == LS_RECORD_KIND_MD_TRADE:
            self.c_md += 1
            tr = <const ls_md_trade_t *>rec
            i = self._inst_index(h.instrument)
            if i < 0:
                return 0
            I = ls_ctx_inst(w, i)
            I[LS_INST_LAST_PX] = tr.price
            I[LS_INST_LAST_QTY] = tr.qty
            I[LS_INST_LAST_SIDE] = tr.side
            I[LS_INST_LAST_TS] = h.ts
            self._mark(i)
            w[LS_CTX_EV_INST] = i
            w[LS_CTX_EV_SIDE] = tr.side
            w[LS_CTX_EV_PRICE] = tr.price
            w[LS_CTX_EV_QTY] = tr.qty
            w[LS_CTX_EV_STATUS] = 0
            self._run_strategy()
        elif kind == LS_RECORD_KIND_MD_BBO:
            self.c_md += 1
            bb = <const ls_md_bbo_t *>rec
            i = self._inst_index(h.instrument)
            if i < 0:
                return 0
            I = ls_ctx_inst(w, i)
            I[LS_INST_BBO_BID_PX] = bb.bid_px
            I[LS_INST_BBO_BID_QTY] = bb.bid_qty
            I[LS_INST_BBO_ASK_PX] = bb.ask_px
            I[LS_INST_BBO_ASK_QTY] = bb.ask_qty
            w[LS_CTX_EV_INST] = i
            w[LS_CTX_EV_SIDE] = 0
            w[LS_CTX_EV_PRICE] = 0
            w[LS_CTX_EV_QTY] = 0
            w[LS_CTX_EV_STATUS] = 0
            self._run_strategy()
        elif kind == LS_RECORD_KIND_MD_STATUS:
            self.c_md += 1
            st = <const ls_md_status_t *>rec
            i = self._inst_index(h.instrument)
            if i < 0:
                return 0
            I = ls_ctx_inst(w, i)
            if st.status == LS_FEED_STATUS_SNAPSHOT_BEGIN:
                self._book_clear(i)
                I[LS_INST_HEALTHY] = 0
            elif st.status == LS_FEED_STATUS_SNAPSHOT_END:
                I[LS_INST_HEALTHY] = 1
                if self.top_levels:
                    self._book_top_rec(i, st.ts_event)
                self._mark(i)
            elif st.status == LS_FEED_STATUS_GAP or st.status == LS_FEED_STATUS_STALE or \
                    st.status == LS_FEED_STATUS_DISCONNECTED or st.status == LS_FEED_STATUS_CONNECTED:
                I[LS_INST_HEALTHY] = 0
            else:
                self._anomaly(LS_ANOMALY_BAD_RECORD, h.instrument, 0, st.status, 0, 0)
                return -1
            w[LS_CTX_EV_INST] = i
            w[LS_CTX_EV_SIDE] = 0
            w[LS_CTX_EV_PRICE] = 0
            w[LS_CTX_EV_QTY] = 0
            w[LS_CTX_EV_STATUS] = st.status
            self._run_strategy()
        elif kind == LS_RECORD_KIND_EXEC:
            self.c_exec += 1
            self._on_exec(<const ls_exec_t *>rec)
        elif kind == LS_RECORD_KIND_CONTROL_CMD:
            self.c_control += 1
            self._on_control(<const ls_control_cmd_t *>rec)
        elif kind == LS_RECORD_KIND_TIMER:
            self.c_timer += 1
            if self.denials.pending:
                self._deny_flush_all()
            w[LS_CTX_EV_INST] = -1
            w[LS_CTX_EV_SIDE] = 0
            w[LS_CTX_EV_PRICE] = 0
            w[LS_CTX_EV_QTY] = 0
            w[LS_CTX_EV_STATUS] = 0
            self._run_strategy()
        else:
            self.c_bad_records += 1
            self._anomaly(LS_ANOMALY_BAD_RECORD, h.instrument, 0, kind, 0, 0)
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
                self.clear_outputs()
                self.process(src + k * size, hseq0 + k)
                if no + self.n_out_orders > cap_o:
                    while no + self.n_out_orders > cap_o:
                        cap_o *= 2
                    tmp = <uint8_t *>realloc(acc_o, cap_o * 64)
                    if tmp == NULL:
                        oom = 1
                        break
                    acc_o = tmp
                if nr + self.n_out_records > cap_r:
                    while nr + self.n_out_records > cap_r:
                        cap_r *= 2
                    tmp = <uint8_t *>realloc(acc_r, cap_r * 128)
                    if tmp == NULL:
                        oom = 1
                        break
                    acc_r = tmp
                memcpy(acc_o + no * 64, self.out_orders, self.n_out_orders * 64)
                memcpy(acc_r + nr * 128, self.out_records, self.n_out_records * 128)
                no += self.n_out_orders
                nr += self.n_out_records
            self.clear_outputs()
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
            "bad_records": self.c_bad_records, "strategy_calls": self.c_strategy_calls,
            "intents": self.c_intents, "orders_sent": self.c_orders_sent, "new_orders": self.c_news,
            "cancels": self.c_cancels, "replaces": self.c_replaces, "fills": self.c_fills,
            "denials": self.c_denials, "anomalies": self.c_anomalies,
            "unknown_order_execs": self.c_unknown_order_execs, "late_events": self.c_late_events, "output_overflow": self.c_out_overflow,
            "open_orders": self.open_orders,
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
        cdef int64_t i = self._index(instrument_id)
        cdef BookSide *b = &self.bids[i]
        cdef BookSide *a = &self.asks[i]
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

    def book(self, instrument_id):
        """The top ``book_depth`` levels the strategy context exposes: (bids, asks) as int64 arrays
        of shape (n, 2): price, qty; best first (exact: the core holds the full book)."""
        cdef int64_t i = self._index(instrument_id)
        cdef int64_t *I = ls_ctx_inst(self.w, i)
        base = self.w[LS_CTX_INST_OFF] + i * self.w[LS_CTX_INST_STRIDE]
        D = self.depth
        v = self._view
        nb, na = I[LS_INST_N_BIDS], I[LS_INST_N_ASKS]
        bp = base + self.w[LS_CTX_INST_BIDPX_OFF]
        ap = base + self.w[LS_CTX_INST_ASKPX_OFF]
        bids = np.stack([v[bp:bp + nb], v[bp + D:bp + D + nb]], axis=1).copy()
        asks = np.stack([v[ap:ap + na], v[ap + D:ap + D + na]], axis=1).copy()
        return bids, asks

    def instrument_state(self, instrument_id):
        """The instrument block's fixed fields as a dict (top of book, last trade, position ...)."""
        from livestack.core import ctx as C
        cdef int64_t i = self._index(instrument_id)
        base = self.w[LS_CTX_INST_OFF] + i * self.w[LS_CTX_INST_STRIDE]
        return {name[5:].lower(): int(self._view[base + getattr(C, name)])
                for name in C.NAMES if name.startswith("INST_") and name not in ("INST_FIXED_WORDS", "INST_USER_WORDS", "INST_USER")}

    def position(self, instrument_id):
        s = self.instrument_state(instrument_id)
        return {"net_qty": s["position"], "cost": s["cost"], "realized_pnl": s["realized"],
                "unrealized_pnl": s["unrealized"]}

    def order(self, client_order_id):
        """The order slot of a client_order_id (live or recently terminal) as a dict, or None."""
        from livestack.core import ctx as C
        cdef int64_t s = self._lookup(client_order_id)
        if s < 0:
            return None
        base = self.w[LS_CTX_ORD_OFF] + s * LS_ORD_WORDS
        d = {name[4:].lower(): int(self._view[base + getattr(C, name)])
             for name in C.NAMES if name.startswith("ORD_") and name not in ("ORD_WORDS", "ORD_EXEC_RING", "ORD_EXEC_IDS")}
        d["slot"] = s
        return d

    def live_orders(self, instrument_id=None):
        """Live orders (creation order per instrument) as dicts."""
        out = []
        for i in range(self.n_inst):
            if instrument_id is not None and self.inst_ids[i] != instrument_id:
                continue
            I = ls_ctx_inst(self.w, i)
            for k in range(I[LS_INST_N_LIVE]):
                s = self._live_list(i)[k]
                out.append(self.order(ls_ctx_order(self.w, s)[LS_ORD_ID]))
        return out

    def risk_limits(self, instrument_id):
        """Current per-instrument limits by lower-case RiskLimit name (plus account-wide loss limits)."""
        cdef int64_t i = self._index(instrument_id)
        d = {RiskLimit(k).name.lower(): self._lim(i)[k] for k in range(1, CORE_N_LIMITS)
             if k in RiskLimit._value2member_map_ and k not in (LS_RISK_LIMIT_MAX_LOSS, LS_RISK_LIMIT_MAX_LOSS_HALT)}
        d["max_loss"] = self.max_loss
        d["max_loss_halt"] = self.max_loss_halt
        return d

    def params(self):
        off = self.w[LS_CTX_PARAM_OFF]
        names = self.strategy.param_names if self.strategy is not None else ()
        return {n: int(self._view[off + k]) for k, n in enumerate(names)}

    @property
    def ctx(self):
        """The context block as a numpy int64 array (live view: do not write)."""
        return self._view

    @property
    def instruments(self):
        return list(self._instruments)

    @property
    def output_capacity(self):
        """(ORDER_CMD slots, record slots) one input can produce at most."""
        return int(self.cap_out_orders), int(self.cap_out_records)
