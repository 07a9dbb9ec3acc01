/* Exact decimal-string -> int64 fixed-point conversion (no float round trip).
 *
 * "61837.63000000" with 2 decimals -> 6183763. Digits beyond `decimals` must be zeros, otherwise
 * the value is not representable at this scale and the call fails with LS_FIXED_PRECISION.
 */
#ifndef LS_FIXED_H
#define LS_FIXED_H

#include <stdint.h>
#include <stddef.h>

#define LS_FIXED_OK 0
#define LS_FIXED_MALFORMED -1
#define LS_FIXED_OVERFLOW -2
#define LS_FIXED_PRECISION -3

#define LS_FIXED_MAX_DECIMALS 18

static const int64_t ls_pow10[19] = {
    1LL, 10LL, 100LL, 1000LL, 10000LL, 100000LL, 1000000LL, 10000000LL, 100000000LL,
    1000000000LL, 10000000000LL, 100000000000LL, 1000000000000LL, 10000000000000LL,
    100000000000000LL, 1000000000000000LL, 10000000000000000LL, 100000000000000000LL,
    1000000000000000000LL};

static inline int ls_parse_fixed(const char *s, size_t n, int decimals, int64_t *out) {
    if (decimals < 0 || decimals > LS_FIXED_MAX_DECIMALS)
        return LS_FIXED_MALFORMED;
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) {
        neg = s[i] == '-';
        i++;
    }
    uint64_t v = 0;
    int digits = 0, frac = 0, seen_dot = 0;
    for (; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            digits++;
            if (seen_dot) {
                if (frac >= decimals) {
                    if (c != '0')
                        return LS_FIXED_PRECISION;
                    continue;
                }
                frac++;
            }
            if (v > (UINT64_MAX - 9) / 10)
                return LS_FIXED_OVERFLOW;
            v = v * 10 + (uint64_t)(c - '0');
        } else if (c == '.' && !seen_dot) {
            seen_dot = 1;
        } else {
            return LS_FIXED_MALFORMED;
        }
    }
    if (digits == 0)
        return LS_FIXED_MALFORMED;
    int64_t scale = ls_pow10[decimals - frac];
    if (v > (uint64_t)INT64_MAX / (uint64_t)scale)
        return LS_FIXED_OVERFLOW;
    v *= (uint64_t)scale;
    if (v > (uint64_t)INT64_MAX)
        return LS_FIXED_OVERFLOW;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return LS_FIXED_OK;
}

#endif
