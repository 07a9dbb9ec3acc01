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

/* 1 when p[0..n) starts with one whole message: header, BodyLength, trailer and CheckSum all
 * right (no scanning beyond it). */
static inline int ls_fix_valid_at(const char *p, size_t n, size_t max_body) {
    size_t i = 2;
    if (n < 16 || p[0] != '8' || p[1] != '=')
        return 0;
    while (i < n && i < 32 && p[i] != LS_FIX_SOH)
        i++;
    if (i >= n || i >= 32 || i == 2 || n < i + 3 || p[i + 1] != '9' || p[i + 2] != '=')
        return 0;
    i += 3;
    size_t len = 0, digits = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9' && digits < 9) {
        len = len * 10 + (size_t)(p[i] - '0');
        i++;
        digits++;
    }
    if (digits == 0 || i >= n || p[i] != LS_FIX_SOH || len == 0 || len > max_body)
        return 0;
    size_t end = i + 1 + len;
    if (n < end + 7 || p[end - 1] != LS_FIX_SOH || p[end] != '1' || p[end + 1] != '0' || p[end + 2] != '=' ||
        p[end + 6] != LS_FIX_SOH)
        return 0;
    int want = 0;
    for (int k = 3; k < 6; k++) {
        if (p[end + k] < '0' || p[end + k] > '9')
            return 0;
        want = want * 10 + (p[end + k] - '0');
    }
    return ls_fix_checksum(p, end) == (unsigned)want;
}

/* Frame one message at the start of p[0..n). Returns its length (>0), LS_FIX_NEED_MORE, or a
 * negative code with *skip set to the bytes to drop before trying again. *body_off is the offset of
 * "35=" (start of the BodyLength-counted part).
 *
 * Recovery rule: whatever is wrong (garbage, BodyLength, CheckSum), the bytes dropped end at the
 * next "8=FIX" found after the start, so a valid message behind a broken one is never lost. The
 * one trade-off: a message whose body embeds a complete valid FIX message (RawData/XmlData) while
 * its own tail has not arrived yet is taken for a broken one. */
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
        /* Not all there yet. If a complete, checksum-valid message already sits inside the claimed
         * body, BodyLength is wrong (too long): drop up to that message rather than wait for bytes
         * that belong to later messages (at the end of a stream they would never come, and a
         * huge BodyLength would hold every following message back). */
        ptrdiff_t b = ls_fix_find_begin(p, n, i);
        while (b > 0) {
            if (ls_fix_valid_at(p + b, n - (size_t)b, max_body)) {
                *skip = (size_t)b;
                return LS_FIX_BAD_LENGTH;
            }
            b = ls_fix_find_begin(p, n, (size_t)b + 1);
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
        /* The trailer is where BodyLength says, the sum is wrong. Drop only up to the next message
         * start: a BodyLength that is too long can reach exactly onto the next message's trailer,
         * and skipping the whole claimed frame would swallow that (valid) message. */
        *skip = ls_fix_resync(p, end + 7);
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

/* A NumInGroup field of FIX 4.2 - 5.0 (standard header NoHops 627 included): the fields after it
 * may be repeating-group entries, whose tags repeat legitimately. */
static inline int ls_fix_group_counter(int tag) {
    switch (tag) {
    case 73: case 78: case 85: case 124: case 136: case 146: case 199: case 215: case 232: case 267: case 268:
    case 382: case 384: case 386: case 398: case 420: case 453: case 454: case 457: case 473: case 518: case 539:
    case 555: case 576: case 578: case 580: case 604: case 627: case 652: case 670: case 683: case 711: case 753:
    case 768: case 796: case 802: case 804: case 864: case 870: case 897: case 936: case 940: case 958: case 960:
    case 1016: case 1058: case 1062: case 1116: case 1120: case 1141: case 1166: case 1201: case 1310: case 1312:
    case 1324: case 1362: case 1387: case 1441: case 1445: case 1473: case 1483:
        return 1;
    default:
        return 0;
    }
}

/* A single-occurrence standard header field or the trailer's CheckSum: may appear once, anywhere. */
static inline int ls_fix_header_tag(int tag) {
    switch (tag) {
    case 8: case 9: case 35: case 34: case 49: case 56: case 52: case 43: case 97: case 122: case 115: case 128:
    case 50: case 57: case 142: case 143: case 116: case 144: case 129: case 145: case 90: case 91: case 212:
    case 213: case 347: case 369: case 370: case 1128: case 1129: case 1156: case 10:
        return 1;
    default:
        return 0;
    }
}

/* Duplicate-tag check over a message's fields in order (the rule of codec.FixMessage.violation):
 * a header tag or CheckSum may appear once anywhere; any other tag once before the first NumInGroup
 * field. Tags above LS_FIX_DUP_BITS outside groups are checked against the last 32 of them. */
#define LS_FIX_DUP_BITS 2048
typedef struct {
    uint64_t seen[LS_FIX_DUP_BITS / 64];
    int big[32];
    int n_big;
    int in_groups;
} ls_fix_dup_t;

static inline void ls_fix_dup_init(ls_fix_dup_t *d) { memset(d, 0, sizeof *d); }

/* 1 when this occurrence of tag is a duplicate. */
static inline int ls_fix_dup_add(ls_fix_dup_t *d, int tag) {
    int check = !d->in_groups || ls_fix_header_tag(tag);
    int dup = 0;
    if (tag >= 0 && tag < LS_FIX_DUP_BITS) {
        uint64_t bit = 1ULL << (tag & 63);
        dup = check && (d->seen[tag >> 6] & bit) != 0;
        d->seen[tag >> 6] |= bit;
    } else if (!d->in_groups) {
        for (int k = 0; k < d->n_big && k < 32; k++)
            if (d->big[k] == tag)
                dup = 1;
        d->big[d->n_big++ & 31] = tag;
    }
    if (ls_fix_group_counter(tag))
        d->in_groups = 1;
    return dup;
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

/* One of OUR identifiers (ClOrdID, OrigClOrdID) as int64: the leading decimal digits when there are any
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

/* --- Venue id identities --------------------------------------------------------------------
 *
 * An ExecID names one execution; two different strings are two fills. Its identity is BLAKE2b-128
 * (RFC 7693, no key, personalisation "livestack-exec") of the exact bytes, as two int64 words:
 * the same function as livestack/venues/execid.py's exec_id_words (a test compares them on many
 * strings). Reference BLAKE2b, unrolled nothing: ~0.3 us for a short id. */

static const uint64_t ls_b2b_iv[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};

static const uint8_t ls_b2b_sigma[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4}, {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13}, {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11}, {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5}, {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}};

static inline uint64_t ls_b2b_rotr(uint64_t x, unsigned r) { return (x >> r) | (x << (64 - r)); }

static inline uint64_t ls_b2b_load64(const unsigned char *b) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;
    memcpy(&v, b, 8);
    return v;
#else
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--)
        v = (v << 8) | b[k];
    return v;
