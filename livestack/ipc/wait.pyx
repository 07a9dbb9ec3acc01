# cython: language_level=3
"""Waiting strategies for processes other than the harness.

Only the harness busy-spins. On a 2-core machine a second spinner multiplies the harness's latency
by orders of magnitude, so feeds, venues and the writer wait with ``backoff``: spin a little,
then ``sched_yield``, then sleep with exponentially growing intervals up to a cap. ``spin`` is for
benchmarks on machines with spare isolated cores.
"""

from posix.time cimport nanosleep, timespec

cdef extern from "<sched.h>" nogil:
    int sched_yield()

cdef extern from "ls_atomic.h" nogil:
    void ls_cpu_relax()

POLICIES = ("spin", "backoff")


cdef class Backoff:
    """Idle strategy: call :meth:`idle` each time there was nothing to do, :meth:`reset` after work.

    Parameters
    ----------
    policy : {"backoff", "spin"}
    spins : int
        Iterations of the CPU pause instruction before yielding.
    yields : int
        ``sched_yield`` calls before sleeping.
    min_sleep_ns, max_sleep_ns : int
        First sleep, and the cap of the doubling sleeps.
    """
    cdef readonly str policy
    cdef int _spin
    cdef readonly long spins, yields, min_sleep_ns, max_sleep_ns
    cdef long count
    cdef long sleep_ns

    def __init__(self, str policy="backoff", long spins=100, long yields=10,
                 long min_sleep_ns=1000, long max_sleep_ns=1000000):
        if policy not in POLICIES:
            raise ValueError(f"wait policy {policy!r}: expected one of {POLICIES}")
        if spins < 0 or yields < 0 or min_sleep_ns <= 0 or max_sleep_ns < min_sleep_ns:
            raise ValueError("backoff: spins, yields >= 0 and 0 < min_sleep_ns <= max_sleep_ns")
        self.policy = policy
        self._spin = policy == "spin"
        self.spins = spins
        self.yields = yields
        self.min_sleep_ns = min_sleep_ns
        self.max_sleep_ns = max_sleep_ns
        self.reset()

    cpdef void reset(self) noexcept:
        self.count = 0
        self.sleep_ns = self.min_sleep_ns

    cpdef void idle(self) noexcept:
        cdef timespec ts
        if self._spin:
            ls_cpu_relax()
            return
        if self.count < self.spins:
            ls_cpu_relax()
        elif self.count < self.spins + self.yields:
            with nogil:
                sched_yield()
        else:
            ts.tv_sec = self.sleep_ns // 1000000000
            ts.tv_nsec = self.sleep_ns % 1000000000
            with nogil:
                nanosleep(&ts, NULL)
            if self.sleep_ns < self.max_sleep_ns:
                self.sleep_ns = min(self.sleep_ns * 2, self.max_sleep_ns)
        self.count += 1
