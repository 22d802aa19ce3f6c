/* quantize.c — `onebit quantize IN.gguf OUT.gguf TYPE`: a copy of a GGUF model with its weight
 * matrices in another type (src/core/quantize.h), like llama-quantize --pure.
 *
 * Which tensors: those llama-quantize would quantise (two or more dimensions, names ending in
 * "weight", not norms); the rest (norms, biases, BitNet scales, rope factors) are copied as they
 * are. --tensor-type REGEX=TYPE overrides per tensor (POSIX extended regex searched in the name,
 * first match wins), as llama-quantize's --tensor-type. A row length the type's block does not
 * divide falls back to q8_0 (or f16), said on stderr. The metadata is copied in order with
 * general.quantization_version and general.file_type moved to the end and split keys dropped,
 * the tensors written in llama.cpp's order (layer, then name): the same file llama-quantize
 * writes with --pure for the types whose quantisers match ggml's reference (q8_0, q4_0, q1_0, q2_0).
 *
 * The file is written beside OUT under a temporary name and renamed when complete, so a failure
 * (disk full, a bad tensor) never leaves a truncated model; OUT is never IN, and an existing OUT
 * is replaced only with --force.
 */
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "gguf.h"
#include "quant.h"
#include "quantize.h"
#include "util.h"

static const char QUANTIZE_USAGE[] =
    "usage: onebit quantize IN.gguf OUT.gguf TYPE [options]\n"
    "Writes a copy of IN with its weight matrices in TYPE: f32, f16, bf16, q8_0, q4_0, q4_K, q2_0, q1_0.\n"
    "Norms, biases and other one-dimensional tensors are copied as they are. Input matrices should be\n"
    "f32, f16 or bf16 (a checkpoint converted to GGUF); q8_0, q4_0, q1_0 and q2_0 give the same bytes as\n"
    "llama-quantize --pure.\n"
    "  --tensor-type REGEX=TYPE  tensors whose name matches REGEX (POSIX extended, anywhere in the name)\n"
    "                            get TYPE; repeatable, the first match wins; TYPE 'copy' keeps a tensor\n"
    "  --output-type TYPE        type of output.weight     (= --tensor-type '^output\\.weight$=TYPE')\n"
    "  --embd-type TYPE          type of token_embd.weight (= --tensor-type '^token_embd\\.weight$=TYPE')\n"
    "  --allow-requantize        accept quantised input matrices (decoded to floats first: errors add up)\n"
    "  -t, --threads N           threads (default: physical cores)\n"
    "  -f, --force               replace OUT if it exists\n"
    "  -q, --quiet               no line per tensor\n"
    "Exit codes: 0 ok, 1 failure (e.g. writing OUT), 2 usage, 3 IN unreadable, 4 invalid or unsupported input.\n";

#define MAX_RULES 64

typedef struct rule {
    regex_t re;
    const ob_quantizer *q; /* NULL: copy as is */
} rule;

typedef struct plan {
    const gguf_tensor *t;
    uint32_t type;        /* output type */
    uint64_t nbytes;      /* output bytes */
    uint64_t offset;      /* in the data section */
    int quantize;         /* 0: copied */
} plan;

static int layer_of(const gguf_str *name) {
    int l = -1;
    char buf[32];
    const size_t n = name->len < sizeof buf - 1 ? (size_t)name->len : sizeof buf - 1;
    memcpy(buf, name->ptr, n);
    buf[n] = 0;
    if (sscanf(buf, "blk.%d.", &l) != 1) l = -1;
    return l;
}

/* llama.cpp's tensor order: by layer (names without one first), then by name. */
static int cmp_plan(const void *a, const void *b) {
    const gguf_tensor *x = ((const plan *)a)->t, *y = ((const plan *)b)->t;
    const int lx = layer_of(&x->name), ly = layer_of(&y->name);
    if (lx != ly) return lx < ly ? -1 : 1;
    const size_t n = x->name.len < y->name.len ? (size_t)x->name.len : (size_t)y->name.len;
    const int c = memcmp(x->name.ptr, y->name.ptr, n);
    if (c) return c;
    return x->name.len < y->name.len ? -1 : x->name.len > y->name.len;
}

