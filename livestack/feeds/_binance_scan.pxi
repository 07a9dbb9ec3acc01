# The message scanner of _binance.pyx (textually included there: its cdef functions inline into
# FastDecoder.decode). Split out so each file reads as one stage: this one JSON, that one records.

# ------------------------------------------------------------------------------------------------
# Message scanner: one pass over a combined-stream message, strict JSON, no Python object per field
# ------------------------------------------------------------------------------------------------
#
# Grammar checked: RFC 8259 JSON (objects, arrays, strings with escapes, numbers, literals), depth
# <= 64, nothing but whitespace after the top value. Field types are checked against what Binance
# sends; a message that is valid JSON but has a missing or mistyped field is a FIELD error, one that
# is not JSON is a JSON error. Non-ASCII bytes inside strings are not UTF-8-validated (no string
# other than the stream name and decimals is used, and those must be ASCII to match / parse).

#: FastDecoder.decode results
cdef enum:
    C_DONE = 0          # a trade / bookTicker record was written (flag LAST_IN_MSG)
    C_DEPTH = 1         # a depth diff: see .diff and .slot
    C_ERR_JSON = -1
    C_ERR_FIELD = -2
    C_ERR_DECIMAL = -3
    C_ERR_STREAM = -4
    C_KIND_DEPTH = 1
    C_KIND_TRADE = 2
    C_KIND_BBO = 3

DONE, DEPTH = C_DONE, C_DEPTH
ERR_JSON, ERR_FIELD, ERR_DECIMAL, ERR_STREAM = C_ERR_JSON, C_ERR_FIELD, C_ERR_DECIMAL, C_ERR_STREAM
KIND_DEPTH, KIND_TRADE, KIND_BBO = C_KIND_DEPTH, C_KIND_TRADE, C_KIND_BBO

cdef enum:
    MAX_DEPTH = 64
    F_E = 1
    F_T = 2
    F_U = 4
    F_u = 8
    F_pu = 16
    F_t = 32
    F_m = 64


cdef inline bint _digit(unsigned char c) noexcept nogil:
    return 48 <= c <= 57


cdef inline bint _hex(unsigned char c) noexcept nogil:
    return _digit(c) or (97 <= c <= 102) or (65 <= c <= 70)


cdef Py_ssize_t _skip_str(const unsigned char *p, Py_ssize_t i, Py_ssize_t n, bint *plain) noexcept nogil:
    """At p[i] == '"': index after the closing quote, or -1. ``plain``: no escapes inside."""
    cdef unsigned char c
    plain[0] = True
    i += 1
    while i < n:
        c = p[i]
        if c == 34:
            return i + 1
        if c < 32:
            return -1
        if c == 92:
            plain[0] = False
            i += 1
            if i >= n:
                return -1
            c = p[i]
            if c == 117:  # \uXXXX
                if i + 4 >= n or not (_hex(p[i + 1]) and _hex(p[i + 2]) and _hex(p[i + 3]) and _hex(p[i + 4])):
                    return -1
                i += 4
            elif not (c == 34 or c == 92 or c == 47 or c == 98 or c == 102 or c == 110 or c == 114 or c == 116):
                return -1
        i += 1
    return -1


cdef Py_ssize_t _skip_num(const unsigned char *p, Py_ssize_t i, Py_ssize_t n, bint *integer) noexcept nogil:
    """A JSON number at p[i]: index after it or -1; ``integer``: no fraction or exponent."""
    integer[0] = True
    if i < n and p[i] == 45:
        i += 1
    if i >= n:
        return -1
    if p[i] == 48:
        i += 1
    elif _digit(p[i]):
        while i < n and _digit(p[i]):
            i += 1
    else:
        return -1
    if i < n and p[i] == 46:
        integer[0] = False
        i += 1
        if i >= n or not _digit(p[i]):
            return -1
        while i < n and _digit(p[i]):
            i += 1
    if i < n and (p[i] == 101 or p[i] == 69):
        integer[0] = False
        i += 1
        if i < n and (p[i] == 43 or p[i] == 45):
            i += 1
        if i >= n or not _digit(p[i]):
            return -1
        while i < n and _digit(p[i]):
            i += 1
    return i


cdef inline Py_ssize_t _lit(const unsigned char *p, Py_ssize_t i, Py_ssize_t n, const char *word, Py_ssize_t k) noexcept nogil:
    cdef Py_ssize_t j
    if i + k > n:
        return -1
    for j in range(k):
        if p[i + j] != <unsigned char>word[j]:
            return -1
    return i + k


cdef Py_ssize_t _skip_value(const unsigned char *p, Py_ssize_t i, Py_ssize_t n, int depth) noexcept nogil:
    """Validate and skip any JSON value at p[i] (no leading whitespace); index after it or -1."""
    cdef unsigned char c
    cdef bint flag
    if i >= n or depth > MAX_DEPTH:
        return -1
    c = p[i]
    if c == 34:
        return _skip_str(p, i, n, &flag)
    if c == 123:  # {
        i = _ws(p, i + 1, n)
        if i < n and p[i] == 125:
            return i + 1
        while True:
            if i >= n or p[i] != 34:
                return -1
            i = _skip_str(p, i, n, &flag)
            if i < 0:
                return -1
            i = _ws(p, i, n)
            if i >= n or p[i] != 58:
                return -1
            i = _skip_value(p, _ws(p, i + 1, n), n, depth + 1)
            if i < 0:
                return -1
            i = _ws(p, i, n)
            if i < n and p[i] == 44:
                i = _ws(p, i + 1, n)
                continue
            if i < n and p[i] == 125:
                return i + 1
            return -1
    if c == 91:  # [
        i = _ws(p, i + 1, n)
        if i < n and p[i] == 93:
            return i + 1
        while True:
            i = _skip_value(p, i, n, depth + 1)
            if i < 0:
                return -1
            i = _ws(p, i, n)
            if i < n and p[i] == 44:
                i = _ws(p, i + 1, n)
                continue
            if i < n and p[i] == 93:
                return i + 1
            return -1
    if c == 116:
        return _lit(p, i, n, b"true", 4)
    if c == 102:
        return _lit(p, i, n, b"false", 5)
    if c == 110:
        return _lit(p, i, n, b"null", 4)
    if c == 45 or _digit(c):
        return _skip_num(p, i, n, &flag)
    return -1


