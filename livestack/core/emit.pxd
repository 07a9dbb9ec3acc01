# Record emission (emit.pyx): every output slot the core writes goes through these.
# They append to the Core's out_records / out_orders (the scratch slot past the capacity when full,
# counted in c_out_overflow) and stamp ts = the input's ts.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from livestack.core.core cimport Core
from livestack.schema.records cimport ls_order_cmd_t
from livestack.core.denials cimport Denial

cdef uint8_t *emit_record(Core c, uint16_t kind, uint8_t version, uint32_t inst) noexcept nogil
cdef ls_order_cmd_t *emit_order_cmd(Core c, uint32_t inst) noexcept nogil
cdef void emit_anomaly(Core c, uint16_t code, uint32_t inst, int64_t client_order_id, int64_t detail,
                       int64_t state, int64_t exec_type) noexcept nogil
cdef void emit_order_state(Core c, int64_t *order, int64_t prev_state, int64_t exec_type) noexcept nogil
cdef void emit_position(Core c, int64_t i) noexcept nogil
cdef void emit_book_top(Core c, int64_t i, int64_t ts_event) noexcept nogil
# denials: counted, and recorded coalesced by runs (denials.pyx holds the runs)
cdef int deny_intent(Core c, uint16_t reason, int64_t i, int64_t intent, int64_t side, int64_t price,
                     int64_t qty, int64_t client_order_id) noexcept nogil
cdef void emit_denial(Core c, int64_t i, const Denial *d) noexcept nogil
cdef void flush_denial_run(Core c, int64_t i) noexcept nogil
cdef void end_denial_run(Core c, int64_t i) noexcept nogil
cdef void flush_denial_runs(Core c) noexcept nogil
