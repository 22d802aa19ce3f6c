/* grammar.c — GBNF (llama.cpp's grammar format) compiled to a pushdown matcher over code points.
 *
 * The format: `name ::= alternatives` rules (a newline ends a rule outside parentheses; a line
 * that starts with `|` continues the alternation), "literals", [character classes] with ranges
 * and ^ negation, `.` (any character), ( groups ), the repetitions * + ? {m} {m,} {m,n}, escapes
 * \x.. \u.... \U........ \n \r \t \\ \" \[ \] and `#` comments; `root` is where a sentence starts.
 *
 * Compiled form: every rule is a list of alternatives, every alternative a list of symbols ended
 * by END; a symbol is a character class or a reference to a rule. Groups and repetitions become
 * generated rules (x* is R ::= x R | "", so the matcher's stacks do not grow with the count).
 * Left recursion is refused when compiling (through nullable prefixes too), which is what makes
 * every expansion below terminate.
 *
 * The matcher is the classic pushdown one: a state is a set of stacks; a stack is a chain of
 * nodes {pos, parent} in a pool, pos the next symbol to match (always a class on top, after
 * expansion), parent the node to continue with when the alternative ends; the empty stack (-1)
 * means the sentence may end here. Advancing by a code point keeps the stacks whose top class
 * matches it, steps them on and expands rule references again. Tokens are bytes, so a state also
 * carries a partial UTF-8 character. Masking a vocabulary walks the tokens in byte order: a
 * token shares its prefix with the one before, so the states of that prefix are reused, and a
 * prefix that no stack accepts rules out every token that starts with it at once.
 */
#include "grammar.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { GS_END = 0, GS_RULE = 1, GS_CLASS = 2 };

#define GRAM_MAX_SYMS (1 << 21)    /* symbols in a compiled grammar */
#define GRAM_MAX_REPEAT 100000     /* m and n of {m,n} */
#define GRAM_MAX_NEST 200          /* nested parentheses */
#define GRAM_MAX_STACKS 512        /* stacks in one state (more: the rest are dropped) */
#define GRAM_MAX_DEPTH 4000        /* rule references expanded without consuming a character */
#define GRAM_BUDGET 200000         /* expansion steps per advance */

typedef struct { int32_t kind, arg; } gsym;
typedef struct { int32_t start, n, neg; } gclass; /* ranges[start .. start+n) as lo,hi pairs */

struct gram_grammar {
    gsym *syms;       /* (n_syms) alternatives, each ended by END */
    int n_syms;
    int32_t *alts;    /* (n_alts) first symbol of each alternative */
    int32_t *rule_alt; /* (n_rules + 1) alternatives of rule r: alts[rule_alt[r] .. rule_alt[r+1]) */
    int n_rules, root;
    gclass *classes;  /* (n_classes) */
    uint32_t *ranges; /* (2 * n_ranges) */
    int n_classes;
};

/* ==== compiling ============================================================================== */

typedef struct { int32_t *v; int n, cap; } ivec;

static int iv_push(ivec *a, int32_t x) {
    if (a->n == a->cap) {
        int nc = a->cap ? a->cap * 2 : 16;
        int32_t *nv = realloc(a->v, (size_t)nc * sizeof *nv);
        if (!nv) return -1;
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n++] = x;
    return 0;
}

typedef struct {
    char *name;       /* NULL for generated rules */
    size_t name_len;
    int defined;
    size_t first_ref; /* offset of the first reference (for "undefined rule") */
    size_t def_at;    /* offset of its definition */
    int owner;        /* the named rule a generated rule was made for */
    ivec body;        /* kind,arg pairs; END between and after alternatives */
} brule;

typedef struct {
    const char *s;
    size_t len, pos;
    char *err;
    size_t errlen;
    int failed;
    brule *rules;
    int n_rules, cap_rules;
    ivec ranges;      /* lo,hi pairs */
    ivec classes;     /* start,n,neg triples */
    long n_syms;
    int cur;          /* the named rule being parsed */
    int32_t *names;   /* (name_cap) hash table of named rules: id + 1, 0 = empty */
    int name_cap, n_names;
    int depth;
} gbuild;

