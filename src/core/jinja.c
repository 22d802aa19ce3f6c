/* jinja.c — the Jinja2 chat-template interpreter declared in jinja.h.
 *
 * What it is: a lexer that follows Jinja2's (newline normalisation, trim_blocks, lstrip_blocks,
 * `-` and `+` whitespace control), a recursive-descent parser with Jinja2's operator precedence
 * into a node tree, a small strict JSON reader for the context, and a tree-walking renderer whose
 * values behave like the Python objects Jinja2 would hold (str, int, float, bool, None, list,
 * dict, Undefined, namespace, loop, macro). Output, str() and repr() follow Python's formatting
 * (floats by shortest round-trip repr), tojson follows json.dumps.
 * What it is not: a general Jinja2 (see jinja.h for what is left out).
 *
 * Memory: the parsed tree lives in the template's arena; everything a render creates lives in a
 * per-render arena that is dropped at the end, so values are shared freely and never freed one by
 * one. Errors unwind with longjmp to jinja_parse / jinja_render, which free what they own.
 * Strings are UTF-8 (pointer + length); indexes, slices and lengths count code points like Python.
 */
#include "jinja.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JINJA_MAX_OUT (16u << 20)       /* bytes of output */
#define JINJA_MAX_MEM (256u << 20)      /* bytes of arena per render */
#define JINJA_MAX_STEPS 20000000ull     /* evaluation steps per render */
#define JINJA_MAX_DEPTH 200             /* parser nesting and macro call depth */
#define JINJA_MAX_RANGE 100000          /* Jinja2's sandbox MAX_RANGE */
#define JINJA_MAX_JSON_DEPTH 500

/* ---------------------------------------------------------------- arena */

typedef struct ablk {
    struct ablk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} ablk;

typedef struct {
    ablk *head;
    size_t total, limit;
} arena;

static void *ar_alloc(arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (a->head && a->head->cap - a->head->used >= n) {
        void *p = a->head->data + a->head->used;
        a->head->used += n;
        return p;
    }
    size_t cap = n > 65536 ? n : 65536;
    if (n > a->limit || a->total + cap > a->limit) return NULL;
    ablk *b = malloc(sizeof *b + cap);
    if (!b) return NULL;
    a->total += cap;
    b->cap = cap;
    b->used = n;
    if (a->head && n > 4096) { /* a big block goes behind the current one, keeping its free space */
        b->next = a->head->next;
        a->head->next = b;
    } else {
        b->next = a->head;
        a->head = b;
    }
    return b->data;
}

static void ar_free(arena *a) {
    for (ablk *b = a->head, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    a->head = NULL;
    a->total = 0;
}

/* ---------------------------------------------------------------- values */

enum { V_UNDEF, V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_LIST, V_DICT, V_NS, V_FUNC, V_METHOD, V_MACRO, V_LOOP };

/* V_LIST kinds: a generator (select, map, unique, items, reverse: always true, no len, not JSON)
 * and a dict view (.items(), .keys(), .values(): a len, not indexable, not JSON) act like Python's */
enum { LK_LIST, LK_TUPLE, LK_GEN, LK_VIEW };

typedef struct jlist jlist;
typedef struct jdict jdict;

typedef struct jv {
    int t;
    int tuple;     /* V_LIST: LK_LIST, LK_TUPLE, or what Python would hold instead of a list;
                      V_STR: 1 for markupsafe.Markup (the safe filter) */
    size_t n;      /* V_STR / V_UNDEF: bytes of s */
    union {
        int64_t i; /* V_BOOL, V_INT, V_FUNC (builtin id) */
        double f;
        const char *s; /* V_STR; V_UNDEF: the name that was undefined (may be NULL) */
        jlist *l;
        jdict *d; /* V_DICT, V_NS */
        void *p;  /* V_METHOD: struct jmeth, V_MACRO: node, V_LOOP: struct jloop */
    } u;
} jv;

struct jlist {
    size_t n, cap;
    jv *v; /* (cap) */
};
struct jdict {
    size_t n, cap;
    jv *k, *v; /* (cap) keys and values in insertion order */
};

/* ---------------------------------------------------------------- nodes */

enum {
    /* expressions */
    E_LIT, E_NAME, E_LIST, E_TUPLE, E_DICT, E_ATTR, E_ITEM, E_SLICE, E_CALL, E_KW, E_FILTER, E_TEST,
    E_NEG, E_POS, E_NOT, E_AND, E_OR, E_BIN, E_CMP, E_COND,
    /* statements */
    S_TEXT, S_OUT, S_IF, S_FOR, S_SET, S_SETBLOCK, S_MACRO, S_BREAK, S_CONTINUE, S_FILTER, S_GEN
};

/* binary and comparison operators */
enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FDIV, OP_MOD, OP_POW, OP_CAT,
       OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN };

typedef struct node node;
struct node {
    int k, op, line, neg;
    const char *s; /* names, text */
    size_t n;
    jv lit;
    node *a, *b, *c;
    node **kids; /* (nkids) args, items, body */
    int nkids;
    node **els; /* (nels) else body */
    int nels;
    int fid; /* filter / test id */
};

struct jinja_tmpl {
    arena A;
    node **body;
    int nbody;
};

/* ---------------------------------------------------------------- text helpers */

static int name_is(const char *s, size_t n, const char *lit) {
    size_t m = strlen(lit);
    return n == m && memcmp(s, lit, m) == 0;
}

/* Decodes one UTF-8 code point at s[i] (input already valid or treated bytewise). */
static uint32_t u8_dec(const char *s, size_t n, size_t *i) {
    const unsigned char *p = (const unsigned char *)s;
    unsigned c = p[*i];
    int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (c < 0xC0 || *i + (size_t)len > n) len = 1;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (int k = 1; k < len; k++) cp = cp << 6 | (p[*i + (size_t)k] & 0x3F);
    *i += (size_t)len;
    return cp;
}

static size_t u8_enc(uint32_t cp, char *o) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int u8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        if (c < 0x80) { i++; continue; }
        int len = c >= 0xC2 && c < 0xE0 ? 2 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xF0 && c < 0xF5 ? 4 : 0;
        if (!len || i + (size_t)len > n) return 0;
        for (int k = 1; k < len; k++) if ((p[i + (size_t)k] & 0xC0) != 0x80) return 0;
        uint32_t cp = 0;
        size_t j = i;
        cp = u8_dec(s, n, &j);
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp < 0xE000))
            return 0;
        i += (size_t)len;
    }
    return 1;
}

static size_t u8_len(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* Python's str.isspace() for one code point. */
static int py_space(uint32_t c) {
    return (c >= 9 && c <= 13) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

/* Byte length of the whitespace code point that ends at s[end] (exclusive), or 0. */
static size_t space_back(const char *s, size_t start, size_t end) {
    if (end <= start) return 0;
    size_t i = end - 1;
    while (i > start && ((unsigned char)s[i] & 0xC0) == 0x80 && end - i < 4) i--;
    size_t j = i;
    uint32_t cp = u8_dec(s, end, &j);
    if (j != end) { /* not a whole code point: look at the last byte alone */
        unsigned char c = (unsigned char)s[end - 1];
        return c < 0x80 && py_space(c) ? 1 : 0;
    }
    return py_space(cp) ? end - i : 0;
}

static size_t space_fwd(const char *s, size_t i, size_t n) {
    if (i >= n) return 0;
    size_t j = i;
    uint32_t cp = u8_dec(s, n, &j);
    return py_space(cp) ? j - i : 0;
}

/* Python str.isspace for a whole non-empty string. */
static int all_space(const char *s, size_t n) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n;) {
        size_t k = space_fwd(s, i, n);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

/* ---------------------------------------------------------------- lexer */

enum { T_DATA, T_VBEGIN, T_VEND, T_BBEGIN, T_BEND, T_NAME, T_STR, T_INT, T_FLOAT, T_OP, T_EOF };

typedef struct {
    int t, line, col;
    const char *s; /* T_DATA, T_NAME, T_OP: source text; T_STR: decoded value */
    size_t n;
    int64_t i;
    double f;
} tok;

typedef struct {
    arena *A;
    jmp_buf jb;
    char *err;
    size_t errcap;
    const char *src; /* normalised source */
    size_t len;
    tok *toks; /* (ntok) */
    size_t ntok, cap, pos;
    int depth;
    int soft; /* inside an if or a conditional expression: unknown filters/tests fail at run time */
    struct unk { int line, col, soft; } *unk; /* (nunk) filters/tests with unknown names, as Jinja2 */
    size_t nunk, unkcap;
} P;

static void perr(P *p, int line, int col, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->errcap) snprintf(p->err, p->errcap, "line %d col %d: %s", line, col, msg);
    longjmp(p->jb, 1);
}

static void *palloc(P *p, size_t n) {
    void *m = ar_alloc(p->A, n);
    if (!m) perr(p, 0, 0, "out of memory");
    memset(m, 0, n);
    return m;
}

static void pos_of(P *p, size_t off, int *line, int *col) {
    int l = 1, c = 1;
    for (size_t i = 0; i < off && i < p->len; i++) {
        if (p->src[i] == '\n') { l++; c = 1; } else c++;
    }
    *line = l;
    *col = c;
}

static tok *push_tok(P *p, int t, size_t off) {
    if (p->ntok == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 256;
        tok *nt = ar_alloc(p->A, nc * sizeof *nt);
        if (!nt) perr(p, 0, 0, "out of memory");
        if (p->ntok) memcpy(nt, p->toks, p->ntok * sizeof *nt);
        p->toks = nt;
        p->cap = nc;
    }
    tok *k = &p->toks[p->ntok++];
    memset(k, 0, sizeof *k);
    k->t = t;
    pos_of(p, off, &k->line, &k->col);
    return k;
}

/* Python's unicode-escape decoding of a string literal body (Jinja2 does exactly this). */
static void lex_string(P *p, tok *k, const char *s, size_t n) {
    char *o = palloc(p, n + 1);
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\' || i + 1 >= n) { o[m++] = s[i++]; continue; }
        char c = s[i + 1];
        i += 2;
        switch (c) {
        case '\n': break;
        case '\\': o[m++] = '\\'; break;
        case '\'': o[m++] = '\''; break;
        case '"': o[m++] = '"'; break;
        case 'a': o[m++] = 7; break;
        case 'b': o[m++] = 8; break;
        case 'f': o[m++] = 12; break;
        case 'n': o[m++] = 10; break;
        case 'r': o[m++] = 13; break;
        case 't': o[m++] = 9; break;
        case 'v': o[m++] = 11; break;
        case 'x': case 'u': case 'U': {
            int nd = c == 'x' ? 2 : c == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int d = 0; d < nd; d++) {
                char h = i + (size_t)d < n ? s[i + (size_t)d] : 0;
                int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                if (v < 0) perr(p, k->line, k->col, "truncated \\%c escape in a string", c);
                cp = cp * 16 + (uint32_t)v;
            }
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) perr(p, k->line, k->col, "invalid escape in a string");
            i += (size_t)nd;
            m += u8_enc(cp, o + m);
            break;
        }
        default:
            if (c >= '0' && c <= '7') {
                uint32_t cp = (uint32_t)(c - '0');
                for (int d = 0; d < 2 && i < n && s[i] >= '0' && s[i] <= '7'; d++) cp = cp * 8 + (uint32_t)(s[i++] - '0');
                m += u8_enc(cp, o + m);
            } else {
                o[m++] = '\\';
                i--; /* unknown escape: kept as written */
            }
        }
    }
    k->s = o;
    k->n = m;
}

/* Tokens of one {{ }} or {% %} tag starting at i (after the opening and its sign). Returns the
 * offset after the closing marker; *strip_after set when it was `-%}` / `-}}`. */
static size_t lex_tag(P *p, size_t i, int block, int *strip_after) {
    const char *s = p->src;
    size_t n = p->len;
    int depth = 0;
    char close = block ? '%' : '}';
    size_t open_at = i;
    for (;;) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
        if (i >= n) {
            int l, c;
            pos_of(p, open_at, &l, &c);
            perr(p, l, c, "unexpected end of template inside a tag");
        }
        if (depth == 0) {
            if (s[i] == '-' && i + 2 < n && s[i + 1] == close && s[i + 2] == '}') {
                *strip_after = 1;
                push_tok(p, block ? T_BEND : T_VEND, i);
                return i + 3;
            }
            if (s[i] == close && i + 1 < n && s[i + 1] == '}') {
                *strip_after = 0;
                push_tok(p, block ? T_BEND : T_VEND, i);
                return i + 2;
            }
        }
        char c = s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
            size_t j = i;
            while (j < n && ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') || s[j] == '_' ||
                             (s[j] >= '0' && s[j] <= '9')))
                j++;
            tok *k = push_tok(p, T_NAME, i);
            k->s = s + i;
            k->n = j - i;
            i = j;
        } else if (c >= '0' && c <= '9') {
            size_t j = i;
            char buf[128];
            size_t m = 0;
            int isf = 0;
            while (j < n && ((s[j] >= '0' && s[j] <= '9') || (s[j] == '_' && j + 1 < n && s[j + 1] >= '0' && s[j + 1] <= '9'))) {
                if (s[j] != '_' && m < 100) buf[m++] = s[j];
                j++;
            }
            if (j + 1 < n && s[j] == '.' && s[j + 1] >= '0' && s[j + 1] <= '9') {
                isf = 1;
                buf[m++] = s[j++];
                while (j < n && ((s[j] >= '0' && s[j] <= '9') || s[j] == '_')) {
                    if (s[j] != '_' && m < 120) buf[m++] = s[j];
                    j++;
                }
            }
            if (j < n && (s[j] == 'e' || s[j] == 'E')) {
                size_t e = j + 1;
                if (e < n && (s[e] == '+' || s[e] == '-')) e++;
                if (e < n && s[e] >= '0' && s[e] <= '9') {
                    isf = 1;
                    buf[m++] = 'e';
                    if (s[j + 1] == '-') buf[m++] = '-';
                    j = e;
                    while (j < n && s[j] >= '0' && s[j] <= '9') {
                        if (m < 126) buf[m++] = s[j];
                        j++;
                    }
                }
            }
            buf[m] = 0;
            tok *k = push_tok(p, isf ? T_FLOAT : T_INT, i);
            if (isf) k->f = strtod(buf, NULL);
            else {
                char *end;
                unsigned long long v = strtoull(buf, &end, 10);
                if (m > 18 && (v > INT64_MAX || m > 19)) perr(p, k->line, k->col, "integer literal too large");
                k->i = (int64_t)v;
            }
            i = j;
        } else if (c == '\'' || c == '"') {
            size_t j = i + 1;
            while (j < n && s[j] != c) j += s[j] == '\\' ? 2 : 1;
            tok *k = push_tok(p, T_STR, i);
            if (j >= n) perr(p, k->line, k->col, "unterminated string");
            lex_string(p, k, s + i + 1, j - i - 1);
            i = j + 1;
        } else {
            static const char *two[] = {"//", "**", "==", "!=", "<=", ">="};
            size_t len = 0;
            for (int t = 0; t < 6; t++)
                if (i + 1 < n && s[i] == two[t][0] && s[i + 1] == two[t][1]) len = 2;
            if (!len) {
                if (!strchr("+-*/%~()[]{},.:|=<>;", c) || c == 0) {
                    tok *k = push_tok(p, T_OP, i);
                    perr(p, k->line, k->col, "unexpected character '%c'", c);
                }
                len = 1;
                if (c == '(' || c == '[' || c == '{') depth++;
                if ((c == ')' || c == ']' || c == '}') && depth > 0) depth--;
            }
            tok *k = push_tok(p, T_OP, i);
            k->s = s + i;
            k->n = len;
            i += len;
        }
    }
}

static void lex(P *p) {
    const char *s = p->src;
    size_t n = p->len, i = 0;
    int line_start = 1;
    while (i < n) {
        /* the next tag opening */
        size_t j = i;
        int kind = -1; /* 0 {{, 1 {%, 2 {# */
        for (; j + 1 < n; j++) {
            if (s[j] != '{') continue;
            if (s[j + 1] == '{') { kind = 0; break; }
            if (s[j + 1] == '%') { kind = 1; break; }
            if (s[j + 1] == '#') { kind = 2; break; }
        }
        if (kind < 0) j = n;
        size_t tend = j; /* text is s[i, tend) */
        char sign = kind >= 0 && j + 2 < n ? s[j + 2] : 0;
        if (kind >= 0 && sign == '-') {
            while (tend > i) {
                size_t k = space_back(s, i, tend);
                if (!k) break;
                tend -= k;
            }
        } else if (kind >= 1 && sign != '+') { /* lstrip_blocks: block and comment tags */
            size_t l = tend;
            while (l > i && s[l - 1] != '\n') l--;
            if ((l > i || line_start) && tend > l && all_space(s + l, tend - l)) tend = l;
        }
        if (tend > i) {
            tok *k = push_tok(p, T_DATA, i);
            k->s = s + i;
            k->n = tend - i;
        }
        if (kind < 0) break;
        size_t a = j + 2 + (sign == '-' || sign == '+');
        int strip_after = 0;
        size_t after;
        if (kind == 2) {
            size_t e = a;
            while (e + 1 < n && !(s[e] == '#' && s[e + 1] == '}')) e++;
            if (e + 1 >= n) {
                int l, c;
                pos_of(p, j, &l, &c);
                perr(p, l, c, "unterminated comment");
            }
            strip_after = e > a && s[e - 1] == '-';
            after = e + 2;
        } else {
            push_tok(p, kind == 0 ? T_VBEGIN : T_BBEGIN, j);
            after = lex_tag(p, a, kind == 1, &strip_after);
        }
        size_t m = after;
        if (strip_after) {
            for (;;) {
                size_t k = space_fwd(s, m, n);
                if (!k) break;
                m += k;
            }
        } else if (kind >= 1 && m < n && s[m] == '\n') {
            m++; /* trim_blocks */
        }
        line_start = m > j && s[m - 1] == '\n';
        i = m;
    }
    push_tok(p, T_EOF, n);
}

/* ---------------------------------------------------------------- filter and test names */