static int ends_with(const gguf_str *s, const char *suffix) {
    const size_t n = strlen(suffix);
    return s->len >= n && memcmp(s->ptr + s->len - n, suffix, n) == 0;
}

static int contains(const gguf_str *s, const char *part) {
    const size_t n = strlen(part);
    for (size_t i = 0; i + n <= s->len; i++)
        if (memcmp(s->ptr + i, part, n) == 0) return 1;
    return 0;
}

/* llama-quantize's choice of the tensors it quantises, for the architectures onebit runs. */
static int is_matrix(const gguf_tensor *t) {
    int dims = 1; /* as ggml_n_dims: up to the last dimension above 1 */
    for (uint32_t i = 1; i < t->n_dims && i < GGUF_MAX_DIMS; i++)
        if (t->ne[i] > 1) dims = (int)i + 1;
    return dims >= 2 && ends_with(&t->name, "weight") && !contains(&t->name, "_norm.weight") &&
           !contains(&t->name, "ffn_gate_inp.weight") && !gguf_str_eq(t->name, "position_embd.weight") &&
           !gguf_str_eq(t->name, "token_types.weight");
}

/* ---- writing ---------------------------------------------------------------------------------- */

typedef struct out_file {
    FILE *f;
    uint64_t pos;
    int err;
} out_file;

static void put(out_file *o, const void *p, size_t n) {
    if (o->err || n == 0) return;
    if (fwrite(p, 1, n, o->f) != n) o->err = errno ? errno : EIO;
    o->pos += n;
}
static void put_u32(out_file *o, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(o, b, 4);
}
static void put_u64(out_file *o, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    put(o, b, 8);
}
static void put_str(out_file *o, const char *p, uint64_t n) {
    put_u64(o, n);
    put(o, p, (size_t)n);
}
static void put_pad(out_file *o, uint32_t align) {
    static const uint8_t zeros[64] = {0};
    while (o->pos % align) put(o, zeros, (size_t)(align - o->pos % align) > sizeof zeros ? sizeof zeros : (size_t)(align - o->pos % align));
}

static size_t scalar_size(uint32_t t) {
    switch (t) {
    case GGUF_UINT8: case GGUF_INT8: case GGUF_BOOL: return 1;
    case GGUF_UINT16: case GGUF_INT16: return 2;
    case GGUF_UINT32: case GGUF_INT32: case GGUF_FLOAT32: return 4;
    case GGUF_UINT64: case GGUF_INT64: case GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* Copies one key-value pair as it is in the input (the reader checked its bounds). */
static void put_kv(out_file *o, const gguf_kv *kv) {
    put_str(o, kv->key.ptr, kv->key.len);
    put_u32(o, kv->type);
    if (kv->type == GGUF_STRING) {
        uint64_t n;
        memcpy(&n, kv->val, 8);
        put(o, kv->val, (size_t)(8 + n));
    } else if (kv->type == GGUF_ARRAY) {
        put_u32(o, kv->arr_type);
        put_u64(o, kv->arr_n);
        if (kv->arr_type == GGUF_STRING) {
            const uint8_t *p = kv->val;
            for (uint64_t i = 0; i < kv->arr_n; i++) {
                uint64_t n;
                memcpy(&n, p, 8);
                put(o, p, (size_t)(8 + n));
                p += 8 + n;
            }
        } else {
            put(o, kv->val, (size_t)(scalar_size(kv->arr_type) * kv->arr_n));
        }
    } else {
        put(o, kv->val, scalar_size(kv->type));
    }
}

/* ---- quantising one tensor on several threads ------------------------------------------------------ */

typedef struct job {
    const gguf_tensor *t;
    const ob_quantizer *q;
    uint8_t *dst;
    int64_t rows, next;
    pthread_mutex_t mu;
    int failed;
} job;

static void *job_run(void *arg) {
    job *j = arg;
    const int64_t cols = (int64_t)j->t->ne[0];
    const gguf_type_info *in = gguf_type(j->t->type);
    const size_t in_row = (size_t)(cols / in->blck * in->size), out_row = (size_t)(cols / j->q->block * j->q->bytes);
    float *buf = malloc((size_t)cols * sizeof *buf);
    if (!buf) {
        pthread_mutex_lock(&j->mu);
        j->failed = 1;
        pthread_mutex_unlock(&j->mu);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&j->mu);
        const int64_t r0 = j->next;
        j->next += 16;
        pthread_mutex_unlock(&j->mu);
        if (r0 >= j->rows) break;
        const int64_t r1 = r0 + 16 < j->rows ? r0 + 16 : j->rows;
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *src = (const uint8_t *)j->t->data + (size_t)r * in_row;
            if (j->t->type == GGML_F32) memcpy(buf, src, (size_t)cols * sizeof *buf);
            else ob_dequant_row(j->t->type, src, buf, (size_t)cols);
            j->q->quantize(buf, j->dst + (size_t)r * out_row, (size_t)cols);
        }
    }
    free(buf);
    return NULL;
}