static void where(const gbuild *b, size_t off, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < b->len; i++) {
        if (b->s[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static int fail_at(gbuild *b, size_t off, const char *fmt, ...) {
    if (b->failed) return -1;
    b->failed = 1;
    int line, col;
    where(b, off, &line, &col);
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (b->err && b->errlen) snprintf(b->err, b->errlen, "grammar: line %d, column %d: %s", line, col, msg);
    return -1;
}

static int peek(const gbuild *b) { return b->pos < b->len ? (unsigned char)b->s[b->pos] : -1; }

static void skip_space(gbuild *b, int newline_ok) {
    while (b->pos < b->len) {
        char c = b->s[b->pos];
        if (c == ' ' || c == '\t' || (newline_ok && (c == '\n' || c == '\r'))) {
            b->pos++;
        } else if (c == '#') {
            while (b->pos < b->len && b->s[b->pos] != '\n') b->pos++;
        } else {
            break;
        }
    }
}

static int is_word(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int new_rule(gbuild *b, const char *name, size_t n) {
    if (b->n_rules == b->cap_rules) {
        int nc = b->cap_rules ? b->cap_rules * 2 : 32;
        brule *nr = realloc(b->rules, (size_t)nc * sizeof *nr);
        if (!nr) return fail_at(b, b->pos, "out of memory");
        b->rules = nr;
        b->cap_rules = nc;
    }
    brule *r = &b->rules[b->n_rules];
    memset(r, 0, sizeof *r);
    r->owner = b->cur;
    if (name) {
        r->name = malloc(n + 1);
        if (!r->name) return fail_at(b, b->pos, "out of memory");
        memcpy(r->name, name, n);
        r->name[n] = 0;
        r->name_len = n;
        r->owner = b->n_rules;
    }
    return b->n_rules++;
}

static uint32_t name_hash(const char *s, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* The named rule's id, made on first mention. Names live in an open-addressing table (rule id + 1,
 * 0 = empty) so that a grammar with many names and references compiles in linear time. */
static int find_rule(gbuild *b, const char *name, size_t n, size_t at) {
    if (2 * (b->n_names + 1) > b->name_cap) {
        int nc = b->name_cap ? b->name_cap * 2 : 64;
        int32_t *nt = calloc((size_t)nc, sizeof *nt);
        if (!nt) return fail_at(b, at, "out of memory");
        for (int i = 0; i < b->name_cap; i++) {
            int id = b->names[i] - 1;
            if (id < 0) continue;
            uint32_t k = name_hash(b->rules[id].name, b->rules[id].name_len) & (uint32_t)(nc - 1);
            while (nt[k]) k = (k + 1) & (uint32_t)(nc - 1);
            nt[k] = id + 1;
        }
        free(b->names);
        b->names = nt;
        b->name_cap = nc;
    }
    uint32_t k = name_hash(name, n) & (uint32_t)(b->name_cap - 1);
    for (; b->names[k]; k = (k + 1) & (uint32_t)(b->name_cap - 1)) {
        const brule *r = &b->rules[b->names[k] - 1];
        if (r->name_len == n && memcmp(r->name, name, n) == 0) return b->names[k] - 1;
    }
    int r = new_rule(b, name, n);
    if (r < 0) return -1;
    b->rules[r].first_ref = at;
    b->names[k] = r + 1;
    b->n_names++;
    return r;
}

static int push_sym(gbuild *b, ivec *out, int kind, int arg) {
    if (++b->n_syms > GRAM_MAX_SYMS) return fail_at(b, b->pos, "the grammar is too large");
    if (iv_push(out, kind) || iv_push(out, arg)) return fail_at(b, b->pos, "out of memory");
    return 0;
}

/* A class of n ranges (lo,hi pairs) as a new class id. */
static int add_class(gbuild *b, const uint32_t *lohi, int n, int neg) {
    int id = b->classes.n / 3;
    if (iv_push(&b->classes, b->ranges.n / 2) || iv_push(&b->classes, n) || iv_push(&b->classes, neg))
        return fail_at(b, b->pos, "out of memory");
    for (int i = 0; i < 2 * n; i++)
        if (iv_push(&b->ranges, (int32_t)lohi[i])) return fail_at(b, b->pos, "out of memory");
    return id;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One character of a literal or class (UTF-8 decoded, escapes resolved) into *cp. */
static int parse_char(gbuild *b, uint32_t *cp) {
    size_t at = b->pos;
    if (b->pos >= b->len) return fail_at(b, at, "unexpected end of grammar");
    unsigned char c = (unsigned char)b->s[b->pos];
    if (c == '\\') {
        if (b->pos + 1 >= b->len) return fail_at(b, at, "unexpected end of grammar after '\\'");
        char e = b->s[b->pos + 1];
        b->pos += 2;
        int nhex = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
        if (nhex) {
            uint32_t v = 0;
            for (int i = 0; i < nhex; i++) {
                int h = b->pos < b->len ? hexval((unsigned char)b->s[b->pos]) : -1;
                if (h < 0) return fail_at(b, at, "'\\%c' needs %d hexadecimal digits", e, nhex);
                v = v * 16 + (uint32_t)h;
                b->pos++;
            }
            if (v > 0x10FFFF) return fail_at(b, at, "escape '\\%c' is beyond U+10FFFF", e);
            *cp = v;
            return 0;
        }
        switch (e) {
        case 'n': *cp = '\n'; return 0;
        case 'r': *cp = '\r'; return 0;
        case 't': *cp = '\t'; return 0;
        case '0': *cp = 0; return 0;
        default:
            if (e == '\\' || e == '"' || e == '[' || e == ']' || e == '-' || e == '^' || e == '/' || e == '.' ||
                e == '\'') {
                *cp = (uint32_t)e;
                return 0;
            }
            return fail_at(b, at, "unknown escape '\\%c'", e >= 32 && e < 127 ? e : '?');
        }
    }
    int n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!n || b->pos + (size_t)n > b->len) return fail_at(b, at, "invalid UTF-8 in the grammar");
    uint32_t v = n == 1 ? c : n == 2 ? (c & 0x1Fu) : n == 3 ? (c & 0x0Fu) : (c & 0x07u);
    for (int i = 1; i < n; i++) {
        unsigned char d = (unsigned char)b->s[b->pos + (size_t)i];
        if ((d & 0xC0) != 0x80) return fail_at(b, at, "invalid UTF-8 in the grammar");
        v = (v << 6) | (d & 0x3Fu);
    }
    b->pos += (size_t)n;
    *cp = v;
    return 0;
}

static int parse_alts(gbuild *b, ivec *out, int nested);

/* A generated rule with the given body (taken over). */
static int gen_rule(gbuild *b, ivec *body) {
    int r = new_rule(b, NULL, 0);
    if (r < 0) {
        free(body->v);
        return -1;
    }
    b->rules[r].body = *body;
    b->rules[r].defined = 1;
    memset(body, 0, sizeof *body);
    return r;
}

/* Appends the symbols x[0..nx) (kind,arg pairs) to v. */
static int push_all(gbuild *b, ivec *v, const int32_t *x, int nx) {
    for (int i = 0; i < nx; i += 2)
        if (push_sym(b, v, x[i], x[i + 1])) return -1;
    return 0;
}

/* Applies a repetition {lo, hi} (hi < 0: unbounded) to out[start..]: the operand. */
static int repeat(gbuild *b, ivec *out, int start, long lo, long hi) {
    int32_t x[2];
    if (out->n - start > 2) { /* a literal of several characters: one rule */
        ivec body = {0};
        if (push_all(b, &body, out->v + start, out->n - start) || push_sym(b, &body, GS_END, 0)) {
            free(body.v);
            return -1;
        }
        int r = gen_rule(b, &body);
        if (r < 0) return -1;
        x[0] = GS_RULE;
        x[1] = r;
    } else {
        x[0] = out->v[start];
        x[1] = out->v[start + 1];
    }
    out->n = start;
    for (long i = 0; i < lo; i++)
        if (push_all(b, out, x, 2)) return -1;
    if (hi < 0) { /* R ::= x R | "" */
        int r = new_rule(b, NULL, 0);
        if (r < 0) return -1;
        ivec body = {0};
        if (push_all(b, &body, x, 2) || push_sym(b, &body, GS_RULE, r) || push_sym(b, &body, GS_END, 0) ||
            push_sym(b, &body, GS_END, 0)) {
            free(body.v);
            return -1;
        }
        b->rules[r].body = body;
        b->rules[r].defined = 1;
        return push_sym(b, out, GS_RULE, r);
    }
    /* up to hi - lo more: O_1 ::= x | "", O_k ::= x O_(k-1) | "" */
    int prev = -1;
    for (long k = 1; k <= hi - lo; k++) {
        ivec body = {0};
        if (push_all(b, &body, x, 2) || (prev >= 0 && push_sym(b, &body, GS_RULE, prev)) ||
            push_sym(b, &body, GS_END, 0) || push_sym(b, &body, GS_END, 0)) {
            free(body.v);
            return -1;
        }
        if ((prev = gen_rule(b, &body)) < 0) return -1;
    }
    return prev >= 0 ? push_sym(b, out, GS_RULE, prev) : 0;
}

static int parse_count(gbuild *b, long *v) {
    size_t at = b->pos;
    if (peek(b) < '0' || peek(b) > '9') return fail_at(b, at, "expected a number in {m,n}");
    *v = 0;
    while (peek(b) >= '0' && peek(b) <= '9') {
        *v = *v * 10 + (peek(b) - '0');
        if (*v > GRAM_MAX_REPEAT) return fail_at(b, at, "repetition count above %d", GRAM_MAX_REPEAT);
        b->pos++;
    }
    return 0;
}

static int parse_class(gbuild *b, ivec *out) {
    size_t at = b->pos;
    b->pos++; /* [ */
    int neg = 0;
    if (peek(b) == '^') {
        neg = 1;
        b->pos++;
    }
    ivec r = {0};
    while (peek(b) != ']') {
        if (peek(b) < 0) {
            free(r.v);
            return fail_at(b, at, "unterminated character class");
        }
        uint32_t lo, hi;
        if (parse_char(b, &lo)) goto bad;
        hi = lo;
        if (peek(b) == '-' && b->pos + 1 < b->len && b->s[b->pos + 1] != ']') {
            b->pos++;
            if (parse_char(b, &hi)) goto bad;
            if (hi < lo) {
                fail_at(b, at, "character range is backwards");
                goto bad;
            }
        }
        if (iv_push(&r, (int32_t)lo) || iv_push(&r, (int32_t)hi)) {
            fail_at(b, at, "out of memory");
            goto bad;
        }
    }
    b->pos++; /* ] */
    int id = add_class(b, (const uint32_t *)r.v, r.n / 2, neg);
    free(r.v);
    return id < 0 ? -1 : push_sym(b, out, GS_CLASS, id);
bad:
    free(r.v);
    return -1;
}

/* One sequence of elements; stops before '|', ')', a newline outside parentheses, or the end. */
static int parse_seq(gbuild *b, ivec *out, int nested) {
    int last = -1; /* start of the last element in out */
    for (;;) {
        int c = peek(b);
        size_t at = b->pos;
        if (c == '"') {
            b->pos++;
            last = out->n;
            while (peek(b) != '"') {
                if (peek(b) < 0 || peek(b) == '\n') return fail_at(b, at, "unterminated string literal");
                uint32_t cp;
                if (parse_char(b, &cp)) return -1;
                uint32_t lohi[2] = {cp, cp};
                int id = add_class(b, lohi, 1, 0);
                if (id < 0 || push_sym(b, out, GS_CLASS, id)) return -1;
            }
            b->pos++;
            if (out->n == last) last = -2; /* "": repeating it changes nothing */
        } else if (c == '[') {
            last = out->n;
            if (parse_class(b, out)) return -1;
        } else if (c == '.') {
            b->pos++;
            last = out->n;
            int id = add_class(b, NULL, 0, 1);
            if (id < 0 || push_sym(b, out, GS_CLASS, id)) return -1;
        } else if (c == '(') {
            b->pos++;
            if (++b->depth > GRAM_MAX_NEST) return fail_at(b, at, "parentheses nested too deeply");
            skip_space(b, 1);
            ivec body = {0};
            if (parse_alts(b, &body, 1)) {
                free(body.v);
                return -1;
            }
            if (peek(b) != ')') {
                free(body.v);
                return fail_at(b, at, "expected ')' to close this '('");
            }
            b->pos++;
            b->depth--;
            if (push_sym(b, &body, GS_END, 0)) {
                free(body.v);
                return -1;
            }
            int r = gen_rule(b, &body);
            if (r < 0) return -1;
            last = out->n;
            if (push_sym(b, out, GS_RULE, r)) return -1;
        } else if (c >= 0 && is_word(c)) {
            size_t s = b->pos;
            while (is_word(peek(b))) b->pos++;
            size_t save = b->pos;
            skip_space(b, nested);
            if (b->pos + 3 <= b->len && memcmp(b->s + b->pos, "::=", 3) == 0)
                return fail_at(b, s, "a rule definition must start on a new line");
            b->pos = save;
            int r = find_rule(b, b->s + s, b->pos - s, s);
            if (r < 0) return -1;
            last = out->n;
            if (push_sym(b, out, GS_RULE, r)) return -1;
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (last == -1) return fail_at(b, at, "'%c' has nothing before it to repeat", c);
            long lo = 0, hi = -1;
            b->pos++;
            if (c == '+') lo = 1;
            else if (c == '?') hi = 1;
            else if (c == '{') {
                skip_space(b, nested);
                if (parse_count(b, &lo)) return -1;
                skip_space(b, nested);
                if (peek(b) == ',') {
                    b->pos++;
                    skip_space(b, nested);
                    if (peek(b) != '}' && parse_count(b, &hi)) return -1;
                    skip_space(b, nested);
                } else {
                    hi = lo;
                }
                if (peek(b) != '}') return fail_at(b, at, "expected '}' to close this '{'");
                b->pos++;
                if (hi >= 0 && hi < lo) return fail_at(b, at, "{m,n} with n < m");
            }
            if (last >= 0 && repeat(b, out, last, lo, hi)) return -1;
            last = -1;
        } else if (c == '<') {
            return fail_at(b, at, "token references (<...>) are not supported");
        } else {
            if (c >= 0 && c != '|' && c != ')' && c != '\n' && c != '\r')
                return fail_at(b, at, "unexpected character '%c'", c >= 32 && c < 127 ? c : '?');
            return 0;
        }
        skip_space(b, nested);
    }
}

static int parse_alts(gbuild *b, ivec *out, int nested) {
    if (parse_seq(b, out, nested)) return -1;
    for (;;) {
        if (!nested && (peek(b) == '\n' || peek(b) == '\r')) {
            /* a following line that starts with '|' continues the alternation */
            size_t save = b->pos;
            skip_space(b, 1);
            if (peek(b) != '|') {
                b->pos = save;
                return 0;
            }
        }
        if (peek(b) != '|') return 0;
        b->pos++;
        skip_space(b, 1);
        if (push_sym(b, out, GS_END, 0) || parse_seq(b, out, nested)) return -1;
    }
}

static int parse_rule_def(gbuild *b) {
    size_t at = b->pos;
    if (!is_word(peek(b))) return fail_at(b, at, "expected a rule name");
    while (is_word(peek(b))) b->pos++;
    int r = find_rule(b, b->s + at, b->pos - at, at);
    if (r < 0) return -1;
    if (b->rules[r].defined) return fail_at(b, at, "rule '%s' is defined twice", b->rules[r].name);
    b->rules[r].def_at = at;
    skip_space(b, 0);
    if (b->pos + 3 > b->len || memcmp(b->s + b->pos, "::=", 3) != 0)
        return fail_at(b, b->pos, "expected '::=' after the rule name '%s'", b->rules[r].name);
    b->pos += 3;
    skip_space(b, 1);
    b->cur = r;
    ivec body = {0};
    if (parse_alts(b, &body, 0) || push_sym(b, &body, GS_END, 0)) {
        free(body.v);
        return -1;
    }
    b->rules[r].body = body;
    b->rules[r].defined = 1;
    if (peek(b) >= 0 && peek(b) != '\n' && peek(b) != '\r') return fail_at(b, b->pos, "expected the end of the line");
    return 0;
}

/* Left recursion (also through nullable prefixes) would make expansion endless: refuse it. */
static int check_left_recursion(gbuild *b, const gram_grammar *g) {
    int n = g->n_rules;
    uint8_t *nullable = calloc((size_t)n + 1, 1);
    int8_t *mark = calloc((size_t)n + 1, 1);
    int32_t *first = calloc((size_t)n + 2, sizeof(int32_t)); /* edges of r: edge[first[r] .. first[r+1]) */
    int32_t *edge = malloc(sizeof(int32_t) * ((size_t)g->n_syms + 1));
    int32_t *stk = malloc(sizeof(int32_t) * ((size_t)n + 1));
    int32_t *cur = malloc(sizeof(int32_t) * ((size_t)n + 1));
    int rc = 0, ne = 0;
    if (!nullable || !mark || !first || !edge || !stk || !cur) {
        rc = fail_at(b, 0, "out of memory");
        goto done;
    }
    for (int changed = 1; changed;) {
        changed = 0;
        for (int r = 0; r < n; r++) {
            if (nullable[r]) continue;
            for (int a = g->rule_alt[r]; a < g->rule_alt[r + 1] && !nullable[r]; a++) {
                int ok = 1;
                for (int p = g->alts[a]; g->syms[p].kind != GS_END; p++)
                    if (g->syms[p].kind == GS_CLASS || !nullable[g->syms[p].arg]) {
                        ok = 0;
                        break;
                    }
                if (ok) nullable[r] = changed = 1;
            }
        }
    }
    /* r -> s when an alternative of r may start with s */
    for (int r = 0; r < n; r++) {
        first[r] = ne;
        for (int a = g->rule_alt[r]; a < g->rule_alt[r + 1]; a++)
            for (int p = g->alts[a]; g->syms[p].kind == GS_RULE; p++) {
                edge[ne++] = g->syms[p].arg;
                if (!nullable[g->syms[p].arg]) break;
            }
    }
    first[n] = ne;
    for (int r0 = 0; r0 < n && !rc; r0++) {
        if (mark[r0]) continue;
        int sp = 0;
        stk[0] = r0;
        cur[0] = first[r0];
        mark[r0] = 1;
        while (sp >= 0 && !rc) {
            int r = stk[sp];
            if (cur[sp] >= first[r + 1]) {
                mark[r] = 2;
                sp--;
                continue;
            }
            int s = edge[cur[sp]++];
            if (mark[s] == 1) {
                int o = b->rules[s].owner;
                rc = fail_at(b, b->rules[o].def_at, "rule '%s' is left-recursive", b->rules[o].name);
            } else if (mark[s] == 0) {
                mark[s] = 1;
                stk[++sp] = s;
                cur[sp] = first[s];
            }
        }
    }
done:
    free(nullable);
    free(mark);
    free(first);
    free(edge);
    free(stk);
    free(cur);
    return rc;
}

static void build_free(gbuild *b) {
    for (int i = 0; i < b->n_rules; i++) {
        free(b->rules[i].name);
        free(b->rules[i].body.v);
    }
    free(b->rules);
    free(b->names);
    free(b->ranges.v);
    free(b->classes.v);
}

int gram_parse(const char *text, size_t len, gram_grammar **out, char *err, size_t errlen) {
    *out = NULL;
    if (err && errlen) err[0] = 0;
    gbuild b;
    memset(&b, 0, sizeof b);
    b.s = text ? text : "";
    b.len = text ? len : 0;
    b.err = err;
    b.errlen = errlen;
    gram_grammar *g = NULL;
    skip_space(&b, 1);
    while (b.pos < b.len && !b.failed) {
        if (parse_rule_def(&b)) break;
        skip_space(&b, 1);
    }
    if (b.failed) goto fail;
    int root = -1;
    for (int i = 0; i < b.n_rules; i++) {
        if (!b.rules[i].defined) {
            fail_at(&b, b.rules[i].first_ref, "rule '%s' is used but never defined", b.rules[i].name);
            goto fail;
        }
        if (b.rules[i].name && strcmp(b.rules[i].name, "root") == 0) root = i;
    }
    if (root < 0) {
        fail_at(&b, b.len, "the grammar has no 'root' rule");
        goto fail;
    }
    g = calloc(1, sizeof *g);
    if (!g) goto nomem;
    g->n_rules = b.n_rules;
    g->root = root;
    g->syms = malloc(sizeof *g->syms * ((size_t)b.n_syms + 1));
    g->rule_alt = malloc(sizeof *g->rule_alt * ((size_t)b.n_rules + 1));
    long n_alts = 0;
    for (int i = 0; i < b.n_rules; i++)
        for (int k = 0; k < b.rules[i].body.n; k += 2) n_alts += b.rules[i].body.v[k] == GS_END;
    g->alts = malloc(sizeof *g->alts * ((size_t)n_alts + 1));
    g->n_classes = b.classes.n / 3;
    g->classes = malloc(sizeof *g->classes * ((size_t)g->n_classes + 1));
    g->ranges = malloc(sizeof *g->ranges * ((size_t)b.ranges.n + 1));
    if (!g->syms || !g->rule_alt || !g->alts || !g->classes || !g->ranges) goto nomem;
    int na = 0;
    for (int i = 0; i < b.n_rules; i++) {
        g->rule_alt[i] = na;
        const ivec *v = &b.rules[i].body;
        int start = 1;
        for (int k = 0; k < v->n; k += 2) {
            if (start) g->alts[na++] = g->n_syms;
            g->syms[g->n_syms].kind = v->v[k];
            g->syms[g->n_syms].arg = v->v[k + 1];
            g->n_syms++;
            start = v->v[k] == GS_END;
        }
    }
    g->rule_alt[b.n_rules] = na;
    for (int i = 0; i < g->n_classes; i++) {
        g->classes[i].start = b.classes.v[3 * i];
        g->classes[i].n = b.classes.v[3 * i + 1];
        g->classes[i].neg = b.classes.v[3 * i + 2];
    }
    if (b.ranges.n) memcpy(g->ranges, b.ranges.v, sizeof *g->ranges * (size_t)b.ranges.n);
    if (check_left_recursion(&b, g)) goto fail;
    build_free(&b);
    *out = g;
    return 0;
nomem:
    fail_at(&b, b.pos, "out of memory");
fail:
    gram_free(g);
    build_free(&b);
    return -1;
}

void gram_free(gram_grammar *g) {
    if (!g) return;
    free(g->syms);
    free(g->alts);
    free(g->rule_alt);
    free(g->classes);
    free(g->ranges);
    free(g);
}

/* ==== matching =============================================================================== */

typedef struct { int32_t pos, parent; } gnode;

/* One level of the walk: a set of stacks and a pending partial character. */
typedef struct {
    int off, n;       /* stacks in m->sbuf[off .. off+n) */
    int pool_len;     /* node pool length once this level was built */
    uint32_t part;    /* bits of the partial character so far */
    int need;         /* continuation bytes still due (0: none pending) */
    int clen;         /* length of the pending character's encoding */
} glevel;

struct gram_matcher {
    const gram_grammar *g;
    gnode *pool;      /* (pool_cap) stack nodes */
    int pool_len, pool_cap;
    int32_t *sbuf;    /* (sbuf_cap) stack tops of every level; -1 = the empty stack */
    int sbuf_cap;
    glevel *lv;       /* (lv_cap) level 0 is the current state */
    int lv_cap;
    int budget, depth, overflow;
};

static int pool_add(gram_matcher *m, int pos, int parent) {
    if (m->pool_len == m->pool_cap) {
        int nc = m->pool_cap ? m->pool_cap * 2 : 1024;
        gnode *np = realloc(m->pool, (size_t)nc * sizeof *np);
        if (!np) return -2;
        m->pool = np;
        m->pool_cap = nc;
    }
    m->pool[m->pool_len].pos = pos;
    m->pool[m->pool_len].parent = parent;
    return m->pool_len++;
}

static int same_stack(const gram_matcher *m, int a, int b) {
    while (a != b) {
        if (a < 0 || b < 0 || m->pool[a].pos != m->pool[b].pos) return 0;
        a = m->pool[a].parent;
        b = m->pool[b].parent;
    }
    return 1;
}

/* Adds stack top id to the level being built (sbuf[off .. off+*n)), unless an equal one is there. */
static int add_top(gram_matcher *m, int off, int *n, int id) {
    for (int i = 0; i < *n; i++)
        if (same_stack(m, m->sbuf[off + i], id)) return 0;
    if (*n >= GRAM_MAX_STACKS) {
        m->overflow = 1;
        return 0;
    }
    if (off + *n >= m->sbuf_cap) {
        int nc = m->sbuf_cap * 2 + 256;
        int32_t *ns = realloc(m->sbuf, (size_t)nc * sizeof *ns);
        if (!ns) return -1;
        m->sbuf = ns;
        m->sbuf_cap = nc;
    }
    m->sbuf[off + (*n)++] = id;
    return 0;
}

/* Expands the stack {pos, parent} until a class is on top, adding every result. -1: out of
 * memory or past the expansion budget. */
static int expand(gram_matcher *m, int pos, int parent, int off, int *n) {
    const gram_grammar *g = m->g;
    if (--m->budget < 0 || m->depth > GRAM_MAX_DEPTH) return -1;
    for (;;) {
        gsym s = g->syms[pos];
        if (s.kind == GS_END) {
            if (parent < 0) return add_top(m, off, n, -1);
            pos = m->pool[parent].pos;
            parent = m->pool[parent].parent;
            continue;
        }
        if (s.kind == GS_CLASS) {
            int id = pool_add(m, pos, parent);
            return id < 0 ? -1 : add_top(m, off, n, id);
        }
        int cont = parent;
        if (g->syms[pos + 1].kind != GS_END && (cont = pool_add(m, pos + 1, parent)) < 0) return -1;
        m->depth++;
        for (int a = g->rule_alt[s.arg]; a < g->rule_alt[s.arg + 1]; a++)
            if (expand(m, g->alts[a], cont, off, n)) {
                m->depth--;
                return -1;
            }
        m->depth--;
        return 0;
    }
}

static int class_has(const gram_grammar *g, int c, uint32_t cp) {
    const gclass *k = &g->classes[c];
    const uint32_t *r = g->ranges + 2 * k->start;
    int in = 0;
    for (int i = 0; i < k->n; i++)
        if (cp >= r[2 * i] && cp <= r[2 * i + 1]) {
            in = 1;
            break;
        }
    return in != k->neg;
}

/* Could class c match a character in [lo, hi]? (For a partial UTF-8 character.) */
static int class_meets(const gram_grammar *g, int c, uint32_t lo, uint32_t hi) {
    const gclass *k = &g->classes[c];
    const uint32_t *r = g->ranges + 2 * k->start;
    if (k->neg) { /* unless one range covers all of [lo, hi] */
        for (int i = 0; i < k->n; i++)
            if (r[2 * i] <= lo && r[2 * i + 1] >= hi) return 0;
        return 1;
    }
    for (int i = 0; i < k->n; i++)
        if (r[2 * i] <= hi && r[2 * i + 1] >= lo) return 1;
    return 0;
}

static int ensure_levels(gram_matcher *m, int n) {
    if (n <= m->lv_cap) return 0;
    int nc = n + 16;
    glevel *nl = realloc(m->lv, (size_t)nc * sizeof *nl);
    if (!nl) return -1;
    m->lv = nl;
    m->lv_cap = nc;
    return 0;
}

/* Builds level d+1 from level d and one byte. Returns the new level's stack count (0: dead). */
static int step_byte(gram_matcher *m, int d, unsigned char byte) {
    glevel *L = &m->lv[d], *N = &m->lv[d + 1];
    N->off = L->off + L->n;
    N->n = 0;
    m->pool_len = L->pool_len;
    uint32_t cp;
    if (L->need == 0) {
        if (byte < 0x80) {
            cp = byte;
        } else {
            int need = (byte & 0xE0) == 0xC0 ? 1 : (byte & 0xF0) == 0xE0 ? 2 : (byte & 0xF8) == 0xF0 ? 3 : -1;
            if (need < 0 || byte == 0xC0 || byte == 0xC1 || byte > 0xF4) goto dead;
            N->part = byte & (need == 1 ? 0x1Fu : need == 2 ? 0x0Fu : 0x07u);
            N->need = need;
            N->clen = need + 1;
            goto partial;
        }
    } else {
        if ((byte & 0xC0) != 0x80) goto dead;
        N->part = (L->part << 6) | (byte & 0x3Fu);
        N->need = L->need - 1;
        N->clen = L->clen;
        if (N->need > 0) goto partial;
        cp = N->part;
        /* overlong forms (a space in four bytes), surrogates and values past U+10FFFF are not text */
        if (cp < (N->clen == 2 ? 0x80u : N->clen == 3 ? 0x800u : 0x10000u) || (cp >= 0xD800 && cp < 0xE000) ||
            cp > 0x10FFFF)
            goto dead;
    }
    N->need = 0;
    N->part = 0;
    m->budget = GRAM_BUDGET;
    for (int i = 0; i < L->n; i++) {
        int top = m->sbuf[L->off + i];
        if (top < 0) continue;
        gnode t = m->pool[top];
        if (!class_has(m->g, m->g->syms[t.pos].arg, cp)) continue;
        if (expand(m, t.pos + 1, t.parent, N->off, &N->n)) {
            N->n = 0;
            break;
        }
    }
    N->pool_len = m->pool_len;
    return N->n;
partial: {
    /* the stacks stay as they are; keep only those whose class can still take the character */
    uint32_t lo = N->part << (6 * N->need), hi = lo | ((1u << (6 * N->need)) - 1);
    uint32_t min = N->clen == 2 ? 0x80u : N->clen == 3 ? 0x800u : 0x10000u;
    if (lo < min) lo = min;
    if (hi > 0x10FFFF) hi = 0x10FFFF;
    if (lo > hi || (lo >= 0xD800 && hi < 0xE000)) goto dead;
    for (int i = 0; i < L->n; i++) {
        int top = m->sbuf[L->off + i];
        if (top >= 0 && class_meets(m->g, m->g->syms[m->pool[top].pos].arg, lo, hi) &&
            add_top(m, N->off, &N->n, top))
            goto dead;
    }
    N->pool_len = m->pool_len;
    return N->n;
}
dead:
    N->n = 0;
    N->pool_len = m->pool_len;
    return 0;
}

gram_matcher *gram_matcher_new(const gram_grammar *g, char *err, size_t errlen) {
    gram_matcher *m = calloc(1, sizeof *m);
    if (!m || ensure_levels(m, 64)) goto nomem;
    m->g = g;
    m->sbuf_cap = 1024;
    m->sbuf = malloc((size_t)m->sbuf_cap * sizeof *m->sbuf);
    if (!m->sbuf) goto nomem;
    glevel *L = &m->lv[0];
    memset(L, 0, sizeof *L);
    m->budget = GRAM_BUDGET;
    int n = 0;
    for (int a = g->rule_alt[g->root]; a < g->rule_alt[g->root + 1]; a++)
        if (expand(m, g->alts[a], -1, 0, &n)) {
            if (err && errlen) snprintf(err, errlen, "grammar: the start rule expands too far (too ambiguous)");
            gram_matcher_free(m);
            return NULL;
        }
    L->n = n;
    L->pool_len = m->pool_len;
    return m;
nomem:
    if (err && errlen) snprintf(err, errlen, "grammar: out of memory");
    gram_matcher_free(m);
    return NULL;
}

void gram_matcher_free(gram_matcher *m) {
    if (!m) return;
    free(m->pool);
    free(m->sbuf);
    free(m->lv);
    free(m);
}

/* Walks bytes from level 0; returns the last level reached, or -1 when a byte kills every stack. */
static int walk(gram_matcher *m, const char *bytes, size_t len) {
    if (ensure_levels(m, (int)len + 2)) return -1;
    if (m->lv[0].n == 0) return -1;
    for (size_t i = 0; i < len; i++)
        if (step_byte(m, (int)i, (unsigned char)bytes[i]) == 0) return -1;
    return (int)len;
}

int gram_can_accept(gram_matcher *m, const char *bytes, size_t len) {
    int r = walk(m, bytes, len) >= 0 && len > 0;
    m->pool_len = m->lv[0].pool_len;
    return r;
}

/* Copies the live stacks of the current state into a fresh pool (the old one only grows). */
static int compact(gram_matcher *m) {
    glevel *L = &m->lv[0];
    int old = m->pool_len;
    int32_t *map = malloc(sizeof(int32_t) * ((size_t)old + 1));
    gnode *np = malloc(sizeof(gnode) * ((size_t)old + 1));
    if (!map || !np) {
        free(map);
        free(np);
        return -1;
    }
    for (int i = 0; i < old; i++) map[i] = -1;
    int n = 0;
    /* nodes always point to older nodes: copy in index order, only those reachable */
    uint8_t *live = calloc((size_t)old + 1, 1);
    if (!live) {
        free(map);
        free(np);
        return -1;
    }
    for (int i = 0; i < L->n; i++)
        for (int t = m->sbuf[L->off + i]; t >= 0 && !live[t]; t = m->pool[t].parent) live[t] = 1;
    for (int i = 0; i < old; i++)
        if (live[i]) {
            np[n].pos = m->pool[i].pos;
            np[n].parent = m->pool[i].parent < 0 ? -1 : map[m->pool[i].parent];
            map[i] = n++;
        }
    for (int i = 0; i < L->n; i++)
        if (m->sbuf[L->off + i] >= 0) m->sbuf[L->off + i] = map[m->sbuf[L->off + i]];
    free(m->pool);
    m->pool = np;
    m->pool_cap = old + 1;
    m->pool_len = L->pool_len = n;
    free(map);
    free(live);
    return 0;
}

int gram_accept(gram_matcher *m, const char *bytes, size_t len) {
    int d = walk(m, bytes, len);
    if (d < 0) {
        m->pool_len = m->lv[0].pool_len;
        return -1;
    }
    /* level d becomes level 0 */
    glevel *L = &m->lv[d];
    memmove(m->sbuf, m->sbuf + L->off, (size_t)L->n * sizeof *m->sbuf);
    m->lv[0] = *L;
    m->lv[0].off = 0;
    if (m->pool_len > 4096 && m->pool_len > 8 * m->lv[0].n + 1024 && compact(m)) return -1;
    return 0;
}

int gram_can_end(const gram_matcher *m) {
    const glevel *L = &m->lv[0];
    if (L->need) return 0;
    for (int i = 0; i < L->n; i++)
        if (m->sbuf[L->off + i] < 0) return 1;
    return 0;
}

int gram_is_done(const gram_matcher *m) {
    const glevel *L = &m->lv[0];
    if (L->need) return 0;
    for (int i = 0; i < L->n; i++)
        if (m->sbuf[L->off + i] >= 0) return 0;
    return 1;
}

/* ==== vocabularies =========================================================================== */

struct gram_vocab {
    int n;
    const char *const *bytes; /* (n) */
    const uint32_t *lens;     /* (n) */
    const uint8_t *kind;      /* (n) */
    int32_t *order;           /* (n_text) ordinary tokens sorted by their bytes */
    int32_t *lcp;             /* (n_text) bytes shared with the token before in that order */
    char *text;               /* the tokens' bytes in that order, one after another (the walk
                               * reads them in sequence instead of all over the vocabulary) */
    uint32_t *text_off;       /* (n_text + 1) where each starts in text */
    int n_text;
    int32_t *special;         /* (n_special) end-of-generation tokens */
    int n_special;
};

/* A merge sort of token ids by their bytes (qsort has no user pointer). */
static void msort(const gram_vocab *v, int32_t *a, int32_t *tmp, int n) {
    if (n < 2) return;
    int h = n / 2;
    msort(v, a, tmp, h);
    msort(v, a + h, tmp, n - h);
    int i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int x = a[i], y = a[j];
        uint32_t lx = v->lens[x], ly = v->lens[y];
        int c = memcmp(v->bytes[x], v->bytes[y], lx < ly ? lx : ly);
        if (!c) c = lx < ly ? -1 : lx > ly ? 1 : (x < y ? -1 : 1);
        tmp[k++] = c <= 0 ? a[i++] : a[j++];
    }
    while (i < h) tmp[k++] = a[i++];
    while (j < n) tmp[k++] = a[j++];
    memcpy(a, tmp, (size_t)n * sizeof *a);
}

gram_vocab *gram_vocab_new(const char *const *bytes, const uint32_t *lens, const uint8_t *kind, int n) {
    gram_vocab *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->n = n;
    v->bytes = bytes;
    v->lens = lens;
    v->kind = kind;
    v->order = malloc(sizeof(int32_t) * ((size_t)n + 1));
    v->lcp = malloc(sizeof(int32_t) * ((size_t)n + 1));
    v->special = malloc(sizeof(int32_t) * ((size_t)n + 1));
    int32_t *tmp = malloc(sizeof(int32_t) * ((size_t)n + 1));
    if (!v->order || !v->lcp || !v->special || !tmp) {
        free(tmp);
        gram_vocab_free(v);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (kind[i] == 0 && lens[i] > 0) v->order[v->n_text++] = i;
        else if (kind[i] == 1) v->special[v->n_special++] = i;
    }
    msort(v, v->order, tmp, v->n_text);
    free(tmp);
    size_t total = 0;
    for (int i = 0; i < v->n_text; i++) total += lens[v->order[i]];
    v->text = malloc(total + 1);
    v->text_off = malloc(sizeof(uint32_t) * ((size_t)v->n_text + 1));
    if (!v->text || !v->text_off || total > UINT32_MAX) {
        gram_vocab_free(v);
        return NULL;
    }
    total = 0;
    for (int i = 0; i < v->n_text; i++) {
        v->text_off[i] = (uint32_t)total;
        memcpy(v->text + total, bytes[v->order[i]], lens[v->order[i]]);
        total += lens[v->order[i]];
    }
    v->text_off[v->n_text] = (uint32_t)total;
    for (int i = 0; i < v->n_text; i++) {
        int32_t l = 0;
        if (i > 0) {
            int a = v->order[i - 1], b = v->order[i];
            uint32_t mx = lens[a] < lens[b] ? lens[a] : lens[b];
            while ((uint32_t)l < mx && bytes[a][l] == bytes[b][l]) l++;
        }
        v->lcp[i] = l;
    }
    return v;
}

void gram_vocab_free(gram_vocab *v) {
    if (!v) return;
    free(v->order);
    free(v->lcp);
    free(v->special);
    free(v->text);
    free(v->text_off);
    free(v);
}

int gram_token_ok(gram_matcher *m, const gram_vocab *v, int id) {
    if (id < 0 || id >= v->n) return 0;
    if (v->kind[id] == 1) return gram_can_end(m);
    if (v->kind[id] != 0 || v->lens[id] == 0) return 0;
    return gram_can_accept(m, v->bytes[id], v->lens[id]);
}

int gram_mask(gram_matcher *m, const gram_vocab *v, uint8_t *allowed) {
    memset(allowed, 0, (size_t)v->n);
    int count = 0;
    if (gram_can_end(m))
        for (int i = 0; i < v->n_special; i++) {
            allowed[v->special[i]] = 1;
            count++;
        }
    int have = 0; /* levels 1..have hold the current token's prefix */
    for (int i = 0; i < v->n_text; i++) {
        uint32_t len = v->text_off[i + 1] - v->text_off[i];
        const unsigned char *s = (const unsigned char *)v->text + v->text_off[i];
        int d = v->lcp[i] < have ? v->lcp[i] : have;
        if (ensure_levels(m, (int)len + 2)) break;
        int ok = m->lv[0].n > 0;
        while (ok && (uint32_t)d < len) {
            if (step_byte(m, d, s[d]) == 0) ok = 0;
            else d++;
        }
        if (ok) {
            allowed[v->order[i]] = 1;
            count++;
            have = d;
            continue;
        }
        /* the prefix of d+1 bytes is dead: so is every following token that starts with it */
        have = d;
        while (i + 1 < v->n_text && v->lcp[i + 1] > d) i++;
    }
    m->pool_len = m->lv[0].pool_len;
    return count;
}
