# cython: language_level=3
"""The matching engine: our orders against a replayed public L2 book, with queue position and latency.

The engine composes its models, one file each: the public book (``book.pxd``: a hash ladder), our
live orders (``orders.pxd``: stable slots, a time-priority list, a hash index on client_order_id)
and the queue position of our resting orders (``queue.pxd``: the rule below, in integers).

One engine serves every caller: ``livestack backtest`` (``livestack.backtest.sim`` drives it
in-process, nogil) and the simulated venue process (``livestack.venues.sim`` wraps it). It reads
no clock and no global randomness: time is passed in with every call, the latency jitter comes
from its own seeded generator, and the same inputs give the same events, bit for bit.

Public book
-----------
Built from MD_LEVEL records (absolute quantity per price; 0 removes the level) and cleared by an
MD_STATUS SNAPSHOT_BEGIN; MD_BBO records are ignored (a book is built from depth only). Each side
is a hash ladder over every level (``book.pxd``: O(1) per update, the best price tracked). Our
orders are not shown in it, and the public flow does not react to them.

Matching rules (price-time priority)
------------------------------------
* **Aggressive** (a buy priced at or above the best ask, a sell at or below the best bid, or a
  MARKET order): fills against the displayed levels from the best, each at the level's price, as far
  as the limit allows. Liquidity we take is remembered per level (``taken``) so two of our orders do
  not take the same displayed quantity; it shrinks as the level's public quantity shrinks. The
  remainder rests (LIMIT GTC, or DAY: treated as GTC) or is CANCELED (IOC, MARKET). A POST_ONLY that would cross is REJECTED.
* **Resting, queue position** (the rule hftbacktest's probabilistic queue model uses with a linear
  probability, in integers): an order joins behind the displayed quantity at its price
  (``ahead``). A public trade at that price first consumes ``ahead``, then fills our orders there in
  time priority. A decrease of the level that the trades there since its last update do not explain
  is a cancel: canceled quantity is spread evenly over the queue, so ``ahead`` loses
  ``cancel * ahead // old_qty`` (the share of the queue in front of us); ``ahead`` never exceeds the
  displayed quantity. An increase joins behind us (``ahead`` unchanged).
* **Through our price**: a public trade printing through our price (a sell below our bid) fills the
  whole order at our price; a public level arriving on the other side at or through our price (an
  ask at or below our bid) trades with us at our price, up to its displayed quantity not yet taken.
  Better-priced orders first, then time.
* **CANCEL**: CANCELED; an order that is not live (never existed, filled, already canceled: the
  cancel race) is CANCEL_REJECTED with reason UNKNOWN_ORDER.
* **REPLACE** keeps the queue position when the price is the same and the quantity does not go up,
  else re-queues at the back (and may trade at once). The order keeps its venue_order_id; REPLACED
  carries the new client_order_id and the old one in ``orig_client_order_id``. A replace to a
  quantity not above the filled one is CANCEL_REJECTED (``REASON_QTY_BELOW_FILLED``).
* **Rejects**: unknown instrument, price off tick or <= 0 (limit), quantity off lot or <= 0, bad
  side / tif / order type, a client_order_id already live (DUPLICATE), POST_ONLY crossing.
  ``EXEC.reason`` reuses ``DenyReason`` codes where one fits; venue-only reasons are ``REASON_*``.

Time and latency
----------------
A command submitted with header ``ts`` arrives at ``ts + order_latency_ns + U[0, order_jitter_ns]``
(kept monotonic: one connection delivers in order) and is processed against the book as it is
then: market records with time < arrival are applied first, records with time == arrival after.
The time of the processing is ``max(arrival, time of the last market record)``. Each execution event
carries ``ts_event`` = the time it happened and header ``ts`` = its delivery time ``ts_event +
response_latency_ns + U[0, response_jitter_ns]`` (monotonic); :meth:`MatchingEngine.poll` hands out
those delivered by ``now``.

Execution ids
-------------
Every event gets ``exec_id`` = 1, 2, 3... within this engine and ``exec_id_hi`` = ``exec_epoch``
(>= 1, given by the caller: the simulated venue passes one per process incarnation), so the pair
is never (0, 0) and a restarted venue never repeats a pair within a session.
"""

from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memset, memcpy, memmove
from libc.stdint cimport uint8_t, uint16_t, uint32_t, int64_t, uint64_t, INT64_MAX

import numpy as np
cimport numpy as cnp

from livestack.schema.records cimport *
from livestack.matching.book cimport (me_level_t, me_side_t, me_side_get, me_side_best, me_side_set, me_ladder_t,
                                      me_ladder_init, me_ladder_get, me_ladder_set, me_ladder_next,
                                      me_ladder_clear)
from livestack.matching.orders cimport (me_order_t, me_orders_t, me_orders_init, me_orders_free,
                                        me_orders_find, me_orders_index, me_orders_unindex, me_orders_link,
                                        me_orders_unlink)
from livestack.matching.queue cimport me_queue_join, me_queue_level, me_queue_trade
from livestack.schema import DTYPES, DenyReason

