from livestack.core.strategy cimport SdkStrategy

cdef class Taker(SdkStrategy):
    pass
