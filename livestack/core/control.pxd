# Execution control (control.pyx): the trading state (ACTIVE / REDUCING / HALTED), the kill
# latch, the session, the loss limits, and the operator's CONTROL_CMDs (exactly one CONTROL_REPLY each).
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from livestack.core.core cimport Core
from livestack.schema.records cimport ls_control_cmd_t

cdef void set_trading_state(Core c, int state, int cause) noexcept nogil
cdef void check_loss(Core c) noexcept nogil
cdef void on_control(Core c, const ls_control_cmd_t *command) noexcept nogil