cnp.import_array()

# venue-only reject reasons (EXEC.reason), above every DenyReason code
REASON_POST_ONLY_WOULD_CROSS = 100
REASON_BAD_SIDE = 101
REASON_BAD_TYPE = 102          # unknown ord_type / tif / cmd
REASON_QTY_BELOW_FILLED = 103  # replace to a quantity not above what is already filled

cdef enum:
    R_POST_ONLY_WOULD_CROSS = 100
    R_BAD_SIDE = 101
    R_BAD_TYPE = 102
    R_QTY_BELOW_FILLED = 103

cdef enum:
    BIDS = 0
    ASKS = 1

cdef inline int _sx(int side) noexcept nogil:
    """Book side index of an order side (BUY rests on the bids)."""
    return BIDS if side == LS_SIDE_BUY else ASKS

cdef inline bint _better(int side_index, int64_t a, int64_t b) noexcept nogil:
    """Price ``a`` strictly better than ``b`` for a resting order on ``side_index``."""
    return a > b if side_index == BIDS else a < b


cdef class MatchingEngine:
    """Price-time matching of our orders against a replayed L2 book (rules: module docstring).

    Parameters
    ----------
    instruments : list
        ``livestack.config.Instrument`` objects (``id``, ``tick``, ``lot`` are read) or
        ``(id, tick, lot)`` tuples.
    order_latency_ns, order_jitter_ns, response_latency_ns, response_jitter_ns : int
        Stack -> engine and engine -> stack latency: fixed part and uniform jitter (>= 0).
    seed : int
        Seed of the jitter generator.
    exec_epoch : int
        ``exec_id_hi`` of every event (>= 1).
    max_orders : int
        Capacity of the live order table (more resting orders are REJECTED, reason ORDER_TABLE_FULL).
    """

    def __cinit__(self, instruments, int64_t order_latency_ns=0, int64_t order_jitter_ns=0,
                  int64_t response_latency_ns=0, int64_t response_jitter_ns=0, uint64_t seed=1,
                  int64_t exec_epoch=1, int64_t max_orders=4096):
        if min(order_latency_ns, order_jitter_ns, response_latency_ns, response_jitter_ns) < 0:
            raise ValueError("matching engine: latencies and jitters must be >= 0")
        if exec_epoch < 1:
            raise ValueError("matching engine: exec_epoch must be >= 1")
        if max_orders < 1:
            raise ValueError("matching engine: max_orders must be >= 1")
        specs = []
        for i in instruments:
            if isinstance(i, tuple):
                specs.append((int(i[0]), int(i[1]), int(i[2])))
            else:
                specs.append((int(i.id), int(i.tick), int(i.lot)))
        if not specs:
            raise ValueError("matching engine: at least one instrument")
        for iid, tick, lot in specs:
            if tick <= 0 or lot <= 0:
                raise ValueError(f"matching engine: instrument {iid}: tick and lot must be > 0")
        self.n_insts = len(specs)
        self.insts = <me_inst_t *>calloc(self.n_insts, sizeof(me_inst_t))  # zeroed: __dealloc__ is safe at any point
        self.pend_cap = 1024
        self.pend = <me_pending_t *>malloc(self.pend_cap * sizeof(me_pending_t))
        self.out_cap = 1024
        self.out = <ls_exec_t *>malloc(self.out_cap * sizeof(ls_exec_t))
        if self.insts == NULL or self.pend == NULL or self.out == NULL \
                or me_orders_init(&self.live, max_orders) < 0:
            raise MemoryError()
        cdef int64_t k
        cdef int s
        for k in range(self.n_insts):
            self.insts[k].id = specs[k][0]
            self.insts[k].tick = specs[k][1]
            self.insts[k].lot = specs[k][2]
            for s in range(2):
                self.insts[k].ours[s].cap = 16
                self.insts[k].ours[s].lv = <me_level_t *>malloc(16 * sizeof(me_level_t))
                if me_ladder_init(&self.insts[k].book[s], s == ASKS, self.insts[k].tick, 4096) < 0 \
                        or self.insts[k].ours[s].lv == NULL:
                    raise MemoryError()
        self.order_latency_ns = order_latency_ns
        self.order_jitter_ns = order_jitter_ns
        self.response_latency_ns = response_latency_ns
        self.response_jitter_ns = response_jitter_ns
        self.exec_epoch = exec_epoch
        self.next_exec_id = 1
        self.next_voi = 1
        self.rng = seed * <uint64_t>0x9E3779B97F4A7C15 + <uint64_t>0x5EED

    def __dealloc__(self):
        cdef int64_t k
        if self.insts != NULL:
            for k in range(self.n_insts):
                free(self.insts[k].book[0].slot)
                free(self.insts[k].book[1].slot)
                free(self.insts[k].ours[0].lv)
                free(self.insts[k].ours[1].lv)
        free(self.insts)
        me_orders_free(&self.live)
        free(self.pend)
        free(self.out)

    # ------------------------------------------------------------------------------------------
    # small helpers
    cdef uint64_t _rand(self) noexcept nogil:
        """splitmix64: the engine's own deterministic generator (latency jitter only)."""
        self.rng += <uint64_t>0x9E3779B97F4A7C15
        cdef uint64_t z = self.rng
        z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EB
        return z ^ (z >> 31)

    cdef int64_t _inst_index(self, uint32_t id) noexcept nogil:
        cdef int64_t k
        for k in range(self.n_insts):
            if self.insts[k].id == id:
                return k
        return -1

    cdef void _ours_add(self, me_inst_t *I, int s, int64_t px, int64_t delta) noexcept nogil:
        """``delta`` orders of ours more (or fewer) at ``px`` on side ``s``; keeps count and best."""
        cdef me_level_t *lv = me_side_get(&I.ours[s], s == ASKS, px)
        cdef int64_t old, unused
        if me_side_set(&I.ours[s], s == ASKS, px, (lv.qty if lv != NULL else 0) + delta, &old, &unused) < 0:
            self.oom = 1
        I.n_ours[s] += delta
        if I.n_ours[s]:
            I.best_ours[s] = me_side_best(&I.ours[s]).px

    cdef int64_t _find_order(self, int64_t coid) noexcept nogil:
        return me_orders_find(&self.live, coid)

    cdef int64_t _link(self, const me_order_t *o) noexcept nogil:
        """Rest a copy of ``o`` as the newest order (caller checked there is a free slot)."""
        cdef int64_t k = me_orders_link(&self.live, o)
        self._ours_add(&self.insts[o.inst], _sx(o.side), o.price, 1)
        return k

    cdef void _remove_at(self, int64_t k) noexcept nogil:
        """Take the order in slot ``k`` off the book (its slot is free again)."""
        cdef me_order_t *o = &self.live.slot[k]
        me_orders_unlink(&self.live, k)
        self._ours_add(&self.insts[o.inst], _sx(o.side), o.price, -1)

    # ------------------------------------------------------------------------------------------
    # events
    cdef ls_exec_t *_slot(self) noexcept nogil:
        cdef ls_exec_t *tmp
        cdef int64_t k, tail_n
        if self.out_n == self.out_cap:
            tmp = <ls_exec_t *>malloc(2 * self.out_cap * sizeof(ls_exec_t))
            if tmp == NULL:
                self.oom = 1
                return NULL
            tail_n = self.out_cap - self.out_head
            memcpy(tmp, &self.out[self.out_head], tail_n * sizeof(ls_exec_t))
            memcpy(&tmp[tail_n], self.out, self.out_head * sizeof(ls_exec_t))
            free(self.out)
            self.out = tmp
            self.out_head = 0
            self.out_cap *= 2
        k = self.out_head + self.out_n
        if k >= self.out_cap:
            k -= self.out_cap
        self.out_n += 1
        return &self.out[k]

    cdef ls_exec_t *_blank(self, int et, int64_t t) noexcept nogil:
        cdef ls_exec_t *e = self._slot()
        cdef int64_t d
        if e == NULL:
            return NULL
        memset(e, 0, sizeof(ls_exec_t))
        d = t + self.response_latency_ns
        if self.response_jitter_ns:
            d += <int64_t>(self._rand() % <uint64_t>(self.response_jitter_ns + 1))
        if d < self.last_deliver:
            d = self.last_deliver
        self.last_deliver = d
        e.kind = LS_RECORD_KIND_EXEC
        e.version = LS_EXEC_VERSION
        e.ts = d
        e.ts_event = t
        e.exec_type = <uint8_t>et
        e.exec_id = self.next_exec_id
        e.exec_id_hi = self.exec_epoch
        self.next_exec_id += 1
        self.n_events += 1
        return e

    cdef ls_exec_t *_event(self, int et, int64_t t, const me_order_t *o) noexcept nogil:
        cdef ls_exec_t *e = self._blank(et, t)
        if e == NULL:
            return NULL
        e.instrument = self.insts[o.inst].id
        e.client_order_id = o.coid
        e.venue_order_id = o.voi
        e.price = o.price
        e.qty = o.qty
        e.cum_qty = o.cum
        e.leaves_qty = 0 if et == LS_EXEC_TYPE_CANCELED else o.qty - o.cum
        e.side = o.side
        return e

    cdef ls_exec_t *_reject(self, int et, int64_t t, const ls_order_cmd_t *c, uint16_t reason) noexcept nogil:
        cdef ls_exec_t *e = self._blank(et, t)
        if e == NULL:
            return NULL
        e.instrument = c.instrument
        e.client_order_id = c.client_order_id
        e.price = c.price
        e.qty = c.qty
        e.side = c.side
        e.reason = reason
        self.n_rejects += 1
        return e

    cdef int _fill(self, me_order_t *o, int64_t k, int64_t px, int64_t f, int64_t t) noexcept nogil:
        """Fill ``f`` of ``o`` at ``px``; ``k`` = its slot (-1: not resting yet).
        Returns 1 when the order is done (and removed from the table)."""
        cdef ls_exec_t *e
        cdef me_order_t copy
        cdef int done
        if f <= 0:
            return 0
        o.cum += f
        self.n_fills += 1
        if o.cum >= o.qty:
            copy = o[0]
            if k >= 0:
                self._remove_at(k)
            e = self._event(LS_EXEC_TYPE_FILLED, t, &copy)
            done = 1
        else:
            e = self._event(LS_EXEC_TYPE_PARTIALLY_FILLED, t, o)
            done = 0
        if e != NULL:
            e.last_px = px
            e.last_qty = f
        return done

    # ------------------------------------------------------------------------------------------
    # market data
    cdef int _set_level(self, int64_t ii, int side, int64_t px, int64_t qty, int64_t t) noexcept nogil:
        """The public level (``side``, ``px``) becomes ``qty``; our queues and crossings follow."""
        cdef me_inst_t *I = &self.insts[ii]
        cdef int64_t old, traded, j
        cdef me_order_t *o
        if me_ladder_set(&I.book[side], px, qty, &old, &traded) < 0:
            self.oom = 1
            return -1
        # our queue at this price (queue.pxd)
        if I.n_ours[side] and old > 0 and me_side_get(&I.ours[side], side == ASKS, px) != NULL:
            j = self.live.first
            while j >= 0:
                o = &self.live.slot[j]
                j = o.next
                if o.inst == ii and _sx(o.side) == side and o.price == px:
                    o.ahead = me_queue_level(o.ahead, old, qty, traded)
        # public liquidity arriving at or through our resting price on the other side
        if qty > old and I.n_ours[1 - side]:
            if side == ASKS and px <= I.best_ours[BIDS]:
                return self._cross(ii, LS_SIDE_BUY, px, t)
            if side == BIDS and px >= I.best_ours[ASKS]:
                return self._cross(ii, LS_SIDE_SELL, px, t)
        return 0

    cdef int _cross(self, int64_t ii, int our_side, int64_t px, int64_t t) noexcept nogil:
        """Public liquidity at ``px`` crosses our resting ``our_side`` orders: they trade with it at
        their prices, better price first, then time, up to the displayed quantity not yet taken."""
        cdef int s = _sx(our_side)
        cdef me_level_t *lv = me_ladder_get(&self.insts[ii].book[1 - s], px)
        cdef int64_t avail, j, best, f
        cdef me_order_t *o
        if lv == NULL:
            return 0
        avail = lv.qty - lv.taken
        while avail > 0:
            best = -1
            j = self.live.first
            while j >= 0:
                o = &self.live.slot[j]
                if o.inst == ii and o.side == our_side and \
                        ((o.price >= px) if our_side == LS_SIDE_BUY else (o.price <= px)):
                    if best < 0 or _better(s, o.price, self.live.slot[best].price):
                        best = j
                j = o.next
            if best < 0:
                break
            o = &self.live.slot[best]
            f = o.qty - o.cum
            if f > avail:
                f = avail
            avail -= f
            lv.taken += f
            self._fill(o, best, o.price, f, t)
        return 0

    cdef int _trade(self, int64_t ii, int aggressor, int64_t px, int64_t qty, int64_t t) noexcept nogil:
        """A public trade of ``qty`` at ``px``; ``aggressor`` SELL hits the bids, BUY lifts the asks."""
        cdef me_inst_t *I = &self.insts[ii]
        cdef int s
        cdef int64_t j, nxt, best, used, avail, f
        cdef me_order_t *o
        cdef me_level_t *lv
        if aggressor == LS_SIDE_SELL:
            s = BIDS
        elif aggressor == LS_SIDE_BUY:
            s = ASKS
        else:
            return 0
        lv = me_ladder_get(&I.book[s], px)
        if lv != NULL:
            lv.traded += qty
        if I.n_ours[s] == 0 or _better(s, px, I.best_ours[s]):
            return 0
        # through our price: those orders would have been hit first; better price first, then time
        while True:
            best = -1
            j = self.live.first
            while j >= 0:
                o = &self.live.slot[j]
                if o.inst == ii and _sx(o.side) == s and _better(s, o.price, px):
                    if best < 0 or _better(s, o.price, self.live.slot[best].price):
                        best = j
                j = o.next
            if best < 0:
                break
            o = &self.live.slot[best]
            self._fill(o, best, o.price, o.qty - o.cum, t)
        # at our price: the queue ahead first, then ours in time priority
        used = 0
        j = self.live.first
        while j >= 0:
            o = &self.live.slot[j]
            nxt = o.next  # o may be filled and its slot freed below
            if o.inst == ii and _sx(o.side) == s and o.price == px:
                avail = me_queue_trade(&o.ahead, qty, used)
                if avail > 0:
                    f = o.qty - o.cum
                    if f > avail:
                        f = avail
                    used += f
                    self._fill(o, j, o.price, f, t)
            j = nxt
        return 0

    cdef int on_md(self, const uint8_t *rec, int64_t t) noexcept nogil:
        """Apply one 64-byte market-data record at engine time ``t`` (commands arriving before
        ``t`` are processed first)."""
        cdef const ls_hdr_t *h = <const ls_hdr_t *>rec
        cdef const ls_md_level_t *L
        cdef const ls_md_trade_t *T
        cdef int64_t ii
        cdef int s
        if self.pend_n and self.pend[self.pend_head].arrival < t:
            self.advance_to(t - 1)
        if t > self.market_ts:
            self.market_ts = t
        self.n_md += 1
        ii = self._inst_index(h.instrument)
        if ii < 0:
            return 0
        if h.kind == LS_RECORD_KIND_MD_LEVEL:
            L = <const ls_md_level_t *>rec
            if L.side == LS_SIDE_BUY or L.side == LS_SIDE_SELL:
                return self._set_level(ii, _sx(L.side), L.price, L.qty, t)
        elif h.kind == LS_RECORD_KIND_MD_TRADE:
            T = <const ls_md_trade_t *>rec
            return self._trade(ii, T.side, T.price, T.qty, t)
        elif h.kind == LS_RECORD_KIND_MD_STATUS:
            if (<const ls_md_status_t *>rec).status == LS_FEED_STATUS_SNAPSHOT_BEGIN:
                for s in range(2):
                    me_ladder_clear(&self.insts[ii].book[s])
        return 0

    # ------------------------------------------------------------------------------------------
    # commands
    cdef int submit_cmd(self, const uint8_t *cmd) noexcept nogil:
        """Queue one ORDER_CMD; it arrives at ``ts + order latency + jitter`` (monotonic)."""
        cdef const ls_order_cmd_t *c = <const ls_order_cmd_t *>cmd
        cdef me_pending_t *tmp
        cdef int64_t k, tail_n, arr
        if self.pend_n == self.pend_cap:
            tmp = <me_pending_t *>malloc(2 * self.pend_cap * sizeof(me_pending_t))
            if tmp == NULL:
                self.oom = 1
                return -1
            tail_n = self.pend_cap - self.pend_head
            memcpy(tmp, &self.pend[self.pend_head], tail_n * sizeof(me_pending_t))
            memcpy(&tmp[tail_n], self.pend, self.pend_head * sizeof(me_pending_t))
            free(self.pend)
            self.pend = tmp
            self.pend_head = 0
            self.pend_cap *= 2
        arr = c.ts + self.order_latency_ns
        if self.order_jitter_ns:
            arr += <int64_t>(self._rand() % <uint64_t>(self.order_jitter_ns + 1))
        if arr < self.last_arrival:
            arr = self.last_arrival
        self.last_arrival = arr
        k = self.pend_head + self.pend_n
        if k >= self.pend_cap:
            k -= self.pend_cap
        self.pend[k].arrival = arr
        self.pend[k].cmd = c[0]
        self.pend_n += 1
        return 0

    cdef int64_t next_arrival(self) noexcept nogil:
        return self.pend[self.pend_head].arrival if self.pend_n else INT64_MAX

    cdef int64_t next_delivery(self) noexcept nogil:
        return self.out[self.out_head].ts if self.out_n else INT64_MAX

    cdef int pop_event(self, uint8_t *dst) noexcept nogil:
        """Move the oldest undelivered event into ``dst`` (128 bytes); 0 when none."""
        if self.out_n == 0:
            return 0
        memcpy(dst, &self.out[self.out_head], sizeof(ls_exec_t))
        self.out_head += 1
        if self.out_head == self.out_cap:
            self.out_head = 0
        self.out_n -= 1
        return 1

    cdef int advance_to(self, int64_t now) noexcept nogil:
        """Process the commands that have arrived by ``now``."""
        cdef me_pending_t *p
        cdef int64_t t
        while self.pend_n and self.pend[self.pend_head].arrival <= now:
            p = &self.pend[self.pend_head]
            t = p.arrival if p.arrival > self.market_ts else self.market_ts
            self._process(&p.cmd, t)
            self.pend_head += 1
            if self.pend_head == self.pend_cap:
                self.pend_head = 0
            self.pend_n -= 1
        return 0

    cdef int _process(self, const ls_order_cmd_t *c, int64_t t) noexcept nogil:
        self.n_commands += 1
        if c.cmd == LS_ORDER_CMD_TYPE_NEW:
            return self._new(c, t)
        if c.cmd == LS_ORDER_CMD_TYPE_CANCEL:
            return self._cancel(c, t)
        if c.cmd == LS_ORDER_CMD_TYPE_REPLACE:
            return self._replace(c, t)
        if c.cmd == LS_ORDER_CMD_TYPE_STATUS:
            return self._status(c, t)
        self._reject(LS_EXEC_TYPE_REJECTED, t, c, R_BAD_TYPE)
        return 0

    cdef uint16_t _validate(self, int64_t ii, int64_t price, int64_t qty, int ord_type) noexcept nogil:
        if ii < 0:
            return LS_DENY_REASON_UNKNOWN_INSTRUMENT
        if ord_type == LS_ORD_TYPE_LIMIT and (price <= 0 or price % self.insts[ii].tick):
            return LS_DENY_REASON_BAD_PRICE
        if qty <= 0 or qty % self.insts[ii].lot:
            return LS_DENY_REASON_BAD_QTY
        return 0

    cdef bint _crosses(self, int64_t ii, int side, int64_t price) noexcept nogil:
        cdef me_ladder_t *opp = &self.insts[ii].book[ASKS if side == LS_SIDE_BUY else BIDS]
        if opp.n == 0:
            return 0
        return opp.best <= price if side == LS_SIDE_BUY else opp.best >= price

    cdef int _take(self, me_order_t *o, int64_t t) noexcept nogil:
        """Fill ``o`` (not resting) against the displayed liquidity it crosses, best level first."""
        cdef me_ladder_t *opp = &self.insts[o.inst].book[ASKS if o.side == LS_SIDE_BUY else BIDS]
        cdef int64_t px, avail, f
        cdef me_level_t *lv
        cdef bint more = opp.n > 0
        px = opp.best
        while more and o.cum < o.qty:
            if o.ord_type != LS_ORD_TYPE_MARKET:
                if (px > o.price) if o.side == LS_SIDE_BUY else (px < o.price):
                    break
            lv = me_ladder_get(opp, px)
            avail = lv.qty - lv.taken
            if avail > 0:
                f = o.qty - o.cum
                if f > avail:
                    f = avail
                lv.taken += f
                self._fill(o, -1, px, f, t)
            if o.cum < o.qty:
                px = me_ladder_next(opp, px, &more)
        return 0

    cdef int _rest(self, me_order_t *o) noexcept nogil:
        cdef int s = _sx(o.side)
        cdef me_level_t *lv = me_ladder_get(&self.insts[o.inst].book[s], o.price)
        o.ahead = me_queue_join(lv.qty if lv != NULL else 0)
        self._link(o)
        return 0

    cdef int _new(self, const ls_order_cmd_t *c, int64_t t) noexcept nogil:
        cdef int64_t ii = self._inst_index(c.instrument)
        cdef int tif = c.tif if c.tif else LS_TIME_IN_FORCE_GTC
        if tif == LS_TIME_IN_FORCE_DAY:  # a simulated session never reaches the end of a trading day
            tif = LS_TIME_IN_FORCE_GTC
        cdef int otype = c.ord_type if c.ord_type else LS_ORD_TYPE_LIMIT
        cdef uint16_t reason = self._validate(ii, c.price, c.qty, otype)
        cdef me_order_t o
        if not reason and c.side != LS_SIDE_BUY and c.side != LS_SIDE_SELL:
            reason = R_BAD_SIDE
        if not reason and ((tif != LS_TIME_IN_FORCE_GTC and tif != LS_TIME_IN_FORCE_IOC
                            and tif != LS_TIME_IN_FORCE_POST_ONLY)
                           or (otype != LS_ORD_TYPE_LIMIT and otype != LS_ORD_TYPE_MARKET)
                           or (otype == LS_ORD_TYPE_MARKET and tif == LS_TIME_IN_FORCE_POST_ONLY)):
            reason = R_BAD_TYPE
        if not reason and self._find_order(c.client_order_id) >= 0:
            reason = LS_DENY_REASON_DUPLICATE
        if not reason and tif == LS_TIME_IN_FORCE_POST_ONLY and self._crosses(ii, c.side, c.price):
            reason = R_POST_ONLY_WOULD_CROSS
        if not reason and self.live.n >= self.live.cap and tif != LS_TIME_IN_FORCE_IOC \
                and otype != LS_ORD_TYPE_MARKET:
            reason = LS_DENY_REASON_ORDER_TABLE_FULL
        if reason:
            self._reject(LS_EXEC_TYPE_REJECTED, t, c, reason)
            return 0
        memset(&o, 0, sizeof(o))
        o.coid = c.client_order_id
        o.voi = self.next_voi
        self.next_voi += 1
        o.inst = ii
        o.side = c.side
        o.price = c.price if otype == LS_ORD_TYPE_LIMIT else 0
        o.qty = c.qty
        o.tif = tif
        o.ord_type = otype
        self._event(LS_EXEC_TYPE_ACCEPTED, t, &o)
        self._take(&o, t)
        if o.cum < o.qty:
            if otype == LS_ORD_TYPE_MARKET or tif == LS_TIME_IN_FORCE_IOC:
                self._event(LS_EXEC_TYPE_CANCELED, t, &o)
            else:
                self._rest(&o)
        return 0

    cdef int _cancel(self, const ls_order_cmd_t *c, int64_t t) noexcept nogil:
        cdef int64_t k = self._find_order(c.client_order_id)
        cdef me_order_t o
        if k < 0:
            self._reject(LS_EXEC_TYPE_CANCEL_REJECTED, t, c, LS_DENY_REASON_UNKNOWN_ORDER)
            return 0
        o = self.live.slot[k]
        self._remove_at(k)
        self._event(LS_EXEC_TYPE_CANCELED, t, &o)
        return 0

    cdef int _status(self, const ls_order_cmd_t *c, int64_t t) noexcept nogil:
        """OrderStatusRequest: EXEC ORDER_STATUS with the live order's state (reason 0), or reason 1
        when no live order has the id (or the replace id in orig_client_order_id): this engine
        forgets orders once they end, and their final event was sent before this answer."""
        cdef int64_t k = self._find_order(c.client_order_id)
        cdef ls_exec_t *e
        if k < 0 and c.orig_client_order_id != 0:
            k = self._find_order(c.orig_client_order_id)
        if k >= 0:
            e = self._event(LS_EXEC_TYPE_ORDER_STATUS, t, &self.live.slot[k])
        else:
            e = self._blank(LS_EXEC_TYPE_ORDER_STATUS, t)
            if e != NULL:
                e.instrument = c.instrument
                e.client_order_id = c.client_order_id
                e.orig_client_order_id = c.orig_client_order_id
                e.price = c.price
                e.qty = c.qty
                e.side = c.side
                e.reason = 1
        if e != NULL:
            e.exec_id = 0       # not an execution: no exec id (a fill is never derived from it)
            e.exec_id_hi = 0
        return 0

    cdef int _replace(self, const ls_order_cmd_t *c, int64_t t) noexcept nogil:
        cdef int64_t k = self._find_order(c.orig_client_order_id)
        cdef uint16_t reason = 0
        cdef me_order_t *o = NULL
        cdef me_order_t moved
        cdef ls_exec_t *e
        cdef bint keep_place
        if k < 0:
            reason = LS_DENY_REASON_UNKNOWN_ORDER
        else:
            o = &self.live.slot[k]
            reason = self._validate(o.inst, c.price, c.qty, o.ord_type)
            if not reason and c.client_order_id != c.orig_client_order_id \
                    and self._find_order(c.client_order_id) >= 0:
                reason = LS_DENY_REASON_DUPLICATE
            if not reason and c.qty <= o.cum:
                reason = R_QTY_BELOW_FILLED
            if not reason and o.tif == LS_TIME_IN_FORCE_POST_ONLY and c.price != o.price \
                    and self._crosses(o.inst, o.side, c.price):
                reason = R_POST_ONLY_WOULD_CROSS
        if reason:
            e = self._reject(LS_EXEC_TYPE_CANCEL_REJECTED, t, c, reason)
            if e != NULL:
                e.orig_client_order_id = c.orig_client_order_id
                if o != NULL:
                    e.venue_order_id = o.voi
                    e.cum_qty = o.cum
                    e.leaves_qty = o.qty - o.cum
                    e.side = o.side
            return 0
        keep_place = c.price == o.price and c.qty <= o.qty
        if keep_place:
            me_orders_unindex(&self.live, o.coid)
            o.coid = c.client_order_id
            o.qty = c.qty
            me_orders_index(&self.live, o.coid, k)
            e = self._event(LS_EXEC_TYPE_REPLACED, t, o)
            if e != NULL:
                e.orig_client_order_id = c.orig_client_order_id
            return 0
        moved = o[0]
        self._remove_at(k)
        moved.coid = c.client_order_id
        moved.price = c.price
        moved.qty = c.qty
        e = self._event(LS_EXEC_TYPE_REPLACED, t, &moved)
        if e != NULL:
            e.orig_client_order_id = c.orig_client_order_id
        self._take(&moved, t)
        if moved.cum < moved.qty:
            self._rest(&moved)
        return 0

    cdef int cancel_all(self, int64_t now) noexcept nogil:
        """Cancel-on-disconnect: drop the commands in flight and cancel every resting order at ``now``."""
        cdef me_order_t o
        self.pend_n = 0
        self.pend_head = 0
        while self.live.first >= 0:
            o = self.live.slot[self.live.first]
            self._remove_at(self.live.first)
            self._event(LS_EXEC_TYPE_CANCELED, now, &o)
        return 0

    # ------------------------------------------------------------------------------------------
    # Python surface (batch entry points: one call per array of records)
    def _check(self):
        if self.oom:
            raise MemoryError("matching engine: out of memory (events or levels not recorded)")

    def submit(self, cmds):
        """Queue ORDER_CMD records (a structured array of ``DTYPES["ORDER_CMD"]`` or 64-byte slots)."""
        arr = np.ascontiguousarray(cmds)
        if arr.dtype.itemsize != 64:
            raise ValueError(f"submit: 64-byte ORDER_CMD records expected, got {arr.dtype.itemsize}")
        cdef const uint8_t *p = <const uint8_t *>cnp.PyArray_DATA(arr)
        cdef Py_ssize_t n = arr.size, k
        with nogil:
            for k in range(n):
                self.submit_cmd(p + k * 64)
        self._check()

    def on_market(self, recs, times=None):
        """Apply 64-byte market-data records in order; each at engine time ``times[k]`` when given,
        else at its ``ts_event``. Commands arriving before a record are processed first."""
        arr = np.ascontiguousarray(recs)
        if arr.dtype.itemsize != 64:
            raise ValueError(f"on_market: 64-byte MD records expected, got {arr.dtype.itemsize}")
        cdef Py_ssize_t n = arr.size, k
        if n == 0:
            return
        cdef const uint8_t *p = <const uint8_t *>cnp.PyArray_DATA(arr)
        cdef cnp.ndarray tarr
        cdef const int64_t *tp = NULL
        if times is not None:
            tarr = np.ascontiguousarray(times, dtype=np.int64)
            if tarr.shape[0] != n:
                raise ValueError("on_market: one time per record")
            tp = <const int64_t *>cnp.PyArray_DATA(tarr)
        with nogil:
            for k in range(n):
                self.on_md(p + k * 64, tp[k] if tp != NULL else (<const ls_md_level_t *>(p + k * 64)).ts_event)
        self._check()

    def advance(self, int64_t now):
        """Process the commands that have arrived by ``now``."""
        with nogil:
            self.advance_to(now)
        self._check()

    def poll(self, out, int64_t now):
        """Process commands due by ``now``, then move the events delivered by ``now`` (header ``ts``
        <= ``now``) into ``out`` (EXEC records, 128 bytes each); returns how many."""
        if out.dtype.itemsize != 128 or not out.flags.c_contiguous:
            raise ValueError("poll: a contiguous array of 128-byte EXEC records expected")
        cdef uint8_t *p = <uint8_t *>cnp.PyArray_DATA(out)
        cdef Py_ssize_t cap = out.shape[0], n = 0
        with nogil:
            self.advance_to(now)
            while n < cap and self.out_n and self.out[self.out_head].ts <= now:
                self.pop_event(p + n * 128)
                n += 1
        self._check()
        return n

    def cancel_everything(self, int64_t now):
        """Cancel-on-disconnect (see ``cancel_all``)."""
        with nogil:
            self.cancel_all(now)
        self._check()

    def run_commands(self, cmds, out=None):
        """Benchmark / batch entry: each command arrives and is processed at once (at its ``ts``,
        latency not applied), and the events are drained into ``out`` (reused cyclically) or
        dropped. Returns the number of events generated."""
        arr = np.ascontiguousarray(cmds)
        if arr.dtype.itemsize != 64:
            raise ValueError("run_commands: 64-byte ORDER_CMD records expected")
        cdef const uint8_t *p = <const uint8_t *>cnp.PyArray_DATA(arr)
        cdef Py_ssize_t n = arr.size, k
        cdef uint8_t scratch[128]
        cdef uint64_t before = self.n_events
        cdef const ls_order_cmd_t *c
        with nogil:
            for k in range(n):
                c = <const ls_order_cmd_t *>(p + k * 64)
                self._process(c, c.ts if c.ts > self.market_ts else self.market_ts)
                while self.pop_event(scratch):
                    pass
        self._check()
        return int(self.n_events - before)

    def set_exec_epoch(self, int64_t epoch):
        """``exec_id_hi`` of the events generated from now on (>= 1)."""
        if epoch < 1:
            raise ValueError("exec_epoch must be >= 1")
        self.exec_epoch = epoch

    # --- inspection (tests, snapshots; not the hot path) ---------------------------------------
    @property
    def pending(self):
        return int(self.pend_n)

    @property
    def undelivered(self):
        return int(self.out_n)

    @property
    def next_arrival_ns(self):
        return int(self.next_arrival())

    @property
    def next_delivery_ns(self):
        return int(self.next_delivery())

    def live_orders(self):
        """Our live resting orders in time priority: a list of dicts."""
        cdef int64_t k
        cdef me_order_t o
        res = []
        k = self.live.first
        while k >= 0:
            o = self.live.slot[k]
            k = o.next
            res.append({"coid": o.coid, "voi": o.voi, "inst": int(self.insts[o.inst].id), "side": o.side,
                         "price": o.price, "qty": o.qty, "cum": o.cum, "ahead": o.ahead, "tif": o.tif,
                         "ord_type": o.ord_type})
        return res

    def book(self, uint32_t instrument):
        """(bids, asks): lists of (price, qty), best first, of the public book."""
        cdef int64_t ii = self._inst_index(instrument)
        cdef int64_t k
        cdef int s
        if ii < 0:
            raise KeyError(instrument)
        cdef me_ladder_t *L
        res = []
        for s in range(2):
            L = &self.insts[ii].book[s]
            side = [(L.slot[k].px, L.slot[k].qty) for k in range(<int64_t>L.mask + 1) if L.slot[k].qty != 0]
            side.sort(reverse=(s == BIDS))
            res.append(side)
        return res[0], res[1]

    def counters(self):
        return {"commands": int(self.n_commands), "events": int(self.n_events), "fills": int(self.n_fills),
                "rejects": int(self.n_rejects), "md": int(self.n_md), "resting": int(self.live.n),
                "pending": int(self.pend_n), "undelivered": int(self.out_n)}