#endif
}

#define LS_B2B_G(a, b, c, d, x, y)                                                                                   \
    do {                                                                                                             \
        v[a] = v[a] + v[b] + (x);                                                                                    \
        v[d] = ls_b2b_rotr(v[d] ^ v[a], 32);                                                                         \
        v[c] = v[c] + v[d];                                                                                          \
        v[b] = ls_b2b_rotr(v[b] ^ v[c], 24);                                                                         \
        v[a] = v[a] + v[b] + (y);                                                                                    \
        v[d] = ls_b2b_rotr(v[d] ^ v[a], 16);                                                                         \
        v[c] = v[c] + v[d];                                                                                          \
        v[b] = ls_b2b_rotr(v[b] ^ v[c], 63);                                                                         \
    } while (0)

static inline void ls_b2b_compress(uint64_t h[8], const unsigned char block[128], uint64_t t, int last) {
    uint64_t v[16], m[16];
    for (int k = 0; k < 16; k++)
        m[k] = ls_b2b_load64(block + 8 * k);
    for (int k = 0; k < 8; k++) {
        v[k] = h[k];
        v[k + 8] = ls_b2b_iv[k];
    }
    v[12] ^= t; /* ids are far below 2^64 bytes: the high counter word stays 0 */
    if (last)
        v[14] = ~v[14];
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 12
#endif
    for (int r = 0; r < 12; r++) {
        const uint8_t *s = ls_b2b_sigma[r];
        LS_B2B_G(0, 4, 8, 12, m[s[0]], m[s[1]]);
        LS_B2B_G(1, 5, 9, 13, m[s[2]], m[s[3]]);
        LS_B2B_G(2, 6, 10, 14, m[s[4]], m[s[5]]);
        LS_B2B_G(3, 7, 11, 15, m[s[6]], m[s[7]]);
        LS_B2B_G(0, 5, 10, 15, m[s[8]], m[s[9]]);
        LS_B2B_G(1, 6, 11, 12, m[s[10]], m[s[11]]);
        LS_B2B_G(2, 7, 8, 13, m[s[12]], m[s[13]]);
        LS_B2B_G(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (int k = 0; k < 8; k++)
        h[k] ^= v[k] ^ v[k + 8];
}
#undef LS_B2B_G

/* BLAKE2b with a 16-byte digest and a personalisation of up to 16 bytes: out[0] = digest bytes
 * 0..7, out[1] = bytes 8..15, each read little-endian (as int.from_bytes(digest, "little")). */
static inline void ls_blake2b_128(const char *data, size_t n, const char *person, size_t person_len, uint64_t out[2]) {
    unsigned char pers[16] = {0};
    uint64_t h[8];
    unsigned char block[128];
    memcpy(pers, person, person_len > 16 ? 16 : person_len);
    for (int k = 0; k < 8; k++)
        h[k] = ls_b2b_iv[k];
    h[0] ^= 0x01010000ULL ^ 16u; /* depth 1, fanout 1, no key, 16-byte digest */
    h[6] ^= ls_b2b_load64(pers);
    h[7] ^= ls_b2b_load64(pers + 8);
    const unsigned char *u = (const unsigned char *)data;
    uint64_t t = 0;
    while (n > 128) {
        t += 128;
        ls_b2b_compress(h, u, t, 0);
        u += 128;
        n -= 128;
    }
    memset(block, 0, sizeof block);
    if (n)
        memcpy(block, u, n);
    t += n;
    ls_b2b_compress(h, block, t, 1);
    out[0] = h[0];
    out[1] = h[1];
}

/* An ExecID's identity (livestack.venues.execid.exec_id_words): 0 on success with lo and hi set;
 * -1 for an id that is empty (FIX "tag without a value") or holds a control byte (< 0x20 or
 * 0x7f: FIX String excludes the delimiter, and no venue sends those in an id). */
static inline int ls_fix_exec_id_words(const char *s, size_t n, int64_t *lo, int64_t *hi) {
    uint64_t w[2];
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return -1;
    }
    ls_blake2b_128(s, n, "livestack-exec", 14, w);
    if (w[0] == 0 && w[1] == 0)
        w[0] = 1; /* (0, 0) means "no exec id" */
    *lo = (int64_t)w[0];
    *hi = (int64_t)w[1];
    return 0;
}

/* A venue OrderID as one int64 that keeps its identity: a canonical decimal number ("1" ..
 * "999999999999999999", no sign, no leading zero) is itself (readable in the records); any other
 * id ("O17", "00777", "777-1", "0") is a 63-bit hash of its exact bytes with the sign bit set, so it
 * can never equal a number's value. -1 for an empty id or one with a control byte; never 0.
 * The hash is FNV-1a 64 with a splitmix64 finaliser, not BLAKE2b: venue_order_id only names the
 * order in records (the adapter keeps the OrderID bytes for cancels, and fills are deduplicated on
 * the ExecID), so a 2^-63 chance of two ids of a session sharing a value costs nothing, and it
 * keeps the decoder at one BLAKE2b per message. */
static inline int ls_fix_order_id_word(const char *s, size_t n, int64_t *out) {
    if (n == 0)
        return -1;
    if (n <= 18 && s[0] >= '1' && s[0] <= '9') {
        int64_t v = 0;
        size_t i = 0;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            v = v * 10 + (s[i] - '0');
        if (i == n) {
            *out = v;
            return 0;
        }
    }
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return -1;
        h = (h ^ c) * 1099511628211ULL;
    }
    h ^= (uint64_t)n; /* splitmix64 finaliser: every input bit reaches every output bit */
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
    h ^= h >> 31;
    *out = (int64_t)(h | 0x8000000000000000ULL);
    return 0;
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