enum {
    F_ABS, F_ATTR, F_BATCH, F_CAPITALIZE, F_CENTER, F_COUNT, F_D, F_DEFAULT, F_DICTSORT, F_E, F_ESCAPE,
    F_FILESIZEFORMAT, F_FIRST, F_FLOAT, F_FORCEESCAPE, F_FORMAT, F_GROUPBY, F_INDENT, F_INT, F_ITEMS,
    F_JOIN, F_LAST, F_LENGTH, F_LIST, F_LOWER, F_MAP, F_MAX, F_MIN, F_PPRINT, F_RANDOM, F_REJECT,
    F_REJECTATTR, F_REPLACE, F_REVERSE, F_ROUND, F_SAFE, F_SELECT, F_SELECTATTR, F_SLICE, F_SORT,
    F_STRING, F_STRIPTAGS, F_SUM, F_TITLE, F_TOJSON, F_TRIM, F_TRUNCATE, F_UNIQUE, F_UPPER, F_URLENCODE,
    F_URLIZE, F_WORDCOUNT, F_WORDWRAP, F_XMLATTR, F_N
};
static const char *const filter_names[F_N] = {
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
    "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int", "items",
    "join", "last", "length", "list", "lower", "map", "max", "min", "pprint", "random", "reject",
    "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "slice", "sort",
    "string", "striptags", "sum", "title", "tojson", "trim", "truncate", "unique", "upper", "urlencode",
    "urlize", "wordcount", "wordwrap", "xmlattr"};

enum {
    TS_BOOLEAN, TS_CALLABLE, TS_DEFINED, TS_DIVISIBLEBY, TS_EQ, TS_EQUALTO, TS_ESCAPED, TS_EVEN,
    TS_FALSE, TS_FILTER, TS_FLOAT, TS_GE, TS_GT, TS_GREATERTHAN, TS_IN, TS_INTEGER, TS_ITERABLE, TS_LE,
    TS_LOWER, TS_LT, TS_LESSTHAN, TS_MAPPING, TS_NE, TS_NONE, TS_NUMBER, TS_ODD, TS_SAMEAS,
    TS_SEQUENCE, TS_STRING, TS_TEST, TS_TRUE, TS_UNDEFINED, TS_UPPER, TS_OPEQ, TS_OPNE, TS_OPLT,
    TS_OPLE, TS_OPGT, TS_OPGE, TS_N
};
static const char *const test_names[TS_N] = {
    "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false",
    "filter", "float", "ge", "gt", "greaterthan", "in", "integer", "iterable", "le", "lower", "lt",
    "lessthan", "mapping", "ne", "none", "number", "odd", "sameas", "sequence", "string", "test",
    "true", "undefined", "upper", "==", "!=", "<", "<=", ">", ">="};

static int find_name(const char *const *tab, int n, const char *s, size_t len) {
    for (int i = 0; i < n; i++)
        if (name_is(s, len, tab[i])) return i;
    return -1;
}

/* Jinja2 fails at compile time on an unknown filter or test, except inside an if statement or a
 * conditional expression ("soft" frames), where only running it fails. */
static void note_unknown(P *p, tok *nm) {
    if (p->nunk == p->unkcap) {
        size_t nc = p->unkcap ? p->unkcap * 2 : 8;
        struct unk *nu = ar_alloc(p->A, nc * sizeof *nu);
        if (!nu) longjmp(p->jb, 1);
        if (p->nunk) memcpy(nu, p->unk, p->nunk * sizeof *nu);
        p->unk = nu;
        p->unkcap = nc;
    }
    p->unk[p->nunk].line = nm->line;
    p->unk[p->nunk].col = nm->col;
    p->unk[p->nunk++].soft = p->soft;
}

/* ---------------------------------------------------------------- parser */

static tok *cur(P *p) { return &p->toks[p->pos]; }
static tok *peek(P *p, size_t k) {
    size_t i = p->pos + k;
    return &p->toks[i < p->ntok ? i : p->ntok - 1];
}
static int is_op(tok *k, const char *op) { return k->t == T_OP && name_is(k->s, k->n, op); }
static int is_name(tok *k, const char *nm) { return k->t == T_NAME && name_is(k->s, k->n, nm); }

static const char *tok_desc(tok *k) {
    switch (k->t) {
    case T_EOF: return "end of template";
    case T_VEND: return "end of print statement";
    case T_BEND: return "end of statement block";
    case T_STR: return "string";
    case T_INT: case T_FLOAT: return "number";
    case T_NAME: return "name";
    default: return "token";
    }
}

static void expect_op(P *p, const char *op) {
    tok *k = cur(p);
    if (!is_op(k, op)) perr(p, k->line, k->col, "expected '%s', got %s", op, tok_desc(k));
    p->pos++;
}

static tok *expect_t(P *p, int t, const char *what) {
    tok *k = cur(p);
    if (k->t != t) perr(p, k->line, k->col, "expected %s, got %s", what, tok_desc(k));
    p->pos++;
    return k;
}

static node *mk(P *p, int k, tok *at) {
    node *x = palloc(p, sizeof *x);
    x->k = k;
    x->line = at->line;
    return x;
}

typedef struct {
    node **v;
    int n, cap;
} nvec;

static void nv_push(P *p, nvec *v, node *x) {
    if (v->n == v->cap) {
        int nc = v->cap ? v->cap * 2 : 8;
        node **nn = palloc(p, (size_t)nc * sizeof *nn);
        if (v->n) memcpy(nn, v->v, (size_t)v->n * sizeof *nn);
        v->v = nn;
        v->cap = nc;
    }
    v->v[v->n++] = x;
}

static node *parse_expr(P *p);
static node *parse_or(P *p);
static node *parse_unary(P *p, int with_filter);
static node *parse_primary(P *p);
static node *parse_postfix(P *p, node *x);

static void enter(P *p) {
    if (++p->depth > JINJA_MAX_DEPTH) {
        tok *k = cur(p);
        perr(p, k->line, k->col, "nesting too deep");
    }
}

/* (args) of a call, filter or test: positional nodes and E_KW nodes. */
static void parse_args(P *p, node *x) {
    nvec v = {0};
    expect_op(p, "(");
    while (!is_op(cur(p), ")")) {
        if (v.n) {
            expect_op(p, ",");
            if (is_op(cur(p), ")")) break;
        }
        tok *k = cur(p);
        if (k->t == T_NAME && is_op(peek(p, 1), "=")) {
            node *kw = mk(p, E_KW, k);
            kw->s = k->s;
            kw->n = k->n;
            p->pos += 2;
            kw->a = parse_expr(p);
            nv_push(p, &v, kw);
        } else {
            if (is_op(k, "*") || is_op(k, "**")) perr(p, k->line, k->col, "*args and **kwargs are not supported");
            nv_push(p, &v, parse_expr(p));
        }
    }
    p->pos++;
    x->kids = v.v;
    x->nkids = v.n;
}

static node *parse_filters_tests(P *p, node *x) {
    for (;;) {
        tok *k = cur(p);
        if (is_op(k, "|")) {
            p->pos++;
            tok *nm = expect_t(p, T_NAME, "filter name");
            node *f = mk(p, E_FILTER, nm);
            f->s = nm->s;
            f->n = nm->n;
            f->fid = find_name(filter_names, F_N, nm->s, nm->n);
            if (f->fid < 0) note_unknown(p, nm);
            f->a = x;
            if (is_op(cur(p), "(")) parse_args(p, f);
            x = f;
        } else if (is_name(k, "is")) {
            p->pos++;
            node *t = mk(p, E_TEST, k);
            if (is_name(cur(p), "not")) { t->neg = 1; p->pos++; }
            tok *nm = cur(p);
            if (nm->t != T_NAME && !(nm->t == T_OP && find_name(test_names, TS_N, nm->s, nm->n) >= 0))
                perr(p, nm->line, nm->col, "expected test name");
            p->pos++;
            t->s = nm->s;
            t->n = nm->n;
            t->fid = find_name(test_names, TS_N, nm->s, nm->n);
            if (t->fid < 0) note_unknown(p, nm);
            t->a = x;
            tok *c = cur(p);
            if (is_op(c, "(")) parse_args(p, t);
            else if ((c->t == T_NAME || c->t == T_STR || c->t == T_INT || c->t == T_FLOAT || is_op(c, "[") ||
                      is_op(c, "{")) && !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
                node *arg = parse_postfix(p, parse_primary(p));
                t->kids = palloc(p, sizeof(node *));
                t->kids[0] = arg;
                t->nkids = 1;
            }
            x = t;
        } else if (is_op(k, "(")) {
            node *c = mk(p, E_CALL, k);
            c->a = x;
            parse_args(p, c);
            x = c;
        } else {
            return x;
        }
    }
}

static node *parse_postfix(P *p, node *x) {
    for (;;) {
        tok *k = cur(p);
        if (is_op(k, ".")) {
            p->pos++;
            tok *nm = cur(p);
            if (nm->t == T_NAME) {
                node *a = mk(p, E_ATTR, nm);
                a->a = x;
                a->s = nm->s;
                a->n = nm->n;
                x = a;
            } else if (nm->t == T_INT) {
                node *a = mk(p, E_ITEM, nm);
                a->a = x;
                a->b = mk(p, E_LIT, nm);
                a->b->lit.t = V_INT;
                a->b->lit.u.i = nm->i;
                x = a;
            } else {
                perr(p, nm->line, nm->col, "expected name or number after '.'");
            }
            p->pos++;
        } else if (is_op(k, "[")) {
            p->pos++;
            node *parts[3] = {0};
            int nparts = 1, slice = 0;
            for (;;) {
                tok *c = cur(p);
                if (is_op(c, ":")) {
                    slice = 1;
                    if (nparts == 3) perr(p, c->line, c->col, "too many ':' in a slice");
                    nparts++;
                    p->pos++;
                    continue;
                }
                if (is_op(c, "]")) break;
                if (parts[nparts - 1]) perr(p, c->line, c->col, "expected ']'");
                parts[nparts - 1] = parse_expr(p);
                if (!slice && is_op(cur(p), ",")) perr(p, c->line, c->col, "tuple subscripts are not supported");
            }
            p->pos++;
            if (!slice && !parts[0]) perr(p, k->line, k->col, "empty subscript");
            node *a = mk(p, slice ? E_SLICE : E_ITEM, k);
            a->a = x;
            if (slice) {
                a->kids = palloc(p, 3 * sizeof(node *));
                memcpy(a->kids, parts, sizeof parts);
                a->nkids = 3;
            } else {
                a->b = parts[0];
            }
            x = a;
        } else if (is_op(k, "(")) {
            node *c = mk(p, E_CALL, k);
            c->a = x;
            parse_args(p, c);
            x = c;
        } else {
            return x;
        }
    }
}

static node *parse_primary(P *p) {
    tok *k = cur(p);
    enter(p);
    node *x;
    if (k->t == T_NAME) {
        p->pos++;
        x = mk(p, E_LIT, k);
        if (is_name(k, "true") || is_name(k, "True")) { x->lit.t = V_BOOL; x->lit.u.i = 1; }
        else if (is_name(k, "false") || is_name(k, "False")) { x->lit.t = V_BOOL; x->lit.u.i = 0; }
        else if (is_name(k, "none") || is_name(k, "None")) x->lit.t = V_NONE;
        else { x->k = E_NAME; x->s = k->s; x->n = k->n; }
    } else if (k->t == T_STR) {
        /* adjacent string literals concatenate */
        size_t total = 0, i = p->pos;
        while (p->toks[i].t == T_STR) total += p->toks[i++].n;
        char *buf = palloc(p, total + 1);
        size_t m = 0;
        while (cur(p)->t == T_STR) {
            memcpy(buf + m, cur(p)->s, cur(p)->n);
            m += cur(p)->n;
            p->pos++;
        }
        x = mk(p, E_LIT, k);
        x->lit.t = V_STR;
        x->lit.u.s = buf;
        x->lit.n = m;
    } else if (k->t == T_INT || k->t == T_FLOAT) {
        p->pos++;
        x = mk(p, E_LIT, k);
        if (k->t == T_INT) { x->lit.t = V_INT; x->lit.u.i = k->i; }
        else { x->lit.t = V_FLOAT; x->lit.u.f = k->f; }
    } else if (is_op(k, "(")) {
        p->pos++;
        nvec v = {0};
        int comma = 0;
        while (!is_op(cur(p), ")")) {
            if (v.n) {
                expect_op(p, ",");
                comma = 1;
                if (is_op(cur(p), ")")) break;
            }
            nv_push(p, &v, parse_expr(p));
        }
        p->pos++;
        if (v.n == 1 && !comma) x = v.v[0];
        else {
            x = mk(p, E_TUPLE, k);
            x->kids = v.v;
            x->nkids = v.n;
        }
    } else if (is_op(k, "[")) {
        p->pos++;
        nvec v = {0};
        while (!is_op(cur(p), "]")) {
            if (v.n) {
                expect_op(p, ",");
                if (is_op(cur(p), "]")) break;
            }
            nv_push(p, &v, parse_expr(p));
        }
        p->pos++;
        x = mk(p, E_LIST, k);
        x->kids = v.v;
        x->nkids = v.n;
    } else if (is_op(k, "{")) {
        p->pos++;
        nvec v = {0};
        while (!is_op(cur(p), "}")) {
            if (v.n) {
                expect_op(p, ",");
                if (is_op(cur(p), "}")) break;
            }
            nv_push(p, &v, parse_expr(p));
            expect_op(p, ":");
            nv_push(p, &v, parse_expr(p));
        }
        p->pos++;
        x = mk(p, E_DICT, k);
        x->kids = v.v;
        x->nkids = v.n;
    } else {
        perr(p, k->line, k->col, "unexpected %s", tok_desc(k));
        return NULL;
    }
    p->depth--;
    return x;
}

static node *parse_unary(P *p, int with_filter) {
    tok *k = cur(p);
    node *x;
    enter(p);
    if (is_op(k, "-") || is_op(k, "+")) {
        p->pos++;
        x = mk(p, is_op(k, "-") ? E_NEG : E_POS, k);
        x->a = parse_unary(p, 0);
    } else {
        x = parse_postfix(p, parse_primary(p));
    }
    if (with_filter) x = parse_filters_tests(p, x);
    p->depth--;
    return x;
}

static node *bin(P *p, tok *k, int op, node *a, node *b) {
    node *x = mk(p, E_BIN, k);
    x->op = op;
    x->a = a;
    x->b = b;
    return x;
}

static node *parse_pow(P *p) {
    node *x = parse_unary(p, 1);
    while (is_op(cur(p), "**")) {
        tok *k = cur(p);
        p->pos++;
        x = bin(p, k, OP_POW, x, parse_unary(p, 1));
    }
    return x;
}

static node *parse_math2(P *p) {
    node *x = parse_pow(p);
    for (;;) {
        tok *k = cur(p);
        int op = is_op(k, "*") ? OP_MUL : is_op(k, "/") ? OP_DIV : is_op(k, "//") ? OP_FDIV : is_op(k, "%") ? OP_MOD : -1;
        if (op < 0) return x;
        p->pos++;
        x = bin(p, k, op, x, parse_pow(p));
    }
}

static node *parse_concat(P *p) {
    node *x = parse_math2(p);
    while (is_op(cur(p), "~")) {
        tok *k = cur(p);
        p->pos++;
        x = bin(p, k, OP_CAT, x, parse_math2(p));
    }
    return x;
}

static node *parse_math1(P *p) {
    node *x = parse_concat(p);
    for (;;) {
        tok *k = cur(p);
        int op = is_op(k, "+") ? OP_ADD : is_op(k, "-") ? OP_SUB : -1;
        if (op < 0) return x;
        p->pos++;
        x = bin(p, k, op, x, parse_concat(p));
    }
}

static node *parse_compare(P *p) {
    node *x = parse_math1(p);
    for (;;) {
        tok *k = cur(p);
        int op = is_op(k, "==") ? OP_EQ : is_op(k, "!=") ? OP_NE : is_op(k, "<") ? OP_LT : is_op(k, "<=") ? OP_LE
                 : is_op(k, ">") ? OP_GT : is_op(k, ">=") ? OP_GE : is_name(k, "in") ? OP_IN
                 : is_name(k, "not") && is_name(peek(p, 1), "in") ? OP_NOTIN : -1;
        if (op < 0) return x;
        p->pos += op == OP_NOTIN ? 2 : 1;
        node *c = bin(p, k, op, x, parse_math1(p));
        c->k = E_CMP;
        x = c;
    }
}

static node *parse_not(P *p) {
    tok *k = cur(p);
    if (is_name(k, "not")) {
        p->pos++;
        enter(p);
        node *x = mk(p, E_NOT, k);
        x->a = parse_not(p);
        p->depth--;
        return x;
    }
    return parse_compare(p);
}

static node *parse_and(P *p) {
    node *x = parse_not(p);
    while (is_name(cur(p), "and")) {
        tok *k = cur(p);
        p->pos++;
        node *y = mk(p, E_AND, k);
        y->a = x;
        y->b = parse_not(p);
        x = y;
    }
    return x;
}

static node *parse_or(P *p) {
    node *x = parse_and(p);
    while (is_name(cur(p), "or")) {
        tok *k = cur(p);
        p->pos++;
        node *y = mk(p, E_OR, k);
        y->a = x;
        y->b = parse_and(p);
        x = y;
    }
    return x;
}

static node *parse_expr(P *p) {
    enter(p);
    size_t unk0 = p->nunk;
    node *x = parse_or(p);
    while (is_name(cur(p), "if")) {
        int soft = p->soft;
        p->soft = 1;
        for (size_t i = unk0; i < p->nunk; i++) p->unk[i].soft = 1;
        tok *k = cur(p);
        p->pos++;
        node *c = mk(p, E_COND, k);
        c->b = x;
        c->a = parse_or(p);
        if (is_name(cur(p), "else")) {
            p->pos++;
            c->c = parse_expr(p);
        }
        p->soft = soft;
        x = c;
    }
    p->depth--;
    return x;
}

