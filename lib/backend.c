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

const struct backend_ops *backend_ops_by_name(const char *name)
{
    for (size_t i = 0; backend_table[i]; i++)
        if (streq(backend_table[i]->name, name))
            return backend_table[i];
    return NULL;
}
