from livestack.core.strategy cimport Strategy

cdef class MarketMaker(Strategy):
    pass
