/* unicode.c — UTF-8 decoding that keeps invalid bytes, pre-tokenizer character classes, NFC.
 *
 * The data comes from unicode_tables.c (generated from Node's regex engine and ICU, so the
 * classes and NFC match the JavaScript tokenizer we test against byte for byte). This file holds
 * only the algorithms: strict UTF-8, table lookups, and NFC as Unicode UAX #15 defines it. It
 * knows nothing of tokens.
 */
#include "unicode.h"

#include <stdlib.h>
#include <string.h>

#include "unicode_tables.h"

_Static_assert(UNITAB_MAX_DECOMP <= UNI_NFC_GROWTH, "NFC growth bound too small for the tables");

/* ---- UTF-8 ----------------------------------------------------------------------------------- */

/* Length of the valid sequence starting at s[0] (1..4), or 0 when s[0] does not begin one.
 * The second-byte ranges are those of Unicode Table 3-7 (they exclude overlongs and surrogates). */
static int utf8_valid_len(const unsigned char *s, size_t avail, uni_unit *cp) {
    unsigned b0 = s[0];
    if (b0 < 0x80) { *cp = b0; return 1; }
    int n;
    unsigned lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) n = 2;
    else if (b0 >= 0xE0 && b0 <= 0xEF) {
        n = 3;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        n = 4;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else return 0;
    if (avail < (size_t)n || s[1] < lo || s[1] > hi) return 0;
    uni_unit v = b0 & (0xFFu >> (n + 1));
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    *cp = v;
    return n;
}

size_t uni_decode(const char *s, size_t len, uni_unit *out) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, n = 0;
    while (i < len) {
        uni_unit cp;
        int k = utf8_valid_len(p + i, len - i, &cp);
        if (k == 0) { out[n++] = UNI_RAW_BYTE + p[i]; i++; }
        else { out[n++] = cp; i += (size_t)k; }
    }
    return n;
}

size_t uni_encode(const uni_unit *u, size_t n, char *out) {
    unsigned char *o = (unsigned char *)out;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uni_unit c = u[i];
        if (c >= UNI_RAW_BYTE) o[k++] = (unsigned char)(c - UNI_RAW_BYTE);
        else if (c < 0x80) o[k++] = (unsigned char)c;
        else if (c < 0x800) {
            o[k++] = (unsigned char)(0xC0 | (c >> 6));
            o[k++] = (unsigned char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            o[k++] = (unsigned char)(0xE0 | (c >> 12));
            o[k++] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
            o[k++] = (unsigned char)(0x80 | (c & 0x3F));
        } else {
            o[k++] = (unsigned char)(0xF0 | (c >> 18));
            o[k++] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
            o[k++] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
            o[k++] = (unsigned char)(0x80 | (c & 0x3F));
        }
    }
    return k;
}

/* ---- table lookups --------------------------------------------------------------------------- */

static unsigned props(uni_unit u) {
    if (u >= UNI_RAW_BYTE) return 0;   /* raw bytes: class other, no NFC flags */
    unsigned blk = unitab_stage1[u >> UNITAB_SHIFT];
    return unitab_stage2[((size_t)blk << UNITAB_SHIFT) | (u & ((1u << UNITAB_SHIFT) - 1))];
}

int uni_class(uni_unit u) { return (int)(props(u) & UNITAB_CAT_MASK); }

int uni_class_ex(uni_unit u) {
    unsigned p = props(u);
    return (int)((p & UNITAB_CAT_MASK) | (((p >> UNITAB_SUB_SHIFT) & 3u) << 2));
}

/* Combining class rank (0 for starters). Every non-starter carries UNITAB_F_NFC, so the binary
 * search runs only for the rare flagged characters. */
static unsigned ccc(uni_unit u) {
    if (!(props(u) & UNITAB_F_NFC)) return 0;
    size_t lo = 0, hi = sizeof unitab_ccc / sizeof unitab_ccc[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u < unitab_ccc[mid].lo) hi = mid;
        else if (u > unitab_ccc[mid].hi) lo = mid + 1;
        else return unitab_ccc[mid].rank;
    }
    return 0;
}

/* Hangul syllables decompose and compose by arithmetic (Unicode 3.12). */
enum { S_BASE = 0xAC00, L_BASE = 0x1100, V_BASE = 0x1161, T_BASE = 0x11A7, L_COUNT = 19,
       V_COUNT = 21, T_COUNT = 28, N_COUNT = V_COUNT * T_COUNT, S_COUNT = L_COUNT * N_COUNT };