/* expression, or a bare tuple `a, b` (output and set values) */
static node *parse_tuple_expr(P *p) {
    tok *k = cur(p);
    node *x = parse_expr(p);
    if (!is_op(cur(p), ",")) return x;
    nvec v = {0};
    nv_push(p, &v, x);
    while (is_op(cur(p), ",")) {
        p->pos++;
        tok *c = cur(p);
        if (c->t == T_VEND || c->t == T_BEND) break;
        nv_push(p, &v, parse_expr(p));
    }
    node *t = mk(p, E_TUPLE, k);
    t->kids = v.v;
    t->nkids = v.n;
    return t;
}

/* assignment target: name, name.attr (set only), or names separated by commas */
static node *parse_target(P *p, int allow_attr) {
    tok *k = cur(p);
    nvec v = {0};
    int paren = 0;
    if (is_op(k, "(")) { paren = 1; p->pos++; }
    for (;;) {
        tok *nm = expect_t(p, T_NAME, "name");
        node *x = mk(p, E_NAME, nm);
        x->s = nm->s;
        x->n = nm->n;
        if (allow_attr && !v.n && is_op(cur(p), ".")) {
            p->pos++;
            tok *at = expect_t(p, T_NAME, "attribute name");
            node *a = mk(p, E_ATTR, at);
            a->a = x;
            a->s = at->s;
            a->n = at->n;
            return a;
        }
        nv_push(p, &v, x);
        if (!is_op(cur(p), ",")) break;
        p->pos++;
        if (paren && is_op(cur(p), ")")) break;
    }
    if (paren) expect_op(p, ")");
    if (v.n == 1 && !paren) return v.v[0];
    node *t = mk(p, E_TUPLE, k);
    t->kids = v.v;
    t->nkids = v.n;
    return t;
}

static void parse_body(P *p, nvec *out, const char *const *ends, int nends);

static void end_tag(P *p) { expect_t(p, T_BEND, "end of statement block"); }

/* Parses a body up to one of `ends`; returns which end name was met (its tag is consumed up to
 * the name; the caller reads the rest of that tag). */
static int body_until(P *p, nvec *out, const char *const *ends, int nends) {
    parse_body(p, out, ends, nends);
    tok *nm = cur(p);
    for (int i = 0; i < nends; i++)
        if (is_name(nm, ends[i])) { p->pos++; return i; }
    perr(p, nm->line, nm->col, "unexpected end of template: missing {%% %s %%}", ends[nends - 1]);
    return -1;
}

static node *parse_stmt(P *p, tok *open) {
    tok *k = cur(p);
    if (k->t != T_NAME) perr(p, k->line, k->col, "expected a statement name");
    p->pos++;
    enter(p);
    node *x = NULL;
    if (is_name(k, "if")) {
        x = mk(p, S_IF, k);
        int soft = p->soft;
        p->soft = 1;
        x->a = parse_or(p);
        end_tag(p);
        static const char *const ends[] = {"elif", "else", "endif"};
        nvec body = {0};
        int e = body_until(p, &body, ends, 3);
        x->kids = body.v;
        x->nkids = body.n;
        node *last = x;
        while (e == 0) { /* elif: a nested if in the else branch */
            node *y = mk(p, S_IF, cur(p));
            y->a = parse_or(p);
            end_tag(p);
            nvec b2 = {0};
            e = body_until(p, &b2, ends, 3);
            y->kids = b2.v;
            y->nkids = b2.n;
            last->els = palloc(p, sizeof(node *));
            last->els[0] = y;
            last->nels = 1;
            last = y;
        }
        if (e == 1) {
            end_tag(p);
            static const char *const ends2[] = {"endif"};
            nvec b3 = {0};
            body_until(p, &b3, ends2, 1);
            last->els = b3.v;
            last->nels = b3.n;
        }
        end_tag(p);
        p->soft = soft;
    } else if (is_name(k, "for")) {
        x = mk(p, S_FOR, k);
        x->a = parse_target(p, 0);
        tok *in = cur(p);
        if (!is_name(in, "in")) perr(p, in->line, in->col, "expected 'in'");
        p->pos++;
        x->b = parse_or(p);
        if (is_op(cur(p), ",")) perr(p, cur(p)->line, cur(p)->col, "tuple iterables are not supported");
        if (is_name(cur(p), "if")) {
            p->pos++;
            x->c = parse_expr(p);
        }
        if (is_name(cur(p), "recursive")) perr(p, cur(p)->line, cur(p)->col, "recursive loops are not supported");
        end_tag(p);
        int soft = p->soft;
        p->soft = 0;
        static const char *const ends[] = {"else", "endfor"};
        nvec body = {0};
        int e = body_until(p, &body, ends, 2);
        x->kids = body.v;
        x->nkids = body.n;
        if (e == 0) {
            end_tag(p);
            static const char *const ends2[] = {"endfor"};
            nvec b2 = {0};
            body_until(p, &b2, ends2, 1);
            x->els = b2.v;
            x->nels = b2.n;
        }
        end_tag(p);
        p->soft = soft;
    } else if (is_name(k, "set")) {
        node *target = parse_target(p, 1);
        if (is_op(cur(p), "=")) {
            p->pos++;
            x = mk(p, S_SET, k);
            x->a = target;
            x->b = parse_tuple_expr(p);
            end_tag(p);
        } else {
            x = mk(p, S_SETBLOCK, k);
            x->a = target;
            if (target->k != E_NAME) perr(p, k->line, k->col, "a block set needs a plain name");
            node *f = NULL;
            if (is_op(cur(p), "|")) {
                f = parse_filters_tests(p, NULL);
            }
            x->b = f; /* filter chain applied to the body (innermost a == NULL) */
            end_tag(p);
            static const char *const ends[] = {"endset"};
            nvec body = {0};
            body_until(p, &body, ends, 1);
            x->kids = body.v;
            x->nkids = body.n;
            end_tag(p);
        }
    } else if (is_name(k, "macro")) {
        x = mk(p, S_MACRO, k);
        tok *nm = expect_t(p, T_NAME, "macro name");
        x->s = nm->s;
        x->n = nm->n;
        expect_op(p, "(");
        nvec params = {0};
        while (!is_op(cur(p), ")")) {
            if (params.n) expect_op(p, ",");
            tok *pn = expect_t(p, T_NAME, "parameter name");
            node *prm = mk(p, E_KW, pn);
            prm->s = pn->s;
            prm->n = pn->n;
            if (is_op(cur(p), "=")) {
                p->pos++;
                prm->a = parse_expr(p);
            }
            nv_push(p, &params, prm);
        }
        p->pos++;
        end_tag(p);
        x->els = params.v; /* parameters */
        x->nels = params.n;
        static const char *const ends[] = {"endmacro"};
        nvec body = {0};
        int soft = p->soft;
        p->soft = 0;
        body_until(p, &body, ends, 1);
        p->soft = soft;
        x->kids = body.v;
        x->nkids = body.n;
        if (cur(p)->t == T_NAME) p->pos++; /* {% endmacro name %} */
        end_tag(p);
    } else if (is_name(k, "break") || is_name(k, "continue")) {
        x = mk(p, is_name(k, "break") ? S_BREAK : S_CONTINUE, k);
        end_tag(p);
    } else if (is_name(k, "filter")) {
        x = mk(p, S_FILTER, k);
        p->pos--; /* parse "filter" as if it followed a '|' */
        p->toks[p->pos].t = T_OP;
        p->toks[p->pos].s = "|";
        p->toks[p->pos].n = 1;
        x->b = parse_filters_tests(p, NULL);
        end_tag(p);
        static const char *const ends[] = {"endfilter"};
        nvec body = {0};
        body_until(p, &body, ends, 1);
        x->kids = body.v;
        x->nkids = body.n;
        end_tag(p);
    } else if (is_name(k, "generation")) {
        x = mk(p, S_GEN, k);
        end_tag(p);
        static const char *const ends[] = {"endgeneration"};
        nvec body = {0};
        body_until(p, &body, ends, 1);
        x->kids = body.v;
        x->nkids = body.n;
        end_tag(p);
    } else {
        perr(p, k->line, k->col, "unknown tag '%.*s'", (int)k->n, k->s);
    }
    (void)open;
    p->depth--;
    return x;
}

static void parse_body(P *p, nvec *out, const char *const *ends, int nends) {
    for (;;) {
        tok *k = cur(p);
        if (k->t == T_EOF) {
            if (nends) perr(p, k->line, k->col, "unexpected end of template: missing {%% %s %%}", ends[nends - 1]);
            return;
        }
        if (k->t == T_DATA) {
            node *x = mk(p, S_TEXT, k);
            x->s = k->s;
            x->n = k->n;
            nv_push(p, out, x);
            p->pos++;
        } else if (k->t == T_VBEGIN) {
            p->pos++;
            node *x = mk(p, S_OUT, k);
            x->a = parse_tuple_expr(p);
            expect_t(p, T_VEND, "end of print statement");
            nv_push(p, out, x);
        } else if (k->t == T_BBEGIN) {
            tok *nm = peek(p, 1);
            for (int i = 0; i < nends; i++)
                if (is_name(nm, ends[i])) { p->pos++; return; }
            if (nm->t == T_NAME && (name_is(nm->s, nm->n, "endif") || name_is(nm->s, nm->n, "endfor") ||
                                    name_is(nm->s, nm->n, "else") || name_is(nm->s, nm->n, "elif") ||
                                    name_is(nm->s, nm->n, "endmacro") || name_is(nm->s, nm->n, "endset")))
                perr(p, nm->line, nm->col, "unexpected '%.*s'", (int)nm->n, nm->s);
            p->pos++;
            nv_push(p, out, parse_stmt(p, k));
        } else {
            perr(p, k->line, k->col, "unexpected %s", tok_desc(k));
        }
    }
}

/* the filter chain whose innermost value is NULL (block set, filter block): `x|f(a)|g` */
static node *parse_filters_tests(P *p, node *x);

void jinja_free(jinja_tmpl *t) {
    if (!t) return;
    ar_free(&t->A);
    free(t);
}

int jinja_parse(const char *src, size_t len, jinja_tmpl **out, char *err, size_t errcap) {
    if (err && errcap) err[0] = 0;
    if (!out) return -1;
    *out = NULL;
    jinja_tmpl *t = calloc(1, sizeof *t);
    if (!t) {
        if (errcap) snprintf(err, errcap, "out of memory");
        return -1;
    }
    t->A.limit = JINJA_MAX_MEM;
    P p;
    memset(&p, 0, sizeof p);
    p.A = &t->A;
    p.err = err;
    p.errcap = err ? errcap : 0;
    if (setjmp(p.jb)) {
        jinja_free(t);
        return -1;
    }
    if (!src && len) perr(&p, 0, 0, "no template");
    if (!u8_valid(src, len)) perr(&p, 1, 1, "template is not valid UTF-8");
    /* newlines normalised to \n; one trailing newline dropped (keep_trailing_newline=False) */
    char *s = palloc(&p, len + 1);
    size_t m = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[m++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[m++] = src[i];
        }
    }
    if (m && s[m - 1] == '\n') m--;
    p.src = s;
    p.len = m;
    lex(&p);
    nvec body = {0};
    parse_body(&p, &body, NULL, 0);
    for (size_t i = 0; i < p.nunk; i++)
        if (!p.unk[i].soft) perr(&p, p.unk[i].line, p.unk[i].col, "no filter or test of that name");
    t->body = body.v;
    t->nbody = body.n;
    *out = t;
    return 0;
}

/* ---------------------------------------------------------------- renderer state */

typedef struct frame {
    struct frame *parent;
    size_t n, cap;
    const char **names; /* (cap) */
    size_t *nlens;      /* (cap) */
    jv *vals;           /* (cap) */
} frame;

typedef struct {
    arena A;
    jmp_buf jb;
    char *err;
    size_t errcap;
    char *out; /* malloc'ed output buffer (ocap) */
    size_t on, ocap;
    uint64_t steps;
    int depth, line;
    int64_t now;
    frame *root;
} R;

struct jmeth {
    jv self;
    const char *name;
    size_t n;
};

struct jloop {
    jlist *items;
    size_t i;
};

enum { G_RANGE, G_NAMESPACE, G_DICT, G_RAISE, G_STRFTIME, G_CYCLER_UNUSED };

static void rerr(R *r, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r->errcap) {
        if (r->line > 0) snprintf(r->err, r->errcap, "line %d: %s", r->line, msg);
        else snprintf(r->err, r->errcap, "%s", msg);
    }
    longjmp(r->jb, 1);
}

static void *ralloc(R *r, size_t n) {
    void *m = ar_alloc(&r->A, n);
    if (!m) rerr(r, "memory limit reached (%u MiB)", JINJA_MAX_MEM >> 20);
    return m;
}

static void step(R *r) {
    if (++r->steps > JINJA_MAX_STEPS) rerr(r, "too many evaluation steps (limit %llu)", JINJA_MAX_STEPS);
}

/* string builder in the render arena */
typedef struct {
    char *p;
    size_t n, cap;
} sb;

