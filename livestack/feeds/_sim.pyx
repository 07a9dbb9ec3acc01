# cython: language_level=3
"""Compiled core of the simulated market's order-flow model.

The algorithm, the order of random draws and the records are exactly those of the pure-Python
reference ``livestack.feeds.sim.PyMarketModel`` (a test compares them byte for byte); this version
keeps the book in two circular arrays of lots indexed by ``price_in_ticks & WINDOW_MASK`` instead
of dicts and writes records straight into the output array. Live levels never span more than a few
hundred ticks (levels beyond ``3 * levels`` ticks from the top are pruned), far below the window.
"""

import numpy as np
cimport numpy as cnp
from libc.math cimport log
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t

cnp.import_array()

cdef enum:
    WINDOW = 65536  # ticks of the circular book window
    WINDOW_MASK = 65535
    BLOCK = 8192  # random draws per refill (as PyMarketModel._BLOCK)

cdef enum:
    K_LEVEL = 1
    K_TRADE = 2
    K_BBO = 3
    F_LAST = 1
    S_BUY = 1
    S_SELL = 2


cdef class ModelCore:
    """Order-flow model of one instrument (see ``livestack.feeds.sim``).

    Parameters
    ----------
    instrument : Instrument
    seed : int
    params : ModelParams
    t0_ns : int
    overlay : numpy dtype
        ``livestack.feeds.sim.MD_OVERLAY`` (passed in to keep one definition).
    """

    def __init__(self, instrument, seed, params, int64_t t0_ns, overlay):
        self.instrument = instrument
        self.params = params
        self._dtype = overlay
        if overlay.itemsize != sizeof(md_rec_t):
            raise ValueError("MD overlay dtype is not 64 bytes")
        self.inst_id = instrument.id
        self.tick = instrument.tick
        self.lot = instrument.lot
        self.levels = params.levels
        self.mean_gap = 1e9 / params.events_per_s
        self.p_improve = params.p_improve
        self.fair_sigma = params.fair_sigma
        self.lean_k = params.lean
        self.pm = 1.0 - params.p_limit - params.p_cancel
        self.pl = self.pm + params.p_limit
        self.log_keep = log(1.0 - params.depth_decay)
        self.log_qty = log(1.0 - 1.0 / params.mean_qty)
        self.log_mqty = log(1.0 - 1.0 / params.mean_market_qty)
        self.bbo = params.bbo
        self.rng = np.random.Generator(np.random.PCG64([int(seed) & 0xFFFFFFFF, instrument.id]))
        self._nu = self._ng = self._ne = 0
        self._bqa = np.zeros(WINDOW, dtype=np.int64)
        self._aqa = np.zeros(WINDOW, dtype=np.int64)
        self._bq = self._bqa
        self._aq = self._aqa
        self._chga = np.zeros(WINDOW, dtype=np.int64)
        self._chgb = np.zeros(WINDOW, dtype=np.int64)
        self._chg_px = self._chga
        self._chg_q = self._chgb
        self.t_ns = t0_ns
        self._next_t = -1
        cdef int64_t mid = (params.start_price // self.tick) if params.start_price else 10000
        if mid - 4 * self.levels <= 0:
            raise ValueError("simulated market: start_price too low for the depth")
        self.best_bid = mid - 1
        self.best_ask = mid + 1
        self.fair = <double>mid
        self.update_id = self.trade_id = self.events = 0
        self.snapshot_sent = False
        self.nb = self.na = 0
        self.tot_b = self.tot_a = 0
        cdef int i
        cdef int64_t q
        for i in range(self.levels):
            q = 1 + self._geom(self.log_qty)
            self._bq[(mid - 1 - i) & WINDOW_MASK] = q
            self.nb += 1
            self.tot_b += q
            q = 1 + self._geom(self.log_qty)
            self._aq[(mid + 1 + i) & WINDOW_MASK] = q
            self.na += 1
            self.tot_a += q
        self._top[0] = self.best_bid
        self._top[1] = self._bq[self.best_bid & WINDOW_MASK]
        self._top[2] = self.best_ask
        self._top[3] = self._aq[self.best_ask & WINDOW_MASK]
        self._out = None
        self._rec = NULL
        self._n = self._cap = 0

    # --- draws --------------------------------------------------------------------------
    cdef double _uni(self) except? -1.0:
        if self._nu == 0:
            self._ua = self.rng.random(BLOCK)
            self._u = self._ua
            self._nu = BLOCK
        self._nu -= 1
        return self._u[self._nu]

    cdef double _gauss(self) except? -1.0:
        if self._ng == 0:
            self._ga = self.rng.standard_normal(BLOCK)
            self._g = self._ga
            self._ng = BLOCK
        self._ng -= 1
        return self._g[self._ng]

    cdef double _expo(self) except? -1.0:
        if self._ne == 0:
            self._ea = self.rng.standard_exponential(BLOCK)
            self._e = self._ea
            self._ne = BLOCK
        self._ne -= 1
        return self._e[self._ne]

    cdef int64_t _geom(self, double log_keep) except? -1:
        cdef double u = self._uni()
        if u > 0.0:
            return <int64_t>(log(1.0 - u) / log_keep)
        return 0

    # --- book ---------------------------------------------------------------------------
    def top(self):
        """(bid_px, bid_qty, ask_px, ask_qty) in ticks and lots."""
        return (self.best_bid, self._bq[self.best_bid & WINDOW_MASK],
                self.best_ask, self._aq[self.best_ask & WINDOW_MASK])

    def book(self):
        """(bids best first, asks best first) as (price, qty) in price/qty units."""
        bids, asks = [], []
        cdef int64_t px = self.best_bid
        cdef int64_t q
        while len(bids) < self.nb:
            q = self._bq[px & WINDOW_MASK]
            if q:
                bids.append((px * self.tick, q * self.lot))
            px -= 1
        px = self.best_ask
        while len(asks) < self.na:
            q = self._aq[px & WINDOW_MASK]
            if q:
                asks.append((px * self.tick, q * self.lot))
            px += 1
        return bids, asks

    cdef int64_t _worst(self, bint buy) noexcept:
        cdef Py_ssize_t seen = 0
        cdef int64_t px
        if buy:
            px = self.best_bid
            while True:
                if self._bq[px & WINDOW_MASK]:
                    seen += 1
                    if seen == self.nb:
                        return px
                px -= 1
        px = self.best_ask
        while True:
            if self._aq[px & WINDOW_MASK]:
                seen += 1
                if seen == self.na:
                    return px
            px += 1

    # --- output -------------------------------------------------------------------------
    cdef int _reserve(self, Py_ssize_t extra) except -1:
        if self._n + extra <= self._cap:
            return 0
        cdef Py_ssize_t cap = max(self._cap * 2, self._n + extra, 1024)
        new = np.zeros(cap, dtype=self._dtype)
        if self._n:
            new[:self._n] = self._out[:self._n]
        self._out = new
        self._cap = cap
        self._rec = <md_rec_t *>cnp.PyArray_DATA(new)
        return 0

    cdef void _emit(self, uint16_t kind, uint8_t flags, int64_t t, int64_t a, int64_t b, int64_t c,
                    int64_t d) noexcept:
        cdef md_rec_t *r = &self._rec[self._n]
        r.h.kind = kind
        r.h.version = 1
        r.h.flags = flags
        r.h.instrument = self.inst_id
        r.h.seq = 0
        r.h.ts = t
        r.ts_event = t
        r.a = a
        r.b = b
        r.c = c
        r.d = d
        self._n += 1

    cdef void _level(self, int64_t t, bint buy, int64_t px, int64_t q, bint last) noexcept:
        self._emit(K_LEVEL, F_LAST if last else 0, t, px * self.tick, q * self.lot, self.update_id,
                   S_BUY if buy else S_SELL)

    # --- generation ---------------------------------------------------------------------
    def generate(self, Py_ssize_t n_events, until_ns=None):
        """Draw up to ``n_events`` events up to ``until_ns``; returns their records (no snapshot:
        the Python wrapper adds it)."""
        cdef bint has_until = until_ns is not None
        cdef int64_t until = until_ns if has_until else 0
        cdef Py_ssize_t n = 0
        cdef int64_t t, nt
        cdef double lean, u
        cdef bint buy
        cdef int64_t mq
        self._out = None
        self._n = self._cap = 0
        self._reserve(max(16, min(n_events, 4096) * 2))
        t = self.t_ns
        while n < n_events:
            if self._next_t < 0:
                self._next_t = t + <int64_t>(self._expo() * self.mean_gap) + 1
            nt = self._next_t
            if has_until and nt > until:
                break
            self._next_t = -1
            t = nt
            self.t_ns = t
            n += 1
            # worst case of one event: a sweep of one side, a prune of both, a BBO
            self._reserve(2 * (self.nb + self.na) + 8)
            self.fair += self._gauss() * self.fair_sigma
            lean = (self.fair - 0.5 * <double>(self.best_bid + self.best_ask)) * self.lean_k
            if lean > 0.35:
                lean = 0.35
            elif lean < -0.35:
                lean = -0.35
            u = self._uni()
            if u < self.pm:
                buy = self._uni() < 0.5 + lean
                mq = 1 + self._geom(self.log_mqty)
                self._market(t, buy, mq)
            elif u < self.pl:
                self._limit(t, self._uni() < 0.5 + lean * 0.5, lean)
            else:
                self._cancel(t, self._uni() < 0.5)
            if self.events % 256 == 0:
                self._prune(t)
            self.events += 1
            if self.bbo:
                if (self._top[0] != self.best_bid or self._top[1] != self._bq[self.best_bid & WINDOW_MASK]
                        or self._top[2] != self.best_ask or self._top[3] != self._aq[self.best_ask & WINDOW_MASK]):
                    self._top[0] = self.best_bid
                    self._top[1] = self._bq[self.best_bid & WINDOW_MASK]
                    self._top[2] = self.best_ask
                    self._top[3] = self._aq[self.best_ask & WINDOW_MASK]
                    self._emit(K_BBO, F_LAST, t, self._top[0] * self.tick, self._top[1] * self.lot,
                               self._top[2] * self.tick, self._top[3] * self.lot)
        out = self._out[:self._n]
        self._out = None
        self._rec = NULL
        self._n = self._cap = 0
        return out

    cdef int _limit(self, int64_t t, bint buy, double lean) except -1:
        cdef double improve = self.p_improve + (lean if buy else -lean)
        cdef int64_t spread = self.best_ask - self.best_bid
        cdef int64_t qty = 1 + self._geom(self.log_qty)
        cdef int64_t px, newq
        if buy:
            if spread > 1 and self._uni() < improve:
                px = self.best_bid + 1 + (self._geom(self.log_keep) % (spread - 1))
            elif self.nb < self.levels // 2:
                px = self._worst(True) - 1 - self._geom(self.log_keep)
            else:
                px = self.best_bid - self._geom(self.log_keep)
            if px >= self.best_ask:
                return self._market(t, True, qty)
            newq = self._bq[px & WINDOW_MASK]
            if newq == 0:
                self.nb += 1
            newq += qty
            self._bq[px & WINDOW_MASK] = newq
            self.tot_b += qty
            if px > self.best_bid:
                self.best_bid = px
        else:
            if spread > 1 and self._uni() < improve:
                px = self.best_ask - 1 - (self._geom(self.log_keep) % (spread - 1))
            elif self.na < self.levels // 2:
                px = self._worst(False) + 1 + self._geom(self.log_keep)
            else:
                px = self.best_ask + self._geom(self.log_keep)
            if px <= self.best_bid:
                return self._market(t, False, qty)
            newq = self._aq[px & WINDOW_MASK]
            if newq == 0:
                self.na += 1
            newq += qty
            self._aq[px & WINDOW_MASK] = newq
            self.tot_a += qty
            if px < self.best_ask:
                self.best_ask = px
        self.update_id += 1
        self._level(t, buy, px, newq, True)
        return 0

    cdef int _cancel(self, int64_t t, bint buy) except -1:
        cdef int64_t[::1] book = self._bq if buy else self._aq
        if (self.nb if buy else self.na) <= 1:
            return 0
        cdef int64_t k = self._geom(self.log_keep)
        cdef int64_t step = -1 if buy else 1
        cdef int64_t px = self.best_bid if buy else self.best_ask
        cdef int64_t found = px
        cdef int64_t seen = 0
        cdef int64_t i
        for i in range(4 * self.levels + k):
            if book[px & WINDOW_MASK]:
                found = px
                if seen == k:
                    break
                seen += 1
            px += step
        cdef int64_t q = book[found & WINDOW_MASK]
        cdef int64_t cut = 1 + <int64_t>(self._uni() * <double>q)
        cdef int64_t newq = q - cut if cut < q else 0
        self.update_id += 1
        book[found & WINDOW_MASK] = newq
        if buy:
            self.tot_b -= q - newq
        else:
            self.tot_a -= q - newq
        if newq == 0:
            if buy:
                self.nb -= 1
                if found == self.best_bid:
                    px = found - 1
                    while book[px & WINDOW_MASK] == 0:
                        px -= 1
                    self.best_bid = px
            else:
                self.na -= 1
                if found == self.best_ask:
                    px = found + 1
                    while book[px & WINDOW_MASK] == 0:
                        px += 1
                    self.best_ask = px
        self._level(t, buy, found, newq, True)
        return 0

    cdef int _market(self, int64_t t, bint buy, int64_t qty) except -1:
        cdef int64_t[::1] book = self._aq if buy else self._bq
        cdef uint8_t side = S_BUY if buy else S_SELL
        cdef int64_t px = self.best_ask if buy else self.best_bid
        cdef int64_t step = 1 if buy else -1
        cdef int64_t total = self.tot_a if buy else self.tot_b
        cdef int64_t lvl, take, traded = 0
        cdef Py_ssize_t nchg = 0, scan = 0, i
        if qty > total - 1:
            qty = total - 1
        while qty > 0 and scan < 100000:
            lvl = book[px & WINDOW_MASK]
            if lvl:
                take = lvl if lvl < qty else qty
                qty -= take
                traded += take
                self.trade_id += 1
                self._emit(K_TRADE, F_LAST, t, px * self.tick, take * self.lot, self.trade_id, side)
                self._chg_px[nchg] = px
                if take == lvl:
                    book[px & WINDOW_MASK] = 0
                    self._chg_q[nchg] = 0
                    nchg += 1
                    if buy:
                        self.na -= 1
                    else:
                        self.nb -= 1
                else:
                    book[px & WINDOW_MASK] = lvl - take
                    self._chg_q[nchg] = lvl - take
                    nchg += 1
                    break
            px += step
            scan += 1
        if nchg == 0:
            return 0
        if buy:
            self.tot_a -= traded
            px = self.best_ask
            while book[px & WINDOW_MASK] == 0:
                px += 1
            self.best_ask = px
        else:
            self.tot_b -= traded
            px = self.best_bid
            while book[px & WINDOW_MASK] == 0:
                px -= 1
            self.best_bid = px
        self.update_id += 1
        for i in range(nchg):
            self._level(t, not buy, self._chg_px[i], self._chg_q[i], i == nchg - 1)
        return 0

    cdef int _prune(self, int64_t t) except -1:
        cdef int64_t far = 3 * self.levels
        cdef int64_t wb = self._worst(True)
        cdef int64_t wa = self._worst(False)
        if not (self.best_bid - wb > far or wa - self.best_ask > far):
            return 0
        self.update_id += 1
        cdef Py_ssize_t nd = 0, i
        cdef int64_t px
        # bids below best - far, nearest first; then asks above best + far, nearest first
        px = self.best_bid - far - 1
        while px >= wb:
            if self._bq[px & WINDOW_MASK]:
                self.tot_b -= self._bq[px & WINDOW_MASK]
                self._bq[px & WINDOW_MASK] = 0
                self.nb -= 1
                self._chg_px[nd] = px
                self._chg_q[nd] = S_BUY
                nd += 1
            px -= 1
        px = self.best_ask + far + 1
        while px <= wa:
            if self._aq[px & WINDOW_MASK]:
                self.tot_a -= self._aq[px & WINDOW_MASK]
                self._aq[px & WINDOW_MASK] = 0
                self.na -= 1
                self._chg_px[nd] = px
                self._chg_q[nd] = S_SELL
                nd += 1
            px += 1
        for i in range(nd):
            self._level(t, self._chg_q[i] == S_BUY, self._chg_px[i], 0, i == nd - 1)
        return 0