static int quantize_tensor(const gguf_tensor *t, const ob_quantizer *q, uint8_t *dst, int n_threads) {
    job j = {.t = t, .q = q, .dst = dst, .rows = (int64_t)(t->ne[1] * t->ne[2] * t->ne[3])};
    pthread_mutex_init(&j.mu, NULL);
    pthread_t th[64];
    int started = 0;
    for (int i = 1; i < n_threads && i < 64; i++)
        if (pthread_create(&th[started], NULL, job_run, &j) == 0) started++;
    job_run(&j);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    pthread_mutex_destroy(&j.mu);
    return j.failed ? -1 : 0;
}

/* ---- the command --------------------------------------------------------------------------------- */

static const char *mib(uint64_t b, char *buf) {
    snprintf(buf, 32, "%.1f MiB", (double)b / (1024.0 * 1024.0));
    return buf;
}

static int parse_type(const char *s, const ob_quantizer **out, int allow_copy) {
    if (allow_copy && strcmp(s, "copy") == 0) {
        *out = NULL;
        return 0;
    }
    *out = ob_quantizer_by_name(s);
    if (*out) return 0;
    fprintf(stderr, "onebit quantize: unknown type '%s' (%s%s)\n", s, ob_quantizer_names(), allow_copy ? ", copy" : "");
    return 2;
}