static void sb_put(R *r, sb *b, const char *s, size_t n) {
    if (b->n + n > b->cap) {
        if (b->n + n > JINJA_MAX_MEM) rerr(r, "string too large");
        size_t nc = b->cap ? b->cap * 2 : 64;
        while (nc < b->n + n) nc *= 2;
        char *np = ralloc(r, nc);
        if (b->n) memcpy(np, b->p, b->n);
        b->p = np;
        b->cap = nc;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void sb_puts(R *r, sb *b, const char *s) { sb_put(r, b, s, strlen(s)); }

static jv mk_str(const char *s, size_t n) {
    jv v = {0};
    v.t = V_STR;
    v.u.s = n ? s : "";
    v.n = n;
    return v;
}
static jv sb_val(sb *b) { return mk_str(b->p, b->n); }
static jv mk_int(int64_t i) { jv v = {0}; v.t = V_INT; v.u.i = i; return v; }
static jv mk_float(double f) { jv v = {0}; v.t = V_FLOAT; v.u.f = f; return v; }
static jv mk_bool(int b) { jv v = {0}; v.t = V_BOOL; v.u.i = !!b; return v; }
static jv mk_none(void) { jv v = {0}; v.t = V_NONE; return v; }
static jv mk_undef(const char *name, size_t n) { jv v = {0}; v.t = V_UNDEF; v.u.s = name; v.n = n; return v; }

static jv str_copy(R *r, const char *s, size_t n) {
    char *m = ralloc(r, n + 1);
    if (n) memcpy(m, s, n);
    m[n] = 0;
    return mk_str(m, n);
}

static jlist *list_new(R *r, size_t cap) {
    jlist *l = ralloc(r, sizeof *l);
    l->n = 0;
    l->cap = cap ? cap : 4;
    l->v = ralloc(r, l->cap * sizeof(jv));
    return l;
}
static void list_push(R *r, jlist *l, jv v) {
    if (l->n == l->cap) {
        size_t nc = l->cap * 2;
        jv *nv = ralloc(r, nc * sizeof(jv));
        memcpy(nv, l->v, l->n * sizeof(jv));
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = v;
}
static jv mk_list(jlist *l) { jv v = {0}; v.t = V_LIST; v.u.l = l; return v; }

static jdict *dict_new(R *r) {
    jdict *d = ralloc(r, sizeof *d);
    d->n = 0;
    d->cap = 4;
    d->k = ralloc(r, 4 * sizeof(jv));
    d->v = ralloc(r, 4 * sizeof(jv));
    return d;
}
static jv mk_dict(jdict *d) { jv v = {0}; v.t = V_DICT; v.u.d = d; return v; }

static int py_eq(R *r, jv a, jv b);

static long dict_find(R *r, const jdict *d, jv k) {
    for (size_t i = 0; i < d->n; i++) {
        if (k.t == V_STR && d->k[i].t == V_STR) {
            if (k.n == d->k[i].n && memcmp(k.u.s, d->k[i].u.s, k.n) == 0) return (long)i;
        } else if (py_eq(r, d->k[i], k)) {
            return (long)i;
        }
    }
    return -1;
}
static long dict_find_s(const jdict *d, const char *s, size_t n) {
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].t == V_STR && d->k[i].n == n && memcmp(d->k[i].u.s, s, n) == 0) return (long)i;
    return -1;
}
static void dict_set(R *r, jdict *d, jv k, jv v) {
    if (k.t == V_LIST || k.t == V_DICT || k.t == V_NS) rerr(r, "unhashable type used as a dict key");
    long i = dict_find(r, d, k);
    if (i >= 0) { d->v[i] = v; return; }
    if (d->n == d->cap) {
        size_t nc = d->cap * 2;
        jv *nk = ralloc(r, nc * sizeof(jv)), *nv = ralloc(r, nc * sizeof(jv));
        memcpy(nk, d->k, d->n * sizeof(jv));
        memcpy(nv, d->v, d->n * sizeof(jv));
        d->k = nk;
        d->v = nv;
        d->cap = nc;
    }
    d->k[d->n] = k;
    d->v[d->n++] = v;
}

static void emit(R *r, const char *s, size_t n) {
    if (!n) return;
    if (r->on + n > JINJA_MAX_OUT) rerr(r, "output too large (limit %u MiB)", JINJA_MAX_OUT >> 20);
    if (r->on + n + 1 > r->ocap) {
        size_t nc = r->ocap ? r->ocap : 4096;
        while (nc < r->on + n + 1) nc *= 2;
        char *no = realloc(r->out, nc);
        if (!no) rerr(r, "out of memory");
        r->out = no;
        r->ocap = nc;
    }
    memcpy(r->out + r->on, s, n);
    r->on += n;
}

/* ---------------------------------------------------------------- JSON in */

typedef struct {
    R *r;
    const char *s;
    size_t n, i;
    int depth;
} J;

static void jerr(J *j, const char *what) { rerr(j->r, "context JSON: %s at byte %zu", what, j->i); }

static void jws(J *j) {
    while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' || j->s[j->i] == '\r')) j->i++;
}

static int hexv(char h) {
    return h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
}

static uint32_t j_u4(J *j) {
    if (j->i + 4 > j->n) jerr(j, "truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexv(j->s[j->i + (size_t)k]);
        if (h < 0) jerr(j, "bad \\u escape");
        v = v * 16 + (uint32_t)h;
    }
    j->i += 4;
    return v;
}

static jv j_string(J *j) {
    j->i++; /* opening quote */
    size_t start = j->i;
    while (j->i < j->n && j->s[j->i] != '"' && j->s[j->i] != '\\') {
        if ((unsigned char)j->s[j->i] < 0x20) jerr(j, "control character in a string");
        j->i++;
    }
    if (j->i < j->n && j->s[j->i] == '"') { /* no escapes: points into a copy made below */
        size_t len = j->i - start;
        if (!u8_valid(j->s + start, len)) jerr(j, "invalid UTF-8");
        j->i++;
        return str_copy(j->r, j->s + start, len);
    }
    sb b = {0};
    sb_put(j->r, &b, j->s + start, j->i - start);
    for (;;) {
        if (j->i >= j->n) jerr(j, "unterminated string");
        char c = j->s[j->i];
        if (c == '"') { j->i++; break; }
        if ((unsigned char)c < 0x20) jerr(j, "control character in a string");
        if (c != '\\') { sb_put(j->r, &b, &c, 1); j->i++; continue; }
        if (++j->i >= j->n) jerr(j, "unterminated string");
        c = j->s[j->i++];
        char o[4];
        switch (c) {
        case '"': case '\\': case '/': sb_put(j->r, &b, &c, 1); break;
        case 'b': sb_put(j->r, &b, "\b", 1); break;
        case 'f': sb_put(j->r, &b, "\f", 1); break;
        case 'n': sb_put(j->r, &b, "\n", 1); break;
        case 'r': sb_put(j->r, &b, "\r", 1); break;
        case 't': sb_put(j->r, &b, "\t", 1); break;
        case 'u': {
            uint32_t cp = j_u4(j);
            if (cp >= 0xD800 && cp < 0xDC00) {
                if (j->i + 2 > j->n || j->s[j->i] != '\\' || j->s[j->i + 1] != 'u') jerr(j, "lone surrogate");
                j->i += 2;
                uint32_t lo = j_u4(j);
                if (lo < 0xDC00 || lo >= 0xE000) jerr(j, "lone surrogate");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                jerr(j, "lone surrogate");
            }
            sb_put(j->r, &b, o, u8_enc(cp, o));
            break;
        }
        default: jerr(j, "bad escape");
        }
    }
    if (!u8_valid(b.p, b.n)) jerr(j, "invalid UTF-8");
    return sb_val(&b);
}

static jv j_value(J *j) {
    jws(j);
    if (j->i >= j->n) jerr(j, "unexpected end");
    if (++j->depth > JINJA_MAX_JSON_DEPTH) jerr(j, "nesting too deep");
    step(j->r);
    char c = j->s[j->i];
    jv v;
    if (c == '{') {
        j->i++;
        jdict *d = dict_new(j->r);
        jws(j);
        if (j->i < j->n && j->s[j->i] == '}') j->i++;
        else for (;;) {
            jws(j);
            if (j->i >= j->n || j->s[j->i] != '"') jerr(j, "expected a key");
            jv k = j_string(j);
            jws(j);
            if (j->i >= j->n || j->s[j->i] != ':') jerr(j, "expected ':'");
            j->i++;
            jv val = j_value(j);
            dict_set(j->r, d, k, val);
            jws(j);
            if (j->i < j->n && j->s[j->i] == ',') { j->i++; continue; }
            if (j->i < j->n && j->s[j->i] == '}') { j->i++; break; }
            jerr(j, "expected ',' or '}'");
        }
        v = mk_dict(d);
    } else if (c == '[') {
        j->i++;
        jlist *l = list_new(j->r, 4);
        jws(j);
        if (j->i < j->n && j->s[j->i] == ']') j->i++;
        else for (;;) {
            list_push(j->r, l, j_value(j));
            jws(j);
            if (j->i < j->n && j->s[j->i] == ',') { j->i++; continue; }
            if (j->i < j->n && j->s[j->i] == ']') { j->i++; break; }
            jerr(j, "expected ',' or ']'");
        }
        v = mk_list(l);
    } else if (c == '"') {
        v = j_string(j);
    } else if (j->n - j->i >= 4 && memcmp(j->s + j->i, "true", 4) == 0) {
        j->i += 4; v = mk_bool(1);
    } else if (j->n - j->i >= 5 && memcmp(j->s + j->i, "false", 5) == 0) {
        j->i += 5; v = mk_bool(0);
    } else if (j->n - j->i >= 4 && memcmp(j->s + j->i, "null", 4) == 0) {
        j->i += 4; v = mk_none();
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        size_t st = j->i;
        int isf = 0;
        if (j->s[j->i] == '-') j->i++;
        if (j->i >= j->n || !(j->s[j->i] >= '0' && j->s[j->i] <= '9')) jerr(j, "bad number");
        if (j->s[j->i] == '0' && j->i + 1 < j->n && j->s[j->i + 1] >= '0' && j->s[j->i + 1] <= '9') jerr(j, "bad number");
        while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9') j->i++;
        if (j->i < j->n && j->s[j->i] == '.') {
            isf = 1;
            j->i++;
            if (j->i >= j->n || !(j->s[j->i] >= '0' && j->s[j->i] <= '9')) jerr(j, "bad number");
            while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9') j->i++;
        }
        if (j->i < j->n && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
            isf = 1;
            j->i++;
            if (j->i < j->n && (j->s[j->i] == '+' || j->s[j->i] == '-')) j->i++;
            if (j->i >= j->n || !(j->s[j->i] >= '0' && j->s[j->i] <= '9')) jerr(j, "bad number");
            while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9') j->i++;
        }
        size_t len = j->i - st;
        if (len > 400) jerr(j, "number too long");
        char buf[401];
        memcpy(buf, j->s + st, len);
        buf[len] = 0;
        if (!isf) {
            char *end;
            errno = 0;
            long long x = strtoll(buf, &end, 10);
            if (errno == ERANGE) jerr(j, "integer out of the 64-bit range");
            v = mk_int(x);
        } else {
            v = mk_float(strtod(buf, NULL));
        }
    } else {
        jerr(j, "unexpected character");
        v = mk_none();
    }
    j->depth--;
    return v;
}

/* ---------------------------------------------------------------- str(), repr(), json */

static void fmt_float(R *r, sb *b, double d, int json) {
    if (isnan(d)) { sb_puts(r, b, json ? "NaN" : "nan"); return; }
    if (isinf(d)) { sb_puts(r, b, d < 0 ? (json ? "-Infinity" : "-inf") : (json ? "Infinity" : "inf")); return; }
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
        if (strtod(buf, NULL) == d) break;
    }
    /* buf: [-]D[.DDD]e[+-]XX */
    char digits[24];
    int nd = 0, neg = buf[0] == '-';
    const char *q = buf + neg;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9') digits[nd++] = *q;
    int e = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    if (neg) sb_put(r, b, "-", 1);
    if (e >= -5 + 1 && e < 16) {
        if (e >= 0) {
            for (int i = 0; i <= e; i++) sb_put(r, b, i < nd ? &digits[i] : "0", 1);
            sb_put(r, b, ".", 1);
            if (nd > e + 1) sb_put(r, b, digits + e + 1, (size_t)(nd - e - 1));
            else sb_put(r, b, "0", 1);
        } else {
            sb_put(r, b, "0.", 2);
            for (int i = 0; i < -e - 1; i++) sb_put(r, b, "0", 1);
            sb_put(r, b, digits, (size_t)nd);
        }
    } else {
        sb_put(r, b, digits, 1);
        if (nd > 1) {
            sb_put(r, b, ".", 1);
            sb_put(r, b, digits + 1, (size_t)(nd - 1));
        }
        char eb[16];
        snprintf(eb, sizeof eb, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
        sb_puts(r, b, eb);
    }
}

static void put_int(R *r, sb *b, int64_t i) {
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", (long long)i);
    sb_puts(r, b, buf);
}

static void repr(R *r, sb *b, jv v, int depth);

static void repr_str(R *r, sb *b, const char *s, size_t n) {
    int has1 = memchr(s, '\'', n) != NULL, has2 = memchr(s, '"', n) != NULL;
    char q = has1 && !has2 ? '"' : '\'';
    sb_put(r, b, &q, 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[8];
        if (c == '\\') sb_put(r, b, "\\\\", 2);
        else if (c == (unsigned char)q) { sb_put(r, b, "\\", 1); sb_put(r, b, &q, 1); }
        else if (c == '\n') sb_put(r, b, "\\n", 2);
        else if (c == '\r') sb_put(r, b, "\\r", 2);
        else if (c == '\t') sb_put(r, b, "\\t", 2);
        else if (c < 0x20 || c == 0x7f) { snprintf(e, sizeof e, "\\x%02x", c); sb_puts(r, b, e); }
        else sb_put(r, b, (const char *)&c, 1);
    }
    sb_put(r, b, &q, 1);
}

/* Python str() */
static void to_str(R *r, sb *b, jv v) {
    switch (v.t) {
    case V_UNDEF: return;
    case V_STR: sb_put(r, b, v.u.s, v.n); return;
    default: repr(r, b, v, 0);
    }
}

static void repr(R *r, sb *b, jv v, int depth) {
    if (depth > JINJA_MAX_DEPTH) rerr(r, "value nested too deeply");
    step(r);
    switch (v.t) {
    case V_UNDEF: return;
    case V_NONE: sb_puts(r, b, "None"); return;
    case V_BOOL: sb_puts(r, b, v.u.i ? "True" : "False"); return;
    case V_INT: put_int(r, b, v.u.i); return;
    case V_FLOAT: fmt_float(r, b, v.u.f, 0); return;
    case V_STR: repr_str(r, b, v.u.s, v.n); return;
    case V_LIST:
        if (v.tuple >= LK_GEN) rerr(r, "cannot print a generator or dict view (Python prints its address)");
        sb_puts(r, b, v.tuple ? "(" : "[");
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) sb_puts(r, b, ", ");
            repr(r, b, v.u.l->v[i], depth + 1);
        }
        if (v.tuple && v.u.l->n == 1) sb_puts(r, b, ",");
        sb_puts(r, b, v.tuple ? ")" : "]");
        return;
    case V_DICT:
        sb_puts(r, b, "{");
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i) sb_puts(r, b, ", ");
            repr(r, b, v.u.d->k[i], depth + 1);
            sb_puts(r, b, ": ");
            repr(r, b, v.u.d->v[i], depth + 1);
        }
        sb_puts(r, b, "}");
        return;
    case V_NS: sb_puts(r, b, "<Namespace>"); return;
    case V_LOOP: sb_puts(r, b, "<LoopContext>"); return;
    default: sb_puts(r, b, "<function>"); return;
    }
}

static jv str_of(R *r, jv v) {
    if (v.t == V_STR) return v;
    sb b = {0};
    to_str(r, &b, v);
    return sb_val(&b);
}

typedef struct {
    int indent; /* -1: none */
    const char *item_sep, *key_sep;
    int sort_keys, ensure_ascii;
} jopts;

static int py_lt(R *r, jv a, jv b);

static void json_str(R *r, sb *b, const char *s, size_t n, int ascii) {
    sb_put(r, b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *e = NULL;
        char u[8];
        if (c == '"') e = "\\\"";
        else if (c == '\\') e = "\\\\";
        else if (c == '\n') e = "\\n";
        else if (c == '\r') e = "\\r";
        else if (c == '\t') e = "\\t";
        else if (c == '\b') e = "\\b";
        else if (c == '\f') e = "\\f";
        else if (c < 0x20) { snprintf(u, sizeof u, "\\u%04x", c); e = u; }
        else if (c >= 0x80 && ascii) {
            sb_put(r, b, s + run, i - run);
            size_t j = i;
            uint32_t cp = u8_dec(s, n, &j);
            char w[16];
            if (cp >= 0x10000) snprintf(w, sizeof w, "\\u%04x\\u%04x", 0xD800 + ((cp - 0x10000) >> 10), 0xDC00 + ((cp - 0x10000) & 0x3FF));
            else snprintf(w, sizeof w, "\\u%04x", cp);
            sb_puts(r, b, w);
            run = j;
            i = j - 1;
            continue;
        }
        if (e) {
            sb_put(r, b, s + run, i - run);
            sb_puts(r, b, e);
            run = i + 1;
        }
    }
    sb_put(r, b, s + run, n - run);
    sb_put(r, b, "\"", 1);
}

static void json_nl(R *r, sb *b, const jopts *o, int level) {
    sb_put(r, b, "\n", 1);
    for (int i = 0; i < o->indent * level; i++) sb_put(r, b, " ", 1);
}

static void to_json(R *r, sb *b, jv v, const jopts *o, int level) {
    if (level > JINJA_MAX_DEPTH) rerr(r, "tojson: value nested too deeply");
    step(r);
    switch (v.t) {
    case V_NONE: sb_puts(r, b, "null"); return;
    case V_BOOL: sb_puts(r, b, v.u.i ? "true" : "false"); return;
    case V_INT: put_int(r, b, v.u.i); return;
    case V_FLOAT: fmt_float(r, b, v.u.f, 1); return;
    case V_STR: json_str(r, b, v.u.s, v.n, o->ensure_ascii); return;
    case V_LIST:
        if (v.tuple >= LK_GEN) rerr(r, "Object of type %s is not JSON serializable", v.tuple == LK_GEN ? "generator" : "dict_items");
        if (!v.u.l->n) { sb_puts(r, b, "[]"); return; }
        sb_puts(r, b, "[");
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) sb_puts(r, b, o->item_sep);
            if (o->indent >= 0) json_nl(r, b, o, level + 1);
            to_json(r, b, v.u.l->v[i], o, level + 1);
        }
        if (o->indent >= 0) json_nl(r, b, o, level);
        sb_puts(r, b, "]");
        return;
    case V_DICT: {
        jdict *d = v.u.d;
        if (!d->n) { sb_puts(r, b, "{}"); return; }
        size_t *ord = ralloc(r, d->n * sizeof *ord);
        for (size_t i = 0; i < d->n; i++) ord[i] = i;
        if (o->sort_keys) /* insertion sort: stable, keys are few */
            for (size_t i = 1; i < d->n; i++)
                for (size_t j = i; j > 0 && py_lt(r, d->k[ord[j]], d->k[ord[j - 1]]); j--) {
                    size_t t = ord[j]; ord[j] = ord[j - 1]; ord[j - 1] = t;
                }
        sb_puts(r, b, "{");
        for (size_t i = 0; i < d->n; i++) {
            jv k = d->k[ord[i]];
            if (i) sb_puts(r, b, o->item_sep);
            if (o->indent >= 0) json_nl(r, b, o, level + 1);
            if (k.t == V_STR) json_str(r, b, k.u.s, k.n, o->ensure_ascii);
            else if (k.t == V_INT || k.t == V_FLOAT || k.t == V_BOOL || k.t == V_NONE) {
                sb kb = {0};
                to_json(r, &kb, k, o, level + 1);
                json_str(r, b, kb.p, kb.n, 0);
            } else rerr(r, "tojson: keys must be str, int, float, bool or None");
            sb_puts(r, b, o->key_sep);
            to_json(r, b, d->v[ord[i]], o, level + 1);
        }
        if (o->indent >= 0) json_nl(r, b, o, level);
        sb_puts(r, b, "}");
        return;
    }
    case V_UNDEF: rerr(r, "Object of type Undefined is not JSON serializable");
    /* fallthrough */
    default: rerr(r, "Object of this type is not JSON serializable");
    }
}

/* ---------------------------------------------------------------- Python semantics */

static const char *type_name(jv v) {
    switch (v.t) {
    case V_UNDEF: return "Undefined";
    case V_NONE: return "NoneType";
    case V_BOOL: return "bool";
    case V_INT: return "int";
    case V_FLOAT: return "float";
    case V_STR: return "str";
    case V_LIST: return v.tuple == LK_TUPLE ? "tuple" : v.tuple == LK_GEN ? "generator" : v.tuple == LK_VIEW ? "dict_items" : "list";
    case V_DICT: return "dict";
    case V_NS: return "Namespace";
    case V_LOOP: return "LoopContext";
    default: return "function";
    }
}

static void undef_fail(R *r, jv v) {
    if (v.u.s) rerr(r, "'%.*s' is undefined", (int)v.n, v.u.s);
    rerr(r, "value is undefined");
}

static int truthy(jv v) {
    switch (v.t) {
    case V_UNDEF: case V_NONE: return 0;
    case V_BOOL: case V_INT: return v.u.i != 0;
    case V_FLOAT: return v.u.f != 0;
    case V_STR: return v.n != 0;
    case V_LIST: return v.tuple == LK_GEN || v.u.l->n != 0;
    case V_DICT: return v.u.d->n != 0;
    default: return 1;
    }
}

static int is_num(jv v) { return v.t == V_INT || v.t == V_BOOL || v.t == V_FLOAT; }
static double num_f(jv v) { return v.t == V_FLOAT ? v.u.f : (double)v.u.i; }

static int py_eq(R *r, jv a, jv b) {
    if (is_num(a) && is_num(b)) {
        if (a.t != V_FLOAT && b.t != V_FLOAT) return a.u.i == b.u.i;
        return num_f(a) == num_f(b);
    }
    if (a.t != b.t) return 0;
    switch (a.t) {
    case V_UNDEF: case V_NONE: return 1;
    case V_STR: return a.n == b.n && memcmp(a.u.s, b.u.s, a.n) == 0;
    case V_LIST:
        if (a.tuple >= LK_GEN || b.tuple >= LK_GEN) return a.u.l == b.u.l;
        if (a.u.l->n != b.u.l->n || a.tuple != b.tuple) return 0;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!py_eq(r, a.u.l->v[i], b.u.l->v[i])) return 0;
        return 1;
    case V_DICT:
        if (a.u.d->n != b.u.d->n) return 0;
        for (size_t i = 0; i < a.u.d->n; i++) {
            long j = dict_find(r, b.u.d, a.u.d->k[i]);
            if (j < 0 || !py_eq(r, a.u.d->v[i], b.u.d->v[j])) return 0;
        }
        return 1;
    default: return a.u.p == b.u.p;
    }
}

