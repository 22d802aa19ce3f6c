/* fuzz_json_schema.c — libFuzzer target for JSON Schema -> GBNF (src/core/json_schema.c).
 *
 * Each input is a schema as JSON text. When it compiles, the GBNF it gives must compile too (a
 * grammar the converter writes and the parser refuses is a finding: abort) and gets a matcher.
 * Findings: crashes, sanitizer reports, leaks, timeouts, and bad GBNF. Built and run by run.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar.h"
#include "json_schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    char *gbnf = NULL;
    if (json_schema_to_gbnf((const char *)data, size, &gbnf, err, sizeof err)) return 0;
    gram_grammar *g = NULL;
    if (gram_parse(gbnf, strlen(gbnf), &g, err, sizeof err)) {
        fprintf(stderr, "the converter wrote GBNF that does not compile: %s\n%s\n", err, gbnf);
        abort();
    }
    gram_matcher *m = gram_matcher_new(g, err, sizeof err);
    if (m) {
        static const char probe[] = "{\"a\": [1, \"x\", null, true, {}], \"b\": -1.5e3}";
        (void)gram_accept(m, probe, 1);
        (void)gram_can_accept(m, probe + 1, sizeof probe - 2);
        gram_matcher_free(m);
    }
    gram_free(g);
    free(gbnf);
    return 0;
}
