/* json_schema.c — JSON Schema to GBNF (see json_schema.h for what is covered).
 *
 * Two parts: a small JSON reader (a tree of jnodes, depth-limited, every error with its byte
 * offset) and the compiler, which writes one GBNF rule per schema node it visits and returns its
 * name. Shared rules (ws, string, number ...) are written once, on first use. Numbers are bounded
 * as llama.cpp's converter bounds them (16 integer digits, 16 fraction digits, 2 exponent digits)
 * and whitespace between tokens is at most a newline and 20 blanks, so a model cannot run on
 * forever inside a number or in blank space; strings without maxLength are unbounded. Objects put
 * required properties first, then the optional ones in the schema's order, each at most once.
 * Properties not listed are not generated unless the object lists none (then any keys, with the
 * additionalProperties schema as their value): the output stays valid either way.
 */
#include "json_schema.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JS_MAX_DEPTH 64     /* nesting of the JSON text */
#define JS_MAX_NEST 48      /* nesting of schemas followed while compiling */
#define JS_MAX_RULES 20000

/* ==== a JSON reader ========================================================================== */

enum { JN_NULL, JN_BOOL, JN_NUM, JN_STR, JN_ARR, JN_OBJ };

typedef struct jnode {
    int type;
    int b;                  /* JN_BOOL */
    double num;             /* JN_NUM */
    char *s;                /* JN_STR (decoded, NUL-terminated; may hold NULs: slen) */
    size_t slen;
    struct jnode **kids;    /* (n) JN_ARR items, JN_OBJ values */
    char **keys;            /* (n) JN_OBJ keys */
    size_t *klen;           /* (n) */
    int n, cap;
    const char *raw;        /* the value's text in the source (for enum/const) */
    size_t rawlen;
} jnode;

typedef struct {
    const char *s;
    size_t len, pos;
    char *err;
    size_t errlen;
    int failed;
} jreader;

static int jfail(jreader *r, const char *msg) {
    if (!r->failed && r->err && r->errlen)
        snprintf(r->err, r->errlen, "json_schema: invalid JSON at byte %zu: %s", r->pos, msg);
    r->failed = 1;
    return -1;
}

static void jfree(jnode *n) {
    if (!n) return;
    for (int i = 0; i < n->n; i++) {
        jfree(n->kids[i]);
        if (n->keys) free(n->keys[i]);
    }
    free(n->kids);
    free(n->keys);
    free(n->klen);
    free(n->s);
    free(n);
}

static void jws(jreader *r) {
    while (r->pos < r->len && (r->s[r->pos] == ' ' || r->s[r->pos] == '\t' || r->s[r->pos] == '\n' || r->s[r->pos] == '\r'))
        r->pos++;
}

typedef struct { char *p; size_t n, cap; int oom; } sbuf;

