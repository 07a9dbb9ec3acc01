# cython: language_level=3
"""Several strategies in one core: ``StrategySet`` owns up to ``MAX_MEMBERS`` strategies of any
flavour, each with its own instruments (an instrument belongs to at most one), its own params
(their own span of the params block) and its own error state.

* An input of instrument i goes to the strategy owning i only; TIMER and SESSION_STOP to every
  strategy, in the configured order.
* Before a member runs, the header's ``PARAM_OFF`` / ``N_PARAMS`` point at its params, so every
  flavour reads its own params exactly as it would alone; restored after.
* A NEW intent for an instrument the member does not own is dropped (counted in ``foreign``).
* A member that fails (a Python exception, or an error code from a numba / Cython member): the core
  records ``ANOMALY STRATEGY_ERROR`` and ``ANOMALY_TEXT`` for the call, the text naming the member
  by index (the set itself runs with on_error = continue); the set applies the member's own policy:
  ``disable`` (the member is not called again; its orders are canceled on the next input) or
  ``halt`` (the set stops calling every member and cancels everything; the core goes HALTED).
"""

from libc.stdint cimport int64_t, uint8_t
from livestack.core.ctx cimport *
from livestack.schema.records cimport *
from livestack.core.strategy cimport Strategy, FLAVOUR_CYTHON, ON_ERROR_CONTINUE, ON_ERROR_DISABLE, ON_ERROR_HALT
from livestack.strategies.cysdk cimport sdk_cancel_all

DEF MAX_MEMBERS = 8
DEF MAX_INST = 256
MAX_STRATEGIES = MAX_MEMBERS


