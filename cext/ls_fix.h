/* FIX tag=value primitives: framing, checksum, field scanning, number and time formatting.
 *
 * No allocation, no I/O. Used by livestack/venues/fix/codec.pyx (the Cython codec) and its
 * benchmark. A FIX message on the wire:
 *
 *   8=FIX.4.4|9=<body length>|35=<type>| ... body ... |10=<checksum>|
 *   \________ prefix ________/\_____ BodyLength bytes _____/\_ 7 B _/
 *
 * BodyLength counts the bytes after the SOH that ends tag 9 up to and including the SOH before
 * "10="; CheckSum is the byte sum of everything before "10=" modulo 256, three digits.
 */
#ifndef LS_FIX_H
#define LS_FIX_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

#define LS_FIX_SOH '\x01'

/* ls_fix_frame results (>0: a whole message of that many bytes is at the start). */
#define LS_FIX_NEED_MORE 0
#define LS_FIX_GARBAGE -1      /* bytes that cannot start a message: skip *skip bytes */
#define LS_FIX_BAD_LENGTH -2   /* BodyLength missing, malformed or wrong: skip *skip bytes */
#define LS_FIX_BAD_CHECKSUM -3 /* framed, checksum wrong: skip *skip bytes (the message) */
#define LS_FIX_TOO_LONG -4     /* BodyLength above the limit: skip *skip bytes */

static inline unsigned ls_fix_checksum(const char *p, size_t n) {
    /* SWAR: eight bytes a step, summed as four 16-bit lanes (no lane can overflow within 128
     * steps: 128 x 510 < 65536), folded every 128 steps. */
    const unsigned char *u = (const unsigned char *)p;
    uint64_t total = 0;
    size_t i = 0;
    while (i + 8 <= n) {
        uint64_t acc = 0;
        size_t stop = n - i >= 8 * 128 ? i + 8 * 128 : i + ((n - i) & ~(size_t)7);
        for (; i < stop; i += 8) {
            uint64_t w;
            memcpy(&w, u + i, 8);
            acc += (w & 0x00ff00ff00ff00ffULL) + ((w >> 8) & 0x00ff00ff00ff00ffULL);
        }
        acc = (acc & 0x0000ffff0000ffffULL) + ((acc >> 16) & 0x0000ffff0000ffffULL);
        total += (acc & 0xffffffffULL) + (acc >> 32);
    }
    for (; i < n; i++)
        total += u[i];
    return (unsigned)(total & 0xffu);
}

/* First index >= from where "8=FIX" starts, or -1. Messages normally follow the SOH that ends the
 * previous one, but after garbage bytes they need not. */
static inline ptrdiff_t ls_fix_find_begin(const char *p, size_t n, size_t from) {
    if (n < 5)
        return -1;
    for (size_t i = from; i + 5 <= n; i++) {
        const char *q = (const char *)memchr(p + i, '8', n - 4 - i);
        if (q == NULL)
            return -1;
        i = (size_t)(q - p);
        if (q[1] == '=' && q[2] == 'F' && q[3] == 'I' && q[4] == 'X')
            return (ptrdiff_t)i;
    }
    return -1;
}

/* Bytes to skip to resynchronise (never 0): up to the next "8=FIX" after the start, else everything
 * but a tail that could be the beginning of one (so a split read cannot lose a message start). */
static inline size_t ls_fix_resync(const char *p, size_t n) {
    ptrdiff_t b = ls_fix_find_begin(p, n, 1);
    if (b > 0)
        return (size_t)b;
    static const char start[5] = {'8', '=', 'F', 'I', 'X'};
    size_t keep = 0;
    for (size_t k = 4; k >= 1; k--) {
        if (k < n && memcmp(p + n - k, start, k) == 0) {
            keep = k;
            break;
        }
    }
    return n - keep > 0 ? n - keep : 1;
}

/* Frame one message at the start of p[0..n). Returns its length (>0), LS_FIX_NEED_MORE, or a
 * negative code with *skip set to the bytes to drop before trying again. *body_off is the offset of
 * "35=" (start of the BodyLength-counted part). */
