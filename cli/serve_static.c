/* serve_static.c — the web app's static files for `onebit serve`, confined to one folder.
 *
 * Serves GET/HEAD of files under the web root with the right Content-Type and the headers that
 * make the page cross-origin isolated (COOP same-origin + COEP require-corp: SharedArrayBuffer and
 * threads in WebAssembly need them). Never lists a folder. A path cannot leave the root: ".."
 * segments are refused (MHD has already decoded %2e%2e into ".."), hidden names and control bytes
 * are refused, and the realpath of what is finally opened must still lie under the root's realpath,
 * so a symlink pointing outside is refused too. Without a web folder (or without its index.html)
 * a small built-in page at / says the API is up. Two read-only mounts complete the app: the wasm
 * engine (build/wasm beside the web folder) at /build/wasm/, confined like the root, and the served
 * model file itself at /models/<its file name> (that one exact name, nothing else under /models/).
 * This is not a general file server: no ranges, no caching validators.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve.h"

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The mounts that complete the app: build/wasm next to the web root, and the model file. */
static void add_mounts(static_site *s, const char *model) {
    if (s->root) {
        char cand[PATH_MAX + 32];
        snprintf(cand, sizeof cand, "%s/../build/wasm", s->root);
        char *w = realpath(cand, NULL);
        if (w && is_dir(w)) s->wasm_root = w;
        else free(w);
    }
    if (model && (s->model_path = realpath(model, NULL))) {
        const char *b = strrchr(s->model_path, '/');
        s->model_name = b ? b + 1 : s->model_path;
    }
}

static int find_root(static_site *s, const char *dir);

int static_init(static_site *s, const char *dir, const char *model) {
    memset(s, 0, sizeof *s);
    if (find_root(s, dir)) return -1;
    add_mounts(s, model);
    return 0;
}

static int find_root(static_site *s, const char *dir) {
    s->root = NULL;
    if (dir) {
        char *r = realpath(dir, NULL);
        if (!r || !is_dir(r)) {
            fprintf(stderr, "onebit: --web '%s' is not a readable folder\n", dir);
            free(r);
            return -1;
        }
        s->root = r;
        return 0;
    }
    /* Default: the repository's web/ folder, found from the executable (build/onebit or
     * build/asan/onebit), so it works from any working directory. */
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return 0;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return 0;
    *slash = 0;
    static const char *const rel[] = {"/../web", "/../../web"};
    for (int i = 0; i < 2; i++) {
        char cand[PATH_MAX + 16];
        snprintf(cand, sizeof cand, "%s%s", exe, rel[i]);
        char *r = realpath(cand, NULL);
        if (r && is_dir(r)) {
            s->root = r;
            return 0;
        }
        free(r);
    }
    return 0;
}

void static_free(static_site *s) {
    free(s->root);
    free(s->wasm_root);
    free(s->model_path);
    memset(s, 0, sizeof *s);
}

void static_isolation_headers(struct MHD_Response *r) {
    MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(r, "Cross-Origin-Embedder-Policy", "require-corp");
    MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
}

static const char *content_type(const char *path) {
    static const struct { const char *ext, *type; } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".htm", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".wasm", "application/wasm"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".png", "image/png"},
        {".svg", "image/svg+xml"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".wgsl", "text/plain; charset=utf-8"},
        {".gguf", "application/octet-stream"},
    };
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash)) return "application/octet-stream";
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcasecmp(dot, types[i].ext)) return types[i].type;
    return "application/octet-stream";
}

static int plain(struct MHD_Connection *c, unsigned status, const char *text) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    static_isolation_headers(r);
    int ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static const char BUILTIN_PAGE[] =
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>onebit server</title>\n"
    "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:42em;margin:3em auto;padding:0 1em}"
    "code,pre{background:#f3f3f3;padding:.1em .3em;border-radius:3px}pre{padding:.8em}</style>\n"
    "</head><body>\n<h1>onebit server is running</h1>\n"
    "<p>The OpenAI-compatible API is up. The web app is not installed next to this binary "
    "(start with <code>--web DIR</code> to serve one).</p>\n"
    "<ul><li><code>POST /v1/chat/completions</code></li><li><code>POST /v1/completions</code></li>"
    "<li><a href=\"/v1/models\"><code>GET /v1/models</code></a></li>"
    "<li><a href=\"/health\"><code>GET /health</code></a></li></ul>\n"
    "<pre>curl http://HOST/v1/chat/completions -H 'Content-Type: application/json' \\\n"
    "  -d '{\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}'</pre>\n"
    "</body></html>\n";

