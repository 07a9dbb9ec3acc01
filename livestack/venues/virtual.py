"""The simulated venue process on virtual time: the clock is the timestamps of its inputs.

``livestack backtest`` runs the core and the matching engine in one process as a discrete-event
simulation on the capture's timeline (``livestack/backtest/sim.pyx``). This loop runs the same
simulation with the core in another process -- the harness, over the real rings -- so that the
same capture, strategy and latency settings give the same fills:

::

    venue (this loop)                                   harness (any speed)
    ─────────────────                                   ───────────────────
    next event = earliest of, on equal times in this order:
      0. market record k applied to the engine  (its ts_event)
      1. commands arriving at the engine        (cmd.ts + order latency)
      2. exec events due at the core            (their ts) ──exec.<venue>──▶ process, dispatch
      3. market records due at the core         (their ts) ──md.<feed>────▶ process, dispatch
                                                                              │
    after 2 or 3: wait until the harness has released every record we wrote ◀┘ orders.<venue>
    (its consumer positions reach our producer positions), then read every command it sent.

The lock step needs one property of the harness: it releases an input only after writing
everything the input caused into its output rings (``harness/loop.pyx``, ``consume``), so once our
records are released the commands they caused are in ``orders.<venue>``. The harness must not
inject inputs of its own on the wall clock meanwhile (timer ticks: give it a timer interval longer
than the run, or run no timer-driven strategy), and the order and response latencies must be >= 1
ns (a command the core sends at time t then arrives after every event of time t, in both runs).

Events of one kind and one instant go out as one batch; the harness sees exec events of an instant
before the market data of that instant, as the backtest delivers them.

When the market is over, nothing is in flight and the harness has answered everything, the loop
sets the ``replay_done`` counter and idles until stopped.
"""

from __future__ import annotations

import time

import numpy as np

from livestack.feeds import sim as fsim
from livestack.ipc import Backoff
from livestack.schema import DTYPES, ExecType

_INF = 2**63 - 1
_FILLS = (int(ExecType.PARTIALLY_FILLED), int(ExecType.FILLED))


class _MarketBuffer:
    """Market records drawn from the venue's source, applied to the engine (index ``applied``) and
    delivered to the harness (index ``delivered``), with the md latency already stamped."""

    def __init__(self, ex, chunk: int):
        self.ex = ex
        self.chunk = chunk
        self.recs = fsim.md_records(0)
        self.applied = 0
        self.delivered = 0

    def _refill(self) -> None:
        src = self.ex.source
        if src is None or getattr(src, "done", True):
            return
        recs = src.generate(self.chunk)
        if not len(recs):
            return
        recs = self.ex._stamp_md(recs)
        keep = self.recs[self.delivered:]
        self.applied -= self.delivered
        self.delivered = 0
        self.recs = np.concatenate([keep, recs]) if len(keep) else recs

    def next_apply(self) -> int:
        if self.applied >= len(self.recs):
            self._refill()
        return int(self.recs["ts_event"][self.applied]) if self.applied < len(self.recs) else _INF

    def next_delivery(self) -> int:
        return int(self.recs["ts"][self.delivered]) if self.delivered < self.applied else _INF

    def run_of(self, start: int, end: int, field: str, t: int) -> int:
        """End of the run of records from ``start`` (< ``end``) whose ``field`` equals ``t``."""
        col = self.recs[field]
        return start + int(np.searchsorted(col[start:end], t, side="right"))

    @property
    def exhausted(self) -> bool:
        src = self.ex.source
        return (src is None or getattr(src, "done", True)) and self.delivered >= len(self.recs)


