/* jinja_driver.c — renders a Jinja chat template with src/core/jinja.c for tests/template.test.mjs.
 *
 * Usage: jinja_driver TEMPLATE_FILE CONTEXT_JSON_FILE [NOW_EPOCH_SECONDS]
 * Prints the render (raw bytes) to stdout and exits 0, or prints "error: ..." to stderr and exits 1.
 * strftime_now reads the clock at NOW_EPOCH_SECONDS when given. Not a test by itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "jinja.h"

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap + 1);
    for (size_t k; b && (k = fread(b + len, 1, cap - len, f)) > 0;) {
        len += k;
        if (len == cap) {
            char *nb = realloc(b, cap * 2 + 1);
            if (!nb) { free(b); b = NULL; break; }
            b = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (b) b[len] = 0;
    *n = len;
    return b;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TEMPLATE CONTEXT_JSON [NOW_EPOCH]\n", argv[0]);
        return 2;
    }
    size_t tn, cn;
    char *src = slurp(argv[1], &tn), *ctx = slurp(argv[2], &cn);
    if (!src || !ctx) {
        fprintf(stderr, "error: cannot read input files\n");
        return 2;
    }
    char err[600];
    jinja_tmpl *t;
    if (jinja_parse(src, tn, &t, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    char *out;
    size_t on;
    int64_t now = argc > 3 ? (int64_t)strtoll(argv[3], NULL, 10) : (int64_t)time(NULL);
    int rc = jinja_render_at(t, ctx, now, &out, &on, err, sizeof err);
    jinja_free(t);
    free(src);
    free(ctx);
    if (rc != 0) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    fwrite(out, 1, on, stdout);
    free(out);
    return 0;
}
