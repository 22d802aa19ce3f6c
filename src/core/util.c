/* util.c — the last-error message and small shared helpers. */
#define _POSIX_C_SOURCE 200809L
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char last_error[512];

ob_status ob_fail(ob_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return st;
}

const char *ob_last_error(void) { return last_error; }

const char *ob_status_str(ob_status s) {
    switch (s) {
    case OB_OK: return "ok";
    case OB_ERR_ARG: return "invalid argument";
    case OB_ERR_IO: return "i/o error";
    case OB_ERR_FORMAT: return "format error";
    case OB_ERR_UNSUPPORTED: return "unsupported";
    case OB_ERR_NOMEM: return "out of memory";
    case OB_ERR_CONTEXT: return "context full";
    case OB_ERR_BACKEND: return "backend error";
    case OB_ERR_CANCELLED: return "cancelled";
    }
    return "unknown error";
}

double ob_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Counts distinct (package, core) pairs in sysfs; falls back to the online CPU count. */
int ob_default_threads(void) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int n = 0;
    unsigned seen[1024];
    for (int cpu = 0; cpu < 1024; cpu++) {
        char path[128];
        unsigned pkg = 0, core = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", cpu);
        FILE *f = fopen(path, "r");
        if (!f) break;
        int ok = fscanf(f, "%u", &core) == 1;
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", cpu);
        if ((f = fopen(path, "r"))) {
            if (fscanf(f, "%u", &pkg) != 1) pkg = 0;
            fclose(f);
        }
        if (!ok) continue;
        unsigned key = pkg << 16 | (core & 0xffff);
        int dup = 0;
        for (int i = 0; i < n; i++) dup |= seen[i] == key;
        if (!dup && n < 1024) seen[n++] = key;
    }
    if (n <= 0) n = online > 0 ? (int)online : 1;
    return n;
}

void ob_rng_seed(uint64_t s[4], uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        uint64_t z = (x += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        s[i] = z ^ (z >> 31);
    }
}

static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

double ob_rng_uniform(uint64_t s[4]) {
    uint64_t r = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return (double)(r >> 11) * (1.0 / 9007199254740992.0); /* exact in double everywhere */
}