/* -1, 0, 1; an error for unorderable types */
static int py_cmp(R *r, jv a, jv b) {
    if (is_num(a) && is_num(b)) {
        if (a.t != V_FLOAT && b.t != V_FLOAT) return a.u.i < b.u.i ? -1 : a.u.i > b.u.i;
        double x = num_f(a), y = num_f(b);
        return x < y ? -1 : x > y;
    }
    if (a.t == V_STR && b.t == V_STR) {
        size_t m = a.n < b.n ? a.n : b.n;
        int c = memcmp(a.u.s, b.u.s, m);
        if (c) return c < 0 ? -1 : 1;
        return a.n < b.n ? -1 : a.n > b.n;
    }
    if (a.t == V_LIST && b.t == V_LIST) {
        for (size_t i = 0; i < a.u.l->n && i < b.u.l->n; i++) {
            if (py_eq(r, a.u.l->v[i], b.u.l->v[i])) continue;
            return py_cmp(r, a.u.l->v[i], b.u.l->v[i]);
        }
        return a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n;
    }
    if (a.t == V_UNDEF) undef_fail(r, a);
    if (b.t == V_UNDEF) undef_fail(r, b);
    rerr(r, "'<' not supported between instances of '%s' and '%s'", type_name(a), type_name(b));
    return 0;
}
static int py_lt(R *r, jv a, jv b) { return py_cmp(r, a, b) < 0; }

/* code-point index -> byte offset (idx <= count) */
static size_t u8_off(const char *s, size_t n, size_t idx) {
    size_t i = 0;
    while (idx && i < n) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80) i++;
        idx--;
    }
    return i;
}

static int py_in(R *r, jv item, jv seq) {
    switch (seq.t) {
    case V_STR:
        if (item.t != V_STR) rerr(r, "'in <string>' requires string as left operand, not %s", type_name(item));
        if (!item.n) return 1;
        for (size_t i = 0; i + item.n <= seq.n; i++)
            if (memcmp(seq.u.s + i, item.u.s, item.n) == 0) return 1;
        return 0;
    case V_LIST:
        for (size_t i = 0; i < seq.u.l->n; i++)
            if (py_eq(r, seq.u.l->v[i], item)) return 1;
        return 0;
    case V_DICT: case V_NS: return dict_find(r, seq.u.d, item) >= 0;
    case V_UNDEF: return 0;
    default: rerr(r, "argument of type '%s' is not iterable", type_name(seq));
    }
    return 0;
}

/* the items a for loop (or list()) walks */
static jlist *iter_list(R *r, jv v) {
    switch (v.t) {
    case V_UNDEF: return list_new(r, 1);
    case V_LIST: return v.u.l;
    case V_DICT: {
        jlist *l = list_new(r, v.u.d->n);
        for (size_t i = 0; i < v.u.d->n; i++) list_push(r, l, v.u.d->k[i]);
        return l;
    }
    case V_STR: {
        jlist *l = list_new(r, v.n);
        for (size_t i = 0; i < v.n;) {
            size_t j = i;
            u8_dec(v.u.s, v.n, &j);
            list_push(r, l, mk_str(v.u.s + i, j - i));
            i = j;
        }
        return l;
    }
    default: rerr(r, "'%s' object is not iterable", type_name(v));
    }
    return NULL;
}

static jv py_len(R *r, jv v) {
    switch (v.t) {
    case V_UNDEF: return mk_int(0);
    case V_STR: return mk_int((int64_t)u8_len(v.u.s, v.n));
    case V_LIST:
        if (v.tuple == LK_GEN) rerr(r, "object of type 'generator' has no len()");
        return mk_int((int64_t)v.u.l->n);
    case V_DICT: return mk_int((int64_t)v.u.d->n);
    default: rerr(r, "object of type '%s' has no len()", type_name(v));
    }
    return mk_int(0);
}

static int64_t ck(R *r, int ok, int64_t v) {
    if (!ok) rerr(r, "integer overflow");
    return v;
}

static jv html_escape(R *r, jv s);

static jv arith(R *r, int op, jv a, jv b) {
    if (a.t == V_UNDEF && op != OP_CAT) undef_fail(r, a);
    if (b.t == V_UNDEF && op != OP_CAT) undef_fail(r, b);
    if (op == OP_CAT) {
        sb s = {0};
        to_str(r, &s, a);
        to_str(r, &s, b);
        return sb_val(&s);
    }
    if (is_num(a) && is_num(b)) {
        int fl = a.t == V_FLOAT || b.t == V_FLOAT;
        int64_t x = a.u.i, y = b.u.i, z;
        double fx = num_f(a), fy = num_f(b);
        switch (op) {
        case OP_ADD:
            if (fl) return mk_float(fx + fy);
            if (__builtin_add_overflow(x, y, &z)) rerr(r, "integer overflow");
            return mk_int(z);
        case OP_SUB:
            if (fl) return mk_float(fx - fy);
            if (__builtin_sub_overflow(x, y, &z)) rerr(r, "integer overflow");
            return mk_int(z);
        case OP_MUL:
            if (fl) return mk_float(fx * fy);
            if (__builtin_mul_overflow(x, y, &z)) rerr(r, "integer overflow");
            return mk_int(z);
        case OP_DIV:
            if (fy == 0) rerr(r, "division by zero");
            return mk_float(fx / fy);
        case OP_FDIV: case OP_MOD:
            if (fl ? fy == 0 : y == 0) rerr(r, fl ? "float division by zero" : "integer division or modulo by zero");
            if (fl) {
                double m = fmod(fx, fy);
                if (m != 0 && ((m < 0) != (fy < 0))) m += fy;
                if (op == OP_MOD) return mk_float(m);
                return mk_float(floor(fx / fy));
            } else {
                if (x == INT64_MIN && y == -1) rerr(r, "integer overflow");
                int64_t q = x / y, m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) { q--; m += y; }
                return mk_int(op == OP_MOD ? m : q);
            }
        case OP_POW:
            if (fl || y < 0) return mk_float(pow(fx, fy));
            {
                if (x == 0 || x == 1) return mk_int(y == 0 ? 1 : x);
                if (x == -1) return mk_int(y % 2 ? -1 : 1);
                int64_t acc = 1;
                for (int64_t i = 0; i < y; i++)
                    if (__builtin_mul_overflow(acc, x, &acc)) rerr(r, "integer overflow");
                return mk_int(acc);
            }
        }
    }
    if (op == OP_ADD && a.t == V_STR && b.t == V_STR) {
        int markup = a.tuple == 1 || b.tuple == 1; /* Markup + str escapes the str, as markupsafe */
        if (markup && a.tuple != 1) a = html_escape(r, a);
        if (markup && b.tuple != 1) b = html_escape(r, b);
        sb s = {0};
        sb_put(r, &s, a.u.s, a.n);
        sb_put(r, &s, b.u.s, b.n);
        jv v = sb_val(&s);
        v.tuple = markup;
        return v;
    }
    if (0) {
        sb s = {0};
        sb_put(r, &s, a.u.s, a.n);
        sb_put(r, &s, b.u.s, b.n);
        return sb_val(&s);
    }
    if (op == OP_ADD && a.t == V_LIST && b.t == V_LIST && a.tuple < LK_GEN && b.tuple < LK_GEN && a.tuple == b.tuple) {
        jlist *l = list_new(r, a.u.l->n + b.u.l->n + 1);
        for (size_t i = 0; i < a.u.l->n; i++) list_push(r, l, a.u.l->v[i]);
        for (size_t i = 0; i < b.u.l->n; i++) list_push(r, l, b.u.l->v[i]);
        jv v = mk_list(l);
        v.tuple = a.tuple;
        return v;
    }
    if (op == OP_MUL && ((a.t == V_STR || a.t == V_LIST) && (b.t == V_INT || b.t == V_BOOL))) {
        int64_t k = b.u.i;
        sb s = {0};
        jlist *l = a.t == V_LIST ? list_new(r, 4) : NULL;
        for (int64_t i = 0; i < k; i++) {
            step(r);
            if (l) for (size_t j = 0; j < a.u.l->n; j++) list_push(r, l, a.u.l->v[j]);
            else sb_put(r, &s, a.u.s, a.n);
        }
        return l ? mk_list(l) : sb_val(&s);
    }
    if (op == OP_MUL && (b.t == V_STR || b.t == V_LIST) && (a.t == V_INT || a.t == V_BOOL)) return arith(r, op, b, a);
    if (op == OP_MOD && a.t == V_STR) rerr(r, "printf-style string formatting is not supported");
    static const char *const sym[] = {"+", "-", "*", "/", "//", "%", "**", "~"};
    rerr(r, "unsupported operand type(s) for %s: '%s' and '%s'", sym[op], type_name(a), type_name(b));
    return a;
}

/* ---------------------------------------------------------------- scopes */

static frame *frame_new(R *r, frame *parent) {
    frame *f = ralloc(r, sizeof *f);
    memset(f, 0, sizeof *f);
    f->parent = parent;
    return f;
}

static int frame_get(frame *f, const char *s, size_t n, jv *out) {
    for (; f; f = f->parent)
        for (size_t i = f->n; i-- > 0;)
            if (f->nlens[i] == n && memcmp(f->names[i], s, n) == 0) { *out = f->vals[i]; return 1; }
    return 0;
}

static void frame_set(R *r, frame *f, const char *s, size_t n, jv v) {
    for (size_t i = 0; i < f->n; i++)
        if (f->nlens[i] == n && memcmp(f->names[i], s, n) == 0) { f->vals[i] = v; return; }
    if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 8;
        const char **nn = ralloc(r, nc * sizeof *nn);
        size_t *nl = ralloc(r, nc * sizeof *nl);
        jv *nv = ralloc(r, nc * sizeof *nv);
        if (f->n) {
            memcpy(nn, f->names, f->n * sizeof *nn);
            memcpy(nl, f->nlens, f->n * sizeof *nl);
            memcpy(nv, f->vals, f->n * sizeof *nv);
        }
        f->names = nn;
        f->nlens = nl;
        f->vals = nv;
        f->cap = nc;
    }
    f->names[f->n] = s;
    f->nlens[f->n] = n;
    f->vals[f->n++] = v;
}

/* ---------------------------------------------------------------- call arguments */

typedef struct {
    jv *pos; /* (npos) */
    int npos;
    const char **kwn; /* (nkw) */
    size_t *kwl;
    jv *kwv;
    int nkw;
} args;

/* argument `idx` (positional) or `name` (keyword); 1 if given */
static int arg(const args *a, int idx, const char *name, jv *out) {
    if (idx >= 0 && idx < a->npos) { *out = a->pos[idx]; return 1; }
    for (int i = 0; i < a->nkw; i++)
        if (name && name_is(a->kwn[i], a->kwl[i], name)) { *out = a->kwv[i]; return 1; }
    return 0;
}
static int arg_bool(const args *a, int idx, const char *name, int dflt) {
    jv v;
    return arg(a, idx, name, &v) ? truthy(v) : dflt;
}
static jv arg_str(R *r, const args *a, int idx, const char *name, const char *what) {
    jv v;
    if (!arg(a, idx, name, &v)) rerr(r, "%s: missing argument", what);
    if (v.t != V_STR) rerr(r, "%s: expected a string argument, got %s", what, type_name(v));
    return v;
}

static jv eval(R *r, node *x, frame *f);
static int exec_body(R *r, node **b, int n, frame *f);
static jv getattr_v(R *r, jv obj, const char *s, size_t n);
static jv getitem_v(R *r, jv obj, jv key);
static jv call_value(R *r, jv callee, const args *a);
static int run_test(R *r, int id, jv v, const args *a);
static jv run_filter(R *r, int id, jv v, const args *a, frame *f);

static void eval_args(R *r, node *x, frame *f, args *a) {
    memset(a, 0, sizeof *a);
    if (!x->nkids) return;
    a->pos = ralloc(r, (size_t)x->nkids * sizeof(jv));
    a->kwv = ralloc(r, (size_t)x->nkids * sizeof(jv));
    a->kwn = ralloc(r, (size_t)x->nkids * sizeof(char *));
    a->kwl = ralloc(r, (size_t)x->nkids * sizeof(size_t));
    for (int i = 0; i < x->nkids; i++) {
        node *k = x->kids[i];
        if (k->k == E_KW) {
            a->kwn[a->nkw] = k->s;
            a->kwl[a->nkw] = k->n;
            a->kwv[a->nkw++] = eval(r, k->a, f);
        } else {
            if (a->nkw) rerr(r, "positional argument follows keyword argument");
            a->pos[a->npos++] = eval(r, k, f);
        }
    }
}

/* ---------------------------------------------------------------- strings */

static jv ascii_case(R *r, jv s, int mode) { /* 0 lower, 1 upper, 2 capitalize, 3 jinja title, 4 str.title */
    char *o = ralloc(r, s.n + 1);
    int prev_cased = 0;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.u.s[i];
        int lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z';
        int want_up = mode == 1 || (mode == 2 && i == 0) || ((mode == 3 || mode == 4) && !prev_cased);
        if (mode == 0 || (!want_up && mode != 1)) { if (upper) c = (char)(c + 32); }
        else if (lower) c = (char)(c - 32);
        o[i] = c;
        if (mode == 3) prev_cased = !(c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' ||
                                      c == '-' || c == '(' || c == '{' || c == '[' || c == '<');
        else if (mode == 4) prev_cased = lower || upper || ((unsigned char)c >= 0x80 && prev_cased);
    }
    return mk_str(o, s.n);
}

/* strip / lstrip / rstrip: chars NULL = whitespace */
static jv py_strip(jv s, const jv *chars, int left, int right) {
    size_t a = 0, b = s.n;
    for (int side = 0; side < 2; side++) {
        if ((side == 0 && !left) || (side == 1 && !right)) continue;
        for (;;) {
            if (a >= b) break;
            size_t k;
            if (!chars) {
                k = side == 0 ? space_fwd(s.u.s, a, b) : space_back(s.u.s, a, b);
            } else {
                size_t i = a, cs;
                if (side == 0) { u8_dec(s.u.s, b, &i); cs = a; k = i - a; }
                else {
                    cs = b - 1;
                    while (cs > a && ((unsigned char)s.u.s[cs] & 0xC0) == 0x80) cs--;
                    k = b - cs;
                }
                int found = 0;
                for (size_t j = 0; j + k <= chars->n && !found;) {
                    size_t jj = j;
                    u8_dec(chars->u.s, chars->n, &jj);
                    if (jj - j == k && memcmp(chars->u.s + j, s.u.s + cs, k) == 0) found = 1;
                    j = jj;
                }
                if (!found) k = 0;
            }
            if (!k) break;
            if (side == 0) a += k; else b -= k;
        }
    }
    return mk_str(s.u.s + a, b - a);
}

static const char *memfind(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn == 0) return h;
    for (size_t i = 0; i + nn <= hn; i++)
        if (h[i] == nd[0] && memcmp(h + i, nd, nn) == 0) return h + i;
    return NULL;
}

static jv py_split(R *r, jv s, const jv *sep, int64_t maxsplit) {
    jlist *l = list_new(r, 4);
    if (!sep) {
        size_t i = 0;
        for (;;) {
            size_t k;
            while (i < s.n && (k = space_fwd(s.u.s, i, s.n))) i += k;
            if (i >= s.n) break;
            if (maxsplit >= 0 && (int64_t)l->n == maxsplit) {
                size_t e = s.n;
                while (e > i && (k = space_back(s.u.s, i, e))) e -= k;
                list_push(r, l, mk_str(s.u.s + i, e - i));
                break;
            }
            size_t j = i;
            while (j < s.n && !space_fwd(s.u.s, j, s.n)) u8_dec(s.u.s, s.n, &j);
            list_push(r, l, mk_str(s.u.s + i, j - i));
            i = j;
            step(r);
        }
        return mk_list(l);
    }
    if (!sep->n) rerr(r, "empty separator");
    size_t i = 0;
    for (;;) {
        const char *hit = (maxsplit < 0 || (int64_t)l->n < maxsplit) ? memfind(s.u.s + i, s.n - i, sep->u.s, sep->n) : NULL;
        if (!hit) { list_push(r, l, mk_str(s.u.s + i, s.n - i)); break; }
        list_push(r, l, mk_str(s.u.s + i, (size_t)(hit - (s.u.s + i))));
        i = (size_t)(hit - s.u.s) + sep->n;
        step(r);
    }
    return mk_list(l);
}

static jv py_replace(R *r, jv s, jv old, jv nw, int64_t count) {
    sb b = {0};
    size_t i = 0;
    int64_t done = 0;
    if (!old.n) { /* insert between code points */
        for (;;) {
            if (count >= 0 && done >= count) break;
            sb_put(r, &b, nw.u.s, nw.n);
            done++;
            if (i >= s.n) break;
            size_t j = i;
            u8_dec(s.u.s, s.n, &j);
            sb_put(r, &b, s.u.s + i, j - i);
            i = j;
            step(r);
        }
        sb_put(r, &b, s.u.s + i, s.n - i);
        return sb_val(&b);
    }
    for (;;) {
        const char *hit = (count < 0 || done < count) ? memfind(s.u.s + i, s.n - i, old.u.s, old.n) : NULL;
        if (!hit) break;
        sb_put(r, &b, s.u.s + i, (size_t)(hit - (s.u.s + i)));
        sb_put(r, &b, nw.u.s, nw.n);
        i = (size_t)(hit - s.u.s) + old.n;
        done++;
        step(r);
    }
    sb_put(r, &b, s.u.s + i, s.n - i);
    return sb_val(&b);
}