/* Writes the full canonical decomposition of u (or u itself) to out; returns its length. */
static size_t decompose(uni_unit u, uni_unit *out) {
    if (u >= S_BASE && u < S_BASE + S_COUNT) {
        uni_unit s = u - S_BASE, t = s % T_COUNT;
        out[0] = L_BASE + s / N_COUNT;
        out[1] = V_BASE + (s % N_COUNT) / T_COUNT;
        if (t == 0) return 2;
        out[2] = T_BASE + t;
        return 3;
    }
    if (props(u) & UNITAB_F_DECOMP) {
        size_t lo = 0, hi = sizeof unitab_decomp / sizeof unitab_decomp[0];
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (u < unitab_decomp[mid].cp) hi = mid;
            else if (u > unitab_decomp[mid].cp) lo = mid + 1;
            else {
                const unitab_decomp_row *r = &unitab_decomp[mid];
                memcpy(out, &unitab_decomp_pool[r->off], r->len * sizeof(uni_unit));
                return r->len;
            }
        }
    }
    out[0] = u;
    return 1;
}

/* The primary composite of <a, b>, or 0. */
static uni_unit compose(uni_unit a, uni_unit b) {
    if (a >= L_BASE && a < L_BASE + L_COUNT && b >= V_BASE && b < V_BASE + V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a >= S_BASE && a < S_BASE + S_COUNT && (a - S_BASE) % T_COUNT == 0 && b > T_BASE &&
        b < T_BASE + T_COUNT)
        return a + (b - T_BASE);
    size_t lo = 0, hi = sizeof unitab_compose / sizeof unitab_compose[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const unitab_pair *p = &unitab_compose[mid];
        if (a < p->a || (a == p->a && b < p->b)) hi = mid;
        else if (a > p->a || b > p->b) lo = mid + 1;
        else return p->composite;
    }
    return 0;
}

/* ---- NFC ------------------------------------------------------------------------------------- */

int uni_nfc_quick(const uni_unit *u, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (props(u[i]) & UNITAB_F_NFC) return 0;
    return 1;
}

size_t uni_nfc(const uni_unit *in, size_t n, uni_unit *out) {
    /* 1. full canonical decomposition */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) m += decompose(in[i], out + m);

    /* 2. canonical ordering: each run of non-starters sorted stably by class (runs are short;
     *    insertion sort is the stable sort that needs no buffer) */
    for (size_t i = 1; i < m; i++) {
        unsigned k = ccc(out[i]);
        if (k == 0) continue;
        for (size_t j = i; j > 0; j--) {
            unsigned kp = ccc(out[j - 1]);
            if (kp <= k) break;
            uni_unit t = out[j - 1];
            out[j - 1] = out[j];
            out[j] = t;
        }
    }

    /* 3. composition in place: a character joins the last starter unless a character left
     *    between them has class 0 or a class >= its own. Those left between stay in canonical
     *    order, so the last one kept has the largest class. */
    size_t w = 0;
    size_t starter = 0;
    int have_starter = 0;
    unsigned last = 0;
    for (size_t i = 0; i < m; i++) {
        uni_unit c = out[i];
        unsigned k = ccc(c);
        if (have_starter && (w - 1 == starter || last < k)) {
            uni_unit p = compose(out[starter], c);
            if (p) { out[starter] = p; continue; }
        }
        if (k == 0) { starter = w; have_starter = 1; }
        out[w++] = c;
        last = k;
    }
    return w;
}

int uni_nfc_utf8(const char *s, size_t len, char **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    /* units: len, NFC units: 4 * len, bytes: 4 * NFC units */
    if (len > SIZE_MAX / (16 * sizeof(uni_unit)) - 1) return -1;
    uni_unit *u = malloc((len + 1) * sizeof *u);
    uni_unit *v = malloc((len * UNI_NFC_GROWTH + 1) * sizeof *v);
    char *b = malloc(len * UNI_NFC_GROWTH * 4 + 1);
    if (!u || !v || !b) { free(u); free(v); free(b); return -1; }
    size_t n = uni_decode(s, len, u);
    if (uni_nfc_quick(u, n)) {
        if (len) memcpy(b, s, len);
        *out_len = len;
    } else {
        size_t m = uni_nfc(u, n, v);
        *out_len = uni_encode(v, m, b);
    }
    free(u);
    free(v);
    *out = b;
    return 0;
}
