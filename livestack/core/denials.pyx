# cython: language_level=3
"""Denials coalescing: consecutive denials of one reason on one instrument are a *run*.

A strategy re-asking every tick against a rate limit makes millions of denials (110M of 197M
records in a 10-minute soak before this). The run's first denial is recorded at once (count 1);
its repeats are only counted, and written as ONE denial carrying the last repeat's fields and
``count`` = the repeats when the run ends (an order goes out on the instrument, or a denial of
another reason), at every timer input and at session stop. ``sum(count)`` = every denial.

This module keeps the runs; the core (``Core._deny``) decides when to write and writes the
DENIAL records. All of it is driven by inputs: replay reproduces it bit for bit.
"""

from libc.stdlib cimport malloc, free
from libc.stdint cimport int64_t, UINT32_MAX


cdef int denial_runs_init(DenialRuns *runs, int64_t n_inst) except -1:
    cdef int64_t i
    runs.n_inst = n_inst
    runs.run_reason = <int64_t *>malloc(n_inst * sizeof(int64_t))
    runs.repeats = <int64_t *>malloc(n_inst * sizeof(int64_t))
    runs.last_repeat = <Denial *>malloc(n_inst * sizeof(Denial))
    runs.pending = 0
    if runs.run_reason == NULL or runs.repeats == NULL or runs.last_repeat == NULL:
        denial_runs_free(runs)
        raise MemoryError()
    for i in range(n_inst):
        runs.run_reason[i] = -1
        runs.repeats[i] = 0
    return 0


cdef void denial_runs_free(DenialRuns *runs) noexcept nogil:
    free(runs.run_reason)
    free(runs.repeats)
    free(runs.last_repeat)
    runs.run_reason = NULL
    runs.repeats = NULL
    runs.last_repeat = NULL


cdef bint denial_repeat(DenialRuns *runs, int64_t i, const Denial *d) noexcept nogil:
    """Count ``d`` as a repeat of instrument i's run; 0 when it is not one (another reason, no
    run, or the run's count would overflow the record's u32: the caller writes what is pending
    with :func:`denial_take_repeats`, starts a run and records ``d`` itself)."""
    if runs.run_reason[i] != d.reason or runs.repeats[i] >= <int64_t>UINT32_MAX:
        return 0
    if runs.repeats[i] == 0:
        runs.pending += 1
    runs.last_repeat[i] = d[0]
    runs.repeats[i] += 1
    return 1


cdef bint denial_take_repeats(DenialRuns *runs, int64_t i, Denial *out) noexcept nogil:
    """Instrument i's uncounted repeats as one Denial in ``out`` (1), or nothing to write (0).
    The run goes on."""
    if runs.repeats[i] == 0:
        return 0
    out[0] = runs.last_repeat[i]
    out.reason = runs.run_reason[i]
    out.count = runs.repeats[i]
    runs.repeats[i] = 0
    runs.pending -= 1
    return 1


cdef void denial_start_run(DenialRuns *runs, int64_t i, int64_t reason) noexcept nogil:
    runs.run_reason[i] = reason


cdef bint denial_end_run(DenialRuns *runs, int64_t i, Denial *out) noexcept nogil:
    """An order goes out on instrument i: its run is over. Its repeats, if any, in ``out`` (1)."""
    cdef bint got = 0
    if runs.run_reason[i] >= 0:
        got = denial_take_repeats(runs, i, out)
        runs.run_reason[i] = -1
    return got
