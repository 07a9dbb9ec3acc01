from livestack.core.strategy cimport Strategy

cdef class Taker(Strategy):
    pass
