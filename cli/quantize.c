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
#include "gguf_out.h"
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

/* Keys llama-quantize does not copy: the two it writes last, and a split file's. */
static int dropped_key(gguf_str k) {
    return gguf_str_eq(k, "general.quantization_version") || gguf_str_eq(k, "general.file_type") ||
           gguf_str_eq(k, "split.no") || gguf_str_eq(k, "split.count") || gguf_str_eq(k, "split.tensors.count");
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
    gguf_out o;
    memset(&o, 0, sizeof o);
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
    if (gout_open(&o, out_path, "onebit quantize") != 0) {
        rc = 1;
        goto close;
    }
    buf = max_out ? malloc((size_t)max_out) : NULL;
    if (max_out && !buf) { rc = cli_fail(OB_ERR_NOMEM, "allocating a tensor's output"); goto close; }
    uint64_t n_kv = 0;
    for (uint64_t i = 0; i < g.n_kv; i++) n_kv += !dropped_key(g.kv[i].key);
    gout_header(&o, g.n_tensors, n_kv + 2);
    for (uint64_t i = 0; i < g.n_kv; i++)
        if (!dropped_key(g.kv[i].key)) gout_kv_copy(&o, &g.kv[i]);
    gout_kv_u32(&o, "general.quantization_version", 2);
    gout_kv_u32(&o, "general.file_type", target->file_type);
    for (uint64_t i = 0; i < g.n_tensors; i++)
        gout_tensor_info(&o, p[i].t->name.ptr, (size_t)p[i].t->name.len, p[i].t->n_dims, p[i].t->ne, p[i].type,
                         p[i].offset);
    gout_pad(&o, align);
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
            gout_put(&o, buf, (size_t)p[i].nbytes);
            q_elems += elems;
            q_bytes += p[i].nbytes;
        } else {
            gout_put(&o, t->data, (size_t)t->nbytes);
        }
        gout_pad(&o, align);
        if (!quiet) {
            char a[32], b[32];
            const gguf_type_info *ti = gguf_type(t->type), *to = gguf_type(p[i].type);
            fprintf(stderr, "[%4llu/%4llu] %-36.*s %-5s -> %-5s %9s -> %9s\n", (unsigned long long)(i + 1),
                    (unsigned long long)g.n_tensors, (int)t->name.len, t->name.ptr, ti->name, to->name, mib(t->nbytes, a),
                    mib(p[i].nbytes, b));
        }
    }
    if (!o.err && o.pos != data_start + data) o.err = EIO;
    if (gout_commit(&o, "onebit quantize") != 0) {
        rc = 1;
        goto close;
    }
    {
        char a[32], b[32];
        fprintf(stderr, "onebit quantize: %s -> %s (%s): %s -> %s, %.2f bits per weight overall", in_path, out_path,
                target->name, mib(in_bytes, a), mib(out_bytes, b), all_elems ? 8.0 * (double)out_bytes / (double)all_elems : 0.0);
        if (q_elems) fprintf(stderr, ", %.2f in the matrices it re-encoded", 8.0 * (double)q_bytes / (double)q_elems);
        fputc('\n', stderr);
    }
close:
    gout_abort(&o);
    free(buf);
    free(p);
    gguf_close(&g);
done:
    for (int r = 0; r < n_rules; r++) regfree(&rules[r].re);
    return rc < 0 ? 0 : rc;
}