static inline ptrdiff_t ls_fix_frame(const char *p, size_t n, size_t max_body, size_t *skip, size_t *body_off) {
    *skip = 0;
    if (n == 0)
        return LS_FIX_NEED_MORE;
    /* "8=" <BeginString> SOH */
    if (p[0] != '8' || (n >= 2 && p[1] != '=')) {
        *skip = ls_fix_resync(p, n);
        return LS_FIX_GARBAGE;
    }
    size_t i = 2;
    while (i < n && i < 32 && p[i] != LS_FIX_SOH)
        i++;
    if (i >= n)
        return n >= 32 ? (*skip = ls_fix_resync(p, n), LS_FIX_GARBAGE) : LS_FIX_NEED_MORE;
    if (i >= 32 || i == 2) {
        *skip = ls_fix_resync(p, n);
        return LS_FIX_GARBAGE;
    }
    i++; /* past SOH */
    /* "9=" digits SOH */
    if (n < i + 2)
        return LS_FIX_NEED_MORE;
    if (p[i] != '9' || p[i + 1] != '=') {
        *skip = ls_fix_resync(p, n);
        return LS_FIX_BAD_LENGTH;
    }
    i += 2;
    size_t len = 0, digits = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9' && digits < 9) {
        len = len * 10 + (size_t)(p[i] - '0');
        i++;
        digits++;
    }
    if (i >= n && digits < 9)
        return LS_FIX_NEED_MORE;
    if (digits == 0 || p[i] != LS_FIX_SOH) {
        *skip = ls_fix_resync(p, n);
        return LS_FIX_BAD_LENGTH;
    }
    i++;
    *body_off = i;
    if (len > max_body) {
        *skip = ls_fix_resync(p, n);
        return LS_FIX_TOO_LONG;
    }
    size_t end = i + len; /* index of "10=" */
    if (n < end + 7) {
        /* Not all there yet. If a complete message start already sits inside the claimed body,
         * BodyLength is wrong (too long): resynchronise there rather than wait for bytes that
         * belong to later messages. */
        ptrdiff_t b = ls_fix_find_begin(p, n, i);
        while (b > 0) {
            /* it must follow a checksum field "SOH10=ddd SOH" */
            size_t bb = (size_t)b;
            if (bb >= 8 && p[bb - 8] == LS_FIX_SOH && p[bb - 7] == '1' && p[bb - 6] == '0' && p[bb - 5] == '=' &&
                p[bb - 1] == LS_FIX_SOH) {
                *skip = bb;
                return LS_FIX_BAD_LENGTH;
            }
            b = ls_fix_find_begin(p, n, bb + 1);
        }
        return LS_FIX_NEED_MORE;
    }
    if (len == 0 || p[end - 1] != LS_FIX_SOH || p[end] != '1' || p[end + 1] != '0' || p[end + 2] != '=' ||
        p[end + 6] != LS_FIX_SOH || p[end + 3] < '0' || p[end + 3] > '9' || p[end + 4] < '0' || p[end + 4] > '9' ||
        p[end + 5] < '0' || p[end + 5] > '9') {
        *skip = ls_fix_resync(p, n);
        return LS_FIX_BAD_LENGTH;
    }
    unsigned want = (unsigned)(p[end + 3] - '0') * 100 + (unsigned)(p[end + 4] - '0') * 10 + (unsigned)(p[end + 5] - '0');
    if (ls_fix_checksum(p, end) != want) {
        *skip = end + 7;
        return LS_FIX_BAD_CHECKSUM;
    }
    return (ptrdiff_t)(end + 7);
}

/* Next field at p[*pos..n): tag number, value offset and length; advances *pos past its SOH.
 * Returns 1, 0 at the end, -1 when malformed (no '=', non-digit tag, no SOH). */
static inline int ls_fix_next_field(const char *p, size_t n, size_t *pos, int *tag, size_t *voff, size_t *vlen) {
    size_t i = *pos;
    if (i >= n)
        return 0;
    int t = 0, d = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9') {
        if (d < 9)
            t = t * 10 + (p[i] - '0');
        d++;
        i++;
    }
    if (d == 0 || d > 9 || i >= n || p[i] != '=')
        return -1;
    i++;
    const char *s = (const char *)memchr(p + i, LS_FIX_SOH, n - i);
    if (s == NULL)
        return -1;
    *tag = t;
    *voff = i;
    *vlen = (size_t)(s - (p + i));
    *pos = (size_t)(s - p) + 1;
    return 1;
}

