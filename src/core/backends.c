/* backends.c — the list of compiled-in backends, best first. The only file that names them. */
#include "backend.h"

#ifdef __EMSCRIPTEN__
extern const ob_backend ob_backend_webgpu; /* only when the host attached a GPU (web/engine.mjs) */
#endif
extern const ob_backend ob_backend_cpu;
extern const ob_backend ob_backend_scalar;

const ob_backend *const ob_backends[] = {
#ifdef __EMSCRIPTEN__
    &ob_backend_webgpu,
#endif
    &ob_backend_cpu,
    &ob_backend_scalar,
    NULL,
};