/* Checks the decoded URL path: 0 ok, 403 for a traversal attempt, 404 for names we never serve. */
static int check_path(const char *url) {
    if (url[0] != '/') return 404;
    size_t len = strlen(url);
    if (len > 1024) return 404;
    for (const char *p = url; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch < 0x20 || ch == 0x7f || ch == '\\') return 403;
    }
    /* Walk the segments. */
    const char *seg = url + 1;
    while (*seg) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);
        if (n == 2 && seg[0] == '.' && seg[1] == '.') return 403;
        if (n == 0 && end) return 404;            /* "//" */
        if (n > 0 && seg[0] == '.') return 404;   /* ".", hidden files */
        if (!end) break;
        seg = end + 1;
    }
    return 0;
}

static int send_file(struct MHD_Connection *c, const char *real);

int static_serve(const static_site *s, struct MHD_Connection *c, const char *url) {
    int bad = check_path(url);
    if (bad == 403) return plain(c, MHD_HTTP_FORBIDDEN, "403 forbidden\n");
    if (bad) return plain(c, MHD_HTTP_NOT_FOUND, "404 not found\n");
    if (!strncmp(url, "/models/", 8) && s->model_path && !strcmp(url + 8, s->model_name))
        return send_file(c, s->model_path);
    const char *root = s->root;
    static const char WASM[] = "/build/wasm/";
    if (!strncmp(url, WASM, sizeof WASM - 1) && s->wasm_root) {
        root = s->wasm_root;
        url += sizeof WASM - 2; /* keep the slash */
    }
    int home = root == s->root && (!strcmp(url, "/") || !strcmp(url, "/index.html"));
    char path[PATH_MAX];
    size_t ul = strlen(url);
    int n = root ? snprintf(path, sizeof path, "%s%s%s", root, url, url[ul - 1] == '/' ? "index.html" : "") : 0;
    if (n < 0 || (size_t)n >= sizeof path) return plain(c, MHD_HTTP_NOT_FOUND, "404 not found\n");
    if (!root || (home && access(path, F_OK) != 0)) { /* no web app (yet): say the API is up */
        if (!home) return plain(c, MHD_HTTP_NOT_FOUND, "404 not found\n");
        struct MHD_Response *r =
            MHD_create_response_from_buffer(sizeof BUILTIN_PAGE - 1, (void *)BUILTIN_PAGE, MHD_RESPMEM_PERSISTENT);
        if (!r) return MHD_NO;
        MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        static_isolation_headers(r);
        int ret = MHD_queue_response(c, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ret;
    }
    char *real = realpath(path, NULL);
    if (!real) return plain(c, MHD_HTTP_NOT_FOUND, "404 not found\n");
    size_t rl = strlen(root);
    if (strncmp(real, root, rl) != 0 || real[rl] != '/') { /* a symlink out of the root */
        free(real);
        return plain(c, MHD_HTTP_FORBIDDEN, "403 forbidden\n");
    }
    int r = send_file(c, real);
    free(real);
    return r;
}

/* Sends a regular file (never a folder) with its type and the isolation headers. */
static int send_file(struct MHD_Connection *c, const char *real) {
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { /* folders are never listed */
        if (fd >= 0) close(fd);
        return plain(c, MHD_HTTP_NOT_FOUND, "404 not found\n");
    }
    const char *type = content_type(real);
    struct MHD_Response *r = MHD_create_response_from_fd((size_t)st.st_size, fd); /* MHD closes fd */
    if (!r) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    static_isolation_headers(r);
    int ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}