static int add_rule(rule *rules, int *n, const char *pattern, size_t plen, const char *type) {
    if (*n >= MAX_RULES) {
        fprintf(stderr, "onebit quantize: more than %d --tensor-type rules\n", MAX_RULES);
        return 2;
    }
    char *re = malloc(plen + 1);
    if (!re) return 1;
    memcpy(re, pattern, plen);
    re[plen] = 0;
    rule *r = &rules[*n];
    int rc = parse_type(type, &r->q, 1);
    if (rc) { free(re); return rc; }
    const int e = regcomp(&r->re, re, REG_EXTENDED | REG_NOSUB);
    if (e) {
        char msg[128];
        regerror(e, &r->re, msg, sizeof msg);
        fprintf(stderr, "onebit quantize: bad regular expression '%s': %s\n", re, msg);
        free(re);
        return 2;
    }
    free(re);
    (*n)++;
    return 0;
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[3] = {0};
    int npos = 0, n_threads = 0, force = 0, quiet = 0, requant = 0, rc = 0;
    rule rules[MAX_RULES];
    int n_rules = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const int more = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(QUANTIZE_USAGE, stdout);
            rc = -1;
            goto done;
        } else if (!strcmp(a, "--tensor-type") && more) {
            const char *spec = argv[++i], *eq = strrchr(spec, '=');
            if (!eq || eq == spec) {
                fprintf(stderr, "onebit quantize: --tensor-type wants REGEX=TYPE, got '%s'\n", spec);
                rc = 2;
                goto done;
            }
            if ((rc = add_rule(rules, &n_rules, spec, (size_t)(eq - spec), eq + 1))) goto done;
        } else if ((!strcmp(a, "--output-type") || !strcmp(a, "--embd-type")) && more) {
            const char *re = !strcmp(a, "--output-type") ? "^output\\.weight$" : "^token_embd\\.weight$";
            if ((rc = add_rule(rules, &n_rules, re, strlen(re), argv[++i]))) goto done;
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && more) {
            char *end;
            const long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > 1024) {
                fprintf(stderr, "onebit quantize: --threads wants 0..1024, got '%s'\n", argv[i]);
                rc = 2;
                goto done;
            }
            n_threads = (int)v;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--force")) force = 1;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--allow-requantize")) requant = 1;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "onebit quantize: unknown option or missing value: %s\n\n%s", a, QUANTIZE_USAGE);
            rc = 2;
            goto done;
        } else if (npos < 3) pos[npos++] = a;
        else {
            fprintf(stderr, "onebit quantize: too many arguments\n\n%s", QUANTIZE_USAGE);
            rc = 2;
            goto done;
        }
    }
    if (npos != 3) {
        fputs(QUANTIZE_USAGE, stderr);
        rc = 2;
        goto done;
    }
    const ob_quantizer *target;
    if ((rc = parse_type(pos[2], &target, 0))) goto done;
    if (n_threads <= 0) n_threads = ob_default_threads();

    const char *in_path = pos[0], *out_path = pos[1];
    struct stat si, so;
    if (stat(in_path, &si) != 0) {
        fprintf(stderr, "onebit quantize: cannot open '%s': %s\n", in_path, strerror(errno));
        rc = 3;
        goto done;
    }
    if (stat(out_path, &so) == 0) {
        if (si.st_dev == so.st_dev && si.st_ino == so.st_ino) {
            fprintf(stderr, "onebit quantize: OUT is the input file '%s': write to another path\n", in_path);
            rc = 2;
            goto done;
        }
        if (!force) {
            fprintf(stderr, "onebit quantize: '%s' exists (--force replaces it)\n", out_path);
            rc = 2;
            goto done;
        }
    }

    if (access(in_path, R_OK) != 0) {
        fprintf(stderr, "onebit quantize: cannot read '%s': %s\n", in_path, strerror(errno));
        rc = 3;
        goto done;
    }
    gguf_file g;
    char err[256];
    if (gguf_open_file(&g, in_path, err, sizeof err) != 0) {
        fprintf(stderr, "onebit quantize: %s: %s\n", in_path, err);
        rc = 4;
        goto done;
    }

    /* the plan: each tensor's output type and place */
    plan *p = calloc(g.n_tensors ? g.n_tensors : 1, sizeof *p);
    uint8_t *buf = NULL;
    char tmp[4096] = "";
    out_file o = {0};
    if (!p) { rc = cli_fail(OB_ERR_NOMEM, "planning"); goto close; }
    uint32_t align = g.alignment ? g.alignment : 32;
    uint64_t data = 0, max_out = 0, in_bytes = 0, out_bytes = 0, q_elems = 0, q_bytes = 0, all_elems = 0;
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const gguf_tensor *t = &g.tensors[i];
        p[i].t = t;
        p[i].type = t->type;
        p[i].nbytes = t->nbytes;
        if (!is_matrix(t)) continue;
        const ob_quantizer *q = target;
        int named = 0;
        char name[512];
        const size_t nl = t->name.len < sizeof name - 1 ? (size_t)t->name.len : sizeof name - 1;
        memcpy(name, t->name.ptr, nl);
        name[nl] = 0;
        for (int r = 0; r < n_rules && !named; r++)
            if (regexec(&rules[r].re, name, 0, NULL, 0) == 0) { q = rules[r].q; named = 1; }
        if (!q) continue; /* 'copy' */
        if (t->ne[0] % (uint64_t)q->block) {
            const ob_quantizer *fb = t->ne[0] % 32 == 0 ? ob_quantizer_find(GGML_Q8_0) : ob_quantizer_find(GGML_F16);
            fprintf(stderr, "onebit quantize: %s: rows of %llu are not a multiple of %s's block of %d: %s instead\n",
                    name, (unsigned long long)t->ne[0], q->name, q->block, fb->name);
            q = fb;
        }
        if (t->type != GGML_F32 && t->type != GGML_F16 && t->type != GGML_BF16) {
            const gguf_type_info *ti = gguf_type(t->type);
            if (!ob_type_find(t->type)) {
                fprintf(stderr, "onebit quantize: %s is of type %s, which onebit cannot decode\n", name,
                        ti && ti->name ? ti->name : "?");
                rc = 4;
                goto close;
            }
            if (!requant && t->type != q->type) {
                fprintf(stderr, "onebit quantize: %s is already quantised (%s): quantising it again adds its "
                        "error to the new one; pass --allow-requantize to do it anyway\n", name, ti->name);
                rc = 4;
                goto close;
            }
        }
        if (!t->data) {
            fprintf(stderr, "onebit quantize: %s: data missing\n", name);
            rc = 4;
            goto close;
        }
        if (t->type == q->type) continue; /* already in the target type: copied */
        p[i].type = q->type;
        p[i].nbytes = t->nbytes / gguf_type(t->type)->size * gguf_type(t->type)->blck / (uint64_t)q->block * (uint64_t)q->bytes;
        p[i].quantize = 1;
    }
    qsort(p, g.n_tensors, sizeof *p, cmp_plan);
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        p[i].offset = data;
        data += (p[i].nbytes + align - 1) / align * align;
        if (p[i].quantize && p[i].nbytes > max_out) max_out = p[i].nbytes;
    }

    /* write OUT's temporary sibling */
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", out_path, (long)getpid());
    o.f = fopen(tmp, "wb");
    if (!o.f) {
        fprintf(stderr, "onebit quantize: cannot create '%s': %s\n", tmp, strerror(errno));
        tmp[0] = 0;
        rc = 1;
        goto close;
    }
    buf = max_out ? malloc((size_t)max_out) : NULL;
    if (max_out && !buf) { rc = cli_fail(OB_ERR_NOMEM, "allocating a tensor's output"); goto close; }
    uint64_t n_kv = 0;
    for (uint64_t i = 0; i < g.n_kv; i++) {
        const gguf_str k = g.kv[i].key;
        if (gguf_str_eq(k, "general.quantization_version") || gguf_str_eq(k, "general.file_type") ||
            gguf_str_eq(k, "split.no") || gguf_str_eq(k, "split.count") || gguf_str_eq(k, "split.tensors.count"))
            continue;
        n_kv++;
    }
    put(&o, "GGUF", 4);
    put_u32(&o, 3);
    put_u64(&o, g.n_tensors);
    put_u64(&o, n_kv + 2);
    for (uint64_t i = 0; i < g.n_kv; i++) {
        const gguf_str k = g.kv[i].key;
        if (gguf_str_eq(k, "general.quantization_version") || gguf_str_eq(k, "general.file_type") ||
            gguf_str_eq(k, "split.no") || gguf_str_eq(k, "split.count") || gguf_str_eq(k, "split.tensors.count"))
            continue;
        put_kv(&o, &g.kv[i]);
    }
    put_str(&o, "general.quantization_version", 28);
    put_u32(&o, GGUF_UINT32);
    put_u32(&o, 2);
    put_str(&o, "general.file_type", 17);
    put_u32(&o, GGUF_UINT32);
    put_u32(&o, target->file_type);
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const gguf_tensor *t = p[i].t;
        put_str(&o, t->name.ptr, t->name.len);
        put_u32(&o, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) put_u64(&o, t->ne[d]);
        put_u32(&o, p[i].type);
        put_u64(&o, p[i].offset);
    }
    put_pad(&o, align);
    const uint64_t data_start = o.pos;
    for (uint64_t i = 0; i < g.n_tensors && !o.err; i++) {
        const gguf_tensor *t = p[i].t;
        if (!t->data) {
            fprintf(stderr, "onebit quantize: %.*s: data missing\n", (int)t->name.len, t->name.ptr);
            rc = 4;
            goto close;
        }
        uint64_t elems = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) elems *= t->ne[d];
        all_elems += elems;
        in_bytes += t->nbytes;
        out_bytes += p[i].nbytes;
        if (p[i].quantize) {
            if (quantize_tensor(t, ob_quantizer_find(p[i].type), buf, n_threads) != 0) {
                rc = cli_fail(OB_ERR_NOMEM, "quantising");
                goto close;
            }
            put(&o, buf, (size_t)p[i].nbytes);
            q_elems += elems;
            q_bytes += p[i].nbytes;
        } else {
            put(&o, t->data, (size_t)t->nbytes);
        }
        put_pad(&o, align);
        if (!quiet) {
            char a[32], b[32];
            const gguf_type_info *ti = gguf_type(t->type), *to = gguf_type(p[i].type);
            fprintf(stderr, "[%4llu/%4llu] %-36.*s %-5s -> %-5s %9s -> %9s\n", (unsigned long long)(i + 1),
                    (unsigned long long)g.n_tensors, (int)t->name.len, t->name.ptr, ti->name, to->name, mib(t->nbytes, a),
                    mib(p[i].nbytes, b));
        }
    }
    if (!o.err && o.pos != data_start + data) o.err = EIO;
    if (!o.err && fflush(o.f) != 0) o.err = errno;
    if (!o.err && fsync(fileno(o.f)) != 0 && errno != EINVAL) o.err = errno;
    if (fclose(o.f) != 0 && !o.err) o.err = errno;
    o.f = NULL;
    if (o.err) {
        fprintf(stderr, "onebit quantize: writing '%s' failed: %s\n", tmp, strerror(o.err));
        rc = 1;
        goto close;
    }
    /* read back what was written: a file onebit cannot open is not left behind as OUT */
    gguf_file chk;
    if (gguf_open_file(&chk, tmp, err, sizeof err) != 0) {
        fprintf(stderr, "onebit quantize: the written file does not read back: %s\n", err);
        rc = 1;
        goto close;
    }
    gguf_close(&chk);
    if (rename(tmp, out_path) != 0) {
        fprintf(stderr, "onebit quantize: cannot rename '%s' to '%s': %s\n", tmp, out_path, strerror(errno));
        rc = 1;
        goto close;
    }
    tmp[0] = 0;
    {
        char a[32], b[32];
        fprintf(stderr, "onebit quantize: %s -> %s (%s): %s -> %s, %.2f bits per weight overall", in_path, out_path,
                target->name, mib(in_bytes, a), mib(out_bytes, b), all_elems ? 8.0 * (double)out_bytes / (double)all_elems : 0.0);
        if (q_elems) fprintf(stderr, ", %.2f in the matrices it re-encoded", 8.0 * (double)q_bytes / (double)q_elems);
        fputc('\n', stderr);
    }
close:
    if (o.f) fclose(o.f);
    if (tmp[0]) unlink(tmp);
    free(buf);
    free(p);
    gguf_close(&g);
done:
    for (int r = 0; r < n_rules; r++) regfree(&rules[r].re);
    return rc < 0 ? 0 : rc;
}