/* str.format with {} / {0} / {name} fields and {{ }} escapes (no format specs) */
static jv py_format(R *r, jv s, const args *a) {
    sb b = {0};
    int autoi = 0;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.u.s[i];
        if (c == '{' && i + 1 < s.n && s.u.s[i + 1] == '{') { sb_put(r, &b, "{", 1); i++; continue; }
        if (c == '}' && i + 1 < s.n && s.u.s[i + 1] == '}') { sb_put(r, &b, "}", 1); i++; continue; }
        if (c == '}') rerr(r, "Single '}' encountered in format string");
        if (c != '{') { sb_put(r, &b, &c, 1); continue; }
        size_t j = i + 1;
        while (j < s.n && s.u.s[j] != '}') j++;
        if (j >= s.n) rerr(r, "Single '{' encountered in format string");
        const char *f = s.u.s + i + 1;
        size_t fl = j - i - 1;
        jv v;
        if (memchr(f, ':', fl) || memchr(f, '!', fl) || memchr(f, '[', fl) || memchr(f, '.', fl))
            rerr(r, "format: only plain {} fields are supported");
        if (fl == 0) {
            if (!arg(a, autoi++, NULL, &v)) rerr(r, "Replacement index %d out of range", autoi - 1);
        } else if (f[0] >= '0' && f[0] <= '9') {
            int idx = atoi(f);
            if (!arg(a, idx, NULL, &v)) rerr(r, "Replacement index %d out of range", idx);
        } else {
            int found = 0;
            for (int k = 0; k < a->nkw; k++)
                if (a->kwl[k] == fl && memcmp(a->kwn[k], f, fl) == 0) { v = a->kwv[k]; found = 1; }
            if (!found) rerr(r, "format: missing key '%.*s'", (int)fl, f);
        }
        to_str(r, &b, v);
        i = j;
    }
    return sb_val(&b);
}

static jv join_list(R *r, jlist *l, jv sep) {
    sb b = {0};
    for (size_t i = 0; i < l->n; i++) {
        if (i) sb_put(r, &b, sep.u.s, sep.n);
        to_str(r, &b, l->v[i]);
    }
    return sb_val(&b);
}

/* Python's slice.indices + gather, for lists and strings (code points) */
static jv do_slice(R *r, jv obj, jv *lo, jv *hi, jv *st) {
    if (obj.t == V_UNDEF) undef_fail(r, obj);
    if (obj.t == V_LIST && obj.tuple >= LK_GEN) return mk_undef(NULL, 0);
    if (obj.t != V_LIST && obj.t != V_STR) rerr(r, "'%s' object is not subscriptable", type_name(obj));
    int64_t len = obj.t == V_LIST ? (int64_t)obj.u.l->n : (int64_t)u8_len(obj.u.s, obj.n);
    int64_t stepv = 1, start, stop;
    for (int i = 0; i < 3; i++) {
        jv *v = i == 0 ? lo : i == 1 ? hi : st;
        if (v && v->t != V_NONE && v->t != V_INT && v->t != V_BOOL)
            rerr(r, "slice indices must be integers or None");
    }
    if (st && st->t != V_NONE) stepv = st->u.i;
    if (stepv == 0) rerr(r, "slice step cannot be zero");
    if (!lo || lo->t == V_NONE) start = stepv < 0 ? len - 1 : 0;
    else {
        start = lo->u.i;
        if (start < 0) { start += len; if (start < 0) start = stepv < 0 ? -1 : 0; }
        else if (start >= len) start = stepv < 0 ? len - 1 : len;
    }
    if (!hi || hi->t == V_NONE) stop = stepv < 0 ? -1 : len;
    else {
        stop = hi->u.i;
        if (stop < 0) { stop += len; if (stop < 0) stop = stepv < 0 ? -1 : 0; }
        else if (stop >= len) stop = stepv < 0 ? len - 1 : len;
    }
    if (obj.t == V_LIST) {
        jlist *l = list_new(r, 4);
        for (int64_t i = start; stepv > 0 ? i < stop : i > stop; i += stepv) list_push(r, l, obj.u.l->v[i]);
        jv v = mk_list(l);
        v.tuple = obj.tuple;
        return v;
    }
    /* strings: offsets of every code point */
    size_t *off = ralloc(r, ((size_t)len + 1) * sizeof *off);
    size_t k = 0;
    for (size_t i = 0; i < obj.n; u8_dec(obj.u.s, obj.n, &i)) off[k++] = i;
    off[k] = obj.n;
    if (stepv == 1) return start < stop ? mk_str(obj.u.s + off[start], off[stop] - off[start]) : mk_str("", 0);
    sb b = {0};
    for (int64_t i = start; stepv > 0 ? i < stop : i > stop; i += stepv)
        sb_put(r, &b, obj.u.s + off[i], off[i + 1] - off[i]);
    return sb_val(&b);
}

/* ---------------------------------------------------------------- attributes and methods */

static const char *const str_methods[] = {
    "strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith", "upper", "lower", "replace",
    "find", "rfind", "index", "count", "title", "capitalize", "format", "join", "isdigit", "isalpha",
    "isalnum", "isspace", "islower", "isupper", "splitlines", NULL};
static const char *const dict_methods[] = {"items", "keys", "values", "get", "copy", "pop", "update",
                                           "setdefault", "clear", "popitem", "fromkeys", NULL};
static const char *const list_methods[] = {"index", "count", "copy", "append", "pop", "extend", "insert",
                                           "remove", "clear", "sort", "reverse", NULL};

static int in_tab(const char *const *tab, const char *s, size_t n) {
    for (int i = 0; tab[i]; i++)
        if (name_is(s, n, tab[i])) return 1;
    return 0;
}

static jv mk_method(R *r, jv self, const char *s, size_t n) {
    struct jmeth *m = ralloc(r, sizeof *m);
    m->self = self;
    m->name = s;
    m->n = n;
    jv v = {0};
    v.t = V_METHOD;
    v.u.p = m;
    return v;
}

static jv loop_attr(R *r, struct jloop *lp, const char *s, size_t n) {
    int64_t len = (int64_t)lp->items->n, i = (int64_t)lp->i;
    if (name_is(s, n, "index")) return mk_int(i + 1);
    if (name_is(s, n, "index0")) return mk_int(i);
    if (name_is(s, n, "revindex")) return mk_int(len - i);
    if (name_is(s, n, "revindex0")) return mk_int(len - i - 1);
    if (name_is(s, n, "first")) return mk_bool(i == 0);
    if (name_is(s, n, "last")) return mk_bool(i == len - 1);
    if (name_is(s, n, "length")) return mk_int(len);
    if (name_is(s, n, "depth")) return mk_int(1);
    if (name_is(s, n, "depth0")) return mk_int(0);
    if (name_is(s, n, "previtem")) return i > 0 ? lp->items->v[i - 1] : mk_undef("there is no previous item", 25);
    if (name_is(s, n, "nextitem")) return i + 1 < len ? lp->items->v[i + 1] : mk_undef("there is no next item", 21);
    if (name_is(s, n, "cycle")) {
        jv self = {0};
        self.t = V_LOOP;
        self.u.p = lp;
        return mk_method(r, self, s, n);
    }
    return mk_undef(s, n);
}

/* obj.name: Python attribute first (methods), then item (Jinja2's environment.getattr) */
static jv getattr_v(R *r, jv obj, const char *s, size_t n) {
    switch (obj.t) {
    case V_UNDEF: undef_fail(r, obj); break;
    case V_DICT:
        if (in_tab(dict_methods, s, n)) return mk_method(r, obj, s, n);
        /* fallthrough */
    case V_NS: {
        long i = dict_find_s(obj.u.d, s, n);
        return i >= 0 ? obj.u.d->v[i] : mk_undef(s, n);
    }
    case V_STR:
        if (in_tab(str_methods, s, n)) return mk_method(r, obj, s, n);
        break;
    case V_LIST:
        if (obj.tuple < LK_GEN && in_tab(list_methods, s, n)) return mk_method(r, obj, s, n);
        break;
    case V_LOOP: return loop_attr(r, obj.u.p, s, n);
    default: break;
    }
    return mk_undef(s, n);
}

/* obj[key]: item first, then attribute (Jinja2's environment.getitem) */
static jv getitem_v(R *r, jv obj, jv key) {
    switch (obj.t) {
    case V_UNDEF: undef_fail(r, obj); break;
    case V_DICT: case V_NS: {
        long i = dict_find(r, obj.u.d, key);
        if (i >= 0) return obj.u.d->v[i];
        break;
    }
    case V_LIST: case V_STR:
        if (obj.t == V_LIST && obj.tuple >= LK_GEN) return mk_undef(NULL, 0);
        if (key.t == V_INT || key.t == V_BOOL) {
            int64_t len = obj.t == V_LIST ? (int64_t)obj.u.l->n : (int64_t)u8_len(obj.u.s, obj.n);
            int64_t i = key.u.i < 0 ? key.u.i + len : key.u.i;
            if (i < 0 || i >= len) return mk_undef(NULL, 0);
            if (obj.t == V_LIST) return obj.u.l->v[i];
            size_t a = u8_off(obj.u.s, obj.n, (size_t)i), b = a;
            u8_dec(obj.u.s, obj.n, &b);
            return mk_str(obj.u.s + a, b - a);
        }
        break;
    default: break;
    }
    if (key.t == V_STR) return getattr_v(r, obj, key.u.s, key.n);
    return mk_undef(NULL, 0);
}

static int64_t arg_int(R *r, const args *a, int idx, const char *name, int64_t dflt) {
    jv v;
    if (!arg(a, idx, name, &v) || v.t == V_NONE) return dflt;
    if (v.t != V_INT && v.t != V_BOOL) rerr(r, "an integer argument is required, got %s", type_name(v));
    return v.u.i;
}

static jv call_method(R *r, struct jmeth *m, const args *a) {
    jv s = m->self;
    const char *nm = m->name;
    size_t nn = m->n;
#define IS(x) name_is(nm, nn, x)
    if (s.t == V_STR) {
        jv c;
        if (IS("strip") || IS("lstrip") || IS("rstrip")) {
            int has = arg(a, 0, NULL, &c) && c.t != V_NONE;
            if (has && c.t != V_STR) rerr(r, "%.*s arg must be None or str", (int)nn, nm);
            return py_strip(s, has ? &c : NULL, !IS("rstrip"), !IS("lstrip"));
        }
        if (IS("split") || IS("rsplit")) {
            int has = arg(a, 0, "sep", &c) && c.t != V_NONE;
            if (has && c.t != V_STR) rerr(r, "must be str or None");
            int64_t ms = arg_int(r, a, 1, "maxsplit", -1);
            if (IS("rsplit") && ms >= 0) rerr(r, "rsplit with maxsplit is not supported");
            return py_split(r, s, has ? &c : NULL, ms);
        }
        if (IS("startswith") || IS("endswith")) {
            if (!arg(a, 0, NULL, &c)) rerr(r, "%.*s takes at least 1 argument", (int)nn, nm);
            jlist one = {1, 1, &c};
            jlist *cands = c.t == V_LIST && c.tuple ? c.u.l : &one;
            for (size_t i = 0; i < cands->n; i++) {
                jv p = cands->v[i];
                if (p.t != V_STR) rerr(r, "%.*s first arg must be str or a tuple of str", (int)nn, nm);
                if (p.n <= s.n && memcmp(IS("startswith") ? s.u.s : s.u.s + s.n - p.n, p.u.s, p.n) == 0) return mk_bool(1);
            }
            return mk_bool(0);
        }
        if (IS("upper")) return ascii_case(r, s, 1);
        if (IS("lower")) return ascii_case(r, s, 0);
        if (IS("title")) return ascii_case(r, s, 4);
        if (IS("capitalize")) return ascii_case(r, s, 2);
        if (IS("replace")) {
            jv o = arg_str(r, a, 0, NULL, "replace"), w = arg_str(r, a, 1, NULL, "replace");
            return py_replace(r, s, o, w, arg_int(r, a, 2, "count", -1));
        }
        if (IS("find") || IS("rfind") || IS("index") || IS("count")) {
            jv sub = arg_str(r, a, 0, NULL, "find");
            if (IS("count")) {
                int64_t k = 0;
                if (!sub.n) return mk_int((int64_t)u8_len(s.u.s, s.n) + 1);
                for (size_t i = 0; i + sub.n <= s.n;) {
                    if (memcmp(s.u.s + i, sub.u.s, sub.n) == 0) { k++; i += sub.n; } else i++;
                }
                return mk_int(k);
            }
            long at = -1;
            for (size_t i = 0; i + sub.n <= s.n; i++)
                if (memcmp(s.u.s + i, sub.u.s, sub.n) == 0) { at = (long)i; if (!IS("rfind")) break; }
            if (at < 0 && IS("index")) rerr(r, "substring not found");
            return mk_int(at < 0 ? -1 : (int64_t)u8_len(s.u.s, (size_t)at));
        }
        if (IS("format")) return py_format(r, s, a);
        if (IS("join")) {
            if (!arg(a, 0, NULL, &c)) rerr(r, "join takes one argument");
            jlist *l = iter_list(r, c);
            for (size_t i = 0; i < l->n; i++)
                if (l->v[i].t != V_STR) rerr(r, "sequence item %zu: expected str instance, %s found", i, type_name(l->v[i]));
            return join_list(r, l, s);
        }
        if (IS("isspace")) return mk_bool(all_space(s.u.s, s.n));
        if (IS("isdigit") || IS("isalpha") || IS("isalnum") || IS("islower") || IS("isupper")) {
            int any = 0, ok = s.n > 0, cased = 0;
            for (size_t i = 0; i < s.n; i++) {
                unsigned char ch = (unsigned char)s.u.s[i];
                int d = ch >= '0' && ch <= '9', lo = ch >= 'a' && ch <= 'z', up = ch >= 'A' && ch <= 'Z';
                any = 1;
                if (IS("isdigit") && !d) ok = 0;
                if (IS("isalpha") && !(lo || up)) ok = 0;
                if (IS("isalnum") && !(lo || up || d)) ok = 0;
                if (IS("islower")) { if (up) ok = 0; if (lo) cased = 1; }
                if (IS("isupper")) { if (lo) ok = 0; if (up) cased = 1; }
            }
            if ((IS("islower") || IS("isupper")) && !cased) ok = 0;
            return mk_bool(any && ok);
        }
        if (IS("splitlines")) {
            jlist *l = list_new(r, 4);
            size_t st = 0;
            for (size_t i = 0; i < s.n;) {
                size_t j = i;
                uint32_t cp = u8_dec(s.u.s, s.n, &j);
                if (cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c || (cp >= 0x1c && cp <= 0x1e) ||
                    cp == 0x85 || cp == 0x2028 || cp == 0x2029) {
                    list_push(r, l, mk_str(s.u.s + st, i - st));
                    if (cp == '\r' && j < s.n && s.u.s[j] == '\n') j++;
                    st = j;
                }
                i = j;
            }
            if (st < s.n) list_push(r, l, mk_str(s.u.s + st, s.n - st));
            return mk_list(l);
        }
    } else if (s.t == V_DICT) {
        jdict *d = s.u.d;
        if (IS("items") || IS("keys") || IS("values")) {
            jlist *l = list_new(r, d->n);
            for (size_t i = 0; i < d->n; i++) {
                if (IS("keys")) list_push(r, l, d->k[i]);
                else if (IS("values")) list_push(r, l, d->v[i]);
                else {
                    jlist *pr = list_new(r, 2);
                    list_push(r, pr, d->k[i]);
                    list_push(r, pr, d->v[i]);
                    jv t = mk_list(pr);
                    t.tuple = 1;
                    list_push(r, l, t);
                }
            }
            jv view = mk_list(l);
            view.tuple = LK_VIEW;
            return view;
        }
        if (IS("get")) {
            jv k, dflt = mk_none();
            if (!arg(a, 0, NULL, &k)) rerr(r, "get expected at least 1 argument");
            arg(a, 1, NULL, &dflt);
            long i = dict_find(r, d, k);
            return i >= 0 ? d->v[i] : dflt;
        }
        if (IS("copy")) {
            jdict *c = dict_new(r);
            for (size_t i = 0; i < d->n; i++) dict_set(r, c, d->k[i], d->v[i]);
            return mk_dict(c);
        }
    } else if (s.t == V_LIST) {
        jlist *l = s.u.l;
        jv c;
        if (IS("index") || IS("count")) {
            if (!arg(a, 0, NULL, &c)) rerr(r, "%.*s takes one argument", (int)nn, nm);
            int64_t k = 0;
            for (size_t i = 0; i < l->n; i++)
                if (py_eq(r, l->v[i], c)) {
                    if (IS("index")) return mk_int((int64_t)i);
                    k++;
                }
            if (IS("index")) rerr(r, "value is not in list");
            return mk_int(k);
        }
        if (IS("copy")) {
            jlist *c2 = list_new(r, l->n);
            for (size_t i = 0; i < l->n; i++) list_push(r, c2, l->v[i]);
            return mk_list(c2);
        }
    } else if (s.t == V_LOOP) {
        struct jloop *lp = s.u.p;
        if (a->npos == 0) rerr(r, "no items for cycling given");
        return a->pos[lp->i % (size_t)a->npos];
    }
    rerr(r, "access to attribute '%.*s' of '%s' object is unsafe", (int)nn, nm, type_name(s));
#undef IS
    return s;
}

struct jmacro {
    node *def;
    frame *closure;
};

static jv call_macro(R *r, struct jmacro *m, const args *a) {
    node *d = m->def;
    if (a->npos > d->nels)
        rerr(r, "macro '%.*s' takes not more than %d argument(s)", (int)d->n, d->s, d->nels);
    if (r->depth >= JINJA_MAX_DEPTH) rerr(r, "macro calls nested too deeply");
    r->depth++;
    frame *mf = frame_new(r, m->closure);
    for (int k = 0; k < a->nkw; k++) {
        int ok = 0;
        for (int i = 0; i < d->nels; i++)
            if (d->els[i]->n == a->kwl[k] && memcmp(d->els[i]->s, a->kwn[k], a->kwl[k]) == 0) ok = 1;
        if (!ok) rerr(r, "macro '%.*s' takes no keyword argument '%.*s'", (int)d->n, d->s, (int)a->kwl[k], a->kwn[k]);
    }
    for (int i = 0; i < d->nels; i++) {
        node *prm = d->els[i];
        jv v;
        int got = i < a->npos;
        if (got) v = a->pos[i];
        for (int k = 0; k < a->nkw; k++)
            if (prm->n == a->kwl[k] && memcmp(prm->s, a->kwn[k], prm->n) == 0) {
                if (got) rerr(r, "macro '%.*s' got multiple values for argument '%.*s'", (int)d->n, d->s, (int)prm->n, prm->s);
                v = a->kwv[k];
                got = 1;
            }
        if (!got) v = prm->a ? eval(r, prm->a, mf) : mk_undef(prm->s, prm->n);
        frame_set(r, mf, prm->s, prm->n, v);
    }
    size_t mark = r->on;
    exec_body(r, d->kids, d->nkids, mf);
    jv out = str_copy(r, r->out ? r->out + mark : "", r->on - mark);
    r->on = mark;
    r->depth--;
    return out;
}