static void sb_addn(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = (b->n + n + 1) * 2 + 64;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_add(sbuf *b, const char *s) { sb_addn(b, s, strlen(s)); }
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sb_addn(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void put_utf8(sbuf *b, unsigned long cp) {
    char t[4];
    size_t n;
    if (cp < 0x80) { t[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { t[0] = (char)(0xC0 | (cp >> 6)); t[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
    else if (cp < 0x10000) {
        t[0] = (char)(0xE0 | (cp >> 12)); t[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); t[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
    } else {
        t[0] = (char)(0xF0 | (cp >> 18)); t[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        t[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); t[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
    }
    sb_addn(b, t, n);
}

static int hex4(jreader *r, unsigned long *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        if (r->pos >= r->len) return jfail(r, "truncated \\u escape");
        char c = r->s[r->pos++];
        int h = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (h < 0) return jfail(r, "bad \\u escape");
        *v = *v * 16 + (unsigned long)h;
    }
    return 0;
}

static int jstring(jreader *r, char **out, size_t *outlen) {
    sbuf b = {0};
    r->pos++; /* " */
    for (;;) {
        if (r->pos >= r->len) {
            free(b.p);
            return jfail(r, "unterminated string");
        }
        unsigned char c = (unsigned char)r->s[r->pos];
        if (c == '"') {
            r->pos++;
            break;
        }
        if (c < 0x20) {
            free(b.p);
            return jfail(r, "control character in a string");
        }
        if (c != '\\') {
            /* whole, valid UTF-8 characters only: the text ends up in a grammar over characters */
            size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
            unsigned long cp = n == 2 ? (c & 0x1Fu) : n == 3 ? (c & 0x0Fu) : (c & 0x07u);
            if (n == 0 || r->pos + n > r->len) {
                free(b.p);
                return jfail(r, "invalid UTF-8 in a string");
            }
            for (size_t i = 1; i < n; i++) {
                unsigned char d = (unsigned char)r->s[r->pos + i];
                if ((d & 0xC0) != 0x80) {
                    free(b.p);
                    return jfail(r, "invalid UTF-8 in a string");
                }
                cp = (cp << 6) | (d & 0x3Fu);
            }
            if (n > 1 && (cp < (n == 2 ? 0x80ul : n == 3 ? 0x800ul : 0x10000ul) || cp > 0x10FFFF ||
                          (cp >= 0xD800 && cp < 0xE000))) {
                free(b.p);
                return jfail(r, "invalid UTF-8 in a string");
            }
            sb_addn(&b, (const char *)&r->s[r->pos], n);
            r->pos += n;
            continue;
        }
        if (++r->pos >= r->len) {
            free(b.p);
            return jfail(r, "unterminated escape");
        }
        char e = r->s[r->pos++];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            sb_addn(&b, &map[simple - "\"\\/bfnrt"], 1);
        } else if (e == 'u') {
            unsigned long v, lo;
            if (hex4(r, &v)) {
                free(b.p);
                return -1;
            }
            if (v >= 0xD800 && v < 0xDC00 && r->pos + 6 <= r->len && r->s[r->pos] == '\\' && r->s[r->pos + 1] == 'u') {
                size_t save = r->pos;
                r->pos += 2;
                if (hex4(r, &lo)) {
                    free(b.p);
                    return -1;
                }
                if (lo >= 0xDC00 && lo < 0xE000) v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                else r->pos = save;
            }
            if (v >= 0xD800 && v < 0xE000) {
                free(b.p);
                return jfail(r, "a lone surrogate escape (no UTF-8 text can hold it)");
            }
            put_utf8(&b, v);
        } else {
            free(b.p);
            return jfail(r, "unknown escape");
        }
    }
    if (b.oom) {
        free(b.p);
        return jfail(r, "out of memory");
    }
    if (!b.p) {
        b.p = calloc(1, 1);
        if (!b.p) return jfail(r, "out of memory");
    }
    *out = b.p;
    *outlen = b.n;
    return 0;
}

static int jadd(jnode *n, jnode *kid, char *key, size_t klen) {
    if (n->n == n->cap) {
        int nc = n->cap ? n->cap * 2 : 4;
        jnode **nk = realloc(n->kids, (size_t)nc * sizeof *nk);
        if (!nk) return -1;
        n->kids = nk;
        if (n->type == JN_OBJ) {
            char **ns = realloc(n->keys, (size_t)nc * sizeof *ns);
            if (!ns) return -1;
            n->keys = ns;
            size_t *nl = realloc(n->klen, (size_t)nc * sizeof *nl);
            if (!nl) return -1;
            n->klen = nl;
        }
        n->cap = nc;
    }
    n->kids[n->n] = kid;
    if (n->type == JN_OBJ) {
        n->keys[n->n] = key;
        n->klen[n->n] = klen;
    }
    n->n++;
    return 0;
}

static jnode *jvalue(jreader *r, int depth) {
    jws(r);
    if (depth > JS_MAX_DEPTH) {
        jfail(r, "nested too deeply");
        return NULL;
    }
    if (r->pos >= r->len) {
        jfail(r, "unexpected end of text");
        return NULL;
    }
    jnode *n = calloc(1, sizeof *n);
    if (!n) {
        jfail(r, "out of memory");
        return NULL;
    }
    size_t start = r->pos;
    char c = r->s[r->pos];
    if (c == '{' || c == '[') {
        n->type = c == '{' ? JN_OBJ : JN_ARR;
        char close = c == '{' ? '}' : ']';
        r->pos++;
        jws(r);
        if (r->pos < r->len && r->s[r->pos] == close) {
            r->pos++;
        } else {
            for (;;) {
                char *key = NULL;
                size_t klen = 0;
                if (n->type == JN_OBJ) {
                    jws(r);
                    if (r->pos >= r->len || r->s[r->pos] != '"') {
                        jfail(r, "expected a string key");
                        goto bad;
                    }
                    if (jstring(r, &key, &klen)) goto bad;
                    jws(r);
                    if (r->pos >= r->len || r->s[r->pos] != ':') {
                        free(key);
                        jfail(r, "expected ':'");
                        goto bad;
                    }
                    r->pos++;
                }
                jnode *kid = jvalue(r, depth + 1);
                if (!kid || jadd(n, kid, key, klen)) {
                    if (kid) jfail(r, "out of memory");
                    jfree(kid);
                    free(key);
                    goto bad;
                }
                jws(r);
                if (r->pos < r->len && r->s[r->pos] == ',') {
                    r->pos++;
                    continue;
                }
                if (r->pos < r->len && r->s[r->pos] == close) {
                    r->pos++;
                    break;
                }
                jfail(r, n->type == JN_OBJ ? "expected ',' or '}'" : "expected ',' or ']'");
                goto bad;
            }
        }
    } else if (c == '"') {
        n->type = JN_STR;
        if (jstring(r, &n->s, &n->slen)) goto bad;
    } else if (r->len - r->pos >= 4 && memcmp(r->s + r->pos, "true", 4) == 0) {
        n->type = JN_BOOL;
        n->b = 1;
        r->pos += 4;
    } else if (r->len - r->pos >= 5 && memcmp(r->s + r->pos, "false", 5) == 0) {
        n->type = JN_BOOL;
        r->pos += 5;
    } else if (r->len - r->pos >= 4 && memcmp(r->s + r->pos, "null", 4) == 0) {
        n->type = JN_NULL;
        r->pos += 4;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        /* JSON's number syntax, checked by hand, then strtod on a copy */
        size_t p = r->pos;
        if (r->s[p] == '-') p++;
        size_t d0 = p;
        while (p < r->len && r->s[p] >= '0' && r->s[p] <= '9') p++;
        if (p == d0 || (r->s[d0] == '0' && p - d0 > 1)) {
            jfail(r, "bad number");
            goto bad;
        }
        if (p < r->len && r->s[p] == '.') {
            size_t f0 = ++p;
            while (p < r->len && r->s[p] >= '0' && r->s[p] <= '9') p++;
            if (p == f0) {
                jfail(r, "bad number");
                goto bad;
            }
        }
        if (p < r->len && (r->s[p] == 'e' || r->s[p] == 'E')) {
            p++;
            if (p < r->len && (r->s[p] == '+' || r->s[p] == '-')) p++;
            size_t e0 = p;
            while (p < r->len && r->s[p] >= '0' && r->s[p] <= '9') p++;
            if (p == e0) {
                jfail(r, "bad number");
                goto bad;
            }
        }
        char tmp[64];
        size_t nl = p - r->pos < sizeof tmp - 1 ? p - r->pos : sizeof tmp - 1;
        memcpy(tmp, r->s + r->pos, nl);
        tmp[nl] = 0;
        n->type = JN_NUM;
        n->num = strtod(tmp, NULL);
        r->pos = p;
    } else {
        jfail(r, "unexpected character");
        goto bad;
    }
    n->raw = r->s + start;
    n->rawlen = r->pos - start;
    return n;
bad:
    jfree(n);
    return NULL;
}

static const jnode *jget(const jnode *o, const char *key) {
    if (!o || o->type != JN_OBJ) return NULL;
    size_t kl = strlen(key);
    for (int i = o->n - 1; i >= 0; i--) /* the last of duplicate keys, as JSON.parse */
        if (o->klen[i] == kl && memcmp(o->keys[i], key, kl) == 0) return o->kids[i];
    return NULL;
}

/* ==== the compiler =========================================================================== */

typedef struct {
    sbuf out;          /* the rules written so far */
    const jnode *root;
    char *err;
    size_t errlen;
    int failed;
    int n_rules, depth;
    unsigned have;     /* shared rules already written (bit per JS_R_*) */
    const jnode **def_node; /* (n_defs) schemas given rules by $ref, and their rule numbers */
    int *def_rule;
    int n_defs, cap_defs;
    char path[256];    /* where in the schema we are, for messages */
} jsc;

enum { R_WS = 1, R_STRING = 2, R_NUMBER = 4, R_INTEGER = 8, R_BOOL = 16, R_NULL = 32, R_VALUE = 64,
       R_DATE = 128, R_TIME = 256, R_UUID = 512, R_EMAIL = 1024, R_CHAR = 2048 };

static int cfail(jsc *c, const char *fmt, ...) {
    if (c->failed) return -1;
    c->failed = 1;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->err && c->errlen) snprintf(c->err, c->errlen, "json_schema: at %s: %s", c->path[0] ? c->path : "/", msg);
    return -1;
}

static void need(jsc *c, unsigned r);

static void shared_rule(jsc *c, unsigned bit, const char *text) {
    if (c->have & bit) return;
    c->have |= bit;
    sb_add(&c->out, text);
}

/* Writes the shared rule(s) named by bits, with what they use. */
static void need(jsc *c, unsigned r) {
    if (r & R_WS) shared_rule(c, R_WS, "ws ::= | \" \" | \"\\n\" [ \\t]{0,20}\n");
    if (r & R_CHAR)
        shared_rule(c, R_CHAR, "char ::= [^\"\\\\\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4})\n");
    if (r & R_STRING) {
        need(c, R_CHAR);
        shared_rule(c, R_STRING, "string ::= \"\\\"\" char* \"\\\"\"\n");
    }
    if (r & R_INTEGER) shared_rule(c, R_INTEGER, "integer ::= \"-\"? ([0-9] | [1-9] [0-9]{0,15})\n");
    if (r & R_NUMBER)
        shared_rule(c, R_NUMBER,
                    "number ::= \"-\"? ([0-9] | [1-9] [0-9]{0,15}) (\".\" [0-9]{1,16})? ([eE] [-+]? [0-9]{1,2})?\n");
    if (r & R_BOOL) shared_rule(c, R_BOOL, "boolean ::= \"true\" | \"false\"\n");
    if (r & R_NULL) shared_rule(c, R_NULL, "null ::= \"null\"\n");
    if (r & R_VALUE) {
        need(c, R_WS | R_STRING | R_NUMBER | R_BOOL | R_NULL);
        shared_rule(c, R_VALUE,
                    "value ::= object | array | string | number | boolean | null\n"
                    "object ::= \"{\" ws ( string ws \":\" ws value ( ws \",\" ws string ws \":\" ws value )* ws )? \"}\"\n"
                    "array ::= \"[\" ws ( value ( ws \",\" ws value )* ws )? \"]\"\n");
    }
    if (r & R_DATE)
        shared_rule(c, R_DATE,
                    "date ::= [0-9]{4} \"-\" ( \"02-\" day28 | (\"04\" | \"06\" | \"09\" | \"11\") \"-\" ( day28 | \"29\" | \"30\" )"
                    " | (\"01\" | \"03\" | \"05\" | \"07\" | \"08\" | \"10\" | \"12\") \"-\" ( day28 | \"29\" | \"30\" | \"31\" ) )\n"
                    "day28 ::= \"0\" [1-9] | \"1\" [0-9] | \"2\" [0-8]\n");
    if (r & R_TIME)
        shared_rule(c, R_TIME,
                    "time ::= ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] \":\" [0-5] [0-9] (\".\" [0-9]{1,6})?"
                    " ( \"Z\" | [+-] ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] )\n");
    if (r & R_UUID)
        shared_rule(c, R_UUID,
                    "uuid ::= [0-9a-f]{8} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{12}\n");
    if (r & R_EMAIL)
        shared_rule(c, R_EMAIL,
                    "email ::= [a-zA-Z0-9_+-]{1,20} (\".\" [a-zA-Z0-9_+-]{1,20})? \"@\" [a-z0-9]{1,20} (\".\" [a-z0-9]{1,20})? \".\" [a-z]{2,6}\n");
}

/* A GBNF literal for n bytes of UTF-8 text. */
static void literal(sbuf *b, const char *s, size_t n) {
    sb_add(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            char t[2] = {'\\', (char)ch};
            sb_addn(b, t, 2);
        } else if (ch < 0x20 || ch == 0x7F) {
            sb_printf(b, "\\x%02X", ch);
        } else {
            sb_addn(b, (const char *)&s[i], 1);
        }
    }
    sb_add(b, "\"");
}

/* The compact JSON text of a value (for enum and const). */
static void json_text(sbuf *b, const jnode *v) {
    switch (v->type) {
    case JN_NULL: sb_add(b, "null"); break;
    case JN_BOOL: sb_add(b, v->b ? "true" : "false"); break;
    case JN_NUM: sb_addn(b, v->raw, v->rawlen); break;
    case JN_STR:
        sb_add(b, "\"");
        for (size_t i = 0; i < v->slen; i++) {
            unsigned char ch = (unsigned char)v->s[i];
            if (ch == '"' || ch == '\\') {
                char t[2] = {'\\', (char)ch};
                sb_addn(b, t, 2);
            } else if (ch < 0x20) {
                sb_printf(b, "\\u%04x", ch);
            } else {
                sb_addn(b, (const char *)&v->s[i], 1);
            }
        }
        sb_add(b, "\"");
        break;
    case JN_ARR:
        sb_add(b, "[");
        for (int i = 0; i < v->n; i++) {
            if (i) sb_add(b, ",");
            json_text(b, v->kids[i]);
        }
        sb_add(b, "]");
        break;
    case JN_OBJ:
        sb_add(b, "{");
        for (int i = 0; i < v->n; i++) {
            if (i) sb_add(b, ",");
            jnode k = {0};
            k.type = JN_STR;
            k.s = v->keys[i];
            k.slen = v->klen[i];
            json_text(b, &k);
            sb_add(b, ":");
            json_text(b, v->kids[i]);
        }
        sb_add(b, "}");
        break;
    }
}

/* Starts a new rule "rN ::= " in out; returns N. */
static int open_rule(jsc *c) {
    if (++c->n_rules > JS_MAX_RULES) return cfail(c, "the schema is too large");
    sb_printf(&c->out, "r%d ::= ", c->n_rules);
    return c->n_rules;
}

static int compile(jsc *c, const jnode *s);

/* Compiles s with the path extended by seg; returns its rule number. */
static int sub(jsc *c, const jnode *s, const char *seg, size_t seglen) {
    size_t pl = strlen(c->path);
    if (pl + seglen + 2 < sizeof c->path) {
        c->path[pl] = '/';
        memcpy(c->path + pl + 1, seg, seglen);
        c->path[pl + 1 + seglen] = 0;
    }
    int r = compile(c, s);
    c->path[pl] = 0;
    return r;
}

static int bound(jsc *c, const jnode *s, const char *key, long def, long *out) {
    const jnode *v = jget(s, key);
    *out = def;
    if (!v) return 0;
    if (v->type != JN_NUM || v->num < 0 || v->num > 100000 || v->num != (double)(long)v->num)
        return cfail(c, "'%s' must be a whole number from 0 to 100000", key);
    *out = (long)v->num;
    return 0;
}

/* Keywords that constrain values in ways this compiler does not: refused, never ignored. */
static int refuse(jsc *c, const jnode *s) {
    static const char *const no[] = {"pattern", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "not",
                                     "if", "then", "else", "patternProperties", "dependentRequired",
                                     "dependentSchemas", "contains", "propertyNames", "minProperties",
                                     "maxProperties", "unevaluatedProperties", "unevaluatedItems", "minContains",
                                     "maxContains", "dependencies", "$dynamicRef", "additionalItems", NULL};
    for (int i = 0; no[i]; i++)
        if (jget(s, no[i])) return cfail(c, "the keyword '%s' is not supported", no[i]);
    const jnode *u = jget(s, "uniqueItems");
    if (u && !(u->type == JN_BOOL && !u->b)) return cfail(c, "the keyword 'uniqueItems' is not supported");
    return 0;
}

static int compile_string(jsc *c, const jnode *s, sbuf *e) {
    const jnode *f = jget(s, "format");
    if (f && f->type == JN_STR) {
        const char *fs = f->s;
        unsigned bit = !strcmp(fs, "date") ? R_DATE : !strcmp(fs, "time") ? R_TIME : !strcmp(fs, "date-time") ? R_DATE | R_TIME
                     : !strcmp(fs, "uuid") ? R_UUID : !strcmp(fs, "email") ? R_EMAIL : 0;
        if (bit) {
            need(c, bit);
            sb_add(e, "\"\\\"\" ");
            sb_add(e, !strcmp(fs, "date-time") ? "date \"T\" time" : fs);
            sb_add(e, " \"\\\"\"");
            return 0;
        }
        /* other formats (uri, hostname ...) are annotations to us: any string */
    }
    long lo, hi;
    if (bound(c, s, "minLength", 0, &lo) || bound(c, s, "maxLength", -1, &hi)) return -1;
    if (hi >= 0 && hi < lo) return cfail(c, "maxLength is below minLength");
    need(c, R_CHAR);
    if (lo == 0 && hi < 0) sb_add(e, "\"\\\"\" char* \"\\\"\"");
    else if (hi < 0) sb_printf(e, "\"\\\"\" char{%ld,} \"\\\"\"", lo);
    else sb_printf(e, "\"\\\"\" char{%ld,%ld} \"\\\"\"", lo, hi);
    return 0;
}

static int compile_number(jsc *c, const jnode *s, int integer, sbuf *e) {
    const jnode *mn = jget(s, "minimum");
    if (mn) {
        if (mn->type != JN_NUM || (mn->num != 0 && !(integer && mn->num == 1)))
            return cfail(c, "'minimum' is supported only as 0 (or 1 for integers)");
        if (mn->num == 1) sb_add(e, "[1-9] [0-9]{0,15}");
        else if (integer) sb_add(e, "([0-9] | [1-9] [0-9]{0,15})");
        else sb_add(e, "([0-9] | [1-9] [0-9]{0,15}) (\".\" [0-9]{1,16})? ([eE] [-+]? [0-9]{1,2})?");
        return 0;
    }
    need(c, integer ? R_INTEGER : R_NUMBER);
    sb_add(e, integer ? "integer" : "number");
    return 0;
}

static int compile_array(jsc *c, const jnode *s, sbuf *e) {
    long lo, hi;
    if (bound(c, s, "minItems", 0, &lo) || bound(c, s, "maxItems", -1, &hi)) return -1;
    if (hi >= 0 && hi < lo) return cfail(c, "maxItems is below minItems");
    need(c, R_WS);
    const jnode *items = jget(s, "items"), *prefix = jget(s, "prefixItems");
    if (items && items->type == JN_BOOL && !items->b && !prefix) hi = 0;
    if (hi == 0) {
        if (lo > 0) return cfail(c, "no items are allowed but minItems is %ld", lo);
        sb_add(e, "\"[\" ws \"]\"");
        return 0;
    }
    sb_add(e, "\"[\" ws ");
    long done = 0;
    if (prefix) {
        if (prefix->type != JN_ARR) return cfail(c, "'prefixItems' must be an array");
        for (int i = 0; i < prefix->n; i++) {
            char seg[32];
            int n = snprintf(seg, sizeof seg, "prefixItems/%d", i);
            int r = sub(c, prefix->kids[i], seg, (size_t)n);
            if (r < 0) return -1;
            sb_printf(e, i ? "ws \",\" ws r%d " : "r%d ", r);
        }
        done = prefix->n;
        if (hi >= 0 && hi < done) return cfail(c, "maxItems is below the number of prefixItems");
        if (items && items->type == JN_BOOL && !items->b) {
            if (lo > done) return cfail(c, "minItems is above the number of prefixItems");
            sb_add(e, "ws \"]\"");
            return 0;
        }
    }
    int it;
    if (items && items->type != JN_ARR) {
        if ((it = sub(c, items, "items", 5)) < 0) return -1;
    } else {
        if (items) return cfail(c, "'items' as an array (draft 4 tuples) is not supported: use prefixItems");
        need(c, R_VALUE);
        it = 0;
    }
    char item[32];
    if (it) snprintf(item, sizeof item, "r%d", it);
    else snprintf(item, sizeof item, "value");
    long more_lo = lo > done ? lo - done : 0, more_hi = hi < 0 ? -1 : hi - done;
    if (done > 0) {
        /* every further item follows a comma */
        if (more_hi < 0) sb_printf(e, "( ws \",\" ws %s ){%ld,} ", item, more_lo);
        else if (more_hi > 0) sb_printf(e, "( ws \",\" ws %s ){%ld,%ld} ", item, more_lo, more_hi);
        sb_add(e, "ws \"]\"");
        return 0;
    }
    if (more_lo == 0) sb_add(e, "( ");
    sb_printf(e, "%s ", item);
    long rlo = more_lo > 0 ? more_lo - 1 : 0, rhi = more_hi < 0 ? -1 : more_hi - 1;
    if (rhi < 0) sb_printf(e, "( ws \",\" ws %s ){%ld,} ", item, rlo);
    else if (rhi > 0) sb_printf(e, "( ws \",\" ws %s ){%ld,%ld} ", item, rlo, rhi);
    if (more_lo == 0) sb_add(e, "ws )? ");
    else sb_add(e, "ws ");
    sb_add(e, "\"]\"");
    return 0;
}

/* "key" ws ":" ws value as text */
static void kv(sbuf *e, const char *key, size_t klen, const char *val) {
    sbuf k = {0};
    jnode t = {0};
    t.type = JN_STR;
    t.s = (char *)key;
    t.slen = klen;
    json_text(&k, &t);
    literal(e, k.p ? k.p : "", k.n);
    free(k.p);
    sb_printf(e, " ws \":\" ws %s", val);
}

static int compile_object(jsc *c, const jnode *s, sbuf *e) {
    const jnode *props = jget(s, "properties"), *req = jget(s, "required"), *add = jget(s, "additionalProperties");
    if (props && props->type != JN_OBJ) return cfail(c, "'properties' must be an object");
    if (req && req->type != JN_ARR) return cfail(c, "'required' must be an array");
    need(c, R_WS);
    int np = props ? props->n : 0;
    if (np == 0 && !(req && req->n > 0)) {
        if (add && add->type == JN_BOOL && !add->b) {
            sb_add(e, "\"{\" ws \"}\"");
            return 0;
        }
        char val[32] = "value";
        if (add && add->type == JN_OBJ) {
            int r = sub(c, add, "additionalProperties", 20);
            if (r < 0) return -1;
            snprintf(val, sizeof val, "r%d", r);
        } else {
            need(c, R_VALUE);
        }
        need(c, R_STRING);
        sb_printf(e, "\"{\" ws ( string ws \":\" ws %s ( ws \",\" ws string ws \":\" ws %s )* ws )? \"}\"", val, val);
        return 0;
    }
    if (np > 200) return cfail(c, "more than 200 properties");
    /* rule numbers of every property, and which are required */
    int n_all = np + (req ? req->n : 0);
    int *rule = calloc((size_t)n_all + 1, sizeof *rule);
    const char **key = calloc((size_t)n_all + 1, sizeof *key);
    size_t *klen = calloc((size_t)n_all + 1, sizeof *klen);
    char *isreq = calloc((size_t)n_all + 1, 1);
    int n = 0, rc = -1;
    if (!rule || !key || !klen || !isreq) {
        cfail(c, "out of memory");
        goto done;
    }
    for (int i = 0; i < np; i++) {
        char seg[200];
        int sl = snprintf(seg, sizeof seg, "properties/%.*s", (int)(props->klen[i] < 150 ? props->klen[i] : 150), props->keys[i]);
        int dup = 0;
        for (int j = 0; j < n; j++) dup |= klen[j] == props->klen[i] && !memcmp(key[j], props->keys[i], klen[j]);
        if (dup) continue;
        if ((rule[n] = sub(c, props->kids[i], seg, (size_t)sl)) < 0) goto done;
        key[n] = props->keys[i];
        klen[n] = props->klen[i];
        n++;
    }
    for (int i = 0; req && i < req->n; i++) {
        const jnode *k = req->kids[i];
        if (k->type != JN_STR) {
            cfail(c, "'required' must list strings");
            goto done;
        }
        int j = 0;
        while (j < n && !(klen[j] == k->slen && !memcmp(key[j], k->s, klen[j]))) j++;
        if (j == n) { /* required without a schema: any value */
            need(c, R_VALUE);
            rule[n] = 0;
            key[n] = k->s;
            klen[n] = k->slen;
            n++;
        }
        isreq[j] = 1;
    }
    char val[32];
    int first = 1;
    sb_add(e, "\"{\" ws ");
    for (int j = 0; j < n; j++) { /* the required ones first, in order */
        if (!isreq[j]) continue;
        if (rule[j]) snprintf(val, sizeof val, "r%d", rule[j]);
        else snprintf(val, sizeof val, "value");
        if (!first) sb_add(e, "ws \",\" ws ");
        kv(e, key[j], klen[j], val);
        sb_add(e, " ");
        first = 0;
    }
    int n_opt = 0;
    for (int j = 0; j < n; j++) n_opt += !isreq[j];
    if (n_opt && !first) {
        for (int j = 0; j < n; j++) {
            if (isreq[j]) continue;
            snprintf(val, sizeof val, "r%d", rule[j]);
            sb_add(e, "( ws \",\" ws ");
            kv(e, key[j], klen[j], val);
            sb_add(e, " )? ");
        }
    } else if (n_opt) {
        /* none required: the first present optional property, then any of the later ones */
        sbuf alt = {0};
        for (int j = 0; j < n; j++) {
            if (isreq[j]) continue;
            if (alt.n) sb_add(&alt, " | ");
            snprintf(val, sizeof val, "r%d", rule[j]);
            kv(&alt, key[j], klen[j], val);
            for (int k = j + 1; k < n; k++) {
                if (isreq[k]) continue;
                snprintf(val, sizeof val, "r%d", rule[k]);
                sb_add(&alt, " ( ws \",\" ws ");
                kv(&alt, key[k], klen[k], val);
                sb_add(&alt, " )?");
            }
        }
        int r = open_rule(c);
        if (r < 0 || alt.oom) {
            free(alt.p);
            goto done;
        }
        sb_addn(&c->out, alt.p, alt.n);
        sb_add(&c->out, "\n");
        free(alt.p);
        sb_printf(e, "r%d? ", r);
    }
    sb_add(e, "ws \"}\"");
    rc = 0;
done:
    free(rule);
    free(key);
    free(klen);
    free(isreq);
    return rc;
}

/* The rule for a $ref target (made once; recursion refers to the same rule). */
static int compile_ref(jsc *c, const jnode *s, const char *ref, size_t rlen) {
    const jnode *t = c->root;
    if (rlen == 0 || ref[0] != '#') return cfail(c, "only local $ref ('#/$defs/...') is supported");
    size_t i = 1;
    while (i < rlen) {
        if (ref[i] != '/') return cfail(c, "bad $ref '%.*s'", (int)(rlen < 100 ? rlen : 100), ref);
        size_t j = ++i;
        while (j < rlen && ref[j] != '/') j++;
        char seg[256];
        size_t sl = 0;
        for (size_t k = i; k < j && sl < sizeof seg - 1; k++) {
            if (ref[k] == '~' && k + 1 < j && (ref[k + 1] == '0' || ref[k + 1] == '1')) {
                seg[sl++] = ref[k + 1] == '0' ? '~' : '/';
                k++;
            } else {
                seg[sl++] = ref[k];
            }
        }
        seg[sl] = 0;
        const jnode *nx = NULL;
        if (t->type == JN_OBJ) nx = jget(t, seg);
        else if (t->type == JN_ARR) {
            char *end;
            long idx = strtol(seg, &end, 10);
            if (*seg && !*end && idx >= 0 && idx < t->n) nx = t->kids[idx];
        }
        if (!nx) return cfail(c, "$ref '%.*s' points at nothing", (int)(rlen < 100 ? rlen : 100), ref);
        t = nx;
        i = j;
    }
    (void)s;
    for (int k = 0; k < c->n_defs; k++)
        if (c->def_node[k] == t) return c->def_rule[k];
    if (c->n_defs == c->cap_defs) {
        int nc = c->cap_defs ? c->cap_defs * 2 : 8;
        const jnode **nn = realloc(c->def_node, (size_t)nc * sizeof *nn);
        if (!nn) return cfail(c, "out of memory");
        c->def_node = nn;
        int *nr = realloc(c->def_rule, (size_t)nc * sizeof *nr);
        if (!nr) return cfail(c, "out of memory");
        c->def_rule = nr;
        c->cap_defs = nc;
    }
    /* reserve the name first: a recursive reference inside uses it */
    if (++c->n_rules > JS_MAX_RULES) return cfail(c, "the schema is too large");
    int name = c->n_rules;
    c->def_node[c->n_defs] = t;
    c->def_rule[c->n_defs] = name;
    c->n_defs++;
    char saved[sizeof c->path];
    memcpy(saved, c->path, sizeof saved);
    snprintf(c->path, sizeof c->path, "%.*s", (int)(rlen < 200 ? rlen : 200), ref);
    int body = compile(c, t);
    memcpy(c->path, saved, sizeof saved);
    if (body < 0) return -1;
    sb_printf(&c->out, "r%d ::= r%d\n", name, body);
    return name;
}

static int type_bit(const char *t) {
    static const char *const names[] = {"null", "boolean", "integer", "number", "string", "array", "object", NULL};
    for (int i = 0; names[i]; i++)
        if (!strcmp(t, names[i])) return 1 << i;
    return 0;
}

/* One schema (of the given type bits, 0 = from the keywords) as an expression in e. */
static int compile_typed(jsc *c, const jnode *s, int type, sbuf *e) {
    switch (type) {
    case 1: need(c, R_NULL); sb_add(e, "null"); return 0;
    case 2: need(c, R_BOOL); sb_add(e, "boolean"); return 0;
    case 4: return compile_number(c, s, 1, e);
    case 8: return compile_number(c, s, 0, e);
    case 16: return compile_string(c, s, e);
    case 32: return compile_array(c, s, e);
    case 64: return compile_object(c, s, e);
    }
    return cfail(c, "bad type");
}

/* Compiles schema s into a new rule; returns its number (-1 on error). */
static int compile(jsc *c, const jnode *s) {
    if (c->failed) return -1;
    if (++c->depth > JS_MAX_NEST) return cfail(c, "schemas nested too deeply");
    sbuf e = {0};
    int rc = -1;
    if (s->type == JN_BOOL) {
        if (!s->b) {
            cfail(c, "the schema false matches nothing");
            goto out;
        }
        need(c, R_VALUE);
        sb_add(&e, "value");
        goto emit;
    }
    if (s->type != JN_OBJ) {
        cfail(c, "a schema must be an object or a boolean");
        goto out;
    }
    if (refuse(c, s)) goto out;
    const jnode *v;
    if ((v = jget(s, "$ref"))) {
        if (v->type != JN_STR) {
            cfail(c, "'$ref' must be a string");
            goto out;
        }
        int r = compile_ref(c, s, v->s, v->slen);
        if (r < 0) goto out;
        sb_printf(&e, "r%d", r);
        goto emit;
    }
    if ((v = jget(s, "const"))) {
        sbuf t = {0};
        json_text(&t, v);
        literal(&e, t.p ? t.p : "", t.n);
        free(t.p);
        goto emit;
    }
    if ((v = jget(s, "enum"))) {
        if (v->type != JN_ARR || v->n == 0) {
            cfail(c, "'enum' must be a non-empty array");
            goto out;
        }
        for (int i = 0; i < v->n; i++) {
            sbuf t = {0};
            json_text(&t, v->kids[i]);
            if (i) sb_add(&e, " | ");
            literal(&e, t.p ? t.p : "", t.n);
            free(t.p);
        }
        goto emit;
    }
    const jnode *any = jget(s, "anyOf");
    if (!any) any = jget(s, "oneOf");
    const jnode *all = jget(s, "allOf");
    if (all) {
        if (all->type != JN_ARR || all->n != 1 || any) {
            cfail(c, "'allOf' is supported only with a single schema");
            goto out;
        }
        any = all;
    }
    if (any) {
        if (any->type != JN_ARR || any->n == 0) {
            cfail(c, "'anyOf'/'oneOf' must be a non-empty array");
            goto out;
        }
        for (int i = 0; i < any->n; i++) {
            char seg[32];
            int n = snprintf(seg, sizeof seg, "%s/%d", any == all ? "allOf" : "anyOf", i);
            int r = sub(c, any->kids[i], seg, (size_t)n);
            if (r < 0) goto out;
            sb_printf(&e, i ? " | r%d" : "r%d", r);
        }
        goto emit;
    }
    int types = 0;
    if ((v = jget(s, "type"))) {
        if (v->type == JN_STR) {
            types = type_bit(v->s);
        } else if (v->type == JN_ARR) {
            for (int i = 0; i < v->n; i++) {
                int tb = v->kids[i]->type == JN_STR ? type_bit(v->kids[i]->s) : 0;
                if (!tb) {
                    types = 0;
                    break;
                }
                types |= tb;
            }
        }
        if (!types) {
            cfail(c, "'type' must be one of null, boolean, integer, number, string, array, object (or a list of them)");
            goto out;
        }
        if ((types & 4) && (types & 8)) types &= ~4; /* number covers integer */
    } else if (jget(s, "properties") || jget(s, "additionalProperties") || jget(s, "required")) {
        types = 64;
    } else if (jget(s, "items") || jget(s, "prefixItems") || jget(s, "minItems") || jget(s, "maxItems")) {
        types = 32;
    } else if (jget(s, "minLength") || jget(s, "maxLength") || jget(s, "format")) {
        types = 16;
    } else {
        need(c, R_VALUE);
        sb_add(&e, "value");
        goto emit;
    }
    int first = 1;
    for (int t = 1; t <= 64; t <<= 1) {
        if (!(types & t)) continue;
        if (!first) sb_add(&e, " | ");
        first = 0;
        if (types != t) sb_add(&e, "( ");
        if (compile_typed(c, s, t, &e)) goto out;
        if (types != t) sb_add(&e, " )");
    }
emit: {
    int r = open_rule(c);
    if (r < 0) goto out;
    sb_addn(&c->out, e.p ? e.p : "", e.n);
    sb_add(&c->out, "\n");
    rc = r;
}
out:
    free(e.p);
    c->depth--;
    if (e.oom || c->out.oom) return cfail(c, "out of memory");
    return c->failed ? -1 : rc;
}

int json_schema_to_gbnf(const char *schema, size_t len, char **out, char *err, size_t errlen) {
    *out = NULL;
    if (err && errlen) err[0] = 0;
    jreader r = {schema ? schema : "", schema ? len : 0, 0, err, errlen, 0};
    jnode *root = jvalue(&r, 0);
    if (!root) return -1;
    jws(&r);
    if (r.pos < r.len) {
        jfail(&r, "text after the schema");
        jfree(root);
        return -1;
    }
    jsc c;
    memset(&c, 0, sizeof c);
    c.root = root;
    c.err = err;
    c.errlen = errlen;
    int top = compile(&c, root);
    if (top >= 0) sb_printf(&c.out, "root ::= r%d\n", top);
    jfree(root);
    free(c.def_node);
    free(c.def_rule);
    if (top < 0 || c.out.oom) {
        if (c.out.oom && !c.failed) cfail(&c, "out of memory");
        free(c.out.p);
        return -1;
    }
    *out = c.out.p;
    return 0;
}
