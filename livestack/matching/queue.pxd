"""Queue position of our resting orders: the rule, in integers (inline functions, no ``.pyx``).

The model is the one hftbacktest calls its probabilistic queue model, with a linear probability
(``ProbQueueModel`` with f(x) = x; see also its ``RiskAdverseQueueModel``, which ignores cancels):

* **join**: a new order rests behind everything displayed at its price: ``ahead = displayed``.
* **trade at our price** of ``q``: the queue in front trades first; ``ahead -= q`` (not below 0),
  and what is left of ``q`` after ``ahead`` (and after our own earlier orders there) fills us.
* **level decrease** ``old -> new`` that the trades there since the level's last update do not
  explain: ``cancel = old - new - traded``. A cancel is equally likely anywhere in the queue, so
  the share in front of us is ``ahead / old``: ``ahead -= cancel * ahead // old`` (128-bit product).
* **level increase**: new orders join behind us; ``ahead`` is unchanged.
* ``ahead`` never exceeds the displayed quantity.
"""

from libc.stdint cimport int64_t

cdef extern from *:
    """
    static inline int64_t me_muldiv(int64_t a, int64_t b, int64_t c) {
        return (int64_t)(((__int128)a * (__int128)b) / (__int128)c);
    }
    """
    int64_t me_muldiv(int64_t a, int64_t b, int64_t c) nogil


cdef inline int64_t me_queue_join(int64_t displayed) noexcept nogil:
    return displayed if displayed > 0 else 0


cdef inline int64_t me_queue_level(int64_t ahead, int64_t old, int64_t new, int64_t traded) noexcept nogil:
    """``ahead`` after the level went ``old`` -> ``new`` with ``traded`` traded there meanwhile."""
    cdef int64_t cancel
    if old > 0 and new < old:
        cancel = old - new - traded
        if cancel > 0:
            ahead -= me_muldiv(cancel, ahead, old)
    if ahead > new:
        ahead = new
    return ahead if ahead > 0 else 0


cdef inline int64_t me_queue_trade(int64_t *ahead, int64_t qty, int64_t used) noexcept nogil:
    """A public trade of ``qty`` at our price; ``used``: what our earlier orders there already got.
    Updates ``ahead``; returns the quantity that reaches this order (before its leaves cap)."""
    cdef int64_t avail = qty - ahead[0] - used
    ahead[0] = ahead[0] - qty if ahead[0] > qty else 0
    return avail if avail > 0 else 0