cdef Py_ssize_t _int_field(const unsigned char *p, Py_ssize_t i, Py_ssize_t n, int64_t *out,
                           Fields *f, int bit) noexcept nogil:
    """An integer field value: parsed into ``out``; any other valid value marks a type error."""
    cdef Py_ssize_t j
    cdef bint integer
    cdef uint64_t v = 0
    cdef bint neg = False
    if i < n and (p[i] == 45 or _digit(p[i])):
        j = _skip_num(p, i, n, &integer)
        if j < 0:
            return -1
        if not integer:
            f.type_err = 1
            return j
        if p[i] == 45:
            neg = True
            i += 1
        while i < j:
            if v > <uint64_t>922337203685477580:  # would overflow int64 on the next digit
                f.type_err = 1
                return j
            v = v * 10 + (p[i] - 48)
            i += 1
        if v > <uint64_t>9223372036854775807:
            f.type_err = 1
            return j
        out[0] = -<int64_t>v if neg else <int64_t>v
        f.have |= bit
        return j
    j = _skip_value(p, i, n, 1)
    if j >= 0:
        f.type_err = 1
    return j


cdef Py_ssize_t _raw_field(const unsigned char *p, Py_ssize_t i, Py_ssize_t n, Span *out) noexcept nogil:
    cdef Py_ssize_t j = _skip_value(p, i, n, 1)
    if j >= 0:
        out.start = i
        out.end = j
    return j


cdef Py_ssize_t _data(const unsigned char *p, Py_ssize_t i, Py_ssize_t n, Fields *f) noexcept nogil:
    """The ``data`` object at p[i] == '{': fields into ``f``; index after it or -1."""
    cdef Py_ssize_t k0, k1, klen
    cdef bint plain
    cdef unsigned char c0, c1
    i = _ws(p, i + 1, n)
    if i < n and p[i] == 125:
        return i + 1
    while True:
        if i >= n or p[i] != 34:
            return -1
        k0 = i + 1
        i = _skip_str(p, i, n, &plain)
        if i < 0:
            return -1
        k1 = i - 1
        klen = k1 - k0
        i = _ws(p, i, n)
        if i >= n or p[i] != 58:
            return -1
        i = _ws(p, i + 1, n)
        c0 = p[k0] if klen > 0 else 0
        c1 = p[k0 + 1] if klen > 1 else 0
        if not plain or klen > 2 or klen == 0:
            i = _skip_value(p, i, n, 1)
        elif klen == 2:
            if c0 == 112 and c1 == 117:  # pu
                i = _int_field(p, i, n, &f.pu, f, F_pu)
            else:
                i = _skip_value(p, i, n, 1)
        elif c0 == 69:   # E
            i = _int_field(p, i, n, &f.E, f, F_E)
        elif c0 == 84:   # T
            i = _int_field(p, i, n, &f.T, f, F_T)
        elif c0 == 85:   # U
            i = _int_field(p, i, n, &f.U, f, F_U)
        elif c0 == 117:  # u
            i = _int_field(p, i, n, &f.u, f, F_u)
        elif c0 == 116:  # t
            i = _int_field(p, i, n, &f.t, f, F_t)
        elif c0 == 109:  # m
            if i < n and p[i] == 116 and _lit(p, i, n, b"true", 4) > 0:
                f.m = 1
                i += 4
            elif i < n and p[i] == 102 and _lit(p, i, n, b"false", 5) > 0:
                f.m = 0
                i += 5
            else:
                i = _skip_value(p, i, n, 1)
                f.type_err = 1
        elif c0 == 98:   # b
            i = _raw_field(p, i, n, &f.b)
        elif c0 == 97:   # a
            i = _raw_field(p, i, n, &f.a)
        elif c0 == 66:   # B
            i = _raw_field(p, i, n, &f.B)
        elif c0 == 65:   # A
            i = _raw_field(p, i, n, &f.A)
        elif c0 == 112:  # p
            i = _raw_field(p, i, n, &f.p)
        elif c0 == 113:  # q
            i = _raw_field(p, i, n, &f.q)
        else:
            i = _skip_value(p, i, n, 1)
        if i < 0:
            return -1
        i = _ws(p, i, n)
        if i < n and p[i] == 44:
            i = _ws(p, i + 1, n)
            continue
        if i < n and p[i] == 125:
            return i + 1
        return -1


cdef inline bint _ms_ok(int64_t v) noexcept nogil:
    """A venue time in ms that converts to int64 ns."""
    return 0 <= v <= 9223372036853LL


cdef inline int _str_fixed(const unsigned char *p, Span s, int decimals, int64_t *out) noexcept nogil:
    """A field span holding a JSON string decimal: 0, -2 (not a plain string), -3 (bad decimal)."""
    cdef Py_ssize_t i
    if s.start < 0 or s.end - s.start < 2 or p[s.start] != 34:
        return C_ERR_FIELD
    for i in range(s.start + 1, s.end - 1):
        if p[i] == 92:
            return C_ERR_FIELD
    if ls_parse_fixed(<const char *>(p + s.start + 1), s.end - s.start - 2, decimals, out) != 0:
        return C_ERR_DECIMAL
    return 0