static jv call_value(R *r, jv c, const args *a) {
    step(r);
    if (c.t == V_METHOD) return call_method(r, c.u.p, a);
    if (c.t == V_MACRO) return call_macro(r, c.u.p, a);
    if (c.t == V_UNDEF) undef_fail(r, c);
    if (c.t != V_FUNC) rerr(r, "'%s' object is not callable", type_name(c));
    jv v;
    switch (c.u.i) {
    case G_RANGE: {
        int64_t lo = 0, hi, st = 1;
        for (int i = 0; i < a->npos; i++)
            if (a->pos[i].t != V_INT && a->pos[i].t != V_BOOL) rerr(r, "range() arguments must be integers");
        if (a->npos == 1) hi = a->pos[0].u.i;
        else if (a->npos == 2 || a->npos == 3) {
            lo = a->pos[0].u.i;
            hi = a->pos[1].u.i;
            if (a->npos == 3) st = a->pos[2].u.i;
        } else rerr(r, "range expected 1 to 3 arguments");
        if (st == 0) rerr(r, "range() arg 3 must not be zero");
        double cnt = st > 0 ? ceil(((double)hi - (double)lo) / (double)st) : ceil(((double)lo - (double)hi) / (double)-st);
        if (cnt < 0) cnt = 0;
        if (cnt > JINJA_MAX_RANGE) rerr(r, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).", JINJA_MAX_RANGE);
        jlist *l = list_new(r, (size_t)cnt + 1);
        for (int64_t i = 0; i < (int64_t)cnt; i++) list_push(r, l, mk_int(lo + i * st));
        return mk_list(l);
    }
    case G_NAMESPACE: case G_DICT: {
        jdict *d = dict_new(r);
        if (arg(a, 0, NULL, &v)) {
            if (v.t != V_DICT) rerr(r, "%s: positional argument must be a dict", c.u.i == G_DICT ? "dict" : "namespace");
            for (size_t i = 0; i < v.u.d->n; i++) dict_set(r, d, v.u.d->k[i], v.u.d->v[i]);
        }
        for (int k = 0; k < a->nkw; k++) dict_set(r, d, mk_str(a->kwn[k], a->kwl[k]), a->kwv[k]);
        jv o = mk_dict(d);
        if (c.u.i == G_NAMESPACE) o.t = V_NS;
        return o;
    }
    case G_RAISE: {
        jv m = mk_str("", 0);
        arg(a, 0, "message", &m);
        m = str_of(r, m);
        int save = r->line;
        r->line = 0;
        (void)save;
        rerr(r, "%.*s", (int)(m.n > 400 ? 400 : m.n), m.u.s);
        break;
    }
    case G_STRFTIME: {
        jv f = arg_str(r, a, 0, "format", "strftime_now");
        char fmt[256], buf[512];
        if (f.n >= sizeof fmt) rerr(r, "strftime_now: format too long");
        memcpy(fmt, f.u.s, f.n);
        fmt[f.n] = 0;
        time_t tt = (time_t)r->now;
        struct tm tmv;
        if (!localtime_r(&tt, &tmv)) rerr(r, "strftime_now: bad time");
        size_t k = f.n ? strftime(buf, sizeof buf, fmt, &tmv) : 0;
        return str_copy(r, buf, k);
    }
    }
    rerr(r, "unknown function");
    return c;
}

/* ---------------------------------------------------------------- filters and tests */

static jv fold(R *r, jv v, int case_sensitive) {
    return !case_sensitive && v.t == V_STR ? ascii_case(r, v, 0) : v;
}

/* Jinja2's make_attrgetter: "a.b" or an integer index, item lookup first */
static jv attr_path(R *r, jv v, jv attr) {
    if (attr.t == V_INT) return getitem_v(r, v, attr);
    if (attr.t != V_STR) rerr(r, "attribute must be a string or an integer");
    size_t i = 0;
    while (i <= attr.n) {
        size_t j = i;
        while (j < attr.n && attr.u.s[j] != '.') j++;
        const char *p = attr.u.s + i;
        size_t n = j - i;
        int digits = n > 0;
        for (size_t k = 0; k < n; k++) if (p[k] < '0' || p[k] > '9') digits = 0;
        v = digits ? getitem_v(r, v, mk_int(atoll(p))) : getitem_v(r, v, mk_str(p, n));
        i = j + 1;
    }
    return v;
}

/* stable merge sort by py_cmp on keys */
static void msort(R *r, jv *v, jv *key, size_t n, int reverse, jv *tv, jv *tk) {
    if (n < 2) return;
    size_t h = n / 2;
    msort(r, v, key, h, reverse, tv, tk);
    msort(r, v + h, key + h, n - h, reverse, tv, tk);
    size_t i = 0, j = h, o = 0;
    while (i < h || j < n) {
        int take_j = j < n && (i >= h || (reverse ? py_cmp(r, key[i], key[j]) < 0 : py_cmp(r, key[j], key[i]) < 0));
        if (take_j) { tv[o] = v[j]; tk[o++] = key[j++]; }
        else { tv[o] = v[i]; tk[o++] = key[i++]; }
        step(r);
    }
    memcpy(v, tv, n * sizeof *v);
    memcpy(key, tk, n * sizeof *key);
}

static jlist *sorted(R *r, jlist *src, jv *keys, int reverse) {
    jlist *l = list_new(r, src->n + 1);
    for (size_t i = 0; i < src->n; i++) list_push(r, l, src->v[i]);
    jv *tv = ralloc(r, (src->n + 1) * sizeof(jv)), *tk = ralloc(r, (src->n + 1) * sizeof(jv));
    msort(r, l->v, keys, l->n, reverse, tv, tk);
    return l;
}

static jv html_escape(R *r, jv s) {
    sb b = {0};
    for (size_t i = 0; i < s.n; i++) {
        char c = s.u.s[i];
        if (c == '&') sb_puts(r, &b, "&amp;");
        else if (c == '<') sb_puts(r, &b, "&lt;");
        else if (c == '>') sb_puts(r, &b, "&gt;");
        else if (c == '"') sb_puts(r, &b, "&#34;");
        else if (c == '\'') sb_puts(r, &b, "&#39;");
        else sb_put(r, &b, &c, 1);
    }
    return sb_val(&b);
}

/* select/reject/selectattr/rejectattr/map share the argument shifting of Jinja2's prepare_map */
static jv select_like(R *r, int id, jv seq, const args *a) {
    jlist *src = truthy(seq) ? iter_list(r, seq) : list_new(r, 1), *out = list_new(r, src->n + 1);
    int attr_mode = id == F_SELECTATTR || id == F_REJECTATTR;
    int first = 0;
    jv attr = {0};
    if (attr_mode) {
        if (!arg(a, 0, NULL, &attr)) rerr(r, "%s: missing attribute", filter_names[id]);
        first = 1;
    }
    jv tname;
    int test_id = -1;
    if (arg(a, first, NULL, &tname)) {
        if (tname.t != V_STR) rerr(r, "test name must be a string");
        test_id = find_name(test_names, TS_N, tname.u.s, tname.n);
        if (test_id < 0) rerr(r, "No test named '%.*s'", (int)tname.n, tname.u.s);
    }
    args rest = *a;
    rest.pos = a->pos + (a->npos > first + 1 ? first + 1 : a->npos);
    rest.npos = a->npos > first + 1 ? a->npos - first - 1 : 0;
    int want = id == F_SELECT || id == F_SELECTATTR;
    for (size_t i = 0; i < src->n; i++) {
        jv it = src->v[i], v = attr_mode ? attr_path(r, it, attr) : it;
        int ok = test_id < 0 ? truthy(v) : run_test(r, test_id, v, &rest);
        if (ok == want) list_push(r, out, it);
        step(r);
    }
    jv g = mk_list(out);
    g.tuple = LK_GEN;
    return g;
}

static jv run_filter(R *r, int id, jv v, const args *a, frame *f) {
    jv x;
    step(r);
    switch (id) {
    case F_TOJSON: {
        jopts o = {-1, ", ", ": ", 0, 0};
        if (arg(a, 1, "indent", &x) && x.t != V_NONE) {
            if (x.t != V_INT) rerr(r, "tojson: indent must be an integer");
            o.indent = x.u.i < 0 ? 0 : x.u.i > 64 ? 64 : (int)x.u.i;
            o.item_sep = ",";
        }
        if (arg(a, 2, "separators", &x) && x.t != V_NONE) {
            if (x.t != V_LIST || x.u.l->n != 2 || x.u.l->v[0].t != V_STR || x.u.l->v[1].t != V_STR)
                rerr(r, "tojson: separators must be a pair of strings");
            o.item_sep = str_copy(r, x.u.l->v[0].u.s, x.u.l->v[0].n).u.s;
            o.key_sep = str_copy(r, x.u.l->v[1].u.s, x.u.l->v[1].n).u.s;
        }
        o.sort_keys = arg_bool(a, 3, "sort_keys", 0);
        o.ensure_ascii = arg_bool(a, 0, "ensure_ascii", 0);
        sb b = {0};
        to_json(r, &b, v, &o, 0);
        return sb_val(&b);
    }
    case F_LENGTH: case F_COUNT: return py_len(r, v);
    case F_TRIM: {
        jv s = str_of(r, v);
        int has = arg(a, 0, "chars", &x) && x.t != V_NONE;
        if (has && x.t != V_STR) rerr(r, "trim: chars must be a string");
        return py_strip(s, has ? &x : NULL, 1, 1);
    }
    case F_STRING: return str_of(r, v);
    case F_SAFE: {
        jv m = str_of(r, v);
        m.tuple = 1;
        return m;
    }
    case F_UPPER: return ascii_case(r, str_of(r, v), 1);
    case F_LOWER: return ascii_case(r, str_of(r, v), 0);
    case F_CAPITALIZE: return ascii_case(r, str_of(r, v), 2);
    case F_TITLE: return ascii_case(r, str_of(r, v), 3);
    case F_E: case F_ESCAPE: case F_FORCEESCAPE: return html_escape(r, str_of(r, v));
    case F_D: case F_DEFAULT: {
        jv dflt = mk_str("", 0);
        arg(a, 0, "default_value", &dflt);
        int boolean = arg_bool(a, 1, "boolean", 0);
        if (v.t == V_UNDEF || (boolean && !truthy(v))) return dflt;
        return v;
    }
    case F_JOIN: {
        jv sep = mk_str("", 0);
        if (arg(a, 0, "d", &x)) sep = str_of(r, x);
        jlist *l = iter_list(r, v);
        if (arg(a, 1, "attribute", &x) && x.t != V_NONE) {
            jlist *m = list_new(r, l->n + 1);
            for (size_t i = 0; i < l->n; i++) list_push(r, m, attr_path(r, l->v[i], x));
            l = m;
        }
        return join_list(r, l, sep);
    }
    case F_FIRST: case F_LAST: {
        if (id == F_LAST && v.t == V_LIST && v.tuple == LK_GEN) rerr(r, "'generator' object is not reversible");
        jlist *l = iter_list(r, v);
        if (!l->n) return mk_undef("no first item", 13);
        return l->v[id == F_FIRST ? 0 : l->n - 1];
    }
    case F_LIST: {
        jlist *l = iter_list(r, v), *c = list_new(r, l->n + 1);
        for (size_t i = 0; i < l->n; i++) list_push(r, c, l->v[i]);
        return mk_list(c);
    }
    case F_REVERSE: {
        if (v.t == V_STR) { jv m1 = mk_int(-1); return do_slice(r, v, NULL, NULL, &m1); }
        jlist *l = iter_list(r, v), *c = list_new(r, l->n + 1);
        for (size_t i = l->n; i-- > 0;) list_push(r, c, l->v[i]);
        jv rv = mk_list(c);
        rv.tuple = v.t == V_LIST && v.tuple == LK_GEN ? LK_LIST : LK_GEN;
        return rv;
    }
    case F_ITEMS: {
        if (v.t == V_UNDEF) return mk_list(list_new(r, 1));
        if (v.t != V_DICT) rerr(r, "Can only get item pairs from a mapping.");
        struct jmeth m = {v, "items", 5};
        args none = {0};
        jv g = call_method(r, &m, &none);
        g.tuple = LK_GEN;
        return g;
    }
    case F_DICTSORT: {
        if (v.t != V_DICT) rerr(r, "dictsort: expected a mapping");
        int cs = arg_bool(a, 0, "case_sensitive", 0);
        jv by = mk_str("key", 3);
        arg(a, 1, "by", &by);
        int byv = by.t == V_STR && name_is(by.u.s, by.n, "value");
        if (!byv && !(by.t == V_STR && name_is(by.u.s, by.n, "key"))) rerr(r, "You can only sort by either \"key\" or \"value\"");
        struct jmeth m = {v, "items", 5};
        args none = {0};
        jlist *items = call_method(r, &m, &none).u.l;
        jv *keys = ralloc(r, (items->n + 1) * sizeof(jv));
        for (size_t i = 0; i < items->n; i++) keys[i] = fold(r, items->v[i].u.l->v[byv], cs);
        return mk_list(sorted(r, items, keys, arg_bool(a, 2, "reverse", 0)));
    }
    case F_SORT: case F_UNIQUE: case F_MIN: case F_MAX: {
        int cs = arg_bool(a, id == F_SORT ? 1 : 0, "case_sensitive", 0);
        jv attr = mk_none();
        arg(a, id == F_SORT ? 2 : 1, "attribute", &attr);
        jlist *l = iter_list(r, v);
        jv *keys = ralloc(r, (l->n + 1) * sizeof(jv));
        for (size_t i = 0; i < l->n; i++) keys[i] = fold(r, attr.t == V_NONE ? l->v[i] : attr_path(r, l->v[i], attr), cs);
        if (id == F_SORT) return mk_list(sorted(r, l, keys, arg_bool(a, 0, "reverse", 0)));
        if (id == F_UNIQUE) {
            jlist *o = list_new(r, l->n + 1), *seen = list_new(r, l->n + 1);
            for (size_t i = 0; i < l->n; i++) {
                jv sv = mk_list(seen);
                if (py_in(r, keys[i], sv)) continue;
                list_push(r, seen, keys[i]);
                list_push(r, o, l->v[i]);
            }
            jv g = mk_list(o);
            g.tuple = LK_GEN;
            return g;
        }
        if (!l->n) return mk_undef("No aggregated item, sequence was empty.", 39);
        size_t best = 0;
        for (size_t i = 1; i < l->n; i++) {
            int c = py_cmp(r, keys[i], keys[best]);
            if (id == F_MIN ? c < 0 : c > 0) best = i;
        }
        return l->v[best];
    }
    case F_SELECT: case F_REJECT: case F_SELECTATTR: case F_REJECTATTR: return select_like(r, id, v, a);
    case F_MAP: {
        jlist *src = truthy(v) ? iter_list(r, v) : list_new(r, 1), *out = list_new(r, src->n + 1);
        jv g = mk_list(out);
        g.tuple = LK_GEN;
        if (arg(a, -1, "attribute", &x)) {
            jv dflt;
            int hasd = arg(a, -1, "default", &dflt);
            for (size_t i = 0; i < src->n; i++) {
                jv y = attr_path(r, src->v[i], x);
                list_push(r, out, hasd && y.t == V_UNDEF ? dflt : y);
            }
            return g;
        }
        jv fname;
        if (!arg(a, 0, NULL, &fname) || fname.t != V_STR) rerr(r, "map: expected a filter name or attribute=");
        int fid = find_name(filter_names, F_N, fname.u.s, fname.n);
        if (fid < 0) rerr(r, "No filter named '%.*s'", (int)fname.n, fname.u.s);
        args rest = *a;
        rest.pos = a->pos + 1;
        rest.npos = a->npos - 1;
        for (size_t i = 0; i < src->n; i++) list_push(r, out, run_filter(r, fid, src->v[i], &rest, f));
        return g;
    }
    case F_REPLACE: {
        jv s = str_of(r, v);
        jv o = str_of(r, arg(a, 0, "old", &x) ? x : mk_str("", 0));
        jv w = str_of(r, arg(a, 1, "new", &x) ? x : mk_str("", 0));
        return py_replace(r, s, o, w, arg_int(r, a, 2, "count", -1));
    }
    case F_INT: {
        int64_t dflt = arg_int(r, a, 0, "default", 0);
        if (v.t == V_INT || v.t == V_BOOL) return mk_int(v.u.i);
        if (v.t == V_FLOAT) return isfinite(v.u.f) && fabs(v.u.f) < 9.2e18 ? mk_int((int64_t)v.u.f) : mk_int(dflt);
        if (v.t == V_STR) {
            jv s = py_strip(v, NULL, 1, 1);
            char buf[64];
            if (!s.n || s.n >= sizeof buf) return mk_int(dflt);
            memcpy(buf, s.u.s, s.n);
            buf[s.n] = 0;
            char *end;
            errno = 0;
            long long k = strtoll(buf, &end, 10);
            if (*end == 0 && errno == 0) return mk_int(k);
            double d = strtod(buf, &end);
            if (*end == 0 && isfinite(d) && fabs(d) < 9.2e18) return mk_int((int64_t)d);
        }
        return mk_int(dflt);
    }
    case F_FLOAT: {
        double dflt = 0;
        if (arg(a, 0, "default", &x) && is_num(x)) dflt = num_f(x);
        if (is_num(v)) return mk_float(num_f(v));
        if (v.t == V_STR) {
            jv s = py_strip(v, NULL, 1, 1);
            char buf[64];
            if (s.n && s.n < sizeof buf) {
                memcpy(buf, s.u.s, s.n);
                buf[s.n] = 0;
                char *end;
                double d = strtod(buf, &end);
                if (*end == 0) return mk_float(d);
            }
        }
        return mk_float(dflt);
    }
    case F_ABS:
        if (v.t == V_INT || v.t == V_BOOL) return mk_int(ck(r, v.u.i != INT64_MIN, v.u.i < 0 ? -v.u.i : v.u.i));
        if (v.t == V_FLOAT) return mk_float(fabs(v.u.f));
        rerr(r, "bad operand type for abs(): '%s'", type_name(v));
        break;
    case F_SUM: {
        jlist *l = iter_list(r, v);
        jv acc = mk_int(0);
        jv attr;
        int hasa = arg(a, 0, "attribute", &attr) && attr.t != V_NONE;
        arg(a, 1, "start", &acc);
        for (size_t i = 0; i < l->n; i++) acc = arith(r, OP_ADD, acc, hasa ? attr_path(r, l->v[i], attr) : l->v[i]);
        return acc;
    }
    case F_WORDCOUNT: {
        jv s = str_of(r, v);
        int64_t k = 0;
        int in = 0;
        for (size_t i = 0; i < s.n; i++) {
            unsigned char c = (unsigned char)s.u.s[i];
            int w = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
            if (w && !in) k++;
            in = w;
        }
        return mk_int(k);
    }
    case F_INDENT: {
        jv s = str_of(r, v);
        jv ind;
        sb pre = {0};
        if (arg(a, 0, "width", &ind) && ind.t == V_STR) sb_put(r, &pre, ind.u.s, ind.n);
        else {
            int64_t w = arg_int(r, a, 0, "width", 4);
            for (int64_t i = 0; i < w && i < 4096; i++) sb_put(r, &pre, " ", 1);
        }
        int first = arg_bool(a, 1, "first", 0), blank = arg_bool(a, 2, "blank", 0);
        sb t = {0};
        sb_put(r, &t, s.u.s, s.n);
        sb_put(r, &t, "\n", 1);
        struct jmeth m = {sb_val(&t), "splitlines", 10};
        args none = {0};
        jlist *lines = call_method(r, &m, &none).u.l;
        sb o = {0};
        if (first) sb_put(r, &o, pre.p, pre.n);
        for (size_t i = 0; i < lines->n; i++) {
            jv ln = lines->v[i];
            if (i) {
                sb_put(r, &o, "\n", 1);
                if (blank || ln.n) sb_put(r, &o, pre.p, pre.n);
            }
            sb_put(r, &o, ln.u.s, ln.n);
        }
        return sb_val(&o);
    }
    case F_ROUND: {
        if (!is_num(v)) rerr(r, "round: expected a number");
        int64_t prec = arg_int(r, a, 0, "precision", 0);
        jv meth = mk_str("common", 6);
        arg(a, 1, "method", &meth);
        double d = num_f(v), p = pow(10, (double)prec);
        if (meth.t == V_STR && name_is(meth.u.s, meth.n, "ceil")) return mk_float(ceil(d * p) / p);
        if (meth.t == V_STR && name_is(meth.u.s, meth.n, "floor")) return mk_float(floor(d * p) / p);
        return mk_float(round(d * p) / p);
    }
    case F_ATTR: {
        jv nm = arg_str(r, a, 0, "name", "attr");
        return getattr_v(r, v, nm.u.s, nm.n);
    }
    default: break;
    }
    (void)f;
    rerr(r, "filter '%s' is not supported", filter_names[id]);
    return v;
}