cdef class StrategySet(Strategy):
    # fields: multi.pxd (MAX_MEMBERS = 8 slots, MAX_INST = 256 instruments)

    def __init__(self, members, owners, name="strategies"):
        """``members``: [(Strategy, on_error str)]; ``owners``: instrument index -> member index."""
        from livestack.core.strategy import ON_ERROR

        if not 1 <= len(members) <= MAX_MEMBERS:
            raise ValueError(f"[[strategies]]: 1..{MAX_MEMBERS} strategies per session, got {len(members)}")
        names, values = [], []
        cdef int k
        self.members = []
        for k, (s, pol) in enumerate(members):
            self.param_off[k] = len(values)
            self.n_params[k] = len(s.param_names)
            names += [f"{s.name}.{p}" for p in s.param_names]
            values += list(s.param_defaults)
            self.policy[k] = ON_ERROR[pol]
            self.disabled_[k] = 0
            self.cancel_pending[k] = 0
            self.errors_[k] = 0
            self.members.append(s)
        Strategy.__init__(self, name, names, values)
        self.on_error = ON_ERROR_CONTINUE
        self.stop_hook = True
        self.n = len(members)
        for k in range(MAX_INST):
            self.owner[k] = -1
        for i, k in owners.items():
            if not 0 <= i < MAX_INST:
                raise ValueError(f"[[strategies]]: at most {MAX_INST} instruments")
            self.owner[i] = k
        ms = self.members + [None] * (MAX_MEMBERS - self.n)
        self.s0, self.s1, self.s2, self.s3, self.s4, self.s5, self.s6, self.s7 = ms
        self.foreign = 0

    cdef void bind(self, ls_strategy_ctx_t *ctx, object ctx_view) except *:
        for s in self.members:
            (<Strategy>s).bind(ctx, ctx_view)

    cdef inline void _dispatch(self, int k, ls_strategy_ctx_t *ctx) noexcept nogil:
        # one branch per slot: a typed attribute is called without touching its refcount (nogil)
        if k == 0:
            if self.s0.fn != NULL:
                self.s0.fn(<void *>ctx)
            else:
                self.s0.on_event(ctx)
        elif k == 1:
            if self.s1.fn != NULL:
                self.s1.fn(<void *>ctx)
            else:
                self.s1.on_event(ctx)
        elif k == 2:
            if self.s2.fn != NULL:
                self.s2.fn(<void *>ctx)
            else:
                self.s2.on_event(ctx)
        elif k == 3:
            if self.s3.fn != NULL:
                self.s3.fn(<void *>ctx)
            else:
                self.s3.on_event(ctx)
        elif k == 4:
            if self.s4.fn != NULL:
                self.s4.fn(<void *>ctx)
            else:
                self.s4.on_event(ctx)
        elif k == 5:
            if self.s5.fn != NULL:
                self.s5.fn(<void *>ctx)
            else:
                self.s5.on_event(ctx)
        elif k == 6:
            if self.s6.fn != NULL:
                self.s6.fn(<void *>ctx)
            else:
                self.s6.on_event(ctx)
        elif k == 7:
            if self.s7.fn != NULL:
                self.s7.fn(<void *>ctx)
            else:
                self.s7.on_event(ctx)

    cdef void _call(self, int k, ls_strategy_ctx_t *ctx) noexcept nogil:
        cdef int64_t po = ctx[LS_CTX_PARAM_OFF], npar = ctx[LS_CTX_N_PARAMS]
        cdef int64_t n0 = ctx[LS_CTX_N_INTENTS], n1, j, w, t
        cdef int64_t *it
        ctx[LS_CTX_PARAM_OFF] = po + self.param_off[k]
        ctx[LS_CTX_N_PARAMS] = self.n_params[k]
        self._dispatch(k, ctx)
        ctx[LS_CTX_PARAM_OFF] = po
        ctx[LS_CTX_N_PARAMS] = npar
        n1 = ctx[LS_CTX_N_INTENTS]
        if n1 < 0 or ctx[LS_CTX_ERROR] != 0:   # it failed: the core records it and drops this call's intents
            ctx[LS_CTX_N_INTENTS] = -1
            if ctx[LS_CTX_ERROR] == 0:
                ctx[LS_CTX_ERROR] = -1
            self.err_member = k
            self.errors_[k] += 1
            if self.policy[k] == ON_ERROR_DISABLE or self.policy[k] == ON_ERROR_HALT:
                self.disabled_[k] = 1
                self.cancel_pending[k] = 1
            if self.policy[k] == ON_ERROR_HALT:
                for j in range(self.n):
                    self.disabled_[j] = 1
                    self.cancel_pending[j] = 1
            return
        w = n0                  # keep only NEWs on its own instruments
        for j in range(n0, n1):
            it = ctx + ctx[LS_CTX_INTENT_OFF] + j * LS_INTENT_WORDS
            if it[LS_INTENT_TYPE] == LS_ORDER_CMD_TYPE_NEW and \
                    (it[LS_INTENT_INST] < 0 or it[LS_INTENT_INST] >= MAX_INST or self.owner[it[LS_INTENT_INST]] != k):
                self.foreign += 1
                continue
            if w != j:
                for t in range(LS_INTENT_WORDS):
                    (ctx + ctx[LS_CTX_INTENT_OFF] + w * LS_INTENT_WORDS)[t] = it[t]
            w += 1
        ctx[LS_CTX_N_INTENTS] = w

    cdef void on_event(self, ls_strategy_ctx_t *ctx) noexcept nogil:
        cdef int64_t i = ctx[LS_CTX_EV_INST], n_inst = ctx[LS_CTX_N_INST], j
        cdef int k
        for k in range(self.n):   # a disabled member's orders go on the next input
            if self.cancel_pending[k]:
                self.cancel_pending[k] = 0
                for j in range(n_inst):
                    if j < MAX_INST and self.owner[j] == k:
                        sdk_cancel_all(ctx, j)
        if i >= 0:
            k = <int>self.owner[i] if i < MAX_INST else -1
            if k >= 0 and not self.disabled_[k]:
                self._call(k, ctx)
        else:
            for k in range(self.n):
                if not self.disabled_[k]:
                    self._call(k, ctx)
                    if ctx[LS_CTX_N_INTENTS] < 0:
                        return

    cpdef tuple error_record(self, int64_t code, int64_t ev_kind, int64_t ev_status):
        """The failed member's (index, its policy, its message)."""
        cdef int k = self.err_member
        cdef Strategy m = self.members[k]
        text = m.error_record(code, ev_kind, ev_status)[2]
        return (k, self.policy[k], text)

    def error_info(self):
        """The members' error reports: the first failing member's traceback, errors summed, and
        ``strategies`` {name: its report} (None when none failed)."""
        infos = {s.name: s.error_info() for s in self.members}
        failed = [i for i in infos.values() if i]
        if not failed:
            return None
        return {"errors": sum(i["errors"] for i in failed), "last_error": failed[0]["last_error"],
                "first_traceback": next((i["first_traceback"] for i in failed if i["first_traceback"]), None),
                "strategies": {n: i for n, i in infos.items() if i}}

    def owners(self):
        """{instrument index: member index} of every owned instrument."""
        cdef int i
        return {i: int(self.owner[i]) for i in range(MAX_INST) if self.owner[i] >= 0}

    def member_state(self):
        """[{name, errors, disabled}] per member, in order."""
        return [{"name": s.name, "errors": self.errors_[k], "disabled": bool(self.disabled_[k])}
                for k, s in enumerate(self.members)]
