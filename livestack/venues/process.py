"""The venue process loop: the part of every venue process that is not venue-specific.

::

    orders.<venue> ──ORDER_CMD──▶ adapter.submit(batch)
                                  adapter.service(now)        (optional: e.g. the simulated venue
                                                               publishes market data here)
    exec.<venue>  ◀──EXEC──────── adapter.poll(out, now)

One thread, one loop, in that order, until the stop event is set, SIGTERM arrives (the entry point
installs the handler), or the harness dies. It never busy-spins: an iteration with nothing to do
idles on ``Backoff("backoff")``.

Policies (docs/CONTRACTS.md, ARCHITECTURE.md "Full-ring and failure policy"):

* **exec ring full**: venue feedback is never dropped. The unwritten EXEC records stay in the
  loop's own buffer, in order, and are retried every iteration (the loop keeps reading orders and
  servicing the adapter meanwhile, and stops calling ``poll`` until the buffer is written). Each
  iteration that finds the ring full counts ``exec_full_waits``; the wait is bounded only by
  stopping.
* **harness death**: with option ``harness_pid`` the loop checks every ``harness_check_s``
  (default 0.05 s) that the process exists and is not a zombie (psutil). When it is gone:
  ``adapter.on_harness_lost()`` (cancel-on-disconnect), the resulting events are written to the
  exec ring (whoever attaches next reads them; bounded by ``lost_flush_s``), then the loop stops.
* **stop / SIGTERM**: orderly: the records already polled are flushed (bounded by ``lost_flush_s``),
  ``adapter.stop()`` runs, the loop returns.
* **restart of a venue that keeps orders in-process** (``adapter.state_lost_on_restart``, the
  simulated exchange): when the orders ring shows commands taken before this process started
  (consumer position > 0), the first EXEC written is VENUE_RESET with ``venue_order_id`` = that
  position. The core ends CANCELED every order whose NewOrder the old process took; the commands
  still in the ring are answered by this process as usual.

Counters (``COUNTERS``) are int64 slots of a :class:`VenueCounters`: by default a private numpy
array, or -- pass ``options["counters"]`` = ``multiprocessing.Array("q", len(COUNTERS))`` from the
supervisor -- shared memory the parent reads while the venue runs (``VenueCounters(arr).as_dict()``).
``run_loop`` also returns the final values as a dict.

The ``seq`` of every EXEC record written is stamped here: the exec ring's own sequence 1, 2, 3...
(continued across a restart of the venue process: it starts after the ring's producer position).
"""

from __future__ import annotations

import signal
import time

import numpy as np

from livestack.ipc import Backoff, Ring
from livestack.schema import DTYPES, ExecType, RecordKind, spec

_EXEC_VERSION = spec.RECORDS_BY_NAME["EXEC"].version

#: Counter names, in slot order.
COUNTERS = (
    "commands",          # ORDER_CMD records read from the orders ring
    "events",            # EXEC records written to the exec ring
    "fills",             # of which PARTIALLY_FILLED / FILLED
    "rejects",           # of which REJECTED / CANCEL_REJECTED
    "exec_full_waits",   # loop iterations that found the exec ring full with records waiting
    "loops",             # loop iterations
    "idle",              # iterations with nothing to do (backoff)
    "harness_lost",      # 1 once cancel-on-disconnect ran
    "md_records",        # market-data records published (adapters that publish md)
    "md_overflow",       # market-data records dropped on a full md ring
    "md_gaps",           # GAP episodes (each followed by a snapshot)
    "venue_resets",      # VENUE_RESET events written (a restart of an in-process venue)
    "replay_done",       # 1 once a virtual-time simulated venue has replayed its whole market
)
_IDX = {n: i for i, n in enumerate(COUNTERS)}

_FILL = (int(ExecType.PARTIALLY_FILLED), int(ExecType.FILLED))
_REJ = (int(ExecType.REJECTED), int(ExecType.CANCEL_REJECTED))


