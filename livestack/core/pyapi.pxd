# Python entry points of the Core (pyapi.pyx): def functions only, taking the Core first
# (process_array, full_book, book, instrument_state, order, live_orders); nothing cdef to share.
from livestack.core.core cimport Core