/* Unsigned decimal int (the whole value must be digits). -1 when malformed or too long. */
static inline int64_t ls_fix_parse_uint(const char *s, size_t n) {
    if (n == 0 || n > 18)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* An identifier (ClOrdID, OrderID, ExecID) as int64: the leading decimal digits when there are any
 * (our ClOrdIDs are "<id>" and cancel ids "<id>-C<seq>"), otherwise a 63-bit FNV-1a hash of the
 * bytes (venue ids that are not numbers; equal strings give equal ids). 0 for an empty value. */
static inline int64_t ls_fix_id(const char *s, size_t n) {
    if (n == 0)
        return 0;
    size_t i = 0;
    uint64_t v = 0;
    while (i < n && i < 18 && s[i] >= '0' && s[i] <= '9') {
        v = v * 10 + (uint64_t)(s[i] - '0');
        i++;
    }
    if (i > 0 && (i == n || s[i] == '-'))
        return (int64_t)v;
    uint64_t h = 1469598103934665603ULL;
    for (i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return (int64_t)(h & 0x7fffffffffffffffULL) | (int64_t)1; /* never 0 */
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static inline int64_t ls_fix_days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static inline void ls_fix_civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t yy = (int64_t)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

static inline int ls_fix_dig(const char *s, size_t k) {
    int v = 0;
    for (size_t i = 0; i < k; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* UTCTimestamp "YYYYMMDD-HH:MM:SS[.sss[sss[sss]]]" -> ns since the epoch; -1 when malformed. */
static inline int64_t ls_fix_parse_time(const char *s, size_t n) {
    if (n < 17 || s[8] != '-' || s[11] != ':' || s[14] != ':')
        return -1;
    int y = ls_fix_dig(s, 4), mo = ls_fix_dig(s + 4, 2), d = ls_fix_dig(s + 6, 2);
    int hh = ls_fix_dig(s + 9, 2), mi = ls_fix_dig(s + 12, 2), ss = ls_fix_dig(s + 15, 2);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || hh < 0 || hh > 23 || mi < 0 || mi > 59 || ss < 0 || ss > 60)
        return -1;
    int64_t frac = 0;
    if (n > 17) {
        if (s[17] != '.' || n == 18 || n > 27)
            return -1;
        size_t k = n - 18;
        int64_t f = 0;
        for (size_t i = 0; i < k; i++) {
            char c = s[18 + i];
            if (c < '0' || c > '9')
                return -1;
            f = f * 10 + (c - '0');
        }
        static const int64_t scale[10] = {1000000000LL, 100000000LL, 10000000LL, 1000000LL, 100000LL,
                                          10000LL,      1000LL,      100LL,      10LL,      1LL};
        frac = f * scale[k];
    }
    int64_t days = ls_fix_days_from_civil(y, (unsigned)mo, (unsigned)d);
    return ((days * 86400 + hh * 3600 + mi * 60 + ss) * 1000000000LL) + frac;
}

/* ns since the epoch -> "YYYYMMDD-HH:MM:SS.sss" (21 bytes, millisecond precision, FIX 4.4). */
static inline size_t ls_fix_format_time(char *out, int64_t ns) {
    int64_t secs = ns >= 0 ? ns / 1000000000LL : -((-ns + 999999999LL) / 1000000000LL);
    int64_t ms = (ns - secs * 1000000000LL) / 1000000LL;
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t sod = secs - days * 86400;
    int y;
    unsigned m, d;
    ls_fix_civil_from_days(days, &y, &m, &d);
    unsigned hh = (unsigned)(sod / 3600), mi = (unsigned)(sod % 3600 / 60), ss = (unsigned)(sod % 60);
    out[0] = (char)('0' + (y / 1000) % 10);
    out[1] = (char)('0' + (y / 100) % 10);
    out[2] = (char)('0' + (y / 10) % 10);
    out[3] = (char)('0' + y % 10);
    out[4] = (char)('0' + m / 10);
    out[5] = (char)('0' + m % 10);
    out[6] = (char)('0' + d / 10);
    out[7] = (char)('0' + d % 10);
    out[8] = '-';
    out[9] = (char)('0' + hh / 10);
    out[10] = (char)('0' + hh % 10);
    out[11] = ':';
    out[12] = (char)('0' + mi / 10);
    out[13] = (char)('0' + mi % 10);
    out[14] = ':';
    out[15] = (char)('0' + ss / 10);
    out[16] = (char)('0' + ss % 10);
    out[17] = '.';
    out[18] = (char)('0' + ms / 100);
    out[19] = (char)('0' + ms / 10 % 10);
    out[20] = (char)('0' + ms % 10);
    return 21;
}

/* Signed decimal integer; returns bytes written (at most 20). */
static inline size_t ls_fix_format_int(char *out, int64_t v) {
    char tmp[24];
    size_t k = 0, o = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[k++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[o++] = '-';
    while (k)
        out[o++] = tmp[--k];
    return o;
}

/* int64 fixed point with `decimals` implied decimals -> exact decimal string ("12345",2 -> "123.45";
 * trailing zeros of the fraction kept, so the scale is visible). */
static inline size_t ls_fix_format_fixed(char *out, int64_t v, int decimals) {
    if (decimals <= 0)
        return ls_fix_format_int(out, v);
    char tmp[48];
    size_t k = 0, o = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    for (int i = 0; i < decimals; i++) {
        tmp[k++] = (char)('0' + u % 10);
        u /= 10;
    }
    tmp[k++] = '.';
    do {
        tmp[k++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[o++] = '-';
    while (k)
        out[o++] = tmp[--k];
    return o;
}

#endif
