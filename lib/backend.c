/* backend: the table of built-in backends (see backend.h). */
#include "backend.h"
#include "ocps-config.h"
#include "process/process.h"
#if HAVE_DOCKER
#include "docker/docker.h"
#endif

const struct backend_ops *const backend_table[] = {
    &process_backend_ops,
#if HAVE_DOCKER
    &docker_backend_ops,
#endif
    NULL,
};