class VenueCounters:
    """Named int64 counters over any buffer of ``len(COUNTERS)`` int64s (numpy array,
    ``multiprocessing.Array("q", n)``); only the venue process writes them."""

    def __init__(self, buf=None):
        if buf is None:
            self.arr = np.zeros(len(COUNTERS), dtype=np.int64)
        else:
            obj = buf.get_obj() if hasattr(buf, "get_obj") else buf
            self.arr = np.frombuffer(obj, dtype=np.int64, count=len(COUNTERS))

    def add(self, name: str, n: int = 1) -> None:
        self.arr[_IDX[name]] += n

    def set(self, name: str, v: int) -> None:
        self.arr[_IDX[name]] = v

    def __getitem__(self, name: str) -> int:
        return int(self.arr[_IDX[name]])

    def as_dict(self) -> dict[str, int]:
        return {n: int(v) for n, v in zip(COUNTERS, self.arr.tolist())}


class HarnessWatch:
    """Cheap liveness check of the harness process: at most one psutil call per ``interval_s``."""

    def __init__(self, pid: int | None, interval_s: float = 0.05):
        self.pid = pid
        self.interval_ns = int(interval_s * 1e9)
        self._next = 0
        self._proc = None
        if pid:
            import psutil

            try:
                self._proc = psutil.Process(pid)
            except psutil.NoSuchProcess:
                self._proc = None

    def lost(self, mono_ns: int) -> bool:
        """True once the watched process is gone (exited, killed, zombie); False without a pid."""
        if not self.pid:
            return False
        if mono_ns < self._next:
            return False
        self._next = mono_ns + self.interval_ns
        import psutil

        if self._proc is None:
            return True
        try:
            return not self._proc.is_running() or self._proc.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True


class _Term:
    """SIGTERM flag (installed only in the main thread of the process)."""

    def __init__(self):
        self.flag = False

    def install(self) -> None:
        try:
            signal.signal(signal.SIGTERM, self._handler)
        except ValueError:  # not the main thread (tests driving the loop in a thread)
            pass

    def _handler(self, *_):
        self.flag = True