static int run_test(R *r, int id, jv v, const args *a) {
    jv o = mk_undef(NULL, 0);
    int has = arg(a, 0, NULL, &o);
    step(r);
    switch (id) {
    case TS_DEFINED: return v.t != V_UNDEF;
    case TS_UNDEFINED: return v.t == V_UNDEF;
    case TS_NONE: return v.t == V_NONE;
    case TS_STRING: return v.t == V_STR;
    case TS_MAPPING: return v.t == V_DICT;
    case TS_ITERABLE: return v.t == V_UNDEF || v.t == V_STR || v.t == V_LIST || v.t == V_DICT;
    case TS_SEQUENCE: return v.t == V_STR || (v.t == V_LIST && v.tuple < LK_GEN) || v.t == V_DICT;
    case TS_NUMBER: return is_num(v);
    case TS_INTEGER: return v.t == V_INT;
    case TS_FLOAT: return v.t == V_FLOAT;
    case TS_BOOLEAN: return v.t == V_BOOL;
    case TS_FALSE: return v.t == V_BOOL && !v.u.i;
    case TS_TRUE: return v.t == V_BOOL && v.u.i;
    case TS_CALLABLE: return v.t == V_FUNC || v.t == V_METHOD || v.t == V_MACRO;
    case TS_ESCAPED: return 0;
    case TS_ODD: case TS_EVEN:
        if (v.t != V_INT && v.t != V_BOOL) rerr(r, "odd/even: expected an integer");
        return (int)(((v.u.i % 2) + 2) % 2) == (id == TS_ODD);
    case TS_DIVISIBLEBY:
        if (!has || (o.t != V_INT && o.t != V_BOOL) || (v.t != V_INT && v.t != V_BOOL)) rerr(r, "divisibleby: expected integers");
        if (o.u.i == 0) rerr(r, "integer division or modulo by zero");
        return o.u.i == -1 || v.u.i % o.u.i == 0;
    case TS_EQ: case TS_EQUALTO: case TS_OPEQ: return py_eq(r, v, o);
    case TS_NE: case TS_OPNE: return !py_eq(r, v, o);
    case TS_LT: case TS_LESSTHAN: case TS_OPLT: return py_cmp(r, v, o) < 0;
    case TS_LE: case TS_OPLE: return py_cmp(r, v, o) <= 0;
    case TS_GT: case TS_GREATERTHAN: case TS_OPGT: return py_cmp(r, v, o) > 0;
    case TS_GE: case TS_OPGE: return py_cmp(r, v, o) >= 0;
    case TS_IN: return py_in(r, v, o);
    case TS_SAMEAS:
        if (v.t != o.t) return 0;
        if (v.t == V_NONE || v.t == V_UNDEF) return 1;
        if (v.t == V_BOOL) return v.u.i == o.u.i;
        if (v.t == V_INT) return v.u.i == o.u.i && v.u.i >= -5 && v.u.i <= 256;
        return v.u.p == o.u.p && (v.t != V_STR || v.n == o.n);
    case TS_LOWER: case TS_UPPER: {
        if (v.t != V_STR) return 0;
        struct jmeth m = {v, id == TS_LOWER ? "islower" : "isupper", 7};
        args none = {0};
        return truthy(call_method(r, &m, &none));
    }
    case TS_FILTER:
        return o.t == V_STR && find_name(filter_names, F_N, o.u.s, o.n) >= 0;
    case TS_TEST:
        return o.t == V_STR && find_name(test_names, TS_N, o.u.s, o.n) >= 0;
    }
    rerr(r, "unsupported test");
    return 0;
}

/* ---------------------------------------------------------------- evaluation */



static jv eval_hole(R *r, node *x, frame *f, jv hole);

static jv eval(R *r, node *x, frame *f) {
    step(r);
    r->line = x->line;
    switch (x->k) {
    case E_LIT: return x->lit;
    case E_NAME: {
        jv v;
        if (frame_get(f, x->s, x->n, &v)) return v;
        return mk_undef(x->s, x->n);
    }
    case E_LIST: case E_TUPLE: {
        jlist *l = list_new(r, (size_t)x->nkids + 1);
        for (int i = 0; i < x->nkids; i++) list_push(r, l, eval(r, x->kids[i], f));
        jv v = mk_list(l);
        v.tuple = x->k == E_TUPLE;
        return v;
    }
    case E_DICT: {
        jdict *d = dict_new(r);
        for (int i = 0; i + 1 < x->nkids; i += 2) {
            jv k = eval(r, x->kids[i], f);
            dict_set(r, d, k, eval(r, x->kids[i + 1], f));
        }
        return mk_dict(d);
    }
    case E_ATTR: return getattr_v(r, eval(r, x->a, f), x->s, x->n);
    case E_ITEM: {
        jv o = eval(r, x->a, f);
        return getitem_v(r, o, eval(r, x->b, f));
    }
    case E_SLICE: {
        jv o = eval(r, x->a, f), parts[3];
        for (int i = 0; i < 3; i++)
            if (x->kids[i]) parts[i] = eval(r, x->kids[i], f);
        return do_slice(r, o, x->kids[0] ? &parts[0] : NULL, x->kids[1] ? &parts[1] : NULL, x->kids[2] ? &parts[2] : NULL);
    }
    case E_CALL: {
        jv c = eval(r, x->a, f);
        args a;
        eval_args(r, x, f, &a);
        r->line = x->line;
        return call_value(r, c, &a);
    }
    case E_FILTER: case E_TEST: return eval_hole(r, x, f, mk_undef(NULL, 0));
    case E_NEG: case E_POS: {
        jv v = eval(r, x->a, f);
        if (v.t == V_UNDEF) undef_fail(r, v);
        if (v.t == V_INT || v.t == V_BOOL) return x->k == E_POS ? mk_int(v.u.i) : mk_int(ck(r, v.u.i != INT64_MIN, -v.u.i));
        if (v.t == V_FLOAT) return mk_float(x->k == E_POS ? v.u.f : -v.u.f);
        rerr(r, "bad operand type for unary %c: '%s'", x->k == E_POS ? '+' : '-', type_name(v));
        break;
    }
    case E_NOT: return mk_bool(!truthy(eval(r, x->a, f)));
    case E_AND: {
        jv a = eval(r, x->a, f);
        return truthy(a) ? eval(r, x->b, f) : a;
    }
    case E_OR: {
        jv a = eval(r, x->a, f);
        return truthy(a) ? a : eval(r, x->b, f);
    }
    case E_BIN: {
        jv a = eval(r, x->a, f), b = eval(r, x->b, f);
        r->line = x->line;
        return arith(r, x->op, a, b);
    }
    case E_CMP: {
        jv a = eval(r, x->a, f), b = eval(r, x->b, f);
        r->line = x->line;
        switch (x->op) {
        case OP_EQ: return mk_bool(py_eq(r, a, b));
        case OP_NE: return mk_bool(!py_eq(r, a, b));
        case OP_LT: return mk_bool(py_cmp(r, a, b) < 0);
        case OP_LE: return mk_bool(py_cmp(r, a, b) <= 0);
        case OP_GT: return mk_bool(py_cmp(r, a, b) > 0);
        case OP_GE: return mk_bool(py_cmp(r, a, b) >= 0);
        case OP_IN: return mk_bool(py_in(r, a, b));
        case OP_NOTIN: return mk_bool(!py_in(r, a, b));
        }
        break;
    }
    case E_COND:
        if (truthy(eval(r, x->a, f))) return eval(r, x->b, f);
        return x->c ? eval(r, x->c, f) : mk_undef(NULL, 0);
    default: break;
    }
    rerr(r, "internal: unexpected node");
    return mk_none();
}

/* filters and tests; a chain whose innermost value is missing takes `hole` (block set, filter) */
static jv eval_hole(R *r, node *x, frame *f, jv hole) {
    if (x->k != E_FILTER && x->k != E_TEST) return eval(r, x, f);
    step(r);
    jv v = x->a ? eval_hole(r, x->a, f, hole) : hole;
    args a;
    eval_args(r, x, f, &a);
    r->line = x->line;
    if (x->fid < 0) rerr(r, "No %s named '%.*s' found.", x->k == E_FILTER ? "filter" : "test", (int)x->n, x->s);
    if (x->k == E_FILTER) return run_filter(r, x->fid, v, &a, f);
    return mk_bool(run_test(r, x->fid, v, &a) != x->neg);
}

static void assign(R *r, node *target, jv v, frame *f) {
    if (target->k == E_NAME) { frame_set(r, f, target->s, target->n, v); return; }
    if (target->k == E_ATTR) {
        jv ns;
        if (!frame_get(f, target->a->s, target->a->n, &ns) || ns.t != V_NS)
            rerr(r, "cannot assign attribute on non-namespace object");
        dict_set(r, ns.u.d, mk_str(target->s, target->n), v);
        return;
    }
    /* tuple unpacking */
    jlist *l = iter_list(r, v);
    if ((int)l->n != target->nkids)
        rerr(r, l->n < (size_t)target->nkids ? "not enough values to unpack (expected %d, got %zu)"
                                             : "too many values to unpack (expected %d, got %zu)",
             target->nkids, l->n);
    for (int i = 0; i < target->nkids; i++) frame_set(r, f, target->kids[i]->s, target->kids[i]->n, l->v[i]);
}

static void emit_val(R *r, jv v) {
    if (v.t == V_STR) { emit(r, v.u.s, v.n); return; }
    sb b = {0};
    to_str(r, &b, v);
    emit(r, b.p, b.n);
}

/* 0 done, 1 break, 2 continue */
static int exec_body(R *r, node **b, int n, frame *f) {
    for (int i = 0; i < n; i++) {
        node *x = b[i];
        step(r);
        r->line = x->line;
        switch (x->k) {
        case S_TEXT: emit(r, x->s, x->n); break;
        case S_OUT: emit_val(r, eval(r, x->a, f)); break;
        case S_IF: {
            int rc = truthy(eval(r, x->a, f)) ? exec_body(r, x->kids, x->nkids, f) : exec_body(r, x->els, x->nels, f);
            if (rc) return rc;
            break;
        }
        case S_FOR: {
            jlist *src = iter_list(r, eval(r, x->b, f));
            frame *lf = frame_new(r, f);
            if (x->c) { /* `for t in seq if cond`: filtered before the loop */
                jlist *kept = list_new(r, src->n + 1);
                for (size_t k = 0; k < src->n; k++) {
                    lf->n = 0;
                    assign(r, x->a, src->v[k], lf);
                    if (truthy(eval(r, x->c, lf))) list_push(r, kept, src->v[k]);
                }
                src = kept;
            }
            struct jloop *lp = ralloc(r, sizeof *lp);
            lp->items = src;
            jv loopv = {0};
            loopv.t = V_LOOP;
            loopv.u.p = lp;
            for (size_t k = 0; k < src->n; k++) {
                lp->i = k;
                lf->n = 0;
                frame_set(r, lf, "loop", 4, loopv);
                assign(r, x->a, src->v[k], lf);
                int rc = exec_body(r, x->kids, x->nkids, lf);
                if (rc == 1) break;
            }
            if (!src->n) {
                int rc = exec_body(r, x->els, x->nels, f);
                if (rc) return rc;
            }
            break;
        }
        case S_SET: assign(r, x->a, eval(r, x->b, f), f); break;
        case S_SETBLOCK: case S_FILTER: {
            size_t mark = r->on;
            exec_body(r, x->kids, x->nkids, f);
            jv body = str_copy(r, r->out ? r->out + mark : "", r->on - mark);
            r->on = mark;
            if (x->b) body = eval_hole(r, x->b, f, body);
            if (x->k == S_SETBLOCK) assign(r, x->a, body, f);
            else emit_val(r, body);
            break;
        }
        case S_MACRO: {
            struct jmacro *m = ralloc(r, sizeof *m);
            m->def = x;
            m->closure = f;
            jv v = {0};
            v.t = V_MACRO;
            v.u.p = m;
            frame_set(r, f, x->s, x->n, v);
            break;
        }
        case S_BREAK: return 1;
        case S_CONTINUE: return 2;
        case S_GEN: {
            int rc = exec_body(r, x->kids, x->nkids, f);
            if (rc) return rc;
            break;
        }
        default: rerr(r, "internal: unexpected statement");
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- entry points */

int jinja_render_at(const jinja_tmpl *t, const char *context_json, int64_t now_epoch, char **out,
                    size_t *out_len, char *err, size_t errcap) {
    if (err && errcap) err[0] = 0;
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    R *r = calloc(1, sizeof *r);
    if (!r) {
        if (err && errcap) snprintf(err, errcap, "out of memory");
        return -1;
    }
    r->A.limit = JINJA_MAX_MEM;
    r->err = err;
    r->errcap = err ? errcap : 0;
    r->now = now_epoch;
    if (setjmp(r->jb)) {
        free(r->out);
        ar_free(&r->A);
        free(r);
        return -1;
    }
    if (!t || !out) rerr(r, "no template or output pointer");
    frame *g = frame_new(r, NULL);
    static const char *const gnames[] = {"range", "namespace", "dict", "raise_exception", "strftime_now"};
    for (int i = 0; i < 5; i++) {
        jv fn = {0};
        fn.t = V_FUNC;
        fn.u.i = i;
        frame_set(r, g, gnames[i], strlen(gnames[i]), fn);
    }
    frame *root = frame_new(r, g);
    r->root = root;
    if (context_json) {
        J j = {r, context_json, strlen(context_json), 0, 0};
        jv ctx = j_value(&j);
        jws(&j);
        if (j.i != j.n) jerr(&j, "trailing characters");
        if (ctx.t != V_DICT) rerr(r, "context JSON must be an object");
        for (size_t i = 0; i < ctx.u.d->n; i++)
            frame_set(r, root, ctx.u.d->k[i].u.s, ctx.u.d->k[i].n, ctx.u.d->v[i]);
    }
    exec_body(r, t->body, t->nbody, root);
    r->line = 0;
    emit(r, "", 0);
    char *res = malloc(r->on + 1);
    if (!res) rerr(r, "out of memory");
    if (r->on) memcpy(res, r->out, r->on);
    res[r->on] = 0;
    *out = res;
    if (out_len) *out_len = r->on;
    free(r->out);
    ar_free(&r->A);
    free(r);
    return 0;
}

int jinja_render(const jinja_tmpl *t, const char *context_json, char **out, size_t *out_len, char *err,
                 size_t errcap) {
    return jinja_render_at(t, context_json, (int64_t)time(NULL), out, out_len, err, errcap);
}
