/* fuzz_safetensors.c — libFuzzer target: the safetensors reader (cli/safetensors.c) on arbitrary
 * bytes. It must reject or accept without reading outside the buffer; an accepted file's tensors
 * must lie inside it, and every element of the float ones must be readable. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a private copy so that reads past the end are caught */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    st_file f;
    char err[256];
    if (st_open_memory(&f, buf, size, err, sizeof err) == 0) {
        for (size_t i = 0; i < f.n; i++) {
            const st_tensor *t = &f.t[i];
            if (t->data < buf || t->data + t->nbytes > buf + size) abort();
            if (t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16)
                for (uint64_t k = 0; k < t->n_elems && k < 4096; k++) (void)st_get_f32(t, k);
        }
        st_close(&f);
    }
    free(buf);
    return 0;
}