def run_loop(adapter, orders: Ring, execs: Ring, options: dict | None = None, stop=None,
             counters: VenueCounters | None = None, should_stop=None) -> dict[str, int]:
    """Run ``adapter`` over the rings until stopped; returns the final counters.

    Parameters
    ----------
    adapter : VenueAdapter
        ``start()`` is called first and ``stop()`` last. Optional duck-typed extras:
        ``now_ns()`` (the adapter's clock, default ``time.time_ns``; the simulated venue runs on
        simulated time) and ``service(now_ns) -> int`` (work besides orders, e.g. publishing
        market data; returns how much it did, 0 = idle).
    orders, execs : Ring
        Attached ``orders.<venue>`` (ORDER_CMD) and ``exec.<venue>`` (EXEC) rings.
    options : dict
        ``harness_pid`` (None), ``harness_check_s`` (0.05), ``batch`` (256 commands / events
        per call), ``lost_flush_s`` (1.0: bound on flushing events after harness loss / stop),
        ``idle_spins`` (100), ``idle_yields`` (10), ``idle_max_sleep_ns`` (1_000_000): the idle
        backoff (spin, then sched_yield, then doubling sleeps from 1 us up to the cap).
    stop : multiprocessing.Event, optional
    counters : VenueCounters, optional
    should_stop : callable, optional
        Extra stop condition polled every iteration (the entry point's SIGTERM flag).
    """
    options = options or {}
    c = counters if counters is not None else VenueCounters()
    batch = int(options.get("batch", 256))
    cmd_buf = np.zeros(batch, dtype=DTYPES["ORDER_CMD"])
    exec_buf = np.zeros(batch, dtype=DTYPES["EXEC"])
    watch = HarnessWatch(options.get("harness_pid"), float(options.get("harness_check_s", 0.05)))
    flush_s = float(options.get("lost_flush_s", 1.0))
    clock = getattr(adapter, "now_ns", None) or time.time_ns
    service = getattr(adapter, "service", None)
    delivered = getattr(adapter, "delivered", None)
    backoff = Backoff("backoff", spins=int(options.get("idle_spins", 100)),
                      yields=int(options.get("idle_yields", 10)),
                      max_sleep_ns=int(options.get("idle_max_sleep_ns", 1_000_000)))
    state = {"seq": int(execs.tail), "pend": 0, "off": 0}  # exec seq; exec_buf[off:pend] unwritten
    cmd_ok = orders.record_kind in (0, int(RecordKind.ORDER_CMD))
    if not cmd_ok:
        raise ValueError(f"{orders.name}: record kind {orders.record_kind} is not ORDER_CMD")

    def flush() -> bool:
        """Write what is pending; True when nothing is left."""
        off, pend = state["off"], state["pend"]
        if off == pend:
            return True
        k = execs.write_batch(exec_buf[off:pend])
        if k and delivered is not None:
            delivered(k)  # the adapter's own record of what reached the core (binance: its journal)
        if k:
            w = exec_buf[off:off + k]
            c.add("events", k)
            et = w["exec_type"]
            c.add("fills", int(np.count_nonzero((et == _FILL[0]) | (et == _FILL[1]))))
            c.add("rejects", int(np.count_nonzero((et == _REJ[0]) | (et == _REJ[1]))))
        state["off"] = off + k
        if off + k < pend:
            c.add("exec_full_waits")
            return False
        state["off"] = state["pend"] = 0
        return True

    def poll(now: int) -> int:
        n = adapter.poll(exec_buf, now)
        if n:
            s = state["seq"]
            exec_buf["seq"][:n] = np.arange(s + 1, s + 1 + n, dtype=np.uint64)
            state["seq"] = s + n
            state["pend"] = n
            state["off"] = 0
        return n

    def drain(deadline_mono: float, now_fn) -> None:
        """Poll and flush until the adapter has nothing more or the deadline passes."""
        b = Backoff("backoff")
        while time.monotonic() < deadline_mono:
            if not flush():
                b.idle()
                continue
            if poll(now_fn()) == 0:
                return

    adapter.start()
    taken = int(orders.head)  # consumer position: commands the previous processes took
    if getattr(adapter, "state_lost_on_restart", False) and taken > 0:
        r = exec_buf[0]
        r["kind"], r["version"] = int(RecordKind.EXEC), _EXEC_VERSION
        r["instrument"], r["client_order_id"] = 0, 0
        r["exec_type"], r["venue_order_id"] = int(ExecType.VENUE_RESET), taken
        r["ts"] = clock()
        state["seq"] += 1
        r["seq"] = state["seq"]
        state["pend"], state["off"] = 1, 0
        c.add("venue_resets")
    lost = False
    try:
        while True:
            if (stop is not None and stop.is_set()) or (should_stop is not None and should_stop()):
                break
            if watch.lost(time.monotonic_ns()):
                lost = True
                break
            c.add("loops")
            work = 0
            n = orders.read(cmd_buf)
            if n:
                c.add("commands", n)
                adapter.submit(cmd_buf[:n])
                work += n
            now = clock()
            if service is not None:
                work += service(now)
            if flush():
                work += poll(now)
                flush()
            if work:
                backoff.reset()
            else:
                c.add("idle")
                backoff.idle()
        if lost:
            adapter.on_harness_lost()
            c.set("harness_lost", 1)
            # cancel-on-disconnect events: deliver everything now (no response latency to wait on)
            drain(time.monotonic() + flush_s, lambda: clock() + 10**12)
        else:
            drain(time.monotonic() + flush_s, clock)
    finally:
        adapter.stop()
    return c.as_dict()


def run_adapter_process(adapter, orders_ring: str, exec_ring: str, options: dict, stop) -> dict[str, int]:
    """Attach the rings, install the SIGTERM handler and run ``adapter`` (used by venue modules'
    ``run_process``). ``options["counters"]`` may be a shared ``multiprocessing.Array``."""
    term = _Term()
    term.install()
    attach_s = float(options.get("attach_timeout_s", 10.0))
    orders = Ring.attach(orders_ring, slot_size=64, timeout=attach_s, role="consumer")
    execs = Ring.attach(exec_ring, slot_size=128, timeout=attach_s, role="producer")
    counters = VenueCounters(options.get("counters"))
    from livestack.telemetry import procmetrics  # its counters in /metrics (a mirror thread)

    kind = getattr(adapter, "metrics_name", type(adapter).__name__.lower().removesuffix("adapter"))
    metrics = procmetrics.start(exec_ring, f"venue.{kind}", procmetrics.venue_updater(counters, adapter),
                                {"venue": kind})
    try:
        return run_loop(adapter, orders, execs, options, stop, counters, lambda: term.flag)
    finally:
        if metrics is not None:
            metrics.stop()
        orders.close()
        execs.close()