def run_virtual_loop(venue, orders, execs, md, options: dict, stop, counters, should_stop, watch) -> dict:
    """Run the simulated venue ``venue`` (``venues.sim._SimVenue``) in lock step with the harness
    until stopped; returns the final counters. ``orders``, ``execs``, ``md``: the attached rings;
    ``watch``: a ``HarnessWatch`` (harness death ends the loop with cancel-on-disconnect)."""
    ex = venue.ex
    eng = ex.engine
    pub = venue.pub
    c = counters
    batch = int(options.get("batch", 256))
    cmd_buf = np.zeros(batch, dtype=DTYPES["ORDER_CMD"])
    exec_buf = np.zeros(max(batch, 1024), dtype=DTYPES["EXEC"])
    backoff = Backoff("backoff", spins=int(options.get("idle_spins", 100)),
                      yields=int(options.get("idle_yields", 10)),
                      max_sleep_ns=int(options.get("idle_max_sleep_ns", 1_000_000)))
    market = _MarketBuffer(ex, int(options.get("md_chunk", 512)))
    seq = int(execs.tail)
    dirty = True  # we wrote something the harness may not have answered yet
    lost = False

    def stopping() -> bool:
        return (stop is not None and stop.is_set()) or (should_stop is not None and should_stop())

    def write_all(ring, recs) -> bool:
        """Write every record (waiting for room); False when told to stop first."""
        off = 0
        while off < len(recs):
            k = ring.write_batch(recs[off:])
            off += k
            if off < len(recs):
                c.add("exec_full_waits")
                if stopping():
                    return False
                backoff.idle()
        backoff.reset()
        return True

    def quiesce() -> bool:
        """Wait until the harness released everything we wrote; then take every command it sent.
        False when stopping or the harness is gone."""
        nonlocal lost
        while (md is not None and md.head != md.tail) or execs.head != execs.tail:
            if stopping():
                return False
            if watch.lost(time.monotonic_ns()):
                lost = True
                return False
            c.add("idle")
            backoff.idle()
        backoff.reset()
        while True:
            n = orders.read(cmd_buf)
            if not n:
                return True
            c.add("commands", n)
            ex.submit(cmd_buf[:n])

    try:
        while True:
            if stopping():
                break
            c.add("loops")
            if dirty:
                if not quiesce():
                    break
                dirty = False
            ta = market.next_apply()
            tc = eng.next_arrival_ns
            te = eng.next_delivery_ns
            td = market.next_delivery()
            if ta != _INF and ta <= tc and ta <= te and ta <= td:
                # 0. the market moves at the venue (every record of this instant)
                end = market.run_of(market.applied, len(market.recs), "ts_event", ta)
                ex.on_market(market.recs[market.applied:end])
                market.applied = end
            elif tc != _INF and tc <= te and tc <= td:
                # 1. commands arrive at the venue
                eng.advance(tc)
            elif te != _INF and te <= td:
                # 2. execution events of this instant go to the harness
                n = eng.poll(exec_buf, te)
                w = exec_buf[:n]
                w["seq"] = np.arange(seq + 1, seq + 1 + n, dtype=np.uint64)
                seq += n
                if not write_all(execs, w):
                    break
                c.add("events", n)
                et = w["exec_type"]
                c.add("fills", int(np.count_nonzero((et == _FILLS[0]) | (et == _FILLS[1]))))
                dirty = True
            elif td != _INF:
                # 3. market records of this instant go to the harness
                end = market.run_of(market.delivered, market.applied, "ts", td)
                recs = market.recs[market.delivered:end]
                if pub.ring.free() < len(recs):
                    backoff.idle()
                    continue
                pub.publish(recs.copy())
                market.delivered = end
                c.set("md_records", pub.published)
                dirty = True
            else:
                # the market is over and nothing is in flight: idle, answering late commands
                if market.exhausted:
                    c.set("replay_done", 1)
                if watch.lost(time.monotonic_ns()):
                    lost = True
                    break
                n = orders.read(cmd_buf)
                if n:
                    c.add("commands", n)
                    ex.submit(cmd_buf[:n])
                    backoff.reset()
                else:
                    c.add("idle")
                    backoff.idle()
    finally:
        if lost:
            c.set("harness_lost", 1)
    return {"lost": lost, "exec_seq": seq}
