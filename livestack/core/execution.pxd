# Execution events (execution.pyx): EXEC records from the venue through the lifecycle table
# (lifecycle.pyx) onto the order table; fills applied once per execution id, to positions.
# The caller runs the strategy afterwards (every EXEC input reaches it).
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from livestack.core.core cimport Core
from livestack.schema.records cimport ls_exec_t

cdef void on_exec(Core c, const ls_exec_t *e) noexcept nogil
cdef bint apply_fill(Core c, int64_t slot, const ls_exec_t *e) noexcept nogil
cdef void venue_reset(Core c, const ls_exec_t *e) noexcept nogil
