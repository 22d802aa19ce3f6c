/* backends.c — the list of compiled-in backends, best first. The only file that names them. */
#include "backend.h"

extern const ob_backend ob_backend_scalar;

const ob_backend *const ob_backends[] = {
    &ob_backend_scalar,
    NULL,
};
